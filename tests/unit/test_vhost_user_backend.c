/*
 * test_vhost_user_backend.c — the vhost-user back-end (vnet_vhu_dev) driven
 * by a raw front-end (tests/common/vhu_peer) over a socket, with the test
 * as the guest driver on the same memfd memory: negotiation, ring states,
 * REPLY_ACK, memory tables, data through the rings, disconnects.
 * Malformed input lives in test_vhost_user_badinput.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
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
#define F_PROTO BIT(VHOST_USER_F_PROTOCOL_FEATURES)
#define ALL_F   (~0ull & ~BIT(VHOST_F_LOG_ALL))
#define P_ALL   (~0ull)
#define P_NOACK (~BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK))

struct fx {
	unsigned fds0;
	struct vhu_conn c;
	bool open;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	testlog_capture();
	f->fds0 = vhu_count_fds();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->open)
		vhu_conn_close(&f->c);
	testlog_release();
	free(f);
	return 0;
}

static struct vhu_conn *open_conn(struct fx *f, const struct vnet_vhu_backend_config *cfg,
				  const char *memname)
{
	struct vnet_vhu_backend_config d = vhu_conn_default_config();
	assert_int_equal(vhu_conn_open(&f->c, cfg ? cfg : &d, memname, -1, -1), 0);
	f->open = true;
	return &f->c;
}

static void close_conn(struct fx *f)
{
	vhu_conn_close(&f->c);
	f->open = false;
	assert_int_equal(vhu_count_fds(), f->fds0);
}

/* ---------------- A. happy path ---------------- */

static void test_default_features(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, NULL);
	uint64_t v;
	assert_int_equal(vhu_conn_set(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_FEATURES, &v), 0);
	assert_true(v & BIT(VIRTIO_F_VERSION_1));
	assert_true(v & BIT(VIRTIO_F_RING_INDIRECT_DESC));
	assert_true(v & BIT(VIRTIO_F_RING_EVENT_IDX));
	assert_true(v & F_PROTO);
	assert_false(v & BIT(VIRTIO_NET_F_MQ)); /* one queue pair */
	assert_false(v & BIT(VIRTIO_NET_F_MTU));
	assert_false(v & BIT(VIRTIO_NET_F_MAC));
	assert_false(v & BIT(VHOST_F_LOG_ALL));

	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &v), 0);
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_MQ));
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_STATUS));
	assert_false(v & BIT(VHOST_USER_PROTOCOL_F_CONFIG)); /* only with a MAC to serve */
	assert_false(v & BIT(VHOST_USER_PROTOCOL_F_NET_MTU));
	assert_false(v & BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	assert_false(v & BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ));
	assert_false(v & BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, v), 0);
	assert_int_equal(c->dev->acked_protocol, v);

	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_MAX_MEM_SLOTS, &v), 0);
	assert_true(v >= 32);
	close_conn(*state);
}

static void test_features_mq_mtu_mac(void **state)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.max_queue_pairs = 2;
	cfg.mtu = 9000;
	cfg.has_mac = true;
	memcpy(cfg.mac, "\x52\x54\x00\x12\x34\x56", 6);
	struct vhu_conn *c = open_conn(*state, &cfg, NULL);
	uint64_t v;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_FEATURES, &v), 0);
	assert_true(v & BIT(VIRTIO_NET_F_MQ));
	assert_true(v & BIT(VIRTIO_NET_F_MTU));
	assert_true(v & BIT(VIRTIO_NET_F_MAC));
	assert_true(v & BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &v), 0);
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_NET_MTU));
	assert_true(v & BIT(VHOST_USER_PROTOCOL_F_CONFIG)); /* a MAC to serve */
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, v), 0);
	c->ack = true;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &v), 0);
	assert_int_equal(v, 2);

	/* GET_CONFIG: the whole virtio_net_config */
	struct vnet_vhu_config req = {.offset = 0, .size = sizeof(struct virtio_net_config)};
	struct vhu_reply r;
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_CONFIG, VHU_F, &req, 12 + req.size, &r),
			 0);
	assert_int_equal(r.size, 12 + sizeof(struct virtio_net_config));
	struct virtio_net_config nc;
	memcpy(&nc, r.payload.config.region, sizeof(nc));
	assert_memory_equal(nc.mac, cfg.mac, 6);
	assert_int_equal(nc.mtu, 9000);
	assert_int_equal(nc.max_virtqueue_pairs, 2);
	assert_int_equal(nc.status & VIRTIO_NET_S_LINK_UP, VIRTIO_NET_S_LINK_UP);

	/* NET_SET_MTU within range works, beyond is a clean failure (ack 1) */
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_NET_SET_MTU, 1500), 0);
	assert_int_equal(c->dev->mtu, 1500);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_NET_SET_MTU, 9001), 1);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_NET_SET_MTU, 20), 1);
	assert_int_equal(c->dev->mtu, 1500);
	/* rings 2, 3 exist on a 2-pair device */
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 3, 64), 0);
	close_conn(*state);
}

static void test_happy_tx(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_true(c->ack);
	assert_int_equal(c->dev->acked_features, c->features);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_ENABLED);
	assert_int_equal(vnet_vhu_ring_kick_fd(c->dev, 1) >= 0, 1);

	/* guest TX: 5 frames, all reach the device intact, interrupt asked */
	assert_int_equal(vhu_guest_tx(c, 1, 5, 1000, 10), 5);
	assert_true(vhu_eventfd_fired(c->kick[1]));
	uint32_t seqs[8];
	bool notify;
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, &notify, NULL), 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(seqs[i], 10 + i);
	assert_true(notify); /* first decision under EVENT_IDX */
	assert_true(vhu_eventfd_fired(c->call[1]));
	assert_int_equal(c->dev->rings[1].interrupts, 1);
	assert_int_equal(vhu_guest_reap(c, 1), 5);

	/* the driver asks again: the next burst interrupts again */
	assert_false(vnet_vq_driver_enable_cb(&c->drv[1]));
	assert_int_equal(vhu_guest_tx(c, 1, 3, 60, 20), 3);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, &notify, NULL), 3);
	assert_true(notify);
	assert_true(vhu_eventfd_fired(c->call[1]));
	assert_int_equal(vhu_guest_reap(c, 1), 3);
	/* nothing more: empty burst, no interrupt */
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, &notify, NULL), 0);
	assert_false(notify);
	assert_false(vhu_eventfd_fired(c->call[1]));
	close_conn(*state);
}

static void test_happy_rx(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_guest_rx_post(c, 0, 4), 4);
	bool notify;
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(vhu_device_rx(c, 0, 50 + i, 64 + 100 * i, &notify), 1);
	assert_true(vhu_eventfd_fired(c->call[0]));
	/* no buffer left */
	assert_int_equal(vhu_device_rx(c, 0, 99, 64, &notify), 0);
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t s, l;
		assert_int_equal(vhu_guest_rx_get(c, 0, &s, &l), 1);
		assert_int_equal(s, 50 + i);
		assert_int_equal(l, 64 + 100 * i);
	}
	close_conn(*state);
}

/* Same, without EVENT_IDX: NO_INTERRUPT suppresses the call eventfd. */
static void test_no_event_idx_interrupt_suppression(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F & ~BIT(VIRTIO_F_RING_EVENT_IDX), P_ALL), 0);
	uint32_t seqs[4];
	bool notify;
	vnet_vq_driver_disable_cb(&c->drv[1]);
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 1), 2);
	/* A started ring asks for no kicks (the consumer polls)... */
	assert_false(vhu_eventfd_fired(c->kick[1]));
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, &notify, NULL), 2);
	assert_false(notify);
	assert_false(vhu_eventfd_fired(c->call[1]));
	assert_int_equal(vhu_guest_reap(c, 1), 2);
	vnet_vq_driver_enable_cb(&c->drv[1]);
	/* ...until the device asks for them (before sleeping on the kick fd). */
	enum vnet_vhu_ring_state st;
	unsigned tok;
	struct vnet_vq *vq = vnet_vhu_ring_enter(c->dev, 1, &st, &tok);
	assert_non_null(vq);
	assert_false(vnet_vq_enable_notify(vq));
	vnet_vhu_ring_exit(c->dev, 1, tok, false);
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 3), 2);
	assert_true(vhu_eventfd_fired(c->kick[1]));
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, &notify, NULL), 2);
	assert_true(notify);
	assert_true(vhu_eventfd_fired(c->call[1]));
	close_conn(*state);
}

static void test_get_vring_base_stops_and_resumes(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	uint32_t seqs[16];
	assert_int_equal(vhu_guest_tx(c, 1, 5, 64, 0), 5);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 16, NULL, NULL), 5);
	assert_int_equal(vhu_guest_reap(c, 1), 5);
	/* two more made available but not consumed */
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 5), 2);

	struct vnet_vhu_vring_state s = {.index = 1};
	struct vhu_reply r;
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &s, sizeof(s), &r), 0);
	assert_int_equal(r.size, 8);
	assert_int_equal(r.payload.state.index, 1);
	assert_int_equal(r.payload.state.num, 5);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	enum vnet_vhu_ring_state st;
	unsigned tok;
	assert_null(vnet_vhu_ring_enter(c->dev, 1, &st, &tok));
	assert_int_equal(vhu_device_pop(c, 1, seqs, 16, NULL, NULL), -ENOENT);
	/* the other ring is untouched */
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_ENABLED);
	/* a stopped ring answers GET_VRING_BASE again with the same value */
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &s, sizeof(s), &r), 0);
	assert_int_equal(r.payload.state.num, 5);

	/* resume from 5: the two pending frames come out, once */
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_BASE, 1, 5), 0);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, c->kick[1]), 0);
	/* a disable/enable is not needed: enable was kept */
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 16, NULL, NULL), 2);
	assert_int_equal(seqs[0], 5);
	assert_int_equal(seqs[1], 6);
	assert_int_equal(vhu_guest_reap(c, 1), 2);
	assert_int_equal(vhu_conn_traffic(c, 100), 0);
	close_conn(*state);
}

static void test_status(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_SET_STATUS, 0x0f), 0);
	uint64_t v;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_STATUS, &v), 0);
	assert_int_equal(v, 0x0f);
	close_conn(*state);
}

/* The packet-level burst API on the same rings. */
static void test_packet_bursts(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	unsigned hdr = c->dev->hdr_len;
	assert_int_equal(hdr, vnet_net_hdr_len(c->features));
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 64, 0), 0);
	/* guest TX: header + 60-byte frame */
	assert_int_equal(vhu_guest_tx(c, 1, 3, hdr + 60, 0), 3);
	/* zero the virtio-net headers (the pattern would be bogus offload flags) */
	for (unsigned k = 0; k < 3; k++)
		memset(c->mem + (VHU_BUF_OFF(1) + k * VHU_BUF_SIZE), 0, hdr);
	struct vnet_pkt *pkts[8];
	assert_int_equal(vnet_vhu_rx_burst(c->dev, 0, &pool, pkts, 8), 3);
	assert_int_equal(vhu_guest_reap(c, 1), 3);
	/* and back to the guest's RX ring */
	assert_int_equal(vhu_guest_rx_post(c, 0, 4), 4);
	assert_int_equal(vnet_vhu_tx_burst(c->dev, 0, pkts, 3), 3);
	vnet_pkt_free_burst(pkts, 3);
	unsigned got = 0;
	uint32_t w;
	while (vnet_vq_driver_get_used(&c->drv[0], &w)) {
		assert_int_equal(w, hdr + 60);
		got++;
	}
	assert_int_equal(got, 3);
	assert_int_equal(c->dev->rings[1].stats.packets, 3);
	vnet_pkt_pool_fini(&pool);
	close_conn(*state);
}

/* ---------------- B. ring state machine ---------------- */

static void test_state_without_protocol_features(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F & ~F_PROTO, 0), 0);
	assert_false(c->dev->acked_features & F_PROTO);
	assert_int_equal(vhu_conn_set_mem(c), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_conn_ring(c, 1, 64), 0);
	/* enabled as soon as started */
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_STOPPED);
	uint32_t seqs[4];
	enum vnet_vhu_ring_state st;
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 0), 2);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, NULL, &st), 2);
	assert_int_equal(st, VNET_VHU_RING_ENABLED);
	close_conn(*state);
}

static void test_state_enable_disable(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_set_mem(c), 0);
	/* stopped before kick, even with num/addr known */
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 64), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_conn_ring(c, 1, 64), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_DISABLED);
	/* disabled: the data plane sees the ring but must drop TX */
	uint32_t seqs[4];
	enum vnet_vhu_ring_state st;
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 0), 2);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, NULL, &st), 2);
	assert_int_equal(st, VNET_VHU_RING_DISABLED);
	/* and the packet API discards (consumes without producing) */
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 8, 0), 0);
	struct vnet_pkt *pkts[4];
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 2), 2);
	assert_int_equal(vnet_vhu_rx_burst(c->dev, 0, &pool, pkts, 4), 0);
	assert_int_equal(vhu_guest_reap(c, 1), 4);
	assert_int_equal(c->dev->rings[1].stats.drop_disabled, 2);
	vnet_pkt_pool_fini(&pool);

	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 0), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_DISABLED);
	/* enable before start: remembered, applies when the ring starts */
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_conn_ring(c, 0, 64), 0);
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_ENABLED);
	close_conn(*state);
}

static void test_kick_before_memory(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	assert_true(c->ack);
	/* ring 1 fully described, but no memory yet: the kick is refused cleanly */
	int e = vhu_conn_ring(c, 1, 64);
	assert_int_equal(e, -EIO); /* the KICK's ack was non-zero */
	assert_int_equal(c->last_rc, 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	assert_non_null(strstr(c->dev->last_error, "ring 1"));
	/* memory, then a kick again: it starts */
	assert_int_equal(vhu_conn_set_mem(c), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, c->kick[1]), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_DISABLED);
	/* a kick before num/addr is refused cleanly as well */
	int k = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 0, k), 1);
	close(k);
	assert_non_null(strstr(c->dev->last_error, "before its size"));
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_STOPPED);
	close_conn(*state);
}

/* Copies ring `ring`'s three areas to offset `to` and points the driver there. */
static void move_driver_ring(struct vhu_conn *c, unsigned ring, uint64_t to)
{
	struct vnet_vq_driver *d = &c->drv[ring];
	size_t bytes = vnet_vq_driver_ring_bytes(d->size);
	uint8_t *old = (uint8_t *)d->desc;
	uint8_t *nw = c->mem + to;
	memcpy(nw, old, bytes);
	ptrdiff_t delta = nw - old;
	d->desc = (struct vring_desc *)((uint8_t *)d->desc + delta);
	d->avail = (struct vring_avail *)((uint8_t *)d->avail + delta);
	d->used = (struct vring_used *)((uint8_t *)d->used + delta);
	d->desc_gpa += (uint64_t)delta;
	d->avail_gpa += (uint64_t)delta;
	d->used_gpa += (uint64_t)delta;
	memset(old, 0xff, bytes); /* any use of the old place is garbage */
}

static void test_set_vring_addr_moves_running_ring(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	uint32_t seqs[8];
	assert_int_equal(vhu_guest_tx(c, 1, 3, 64, 0), 3);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, NULL, NULL), 3);
	assert_int_equal(vhu_guest_reap(c, 1), 3);
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 3), 2); /* pending across the move */

	move_driver_ring(c, 1, 0x80000);
	assert_int_equal(vhu_conn_ring_addr(c, 1), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(c->dev->rings[1].addr.desc_user_addr,
			 (uint64_t)(uintptr_t)(c->mem + 0x80000));
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, NULL, NULL), 2);
	assert_int_equal(seqs[0], 3);
	assert_int_equal(seqs[1], 4);
	assert_int_equal(vhu_guest_reap(c, 1), 2);
	assert_int_equal(vhu_guest_tx(c, 1, 1, 64, 5), 1);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, NULL, NULL), 1);
	assert_int_equal(seqs[0], 5);
	close_conn(*state);
}

static void test_ring_config_on_running_ring_refused(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 64), 1);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_BASE, 1, 7), 1);
	assert_int_equal(c->dev->rings[1].num, VHU_QSZ);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	close_conn(*state);
}

/* ---------------- C. REPLY_ACK ---------------- */

/* Everything of a full bring-up with NEED_REPLY: one ack each (checked in vhu_conn_set). */
static void test_reply_ack_every_request(void **state)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.mtu = 1500;
	struct vhu_conn *c = open_conn(*state, &cfg, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	assert_true(c->ack);
	assert_int_equal(vhu_conn_set_mem(c), 0);
	assert_int_equal(vhu_conn_ring(c, 0, 64), 0);
	assert_int_equal(vhu_conn_ring(c, 1, 64), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	int e = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, e), 0);
	close(e);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, -1), 0);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_SET_STATUS, 7), 0);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_NET_SET_MTU, 1400), 0);
	assert_int_equal(vhu_conn_set_u64(c, VHOST_USER_SET_FEATURES, c->features), 0);
	assert_int_equal(vhu_conn_set(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	/* ADD/REM_MEM_REG acks */
	void *m2;
	int fd2 = vhu_memfd("vhu-b", 0x10000, &m2);
	struct vnet_vhu_mem_single reg = {.region = {.guest_phys_addr = 0x10000000,
						     .memory_size = 0x10000,
						     .userspace_addr = (uintptr_t)m2}};
	assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg), &fd2, 1), 0);
	assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	/* a clean failure: REM of an unknown region acks non-zero, connection stays */
	assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 1);
	assert_int_equal(vhu_conn_traffic(c, 10), 0);
	/* RESET_OWNER is acked too (and drops the device back to scratch) */
	assert_int_equal(vhu_conn_set(c, VHOST_USER_RESET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	assert_int_equal(c->dev->nmaps, 0);
	munmap(m2, 0x10000);
	close(fd2);
	close_conn(*state);
}

/* GET_* with NEED_REPLY: the reply is the answer, no second (ack) message. */
static void test_reply_ack_get_single_reply(void **state)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.has_mac = true; /* GET_CONFIG (CONFIG) is offered only with a MAC */
	struct vhu_conn *c = open_conn(*state, &cfg, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	static const uint32_t gets[] = {VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES,
					VHOST_USER_GET_QUEUE_NUM, VHOST_USER_GET_MAX_MEM_SLOTS,
					VHOST_USER_GET_STATUS};
	struct vhu_reply r;
	for (unsigned i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		assert_int_equal(vhu_conn_get(c, gets[i], VHU_FN, NULL, 0, &r), 0);
		assert_int_equal(r.size, 8);
	}
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_FEATURES, VHU_FN, NULL, 0, &r), 0);
	assert_int_equal(r.payload.u64, c->dev->offered_features);
	struct vnet_vhu_config cr = {.offset = 0, .size = 6};
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_CONFIG, VHU_FN, &cr, 12 + 6, &r), 0);
	assert_int_equal(r.size, 18);
	struct vnet_vhu_vring_state s = {.index = 1};
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_FN, &s, sizeof(s), &r), 0);
	assert_int_equal(r.size, 8);
	assert_int_equal(r.payload.state.num, 0);
	close_conn(*state);
}

static void test_need_reply_without_reply_ack(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_NOACK), 0);
	assert_false(c->ack);
	/* NEED_REPLY set anyway: REPLY_ACK not negotiated, so no reply */
	assert_int_equal(vhu_conn_req(c, VHOST_USER_SET_OWNER, VHU_FN, NULL, 0, NULL, 0), 0);
	assert_false(vhu_peer_readable(c->peer, 50));
	uint64_t f = c->features;
	assert_int_equal(vhu_conn_req(c, VHOST_USER_SET_FEATURES, VHU_FN, &f, 8, NULL, 0), 0);
	assert_false(vhu_peer_readable(c->peer, 50));
	/* and a clean failure is silent too */
	assert_int_equal(vhu_conn_set_mem(c), 0);
	assert_int_equal(vhu_conn_ring(c, 1, 64), 0);
	assert_int_equal(vhu_conn_req(c, VHOST_USER_SET_VRING_NUM, VHU_FN,
				      &(struct vnet_vhu_vring_state){1, 128}, 8, NULL, 0),
			 0);
	assert_false(vhu_peer_readable(c->peer, 50));
	close_conn(*state);
}

/* ---------------- D. memory ---------------- */

static void test_mem_table_replace_unmaps_old(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-mt");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_count_maps("vhu-mt"), 2); /* the test's and the back-end's */
	void *old = c->dev->maps[0].base;
	assert_int_equal(vhu_conn_traffic(c, 0), 0);

	/* same memory again (a new fd for it), as a front-end re-sending its table */
	int fd2 = dup(c->memfd);
	int keep = c->memfd;
	c->memfd = fd2;
	assert_int_equal(vhu_conn_set_mem(c), 0);
	c->memfd = keep;
	close(fd2);
	assert_int_equal(c->dev->nmaps, 1);
	assert_ptr_not_equal(c->dev->maps[0].base, old);
	assert_int_equal(msync(old, 4096, MS_ASYNC), -1);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(vhu_count_maps("vhu-mt"), 2);
	/* rings re-translate to the new mapping */
	assert_int_equal(vhu_conn_traffic(c, 10), 0);

	/* a different memfd: the first is unmapped by the back-end */
	void *m2;
	int mfd2 = vhu_memfd("vhu-mt2", VHU_MEMSZ, &m2);
	memcpy(m2, c->mem, VHU_MEMSZ);
	struct vnet_vhu_memory m = {.nregions = 1};
	m.regions[0] = (struct vnet_vhu_mem_region){.guest_phys_addr = VHU_GPA,
						    .memory_size = VHU_MEMSZ,
						    .userspace_addr = (uintptr_t)c->mem};
	assert_int_equal(vhu_conn_set(c, VHOST_USER_SET_MEM_TABLE, &m, 8 + 32, &mfd2, 1), 0);
	assert_int_equal(vhu_count_maps("vhu-mt"), 1);
	assert_int_equal(vhu_count_maps("vhu-mt2"), 2);
	munmap(m2, VHU_MEMSZ);
	close(mfd2);
	close_conn(*state);
	assert_int_equal(vhu_count_maps("vhu-mt"), 0);
	assert_int_equal(vhu_count_maps("vhu-mt2"), 0);
}

static void test_add_rem_mem_reg(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = open_conn(f, NULL, "vhu-ar");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	uint64_t slots;
	assert_int_equal(vhu_conn_get_u64(c, VHOST_USER_GET_MAX_MEM_SLOTS, &slots), 0);
	assert_true(slots >= 32);
	/* the main memory as a single added region (QEMU with CONFIGURE_MEM_SLOTS) */
	struct vnet_vhu_mem_single main_reg = {.region = {.guest_phys_addr = VHU_GPA,
							  .memory_size = VHU_MEMSZ,
							  .userspace_addr = (uintptr_t)c->mem}};
	assert_int_equal(
		vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &main_reg, sizeof(main_reg), &c->memfd, 1), 0);
	assert_int_equal(vhu_conn_ring(c, 0, VHU_QSZ), 0);
	assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);

	/* hot-add a second region with a mmap_offset, then remove it with a stray fd */
	void *m2;
	int fd2 = vhu_memfd("vhu-ar2", 0x20000, &m2);
	struct vnet_vhu_mem_single r2 = {.region = {.guest_phys_addr = 0x40000000,
						    .memory_size = 0x10000,
						    .userspace_addr = (uintptr_t)m2 + 0x10000,
						    .mmap_offset = 0x10000}};
	assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &r2, sizeof(r2), &fd2, 1), 0);
	assert_int_equal(c->dev->nmaps, 2);
	assert_int_equal(vhu_count_maps("vhu-ar2"), 2);
	assert_int_equal(vhu_conn_traffic(c, 10), 0);
	unsigned before = vhu_count_fds();
	int stray = vhu_eventfd();
	assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &r2, sizeof(r2), &stray, 1), 0);
	close(stray);
	assert_int_equal(vhu_count_fds(), before);
	assert_int_equal(c->dev->nmaps, 1);
	assert_int_equal(vhu_count_maps("vhu-ar2"), 1);
	assert_int_equal(vhu_count_maps("vhu-ar"), 2);
	assert_int_equal(vhu_conn_traffic(c, 20), 0);
	munmap(m2, 0x20000);
	close(fd2);
	close_conn(f);
}

static void test_add_mem_reg_slot_limit(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = open_conn(f, NULL, NULL);
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	void *m;
	int fd = vhu_memfd("vhu-slots", 0x1000, &m);
	unsigned before = vhu_count_fds();
	unsigned i;
	for (i = 0; i < VNET_VHU_MAX_MEM_SLOTS; i++) {
		struct vnet_vhu_mem_single r = {.region = {.guest_phys_addr = 0x100000000ull + i * 0x10000ull,
							   .memory_size = 0x1000,
							   .userspace_addr = 0x200000000ull + i * 0x10000ull}};
		assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &r, sizeof(r), &fd, 1), 0);
	}
	assert_int_equal(c->dev->nmaps, VNET_VHU_MAX_MEM_SLOTS);
	assert_int_equal(vhu_count_maps("vhu-slots"), VNET_VHU_MAX_MEM_SLOTS + 1);
	assert_int_equal(vhu_count_fds(), before); /* mappings, not fds */
	struct vnet_vhu_mem_single r = {.region = {.guest_phys_addr = 0x900000000ull,
						   .memory_size = 0x1000,
						   .userspace_addr = 0xa00000000ull}};
	assert_true(vhu_conn_req(c, VHOST_USER_ADD_MEM_REG, VHU_FN, &r, sizeof(r), &fd, 1) < 0);
	assert_non_null(strstr(c->dev->last_error, "memory slots"));
	assert_false(vhu_peer_readable(c->peer, 0)); /* no ack: connection is dropped */
	assert_int_equal(vhu_count_fds(), before);
	vhu_conn_fini(c);
	assert_int_equal(vhu_count_maps("vhu-slots"), 1);
	munmap(m, 0x1000);
	close(fd);
	close_conn(f);
}

/* ---------------- broken rings, resets, polling, multiqueue ---------------- */

/* A hostile descriptor breaks the ring: err eventfd once, other ring fine,
 * and GET/SET_VRING_BASE + KICK restarts it (the front-end's reset path). */
static void test_broken_ring_err_fd_and_restart(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	int err = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, err), 0);
	/* a buffer outside guest memory */
	struct vnet_buf b = {.addr = 0x7000000000ull, .len = 64};
	uint32_t ck = 0;
	assert_int_equal(vnet_vq_driver_add(&c->drv[1], &b, 1, 0, &ck, false), 0);
	vnet_vq_driver_kick_prepare(&c->drv[1]);
	uint32_t seqs[4];
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, NULL, NULL), 0);
	assert_true(vnet_vq_is_broken(&c->dev->rings[1].vq));
	assert_true(vhu_eventfd_fired(err));
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, NULL, NULL), 0);
	assert_false(vhu_eventfd_fired(err)); /* once */
	/* ring 0 unaffected */
	assert_int_equal(vhu_guest_rx_post(c, 0, 1), 1);
	assert_int_equal(vhu_device_rx(c, 0, 1, 64, NULL), 1);
	/* restart ring 1 from scratch */
	struct vnet_vhu_vring_state st = {.index = 1};
	struct vhu_reply r;
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &st, 8, &r), 0);
	vnet_vq_driver_fini(&c->drv[1]);
	c->drv_live[1] = false;
	memset(c->mem + VHU_RING_OFF(1), 0, 0x10000);
	assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0);
	assert_false(vnet_vq_is_broken(&c->dev->rings[1].vq));
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_guest_rx_get(c, 0, &seqs[0], &seqs[1]), 1);
	assert_int_equal(vhu_conn_traffic(c, 10), 0);
	close(err);
	close_conn(*state);
}

/* QEMU sends SET_VRING_ERR once (vhost_virtqueue_init), not on every ring
 * restart: a ring that breaks again after a restart must still signal it. */
static void break_ring(struct vhu_conn *c, unsigned ring)
{
	struct vnet_buf b = {.addr = 0x7000000000ull, .len = 64};
	static uint32_t ck;
	assert_int_equal(vnet_vq_driver_add(&c->drv[ring], &b, 1, 0, &ck, false), 0);
	vnet_vq_driver_kick_prepare(&c->drv[ring]);
	uint32_t seqs[4];
	assert_int_equal(vhu_device_pop(c, ring, seqs, 4, NULL, NULL), 0);
	assert_true(vnet_vq_is_broken(&c->dev->rings[ring].vq));
}

static void test_err_fd_survives_restart(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	int err = vhu_eventfd();
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_ERR, 1, err), 0);
	break_ring(c, 1);
	assert_true(vhu_eventfd_fired(err));
	struct vnet_vhu_vring_state st = {.index = 1};
	struct vhu_reply r;
	assert_int_equal(vhu_conn_get(c, VHOST_USER_GET_VRING_BASE, VHU_F, &st, 8, &r), 0);
	memset(c->mem + VHU_RING_OFF(1), 0, 0x10000);
	assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0); /* NUM/BASE/ADDR/KICK/CALL, no ERR */
	break_ring(c, 1);
	assert_true(vhu_eventfd_fired(err));
	close(err);
	close_conn(*state);
}

/* Removing the memory a running ring lives in: the ring breaks, nothing crashes. */
static void test_rem_mem_reg_under_running_ring(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	struct vnet_vhu_mem_single reg = {.region = {.guest_phys_addr = VHU_GPA,
						     .memory_size = VHU_MEMSZ,
						     .userspace_addr = (uintptr_t)c->mem}};
	assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg), &c->memfd, 1),
			 0);
	assert_int_equal(vhu_conn_ring(c, 1, VHU_QSZ), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	uint32_t seqs[4];
	assert_int_equal(vhu_guest_tx(c, 1, 1, 64, 0), 1);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, NULL, NULL), 1);
	assert_int_equal(vhu_conn_set(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	assert_int_equal(c->dev->nmaps, 0);
	assert_int_equal(vhu_count_maps("vhu-a"), 1);
	assert_int_equal(vhu_guest_tx(c, 1, 1, 64, 1), 1);
	assert_true(vhu_device_pop(c, 1, seqs, 4, NULL, NULL) <= 0);
	/* and back: memory + restart */
	assert_int_equal(vhu_conn_set(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg), &c->memfd, 1),
			 0);
	close_conn(*state);
}

/* RESET_DEVICE, then a complete new negotiation on the same connection. */
static void test_reset_device_renegotiate(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_traffic(c, 0), 0);
	assert_int_equal(vhu_conn_set(c, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	assert_int_equal(c->dev->acked_features, 0);
	assert_int_equal(c->dev->nmaps, 0);
	assert_int_equal(vhu_count_maps("vhu-a"), 1);
	assert_int_equal(vhu_conn_ring_state(c, 0), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_STOPPED);
	/* REPLY_ACK is gone until renegotiated */
	c->ack = false;
	memset(c->mem, 0, 0x100000);
	assert_int_equal(vhu_conn_up(c, ALL_F & ~BIT(VIRTIO_F_RING_EVENT_IDX), P_ALL), 0);
	assert_int_equal(vhu_conn_traffic(c, 10), 0);
	close_conn(*state);
}

/* NOFD kick: polling mode, the ring starts without an eventfd; NOFD call: no interrupts. */
static void test_nofd_polling(void **state)
{
	struct vhu_conn *c = open_conn(*state, NULL, "vhu-a");
	assert_int_equal(vhu_conn_negotiate(c, ALL_F, P_ALL), 0);
	assert_int_equal(vhu_conn_set_mem(c), 0);
	struct vnet_vq_driver_config dc = {.size = 64,
					   .ring_host = c->mem + VHU_RING_OFF(1),
					   .ring_gpa = VHU_GPA + VHU_RING_OFF(1),
					   .features = c->features,
					   .name = "t"};
	assert_int_equal(vnet_vq_driver_init(&c->drv[1], &dc), 0);
	c->drv_live[1] = true;
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, 1, 64), 0);
	assert_int_equal(vhu_conn_ring_addr(c, 1), 0);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, 1, -1), 0);
	assert_int_equal(vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_CALL, 1, -1), 0);
	assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(vhu_conn_ring_state(c, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(vnet_vhu_ring_kick_fd(c->dev, 1), -1);
	uint32_t seqs[4];
	bool notify;
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 0), 2);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 4, &notify, NULL), 2);
	assert_true(notify);
	assert_int_equal(c->dev->rings[1].interrupts, 0);
	close_conn(*state);
}

static unsigned events[8];

static void count_event(struct vnet_vhu_dev *dev, unsigned ring, void *arg)
{
	(void)dev;
	assert_ptr_equal(arg, events);
	if (ring < 8)
		events[ring]++;
}

/* Two queue pairs: rings 2 and 3 carry data independently; ring events reported. */
static void test_two_queue_pairs(void **state)
{
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.max_queue_pairs = 2;
	cfg.ring_event = count_event;
	cfg.ring_event_arg = events;
	memset(events, 0, sizeof(events));
	struct vhu_conn *c = open_conn(*state, &cfg, "vhu-a");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	assert_true(c->dev->acked_features & BIT(VIRTIO_NET_F_MQ));
	for (unsigned r = 2; r < 4; r++) {
		assert_int_equal(vhu_conn_ring(c, r, 128), 0);
		assert_int_equal(vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, r, 1), 0);
	}
	for (unsigned r = 0; r < 4; r++)
		assert_true(events[r] >= 1);
	uint32_t seqs[8];
	assert_int_equal(vhu_guest_tx(c, 3, 3, 64, 30), 3);
	assert_int_equal(vhu_guest_tx(c, 1, 2, 64, 10), 2);
	assert_int_equal(vhu_device_pop(c, 3, seqs, 8, NULL, NULL), 3);
	assert_int_equal(seqs[0], 30);
	assert_int_equal(vhu_device_pop(c, 1, seqs, 8, NULL, NULL), 2);
	assert_int_equal(seqs[0], 10);
	assert_true(vhu_eventfd_fired(c->call[3]));
	assert_int_equal(vhu_guest_rx_post(c, 2, 1), 1);
	assert_int_equal(vhu_device_rx(c, 2, 77, 100, NULL), 1);
	uint32_t s, l;
	assert_int_equal(vhu_guest_rx_get(c, 2, &s, &l), 1);
	assert_int_equal(s, 77);
	/* ring 4 does not exist on a 2-pair device */
	enum vnet_vhu_ring_state st;
	unsigned tok;
	assert_null(vnet_vhu_ring_enter(c->dev, 4, &st, &tok));
	assert_int_equal(vnet_vhu_ring_kick_fd(c->dev, 4), -1);
	close_conn(*state);
}

/* ---------------- F. disconnect / reconnect ---------------- */

static void test_disconnect_reconnect_socketpair(void **state)
{
	struct fx *f = *state;
	for (unsigned round = 0; round < 3; round++) {
		struct vhu_conn *c = open_conn(f, NULL, "vhu-dc");
		assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
		assert_int_equal(vhu_conn_traffic(c, round * 10), 0);
		close(c->peer);
		c->peer = -1;
		assert_int_equal(vnet_vhu_dev_handle(c->dev), -ECONNRESET);
		assert_non_null(strstr(c->dev->last_error, "disconnected"));
		vhu_conn_fini(c);
		assert_int_equal(vhu_count_maps("vhu-dc"), 1);
		close_conn(f);
	}
}

static void test_disconnect_reconnect_listen(void **state)
{
	struct fx *f = *state;
	char path[108];
	snprintf(path, sizeof(path), "/tmp/vnet-test-vhu-%d.sock", (int)getpid());
	char err[128];
	int lfd = vnet_vhu_listen(path, 0600, err, sizeof(err));
	assert_true(lfd >= 0);
	unsigned base = vhu_count_fds();
	for (unsigned round = 0; round < 2; round++) {
		int cfd = vnet_vhu_connect(path);
		assert_true(cfd >= 0);
		int afd = vnet_vhu_accept(lfd);
		assert_true(afd >= 0);
		struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
		assert_int_equal(vhu_conn_open(&f->c, &cfg, "vhu-ls", cfd, afd), 0);
		f->open = true;
		struct vhu_conn *c = &f->c;
		assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
		assert_int_equal(vhu_conn_traffic(c, 0), 0);
		/* close mid-session, rings running */
		shutdown(c->peer, SHUT_RDWR);
		assert_int_equal(vnet_vhu_dev_handle(c->dev), -ECONNRESET);
		vhu_conn_close(c);
		f->open = false;
		assert_int_equal(vhu_count_fds(), base);
	}
	close(lfd);
	unlink(path);
	assert_int_equal(vhu_count_fds(), f->fds0);
}

/* ---------------- threaded: control thread + data plane ---------------- */

struct ctl {
	struct vnet_vhu_dev *dev;
	int rc;
};

static void *ctl_loop(void *arg)
{
	struct ctl *t = arg;
	do {
		struct pollfd p = {.fd = t->dev->sock, .events = POLLIN};
		if (poll(&p, 1, 5000) <= 0) {
			t->rc = -ETIMEDOUT;
			break;
		}
	} while ((t->rc = vnet_vhu_dev_handle(t->dev)) >= 0);
	return NULL;
}

/* A control thread serves SET_MEM_TABLE / SET_VRING_CALL while the test
 * thread keeps moving frames through the rings. */
static void test_threaded_memory_swap_under_traffic(void **state)
{
	struct fx *f = *state;
	struct vhu_conn *c = open_conn(f, NULL, "vhu-th");
	assert_int_equal(vhu_conn_up(c, ALL_F, P_ALL), 0);
	struct ctl t = {.dev = c->dev};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, ctl_loop, &t), 0);
	uint32_t seq = 0;
	for (unsigned i = 0; i < 40; i++) {
		/* control message (acked by the thread), then traffic */
		struct vnet_vhu_memory m = {.nregions = 1};
		m.regions[0] = (struct vnet_vhu_mem_region){.guest_phys_addr = VHU_GPA,
							    .memory_size = VHU_MEMSZ,
							    .userspace_addr = (uintptr_t)c->mem};
		assert_int_equal(vhu_peer_send(c->peer, VHOST_USER_SET_MEM_TABLE, VHU_FN, &m, 8 + 32,
					       &c->memfd, 1),
				 0);
		for (unsigned k = 0; k < 5; k++) {
			assert_int_equal(vhu_guest_tx(c, 1, 2, 64, seq), 2);
			uint32_t seqs[4];
			int n = 0;
			/* Bounded by time, not tries: the control thread holds the rings
			 * while it swaps memory, for as long as a loaded machine makes it. */
			struct timespec t0, now;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (now = t0; n < 2 && now.tv_sec - t0.tv_sec < 5;
			     clock_gettime(CLOCK_MONOTONIC, &now)) {
				int g = vhu_device_pop(c, 1, seqs + n, (unsigned)(2 - n), NULL, NULL);
				if (g > 0)
					n += g;
				else
					assert_true(g == 0 || g == -ENOENT);
			}
			assert_int_equal(n, 2);
			assert_int_equal(seqs[0], seq);
			assert_int_equal(seqs[1], seq + 1);
			seq += 2;
			assert_int_equal(vhu_guest_reap(c, 1), 2);
		}
		struct vhu_reply r;
		assert_int_equal(vhu_peer_recv(c->peer, &r, 2000), 0);
		assert_int_equal(r.request, VHOST_USER_SET_MEM_TABLE);
		assert_int_equal(r.payload.u64, 0);
	}
	shutdown(c->peer, SHUT_RDWR);
	pthread_join(th, NULL);
	assert_int_equal(t.rc, -ECONNRESET);
	assert_int_equal(vhu_count_maps("vhu-th"), 2);
	close_conn(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_mq_mtu_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_happy_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_happy_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_event_idx_interrupt_suppression, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_get_vring_base_stops_and_resumes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packet_bursts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_without_protocol_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_enable_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_before_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_vring_addr_moves_running_ring, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ring_config_on_running_ring_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack_every_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack_get_single_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_need_reply_without_reply_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_replace_unmaps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_rem_mem_reg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_mem_reg_slot_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring_err_fd_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_fd_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rem_mem_reg_under_running_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_device_renegotiate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nofd_polling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_queue_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_reconnect_socketpair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_reconnect_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threaded_memory_swap_under_traffic, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
