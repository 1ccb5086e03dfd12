/*
 * test_virtqueue.c — device side of the split virtqueue against a hostile
 * driver (tests/common rawring writes the rings directly).
 *
 * Guest memory layout used by every test:
 *   A  0x100000 .. 0x200000  RW   buffers at 0x140000; ring 1's descriptor
 *                                 table ends exactly at the end of A
 *   B  0x200000 .. 0x400000  RW   (adjacent to A) indirect tables, ring 2;
 *                                 ring 1's used ring ends at the end of B
 *      0x400000 .. 0x500000  unmapped gap
 *   C  0x500000 .. 0x520000  read-only; ring 1's avail ring ends at its end
 * Every testmem region is followed by a PROT_NONE guard page, so reading a
 * descriptor past the table (or avail/used entries past their rings)
 * faults instead of silently reading the neighbouring ring.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testmem.h"
#include "vnet/net.h"
#include "vnet/virtqueue.h"

#define RING1 0x100000ull
#define BUF   0x140000ull
#define A_END 0x200000ull
#define IND   0x250000ull
#define RING2 0x300000ull
#define BUF2  0x310000ull
#define GAP   0x450000ull
#define B_END 0x400000ull
#define RO    0x500000ull
#define RO_END 0x520000ull
#define BIG   0x100000000ull /* optional 2 GiB sparse region */

#define QS 16
#define NIOV (VNET_VQ_MAX_SEGS + 16)
#define Q1 "t/q1"

#define F_INDIRECT VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVENT    VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_V1       VNET_BIT(VIRTIO_F_VERSION_1)

#define R 0
#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT

struct vfx {
	struct testmem m;
	struct rawring r, r2;
	struct vnet_vq vq, vq2;
	unsigned tok;
	bool locked;
	struct vnet_vq_chain ch;
	struct iovec iov[NIOV];
};

static void lock(struct vfx *f)
{
	vnet_guestmem_read_begin(&f->m.gm, &f->tok);
	f->locked = true;
}

static void unlock(struct vfx *f)
{
	vnet_guestmem_read_end(&f->m.gm, f->tok);
	f->locked = false;
}

/* (Re)initialises ring 1: each area ends at the end of its region. */
static void ring1_init(struct vfx *f, uint16_t size)
{
	uint64_t desc = A_END - vring_desc_bytes(size);
	uint64_t avail = (RO_END - vring_avail_bytes(size)) & ~1ull;
	uint64_t used = (B_END - vring_used_bytes(size)) & ~3ull;
	rawring_init(&f->r, &f->m, size, desc, avail, used);
}

static int attach1_cfg(struct vfx *f, uint16_t size, uint64_t features)
{
	vnet_vq_detach(&f->vq);
	ring1_init(f, size);
	struct vnet_vq_config cfg = rawring_config(&f->r, features, Q1);
	return vnet_vq_attach(&f->vq, &f->m.gm, &cfg);
}

/* Attaches queue 1 from scratch with an explicit configuration. */
static int try_attach(struct vfx *f, const struct vnet_vq_config *cfg)
{
	vnet_vq_detach(&f->vq);
	return vnet_vq_attach(&f->vq, &f->m.gm, cfg);
}

static void attach1(struct vfx *f, uint16_t size, uint64_t features)
{
	assert_int_equal(attach1_cfg(f, size, features), 0);
	assert_false(vnet_vq_is_broken(&f->vq));
}

static int setup(void **state)
{
	struct vfx *f = calloc(1, sizeof(*f));
	testmem_begin(&f->m);
	testmem_add(&f->m, 0x100000, 0x100000, 0);
	testmem_add(&f->m, 0x200000, 0x200000, 0);
	testmem_add(&f->m, RO, RO_END - RO, VNET_MEM_READ);
	testmem_publish(&f->m);
	testlog_capture();
	lock(f);
	rawring_init_at(&f->r2, &f->m, QS, RING2);
	struct vnet_vq_config cfg = rawring_config(&f->r2, F_V1, "t/healthy");
	if (vnet_vq_attach(&f->vq2, &f->m.gm, &cfg) != 0)
		return -1;
	if (attach1_cfg(f, QS, F_V1 | F_INDIRECT) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct vfx *f = *state;
	vnet_vq_detach(&f->vq);
	vnet_vq_detach(&f->vq2);
	if (f->locked)
		unlock(f);
	testlog_release();
	testmem_fini(&f->m);
	free(f);
	return 0;
}

static int pop(struct vfx *f)
{
	memset(&f->ch, 0xa5, sizeof(f->ch));
	return vnet_vq_pop(&f->vq, &f->ch, f->iov, NIOV);
}

static void desc(struct vfx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	rawring_set_desc(&f->r, i, addr, len, flags, next);
}

/* The second queue in the same memory must be unaffected. */
static void assert_healthy(struct vfx *f)
{
	struct rawring *r = &f->r2;
	uint16_t d = rawring_avail_idx(r) % r->size;
	rawring_set_desc(r, d, BUF2 + d * 64u, 64, W, 0);
	rawring_publish(r, d);
	struct vnet_vq_chain ch;
	struct iovec iov[4];
	assert_int_equal(vnet_vq_pop(&f->vq2, &ch, iov, 4), 1);
	assert_int_equal(ch.head, d);
	assert_int_equal(ch.n_in, 1);
	assert_int_equal(ch.in_len, 64);
	assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, BUF2 + d * 64u));
	uint16_t u = rawring_used_idx(r);
	vnet_vq_push(&f->vq2, d, 10);
	vnet_vq_flush(&f->vq2);
	assert_int_equal(rawring_used_idx(r), (uint16_t)(u + 1));
	assert_int_equal(rawring_used_elem(r, u).id, d);
	assert_int_equal(rawring_used_elem(r, u).len, 10);
	assert_false(vnet_vq_is_broken(&f->vq2));
}

/* Pop must fail and the queue must be broken, stay broken, write nothing to
 * the used ring, and leave the other queue working. */
static void expect_broken(struct vfx *f)
{
	uint16_t used = rawring_used_idx(&f->r);
	assert_true(pop(f) < 0);
	assert_true(vnet_vq_is_broken(&f->vq));
	assert_true(strlen(f->vq.broken_reason) > 0);
	assert_true(pop(f) < 0);
	struct vnet_vq_chain chains[2];
	assert_int_equal(vnet_vq_pop_burst(&f->vq, chains, 2, f->iov, 8), 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), used);
	assert_healthy(f);
}

/* ================= attach ================= */

static void test_attach_bad_size(void **state)
{
	struct vfx *f = *state;
	static const uint16_t bad[] = {0, 3, 6, 100, 65535, (uint16_t)65536};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
		cfg.size = bad[i];
		assert_int_equal(try_attach(f, &cfg), -EINVAL);
		assert_true(pop(f) < 0);
	}
	/* the largest legal size works */
	attach1(f, 32768, F_V1);
	assert_int_equal(pop(f), 0);
	assert_healthy(f);
}

static void test_attach_misaligned(void **state)
{
	struct vfx *f = *state;
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	struct vnet_vq_config c = cfg;
	c.desc_addr -= 8;
	assert_int_equal(try_attach(f, &c), -EINVAL);
	c = cfg;
	c.avail_addr -= 1;
	assert_int_equal(try_attach(f, &c), -EINVAL);
	c = cfg;
	c.used_addr -= 2;
	assert_int_equal(try_attach(f, &c), -EINVAL);
	assert_true(pop(f) < 0);
	/* minimal legal alignments are accepted */
	c = cfg;
	c.desc_addr -= 16;
	c.avail_addr -= 2;
	c.used_addr -= 4;
	assert_int_equal(try_attach(f, &c), 0);
}

static void test_attach_used_readonly(void **state)
{
	struct vfx *f = *state;
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	cfg.used_addr = RO + 0x1000;
	assert_int_equal(try_attach(f, &cfg), -EFAULT);
	assert_true(pop(f) < 0);
	/* the device only reads desc and avail: read-only memory is fine there */
	vnet_vq_detach(&f->vq);
	rawring_init(&f->r, &f->m, QS, RO, RO + 0x1000, RING1);
	cfg = rawring_config(&f->r, F_V1, Q1);
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	desc(f, 0, BUF, 8, R, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
}

static void test_attach_partly_unmapped(void **state)
{
	struct vfx *f = *state;
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	struct vnet_vq_config c = cfg;
	c.desc_addr = 0x400000 - 128; /* 256 bytes: half in the gap */
	assert_int_equal(try_attach(f, &c), -EFAULT);
	c = cfg;
	c.avail_addr = 0x400000 - 16;
	assert_int_equal(try_attach(f, &c), -EFAULT);
	c = cfg;
	c.used_addr = 0x400000 - 64;
	assert_int_equal(try_attach(f, &c), -EFAULT);
	c = cfg;
	c.desc_addr = GAP;
	assert_int_equal(try_attach(f, &c), -EFAULT);
	/* every byte mapped, but split across two regions: refused too */
	c = cfg;
	c.used_addr = A_END - 64;
	assert_int_equal(try_attach(f, &c), -EFAULT);
	assert_true(pop(f) < 0);
}

static void test_attach_uaddr(void **state)
{
	struct vfx *f = *state;
	vnet_vq_detach(&f->vq);
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	cfg.ring_as = VNET_AS_UADDR;
	cfg.desc_addr = testmem_uaddr(cfg.desc_addr);
	cfg.avail_addr = testmem_uaddr(cfg.avail_addr);
	cfg.used_addr = testmem_uaddr(cfg.used_addr);
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	desc(f, 0, BUF, 32, R, 0); /* descriptor addresses stay GPAs */
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, BUF));
	vnet_vq_push(&f->vq, 0, 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	/* GPA ring addresses interpreted as UADDRs are unmapped */
	vnet_vq_detach(&f->vq);
	cfg = rawring_config(&f->r, F_V1, Q1);
	cfg.ring_as = VNET_AS_UADDR;
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), -EFAULT);
}

/* ================= pop: well-formed chains ================= */

static void test_pop_single_readable(void **state)
{
	struct vfx *f = *state;
	desc(f, 5, BUF, 100, R, 0);
	rawring_publish(&f->r, 5);
	assert_true(vnet_vq_has_avail(&f->vq));
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 5);
	assert_int_equal(f->ch.n_out, 1);
	assert_int_equal(f->ch.n_in, 0);
	assert_int_equal(f->ch.out_len, 100);
	assert_int_equal(f->ch.in_len, 0);
	assert_ptr_equal(f->ch.iov, f->iov);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, BUF));
	assert_int_equal(f->iov[0].iov_len, 100);
	assert_int_equal(pop(f), 0);
	assert_false(vnet_vq_has_avail(&f->vq));
}

static void test_pop_out_in_split(void **state)
{
	struct vfx *f = *state;
	desc(f, 3, BUF, 10, R | N, 5);
	desc(f, 5, BUF + 100, 20, R | N, 7);
	desc(f, 7, BUF + 200, 30, W | N, 1);
	desc(f, 1, BUF + 300, 40, W, 0);
	rawring_publish(&f->r, 3);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 3);
	assert_int_equal(f->ch.n_out, 2);
	assert_int_equal(f->ch.n_in, 2);
	assert_int_equal(f->ch.out_len, 30);
	assert_int_equal(f->ch.in_len, 70);
	static const uint64_t addr[] = {BUF, BUF + 100, BUF + 200, BUF + 300};
	for (unsigned i = 0; i < 4; i++) {
		assert_ptr_equal(f->iov[i].iov_base, testmem_host(&f->m, addr[i]));
		assert_int_equal(f->iov[i].iov_len, 10 * (i + 1));
	}
	vnet_vq_push(&f->vq, 3, 70);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 3);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 70);
}

static void test_pop_empty(void **state)
{
	struct vfx *f = *state;
	assert_int_equal(pop(f), 0);
	assert_false(vnet_vq_has_avail(&f->vq));
	struct vnet_vq_chain chains[4];
	assert_int_equal(vnet_vq_pop_burst(&f->vq, chains, 4, f->iov, 4), 0);
	assert_false(vnet_vq_is_broken(&f->vq));
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 0);
}

static void test_pop_zero_len_good_addr(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 0, R | N, 1);
	desc(f, 1, BUF + 64, 50, R | N, 2);
	desc(f, 2, BUF + 128, 0, W, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.out_len, 50);
	assert_int_equal(f->ch.in_len, 0);
	size_t sum = 0;
	for (unsigned i = 0; i < (unsigned)f->ch.n_out + f->ch.n_in; i++)
		sum += f->iov[i].iov_len;
	assert_int_equal(sum, 50);
	assert_false(vnet_vq_is_broken(&f->vq));
}

static void test_pop_spanning_regions(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, A_END - 0x100, 0x300, W, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.n_in, 2);
	assert_int_equal(f->ch.in_len, 0x300);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, A_END - 0x100));
	assert_int_equal(f->iov[0].iov_len, 0x100);
	assert_ptr_equal(f->iov[1].iov_base, testmem_host(&f->m, A_END));
	assert_int_equal(f->iov[1].iov_len, 0x200);
}

static void test_pop_uses_avail_ring_order(void **state)
{
	struct vfx *f = *state;
	for (uint16_t i = 0; i < 4; i++)
		desc(f, i, BUF + i * 16u, 16u + i, R, 0);
	rawring_publish(&f->r, 2);
	rawring_publish(&f->r, 0);
	rawring_publish(&f->r, 3);
	static const uint16_t want[] = {2, 0, 3};
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(pop(f), 1);
		assert_int_equal(f->ch.head, want[i]);
		assert_int_equal(f->ch.out_len, 16u + want[i]);
	}
	assert_int_equal(pop(f), 0);
}

/* ================= pop: hostile descriptors ================= */

static void test_desc_end_outside_memory(void **state)
{
	/* CVE-2018-1059: only the start was translated. */
	struct vfx *f = *state;
	desc(f, 0, 0x400000 - 0x100, 0x200, R, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_addr_len_wraps(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, ~0ull - 0xf, 0x20, R, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_zero_len_bad_addr(void **state)
{
	/* CVE-2020-10725: zero-length descriptors skipped the address check. */
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, R | N, 1);
	desc(f, 1, GAP, 0, W, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_next_out_of_range(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, R | N, QS);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_loop_two(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, R | N, 1);
	desc(f, 1, BUF, 8, R | N, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_loop_zero_len(void **state)
{
	/* zero-length descriptors add no bytes and no iovecs: only the
	 * chain-length limit stops this loop */
	struct vfx *f = *state;
	desc(f, 0, BUF, 0, R | N, 1);
	desc(f, 1, BUF, 0, R | N, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_desc_chain_longer_than_size(void **state)
{
	struct vfx *f = *state;
	attach1(f, 4, F_V1);
	for (uint16_t i = 0; i < 4; i++)
		desc(f, i, BUF, 1, R | N, (uint16_t)((i + 1) % 4));
	rawring_publish(&f->r, 2);
	expect_broken(f);
}

static void test_desc_readable_after_writable(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, W | N, 1);
	desc(f, 1, BUF + 8, 8, R, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_head_out_of_range(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, R, 0);
	rawring_publish(&f->r, QS);
	expect_broken(f);
}

static void test_avail_idx_jump(void **state)
{
	struct vfx *f = *state;
	for (uint16_t i = 0; i < QS; i++) {
		desc(f, i, BUF, 8, R, 0);
		rawring_set_avail_slot(&f->r, i, i);
	}
	rawring_set_avail_idx(&f->r, QS + 1);
	expect_broken(f);
}

static void test_inflight_exceeds_size(void **state)
{
	/* CVE-2016-5403: heads re-published before the device returned them. */
	struct vfx *f = *state;
	attach1(f, 4, F_V1);
	for (uint16_t i = 0; i < 4; i++) {
		desc(f, i, BUF + i * 8u, 8, R, 0);
		rawring_publish(&f->r, i);
	}
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(pop(f), 1);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_head_republished_in_flight(void **state)
{
	/* a head still in flight is made available again (queue not full) */
	struct vfx *f = *state;
	desc(f, 2, BUF, 8, R, 0);
	rawring_publish(&f->r, 2);
	assert_int_equal(pop(f), 1);
	rawring_publish(&f->r, 2);
	expect_broken(f);
}

static void test_too_many_segments(void **state)
{
	struct vfx *f = *state;
	for (uint16_t i = 0; i < 5; i++)
		desc(f, i, BUF + i * 8u, 8, R | (i < 4 ? N : 0), (uint16_t)(i + 1));
	rawring_publish(&f->r, 0);
	struct iovec iov[4];
	assert_true(vnet_vq_pop(&f->vq, &f->ch, iov, 4) < 0);
	assert_true(vnet_vq_is_broken(&f->vq));
	assert_true(strlen(f->vq.broken_reason) > 0);
	expect_broken(f);
}

static void test_too_many_segments_by_spanning(void **state)
{
	/* one descriptor, two regions → two pieces, but only one iovec */
	struct vfx *f = *state;
	desc(f, 0, A_END - 8, 16, R, 0);
	rawring_publish(&f->r, 0);
	struct iovec iov[1];
	assert_true(vnet_vq_pop(&f->vq, &f->ch, iov, 1) < 0);
	expect_broken(f);
}

static void test_chain_len_overflows_u32(void **state)
{
	struct vfx *f = *state;
	unlock(f);
	testmem_add(&f->m, BIG, 0x80000000ull, 0);
	testmem_publish(&f->m);
	lock(f);
	desc(f, 0, BIG, 0x80000000u, R | N, 1);
	desc(f, 1, BIG, 0x80000000u, R, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_chain_len_large_ok(void **state)
{
	/* 2 GiB readable + 2 GiB - 1 writable: each total fits in 32 bits */
	struct vfx *f = *state;
	unlock(f);
	testmem_add(&f->m, BIG, 0x80000000ull, 0);
	testmem_publish(&f->m);
	lock(f);
	desc(f, 0, BIG, 0x80000000u, R | N, 1);
	desc(f, 1, BIG, 0x7fffffffu, W, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.out_len, 0x80000000u);
	assert_int_equal(f->ch.in_len, 0x7fffffffu);
}

/* ================= indirect ================= */

static void ind(struct vfx *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		uint16_t flags, uint16_t next)
{
	testmem_put_desc(&f->m, table + i * 16u, addr, len, flags, next);
}

static void test_indirect_ok(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R | N, 1);
	ind(f, IND, 1, BUF + 100, 20, R | N, 2);
	ind(f, IND, 2, BUF + 200, 30, W, 0);
	desc(f, 6, IND, 48, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 6);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 6);
	assert_int_equal(f->ch.n_out, 2);
	assert_int_equal(f->ch.n_in, 1);
	assert_int_equal(f->ch.out_len, 30);
	assert_int_equal(f->ch.in_len, 30);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, BUF));
	assert_ptr_equal(f->iov[1].iov_base, testmem_host(&f->m, BUF + 100));
	assert_ptr_equal(f->iov[2].iov_base, testmem_host(&f->m, BUF + 200));
	vnet_vq_push(&f->vq, 6, 30);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 6);
}

static void test_indirect_without_feature(void **state)
{
	struct vfx *f = *state;
	attach1(f, QS, F_V1);
	ind(f, IND, 0, BUF, 10, R, 0);
	desc(f, 0, IND, 16, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_len_zero(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R, 0);
	desc(f, 0, IND, 0, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_len_not_multiple(void **state)
{
	struct vfx *f = *state;
	/* entry 0 alone would be a valid table: only the length is wrong */
	ind(f, IND, 0, BUF, 10, R, 0);
	desc(f, 0, IND, 24, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_too_many_entries(void **state)
{
	/* 65536 entries (1 MiB, all mapped); the first is a valid 1-piece chain */
	struct vfx *f = *state;
	ind(f, 0x200000, 0, BUF, 10, R, 0);
	desc(f, 0, 0x200000, 65536u * 16u, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_not_mapped(void **state)
{
	struct vfx *f = *state;
	ind(f, 0x400000 - 32, 0, BUF, 10, R, 0);
	desc(f, 0, 0x400000 - 32, 64, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_straddles_regions(void **state)
{
	/* entries 0,1 at the end of A, entries 2,3 at the start of B */
	struct vfx *f = *state;
	uint64_t t = A_END - 32;
	ind(f, t, 0, BUF, 1, R | N, 1);
	ind(f, t, 1, BUF + 16, 2, R | N, 2);
	ind(f, t, 2, BUF + 32, 3, W | N, 3);
	ind(f, t, 3, BUF + 48, 4, W, 0);
	desc(f, 0, t, 64, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.n_out, 2);
	assert_int_equal(f->ch.n_in, 2);
	assert_int_equal(f->ch.out_len, 3);
	assert_int_equal(f->ch.in_len, 7);
	for (unsigned i = 0; i < 4; i++) {
		assert_ptr_equal(f->iov[i].iov_base, testmem_host(&f->m, BUF + 16 * i));
		assert_int_equal(f->iov[i].iov_len, i + 1);
	}
}

static void test_indirect_nested(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R | N, 1);
	ind(f, IND, 1, IND + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	ind(f, IND + 0x100, 0, BUF, 10, R, 0);
	desc(f, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_loop(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R | N, 1);
	ind(f, IND, 1, BUF, 10, R | N, 0);
	desc(f, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_loop_zero_len(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 0, R | N, 1);
	ind(f, IND, 1, BUF, 0, R | N, 2);
	ind(f, IND, 2, BUF, 0, R | N, 1);
	desc(f, 0, IND, 48, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_next_out_of_table(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R | N, 2); /* table has 2 entries */
	ind(f, IND, 1, BUF, 10, R, 0);
	ind(f, IND, 2, BUF, 10, R, 0);
	desc(f, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_readable_after_writable(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, W | N, 1);
	ind(f, IND, 1, BUF + 16, 10, R, 0);
	desc(f, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

static void test_indirect_bad_buffer(void **state)
{
	struct vfx *f = *state;
	ind(f, IND, 0, BUF, 10, R | N, 1);
	ind(f, IND, 1, 0x400000 - 4, 8, W, 0);
	desc(f, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	rawring_publish(&f->r, 0);
	expect_broken(f);
}

/* ================= TOCTOU ================= */

static void test_pop_copies_descriptors(void **state)
{
	struct vfx *f = *state;
	desc(f, 0, BUF, 100, R | N, 1);
	desc(f, 1, BUF + 200, 50, W, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	struct vnet_vq_chain saved = f->ch;
	struct iovec iov0 = f->iov[0], iov1 = f->iov[1];
	/* the driver rewrites everything after pop */
	desc(f, 0, GAP, 9999, W | N, 7);
	desc(f, 1, GAP, 9999, R, 0);
	rawring_set_avail_slot(&f->r, 0, 9);
	assert_int_equal(f->ch.head, saved.head);
	assert_int_equal(f->ch.out_len, 100);
	assert_int_equal(f->ch.in_len, 50);
	assert_ptr_equal(f->iov[0].iov_base, iov0.iov_base);
	assert_int_equal(f->iov[0].iov_len, 100);
	assert_ptr_equal(f->iov[1].iov_base, iov1.iov_base);
	assert_int_equal(f->iov[1].iov_len, 50);
	/* returning the chain still uses the popped head, queue stays healthy */
	vnet_vq_push(&f->vq, saved.head, 50);
	vnet_vq_flush(&f->vq);
	assert_false(vnet_vq_is_broken(&f->vq));
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 0);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 50);
	assert_int_equal(pop(f), 0);
}

/* ================= push / flush ================= */

static void test_push_not_in_flight(void **state)
{
	struct vfx *f = *state;
	desc(f, 3, BUF, 8, R, 0);
	rawring_publish(&f->r, 3);
	vnet_vq_push(&f->vq, 3, 0); /* never popped */
	assert_true(vnet_vq_is_broken(&f->vq));
	expect_broken(f);
}

static void test_push_twice(void **state)
{
	struct vfx *f = *state;
	desc(f, 3, BUF, 8, R, 0);
	rawring_publish(&f->r, 3);
	assert_int_equal(pop(f), 1);
	vnet_vq_push(&f->vq, 3, 0);
	assert_false(vnet_vq_is_broken(&f->vq));
	vnet_vq_push(&f->vq, 3, 0);
	assert_true(vnet_vq_is_broken(&f->vq));
	vnet_vq_push(&f->vq, QS + 1, 0); /* out of range: still just broken */
	expect_broken(f);
}

static void test_push_flush_publishes(void **state)
{
	struct vfx *f = *state;
	desc(f, 4, BUF, 8, W, 0);
	desc(f, 9, BUF + 8, 8, W, 0);
	rawring_publish(&f->r, 4);
	rawring_publish(&f->r, 9);
	assert_int_equal(pop(f), 1);
	assert_int_equal(pop(f), 1);
	vnet_vq_push(&f->vq, 9, 7);
	vnet_vq_push(&f->vq, 4, 8);
	assert_int_equal(rawring_used_idx(&f->r), 0); /* not visible before flush */
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 2);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 9);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 7);
	assert_int_equal(rawring_used_elem(&f->r, 1).id, 4);
	assert_int_equal(rawring_used_elem(&f->r, 1).len, 8);
	/* the returned heads can be made available and popped again */
	rawring_publish(&f->r, 4);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 4);
}

static void test_flush_nothing_writes_nothing(void **state)
{
	struct vfx *f = *state;
	rawring_set_used_idx(&f->r, 7); /* scribble: a flush must not touch it */
	f->r.used->ring[0].id = 0xdead;
	assert_false(vnet_vq_flush(&f->vq));
	assert_int_equal(rawring_used_idx(&f->r), 7);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 0xdead);
}

static void test_burst_pop_and_one_flush(void **state)
{
	struct vfx *f = *state;
	attach1(f, 64, F_V1);
	for (uint16_t i = 0; i < 40; i++) {
		desc(f, i, BUF + i * 32u, 32, W, 0);
		rawring_publish(&f->r, i);
	}
	struct vnet_vq_chain chains[32];
	assert_int_equal(vnet_vq_pop_burst(&f->vq, chains, 32, f->iov, 4), 32);
	for (unsigned i = 0; i < 32; i++) {
		assert_int_equal(chains[i].head, i);
		assert_ptr_equal(chains[i].iov, f->iov + i * 4);
		assert_ptr_equal(chains[i].iov[0].iov_base, testmem_host(&f->m, BUF + i * 32u));
		vnet_vq_push(&f->vq, chains[i].head, i);
	}
	assert_int_equal(rawring_used_idx(&f->r), 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 32);
	for (uint16_t i = 0; i < 32; i++) {
		assert_int_equal(rawring_used_elem(&f->r, i).id, i);
		assert_int_equal(rawring_used_elem(&f->r, i).len, i);
	}
	/* 8 left */
	assert_int_equal(vnet_vq_pop_burst(&f->vq, chains, 32, f->iov, 4), 8);
	assert_int_equal(chains[0].head, 32);
}

/* ================= notifications ================= */

static bool one_round(struct vfx *f, uint16_t d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t h = (uint16_t)((d + i) % f->r.size);
		desc(f, h, BUF + h * 16u, 16, W, 0);
		rawring_publish(&f->r, h);
	}
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(pop(f), 1);
		vnet_vq_push(&f->vq, f->ch.head, 1);
	}
	return vnet_vq_flush(&f->vq);
}

static void test_notify_no_interrupt_flag(void **state)
{
	struct vfx *f = *state;
	rawring_set_avail_flags(&f->r, VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(one_round(f, 0, 1));
	assert_false(one_round(f, 1, 2));
	rawring_set_avail_flags(&f->r, 0);
	assert_true(one_round(f, 3, 1));
	assert_true(one_round(f, 4, 1));
}

static void test_notify_event_idx_wrap(void **state)
{
	struct vfx *f = *state;
	vnet_vq_detach(&f->vq);
	ring1_init(f, 8);
	rawring_set_used_idx(&f->r, 65530);
	rawring_set_avail_idx(&f->r, 65530);
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1 | F_EVENT, Q1);
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	vnet_vq_set_last_avail(&f->vq, 65530);
	assert_int_equal(pop(f), 0);

	rawring_set_used_event(&f->r, 65535);
	(void)one_round(f, 0, 1); /* 65530→65531: first decision may be spurious */
	assert_int_equal(rawring_used_idx(&f->r), 65531);
	assert_int_equal(rawring_used_elem(&f->r, 65530).id, 0);

	rawring_set_used_event(&f->r, 65532);
	assert_false(one_round(f, 1, 1)); /* →65532 */
	assert_true(one_round(f, 2, 1));  /* →65533 crosses 65532 */
	rawring_set_used_event(&f->r, 65535);
	assert_false(one_round(f, 3, 1)); /* →65534 */
	assert_false(one_round(f, 4, 1)); /* →65535 */
	assert_true(one_round(f, 5, 1));  /* →0, crosses 65535 across the wrap */
	assert_int_equal(rawring_used_idx(&f->r), 0);
	assert_int_equal(rawring_used_elem(&f->r, 65535).id, 5);
	rawring_set_used_event(&f->r, 1);
	assert_true(one_round(f, 6, 2)); /* →2 in one flush, crosses 1 */
	rawring_set_used_event(&f->r, 5);
	assert_false(one_round(f, 0, 1)); /* →3 */
	rawring_set_used_event(&f->r, 2);  /* already passed */
	assert_false(one_round(f, 1, 1)); /* →4 */
	assert_int_equal(rawring_used_idx(&f->r), 4);
	assert_int_equal(rawring_used_elem(&f->r, 3).id, 1);
	assert_false(vnet_vq_is_broken(&f->vq));
}

static void test_notify_enable_disable_flags(void **state)
{
	struct vfx *f = *state;
	vnet_vq_disable_notify(&f->vq);
	assert_true(rawring_used_flags(&f->r) & VRING_USED_F_NO_NOTIFY);
	assert_false(vnet_vq_enable_notify(&f->vq));
	assert_false(rawring_used_flags(&f->r) & VRING_USED_F_NO_NOTIFY);
	vnet_vq_disable_notify(&f->vq);
	assert_true(rawring_used_flags(&f->r) & VRING_USED_F_NO_NOTIFY);
	desc(f, 0, BUF, 8, R, 0);
	rawring_publish(&f->r, 0);
	assert_true(vnet_vq_enable_notify(&f->vq)); /* pending: poll again */
	assert_false(rawring_used_flags(&f->r) & VRING_USED_F_NO_NOTIFY);
	assert_int_equal(pop(f), 1);
	assert_false(vnet_vq_enable_notify(&f->vq));
}

static void test_notify_enable_event_idx(void **state)
{
	struct vfx *f = *state;
	attach1(f, QS, F_V1 | F_EVENT);
	for (uint16_t i = 0; i < 3; i++) {
		desc(f, i, BUF, 8, R, 0);
		rawring_publish(&f->r, i);
	}
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(pop(f), 1);
	rawring_set_avail_event(&f->r, 0xbeef);
	assert_false(vnet_vq_enable_notify(&f->vq));
	assert_int_equal(rawring_avail_event(&f->r), 3);
	desc(f, 3, BUF, 8, R, 0);
	rawring_publish(&f->r, 3);
	assert_true(vnet_vq_enable_notify(&f->vq));
	assert_int_equal(rawring_avail_event(&f->r), 3);
	assert_int_equal(pop(f), 1);
	assert_false(vnet_vq_enable_notify(&f->vq));
	assert_int_equal(rawring_avail_event(&f->r), 4);
}

/* ================= detach / resume ================= */

static void test_detach_and_resume(void **state)
{
	struct vfx *f = *state;
	for (uint16_t i = 0; i < 3; i++) {
		desc(f, i, BUF + i * 8u, 8u + i, R, 0);
		rawring_publish(&f->r, i);
	}
	assert_int_equal(pop(f), 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(vnet_vq_detach(&f->vq), 2);
	assert_true(pop(f) < 0);

	/* reattach and resume at slot 2 (SET_VRING_BASE) */
	vnet_vq_detach(&f->vq);
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	vnet_vq_set_last_avail(&f->vq, 2);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 2);
	assert_int_equal(f->ch.out_len, 10);
	assert_int_equal(pop(f), 0);
	assert_int_equal(vnet_vq_detach(&f->vq), 3);
}

static void test_attach_uses_used_idx_from_memory(void **state)
{
	struct vfx *f = *state;
	vnet_vq_detach(&f->vq);
	rawring_set_used_idx(&f->r, 100);
	struct vnet_vq_config cfg = rawring_config(&f->r, F_V1, Q1);
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &cfg), 0);
	desc(f, 1, BUF, 8, R, 0);
	rawring_publish(&f->r, 1);
	assert_int_equal(pop(f), 1);
	vnet_vq_push(&f->vq, 1, 5);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 101);
	assert_int_equal(rawring_used_elem(&f->r, 100).id, 1);
	assert_int_equal(rawring_used_elem(&f->r, 100).len, 5);
}

static void remap_ring_region(struct vfx *f, bool fault_old)
{
	unlock(f);
	for (unsigned i = 0; i < f->m.n; i++)
		testmem_remap(&f->m, i, fault_old);
	testmem_publish(&f->m);
	rawring_refresh(&f->r2);
	rawring_refresh(&f->r);
	lock(f);
}

static void test_memory_remap_then_pop(void **state)
{
	/* after a table replace the queue must use the new host pointers; the
	 * old mapping is PROT_NONE, so any stale access faults */
	struct vfx *f = *state;
	desc(f, 0, BUF, 8, R, 0);
	rawring_publish(&f->r, 0);
	assert_int_equal(pop(f), 1);
	remap_ring_region(f, true);
	desc(f, 1, BUF + 8, 8, R, 0);
	rawring_publish(&f->r, 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->ch.head, 1);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, BUF + 8));
	vnet_vq_push(&f->vq, 0, 3);
	vnet_vq_push(&f->vq, 1, 4);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 2);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 0);
	assert_int_equal(rawring_used_elem(&f->r, 1).id, 1);
	assert_int_equal(rawring_used_elem(&f->r, 1).len, 4);
	assert_false(vnet_vq_is_broken(&f->vq));
}

static void test_memory_remap_then_push(void **state)
{
	/* completion in a later burst, after the memory table changed, with no
	 * pop in between: the used entry must land in the new mapping */
	struct vfx *f = *state;
	desc(f, 5, BUF, 8, W, 0);
	rawring_publish(&f->r, 5);
	assert_int_equal(pop(f), 1);
	remap_ring_region(f, false);
	vnet_vq_push(&f->vq, 5, 8);
	vnet_vq_flush(&f->vq);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).id, 5);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 8);
	/* notification control after a remap also targets the new mapping */
	remap_ring_region(f, false);
	vnet_vq_disable_notify(&f->vq);
	assert_true(rawring_used_flags(&f->r) & VRING_USED_F_NO_NOTIFY);
}

/* ================= logging ================= */

static void test_broken_logs_once(void **state)
{
	struct vfx *f = *state;
	testlog_clear();
	desc(f, 0, GAP, 8, R, 0);
	rawring_publish(&f->r, 0);
	assert_true(pop(f) < 0);
	for (unsigned i = 0; i < 10; i++)
		assert_true(pop(f) < 0);
	vnet_vq_mark_broken(&f->vq, "again %d", 2);
	vnet_vq_push(&f->vq, 0, 0);
	vnet_vq_flush(&f->vq);
	assert_int_equal(testlog_count_containing(Q1), 1);
	assert_int_equal(testlog_count_containing("again"), 0);
}

static void test_mark_broken_api(void **state)
{
	struct vfx *f = *state;
	testlog_clear();
	desc(f, 0, BUF, 8, R, 0);
	rawring_publish(&f->r, 0);
	vnet_vq_mark_broken(&f->vq, "owner says %s", "stop");
	assert_true(vnet_vq_is_broken(&f->vq));
	assert_non_null(strstr(f->vq.broken_reason, "owner says stop"));
	assert_int_equal(testlog_count_containing("owner says stop"), 1);
	assert_int_equal(testlog_count_containing(Q1), 1);
	expect_broken(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_attach_bad_size),
		T(test_attach_misaligned),
		T(test_attach_used_readonly),
		T(test_attach_partly_unmapped),
		T(test_attach_uaddr),
		T(test_pop_single_readable),
		T(test_pop_out_in_split),
		T(test_pop_empty),
		T(test_pop_zero_len_good_addr),
		T(test_pop_spanning_regions),
		T(test_pop_uses_avail_ring_order),
		T(test_desc_end_outside_memory),
		T(test_desc_addr_len_wraps),
		T(test_desc_zero_len_bad_addr),
		T(test_desc_next_out_of_range),
		T(test_desc_loop_two),
		T(test_desc_loop_zero_len),
		T(test_desc_chain_longer_than_size),
		T(test_desc_readable_after_writable),
		T(test_head_out_of_range),
		T(test_avail_idx_jump),
		T(test_inflight_exceeds_size),
		T(test_head_republished_in_flight),
		T(test_too_many_segments),
		T(test_too_many_segments_by_spanning),
		T(test_chain_len_overflows_u32),
		T(test_chain_len_large_ok),
		T(test_indirect_ok),
		T(test_indirect_without_feature),
		T(test_indirect_len_zero),
		T(test_indirect_len_not_multiple),
		T(test_indirect_too_many_entries),
		T(test_indirect_not_mapped),
		T(test_indirect_straddles_regions),
		T(test_indirect_nested),
		T(test_indirect_loop),
		T(test_indirect_loop_zero_len),
		T(test_indirect_next_out_of_table),
		T(test_indirect_readable_after_writable),
		T(test_indirect_bad_buffer),
		T(test_pop_copies_descriptors),
		T(test_push_not_in_flight),
		T(test_push_twice),
		T(test_push_flush_publishes),
		T(test_flush_nothing_writes_nothing),
		T(test_burst_pop_and_one_flush),
		T(test_notify_no_interrupt_flag),
		T(test_notify_event_idx_wrap),
		T(test_notify_enable_disable_flags),
		T(test_notify_enable_event_idx),
		T(test_detach_and_resume),
		T(test_attach_uses_used_idx_from_memory),
		T(test_memory_remap_then_pop),
		T(test_memory_remap_then_push),
		T(test_broken_logs_once),
		T(test_mark_broken_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
