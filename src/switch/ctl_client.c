/* ctl_client.c — vnetctl's command line and output (see ctl_client.h). */
#include "switch/ctl_client.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

void ctl_cli_usage(FILE *out)
{
	fputs("usage: vnetctl [--socket PATH] [--json] [--timeout S] COMMAND [ARG...]\n"
	      "\n"
	      "Bridges and ports:\n"
	      "  add-br BR                          create a bridge\n"
	      "  del-br BR                          delete a bridge and its ports and flows\n"
	      "  add-port BR PORT type=T [K=V...]   add a port: type=vhost-user|tap|afpacket|internal|null,\n"
	      "                                     tag=N (access VLAN), trunks=1,2,10-20,\n"
	      "                                     ofport_request=N, type options (mode=, path=, queues=...)\n"
	      "  del-port [BR] PORT                 delete a port\n"
	      "  set-port PORT K=V...               change options (K= removes one; tag=, trunks= clear)\n"
	      "  show                               bridges, ports and their state\n"
	      "  list-ports BR                      the ports of a bridge\n"
	      "\n"
	      "Forwarding:\n"
	      "  fdb-show BR                        learned and static MAC addresses\n"
	      "  fdb-flush BR                       forget the learned ones (static ones stay)\n"
	      "  fdb-add BR PORT VLAN MAC           add a static entry (VLAN 0 = untagged), saved\n"
	      "  fdb-del BR VLAN MAC                delete a static entry\n"
	      "  add-flow BR FLOW                   e.g. \"priority=100,in_port=1,actions=output:2\"\n"
	      "  del-flows BR [MATCH]               delete the flows matching (all without MATCH)\n"
	      "  dump-flows BR                      the flow table with counters\n"
	      "\n"
	      "Monitoring:\n"
	      "  port-stats [PORT]                  per port and queue counters, drops by reason\n"
	      "  bridge-stats [BR]                  per bridge counters: frames, drops, FDB, flows\n"
	      "  pmd-stats                          per poll-mode thread: packets, busy/idle cycles\n"
	      "  capture PORT [--count N] -w FILE   write frames to a pcap (until N or --timeout)\n"
	      "  version                            the client's and the daemon's versions\n"
	      "\n"
	      "Options:\n"
	      "  --socket PATH   control socket (default $" CTL_SOCKET_ENV ", else " CTL_DEFAULT_SOCKET ")\n"
	      "  --json          print the daemon's JSON response\n"
	      "  --timeout S     seconds to wait for the answer (capture: capture time, default 30)\n"
	      "  -h, --help      this text;  -V, --version  vnetctl's version\n"
	      "Exit status: 0 ok, 1 the daemon refused, 2 bad usage, 3 cannot reach the daemon.\n",
	      out);
}

/* ---- argv -> request ---- */

struct cmd_shape {
	enum ctl_cmd cmd;
	const char *usage; /* after the command name */
	int min, max;      /* positional arguments after the command; max -1 = any */
};

static const struct cmd_shape shapes[] = {
	{CTL_CMD_ADD_BR, "BR", 1, 1},
	{CTL_CMD_DEL_BR, "BR", 1, 1},
	{CTL_CMD_ADD_PORT, "BR PORT type=TYPE [KEY=VALUE...]", 2, -1},
	{CTL_CMD_DEL_PORT, "[BR] PORT", 1, 2},
	{CTL_CMD_SET_PORT, "PORT KEY=VALUE...", 2, -1},
	{CTL_CMD_SHOW, "", 0, 0},
	{CTL_CMD_LIST_PORTS, "BR", 1, 1},
	{CTL_CMD_FDB_SHOW, "BR", 1, 1},
	{CTL_CMD_FDB_FLUSH, "BR", 1, 1},
	{CTL_CMD_FDB_ADD, "BR PORT VLAN MAC", 4, 4},
	{CTL_CMD_FDB_DEL, "BR VLAN MAC", 3, 3},
	{CTL_CMD_ADD_FLOW, "BR \"MATCH,actions=ACTIONS\"", 2, 2},
	{CTL_CMD_DEL_FLOWS, "BR [MATCH]", 1, 2},
	{CTL_CMD_DUMP_FLOWS, "BR", 1, 1},
	{CTL_CMD_PORT_STATS, "[PORT]", 0, 1},
	{CTL_CMD_BRIDGE_STATS, "[BR]", 0, 1},
	{CTL_CMD_PMD_STATS, "", 0, 0},
	{CTL_CMD_CAPTURE, "PORT [--count N] -w FILE.pcap", 1, 1},
	{CTL_CMD_VERSION, "", 0, 0},
};

static const struct cmd_shape *shape_of(enum ctl_cmd cmd)
{
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if (shapes[i].cmd == cmd)
			return &shapes[i];
	return NULL;
}

static int parse_unsigned(const char *s, unsigned long max, unsigned long *out)
{
	if (!*s || strlen(s) > 10)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* "--opt=value" or "--opt value": the value, advancing *i; NULL if missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *arg, size_t namelen)
{
	if (arg[namelen] == '=')
		return arg + namelen + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static bool is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(arg, name, n) && (arg[n] == '\0' || arg[n] == '=');
}

static int check_name(const char *cmd, const char *what, const char *name, char *err, size_t errlen)
{
	char e[200];
	if (sw_name_check(what, name, e, sizeof e))
		return sw_fail(err, errlen, "%s: %s", cmd, e);
	return 0;
}

/* Splits "key=value" into the buffers. */
static int split_kv(const char *cmd, const char *arg, char *key, size_t klen, const char **value,
		    char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return sw_fail(err, errlen, "%s: expected KEY=VALUE, not '%s'", cmd, arg);
	if ((size_t)(eq - arg) >= klen)
		return sw_fail(err, errlen, "%s: option name '%.*s' is too long", cmd, (int)(eq - arg), arg);
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = '\0';
	*value = eq + 1;
	return 0;
}

/* fdb-add / fdb-del: "VLAN MAC" into the request. */
static int fdb_key(const char *name, json_t *j, const char *vlan, const char *mac, char *err,
		   size_t errlen)
{
	char e[200], m[SW_MAC_STR_LEN];
	unsigned long v;
	uint8_t bytes[6];
	if (parse_unsigned(vlan, SW_VLAN_MAX, &v))
		return sw_fail(err, errlen, "%s: invalid VLAN '%s' (expected 0-%d)", name, vlan, SW_VLAN_MAX);
	if (sw_mac_parse(mac, bytes, e, sizeof e))
		return sw_fail(err, errlen, "%s: %s", name, e);
	if (!strcmp(name, "fdb-add") && sw_fdb_static_check((unsigned)v, bytes, e, sizeof e))
		return sw_fail(err, errlen, "%s: %s", name, e);
	sw_mac_format(bytes, m);
	json_object_set_new(j, "vlan", json_integer((json_int_t)v));
	json_object_set_new(j, "mac", json_string(m));
	return 0;
}

static int build_request(struct ctl_cli *cli, int npos, char **pos, long count, const char *file,
			 char *err, size_t errlen)
{
	const char *name = ctl_cmd_name(cli->cmd);
	char e[256];
	json_t *j = json_object();
	if (!j)
		return sw_fail(err, errlen, "out of memory");
	json_object_set_new(j, "cmd", json_string(name));
	int r = -1;

	switch (cli->cmd) {
	case CTL_CMD_ADD_BR:
	case CTL_CMD_DEL_BR:
	case CTL_CMD_LIST_PORTS:
	case CTL_CMD_FDB_SHOW:
	case CTL_CMD_FDB_FLUSH:
	case CTL_CMD_DUMP_FLOWS:
		if (check_name(name, "bridge", pos[0], err, errlen))
			goto out;
		json_object_set_new(j, "bridge", json_string(pos[0]));
		break;
	case CTL_CMD_ADD_PORT: {
		if (check_name(name, "bridge", pos[0], err, errlen) ||
		    check_name(name, "port", pos[1], err, errlen))
			goto out;
		json_object_set_new(j, "bridge", json_string(pos[0]));
		json_object_set_new(j, "port", json_string(pos[1]));
		struct sw_port_config *pc = malloc(sizeof *pc);
		json_t *opts = json_object();
		if (!pc || !opts) {
			free(pc);
			json_decref(opts);
			sw_fail(err, errlen, "out of memory");
			goto out;
		}
		sw_port_config_init(pc, pos[1]);
		json_object_set_new(j, "options", opts);
		for (int i = 2; i < npos; i++) {
			char key[64];
			const char *value = NULL;
			if (split_kv(name, pos[i], key, sizeof key, &value, err, errlen)) {
				free(pc);
				goto out;
			}
			if (json_object_get(opts, key)) {
				free(pc);
				sw_fail(err, errlen, "%s: %s given twice", name, key);
				goto out;
			}
			if (sw_port_config_set(pc, key, value, e, sizeof e)) {
				free(pc);
				sw_fail(err, errlen, "%s: %s", name, e);
				goto out;
			}
			json_object_set_new(opts, key, json_string(value));
		}
		int bad = 0;
		if (!pc->type[0])
			bad = sw_fail(err, errlen, "%s: missing type= (one of %s)", name,
				   sw_port_types_list());
		else if (sw_port_config_validate(pc, e, sizeof e))
			bad = sw_fail(err, errlen, "%s: %s", name, e);
		free(pc);
		if (bad)
			goto out;
		break;
	}
	case CTL_CMD_DEL_PORT:
		if (npos == 2) {
			if (check_name(name, "bridge", pos[0], err, errlen))
				goto out;
			json_object_set_new(j, "bridge", json_string(pos[0]));
		}
		if (check_name(name, "port", pos[npos - 1], err, errlen))
			goto out;
		json_object_set_new(j, "port", json_string(pos[npos - 1]));
		break;
	case CTL_CMD_SET_PORT: {
		if (check_name(name, "port", pos[0], err, errlen))
			goto out;
		json_object_set_new(j, "port", json_string(pos[0]));
		json_t *opts = json_object();
		json_object_set_new(j, "options", opts);
		struct sw_port_changes *ch = malloc(sizeof *ch);
		if (!ch || !opts) {
			free(ch);
			sw_fail(err, errlen, "out of memory");
			goto out;
		}
		sw_port_changes_init(ch);
		for (int i = 1; i < npos; i++) {
			char key[64];
			const char *value = NULL;
			if (split_kv(name, pos[i], key, sizeof key, &value, err, errlen)) {
				free(ch);
				goto out;
			}
			if (sw_port_changes_set(ch, key, value, e, sizeof e)) {
				sw_fail(err, errlen, "%s: %s", name, e);
				free(ch);
				goto out;
			}
			json_object_set_new(opts, key, json_string(value));
		}
		free(ch);
		break;
	}
	case CTL_CMD_ADD_FLOW: {
		if (check_name(name, "bridge", pos[0], err, errlen))
			goto out;
		uint16_t prio;
		char *text;
		if (sw_flow_text_parse(pos[1], &prio, &text, e, sizeof e)) {
			sw_fail(err, errlen, "%s: %s", name, e);
			goto out;
		}
		free(text);
		json_object_set_new(j, "bridge", json_string(pos[0]));
		json_object_set_new(j, "flow", json_string(pos[1]));
		break;
	}
	case CTL_CMD_DEL_FLOWS:
		if (check_name(name, "bridge", pos[0], err, errlen))
			goto out;
		json_object_set_new(j, "bridge", json_string(pos[0]));
		if (npos == 2) {
			if (strstr(pos[1], "actions=")) {
				sw_fail(err, errlen, "%s: a match has no actions= (del-flows BR [MATCH])", name);
				goto out;
			}
			json_object_set_new(j, "match", json_string(pos[1]));
		}
		break;
	case CTL_CMD_FDB_ADD:
		if (check_name(name, "bridge", pos[0], err, errlen) ||
		    check_name(name, "port", pos[1], err, errlen))
			goto out;
		json_object_set_new(j, "bridge", json_string(pos[0]));
		json_object_set_new(j, "port", json_string(pos[1]));
		if (fdb_key(name, j, pos[2], pos[3], err, errlen))
			goto out;
		break;
	case CTL_CMD_FDB_DEL:
		if (check_name(name, "bridge", pos[0], err, errlen))
			goto out;
		json_object_set_new(j, "bridge", json_string(pos[0]));
		if (fdb_key(name, j, pos[1], pos[2], err, errlen))
			goto out;
		break;
	case CTL_CMD_PORT_STATS:
		if (npos == 1) {
			if (check_name(name, "port", pos[0], err, errlen))
				goto out;
			json_object_set_new(j, "port", json_string(pos[0]));
		}
		break;
	case CTL_CMD_BRIDGE_STATS:
		if (npos == 1) {
			if (check_name(name, "bridge", pos[0], err, errlen))
				goto out;
			json_object_set_new(j, "bridge", json_string(pos[0]));
		}
		break;
	case CTL_CMD_CAPTURE: {
		if (check_name(name, "port", pos[0], err, errlen))
			goto out;
		if (!file || !*file) {
			sw_fail(err, errlen, "%s: missing -w FILE.pcap", name);
			goto out;
		}
		char path[CTL_PATH_MAX], cwd[CTL_PATH_MAX];
		if (file[0] == '/') {
			snprintf(path, sizeof path, "%s", file);
		} else {
			if (!getcwd(cwd, sizeof cwd)) {
				sw_fail(err, errlen, "%s: cannot get the current directory: %s", name,
				     strerror(errno));
				goto out;
			}
			int n = snprintf(path, sizeof path, "%s/%s", strcmp(cwd, "/") ? cwd : "", file);
			if (n < 0 || (size_t)n >= sizeof path) {
				sw_fail(err, errlen, "%s: file path too long", name);
				goto out;
			}
		}
		json_object_set_new(j, "port", json_string(pos[0]));
		json_object_set_new(j, "file", json_string(path));
		if (count >= 0)
			json_object_set_new(j, "count", json_integer(count));
		json_object_set_new(j, "timeout", json_integer(cli->timeout_s));
		break;
	}
	case CTL_CMD_SHOW:
	case CTL_CMD_PMD_STATS:
	case CTL_CMD_VERSION:
		break;
	case CTL_CMD_NONE:
	case CTL_CMD__COUNT:
		sw_fail(err, errlen, "no command");
		goto out;
	}
	cli->request = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	r = cli->request ? 0 : sw_fail(err, errlen, "out of memory");
out:
	json_decref(j);
	return r;
}

int ctl_cli_parse(int argc, char **argv, struct ctl_cli *cli, char *err, size_t errlen)
{
	memset(cli, 0, sizeof *cli);
	if (err && errlen)
		err[0] = '\0';
	const char *env = getenv(CTL_SOCKET_ENV);
	snprintf(cli->socket, sizeof cli->socket, "%s", env && *env ? env : CTL_DEFAULT_SOCKET);

	char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pos);
	if (!pos)
		return sw_fail(err, errlen, "out of memory");
	int npos = 0, r = -1;
	long count = -1;
	const char *file = NULL;
	bool timeout_given = false, capture_opts = false, only_pos = false;
	unsigned long v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			pos[npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli->help = true;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			cli->version_only = true;
		} else if (!strcmp(a, "--json") || !strcmp(a, "-j")) {
			cli->json = true;
		} else if (is_opt(a, "--socket")) {
			const char *s = opt_value(argc, argv, &i, a, strlen("--socket"));
			if (!s || !*s) {
				sw_fail(err, errlen, "--socket needs a path");
				goto out;
			}
			if (strlen(s) >= sizeof cli->socket) {
				sw_fail(err, errlen, "--socket: path too long");
				goto out;
			}
			snprintf(cli->socket, sizeof cli->socket, "%s", s);
		} else if (is_opt(a, "--timeout")) {
			const char *s = opt_value(argc, argv, &i, a, strlen("--timeout"));
			if (!s || parse_unsigned(s, CTL_CAPTURE_MAX_TIMEOUT, &v) || v == 0) {
				sw_fail(err, errlen, "--timeout needs seconds (1-%d)", CTL_CAPTURE_MAX_TIMEOUT);
				goto out;
			}
			cli->timeout_s = (unsigned)v;
			timeout_given = true;
		} else if (is_opt(a, "--count") || !strcmp(a, "-c")) {
			const char *s = a[1] == 'c' ? (i + 1 < argc ? argv[++i] : NULL)
						    : opt_value(argc, argv, &i, a, strlen("--count"));
			if (!s || parse_unsigned(s, CTL_CAPTURE_MAX_COUNT, &v)) {
				sw_fail(err, errlen, "--count needs a number (0-%u)", CTL_CAPTURE_MAX_COUNT);
				goto out;
			}
			count = (long)v;
			capture_opts = true;
		} else if (!strcmp(a, "-w") || is_opt(a, "--write")) {
			const char *s = a[1] == 'w' ? (i + 1 < argc ? argv[++i] : NULL)
						    : opt_value(argc, argv, &i, a, strlen("--write"));
			if (!s || !*s) {
				sw_fail(err, errlen, "-w needs a file name");
				goto out;
			}
			file = s;
			capture_opts = true;
		} else {
			sw_fail(err, errlen, "unknown option '%s'", a);
			goto out;
		}
	}
	if (cli->help || cli->version_only) {
		r = 0;
		goto out;
	}
	if (npos == 0) {
		sw_fail(err, errlen, "missing command (try --help)");
		goto out;
	}
	cli->cmd = ctl_cmd_lookup(pos[0]);
	if (cli->cmd == CTL_CMD_NONE) {
		sw_fail(err, errlen, "unknown command '%s'", pos[0]);
		goto out;
	}
	const char *name = ctl_cmd_name(cli->cmd);
	const struct cmd_shape *sh = shape_of(cli->cmd);
	int nargs = npos - 1;
	if (nargs < sh->min || (sh->max >= 0 && nargs > sh->max)) {
		if (cli->cmd == CTL_CMD_ADD_PORT && nargs == 2)
			sw_fail(err, errlen, "add-port: missing type= (one of %s)", sw_port_types_list());
		else if (cli->cmd == CTL_CMD_SET_PORT && nargs == 1)
			sw_fail(err, errlen, "set-port: nothing to set (give KEY=VALUE)");
		else if (cli->cmd == CTL_CMD_ADD_FLOW && nargs > 2)
			sw_fail(err, errlen, "add-flow: expected BR FLOW; quote the flow if it has spaces");
		else
			sw_fail(err, errlen, "%s: expected %s%s%s", name, name, *sh->usage ? " " : "",
			     sh->usage);
		goto out;
	}
	if (capture_opts && cli->cmd != CTL_CMD_CAPTURE) {
		sw_fail(err, errlen, "%s: --count and -w are for capture only", name);
		goto out;
	}
	if (!timeout_given)
		cli->timeout_s = cli->cmd == CTL_CMD_CAPTURE ? CTL_CAPTURE_DEFAULT_TIMEOUT
							     : CTL_CLIENT_DEFAULT_TIMEOUT;
	r = build_request(cli, nargs, pos + 1, count, file, err, errlen);
	/* capture: the request carries the capture time; wait a bit longer */
	if (!r && cli->cmd == CTL_CMD_CAPTURE)
		cli->timeout_s += 10;
out:
	free(pos);
	if (r) {
		free(cli->request);
		cli->request = NULL;
	}
	return r;
}

void ctl_cli_free(struct ctl_cli *cli)
{
	free(cli->request);
	cli->request = NULL;
}

/* ---- response -> text ---- */

static long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("_-.:/@+", *p)))
			return true;
	return false;
}

static void print_show(const json_t *resp, FILE *out)
{
	size_t i, k;
	json_t *b, *p;
	json_array_foreach(json_object_get(resp, "bridges"), i, b) {
		fprintf(out, "Bridge %s\n", jstr(b, "name"));
		json_array_foreach(json_object_get(b, "ports"), k, p) {
			fprintf(out, "    Port %s (ofport %lld)\n", jstr(p, "name"), jint(p, "ofport"));
			fprintf(out, "        type: %s\n", jstr(p, "type"));
			json_t *opts = json_object_get(p, "options");
			if (json_object_size(opts)) {
				const char *key;
				json_t *v;
				bool first = true;
				fputs("        options: {", out);
				json_object_foreach(opts, key, v) {
					const char *s = json_string_value(v) ? json_string_value(v) : "";
					fprintf(out, first ? "%s=" : ", %s=", key);
					fprintf(out, needs_quotes(s) ? "\"%s\"" : "%s", s);
					first = false;
				}
				fputs("}\n", out);
			}
			if (jint(p, "tag"))
				fprintf(out, "        tag: %lld\n", jint(p, "tag"));
			if (*jstr(p, "trunks"))
				fprintf(out, "        trunks: [%s]\n", jstr(p, "trunks"));
			if (*jstr(p, "state"))
				fprintf(out, "        state: %s\n", jstr(p, "state"));
		}
	}
}

static void print_fdb(const json_t *resp, FILE *out)
{
	size_t i;
	json_t *e;
	int w = 4;
	json_array_foreach(json_object_get(resp, "entries"), i, e) {
		int n = (int)strlen(jstr(e, "port"));
		if (n > w)
			w = n;
	}
	fprintf(out, " %-*s  VLAN  MAC                Age\n", w, "port");
	json_array_foreach(json_object_get(resp, "entries"), i, e) {
		char port[32];
		if (*jstr(e, "port"))
			snprintf(port, sizeof port, "%s", jstr(e, "port"));
		else
			snprintf(port, sizeof port, "%lld", jint(e, "ofport"));
		fprintf(out, " %-*s  %4lld  %s  ", w, port, jint(e, "vlan"), jstr(e, "mac"));
		if (json_is_true(json_object_get(e, "static")))
			fputs("static\n", out);
		else
			fprintf(out, "%4lld\n", jint(e, "age"));
	}
}

static void print_flows(const json_t *resp, FILE *out)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(resp, "flows"), i, f) {
		fputc(' ', out);
		if (json_object_get(f, "n_packets"))
			fprintf(out, "n_packets=%lld, n_bytes=%lld, ", jint(f, "n_packets"),
				jint(f, "n_bytes"));
		const char *text = jstr(f, "text");
		if (json_object_get(f, "priority") && !strstr(text, "priority="))
			fprintf(out, "priority=%lld,", jint(f, "priority"));
		fprintf(out, "%s\n", text);
	}
}

/* INDENT"drops: k=v, ..." with the nonzero reasons of a "drops" object;
 * nothing when every one is zero. */
static void print_drops(const json_t *drops, const char *indent, FILE *out)
{
	const char *key;
	json_t *v;
	bool any = false;
	json_object_foreach((json_t *)drops, key, v) {
		if (!json_integer_value(v))
			continue;
		if (!any)
			fprintf(out, "%sdrops: ", indent);
		fprintf(out, "%s%s=%lld", any ? ", " : "", key, (long long)json_integer_value(v));
		any = true;
	}
	if (any)
		fputc('\n', out);
}

static void stats_row(FILE *out, const char *label, const json_t *s)
{
	fprintf(out, "%-16s %12lld %14lld %9lld %12lld %14lld %9lld %7lld\n", label,
		jint(s, "rx_packets"), jint(s, "rx_bytes"), jint(s, "rx_dropped"),
		jint(s, "tx_packets"), jint(s, "tx_bytes"), jint(s, "tx_dropped"), jint(s, "errors"));
}

static void print_stats(const json_t *resp, FILE *out)
{
	size_t i, k;
	json_t *p, *q;
	fprintf(out, "%-16s %12s %14s %9s %12s %14s %9s %7s\n", "PORT", "RX_PKTS", "RX_BYTES",
		"RX_DROP", "TX_PKTS", "TX_BYTES", "TX_DROP", "ERRORS");
	json_array_foreach(json_object_get(resp, "ports"), i, p) {
		stats_row(out, jstr(p, "name"), p);
		json_t *qs = json_object_get(p, "queues");
		if (json_array_size(qs) > 1)
			json_array_foreach(qs, k, q) {
				char label[32];
				snprintf(label, sizeof label, "  queue %lld", jint(q, "queue"));
				stats_row(out, label, q);
			}
		print_drops(json_object_get(p, "drops"), "  ", out);
	}
}

static void print_bridge_stats(const json_t *resp, FILE *out)
{
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(resp, "bridges"), i, b) {
		const json_t *f = json_object_get(b, "fdb");
		fprintf(out, "Bridge %s\n", jstr(b, "name"));
		fprintf(out, "    rx: %lld packets, %lld bytes\n", jint(b, "rx_packets"),
			jint(b, "rx_bytes"));
		print_drops(json_object_get(b, "drops"), "    ", out);
		fprintf(out, "    fdb: %lld entries (%lld static); learned %lld, moves %lld, "
			     "evicted %lld, aged %lld, refused %lld\n",
			jint(f, "entries"), jint(f, "static"), jint(f, "learned"), jint(f, "moves"),
			jint(f, "evicted"), jint(f, "aged"), jint(f, "refused"));
		fprintf(out, "    flows: %lld\n", jint(b, "flows"));
	}
}

static void print_pmd_stats(const json_t *resp, FILE *out)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(resp, "pmds"), i, p) {
		long long cpu = jint(p, "cpu"), loops = jint(p, "loops"), busy = jint(p, "busy_loops");
		long long bc = jint(p, "busy_cycles"), ic = jint(p, "idle_cycles");
		if (cpu >= 0)
			fprintf(out, "pmd%lld (CPU %lld): %lld rx queues\n", jint(p, "pmd"), cpu,
				jint(p, "rx_queues"));
		else
			fprintf(out, "pmd%lld (not pinned): %lld rx queues\n", jint(p, "pmd"),
				jint(p, "rx_queues"));
		fprintf(out, "    packets received: %lld\n", jint(p, "packets"));
		fprintf(out, "    polling rounds: %lld (%.1f %% busy), sleeps: %lld\n", loops,
			loops ? 100.0 * (double)busy / (double)loops : 0.0, jint(p, "sleeps"));
		fprintf(out, "    busy cycles: %lld (%.1f %% of polling), %.1f cycles/packet\n", bc,
			bc + ic ? 100.0 * (double)bc / (double)(bc + ic) : 0.0,
			json_number_value(json_object_get(p, "cycles_per_packet")));
	}
}

int ctl_cli_print(const struct ctl_cli *cli, const char *response, FILE *out, FILE *errout)
{
	json_error_t je;
	json_t *j = json_loads(response, 0, &je);
	if (!j || !json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
		fprintf(errout, "vnetctl: unreadable answer from the daemon%s%s\n", j ? "" : ": ",
			j ? "" : je.text);
		json_decref(j);
		return CTL_EXIT_COMM;
	}
	bool ok = json_is_true(json_object_get(j, "ok"));
	if (cli->json) {
		size_t n = strlen(response);
		fputs(response, out);
		if (!n || response[n - 1] != '\n')
			fputc('\n', out);
	} else if (!ok) {
		fprintf(errout, "vnetctl: %s\n",
			*jstr(j, "error") ? jstr(j, "error") : "the daemon refused (no reason given)");
	} else {
		size_t i;
		json_t *v;
		switch (cli->cmd) {
		case CTL_CMD_SHOW: print_show(j, out); break;
		case CTL_CMD_LIST_PORTS:
			json_array_foreach(json_object_get(j, "ports"), i, v)
				fprintf(out, "%s\n", json_string_value(v) ? json_string_value(v) : "");
			break;
		case CTL_CMD_FDB_SHOW: print_fdb(j, out); break;
		case CTL_CMD_DUMP_FLOWS: print_flows(j, out); break;
		case CTL_CMD_PORT_STATS: print_stats(j, out); break;
		case CTL_CMD_BRIDGE_STATS: print_bridge_stats(j, out); break;
		case CTL_CMD_PMD_STATS: print_pmd_stats(j, out); break;
		case CTL_CMD_CAPTURE:
			fprintf(out, "captured %lld packet%s to %s%s\n", jint(j, "captured"),
				jint(j, "captured") == 1 ? "" : "s", jstr(j, "file"),
				json_is_true(json_object_get(j, "timed_out")) ? " (timed out)" : "");
			break;
		case CTL_CMD_VERSION:
			fprintf(out, "vnetctl %s\nvnet-switchd %s (protocol %lld)\n", VNET_VERSION,
				jstr(j, "version"), jint(j, "protocol"));
			break;
		default: break; /* changes print nothing, as ovs-vsctl */
		}
	}
	json_decref(j);
	return ok ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}
