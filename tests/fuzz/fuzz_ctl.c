/*
 * fuzz_ctl.c — libFuzzer target for vnet-switchd's control plane as a
 * local user (vnetctl) or a damaged disk can drive it:
 *   - the persisted state file: src/switch/persist.c (sw_persist_load of a
 *     real file, corrupt files moved aside) and config.c's JSON loader;
 *   - control-socket requests, one JSON line each, through the real parser
 *     and dispatcher (ctl_handle_request in src/switch/ctl_proto.c) into
 *     callbacks that change a configuration (config.c, config_fdb.c) and,
 *     for flows and static FDB entries, the same runtime objects the daemon
 *     keeps (src/switch/flow.c tables, src/switch/fdb.c). The callbacks
 *     here mirror vnet-switchd's (src/switch/switchd.c, not linkable: it
 *     holds main()) minus the ports' I/O: a port "opens" when its ofport
 *     fits the data plane, as port_create checks.
 *
 * Oracles, after every request: the response is one line of a JSON object
 * with a boolean "ok" (and a non-empty "error" when false); a refused
 * request changed nothing; the configuration validates; its state file
 * parses back to the same configuration; restarting from it (flows and
 * static entries replayed in order, as apply_config does) rebuilds exactly
 * the running flow tables and static FDB entries; every flow the daemon
 * accepts formats back to text that parses to the same flow. At the end the
 * configuration is saved atomically and loaded back unchanged.
 *
 * Input: text. If it starts with "state:", everything up to a line "--"
 * is a state file, loaded first (the running switch starts from it). The
 * rest is request lines. See gen-corpus.py and corpus/ctl.dict.
 * Single-threaded; the runtime objects are rebuilt for every input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "switch/config.h"
#include "switch/ctl_proto.h"
#include "switch/fdb.h"
#include "switch/flow.h"
#include "switch/forward.h"
#include "switch/persist.h"
#include "vnet/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond) FUZZ_CHECK("fuzz_ctl", cond)

#define DATA_PLANE_PORTS SW_BRIDGE_MAX_PORTS /* ofports the daemon can run */
#define MAX_REQUESTS 64

/* A bridge as the daemon runs it: its flow table and FDB. */
struct rt_bridge {
	char name[SW_NAME_MAX + 1];
	struct sw_flow_table *flows;
	struct sw_fdb *fdb;
};

static struct {
	struct sw_rcu rcu; /* no reader registers: the harness is single-threaded */
	struct sw_config *cfg;
	struct rt_bridge br[SW_CONFIG_MAX_BRIDGES];
	unsigned nbr;
	char dir[64];   /* private directory for state files */
	char path[96];
	bool ready;
} S;

static bool trace; /* FUZZ_CTL_TRACE=1: print requests and responses */

/* ---- the runtime, as vnet-switchd builds it ---- */

static struct rt_bridge *rt_find(const char *name)
{
	for (unsigned i = 0; i < S.nbr; i++)
		if (!strcmp(S.br[i].name, name))
			return &S.br[i];
	return NULL;
}

static void rt_free(struct rt_bridge *b)
{
	sw_flow_table_destroy(b->flows);
	sw_fdb_destroy(b->fdb);
}

static struct rt_bridge *rt_create(struct rt_bridge *b, const char *name)
{
	snprintf(b->name, sizeof(b->name), "%s", name);
	/* A small FDB: an input holds far fewer static entries than this, and
	 * the default table (8192 entries) would cost more than the request. */
	struct sw_fdb_config fc = {.max_entries = 512};
	b->flows = sw_flow_table_create(&S.rcu, 0);
	b->fdb = sw_fdb_create(&fc);
	CHECK(b->flows && b->fdb);
	return b;
}

static void rt_clear(void)
{
	for (unsigned i = 0; i < S.nbr; i++)
		rt_free(&S.br[i]);
	S.nbr = 0;
	sw_rcu_synchronize(&S.rcu);
}

/* apply_config(): static entries, then flows in configuration order. */
static void replay_bridge(const struct sw_config *c, const struct sw_bridge_config *bc,
			  struct rt_bridge *b)
{
	rt_create(b, bc->name);
	for (unsigned j = 0; j < bc->nfdb; j++) {
		const struct sw_fdb_static_config *f = &bc->fdb[j];
		const struct sw_port_config *pc = sw_config_port(c, f->port, NULL);
		if (pc)
			(void)sw_fdb_add_static(b->fdb, f->vlan, f->mac, pc->ofport);
	}
	for (unsigned j = 0; j < bc->nflows; j++) {
		char text[SW_FLOW_TEXT_MAX + 32];
		snprintf(text, sizeof(text), "priority=%u,%s", bc->flows[j].priority,
			 bc->flows[j].text);
		struct sw_flow_spec spec;
		char err[256];
		if (sw_flow_spec_parse(text, SW_PARSE_FLOW, &spec, err, sizeof(err)) == 0)
			CHECK(sw_flow_table_add(b->flows, &spec, NULL) == 0);
	}
}

/* ---- comparing runtimes ---- */

struct flow_list {
	unsigned n;
	struct {
		uint16_t priority;
		struct sw_match match;
		unsigned n_actions;
		struct sw_action actions[SW_FLOW_MAX_ACTIONS];
	} f[256];
	bool overflow;
};

static void collect_flow(const struct sw_flow *f, void *arg)
{
	struct flow_list *l = arg;
	if (l->n == sizeof(l->f) / sizeof(l->f[0])) {
		l->overflow = true;
		return;
	}
	l->f[l->n].priority = f->priority;
	l->f[l->n].match = f->match;
	l->f[l->n].n_actions = f->n_actions;
	memcpy(l->f[l->n].actions, f->actions, sizeof(f->actions));
	l->n++;
}

static bool same_flows(struct sw_flow_table *a, struct sw_flow_table *b)
{
	static struct flow_list la, lb;
	la.n = lb.n = 0;
	la.overflow = lb.overflow = false;
	sw_flow_table_foreach(a, NULL, collect_flow, &la);
	sw_flow_table_foreach(b, NULL, collect_flow, &lb);
	if (la.overflow || lb.overflow)
		return la.n == lb.n;
	if (la.n != lb.n)
		return false;
	for (unsigned i = 0; i < la.n; i++)
		if (la.f[i].priority != lb.f[i].priority ||
		    !sw_match_equal(&la.f[i].match, &lb.f[i].match) ||
		    la.f[i].n_actions != lb.f[i].n_actions ||
		    memcmp(la.f[i].actions, lb.f[i].actions,
			   la.f[i].n_actions * sizeof(la.f[i].actions[0])))
			return false;
	return true;
}

struct fdb_list {
	unsigned n;
	struct sw_fdb_entry_info e[64];
};

static void collect_static(const struct sw_fdb_entry_info *e, void *arg)
{
	struct fdb_list *l = arg;
	if (e->is_static && l->n < sizeof(l->e) / sizeof(l->e[0]))
		l->e[l->n++] = *e;
}

static bool fdb_has(const struct fdb_list *l, const struct sw_fdb_entry_info *e)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->e[i].port == e->port && l->e[i].vlan == e->vlan &&
		    !memcmp(l->e[i].mac, e->mac, 6))
			return true;
	return false;
}

static bool same_static_fdb(struct sw_fdb *a, struct sw_fdb *b)
{
	static struct fdb_list la, lb;
	la.n = lb.n = 0;
	sw_fdb_foreach(a, 0, collect_static, &la);
	sw_fdb_foreach(b, 0, collect_static, &lb);
	if (la.n != lb.n)
		return false;
	for (unsigned i = 0; i < la.n; i++)
		if (!fdb_has(&lb, &la.e[i]))
			return false;
	return true;
}

/* ---- oracles ---- */

static char *config_text(const struct sw_config *c)
{
	char *s = sw_config_to_string(c);
	CHECK(s);
	return s;
}

/* The state file holds the configuration: parse(save(c)) == c. */
static void check_round_trip(const char *text)
{
	struct sw_config *back = NULL;
	char err[512];
	if (sw_config_from_string(text, strlen(text), &back, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_ctl: own state file refused: %s\n%s", err, text);
		CHECK(!"the saved configuration loads back");
	}
	char *again = config_text(back);
	CHECK(!strcmp(text, again));
	free(again);
	sw_config_free(back);
}

/* A restart from the configuration rebuilds the running switch. */
static void check_restart(void)
{
	CHECK(S.nbr == S.cfg->nbridges);
	for (unsigned i = 0; i < S.cfg->nbridges; i++) {
		const struct sw_bridge_config *bc = &S.cfg->bridges[i];
		struct rt_bridge *run = rt_find(bc->name), fresh;
		CHECK(run);
		replay_bridge(S.cfg, bc, &fresh);
		if (!same_flows(run->flows, fresh.flows)) {
			fprintf(stderr, "fuzz_ctl: bridge %s: flows after a restart differ from the "
				"running ones\n", bc->name);
			CHECK(!"restart reproduces the flow table");
		}
		CHECK(same_static_fdb(run->fdb, fresh.fdb));
		rt_free(&fresh);
	}
	sw_rcu_synchronize(&S.rcu);
}

/* Every accepted flow prints back to text that parses to the same flow. */
static void check_flow_format(const char *text, enum sw_flow_parse_mode mode)
{
	struct sw_flow_spec a, b;
	char err[256], buf[2048];
	if (sw_flow_spec_parse(text, mode, &a, err, sizeof(err)) != 0) {
		CHECK(err[0]);
		return;
	}
	if (mode == SW_PARSE_MATCH) {
		size_t n = sw_match_format(&a.match, a.priority, buf, sizeof(buf));
		CHECK(n < sizeof(buf));
	} else {
		size_t n = sw_flow_spec_format(&a, buf, sizeof(buf));
		CHECK(n < sizeof(buf));
	}
	if (sw_flow_spec_parse(buf, mode, &b, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_ctl: '%s' formats as '%s', which is refused: %s\n", text, buf,
			err);
		CHECK(!"a formatted flow parses");
	}
	CHECK(sw_match_equal(&a.match, &b.match) && a.priority == b.priority);
	if (mode == SW_PARSE_FLOW)
		CHECK(a.n_actions == b.n_actions &&
		      !memcmp(a.actions, b.actions, a.n_actions * sizeof(a.actions[0])));
}

static void check_response(const char *resp, bool *ok)
{
	size_t n = strlen(resp);
	CHECK(n >= 2 && resp[n - 1] == '\n' && !memchr(resp, '\n', n - 1));
	json_error_t je;
	json_t *j = json_loads(resp, 0, &je);
	CHECK(j && json_is_object(j));
	json_t *jok = json_object_get(j, "ok");
	CHECK(jok && json_is_boolean(jok));
	*ok = json_is_true(jok);
	if (!*ok) {
		json_t *e = json_object_get(j, "error");
		CHECK(json_is_string(e) && json_string_length(e) > 0);
	}
	json_decref(j);
}

/* ---- the daemon's callbacks (vnet-switchd's, without port I/O) ---- */

#define BEGIN()                                                  \
	char err[256] = "";                                      \
	struct sw_config *next = sw_config_dup(S.cfg);           \
	CHECK(next)

static int refuse(struct sw_config *next, struct ctl_reply *r, const char *err)
{
	sw_config_free(next);
	ctl_reply_error(r, "%s", err);
	return -1;
}

static int commit(struct sw_config *next)
{
	sw_config_free(S.cfg);
	S.cfg = next;
	return 0;
}

static int op_add_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_add_bridge(next, bridge, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	CHECK(S.nbr < SW_CONFIG_MAX_BRIDGES && !rt_find(bridge));
	rt_create(&S.br[S.nbr++], bridge);
	return commit(next);
}

static int op_del_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_del_bridge(next, bridge, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	struct rt_bridge *b = rt_find(bridge);
	CHECK(b);
	rt_free(b);
	*b = S.br[--S.nbr];
	sw_rcu_synchronize(&S.rcu);
	return commit(next);
}

static int op_add_port(void *arg, const char *bridge, const struct sw_port_config *port,
		       struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	uint16_t ofport;
	if (sw_config_add_port(next, bridge, port, &ofport, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	CHECK(ofport >= 1 && ofport <= SW_OFPORT_MAX);
	CHECK(sw_config_port(next, port->name, NULL)->ofport == ofport);
	if (ofport >= DATA_PLANE_PORTS) {
		snprintf(err, sizeof(err), "port %s: ofport %u beyond this switch's %u ports",
			 port->name, ofport, DATA_PLANE_PORTS - 1);
		return refuse(next, r, err);
	}
	ctl_reply_set_int(r, "ofport", ofport);
	return commit(next);
}

static int op_del_port(void *arg, const char *bridge, const char *port, struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_del_port(next, bridge, port, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	struct sw_bridge_config *bc = NULL;
	const struct sw_port_config *old = sw_config_port(S.cfg, port, &bc);
	CHECK(old && bc);
	struct rt_bridge *b = rt_find(bc->name);
	CHECK(b);
	sw_fdb_flush(b->fdb, old->ofport, true);
	return commit(next);
}

static int op_set_port(void *arg, const char *port, const struct sw_port_changes *ch,
		       struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_set_port(next, port, ch, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	return commit(next);
}

static const char *port_state(void *arg, const struct sw_port_config *p)
{
	(void)arg;
	return p->ofport & 1 ? "up" : NULL;
}

static int op_show(void *arg, struct ctl_reply *r)
{
	(void)arg;
	ctl_reply_show_config(r, S.cfg, port_state, NULL);
	return 0;
}

static int op_list_ports(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	struct sw_bridge_config *bc = sw_config_bridge(S.cfg, bridge);
	if (!bc) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	for (unsigned i = 0; i < bc->nports; i++)
		ctl_reply_add_port_name(r, bc->ports[i].name);
	return 0;
}

struct fdb_walk {
	struct ctl_reply *r;
	const struct sw_bridge_config *bc;
};

static void fdb_entry(const struct sw_fdb_entry_info *e, void *arg)
{
	struct fdb_walk *w = arg;
	const struct sw_port_config *p = sw_bridge_port_by_ofport(w->bc, e->port);
	ctl_reply_add_fdb(w->r, p ? p->name : NULL, e->port, e->vlan, e->mac, e->age_s,
			  e->is_static);
}

static int op_fdb_show(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	struct rt_bridge *b = rt_find(bridge);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	struct fdb_walk w = {r, sw_config_bridge(S.cfg, bridge)};
	CHECK(w.bc);
	sw_fdb_foreach(b->fdb, 0, fdb_entry, &w);
	return 0;
}

static int op_fdb_flush(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	struct rt_bridge *b = rt_find(bridge);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	ctl_reply_set_int(r, "flushed", sw_fdb_flush(b->fdb, 0, false));
	return 0;
}

static int op_fdb_add(void *arg, const char *bridge, const char *port, uint16_t vlan,
		      const uint8_t mac[6], struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_add_fdb(next, bridge, port, vlan, mac, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	struct rt_bridge *b = rt_find(bridge);
	const struct sw_port_config *pc = sw_config_port(next, port, NULL);
	CHECK(b && pc);
	if (sw_fdb_add_static(b->fdb, vlan, mac, pc->ofport) < 0)
		return refuse(next, r, "cannot add the entry to the FDB");
	return commit(next);
}

static int op_fdb_del(void *arg, const char *bridge, uint16_t vlan, const uint8_t mac[6],
		      struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	if (sw_config_del_fdb(next, bridge, vlan, mac, NULL, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	struct rt_bridge *b = rt_find(bridge);
	CHECK(b);
	sw_fdb_del(b->fdb, vlan, mac);
	return commit(next);
}

static int op_add_flow(void *arg, const char *bridge, const char *flow, struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	check_flow_format(flow, SW_PARSE_FLOW);
	struct sw_flow_spec spec;
	if (sw_flow_spec_parse(flow, SW_PARSE_FLOW, &spec, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	if (sw_config_add_flow(next, bridge, flow, err, sizeof(err)) < 0)
		return refuse(next, r, err);
	struct rt_bridge *b = rt_find(bridge);
	CHECK(b);
	int e = sw_flow_table_add(b->flows, &spec, NULL);
	if (e < 0)
		return refuse(next, r, e == -ENOSPC ? "flow table full" : strerror(-e));
	return commit(next);
}

static bool flow_covered(const struct sw_flow_config *f, void *arg)
{
	const struct sw_match *general = arg;
	struct sw_flow_spec spec;
	char err[128], text[SW_FLOW_TEXT_MAX + 32];
	snprintf(text, sizeof(text), "priority=%u,%s", f->priority, f->text);
	if (sw_flow_spec_parse(text, SW_PARSE_FLOW, &spec, err, sizeof(err)) < 0)
		return false;
	return !general || sw_match_covers(general, &spec.match);
}

static int op_del_flows(void *arg, const char *bridge, const char *match, struct ctl_reply *r)
{
	(void)arg;
	BEGIN();
	struct sw_flow_spec spec;
	if (match) {
		check_flow_format(match, SW_PARSE_MATCH);
		if (sw_flow_spec_parse(match, SW_PARSE_MATCH, &spec, err, sizeof(err)) < 0)
			return refuse(next, r, err);
	}
	unsigned n;
	if (sw_config_del_flows_if(next, bridge, flow_covered, match ? &spec.match : NULL, &n, err,
				   sizeof(err)) < 0)
		return refuse(next, r, err);
	struct rt_bridge *b = rt_find(bridge);
	CHECK(b);
	ctl_reply_set_int(r, "deleted", sw_flow_table_del(b->flows, match ? &spec.match : NULL,
							  false, 0));
	return commit(next);
}

static void flow_entry(const struct sw_flow *f, void *arg)
{
	char match[512], actions[256], text[800];
	sw_match_format(&f->match, SW_FLOW_DEFAULT_PRIORITY, match, sizeof(match));
	sw_actions_format(f->actions, f->n_actions, actions, sizeof(actions));
	snprintf(text, sizeof(text), "%s%sactions=%s", match, match[0] ? "," : "", actions);
	check_flow_format(text, SW_PARSE_FLOW); /* what dump-flows prints can be added back */
	ctl_reply_add_flow(arg, f->priority, text, 0, 0);
}

static int op_dump_flows(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	struct rt_bridge *b = rt_find(bridge);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	sw_flow_table_foreach(b->flows, NULL, flow_entry, r);
	return 0;
}

static void one_port_stats(struct ctl_reply *r, const struct sw_port_config *p,
			   const char *bridge)
{
	struct ctl_counters c = {.rx_packets = p->ofport, .errors = p->tag};
	ctl_reply_add_port_stats(r, p->name, bridge, &c);
	ctl_reply_add_queue_stats(r, 0, &c);
	ctl_reply_add_drop_reason(r, "vlan", p->ofport);
}

static int op_port_stats(void *arg, const char *port, struct ctl_reply *r)
{
	(void)arg;
	for (unsigned i = 0; i < S.cfg->nbridges; i++) {
		const struct sw_bridge_config *bc = &S.cfg->bridges[i];
		for (unsigned j = 0; j < bc->nports; j++)
			if (!port || !strcmp(port, bc->ports[j].name))
				one_port_stats(r, &bc->ports[j], bc->name);
	}
	if (port && !sw_config_port(S.cfg, port, NULL)) {
		ctl_reply_error(r, "no port %s", port);
		return -1;
	}
	return 0;
}

static int op_bridge_stats(void *arg, const char *bridge, struct ctl_reply *r)
{
	(void)arg;
	if (bridge && !rt_find(bridge)) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	for (unsigned i = 0; i < S.nbr; i++) {
		if (bridge && strcmp(bridge, S.br[i].name))
			continue;
		struct sw_fdb_stats st;
		sw_fdb_get_stats(S.br[i].fdb, &st);
		struct ctl_bridge_counters c = {
			.fdb_entries = sw_fdb_count(S.br[i].fdb),
			.fdb_learned = st.learned,
			.flows = sw_flow_table_count(S.br[i].flows),
		};
		ctl_reply_add_bridge_stats(r, S.br[i].name, &c);
		ctl_reply_add_drop_reason(r, "malformed", 0);
	}
	return 0;
}

static int op_pmd_stats(void *arg, struct ctl_reply *r)
{
	(void)arg;
	struct ctl_pmd_counters c = {.pmd = 0, .cpu = -1, .packets = 1, .busy_cycles = 3};
	ctl_reply_add_pmd_stats(r, &c);
	return 0;
}

static struct ctl_ops OPS = {
	.add_br = op_add_br, .del_br = op_del_br, .add_port = op_add_port,
	.del_port = op_del_port, .set_port = op_set_port, .show = op_show,
	.list_ports = op_list_ports, .fdb_show = op_fdb_show, .fdb_flush = op_fdb_flush,
	.fdb_add = op_fdb_add, .fdb_del = op_fdb_del, .add_flow = op_add_flow,
	.del_flows = op_del_flows, .dump_flows = op_dump_flows, .port_stats = op_port_stats,
	.bridge_stats = op_bridge_stats, .pmd_stats = op_pmd_stats,
	/* capture needs a running port: "not supported" here; version: default */
};

/* ---- state files ---- */

static void clean_dir(void)
{
	DIR *d = opendir(S.dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(buf, 1, len, f) == len || len == 0);
	CHECK(fclose(f) == 0);
}

/* The state file as the daemon reads it at start: the file loader and the
 * in-memory parser must agree, and a refused file is moved aside. */
static struct sw_config *load_state(const char *buf, size_t len)
{
	write_file(S.path, buf, len);
	struct sw_config *c = NULL, *direct = NULL;
	char err[1024], err2[512];
	int r = sw_persist_load(S.path, &c, err, sizeof(err));
	bool blank = true;
	for (size_t i = 0; i < len; i++)
		blank &= buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r';
	int d = blank ? 0 : sw_config_from_string(buf, len, &direct, err2, sizeof(err2));
	if (r == SW_PERSIST_OK) {
		CHECK(c && d == 0);
		char *a = config_text(c);
		if (direct) {
			char *b = config_text(direct);
			CHECK(!strcmp(a, b));
			free(b);
		}
		CHECK(sw_config_validate(c, err, sizeof(err)) == 0);
		check_round_trip(a);
		free(a);
		CHECK(access(S.path, F_OK) == 0); /* a good file stays where it is */
	} else {
		CHECK(r == SW_PERSIST_CORRUPT && !c && d != 0);
		CHECK(strstr(err, "moved aside") && access(S.path, F_OK) != 0);
		c = sw_config_new();
		CHECK(c);
	}
	sw_config_free(direct);
	clean_dir();
	return c;
}

static void save_and_reload(void)
{
	char err[512];
	CHECK(sw_persist_save(S.path, S.cfg, err, sizeof(err)) == SW_PERSIST_OK);
	struct sw_config *back = NULL;
	CHECK(sw_persist_load(S.path, &back, err, sizeof(err)) == SW_PERSIST_OK);
	char *a = config_text(S.cfg), *b = config_text(back);
	CHECK(!strcmp(a, b));
	free(a);
	free(b);
	sw_config_free(back);
	clean_dir();
}

/* ---- driver ---- */

/* `before` is the configuration's text before the request; returns it after. */
static char *run_request(const char *line, char *before)
{
	char *resp = NULL;
	CHECK(ctl_handle_request(line, &OPS, NULL, &resp) == 0 && resp);
	bool ok;
	check_response(resp, &ok);
	if (trace)
		fprintf(stderr, "> %s\n< %s", line, resp);
	free(resp);
	char *after = config_text(S.cfg);
	bool changed = strcmp(before, after) != 0;
	free(before);
	if (!changed)
		return after; /* validated and round-tripped already */
	CHECK(ok); /* a refused request changes nothing */
	char err[512];
	if (sw_config_validate(S.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_ctl: configuration invalid after '%s': %s\n", line, err);
		CHECK(!"the configuration stays valid");
	}
	check_round_trip(after);
	check_restart();
	return after;
}

static void cleanup(void)
{
	clean_dir();
	rmdir(S.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *t = getenv("FUZZ_CTL_TRACE");
	trace = t && *t && *t != '0';
	vnet_log_set_level(VNET_LOG_ERROR);
	sw_rcu_init(&S.rcu);
	snprintf(S.dir, sizeof(S.dir), "%s/fuzz_ctl.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(S.dir));
	snprintf(S.path, sizeof(S.path), "%s/state.json", S.dir);
	atexit(cleanup);
	S.ready = true;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!S.ready)
		LLVMFuzzerInitialize(NULL, NULL);
	char *text = malloc(size + 1);
	CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';
	char *req = text;
	size_t reqlen = size;

	if (size >= 6 && !memcmp(text, "state:", 6)) {
		char *end = memmem(text + 6, size - 6, "\n--\n", 4);
		size_t slen = end ? (size_t)(end - (text + 6)) : size - 6;
		S.cfg = load_state(text + 6, slen);
		req = end ? end + 4 : text + size;
		reqlen = size - (size_t)(req - text);
	} else {
		S.cfg = sw_config_new();
		CHECK(S.cfg);
	}
	for (unsigned i = 0; i < S.cfg->nbridges; i++) {
		CHECK(S.nbr < SW_CONFIG_MAX_BRIDGES);
		replay_bridge(S.cfg, &S.cfg->bridges[i], &S.br[S.nbr++]);
	}

	unsigned nreq = 0;
	char *text_now = config_text(S.cfg);
	check_round_trip(text_now);
	while (reqlen && nreq < MAX_REQUESTS) {
		char *nl = memchr(req, '\n', reqlen);
		size_t n = nl ? (size_t)(nl - req) : reqlen;
		char *line = strndup(req, n); /* stops at a NUL too, as the daemon's reader */
		CHECK(line);
		text_now = run_request(line, text_now);
		free(line);
		nreq++;
		req += nl ? n + 1 : n;
		reqlen -= nl ? n + 1 : n;
	}
	free(text_now);
	if (nreq)
		save_and_reload();

	rt_clear();
	sw_config_free(S.cfg);
	S.cfg = NULL;
	free(text);
	return 0;
}
