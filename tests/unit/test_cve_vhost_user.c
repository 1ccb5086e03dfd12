/*
 * test_cve_vhost_user.c — one regression test per known vhost-user handler
 * bug class (issue 7), each named after its CVE. A hostile front-end talks to
 * the back-end (vnet_vhu_dev) over connection "bad" while connection "good"
 * (its own vnet_vhu_dev, same process) carries frames (struct vhu_duo,
 * vhu_peer.h): every attack is bracketed by a count of the good
 * connection's frames (all VHU_DUO_GOOD_FRAMES must arrive before and
 * after), and the bad connection must lose only itself —
 * handle() < 0 with a reason, one log line, no reply — or, when the request
 * is legal but repeated, keep working without growing: after fini the
 * process holds exactly the fds and mappings it held before (counted in
 * /proc/self/fd and /proc/self/maps) and, in the gcc build, the same heap
 * bytes (mallinfo2; the clang build's LeakSanitizer covers leaks there).
 *
 * Single-threaded: the test plays front-end and data plane in turn.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "testmem.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/vhost_user_backend.h"

#define BIT(b) (1ull << (b))
#define ALL_F  (~0ull & ~BIT(VHOST_F_LOG_ALL))
#define P_ALL  (~0ull)
#define REG_SZ sizeof(struct vnet_vhu_mem_region)
#define VIRTIO_NET_F_HASH_REPORT 57

struct fx {
	struct vhu_duo d; /* connections "good" and "bad" */
	struct vnet_pkt_pool pool;
};

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	testlog_capture();
	if (vhu_duo_open(&f->d) < 0 || vnet_pkt_pool_init(&f->pool, 64, 0) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vhu_duo_close(&f->d);
	vnet_pkt_pool_fini(&f->pool);
	testlog_release();
	free(f);
	return 0;
}

/* Good traffic first, then the bad connection (qps queue pairs). */
static struct vhu_conn *bad_open(struct fx *f, bool negotiate, bool mem, unsigned qps)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.max_queue_pairs = qps;
	assert_int_equal(vhu_duo_bad_open(&f->d, &cfg, negotiate, mem), 0);
	return &f->d.bad;
}

/* Closes the bad connection: nothing of it stays, the good one still flows. */
static void bad_close(struct fx *f)
{
	assert_int_equal(vhu_duo_bad_close(&f->d), 0);
}

/* The bad connection was dropped for `needle`: logged once, never answered. */
static void bad_dropped(struct fx *f, int rc, const char *needle)
{
	assert_int_equal(vhu_duo_bad_dropped(&f->d, rc, needle), 0);
}

/* Closes n fds the test still holds after sending them. */
static void close_all(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * CVE-2018-1059 / CVE-2020-10725 through the handler: a TX chain whose
 * second buffer runs past the end of shared memory, or has length 0 at an
 * unmapped address, breaks that ring only: the data plane takes nothing,
 * the err eventfd fires once, the connection's RX ring keeps delivering,
 * and the front-end's reset (GET_VRING_BASE, new ring) brings it back.
 */
static void cve_2018_1059_cve_2020_10725_hostile_ring_via_handler(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 1);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	int err = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, err), 0);
	static const struct vnet_buf bad[] = {
		{VHU_GPA + VHU_MEMSZ - 16, 64}, /* starts inside, ends past the memfd */
		{VHU_GPA + VHU_MEMSZ, 0},       /* zero length, first byte past it */
		{0, 0},                         /* zero length, never mapped */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vhu_conn_traffic(c, i * 1000), 0);
		testlog_clear();
		struct vnet_buf chain[2] = {{VHU_GPA + VHU_BUF_OFF(1), 64}, bad[i]};
		static uint32_t cookie;
		assert_int_equal(vnet_vq_driver_add(&c->drv[1], chain, 2, 0, &cookie, false), 0);
		vnet_vq_driver_kick_prepare(&c->drv[1]);
		struct vnet_pkt *pkts[VNET_NET_BURST];
		assert_int_equal(vnet_vhu_rx_burst(c->dev, 0, &f->pool, pkts, VNET_NET_BURST), 0);
		assert_true(vnet_vq_is_broken(&c->dev->rings[1].vq));
		assert_non_null(strstr(c->dev->rings[1].vq.broken_reason, "not in"));
		assert_true(vhu_eventfd_fired(err));
		assert_int_equal(vnet_vhu_rx_burst(c->dev, 0, &f->pool, pkts, VNET_NET_BURST), 0);
		assert_false(vhu_eventfd_fired(err)); /* once */
		assert_int_equal(testlog_count_containing("virtqueue bad/tx0"), 1);
		assert_int_equal(f->pool.nfree, f->pool.count);
		/* the same connection's RX ring is untouched */
		uint32_t s, l;
		assert_int_equal(vhu_guest_rx_post(c, 0, 1), 1);
		assert_int_equal(vhu_device_rx(c, 0, 42, 64, NULL), 1);
		assert_int_equal(vhu_guest_rx_get(c, 0, &s, &l), 1);
		assert_int_equal(s, 42);
		assert_int_equal(vhu_duo_good(&f->d), VHU_DUO_GOOD_FRAMES);
		/* the front-end resets the ring */
		struct vnet_vhu_vring_state st = {.index = 1};
		struct vhu_reply r;
		assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &st, 8, &r), 0);
		memset(c->mem + VHU_RING_OFF(1), 0, 0x10000);
		assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0);
		assert_false(vnet_vq_is_broken(&c->dev->rings[1].vq));
	}
	assert_int_equal(vhu_conn_traffic(c, 9000), 0);
	close(err);
	bad_close(f);
}

/*
 * CVE-2019-14818 (DPDK vhost): fds attached to messages that take none were
 * never closed; a front-end repeating them exhausted the back-end's fds.
 * Every such message is refused with its fds closed; fds riding on the
 * payload bytes instead of the header are dropped by the kernel unread.
 */
static void cve_2019_14818_fds_on_messages_that_take_none(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint32_t req, size;
	} reqs[] = {
		{VHOST_USER_SET_OWNER, 0},       {VHOST_USER_GET_FEATURES, 0},
		{VHOST_USER_SET_FEATURES, 8},    {VHOST_USER_SET_PROTOCOL_FEATURES, 8},
		{VHOST_USER_GET_QUEUE_NUM, 0},   {VHOST_USER_SET_VRING_NUM, 8},
		{VHOST_USER_SET_VRING_BASE, 8},  {VHOST_USER_GET_VRING_BASE, 8},
		{VHOST_USER_SET_VRING_ADDR, 40}, {VHOST_USER_SET_VRING_ENABLE, 8},
		{VHOST_USER_GET_MAX_MEM_SLOTS, 0}, {VHOST_USER_SET_STATUS, 8},
		{VHOST_USER_GET_STATUS, 0},      {VHOST_USER_GET_INFLIGHT_FD, 24},
		{VHOST_USER_RESET_OWNER, 0},     {VHOST_USER_RESET_DEVICE, 0},
	};
	static const unsigned counts[] = {1, VHOST_USER_MAX_FDS};
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		for (unsigned k = 0; k < 2; k++) {
			struct vhu_conn *c = bad_open(f, true, true, 1);
			uint8_t payload[40] = {0};
			if (reqs[i].req == VHOST_USER_SET_FEATURES)
				memcpy(payload, &c->features, 8);
			int fds[VHOST_USER_MAX_FDS];
			fds[0] = dup(c->memfd); /* mappable: must not be mapped either */
			for (unsigned j = 1; j < counts[k]; j++)
				fds[j] = vhu_eventfd();
			int rc = vhu_conn_req(c, reqs[i].req, VHU_FN, payload, reqs[i].size, fds,
					      counts[k]);
			close_all(fds, counts[k]);
			char needle[48];
			snprintf(needle, sizeof(needle), "carries %u fds, expected 0", counts[k]);
			bad_dropped(f, rc, needle);
		}
	}

	/* fds sent with the payload bytes: the header carries none */
	struct vhu_conn *c = bad_open(f, true, true, 1);
	uint32_t hdr[3] = {VHOST_USER_SET_FEATURES, VHU_F, 8};
	int fds[3] = {vhu_eventfd(), vhu_eventfd(), dup(c->memfd)};
	assert_int_equal(vhu_peer_send_raw(c->peer, hdr, sizeof(hdr), NULL, 0), 0);
	assert_int_equal(vhu_peer_send_raw(c->peer, &c->features, 8, fds, 3), 0);
	close_all(fds, 3);
	assert_int_equal(vnet_vhu_dev_handle(c->dev), 0);
	assert_int_equal(vhu_count_fds(), f->d.fds0 + 3); /* the socket pair and the memfd */
	assert_int_equal(vhu_count_maps("vhu-bad"), 2); /* ours + the memory table */
	bad_close(f);
}

/*
 * CVE-2019-14818, second half: each SET_VRING_NUM allocated ring state
 * that was never freed. Repeating it, and restarting a ring hundreds of
 * times (NUM, BASE, ADDR, KICK, GET_VRING_BASE), changes neither the fd
 * count nor the heap, and the ring still works afterwards.
 */
static void cve_2019_14818_repeated_set_vring_num_leaks_nothing(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 1);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	struct vnet_vhu_vring_state st = {.index = 1};
	struct vhu_reply r;
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &st, 8, &r), 0);
	uint32_t base = r.payload.state.num;
	unsigned fds = vhu_count_fds();
	size_t heap = heap_in_use();
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 64u << (i % 3)),
				 0);
	assert_int_equal(vhu_count_fds(), fds);
	assert_int_equal(heap_in_use(), heap);
	for (unsigned i = 0; i < 300; i++) {
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, VHU_QSZ), 0);
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_BASE, 1, base), 0);
		assert_int_equal(vhu_conn_ring_addr(c, 1), 0);
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, c->kick[1]), 0);
		assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
		assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &st, 8, &r), 0);
		assert_int_equal(r.payload.state.num, base);
	}
	assert_int_equal(vhu_count_fds(), fds);
	assert_int_equal(heap_in_use(), heap);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_BASE, 1, base), 0);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, c->kick[1]), 0);
	assert_int_equal(vhu_conn_traffic(c, 100), 0);
	bad_close(f);
}

/*
 * CVE-2020-10722 (DPDK vhost): SET_LOG_BASE's mmap_size + mmap_offset
 * overflowed and the log was mapped short. vnet implements no dirty
 * logging: LOG_ALL and LOG_SHMFD are never offered, and SET_LOG_BASE (any
 * size/offset), SET_LOG_FD, LOG_ALL in SET_FEATURES and the log flag of
 * SET_VRING_ADDR are refused, the log fd closed and never mapped.
 */
static void cve_2020_10722_set_log_base_refused(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 1);
	uint64_t offered;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_FEATURES, &offered), 0);
	assert_int_equal(offered & BIT(VHOST_F_LOG_ALL), 0);
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &offered), 0);
	assert_int_equal(offered & BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD), 0);
	bad_close(f);

	static const struct vnet_vhu_log logs[] = {
		{.mmap_size = 0x1000, .mmap_offset = ~0ull - 0x800}, /* sum wraps */
		{.mmap_size = ~0ull, .mmap_offset = 0x1000},
		{.mmap_size = 0x1000, .mmap_offset = 0},             /* plausible */
	};
	for (unsigned i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
		c = bad_open(f, true, true, 1);
		void *lm;
		int lfd = vhu_memfd("vhu-log", 0x1000, &lm);
		int rc = vhu_conn_req(c, VHOST_USER_SET_LOG_BASE, VHU_FN, &logs[i], sizeof(logs[i]),
				      &lfd, 1);
		assert_int_equal(vhu_count_maps("vhu-log"), 1); /* ours only */
		munmap(lm, 0x1000);
		close(lfd);
		bad_dropped(f, rc, "SET_LOG_BASE is not supported");
	}

	c = bad_open(f, true, true, 1);
	int e = vhu_eventfd();
	int rc = vhu_conn_req(c, VHOST_USER_SET_LOG_FD, VHU_FN, NULL, 0, &e, 1);
	close(e);
	bad_dropped(f, rc, "SET_LOG_FD is not supported");

	c = bad_open(f, true, true, 1);
	uint64_t feat = c->features | BIT(VHOST_F_LOG_ALL);
	bad_dropped(f, vhu_conn_req(c, VHOST_USER_SET_FEATURES, VHU_FN, &feat, 8, NULL, 0),
		    "not offered");

	c = bad_open(f, true, true, 1);
	struct vnet_vhu_vring_addr a = {.index = 1, .flags = 1, .log_guest_addr = ~0ull - 7};
	bad_dropped(f, vhu_conn_req(c, VHOST_USER_SET_VRING_ADDR, VHU_FN, &a, sizeof(a), NULL, 0),
		    "dirty logging");
}

/*
 * CVE-2020-10723 (DPDK vhost): the vring index was narrowed (to 8 or 16
 * bits, or made signed) before the range check, so 0x101 reached ring 1 —
 * or an out-of-range ring. Every ring message with an index that would
 * narrow to a valid ring is refused before ring 1 is touched.
 */
static void cve_2020_10723_vring_index_narrowed_before_check(void **state)
{
	struct fx *f = *state;
	static const uint32_t reqs[] = {VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE,
					VHOST_USER_GET_VRING_BASE, VHOST_USER_SET_VRING_ENABLE,
					VHOST_USER_SET_VRING_ADDR};
	static const uint32_t idxs[] = {0x101, 0x10001, 0x80000001u, 0xffffffffu, 2};
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		for (unsigned j = 0; j < sizeof(idxs) / sizeof(idxs[0]); j++) {
			struct vhu_conn *c = bad_open(f, true, true, 1);
			assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 64), 0);
			struct vnet_vhu_vring_state s = {.index = idxs[j], .num = 1};
			struct vnet_vhu_vring_addr a = {.index = idxs[j]};
			bool addr = reqs[i] == VHOST_USER_SET_VRING_ADDR;
			int rc = vhu_conn_req(c, reqs[i], VHU_FN, addr ? (void *)&a : (void *)&s,
					      addr ? sizeof(a) : sizeof(s), NULL, 0);
			const struct vnet_vhu_ring *r1 = &c->dev->rings[1];
			assert_int_equal(r1->num, 64);
			assert_false(r1->addr_set);
			assert_false(r1->enable_requested);
			assert_int_equal(r1->base, 0);
			char needle[40];
			snprintf(needle, sizeof(needle), "vring index %u,", idxs[j]);
			bad_dropped(f, rc, needle);
		}
	}
	/* the u64 of KICK/CALL/ERR: anything above the 8-bit index and NOFD */
	static const uint32_t fdreqs[] = {VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL,
					  VHOST_USER_SET_VRING_ERR};
	static const uint64_t vals[] = {0x201, 0x100000001ull, 0x8000000000000001ull};
	for (unsigned i = 0; i < sizeof(fdreqs) / sizeof(fdreqs[0]); i++) {
		for (unsigned j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
			struct vhu_conn *c = bad_open(f, true, true, 1);
			int e = vhu_eventfd();
			int rc = vhu_conn_req(c, fdreqs[i], VHU_FN, &vals[j], 8, &e, 1);
			close(e);
			assert_int_equal(c->dev->rings[1].kick_fd, -1);
			assert_int_equal(c->dev->rings[1].call_fd, -1);
			assert_int_equal(c->dev->rings[1].err_fd, -1);
			bad_dropped(f, rc, "unknown bits");
		}
	}
}

/*
 * CVE-2020-10726 / CVE-2022-0669 (DPDK vhost): repeated GET/SET_INFLIGHT_FD
 * (and other fd-carrying messages) leaked an fd and a mapping each time.
 * Inflight tracking is refused with every fd closed; legal fd-carrying
 * messages repeated hundreds of times (memory table, ADD/REM_MEM_REG,
 * kick/call/err) replace what they replace and grow nothing.
 */
static void cve_2020_10726_cve_2022_0669_repeated_fd_messages(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < 20; i++) {
		struct vhu_conn *c = bad_open(f, true, true, 1);
		uint8_t inflight[24] = {0};
		uint64_t size = 0x1000;
		memcpy(inflight, &size, 8);
		int fds[VHOST_USER_MAX_FDS];
		bool set = i % 2 == 0;
		unsigned nfds = set ? 1 : VHOST_USER_MAX_FDS;
		fds[0] = dup(c->memfd);
		for (unsigned k = 1; k < nfds; k++)
			fds[k] = vhu_eventfd();
		int rc = vhu_conn_req(c, set ? VHOST_USER_SET_INFLIGHT_FD : VHOST_USER_GET_INFLIGHT_FD,
				      VHU_FN, inflight, 24, fds, nfds);
		close_all(fds, nfds);
		bad_dropped(f, rc, set ? "SET_INFLIGHT_FD is not supported" : "carries 8 fds");
	}

	struct vhu_conn *c = bad_open(f, false, false, 1);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	void *m2;
	int fd2 = vhu_memfd("vhu-bad2", 0x20000, &m2);
	int er0 = vhu_eventfd(); /* ring 1 holds an err fd before counting, as after */
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, er0), 0);
	close(er0);
	unsigned fds = vhu_count_fds();
	size_t heap = heap_in_use();
	for (unsigned i = 0; i < 200; i++) {
		assert_int_equal(vhu_conn_set_mem(c), 0);
		int k = vhu_eventfd(), cl = vhu_eventfd(), er = vhu_eventfd();
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, er), 0);
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_CALL, 1, cl), 0);
		assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, k), 0);
		close(k);
		close(cl);
		close(er);
		struct vnet_vhu_mem_single reg = {.region = {0x40000000, 0x10000,
							     (uintptr_t)m2 + 0x10000, 0x10000}};
		assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg), &fd2, 1), 0);
		assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	}
	assert_int_equal(vhu_count_fds(), fds);
	assert_int_equal(heap_in_use(), heap);
	assert_int_equal(vhu_count_maps("vhu-bad"), 2);  /* ours + one table */
	assert_int_equal(vhu_count_maps("vhu-bad2"), 1); /* ours only */
	assert_int_equal(c->dev->nmaps, 1);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	munmap(m2, 0x20000);
	close(fd2);
	bad_close(f);
}

/*
 * CVE-2021-3839 (DPDK vhost): SET_INFLIGHT_FD's num_queues was not checked
 * against the device's queues (out-of-bounds write). vnet refuses inflight
 * tracking, refuses any ring beyond GET_QUEUE_NUM pairs (also at the 64-pair
 * maximum), and its data plane returns nothing for a queue pair it lacks.
 */
static void cve_2021_3839_queue_count_beyond_limit(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 2);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	uint64_t qn;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &qn), 0);
	assert_int_equal(qn, 2);
	for (unsigned ring = 2; ring < 4; ring++) {
		assert_int_equal(vhu_conn_ring(c, ring, VHU_QSZ), 0);
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, ring, 1), 0);
	}
	assert_int_equal(vhu_guest_tx(c, 3, 4, 100, 7), 4);
	struct vnet_pkt *pkts[VNET_NET_BURST];
	unsigned n = vnet_vhu_rx_burst(c->dev, 1, &f->pool, pkts, VNET_NET_BURST);
	assert_int_equal(n, 4);
	vnet_pkt_free_burst(pkts, n);
	assert_int_equal(vnet_vhu_rx_burst(c->dev, 2, &f->pool, pkts, VNET_NET_BURST), 0);
	assert_int_equal(vnet_vhu_rx_burst(c->dev, 0xffff, &f->pool, pkts, VNET_NET_BURST), 0);
	pkts[0] = vnet_pkt_alloc(&f->pool);
	pkts[0]->len = 60;
	assert_int_equal(vnet_vhu_tx_burst(c->dev, 2, pkts, 1), 0);
	vnet_pkt_free(pkts[0]);
	enum vnet_vhu_ring_state st;
	unsigned tok;
	assert_null(vnet_vhu_ring_enter(c->dev, 4, &st, &tok));
	assert_int_equal(vnet_vhu_ring_kick_fd(c->dev, 4), -1);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	bad_close(f);

	/* rings of a third pair, and inflight state for 0xffff queues */
	for (uint32_t ring = 4; ring < 6; ring++) {
		c = bad_open(f, true, true, 2);
		bad_dropped(f, vhu_conn_req(c, VHOST_USER_SET_VRING_NUM, VHU_FN,
					    &(struct vnet_vhu_vring_state){ring, 64}, 8, NULL, 0),
			    "device has 4");
	}
	uint8_t inflight[24] = {0};
	uint16_t nq = 0xffff;
	memcpy(inflight + 16, &nq, 2);
	c = bad_open(f, true, true, 2);
	bad_dropped(f, vhu_conn_req(c, VHOST_USER_GET_INFLIGHT_FD, VHU_FN, inflight, 24, NULL, 0),
		    "GET_INFLIGHT_FD is not supported");

	/* the most queue pairs a back-end may have */
	c = bad_open(f, true, true, VNET_VHU_MAX_QUEUE_PAIRS);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM,
					    2 * VNET_VHU_MAX_QUEUE_PAIRS - 1, 64), 0);
	bad_dropped(f, vhu_conn_req(c, VHOST_USER_SET_VRING_NUM, VHU_FN,
				    &(struct vnet_vhu_vring_state){2 * VNET_VHU_MAX_QUEUE_PAIRS, 64},
				    8, NULL, 0),
		    "vring index 128");
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.max_queue_pairs = VNET_VHU_MAX_QUEUE_PAIRS + 1;
	struct vnet_vhu_dev *dev = calloc(1, sizeof(*dev));
	assert_int_equal(vnet_vhu_dev_init(dev, &cfg, -1), -EINVAL);
	vnet_vhu_dev_fini(dev);
	free(dev);
}

/*
 * ADD_MEM_REG beyond the slot limit: after GET_MAX_MEM_SLOTS (32) regions
 * the next one is refused, its fd closed, the connection dropped and every
 * one of its 32 mappings unmapped.
 */
static void add_mem_reg_beyond_slot_limit(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, true, false, 1);
	uint64_t slots;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_MAX_MEM_SLOTS, &slots), 0);
	assert_int_equal(slots, VNET_VHU_MAX_MEM_SLOTS);
	struct vnet_vhu_mem_single main_reg = {
		.region = {VHU_GPA, VHU_MEMSZ, (uintptr_t)c->mem, 0}};
	assert_int_equal(
		vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &main_reg, sizeof(main_reg), &c->memfd, 1), 0);
	for (unsigned r = 0; r < 2; r++) {
		assert_int_equal(vhu_conn_ring(c, r, VHU_QSZ), 0);
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, r, 1), 0);
	}
	void *m;
	int fd = vhu_memfd("vhu-slots", 0x1000, &m);
	for (unsigned i = 1; i < slots; i++) {
		struct vnet_vhu_mem_single r = {.region = {0x100000000ull + i * 0x10000ull, 0x1000,
							   0x200000000ull + i * 0x10000ull, 0}};
		assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &fd, 1), 0);
	}
	assert_int_equal(c->dev->nmaps, slots);
	assert_int_equal(vhu_count_maps("vhu-slots"), slots); /* 31 + ours */
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	struct vnet_vhu_mem_single r = {.region = {0x900000000ull, 0x1000, 0xa00000000ull, 0}};
	int rc = vhu_conn_req(c, VHOST_USER_ADD_MEM_REG, VHU_FN, &r, sizeof(r), &fd, 1);
	munmap(m, 0x1000);
	close(fd);
	bad_dropped(f, rc, "beyond the 32 memory slots");
	assert_int_equal(vhu_count_maps("vhu-slots"), 0);
}

/*
 * REM_MEM_REG with a stray fd (older front-ends send one): tolerated and
 * closed unused, hundreds of times, without a leak; removing a region that
 * is not there is a clean error; two fds are a violation.
 */
static void rem_mem_reg_with_stray_fd(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 1);
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	void *m2;
	int fd2 = vhu_memfd("vhu-rem", 0x20000, &m2);
	struct vnet_vhu_mem_single reg = {
		.region = {0x40000000, 0x10000, (uintptr_t)m2 + 0x10000, 0x10000}};
	unsigned fds = vhu_count_fds();
	size_t heap = heap_in_use();
	for (unsigned i = 0; i < 200; i++) {
		assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg), &fd2, 1), 0);
		assert_int_equal(vhu_count_maps("vhu-rem"), 2);
		int stray = i % 2 ? vhu_eventfd() : dup(fd2);
		assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), &stray, 1),
				 0);
		close(stray);
	}
	assert_int_equal(vhu_count_fds(), fds);
	assert_int_equal(heap_in_use(), heap);
	assert_int_equal(vhu_count_maps("vhu-rem"), 1);
	assert_int_equal(c->dev->nmaps, 1);
	int stray = vhu_eventfd();
	assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), &stray, 1), 1);
	close(stray);
	assert_int_equal(vhu_count_fds(), fds);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	int two[2] = {vhu_eventfd(), dup(fd2)};
	int rc = vhu_conn_req(c, VHOST_USER_REM_MEM_REG, VHU_FN, &reg, sizeof(reg), two, 2);
	close_all(two, 2);
	munmap(m2, 0x20000);
	close(fd2);
	bad_dropped(f, rc, "carries 2 fds, expected 0..1");
}

/* Guest TX of a `ghdr`-byte header (0xff) in 1-byte pieces, then 60 frame bytes. */
static void tx_oversized_header(struct vhu_conn *c, unsigned ghdr)
{
	uint64_t gpa = VHU_GPA + VHU_BUF_OFF(1);
	uint8_t *b = c->mem + VHU_BUF_OFF(1);
	memset(b, 0xff, ghdr);
	for (unsigned i = 0; i < 60; i++)
		b[ghdr + i] = (uint8_t)(i * 3);
	struct vnet_buf bufs[64];
	for (unsigned i = 0; i < ghdr; i++)
		bufs[i] = (struct vnet_buf){gpa + i, 1};
	bufs[ghdr] = (struct vnet_buf){gpa + ghdr, 60};
	static uint32_t cookie;
	assert_int_equal(vnet_vq_driver_add(&c->drv[1], bufs, ghdr + 1, 0, &cookie, false), 0);
	vnet_vq_driver_kick_prepare(&c->drv[1]);
}

/*
 * CVE-2023-6693 (QEMU virtio-net): with HASH_REPORT + VERSION_1 +
 * MRG_RXBUF the guest's header was larger than the buffer it was copied
 * into. vnet offers neither feature (SET_FEATURES with them is refused);
 * for every header size a front-end can negotiate (10 or 12 bytes) a guest
 * believing in a 20-byte header gets exactly the negotiated size taken off
 * its TX frames (in 1-byte pieces), and RX writes exactly header + frame.
 */
static void cve_2023_6693_guest_header_larger_than_expected(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = bad_open(f, false, false, 1);
	assert_int_equal(vhu_conn_set(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	uint64_t offered;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_FEATURES, &offered), 0);
	assert_int_equal(offered & (BIT(VIRTIO_NET_F_HASH_REPORT) | BIT(VIRTIO_NET_F_MRG_RXBUF)), 0);
	uint64_t want = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
			BIT(VIRTIO_NET_F_HASH_REPORT);
	testlog_clear();
	bad_dropped(f, vhu_conn_req(c, VHOST_USER_SET_FEATURES, VHU_F, &want, 8, NULL, 0),
		    "not offered");

	static const uint64_t sets[] = {ALL_F, ALL_F & ~BIT(VIRTIO_F_VERSION_1)};
	for (unsigned i = 0; i < 2; i++) {
		c = bad_open(f, false, false, 1);
		assert_int_equal(vhu_conn_up(c, sets[i], P_ALL), 0);
		unsigned hdr = c->dev->hdr_len;
		assert_int_equal(hdr, vnet_net_hdr_len(c->features));
		assert_true(hdr <= sizeof(struct virtio_net_hdr_mrg_rxbuf));
		tx_oversized_header(c, 20);
		struct vnet_pkt *p;
		assert_int_equal(vnet_vhu_rx_burst(c->dev, 0, &f->pool, &p, 1), 1);
		assert_int_equal(p->len, 20 + 60 - hdr);
		for (unsigned k = 0; k < 20 - hdr; k++)
			assert_int_equal(p->data[k], 0xff);
		for (unsigned k = 0; k < 60; k++)
			assert_int_equal(p->data[20 - hdr + k], (uint8_t)(k * 3));
		assert_int_equal(vhu_guest_reap(c, 1), 1);

		/* RX into a buffer pre-filled with 0xee */
		uint8_t *b = c->mem + VHU_BUF_OFF(2);
		memset(b, 0xee, VHU_BUF_SIZE);
		struct vnet_buf rb = {VHU_GPA + VHU_BUF_OFF(2), VHU_BUF_SIZE};
		static uint32_t cookie;
		assert_int_equal(vnet_vq_driver_add(&c->drv[0], &rb, 0, 1, &cookie, false), 0);
		vnet_vq_driver_kick_prepare(&c->drv[0]);
		p->len = 60;
		assert_int_equal(vnet_vhu_tx_burst(c->dev, 0, &p, 1), 1);
		vnet_pkt_free(p);
		uint32_t written;
		assert_ptr_equal(vnet_vq_driver_get_used(&c->drv[0], &written), &cookie);
		assert_int_equal(written, hdr + 60);
		struct virtio_net_hdr_mrg_rxbuf h = {.num_buffers = 1};
		assert_memory_equal(b, &h, hdr);
		for (unsigned k = hdr + 60; k < VHU_BUF_SIZE; k++)
			assert_int_equal(b[k], 0xee);
		assert_int_equal(f->pool.nfree, f->pool.count);
		bad_close(f);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(cve_2018_1059_cve_2020_10725_hostile_ring_via_handler),
		T(cve_2019_14818_fds_on_messages_that_take_none),
		T(cve_2019_14818_repeated_set_vring_num_leaks_nothing),
		T(cve_2020_10722_set_log_base_refused),
		T(cve_2020_10723_vring_index_narrowed_before_check),
		T(cve_2020_10726_cve_2022_0669_repeated_fd_messages),
		T(cve_2021_3839_queue_count_beyond_limit),
		T(add_mem_reg_beyond_slot_limit),
		T(rem_mem_reg_with_stray_fd),
		T(cve_2023_6693_guest_header_larger_than_expected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
