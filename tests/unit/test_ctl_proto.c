/* test_ctl_proto.c — the control protocol: requests dispatched to the right
 * callback with the right arguments, errors for malformed requests, reply
 * shapes, line I/O limits, and vnetctl's requests accepted by the server
 * (vnetctl's argv -> request and output alone: test_ctl_client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "switch/config.h"
#include "switch/ctl_client.h"
#include "switch/ctl_proto.h"

/* ---- a fake daemon recording calls ---- */

struct rec {
	int calls;
	enum ctl_cmd cmd;
	char bridge[32], port[32], flow[2048], file[CTL_PATH_MAX];
	bool bridge_null, port_null, flow_null;
	struct sw_port_config pc;
	struct sw_port_changes ch;
	unsigned count, timeout;
	uint16_t vlan;
	uint8_t mac[6];
	int ret;            /* what callbacks return */
	const char *error;  /* set with ctl_reply_error when non-NULL */
	struct ctl_reply *kept;
};

static struct rec R;

static void note(enum ctl_cmd cmd, const char *bridge, const char *port, const char *flow)
{
	R.calls++;
	R.cmd = cmd;
	R.bridge_null = !bridge;
	R.port_null = !port;
	R.flow_null = !flow;
	snprintf(R.bridge, sizeof R.bridge, "%s", bridge ? bridge : "");
	snprintf(R.port, sizeof R.port, "%s", port ? port : "");
	snprintf(R.flow, sizeof R.flow, "%s", flow ? flow : "");
}

static int done(struct ctl_reply *r)
{
	if (R.error)
		ctl_reply_error(r, "%s", R.error);
	return R.ret;
}

static int f_add_br(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_ADD_BR, b, NULL, NULL);
	return done(r);
}
static int f_del_br(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_DEL_BR, b, NULL, NULL);
	return done(r);
}
static int f_add_port(void *a, const char *b, const struct sw_port_config *p, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_ADD_PORT, b, p->name, NULL);
	R.pc = *p;
	ctl_reply_set_int(r, "ofport", 1);
	return done(r);
}
static int f_del_port(void *a, const char *b, const char *p, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_DEL_PORT, b, p, NULL);
	return done(r);
}
static int f_set_port(void *a, const char *p, const struct sw_port_changes *ch, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_SET_PORT, NULL, p, NULL);
	R.ch = *ch;
	return done(r);
}
static int f_show(void *a, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_SHOW, NULL, NULL, NULL);
	return done(r);
}
static int f_list_ports(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_LIST_PORTS, b, NULL, NULL);
	ctl_reply_add_port_name(r, "vm1");
	return done(r);
}
static int f_fdb_show(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_FDB_SHOW, b, NULL, NULL);
	return done(r);
}
static int f_fdb_flush(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_FDB_FLUSH, b, NULL, NULL);
	return done(r);
}
static int f_fdb_add(void *a, const char *b, const char *p, uint16_t vlan, const uint8_t mac[6],
		     struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_FDB_ADD, b, p, NULL);
	R.vlan = vlan;
	memcpy(R.mac, mac, 6);
	return done(r);
}
static int f_fdb_del(void *a, const char *b, uint16_t vlan, const uint8_t mac[6],
		     struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_FDB_DEL, b, NULL, NULL);
	R.vlan = vlan;
	memcpy(R.mac, mac, 6);
	return done(r);
}
static int f_bridge_stats(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_BRIDGE_STATS, b, NULL, NULL);
	return done(r);
}
static int f_pmd_stats(void *a, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_PMD_STATS, NULL, NULL, NULL);
	struct ctl_pmd_counters c = {.pmd = 0, .cpu = 1, .rx_queues = 2, .packets = 100,
				     .busy_cycles = 4150, .tsc_hz = 2000000000};
	ctl_reply_add_pmd_stats(r, &c);
	return done(r);
}
static int f_add_flow(void *a, const char *b, const char *f, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_ADD_FLOW, b, NULL, f);
	return done(r);
}
static int f_del_flows(void *a, const char *b, const char *m, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_DEL_FLOWS, b, NULL, m);
	return done(r);
}
static int f_dump_flows(void *a, const char *b, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_DUMP_FLOWS, b, NULL, NULL);
	return done(r);
}
static int f_port_stats(void *a, const char *p, struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_PORT_STATS, NULL, p, NULL);
	return done(r);
}
static int f_capture(void *a, const char *p, unsigned count, const char *file, unsigned t,
		     struct ctl_reply *r)
{
	(void)a;
	note(CTL_CMD_CAPTURE, NULL, p, NULL);
	R.count = count;
	R.timeout = t;
	snprintf(R.file, sizeof R.file, "%s", file);
	if (R.ret == CTL_ASYNC)
		R.kept = r;
	return done(r);
}

static struct ctl_ops OPS = {
	.add_br = f_add_br,         .del_br = f_del_br,         .add_port = f_add_port,
	.del_port = f_del_port,     .set_port = f_set_port,     .show = f_show,
	.list_ports = f_list_ports, .fdb_show = f_fdb_show,     .fdb_flush = f_fdb_flush,
	.add_flow = f_add_flow,     .del_flows = f_del_flows,   .dump_flows = f_dump_flows,
	.port_stats = f_port_stats, .capture = f_capture,       .fdb_add = f_fdb_add,
	.fdb_del = f_fdb_del,       .bridge_stats = f_bridge_stats,
	.pmd_stats = f_pmd_stats,
};

static int reset(void **state)
{
	(void)state;
	memset(&R, 0, sizeof R);
	return 0;
}

/* Runs a request; returns the parsed response (caller decrefs). */
static json_t *run(const char *line)
{
	char *resp = NULL;
	assert_int_equal(ctl_handle_request(line, &OPS, NULL, &resp), 0);
	assert_non_null(resp);
	size_t n = strlen(resp);
	assert_true(n > 0 && resp[n - 1] == '\n');
	assert_null(memchr(resp, '\n', n - 1)); /* exactly one line */
	json_error_t je;
	json_t *j = json_loads(resp, 0, &je);
	if (!j)
		fail_msg("response is not JSON: %s", resp);
	free(resp);
	assert_true(json_is_boolean(json_object_get(j, "ok")));
	return j;
}

static void expect_ok(const char *line)
{
	json_t *j = run(line);
	if (!json_is_true(json_object_get(j, "ok")))
		fail_msg("%s -> error %s", line, json_string_value(json_object_get(j, "error")));
	json_decref(j);
}

static void expect_error(const char *line, const char *msg)
{
	int before = R.calls;
	json_t *j = run(line);
	assert_false(json_is_true(json_object_get(j, "ok")));
	const char *e = json_string_value(json_object_get(j, "error"));
	assert_non_null(e);
	if (!strstr(e, msg))
		fail_msg("%s -> error '%s', want '%s'", line, e, msg);
	json_decref(j);
	assert_int_equal(R.calls, before); /* no callback for an invalid request */
}

/* ---- dispatch ---- */

static void test_dispatch_bridge_commands(void **state)
{
	(void)state;
	static const struct {
		const char *cmd;
		enum ctl_cmd id;
	} t[] = {
		{"add-br", CTL_CMD_ADD_BR},         {"del-br", CTL_CMD_DEL_BR},
		{"list-ports", CTL_CMD_LIST_PORTS}, {"fdb-show", CTL_CMD_FDB_SHOW},
		{"fdb-flush", CTL_CMD_FDB_FLUSH},   {"dump-flows", CTL_CMD_DUMP_FLOWS},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char line[128];
		snprintf(line, sizeof line, "{\"cmd\":\"%s\",\"bridge\":\"br-%zu\"}\n", t[i].cmd, i);
		R.calls = 0;
		expect_ok(line);
		assert_int_equal(R.calls, 1);
		assert_int_equal(R.cmd, t[i].id);
		char want[16];
		snprintf(want, sizeof want, "br-%zu", i);
		assert_string_equal(R.bridge, want);
		assert_string_equal(ctl_cmd_name(t[i].id), t[i].cmd);
		assert_int_equal(ctl_cmd_lookup(t[i].cmd), t[i].id);
	}
}

static void test_dispatch_add_port(void **state)
{
	(void)state;
	json_t *j = run("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":"
			"{\"type\":\"vhost-user\",\"mode\":\"server\",\"queues\":4,\"tag\":\"10\"}}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "ofport")), 1);
	json_decref(j);
	assert_int_equal(R.cmd, CTL_CMD_ADD_PORT);
	assert_string_equal(R.bridge, "br0");
	assert_string_equal(R.pc.name, "vm1");
	assert_string_equal(R.pc.type, "vhost-user");
	assert_int_equal(R.pc.tag, 10);
	assert_int_equal(R.pc.options.n, 2);
	assert_string_equal(sw_config_option(&R.pc.options, "mode"), "server");
	assert_string_equal(sw_config_option(&R.pc.options, "queues"), "4");
	assert_null(sw_config_option(&R.pc.options, "type"));

	/* type/trunks/ofport_request at top level; trunks as an array */
	expect_ok("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"t0\",\"type\":\"tap\","
		  "\"trunks\":[1,2,3,7],\"ofport_request\":5}");
	assert_string_equal(R.pc.type, "tap");
	assert_int_equal(R.pc.ofport, 5);
	assert_true(sw_vlan_list_has(R.pc.trunks, 3));
	assert_false(sw_vlan_list_has(R.pc.trunks, 4));
	assert_true(sw_vlan_list_has(R.pc.trunks, 7));
}

static void test_dispatch_port_commands(void **state)
{
	(void)state;
	expect_ok("{\"cmd\":\"del-port\",\"bridge\":\"br0\",\"port\":\"vm1\"}");
	assert_int_equal(R.cmd, CTL_CMD_DEL_PORT);
	assert_string_equal(R.bridge, "br0");
	assert_string_equal(R.port, "vm1");
	expect_ok("{\"cmd\":\"del-port\",\"port\":\"vm2\"}");
	assert_true(R.bridge_null);
	assert_string_equal(R.port, "vm2");

	expect_ok("{\"cmd\":\"set-port\",\"port\":\"vm1\",\"options\":{\"queues\":\"2\",\"path\":\"\","
		  "\"tag\":\"\",\"trunks\":\"10-12\"}}");
	assert_int_equal(R.cmd, CTL_CMD_SET_PORT);
	assert_string_equal(R.port, "vm1");
	assert_int_equal(R.ch.set.n, 2);
	assert_string_equal(sw_config_option(&R.ch.set, "queues"), "2");
	assert_string_equal(sw_config_option(&R.ch.set, "path"), ""); /* removal */
	assert_true(R.ch.set_tag);
	assert_int_equal(R.ch.tag, 0);
	assert_true(R.ch.set_trunks);
	assert_true(sw_vlan_list_has(R.ch.trunks, 11));

	expect_ok("{\"cmd\":\"port-stats\",\"port\":\"vm1\"}");
	assert_int_equal(R.cmd, CTL_CMD_PORT_STATS);
	assert_string_equal(R.port, "vm1");
	expect_ok("{\"cmd\":\"port-stats\"}");
	assert_true(R.port_null);
	expect_ok("{\"cmd\":\"show\"}");
	assert_int_equal(R.cmd, CTL_CMD_SHOW);
}

static void test_dispatch_flows_and_capture(void **state)
{
	(void)state;
	expect_ok("{\"cmd\":\"add-flow\",\"bridge\":\"br0\",\"flow\":\"priority=100,in_port=1,"
		  "actions=output:2\"}");
	assert_int_equal(R.cmd, CTL_CMD_ADD_FLOW);
	assert_string_equal(R.flow, "priority=100,in_port=1,actions=output:2");
	expect_ok("{\"cmd\":\"del-flows\",\"bridge\":\"br0\",\"match\":\"in_port=1\"}");
	assert_int_equal(R.cmd, CTL_CMD_DEL_FLOWS);
	assert_string_equal(R.flow, "in_port=1");
	expect_ok("{\"cmd\":\"del-flows\",\"bridge\":\"br0\"}");
	assert_true(R.flow_null);

	expect_ok("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/tmp/x.pcap\",\"count\":10}");
	assert_int_equal(R.cmd, CTL_CMD_CAPTURE);
	assert_string_equal(R.port, "vm1");
	assert_string_equal(R.file, "/tmp/x.pcap");
	assert_int_equal(R.count, 10);
	assert_int_equal(R.timeout, CTL_CAPTURE_DEFAULT_TIMEOUT);
	expect_ok("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/tmp/x.pcap\",\"timeout\":3}");
	assert_int_equal(R.count, 0);
	assert_int_equal(R.timeout, 3);

	json_t *j = run("{\"cmd\":\"version\"}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "version")), VNET_VERSION);
	assert_int_equal(json_integer_value(json_object_get(j, "protocol")), CTL_PROTO_VERSION);
	json_decref(j);
}

static void test_dispatch_fdb_and_bridge_stats(void **state)
{
	(void)state;
	const uint8_t mac5[6] = {0x52, 0x54, 0, 0, 0, 5};
	expect_ok("{\"cmd\":\"fdb-add\",\"bridge\":\"br0\",\"port\":\"vm1\",\"vlan\":4095,"
		  "\"mac\":\"52:54:00:00:00:05\"}");
	assert_int_equal(R.cmd, CTL_CMD_FDB_ADD);
	assert_string_equal(R.bridge, "br0");
	assert_string_equal(R.port, "vm1");
	assert_int_equal(R.vlan, 4095);
	assert_memory_equal(R.mac, mac5, 6);
	expect_ok("{\"cmd\":\"fdb-del\",\"bridge\":\"br1\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\"}");
	assert_int_equal(R.cmd, CTL_CMD_FDB_DEL);
	assert_string_equal(R.bridge, "br1");
	assert_true(R.port_null);
	assert_int_equal(R.vlan, 0);
	assert_memory_equal(R.mac, mac5, 6);
	json_t *j = run("{\"cmd\":\"pmd-stats\"}");
	assert_int_equal(R.cmd, CTL_CMD_PMD_STATS);
	json_t *pm = json_array_get(json_object_get(j, "pmds"), 0);
	assert_int_equal(json_integer_value(json_object_get(pm, "cpu")), 1);
	assert_true(json_number_value(json_object_get(pm, "cycles_per_packet")) == 41.5);
	json_decref(j);
	expect_error("{\"cmd\":\"pmd-stats\",\"port\":\"vm1\"}", "pmd-stats: unknown field 'port'");
	j = run("{\"cmd\":\"bridge-stats\"}");
	assert_true(R.bridge_null);
	assert_true(json_is_array(json_object_get(j, "bridges"))); /* [] even when empty */
	json_decref(j);
	expect_ok("{\"cmd\":\"bridge-stats\",\"bridge\":\"br0\"}");
	assert_int_equal(R.cmd, CTL_CMD_BRIDGE_STATS);
	assert_string_equal(R.bridge, "br0");

#define FA "{\"cmd\":\"fdb-add\",\"bridge\":\"br0\",\"port\":\"vm1\","
	expect_error(FA "\"vlan\":0}", "fdb-add: missing field 'mac'");
	expect_error("{\"cmd\":\"fdb-add\",\"bridge\":\"br0\",\"vlan\":0,\"mac\":\"52:54:00:00:00:05\"}",
		     "fdb-add: missing field 'port'");
	expect_error("{\"cmd\":\"fdb-del\",\"bridge\":\"br0\",\"mac\":\"52:54:00:00:00:05\"}",
		     "fdb-del: missing field 'vlan'");
	expect_error(FA "\"vlan\":0,\"mac\":\"52:54:00:00:00\"}", "fdb-add: invalid MAC '52:54:00:00:00'");
	expect_error(FA "\"vlan\":0,\"mac\":5}", "fdb-add: 'mac' must be a string, not an integer");
	expect_error(FA "\"vlan\":5000,\"mac\":\"52:54:00:00:00:05\"}", "fdb-add: 'vlan' must be 0-4095");
	expect_error(FA "\"vlan\":-1,\"mac\":\"52:54:00:00:00:05\"}", "fdb-add: 'vlan' must be 0-4095");
	expect_error(FA "\"vlan\":\"1\",\"mac\":\"52:54:00:00:00:05\"}",
		     "fdb-add: 'vlan' must be an integer, not a string");
	expect_error(FA "\"vlan\":0,\"mac\":\"01:00:5e:00:00:01\"}",
		     "fdb-add: MAC 01:00:5e:00:00:01 is multicast");
	expect_error(FA "\"vlan\":0,\"mac\":\"52:54:00:00:00:05\",\"age\":1}",
		     "fdb-add: unknown field 'age'");
	expect_error("{\"cmd\":\"fdb-del\",\"bridge\":\"br0\",\"port\":\"vm1\",\"vlan\":0,"
		     "\"mac\":\"52:54:00:00:00:05\"}", "fdb-del: unknown field 'port'");
	expect_error("{\"cmd\":\"bridge-stats\",\"port\":\"vm1\"}", "bridge-stats: unknown field 'port'");
	expect_error("{\"cmd\":\"bridge-stats\",\"bridge\":\"b r\"}", "invalid bridge name");
#undef FA
}

/* ---- malformed requests ---- */

static void test_malformed_json(void **state)
{
	(void)state;
	expect_error("{\"cmd\":\"add-br\",", "malformed JSON request");
	expect_error("not json", "malformed JSON request");
	expect_error("", "malformed JSON request");
	expect_error("{\"cmd\":\"show\"} trailing", "malformed JSON request");
	expect_error("{\"cmd\":\"show\",\"cmd\":\"show\"}", "malformed JSON request"); /* duplicate key */
	expect_error("[\"show\"]", "request must be a JSON object, not an array");
	expect_error("42", "request must be a JSON object");
	expect_error("{\"bridge\":\"br0\"}", "missing field 'cmd'");
	expect_error("{\"cmd\":7}", "'cmd' must be a string, not an integer");
	expect_error("{\"cmd\":\"foo\"}", "unknown command 'foo'");
	expect_error("{\"cmd\":\"add-br\\u0000x\"}", "malformed JSON request"); /* NUL refused */
}

static void test_missing_and_bad_fields(void **state)
{
	(void)state;
	expect_error("{\"cmd\":\"add-br\"}", "add-br: missing field 'bridge'");
	expect_error("{\"cmd\":\"add-br\",\"bridge\":\"br0\",\"bridgee\":1}",
		     "add-br: unknown field 'bridgee'");
	expect_error("{\"cmd\":\"add-br\",\"bridge\":5}", "add-br: 'bridge' must be a string, not an integer");
	expect_error("{\"cmd\":\"add-br\",\"bridge\":\"br 0\"}", "add-br: invalid bridge name 'br 0'");
	expect_error("{\"cmd\":\"add-br\",\"bridge\":\"abcdefghijklmnop\"}", "longer than 15");
	expect_error("{\"cmd\":\"show\",\"bridge\":\"br0\"}", "show: unknown field 'bridge'");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\"}",
		     "add-port: missing type=");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"type\":\"x\"}}",
		     "add-port: unknown port type 'x'");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"type\":\"tap\",\"tag\":5000}",
		     "add-port: invalid tag '5000'");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"type\":\"tap\","
		     "\"options\":{\"x\":[1]}}", "option x must be a string, not an array");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"type\":\"tap\","
		     "\"tag\":3,\"trunks\":\"1\"}", "tag and trunks are exclusive");
	expect_error("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":\"type=tap\"}",
		     "'options' must be an object");
	expect_error("{\"cmd\":\"set-port\",\"port\":\"vm1\"}", "set-port: nothing to set");
	expect_error("{\"cmd\":\"set-port\",\"port\":\"vm1\",\"options\":{\"type\":\"tap\"}}",
		     "type of a port cannot be changed");
	expect_error("{\"cmd\":\"add-flow\",\"bridge\":\"br0\",\"flow\":\"in_port=1\"}",
		     "add-flow: flow 'in_port=1' has no actions=");
	expect_error("{\"cmd\":\"del-flows\",\"bridge\":\"br0\",\"match\":\"in_port=1,actions=drop\"}",
		     "a match has no actions=");
	expect_error("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"x.pcap\"}",
		     "'file' must be an absolute path");
	expect_error("{\"cmd\":\"capture\",\"port\":\"vm1\"}", "capture: missing field 'file'");
	expect_error("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/x\",\"timeout\":0}",
		     "'timeout' must be 1-86400");
	expect_error("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/x\",\"count\":-1}",
		     "'count' must be");
}

static void test_oversized_request(void **state)
{
	(void)state;
	size_t n = CTL_MAX_REQUEST + 100;
	char *big = malloc(n + 1);
	assert_non_null(big);
	int o = snprintf(big, n, "{\"cmd\":\"add-flow\",\"bridge\":\"br0\",\"flow\":\"");
	memset(big + o, 'a', n - (size_t)o - 2);
	memcpy(big + n - 2, "\"}", 2);
	big[n] = '\0';
	expect_error(big, "request too large");
	/* just under the limit is parsed (and refused for its content, not size) */
	big[CTL_MAX_REQUEST - 2] = '"';
	big[CTL_MAX_REQUEST - 1] = '}';
	big[CTL_MAX_REQUEST] = '\0';
	expect_error(big, "flow is too long");
	free(big);
}

/* ---- callbacks' results ---- */

static void test_callback_errors(void **state)
{
	(void)state;
	R.ret = -1;
	R.error = "no bridge br9";
	json_t *j = run("{\"cmd\":\"del-br\",\"bridge\":\"br9\"}");
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "error")), "no bridge br9");
	assert_int_equal(json_object_size(j), 2); /* {"ok":false,"error":...} only */
	json_decref(j);

	/* -1 without a message */
	R.error = NULL;
	j = run("{\"cmd\":\"del-br\",\"bridge\":\"br9\"}");
	assert_string_equal(json_string_value(json_object_get(j, "error")), "del-br: internal error");
	json_decref(j);

	/* an error message with 0 still fails */
	R.ret = 0;
	R.error = "port vm1 exists";
	j = run("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"type\":\"tap\"}");
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "error")), "port vm1 exists");
	json_decref(j);

	/* a daemon without the callback */
	struct ctl_ops none = {0};
	char *resp;
	assert_int_equal(ctl_handle_request("{\"cmd\":\"fdb-show\",\"bridge\":\"br0\"}", &none, NULL,
					    &resp), 0);
	assert_non_null(strstr(resp, "fdb-show: not supported by this daemon"));
	free(resp);
	assert_int_equal(ctl_handle_request("{\"cmd\":\"version\"}", &none, NULL, &resp), 0);
	assert_non_null(strstr(resp, "\"ok\":true"));
	free(resp);
}

static void test_async_capture(void **state)
{
	(void)state;
	R.ret = CTL_ASYNC;
	char *resp = (char *)1;
	assert_int_equal(ctl_handle_request("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/tmp/c.pcap\","
					    "\"count\":5}", &OPS, NULL, &resp), CTL_ASYNC);
	assert_null(resp);
	assert_non_null(R.kept);
	assert_int_equal(ctl_reply_cmd(R.kept), CTL_CMD_CAPTURE);
	/* later, the daemon finishes it */
	ctl_reply_capture(R.kept, "/tmp/c.pcap", 5, false);
	resp = ctl_reply_finish(R.kept);
	assert_string_equal(resp, "{\"ok\":true,\"file\":\"/tmp/c.pcap\",\"captured\":5,"
				  "\"timed_out\":false}\n");
	free(resp);
}

/* ---- reply shapes ---- */

static void test_reply_show(void **state)
{
	(void)state;
	char e[256];
	struct sw_config *c = sw_config_new();
	assert_int_equal(sw_config_add_bridge(c, "br0", e, sizeof e), 0);
	struct sw_port_config p;
	sw_port_config_init(&p, "vm1");
	assert_int_equal(sw_port_config_set(&p, "type", "vhost-user", e, sizeof e), 0);
	assert_int_equal(sw_port_config_set(&p, "mode", "server", e, sizeof e), 0);
	assert_int_equal(sw_port_config_set(&p, "tag", "10", e, sizeof e), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, e, sizeof e), 0);
	sw_port_config_init(&p, "t0");
	assert_int_equal(sw_port_config_set(&p, "type", "tap", e, sizeof e), 0);
	assert_int_equal(sw_port_config_set(&p, "trunks", "1,2,10-20", e, sizeof e), 0);
	assert_int_equal(sw_config_add_port(c, "br0", &p, NULL, e, sizeof e), 0);
	assert_int_equal(sw_config_add_bridge(c, "br1", e, sizeof e), 0);

	struct ctl_reply *r = ctl_reply_new(CTL_CMD_SHOW);
	ctl_reply_show_config(r, c, NULL, NULL);
	char *s = ctl_reply_finish(r);
	assert_string_equal(s,
		"{\"ok\":true,\"bridges\":[{\"name\":\"br0\",\"ports\":["
		"{\"name\":\"vm1\",\"ofport\":1,\"type\":\"vhost-user\",\"options\":{\"mode\":\"server\"},"
		"\"tag\":10,\"trunks\":\"\",\"state\":\"\"},"
		"{\"name\":\"t0\",\"ofport\":2,\"type\":\"tap\",\"options\":{},\"trunks\":\"1-2,10-20\","
		"\"tag\":0,\"state\":\"\"}]},"
		"{\"name\":\"br1\",\"ports\":[]}]}\n");

	/* and vnetctl prints it like ovs-vsctl show */
	struct ctl_cli cli = {.cmd = CTL_CMD_SHOW};
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_int_equal(ctl_cli_print(&cli, s, f, stderr), CTL_EXIT_OK);
	fclose(f);
	assert_string_equal(out, "Bridge br0\n"
				 "    Port vm1 (ofport 1)\n"
				 "        type: vhost-user\n"
				 "        options: {mode=server}\n"
				 "        tag: 10\n"
				 "    Port t0 (ofport 2)\n"
				 "        type: tap\n"
				 "        trunks: [1-2,10-20]\n"
				 "Bridge br1\n");
	free(out);
	free(s);
	sw_config_free(c);
}

static void test_reply_data(void **state)
{
	(void)state;
	struct ctl_reply *r = ctl_reply_new(CTL_CMD_FDB_SHOW);
	const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x01};
	ctl_reply_add_fdb(r, "vm1", 1, 10, mac, 3, false);
	ctl_reply_add_fdb(r, NULL, 2, 0, mac, 0, true);
	char *s = ctl_reply_finish(r);
	assert_string_equal(s, "{\"ok\":true,\"entries\":["
			       "{\"port\":\"vm1\",\"ofport\":1,\"vlan\":10,\"mac\":\"52:54:00:12:34:01\","
			       "\"age\":3,\"static\":false},"
			       "{\"port\":\"\",\"ofport\":2,\"vlan\":0,\"mac\":\"52:54:00:12:34:01\","
			       "\"age\":0,\"static\":true}]}\n");
	struct ctl_cli cli = {.cmd = CTL_CMD_FDB_SHOW};
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_int_equal(ctl_cli_print(&cli, s, f, stderr), CTL_EXIT_OK);
	fclose(f);
	assert_string_equal(out, " port  VLAN  MAC                Age\n"
				 " vm1     10  52:54:00:12:34:01     3\n"
				 " 2        0  52:54:00:12:34:01  static\n");
	free(out);
	free(s);

	r = ctl_reply_new(CTL_CMD_DUMP_FLOWS);
	ctl_reply_add_flow(r, 100, "in_port=1,actions=output:2", 10, 980);
	s = ctl_reply_finish(r);
	cli.cmd = CTL_CMD_DUMP_FLOWS;
	f = open_memstream(&out, &outlen);
	assert_int_equal(ctl_cli_print(&cli, s, f, stderr), CTL_EXIT_OK);
	fclose(f);
	assert_string_equal(out, " n_packets=10, n_bytes=980, priority=100,in_port=1,actions=output:2\n");
	free(out);
	free(s);

	r = ctl_reply_new(CTL_CMD_PORT_STATS);
	struct ctl_counters t = {.rx_packets = 5, .rx_bytes = 500, .tx_packets = 4, .tx_bytes = 400,
				 .tx_dropped = 1, .errors = 2};
	ctl_reply_add_port_stats(r, "vm1", "br0", &t);
	ctl_reply_add_queue_stats(r, 0, &t);
	ctl_reply_add_queue_stats(r, 1, &(struct ctl_counters){0});
	ctl_reply_add_drop_reason(r, "no_buffer", 1);
	s = ctl_reply_finish(r);
	json_t *j = json_loads(s, 0, NULL);
	json_t *p = json_array_get(json_object_get(j, "ports"), 0);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "vm1");
	assert_int_equal(json_integer_value(json_object_get(p, "tx_dropped")), 1);
	assert_int_equal(json_array_size(json_object_get(p, "queues")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "drops"), "no_buffer")), 1);
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(p, "queues"), 1), "queue")), 1);
	json_decref(j);
	cli.cmd = CTL_CMD_PORT_STATS;
	f = open_memstream(&out, &outlen);
	assert_int_equal(ctl_cli_print(&cli, s, f, stderr), CTL_EXIT_OK);
	fclose(f);
	assert_non_null(strstr(out, "PORT "));
	assert_non_null(strstr(out, "vm1 "));
	assert_non_null(strstr(out, "  queue 1"));
	assert_non_null(strstr(out, "  drops: no_buffer=1\n"));
	free(out);
	free(s);
}

/* ---- vnetctl and the server ---- */

/* The client's requests are accepted by the server for every command. */
static void test_cli_server_agree(void **state)
{
	(void)state;
	char cerr[512];
	const char *const cmds[][8] = {
		{"add-br", "br0"},
		{"del-br", "br0"},
		{"add-port", "br0", "vm1", "type=vhost-user", "mode=client", "path=/tmp/a b.sock", "tag=7"},
		{"del-port", "vm1"},
		{"set-port", "vm1", "trunks=1,5-9", "queues=4"},
		{"show"},
		{"list-ports", "br0"},
		{"fdb-show", "br0"},
		{"fdb-flush", "br0"},
		{"add-flow", "br0", "priority=5,ip,nw_dst=10.0.0.0/8,actions=drop"},
		{"del-flows", "br0", "ip"},
		{"dump-flows", "br0"},
		{"port-stats", "vm1"},
		{"fdb-add", "br0", "vm1", "10", "52:54:00:00:00:05"},
		{"fdb-del", "br0", "10", "52:54:00:00:00:05"},
		{"bridge-stats"},
		{"pmd-stats"},
		{"capture", "vm1", "-w", "/tmp/x.pcap", "--count", "3"},
		{"version"},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char *argv[10] = {"vnetctl"};
		int argc = 1;
		for (int k = 0; k < 8 && cmds[i][k]; k++)
			argv[argc++] = (char *)cmds[i][k];
		struct ctl_cli c;
		if (ctl_cli_parse(argc, argv, &c, cerr, sizeof cerr))
			fail_msg("%s: %s", cmds[i][0], cerr);
		R.calls = 0;
		expect_ok(c.request);
		if (c.cmd != CTL_CMD_VERSION) {
			assert_int_equal(R.calls, 1);
			assert_int_equal(R.cmd, c.cmd);
		}
		ctl_cli_free(&c);
	}
	assert_int_equal(R.count, 3);
	assert_string_equal(R.file, "/tmp/x.pcap");
}

/* ---- line I/O ---- */

static void test_conn_lines(void **state)
{
	(void)state;
	int sv[2];
	char e[256], *line;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	const char *msg = "{\"a\":1}\n{\"b\":2}\r\npartial";
	assert_int_equal(ctl_write_all(sv[0], msg, strlen(msg)), 0);
	struct ctl_conn c;
	ctl_conn_init(&c, sv[1]);
	assert_int_equal(ctl_conn_read_line(&c, 1024, 1000, &line, e, sizeof e), 1);
	assert_string_equal(line, "{\"a\":1}");
	free(line);
	assert_int_equal(ctl_conn_read_line(&c, 1024, 1000, &line, e, sizeof e), 1);
	assert_string_equal(line, "{\"b\":2}");
	free(line);
	/* a line that never ends: timeout */
	assert_int_equal(ctl_conn_read_line(&c, 1024, 100, &line, e, sizeof e), -1);
	assert_non_null(strstr(e, "timed out"));
	/* the rest arrives, then EOF */
	assert_int_equal(ctl_write_all(sv[0], " line\n", 6), 0);
	assert_int_equal(ctl_conn_read_line(&c, 1024, 1000, &line, e, sizeof e), 1);
	assert_string_equal(line, "partial line");
	free(line);
	/* too long */
	char big[3000];
	memset(big, 'x', sizeof big);
	assert_int_equal(ctl_write_all(sv[0], big, sizeof big), 0);
	assert_int_equal(ctl_conn_read_line(&c, 1024, 1000, &line, e, sizeof e), -1);
	assert_non_null(strstr(e, "request too large"));
	ctl_conn_release(&c);
	close(sv[0]);
	ctl_conn_init(&c, sv[1]);
	assert_int_equal(ctl_conn_read_line(&c, 1024, 1000, &line, e, sizeof e), 0); /* EOF */
	ctl_conn_release(&c);
	close(sv[1]);
}

static void test_serve_connection(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* two requests and a blank line, then an oversized one */
	const char *reqs = "{\"cmd\":\"add-br\",\"bridge\":\"br0\"}\n\n{\"cmd\":\"nope\"}\n";
	assert_int_equal(ctl_write_all(sv[0], reqs, strlen(reqs)), 0);
	size_t n = CTL_MAX_REQUEST + 10;
	char *big = malloc(n);
	memset(big, ' ', n);
	assert_int_equal(ctl_write_all(sv[0], big, n), 0); /* fits the socket buffer? */
	free(big);
	shutdown(sv[0], SHUT_WR);
	ctl_serve_connection(sv[1], &OPS, NULL);
	close(sv[1]);

	char buf[4096];
	size_t got = 0;
	ssize_t r;
	while ((r = read(sv[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = '\0';
	close(sv[0]);
	assert_string_equal(buf, "{\"ok\":true}\n"
				 "{\"ok\":false,\"error\":\"unknown command 'nope'\"}\n"
				 "{\"ok\":false,\"error\":\"request too large (more than 65536 bytes)\"}\n");
	assert_int_equal(R.calls, 1);
	assert_string_equal(R.bridge, "br0");
}

static void test_connect_errors(void **state)
{
	(void)state;
	char e[512];
	assert_int_equal(ctl_connect("/nonexistent/vnet.ctl", e, sizeof e), -1);
	assert_non_null(strstr(e, "cannot connect to /nonexistent/vnet.ctl"));
	assert_non_null(strstr(e, "is vnet-switchd running?"));
	char longp[200];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(ctl_connect(longp, e, sizeof e), -1);
	assert_non_null(strstr(e, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_dispatch_bridge_commands, reset),
		cmocka_unit_test_setup(test_dispatch_add_port, reset),
		cmocka_unit_test_setup(test_dispatch_port_commands, reset),
		cmocka_unit_test_setup(test_dispatch_flows_and_capture, reset),
		cmocka_unit_test_setup(test_dispatch_fdb_and_bridge_stats, reset),
		cmocka_unit_test_setup(test_malformed_json, reset),
		cmocka_unit_test_setup(test_missing_and_bad_fields, reset),
		cmocka_unit_test_setup(test_oversized_request, reset),
		cmocka_unit_test_setup(test_callback_errors, reset),
		cmocka_unit_test_setup(test_async_capture, reset),
		cmocka_unit_test_setup(test_reply_show, reset),
		cmocka_unit_test_setup(test_reply_data, reset),
		cmocka_unit_test_setup(test_cli_server_agree, reset),
		cmocka_unit_test_setup(test_conn_lines, reset),
		cmocka_unit_test_setup(test_serve_connection, reset),
		cmocka_unit_test_setup(test_connect_errors, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
