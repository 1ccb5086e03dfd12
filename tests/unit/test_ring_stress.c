/*
 * test_ring_stress.c — randomised driver ↔ device exchange over one split
 * virtqueue: struct vnet_vq_driver (driver side) and struct vnet_vq (device
 * side) share one multi-region test guest memory in this process.
 *
 * Single-threaded tests: a seeded PRNG interleaves driver add / kick_prepare /
 * reap / enable_cb / disable_cb with device pop / pop_burst / complete (write
 * payload + push) / flush / enable_notify / disable_notify, with random chain
 * shapes (1..4 readable + 0..4 writable buffers, 1..512 bytes, some crossing
 * a boundary between two guest memory regions), indirect or not. Checked:
 *  - every chain added comes back exactly once, in a state-machine order
 *    (added → published → popped → pushed → flushed → reaped);
 *  - the device sees exactly the chain shape and readable bytes the driver
 *    wrote (pattern derived from the chain's sequence number), in order;
 *  - the driver reads back exactly the bytes the device wrote, with the used
 *    length the device pushed;
 *  - no notification is lost: each side is modelled as awake or asleep. The
 *    device only works while awake and falls asleep only when
 *    vnet_vq_enable_notify() returned false; it is woken only when
 *    vnet_vq_driver_kick_prepare() returned true. Likewise the driver's reap
 *    side with vnet_vq_driver_enable_cb() and vnet_vq_flush(). Periodically
 *    and at the end both sides are drained: pending work with both asleep is
 *    a lost notification;
 *  - the device never holds more than `size` chains in flight.
 * Indices wrap 65535 → 0 many times on the small queues.
 *
 * Threaded test: a driver thread and a device thread exchange a bounded
 * number of chains with the same payload checks, sleeping on a doorbell flag
 * only after enable_cb()/enable_notify() said so; a lost notification shows
 * up as a wait that exceeds a deadline.
 *
 * Environment: VNET_STRESS_SEED (base seed; configuration k uses seed+k),
 * VNET_STRESS_OPS (ops per configuration; default 1e6, 4e5 under ASan;
 * queues of <= 16 entries run 8x as many so their indices wrap several
 * times), VNET_STRESS_CHAINS (threaded tests, default 200000).
 * A failure message names the configuration, seed and op number; rerun
 * with the same VNET_STRESS_SEED/VNET_STRESS_OPS to reproduce it.
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
#include "vnet/net.h"
#include "vnet/virtio_ring.h"
#include "vnet/virtqueue.h"
#include "vnet/virtqueue_driver.h"

#if defined(__SANITIZE_ADDRESS__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif
#ifdef STRESS_SANITIZED
#define DEFAULT_OPS 400000u
#else
#define DEFAULT_OPS 1000000u
#endif
#define DEFAULT_CHAINS 200000u
#define DEFAULT_SEED 0x5eed0000ull
/* Queues of <= 16 entries run this many times the ops, so that their 16-bit
 * indices wrap 65535 -> 0 a few times (a chain costs ~10 ops there). */
#define SMALL_QUEUE_OPS_FACTOR 8

#define F_INDIRECT VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVENT    VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_V1       VNET_BIT(VIRTIO_F_VERSION_1)

#define RING_GPA 0x100000ull
#define DATA_GPA 0x400000ull
#define MAX_OUT 4
#define MAX_IN 4
#define MAX_BUFS (MAX_OUT + MAX_IN)
#define MAX_LEN 512u
#define SLOT_BYTES 5120u       /* per in-flight chain: room for 8 x 512 + gaps */
#define IOV_PER_CHAIN 16       /* 8 buffers, each in at most 2 regions */
#define INDIRECT_MAX MAX_BUFS
#define BURST_MAX 32

/* ---- PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rn(unsigned n) /* 0 .. n-1 */
{
	return (unsigned)(rnd() % n);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	return strtoull(v, NULL, 0);
}

/* ---- payload patterns ---- */

static uint8_t out_byte(uint32_t seq, uint32_t i)
{
	return (uint8_t)(((seq * 0x9e3779b1u) >> 24) + i * 31u + (i >> 7));
}

static uint8_t in_byte(uint32_t seq, uint32_t i)
{
	return (uint8_t)(((seq * 0x85ebca77u) >> 24) ^ (i * 17u + 0x5au));
}

/* ---- fixture ---- */

enum rec_state { R_FREE, R_ADDED, R_AVAIL, R_POPPED, R_PUSHED, R_USED };

struct rec {
	unsigned slot;
	enum rec_state state;
	uint32_t seq;
	unsigned n_out, n_in;
	struct vnet_buf bufs[MAX_BUFS];
	uint32_t out_len, in_len, written;
	bool indirect;
};

struct held {
	struct rec *r;
	struct vnet_vq_chain c;
	struct iovec iov[IOV_PER_CHAIN];
};

struct stress_cfg {
	const char *name;
	uint16_t size;
	uint64_t features;
	unsigned indirect_pct; /* share of chains added as indirect */
	uint64_t seed;
};

struct stress {
	const struct stress_cfg *cfg;
	struct testmem m;
	unsigned tok;
	struct vnet_vq_driver drv;
	struct vnet_vq vq;
	uint16_t size;
	bool event_idx;

	unsigned nslots;
	struct rec *recs;
	bool *slot_straddles;
	unsigned *free_slots;
	unsigned nfree;

	/* chains in add order not yet popped (the device pops in this order) */
	struct rec **fifo;
	unsigned fifo_head, fifo_len;
	unsigned unpublished; /* added since the last kick_prepare */

	struct held *held; /* popped, not yet pushed */
	unsigned nheld;
	struct rec **pushed; /* pushed, not yet flushed */
	unsigned npushed;

	bool dev_awake, drv_awake;
	uint32_t next_seq;
	unsigned outstanding; /* added, not yet reaped */

	/* stats */
	uint64_t added, reaped, kicks, irqs, wakeups_dev, wakeups_drv, spanning, indirect,
		enable_notify_races, enable_cb_races, drains;
	uint8_t scratch[MAX_BUFS * MAX_LEN];
	struct vnet_vq_chain bchains[BURST_MAX];
	struct iovec biov[BURST_MAX * IOV_PER_CHAIN];
};

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Region boundaries of the data area, which are not page multiples. */
static uint64_t data_region_size(uint16_t size)
{
	return size <= 16 ? 2999 : 40009;
}

/* Copies between a host buffer and guest memory, region by region. */
static void guest_copy(struct testmem *m, uint64_t gpa, void *buf, size_t len, bool to_guest)
{
	uint8_t *b = buf;
	while (len) {
		const struct testmem_map *map = NULL;
		for (unsigned i = 0; i < m->n; i++)
			if (gpa >= m->maps[i].gpa && gpa - m->maps[i].gpa < m->maps[i].size)
				map = &m->maps[i];
		assert_non_null(map);
		uint64_t off = gpa - map->gpa;
		size_t n = map->size - off < len ? (size_t)(map->size - off) : len;
		if (to_guest)
			memcpy((uint8_t *)map->host + off, b, n);
		else
			memcpy(b, (uint8_t *)map->host + off, n);
		b += n;
		gpa += n;
		len -= n;
	}
}

static bool crosses_boundary(struct stress *s, uint64_t gpa, uint64_t len)
{
	uint64_t rs = data_region_size(s->size);
	return gpa >= DATA_GPA && (gpa - DATA_GPA) / rs != (gpa + len - 1 - DATA_GPA) / rs;
}

static void stress_init(struct stress *s, const struct stress_cfg *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->size = cfg->size;
	s->event_idx = cfg->features & F_EVENT;
	s->nslots = cfg->size;

	size_t ring_bytes = align_up(vnet_vq_driver_ring_bytes(cfg->size), 4096);
	size_t ind_bytes = (size_t)cfg->size * INDIRECT_MAX * sizeof(struct vring_desc);
	testmem_begin(&s->m);
	void *ring_host = testmem_add(&s->m, RING_GPA, ring_bytes + ind_bytes, 0);
	uint64_t data_bytes = (uint64_t)s->nslots * SLOT_BYTES;
	uint64_t rs = data_region_size(cfg->size);
	for (uint64_t off = 0; off < data_bytes; off += rs)
		testmem_add(&s->m, DATA_GPA + off, data_bytes - off < rs ? data_bytes - off : rs, 0);
	testmem_publish(&s->m);
	testlog_capture();

	struct vnet_vq_driver_config dc = {
		.size = cfg->size,
		.ring_host = ring_host,
		.ring_gpa = RING_GPA,
		.indirect_host = (uint8_t *)ring_host + ring_bytes,
		.indirect_gpa = RING_GPA + ring_bytes,
		.indirect_max = INDIRECT_MAX,
		.features = cfg->features,
		.name = "stress-drv",
	};
	assert_int_equal(vnet_vq_driver_init(&s->drv, &dc), 0);

	/* The device keeps one read bracket for the whole run: the table never
	 * changes here, so the iovecs of held chains stay valid. */
	vnet_guestmem_read_begin(&s->m.gm, &s->tok);
	struct vnet_vq_config vc = {
		.size = cfg->size,
		.desc_addr = s->drv.desc_gpa,
		.avail_addr = s->drv.avail_gpa,
		.used_addr = s->drv.used_gpa,
		.ring_as = VNET_AS_GPA,
		.features = cfg->features,
		.name = "stress-dev",
	};
	assert_int_equal(vnet_vq_attach(&s->vq, &s->m.gm, &vc), 0);

	s->recs = calloc(s->nslots, sizeof(*s->recs));
	s->slot_straddles = calloc(s->nslots, sizeof(*s->slot_straddles));
	s->free_slots = calloc(s->nslots, sizeof(*s->free_slots));
	s->fifo = calloc(s->nslots, sizeof(*s->fifo));
	s->held = calloc(s->nslots, sizeof(*s->held));
	s->pushed = calloc(s->nslots, sizeof(*s->pushed));
	assert_true(s->recs && s->slot_straddles && s->free_slots && s->fifo && s->held &&
		    s->pushed);
	for (unsigned i = 0; i < s->nslots; i++) {
		s->recs[i].slot = i;
		s->slot_straddles[i] =
			crosses_boundary(s, DATA_GPA + (uint64_t)i * SLOT_BYTES, SLOT_BYTES);
		s->free_slots[s->nfree++] = i;
	}

	/* Both sides start asleep with notifications enabled. */
	assert_false(vnet_vq_enable_notify(&s->vq));
	assert_false(vnet_vq_driver_enable_cb(&s->drv));
}

static void stress_fini(struct stress *s)
{
	vnet_vq_detach(&s->vq);
	vnet_guestmem_read_end(&s->m.gm, s->tok);
	vnet_vq_driver_fini(&s->drv);
	testlog_release();
	testmem_fini(&s->m);
	free(s->recs);
	free(s->slot_straddles);
	free(s->free_slots);
	free(s->fifo);
	free(s->held);
	free(s->pushed);
}

#define STRESS_FAIL(s, op, ...)                                                            \
	do {                                                                               \
		print_error("[%s seed %llu op %llu] ", (s)->cfg->name,                       \
			    (unsigned long long)(s)->cfg->seed, (unsigned long long)(op)); \
		fail_msg(__VA_ARGS__);                                                     \
	} while (0)

/* ---- driver side ---- */

static struct rec *alloc_rec(struct stress *s)
{
	if (!s->nfree)
		return NULL;
	/* Prefer a slot that straddles a region boundary now and then. */
	unsigned pick = rn(s->nfree);
	if (rn(4) == 0) {
		for (unsigned k = 0; k < s->nfree; k++) {
			unsigned j = (pick + k) % s->nfree;
			if (s->slot_straddles[s->free_slots[j]]) {
				pick = j;
				break;
			}
		}
	}
	unsigned slot = s->free_slots[pick];
	s->free_slots[pick] = s->free_slots[--s->nfree];
	return &s->recs[slot];
}

static void free_rec(struct stress *s, struct rec *r)
{
	r->state = R_FREE;
	s->free_slots[s->nfree++] = r->slot;
}

static uint32_t rand_len(void)
{
	return rn(8) == 0 ? 1 + rn(MAX_LEN) : 1 + rn(64);
}

/* Adds one random chain; false when the ring is full. */
static bool drv_add(struct stress *s, uint64_t op)
{
	struct rec *r = alloc_rec(s);
	if (!r)
		return false;
	bool ind = s->drv.indirect_max && rn(100) < s->cfg->indirect_pct;
	unsigned n_out = 1 + rn(MAX_OUT), n_in = rn(MAX_IN + 1);
	/* A chain, indirect or not, is never longer than the queue (virtio 1.2
	 * §2.7.5.3.1), nor than an indirect table. */
	unsigned limit = ind && INDIRECT_MAX < s->size ? INDIRECT_MAX : s->size;
	while (n_out + n_in > limit) {
		if (n_in)
			n_in--;
		else
			n_out--;
	}
	r->seq = s->next_seq++;
	r->n_out = n_out;
	r->n_in = n_in;
	r->indirect = ind;
	r->out_len = r->in_len = r->written = 0;

	/* Buffers laid out through the slot with random gaps. */
	uint64_t base = DATA_GPA + (uint64_t)r->slot * SLOT_BYTES;
	uint64_t cur = rn(64);
	uint32_t off = 0;
	for (unsigned i = 0; i < n_out + n_in; i++) {
		uint32_t len = rand_len();
		cur += rn(16);
		assert_true(cur + len <= SLOT_BYTES);
		r->bufs[i] = (struct vnet_buf){.addr = base + cur, .len = len};
		if (crosses_boundary(s, base + cur, len))
			s->spanning++;
		if (i < n_out) {
			for (uint32_t k = 0; k < len; k++)
				s->scratch[k] = out_byte(r->seq, off + k);
			off += len;
			r->out_len += len;
		} else {
			memset(s->scratch, 0xee, len); /* the device must overwrite this */
			r->in_len += len;
		}
		guest_copy(&s->m, base + cur, s->scratch, len, true);
		cur += len;
	}

	int ret = vnet_vq_driver_add(&s->drv, r->bufs, n_out, n_in, r, ind);
	if (ret == -ENOSPC) {
		free_rec(s, r);
		s->next_seq--;
		return false;
	}
	if (ret != 0)
		STRESS_FAIL(s, op, "vnet_vq_driver_add(n_out %u, n_in %u, indirect %d) = %d", n_out,
			    n_in, ind, ret);
	r->state = R_ADDED;
	s->indirect += ind;
	s->fifo[(s->fifo_head + s->fifo_len++) % s->nslots] = r;
	s->unpublished++;
	s->outstanding++;
	s->added++;
	return true;
}

static void drv_kick(struct stress *s)
{
	bool kick = vnet_vq_driver_kick_prepare(&s->drv);
	/* Everything added is now published. */
	for (unsigned i = s->fifo_len - s->unpublished; i < s->fifo_len; i++) {
		struct rec *r = s->fifo[(s->fifo_head + i) % s->nslots];
		assert_int_equal(r->state, R_ADDED);
		r->state = R_AVAIL;
	}
	s->unpublished = 0;
	if (kick) {
		s->kicks++;
		if (!s->dev_awake) {
			s->dev_awake = true;
			s->wakeups_dev++;
		}
	}
}

static bool drv_reap_one(struct stress *s, uint64_t op)
{
	uint32_t written = 0xdeadbeef;
	struct rec *r = vnet_vq_driver_get_used(&s->drv, &written);
	if (!r)
		return false;
	if (r < s->recs || r >= s->recs + s->nslots)
		STRESS_FAIL(s, op, "get_used returned a foreign cookie %p", (void *)r);
	if (r->state != R_USED)
		STRESS_FAIL(s, op, "chain seq %u reaped in state %d (expected flushed)", r->seq,
			    r->state);
	if (written != r->written)
		STRESS_FAIL(s, op, "chain seq %u: used length %u, device pushed %u", r->seq, written,
			    r->written);
	/* Read back what the device wrote. */
	uint32_t got = 0;
	for (unsigned i = r->n_out; i < r->n_out + r->n_in && got < written; i++) {
		uint32_t n = r->bufs[i].len < written - got ? r->bufs[i].len : written - got;
		guest_copy(&s->m, r->bufs[i].addr, s->scratch + got, n, false);
		got += n;
	}
	for (uint32_t k = 0; k < written; k++)
		if (s->scratch[k] != in_byte(r->seq, k))
			STRESS_FAIL(s, op, "chain seq %u: driver reads 0x%02x at byte %u of %u, "
				    "device wrote 0x%02x", r->seq, s->scratch[k], k, written,
				    in_byte(r->seq, k));
	free_rec(s, r);
	s->outstanding--;
	s->reaped++;
	return true;
}

/* ---- device side ---- */

static void dev_check_chain(struct stress *s, const struct vnet_vq_chain *c, uint64_t op)
{
	if (!s->fifo_len)
		STRESS_FAIL(s, op, "device popped head %u but nothing was published", c->head);
	struct rec *r = s->fifo[s->fifo_head];
	if (r->state != R_AVAIL)
		STRESS_FAIL(s, op, "device popped chain seq %u in state %d (not published)", r->seq,
			    r->state);
	s->fifo_head = (s->fifo_head + 1) % s->nslots;
	s->fifo_len--;
	if (c->out_len != r->out_len || c->in_len != r->in_len)
		STRESS_FAIL(s, op, "chain seq %u: device sees out %u in %u, driver added out %u in %u",
			    r->seq, c->out_len, c->in_len, r->out_len, r->in_len);
	if ((unsigned)c->n_out + c->n_in > IOV_PER_CHAIN || c->n_out < 1 ||
	    c->n_out > 2 * r->n_out || c->n_in > 2 * r->n_in)
		STRESS_FAIL(s, op, "chain seq %u: %u+%u pieces for %u+%u buffers", r->seq, c->n_out,
			    c->n_in, r->n_out, r->n_in);
	uint64_t sum = 0;
	uint32_t pos = 0;
	for (unsigned i = 0; i < c->n_out; i++) {
		const uint8_t *p = c->iov[i].iov_base;
		for (size_t k = 0; k < c->iov[i].iov_len; k++, pos++)
			if (p[k] != out_byte(r->seq, pos))
				STRESS_FAIL(s, op, "chain seq %u: device reads 0x%02x at byte %u, "
					    "driver wrote 0x%02x", r->seq, p[k], pos,
					    out_byte(r->seq, pos));
		sum += c->iov[i].iov_len;
	}
	if (sum != r->out_len)
		STRESS_FAIL(s, op, "chain seq %u: readable pieces sum to %llu, not %u", r->seq,
			    (unsigned long long)sum, r->out_len);
	sum = 0;
	for (unsigned i = c->n_out; i < (unsigned)c->n_out + c->n_in; i++)
		sum += c->iov[i].iov_len;
	if (sum != r->in_len)
		STRESS_FAIL(s, op, "chain seq %u: writable pieces sum to %llu, not %u", r->seq,
			    (unsigned long long)sum, r->in_len);

	r->state = R_POPPED;
	if (s->nheld >= s->size)
		STRESS_FAIL(s, op, "device holds more than %u chains", s->size);
	struct held *h = &s->held[s->nheld++];
	h->r = r;
	h->c = *c;
	memcpy(h->iov, c->iov, ((size_t)c->n_out + c->n_in) * sizeof(struct iovec));
	h->c.iov = h->iov;
}

static bool dev_pop(struct stress *s, uint64_t op)
{
	struct vnet_vq_chain c;
	struct iovec iov[IOV_PER_CHAIN];
	int ret = vnet_vq_pop(&s->vq, &c, iov, IOV_PER_CHAIN);
	if (ret < 0)
		STRESS_FAIL(s, op, "vnet_vq_pop = %d (%s)", ret, s->vq.broken_reason);
	if (ret == 0) {
		/* Nothing pending means the driver published nothing we missed. */
		for (unsigned i = 0; i < s->fifo_len; i++)
			if (s->fifo[(s->fifo_head + i) % s->nslots]->state == R_AVAIL)
				STRESS_FAIL(s, op, "pop found nothing, chain seq %u is published",
					    s->fifo[(s->fifo_head + i) % s->nslots]->seq);
		return false;
	}
	dev_check_chain(s, &c, op);
	return true;
}

static unsigned dev_pop_burst(struct stress *s, unsigned n, uint64_t op)
{
	unsigned got = vnet_vq_pop_burst(&s->vq, s->bchains, n, s->biov, IOV_PER_CHAIN);
	if (got > n || s->vq.broken)
		STRESS_FAIL(s, op, "pop_burst(%u) = %u, broken: %s", n, got, s->vq.broken_reason);
	for (unsigned i = 0; i < got; i++) {
		if (s->bchains[i].iov != s->biov + (size_t)i * IOV_PER_CHAIN)
			STRESS_FAIL(s, op, "pop_burst chain %u has the wrong iov array", i);
		dev_check_chain(s, &s->bchains[i], op);
	}
	return got;
}

/* Writes a random amount of payload into held chain i and pushes it. */
static void dev_complete(struct stress *s, unsigned i)
{
	struct held *h = &s->held[i];
	struct rec *r = h->r;
	uint32_t written;
	switch (rn(4)) {
	case 0: written = 0; break;
	case 1: written = r->in_len; break;
	default: written = r->in_len ? rn(r->in_len + 1) : 0; break;
	}
	uint32_t pos = 0;
	for (unsigned k = h->c.n_out; k < (unsigned)h->c.n_out + h->c.n_in && pos < written; k++) {
		uint8_t *p = h->iov[k].iov_base;
		for (size_t b = 0; b < h->iov[k].iov_len && pos < written; b++, pos++)
			p[b] = in_byte(r->seq, pos);
	}
	r->written = written;
	vnet_vq_push(&s->vq, h->c.head, written);
	r->state = R_PUSHED;
	s->pushed[s->npushed++] = r;
	*h = s->held[--s->nheld];
}

static void dev_flush(struct stress *s, uint64_t op)
{
	bool irq = vnet_vq_flush(&s->vq);
	if (s->vq.broken)
		STRESS_FAIL(s, op, "queue broken: %s", s->vq.broken_reason);
	for (unsigned i = 0; i < s->npushed; i++)
		s->pushed[i]->state = R_USED;
	s->npushed = 0;
	if (irq) {
		s->irqs++;
		if (!s->drv_awake) {
			s->drv_awake = true;
			s->wakeups_drv++;
		}
	}
}

static void dev_try_sleep(struct stress *s)
{
	if (s->nheld || s->npushed)
		return;
	if (vnet_vq_enable_notify(&s->vq))
		s->enable_notify_races++;
	else
		s->dev_awake = false;
}

static void drv_try_sleep(struct stress *s)
{
	if (vnet_vq_driver_enable_cb(&s->drv))
		s->enable_cb_races++;
	else
		s->drv_awake = false;
}

/* Lets both sides run to completion, then checks nothing was left behind. */
static void drain(struct stress *s, uint64_t op)
{
	s->drains++;
	if (s->unpublished)
		drv_kick(s);
	for (unsigned iter = 0; s->dev_awake || s->drv_awake; iter++) {
		if (iter > 100000)
			STRESS_FAIL(s, op, "drain does not converge");
		if (s->dev_awake) {
			while (dev_pop_burst(s, BURST_MAX, op))
				;
			while (s->nheld)
				dev_complete(s, s->nheld - 1);
			dev_flush(s, op);
			dev_try_sleep(s);
		}
		if (s->drv_awake) {
			while (drv_reap_one(s, op))
				;
			drv_try_sleep(s);
		}
	}
	if (s->outstanding) {
		unsigned st[6] = {0};
		for (unsigned i = 0; i < s->nslots; i++)
			st[s->recs[i].state]++;
		STRESS_FAIL(s, op,
			    "LOST NOTIFICATION: both sides asleep with %u chains outstanding "
			    "(published %u, popped %u, pushed %u, flushed-unreaped %u)",
			    s->outstanding, st[R_AVAIL], st[R_POPPED], st[R_PUSHED], st[R_USED]);
	}
	assert_int_equal(vnet_vq_driver_num_free(&s->drv), s->size);
	assert_int_equal(s->vq.inflight, 0);
	assert_false(vnet_vq_has_avail(&s->vq));
	assert_false(vnet_vq_driver_has_used(&s->drv));
}

static int stress_setup(void **state)
{
	const struct stress_cfg *cfg = *state;
	struct stress *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	stress_init(s, cfg);
	*state = s;
	return 0;
}

static int stress_teardown(void **state)
{
	struct stress *s = *state;
	stress_fini(s);
	free(s);
	return 0;
}

static void run_stress(void **state)
{
	struct stress *s = *state;
	const struct stress_cfg *cfg = s->cfg;
	uint64_t nops = env_u64("VNET_STRESS_OPS", DEFAULT_OPS);
	if (cfg->size <= 16)
		nops *= SMALL_QUEUE_OPS_FACTOR;
	rng_state = cfg->seed;
	print_message("# %s: seed %llu (VNET_STRESS_SEED=%llu), %llu ops, queue size %u, "
		      "event_idx %d, indirect %u%%\n",
		      cfg->name, (unsigned long long)cfg->seed,
		      (unsigned long long)env_u64("VNET_STRESS_SEED", DEFAULT_SEED),
		      (unsigned long long)nops,
		      cfg->size, s->event_idx, cfg->indirect_pct);

	uint64_t next_drain = 1000 + rn(5000);
	for (uint64_t op = 0; op < nops; op++) {
		if (op == next_drain) {
			drain(s, op);
			next_drain = op + 1000 + rn(20000);
		}
		unsigned dice = rn(100);
		/* A sleeping side does nothing: roll again (driver adds and kicks
		 * are always possible: the application produces data). */
		while ((dice >= 32 && dice < 70 && !s->dev_awake) || (dice >= 70 && !s->drv_awake))
			dice = rn(100);
		if (dice < 22) {
			unsigned n = 1 + rn(rn(4) == 0 ? 16 : 3);
			for (unsigned k = 0; k < n && drv_add(s, op); k++)
				;
		} else if (dice < 32) {
			drv_kick(s);
		} else if (dice < 70) {
			unsigned d = rn(100);
			if (d < 15)
				dev_pop(s, op);
			else if (d < 35)
				dev_pop_burst(s, 1 + rn(rn(2) ? BURST_MAX : 4), op);
			else if (d < 60) {
				for (unsigned n = 1 + rn(8); n && s->nheld; n--)
					dev_complete(s, rn(s->nheld));
			} else if (d < 80)
				dev_flush(s, op);
			else if (d < 95)
				dev_try_sleep(s);
			else
				vnet_vq_disable_notify(&s->vq);
		} else {
			unsigned d = rn(100);
			if (d < 60) {
				for (unsigned n = 1 + rn(8); n && drv_reap_one(s, op); n--)
					;
			} else if (d < 90) {
				drv_try_sleep(s);
			} else {
				vnet_vq_driver_disable_cb(&s->drv);
			}
		}
		if (s->vq.inflight > s->size || s->nheld > s->size)
			STRESS_FAIL(s, op, "device has %u chains in flight (queue size %u)",
				    s->vq.inflight, s->size);
	}
	drain(s, nops);
	assert_int_equal(s->added, s->reaped);
	print_message("# %s: %llu chains (%llu indirect, %llu buffers across regions), "
		      "index wraps %llu, %llu drains, kicks %llu, interrupts %llu, wakeups "
		      "dev/drv %llu/%llu, enable races dev/drv %llu/%llu\n",
		      cfg->name, (unsigned long long)s->added, (unsigned long long)s->indirect,
		      (unsigned long long)s->spanning, (unsigned long long)(s->added >> 16),
		      (unsigned long long)s->drains, (unsigned long long)s->kicks,
		      (unsigned long long)s->irqs, (unsigned long long)s->wakeups_dev,
		      (unsigned long long)s->wakeups_drv,
		      (unsigned long long)s->enable_notify_races,
		      (unsigned long long)s->enable_cb_races);
	if (cfg->size <= 16 && nops >= (uint64_t)DEFAULT_OPS * SMALL_QUEUE_OPS_FACTOR)
		assert_true(s->added > 65536); /* the 16-bit indices wrapped */
	if (nops >= 100000)
		assert_true(s->spanning > 0);
	assert_int_equal(testlog_count(), 0); /* nothing broke, nothing complained */
}

static uint64_t seed_for(unsigned k)
{
	uint64_t base = env_u64("VNET_STRESS_SEED", DEFAULT_SEED);
	return base + k;
}

static struct stress_cfg stress_cfgs[] = {
	{"size256", 256, F_V1, 0, 1},
	{"size256-event_idx", 256, F_V1 | F_EVENT, 0, 2},
	{"size256-indirect", 256, F_V1 | F_INDIRECT, 50, 3},
	{"size256-event_idx-indirect", 256, F_V1 | F_EVENT | F_INDIRECT, 50, 4},
	{"size8-event_idx-indirect-wrap", 8, F_V1 | F_EVENT | F_INDIRECT, 30, 5},
	{"size8-wrap", 8, F_V1, 0, 6},
	{"size2-event_idx-indirect", 2, F_V1 | F_EVENT | F_INDIRECT, 70, 7},
};

/* ---- two threads ---- */

struct tstress {
	struct testmem m;
	struct vnet_vq_driver drv;
	struct vnet_vq vq;
	uint16_t size;
	uint32_t total;
	_Atomic int dev_bell, drv_bell; /* the "interrupt lines" */
	atomic_bool stop;
	atomic_bool failed;
	char why[256];
	pthread_mutex_t why_lock;
	uint64_t kicks, irqs, dev_sleeps, drv_sleeps;
};

/* Per-chain record for the threaded test: slot i's buffers at a fixed GPA. */
struct tchain {
	uint32_t seq;
	uint32_t out_len, in_len, written_by_dev;
	unsigned n_out, n_in;
	struct vnet_buf bufs[4];
};

#define T_SLOT 2048u
#define T_WAIT_NS 10000000000ll /* 10 s without a notification = lost */

static void tfail(struct tstress *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tfail(struct tstress *t, const char *fmt, ...)
{
	pthread_mutex_lock(&t->why_lock);
	if (!atomic_load(&t->failed)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->why, sizeof(t->why), fmt, ap);
		va_end(ap);
		atomic_store(&t->failed, true);
	}
	pthread_mutex_unlock(&t->why_lock);
	atomic_store(&t->stop, true);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Sleeps until the bell rings; false on deadline or stop. */
static bool wait_bell(struct tstress *t, _Atomic int *bell, const char *who)
{
	int64_t deadline = now_ns() + T_WAIT_NS;
	for (unsigned spins = 0;; spins++) {
		if (atomic_exchange(bell, 0))
			return true;
		if (atomic_load(&t->stop))
			return false;
		if ((spins & 63) == 63) {
			if (now_ns() > deadline) {
				tfail(t, "LOST NOTIFICATION: %s waited 10 s for a notification", who);
				return false;
			}
			sched_yield();
		}
	}
}

static void *tdevice(void *arg)
{
	struct tstress *t = arg;
	unsigned tok;
	struct vnet_vq_chain ch[BURST_MAX];
	struct iovec *iov = calloc(BURST_MAX * 8, sizeof(*iov));
	uint64_t lcg = 12345;
	while (!atomic_load(&t->stop)) {
		vnet_guestmem_read_begin(&t->m.gm, &tok);
		unsigned n = vnet_vq_pop_burst(&t->vq, ch, BURST_MAX, iov, 8);
		for (unsigned i = 0; i < n; i++) {
			/* The descriptor's first buffer holds the chain's sequence
			 * number; the rest is the pattern. */
			uint32_t seq = 0, pos = 0;
			if (ch[i].n_out < 1 || ch[i].iov[0].iov_len < 4) {
				tfail(t, "device: chain head %u has no sequence header", ch[i].head);
				break;
			}
			memcpy(&seq, ch[i].iov[0].iov_base, 4);
			for (unsigned k = 0; k < ch[i].n_out; k++) {
				const uint8_t *p = ch[i].iov[k].iov_base;
				for (size_t b = 0; b < ch[i].iov[k].iov_len; b++, pos++)
					if (pos >= 4 && p[b] != out_byte(seq, pos))
						tfail(t, "device: chain seq %u byte %u is 0x%02x, "
						      "expected 0x%02x", seq, pos, p[b],
						      out_byte(seq, pos));
			}
			lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t written = ch[i].in_len ? (uint32_t)((lcg >> 33) % (ch[i].in_len + 1)) : 0;
			pos = 0;
			for (unsigned k = ch[i].n_out; k < (unsigned)ch[i].n_out + ch[i].n_in; k++) {
				uint8_t *p = ch[i].iov[k].iov_base;
				for (size_t b = 0; b < ch[i].iov[k].iov_len && pos < written; b++, pos++)
					p[b] = in_byte(seq, pos);
			}
			vnet_vq_push(&t->vq, ch[i].head, written);
		}
		if (n && vnet_vq_flush(&t->vq)) {
			t->irqs++;
			atomic_store(&t->drv_bell, 1);
		}
		if (t->vq.broken)
			tfail(t, "device queue broken: %s", t->vq.broken_reason);
		bool sleep = n == 0 && !vnet_vq_enable_notify(&t->vq);
		vnet_guestmem_read_end(&t->m.gm, tok);
		if (sleep) {
			t->dev_sleeps++;
			if (!wait_bell(t, &t->dev_bell, "device"))
				break;
			vnet_guestmem_read_begin(&t->m.gm, &tok);
			vnet_vq_disable_notify(&t->vq);
			vnet_guestmem_read_end(&t->m.gm, tok);
		}
	}
	free(iov);
	return NULL;
}

static void *tdriver(void *arg)
{
	struct tstress *t = arg;
	struct tchain *tc = calloc(t->size, sizeof(*tc));
	unsigned *free_slots = calloc(t->size, sizeof(*free_slots));
	unsigned nfree = t->size;
	uint8_t buf[T_SLOT];
	for (unsigned i = 0; i < t->size; i++)
		free_slots[i] = i;
	uint32_t sent = 0, done = 0;
	uint64_t lcg = 777;
	while (done < t->total && !atomic_load(&t->stop)) {
		bool progress = false;
		while (sent < t->total && nfree) {
			unsigned slot = free_slots[nfree - 1];
			struct tchain *c = &tc[slot];
			lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
			c->seq = sent;
			c->n_out = 1 + (unsigned)((lcg >> 40) % 2);
			c->n_in = (unsigned)((lcg >> 44) % 3);
			uint64_t gpa = DATA_GPA + (uint64_t)slot * T_SLOT;
			uint32_t pos = 0;
			c->out_len = c->in_len = 0;
			for (unsigned k = 0; k < c->n_out + c->n_in; k++) {
				uint32_t len = (k == 0 ? 4 : 0) + 1 + (uint32_t)((lcg >> (8 + 5 * k)) % 300);
				c->bufs[k] = (struct vnet_buf){gpa, len};
				if (k < c->n_out) {
					for (uint32_t b = 0; b < len; b++, pos++)
						buf[b] = out_byte(c->seq, pos);
					if (k == 0)
						memcpy(buf, &c->seq, 4);
					c->out_len += len;
				} else {
					memset(buf, 0xee, len);
					c->in_len += len;
				}
				guest_copy(&t->m, gpa, buf, len, true);
				gpa += len + 8;
			}
			int ret = vnet_vq_driver_add(&t->drv, c->bufs, c->n_out, c->n_in, c,
						     (lcg >> 60) & 1);
			if (ret == -ENOSPC)
				break;
			if (ret) {
				tfail(t, "driver: add = %d", ret);
				break;
			}
			nfree--;
			sent++;
			progress = true;
		}
		if (vnet_vq_driver_kick_prepare(&t->drv)) {
			t->kicks++;
			atomic_store(&t->dev_bell, 1);
		}
		uint32_t written;
		struct tchain *c;
		while ((c = vnet_vq_driver_get_used(&t->drv, &written)) != NULL) {
			if (written > c->in_len) {
				tfail(t, "driver: seq %u used len %u > %u", c->seq, written, c->in_len);
				break;
			}
			uint32_t pos = 0;
			for (unsigned k = c->n_out; k < c->n_out + c->n_in && pos < written; k++) {
				uint32_t n = c->bufs[k].len < written - pos ? c->bufs[k].len
									  : written - pos;
				guest_copy(&t->m, c->bufs[k].addr, buf, n, false);
				for (uint32_t b = 0; b < n; b++, pos++)
					if (buf[b] != in_byte(c->seq, pos))
						tfail(t, "driver: seq %u byte %u is 0x%02x, device "
						      "wrote 0x%02x", c->seq, pos, buf[b],
						      in_byte(c->seq, pos));
			}
			if (c->seq != done) {
				/* The device completes in order here. */
				tfail(t, "driver: reaped seq %u, expected %u", c->seq, done);
			}
			free_slots[nfree++] = (unsigned)(c - tc);
			done++;
			progress = true;
		}
		if (t->drv.broken)
			tfail(t, "driver queue broken");
		if (!progress && done < t->total && !vnet_vq_driver_enable_cb(&t->drv)) {
			t->drv_sleeps++;
			if (!wait_bell(t, &t->drv_bell, "driver"))
				break;
			vnet_vq_driver_disable_cb(&t->drv);
		}
	}
	if (!atomic_load(&t->failed) && done != t->total)
		tfail(t, "driver: %u of %u chains completed", done, t->total);
	atomic_store(&t->stop, true);
	free(tc);
	free(free_slots);
	return NULL;
}

static void run_threads(uint16_t size, uint64_t features)
{
	struct tstress *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->size = size;
	t->total = (uint32_t)env_u64("VNET_STRESS_CHAINS", DEFAULT_CHAINS);
	pthread_mutex_init(&t->why_lock, NULL);

	size_t ring_bytes = align_up(vnet_vq_driver_ring_bytes(size), 4096);
	size_t ind_bytes = (size_t)size * 4 * sizeof(struct vring_desc);
	testmem_begin(&t->m);
	void *ring_host = testmem_add(&t->m, RING_GPA, ring_bytes + ind_bytes, 0);
	uint64_t data = (uint64_t)size * T_SLOT;
	for (uint64_t off = 0; off < data; off += 3001)
		testmem_add(&t->m, DATA_GPA + off, data - off < 3001 ? data - off : 3001, 0);
	testmem_publish(&t->m);
	testlog_capture();
	struct vnet_vq_driver_config dc = {
		.size = size, .ring_host = ring_host, .ring_gpa = RING_GPA,
		.indirect_host = (uint8_t *)ring_host + ring_bytes,
		.indirect_gpa = RING_GPA + ring_bytes, .indirect_max = 4,
		.features = features, .name = "thr-drv",
	};
	assert_int_equal(vnet_vq_driver_init(&t->drv, &dc), 0);
	unsigned tok;
	vnet_guestmem_read_begin(&t->m.gm, &tok);
	struct vnet_vq_config vc = {
		.size = size, .desc_addr = t->drv.desc_gpa, .avail_addr = t->drv.avail_gpa,
		.used_addr = t->drv.used_gpa, .ring_as = VNET_AS_GPA, .features = features,
		.name = "thr-dev",
	};
	assert_int_equal(vnet_vq_attach(&t->vq, &t->m.gm, &vc), 0);
	vnet_guestmem_read_end(&t->m.gm, tok);

	int64_t t0 = now_ns();
	pthread_t d, v;
	assert_int_equal(pthread_create(&v, NULL, tdevice, t), 0);
	assert_int_equal(pthread_create(&d, NULL, tdriver, t), 0);
	pthread_join(d, NULL);
	atomic_store(&t->stop, true);
	pthread_join(v, NULL);
	print_message("# threads size %u event_idx %d: %u chains in %.2f s; kicks %llu, "
		      "interrupts %llu, sleeps dev/drv %llu/%llu\n",
		      size, !!(features & F_EVENT), t->total, (now_ns() - t0) / 1e9,
		      (unsigned long long)t->kicks, (unsigned long long)t->irqs,
		      (unsigned long long)t->dev_sleeps, (unsigned long long)t->drv_sleeps);
	if (atomic_load(&t->failed))
		fail_msg("%s", t->why);
	assert_int_equal(testlog_count(), 0);

	vnet_guestmem_read_begin(&t->m.gm, &tok);
	vnet_vq_detach(&t->vq);
	vnet_guestmem_read_end(&t->m.gm, tok);
	vnet_vq_driver_fini(&t->drv);
	testlog_release();
	testmem_fini(&t->m);
	pthread_mutex_destroy(&t->why_lock);
	free(t);
}

static void threads_event_idx(void **state)
{
	(void)state;
	run_threads(64, F_V1 | F_EVENT | F_INDIRECT);
}

static void threads_flags(void **state)
{
	(void)state;
	run_threads(16, F_V1 | F_INDIRECT);
}

#define STRESS(i) \
	{stress_cfgs[i].name, run_stress, stress_setup, stress_teardown, &stress_cfgs[i]}

int main(void)
{
	for (unsigned i = 0; i < sizeof(stress_cfgs) / sizeof(stress_cfgs[0]); i++)
		stress_cfgs[i].seed = seed_for((unsigned)stress_cfgs[i].seed);
	const struct CMUnitTest tests[] = {
		STRESS(0), STRESS(1), STRESS(2), STRESS(3), STRESS(4), STRESS(5), STRESS(6),
		cmocka_unit_test(threads_event_idx),
		cmocka_unit_test(threads_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
