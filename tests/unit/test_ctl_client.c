/* test_ctl_client.c — vnetctl's logic without a daemon: argv -> request
 * JSON (with the client-side checks), and responses -> text (stats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "switch/ctl_client.h"
#include "switch/ctl_proto.h"

/* ---- responses -> text ---- */

/* Prints response s as vnetctl would for cmd; malloc'd text. */
static char *print_as(enum ctl_cmd cmd, const char *s)
{
	struct ctl_cli cli = {.cmd = cmd};
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_int_equal(ctl_cli_print(&cli, s, f, stderr), CTL_EXIT_OK);
	fclose(f);
	return out;
}

static void test_reply_stats(void **state)
{
	(void)state;
	/* port-stats: every reason in JSON, only the nonzero ones as text */
	struct ctl_reply *r = ctl_reply_new(CTL_CMD_PORT_STATS);
	ctl_reply_add_port_stats(r, "vm1", "br0", &(struct ctl_counters){.rx_packets = 9});
	ctl_reply_add_drop_reason(r, "malformed", 0);
	ctl_reply_add_drop_reason(r, "vlan", 3);
	ctl_reply_add_drop_reason(r, "loop", 2);
	ctl_reply_add_port_stats(r, "vm2", "br0", &(struct ctl_counters){0});
	ctl_reply_add_drop_reason(r, "vlan", 0);
	char *s = ctl_reply_finish(r);
	assert_non_null(strstr(s, "\"name\":\"vm1\",\"bridge\":\"br0\",\"rx_packets\":9,"));
	assert_non_null(strstr(s, "\"drops\":{\"malformed\":0,\"vlan\":3,\"loop\":2}"));
	assert_non_null(strstr(s, "\"name\":\"vm2\""));
	assert_non_null(strstr(s, "\"drops\":{\"vlan\":0}"));
	char *out = print_as(CTL_CMD_PORT_STATS, s);
	assert_non_null(strstr(out, "\n  drops: vlan=3, loop=2\nvm2 "));
	assert_null(strstr(out, "malformed"));
	const char *first = strstr(out, "drops:");
	assert_null(strstr(first + 1, "drops:")); /* vm2: all zero, no line */
	free(out);
	free(s);

	/* bridge-stats */
	r = ctl_reply_new(CTL_CMD_BRIDGE_STATS);
	struct ctl_bridge_counters c = {.rx_packets = 100, .rx_bytes = 6400, .fdb_entries = 5,
					.fdb_static = 1, .fdb_learned = 9, .fdb_moves = 2,
					.fdb_evicted = 3, .fdb_aged = 4, .fdb_refused = 6, .flows = 7};
	ctl_reply_add_bridge_stats(r, "br0", &c);
	ctl_reply_add_drop_reason(r, "vlan", 0);
	ctl_reply_add_drop_reason(r, "loop", 8);
	ctl_reply_add_bridge_stats(r, "br1", &(struct ctl_bridge_counters){0});
	s = ctl_reply_finish(r);
	assert_string_equal(s, "{\"ok\":true,\"bridges\":["
			       "{\"name\":\"br0\",\"rx_packets\":100,\"rx_bytes\":6400,"
			       "\"drops\":{\"vlan\":0,\"loop\":8},\"fdb\":{\"entries\":5,\"static\":1,"
			       "\"learned\":9,\"moves\":2,\"evicted\":3,\"aged\":4,\"refused\":6},"
			       "\"flows\":7},"
			       "{\"name\":\"br1\",\"rx_packets\":0,\"rx_bytes\":0,\"drops\":{},"
			       "\"fdb\":{\"entries\":0,\"static\":0,\"learned\":0,\"moves\":0,"
			       "\"evicted\":0,\"aged\":0,\"refused\":0},\"flows\":0}]}\n");
	out = print_as(CTL_CMD_BRIDGE_STATS, s);
	assert_string_equal(out, "Bridge br0\n"
				 "    rx: 100 packets, 6400 bytes\n"
				 "    drops: loop=8\n"
				 "    fdb: 5 entries (1 static); learned 9, moves 2, evicted 3, aged 4, "
				 "refused 6\n"
				 "    flows: 7\n"
				 "Bridge br1\n"
				 "    rx: 0 packets, 0 bytes\n"
				 "    fdb: 0 entries (0 static); learned 0, moves 0, evicted 0, aged 0, "
				 "refused 0\n"
				 "    flows: 0\n");
	free(out);
	free(s);
}

/* ---- vnetctl's argv -> request ---- */

static struct ctl_cli CLI;
static char CERR[512];

static int cli(const char *first, ...)
{
	char *argv[32] = {"vnetctl"};
	int argc = 1;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	ctl_cli_free(&CLI);
	CERR[0] = '\0';
	return ctl_cli_parse(argc, argv, &CLI, CERR, sizeof CERR);
}

#define CLI_OK(want, ...) \
	do { \
		if (cli(__VA_ARGS__, NULL)) \
			fail_msg("parse failed: %s", CERR); \
		assert_string_equal(CLI.request, want); \
	} while (0)

#define CLI_ERR(msg, ...) \
	do { \
		assert_int_equal(cli(__VA_ARGS__, NULL), -1); \
		if (!strstr(CERR, msg)) \
			fail_msg("error '%s', want '%s'", CERR, msg); \
		assert_null(CLI.request); \
	} while (0)

static void test_cli_requests(void **state)
{
	(void)state;
	unsetenv(CTL_SOCKET_ENV);
	CLI_OK("{\"cmd\":\"add-br\",\"bridge\":\"br0\"}", "add-br", "br0");
	CLI_OK("{\"cmd\":\"del-br\",\"bridge\":\"br0\"}", "del-br", "br0");
	CLI_OK("{\"cmd\":\"add-port\",\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"type\":"
	       "\"vhost-user\",\"mode\":\"server\",\"tag\":\"10\",\"trunks\":\"\"}}",
	       "add-port", "br0", "vm1", "type=vhost-user", "mode=server", "tag=10", "trunks=");
	CLI_OK("{\"cmd\":\"del-port\",\"bridge\":\"br0\",\"port\":\"vm1\"}", "del-port", "br0", "vm1");
	CLI_OK("{\"cmd\":\"del-port\",\"port\":\"vm1\"}", "del-port", "vm1");
	CLI_OK("{\"cmd\":\"set-port\",\"port\":\"vm1\",\"options\":{\"queues\":\"2\",\"path\":\"\"}}",
	       "set-port", "vm1", "queues=2", "path=");
	CLI_OK("{\"cmd\":\"show\"}", "show");
	CLI_OK("{\"cmd\":\"list-ports\",\"bridge\":\"br0\"}", "list-ports", "br0");
	CLI_OK("{\"cmd\":\"fdb-show\",\"bridge\":\"br0\"}", "fdb-show", "br0");
	CLI_OK("{\"cmd\":\"fdb-flush\",\"bridge\":\"br0\"}", "fdb-flush", "br0");
	CLI_OK("{\"cmd\":\"add-flow\",\"bridge\":\"br0\",\"flow\":\"in_port=1,actions=output:2\"}",
	       "add-flow", "br0", "in_port=1,actions=output:2");
	CLI_OK("{\"cmd\":\"del-flows\",\"bridge\":\"br0\"}", "del-flows", "br0");
	CLI_OK("{\"cmd\":\"del-flows\",\"bridge\":\"br0\",\"match\":\"in_port=1\"}", "del-flows", "br0",
	       "in_port=1");
	CLI_OK("{\"cmd\":\"dump-flows\",\"bridge\":\"br0\"}", "dump-flows", "br0");
	CLI_OK("{\"cmd\":\"port-stats\"}", "port-stats");
	CLI_OK("{\"cmd\":\"port-stats\",\"port\":\"vm1\"}", "port-stats", "vm1");
	CLI_OK("{\"cmd\":\"fdb-add\",\"bridge\":\"br0\",\"port\":\"vm1\",\"vlan\":0,"
	       "\"mac\":\"52:54:00:ab:00:05\"}", "fdb-add", "br0", "vm1", "0", "52:54:00:AB:00:05");
	CLI_OK("{\"cmd\":\"fdb-del\",\"bridge\":\"br0\",\"vlan\":4095,\"mac\":\"52:54:00:00:00:05\"}",
	       "fdb-del", "br0", "4095", "52:54:00:00:00:05");
	CLI_OK("{\"cmd\":\"bridge-stats\"}", "bridge-stats");
	CLI_OK("{\"cmd\":\"pmd-stats\"}", "pmd-stats");
	CLI_OK("{\"cmd\":\"bridge-stats\",\"bridge\":\"br0\"}", "bridge-stats", "br0");
	CLI_OK("{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"/tmp/c.pcap\",\"count\":10,\"timeout\":30}",
	       "capture", "vm1", "--count", "10", "-w", "/tmp/c.pcap");
	assert_int_equal(CLI.timeout_s, 40); /* waits past the capture time */
	CLI_OK("{\"cmd\":\"version\"}", "version");
	assert_false(CLI.json);
	assert_string_equal(CLI.socket, CTL_DEFAULT_SOCKET);
	assert_int_equal(CLI.timeout_s, CTL_CLIENT_DEFAULT_TIMEOUT);
	ctl_cli_free(&CLI);
}

static void test_cli_options(void **state)
{
	(void)state;
	setenv(CTL_SOCKET_ENV, "/tmp/env.ctl", 1);
	CLI_OK("{\"cmd\":\"show\"}", "show");
	assert_string_equal(CLI.socket, "/tmp/env.ctl");
	CLI_OK("{\"cmd\":\"show\"}", "--socket", "/tmp/flag.ctl", "--json", "show");
	assert_string_equal(CLI.socket, "/tmp/flag.ctl");
	assert_true(CLI.json);
	CLI_OK("{\"cmd\":\"show\"}", "show", "--socket=/tmp/eq.ctl", "--timeout=3");
	assert_string_equal(CLI.socket, "/tmp/eq.ctl");
	assert_int_equal(CLI.timeout_s, 3);
	unsetenv(CTL_SOCKET_ENV);

	/* a relative capture file becomes absolute (the daemon has another cwd) */
	char cwd[CTL_PATH_MAX], want[CTL_PATH_MAX + 200];
	assert_non_null(getcwd(cwd, sizeof cwd));
	snprintf(want, sizeof want,
		 "{\"cmd\":\"capture\",\"port\":\"vm1\",\"file\":\"%s/c.pcap\",\"timeout\":5}", cwd);
	CLI_OK(want, "capture", "vm1", "-w", "c.pcap", "--timeout", "5");
	assert_int_equal(CLI.timeout_s, 15);

	assert_int_equal(cli("--help", NULL), 0);
	assert_true(CLI.help);
	assert_null(CLI.request);
	assert_int_equal(cli("-V", NULL), 0);
	assert_true(CLI.version_only);
	ctl_cli_free(&CLI);
}

static void test_cli_errors(void **state)
{
	(void)state;
	CLI_ERR("unknown command 'foo'", "foo");
	CLI_ERR("missing command", "--json");
	CLI_ERR("unknown option '--frobnicate'", "--frobnicate", "show");
	CLI_ERR("add-br: expected add-br BR", "add-br");
	CLI_ERR("add-br: expected add-br BR", "add-br", "a", "b");
	CLI_ERR("add-br: invalid bridge name 'br 0'", "add-br", "br 0");
	CLI_ERR("add-port: missing type=", "add-port", "br0", "vm1");
	CLI_ERR("add-port: missing type=", "add-port", "br0", "vm1", "mode=server");
	CLI_ERR("add-port: unknown port type 'bogus'", "add-port", "br0", "vm1", "type=bogus");
	CLI_ERR("add-port: expected KEY=VALUE, not 'server'", "add-port", "br0", "vm1", "type=tap",
		"server");
	CLI_ERR("add-port: invalid tag 'ten'", "add-port", "br0", "vm1", "type=tap", "tag=ten");
	CLI_ERR("add-port: invalid VLAN list", "add-port", "br0", "vm1", "type=tap", "trunks=1-x");
	CLI_ERR("add-port: tag given twice", "add-port", "br0", "vm1", "type=tap", "tag=1", "tag=2");
	CLI_ERR("add-port: invalid port name", "add-port", "br0", "vm/1", "type=tap");
	CLI_ERR("set-port: nothing to set", "set-port", "vm1");
	CLI_ERR("set-port: the type of a port cannot be changed", "set-port", "vm1", "type=tap");
	CLI_ERR("add-flow: flow 'in_port=1' has no actions=", "add-flow", "br0", "in_port=1");
	CLI_ERR("add-flow: expected BR FLOW; quote the flow", "add-flow", "br0", "in_port=1,",
		"actions=drop");
	CLI_ERR("del-flows: a match has no actions=", "del-flows", "br0", "in_port=1,actions=drop");
	CLI_ERR("capture: missing -w FILE.pcap", "capture", "vm1");
	CLI_ERR("--count needs a number", "capture", "vm1", "--count", "ten", "-w", "/x");
	CLI_ERR("show: --count and -w are for capture only", "show", "-w", "/x");
	CLI_ERR("--timeout needs seconds", "--timeout", "0", "show");
	CLI_ERR("--socket needs a path", "show", "--socket");
	CLI_ERR("port-stats: expected port-stats [PORT]", "port-stats", "a", "b");
	CLI_ERR("fdb-add: expected fdb-add BR PORT VLAN MAC", "fdb-add", "br0", "0", "52:54:00:00:00:05");
	CLI_ERR("fdb-del: expected fdb-del BR VLAN MAC", "fdb-del", "br0", "vm1", "0",
		"52:54:00:00:00:05");
	CLI_ERR("fdb-add: invalid VLAN '5000' (expected 0-4095)", "fdb-add", "br0", "vm1", "5000",
		"52:54:00:00:00:05");
	CLI_ERR("fdb-add: invalid VLAN '-1'", "fdb-add", "br0", "vm1", "--", "-1", "52:54:00:00:00:05");
	CLI_ERR("fdb-add: invalid MAC 'xx'", "fdb-add", "br0", "vm1", "0", "xx");
	CLI_ERR("fdb-add: MAC ff:ff:ff:ff:ff:ff is multicast", "fdb-add", "br0", "vm1", "0",
		"ff:ff:ff:ff:ff:ff");
	CLI_ERR("fdb-add: invalid port name", "fdb-add", "br0", "vm 1", "0", "52:54:00:00:00:05");
	CLI_ERR("fdb-del: invalid VLAN 'ten'", "fdb-del", "br0", "ten", "52:54:00:00:00:05");
	CLI_ERR("bridge-stats: expected bridge-stats [BR]", "bridge-stats", "a", "b");
	CLI_ERR("pmd-stats: expected pmd-stats", "pmd-stats", "x");
}

static void test_cli_print_errors(void **state)
{
	(void)state;
	struct ctl_cli c = {.cmd = CTL_CMD_ADD_BR};
	char *out = NULL, *eout = NULL;
	size_t ol = 0, el = 0;
	FILE *f = open_memstream(&out, &ol), *fe = open_memstream(&eout, &el);
	assert_int_equal(ctl_cli_print(&c, "{\"ok\":false,\"error\":\"no bridge br9\"}\n", f, fe),
			 CTL_EXIT_FAILED);
	assert_int_equal(ctl_cli_print(&c, "garbage", f, fe), CTL_EXIT_COMM);
	assert_int_equal(ctl_cli_print(&c, "{\"ok\":true}\n", f, fe), CTL_EXIT_OK);
	c.json = true;
	assert_int_equal(ctl_cli_print(&c, "{\"ok\":false,\"error\":\"x\"}", f, fe), CTL_EXIT_FAILED);
	fclose(f);
	fclose(fe);
	assert_string_equal(out, "{\"ok\":false,\"error\":\"x\"}\n"); /* raw with --json */
	assert_non_null(strstr(eout, "vnetctl: no bridge br9\n"));
	assert_non_null(strstr(eout, "vnetctl: unreadable answer from the daemon"));
	free(out);
	free(eout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_stats),
		cmocka_unit_test(test_cli_requests),
		cmocka_unit_test(test_cli_options),
		cmocka_unit_test(test_cli_errors),
		cmocka_unit_test(test_cli_print_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
