/* ctl_proto.c — vnet-switchd's control protocol: requests, replies, dispatch
 * and serving a connection (see ctl_proto.h; line I/O in ctl_io.c). */
#include "switch/ctl_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const cmd_names[CTL_CMD__COUNT] = {
	[CTL_CMD_ADD_BR] = "add-br",         [CTL_CMD_DEL_BR] = "del-br",
	[CTL_CMD_ADD_PORT] = "add-port",     [CTL_CMD_DEL_PORT] = "del-port",
	[CTL_CMD_SET_PORT] = "set-port",     [CTL_CMD_SHOW] = "show",
	[CTL_CMD_LIST_PORTS] = "list-ports", [CTL_CMD_FDB_SHOW] = "fdb-show",
	[CTL_CMD_FDB_FLUSH] = "fdb-flush",   [CTL_CMD_ADD_FLOW] = "add-flow",
	[CTL_CMD_DEL_FLOWS] = "del-flows",   [CTL_CMD_DUMP_FLOWS] = "dump-flows",
	[CTL_CMD_PORT_STATS] = "port-stats", [CTL_CMD_CAPTURE] = "capture",
	[CTL_CMD_VERSION] = "version",       [CTL_CMD_FDB_ADD] = "fdb-add",
	[CTL_CMD_FDB_DEL] = "fdb-del",       [CTL_CMD_BRIDGE_STATS] = "bridge-stats",
	[CTL_CMD_PMD_STATS] = "pmd-stats",
};

const char *ctl_cmd_name(enum ctl_cmd cmd)
{
	if ((unsigned)cmd >= CTL_CMD__COUNT)
		return NULL;
	return cmd_names[cmd];
}

enum ctl_cmd ctl_cmd_lookup(const char *name)
{
	if (!name)
		return CTL_CMD_NONE;
	for (unsigned i = 1; i < CTL_CMD__COUNT; i++)
		if (!strcmp(cmd_names[i], name))
			return (enum ctl_cmd)i;
	return CTL_CMD_NONE;
}

/* ---- request parsing ---- */

enum field_kind { F_NONE, F_BRIDGE, F_PORT, F_OPTIONS, F_FLOW, F_MATCH, F_FILE, F_COUNT,
		  F_TIMEOUT, F_TYPE, F_TAG, F_TRUNKS, F_OFPORT, F_VLAN, F_MAC };

struct field_rule {
	const char *name;
	enum field_kind kind;
	bool required;
};

struct cmd_rule {
	struct field_rule f[9];
};

static const struct cmd_rule rules[CTL_CMD__COUNT] = {
	[CTL_CMD_ADD_BR] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_DEL_BR] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_ADD_PORT] = {{{"bridge", F_BRIDGE, true},
			       {"port", F_PORT, true},
			       {"options", F_OPTIONS, false},
			       {"type", F_TYPE, false},
			       {"tag", F_TAG, false},
			       {"trunks", F_TRUNKS, false},
			       {"ofport_request", F_OFPORT, false}}},
	[CTL_CMD_DEL_PORT] = {{{"bridge", F_BRIDGE, false}, {"port", F_PORT, true}}},
	[CTL_CMD_SET_PORT] = {{{"port", F_PORT, true},
			       {"options", F_OPTIONS, false},
			       {"tag", F_TAG, false},
			       {"trunks", F_TRUNKS, false}}},
	[CTL_CMD_SHOW] = {{{NULL, F_NONE, false}}},
	[CTL_CMD_LIST_PORTS] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_FDB_SHOW] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_FDB_FLUSH] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_FDB_ADD] = {{{"bridge", F_BRIDGE, true},
			      {"port", F_PORT, true},
			      {"vlan", F_VLAN, true},
			      {"mac", F_MAC, true}}},
	[CTL_CMD_FDB_DEL] = {{{"bridge", F_BRIDGE, true},
			      {"vlan", F_VLAN, true},
			      {"mac", F_MAC, true}}},
	[CTL_CMD_ADD_FLOW] = {{{"bridge", F_BRIDGE, true}, {"flow", F_FLOW, true}}},
	[CTL_CMD_DEL_FLOWS] = {{{"bridge", F_BRIDGE, true}, {"match", F_MATCH, false}}},
	[CTL_CMD_DUMP_FLOWS] = {{{"bridge", F_BRIDGE, true}}},
	[CTL_CMD_PORT_STATS] = {{{"port", F_PORT, false}}},
	[CTL_CMD_BRIDGE_STATS] = {{{"bridge", F_BRIDGE, false}}},
	[CTL_CMD_PMD_STATS] = {{{NULL, F_NONE, false}}},
	[CTL_CMD_CAPTURE] = {{{"port", F_PORT, true},
			      {"file", F_FILE, true},
			      {"count", F_COUNT, false},
			      {"timeout", F_TIMEOUT, false}}},
	[CTL_CMD_VERSION] = {{{NULL, F_NONE, false}}},
};

/* A scalar as a string (for options and tag/trunks given as numbers). */
static int scalar_str(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v)) {
		if (json_string_length(v) >= len)
			return -1;
		snprintf(buf, len, "%s", json_string_value(v));
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	if (json_is_boolean(v)) {
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
		return 0;
	}
	return -1;
}

/* Applies key=value to the request's port config or change set. */
static int apply_kv(struct ctl_request *req, const char *key, const char *value, char *err,
		    size_t errlen)
{
	if (req->cmd == CTL_CMD_ADD_PORT)
		return sw_port_config_set(&req->port_cfg, key, value, err, errlen);
	return sw_port_changes_set(&req->changes, key, value, err, errlen);
}

static int trunks_value(const json_t *v, char *buf, size_t len, char *err, size_t errlen)
{
	if (json_is_string(v))
		return scalar_str(v, buf, len) ? sw_fail(err, errlen, "'trunks' is too long") : 0;
	if (!json_is_array(v))
		return sw_fail(err, errlen, "'trunks' must be a string or an array of VLANs, not %s",
			    sw_json_kind(v));
	size_t i, o = 0;
	json_t *e;
	buf[0] = '\0';
	json_array_foreach(v, i, e) {
		if (!json_is_integer(e) || json_integer_value(e) < 0 ||
		    json_integer_value(e) > SW_VLAN_MAX)
			return sw_fail(err, errlen, "'trunks' must hold VLANs 0-4095");
		int n = snprintf(buf + o, len - o, "%s%lld", o ? "," : "",
				 (long long)json_integer_value(e));
		if (n < 0 || (size_t)n >= len - o)
			return sw_fail(err, errlen, "'trunks' is too long");
		o += (size_t)n;
	}
	return 0;
}

static int parse_field(struct ctl_request *req, const struct field_rule *fr, const json_t *v,
		       char *err, size_t errlen)
{
	char e[256], sb[64];
	const char *s = json_string_value(v);
	bool want_string = fr->kind == F_BRIDGE || fr->kind == F_PORT || fr->kind == F_FLOW ||
			   fr->kind == F_MATCH || fr->kind == F_FILE || fr->kind == F_TYPE ||
			   fr->kind == F_MAC;
	if (want_string && !s)
		return sw_fail(err, errlen, "'%s' must be a string, not %s", fr->name, sw_json_kind(v));

	switch (fr->kind) {
	case F_NONE:
		return 0;
	case F_BRIDGE:
		if (sw_name_check("bridge", s, err, errlen))
			return -1;
		snprintf(req->bridge, sizeof req->bridge, "%s", s);
		return 0;
	case F_PORT:
		if (sw_name_check("port", s, err, errlen))
			return -1;
		snprintf(req->port, sizeof req->port, "%s", s);
		snprintf(req->port_cfg.name, sizeof req->port_cfg.name, "%s", s);
		return 0;
	case F_FLOW: {
		uint16_t prio;
		char *text;
		if (sw_flow_text_parse(s, &prio, &text, err, errlen))
			return -1;
		free(text);
		req->flow = strdup(s);
		return req->flow ? 0 : sw_fail(err, errlen, "out of memory");
	}
	case F_MATCH:
		if (strlen(s) > SW_FLOW_TEXT_MAX)
			return sw_fail(err, errlen, "match is too long (max %d characters)", SW_FLOW_TEXT_MAX);
		for (const char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				return sw_fail(err, errlen, "match has a non-printable character");
		if (strstr(s, "actions="))
			return sw_fail(err, errlen, "a match has no actions= (del-flows BR [MATCH])");
		if (!*s)
			return 0;
		req->flow = strdup(s);
		return req->flow ? 0 : sw_fail(err, errlen, "out of memory");
	case F_FILE:
		if (s[0] != '/')
			return sw_fail(err, errlen, "'file' must be an absolute path, not '%s'",
				    sw_shown(s, sb, sizeof sb));
		if (strlen(s) >= sizeof req->file)
			return sw_fail(err, errlen, "'file' is too long");
		snprintf(req->file, sizeof req->file, "%s", s);
		return 0;
	case F_COUNT:
	case F_TIMEOUT: {
		if (!json_is_integer(v))
			return sw_fail(err, errlen, "'%s' must be an integer, not %s", fr->name, sw_json_kind(v));
		json_int_t x = json_integer_value(v);
		if (fr->kind == F_COUNT) {
			if (x < 0 || x > CTL_CAPTURE_MAX_COUNT)
				return sw_fail(err, errlen, "'count' must be 0-%u", CTL_CAPTURE_MAX_COUNT);
			req->count = (unsigned)x;
		} else {
			if (x < 1 || x > CTL_CAPTURE_MAX_TIMEOUT)
				return sw_fail(err, errlen, "'timeout' must be 1-%d seconds",
					    CTL_CAPTURE_MAX_TIMEOUT);
			req->timeout_s = (unsigned)x;
		}
		return 0;
	}
	case F_VLAN:
		if (!json_is_integer(v))
			return sw_fail(err, errlen, "'vlan' must be an integer, not %s", sw_json_kind(v));
		if (json_integer_value(v) < 0 || json_integer_value(v) > SW_VLAN_MAX)
			return sw_fail(err, errlen, "'vlan' must be 0-%d, not %lld", SW_VLAN_MAX,
				    (long long)json_integer_value(v));
		req->vlan = (uint16_t)json_integer_value(v);
		return 0;
	case F_MAC:
		return sw_mac_parse(s, req->mac, err, errlen);
	case F_TYPE:
		return apply_kv(req, "type", s, err, errlen);
	case F_TAG:
	case F_OFPORT: {
		char buf[32];
		if ((!json_is_string(v) && !json_is_integer(v)) || scalar_str(v, buf, sizeof buf))
			return sw_fail(err, errlen, "'%s' must be an integer", fr->name);
		return apply_kv(req, fr->name, buf, err, errlen);
	}
	case F_TRUNKS: {
		char buf[20000];
		if (trunks_value(v, buf, sizeof buf, err, errlen))
			return -1;
		return apply_kv(req, "trunks", buf, err, errlen);
	}
	case F_OPTIONS: {
		if (!json_is_object(v))
			return sw_fail(err, errlen, "'options' must be an object, not %s", sw_json_kind(v));
		const char *k;
		json_t *ov;
		json_object_foreach((json_t *)v, k, ov) {
			char buf[20000];
			if (!strcmp(k, "trunks")) {
				if (trunks_value(ov, buf, sizeof buf, err, errlen))
					return -1;
			} else if (scalar_str(ov, buf, sizeof buf)) {
				return sw_fail(err, errlen, "option %s must be a string, not %s",
					    sw_shown(k, sb, sizeof sb), sw_json_kind(ov));
			}
			if (apply_kv(req, k, buf, e, sizeof e))
				return sw_fail(err, errlen, "%s", e);
		}
		return 0;
	}
	}
	return 0;
}

static void request_init(struct ctl_request *req)
{
	memset(req, 0, sizeof *req);
	sw_port_changes_init(&req->changes);
}

int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen)
{
	char e[320], sb[64];
	request_init(req);
	if (len > CTL_MAX_REQUEST)
		return sw_fail(err, errlen, "request too large (%zu bytes; limit %u)", len, CTL_MAX_REQUEST);
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!j)
		return sw_fail(err, errlen, "malformed JSON request (column %d: %s)", je.column, je.text);
	int r = -1;
	if (!json_is_object(j)) {
		sw_fail(err, errlen, "request must be a JSON object, not %s", sw_json_kind(j));
		goto out;
	}
	json_t *jc = json_object_get(j, "cmd");
	if (!jc) {
		sw_fail(err, errlen, "missing field 'cmd'");
		goto out;
	}
	if (!json_is_string(jc)) {
		sw_fail(err, errlen, "'cmd' must be a string, not %s", sw_json_kind(jc));
		goto out;
	}
	req->cmd = ctl_cmd_lookup(json_string_value(jc));
	if (req->cmd == CTL_CMD_NONE) {
		sw_fail(err, errlen, "unknown command '%s'", sw_shown(json_string_value(jc), sb, sizeof sb));
		goto out;
	}
	const char *name = ctl_cmd_name(req->cmd);
	const struct cmd_rule *cr = &rules[req->cmd];

	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		if (!strcmp(k, "cmd"))
			continue;
		bool known = false;
		for (const struct field_rule *fr = cr->f; fr->name; fr++)
			if (!strcmp(fr->name, k))
				known = true;
		if (!known) {
			sw_fail(err, errlen, "%s: unknown field '%s'", name, sw_shown(k, sb, sizeof sb));
			goto out;
		}
	}
	/* in rule order, so type comes before options use it */
	for (const struct field_rule *fr = cr->f; fr->name; fr++) {
		json_t *fv = json_object_get(j, fr->name);
		if (!fv) {
			if (fr->required) {
				sw_fail(err, errlen, "%s: missing field '%s'", name, fr->name);
				goto out;
			}
			continue;
		}
		if (parse_field(req, fr, fv, e, sizeof e)) {
			sw_fail(err, errlen, "%s: %s", name, e);
			goto out;
		}
	}

	switch (req->cmd) {
	case CTL_CMD_ADD_PORT:
		if (!req->port_cfg.type[0]) {
			sw_fail(err, errlen, "add-port: missing type=");
			goto out;
		}
		if (sw_port_config_validate(&req->port_cfg, e, sizeof e)) {
			sw_fail(err, errlen, "add-port: %s", e);
			goto out;
		}
		break;
	case CTL_CMD_SET_PORT:
		if (!req->changes.set.n && !req->changes.set_tag && !req->changes.set_trunks) {
			sw_fail(err, errlen, "set-port: nothing to set (give key=value)");
			goto out;
		}
		if (req->changes.set_tag && req->changes.tag && req->changes.set_trunks &&
		    !sw_vlan_list_empty(req->changes.trunks)) {
			sw_fail(err, errlen, "set-port: tag and trunks are exclusive");
			goto out;
		}
		break;
	case CTL_CMD_CAPTURE:
		if (!req->timeout_s)
			req->timeout_s = CTL_CAPTURE_DEFAULT_TIMEOUT;
		break;
	case CTL_CMD_FDB_ADD:
		if (sw_fdb_static_check(req->vlan, req->mac, e, sizeof e)) {
			sw_fail(err, errlen, "fdb-add: %s", e);
			goto out;
		}
		break;
	default:
		break;
	}
	r = 0;
out:
	json_decref(j);
	return r;
}

void ctl_request_free(struct ctl_request *req)
{
	free(req->flow);
	req->flow = NULL;
}

/* ---- replies ---- */

struct ctl_reply {
	enum ctl_cmd cmd;
	json_t *obj;
	char *error;
	bool oom;
};

struct ctl_reply *ctl_reply_new(enum ctl_cmd cmd)
{
	struct ctl_reply *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cmd = cmd;
	r->obj = json_object();
	if (!r->obj) {
		free(r);
		return NULL;
	}
	json_object_set_new(r->obj, "ok", json_true());
	return r;
}

void ctl_reply_free(struct ctl_reply *r)
{
	if (!r)
		return;
	json_decref(r->obj);
	free(r->error);
	free(r);
}

enum ctl_cmd ctl_reply_cmd(const struct ctl_reply *r)
{
	return r->cmd;
}

void ctl_reply_error(struct ctl_reply *r, const char *fmt, ...)
{
	if (r->error)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&r->error, fmt, ap) < 0)
		r->error = NULL, r->oom = true;
	va_end(ap);
}

bool ctl_reply_failed(const struct ctl_reply *r)
{
	return r->error || r->oom;
}

static void set_new(struct ctl_reply *r, json_t *parent, const char *key, json_t *v)
{
	if (!v || json_object_set_new(parent, key, v))
		r->oom = true;
}

static void append_new(struct ctl_reply *r, json_t *arr, json_t *v)
{
	if (!v || !arr || json_array_append_new(arr, v))
		r->oom = true;
}

void ctl_reply_set_int(struct ctl_reply *r, const char *key, long long v)
{
	set_new(r, r->obj, key, json_integer(v));
}

void ctl_reply_set_str(struct ctl_reply *r, const char *key, const char *v)
{
	set_new(r, r->obj, key, json_string(v ? v : ""));
}

void ctl_reply_set_bool(struct ctl_reply *r, const char *key, bool v)
{
	set_new(r, r->obj, key, json_boolean(v));
}

json_t *ctl_reply_json(struct ctl_reply *r)
{
	return r->obj;
}

/* The top-level array key, created on first use. */
static json_t *top_array(struct ctl_reply *r, const char *key)
{
	json_t *a = json_object_get(r->obj, key);
	if (!a) {
		a = json_array();
		set_new(r, r->obj, key, a);
		a = json_object_get(r->obj, key);
	}
	return json_is_array(a) ? a : NULL;
}

/* The last element of a top-level array, or NULL. */
static json_t *last_of(struct ctl_reply *r, const char *key)
{
	json_t *a = json_object_get(r->obj, key);
	size_t n = json_array_size(a);
	return n ? json_array_get(a, n - 1) : NULL;
}

/* obj[key] as an array/object, created on first use. */
static json_t *child(struct ctl_reply *r, json_t *obj, const char *key, bool array)
{
	json_t *c = json_object_get(obj, key);
	if (!c) {
		set_new(r, obj, key, array ? json_array() : json_object());
		c = json_object_get(obj, key);
	}
	return c;
}

void ctl_reply_add_bridge(struct ctl_reply *r, const char *name)
{
	json_t *b = json_object();
	if (b) {
		set_new(r, b, "name", json_string(name));
		set_new(r, b, "ports", json_array());
	}
	append_new(r, top_array(r, "bridges"), b);
}

void ctl_reply_add_port(struct ctl_reply *r, const struct sw_port_config *p, const char *state)
{
	json_t *b = last_of(r, "bridges");
	if (!b) {
		r->oom = true; /* misuse: a port before a bridge */
		return;
	}
	json_t *jp = sw_port_config_to_json(p);
	if (jp) {
		if (!json_object_get(jp, "tag"))
			set_new(r, jp, "tag", json_integer(0));
		if (!json_object_get(jp, "trunks"))
			set_new(r, jp, "trunks", json_string(""));
		set_new(r, jp, "state", json_string(state ? state : ""));
	}
	append_new(r, child(r, b, "ports", true), jp);
}

void ctl_reply_show_config(struct ctl_reply *r, const struct sw_config *c,
			   const char *(*state)(void *arg, const struct sw_port_config *p),
			   void *arg)
{
	top_array(r, "bridges");
	for (unsigned i = 0; i < c->nbridges; i++) {
		ctl_reply_add_bridge(r, c->bridges[i].name);
		for (unsigned j = 0; j < c->bridges[i].nports; j++) {
			const struct sw_port_config *p = &c->bridges[i].ports[j];
			ctl_reply_add_port(r, p, state ? state(arg, p) : NULL);
		}
	}
}

void ctl_reply_add_port_name(struct ctl_reply *r, const char *name)
{
	append_new(r, top_array(r, "ports"), json_string(name));
}

void ctl_reply_add_fdb(struct ctl_reply *r, const char *port, uint16_t ofport, uint16_t vlan,
		       const uint8_t mac[6], unsigned age_s, bool is_static)
{
	char m[18];
	snprintf(m, sizeof m, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
	json_t *e = json_object();
	if (e) {
		set_new(r, e, "port", json_string(port ? port : ""));
		set_new(r, e, "ofport", json_integer(ofport));
		set_new(r, e, "vlan", json_integer(vlan));
		set_new(r, e, "mac", json_string(m));
		set_new(r, e, "age", json_integer(age_s));
		set_new(r, e, "static", json_boolean(is_static));
	}
	append_new(r, top_array(r, "entries"), e);
}

void ctl_reply_add_flow(struct ctl_reply *r, uint16_t priority, const char *text,
			uint64_t n_packets, uint64_t n_bytes)
{
	json_t *f = json_object();
	if (f) {
		set_new(r, f, "priority", json_integer(priority));
		set_new(r, f, "text", json_string(text ? text : ""));
		set_new(r, f, "n_packets", json_integer((json_int_t)n_packets));
		set_new(r, f, "n_bytes", json_integer((json_int_t)n_bytes));
	}
	append_new(r, top_array(r, "flows"), f);
}

static void put_counters(struct ctl_reply *r, json_t *o, const struct ctl_counters *c)
{
	set_new(r, o, "rx_packets", json_integer((json_int_t)c->rx_packets));
	set_new(r, o, "rx_bytes", json_integer((json_int_t)c->rx_bytes));
	set_new(r, o, "rx_dropped", json_integer((json_int_t)c->rx_dropped));
	set_new(r, o, "tx_packets", json_integer((json_int_t)c->tx_packets));
	set_new(r, o, "tx_bytes", json_integer((json_int_t)c->tx_bytes));
	set_new(r, o, "tx_dropped", json_integer((json_int_t)c->tx_dropped));
	set_new(r, o, "errors", json_integer((json_int_t)c->errors));
}

void ctl_reply_add_port_stats(struct ctl_reply *r, const char *name, const char *bridge,
			      const struct ctl_counters *total)
{
	json_t *p = json_object();
	if (p) {
		set_new(r, p, "name", json_string(name));
		if (bridge)
			set_new(r, p, "bridge", json_string(bridge));
		put_counters(r, p, total);
		set_new(r, p, "drops", json_object());
		set_new(r, p, "queues", json_array());
	}
	append_new(r, top_array(r, "ports"), p);
}

void ctl_reply_add_queue_stats(struct ctl_reply *r, unsigned queue, const struct ctl_counters *c)
{
	json_t *p = last_of(r, "ports");
	if (!json_is_object(p)) {
		r->oom = true;
		return;
	}
	json_t *q = json_object();
	if (q) {
		set_new(r, q, "queue", json_integer(queue));
		put_counters(r, q, c);
	}
	append_new(r, child(r, p, "queues", true), q);
}

void ctl_reply_add_drop_reason(struct ctl_reply *r, const char *reason, uint64_t count)
{
	json_t *p = last_of(r, r->cmd == CTL_CMD_BRIDGE_STATS ? "bridges" : "ports");
	if (!json_is_object(p)) {
		r->oom = true;
		return;
	}
	set_new(r, child(r, p, "drops", false), reason, json_integer((json_int_t)count));
}

void ctl_reply_add_pmd_stats(struct ctl_reply *r, const struct ctl_pmd_counters *c)
{
	json_t *o = json_object();
	if (!o) {
		r->oom = true;
		return;
	}
	set_new(r, o, "pmd", json_integer(c->pmd));
	set_new(r, o, "cpu", json_integer(c->cpu));
	set_new(r, o, "rx_queues", json_integer(c->rx_queues));
	set_new(r, o, "packets", json_integer((json_int_t)c->packets));
	set_new(r, o, "loops", json_integer((json_int_t)c->loops));
	set_new(r, o, "busy_loops", json_integer((json_int_t)c->busy_loops));
	set_new(r, o, "sleeps", json_integer((json_int_t)c->sleeps));
	set_new(r, o, "busy_cycles", json_integer((json_int_t)c->busy_cycles));
	set_new(r, o, "idle_cycles", json_integer((json_int_t)c->idle_cycles));
	set_new(r, o, "cycles_per_packet",
		json_real(c->packets ? (double)c->busy_cycles / (double)c->packets : 0.0));
	set_new(r, o, "tsc_hz", json_integer((json_int_t)c->tsc_hz));
	append_new(r, top_array(r, "pmds"), o);
}

void ctl_reply_add_bridge_stats(struct ctl_reply *r, const char *name,
				const struct ctl_bridge_counters *c)
{
	json_t *b = json_object(), *fdb = json_object();
	if (!b || !fdb) {
		json_decref(b);
		json_decref(fdb);
		r->oom = true;
		return;
	}
	set_new(r, b, "name", json_string(name));
	set_new(r, b, "rx_packets", json_integer((json_int_t)c->rx_packets));
	set_new(r, b, "rx_bytes", json_integer((json_int_t)c->rx_bytes));
	set_new(r, b, "drops", json_object());
	set_new(r, fdb, "entries", json_integer((json_int_t)c->fdb_entries));
	set_new(r, fdb, "static", json_integer((json_int_t)c->fdb_static));
	set_new(r, fdb, "learned", json_integer((json_int_t)c->fdb_learned));
	set_new(r, fdb, "moves", json_integer((json_int_t)c->fdb_moves));
	set_new(r, fdb, "evicted", json_integer((json_int_t)c->fdb_evicted));
	set_new(r, fdb, "aged", json_integer((json_int_t)c->fdb_aged));
	set_new(r, fdb, "refused", json_integer((json_int_t)c->fdb_refused));
	set_new(r, b, "fdb", fdb);
	set_new(r, b, "flows", json_integer((json_int_t)c->flows));
	append_new(r, top_array(r, "bridges"), b);
}

void ctl_reply_capture(struct ctl_reply *r, const char *file, uint64_t captured, bool timed_out)
{
	set_new(r, r->obj, "file", json_string(file ? file : ""));
	set_new(r, r->obj, "captured", json_integer((json_int_t)captured));
	set_new(r, r->obj, "timed_out", json_boolean(timed_out));
}

static char *error_line(const char *msg)
{
	json_t *j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	char *line = NULL;
	if (asprintf(&line, "%s\n", s ? s : "{\"ok\":false,\"error\":\"out of memory\"}") < 0)
		line = NULL;
	free(s);
	return line;
}

char *ctl_reply_finish(struct ctl_reply *r)
{
	char *line;
	if (!r)
		return error_line("out of memory");
	if (r->error || r->oom) {
		line = error_line(r->error ? r->error : "out of memory building the response");
	} else {
		char *s = json_dumps(r->obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!s || asprintf(&line, "%s\n", s) < 0)
			line = error_line("out of memory building the response");
		free(s);
	}
	ctl_reply_free(r);
	return line;
}

/* ---- dispatch ---- */

static int call(struct ctl_ops *ops, void *arg, const struct ctl_request *q, struct ctl_reply *r)
{
	const char *b = q->bridge[0] ? q->bridge : NULL;
	const char *p = q->port[0] ? q->port : NULL;
#define CALL(fn, ...) (ops->fn ? ops->fn(arg, __VA_ARGS__) : -2)
	switch (q->cmd) {
	case CTL_CMD_ADD_BR: return CALL(add_br, b, r);
	case CTL_CMD_DEL_BR: return CALL(del_br, b, r);
	case CTL_CMD_ADD_PORT: return CALL(add_port, b, &q->port_cfg, r);
	case CTL_CMD_DEL_PORT: return CALL(del_port, b, p, r);
	case CTL_CMD_SET_PORT: return CALL(set_port, p, &q->changes, r);
	case CTL_CMD_SHOW:
		top_array(r, "bridges");
		return ops->show ? ops->show(arg, r) : -2;
	case CTL_CMD_LIST_PORTS:
		top_array(r, "ports");
		return CALL(list_ports, b, r);
	case CTL_CMD_FDB_SHOW:
		top_array(r, "entries");
		return CALL(fdb_show, b, r);
	case CTL_CMD_FDB_FLUSH: return CALL(fdb_flush, b, r);
	case CTL_CMD_FDB_ADD: return CALL(fdb_add, b, p, q->vlan, q->mac, r);
	case CTL_CMD_FDB_DEL: return CALL(fdb_del, b, q->vlan, q->mac, r);
	case CTL_CMD_ADD_FLOW: return CALL(add_flow, b, q->flow, r);
	case CTL_CMD_DEL_FLOWS: return CALL(del_flows, b, q->flow, r);
	case CTL_CMD_DUMP_FLOWS:
		top_array(r, "flows");
		return CALL(dump_flows, b, r);
	case CTL_CMD_PORT_STATS:
		top_array(r, "ports");
		return CALL(port_stats, p, r);
	case CTL_CMD_BRIDGE_STATS:
		top_array(r, "bridges");
		return CALL(bridge_stats, b, r);
	case CTL_CMD_PMD_STATS:
		top_array(r, "pmds");
		return CALL(pmd_stats, r);
	case CTL_CMD_CAPTURE: return CALL(capture, p, q->count, q->file, q->timeout_s, r);
	case CTL_CMD_VERSION:
		ctl_reply_set_str(r, "version", VNET_VERSION);
		ctl_reply_set_int(r, "protocol", CTL_PROTO_VERSION);
		return ops->version ? ops->version(arg, r) : 0;
	case CTL_CMD_NONE:
	case CTL_CMD__COUNT:
		break;
	}
#undef CALL
	return -1;
}

int ctl_handle_request(const char *line, struct ctl_ops *ops, void *arg, char **response)
{
	char err[512];
	*response = NULL;
	size_t len = strnlen(line, CTL_MAX_REQUEST + 2);
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r') && len <= CTL_MAX_REQUEST + 1)
		len--;
	if (len > CTL_MAX_REQUEST) {
		snprintf(err, sizeof err, "request too large (more than %u bytes)", CTL_MAX_REQUEST);
		*response = error_line(err);
		return 0;
	}
	struct ctl_request *q = malloc(sizeof *q);
	if (!q) {
		*response = error_line("out of memory");
		return 0;
	}
	if (ctl_parse_request(line, len, q, err, sizeof err)) {
		ctl_request_free(q);
		free(q);
		*response = error_line(err);
		return 0;
	}
	struct ctl_reply *r = ctl_reply_new(q->cmd);
	if (!r) {
		ctl_request_free(q);
		free(q);
		*response = error_line("out of memory");
		return 0;
	}
	int rc = call(ops, arg, q, r);
	if (rc == CTL_ASYNC) {
		ctl_request_free(q);
		free(q);
		return CTL_ASYNC;
	}
	if (rc == -2)
		ctl_reply_error(r, "%s: not supported by this daemon", ctl_cmd_name(q->cmd));
	else if (rc < 0 && !ctl_reply_failed(r))
		ctl_reply_error(r, "%s: internal error", ctl_cmd_name(q->cmd));
	ctl_request_free(q);
	free(q);
	*response = ctl_reply_finish(r);
	return 0;
}

/* ---- serving (line I/O itself: ctl_io.c) ---- */

void ctl_serve_connection(int fd, struct ctl_ops *ops, void *arg)
{
	struct ctl_conn c;
	ctl_conn_init(&c, fd);
	for (;;) {
		char err[256], *line, *resp;
		int r = ctl_conn_read_line(&c, CTL_MAX_REQUEST, CTL_READ_TIMEOUT_MS, &line, err,
					   sizeof err);
		if (r == 0)
			break;
		if (r < 0) {
			/* an idle connection just closes; a broken request gets told */
			if (c.len || strstr(err, "too large")) {
				resp = error_line(err);
				if (resp)
					ctl_write_all(fd, resp, strlen(resp));
				free(resp);
			}
			break;
		}
		if (!line[strspn(line, " \t\r")]) {
			free(line);
			continue;
		}
		int hr = ctl_handle_request(line, ops, arg, &resp);
		free(line);
		if (hr == CTL_ASYNC) /* not allowed here: see ctl_proto.h */
			break;
		int w = resp ? ctl_write_all(fd, resp, strlen(resp)) : -1;
		free(resp);
		if (w < 0)
			break;
	}
	ctl_conn_release(&c);
}
