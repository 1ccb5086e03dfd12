/* switchd_ctl.c — vnet-switchd's control commands (the ctl_ops behind
 * ctl_proto.h): each one takes sd->lock, changes a copy of the configuration
 * and the running bridges and ports together, then commits (saves) the copy;
 * and the accepting of control connections, one thread each. See switchd.h
 * for the threads. */
#include "switch/switchd.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "switch/capture.h"
#include "switch/ctl_proto.h"
#include "util/cycles.h"
#include "vnet/log.h"
#include "vnet/vhost_user.h"

/* The daemon the control threads serve (one per process). */
static struct switchd *ctl_sd;

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
	sd_commit(sd, next, r);
	pthread_mutex_unlock(&sd->lock);
	return 0;
}

static int op_add_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	if (sw_config_add_bridge(next, bridge, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	if (!sd_bridge_create(sd, bridge))
		return ctl_fail(sd, next, r, "out of memory");
	vnet_info("switchd: added bridge %s", bridge);
	return ctl_done(sd, next, r);
}

static int op_del_br(void *arg, const char *bridge, struct ctl_reply *r)
{
	CTL_BEGIN(sd);
	if (sw_config_del_bridge(next, bridge, err, sizeof(err)) < 0)
		return ctl_fail(sd, next, r, err);
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
	if (b)
		sd_bridge_destroy(sd, b);
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
	if (sd_port_create(sd, sd_find_bridge(sd, bridge), &pc, err, sizeof(err)) < 0)
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
	struct sd_bridge *b = old ? sd_find_bridge(sd, bc->name) : NULL;
	struct sd_port *p = sd_find_port(sd, port);
	if (p)
		sd_port_destroy(sd, p);
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
	struct sd_port *p = sd_find_port(sd, port);
	if (p && ch->set.n == 0) {
		/* VLAN settings only: change them while the port is detached. */
		struct sd_bridge *b = p->br;
		sw_bridge_ctx_set_port(&b->ctx, p->port.ofport, NULL);
		sw_rcu_synchronize(&sd->rcu);
		sd_set_port_vlans(&p->port, &pc);
		sw_fdb_flush(b->fdb, p->port.ofport, false);
		sw_bridge_ctx_set_port(&b->ctx, p->port.ofport, &p->port);
	} else if (p) {
		/* Options change how the port is opened: reopen it, same ofport. */
		struct sd_bridge *b = p->br;
		sd_port_destroy(sd, p);
		if (sd_port_create(sd, b, &pc, err, sizeof(err)) < 0) {
			/* The old port is gone; bring it back as it was. */
			char err2[256];
			struct sw_port_config *old = sw_config_port(sd->cfg, port, NULL);
			if (old && sd_port_create(sd, b, old, err2, sizeof(err2)) < 0)
				vnet_err("switchd: port %s could not be restored: %s", port, err2);
			return ctl_fail(sd, next, r, err);
		}
	}
	return ctl_done(sd, next, r);
}

static const char *port_state(void *arg, const struct sw_port_config *pc)
{
	static __thread char buf[160];
	struct sd_port *p = sd_find_port(arg, pc->name);
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
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
	if (b) {
		struct fdb_walk w = {.r = r, .b = b};
		sw_fdb_foreach(b->fdb, vnet_mono_ns(), fdb_entry, &w);
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
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
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
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
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
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
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
	if (sd_flow_add(sd_find_bridge(sd, bridge), flow, err, sizeof(err)) < 0)
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
	unsigned deleted = sw_flow_table_del(sd_find_bridge(sd, bridge)->flows,
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
	struct sd_bridge *b = sd_find_bridge(sd, bridge);
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
	c.fdb_entries = sw_fdb_foreach(b->fdb, vnet_mono_ns(), count_static, &c.fdb_static);
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
		struct sd_bridge *b = sd_find_bridge(sd, name);
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
	struct sd_port *p = sd_find_port(sd, port);
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

	uint64_t deadline = vnet_mono_ns() + (uint64_t)timeout_s * 1000000000ull;
	bool done = false;
	while (!done && vnet_mono_ns() < deadline && !sd->stop) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		done = sw_capture_drain(c);
	}
	pthread_mutex_lock(&sd->lock);
	/* The port may have been deleted meanwhile (port_destroy never frees a
	 * capture): detach the session from whichever port still holds it. */
	struct sd_port *still = sd_find_port(sd, port);
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
	ctl_serve_connection(fd, &ctl_ops, ctl_sd);
	close(fd);
	ctl_thread_done();
	return NULL;
}

/* Takes every connection waiting on the (non-blocking) control socket, up to
 * a round's worth, each onto a detached thread of its own: a burst of
 * connections costs one wake-up of this loop per round, not per connection;
 * ctl_io.c bounds how many stay. (Default stacks: glibc keeps up to 40 MiB
 * of exited threads' stacks for reuse, so smaller ones would keep more of
 * them, and their touched pages, after a burst.) */
void sd_ctl_accept_pending(struct switchd *sd, int listen_fd)
{
	ctl_sd = sd;
	for (unsigned i = 0; i < 64; i++) {
		int fd = vnet_vhu_accept(listen_fd);
		if (fd < 0)
			break; /* -EAGAIN: none left */
		if (!ctl_thread_admit(fd))
			continue; /* told "busy" and closed */
		pthread_t t;
		if (pthread_create(&t, NULL, ctl_thread, (void *)(intptr_t)fd) == 0) {
			pthread_detach(t);
		} else {
			close(fd);
			ctl_thread_done();
		}
	}
}

