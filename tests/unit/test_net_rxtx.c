/*
 * The virtio-net frame path (net_rxtx.c) against a hostile driver written
 * with the raw ring writer: headers split across descriptors
 * (CVE-2022-2132), chains shorter than the header, runts, oversize frames,
 * wrong-direction descriptors, RX buffers too small, disabled rings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testmem.h"
#include "vnet/net_rxtx.h"

#define MEM_GPA 0x100000ull
#define RING_GPA MEM_GPA
#define BUF_GPA (MEM_GPA + 0x10000)
#define QSIZE 16
#define HDR 12u /* VERSION_1 header */

struct fx {
	struct testmem m;
	struct rawring r;
	struct vnet_vq vq;
	struct vnet_pkt_pool pool;
	struct vnet_net_stats st;
	struct vnet_pkt *pkts[VNET_NET_BURST];
	uint16_t next_desc;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	testmem_init(&f->m, MEM_GPA, 1 << 20, 2);
	rawring_init_at(&f->r, &f->m, QSIZE, RING_GPA);
	struct vnet_vq_config c = rawring_config(&f->r, 1ull << VIRTIO_F_VERSION_1, "rxtx");
	assert_int_equal(vnet_vq_attach(&f->vq, &f->m.gm, &c), 0);
	assert_int_equal(vnet_pkt_pool_init(&f->pool, 8, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vnet_vq_detach(&f->vq);
	vnet_pkt_pool_fini(&f->pool);
	testmem_fini(&f->m);
	free(f);
	return 0;
}

/* Adds a chain of pieces (gpa, len, writable) and publishes it. */
static void add_chain(struct fx *f, const uint64_t *gpa, const uint32_t *len,
		      const bool *writable, unsigned n)
{
	uint16_t head = f->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (uint16_t)(f->next_desc++ % QSIZE);
		uint16_t flags = (writable[i] ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		rawring_set_desc(&f->r, d, gpa[i], len[i], flags, (uint16_t)((d + 1) % QSIZE));
	}
	rawring_publish(&f->r, (uint16_t)(head % QSIZE));
}

static void fill_pattern(struct fx *f, uint64_t gpa, size_t len, uint8_t seed)
{
	uint8_t buf[4096];
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i);
	testmem_put(&f->m, gpa, buf, len);
}

static void check_pattern(const uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		assert_int_equal(p[i], (uint8_t)(seed + i));
}

static unsigned dequeue(struct fx *f, bool discard)
{
	bool notify;
	return vnet_net_dequeue(&f->vq, HDR, &f->pool, f->pkts, VNET_NET_BURST, discard, &f->st,
				&notify);
}

static void test_dequeue_single_descriptor(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr_mrg_rxbuf h = {.hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						     .csum_start = 34}};
	testmem_put(&f->m, BUF_GPA, &h, HDR);
	fill_pattern(f, BUF_GPA + HDR, 60, 7);
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + 60}, (bool[]){false}, 1);
	assert_int_equal(dequeue(f, false), 1);
	assert_int_equal(f->pkts[0]->len, 60);
	check_pattern(f->pkts[0]->data, 60, 7);
	assert_int_equal(f->pkts[0]->vhdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(f->pkts[0]->vhdr.csum_start, 34);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 0);
	assert_int_equal(f->st.packets, 1);
	vnet_pkt_free(f->pkts[0]);
}

/* CVE-2022-2132: the header arrives in three pieces, then the frame. */
static void test_dequeue_header_split_across_descriptors(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr_mrg_rxbuf h = {.hdr = {.gso_type = 0, .hdr_len = 0x1234}};
	const uint8_t *hb = (const uint8_t *)&h;
	testmem_put(&f->m, BUF_GPA, hb, 5);
	testmem_put(&f->m, BUF_GPA + 0x100, hb + 5, 3);
	testmem_put(&f->m, BUF_GPA + 0x200, hb + 8, 4);
	fill_pattern(f, BUF_GPA + 0x300, 100, 1);
	add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + 0x100, BUF_GPA + 0x200, BUF_GPA + 0x300},
		  (uint32_t[]){5, 3, 4, 100}, (bool[]){false, false, false, false}, 4);
	assert_int_equal(dequeue(f, false), 1);
	assert_int_equal(f->pkts[0]->len, 100);
	assert_int_equal(f->pkts[0]->vhdr.hdr_len, 0x1234);
	check_pattern(f->pkts[0]->data, 100, 1);
	vnet_pkt_free(f->pkts[0]);
}

/* A frame whose bytes start inside the last header descriptor. */
static void test_dequeue_header_and_frame_share_descriptor(void **state)
{
	struct fx *f = *state;
	fill_pattern(f, BUF_GPA, 200, 0);
	add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + 7}, (uint32_t[]){7, 193},
		  (bool[]){false, false}, 2);
	assert_int_equal(dequeue(f, false), 1);
	assert_int_equal(f->pkts[0]->len, 200 - HDR);
	check_pattern(f->pkts[0]->data, 200 - HDR, HDR);
	vnet_pkt_free(f->pkts[0]);
}

static void expect_dropped(struct fx *f, uint64_t *counter)
{
	assert_int_equal(dequeue(f, false), 0);
	assert_int_equal(*counter, 1);
	assert_int_equal(rawring_used_idx(&f->r), 1); /* the chain went back */
	assert_false(vnet_vq_is_broken(&f->vq));
	assert_int_equal(f->pool.nfree, 8); /* no buffer leaked */
}

/* CVE-2022-2132: a chain shorter than the header is dropped, never read past. */
static void test_dequeue_chain_shorter_than_header(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + 0x100}, (uint32_t[]){4, 4},
		  (bool[]){false, false}, 2);
	expect_dropped(f, &f->st.err_bad_chain);
}

static void test_dequeue_runt_frame(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + 13}, (bool[]){false}, 1);
	expect_dropped(f, &f->st.err_bad_chain);
}

static void test_dequeue_writable_descriptor_in_tx(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + 0x100}, (uint32_t[]){HDR + 60, 64},
		  (bool[]){false, true}, 2);
	expect_dropped(f, &f->st.err_bad_chain);
}

static void test_dequeue_frame_larger_than_buffer(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + f->pool.frame_room + 1},
		  (bool[]){false}, 1);
	expect_dropped(f, &f->st.drop_too_big);
}

/* A started but disabled ring: guest TX consumed and dropped. */
static void test_dequeue_discard(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + 60}, (bool[]){false}, 1);
	assert_int_equal(dequeue(f, true), 0);
	assert_int_equal(f->st.drop_disabled, 3);
	assert_int_equal(rawring_used_idx(&f->r), 3);
}

/* Without packet buffers, chains stay with the guest for later. */
static void test_dequeue_waits_for_buffers(void **state)
{
	struct fx *f = *state;
	struct vnet_pkt *held[8];
	assert_int_equal(vnet_pkt_alloc_burst(&f->pool, held, 8), 8);
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + 60}, (bool[]){false}, 1);
	assert_int_equal(dequeue(f, false), 0);
	assert_int_equal(rawring_used_idx(&f->r), 0);
	vnet_pkt_free_burst(held, 8);
	assert_int_equal(dequeue(f, false), 1);
	vnet_pkt_free(f->pkts[0]);
}

static struct vnet_pkt *make_pkt(struct fx *f, uint32_t len, uint8_t seed)
{
	struct vnet_pkt *p = vnet_pkt_alloc(&f->pool);
	assert_non_null(p);
	for (uint32_t i = 0; i < len; i++)
		p->data[i] = (uint8_t)(seed + i);
	p->len = len;
	return p;
}

static unsigned enqueue(struct fx *f, struct vnet_pkt **pkts, unsigned n)
{
	bool notify;
	return vnet_net_enqueue(&f->vq, HDR, pkts, n, &f->st, &notify);
}

static void test_enqueue_scatters_header_and_frame(void **state)
{
	struct fx *f = *state;
	/* Header split 5 + 7, then the frame across two more buffers. */
	add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + 0x100, BUF_GPA + 0x200, BUF_GPA + 0x300},
		  (uint32_t[]){5, 7, 50, 100}, (bool[]){true, true, true, true}, 4);
	struct vnet_pkt *p = make_pkt(f, 120, 3);
	assert_int_equal(enqueue(f, &p, 1), 1);
	assert_int_equal(rawring_used_idx(&f->r), 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, HDR + 120);
	struct virtio_net_hdr_mrg_rxbuf h;
	testmem_get(&f->m, BUF_GPA, &h, 5);
	testmem_get(&f->m, BUF_GPA + 0x100, (uint8_t *)&h + 5, 7);
	assert_int_equal(h.num_buffers, 1);
	assert_int_equal(h.hdr.flags, 0);
	uint8_t out[120];
	testmem_get(&f->m, BUF_GPA + 0x200, out, 50);
	testmem_get(&f->m, BUF_GPA + 0x300, out + 50, 70);
	check_pattern(out, 120, 3);
	assert_int_equal(f->st.packets, 1);
	vnet_pkt_free(p);
}

static void test_enqueue_buffer_too_small(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){HDR + 59}, (bool[]){true}, 1);
	struct vnet_pkt *p = make_pkt(f, 60, 0);
	assert_int_equal(enqueue(f, &p, 1), 1); /* consumed: dropped, not retried */
	assert_int_equal(f->st.drop_too_big, 1);
	assert_int_equal(f->st.packets, 0);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 0);
	vnet_pkt_free(p);
}

/* A readable RX chain is skipped; the packet goes into the next chain. */
static void test_enqueue_skips_readable_rx_chain(void **state)
{
	struct fx *f = *state;
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){2048}, (bool[]){false}, 1);
	add_chain(f, (uint64_t[]){BUF_GPA + 0x1000}, (uint32_t[]){2048}, (bool[]){true}, 1);
	struct vnet_pkt *p = make_pkt(f, 64, 9);
	assert_int_equal(enqueue(f, &p, 1), 1);
	assert_int_equal(f->st.err_bad_chain, 1);
	assert_int_equal(f->st.packets, 1);
	assert_int_equal(rawring_used_elem(&f->r, 0).len, 0);
	assert_int_equal(rawring_used_elem(&f->r, 1).len, HDR + 64);
	uint8_t out[64];
	testmem_get(&f->m, BUF_GPA + 0x1000 + HDR, out, 64);
	check_pattern(out, 64, 9);
	vnet_pkt_free(p);
}

static void test_enqueue_without_buffers(void **state)
{
	struct fx *f = *state;
	struct vnet_pkt *p[2] = {make_pkt(f, 60, 0), make_pkt(f, 60, 0)};
	add_chain(f, (uint64_t[]){BUF_GPA}, (uint32_t[]){2048}, (bool[]){true}, 1);
	assert_int_equal(enqueue(f, p, 2), 1);
	assert_int_equal(f->st.drop_no_buf, 1);
	vnet_pkt_free_burst(p, 2);
}

/* A whole burst: 16 chains, one used-index publication, data intact. */
static void test_enqueue_burst_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vnet_pkt *p[QSIZE];
	for (unsigned i = 0; i < QSIZE; i++)
		add_chain(f, (uint64_t[]){BUF_GPA + i * 0x800}, (uint32_t[]){0x800}, (bool[]){true},
			  1);
	unsigned sent = 0;
	while (sent < QSIZE) {
		unsigned k = vnet_pkt_alloc_burst(&f->pool, p, QSIZE - sent > 8 ? 8 : QSIZE - sent);
		for (unsigned i = 0; i < k; i++) {
			p[i]->len = 100 + sent + i;
			memset(p[i]->data, (int)(sent + i), p[i]->len);
		}
		assert_int_equal(enqueue(f, p, k), k);
		vnet_pkt_free_burst(p, k);
		sent += k;
	}
	assert_int_equal(rawring_used_idx(&f->r), QSIZE);
	for (unsigned i = 0; i < QSIZE; i++) {
		assert_int_equal(rawring_used_elem(&f->r, (uint16_t)i).len, HDR + 100 + i);
		uint8_t b;
		testmem_get(&f->m, BUF_GPA + i * 0x800 + HDR + 99 + i, &b, 1);
		assert_int_equal(b, (uint8_t)i);
	}
}

/* Every frame length around the copy routine's 16/32/256-byte steps, in one
 * buffer (the fast path) and split in two (the general one), both
 * directions: the bytes arrive exactly and nothing past them is written. */
static void test_copy_lengths_both_paths(void **state)
{
	struct fx *f = *state;
	static const uint32_t lens[] = {14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97,
					255, 256, 257, 1000, 1514, 1518};
	uint8_t out[2048], guard[64];
	memset(guard, 0xee, sizeof(guard));
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		uint32_t len = lens[li];
		for (int split = 0; split < 2; split++) {
			uint8_t seed = (uint8_t)(len + split);
			/* guest -> device */
			struct virtio_net_hdr_mrg_rxbuf h = {.hdr = {.csum_offset = 6}};
			testmem_put(&f->m, BUF_GPA, &h, HDR);
			fill_pattern(f, BUF_GPA + HDR, len, seed);
			uint32_t first = split ? HDR + len / 2 : HDR + len;
			add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + first},
				  (uint32_t[]){first, HDR + len - first}, (bool[]){false, false},
				  split ? 2 : 1);
			assert_int_equal(dequeue(f, false), 1);
			assert_int_equal(f->pkts[0]->len, len);
			assert_int_equal(f->pkts[0]->vhdr.csum_offset, 6);
			check_pattern(f->pkts[0]->data, len, seed);
			vnet_pkt_free(f->pkts[0]);
			/* device -> guest, a guard band right behind the frame */
			testmem_put(&f->m, BUF_GPA + HDR + len, guard, sizeof(guard));
			uint32_t room = HDR + len + (uint32_t)sizeof(guard);
			first = split ? HDR + len / 2 + 1 : room;
			add_chain(f, (uint64_t[]){BUF_GPA, BUF_GPA + first},
				  (uint32_t[]){first, room - first}, (bool[]){true, true},
				  split ? 2 : 1);
			struct vnet_pkt *p = make_pkt(f, len, (uint8_t)(seed + 1));
			assert_int_equal(enqueue(f, &p, 1), 1);
			vnet_pkt_free(p);
			testmem_get(&f->m, BUF_GPA, &h, HDR);
			assert_int_equal(h.num_buffers, 1);
			assert_int_equal(h.hdr.csum_offset, 0);
			testmem_get(&f->m, BUF_GPA + HDR, out, len + sizeof(guard));
			check_pattern(out, len, (uint8_t)(seed + 1));
			assert_memory_equal(out + len, guard, sizeof(guard));
		}
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_copy_lengths_both_paths),
		T(test_dequeue_single_descriptor),
		T(test_dequeue_header_split_across_descriptors),
		T(test_dequeue_header_and_frame_share_descriptor),
		T(test_dequeue_chain_shorter_than_header),
		T(test_dequeue_runt_frame),
		T(test_dequeue_writable_descriptor_in_tx),
		T(test_dequeue_frame_larger_than_buffer),
		T(test_dequeue_discard),
		T(test_dequeue_waits_for_buffers),
		T(test_enqueue_scatters_header_and_frame),
		T(test_enqueue_buffer_too_small),
		T(test_enqueue_skips_readable_rx_chain),
		T(test_enqueue_without_buffers),
		T(test_enqueue_burst_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
