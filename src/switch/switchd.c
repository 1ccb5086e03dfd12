/*
 * vnet-switchd — the virtual switch daemon: bridges of vhost-user, tap,
 * afpacket and null ports; an L2 learning FDB and an OpenFlow-like flow
 * table per bridge; poll-mode threads for the data plane; a JSON control
 * socket (vnetctl) and a state file that survives restarts.
 *
 * Every configuration change is validated on a copy of the configuration,
 * applied to the running switch, and only then made current and saved: a
 * refused command changes nothing.
 *
 * Least privilege: the daemon needs no privilege for vhost-user ports, only
 * its run and state directories (which must be its own or root's, not
 * symbolic links, not writable by everyone: util/private_dir.h); the control
 * socket is 0600, or 0660 for --ctl-group. Sockets are never created through
 * a symbolic link (vnet_vhu_listen refuses anything at the path that is not
 * a socket).
 */
#include "switch/switchd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "switch/capture.h"
#include "switch/ctl_proto.h"
#include "switch/persist.h"
#include "util/cycles.h"
#include "util/private_dir.h"
#include "vnet/log.h"
#include "vnet/vhost_user.h"

static struct switchd *g_sd;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- runtime */

static struct sd_bridge *find_bridge(struct switchd *sd, const char *name)
{
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

static struct sd_port *find_port(struct switchd *sd, const char *name)
{
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		for (struct sd_port *p = b->ports; p; p = p->next)
			if (!strcmp(p->port.name, name))
				return p;
	return NULL;
}

static void set_port_vlans(struct sw_port *p, const struct sw_port_config *pc)
{
	p->tag = pc->tag;
	memcpy(p->trunks, pc->trunks, sizeof(p->trunks));
	p->trunk = !sw_vlan_list_empty(pc->trunks);
}

static int port_create(struct switchd *sd, struct sd_bridge *b, const struct sw_port_config *pc,
		       char *err, size_t errlen)
{
	const struct sw_port_ops *ops = sw_port_type(pc->type);
	if (!ops) {
		snprintf(err, errlen, "unknown port type '%s' (known: %s)", pc->type,
			 sw_port_types_list());
		return -1;
	}
	if (pc->ofport == 0 || pc->ofport >= SW_BRIDGE_MAX_PORTS) {
		snprintf(err, errlen, "port %s: ofport %u beyond this switch's %u ports per bridge",
			 pc->name, pc->ofport, SW_BRIDGE_MAX_PORTS - 1);
		return -1;
	}
	struct sd_port *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(p->port.name, sizeof(p->port.name), "%s", pc->name);
	p->port.ofport = pc->ofport;
	p->port.ops = ops;
	p->port.opts = pc->options;
	p->port.bridge = b;
	p->br = b;
	for (unsigned q = 0; q < SW_PORT_MAX_QUEUES; q++)
		atomic_flag_clear(&p->port.tx_lock[q]);
	set_port_vlans(&p->port, pc);
	if (ops->open(&p->port, err, errlen) < 0) {
		free(p);
		return -1;
	}
	p->next = b->ports;
	b->ports = p;
	sw_bridge_ctx_set_port(&b->ctx, p->port.ofport, &p->port);
	sd_pmd_reassign(sd);
	return 0;
}

/* Takes the port out of the data plane and waits until no PMD can use it. */
static void port_detach(struct switchd *sd, struct sd_port *p)
{
	sw_bridge_ctx_set_port(&p->br->ctx, p->port.ofport, NULL);
	for (struct sd_port **pp = &p->br->ports; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	sd_pmd_reassign(sd);
	sw_rcu_synchronize(&sd->rcu);
}

static void port_destroy(struct switchd *sd, struct sd_port *p)
{
	port_detach(sd, p);
	sw_fdb_flush(p->br->fdb, p->port.ofport, false);
	p->port.ops->close(&p->port);
	free(p);
}

static struct sd_bridge *bridge_create(struct switchd *sd, const char *name)
{
	struct sd_bridge *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->fdb = sw_fdb_create(NULL);
	b->flows = sw_flow_table_create(&sd->rcu, 0);
	if (!b->fdb || !b->flows) {
		if (b->fdb)
			sw_fdb_destroy(b->fdb);
		if (b->flows)
			sw_flow_table_destroy(b->flows);
		free(b);
		return NULL;
	}
	sw_bridge_ctx_init(&b->ctx, b->fdb, b->flows);
	b->next = sd->bridges;
	sd->bridges = b;
	return b;
}

static void bridge_destroy(struct switchd *sd, struct sd_bridge *b)
{
	while (b->ports)
		port_destroy(sd, b->ports);
	for (struct sd_bridge **pp = &sd->bridges; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	sw_rcu_synchronize(&sd->rcu);
	sw_flow_table_destroy(b->flows);
	sw_fdb_destroy(b->fdb);
	free(b);
}

static int flow_add(struct sd_bridge *b, const char *text, char *err, size_t errlen)
{
	struct sw_flow_spec spec;
	if (sw_flow_spec_parse(text, SW_PARSE_FLOW, &spec, err, errlen) < 0)
		return -1;
	int e = sw_flow_table_add(b->flows, &spec, NULL);
	if (e < 0) {
		snprintf(err, errlen, "%s", e == -ENOSPC ? "flow table full" : strerror(-e));
		return -1;
	}
	return 0;
}

/* Saves the configuration; a failure is logged and reported, the change stays. */
static void save_state(struct switchd *sd, struct ctl_reply *r)
{
	char err[256];
	if (sw_persist_save(sd->state_path, sd->cfg, err, sizeof(err)) != SW_PERSIST_OK) {
		vnet_err("switchd: %s", err);
		if (r)
			ctl_reply_set_str(r, "warning", err);
	}
}

/* Makes `next` the current configuration and saves it. */
static void commit(struct switchd *sd, struct sw_config *next, struct ctl_reply *r)
{
	sw_config_free(sd->cfg);
	sd->cfg = next;
	save_state(sd, r);
}

/* ------------------------------------------------------------ ctl commands */

#define CTL_BEGIN(sd)                          \
	struct switchd *sd = arg;              \
	char err[256] = "";                    \
	pthread_mutex_lock(&sd->lock);         \
	struct sw_config *next = sw_config_dup(sd->cfg); \
	if (!next) {                           \
		pthread_mutex_unlock(&sd->lock); \
		ctl_reply_error(r, "out of memory"); \
		return -1;                     \
	}

static int ctl_fail(struct switchd *sd, struct sw_config *next, struct ctl_reply *r,
		    const char *err)
{
	sw_config_free(next);
	pthread_mutex_unlock(&sd->lock);
	ctl_reply_error(r, "%s", err);
	return -1;
}

static int ctl_done(struct switchd *sd, struct sw_config *next, struct ctl_reply *r)
{
	commit(sd, next, r);
	pthread_mutex_unlock(&sd->lock);
	return 0;
}

static int op_add_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	if (sw_config_add_bridge(next, bridge, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	if (!bridge_create(sd, bridge))
		return ctl_fail(sd, next, r, "out of memory");
	vnet_info("switchd: added bridge %s", bridge);
	return ctl_done(sd, next, r);
}

static int op_del_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	if (sw_config_del_bridge(next, bridge, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sd_bridge *b = find_bridge(sd, bridge);
	if (b)
		bridge_destroy(sd, b);
	vnet_info("switchd: deleted bridge %s", bridge);
	return ctl_done(sd, next, r);
}

static int op_add_port(void *arg, const char *bridge, const struct sw_port_config *port,
		       struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	uint16_t ofport;
	if (sw_config_add_port(next, bridge, port, &ofport, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sw_port_config pc = *sw_config_port(next, port->name, NULL);
	if (port_create(sd, find_bridge(sd, bridge), &pc, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	ctl_reply_set_int(r, "ofport", ofport);
	vnet_info("switchd: added port %s (%s, ofport %u) to %s", pc.name, pc.type, ofport,
		  bridge);
	return ctl_done(sd, next, r);
}

static int op_del_port(void *arg, const char *bridge, const char *port, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	if (sw_config_del_port(next, bridge, port, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	/* The port's number and bridge from the current configuration: the
	 * port may not be running (it failed to open), its static FDB entries
	 * are installed all the same. */
	struct sw_bridge_config *bc = NULL;
	const struct sw_port_config *old = sw_config_port(sd->cfg, port, &bc);
	struct sd_bridge *b = old ? find_bridge(sd, bc->name) : NULL;
	struct sd_port *p = find_port(sd, port);
	if (p)
		port_destroy(sd, p);
	/* its static entries left the configuration with it */
	if (b && old->ofport)
		sw_fdb_flush(b->fdb, old->ofport, true);
	vnet_info("switchd: deleted port %s", port);
	return ctl_done(sd, next, r);
}

static int op_set_port(void *arg, const char *port, const struct sw_port_changes *ch,
		       struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	struct sw_bridge_config *bc;
	if (sw_config_set_port(next, port, ch, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sw_port_config pc = *sw_config_port(next, port, &bc);
	struct sd_port *p = find_port(sd, port);
	if (p && ch->set.n == 0) {
		/* VLAN settings only: change them while the port is detached. */
		struct sd_bridge *b = p->br;
		sw_bridge_ctx_set_port(&b->ctx, p->port.ofport, NULL);
		sw_rcu_synchronize(&sd->rcu);
		set_port_vlans(&p->port, &pc);
		sw_fdb_flush(b->fdb, p->port.ofport, false);
		sw_bridge_ctx_set_port(&b->ctx, p->port.ofport, &p->port);
	} else if (p) {
		/* Options change how the port is opened: reopen it, same ofport. */
		struct sd_bridge *b = p->br;
		port_destroy(sd, p);
		if (port_create(sd, b, &pc, err, sizeof(err)) < 0) {
			/* The old port is gone; bring it back as it was. */
			char err2[256];
			struct sw_port_config *old = sw_config_port(sd->cfg, port, NULL);
			if (old && port_create(sd, b, old, err2, sizeof(err2)) < 0)
				vnet_err("switchd: port %s could not be restored: %s", port, err2);
			return ctl_fail(sd, next, r, err);
		}
	}
	return ctl_done(sd, next, r);
}

static const char *port_state(void *arg, const struct sw_port_config *pc)
{
	static __thread char buf[160];
	struct sd_port *p = find_port(arg, pc->name);
	if (!p)
		return "not running";
	buf[0] = '\0';
	if (p->port.ops->describe)
		p->port.ops->describe(&p->port, buf, sizeof(buf));
	return buf[0] ? buf : "up";
}

static int op_show(void *arg, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	ctl_reply_show_config(r, sd->cfg, port_state, sd);
	pthread_mutex_unlock(&sd->lock);
	return 0;
}

static int op_list_ports(void *arg, const char *bridge, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	struct sw_bridge_config *bc = sw_config_bridge(sd->cfg, bridge);
	if (bc)
		for (unsigned i = 0; i < bc->nports; i++)
			ctl_reply_add_port_name(r, bc->ports[i].name);
	pthread_mutex_unlock(&sd->lock);
	if (!bc) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	return 0;
}

struct fdb_walk {
	struct ctl_reply *r;
	struct sd_bridge *b;
};

static void fdb_entry(const struct sw_fdb_entry_info *e, void *arg)
{
	struct fdb_walk *w = arg;
	struct sw_port *p = atomic_load(&w->b->ctx.ports[e->port < SW_BRIDGE_MAX_PORTS ? e->port : 0]);
	ctl_reply_add_fdb(w->r, p ? p->name : NULL, e->port, e->vlan, e->mac, e->age_s,
			  e->is_static);
}

static int op_fdb_show(void *arg, const char *bridge, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	struct sd_bridge *b = find_bridge(sd, bridge);
	if (b) {
		struct fdb_walk w = {.r = r, .b = b};
		sw_fdb_foreach(b->fdb, mono_ns(), fdb_entry, &w);
	}
	pthread_mutex_unlock(&sd->lock);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	return 0;
}

static int op_fdb_flush(void *arg, const char *bridge, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	struct sd_bridge *b = find_bridge(sd, bridge);
	unsigned n = b ? sw_fdb_flush(b->fdb, 0, false) : 0;
	pthread_mutex_unlock(&sd->lock);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	ctl_reply_set_int(r, "flushed", n);
	return 0;
}

static int op_fdb_add(void *arg, const char *bridge, const char *port, uint16_t vlan,
		      const uint8_t mac[6], struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	char m[SW_MAC_STR_LEN];
	sw_mac_format(mac, m);
	if (sw_config_add_fdb(next, bridge, port, vlan, mac, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sd_bridge *b = find_bridge(sd, bridge);
	const struct sw_port_config *pc = sw_config_port(next, port, NULL);
	if (!b || !pc) {
		snprintf(err, sizeof(err), "bridge %s is not running", bridge);
		return ctl_fail(sd, next, r, err);
	}
	int e = sw_fdb_add_static(b->fdb, vlan, mac, pc->ofport);
	if (e < 0) {
		snprintf(err, sizeof(err), "cannot add %s on VLAN %u to the FDB of %s: %s", m, vlan,
			 bridge, e == -ENOSPC ? "table full" : "port out of range");
		return ctl_fail(sd, next, r, err);
	}
	vnet_info("switchd: %s: static FDB entry %s VLAN %u -> %s", bridge, m, vlan, port);
	return ctl_done(sd, next, r);
}

static int op_fdb_del(void *arg, const char *bridge, uint16_t vlan, const uint8_t mac[6],
		      struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	char m[SW_MAC_STR_LEN];
	sw_mac_format(mac, m);
	if (sw_config_del_fdb(next, bridge, vlan, mac, NULL, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sd_bridge *b = find_bridge(sd, bridge);
	if (b)
		sw_fdb_del(b->fdb, vlan, mac);
	vnet_info("switchd: %s: static FDB entry %s VLAN %u deleted", bridge, m, vlan);
	return ctl_done(sd, next, r);
}

static int op_add_flow(void *arg, const char *bridge, const char *flow, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	struct sw_flow_spec spec;
	if (sw_flow_spec_parse(flow, SW_PARSE_FLOW, &spec, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	if (sw_config_add_flow(next, bridge, flow, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	if (flow_add(find_bridge(sd, bridge), flow, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	return ctl_done(sd, next, r);
}

/* del-flows keeps the saved flows equal to the table: same "covers" rule. */
static bool flow_covered(const struct sw_flow_config *f, void *arg)
{
	const struct sw_match *general = arg;
	struct sw_flow_spec spec;
	char err[128];
	char text[SW_FLOW_TEXT_MAX + 32];
	snprintf(text, sizeof(text), "priority=%u,%s", f->priority, f->text);
	if (sw_flow_spec_parse(text, SW_PARSE_FLOW, &spec, err, sizeof(err)) < 0)
		return false;
	return !general || sw_match_covers(general, &spec.match);
}

static int op_del_flows(void *arg, const char *bridge, const char *match, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	struct sw_flow_spec spec;
	if (match && sw_flow_spec_parse(match, SW_PARSE_MATCH, &spec, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	unsigned n;
	if (sw_config_del_flows_if(next, bridge, flow_covered, match ? &spec.match : NULL, &n, err,
				   sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	unsigned deleted = sw_flow_table_del(find_bridge(sd, bridge)->flows,
					     match ? &spec.match : NULL, false, 0);
	ctl_reply_set_int(r, "deleted", deleted);
	return ctl_done(sd, next, r);
}

static void flow_entry(const struct sw_flow *f, void *arg)
{
	char match[512], actions[256], text[800];
	sw_match_format(&f->match, SW_FLOW_DEFAULT_PRIORITY, match, sizeof(match));
	sw_actions_format(f->actions, f->n_actions, actions, sizeof(actions));
	snprintf(text, sizeof(text), "%s%sactions=%s", match, match[0] ? "," : "", actions);
	ctl_reply_add_flow(arg, f->priority, text, atomic_load(&f->n_packets),
			   atomic_load(&f->n_bytes));
}

static int op_dump_flows(void *arg, const char *bridge, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	struct sd_bridge *b = find_bridge(sd, bridge);
	if (b)
		sw_flow_table_foreach(b->flows, NULL, flow_entry, r);
	pthread_mutex_unlock(&sd->lock);
	if (!b) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	return 0;
}

static void queue_counters(const struct sw_port *p, unsigned q, struct ctl_counters *c)
{
	c->rx_packets = atomic_load(&p->rxq[q].rx_packets);
	c->rx_bytes = atomic_load(&p->rxq[q].rx_bytes);
	c->rx_dropped = atomic_load(&p->rxq[q].rx_dropped);
	c->tx_packets = atomic_load(&p->txq[q].tx_packets);
	c->tx_bytes = atomic_load(&p->txq[q].tx_bytes);
	c->tx_dropped = atomic_load(&p->txq[q].tx_dropped);
	c->errors = atomic_load(&p->rxq[q].errors) + atomic_load(&p->txq[q].errors);
}

static void port_stats(struct ctl_reply *r, struct sd_port *p)
{
	struct ctl_counters total = {0}, q;
	unsigned nq = p->port.nrxq > p->port.ntxq ? p->port.nrxq : p->port.ntxq;
	if (nq > SW_PORT_MAX_QUEUES)
		nq = SW_PORT_MAX_QUEUES;
	for (unsigned i = 0; i < nq; i++) {
		queue_counters(&p->port, i, &q);
		total.rx_packets += q.rx_packets;
		total.rx_bytes += q.rx_bytes;
		total.rx_dropped += q.rx_dropped;
		total.tx_packets += q.tx_packets;
		total.tx_bytes += q.tx_bytes;
		total.tx_dropped += q.tx_dropped;
		total.errors += q.errors;
	}
	ctl_reply_add_port_stats(r, p->port.name, p->br->name, &total);
	for (unsigned i = 0; i < nq; i++) {
		queue_counters(&p->port, i, &q);
		ctl_reply_add_queue_stats(r, i, &q);
	}
	/* every reason, zeros too: a stable schema for --json */
	for (unsigned d = 0; d < SW_DROP__COUNT; d++)
		ctl_reply_add_drop_reason(r, sw_drop_reason_name((enum sw_drop_reason)d),
					  atomic_load_explicit(&p->port.fwd_drops[d],
							       memory_order_relaxed));
}

static int op_port_stats(void *arg, const char *port, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	bool found = false;
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		for (struct sd_port *p = b->ports; p; p = p->next)
			if (!port || !strcmp(port, p->port.name)) {
				port_stats(r, p);
				found = true;
			}
	pthread_mutex_unlock(&sd->lock);
	if (port && !found) {
		ctl_reply_error(r, "no port %s", port);
		return -1;
	}
	return 0;
}

static void count_static(const struct sw_fdb_entry_info *e, void *arg)
{
	if (e->is_static)
		(*(uint64_t *)arg)++;
}

static void bridge_stats(struct ctl_reply *r, struct sd_bridge *b)
{
	struct ctl_bridge_counters c = {0};
	struct sw_fdb_stats st;
	c.rx_packets = atomic_load_explicit(&b->ctx.rx_packets, memory_order_relaxed);
	c.rx_bytes = atomic_load_explicit(&b->ctx.rx_bytes, memory_order_relaxed);
	c.fdb_entries = sw_fdb_foreach(b->fdb, mono_ns(), count_static, &c.fdb_static);
	sw_fdb_get_stats(b->fdb, &st);
	c.fdb_learned = st.learned;
	c.fdb_moves = st.moves;
	c.fdb_evicted = st.evicted;
	c.fdb_aged = st.aged;
	c.fdb_refused = st.refused;
	c.flows = sw_flow_table_count(b->flows);
	ctl_reply_add_bridge_stats(r, b->name, &c);
	for (unsigned d = 0; d < SW_DROP__COUNT; d++)
		ctl_reply_add_drop_reason(r, sw_drop_reason_name((enum sw_drop_reason)d),
					  atomic_load_explicit(&b->ctx.drops[d], memory_order_relaxed));
}

static int op_bridge_stats(void *arg, const char *bridge, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	bool found = false;
	/* in configuration order (the runtime list is newest first) */
	for (unsigned i = 0; i < sd->cfg->nbridges; i++) {
		const char *name = sd->cfg->bridges[i].name;
		if (bridge && strcmp(bridge, name))
			continue;
		struct sd_bridge *b = find_bridge(sd, name);
		if (b)
			bridge_stats(r, b);
		found = true;
	}
	pthread_mutex_unlock(&sd->lock);
	if (bridge && !found) {
		ctl_reply_error(r, "no bridge %s", bridge);
		return -1;
	}
	return 0;
}

static int op_pmd_stats(void *arg, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	pthread_mutex_lock(&sd->lock);
	for (unsigned i = 0; i < sd->npmd; i++) {
		struct sd_pmd *p = &sd->pmds[i];
		const struct sd_rxq_list *l = atomic_load(&p->rxqs);
		struct ctl_pmd_counters c = {
			.pmd = p->index,
			.cpu = p->cpu,
			.rx_queues = l ? l->n : 0, /* replaced only under sd->lock */
			.packets = atomic_load_explicit(&p->packets, memory_order_relaxed),
			.loops = atomic_load_explicit(&p->loops, memory_order_relaxed),
			.busy_loops = atomic_load_explicit(&p->busy_loops, memory_order_relaxed),
			.sleeps = atomic_load_explicit(&p->sleeps, memory_order_relaxed),
			.busy_cycles = atomic_load_explicit(&p->busy_cycles, memory_order_relaxed),
			.idle_cycles = atomic_load_explicit(&p->idle_cycles, memory_order_relaxed),
			.tsc_hz = vnet_cycles_hz(),
		};
		/* The PMD stores its totals one by one: a snapshot may catch
		 * busy_loops already counted and loops not yet. */
		if (c.loops < c.busy_loops)
			c.loops = c.busy_loops;
		ctl_reply_add_pmd_stats(r, &c);
	}
	pthread_mutex_unlock(&sd->lock);
	return 0;
}

/* Runs on the connection's own thread: waits without holding the lock. */
static int op_capture(void *arg, const char *port, unsigned count, const char *file,
		      unsigned timeout_s, struct ctl_reply *r)
{
	struct switchd *sd = arg;
	char err[256];
	pthread_mutex_lock(&sd->lock);
	struct sd_port *p = find_port(sd, port);
	if (!p || atomic_load(&p->port.capture)) {
		pthread_mutex_unlock(&sd->lock);
		if (p)
			ctl_reply_error(r, "port %s is already being captured", port);
		else
			ctl_reply_error(r, "no port %s", port);
		return -1;
	}
	struct sw_capture *c = sw_capture_start(file, count, err, sizeof(err));
	if (!c) {
		pthread_mutex_unlock(&sd->lock);
		ctl_reply_error(r, "%s", err);
		return -1;
	}
	atomic_store(&p->port.capture, c);
	pthread_mutex_unlock(&sd->lock);

	uint64_t deadline = mono_ns() + (uint64_t)timeout_s * 1000000000ull;
	bool done = false;
	while (!done && mono_ns() < deadline && !sd->stop) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		done = sw_capture_drain(c);
	}
	pthread_mutex_lock(&sd->lock);
	/* The port may have been deleted meanwhile (port_destroy never frees a
	 * capture): detach the session from whichever port still holds it. */
	struct sd_port *still = find_port(sd, port);
	if (still)
		atomic_store(&still->port.capture, NULL);
	sw_rcu_synchronize(&sd->rcu);
	pthread_mutex_unlock(&sd->lock);
	uint64_t written = sw_capture_written(c);
	sw_capture_stop(c);
	ctl_reply_capture(r, file, written, !done && count);
	return 0;
}

static struct ctl_ops ctl_ops = {
	.add_br = op_add_br,
	.del_br = op_del_br,
	.add_port = op_add_port,
	.del_port = op_del_port,
	.set_port = op_set_port,
	.show = op_show,
	.list_ports = op_list_ports,
	.fdb_show = op_fdb_show,
	.fdb_flush = op_fdb_flush,
	.fdb_add = op_fdb_add,
	.fdb_del = op_fdb_del,
	.add_flow = op_add_flow,
	.del_flows = op_del_flows,
	.dump_flows = op_dump_flows,
	.port_stats = op_port_stats,
	.bridge_stats = op_bridge_stats,
	.pmd_stats = op_pmd_stats,
	.capture = op_capture,
};

static void *ctl_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	ctl_serve_connection(fd, &ctl_ops, g_sd);
	close(fd);
	return NULL;
}

/* ------------------------------------------------------------ start-up */

/* Builds the running switch from the loaded configuration; a port that cannot
 * open is logged and left in the configuration (it is retried on restart). */
static void apply_config(struct switchd *sd)
{
	char err[256];
	for (unsigned i = 0; i < sd->cfg->nbridges; i++) {
		const struct sw_bridge_config *bc = &sd->cfg->bridges[i];
		struct sd_bridge *b = bridge_create(sd, bc->name);
		if (!b) {
			vnet_err("switchd: bridge %s: out of memory", bc->name);
			continue;
		}
		/* Static FDB entries first: they need only the ports' numbers (from
		 * the configuration), and no frame of a port coming up is flooded
		 * or learnt past them. */
		for (unsigned j = 0; j < bc->nfdb; j++) {
			const struct sw_fdb_static_config *f = &bc->fdb[j];
			const struct sw_port_config *pc = sw_config_port(sd->cfg, f->port, NULL);
			char m[SW_MAC_STR_LEN];
			sw_mac_format(f->mac, m);
			if (!pc || sw_fdb_add_static(b->fdb, f->vlan, f->mac, pc->ofport) < 0)
				vnet_err("switchd: bridge %s: static FDB entry %s VLAN %u -> %s not restored",
					 bc->name, m, f->vlan, f->port);
		}
		for (unsigned j = 0; j < bc->nports; j++)
			if (port_create(sd, b, &bc->ports[j], err, sizeof(err)) < 0)
				vnet_err("switchd: port %s not restored: %s", bc->ports[j].name, err);
		for (unsigned j = 0; j < bc->nflows; j++) {
			char text[SW_FLOW_TEXT_MAX + 32];
			snprintf(text, sizeof(text), "priority=%u,%s", bc->flows[j].priority,
				 bc->flows[j].text);
			if (flow_add(b, text, err, sizeof(err)) < 0)
				vnet_err("switchd: bridge %s: flow '%s' not restored: %s", bc->name,
					 text, err);
		}
		vnet_info("switchd: restored bridge %s (%u ports, %u flows, %u static FDB entries)",
			  bc->name, bc->nports, bc->nflows, bc->nfdb);
	}
}

static int make_dir(const char *what, const char *path, mode_t mode)
{
	char err[512];
	if (vnet_private_dir(path, mode, err, sizeof(err)) == 0)
		return 0;
	vnet_err("switchd: %s: %s", what, err);
	return -1;
}

static int parse_cpus(const char *list, int *cpus, unsigned max)
{
	unsigned n = 0;
	char *copy = strdup(list), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int a, b;
		if (sscanf(tok, "%d-%d", &a, &b) != 2) {
			if (sscanf(tok, "%d", &a) != 1) {
				free(copy);
				return -1;
			}
			b = a;
		}
		for (int c = a; c <= b && n < max; c++)
			cpus[n++] = c;
	}
	free(copy);
	return (int)n;
}

static void on_signal(int sig)
{
	(void)sig;
	if (g_sd)
		g_sd->stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vnet-switchd [--foreground] [--log-level error|warn|info|debug]\n"
		   "                    [--pmd-cpus LIST] [--pmd-idle-spins N]\n"
		   "                    [--run-dir DIR] [--state-dir DIR] [--ctl-group GROUP]\n"
		   "  defaults: run dir /run/vnet (VNET_RUN_DIR), state dir /var/lib/vnet\n"
		   "  (VNET_STATE_DIR), one PMD on the last CPU; control socket\n"
		   "  <run dir>/vnet-switchd.ctl (0600; 0660 and group GROUP with --ctl-group);\n"
		   "  a PMD sleeps after %u empty polling rounds (--pmd-idle-spins; 0 = never)\n"
		   "  No privilege is needed for vhost-user ports; tap ports need CAP_NET_ADMIN\n"
		   "  (or an existing tap owned by this user, up), afpacket ports CAP_NET_RAW.\n",
		   SD_DEFAULT_IDLE_SPINS);
}

int main(int argc, char **argv)
{
	static struct switchd sd;
	g_sd = &sd;
	const char *run_dir = getenv("VNET_RUN_DIR"), *state_dir = getenv("VNET_STATE_DIR");
	const char *pmd_cpus = NULL, *ctl_group = NULL;
	unsigned idle_spins = SD_DEFAULT_IDLE_SPINS;
	bool foreground = false;
	static const struct option opts[] = {
		{"foreground", 0, 0, 'f'}, {"log-level", 1, 0, 'l'}, {"pmd-cpus", 1, 0, 'c'},
		{"run-dir", 1, 0, 'r'},    {"state-dir", 1, 0, 's'}, {"help", 0, 0, 'h'},
		{"version", 0, 0, 'V'},    {"pmd-idle-spins", 1, 0, 'i'},
		{"ctl-group", 1, 0, 'g'},  {0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'l': {
			int lv = vnet_log_parse_level(optarg);
			if (lv < 0) {
				fprintf(stderr, "vnet-switchd: unknown log level '%s'\n", optarg);
				return 2;
			}
			vnet_log_set_level((enum vnet_log_level)lv);
			break;
		}
		case 'c': pmd_cpus = optarg; break;
		case 'i': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > 1000000000ul || optarg[0] == '-') {
				fprintf(stderr, "vnet-switchd: bad --pmd-idle-spins '%s' (0..1000000000)\n",
					optarg);
				return 2;
			}
			idle_spins = (unsigned)v;
			break;
		}
		case 'r': run_dir = optarg; break;
		case 's': state_dir = optarg; break;
		case 'g': ctl_group = optarg; break;
		case 'V': printf("vnet-switchd %s\n", VNET_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	snprintf(sd.run_dir, sizeof(sd.run_dir), "%s", run_dir ? run_dir : "/run/vnet");
	snprintf(sd.state_dir, sizeof(sd.state_dir), "%s", state_dir ? state_dir : "/var/lib/vnet");
	snprintf(sd.ctl_path, sizeof(sd.ctl_path), "%s/vnet-switchd.ctl", sd.run_dir);
	snprintf(sd.state_path, sizeof(sd.state_path), "%s/state.json", sd.state_dir);
	setenv("VNET_RUN_DIR", sd.run_dir, 1); /* vhost-user ports' default socket dir */
	if (make_dir("run dir", sd.run_dir, 0755) < 0 || make_dir("state dir", sd.state_dir, 0700) < 0)
		return 1;
	gid_t ctl_gid = (gid_t)-1;
	if (ctl_group && vnet_group_id(ctl_group, &ctl_gid) < 0) {
		fprintf(stderr, "vnet-switchd: --ctl-group %s: no such group\n", ctl_group);
		return 2;
	}

	int cpus[SD_MAX_PMDS];
	int ncpu = pmd_cpus ? parse_cpus(pmd_cpus, cpus, SD_MAX_PMDS) : 1;
	if (ncpu <= 0) {
		fprintf(stderr, "vnet-switchd: bad --pmd-cpus '%s'\n", pmd_cpus ? pmd_cpus : "");
		return 2;
	}
	if (!pmd_cpus)
		cpus[0] = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;

	char err[256];
	int e = sw_persist_load(sd.state_path, &sd.cfg, err, sizeof(err));
	if (e == SW_PERSIST_CORRUPT) {
		vnet_err("switchd: %s; starting with an empty configuration", err);
		sd.cfg = sw_config_new();
	} else if (e != SW_PERSIST_OK) {
		vnet_err("switchd: %s", err);
		return 1;
	}

	sd.ctl_fd = vnet_vhu_listen(sd.ctl_path, ctl_group ? 0660 : 0600, err, sizeof(err));
	if (sd.ctl_fd < 0) {
		vnet_err("switchd: control socket: %s", err);
		return 1;
	}
	/* AT_SYMLINK_NOFOLLOW: a link swapped in since the bind gains nothing. */
	if (ctl_group && fchownat(AT_FDCWD, sd.ctl_path, (uid_t)-1, ctl_gid, AT_SYMLINK_NOFOLLOW) < 0) {
		vnet_err("switchd: cannot give the control socket %s to group %s: %s", sd.ctl_path,
			 ctl_group, strerror(errno));
		close(sd.ctl_fd);
		unlink(sd.ctl_path);
		return 1;
	}
	if (!foreground && daemon(0, 1) < 0) {
		vnet_err("switchd: cannot daemonize: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pthread_mutex_init(&sd.lock, NULL);
	sw_rcu_init(&sd.rcu);
	sd.idle_spins = idle_spins;
	sd.npmd = (unsigned)ncpu;
	for (unsigned i = 0; i < sd.npmd; i++) {
		sd.pmds[i].index = i;
		sd.pmds[i].cpu = cpus[i];
		if (sd_pmd_start(&sd, &sd.pmds[i]) < 0) {
			vnet_err("switchd: cannot start PMD thread %u", i);
			return 1;
		}
	}
	pthread_mutex_lock(&sd.lock);
	apply_config(&sd);
	pthread_mutex_unlock(&sd.lock);
	vnet_info("switchd: ready; control socket %s, state %s, %u PMD thread(s)", sd.ctl_path,
		  sd.state_path, sd.npmd);

	uint64_t next_age = mono_ns();
	while (!sd.stop) {
		struct pollfd pfd[1 + 128];
		unsigned n = 0;
		pfd[n++] = (struct pollfd){.fd = sd.ctl_fd, .events = POLLIN};
		pthread_mutex_lock(&sd.lock);
		for (struct sd_bridge *b = sd.bridges; b; b = b->next)
			for (struct sd_port *p = b->ports; p && n < 129; p = p->next) {
				int fd = p->port.ops->service_fd ? p->port.ops->service_fd(&p->port) : -1;
				if (fd >= 0)
					pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
			}
		pthread_mutex_unlock(&sd.lock);
		poll(pfd, n, 50);
		if (pfd[0].revents & POLLIN) {
			int fd = vnet_vhu_accept(sd.ctl_fd);
			pthread_t t;
			if (fd >= 0 && pthread_create(&t, NULL, ctl_thread, (void *)(intptr_t)fd) == 0)
				pthread_detach(t);
			else if (fd >= 0)
				close(fd);
		}
		pthread_mutex_lock(&sd.lock);
		for (struct sd_bridge *b = sd.bridges; b; b = b->next)
			for (struct sd_port *p = b->ports; p; p = p->next)
				if (p->port.ops->service)
					p->port.ops->service(&p->port);
		uint64_t now = mono_ns();
		if (now >= next_age) {
			for (struct sd_bridge *b = sd.bridges; b; b = b->next)
				sw_fdb_age(b->fdb, now);
			next_age = now + 1000000000ull;
		}
		sw_rcu_poll(&sd.rcu);
		pthread_mutex_unlock(&sd.lock);
	}

	vnet_info("switchd: stopping");
	close(sd.ctl_fd);
	unlink(sd.ctl_path);
	pthread_mutex_lock(&sd.lock);
	while (sd.bridges)
		bridge_destroy(&sd, sd.bridges);
	pthread_mutex_unlock(&sd.lock);
	for (unsigned i = 0; i < sd.npmd; i++)
		sd_pmd_stop(&sd.pmds[i]);
	sw_rcu_synchronize(&sd.rcu);
	sw_config_free(sd.cfg);
	return 0;
}
