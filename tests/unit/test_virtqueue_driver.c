/*
 * test_virtqueue_driver.c — driver side of the split virtqueue, run against
 * the device side (struct vnet_vq) on the same guest memory, and against a
 * hostile device that scribbles on the used ring.
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
#include "vnet/virtqueue_driver.h"

#define RINGD 0x100000ull /* driver rings */
#define INDD  0x140000ull /* indirect tables */
#define BUFD  0x180000ull /* data buffers; 0x200000 starts region 2 */
#define IMAX  8

#define F_INDIRECT VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVENT    VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_V1       VNET_BIT(VIRTIO_F_VERSION_1)

struct dfx {
	struct testmem m;
	struct vnet_vq_driver drv;
	bool drv_init;
	struct vnet_vq dev;
	unsigned tok;
	struct vnet_vq_chain ch;
	struct iovec iov[16];
	int cookies[64];
};

static int setup(void **state)
{
	struct dfx *f = calloc(1, sizeof(*f));
	testmem_init(&f->m, 0x100000, 0x200000, 2);
	testlog_capture();
	vnet_guestmem_read_begin(&f->m.gm, &f->tok);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct dfx *f = *state;
	vnet_vq_detach(&f->dev);
	if (f->drv_init)
		vnet_vq_driver_fini(&f->drv);
	vnet_guestmem_read_end(&f->m.gm, f->tok);
	testlog_release();
	testmem_fini(&f->m);
	free(f);
	return 0;
}

static struct vnet_vq_driver_config drv_config(struct dfx *f, uint16_t size, uint64_t features,
					       bool indirect)
{
	return (struct vnet_vq_driver_config){
		.size = size,
		.ring_host = testmem_host(&f->m, RINGD),
		.ring_gpa = RINGD,
		.indirect_host = indirect ? testmem_host(&f->m, INDD) : NULL,
		.indirect_gpa = indirect ? INDD : 0,
		.indirect_max = indirect ? IMAX : 0,
		.features = features,
		.name = "t/drv",
	};
}

/* Driver and device on one ring. */
static void start(struct dfx *f, uint16_t size, uint64_t features, bool indirect)
{
	struct vnet_vq_driver_config dc = drv_config(f, size, features, indirect);
	assert_int_equal(vnet_vq_driver_init(&f->drv, &dc), 0);
	f->drv_init = true;
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), size);
	struct vnet_vq_config vc = {
		.size = size,
		.desc_addr = f->drv.desc_gpa,
		.avail_addr = f->drv.avail_gpa,
		.used_addr = f->drv.used_gpa,
		.ring_as = VNET_AS_GPA,
		.features = features,
		.name = "t/dev",
	};
	assert_int_equal(vnet_vq_attach(&f->dev, &f->m.gm, &vc), 0);
}

static struct vnet_buf buf(unsigned i, uint32_t len)
{
	return (struct vnet_buf){.addr = BUFD + i * 0x100u, .len = len};
}

/* Device: pop one chain, push it back with `written`, flush. */
static uint16_t device_echo(struct dfx *f, uint32_t written)
{
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	vnet_vq_push(&f->dev, f->ch.head, written);
	vnet_vq_flush(&f->dev);
	return f->ch.head;
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void test_driver_init_rejects_bad_sizes(void **state)
{
	struct dfx *f = *state;
	static const uint16_t bad[] = {0, 3, 100, 65535};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vnet_vq_driver_config dc = drv_config(f, bad[i], F_V1, false);
		struct vnet_vq_driver d;
		memset(&d, 0, sizeof(d));
		assert_int_equal(vnet_vq_driver_init(&d, &dc), -EINVAL);
	}
	/* ring_bytes covers all three areas, 4 KiB-aligned used ring included */
	assert_true(vnet_vq_driver_ring_bytes(256) >=
		    vring_desc_bytes(256) + vring_avail_bytes(256) + vring_used_bytes(256));
	assert_true(vnet_vq_driver_ring_bytes(1) >= vring_desc_bytes(1) + vring_avail_bytes(1) +
							   vring_used_bytes(1));
}

static void test_driver_layout(void **state)
{
	struct dfx *f = *state;
	memset(testmem_host(&f->m, RINGD), 0xff, vnet_vq_driver_ring_bytes(64));
	start(f, 64, F_V1, false);
	assert_int_equal(f->drv.desc_gpa, RINGD);
	assert_int_equal(f->drv.desc_gpa % VRING_DESC_ALIGN, 0);
	assert_int_equal(f->drv.avail_gpa % VRING_AVAIL_ALIGN, 0);
	assert_int_equal(f->drv.used_gpa % VRING_USED_ALIGN, 0);
	assert_true(f->drv.avail_gpa >= f->drv.desc_gpa + vring_desc_bytes(64));
	assert_true(f->drv.used_gpa >= f->drv.avail_gpa + vring_avail_bytes(64));
	assert_true(f->drv.used_gpa + vring_used_bytes(64) <=
		    RINGD + vnet_vq_driver_ring_bytes(64));
	/* rings zeroed */
	assert_int_equal(load16(&f->drv.avail->idx), 0);
	assert_int_equal(load16(&f->drv.used->idx), 0);
	assert_int_equal(load16(&f->drv.avail->flags) & ~VRING_AVAIL_F_NO_INTERRUPT, 0);
}

static void test_driver_roundtrip(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b[2] = {buf(0, 100), buf(1, 200)};
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 1, &f->cookies[0], false), 0);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 14);
	/* not visible before kick_prepare */
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 0);
	assert_true(vnet_vq_driver_kick_prepare(&f->drv));
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	assert_int_equal(f->ch.n_out, 1);
	assert_int_equal(f->ch.n_in, 1);
	assert_int_equal(f->ch.out_len, 100);
	assert_int_equal(f->ch.in_len, 200);
	assert_ptr_equal(f->iov[0].iov_base, testmem_host(&f->m, b[0].addr));
	assert_ptr_equal(f->iov[1].iov_base, testmem_host(&f->m, b[1].addr));
	assert_false(vnet_vq_driver_has_used(&f->drv));
	uint32_t written = 0;
	assert_null(vnet_vq_driver_get_used(&f->drv, &written));
	vnet_vq_push(&f->dev, f->ch.head, 50);
	vnet_vq_flush(&f->dev);
	assert_true(vnet_vq_driver_has_used(&f->drv));
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &written), &f->cookies[0]);
	assert_int_equal(written, 50);
	assert_null(vnet_vq_driver_get_used(&f->drv, &written));
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 16);
	assert_false(f->drv.broken);
	assert_false(vnet_vq_is_broken(&f->dev));
}

static void test_driver_add_errors(void **state)
{
	struct dfx *f = *state;
	start(f, 4, F_V1, false);
	struct vnet_buf b[5] = {buf(0, 8), buf(1, 8), buf(2, 8), buf(3, 8), buf(4, 8)};
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 0, 0, &f->cookies[0], false), -EINVAL);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, NULL, false), -EINVAL);
	/* longer than the ring: can never fit */
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 5, 0, &f->cookies[0], false), -EINVAL);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 4);

	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 2, 0, &f->cookies[0], false), 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b + 2, 1, 1, &f->cookies[1], false), 0);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, &f->cookies[2], false), -ENOSPC);
	/* indirect without tables configured: needs ring descriptors like before */
	assert_int_not_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, &f->cookies[2], true), 0);
	vnet_vq_driver_kick_prepare(&f->drv);

	device_echo(f, 0);
	uint32_t w;
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[0]);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 2);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 3, 0, &f->cookies[2], false), -ENOSPC);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 0, 2, &f->cookies[2], false), 0);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 0);
}

static void test_driver_indirect(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1 | F_INDIRECT, true);
	struct vnet_buf b[IMAX + 1];
	for (unsigned i = 0; i <= IMAX; i++)
		b[i] = buf(i, 10 + i);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 3, 2, &f->cookies[0], true), 0);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 15);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, IMAX, 1, &f->cookies[1], true), -EINVAL);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, IMAX, 0, &f->cookies[1], true), 0);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 14);
	vnet_vq_driver_kick_prepare(&f->drv);

	/* the ring descriptor really is an INDIRECT one */
	uint16_t head = f->drv.avail->ring[0];
	assert_true(f->drv.desc[head].flags & VRING_DESC_F_INDIRECT);
	assert_int_equal(f->drv.desc[head].len, 5 * sizeof(struct vring_desc));

	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	assert_int_equal(f->ch.n_out, 3);
	assert_int_equal(f->ch.n_in, 2);
	assert_int_equal(f->ch.out_len, 10 + 11 + 12);
	assert_int_equal(f->ch.in_len, 13 + 14);
	for (unsigned i = 0; i < 5; i++) {
		assert_ptr_equal(f->iov[i].iov_base, testmem_host(&f->m, b[i].addr));
		assert_int_equal(f->iov[i].iov_len, b[i].len);
	}
	vnet_vq_push(&f->dev, f->ch.head, 27);
	device_echo(f, 0);
	assert_false(vnet_vq_is_broken(&f->dev));
	uint32_t w = 0;
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[0]);
	assert_int_equal(w, 27);
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[1]);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 16);
}

static void test_driver_num_free_across_wrap(void **state)
{
	struct dfx *f = *state;
	start(f, 8, F_V1, false);
	struct vnet_buf b[3] = {buf(0, 16), buf(1, 16), buf(2, 16)};
	unsigned long total = 0;
	for (unsigned round = 0; total < 70000; round++) {
		/* fill with chains of 1..3 descriptors (k-1 out, 1 in) until full */
		unsigned added = 0, used_desc = 0;
		for (;;) {
			unsigned k = 1 + (round + added) % 3;
			int rc = vnet_vq_driver_add(&f->drv, b, k - 1, 1, &f->cookies[added], false);
			if (rc == -ENOSPC) {
				assert_true(used_desc + k > 8);
				break;
			}
			assert_int_equal(rc, 0);
			added++;
			used_desc += k;
			assert_int_equal(vnet_vq_driver_num_free(&f->drv), 8 - used_desc);
		}
		vnet_vq_driver_kick_prepare(&f->drv);
		for (unsigned i = 0; i < added; i++)
			device_echo(f, i);
		for (unsigned i = 0; i < added; i++) {
			uint32_t w = 99;
			assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[i]);
			assert_int_equal(w, i);
		}
		assert_int_equal(vnet_vq_driver_num_free(&f->drv), 8);
		total += added;
	}
	/* 16-bit indices wrapped on both sides */
	assert_int_equal(load16(&f->drv.avail->idx), (uint16_t)total);
	assert_int_equal(load16(&f->drv.used->idx), (uint16_t)total);
	assert_false(f->drv.broken);
	assert_false(vnet_vq_is_broken(&f->dev));
}

static void test_driver_kick_no_notify(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b = buf(0, 8);
	vnet_vq_disable_notify(&f->dev);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[0], false), 0);
	assert_false(vnet_vq_driver_kick_prepare(&f->drv));
	assert_true(vnet_vq_enable_notify(&f->dev)); /* the chain is pending */
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[1], false), 0);
	assert_true(vnet_vq_driver_kick_prepare(&f->drv));
	assert_int_equal(load16(&f->drv.avail->idx), 2);
}

static void test_driver_kick_event_idx(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1 | F_EVENT, false);
	struct vnet_buf b = buf(0, 8);
	uint16_t *avail_event = vring_avail_event(f->drv.used, 16);
	store16(avail_event, 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[0], false), 0);
	assert_true(vnet_vq_driver_kick_prepare(&f->drv)); /* 0→1 crosses 0 */
	store16(avail_event, 5);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[1], false), 0);
	assert_false(vnet_vq_driver_kick_prepare(&f->drv)); /* →2 */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[2 + i], false),
				 0);
	assert_false(vnet_vq_driver_kick_prepare(&f->drv)); /* →5 */
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[5], false), 0);
	assert_true(vnet_vq_driver_kick_prepare(&f->drv)); /* →6 crosses 5 */
	assert_false(vnet_vq_driver_kick_prepare(&f->drv)); /* nothing new */

	/* the device side drives avail_event: poll all, then re-enable */
	for (int i = 0; i < 6; i++)
		assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	assert_false(vnet_vq_enable_notify(&f->dev));
	assert_int_equal(load16(avail_event), 6);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[6], false), 0);
	assert_true(vnet_vq_driver_kick_prepare(&f->drv));
}

static void test_driver_enable_disable_cb(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	vnet_vq_driver_disable_cb(&f->drv);
	assert_true(load16(&f->drv.avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	struct vnet_buf b = buf(0, 8);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 0, 1, &f->cookies[0], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	vnet_vq_push(&f->dev, f->ch.head, 8);
	assert_false(vnet_vq_flush(&f->dev)); /* device honours NO_INTERRUPT */
	assert_true(vnet_vq_driver_enable_cb(&f->drv)); /* used pending: reap again */
	assert_false(load16(&f->drv.avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	uint32_t w;
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[0]);
	assert_false(vnet_vq_driver_enable_cb(&f->drv));
	/* now the device wants to interrupt */
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 0, 1, &f->cookies[1], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	vnet_vq_push(&f->dev, f->ch.head, 8);
	assert_true(vnet_vq_flush(&f->dev));
}

static void test_driver_enable_cb_event_idx(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1 | F_EVENT, false);
	uint16_t *used_event = vring_used_event(f->drv.avail, 16);
	struct vnet_buf b = buf(0, 8);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 0, 1, &f->cookies[i], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	for (int i = 0; i < 3; i++)
		device_echo(f, 1);
	uint32_t w;
	for (int i = 0; i < 2; i++)
		assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[i]);
	store16(used_event, 0xbeef);
	assert_true(vnet_vq_driver_enable_cb(&f->drv)); /* one left */
	assert_int_equal(load16(used_event), 2);
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[2]);
	assert_false(vnet_vq_driver_enable_cb(&f->drv));
	assert_int_equal(load16(used_event), 3);
	/* device: next used entry (3→4) crosses used_event 3 → notify */
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 0, 1, &f->cookies[3], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
	vnet_vq_push(&f->dev, f->ch.head, 1);
	assert_true(vnet_vq_flush(&f->dev));
	/* everything reaped, then disabled: the device's next used entries do
	 * not interrupt */
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[3]);
	vnet_vq_driver_disable_cb(&f->drv);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 0, 1, &f->cookies[4 + i], false),
				 0);
		vnet_vq_driver_kick_prepare(&f->drv);
		assert_int_equal(vnet_vq_pop(&f->dev, &f->ch, f->iov, 16), 1);
		vnet_vq_push(&f->dev, f->ch.head, 1);
		assert_false(vnet_vq_flush(&f->dev));
		assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[4 + i]);
	}
}

/* Hostile device: writes a used entry directly. */
static void hostile_used(struct dfx *f, uint32_t id)
{
	uint16_t idx = load16(&f->drv.used->idx);
	f->drv.used->ring[idx % f->drv.size].id = id;
	f->drv.used->ring[idx % f->drv.size].len = 0;
	store16(&f->drv.used->idx, (uint16_t)(idx + 1));
}

static void expect_driver_broken(struct dfx *f)
{
	uint32_t w;
	assert_null(vnet_vq_driver_get_used(&f->drv, &w));
	assert_true(f->drv.broken);
	assert_null(vnet_vq_driver_get_used(&f->drv, &w));
	struct vnet_buf b = buf(0, 8);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[9], false), -EIO);
	assert_int_equal(testlog_count_containing("t/drv"), 1);
}

static void test_driver_used_id_out_of_range(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b = buf(0, 8);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[0], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	testlog_clear();
	hostile_used(f, 16);
	expect_driver_broken(f);
}

static void test_driver_used_id_huge(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	testlog_clear();
	hostile_used(f, 0x10000); /* truncates to 0 as u16 */
	expect_driver_broken(f);
}

static void test_driver_used_not_in_flight(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b[2] = {buf(0, 8), buf(1, 8)};
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 2, 0, &f->cookies[0], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	uint16_t head = f->drv.avail->ring[0];
	uint16_t second = f->drv.desc[head].next; /* in range, but not a head */
	testlog_clear();
	hostile_used(f, second);
	expect_driver_broken(f);
}

static void test_driver_used_twice(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b = buf(0, 8);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[0], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	uint16_t head = f->drv.avail->ring[0];
	testlog_clear();
	hostile_used(f, head);
	uint32_t w;
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[0]);
	hostile_used(f, head); /* returned again */
	expect_driver_broken(f);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 16);
}

static void test_driver_used_idx_jump(void **state)
{
	/* the device claims more used entries than chains were made available */
	struct dfx *f = *state;
	start(f, 16, F_V1, false);
	struct vnet_buf b = buf(0, 8);
	assert_int_equal(vnet_vq_driver_add(&f->drv, &b, 1, 0, &f->cookies[0], false), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	uint16_t head = f->drv.avail->ring[0];
	f->drv.used->ring[0].id = head;
	f->drv.used->ring[1].id = head;
	store16(&f->drv.used->idx, 2);
	testlog_clear();
	/* refusing at once or after reaping the one real entry are both fine */
	uint32_t w;
	void *c = vnet_vq_driver_get_used(&f->drv, &w);
	assert_true(c == NULL || c == &f->cookies[0]);
	expect_driver_broken(f);
}

struct release_log {
	unsigned count[64];
	unsigned calls;
	int *base;
};

static void release_cb(void *cookie, void *arg)
{
	struct release_log *l = arg;
	l->count[(int *)cookie - l->base]++;
	l->calls++;
}

static void test_driver_reset(void **state)
{
	struct dfx *f = *state;
	start(f, 16, F_V1 | F_INDIRECT, true);
	struct vnet_buf b[3] = {buf(0, 8), buf(1, 8), buf(2, 8)};
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, &f->cookies[0], false), 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 2, 1, &f->cookies[1], false), 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 2, 1, &f->cookies[2], true), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, &f->cookies[3], false), 0);
	device_echo(f, 0);
	uint32_t w;
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[0]);
	/* re-uses the freed descriptors (head 0 with a LIFO free list) */
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 1, 0, &f->cookies[5], false), 0);

	struct release_log l = {.base = f->cookies};
	vnet_vq_driver_reset(&f->drv, release_cb, &l);
	assert_int_equal(l.calls, 4);
	assert_int_equal(l.count[0], 0);
	assert_int_equal(l.count[1], 1);
	assert_int_equal(l.count[2], 1);
	assert_int_equal(l.count[3], 1);
	assert_int_equal(l.count[5], 1);
	assert_int_equal(vnet_vq_driver_num_free(&f->drv), 16);
	assert_int_equal(load16(&f->drv.avail->idx), 0);
	assert_int_equal(load16(&f->drv.used->idx), 0);
	assert_null(vnet_vq_driver_get_used(&f->drv, &w));

	/* a fresh device on the reset ring works */
	vnet_vq_detach(&f->dev);
	memset(&f->dev, 0, sizeof(f->dev));
	struct vnet_vq_config vc = {.size = 16, .desc_addr = f->drv.desc_gpa,
				    .avail_addr = f->drv.avail_gpa, .used_addr = f->drv.used_gpa,
				    .features = F_V1 | F_INDIRECT, .name = "t/dev"};
	assert_int_equal(vnet_vq_attach(&f->dev, &f->m.gm, &vc), 0);
	assert_int_equal(vnet_vq_driver_add(&f->drv, b, 2, 1, &f->cookies[4], true), 0);
	vnet_vq_driver_kick_prepare(&f->drv);
	device_echo(f, 3);
	assert_ptr_equal(vnet_vq_driver_get_used(&f->drv, &w), &f->cookies[4]);
	assert_int_equal(w, 3);
	vnet_vq_driver_reset(&f->drv, release_cb, &l);
	assert_int_equal(l.calls, 4);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_driver_init_rejects_bad_sizes),
		T(test_driver_layout),
		T(test_driver_roundtrip),
		T(test_driver_add_errors),
		T(test_driver_indirect),
		T(test_driver_num_free_across_wrap),
		T(test_driver_kick_no_notify),
		T(test_driver_kick_event_idx),
		T(test_driver_enable_disable_cb),
		T(test_driver_enable_cb_event_idx),
		T(test_driver_used_id_out_of_range),
		T(test_driver_used_id_huge),
		T(test_driver_used_not_in_flight),
		T(test_driver_used_twice),
		T(test_driver_used_idx_jump),
		T(test_driver_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
