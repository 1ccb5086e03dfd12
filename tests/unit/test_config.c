/* test_config.c — vnet-switchd's configuration model and state file:
 * validation errors, JSON round trip, atomic save, refusal of corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "switch/config.h"
#include "switch/persist.h"

static char err[512];

#define assert_err_contains(s) \
	do { \
		if (!strstr(err, (s))) \
			fail_msg("error '%s' does not contain '%s'", err, (s)); \
	} while (0)

static void port(struct sw_port_config *p, const char *name, const char *type)
{
	sw_port_config_init(p, name);
	assert_int_equal(sw_port_config_set(p, "type", type, err, sizeof err), 0);
}

static struct sw_config *two_bridges(void)
{
	struct sw_config *c = sw_config_new();
	assert_non_null(c);
	assert_int_equal(sw_config_add_bridge(c, "br0", err, sizeof err), 0);
	assert_int_equal(sw_config_add_bridge(c, "br1", err, sizeof err), 0);
	return c;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(sw_name_valid("br0"));
	assert_true(sw_name_valid("a"));
	assert_true(sw_name_valid("vm_1.eth-0"));
	assert_true(sw_name_valid("abcdefghijklmno")); /* 15 */
	assert_false(sw_name_valid("abcdefghijklmnop")); /* 16 */
	assert_false(sw_name_valid(""));
	assert_false(sw_name_valid(NULL));
	assert_false(sw_name_valid("br 0"));
	assert_false(sw_name_valid("br/0"));
	assert_false(sw_name_valid("br0\n"));
	assert_false(sw_name_valid("bré"));

	struct sw_config *c = sw_config_new();
	assert_int_equal(sw_config_add_bridge(c, "bad name", err, sizeof err), -1);
	assert_err_contains("invalid bridge name 'bad name'");
	assert_int_equal(sw_config_add_bridge(c, "abcdefghijklmnop", err, sizeof err), -1);
	assert_err_contains("longer than 15");
	assert_int_equal(sw_config_add_bridge(c, "", err, sizeof err), -1);
	assert_err_contains("empty bridge name");
	assert_int_equal(c->nbridges, 0);

	struct sw_port_config p;
	assert_int_equal(sw_config_add_bridge(c, "br0", err, sizeof err), 0);
	port(&p, "x", "tap");
	strcpy(p.name, "a:b");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), -1);
	assert_err_contains("invalid port name 'a:b'");
	assert_int_equal(c->bridges[0].nports, 0);
	sw_config_free(c);
}

static void test_duplicates(void **state)
{
	(void)state;
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	assert_int_equal(sw_config_add_bridge(c, "br0", err, sizeof err), -1);
	assert_string_equal(err, "bridge br0 exists");

	port(&p, "vm1", "vhost-user");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), -1);
	assert_string_equal(err, "port vm1 exists");
	/* ports are unique across bridges, as OVS */
	assert_int_equal(sw_config_add_port(c, "br1", &p, NULL, err, sizeof err), -1);
	assert_string_equal(err, "port vm1 exists on bridge br0");
	/* a port may not take a bridge's name, nor a bridge a port's */
	port(&p, "br1", "tap");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), -1);
	assert_err_contains("br1 is a bridge name");
	assert_int_equal(sw_config_add_bridge(c, "vm1", err, sizeof err), -1);
	assert_err_contains("vm1 is a port on bridge br0");
	assert_int_equal(c->bridges[0].nports, 1);
	assert_int_equal(c->bridges[1].nports, 0);
	sw_config_free(c);
}

static void test_unknown_bridge_and_port(void **state)
{
	(void)state;
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	port(&p, "vm1", "tap");
	assert_int_equal(sw_config_add_port(c, "br9", &p, NULL, err, sizeof err), -1);
	assert_string_equal(err, "no bridge br9");
	assert_int_equal(sw_config_del_bridge(c, "br9", err, sizeof err), -1);
	assert_string_equal(err, "no bridge br9");
	assert_int_equal(sw_config_add_flow(c, "br9", "actions=drop", err, sizeof err), -1);
	assert_string_equal(err, "no bridge br9");
	assert_int_equal(sw_config_del_port(c, NULL, "vm1", err, sizeof err), -1);
	assert_string_equal(err, "no port vm1");

	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	assert_int_equal(sw_config_del_port(c, "br1", "vm1", err, sizeof err), -1);
	assert_string_equal(err, "port vm1 is on bridge br0, not br1");
	assert_int_equal(sw_config_del_port(c, "br9", "vm1", err, sizeof err), -1);
	assert_string_equal(err, "no bridge br9");
	assert_int_equal(c->bridges[0].nports, 1);
	assert_int_equal(sw_config_del_port(c, "br0", "vm1", err, sizeof err), 0);
	assert_int_equal(c->bridges[0].nports, 0);
	assert_int_equal(sw_config_add_port(c, "br1", &p, NULL, err, sizeof err), 0);
	assert_int_equal(sw_config_del_port(c, NULL, "vm1", err, sizeof err), 0);
	assert_null(sw_config_port(c, "vm1", NULL));
	sw_config_free(c);
}

static void test_port_type_and_options(void **state)
{
	(void)state;
	struct sw_port_config p;
	sw_port_config_init(&p, "vm1");
	assert_int_equal(sw_port_config_validate(&p, err, sizeof err), -1);
	assert_string_equal(err, "port vm1: missing type");
	assert_int_equal(sw_port_config_set(&p, "type", "dpdk", err, sizeof err), -1);
	assert_err_contains("unknown port type 'dpdk' (known: vhost-user, tap, afpacket");
	assert_int_equal(sw_port_config_set(&p, "type", "vhost-user", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "mode", "server", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "path", "/run/vnet/vm 1.sock", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "mode", "client", err, sizeof err), 0); /* replaces */
	assert_int_equal(p.options.n, 2);
	assert_string_equal(sw_config_option(&p.options, "mode"), "client");
	assert_null(sw_config_option(&p.options, "queues"));
	assert_int_equal(sw_port_config_set(&p, "path", "", err, sizeof err), -1);
	assert_err_contains("empty value");
	assert_int_equal(sw_port_config_set(&p, "bad key", "1", err, sizeof err), -1);
	assert_err_contains("invalid option name");
	assert_int_equal(sw_port_config_set(&p, "k", "a\tb", err, sizeof err), -1);
	assert_err_contains("control characters");
	char big[200];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(sw_port_config_set(&p, "k", big, err, sizeof err), -1);
	assert_err_contains("too long");
	for (int i = 0; i < SW_PORT_MAX_OPTIONS - 2; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		assert_int_equal(sw_port_config_set(&p, k, "v", err, sizeof err), 0);
	}
	assert_int_equal(sw_port_config_set(&p, "one-more", "v", err, sizeof err), -1);
	assert_err_contains("too many options");
	assert_int_equal(sw_port_config_validate(&p, err, sizeof err), 0);
	assert_true(sw_port_type_known("afpacket"));
	assert_false(sw_port_type_known("Tap"));
}

static void test_vlans(void **state)
{
	(void)state;
	uint64_t bm[64];
	char buf[256];
	assert_int_equal(sw_vlan_list_parse("1,2,10-20", bm, err, sizeof err), 0);
	assert_true(sw_vlan_list_has(bm, 1));
	assert_true(sw_vlan_list_has(bm, 15));
	assert_false(sw_vlan_list_has(bm, 3));
	assert_false(sw_vlan_list_has(bm, 21));
	sw_vlan_list_format(bm, buf, sizeof buf);
	assert_string_equal(buf, "1-2,10-20");
	assert_int_equal(sw_vlan_list_parse("0,4095, 7", bm, err, sizeof err), 0);
	sw_vlan_list_format(bm, buf, sizeof buf);
	assert_string_equal(buf, "0,7,4095");
	assert_int_equal(sw_vlan_list_parse("", bm, err, sizeof err), 0);
	assert_true(sw_vlan_list_empty(bm));
	assert_int_equal(sw_vlan_list_parse("20-10", bm, err, sizeof err), -1);
	assert_err_contains("reversed");
	assert_int_equal(sw_vlan_list_parse("4096", bm, err, sizeof err), -1);
	assert_int_equal(sw_vlan_list_parse("1,,2", bm, err, sizeof err), -1);
	assert_int_equal(sw_vlan_list_parse("1,", bm, err, sizeof err), -1);
	assert_int_equal(sw_vlan_list_parse("a", bm, err, sizeof err), -1);
	assert_int_equal(sw_vlan_list_parse("-5", bm, err, sizeof err), -1);

	uint16_t tag = 7;
	assert_int_equal(sw_tag_parse("4094", &tag, err, sizeof err), 0);
	assert_int_equal(tag, 4094);
	assert_int_equal(sw_tag_parse("4095", &tag, err, sizeof err), -1);
	assert_err_contains("invalid tag '4095'");
	assert_int_equal(sw_tag_parse("-1", &tag, err, sizeof err), -1);
	assert_int_equal(sw_tag_parse("", &tag, err, sizeof err), 0);
	assert_int_equal(tag, 0);

	struct sw_port_config p;
	port(&p, "vm1", "tap");
	assert_int_equal(sw_port_config_set(&p, "tag", "10", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "trunks", "1,2", err, sizeof err), 0);
	assert_int_equal(sw_port_config_validate(&p, err, sizeof err), -1);
	assert_err_contains("tag and trunks are exclusive");
}

static void test_ofports(void **state)
{
	(void)state;
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	uint16_t of = 0;
	port(&p, "a", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, &of, err, sizeof err), 0);
	assert_int_equal(of, 1);
	port(&p, "b", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, &of, err, sizeof err), 0);
	assert_int_equal(of, 2);
	port(&p, "c", "null");
	assert_int_equal(sw_port_config_set(&p, "ofport_request", "2", err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, &of, err, sizeof err), -1);
	assert_string_equal(err, "ofport 2 is in use by port b on bridge br0");
	/* each bridge numbers its own ports */
	assert_int_equal(sw_config_add_port(c, "br1", &p, &of, err, sizeof err), 0);
	assert_int_equal(of, 2);
	assert_int_equal(sw_config_del_port(c, NULL, "a", err, sizeof err), 0);
	port(&p, "d", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, &of, err, sizeof err), 0);
	assert_int_equal(of, 1); /* lowest free */
	assert_ptr_equal(sw_bridge_port_by_ofport(sw_config_bridge(c, "br0"), 2),
			 sw_config_port(c, "b", NULL));
	assert_int_equal(sw_port_config_set(&p, "ofport_request", "0", err, sizeof err), -1);
	assert_int_equal(sw_port_config_set(&p, "ofport_request", "65280", err, sizeof err), -1);
	sw_config_free(c);
}

static void test_del_bridge(void **state)
{
	(void)state;
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	port(&p, "vm1", "tap");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "in_port=1,actions=drop", err, sizeof err), 0);
	assert_int_equal(sw_config_del_bridge(c, "br0", err, sizeof err), 0);
	assert_int_equal(c->nbridges, 1);
	assert_string_equal(c->bridges[0].name, "br1");
	assert_null(sw_config_port(c, "vm1", NULL));
	assert_int_equal(sw_config_add_port(c, "br1", &p, NULL, err, sizeof err), 0);
	sw_config_free(c);
}

static void test_set_port(void **state)
{
	(void)state;
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	port(&p, "vm1", "vhost-user");
	assert_int_equal(sw_port_config_set(&p, "mode", "server", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "queues", "2", err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);

	struct sw_port_changes ch;
	sw_port_changes_init(&ch);
	assert_int_equal(sw_port_changes_set(&ch, "type", "tap", err, sizeof err), -1);
	assert_err_contains("type of a port cannot be changed");
	assert_int_equal(sw_port_changes_set(&ch, "queues", "", err, sizeof err), 0); /* remove */
	assert_int_equal(sw_port_changes_set(&ch, "mode", "client", err, sizeof err), 0);
	assert_int_equal(sw_port_changes_set(&ch, "tag", "10", err, sizeof err), 0);
	assert_int_equal(sw_config_set_port(c, "vm1", &ch, err, sizeof err), 0);
	const struct sw_port_config *q = sw_config_port(c, "vm1", NULL);
	assert_int_equal(q->tag, 10);
	assert_null(sw_config_option(&q->options, "queues"));
	assert_string_equal(sw_config_option(&q->options, "mode"), "client");

	/* an invalid result changes nothing */
	sw_port_changes_init(&ch);
	assert_int_equal(sw_port_changes_set(&ch, "mode", "server", err, sizeof err), 0);
	assert_int_equal(sw_port_changes_set(&ch, "trunks", "1-3", err, sizeof err), 0);
	assert_int_equal(sw_config_set_port(c, "vm1", &ch, err, sizeof err), -1);
	assert_err_contains("tag and trunks are exclusive");
	q = sw_config_port(c, "vm1", NULL);
	assert_string_equal(sw_config_option(&q->options, "mode"), "client");
	assert_true(sw_vlan_list_empty(q->trunks));
	/* clearing the tag makes it valid */
	assert_int_equal(sw_port_changes_set(&ch, "tag", "", err, sizeof err), 0);
	assert_int_equal(sw_config_set_port(c, "vm1", &ch, err, sizeof err), 0);
	assert_int_equal(q->tag, 0);
	assert_true(sw_vlan_list_has(q->trunks, 2));
	assert_int_equal(sw_config_set_port(c, "vm9", &ch, err, sizeof err), -1);
	assert_string_equal(err, "no port vm9");
	sw_config_free(c);
}

static void test_flows(void **state)
{
	(void)state;
	uint16_t prio;
	char *text;
	assert_int_equal(sw_flow_text_parse("priority=100,in_port=1,actions=output:2", &prio, &text, err,
				       sizeof err), 0);
	assert_int_equal(prio, 100);
	assert_string_equal(text, "in_port=1,actions=output:2");
	free(text);
	assert_int_equal(sw_flow_text_parse(" in_port=1 , dl_type=0x0800,actions=drop", &prio, &text, err,
				       sizeof err), 0);
	assert_int_equal(prio, SW_FLOW_DEFAULT_PRIORITY);
	assert_string_equal(text, "in_port=1,dl_type=0x0800,actions=drop");
	free(text);
	assert_int_equal(sw_flow_text_parse("actions=normal", &prio, &text, err, sizeof err), 0);
	assert_string_equal(text, "actions=normal");
	free(text);
	assert_int_equal(sw_flow_text_parse("in_port=1", &prio, &text, err, sizeof err), -1);
	assert_err_contains("has no actions=");
	assert_int_equal(sw_flow_text_parse("in_port=1,actions=", &prio, &text, err, sizeof err), -1);
	assert_err_contains("empty actions=");
	assert_int_equal(sw_flow_text_parse("priority=70000,actions=drop", &prio, &text, err, sizeof err), -1);
	assert_err_contains("invalid priority");
	assert_int_equal(sw_flow_text_parse("priority=1,priority=2,actions=drop", &prio, &text, err,
				       sizeof err), -1);
	assert_int_equal(sw_flow_text_parse("in_port=,actions=drop", &prio, &text, err, sizeof err), -1);
	assert_int_equal(sw_flow_text_parse("", &prio, &text, err, sizeof err), -1);
	assert_int_equal(sw_flow_text_parse("in_port=1\x01,actions=drop", &prio, &text, err, sizeof err), -1);

	struct sw_config *c = two_bridges();
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=100,in_port=1,actions=output:2", err,
					    sizeof err), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=100,in_port=2,actions=output:1", err,
					    sizeof err), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=50,icmp,actions=drop", err, sizeof err), 0);
	/* same priority and match: replaced, as ovs-ofctl add-flow */
	assert_int_equal(sw_config_add_flow(c, "br0", "in_port=1,priority=100,actions=output:3", err,
					    sizeof err), 0);
	struct sw_bridge_config *b = sw_config_bridge(c, "br0");
	assert_int_equal(b->nflows, 3);
	assert_string_equal(b->flows[0].text, "in_port=1,actions=output:3");
	char buf[256];
	sw_flow_text_format(&b->flows[0], buf, sizeof buf);
	assert_string_equal(buf, "priority=100,in_port=1,actions=output:3");

	unsigned n = 99;
	assert_int_equal(sw_config_del_flows(c, "br0", "in_port=2", &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sw_config_del_flows(c, "br0", "in_port=1,icmp", &n, err, sizeof err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sw_config_del_flows(c, "br0", "in_port=1,actions=drop", &n, err, sizeof err), -1);
	assert_int_equal(sw_config_del_flows(c, "br0", NULL, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(b->nflows, 0);
	sw_config_free(c);
}

/* A config with every feature. */
static struct sw_config *full_config(void)
{
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	port(&p, "vm1", "vhost-user");
	assert_int_equal(sw_port_config_set(&p, "mode", "client", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "path", "/tmp/vm 1 \"q\".sock", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "queues", "4", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "tag", "10", err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	port(&p, "tap0", "tap");
	assert_int_equal(sw_port_config_set(&p, "trunks", "1,2,10-20,4095", err, sizeof err), 0);
	assert_int_equal(sw_port_config_set(&p, "ofport_request", "7", err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	port(&p, "eth1", "afpacket");
	assert_int_equal(sw_port_config_set(&p, "iface", "eth1", err, sizeof err), 0);
	assert_int_equal(sw_config_add_port(c, "br1", &p, NULL, err, sizeof err), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=100,in_port=1,actions=output:7", err,
					    sizeof err), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "actions=normal", err, sizeof err), 0);
	assert_int_equal(sw_config_add_bridge(c, "br.empty", err, sizeof err), 0);
	return c;
}

static void test_json_round_trip(void **state)
{
	(void)state;
	struct sw_config *c = full_config();
	assert_int_equal(sw_config_validate(c, err, sizeof err), 0);
	char *s1 = sw_config_to_string(c);
	assert_non_null(s1);
	assert_non_null(strstr(s1, "\"trunks\": \"1-2,10-20,4095\""));
	assert_non_null(strstr(s1, "\"ofport\": 7"));
	struct sw_config *d = NULL;
	if (sw_config_from_string(s1, strlen(s1), &d, err, sizeof err))
		fail_msg("%s", err);
	char *s2 = sw_config_to_string(d);
	assert_string_equal(s1, s2);
	assert_int_equal(d->nbridges, 3);
	const struct sw_port_config *p = sw_config_port(d, "vm1", NULL);
	assert_non_null(p);
	assert_int_equal(p->tag, 10);
	assert_string_equal(sw_config_option(&p->options, "path"), "/tmp/vm 1 \"q\".sock");
	assert_int_equal(sw_config_bridge(d, "br0")->flows[0].priority, 100);

	/* dup gives the same */
	struct sw_config *e = sw_config_dup(d);
	char *s3 = sw_config_to_string(e);
	assert_string_equal(s1, s3);
	free(s1);
	free(s2);
	free(s3);
	sw_config_free(c);
	sw_config_free(d);
	sw_config_free(e);

	/* the empty config */
	c = sw_config_new();
	s1 = sw_config_to_string(c);
	assert_int_equal(sw_config_from_string(s1, strlen(s1), &d, err, sizeof err), 0);
	assert_int_equal(d->nbridges, 0);
	free(s1);
	sw_config_free(c);
	sw_config_free(d);
}

static void expect_bad(const char *json, const char *msg)
{
	struct sw_config *d = (struct sw_config *)0x1;
	err[0] = '\0';
	assert_int_equal(sw_config_from_string(json, strlen(json), &d, err, sizeof err), -1);
	assert_ptr_equal(d, (struct sw_config *)0x1);
	assert_err_contains(msg);
}

#define HDR "{\"format\":\"vnet-switchd-state\",\"version\":1,\"bridges\":"

static void test_json_errors(void **state)
{
	(void)state;
	expect_bad("{\"format\":\"vnet-switchd-state\",\n\"version\":1,\n\"bridges\":[}", "line 3:");
	expect_bad("[]", "top level must be an object");
	expect_bad("{\"format\":\"x\",\"version\":1,\"bridges\":[]}", "format is not");
	expect_bad("{\"format\":\"vnet-switchd-state\",\"version\":2,\"bridges\":[]}",
		   "unsupported version 2");
	expect_bad(HDR "[],\"extra\":1}", "unknown field 'extra'");
	expect_bad(HDR "[{\"name\":\"b r\"}]}", "bridges[0]: invalid bridge name");
	expect_bad(HDR "[{\"name\":\"br0\"},{\"name\":\"br0\"}]}", "bridges[1]: bridge br0 exists");
	expect_bad(HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"p\",\"ofport\":1,\"type\":\"tap\"}]},"
		       "{\"name\":\"br1\",\"ports\":[{\"name\":\"p\",\"ofport\":1,\"type\":\"tap\"}]}]}",
		   "bridges[1].ports[0]: port p exists on bridge br0");
	expect_bad(HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"p\",\"type\":\"tap\"}]}]}",
		   "missing field 'ofport'");
	expect_bad(HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"p\",\"ofport\":1,\"type\":\"tap\","
		       "\"options\":{\"q\":1}}]}]}", "option q must be a string");
	expect_bad(HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"p\",\"ofport\":1,\"type\":\"tap\","
		       "\"tag\":5000}]}]}", "'tag' is out of range");
	expect_bad(HDR "[{\"name\":\"br0\",\"flows\":[{\"priority\":1,\"text\":\"in_port=1\"}]}]}",
		   "bridges[0].flows[0]: flow 'priority=1,in_port=1' has no actions=");
	expect_bad(HDR "[{\"name\":\"br0\",\"flows\":[{\"priority\":1,\"text\":\"actions=drop\"},"
		       "{\"priority\":1,\"text\":\"actions=normal\"}]}]}", "same priority and match");
	expect_bad("{\"format\":\"vnet-switchd-state\",\"format\":\"x\"}", "line 1");
}

/* ---- static FDB entries ---- */

static const uint8_t MAC5[6] = {0x52, 0x54, 0, 0, 0, 5};

/* br0: vm1, vm2; br1: vm3 */
static struct sw_config *fdb_config(void)
{
	struct sw_config *c = two_bridges();
	struct sw_port_config p;
	port(&p, "vm1", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	port(&p, "vm2", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	port(&p, "vm3", "null");
	assert_int_equal(sw_config_add_port(c, "br1", &p, NULL, err, sizeof err), 0);
	return c;
}

#define FDB_ERR(call, msg) \
	do { \
		err[0] = '\0'; \
		assert_int_equal((call), -1); \
		assert_err_contains(msg); \
	} while (0)

static void test_mac_parse(void **state)
{
	(void)state;
	uint8_t m[6] = {0};
	char buf[SW_MAC_STR_LEN];
	assert_int_equal(sw_mac_parse("52:54:00:AB:cd:05", m, err, sizeof err), 0);
	sw_mac_format(m, buf);
	assert_string_equal(buf, "52:54:00:ab:cd:05");
	FDB_ERR(sw_mac_parse("xx", m, err, sizeof err), "invalid MAC 'xx'");
	FDB_ERR(sw_mac_parse("52:54:00:00:00:5", m, err, sizeof err), "invalid MAC '52:54:00:00:00:5'");
	FDB_ERR(sw_mac_parse("52:54:00:00:00:05:", m, err, sizeof err), "invalid MAC");
	FDB_ERR(sw_mac_parse("52-54-00-00-00-05", m, err, sizeof err), "invalid MAC");
	FDB_ERR(sw_mac_parse("52:54:00:00:0g:05", m, err, sizeof err), "invalid MAC");
	FDB_ERR(sw_mac_parse("", m, err, sizeof err), "invalid MAC ''");
	assert_memory_equal(m, ((uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 5}), 6); /* untouched */
}

static void test_fdb_static_add_replace_del(void **state)
{
	(void)state;
	struct sw_config *c = fdb_config();
	struct sw_bridge_config *b = sw_config_bridge(c, "br0");
	const uint8_t mc[6] = {0x01, 0, 0x5e, 0, 0, 1};
	FDB_ERR(sw_config_add_fdb(c, "br9", "vm1", 0, MAC5, err, sizeof err), "no bridge br9");
	FDB_ERR(sw_config_add_fdb(c, "br0", "vm9", 0, MAC5, err, sizeof err),
		"no port vm9 in bridge br0");
	FDB_ERR(sw_config_add_fdb(c, "br0", "vm3", 0, MAC5, err, sizeof err),
		"no port vm3 in bridge br0"); /* vm3 is on br1 */
	FDB_ERR(sw_config_add_fdb(c, "br0", "vm1", 0, mc, err, sizeof err),
		"MAC 01:00:5e:00:00:01 is multicast");
	FDB_ERR(sw_config_add_fdb(c, "br0", "vm1", 4096, MAC5, err, sizeof err), "invalid VLAN 4096");
	assert_int_equal(b->nfdb, 0);

	assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 0, MAC5, err, sizeof err), 0);
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 4095, MAC5, err, sizeof err), 0);
	assert_int_equal(b->nfdb, 2);
	/* the same VLAN + MAC moves to the new port */
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm2", 0, MAC5, err, sizeof err), 0);
	assert_int_equal(b->nfdb, 2);
	assert_string_equal(sw_bridge_fdb_find(b, 0, MAC5)->port, "vm2");
	assert_string_equal(sw_bridge_fdb_find(b, 4095, MAC5)->port, "vm1");
	assert_null(sw_bridge_fdb_find(b, 1, MAC5));
	assert_int_equal(sw_config_validate(c, err, sizeof err), 0);

	const uint8_t mac6[6] = {0x52, 0x54, 0, 0, 0, 6};
	FDB_ERR(sw_config_del_fdb(c, "br0", 0, mac6, NULL, err, sizeof err),
		"no static entry for 52:54:00:00:00:06 on VLAN 0 in br0");
	FDB_ERR(sw_config_del_fdb(c, "br1", 0, MAC5, NULL, err, sizeof err),
		"no static entry for 52:54:00:00:00:05 on VLAN 0 in br1");
	FDB_ERR(sw_config_del_fdb(c, "br9", 0, MAC5, NULL, err, sizeof err), "no bridge br9");
	char was[SW_NAME_MAX + 1] = "";
	assert_int_equal(sw_config_del_fdb(c, "br0", 0, MAC5, was, err, sizeof err), 0);
	assert_string_equal(was, "vm2");
	assert_int_equal(b->nfdb, 1);
	assert_null(sw_bridge_fdb_find(b, 0, MAC5));
	assert_non_null(sw_bridge_fdb_find(b, 4095, MAC5));

	/* at most SW_CONFIG_MAX_FDB per bridge; replacing still works when full */
	uint8_t m[6] = {0x02, 0, 0, 0, 0, 0};
	for (unsigned i = 1; b->nfdb < SW_CONFIG_MAX_FDB; i++) {
		m[4] = (uint8_t)(i >> 8);
		m[5] = (uint8_t)i;
		assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 7, m, err, sizeof err), 0);
	}
	FDB_ERR(sw_config_add_fdb(c, "br0", "vm1", 8, m, err, sizeof err),
		"bridge br0 has too many static FDB entries (max 4096)");
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm2", 7, m, err, sizeof err), 0);
	assert_int_equal(b->nfdb, SW_CONFIG_MAX_FDB);
	assert_int_equal(sw_config_add_fdb(c, "br1", "vm3", 8, m, err, sizeof err), 0); /* per bridge */
	assert_int_equal(sw_config_validate(c, err, sizeof err), 0);
	sw_config_free(c);
}

static void test_fdb_static_follow_ports(void **state)
{
	(void)state;
	struct sw_config *c = fdb_config();
	struct sw_bridge_config *b = sw_config_bridge(c, "br0");
	const uint8_t m2[6] = {0x52, 0x54, 0, 0, 0, 2};
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 0, MAC5, err, sizeof err), 0);
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm2", 0, m2, err, sizeof err), 0);
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 10, m2, err, sizeof err), 0);
	assert_int_equal(sw_config_add_fdb(c, "br1", "vm3", 0, MAC5, err, sizeof err), 0);

	/* a copy is independent */
	struct sw_config *d = sw_config_dup(c);
	assert_non_null(d);
	assert_int_equal(sw_config_bridge(d, "br0")->nfdb, 3);
	assert_int_equal(sw_config_del_fdb(d, "br0", 0, MAC5, NULL, err, sizeof err), 0);
	assert_int_equal(b->nfdb, 3);
	sw_config_free(d);

	/* del-port takes the port's entries along, only those */
	assert_int_equal(sw_config_del_port(c, "br0", "vm1", err, sizeof err), 0);
	assert_int_equal(b->nfdb, 1);
	assert_string_equal(b->fdb[0].port, "vm2");
	assert_int_equal(sw_config_validate(c, err, sizeof err), 0);
	/* a new vm1 starts without entries */
	struct sw_port_config p;
	port(&p, "vm1", "null");
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, err, sizeof err), 0);
	assert_null(sw_bridge_fdb_find(b, 0, MAC5));
	/* a failed del-port changes nothing */
	assert_int_equal(sw_config_del_port(c, "br1", "vm2", err, sizeof err), -1);
	assert_int_equal(b->nfdb, 1);

	/* del-br takes them all; the other bridge keeps its own */
	assert_int_equal(sw_config_del_bridge(c, "br0", err, sizeof err), 0);
	assert_int_equal(c->nbridges, 1);
	assert_int_equal(c->bridges[0].nfdb, 1);
	assert_string_equal(c->bridges[0].fdb[0].port, "vm3");

	/* validate catches what the functions would refuse */
	b = &c->bridges[0];
	snprintf(b->fdb[0].port, sizeof b->fdb[0].port, "vm9");
	FDB_ERR(sw_config_validate(c, err, sizeof err), "no port vm9 in bridge br1");
	snprintf(b->fdb[0].port, sizeof b->fdb[0].port, "vm3");
	b->fdb[0].mac[0] = 1;
	FDB_ERR(sw_config_validate(c, err, sizeof err), "is multicast");
	b->fdb[0].mac[0] = 0x52;
	assert_int_equal(sw_config_add_fdb(c, "br1", "vm3", 1, MAC5, err, sizeof err), 0);
	b->fdb[1].vlan = 0;
	FDB_ERR(sw_config_validate(c, err, sizeof err), "on VLAN 0 given twice");
	sw_config_free(c);
}

static void test_fdb_static_json(void **state)
{
	(void)state;
	struct sw_config *c = fdb_config();
	char *s1 = sw_config_to_string(c);
	assert_null(strstr(s1, "\"fdb\"")); /* omitted when empty */
	free(s1);
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm2", 0, MAC5, err, sizeof err), 0);
	assert_int_equal(sw_config_add_fdb(c, "br0", "vm1", 4095, MAC5, err, sizeof err), 0);
	s1 = sw_config_to_string(c);
	assert_non_null(strstr(s1, "\"fdb\": [\n        {\n          \"port\": \"vm2\",\n"
				   "          \"vlan\": 0,\n          \"mac\": \"52:54:00:00:00:05\"\n"));
	struct sw_config *d = NULL;
	if (sw_config_from_string(s1, strlen(s1), &d, err, sizeof err))
		fail_msg("%s", err);
	char *s2 = sw_config_to_string(d);
	assert_string_equal(s1, s2);
	struct sw_bridge_config *b = sw_config_bridge(d, "br0");
	assert_int_equal(b->nfdb, 2);
	assert_string_equal(sw_bridge_fdb_find(b, 4095, MAC5)->port, "vm1");
	assert_int_equal(sw_config_bridge(d, "br1")->nfdb, 0);
	free(s1);
	free(s2);
	sw_config_free(c);
	sw_config_free(d);

#define BR0 HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"vm1\",\"ofport\":1,\"type\":\"null\"}],"
#define E(fields) BR0 "\"fdb\":[" fields "]}]}"
	expect_bad(BR0 "\"fdb\":{}}]}", "bridges[0]: 'fdb' must be an array, not an object");
	expect_bad(E("7"), "bridges[0].fdb[0]: must be an object, not an integer");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\",\"age\":1}"),
		   "bridges[0].fdb[0]: unknown field 'age'");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":0}"), "bridges[0].fdb[0]: missing field 'mac'");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":\"0\",\"mac\":\"52:54:00:00:00:05\"}"),
		   "bridges[0].fdb[0]: 'vlan' must be an integer, not a string");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":5000,\"mac\":\"52:54:00:00:00:05\"}"),
		   "bridges[0].fdb[0]: 'vlan' is out of range (0-4095)");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":0,\"mac\":\"zz\"}"),
		   "bridges[0].fdb[0]: invalid MAC 'zz'");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":0,\"mac\":\"ff:ff:ff:ff:ff:ff\"}"),
		   "bridges[0].fdb[0]: MAC ff:ff:ff:ff:ff:ff is multicast");
	expect_bad(E("{\"port\":\"vm9\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\"}"),
		   "bridges[0].fdb[0]: no port vm9 in bridge br0");
	expect_bad(E("{\"port\":\"vm1\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\"},"
		     "{\"port\":\"vm1\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\"}"),
		   "bridges[0].fdb[1]: same VLAN and MAC as an earlier entry");
#undef E
#undef BR0
}

/* ---- persistence ---- */

static char dir[256], path[300];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/vnet-test-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/state.json", dir);
	return 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

/* Names in dir, space-separated, sorted by readdir order. */
static int count_entries(const char *prefix)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

static void write_file(const char *p, const char *content)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_persist_save_atomic(void **state)
{
	(void)state;
	struct sw_config *c = full_config();
	write_file(path, "old content");
	assert_int_equal(sw_persist_save(path, c, err, sizeof err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(count_entries(".state.json.tmp"), 0); /* the temp file is gone */
	assert_int_equal(count_entries(""), 3);               /* ., .., state.json */

	struct sw_config *d = NULL;
	assert_int_equal(sw_persist_load(path, &d, err, sizeof err), SW_PERSIST_OK);
	char *s1 = sw_config_to_string(c), *s2 = sw_config_to_string(d);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);

	/* saving again replaces the file */
	assert_int_equal(sw_config_del_bridge(d, "br1", err, sizeof err), 0);
	assert_int_equal(sw_persist_save(path, d, err, sizeof err), 0);
	sw_config_free(c);
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_int_equal(c->nbridges, 2);
	assert_null(sw_config_bridge(c, "br1"));
	sw_config_free(c);
	sw_config_free(d);
}

static void test_persist_missing_and_empty(void **state)
{
	(void)state;
	struct sw_config *c = NULL;
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_non_null(c);
	assert_int_equal(c->nbridges, 0);
	sw_config_free(c);

	write_file(path, "");
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_int_equal(c->nbridges, 0);
	sw_config_free(c);
	write_file(path, " \n\t\n");
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_int_equal(c->nbridges, 0);
	sw_config_free(c);
	assert_int_equal(access(path, F_OK), 0); /* an empty file is not moved aside */
}

static void test_persist_truncated_refused(void **state)
{
	(void)state;
	struct sw_config *c = full_config();
	assert_int_equal(sw_persist_save(path, c, err, sizeof err), 0);
	sw_config_free(c);
	/* cut the file in the middle, as a crash without atomic rename would */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2), 0);

	c = (struct sw_config *)0x1;
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_CORRUPT);
	assert_null(c);
	char want[400];
	snprintf(want, sizeof want, "state file %s is corrupt (line ", path);
	assert_err_contains(want);
	snprintf(want, sizeof want, "); moved aside to %s.corrupt-", path);
	assert_err_contains(want);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(count_entries("state.json.corrupt-"), 1);
	/* the aside file is the one we wrote, kept for inspection */
	const char *aside = strstr(err, "moved aside to ") + strlen("moved aside to ");
	assert_int_equal(stat(aside, &st), 0);
	assert_true(st.st_size > 0);

	/* next start: no file, empty config */
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_int_equal(c->nbridges, 0);
	sw_config_free(c);

	/* a second corrupt file in the same second gets its own name */
	write_file(path, "garbage");
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_CORRUPT);
	assert_int_equal(count_entries("state.json.corrupt-"), 2);
}

static void test_persist_invalid_refused(void **state)
{
	(void)state;
	/* valid JSON, invalid config: refused as a whole, not half-loaded */
	write_file(path, HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"vm1\",\"ofport\":1,"
			 "\"type\":\"tap\"}]},{\"name\":\"br1\",\"ports\":[{\"name\":\"vm1\","
			 "\"ofport\":1,\"type\":\"tap\"}]}]}\n");
	struct sw_config *c = NULL;
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_CORRUPT);
	assert_null(c);
	assert_err_contains("port vm1 exists on bridge br0");
	assert_err_contains("moved aside to");
	assert_int_equal(access(path, F_OK), -1);

	write_file(path, "\x01\x02\x03 binary");
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_CORRUPT);
	assert_err_contains("is corrupt (line 1:");

	/* a static FDB entry for a port that is not there */
	write_file(path, HDR "[{\"name\":\"br0\",\"ports\":[{\"name\":\"vm1\",\"ofport\":1,"
			 "\"type\":\"tap\"}],\"fdb\":[{\"port\":\"vm2\",\"vlan\":0,"
			 "\"mac\":\"52:54:00:00:00:05\"}]}]}\n");
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_CORRUPT);
	assert_null(c);
	assert_err_contains("bridges[0].fdb[0]: no port vm2 in bridge br0");
	assert_int_equal(count_entries("state.json.corrupt-"), 3);
}

static void test_persist_stale_temp_and_errors(void **state)
{
	(void)state;
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s/.state.json.tmp-abc123", dir);
	write_file(tmp, "{\"half");
	struct sw_config *c = NULL;
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_OK);
	assert_int_equal(access(tmp, F_OK), -1);

	char bad[400];
	snprintf(bad, sizeof bad, "%s/no/such/dir/state.json", dir);
	assert_int_equal(sw_persist_save(bad, c, err, sizeof err), SW_PERSIST_ERROR);
	assert_err_contains("cannot save");
	assert_err_contains("No such file or directory");
	sw_config_free(c);

	/* a directory where the file should be: an error, not "corrupt" */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(sw_persist_load(path, &c, err, sizeof err), SW_PERSIST_ERROR);
	assert_err_contains("not a regular file");
	rmdir(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_unknown_bridge_and_port),
		cmocka_unit_test(test_port_type_and_options),
		cmocka_unit_test(test_vlans),
		cmocka_unit_test(test_ofports),
		cmocka_unit_test(test_del_bridge),
		cmocka_unit_test(test_set_port),
		cmocka_unit_test(test_flows),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_mac_parse),
		cmocka_unit_test(test_fdb_static_add_replace_del),
		cmocka_unit_test(test_fdb_static_follow_ports),
		cmocka_unit_test(test_fdb_static_json),
		cmocka_unit_test_setup_teardown(test_persist_save_atomic, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_persist_missing_and_empty, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_persist_truncated_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_persist_invalid_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_persist_stale_temp_and_errors, setup_dir,
						teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
