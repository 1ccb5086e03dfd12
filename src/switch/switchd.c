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
 *
 * This file: the running bridges and ports, start-up and the main loop; the
 * control commands are in switchd_ctl.c.
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

#include "switch/ctl_proto.h"
#include "switch/persist.h"
#include "util/cycles.h"
#include "util/private_dir.h"
#include "vnet/log.h"
#include "vnet/vhost_user.h"

static struct switchd *g_sd;


/* ---------------------------------------------------------------- runtime */

struct sd_bridge *sd_find_bridge(struct switchd *sd, const char *name)
{
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

struct sd_port *sd_find_port(struct switchd *sd, const char *name)
{
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		for (struct sd_port *p = b->ports; p; p = p->next)
			if (!strcmp(p->port.name, name))
				return p;
	return NULL;
}

void sd_set_port_vlans(struct sw_port *p, const struct sw_port_config *pc)
{
	p->tag = pc->tag;
	memcpy(p->trunks, pc->trunks, sizeof(p->trunks));
	p->trunk = !sw_vlan_list_empty(pc->trunks);
}

int sd_port_create(struct switchd *sd, struct sd_bridge *b, const struct sw_port_config *pc,
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
	sd_set_port_vlans(&p->port, pc);
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

void sd_port_destroy(struct switchd *sd, struct sd_port *p)
{
	port_detach(sd, p);
	sw_fdb_flush(p->br->fdb, p->port.ofport, false);
	p->port.ops->close(&p->port);
	free(p);
}

struct sd_bridge *sd_bridge_create(struct switchd *sd, const char *name)
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

void sd_bridge_destroy(struct switchd *sd, struct sd_bridge *b)
{
	while (b->ports)
		sd_port_destroy(sd, b->ports);
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

int sd_flow_add(struct sd_bridge *b, const char *text, char *err, size_t errlen)
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
void sd_commit(struct switchd *sd, struct sw_config *next, struct ctl_reply *r)
{
	sw_config_free(sd->cfg);
	sd->cfg = next;
	save_state(sd, r);
}

/* ------------------------------------------------------------ start-up */

/* Builds the running switch from the loaded configuration; a port that cannot
 * open is logged and left in the configuration (it is retried on restart). */
static void apply_config(struct switchd *sd)
{
	char err[256];
	for (unsigned i = 0; i < sd->cfg->nbridges; i++) {
		const struct sw_bridge_config *bc = &sd->cfg->bridges[i];
		struct sd_bridge *b = sd_bridge_create(sd, bc->name);
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
			if (sd_port_create(sd, b, &bc->ports[j], err, sizeof(err)) < 0)
				vnet_err("switchd: port %s not restored: %s", bc->ports[j].name, err);
		for (unsigned j = 0; j < bc->nflows; j++) {
			char text[SW_FLOW_TEXT_MAX + 32];
			snprintf(text, sizeof(text), "priority=%u,%s", bc->flows[j].priority,
				 bc->flows[j].text);
			if (sd_flow_add(b, text, err, sizeof(err)) < 0)
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

	sd.ctl_fd = vnet_vhu_listen_group(sd.ctl_path, ctl_group ? 0660 : 0600, ctl_gid, err,
					  sizeof(err));
	if (sd.ctl_fd >= 0 && fcntl(sd.ctl_fd, F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, sizeof(err), "O_NONBLOCK: %s", strerror(errno));
		close(sd.ctl_fd);
		sd.ctl_fd = -1;
	}
	if (sd.ctl_fd < 0) {
		vnet_err("switchd: control socket: %s", err);
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

	uint64_t next_age = vnet_mono_ns();
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
		if (pfd[0].revents & POLLIN)
			sd_ctl_accept_pending(&sd, sd.ctl_fd);
		pthread_mutex_lock(&sd.lock);
		for (struct sd_bridge *b = sd.bridges; b; b = b->next)
			for (struct sd_port *p = b->ports; p; p = p->next)
				if (p->port.ops->service)
					p->port.ops->service(&p->port);
		uint64_t now = vnet_mono_ns();
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
		sd_bridge_destroy(&sd, sd.bridges);
	pthread_mutex_unlock(&sd.lock);
	for (unsigned i = 0; i < sd.npmd; i++)
		sd_pmd_stop(&sd.pmds[i]);
	sw_rcu_synchronize(&sd.rcu);
	sw_config_free(sd.cfg);
	return 0;
}
