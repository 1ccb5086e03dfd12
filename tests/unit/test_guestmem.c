/* test_guestmem.c — guest memory tables, translation and table replacement. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "testmem.h"
#include "vnet/guestmem.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

/* Fake host pointers for tables that are never dereferenced. */
#define FAKE_HOST(x) ((void *)(uintptr_t)(x))

static struct vnet_mem_region reg(uint64_t gpa, uint64_t size, uint64_t uaddr, uintptr_t host)
{
	return (struct vnet_mem_region){
		.gpa = gpa, .size = size, .uaddr = uaddr, .host = FAKE_HOST(host), .prot = 0};
}

static void expect_table_rejected(const struct vnet_mem_region *r, unsigned n)
{
	char err[256] = "";
	struct vnet_mem_table *t = vnet_mem_table_new(r, n, err, sizeof(err));
	assert_null(t);
	assert_true(strlen(err) > 0);
}

/* ---- table building ---- */

static void test_table_rejects_too_many_regions(void **state)
{
	(void)state;
	struct vnet_mem_region r[VNET_MEM_MAX_REGIONS + 1];
	for (unsigned i = 0; i <= VNET_MEM_MAX_REGIONS; i++)
		r[i] = reg(i * MIB, 4 * KIB, 0x10000000 + i * MIB, 0x40000000 + i * MIB);
	expect_table_rejected(r, VNET_MEM_MAX_REGIONS + 1);
	/* exactly the maximum is fine */
	struct vnet_mem_table *t = vnet_mem_table_new(r, VNET_MEM_MAX_REGIONS, NULL, 0);
	assert_non_null(t);
	assert_int_equal(vnet_mem_table_count(t), VNET_MEM_MAX_REGIONS);
	vnet_mem_table_free(t);
}

static void test_table_rejects_bad_regions(void **state)
{
	(void)state;
	struct vnet_mem_region r[2];

	r[0] = reg(0x100000, 0, 0x200000, 0x300000); /* size 0 */
	expect_table_rejected(r, 1);

	r[0] = reg(~0ull - 0xfff, 0x2000, 0x200000, 0x300000); /* gpa+size wraps */
	expect_table_rejected(r, 1);

	r[0] = reg(0x100000, 0x2000, ~0ull - 0xfff, 0x300000); /* uaddr+size wraps */
	expect_table_rejected(r, 1);

	r[0] = reg(0x100000, 0x2000, 0x200000, UINTPTR_MAX - 0xfff); /* host wraps */
	expect_table_rejected(r, 1);

	r[0] = reg(0x100000, 0x2000, 0x200000, 0); /* NULL host */
	expect_table_rejected(r, 1);

	/* GPA overlap by one byte */
	r[0] = reg(0x100000, 0x2000, 0x10000000, 0x300000);
	r[1] = reg(0x101fff, 0x2000, 0x20000000, 0x400000);
	expect_table_rejected(r, 2);

	/* GPA overlap, second given first (containment) */
	r[0] = reg(0x100000, 0x10000, 0x10000000, 0x300000);
	r[1] = reg(0x0, 0x200000, 0x20000000, 0x400000);
	expect_table_rejected(r, 2);

	/* UADDR overlap, GPA distinct */
	r[0] = reg(0x100000, 0x2000, 0x10000000, 0x300000);
	r[1] = reg(0x200000, 0x2000, 0x10001000, 0x400000);
	expect_table_rejected(r, 2);
}

static void test_table_accepts_adjacent_and_sorts(void **state)
{
	(void)state;
	struct vnet_mem_region r[3] = {
		reg(0x200000, 0x100000, 0x20000000, 0x700000000000),
		reg(0x100000, 0x100000, 0x10000000, 0x600000000000), /* adjacent below */
		reg(0x300000, 0x1000, 0x10100000, 0x500000000000),   /* adjacent uaddr */
	};
	char err[128] = "";
	struct vnet_mem_table *t = vnet_mem_table_new(r, 3, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(vnet_mem_table_count(t), 3);
	assert_int_equal(vnet_mem_table_region(t, 0)->gpa, 0x100000);
	assert_int_equal(vnet_mem_table_region(t, 1)->gpa, 0x200000);
	assert_int_equal(vnet_mem_table_region(t, 2)->gpa, 0x300000);
	assert_null(vnet_mem_table_region(t, 3));
	vnet_mem_table_free(t);

	/* empty table: valid, everything fails */
	t = vnet_mem_table_new(r, 0, NULL, 0);
	assert_non_null(t);
	struct iovec iov[1];
	assert_int_equal(vnet_mem_translate(t, VNET_AS_GPA, 0, 1, VNET_MEM_READ, iov, 1, NULL),
			 -EFAULT);
	vnet_mem_table_free(t);
}

static void test_table_generation_differs(void **state)
{
	(void)state;
	struct vnet_mem_region r = reg(0x100000, 0x1000, 0x200000, 0x300000);
	struct vnet_mem_table *a = vnet_mem_table_new(&r, 1, NULL, 0);
	struct vnet_mem_table *b = vnet_mem_table_new(&r, 1, NULL, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(vnet_mem_table_generation(a), vnet_mem_table_generation(b));
	vnet_mem_table_free(a);
	vnet_mem_table_free(b);
}

/* ---- translation on a real two-region testmem ---- */

struct gfx {
	struct testmem m;
	const struct vnet_mem_table *t;
};

/* Two adjacent 64 KiB regions at 0x100000, a gap, then a read-only
 * 64 KiB region at 0x200000. */
static int setup_mem(void **state)
{
	struct gfx *f = calloc(1, sizeof(*f));
	testmem_begin(&f->m);
	testmem_add(&f->m, 0x100000, 64 * KIB, 0);
	testmem_add(&f->m, 0x110000, 64 * KIB, VNET_MEM_READ | VNET_MEM_WRITE);
	testmem_add(&f->m, 0x200000, 64 * KIB, VNET_MEM_READ);
	testmem_publish(&f->m);
	f->t = testmem_table(&f->m);
	*state = f;
	return 0;
}

static int teardown_mem(void **state)
{
	struct gfx *f = *state;
	testmem_fini(&f->m);
	free(f);
	return 0;
}

static void test_translate_inside_and_boundaries(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[4];
	int n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x100010, 100, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, 1);
	assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x100010));
	assert_int_equal(iov[0].iov_len, 100);

	/* exactly up to the end of the last mapped byte of region 3 */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x200000 + 64 * KIB - 16, 16, VNET_MEM_READ, iov,
			       4, NULL);
	assert_int_equal(n, 1);
	assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x200000 + 64 * KIB - 16));
	assert_int_equal(iov[0].iov_len, 16);

	/* one byte past the end */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x200000 + 64 * KIB - 16, 17, VNET_MEM_READ, iov,
			       4, NULL);
	assert_int_equal(n, -EFAULT);
	/* starting right after the end */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x200000 + 64 * KIB, 1, VNET_MEM_READ, iov, 4,
			       NULL);
	assert_int_equal(n, -EFAULT);
	/* one byte before the start */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x100000 - 1, 2, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, -EFAULT);
}

static void test_translate_wrap_and_zero_len(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[4];
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, ~0ull - 3, 8, VNET_MEM_READ, iov, 4,
					    NULL),
			 -EFAULT);
	/* wrap whose end lands inside mapped memory */
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x100010, ~0ull, VNET_MEM_READ, iov,
					    4, NULL),
			 -EFAULT);
	/* len 0: mapped → 0 pieces, unmapped → -EFAULT */
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x100010, 0, VNET_MEM_READ, iov, 4,
					    NULL),
			 0);
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x180000, 0, VNET_MEM_READ, iov, 4,
					    NULL),
			 -EFAULT);
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0, 0, VNET_MEM_READ, iov, 4, NULL),
			 -EFAULT);
}

static void test_translate_spanning_regions(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[4];
	/* 0x10fff0 .. 0x110010: 16 bytes in region 1, 16 bytes in region 2 */
	int n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x10fff0, 32, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x10fff0));
	assert_int_equal(iov[0].iov_len, 16);
	assert_ptr_equal(iov[1].iov_base, testmem_host(&f->m, 0x110000));
	assert_int_equal(iov[1].iov_len, 16);
	/* the host mappings really are separate */
	assert_ptr_not_equal((uint8_t *)iov[0].iov_base + 16, iov[1].iov_base);

	/* whole of both regions */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x100000, 128 * KIB, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, 2);
	assert_int_equal(iov[0].iov_len, 64 * KIB);
	assert_int_equal(iov[1].iov_len, 64 * KIB);

	/* max_iov too small */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x10fff0, 32, VNET_MEM_READ, iov, 1, NULL);
	assert_int_equal(n, -ENOBUFS);

	/* spanning from region 2 into the gap */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x11fff0, 32, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, -EFAULT);
	/* from region 1 through region 2 into the gap */
	n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x10fff0, 64 * KIB + 32, VNET_MEM_READ, iov, 4,
			       NULL);
	assert_int_equal(n, -EFAULT);
}

static void test_translate_uaddr_space(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[4];
	uint64_t ua = testmem_uaddr(0x100020);
	int n = vnet_mem_translate(f->t, VNET_AS_UADDR, ua, 64, VNET_MEM_READ, iov, 4, NULL);
	assert_int_equal(n, 1);
	assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x100020));
	/* a GPA is not a UADDR and vice versa */
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_UADDR, 0x100020, 64, VNET_MEM_READ, iov,
					    4, NULL),
			 -EFAULT);
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, ua, 64, VNET_MEM_READ, iov, 4, NULL),
			 -EFAULT);
	/* spanning two regions in UADDR space */
	n = vnet_mem_translate(f->t, VNET_AS_UADDR, testmem_uaddr(0x10fff8), 16, VNET_MEM_READ, iov,
			       4, NULL);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[1].iov_base, testmem_host(&f->m, 0x110000));
	void *p = vnet_mem_translate_contig(f->t, VNET_AS_UADDR, ua, 8, VNET_MEM_WRITE, NULL);
	assert_ptr_equal(p, testmem_host(&f->m, 0x100020));
}

static void test_uaddr_to_gpa(void **state)
{
	struct gfx *f = *state;
	uint64_t gpa = 0;
	assert_int_equal(vnet_mem_uaddr_to_gpa(f->t, testmem_uaddr(0x110123), &gpa), 0);
	assert_int_equal(gpa, 0x110123);
	assert_int_equal(vnet_mem_uaddr_to_gpa(f->t, testmem_uaddr(0x20ffff), &gpa), 0);
	assert_int_equal(gpa, 0x20ffff);
	assert_int_equal(vnet_mem_uaddr_to_gpa(f->t, testmem_uaddr(0x180000), &gpa), -EFAULT);
	assert_int_equal(vnet_mem_uaddr_to_gpa(f->t, 0x110123, &gpa), -EFAULT);
}

static void test_translate_access_rights(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[2];
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x200100, 16, VNET_MEM_READ, iov, 2,
					    NULL),
			 1);
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x200100, 16, VNET_MEM_WRITE, iov, 2,
					    NULL),
			 -EFAULT);
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x200100, 16,
					    VNET_MEM_READ | VNET_MEM_WRITE, iov, 2, NULL),
			 -EFAULT);
	assert_null(vnet_mem_translate_contig(f->t, VNET_AS_GPA, 0x200100, 16, VNET_MEM_WRITE,
					      NULL));
	/* prot 0 region is RW */
	assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x100100, 16, VNET_MEM_WRITE, iov, 2,
					    NULL),
			 1);
	uint8_t buf[4] = {1, 2, 3, 4};
	assert_int_equal(vnet_mem_write(f->t, VNET_AS_GPA, 0x200100, buf, 4, NULL), -EFAULT);
	assert_int_equal(vnet_mem_read(f->t, VNET_AS_GPA, 0x200100, buf, 4, NULL), 0);
}

static void test_translate_contig(void **state)
{
	struct gfx *f = *state;
	assert_ptr_equal(vnet_mem_translate_contig(f->t, VNET_AS_GPA, 0x10fff0, 16, VNET_MEM_READ,
						   NULL),
			 testmem_host(&f->m, 0x10fff0));
	/* spans two (adjacent) regions → refused */
	assert_null(vnet_mem_translate_contig(f->t, VNET_AS_GPA, 0x10fff0, 17, VNET_MEM_READ, NULL));
	assert_null(vnet_mem_translate_contig(f->t, VNET_AS_GPA, 0x180000, 1, VNET_MEM_READ, NULL));
	assert_null(vnet_mem_translate_contig(f->t, VNET_AS_GPA, ~0ull - 3, 8, VNET_MEM_READ, NULL));
}

static void test_translate_stale_hint(void **state)
{
	struct gfx *f = *state;
	struct iovec iov[2];
	static const unsigned hints[] = {12345, 64, 3, 2, 1, 0, ~0u};
	for (unsigned i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		unsigned h = hints[i];
		int n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x110040, 8, VNET_MEM_READ, iov, 2,
					   &h);
		assert_int_equal(n, 1);
		assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x110040));
		/* the updated hint must still not mislead the next lookup */
		n = vnet_mem_translate(f->t, VNET_AS_GPA, 0x200040, 8, VNET_MEM_READ, iov, 2, &h);
		assert_int_equal(n, 1);
		assert_ptr_equal(iov[0].iov_base, testmem_host(&f->m, 0x200040));
		h = hints[i];
		assert_ptr_equal(vnet_mem_translate_contig(f->t, VNET_AS_GPA, 0x100008, 8,
							   VNET_MEM_READ, &h),
				 testmem_host(&f->m, 0x100008));
		h = hints[i];
		assert_int_equal(vnet_mem_translate(f->t, VNET_AS_GPA, 0x180000, 8, VNET_MEM_READ,
						    iov, 2, &h),
				 -EFAULT);
	}
}

static void test_mem_read_write_across_boundary(void **state)
{
	struct gfx *f = *state;
	uint8_t src[64], dst[64];
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 1);
	unsigned hint = 0;
	assert_int_equal(vnet_mem_write(f->t, VNET_AS_GPA, 0x10ffe0, src, sizeof(src), &hint), 0);
	/* landed in both separate mappings */
	assert_memory_equal(testmem_host(&f->m, 0x10ffe0), src, 32);
	assert_memory_equal(testmem_host(&f->m, 0x110000), src + 32, 32);
	memset(dst, 0, sizeof(dst));
	assert_int_equal(vnet_mem_read(f->t, VNET_AS_GPA, 0x10ffe0, dst, sizeof(dst), &hint), 0);
	assert_memory_equal(dst, src, sizeof(src));
	assert_int_equal(vnet_mem_read(f->t, VNET_AS_UADDR, testmem_uaddr(0x10ffe0), dst,
				       sizeof(dst), NULL),
			 0);
	assert_memory_equal(dst, src, sizeof(src));
	/* into the gap: error */
	assert_int_equal(vnet_mem_read(f->t, VNET_AS_GPA, 0x11fff0, dst, 32, &hint), -EFAULT);
	assert_int_equal(vnet_mem_write(f->t, VNET_AS_GPA, 0x11fff0, src, 32, &hint), -EFAULT);
}

/* 64 regions with gaps between them: every first and last byte, and the
 * bytes just outside, through the binary-search path. */
static void test_translate_64_regions(void **state)
{
	(void)state;
	struct testmem m;
	testmem_begin(&m);
	for (unsigned i = 0; i < VNET_MEM_MAX_REGIONS; i++)
		testmem_add(&m, 0x1000000 + (uint64_t)i * 0x100000, 0x4000 + i * 0x1000, 0);
	testmem_publish(&m);
	const struct vnet_mem_table *t = testmem_table(&m);
	assert_int_equal(vnet_mem_table_count(t), VNET_MEM_MAX_REGIONS);
	unsigned hint = 0;
	struct iovec iov[2];
	for (unsigned i = 0; i < VNET_MEM_MAX_REGIONS; i++) {
		uint64_t start = 0x1000000 + (uint64_t)i * 0x100000;
		uint64_t last = start + 0x4000 + i * 0x1000 - 1;
		assert_int_equal(vnet_mem_translate(t, VNET_AS_GPA, start, 1, VNET_MEM_READ, iov, 2,
						    &hint),
				 1);
		assert_ptr_equal(iov[0].iov_base, testmem_host(&m, start));
		assert_int_equal(vnet_mem_translate(t, VNET_AS_GPA, last, 1, VNET_MEM_READ, iov, 2,
						    NULL),
				 1);
		assert_ptr_equal(iov[0].iov_base, testmem_host(&m, last));
		assert_int_equal(vnet_mem_translate(t, VNET_AS_GPA, last + 1, 1, VNET_MEM_READ, iov,
						    2, &hint),
				 -EFAULT);
		assert_int_equal(vnet_mem_translate(t, VNET_AS_GPA, start - 1, 1, VNET_MEM_READ, iov,
						    2, &hint),
				 -EFAULT);
		uint64_t gpa = 0;
		assert_int_equal(vnet_mem_uaddr_to_gpa(t, testmem_uaddr(last), &gpa), 0);
		assert_int_equal(gpa, last);
	}
	testmem_fini(&m);
}

/* ---- replacement ---- */

static void test_guestmem_replace_returns_old(void **state)
{
	(void)state;
	struct vnet_guestmem gm;
	assert_int_equal(vnet_guestmem_init(&gm), 0);
	const struct vnet_mem_table *empty = vnet_guestmem_table(&gm);
	assert_non_null(empty);
	assert_int_equal(vnet_mem_table_count(empty), 0);

	static uint8_t mem1[4096], mem2[4096];
	struct vnet_mem_region r1 = {.gpa = 0x1000, .size = 4096, .uaddr = 0x9000, .host = mem1};
	struct vnet_mem_region r2 = {.gpa = 0x1000, .size = 4096, .uaddr = 0x9000, .host = mem2};
	struct vnet_mem_table *t1 = vnet_mem_table_new(&r1, 1, NULL, 0);
	struct vnet_mem_table *t2 = vnet_mem_table_new(&r2, 1, NULL, 0);
	assert_non_null(t1);
	assert_non_null(t2);

	struct vnet_mem_table *old = vnet_guestmem_replace(&gm, t1);
	assert_ptr_equal(old, empty);
	vnet_mem_table_free(old);

	unsigned tok;
	const struct vnet_mem_table *t = vnet_guestmem_read_begin(&gm, &tok);
	assert_ptr_equal(t, t1);
	assert_ptr_equal(vnet_mem_translate_contig(t, VNET_AS_GPA, 0x1000, 1, VNET_MEM_READ, NULL),
			 mem1);
	vnet_guestmem_read_end(&gm, tok);

	old = vnet_guestmem_replace(&gm, t2);
	assert_ptr_equal(old, t1);
	vnet_mem_table_free(old);
	t = vnet_guestmem_read_begin(&gm, &tok);
	assert_ptr_equal(t, t2);
	assert_ptr_equal(vnet_mem_translate_contig(t, VNET_AS_GPA, 0x1000, 1, VNET_MEM_READ, NULL),
			 mem2);
	vnet_guestmem_read_end(&gm, tok);
	assert_ptr_equal(vnet_guestmem_table(&gm), t2);
	vnet_guestmem_destroy(&gm);
}

#define REPLACE_ROUNDS 1000
#define RGPA 0x100000ull
#define RSIZE 4096ull

struct reader_ctx {
	struct vnet_guestmem *gm;
	atomic_bool stop;
	atomic_ulong iterations;
	atomic_ulong errors;
	atomic_ulong last_seen;
};

/* Every mapping starts with its round number; a reader must see round
 * numbers that never go backwards, and never a failed translation. */
static void *reader_main(void *arg)
{
	struct reader_ctx *c = arg;
	uint64_t prev = 0;
	unsigned hint = 0;
	while (!atomic_load(&c->stop)) {
		unsigned tok;
		const struct vnet_mem_table *t = vnet_guestmem_read_begin(c->gm, &tok);
		struct iovec iov[2];
		int n = vnet_mem_translate(t, VNET_AS_GPA, RGPA, 8, VNET_MEM_READ, iov, 2, &hint);
		if (n == 1) {
			uint64_t v;
			memcpy(&v, iov[0].iov_base, sizeof(v));
			/* hold the bracket a while: the mapping must stay intact */
			for (int k = 0; k < 64; k++) {
				uint64_t again = *(const volatile uint64_t *)iov[0].iov_base;
				if (again != v)
					atomic_fetch_add(&c->errors, 1);
			}
			/* generation and region of the table: touches the table memory */
			const struct vnet_mem_region *r = vnet_mem_table_region(t, 0);
			if (v < prev || !r || r->host != iov[0].iov_base ||
			    vnet_mem_table_generation(t) == 0)
				atomic_fetch_add(&c->errors, 1);
			prev = v;
			atomic_store(&c->last_seen, v);
		} else {
			atomic_fetch_add(&c->errors, 1);
		}
		vnet_guestmem_read_end(c->gm, tok);
		atomic_fetch_add(&c->iterations, 1);
	}
	return NULL;
}

static void *map_round(uint64_t round)
{
	void *p = mmap(NULL, RSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memcpy(p, &round, sizeof(round));
	return p;
}

static struct vnet_mem_table *table_for(void *host)
{
	struct vnet_mem_region r = {.gpa = RGPA, .size = RSIZE, .uaddr = 0x7000000, .host = host};
	struct vnet_mem_table *t = vnet_mem_table_new(&r, 1, NULL, 0);
	assert_non_null(t);
	return t;
}

static void test_guestmem_concurrent_replace(void **state)
{
	(void)state;
	struct vnet_guestmem gm;
	assert_int_equal(vnet_guestmem_init(&gm), 0);
	void *cur = map_round(1);
	vnet_mem_table_free(vnet_guestmem_replace(&gm, table_for(cur)));

	struct reader_ctx c = {.gm = &gm};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &c), 0);

	uint64_t prev_gen = vnet_mem_table_generation(vnet_guestmem_table(&gm));
	for (uint64_t round = 2; round <= REPLACE_ROUNDS + 1; round++) {
		void *next = map_round(round);
		struct vnet_mem_table *t = table_for(next);
		assert_int_not_equal(vnet_mem_table_generation(t), prev_gen);
		prev_gen = vnet_mem_table_generation(t);
		struct vnet_mem_table *old = vnet_guestmem_replace(&gm, t);
		/* no reader can still use `old` or its memory */
		vnet_mem_table_free(old);
		assert_int_equal(munmap(cur, RSIZE), 0);
		cur = next;
		/* let the reader run now and then so brackets overlap replaces */
		if ((round & 63) == 0) {
			unsigned long it = atomic_load(&c.iterations);
			for (int spin = 0; spin < 1000000 && atomic_load(&c.iterations) == it; spin++)
				;
		}
	}
	/* the reader must observe the final table (bounded by time: a loaded
	 * machine may not schedule it for a while) */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (now = t0; atomic_load(&c.last_seen) != REPLACE_ROUNDS + 1 && now.tv_sec - t0.tv_sec < 10;
	     clock_gettime(CLOCK_MONOTONIC, &now))
		sched_yield();
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_true(atomic_load(&c.iterations) > 0);
	assert_int_equal(atomic_load(&c.last_seen), REPLACE_ROUNDS + 1);
	vnet_guestmem_destroy(&gm);
	munmap(cur, RSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_rejects_too_many_regions),
		cmocka_unit_test(test_table_rejects_bad_regions),
		cmocka_unit_test(test_table_accepts_adjacent_and_sorts),
		cmocka_unit_test(test_table_generation_differs),
		cmocka_unit_test_setup_teardown(test_translate_inside_and_boundaries, setup_mem,
						teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_wrap_and_zero_len, setup_mem,
						teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_spanning_regions, setup_mem,
						teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_uaddr_space, setup_mem, teardown_mem),
		cmocka_unit_test_setup_teardown(test_uaddr_to_gpa, setup_mem, teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_access_rights, setup_mem,
						teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_contig, setup_mem, teardown_mem),
		cmocka_unit_test_setup_teardown(test_translate_stale_hint, setup_mem, teardown_mem),
		cmocka_unit_test_setup_teardown(test_mem_read_write_across_boundary, setup_mem,
						teardown_mem),
		cmocka_unit_test(test_translate_64_regions),
		cmocka_unit_test(test_guestmem_replace_returns_old),
		cmocka_unit_test(test_guestmem_concurrent_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
