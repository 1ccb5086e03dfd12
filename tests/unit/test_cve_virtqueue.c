/*
 * test_cve_virtqueue.c — one regression test per known device-side ring bug
 * class (issue 7), each named after its CVE. A hostile driver (tests/common
 * rawring) attacks queue "t/hostile" while a second queue "t/healthy" in the
 * same guest memory carries frames. Every attack is bracketed by a count of
 * the healthy queue's frames (all of them must arrive intact before and
 * after), checks that only the hostile queue stopped, with one log line
 * naming the reason, and that the fd count did not move. The clang build
 * runs this under ASan/UBSan, and testmem's PROT_NONE guard page after each
 * region makes any read past a region's end fault at once.
 *
 * Guest memory (GPA):
 *   A  0x100000 .. 0x200000  RW   hostile ring at A, its buffers at 0x140000
 *   B  0x200000 .. 0x400000  RW   (GPA-adjacent to A) indirect tables at
 *                                 0x250000, the healthy ring and its buffers
 *      0x400000 .. 0x500000  unmapped
 *   D  0x500000 .. 0x510000  RW   RX buffers (moved by testmem_remap)
 *   E  0x510000 .. 0x520000  read-only (GPA-adjacent to D)
 *
 * Single-threaded, except the TOCTOU and write-after-return tests, which run
 * one extra thread playing the driver while this one is the device.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testmem.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/virtqueue.h"

#define RING   0x100000ull
#define BUF    0x140000ull
#define A_END  0x200000ull
#define IND    0x250000ull
#define HRING  0x300000ull
#define HBUF   0x310000ull
#define B_END  0x400000ull
#define GAP    0x450000ull
#define RXB    0x500000ull
#define RXB_END 0x510000ull
#define RO_END 0x520000ull
#define D_INDEX 2u /* testmem region index of D */

#define QS 16
#define NIOV 64
#define HDR 12u
#define HEALTHY_FRAMES 8u
#define RXBUF 0x800u

#define F_V1       VNET_BIT(VIRTIO_F_VERSION_1)
#define F_INDIRECT VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)

#define R 0
#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT

struct fx {
	struct testmem m;
	struct rawring r, h; /* hostile, healthy */
	struct vnet_vq vq, hq;
	unsigned tok;
	bool locked;
	unsigned fds0;
	uint32_t seq;
	struct vnet_vq_chain ch;
	struct iovec iov[NIOV];
	struct vnet_pkt_pool pool;
	struct vnet_net_stats st;
};

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void lock(struct fx *f)
{
	vnet_guestmem_read_begin(&f->m.gm, &f->tok);
	f->locked = true;
}

static void unlock(struct fx *f)
{
	vnet_guestmem_read_end(&f->m.gm, f->tok);
	f->locked = false;
}

/* (Re)attaches the hostile queue on a zeroed ring; clears the log. */
static void hostile_attach(struct fx *f, uint64_t features)
{
	vnet_vq_detach(&f->vq);
	rawring_init_at(&f->r, &f->m, QS, RING);
	struct vnet_vq_config cfg = rawring_config(&f->r, features, "t/hostile");
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	testlog_clear();
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	testmem_begin(&f->m);
	testmem_add(&f->m, RING, A_END - RING, 0);
	testmem_add(&f->m, A_END, B_END - A_END, 0);
	testmem_add(&f->m, RXB, RXB_END - RXB, 0);
	testmem_add(&f->m, RXB_END, RO_END - RXB_END, VNET_MEM_READ);
	testmem_publish(&f->m);
	testlog_capture();
	lock(f);
	rawring_init_at(&f->h, &f->m, QS, HRING);
	struct vnet_vq_config cfg = rawring_config(&f->h, F_V1, "t/healthy");
	if (vnet_vq_attach(&f->hq, &f->m.gm, &cfg) != 0 ||
	    vnet_pkt_pool_init(&f->pool, 16, 0) != 0)
		return -1;
	hostile_attach(f, F_V1 | F_INDIRECT);
	f->fds0 = vhu_count_fds();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vnet_vq_detach(&f->vq);
	vnet_vq_detach(&f->hq);
	if (f->locked)
		unlock(f);
	vnet_pkt_pool_fini(&f->pool);
	testlog_release();
	testmem_fini(&f->m);
	free(f);
	return 0;
}

static void fill(uint8_t *p, size_t len, uint32_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 13 + i);
}

static bool filled(const uint8_t *p, size_t len, uint32_t seq)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seq * 13 + i))
			return false;
	return true;
}

/*
 * The well-behaved side: HEALTHY_FRAMES frames made available on the
 * healthy queue, popped, compared byte for byte and returned. Returns how
 * many arrived intact and came back through the used ring.
 */
static unsigned healthy_frames(struct fx *f)
{
	struct rawring *r = &f->h;
	uint16_t used0 = rawring_used_idx(r);
	uint32_t seq0 = f->seq;
	for (unsigned i = 0; i < HEALTHY_FRAMES; i++) {
		uint16_t d = (uint16_t)(rawring_avail_idx(r) % QS);
		uint64_t gpa = HBUF + d * 64u;
		fill(testmem_host(&f->m, gpa), 64, f->seq++);
		rawring_set_desc(r, d, gpa, 64, R, 0);
		rawring_publish(r, d);
	}
	struct vnet_vq_chain chains[HEALTHY_FRAMES];
	struct iovec iov[HEALTHY_FRAMES];
	unsigned n = vnet_vq_pop_burst(&f->hq, chains, HEALTHY_FRAMES, iov, 1);
	unsigned intact = 0;
	for (unsigned i = 0; i < n; i++) {
		if (chains[i].n_out == 1 && chains[i].out_len == 64 &&
		    filled(chains[i].iov[0].iov_base, 64, seq0 + i))
			intact++;
		vnet_vq_push(&f->hq, chains[i].head, 0);
	}
	vnet_vq_flush(&f->hq);
	if (rawring_used_idx(r) != (uint16_t)(used0 + n) || vnet_vq_is_broken(&f->hq))
		return 0;
	return intact;
}

/* Before an attack: the healthy queue flows; fresh hostile queue. */
static void attack_begin(struct fx *f, uint64_t features)
{
	assert_int_equal(healthy_frames(f), HEALTHY_FRAMES);
	hostile_attach(f, features);
}

/* After it: the healthy queue still flows, no fd appeared or vanished. */
static void attack_end(struct fx *f)
{
	assert_int_equal(healthy_frames(f), HEALTHY_FRAMES);
	assert_false(vnet_vq_is_broken(&f->hq));
	assert_int_equal(vhu_count_fds(), f->fds0);
}

static int pop(struct fx *f)
{
	memset(&f->ch, 0xa5, sizeof(f->ch));
	return vnet_vq_pop(&f->vq, &f->ch, f->iov, NIOV);
}

static void desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	rawring_set_desc(&f->r, i, addr, len, flags, next);
}

static void ind(struct fx *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		uint16_t flags, uint16_t next)
{
	testmem_put_desc(&f->m, table + i * 16u, addr, len, flags, next);
}

/* The hostile queue refuses the published chain: broken with `needle` in
 * its reason, logged once, stays broken, returns nothing to the driver. */
static void expect_broken(struct fx *f, const char *needle)
{
	uint16_t used = rawring_used_idx(&f->r);
	int rc = pop(f);
	if (rc >= 0 || !strstr(f->vq.broken_reason, needle))
		print_error("pop %d, reason \"%s\", expected \"%s\"\n", rc, f->vq.broken_reason,
			    needle);
	assert_true(rc < 0);
	assert_true(vnet_vq_is_broken(&f->vq));
	assert_non_null(strstr(f->vq.broken_reason, needle));
	assert_true(pop(f) < 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), used);
	assert_int_equal(testlog_count_containing("virtqueue t/hostile"), 1);
	assert_int_equal(testlog_count_containing("t/healthy"), 0);
}

/* True when [p, p+len) lies inside one mapped testmem region. */
static bool in_guest(const struct fx *f, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (unsigned i = 0; i < f->m.n; i++) {
		const uint8_t *h = f->m.maps[i].host;
		if (b >= h && len <= f->m.maps[i].size && b - h <= (ptrdiff_t)(f->m.maps[i].size - len))
			return true;
	}
	return false;
}

/* A popped chain: every piece inside guest memory, lengths add up. */
static void assert_chain_sane(const struct fx *f, const struct vnet_vq_chain *c)
{
	uint64_t sum = 0;
	assert_true((unsigned)c->n_out + c->n_in <= NIOV);
	for (unsigned i = 0; i < (unsigned)c->n_out + c->n_in; i++) {
		assert_true(in_guest(f, c->iov[i].iov_base, c->iov[i].iov_len));
		sum += c->iov[i].iov_len;
	}
	assert_int_equal(sum, (uint64_t)c->out_len + c->in_len);
}

/* ================================================================== */

/*
 * CVE-2018-1059 (DPDK vhost): only a buffer's first byte was translated, so
 * a descriptor starting in guest memory could run past a region's end into
 * host memory; an indirect table straddling a region end was read whole.
 * Every byte of a buffer or table must be mapped, with the access asked for.
 */
static void cve_2018_1059_translation_of_start_only(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		const char *needle;
	} bufs[] = {
		{B_END - 0x100, 0x200, R, "is not in guest memory"},      /* into the gap */
		{B_END - 1, 2, W, "is not in writable guest memory"},      /* one byte over */
		{~0ull - 0xf, 0x20, R, "is not in guest memory"},         /* addr + len wraps */
		{A_END - 0x10, 0x200100, R, "is not in guest memory"},    /* A, all of B, gap */
		{RXB_END - 0x10, 0x20, W, "is not in writable guest memory"}, /* RW into RO */
	};
	for (unsigned i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
		attack_begin(f, F_V1 | F_INDIRECT);
		desc(f, 0, BUF, 16, R | N, 1);
		desc(f, 1, bufs[i].addr, bufs[i].len, bufs[i].flags, 0);
		rawring_publish(&f->r, 0);
		expect_broken(f, bufs[i].needle);
		attack_end(f);
	}

	/* an indirect table whose last two entries lie past the end of B */
	attack_begin(f, F_V1 | F_INDIRECT);
	uint64_t t = B_END - 32;
	ind(f, t, 0, BUF, 8, R | N, 1);
	ind(f, t, 1, BUF + 16, 8, R | N, 2);
	desc(f, 0, t, 64, I, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f, "indirect table");
	attack_end(f);

	/* a whole table in memory, one of its buffers running off the end */
	attack_begin(f, F_V1 | F_INDIRECT);
	ind(f, IND, 0, BUF, 8, R | N, 1);
	ind(f, IND, 1, B_END - 4, 8, W, 0);
	desc(f, 0, IND, 32, I, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f, "indirect descriptor 1: buffer");
	attack_end(f);

	/* Legal: a buffer and a table crossing from A into the adjacent B are
	 * served piece by piece, every piece inside its region. */
	attack_begin(f, F_V1 | F_INDIRECT);
	desc(f, 0, A_END - 0x100, 0x300, W, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.n_in, 2);
	assert_chain_sane(f, &f->ch);
	vnet_vq_push(&f->vq, 0, 0);
	t = A_END - 32;
	for (uint16_t k = 0; k < 4; k++)
		ind(f, t, k, BUF + 16u * k, 8, R | (k < 3 ? N : 0), (uint16_t)(k + 1));
	desc(f, 1, t, 64, I, 0);
	rawring_publish(&f->r, 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.n_out, 4);
	assert_chain_sane(f, &f->ch);
	vnet_vq_push(&f->vq, 1, 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 2);
	assert_false(vnet_vq_is_broken(&f->vq));
	attack_end(f);
}

/*
 * CVE-2020-10725 (DPDK vhost): a zero-length descriptor skipped the address
 * check, and the unchecked address was used later. Length 0 is legal only
 * at a mapped address, in the ring and in indirect tables alike.
 */
static void cve_2020_10725_zero_length_descriptor_bad_address(void **state)
{
	struct fx *f = *state;
	static const uint64_t addrs[] = {GAP, 0, ~0ull, B_END /* first byte past B */};
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		attack_begin(f, F_V1 | F_INDIRECT);
		desc(f, 0, BUF, 8, R | N, 1);
		desc(f, 1, addrs[i], 0, W, 0);
		rawring_publish(&f->r, 0);
		expect_broken(f, "is not in");
		attack_end(f);

		attack_begin(f, F_V1 | F_INDIRECT);
		ind(f, IND, 0, BUF, 8, R | N, 1);
		ind(f, IND, 1, addrs[i], 0, R, 0);
		desc(f, 0, IND, 32, I, 0);
		rawring_publish(&f->r, 0);
		expect_broken(f, "indirect descriptor 1: buffer");
		attack_end(f);
	}
	/* a zero-length indirect table anywhere */
	attack_begin(f, F_V1 | F_INDIRECT);
	desc(f, 0, GAP, 0, I, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f, "indirect table length 0");
	attack_end(f);

	/* legal: zero length at a mapped address adds no piece */
	attack_begin(f, F_V1 | F_INDIRECT);
	desc(f, 0, BUF, 0, R | N, 1);
	desc(f, 1, BUF + 64, 40, R, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.n_out, 1);
	assert_int_equal(f->ch.out_len, 40);
	assert_chain_sane(f, &f->ch);
	attack_end(f);
}

/*
 * CVE-2016-5403 (QEMU): virtqueue_pop allocated a request per available
 * entry without bound, so a driver re-publishing heads it never got back
 * exhausted host memory. The device holds at most queue-size chains; the
 * next one breaks the queue, and nothing grows.
 */
static void cve_2016_5403_unbounded_in_flight_requests(void **state)
{
	struct fx *f = *state;
	attack_begin(f, F_V1);
	for (uint16_t d = 0; d < QS; d++)
		desc(f, d, BUF + d * 16u, 16, R, 0);
	const uint64_t *map = f->vq.inflight_map;
	unsigned taken = 0;
	/* the driver keeps publishing without waiting for a single used entry */
	for (unsigned i = 0; i < 1000; i++) {
		rawring_publish(&f->r, (uint16_t)(i % QS));
		int rc = pop(f);
		if (rc < 0)
			break;
		assert_int_equal(rc, 1);
		assert_chain_sane(f, &f->ch);
		taken++;
	}
	assert_int_equal(taken, QS);
	assert_int_equal(f->vq.inflight, QS);
	assert_ptr_equal(f->vq.inflight_map, map); /* bookkeeping never reallocated */
	assert_non_null(strstr(f->vq.broken_reason, "chains in flight"));
	expect_broken(f, "chains in flight");
	attack_end(f);

	/* a head made available again while the device still holds it */
	attack_begin(f, F_V1);
	for (uint16_t d = 0; d < 4; d++) {
		desc(f, d, BUF + d * 16u, 16, R, 0);
		rawring_publish(&f->r, d);
		assert_int_equal(pop(f), 1);
	}
	rawring_publish(&f->r, 2);
	expect_broken(f, "made available again while in flight");
	attack_end(f);

	/* an avail index more than a queue's worth ahead */
	attack_begin(f, F_V1);
	rawring_set_avail_idx(&f->r, 1000);
	expect_broken(f, "avail index jumped");
	attack_end(f);
}

/* ---- write after return ---- */

/* Posts RX chain `d` of the hostile queue: one writable RXBUF buffer in D. */
static void post_rx(struct fx *f, uint16_t d)
{
	desc(f, d, RXB + d * RXBUF, RXBUF, W, 0);
	rawring_publish(&f->r, d);
}

/* Delivers one frame of `len` bytes carrying `seq`; 1 delivered, 0 no buffer. */
static unsigned deliver(struct fx *f, uint32_t seq, uint32_t len)
{
	struct vnet_pkt *p = vnet_pkt_alloc(&f->pool);
	assert_non_null(p);
	p->len = len;
	fill(p->data, len, seq);
	bool notify;
	unsigned n = vnet_net_enqueue(&f->vq, HDR, &p, 1, &f->st, &notify);
	vnet_pkt_free(p);
	return n;
}

/* The RX buffer of chain d (current mapping) holds a complete frame seq. */
static bool rx_complete(struct fx *f, uint16_t d, uint32_t seq, uint32_t len)
{
	const uint8_t *b = testmem_host(&f->m, RXB + d * RXBUF);
	struct virtio_net_hdr_mrg_rxbuf h;
	memcpy(&h, b, sizeof(h));
	return h.num_buffers == 1 && h.hdr.flags == 0 && h.hdr.gso_type == 0 &&
	       filled(b + HDR, len, seq);
}

#define HELD 8u /* buffers the racing driver keeps before posting them again */

struct rx_guest {
	struct fx *f;
	unsigned want;
	atomic_uint seen;
	atomic_uint bad;
	atomic_bool done;
};

static bool canary_intact(struct fx *f, uint16_t d)
{
	const uint8_t *b = testmem_host(&f->m, RXB + d * RXBUF);
	for (unsigned i = 0; i < RXBUF; i++)
		if (b[i] != 0x5a)
			return false;
	return true;
}

/*
 * The driver on another CPU: the moment a used entry becomes visible the
 * buffer must hold the whole frame and its header (nothing written after
 * publication). The driver then overwrites the buffer, as a guest reusing
 * its memory would, keeps it for HELD more frames and checks that nobody
 * wrote to it meanwhile before posting it again.
 */
static void *rx_guest_main(void *arg)
{
	struct rx_guest *g = arg;
	struct fx *f = g->f;
	uint16_t last = 0, held[HELD];
	unsigned nheld = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&g->seen) < g->want && elapsed_ms(&t0) < 10000) {
		if (rawring_used_idx(&f->r) == last)
			continue;
		struct vring_used_elem e = rawring_used_elem(&f->r, last);
		uint32_t seq = atomic_load(&g->seen);
		if (e.id >= QS || e.len != HDR + 100 || !rx_complete(f, (uint16_t)e.id, seq, 100)) {
			atomic_fetch_add(&g->bad, 1);
			break;
		}
		memset(testmem_host(&f->m, RXB + e.id * RXBUF), 0x5a, RXBUF);
		if (nheld == HELD) {
			uint16_t oldest = held[seq % HELD];
			if (!canary_intact(f, oldest))
				atomic_fetch_add(&g->bad, 1);
			post_rx(f, oldest);
			nheld--;
		}
		held[seq % HELD] = (uint16_t)e.id;
		nheld++;
		last++;
		atomic_fetch_add(&g->seen, 1);
	}
	for (unsigned i = 0; i < nheld; i++)
		if (!canary_intact(f, held[i]))
			atomic_fetch_add(&g->bad, 1);
	atomic_store(&g->done, true);
	return NULL;
}

/*
 * CVE-2021-3748 (QEMU virtio-net): num_buffers was written into a guest
 * buffer after the element had been returned (and unmapped), a
 * use-after-free. The device must be done with a buffer when its used
 * entry becomes visible: later work never writes to it, not even after the
 * memory behind it moved (the old mapping is PROT_NONE: a stale write
 * faults), and a racing driver always sees complete frames.
 */
static void cve_2021_3748_no_write_after_return(void **state)
{
	struct fx *f = *state;
	attack_begin(f, F_V1);
	for (uint16_t d = 0; d < 8; d++)
		post_rx(f, d);
	assert_int_equal(deliver(f, 0, 100), 1);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 0);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, HDR + 100);
	assert_true(rx_complete(f, 0, 0, 100));
	/* the guest takes buffer 0 back and reuses it */
	memset(testmem_host(&f->m, RXB), 0x5a, RXBUF);
	for (uint32_t s = 1; s < 4; s++)
		assert_int_equal(deliver(f, s, 100), 1);
	vnet_vq_enable_notify(&f->vq);
	vnet_vq_disable_notify(&f->vq);
	vnet_vq_flush(&f->vq);

	/* the memory behind every buffer moves; the old mapping faults */
	unlock(f);
	testmem_remap(&f->m, D_INDEX, true);
	testmem_publish(&f->m);
	lock(f);
	for (uint32_t s = 4; s < 8; s++)
		assert_int_equal(deliver(f, s, 100), 1);
	assert_int_equal(rawring_used_idx(&f->r), 8);
	for (uint16_t d = 1; d < 8; d++) {
		assert_int_equal(rawring_used_elem(&f->r, d).id, d);
		assert_true(rx_complete(f, d, d, 100));
	}
	assert_true(canary_intact(f, 0));
	assert_false(vnet_vq_is_broken(&f->vq));
	attack_end(f);

	/* a driver on another thread checks every frame as it becomes visible */
	attack_begin(f, F_V1);
	for (uint16_t d = 0; d < QS; d++)
		post_rx(f, d);
	struct rx_guest g = {.f = f, .want = 4096};
	atomic_init(&g.seen, 0);
	atomic_init(&g.bad, 0);
	atomic_init(&g.done, false);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, rx_guest_main, &g), 0);
	unsigned sent = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < g.want && !atomic_load(&g.done) && elapsed_ms(&t0) < 10000) {
		if (deliver(f, sent, 100) == 1)
			sent++;
		else
			sched_yield(); /* no buffer yet: the driver is behind */
	}
	pthread_join(t, NULL);
	assert_int_equal(sent, g.want);
	assert_int_equal(atomic_load(&g.seen), g.want);
	assert_int_equal(atomic_load(&g.bad), 0);
	assert_false(vnet_vq_is_broken(&f->vq));
	attack_end(f);
}

/* ---- TOCTOU ---- */

struct flipper {
	struct fx *f;
	atomic_bool stop;
	atomic_ulong flips;
};

static void store_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		       uint16_t next)
{
	__atomic_store_n(&d->addr, addr, __ATOMIC_RELAXED);
	__atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELAXED);
	__atomic_store_n(&d->next, next, __ATOMIC_RELAXED);
}

/*
 * The driver rewrites single fields of descriptors 0/1 and of the indirect
 * table entries 0/1 between legal values and hostile ones, as fast as it
 * can, while the device walks them.
 */
static void *flipper_main(void *arg)
{
	struct flipper *fl = arg;
	struct fx *f = fl->f;
	struct vring_desc *ring = f->r.desc;
	struct vring_desc *table = testmem_host(&f->m, IND);
	static const uint64_t addrs[] = {BUF, BUF + 0x100, GAP, B_END - 8, ~0ull - 8, 0, IND};
	static const uint32_t lens[] = {64, 0, 8, 0x1000, 0x10000000, 0xffffffffu, 32};
	static const uint16_t flags[] = {R | N, W, R, I, I | N, W | N, R | N | I};
	static const uint16_t nexts[] = {1, 0, 0xffff, QS, 1};
	uint32_t x = 2463534242u;
	while (!atomic_load_explicit(&fl->stop, memory_order_relaxed)) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		struct vring_desc *d = (x & 1 ? table : ring) + ((x >> 1) & 1);
		unsigned v = x >> 8;
		switch ((x >> 2) & 7) {
		case 0:
			__atomic_store_n(&d->addr, addrs[v % 7], __ATOMIC_RELAXED);
			break;
		case 1:
			__atomic_store_n(&d->len, lens[v % 7], __ATOMIC_RELAXED);
			break;
		case 2:
			__atomic_store_n(&d->flags, flags[v % 7], __ATOMIC_RELAXED);
			break;
		case 3:
			__atomic_store_n(&d->next, nexts[v % 5], __ATOMIC_RELAXED);
			break;
		default: /* back to a legal chain, so pops keep succeeding too */
			store_desc(&ring[0], v & 1 ? IND : BUF, v & 1 ? 32 : 64, v & 1 ? I : R | N, 1);
			store_desc(&ring[1], BUF + 0x100, 64, W, 0);
			store_desc(&table[0], BUF, 64, R | N, 1);
			store_desc(&table[1], BUF + 0x100, 64, W, 0);
			break;
		}
		atomic_fetch_add_explicit(&fl->flips, 1, memory_order_relaxed);
	}
	return NULL;
}

/*
 * CVE-2020-14375 class (DPDK vhost-crypto and others): fields were checked
 * in guest memory and then read again for use, so a driver changing them in
 * between defeated the check. The device reads each descriptor once into a
 * copy: whatever the driver does concurrently, every chain handed out lies
 * inside guest memory and its lengths add up, or the queue is broken.
 */
static void tocttou_cve_2020_14375_descriptor_fields_change(void **state)
{
	struct fx *f = *state;
	attack_begin(f, F_V1 | F_INDIRECT);
	struct flipper fl = {.f = f};
	atomic_init(&fl.stop, false);
	atomic_init(&fl.flips, 0);
	store_desc(&f->r.desc[0], BUF, 64, R | N, 1);
	store_desc(&f->r.desc[1], BUF + 0x100, 64, W, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, flipper_main, &fl), 0);
	unsigned long served = 0, broke = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* at least 300 ms and 100000 rewrites (the driver thread may start
	 * late on a loaded machine), at most 5 s */
	for (long ms = 0; (ms < 300 || atomic_load(&fl.flips) < 100000) && ms < 5000;
	     ms = elapsed_ms(&t0)) {
		rawring_publish(&f->r, 0);
		int rc = pop(f);
		if (rc == 1) {
			assert_chain_sane(f, &f->ch);
			vnet_vq_push(&f->vq, f->ch.head, 0);
			vnet_vq_flush(&f->vq);
			assert_false(vnet_vq_is_broken(&f->vq));
			served++;
		} else {
			assert_true(rc < 0);
			assert_true(vnet_vq_is_broken(&f->vq));
			assert_true(strlen(f->vq.broken_reason) > 0);
			broke++;
			/* the owner resets the queue where the driver is now (the ring
			 * is left alone: the driver thread owns its contents) */
			vnet_vq_detach(&f->vq);
			struct vnet_vq_config cfg = rawring_config(&f->r, F_V1 | F_INDIRECT,
								   "t/hostile");
			assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
			vnet_vq_set_last_avail(&f->vq, rawring_avail_idx(&f->r));
		}
	}
	atomic_store(&fl.stop, true);
	pthread_join(t, NULL);
	unsigned long flips = atomic_load(&fl.flips);
	print_message("# TOCTOU: %lu chains served, %lu refused, %lu driver rewrites\n", served,
		      broke, flips);
	assert_true(flips >= 100000);
	assert_true(served > 0 && broke > 0);
	testlog_clear();
	attack_end(f);
}

/* ---- virtio-net header ---- */

struct piece {
	uint64_t gpa;
	uint32_t len;
};

/* Writes `n` readable pieces as ring descriptors 0..n-1 (or as entries of
 * an indirect table at IND) and publishes the chain. */
static void publish_pieces(struct fx *f, const struct piece *p, unsigned n, bool indirect)
{
	for (uint16_t k = 0; k < n; k++) {
		uint16_t fl = (unsigned)k + 1 < n ? N : 0;
		if (indirect)
			ind(f, IND, k, p[k].gpa, p[k].len, R | fl, (uint16_t)(k + 1));
		else
			desc(f, k, p[k].gpa, p[k].len, R | fl, (uint16_t)(k + 1));
	}
	if (indirect)
		desc(f, 0, IND, n * 16u, I, 0);
	rawring_publish(&f->r, 0);
}

/* Scatters `bytes` over the pieces' guest memory. */
static void put_pieces(struct fx *f, const struct piece *p, unsigned n, const uint8_t *bytes)
{
	for (unsigned k = 0; k < n; k++) {
		testmem_put(&f->m, p[k].gpa, bytes, p[k].len);
		bytes += p[k].len;
	}
}

static unsigned dequeue(struct fx *f, struct vnet_pkt **pkts)
{
	bool notify;
	return vnet_net_dequeue(&f->vq, HDR, &f->pool, pkts, VNET_NET_BURST, false, &f->st,
				&notify);
}

/*
 * CVE-2022-2132 (DPDK vhost): the virtio-net header was assumed to sit in at
 * most two descriptors; a header scattered over more, or a chain shorter
 * than the header, was read past its buffers. Headers in any number of
 * pieces (ring or indirect) are gathered exactly; a chain shorter than the
 * header or than an Ethernet header after it is dropped, counted and
 * returned without a read past its last byte (which sits right before a
 * guard page).
 */
static void cve_2022_2132_header_split_or_chain_shorter_than_header(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr_mrg_rxbuf h = {.hdr = {.hdr_len = 0x1234, .gso_size = 0x5678,
						     .csum_start = 0x9abc, .csum_offset = 0xdef0},
					     .num_buffers = 0x1111};
	uint8_t bytes[HDR + 60];
	memcpy(bytes, &h, HDR);
	fill(bytes + HDR, 60, 77);
	struct piece p[16];
	unsigned n = 0;
	for (unsigned k = 0; k < HDR - 1; k++)
		p[n++] = (struct piece){BUF + 0x40 * k, 1};
	p[n++] = (struct piece){A_END - 1, 1}; /* last header byte: end of A */
	p[n++] = (struct piece){BUF + 0x1000, 20};
	p[n++] = (struct piece){BUF + 0x2000, 20};
	p[n++] = (struct piece){A_END - 0x100, 20};

	for (int indirect = 0; indirect < 2; indirect++) {
		attack_begin(f, F_V1 | F_INDIRECT);
		put_pieces(f, p, n, bytes);
		publish_pieces(f, p, n, indirect);
		struct vnet_pkt *pkts[VNET_NET_BURST];
		assert_int_equal(dequeue(f, pkts), 1);
		assert_int_equal(pkts[0]->len, 60);
		assert_true(filled(pkts[0]->data, 60, 77));
		assert_int_equal(pkts[0]->vhdr.hdr_len, 0x1234);
		assert_int_equal(pkts[0]->vhdr.csum_offset, 0xdef0);
		vnet_pkt_free(pkts[0]);
		assert_int_equal(rawring_used_idx(&f->r), 1);
		attack_end(f);
	}

	/* Short chains: 11 header bytes in 11 pieces, the last one at the end
	 * of A; a whole header and nothing else; a header and 13 frame bytes. */
	static const unsigned cut[] = {HDR - 1, HDR, HDR + 13};
	for (unsigned c = 0; c < sizeof(cut) / sizeof(cut[0]); c++) {
		attack_begin(f, F_V1 | F_INDIRECT);
		struct piece s[16];
		unsigned m = 0, left = cut[c];
		for (unsigned k = 0; left > 1 && m < 11; k++, left--)
			s[m++] = (struct piece){BUF + 0x40 * k, 1};
		s[m++] = (struct piece){A_END - left, left};
		put_pieces(f, s, m, bytes);
		publish_pieces(f, s, m, c == 1);
		memset(&f->st, 0, sizeof(f->st));
		struct vnet_pkt *pkts[VNET_NET_BURST];
		assert_int_equal(dequeue(f, pkts), 0);
		assert_int_equal(f->st.err_bad_chain, 1);
		assert_int_equal(rawring_used_idx(&f->r), 1); /* returned to the driver */
		assert_false(vnet_vq_is_broken(&f->vq));
		assert_int_equal(f->pool.nfree, f->pool.count);
		attack_end(f);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(cve_2018_1059_translation_of_start_only),
		T(cve_2020_10725_zero_length_descriptor_bad_address),
		T(cve_2016_5403_unbounded_in_flight_requests),
		T(cve_2021_3748_no_write_after_return),
		T(tocttou_cve_2020_14375_descriptor_fields_change),
		T(cve_2022_2132_header_split_or_chain_shorter_than_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
