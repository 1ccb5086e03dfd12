/*
 * test_vhost_user_badinput.c — malformed and hostile vhost-user input to the
 * back-end. Each case runs on its own connection while a second, GOOD
 * connection (its own vnet_vhu_dev; struct vhu_duo, vhu_peer.h) carries
 * traffic before and after; the bad connection must end with handle() < 0
 * (or a clean error ack), a last_error naming the problem, one log line,
 * and fini must give back every fd and mapping.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "testmem.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/vhost_user_backend.h"

#define BIT(b) (1ull << (b))
#define ALL_F  (~0ull & ~BIT(VHOST_F_LOG_ALL))
#define P_ALL  (~0ull)
#define MEM_HDR offsetof(struct vnet_vhu_memory, regions)
#define REG_SZ  sizeof(struct vnet_vhu_mem_region)

struct bfx {
	struct vhu_duo d; /* connections "good" and "bad" */
};

static int setup(void **state)
{
	struct bfx *f = calloc(1, sizeof(*f));
	testlog_capture();
	if (vhu_duo_open(&f->d) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct bfx *f = *state;
	vhu_duo_close(&f->d);
	testlog_release();
	free(f);
	return 0;
}

/* Opens the bad connection; optionally negotiates (REPLY_ACK on) and sets memory. */
static struct vhu_conn *bad_open(struct bfx *f, bool negotiate, bool mem)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.has_mac = true; /* so GET_CONFIG (CONFIG) is offered and its bounds are tested */
	memcpy(cfg.mac, "\x02\x00\x00\x00\x00\x09", 6);
	assert_int_equal(vhu_duo_bad_open(&f->d, &cfg, negotiate, mem), 0);
	return &f->d.bad;
}

/* Closes the bad connection and checks nothing leaked and the good one flows. */
static void bad_close(struct bfx *f)
{
	assert_int_equal(vhu_duo_bad_close(&f->d), 0);
}

/* A fatal case: rc < 0, last_error contains needle, logged once, no reply sent. */
static void bad_expect(struct bfx *f, int rc, const char *needle)
{
	assert_int_equal(vhu_duo_bad_dropped(&f->d, rc, needle), 0);
}

static int send_and_handle(struct vhu_conn *c, uint32_t req, uint32_t flags, const void *p,
			   uint32_t size, const int *fds, unsigned nfds)
{
	return vhu_conn_req(c, req, flags, p, size, fds, nfds);
}

/* ---------------- framing ---------------- */

static void test_oversized_payload(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	/* header claims 64 KiB; only a few bytes follow */
	assert_int_equal(vhu_peer_send_ex(c->peer, VHOST_USER_SET_FEATURES, VHU_F, 0x10000,
					  "\0\0\0\0\0\0\0\0", 8, NULL, 0),
			 0);
	bad_expect(f, vnet_vhu_dev_handle(c->dev), "payload larger");

	/* and 0xffffffff with an fd attached: the fd is closed */
	c = bad_open(f, false, false);
	int e = vhu_eventfd();
	assert_int_equal(vhu_peer_send_ex(c->peer, VHOST_USER_SET_VRING_KICK, VHU_F, 0xffffffffu,
					  NULL, 0, &e, 1),
			 0);
	close(e);
	bad_expect(f, vnet_vhu_dev_handle(c->dev), "payload larger");
}

static void test_undersized_payload(void **state)
{
	struct bfx *f = *state;
	static const struct {
		uint32_t req, size;
	} cases[] = {
		{VHOST_USER_SET_VRING_ADDR, 8},  {VHOST_USER_SET_FEATURES, 4},
		{VHOST_USER_SET_VRING_NUM, 4},   {VHOST_USER_SET_MEM_TABLE, 4},
		{VHOST_USER_ADD_MEM_REG, 32},    {VHOST_USER_SET_VRING_KICK, 0},
		{VHOST_USER_SET_PROTOCOL_FEATURES, 0}, {VHOST_USER_GET_VRING_BASE, 0},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vhu_conn *c = bad_open(f, false, false);
		uint8_t zero[64] = {0};
		int rc = send_and_handle(c, cases[i].req, VHU_F, zero, cases[i].size, NULL, 0);
		char needle[64];
		snprintf(needle, sizeof(needle), "payload of %u bytes", cases[i].size);
		bad_expect(f, rc, needle);
	}
	/* too large for its type (within the global maximum) */
	struct vhu_conn *c = bad_open(f, false, false);
	uint8_t zero[64] = {0};
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_FEATURES, VHU_F, zero, 16, NULL, 0),
		   "payload of 16 bytes");
}

static void test_truncated_then_close(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	/* header says 40 bytes (SET_VRING_ADDR), 10 follow, then EOF */
	assert_int_equal(vhu_peer_send_ex(c->peer, VHOST_USER_SET_VRING_ADDR, VHU_F, 40,
					  "0123456789", 10, NULL, 0),
			 0);
	shutdown(c->peer, SHUT_WR);
	bad_expect(f, vnet_vhu_dev_handle(c->dev), "bad message");

	/* a header cut in half, with an fd: the fd is not leaked */
	c = bad_open(f, false, false);
	int e = vhu_eventfd();
	uint32_t hdr[3] = {VHOST_USER_SET_VRING_CALL, VHU_F, 8};
	assert_int_equal(vhu_peer_send_raw(c->peer, hdr, 6, &e, 1), 0);
	close(e);
	shutdown(c->peer, SHUT_WR);
	bad_expect(f, vnet_vhu_dev_handle(c->dev), "bad message");
}

static void test_truncated_then_stall(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	assert_int_equal(vhu_peer_send_ex(c->peer, VHOST_USER_SET_VRING_ADDR, VHU_F, 40,
					  "0123456789", 10, NULL, 0),
			 0);
	/* the peer stays connected but silent: bounded by io_timeout_ms (300) */
	int rc = vnet_vhu_dev_handle(c->dev);
	assert_int_equal(rc, -ETIMEDOUT);
	bad_expect(f, rc, "bad message");
}

static void test_bad_header_flags(void **state)
{
	struct bfx *f = *state;
	uint64_t v = 0;
	struct vhu_conn *c = bad_open(f, false, false);
	bad_expect(f, send_and_handle(c, VHOST_USER_GET_FEATURES, 2, NULL, 0, NULL, 0),
		   "version 2");
	c = bad_open(f, false, false);
	bad_expect(f, send_and_handle(c, VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0),
		   "version 0");
	c = bad_open(f, false, false);
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_FEATURES, VHU_F | VHOST_USER_REPLY, &v, 8,
				   NULL, 0),
		   "REPLY flag");
}

static void test_unknown_request(void **state)
{
	struct bfx *f = *state;
	static const uint32_t reqs[] = {99, 0, 26, 33, 35, VHOST_USER_MAX_REQUEST, 0xffffffffu};
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct vhu_conn *c = bad_open(f, true, true);
		uint64_t v = 0;
		char needle[48];
		snprintf(needle, sizeof(needle), "unknown request %u", reqs[i]);
		bad_expect(f, send_and_handle(c, reqs[i], VHU_FN, &v, 8, NULL, 0), needle);
	}
}

/* Known to the protocol, never offered: refused, any fd closed. */
static void test_unsupported_requests(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, true);
	int lfd;
	void *lm;
	lfd = vhu_memfd("vhu-log", 0x1000, &lm);
	struct vnet_vhu_log log = {.mmap_size = 0x1000, .mmap_offset = 0};
	int rc = send_and_handle(c, VHOST_USER_SET_LOG_BASE, VHU_FN, &log, sizeof(log), &lfd, 1);
	munmap(lm, 0x1000);
	close(lfd);
	assert_int_equal(vhu_count_maps("vhu-log"), 0); /* not mapped by the back-end */
	bad_expect(f, rc, "SET_LOG_BASE is not supported");

	static const struct {
		uint32_t req, size;
		bool fd;
		const char *name;
	} cases[] = {
		{VHOST_USER_SET_LOG_FD, 0, true, "SET_LOG_FD"},
		{VHOST_USER_SET_BACKEND_REQ_FD, 0, true, "SET_BACKEND_REQ_FD"},
		{VHOST_USER_SEND_RARP, 8, false, "SEND_RARP"},
		{VHOST_USER_SET_VRING_ENDIAN, 8, false, "SET_VRING_ENDIAN"},
		{VHOST_USER_SET_INFLIGHT_FD, 24, true, "SET_INFLIGHT_FD"},
		{VHOST_USER_GET_INFLIGHT_FD, 24, false, "GET_INFLIGHT_FD"},
		{VHOST_USER_SET_CONFIG, 12, false, "SET_CONFIG"},
		{VHOST_USER_IOTLB_MSG, 8, false, "IOTLB_MSG"},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = bad_open(f, true, true);
		uint8_t zero[32] = {0};
		int e = cases[i].fd ? vhu_eventfd() : -1;
		rc = send_and_handle(c, cases[i].req, VHU_FN, zero, cases[i].size, &e,
				     cases[i].fd ? 1 : 0);
		if (e >= 0)
			close(e);
		char needle[64];
		snprintf(needle, sizeof(needle), "%s is not supported", cases[i].name);
		bad_expect(f, rc, needle);
	}
}

/* ---------------- fds ---------------- */

static void test_wrong_fd_counts(void **state)
{
	struct bfx *f = *state;
	/* KICK without NOFD and without an fd */
	struct vhu_conn *c = bad_open(f, true, true);
	uint64_t v = 1;
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_VRING_KICK, VHU_FN, &v, 8, NULL, 0),
		   "carries 0 fds, expected 1");

	/* NOFD with an fd */
	c = bad_open(f, true, true);
	int e = vhu_eventfd();
	v = 1 | VHOST_USER_VRING_NOFD;
	int rc = send_and_handle(c, VHOST_USER_SET_VRING_CALL, VHU_FN, &v, 8, &e, 1);
	close(e);
	bad_expect(f, rc, "carries 1 fds, expected 0");

	/* SET_FEATURES takes none; 3 come */
	c = bad_open(f, true, true);
	int three[3] = {vhu_eventfd(), vhu_eventfd(), vhu_eventfd()};
	v = c->features;
	rc = send_and_handle(c, VHOST_USER_SET_FEATURES, VHU_F, &v, 8, three, 3);
	for (unsigned i = 0; i < 3; i++)
		close(three[i]);
	bad_expect(f, rc, "carries 3 fds");

	/* SET_MEM_TABLE: 2 regions, 1 fd */
	c = bad_open(f, true, false);
	struct vnet_vhu_memory m = {.nregions = 2};
	m.regions[0] = (struct vnet_vhu_mem_region){VHU_GPA, 0x100000, (uintptr_t)c->mem, 0};
	m.regions[1] = (struct vnet_vhu_mem_region){VHU_GPA + 0x100000, 0x100000,
						    (uintptr_t)c->mem + 0x100000, 0x100000};
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m, MEM_HDR + 2 * REG_SZ,
				   &c->memfd, 1),
		   "carries 1 fds, expected 2");

	/* ADD_MEM_REG without its fd */
	c = bad_open(f, true, true);
	struct vnet_vhu_mem_single r = {.region = {0x40000000, 0x1000, 0x40000000, 0}};
	bad_expect(f, send_and_handle(c, VHOST_USER_ADD_MEM_REG, VHU_FN, &r, sizeof(r), NULL, 0),
		   "carries 0 fds, expected 1");
}

/* The reason names the expected count once ("expected 1", not "expected 11"). */
static void test_fd_count_message_text(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, true);
	uint64_t v = 1;
	int rc = send_and_handle(c, VHOST_USER_SET_VRING_KICK, VHU_FN, &v, 8, NULL, 0);
	assert_true(rc < 0);
	assert_string_equal(c->dev->last_error, "SET_VRING_KICK: carries 0 fds, expected 1");
	bad_expect(f, rc, "carries 0 fds");
}

static void test_too_many_fds(void **state)
{
	struct bfx *f = *state;
	/* 12 fds: more than any message may carry */
	static const unsigned counts[] = {9, 12, 16, 40};
	for (unsigned t = 0; t < sizeof(counts) / sizeof(counts[0]); t++) {
		/* 9..16: more than any message may carry; 40: more than the
		 * receive buffer holds (the kernel truncates, MSG_CTRUNC) */
		struct vhu_conn *c = bad_open(f, true, true);
		int fds[40];
		for (unsigned i = 0; i < counts[t]; i++)
			fds[i] = vhu_eventfd();
		uint64_t v = 1;
		int rc = send_and_handle(c, VHOST_USER_SET_VRING_CALL, VHU_FN, &v, 8, fds, counts[t]);
		for (unsigned i = 0; i < counts[t]; i++)
			close(fds[i]);
		bad_expect(f, rc, "file descriptors");
	}
}

/* CVE-2019-14818 / CVE-2022-0669 class: replaced fds are closed. */
static void test_repeated_kick_call(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	int er0 = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, er0), 0);
	close(er0);
	unsigned base = vhu_count_fds();
	for (unsigned i = 0; i < 1000; i++) {
		int k = vhu_eventfd(), cl = vhu_eventfd(), er = vhu_eventfd();
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, k), 0);
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_CALL, 1, cl), 0);
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, er), 0);
		if (i == 999) {
			/* keep the last ones: the ring must still work through them */
			close(c->kick[1]);
			close(c->call[1]);
			c->kick[1] = k;
			c->call[1] = cl;
		} else {
			close(k);
			close(cl);
		}
		close(er);
	}
	assert_int_equal(vhu_count_fds(), base);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_CALL, 1, -1), 0);
	assert_int_equal(vhu_conn_traffic(c, 10), 0);
	bad_close(f);
}

/* ---------------- rings ---------------- */

static int ring_msg(struct vhu_conn *c, uint32_t req, uint32_t idx)
{
	struct vnet_vhu_vring_state s = {.index = idx, .num = 64};
	struct vnet_vhu_vring_addr a = {.index = idx};
	uint64_t v = (uint64_t)idx;
	switch (req) {
	case VHOST_USER_SET_VRING_ADDR:
		return send_and_handle(c, req, VHU_FN, &a, sizeof(a), NULL, 0);
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR: {
		bool nofd = v & VHOST_USER_VRING_NOFD;
		int e = vhu_eventfd();
		int rc = send_and_handle(c, req, VHU_FN, &v, 8, &e, nofd ? 0 : 1);
		close(e);
		return rc;
	}
	case VHOST_USER_SET_VRING_ENABLE:
		s.num = 1;
		return send_and_handle(c, req, VHU_FN, &s, sizeof(s), NULL, 0);
	default:
		return send_and_handle(c, req, VHU_FN, &s, sizeof(s), NULL, 0);
	}
}

/* CVE-2020-10723: every ring message with index == nrings, 255, and huge. */
static void test_ring_index_out_of_range(void **state)
{
	struct bfx *f = *state;
	static const uint32_t reqs[] = {
		VHOST_USER_SET_VRING_NUM,  VHOST_USER_SET_VRING_ADDR,  VHOST_USER_SET_VRING_BASE,
		VHOST_USER_GET_VRING_BASE, VHOST_USER_SET_VRING_KICK,  VHOST_USER_SET_VRING_CALL,
		VHOST_USER_SET_VRING_ERR,  VHOST_USER_SET_VRING_ENABLE,
	};
	static const uint32_t idxs[] = {2, 3, 128, 255, 0x10000, 0xffffffffu};
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		for (unsigned j = 0; j < sizeof(idxs) / sizeof(idxs[0]); j++) {
			bool fdmsg = reqs[i] == VHOST_USER_SET_VRING_KICK ||
				     reqs[i] == VHOST_USER_SET_VRING_CALL ||
				     reqs[i] == VHOST_USER_SET_VRING_ERR;
			if (fdmsg && idxs[j] > 0xff) {
				/* not expressible as an index: bits above NOFD */
				struct vhu_conn *c = bad_open(f, true, true);
				bad_expect(f, ring_msg(c, reqs[i], idxs[j]), "unknown bits");
				continue;
			}
			struct vhu_conn *c = bad_open(f, true, true);
			int rc = ring_msg(c, reqs[i], idxs[j]);
			char needle[48];
			snprintf(needle, sizeof(needle), "vring index %u", idxs[j]);
			bad_expect(f, rc, needle);
		}
	}
}

static void test_bad_vring_num(void **state)
{
	struct bfx *f = *state;
	static const uint32_t nums[] = {0, 3, 100, 65536, 32769, 0xffffffffu};
	for (unsigned i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		struct vhu_conn *c = bad_open(f, true, true);
		struct vnet_vhu_vring_state s = {.index = 1, .num = nums[i]};
		bad_expect(f, send_and_handle(c, VHOST_USER_SET_VRING_NUM, VHU_FN, &s, 8, NULL, 0),
			   "power of two");
	}
	/* the limits themselves are fine */
	struct vhu_conn *c = bad_open(f, true, true);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 32768), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 1), 0);
	bad_close(f);
}

static void test_bad_ring_values(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, true);
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_VRING_BASE, VHU_FN,
				   &(struct vnet_vhu_vring_state){1, 0x10000}, 8, NULL, 0),
		   "beyond 16 bits");
	c = bad_open(f, true, true);
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_VRING_ENABLE, VHU_FN,
				   &(struct vnet_vhu_vring_state){1, 2}, 8, NULL, 0),
		   "not 0 or 1");
	c = bad_open(f, true, true);
	struct vnet_vhu_vring_addr a = {.index = 1, .flags = 1};
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_VRING_ADDR, VHU_FN, &a, sizeof(a), NULL, 0),
		   "dirty logging");
	c = bad_open(f, true, true);
	uint64_t v = 1 | (1ull << 9) | VHOST_USER_VRING_NOFD;
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_VRING_KICK, VHU_FN, &v, 8, NULL, 0),
		   "unknown bits");
}

/* Ring areas not (wholly) inside shared memory: the kick is refused cleanly. */
static void test_ring_addresses_outside_memory(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, true);
	uint64_t base = (uintptr_t)c->mem;
	const struct {
		uint64_t desc, avail, used;
	} cases[] = {
		{0x1000, 0x2000, 0x3000},                                  /* nowhere */
		{base + VHU_MEMSZ - 0x800, base + 0x2000, base + 0x3000}, /* desc straddles the end */
		{base, base + 0x2000, base + VHU_MEMSZ},                   /* used just past it */
		{base - 0x1000, base + 0x2000, base + 0x3000},             /* desc just before */
		{0xfffffffffffff000ull, base + 0x2000, base + 0x3000},     /* wraps */
		{base + 8, base + 0x2000, base + 0x3000},                  /* misaligned desc */
	};
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 256), 0);
	int k = vhu_eventfd();
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vnet_vhu_vring_addr a = {.index = 1,
						.desc_user_addr = cases[i].desc,
						.avail_user_addr = cases[i].avail,
						.used_user_addr = cases[i].used};
		assert_int_equal(vhu_conn_set(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0),
				 0);
		testlog_clear();
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, k), 1);
		assert_non_null(strstr(c->dev->last_error, "ring 1"));
		assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
		enum vnet_vhu_ring_state st;
		unsigned tok;
		assert_null(vnet_vhu_ring_enter(c->dev, 1, &st, &tok));
	}
	close(k);
	/* the connection is still usable: a good ring now */
	assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0);
	assert_int_equal(vhu_conn_ring(c, 0, VHU_QSZ), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	bad_close(f);
}

/* ---------------- memory ---------------- */

static void test_mem_table_region_count(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, false);
	struct vnet_vhu_memory m = {.nregions = 0};
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m, MEM_HDR, NULL, 0),
		   "0 regions");

	c = bad_open(f, true, false);
	uint8_t big[MEM_HDR + 9 * REG_SZ];
	memset(big, 0, sizeof(big));
	uint32_t nine = 9;
	memcpy(big, &nine, 4);
	int fds[9];
	for (unsigned i = 0; i < 9; i++)
		fds[i] = c->memfd;
	/* 9 regions do not fit in the payload maximum anyway: size says 8*32+8 */
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, big, MEM_HDR + 8 * REG_SZ,
				   fds, 8),
		   "9 regions");

	/* nregions says 3, payload holds 1 */
	c = bad_open(f, true, false);
	m.nregions = 3;
	m.regions[0] = (struct vnet_vhu_mem_region){VHU_GPA, 0x1000, (uintptr_t)c->mem, 0};
	int three[3] = {c->memfd, c->memfd, c->memfd};
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m, MEM_HDR + REG_SZ, three,
				   3),
		   "do not fit");
}

static int send_mem(struct vhu_conn *c, const struct vnet_vhu_mem_region *regs, unsigned n)
{
	struct vnet_vhu_memory m = {.nregions = n};
	memcpy(m.regions, regs, n * REG_SZ);
	int fds[8];
	for (unsigned i = 0; i < n; i++)
		fds[i] = c->memfd;
	return send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m,
			       (uint32_t)(MEM_HDR + n * REG_SZ), fds, n);
}

static void test_mem_table_overlap(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, false);
	uint64_t u = (uintptr_t)c->mem;
	struct vnet_vhu_mem_region gpa_overlap[2] = {
		{VHU_GPA, 0x200000, u, 0},
		{VHU_GPA + 0x100000, 0x100000, u + 0x200000, 0x200000},
	};
	bad_expect(f, send_mem(c, gpa_overlap, 2), "overlap");

	c = bad_open(f, true, false);
	u = (uintptr_t)c->mem;
	struct vnet_vhu_mem_region uaddr_overlap[2] = {
		{VHU_GPA, 0x200000, u, 0},
		{VHU_GPA + 0x200000, 0x100000, u + 0x100000, 0x200000},
	};
	bad_expect(f, send_mem(c, uaddr_overlap, 2), "overlap");

	/* a refused table leaves the previous one in place (on a fresh conn: none) */
	c = bad_open(f, true, true);
	assert_int_equal(c->dev->nmaps, 1);
	void *old = c->dev->maps[0].base;
	u = (uintptr_t)c->mem;
	assert_true(send_mem(c, gpa_overlap, 2) < 0);
	assert_int_equal(c->dev->nmaps, 1);
	assert_ptr_equal(c->dev->maps[0].base, old);
	assert_int_equal(vhu_count_maps("vhu-bad"), 2); /* nothing of the new table stayed */
	bad_close(f);
}

static void test_mem_region_bad_sizes(void **state)
{
	struct bfx *f = *state;
	/* mmap_offset + size overflows 64 bits */
	struct vhu_conn *c = bad_open(f, true, false);
	struct vnet_vhu_mem_region r = {VHU_GPA, 0x2000, (uintptr_t)c->mem, 0xfffffffffffff000ull};
	bad_expect(f, send_mem(c, &r, 1), "overflows");

	/* gpa + size wraps */
	c = bad_open(f, true, false);
	r = (struct vnet_vhu_mem_region){0xfffffffffffff000ull, 0x2000, (uintptr_t)c->mem, 0};
	bad_expect(f, send_mem(c, &r, 1), "memory table refused");

	/* size 0 */
	c = bad_open(f, true, false);
	r = (struct vnet_vhu_mem_region){VHU_GPA, 0, (uintptr_t)c->mem, 0};
	bad_expect(f, send_mem(c, &r, 1), "size 0");
}

/* The fd is smaller than offset+size: must be refused (mapping it would SIGBUS). */
static void test_mem_region_beyond_fd(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, true, false);
	struct vnet_vhu_mem_region r = {VHU_GPA, 0x1000, (uintptr_t)c->mem, VHU_MEMSZ};
	bad_expect(f, send_mem(c, &r, 1), "bytes of its fd");

	c = bad_open(f, true, false);
	r = (struct vnet_vhu_mem_region){VHU_GPA, VHU_MEMSZ, (uintptr_t)c->mem, 0x1000};
	bad_expect(f, send_mem(c, &r, 1), "bytes of its fd");

	/* not a regular file: an eventfd */
	c = bad_open(f, true, false);
	int e = vhu_eventfd();
	struct vnet_vhu_memory m = {.nregions = 1};
	m.regions[0] = (struct vnet_vhu_mem_region){VHU_GPA, 0x1000, (uintptr_t)c->mem, 0};
	int rc = send_and_handle(c, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m, MEM_HDR + REG_SZ, &e, 1);
	close(e);
	bad_expect(f, rc, "bytes of its fd");

	/* ADD_MEM_REG likewise */
	c = bad_open(f, true, false);
	struct vnet_vhu_mem_single s = {.region = {VHU_GPA, 0x1000, (uintptr_t)c->mem, VHU_MEMSZ}};
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_ADD_MEM_REG, VHU_FN, &s, sizeof(s), &c->memfd, 1),
		   "bytes of its fd");
}

static void test_mem_reg_without_feature(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	assert_int_equal(vhu_conn_negotiate(c, ALL_F,
					    P_ALL & ~BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)),
			 0);
	struct vnet_vhu_mem_single s = {.region = {VHU_GPA, 0x1000, (uintptr_t)c->mem, 0}};
	testlog_clear();
	bad_expect(f,
		   send_and_handle(c, VHOST_USER_ADD_MEM_REG, VHU_FN, &s, sizeof(s), &c->memfd, 1),
		   "CONFIGURE_MEM_SLOTS");
	c = bad_open(f, false, false);
	assert_int_equal(vhu_conn_negotiate(c, ALL_F,
					    P_ALL & ~BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)),
			 0);
	testlog_clear();
	bad_expect(f, send_and_handle(c, VHOST_USER_REM_MEM_REG, VHU_FN, &s, sizeof(s), NULL, 0),
		   "CONFIGURE_MEM_SLOTS");
}

/* ---------------- negotiation ---------------- */

static void test_bad_negotiation(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	uint64_t v = BIT(VHOST_F_LOG_ALL) | BIT(VIRTIO_F_VERSION_1);
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_FEATURES, VHU_F, &v, 8, NULL, 0),
		   "not offered");
	c = bad_open(f, false, false);
	v = BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD);
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_PROTOCOL_FEATURES, VHU_F, &v, 8, NULL, 0),
		   "not offered");
	c = bad_open(f, false, false);
	v = 1;
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_STATUS, VHU_F, &v, 8, NULL, 0),
		   "STATUS protocol feature");
	c = bad_open(f, true, false);
	v = 0x100;
	bad_expect(f, send_and_handle(c, VHOST_USER_SET_STATUS, VHU_FN, &v, 8, NULL, 0),
		   "beyond 8 bits");
	c = bad_open(f, true, false);
	struct vnet_vhu_config cr = {.offset = 4, .size = 250};
	bad_expect(f, send_and_handle(c, VHOST_USER_GET_CONFIG, VHU_F, &cr, 12 + 250, NULL, 0),
		   "outside");
	c = bad_open(f, true, false);
	cr = (struct vnet_vhu_config){.offset = 0xfffffff0u, .size = 0x20};
	bad_expect(f, send_and_handle(c, VHOST_USER_GET_CONFIG, VHU_F, &cr, 12 + 0x20, NULL, 0),
		   "outside");
	c = bad_open(f, true, false);
	v = 1500; /* no mtu configured: NET_MTU never offered */
	bad_expect(f, send_and_handle(c, VHOST_USER_NET_SET_MTU, VHU_F, &v, 8, NULL, 0),
		   "NET_MTU protocol feature");
}

/* A connection torn down with everything set up and frames in flight. */
static void test_disconnect_with_rings_running(void **state)
{
	struct bfx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	int e = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, e), 0);
	close(e);
	assert_int_equal(vhu_guest_tx(c, 1, 3, 64, 0), 3);
	close(c->peer);
	c->peer = -1;
	int rc = vnet_vhu_dev_handle(c->dev);
	assert_int_equal(rc, -ECONNRESET);
	assert_non_null(strstr(c->dev->last_error, "disconnected"));
	bad_close(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_oversized_payload),
		T(test_undersized_payload),
		T(test_truncated_then_close),
		T(test_truncated_then_stall),
		T(test_bad_header_flags),
		T(test_unknown_request),
		T(test_unsupported_requests),
		T(test_wrong_fd_counts),
		T(test_fd_count_message_text),
		T(test_too_many_fds),
		T(test_repeated_kick_call),
		T(test_ring_index_out_of_range),
		T(test_bad_vring_num),
		T(test_bad_ring_values),
		T(test_ring_addresses_outside_memory),
		T(test_mem_table_region_count),
		T(test_mem_table_overlap),
		T(test_mem_region_bad_sizes),
		T(test_mem_region_beyond_fd),
		T(test_mem_reg_without_feature),
		T(test_bad_negotiation),
		T(test_disconnect_with_rings_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
