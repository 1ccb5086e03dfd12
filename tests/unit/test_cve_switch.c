/*
 * test_cve_switch.c — regression tests for the known bug classes that live
 * in vnet-switchd's data path (issue 7), each named after its CVE. One
 * bridge with two vhost-user ports, "vmA" (ofport 1) and "vmB" (ofport 2);
 * each port's guest is libvnet's own front-end (vnet_vhu_fe, polling mode)
 * in this process, so the test is both guests and, in between, the
 * poll-mode thread: a round receives one PMD_BURST burst per port in the
 * order a PMD polls its queues, forwards it with sw_forward_burst() and
 * transmits per output port (the loop of src/switch/pmd.c, which is not
 * part of the switch core library). Guest B's frames to guest A are counted
 * before and during each attack; the fd count at the end equals the start.
 *
 * Single-threaded, except that a front-end's open/close runs on a helper
 * thread while this one services the port (the handshake needs both;
 * vhu_port.h).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "switch/forward.h"
#include "switch/port.h"
#include "vhu_port.h"
#include "vnet/log.h"
#include "vnet/net_rxtx.h"
#include "vnet/vhost_user_frontend.h"

#define PMD_BURST 32u   /* what pmd.c asks of a queue per round */
#define ETH_TEST 0x88b5 /* IEEE local experimental ethertype */
#define FRAME_LEN 80u
#define ROUNDS 8u

static const uint8_t MAC_A[6] = {2, 0, 0, 0, 0, 0xa};
static const uint8_t MAC_B[6] = {2, 0, 0, 0, 0, 0xb};

struct env {
	char dir[64], path[2][128];
	unsigned fds0;
	struct sw_rcu rcu;
	struct sw_rcu_reader rd;
	struct sw_fdb *fdb;
	struct sw_flow_table *flows;
	struct sw_bridge_ctx br;
	struct sw_port *port[2];
	struct vnet_vhu_fe *fe[2];
	struct vnet_pkt_pool pool;
	struct sw_fwd_out *out;
	uint32_t seq;
};

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A vhost-user port at env->path[i] (server) with its guest connected. */
static void port_up(struct env *e, unsigned i, const char *name, uint16_t tag, bool trunk)
{
	struct sw_port *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->ofport = (uint16_t)(i + 1);
	p->ops = sw_port_type("vhost-user");
	p->tag = tag;
	p->trunk = trunk;
	snprintf(p->opts.o[0].key, sizeof(p->opts.o[0].key), "path");
	snprintf(p->opts.o[0].value, sizeof(p->opts.o[0].value), "%s", e->path[i]);
	p->opts.n = 1;
	char err[200] = "";
	assert_int_equal(p->ops->open(p, err, sizeof(err)), 0);
	struct vnet_vhu_fe_config cfg = {.name = name, .path = e->path[i], .polling = true,
					 .connect_timeout_ms = 5000};
	struct vnet_vhu_fe *fe;
	assert_int_equal(vhu_port_fe_open(p, &cfg, &fe), 0);
	e->port[i] = p;
	e->fe[i] = fe;
	assert_int_equal(sw_bridge_ctx_set_port(&e->br, p->ofport, p), 0);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	vnet_log_set_level(VNET_LOG_WARN);
	e->fds0 = count_fds();
	snprintf(e->dir, sizeof(e->dir), "/tmp/vnet-cve-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	for (unsigned i = 0; i < 2; i++)
		snprintf(e->path[i], sizeof(e->path[i]), "%s/vm%c.sock", e->dir, 'A' + i);
	sw_rcu_init(&e->rcu);
	sw_rcu_register(&e->rcu, &e->rd);
	e->fdb = sw_fdb_create(NULL);
	e->flows = sw_flow_table_create(&e->rcu, 0);
	sw_bridge_ctx_init(&e->br, e->fdb, e->flows);
	if (vnet_pkt_pool_init(&e->pool, 512, 0) < 0 || !(e->out = sw_fwd_out_create(&e->pool)))
		return -1;
	*state = e;
	return 0;
}

struct egress;
static unsigned pmd_visit(struct env *e, struct sw_port *p, struct egress *eg);

static int teardown(void **state)
{
	struct env *e = *state;
	/* Drain what the guests still queue: a front-end's stop waits (up to 1 s)
	 * for the back-end to take its TX frames. */
	for (unsigned r = 0, busy = 1; busy && r < 100; r++) {
		busy = 0;
		for (unsigned i = 0; i < 2; i++)
			if (e->fe[i])
				busy += pmd_visit(e, e->port[i], NULL);
	}
	bool closed = true;
	for (unsigned i = 0; i < 2; i++) {
		if (e->fe[i])
			closed &= vhu_port_fe_close(e->port[i], e->fe[i]) == 0;
		if (e->port[i]) {
			sw_bridge_ctx_set_port(&e->br, e->port[i]->ofport, NULL);
			e->port[i]->ops->close(e->port[i]);
			free(e->port[i]);
		}
	}
	sw_fwd_out_destroy(e->out);
	bool all_back = e->pool.nfree == e->pool.count;
	vnet_pkt_pool_fini(&e->pool);
	sw_rcu_unregister(&e->rd);
	sw_rcu_synchronize(&e->rcu);
	sw_flow_table_destroy(e->flows);
	sw_fdb_destroy(e->fdb);
	sw_rcu_fini(&e->rcu);
	rmdir(e->dir);
	unsigned fds = count_fds();
	vnet_log_set_level(VNET_LOG_INFO);
	bool ok = closed && all_back && fds == e->fds0;
	if (!ok)
		print_error("teardown: guests closed %d, packets back %d, fds %u (were %u)\n", closed,
			    all_back, fds, e->fds0);
	free(e);
	return ok ? 0 : -1;
}

/* ---- frames ---- */

static size_t make_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETH_TEST >> 8;
	f[13] = ETH_TEST & 0xff;
	memcpy(f + 14, "vnetcve", 8);
	memcpy(f + 22, &seq, 4);
	for (size_t i = 26; i < FRAME_LEN; i++)
		f[i] = (uint8_t)(i + seq);
	return FRAME_LEN;
}

/* seq of one of our frames from `src`, or -1; off 4: tagged VLAN 10. */
static long frame_seq(const uint8_t *f, size_t len, const uint8_t *src, size_t off)
{
	if (len != FRAME_LEN + off || memcmp(f + 6, src, 6) || f[12 + off] != ETH_TEST >> 8 ||
	    memcmp(f + 14 + off, "vnetcve", 8))
		return -1;
	if (off && (f[12] != 0x81 || f[13] != 0 || (f[14] & 0x0f) != 0 || f[15] != 10))
		return -1; /* the tag the trunk must carry: VLAN 10 */
	uint32_t seq;
	memcpy(&seq, f + 22 + off, 4);
	for (size_t i = 26; i < FRAME_LEN; i++)
		if (f[i + off] != (uint8_t)(i + seq))
			return -1;
	return seq;
}

/* Guest i sends n frames dst ← src; returns how many its TX ring took. */
static unsigned guest_tx(struct env *e, unsigned i, const uint8_t *dst, const uint8_t *src,
			 unsigned n)
{
	static uint8_t buf[256][FRAME_LEN];
	struct iovec iov[256];
	assert_true(n <= 256);
	for (unsigned k = 0; k < n; k++) {
		iov[k].iov_base = buf[k];
		iov[k].iov_len = make_frame(buf[k], dst, src, e->seq++);
	}
	int taken = vnet_vhu_fe_tx_burst(e->fe[i], 0, iov, n);
	assert_true(taken >= 0);
	return (unsigned)taken;
}

/* Guest i drains its RX ring; counts intact frames from src (tag offset off)
 * and checks the virtio-net header in front of each carries no offload. */
static unsigned guest_rx(struct env *e, unsigned i, const uint8_t *src, size_t off)
{
	unsigned got = 0;
	for (;;) {
		struct vnet_vhu_fe_pkt pk[64];
		int n = vnet_vhu_fe_rx_burst(e->fe[i], 0, pk, 64);
		assert_true(n >= 0);
		if (n == 0)
			return got;
		for (int k = 0; k < n; k++) {
			struct virtio_net_hdr h;
			memcpy(&h, pk[k].data - e->fe[i]->hdr_len, sizeof(h));
			assert_int_equal(h.flags, 0);
			assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
			got += frame_seq(pk[k].data, pk[k].len, src, off) >= 0;
		}
	}
}

/* What the forwarding core handed to output ports this round. */
struct egress {
	unsigned packets;
	unsigned with_offload; /* NEEDS_CSUM or GSO requested */
};

/*
 * One PMD visit of port p's queue 0: one burst, forwarded, transmitted.
 * Returns the frames received; egress (may be NULL) sums what went out.
 */
static unsigned pmd_visit(struct env *e, struct sw_port *p, struct egress *eg)
{
	struct vnet_pkt *pkts[PMD_BURST];
	unsigned n = p->ops->rx(p, 0, &e->pool, pkts, PMD_BURST);
	if (n) {
		unsigned taken = sw_forward_burst(&e->br, p->ofport, pkts, n, now_ms() * 1000000u,
						  e->out);
		assert_int_equal(taken, n);
		for (unsigned i = 0; i < e->out->n_ports; i++) {
			struct sw_fwd_out_port *op = &e->out->ports[i];
			for (unsigned k = 0; eg && k < op->n; k++) {
				eg->packets++;
				eg->with_offload += op->pkts[k]->vhdr.flags != 0 ||
						    op->pkts[k]->vhdr.gso_type != 0;
			}
			sw_port_tx(op->port, 0, op->pkts, op->n);
		}
		sw_fwd_out_free(e->out);
	}
	sw_quiesce(&e->rd);
	return n;
}

static uint64_t rx_errors(const struct sw_port *p)
{
	return atomic_load(&p->rxq[0].errors) + atomic_load(&p->rxq[0].rx_dropped);
}

static uint64_t bridge_drops(struct env *e)
{
	uint64_t d = 0;
	for (unsigned r = 0; r < SW_DROP__COUNT; r++)
		d += atomic_load(&e->br.drops[r]);
	return d;
}

/*
 * CVE-2019-3900 (Linux vhost-net): a guest that kept its TX ring full kept
 * the handler in its loop forever, starving every other queue. Here guest A
 * refills its ring to the brim before every round (its frames go nowhere:
 * addressed to itself), while guest B sends PMD_BURST frames per round to
 * guest A. Port A yields exactly one burst per visit, and B's frames
 * arrive at A as fast as when A is idle.
 */
static void cve_2019_3900_full_ring_does_not_starve_other_port(void **state)
{
	struct env *e = *state;
	port_up(e, 0, "vmA", 0, false);
	port_up(e, 1, "vmB", 0, false);
	/* both MACs learned, so B → A is unicast and A → A is a loop drop */
	assert_int_equal(guest_tx(e, 0, MAC_B, MAC_A, 1), 1);
	assert_int_equal(guest_tx(e, 1, MAC_A, MAC_B, 1), 1);
	for (unsigned r = 0; r < 2; r++)
		for (unsigned i = 0; i < 2; i++)
			pmd_visit(e, e->port[i], NULL);
	guest_rx(e, 0, MAC_B, 0);
	guest_rx(e, 1, MAC_A, 0);

	/* baseline: A idle */
	unsigned idle_delivered = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		assert_int_equal(guest_tx(e, 1, MAC_A, MAC_B, PMD_BURST), PMD_BURST);
		assert_int_equal(pmd_visit(e, e->port[0], NULL), 0);
		assert_int_equal(pmd_visit(e, e->port[1], NULL), PMD_BURST);
		idle_delivered += guest_rx(e, 0, MAC_B, 0);
	}
	assert_int_equal(idle_delivered, ROUNDS * PMD_BURST);

	/* A keeps its ring full; it is polled first in every round */
	uint64_t loops0 = atomic_load(&e->br.drops[SW_DROP_LOOP]);
	unsigned busy_delivered = 0, a_frames = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned queued = guest_tx(e, 0, MAC_A, MAC_A, 256);
		assert_true(queued >= PMD_BURST);
		assert_int_equal(guest_tx(e, 1, MAC_A, MAC_B, PMD_BURST), PMD_BURST);
		unsigned a = pmd_visit(e, e->port[0], NULL);
		assert_int_equal(a, PMD_BURST); /* a full burst, never more */
		a_frames += a;
		assert_int_equal(pmd_visit(e, e->port[1], NULL), PMD_BURST);
		busy_delivered += guest_rx(e, 0, MAC_B, 0);
	}
	print_message("# B->A frames: %u in %u rounds with A idle, %u with A's ring full "
		      "(A: %u frames, dropped as loops)\n",
		      idle_delivered, ROUNDS, busy_delivered, a_frames);
	assert_int_equal(busy_delivered, idle_delivered);
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_LOOP]) - loops0, a_frames);

	/* the budget is the port's, not only the caller's: a bigger ask still
	 * gets at most one frame-path burst */
	struct vnet_pkt *pkts[SW_FWD_MAX_BURST];
	unsigned n = e->port[0]->ops->rx(e->port[0], 0, &e->pool, pkts, SW_FWD_MAX_BURST);
	assert_int_equal(n, VNET_NET_BURST);
	vnet_pkt_free_burst(pkts, n);
}

/* Rewrites the virtio-net header of guest i's last n queued TX frames. */
static void forge_tx_headers(struct env *e, unsigned i, unsigned n,
			     const struct virtio_net_hdr *forged, unsigned nforged)
{
	struct vnet_vhu_fe *fe = e->fe[i];
	struct vnet_vq_driver *d = &fe->rings[1].drv;
	for (unsigned k = 0; k < n; k++) {
		uint16_t slot = (uint16_t)(d->avail_idx - n + k) & d->mask;
		uint16_t head = d->avail->ring[slot];
		uint8_t *buf = fe->mem + (d->desc[head].addr - fe->gpa_base);
		memcpy(buf, &forged[k % nforged], sizeof(*forged));
	}
}

/* Guest B sends n frames to A tagged VLAN 10 (B is a trunk; A's access
 * port pops the tag); returns how many guest A received intact. */
static unsigned b_to_a_tagged(struct env *e, unsigned n)
{
	static uint8_t tagged[64][FRAME_LEN + 4];
	static const uint8_t tag10[4] = {0x81, 0x00, 0x00, 0x0a};
	struct iovec iov[64];
	assert_true(n <= 64);
	for (unsigned k = 0; k < n; k++) {
		uint8_t plain[FRAME_LEN];
		make_frame(plain, MAC_A, MAC_B, e->seq++);
		memcpy(tagged[k], plain, 12);
		memcpy(tagged[k] + 12, tag10, 4);
		memcpy(tagged[k] + 16, plain + 12, FRAME_LEN - 12);
		iov[k] = (struct iovec){tagged[k], FRAME_LEN + 4};
	}
	assert_int_equal(vnet_vhu_fe_tx_burst(e->fe[1], 0, iov, n), (int)n);
	pmd_visit(e, e->port[1], NULL);
	return guest_rx(e, 0, MAC_B, 0);
}

/*
 * CVE-2024-11614 (DPDK vhost): a guest's csum_start beyond the packet made
 * the checksum offload read out of bounds. vnet never offers CSUM or TSO,
 * so such header fields are requests the guest was never allowed to make.
 * Guest A (access port, VLAN 10) sends frames with NEEDS_CSUM, csum_start /
 * csum_offset / hdr_len past the frame (or wrapping when the switch pushes
 * the VLAN tag towards trunk port B) and GSO with gso_size 0 or 1: each
 * frame is either dropped and counted, or forwarded with no offload request
 * left (what leaves a port is what a tap port hands the kernel) and reaches
 * B intact. Guest B's frames to A flow before and after.
 */
static void cve_2024_11614_csum_start_beyond_packet(void **state)
{
	struct env *e = *state;
	port_up(e, 0, "vmA", 10, false);
	port_up(e, 1, "vmB", 0, true);
	assert_int_equal(guest_tx(e, 0, MAC_B, MAC_A, 1), 1);
	pmd_visit(e, e->port[0], NULL);
	assert_int_equal(guest_rx(e, 1, MAC_A, 4), 1);
	const unsigned b_frames = 16;
	assert_int_equal(b_to_a_tagged(e, b_frames), b_frames);

	static const struct virtio_net_hdr forged[] = {
		{.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0xfff0, .csum_offset = 6},
		{.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0xfffe, .csum_offset = 0},
		{.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = FRAME_LEN - 1,
		 .csum_offset = 0xffff},
		{.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0xffff, .csum_offset = 0xffff},
		{.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		 .gso_size = 0, .hdr_len = 0xffff, .csum_start = 34, .csum_offset = 16},
		{.flags = 0xff, .gso_type = VIRTIO_NET_HDR_GSO_UDP_L4 | VIRTIO_NET_HDR_GSO_ECN,
		 .gso_size = 1, .hdr_len = 0xfffd, .csum_start = 0xfffd, .csum_offset = 0xfffd},
	};
	const unsigned nforged = sizeof(forged) / sizeof(forged[0]);
	const unsigned sent = 4 * nforged;
	uint64_t err0 = rx_errors(e->port[0]), drops0 = bridge_drops(e);
	assert_int_equal(guest_tx(e, 0, MAC_B, MAC_A, sent), sent);
	forge_tx_headers(e, 0, sent, forged, nforged);
	struct egress eg = {0};
	while (pmd_visit(e, e->port[0], &eg))
		;
	unsigned at_b = guest_rx(e, 1, MAC_A, 4);
	uint64_t dropped = rx_errors(e->port[0]) - err0 + bridge_drops(e) - drops0;
	print_message("# forged headers: %u sent, %u forwarded (%u still asking for an offload), "
		      "%u reached B intact, %llu dropped\n",
		      sent, eg.packets, eg.with_offload, at_b, (unsigned long long)dropped);
	assert_int_equal(eg.with_offload, 0);
	assert_int_equal(at_b, eg.packets);
	assert_int_equal(at_b + dropped, sent);
	assert_int_equal(b_to_a_tagged(e, b_frames), b_frames);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(cve_2019_3900_full_ring_does_not_starve_other_port),
		T(cve_2024_11614_csum_start_beyond_packet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
