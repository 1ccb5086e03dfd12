/*
 * forward.c: the per-packet pipeline: learning then unicast, flooding
 * (never the ingress, never another VLAN), access/trunk VLAN admission and
 * tag push/pop, flow actions (drop ICMP but not ARP, cross-connect through
 * the EMC, mod_vlan_vid / strip_vlan, outputs to missing ports), copies
 * per output and their failure modes, packet ownership, static FDB entries
 * steering NORMAL, and drops counted on the ingress port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "switch/forward.h"
#include "vnet/frame.h"

#define NOW (1000ull * SW_FDB_NS_PER_S)
#define NPORTS 6

static const uint8_t MAC[8][6] = {
	{0}, {2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3},
	{2, 0, 0, 0, 0, 4}, {2, 0, 0, 0, 0, 5}, {2, 0, 0, 0, 0, 6}, {2, 0, 0, 0, 0, 7},
};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct env {
	struct sw_rcu rcu;
	struct sw_rcu_reader rd;
	struct sw_fdb *fdb;
	struct sw_flow_table *t;
	struct sw_bridge_ctx br;
	struct sw_port ports[NPORTS + 1];
	struct vnet_pkt_pool pool;
	struct sw_fwd_out *out;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	sw_rcu_init(&e->rcu);
	sw_rcu_register(&e->rcu, &e->rd);
	e->fdb = sw_fdb_create(NULL);
	e->t = sw_flow_table_create(&e->rcu, 0);
	sw_bridge_ctx_init(&e->br, e->fdb, e->t);
	assert_int_equal(vnet_pkt_pool_init(&e->pool, 256, 0), 0);
	e->out = sw_fwd_out_create(&e->pool);
	assert_non_null(e->out);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	sw_fwd_out_free(e->out);
	assert_int_equal(e->pool.nfree, e->pool.count); /* no packet leaked */
	sw_fwd_out_destroy(e->out);
	vnet_pkt_pool_fini(&e->pool);
	sw_rcu_unregister(&e->rd);
	sw_rcu_synchronize(&e->rcu);
	sw_flow_table_destroy(e->t);
	sw_fdb_destroy(e->fdb);
	sw_rcu_fini(&e->rcu);
	free(e);
	return 0;
}

/* Port ofport: tag (access) or trunk with the listed VLANs (none = all). */
static void port(struct env *e, uint16_t ofport, uint16_t tag, bool trunk, const uint16_t *vlans,
		 unsigned nv)
{
	struct sw_port *p = &e->ports[ofport];
	memset(p, 0, sizeof(*p));
	p->ofport = ofport;
	p->tag = tag;
	p->trunk = trunk;
	for (unsigned i = 0; i < nv; i++)
		p->trunks[vlans[i] / 64] |= 1ull << (vlans[i] % 64);
	assert_int_equal(sw_bridge_ctx_set_port(&e->br, ofport, p), 0);
}

/* Ports 1..n with default config (trunk every VLAN). */
static void plain_ports(struct env *e, unsigned n)
{
	for (uint16_t i = 1; i <= n; i++)
		port(e, i, 0, false, NULL, 0);
}

enum kind { K_ICMP, K_ARP, K_UDP };

/* A 60-byte frame (64 with a tag), vid < 0: untagged. */
static struct vnet_pkt *frame(struct env *e, const uint8_t *dst, const uint8_t *src, int vid,
			      enum kind kind)
{
	struct vnet_pkt *p = vnet_pkt_alloc(&e->pool);
	assert_non_null(p);
	uint8_t *b = p->data;
	size_t n = 0;
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	n = 12;
	if (vid >= 0) {
		b[n++] = 0x81;
		b[n++] = 0x00;
		b[n++] = (uint8_t)(0x60 | vid >> 8); /* PCP 3 */
		b[n++] = (uint8_t)vid;
	}
	size_t body = n + 2;
	memset(b + n, 0, 64);
	if (kind == K_ARP) {
		b[n] = 0x08;
		b[n + 1] = 0x06;
		uint8_t arp[8] = {0, 1, 8, 0, 6, 4, 0, 1};
		memcpy(b + body, arp, 8);
	} else {
		b[n] = 0x08;
		b[n + 1] = 0x00;
		b[body] = 0x45;
		b[body + 3] = 28;
		b[body + 9] = kind == K_ICMP ? 1 : 17;
		b[body + 20] = 8; /* echo request / UDP port 0x08xx */
	}
	p->len = vid >= 0 ? 64 : 60;
	return p;
}

static unsigned fwd(struct env *e, uint16_t in, struct vnet_pkt **pkts, unsigned n)
{
	return sw_forward_burst(&e->br, in, pkts, n, NOW, e->out);
}

static unsigned fwd1(struct env *e, uint16_t in, struct vnet_pkt *p)
{
	return fwd(e, in, &p, 1);
}

static const struct sw_fwd_out_port *outp(struct env *e, uint16_t ofport)
{
	for (unsigned i = 0; i < e->out->n_ports; i++)
		if (e->out->ports[i].ofport == ofport)
			return &e->out->ports[i];
	return NULL;
}

static unsigned n_to(struct env *e, uint16_t ofport)
{
	const struct sw_fwd_out_port *op = outp(e, ofport);
	return op ? op->n : 0;
}

/* VID of the first packet to ofport, -1 untagged. */
static int vid_to(struct env *e, uint16_t ofport)
{
	const struct sw_fwd_out_port *op = outp(e, ofport);
	assert_non_null(op);
	assert_true(op->n > 0);
	const uint8_t *d = op->pkts[0]->data;
	if (d[12] == 0x81 && d[13] == 0x00)
		return ((d[14] & 0x0f) << 8) | d[15];
	return -1;
}

static void flow(struct env *e, const char *s)
{
	struct sw_flow_spec sp;
	char err[128];
	if (sw_flow_spec_parse(s, SW_PARSE_FLOW, &sp, err, sizeof(err)))
		fail_msg("%s: %s", s, err);
	assert_int_equal(sw_flow_table_add(e->t, &sp, NULL), 0);
}

static void test_learning_then_unicast(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	/* 1 → unknown 2: flooded to 2 and 3, not 1. */
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(n_to(e, 1), 0);
	assert_int_equal(n_to(e, 2), 1);
	assert_int_equal(n_to(e, 3), 1);
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[1], NOW), 1);
	sw_fwd_out_free(e->out);
	/* 2 → 1 (known): only port 1. */
	fwd1(e, 2, frame(e, MAC[1], MAC[2], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(n_to(e, 1), 1);
	sw_fwd_out_free(e->out);
	/* 1 → 2 now known too. */
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(n_to(e, 2), 1);
	assert_int_equal(sw_fdb_count(e->fdb), 2);
}

/* The burst remembers its last FDB lookup; a source learnt inside the burst
 * must not leave a stale answer for a later packet to that MAC. */
static void test_burst_lookup_cache_follows_learning(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	assert_int_equal(sw_fdb_learn(e->fdb, 0, MAC[2], 2, NOW), SW_FDB_LEARNED);
	struct vnet_pkt *b[5] = {
		frame(e, MAC[3], MAC[1], -1, K_UDP), /* 3 unknown: flooded to 2, 3 */
		frame(e, MAC[3], MAC[1], -1, K_UDP), /* same lookup: flooded again */
		frame(e, MAC[3], MAC[3], -1, K_UDP), /* 3 learnt on port 1: a loop, dropped
						      * (not flooded by the lookup above) */
		frame(e, MAC[2], MAC[3], -1, K_UDP), /* to 2 */
		frame(e, MAC[3], MAC[3], -1, K_UDP), /* a loop again */
	};
	assert_int_equal(fwd(e, 1, b, 5), 5);
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[3], NOW), 1);
	assert_int_equal(n_to(e, 1), 0);
	assert_int_equal(n_to(e, 2), 3);
	assert_int_equal(n_to(e, 3), 2);
	assert_int_equal(e->out->drops[SW_DROP_LOOP], 2);
}

static void test_broadcast_floods_copies_except_ingress(void **state)
{
	struct env *e = *state;
	plain_ports(e, 4);
	struct vnet_pkt *p = frame(e, BCAST, MAC[2], -1, K_ARP);
	unsigned free_before = e->pool.nfree;
	fwd1(e, 2, p);
	assert_int_equal(n_to(e, 2), 0);
	assert_int_equal(n_to(e, 1) + n_to(e, 3) + n_to(e, 4), 3);
	/* 3 outputs: the original + 2 copies, all distinct, same bytes. */
	assert_int_equal(e->pool.nfree, free_before - 2);
	const struct vnet_pkt *a = outp(e, 1)->pkts[0], *b = outp(e, 3)->pkts[0],
			      *c = outp(e, 4)->pkts[0];
	assert_true(a != b && b != c && a != c);
	assert_true(a == p || b == p || c == p);
	assert_int_equal(a->len, 60);
	assert_memory_equal(a->data, b->data, 60);
	assert_memory_equal(a->data, c->data, 60);
	/* A multicast destination floods as well, even if "learnt". */
	sw_fwd_out_free(e->out);
	uint8_t mc[6] = {0x01, 0, 0x5e, 0, 0, 1};
	fwd1(e, 1, frame(e, mc, MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 3);
	assert_int_equal(n_to(e, 1), 0);
}

/* 1, 2: access VLAN 10; 3: access VLAN 20; 4: trunk 10,30; 5: default (all). */
static void vlan_ports(struct env *e)
{
	port(e, 1, 10, false, NULL, 0);
	port(e, 2, 10, false, NULL, 0);
	port(e, 3, 20, false, NULL, 0);
	port(e, 4, 0, true, (const uint16_t[]){10, 30}, 2);
	port(e, 5, 0, false, NULL, 0);
}

static void test_access_flood_stays_in_vlan(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	fwd1(e, 1, frame(e, BCAST, MAC[1], -1, K_ARP));
	assert_int_equal(n_to(e, 1), 0);          /* ingress */
	assert_int_equal(n_to(e, 3), 0);          /* VLAN 20 */
	assert_int_equal(vid_to(e, 2), -1);       /* access: untagged */
	assert_int_equal(vid_to(e, 4), 10);       /* trunk: tag pushed */
	assert_int_equal(outp(e, 4)->pkts[0]->len, 64);
	assert_int_equal(outp(e, 4)->pkts[0]->data[16], 0x08); /* type follows the tag */
	assert_int_equal(vid_to(e, 5), 10);       /* default port trunks all */
	assert_int_equal(sw_fdb_lookup(e->fdb, 10, MAC[1], NOW), 1);
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[1], NOW), 0);
}

static void test_access_port_drops_tagged(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	fwd1(e, 1, frame(e, BCAST, MAC[1], 10, K_ARP));
	assert_int_equal(e->out->n_ports, 0);
	assert_int_equal(e->out->n_drop, 1);
	assert_int_equal(e->out->drops[SW_DROP_VLAN], 1);
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_VLAN]), 1);
	assert_int_equal(sw_fdb_count(e->fdb), 0); /* dropped frames teach nothing */
	sw_fwd_out_free(e->out);
	/* Priority-tagged (VID 0) is accepted as untagged, and stripped. */
	fwd1(e, 1, frame(e, BCAST, MAC[1], 0, K_ARP));
	assert_int_equal(vid_to(e, 2), -1);
	assert_int_equal(outp(e, 2)->pkts[0]->len, 60);
}

static void test_trunk_ingress(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	/* VLAN 10 from the trunk: to the VLAN-10 access ports untagged. */
	fwd1(e, 4, frame(e, BCAST, MAC[4], 10, K_ARP));
	assert_int_equal(vid_to(e, 1), -1);
	assert_int_equal(vid_to(e, 2), -1);
	assert_int_equal(outp(e, 1)->pkts[0]->len, 60);
	assert_int_equal(outp(e, 1)->pkts[0]->data[12], 0x08);
	assert_int_equal(outp(e, 1)->pkts[0]->data[13], 0x06);
	assert_int_equal(vid_to(e, 5), 10);
	assert_int_equal(n_to(e, 3), 0);
	sw_fwd_out_free(e->out);
	/* VLAN 20 is not in trunks=10,30: dropped. */
	fwd1(e, 4, frame(e, BCAST, MAC[4], 20, K_ARP));
	assert_int_equal(e->out->n_ports, 0);
	assert_int_equal(e->out->drops[SW_DROP_VLAN], 1);
	sw_fwd_out_free(e->out);
	/* VLAN 30: allowed but nobody else carries it. */
	fwd1(e, 4, frame(e, BCAST, MAC[4], 30, K_ARP));
	assert_int_equal(vid_to(e, 5), 30);
	assert_int_equal(e->out->n_ports, 1);
	sw_fwd_out_free(e->out);
	/* Untagged on the trunk = VLAN 0 (native): default port only,
	 * untagged; no access port. */
	fwd1(e, 4, frame(e, BCAST, MAC[4], -1, K_ARP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(vid_to(e, 5), -1);
	sw_fwd_out_free(e->out);
	/* And VLAN 0 leaving on a trunk is untagged. */
	fwd1(e, 5, frame(e, BCAST, MAC[5], -1, K_ARP));
	assert_int_equal(vid_to(e, 4), -1);
	assert_int_equal(outp(e, 4)->pkts[0]->len, 60);
}

static void test_unicast_respects_vlan(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	/* MAC[3] learnt in VLAN 20 on port 3. */
	fwd1(e, 3, frame(e, BCAST, MAC[3], -1, K_ARP));
	sw_fwd_out_free(e->out);
	assert_int_equal(sw_fdb_lookup(e->fdb, 20, MAC[3], NOW), 3);
	/* From VLAN 10 it is unknown: flooded in VLAN 10 only. */
	fwd1(e, 1, frame(e, MAC[3], MAC[1], -1, K_UDP));
	assert_int_equal(n_to(e, 3), 0);
	assert_int_equal(n_to(e, 2), 1);
	assert_int_equal(n_to(e, 4), 1);
	sw_fwd_out_free(e->out);
	/* Learnt on the trunk in VLAN 10, reached from access port 2. */
	fwd1(e, 4, frame(e, MAC[2], MAC[6], 10, K_UDP));
	sw_fwd_out_free(e->out);
	fwd1(e, 2, frame(e, MAC[6], MAC[2], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(vid_to(e, 4), 10);
	/* PCP of the frame is 0 (it came untagged). */
	assert_int_equal(outp(e, 4)->pkts[0]->data[14] >> 5, 0);
}

static void test_unicast_to_ingress_is_dropped(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	fwd1(e, 1, frame(e, BCAST, MAC[1], -1, K_ARP));
	sw_fwd_out_free(e->out);
	fwd1(e, 1, frame(e, BCAST, MAC[7], -1, K_ARP));
	sw_fwd_out_free(e->out);
	/* 7 → 1, both behind port 1: nothing goes out. */
	fwd1(e, 1, frame(e, MAC[1], MAC[7], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 0);
	assert_int_equal(e->out->drops[SW_DROP_LOOP], 1);
	assert_int_equal(e->out->n_drop, 1);
}

static void test_drop_rule_blocks_icmp_not_arp(void **state)
{
	struct env *e = *state;
	plain_ports(e, 2);
	flow(e, "priority=100,icmp,actions=drop");
	struct vnet_pkt *pk[3] = {
		frame(e, MAC[2], MAC[1], -1, K_ICMP),
		frame(e, BCAST, MAC[1], -1, K_ARP),
		frame(e, MAC[2], MAC[1], -1, K_ICMP),
	};
	assert_int_equal(fwd(e, 1, pk, 3), 3);
	assert_int_equal(n_to(e, 2), 1); /* the ARP */
	assert_ptr_equal(outp(e, 2)->pkts[0], pk[1]);
	assert_int_equal(e->out->n_drop, 2);
	assert_int_equal(e->out->drops[SW_DROP_FLOW], 2);
	const struct sw_flow *f = sw_flow_table_current(e->t)->flows[0];
	assert_int_equal(atomic_load(&f->n_packets), 2);
	assert_int_equal(atomic_load(&f->n_bytes), 120);
	assert_int_equal(atomic_load(&e->br.rx_packets), 3);
	assert_int_equal(atomic_load(&e->br.rx_bytes), 180);
	/* ARP went through NORMAL, so MAC[1] was learnt. */
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[1], NOW), 1);
}

static void test_cross_connect_uses_emc(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	flow(e, "in_port=1,actions=output:2");
	flow(e, "in_port=2,actions=output:1");
	struct vnet_pkt *pk[32];
	for (unsigned i = 0; i < 32; i++)
		pk[i] = frame(e, MAC[3], MAC[1], -1, K_UDP);
	uint64_t misses = e->out->emc.misses;
	assert_int_equal(fwd(e, 1, pk, 32), 32);
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(n_to(e, 2), 32);
	for (unsigned i = 0; i < 32; i++)
		assert_ptr_equal(outp(e, 2)->pkts[i], pk[i]); /* in order, no copies */
	assert_int_equal(e->out->emc.misses, misses + 1);
	assert_true(e->out->emc.hits <= 31); /* repeats of one key skip even the EMC */
	assert_int_equal(sw_fdb_count(e->fdb), 0); /* no NORMAL, no learning */
	const struct sw_flow *f = sw_flow_table_current(e->t)->flows[0];
	assert_int_equal(f->match.key.in_port, 1);
	assert_int_equal(atomic_load(&f->n_packets), 32);
	sw_fwd_out_free(e->out);
	/* Replacing the flow redirects the next burst at once. */
	flow(e, "in_port=1,actions=output:3");
	fwd1(e, 1, frame(e, MAC[3], MAC[1], -1, K_UDP));
	assert_int_equal(n_to(e, 3), 1);
	assert_int_equal(n_to(e, 2), 0);
}

static void test_mod_vlan_and_strip(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	flow(e, "in_port=1,actions=mod_vlan_vid:10,output:2");
	flow(e, "in_port=2,actions=strip_vlan,output:1");
	flow(e, "in_port=3,actions=mod_vlan_vid:99,output:2");
	struct vnet_pkt *p = frame(e, MAC[2], MAC[1], -1, K_UDP);
	p->vhdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	p->vhdr.csum_start = 34;
	p->vhdr.csum_offset = 6;
	uint8_t orig[60];
	memcpy(orig, p->data, 60);
	fwd1(e, 1, p);
	assert_int_equal(vid_to(e, 2), 10);
	assert_int_equal(p->len, 64);
	assert_memory_equal(p->data, orig, 12);
	assert_memory_equal(p->data + 16, orig + 12, 48);
	assert_int_equal(p->vhdr.csum_start, 38); /* the checksum moved with the data */
	sw_fwd_out_free(e->out);
	/* Strip: tagged frame from 2 leaves on 1 untagged. */
	p = frame(e, MAC[1], MAC[2], 10, K_UDP);
	uint8_t tagged[64];
	memcpy(tagged, p->data, 64);
	fwd1(e, 2, p);
	assert_int_equal(vid_to(e, 1), -1);
	assert_int_equal(p->len, 60);
	assert_memory_equal(p->data, tagged, 12);
	assert_memory_equal(p->data + 12, tagged + 16, 48);
	sw_fwd_out_free(e->out);
	/* mod_vlan_vid on a tagged frame rewrites the VID, keeps the PCP. */
	p = frame(e, MAC[2], MAC[3], 5, K_UDP);
	fwd1(e, 3, p);
	assert_int_equal(vid_to(e, 2), 99);
	assert_int_equal(p->len, 64);
	assert_int_equal(p->data[14] >> 5, 3);
}

static void test_outputs_with_different_tags_are_copies(void **state)
{
	struct env *e = *state;
	plain_ports(e, 4);
	flow(e, "in_port=1,actions=output:2,mod_vlan_vid:7,output:3,strip_vlan,output:4");
	struct vnet_pkt *p = frame(e, MAC[2], MAC[1], -1, K_UDP);
	fwd1(e, 1, p);
	assert_int_equal(vid_to(e, 2), -1);
	assert_int_equal(vid_to(e, 3), 7);
	assert_int_equal(vid_to(e, 4), -1);
	assert_int_equal(outp(e, 2)->pkts[0]->len, 60);
	assert_int_equal(outp(e, 3)->pkts[0]->len, 64);
	assert_ptr_equal(outp(e, 4)->pkts[0], p); /* the original goes last */
	assert_memory_equal(outp(e, 2)->pkts[0]->data, p->data, 60);
}

static void test_output_to_missing_or_ingress_port(void **state)
{
	struct env *e = *state;
	plain_ports(e, 2);
	flow(e, "in_port=1,actions=output:9");
	flow(e, "in_port=2,actions=output:2,output:1");
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 0);
	assert_int_equal(e->out->n_drop, 1);
	assert_int_equal(e->out->drops[SW_DROP_NO_PORT], 1);
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_NO_PORT]), 1);
	sw_fwd_out_free(e->out);
	fwd1(e, 2, frame(e, MAC[1], MAC[2], -1, K_UDP));
	assert_int_equal(n_to(e, 1), 1);
	assert_int_equal(n_to(e, 2), 0);
	assert_int_equal(e->out->drops[SW_DROP_LOOP], 1);
	sw_fwd_out_free(e->out);
	/* A port detached later: same drop. */
	sw_bridge_ctx_set_port(&e->br, 2, NULL);
	fwd1(e, 1, frame(e, BCAST, MAC[1], -1, K_ARP)); /* in_port=1 flow: output:9 */
	assert_int_equal(e->out->drops[SW_DROP_NO_PORT], 1);
	sw_fwd_out_free(e->out);
	/* Packets from an unknown ingress port are dropped. */
	fwd1(e, 5, frame(e, BCAST, MAC[1], -1, K_ARP));
	assert_int_equal(e->out->n_drop, 1);
}

static void test_flood_action_ignores_vlans(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	flow(e, "in_port=1,actions=flood");
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 4); /* 2, 3 (VLAN 20!), 4, 5 */
	assert_int_equal(vid_to(e, 3), -1);  /* as is: no tag work */
	assert_int_equal(vid_to(e, 4), -1);
	assert_int_equal(sw_fdb_count(e->fdb), 0);
}

static void test_no_buffers_for_copies(void **state)
{
	struct env *e = *state;
	plain_ports(e, 4);
	struct vnet_pkt *p = frame(e, BCAST, MAC[1], -1, K_ARP);
	/* Exhaust the pool. */
	struct vnet_pkt *hold[256];
	unsigned nh = vnet_pkt_alloc_burst(&e->pool, hold, 256);
	fwd1(e, 1, p);
	assert_int_equal(e->out->drops[SW_DROP_NO_BUF], 2);
	assert_int_equal(e->out->n_ports, 1); /* the original still goes out */
	vnet_pkt_free_burst(hold, nh);
}

static void test_malformed_and_burst_limit(void **state)
{
	struct env *e = *state;
	plain_ports(e, 2);
	struct vnet_pkt *p = frame(e, BCAST, MAC[1], -1, K_ARP);
	p->len = 13;
	struct vnet_pkt *q = frame(e, BCAST, MAC[1], 10, K_ARP);
	q->len = 15; /* cut inside the 802.1Q tag */
	struct vnet_pkt *pk[2] = {p, q};
	fwd(e, 1, pk, 2);
	assert_int_equal(e->out->drops[SW_DROP_MALFORMED], 2);
	assert_int_equal(e->out->n_drop, 2);
	sw_fwd_out_free(e->out);
	/* More than SW_FWD_MAX_BURST: the rest stays with the caller. */
	struct vnet_pkt *many[SW_FWD_MAX_BURST + 3];
	for (unsigned i = 0; i < SW_FWD_MAX_BURST + 3; i++)
		many[i] = frame(e, MAC[2], MAC[1], -1, K_UDP);
	assert_int_equal(fwd(e, 1, many, SW_FWD_MAX_BURST + 3), SW_FWD_MAX_BURST);
	assert_int_equal(n_to(e, 2), SW_FWD_MAX_BURST);
	vnet_pkt_free_burst(many + SW_FWD_MAX_BURST, 3);
}

static void test_static_entry_steers_normal(void **state)
{
	struct env *e = *state;
	plain_ports(e, 3);
	assert_int_equal(sw_fdb_add_static(e->fdb, 0, MAC[2], 3), 0);
	/* Known through the static entry: port 3 only, no flood to 2. */
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(n_to(e, 3), 1);
	sw_fwd_out_free(e->out);
	/* MAC[2] speaking on port 2 does not move a static entry. */
	fwd1(e, 2, frame(e, BCAST, MAC[2], -1, K_ARP));
	sw_fwd_out_free(e->out);
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[2], NOW), 3);
	fwd1(e, 1, frame(e, MAC[2], MAC[1], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 1);
	assert_int_equal(n_to(e, 3), 1);
	sw_fwd_out_free(e->out);
	/* Only in its VLAN: VLAN 5 does not know MAC[2] and floods. */
	fwd1(e, 1, frame(e, MAC[2], MAC[1], 5, K_UDP));
	assert_int_equal(e->out->n_ports, 2);
	sw_fwd_out_free(e->out);
	/* Pointing back at the ingress: a loop drop, counted on that port. */
	fwd1(e, 3, frame(e, MAC[2], MAC[3], -1, K_UDP));
	assert_int_equal(e->out->n_ports, 0);
	assert_int_equal(e->out->drops[SW_DROP_LOOP], 1);
	assert_int_equal(atomic_load(&e->ports[3].fwd_drops[SW_DROP_LOOP]), 1);
	assert_int_equal(atomic_load(&e->ports[1].fwd_drops[SW_DROP_LOOP]), 0);
	sw_fwd_out_free(e->out);
	/* Deleted: learning takes over again. */
	assert_int_equal(sw_fdb_del(e->fdb, 0, MAC[2]), 0);
	fwd1(e, 2, frame(e, BCAST, MAC[2], -1, K_ARP));
	sw_fwd_out_free(e->out);
	assert_int_equal(sw_fdb_lookup(e->fdb, 0, MAC[2], NOW), 2);
}

static uint64_t port_drops(struct env *e, unsigned port, enum sw_drop_reason r)
{
	return atomic_load(&e->ports[port].fwd_drops[r]);
}

static void test_drops_counted_on_ingress_port(void **state)
{
	struct env *e = *state;
	vlan_ports(e);
	/* Tagged into access port 1: a VLAN drop of port 1, not of port 2. */
	fwd1(e, 1, frame(e, BCAST, MAC[1], 10, K_ARP));
	sw_fwd_out_free(e->out);
	assert_int_equal(port_drops(e, 1, SW_DROP_VLAN), 1);
	assert_int_equal(port_drops(e, 2, SW_DROP_VLAN), 0);
	/* A burst on trunk 4: two VLAN-20 frames (not in trunks=10,30), a runt,
	 * and one that goes out. */
	struct vnet_pkt *pk[4] = {
		frame(e, BCAST, MAC[4], 20, K_ARP),
		frame(e, BCAST, MAC[4], 10, K_ARP),
		frame(e, BCAST, MAC[4], 20, K_ARP),
		frame(e, BCAST, MAC[4], -1, K_ARP),
	};
	pk[3]->len = 10;
	fwd(e, 4, pk, 4);
	sw_fwd_out_free(e->out);
	assert_int_equal(port_drops(e, 4, SW_DROP_VLAN), 2);
	assert_int_equal(port_drops(e, 4, SW_DROP_MALFORMED), 1);
	assert_int_equal(port_drops(e, 1, SW_DROP_VLAN), 1);
	assert_int_equal(port_drops(e, 1, SW_DROP_MALFORMED), 0);
	/* The bridge has the sum. */
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_VLAN]), 3);
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_MALFORMED]), 1);
	/* Per-output reasons too: a flow to a missing port, from port 5. */
	flow(e, "in_port=5,actions=output:9,output:5");
	fwd1(e, 5, frame(e, MAC[1], MAC[5], -1, K_UDP));
	sw_fwd_out_free(e->out);
	assert_int_equal(port_drops(e, 5, SW_DROP_NO_PORT), 1);
	assert_int_equal(port_drops(e, 5, SW_DROP_LOOP), 1);
	/* From an unknown ingress: the bridge counts it, no port does. */
	fwd1(e, 9, frame(e, BCAST, MAC[1], -1, K_ARP));
	sw_fwd_out_free(e->out);
	assert_int_equal(atomic_load(&e->br.drops[SW_DROP_NO_PORT]), 2);
	uint64_t sum = 0;
	for (unsigned p = 1; p <= NPORTS; p++)
		sum += port_drops(e, p, SW_DROP_NO_PORT);
	assert_int_equal(sum, 1);
	/* Untouched ports have nothing. */
	for (int r = 0; r < SW_DROP__COUNT; r++) {
		assert_int_equal(port_drops(e, 2, (enum sw_drop_reason)r), 0);
		assert_int_equal(port_drops(e, 3, (enum sw_drop_reason)r), 0);
	}
}

static void test_drop_reason_names(void **state)
{
	(void)state;
	assert_string_equal(sw_drop_reason_name(SW_DROP_NO_PORT), "no_port");
	assert_string_equal(sw_drop_reason_name(SW_DROP_VLAN), "vlan");
	for (int r = 0; r < SW_DROP__COUNT; r++)
		assert_non_null(sw_drop_reason_name((enum sw_drop_reason)r));
	struct sw_port p;
	memset(&p, 0, sizeof(p));
	p.trunk = true;
	assert_true(sw_port_carries_vlan(&p, 4000)); /* empty trunks = all */
	p.trunks[1] = 1; /* VLAN 64 */
	assert_true(sw_port_carries_vlan(&p, 64));
	assert_false(sw_port_carries_vlan(&p, 65));
	assert_true(sw_port_carries_vlan(&p, 0));
	p.trunk = false;
	p.tag = 5;
	assert_true(sw_port_carries_vlan(&p, 5));
	assert_false(sw_port_carries_vlan(&p, 0));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_learning_then_unicast),
		T(test_burst_lookup_cache_follows_learning),
		T(test_broadcast_floods_copies_except_ingress),
		T(test_access_flood_stays_in_vlan),
		T(test_access_port_drops_tagged),
		T(test_trunk_ingress),
		T(test_unicast_respects_vlan),
		T(test_unicast_to_ingress_is_dropped),
		T(test_drop_rule_blocks_icmp_not_arp),
		T(test_cross_connect_uses_emc),
		T(test_mod_vlan_and_strip),
		T(test_outputs_with_different_tags_are_copies),
		T(test_output_to_missing_or_ingress_port),
		T(test_flood_action_ignores_vlans),
		T(test_no_buffers_for_copies),
		T(test_malformed_and_burst_limit),
		T(test_static_entry_steers_normal),
		T(test_drops_counted_on_ingress_port),
		cmocka_unit_test(test_drop_reason_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
