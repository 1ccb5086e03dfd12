/*
 * flow.c: ovs-ofctl flow syntax (fields, masks, shorthands, errors, format
 * round-trip), priority lookup, add-flow replace, del-flows (non-strict
 * and strict), counters, the EMC and its invalidation, RCU grace periods,
 * and a reader looking up flows while another thread changes the table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "switch/flow.h"
#include "vnet/frame.h"

static struct sw_flow_spec parse_ok(const char *s)
{
	struct sw_flow_spec sp;
	char err[256];
	int rc = sw_flow_spec_parse(s, SW_PARSE_FLOW, &sp, err, sizeof(err));
	if (rc)
		fail_msg("parse '%s': %s", s, err);
	return sp;
}

static void expect_error(const char *s, enum sw_flow_parse_mode mode, const char *msg)
{
	struct sw_flow_spec sp;
	char err[256];
	assert_int_equal(sw_flow_spec_parse(s, mode, &sp, err, sizeof(err)), -1);
	if (strcmp(err, msg))
		fail_msg("'%s': got error \"%s\", want \"%s\"", s, err, msg);
}

/* A packet key with the given fields (others zero). */
static struct vnet_flow_key ip_key(uint16_t in_port, uint32_t src, uint32_t dst, uint8_t proto,
				   uint16_t sp, uint16_t dp)
{
	struct vnet_flow_key k;
	memset(&k, 0, sizeof(k));
	k.in_port = in_port;
	k.dl_type = VNET_ETH_P_IPV4;
	memcpy(k.dl_src, (uint8_t[6]){2, 0, 0, 0, 0, 1}, 6);
	memcpy(k.dl_dst, (uint8_t[6]){2, 0, 0, 0, 0, 2}, 6);
	k.nw.v4.src = src;
	k.nw.v4.dst = dst;
	k.nw_proto = proto;
	k.tp_src = sp;
	k.tp_dst = dp;
	return k;
}

static void test_parse_fields(void **state)
{
	(void)state;
	struct sw_flow_spec sp =
		parse_ok("priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=output:2");
	assert_int_equal(sp.priority, 100);
	assert_true(sp.has_actions);
	assert_int_equal(sp.match.key.in_port, 1);
	assert_int_equal(sp.match.mask.in_port, 0xffff);
	assert_int_equal(sp.match.key.dl_type, 0x0800);
	assert_int_equal(sp.match.key.nw.v4.dst, 0x0a000000);
	assert_int_equal(sp.match.mask.nw.v4.dst, 0xffffff00);
	assert_int_equal(sp.match.mask.nw.v4.src, 0);
	assert_int_equal(sp.n_actions, 1);
	assert_int_equal(sp.actions[0].type, SW_ACT_OUTPUT);
	assert_int_equal(sp.actions[0].arg, 2);

	sp = parse_ok("tcp tp_dst=80 actions=mod_vlan_vid:10,output:2,NORMAL,flood,strip_vlan,3");
	assert_int_equal(sp.priority, SW_FLOW_DEFAULT_PRIORITY);
	assert_int_equal(sp.match.key.nw_proto, 6);
	assert_int_equal(sp.match.key.tp_dst, 80);
	assert_int_equal(sp.n_actions, 6);
	assert_int_equal(sp.actions[0].type, SW_ACT_MOD_VLAN_VID);
	assert_int_equal(sp.actions[0].arg, 10);
	assert_int_equal(sp.actions[2].type, SW_ACT_NORMAL);
	assert_int_equal(sp.actions[3].type, SW_ACT_FLOOD);
	assert_int_equal(sp.actions[4].type, SW_ACT_STRIP_VLAN);
	assert_int_equal(sp.actions[5].type, SW_ACT_OUTPUT);
	assert_int_equal(sp.actions[5].arg, 3);

	sp = parse_ok("arp,actions=drop");
	assert_int_equal(sp.n_actions, 0);
	sp = parse_ok("actions=");
	assert_int_equal(sp.n_actions, 0);
	assert_true(sp.has_actions);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("foo=1,actions=drop", SW_PARSE_FLOW, "unknown field 'foo'");
	expect_error("ip,nw_dst=10.0.0.300,actions=drop", SW_PARSE_FLOW,
		     "bad value for nw_dst: '10.0.0.300'");
	expect_error("in_port=1", SW_PARSE_FLOW, "missing actions");
	expect_error("in_port=1,actions=output:x", SW_PARSE_FLOW, "bad value for output: 'x'");
	expect_error("actions=jump", SW_PARSE_FLOW, "unknown action 'jump'");
	expect_error("actions=drop,output:1", SW_PARSE_FLOW, "drop must be the only action");
	expect_error("nw_src=1.2.3.4,actions=drop", SW_PARSE_FLOW, "nw_src requires ip or arp");
	expect_error("ip,tp_dst=80,actions=drop", SW_PARSE_FLOW,
		     "tp_dst requires tcp, udp or sctp (or their ipv6 forms)");
	expect_error("tcp,nw_proto=17,actions=drop", SW_PARSE_FLOW, "conflicting values for nw_proto");
	expect_error("dl_vlan=5000,actions=drop", SW_PARSE_FLOW, "bad value for dl_vlan: '5000'");
	expect_error("priority=70000,actions=drop", SW_PARSE_FLOW, "bad value for priority: '70000'");
	expect_error("dl_dst=01:02:03:04:05,actions=drop", SW_PARSE_FLOW,
		     "bad value for dl_dst: '01:02:03:04:05'");
	expect_error("in_port=0,actions=drop", SW_PARSE_FLOW, "bad value for in_port: '0'");
	expect_error("actions=mod_vlan_vid:4096", SW_PARSE_FLOW, "bad value for mod_vlan_vid: '4096'");
	expect_error("in_port=1,actions=output:2", SW_PARSE_MATCH, "actions not allowed here");
	expect_error("ipv6,ipv6_dst=2001:db8::/129,actions=drop", SW_PARSE_FLOW,
		     "bad value for ipv6_dst: '2001:db8::/129'");
	expect_error("bogus,actions=drop", SW_PARSE_FLOW, "unknown field 'bogus'");
	/* A match alone is fine for del-flows. */
	struct sw_flow_spec sp;
	assert_int_equal(sw_flow_spec_parse("in_port=3", SW_PARSE_MATCH, &sp, NULL, 0), 0);
	assert_int_equal(sw_flow_spec_parse("", SW_PARSE_MATCH, &sp, NULL, 0), 0);
}

static void test_mac_mask_and_vlan_match(void **state)
{
	(void)state;
	struct sw_flow_spec sp =
		parse_ok("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop");
	struct vnet_flow_key k = ip_key(1, 0, 0, 0, 0, 0);
	assert_false(sw_match_matches(&sp.match, &k));
	k.dl_dst[0] = 0x33; /* IPv6 multicast MAC */
	assert_true(sw_match_matches(&sp.match, &k));
	memset(k.dl_dst, 0xff, 6);
	assert_true(sw_match_matches(&sp.match, &k));

	struct sw_flow_spec untagged = parse_ok("dl_vlan=0xffff,actions=drop");
	struct sw_flow_spec v10 = parse_ok("dl_vlan=10,actions=drop");
	struct sw_flow_spec pcp = parse_ok("dl_vlan_pcp=5,actions=drop");
	k = ip_key(1, 0, 0, 0, 0, 0);
	assert_true(sw_match_matches(&untagged.match, &k));
	assert_false(sw_match_matches(&v10.match, &k));
	k.vlan_tci = VNET_KEY_VLAN_PRESENT | (5u << 13) | 10;
	assert_false(sw_match_matches(&untagged.match, &k));
	assert_true(sw_match_matches(&v10.match, &k));
	assert_true(sw_match_matches(&pcp.match, &k));
	k.vlan_tci = VNET_KEY_VLAN_PRESENT | 11;
	assert_false(sw_match_matches(&v10.match, &k));
	assert_false(sw_match_matches(&pcp.match, &k));
	k.vlan_tci = VNET_KEY_VLAN_PRESENT; /* VID 0 is a tag, not "untagged" */
	assert_false(sw_match_matches(&untagged.match, &k));
}

static void test_prefix_and_port_masks(void **state)
{
	(void)state;
	struct sw_flow_spec sp = parse_ok("ip,nw_src=192.168.1.77/24,actions=drop");
	assert_int_equal(sp.match.key.nw.v4.src, 0xc0a80100); /* host bits cleared */
	assert_true(sw_match_matches(&sp.match, &(struct vnet_flow_key){0}) == false);
	struct vnet_flow_key k = ip_key(1, 0xc0a801fe, 1, 6, 1, 2);
	assert_true(sw_match_matches(&sp.match, &k));
	k.nw.v4.src = 0xc0a80201;
	assert_false(sw_match_matches(&sp.match, &k));

	sp = parse_ok("ip,nw_dst=10.0.0.1/255.0.0.255,actions=drop"); /* non-CIDR mask */
	k = ip_key(1, 0, 0x0a630001, 6, 1, 2);
	assert_true(sw_match_matches(&sp.match, &k));
	k.nw.v4.dst = 0x0a630002;
	assert_false(sw_match_matches(&sp.match, &k));

	sp = parse_ok("ip,nw_dst=0.0.0.0/0,actions=drop"); /* /0: any address */
	k = ip_key(1, 0, 0x01020304, 6, 1, 2);
	assert_true(sw_match_matches(&sp.match, &k));
	k.dl_type = VNET_ETH_P_ARP; /* but still only IPv4 */
	assert_false(sw_match_matches(&sp.match, &k));

	sp = parse_ok("udp,tp_dst=0x1000/0xf000,actions=drop");
	k = ip_key(1, 0, 0, 17, 9, 0x1abc);
	assert_true(sw_match_matches(&sp.match, &k));
	k.tp_dst = 0x2abc;
	assert_false(sw_match_matches(&sp.match, &k));

	sp = parse_ok("ipv6,ipv6_dst=2001:db8::/32,actions=drop");
	struct vnet_flow_key k6;
	memset(&k6, 0, sizeof(k6));
	k6.dl_type = 0x86dd;
	const uint8_t in6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff, [15] = 9};
	const uint8_t out6[16] = {0x20, 0x01, 0x0d, 0xb9, [15] = 9};
	memcpy(k6.nw.v6.dst, in6, 16);
	assert_true(sw_match_matches(&sp.match, &k6));
	memcpy(k6.nw.v6.dst, out6, 16);
	assert_false(sw_match_matches(&sp.match, &k6));
}

static void test_format_roundtrip(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=output:2",
		 "priority=100,ip,in_port=1,nw_dst=10.0.0.0/24,actions=output:2"},
		{"in_port=1,actions=output:2", "in_port=1,actions=output:2"},
		{"actions=normal", "actions=NORMAL"},
		{"priority=0,actions=drop", "priority=0,actions=drop"},
		{"icmp,actions=drop", "icmp,actions=drop"},
		{"dl_type=0x0800,nw_proto=6,tp_dst=22,actions=drop", "tcp,tp_dst=22,actions=drop"},
		{"arp,nw_src=10.0.0.1,arp_op=1,actions=flood", "arp,arp_spa=10.0.0.1,arp_op=1,actions=FLOOD"},
		{"dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop",
		 "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop"},
		{"dl_vlan=0xffff,dl_src=52:54:00:AA:bb:01,actions=mod_vlan_vid:10,output:2",
		 "dl_vlan=0xffff,dl_src=52:54:00:aa:bb:01,actions=mod_vlan_vid:10,output:2"},
		{"dl_vlan=10,dl_vlan_pcp=3,actions=strip_vlan,output:1",
		 "dl_vlan=10,dl_vlan_pcp=3,actions=strip_vlan,output:1"},
		{"ip,nw_src=10.1.0.0/255.255.0.255,nw_tos=32,actions=drop",
		 "ip,nw_src=10.1.0.0/255.255.0.255,nw_tos=32,actions=drop"},
		{"udp,tp_src=0x100/0xff00,tp_dst=53,actions=drop",
		 "udp,tp_src=0x100/0xff00,tp_dst=53,actions=drop"},
		{"icmp6,ipv6_src=2001:db8::/32,icmp_type=135,actions=drop",
		 "icmp6,ipv6_src=2001:db8::/32,icmp_type=135,actions=drop"},
		{"dl_type=0x88cc,actions=drop", "dl_type=0x88cc,actions=drop"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sw_flow_spec a = parse_ok(cases[i].in);
		char buf[512];
		sw_flow_spec_format(&a, buf, sizeof(buf));
		if (strcmp(buf, cases[i].out))
			fail_msg("format of '%s': '%s', want '%s'", cases[i].in, buf, cases[i].out);
		struct sw_flow_spec b = parse_ok(buf);
		assert_true(sw_match_equal(&a.match, &b.match));
		assert_int_equal(a.priority, b.priority);
		assert_int_equal(a.n_actions, b.n_actions);
		assert_memory_equal(a.actions, b.actions, a.n_actions * sizeof(a.actions[0]));
	}
	/* Truncating output still reports the full length. */
	struct sw_flow_spec a = parse_ok(cases[0].in);
	char tiny[8];
	assert_int_equal(sw_flow_spec_format(&a, tiny, sizeof(tiny)), strlen(cases[0].out));
	assert_int_equal(strlen(tiny), 7);
}

struct env {
	struct sw_rcu rcu;
	struct sw_flow_table *t;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	sw_rcu_init(&e->rcu);
	e->t = sw_flow_table_create(&e->rcu, 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	sw_flow_table_destroy(e->t);
	sw_rcu_fini(&e->rcu);
	free(e);
	return 0;
}

static void add(struct sw_flow_table *t, const char *s)
{
	struct sw_flow_spec sp = parse_ok(s);
	assert_int_equal(sw_flow_table_add(t, &sp, NULL), 0);
}

static int out_port(const struct sw_flow *f)
{
	return f && f->n_actions && f->actions[0].type == SW_ACT_OUTPUT ? f->actions[0].arg : -1;
}

static void test_priority_order(void **state)
{
	struct env *e = *state;
	add(e->t, "priority=10,ip,actions=output:1");
	add(e->t, "priority=300,ip,nw_dst=10.0.0.0/8,actions=output:3");
	add(e->t, "priority=200,ip,nw_dst=10.0.0.0/24,actions=output:2");
	add(e->t, "priority=300,tcp,actions=output:4"); /* same priority, added later */
	const struct sw_flow_version *v = sw_flow_table_current(e->t);
	assert_int_equal(v->n, 4);
	struct vnet_flow_key k = ip_key(1, 1, 0x0a000005, 6, 1, 2);
	assert_int_equal(out_port(sw_flow_classify(v, &k)), 3); /* not the longer prefix: priority */
	k.nw.v4.dst = 0x0b000005;
	assert_int_equal(out_port(sw_flow_classify(v, &k)), 4);
	k.nw_proto = 17;
	assert_int_equal(out_port(sw_flow_classify(v, &k)), 1);
	k.dl_type = VNET_ETH_P_ARP;
	assert_null(sw_flow_classify(v, &k)); /* no match → NORMAL */
	for (unsigned i = 1; i < v->n; i++)
		assert_true(v->flows[i - 1]->priority >= v->flows[i]->priority);
}

static void test_add_replaces_same_match_and_priority(void **state)
{
	struct env *e = *state;
	add(e->t, "priority=5,in_port=1,actions=output:2");
	struct sw_flow *f = sw_flow_table_current(e->t)->flows[0];
	sw_flow_count(f, 3, 300);
	struct sw_flow_spec sp = parse_ok("in_port=1,priority=5,actions=output:3");
	bool replaced = false;
	assert_int_equal(sw_flow_table_add(e->t, &sp, &replaced), 0);
	assert_true(replaced);
	assert_int_equal(sw_flow_table_count(e->t), 1);
	const struct sw_flow_version *v = sw_flow_table_current(e->t);
	assert_int_equal(out_port(v->flows[0]), 3);
	assert_int_equal(atomic_load(&v->flows[0]->n_packets), 0); /* counters restart */
	/* Another priority is another flow. */
	sp = parse_ok("in_port=1,priority=6,actions=output:4");
	assert_int_equal(sw_flow_table_add(e->t, &sp, &replaced), 0);
	assert_false(replaced);
	assert_int_equal(sw_flow_table_count(e->t), 2);
	/* Masked host bits do not make a different match. */
	add(e->t, "priority=7,ip,nw_dst=10.0.0.0/24,actions=drop");
	sp = parse_ok("priority=7,ip,nw_dst=10.0.0.99/24,actions=output:1");
	assert_int_equal(sw_flow_table_add(e->t, &sp, &replaced), 0);
	assert_true(replaced);
	assert_int_equal(sw_flow_table_count(e->t), 3);
}

static unsigned del(struct sw_flow_table *t, const char *m, bool strict)
{
	struct sw_flow_spec sp;
	char err[128];
	assert_int_equal(sw_flow_spec_parse(m, SW_PARSE_MATCH, &sp, err, sizeof(err)), 0);
	return sw_flow_table_del(t, &sp.match, strict, sp.priority);
}

static void test_del_flows_semantics(void **state)
{
	struct env *e = *state;
	add(e->t, "ip,nw_dst=10.0.0.0/24,actions=output:1");
	add(e->t, "ip,nw_dst=10.0.0.5,actions=output:2");
	add(e->t, "ip,nw_dst=10.0.0.0/16,actions=output:3");
	add(e->t, "in_port=1,ip,actions=output:4");
	add(e->t, "arp,actions=output:5");
	add(e->t, "priority=9,in_port=2,actions=output:6");
	/* Non-strict: /24 covers itself and the /32 but not the /16. */
	assert_int_equal(del(e->t, "ip,nw_dst=10.0.0.0/24", false), 2);
	assert_int_equal(sw_flow_table_count(e->t), 4);
	/* Strict needs the same priority. */
	assert_int_equal(del(e->t, "in_port=2", true), 0);
	assert_int_equal(del(e->t, "priority=9,in_port=2", true), 1);
	/* Strict does not delete more specific flows. */
	assert_int_equal(del(e->t, "ip", true), 0);
	/* "ip" covers every IPv4 flow (the /16 and in_port=1,ip), not arp. */
	assert_int_equal(del(e->t, "ip", false), 2);
	assert_int_equal(sw_flow_table_count(e->t), 1);
	assert_int_equal(out_port(sw_flow_table_current(e->t)->flows[0]), 5);
	/* Nothing matches: nothing changes, not even the generation. */
	uint64_t gen = sw_flow_table_current(e->t)->gen;
	assert_int_equal(del(e->t, "in_port=7", false), 0);
	assert_int_equal(sw_flow_table_current(e->t)->gen, gen);
	/* Empty match deletes all. */
	add(e->t, "in_port=3,actions=drop");
	assert_int_equal(del(e->t, "", false), 2);
	assert_int_equal(sw_flow_table_del(e->t, NULL, false, 0), 0);
	assert_int_equal(sw_flow_table_count(e->t), 0);
}

struct dump {
	char lines[8][512];
	unsigned n;
};

static void dump_one(const struct sw_flow *f, void *arg)
{
	struct dump *d = arg;
	if (d->n < 8)
		sw_flow_dump_format(f, f->created_ns + 2500000000ull, d->lines[d->n++], 512);
}

static void test_counters_and_dump(void **state)
{
	struct env *e = *state;
	add(e->t, "priority=40000,ip,in_port=1,actions=output:2");
	add(e->t, "arp,actions=NORMAL");
	struct sw_flow *f = sw_flow_table_current(e->t)->flows[0];
	sw_flow_count(f, 3, 180);
	sw_flow_count(f, 1, 60);
	assert_int_equal(atomic_load(&f->n_packets), 4);
	assert_int_equal(atomic_load(&f->n_bytes), 240);
	struct dump d = {.n = 0};
	assert_int_equal(sw_flow_table_foreach(e->t, NULL, dump_one, &d), 2);
	assert_string_equal(d.lines[0], "duration=2.500s, table=0, n_packets=4, n_bytes=240, "
					"priority=40000,ip,in_port=1 actions=output:2");
	assert_string_equal(d.lines[1], "duration=2.500s, table=0, n_packets=0, n_bytes=0, "
					"arp actions=NORMAL");
	/* A filter (dump-flows BR MATCH) selects like del-flows. */
	struct sw_flow_spec sp;
	sw_flow_spec_parse("arp", SW_PARSE_MATCH, &sp, NULL, 0);
	d.n = 0;
	assert_int_equal(sw_flow_table_foreach(e->t, &sp.match, dump_one, &d), 1);
	assert_true(f->has_normal == false);
	assert_true(sw_flow_table_current(e->t)->flows[1]->has_normal);
}

static void test_emc_hits_and_invalidation(void **state)
{
	struct env *e = *state;
	struct sw_emc *emc = malloc(sizeof(*emc));
	sw_emc_init(emc);
	add(e->t, "in_port=1,actions=output:2");
	struct vnet_flow_key k = ip_key(1, 1, 2, 17, 1000, 2000);
	uint32_t h = vnet_flow_key_hash(&k, 0);
	const struct sw_flow_version *v = sw_flow_table_current(e->t);
	assert_int_equal(out_port(sw_emc_lookup(emc, v, &k, h)), 2);
	assert_int_equal(emc->misses, 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(out_port(sw_emc_lookup(emc, v, &k, h)), 2);
	assert_int_equal(emc->hits, 10);
	/* A key that differs only in a field the flow ignores is its own entry. */
	struct vnet_flow_key k2 = k;
	k2.tp_src++;
	assert_int_equal(out_port(sw_emc_lookup(emc, v, &k2, vnet_flow_key_hash(&k2, 0))), 2);
	assert_int_equal(emc->misses, 2);
	/* A higher-priority flow: the cached answer must not survive. */
	add(e->t, "priority=40000,udp,actions=output:7");
	v = sw_flow_table_current(e->t);
	assert_int_equal(out_port(sw_emc_lookup(emc, v, &k, h)), 7);
	assert_int_equal(emc->misses, 3);
	/* Deleting it: back to output:2. */
	assert_int_equal(del(e->t, "udp", false), 1);
	v = sw_flow_table_current(e->t);
	assert_int_equal(out_port(sw_emc_lookup(emc, v, &k, h)), 2);
	/* "No flow" (NORMAL) is cached too, and invalidated as well. */
	struct vnet_flow_key k3 = k;
	k3.in_port = 9;
	uint32_t h3 = vnet_flow_key_hash(&k3, 0);
	assert_null(sw_emc_lookup(emc, v, &k3, h3));
	unsigned long hits = emc->hits;
	assert_null(sw_emc_lookup(emc, v, &k3, h3));
	assert_int_equal(emc->hits, hits + 1);
	add(e->t, "in_port=9,actions=output:1");
	v = sw_flow_table_current(e->t);
	assert_int_equal(out_port(sw_emc_lookup(emc, v, &k3, h3)), 1);
	free(emc);
}

static void test_table_limit(void **state)
{
	(void)state;
	struct sw_rcu rcu;
	sw_rcu_init(&rcu);
	struct sw_flow_table *t = sw_flow_table_create(&rcu, 2);
	add(t, "in_port=1,actions=drop");
	add(t, "in_port=2,actions=drop");
	struct sw_flow_spec sp = parse_ok("in_port=3,actions=drop");
	assert_int_equal(sw_flow_table_add(t, &sp, NULL), -ENOSPC);
	/* Replacing still works when full. */
	sp = parse_ok("in_port=2,actions=output:1");
	assert_int_equal(sw_flow_table_add(t, &sp, NULL), 0);
	sw_flow_table_destroy(t);
	sw_rcu_fini(&rcu);
}

static int freed;
static void mark_freed(void *arg)
{
	(void)arg;
	freed++;
}

static void test_rcu_grace_period(void **state)
{
	(void)state;
	struct sw_rcu rcu;
	sw_rcu_init(&rcu);
	struct sw_rcu_reader r1, r2;
	assert_int_equal(sw_rcu_register(&rcu, &r1), 0);
	assert_int_equal(sw_rcu_register(&rcu, &r2), 0);
	freed = 0;
	sw_rcu_defer(&rcu, mark_freed, NULL);
	assert_int_equal(sw_rcu_poll(&rcu), 0); /* nobody quiesced yet */
	sw_quiesce(&r1);
	assert_int_equal(sw_rcu_poll(&rcu), 0); /* r2 may still hold it */
	sw_quiesce(&r2);
	assert_int_equal(sw_rcu_poll(&rcu), 1);
	assert_int_equal(freed, 1);
	/* An offline reader does not hold anything back. */
	sw_rcu_offline(&r2);
	sw_rcu_defer(&rcu, mark_freed, NULL);
	sw_quiesce(&r1);
	assert_int_equal(sw_rcu_poll(&rcu), 1);
	sw_rcu_online(&r2);
	sw_rcu_defer(&rcu, mark_freed, NULL);
	sw_quiesce(&r1);
	assert_int_equal(sw_rcu_poll(&rcu), 0); /* r2 is back and counts */
	sw_rcu_unregister(&r2);
	assert_int_equal(sw_rcu_poll(&rcu), 1);
	sw_rcu_unregister(&r1);
	sw_rcu_synchronize(&rcu); /* no readers: returns at once */
	assert_int_equal(freed, 3);
	sw_rcu_fini(&rcu);
}

struct race {
	struct sw_rcu *rcu;
	struct sw_flow_table *t;
	_Atomic int stop;
	unsigned long lookups, hits, bad;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	struct sw_rcu_reader rd;
	sw_rcu_register(r->rcu, &rd);
	struct sw_emc *emc = malloc(sizeof(*emc));
	sw_emc_init(emc);
	while (!atomic_load(&r->stop)) {
		const struct sw_flow_version *v = sw_flow_table_current(r->t);
		for (uint16_t p = 1; p <= 8; p++) {
			struct vnet_flow_key k = ip_key(p, 1, 2, 6, 3, 4);
			struct sw_flow *f = (p & 1) ? sw_flow_classify(v, &k)
						    : sw_emc_lookup(emc, v, &k, vnet_flow_key_hash(&k, 0));
			r->lookups++;
			if (!f)
				continue;
			/* Every flow the writer adds is in_port=N → output:N+100. */
			sw_flow_count(f, 1, 64);
			if (f->match.key.in_port != p || out_port(f) != p + 100 || f->priority != p)
				r->bad++;
			r->hits++;
		}
		sw_quiesce(&rd);
	}
	free(emc);
	sw_rcu_unregister(&rd);
	return NULL;
}

static void test_concurrent_lookup_and_changes(void **state)
{
	(void)state;
	struct sw_rcu rcu;
	sw_rcu_init(&rcu);
	struct race r = {.rcu = &rcu, .t = sw_flow_table_create(&rcu, 0)};
	pthread_t th;
	pthread_create(&th, NULL, race_reader, &r);
	char s[128];
	for (unsigned i = 0; i < 10000; i++) {
		unsigned p = 1 + i % 8;
		snprintf(s, sizeof(s), "priority=%u,in_port=%u,actions=output:%u", p, p, p + 100);
		struct sw_flow_spec sp = parse_ok(s);
		assert_int_equal(sw_flow_table_add(r.t, &sp, NULL), 0);
		if (i % 3 == 0) {
			snprintf(s, sizeof(s), "in_port=%u", 1 + (i / 3) % 8);
			struct sw_flow_spec m;
			sw_flow_spec_parse(s, SW_PARSE_MATCH, &m, NULL, 0);
			sw_flow_table_del(r.t, &m.match, false, 0);
		}
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(r.bad, 0);
	assert_true(r.lookups > 0);
	sw_rcu_synchronize(&rcu);
	sw_flow_table_destroy(r.t);
	sw_rcu_fini(&rcu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_mac_mask_and_vlan_match),
		cmocka_unit_test(test_prefix_and_port_masks),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test_setup_teardown(test_priority_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_replaces_same_match_and_priority, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_del_flows_semantics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_and_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emc_hits_and_invalidation, setup, teardown),
		cmocka_unit_test(test_table_limit),
		cmocka_unit_test(test_rcu_grace_period),
		cmocka_unit_test(test_concurrent_lookup_and_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
