/*
 * switchd.h — vnet-switchd's runtime: bridges and ports as the data plane
 * sees them, the poll-mode threads (PMDs), and the daemon state the control
 * commands change.
 *
 * Threads:
 *  - PMD threads (pmd.c): each polls the receive queues assigned to it,
 *    forwards (forward.h) and transmits. They read the assignment through an
 *    atomic pointer and are RCU readers of sd->rcu (sw_quiesce() once per
 *    loop; offline while asleep).
 *  - The main thread services ports (accept/reconnect, vhost-user messages),
 *    ages the FDBs and accepts control connections.
 *  - One thread per control connection runs the ctl callbacks.
 * Everything that changes bridges, ports, flows or the configuration holds
 * sd->lock; the data plane never takes it. A port or an assignment removed
 * from the data plane is freed only after sw_rcu_synchronize().
 */
#ifndef VNET_SWITCH_SWITCHD_H
#define VNET_SWITCH_SWITCHD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switch/config.h"
#include "switch/fdb.h"
#include "switch/flow.h"
#include "switch/forward.h"
#include "switch/port.h"

#define SD_MAX_PMDS 16
/* Empty polling rounds before a PMD sleeps (about 1 ms of polling here). */
#define SD_DEFAULT_IDLE_SPINS 20000u
#define SD_PATH_MAX 256

struct sd_bridge;

struct sd_port {
	struct sw_port port;
	struct sd_bridge *br;
	struct sd_port *next;
};

struct sd_bridge {
	char name[SW_NAME_MAX + 1];
	struct sw_fdb *fdb;
	struct sw_flow_table *flows;
	struct sw_bridge_ctx ctx;
	struct sd_port *ports;
	struct sd_bridge *next;
};

struct sd_rxq {
	struct sw_port *port;
	struct sd_bridge *br;
	unsigned q;
};

/* What one PMD polls; replaced whole, freed after a grace period. */
struct sd_rxq_list {
	unsigned n;
	struct sd_rxq q[];
};

struct switchd;

struct sd_pmd {
	struct switchd *sd;
	unsigned index;
	int cpu;                 /* -1: not pinned */
	pthread_t tid;
	bool running;
	struct sw_rcu_reader rcu;
	_Atomic(struct sd_rxq_list *) rxqs;
	atomic_bool stop;
	int wake_efd;            /* the control thread wakes a sleeping PMD */
	/* Written by the PMD only (relaxed stores of its own running totals),
	 * read by pmd-stats. Cycles: util/cycles.h. */
	_Atomic uint64_t loops, busy_loops, sleeps, packets;
	_Atomic uint64_t busy_cycles, idle_cycles;
};

struct switchd {
	char run_dir[SD_PATH_MAX], state_dir[SD_PATH_MAX];
	char ctl_path[SD_PATH_MAX + 32], state_path[SD_PATH_MAX + 32];
	pthread_mutex_t lock;
	struct sw_config *cfg;   /* desired state, persisted on every change */
	struct sd_bridge *bridges;
	struct sw_rcu rcu;
	unsigned npmd;
	struct sd_pmd pmds[SD_MAX_PMDS];
	int ctl_fd;
	unsigned idle_spins;     /* empty loops before a PMD sleeps; 0 = never sleeps */
	volatile int stop;
};

/* switchd.c: the running bridges and ports (caller holds sd->lock) */
struct ctl_reply;
struct sd_bridge *sd_find_bridge(struct switchd *sd, const char *name);
struct sd_port *sd_find_port(struct switchd *sd, const char *name);
void sd_set_port_vlans(struct sw_port *p, const struct sw_port_config *pc);
/* Opens a port from its configuration and adds it to b and the data plane. */
int sd_port_create(struct switchd *sd, struct sd_bridge *b, const struct sw_port_config *pc,
		   char *err, size_t errlen);
void sd_port_destroy(struct switchd *sd, struct sd_port *p);
struct sd_bridge *sd_bridge_create(struct switchd *sd, const char *name);
void sd_bridge_destroy(struct switchd *sd, struct sd_bridge *b);
/* Adds a flow given as text ("priority=...,match,actions=..."). */
int sd_flow_add(struct sd_bridge *b, const char *text, char *err, size_t errlen);
/* Makes `next` the current configuration and saves it (a save failure is
 * logged and put in r as a warning; the change stays). */
void sd_commit(struct switchd *sd, struct sw_config *next, struct ctl_reply *r);

/* switchd_ctl.c: takes the waiting control connections (listen_fd is
 * non-blocking), each onto a thread that serves it. */
void sd_ctl_accept_pending(struct switchd *sd, int listen_fd);

/* pmd.c */
int sd_pmd_start(struct switchd *sd, struct sd_pmd *pmd);
void sd_pmd_stop(struct sd_pmd *pmd);
/* Spreads every receive queue of every port over the PMDs and publishes the
 * new assignment (caller holds sd->lock; old lists freed after a grace period). */
void sd_pmd_reassign(struct switchd *sd);

#endif
