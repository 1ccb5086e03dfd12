/*
 * port.h — vnet-switchd's port: one interface every port type implements
 * (vhost-user, tap, afpacket, null), so the forwarding core and the
 * poll-mode threads never know which kind they are moving frames for.
 *
 * Threads: open/close/service/describe run on the control thread. rx(q) for
 * one queue runs on the one poll-mode thread that owns that queue. tx(q) may
 * be called from any poll-mode thread; the port serialises it per queue
 * (ports take the tx lock of struct sw_port; see sw_port_tx()).
 * Packets are struct vnet_pkt from the calling thread's pool: rx fills
 * packets from `pool`; tx copies what it can and never frees (the caller
 * frees every packet it passed, sent or not).
 */
#ifndef VNET_SWITCH_PORT_H
#define VNET_SWITCH_PORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/pkt.h"

#define SW_PORT_NAME_MAX 32
#define SW_PORT_MAX_QUEUES 16
#define SW_PORT_MAX_OPTIONS 16
/* Highest usable ofport (OpenFlow reserves 0xff00 and up). */
#define SW_OFPORT_MAX 0xfeff
/* Slots for the forwarding drop reasons (forward.h's enum sw_drop_reason,
 * which forward.c asserts fits). */
#define SW_PORT_FWD_DROP_SLOTS 8

/* One key=value option as given to add-port / set-port (kept for persistence). */
struct sw_option {
	char key[32];
	char value[128];
};

struct sw_options {
	unsigned n;
	struct sw_option o[SW_PORT_MAX_OPTIONS];
};

/* Looks up a key; NULL when absent. */
const char *sw_options_get(const struct sw_options *opts, const char *key);

struct sw_queue_stats {
	_Atomic uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	_Atomic uint64_t rx_dropped, tx_dropped, errors;
};

struct sw_port;

struct sw_port_ops {
	const char *type; /* "vhost-user", "tap", "afpacket", "null" */
	/* Creates the port's resources from its options; err names the problem
	 * ("tap: cannot open /dev/net/tun: ..."). */
	int (*open)(struct sw_port *p, char *err, size_t errlen);
	void (*close)(struct sw_port *p);
	/* Receive up to n frames on queue q into packets from pool. */
	unsigned (*rx)(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool,
		       struct vnet_pkt **pkts, unsigned n);
	/* Transmit up to n frames on queue q; returns how many were taken. */
	unsigned (*tx)(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n);
	/* Control-thread work: accept/reconnect, protocol messages. fd to watch
	 * for it (or -1 when it needs only the periodic tick). */
	void (*service)(struct sw_port *p);
	int (*service_fd)(struct sw_port *p);
	/* fds that become readable when queue q has frames (for idle sleep). */
	int (*wake_fd)(struct sw_port *p, unsigned q);
	/* Optional (NULL: the fd's readiness needs no arming, as tap/afpacket).
	 * Called by the PMD thread that owns rx queue q. Before sleeping on
	 * wake_fd(q): arm_wake(q, true) asks the peer to signal the fd (a
	 * vhost-user guest kicks only when asked) and returns true when frames
	 * are already pending: poll again instead of sleeping. After waking:
	 * arm_wake(q, false) suppresses the peer's signals again and drains the
	 * fd. */
	bool (*arm_wake)(struct sw_port *p, unsigned q, bool on);
	/* One line of type-specific state for `vnetctl show`. */
	void (*describe)(struct sw_port *p, char *buf, size_t len);
};

struct sw_port {
	char name[SW_PORT_NAME_MAX];
	uint16_t ofport;              /* 1-based number in its bridge (flows' in_port) */
	const struct sw_port_ops *ops;
	struct sw_options opts;       /* as configured, for persistence */
	unsigned nrxq, ntxq;          /* set by open */
	uint16_t tag;                 /* access VLAN (0 = none) */
	uint64_t trunks[64];          /* bitmap of allowed VLANs for a trunk; all 0 = any */
	bool trunk;
	void *priv;                   /* the port type's state */
	void *bridge;                 /* owning bridge */
	atomic_flag tx_lock[SW_PORT_MAX_QUEUES];
	struct sw_queue_stats rxq[SW_PORT_MAX_QUEUES], txq[SW_PORT_MAX_QUEUES];
	/* Frames received on this port that forwarding dropped, by enum
	 * sw_drop_reason (relaxed atomics, added once per burst by
	 * sw_forward_burst(); also counted in the bridge's totals). */
	_Atomic uint64_t fwd_drops[SW_PORT_FWD_DROP_SLOTS];
	/* struct sw_capture * while `vnetctl capture` runs on this port (capture.h) */
	void *_Atomic capture;
};

/* The registry of port types, by name. NULL when unknown. */
const struct sw_port_ops *sw_port_type(const char *type);

/* tx under the queue's lock (spins: holders keep it for one burst). */
unsigned sw_port_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n);

/* ---- for the port type implementations (port_*.c) ---- */

extern const struct sw_port_ops sw_port_vhost_user_ops;
extern const struct sw_port_ops sw_port_tap_ops;
extern const struct sw_port_ops sw_port_afpacket_ops;
extern const struct sw_port_ops sw_port_null_ops;

/* Fails with "unknown option 'x' for TYPE port" unless every key is in
 * `known` (NULL-terminated). Returns 0 or -EINVAL. */
int sw_options_check(const struct sw_options *opts, const char *type, const char *const *known,
		     char *err, size_t errlen);

/* Parses an unsigned option (decimal, 0x hex or 0 octal) within [min, max];
 * `def` when absent. Returns 0 or -EINVAL with the problem in err. */
int sw_options_uint(const struct sw_options *opts, const char *key, unsigned def, unsigned min,
		    unsigned max, unsigned *out, const char *type, char *err, size_t errlen);

#endif
