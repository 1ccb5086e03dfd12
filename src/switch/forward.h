/*
 * forward.h — the switch's per-packet pipeline: for a burst received on one
 * port of a bridge, decide where each frame goes and prepare the frames
 * (VLAN tags, copies), grouped per output port so the poll-mode thread
 * transmits one burst per port.
 *
 * Pipeline per packet:
 *  1. L2 sanity: a frame shorter than an Ethernet header or with a cut
 *     802.1Q tag is dropped (SW_DROP_MALFORMED).
 *  2. Ingress VLAN admission (from struct sw_port of the ingress port):
 *     access port (tag=N): untagged (or priority-tagged VID 0) frames are in
 *     VLAN N, other tagged frames are dropped; trunk port (trunk=true,
 *     trunks bitmap, all-zero = every VLAN): a tagged frame whose VID is
 *     listed is in that VLAN, others are dropped, untagged frames are in
 *     VLAN 0 (native); a port with neither tag nor trunk trunks every
 *     VLAN (OVS's default). Drops count SW_DROP_VLAN.
 *  3. Flow lookup: a packet with the same key as the previous one in the
 *     burst reuses its flow; otherwise the EMC (per thread), then the
 *     classifier. No flow matched (or an empty table) = NORMAL. The flow's
 *     counters are updated (once per run of packets hitting one flow).
 *  4. Actions in order on a working copy of the frame's tag state:
 *     output:N sends the frame as it currently is (with whatever tag the
 *     actions so far left, no port VLAN processing: OpenFlow semantics);
 *     flood sends it as is to every port but the ingress; mod_vlan_vid /
 *     strip_vlan change the working tag; normal is the L2 learning switch:
 *     learn (VLAN, dl_src) → ingress port (multicast sources ignored), then
 *     known unicast → that port if it carries the VLAN (the ingress port:
 *     dropped, SW_DROP_LOOP), otherwise flood to every port carrying the
 *     VLAN except the ingress; broadcast/multicast → that flood. Egress
 *     for normal: access port → untagged; trunk → tagged with the VLAN
 *     (PCP kept), VLAN 0 → untagged. Learning happens only for NORMAL (as
 *     OVS), so an in_port→output cross-connect costs no FDB work.
 *  5. A frame never goes back out its ingress port (output:in_port is
 *     dropped as SW_DROP_LOOP). output to an ofport with no port:
 *     SW_DROP_NO_PORT.
 *
 * Copies: struct vnet_pkt has no reference count, so a frame going to k
 * outputs is copied (memcpy, from the out's pool) k-1 times; the original
 * is used for the last output. Each copy then gets its own tag rewrite
 * (push uses the headroom; virtio-net header csum_start/hdr_len follow).
 * No pool packet for a copy: that output is skipped (SW_DROP_NO_BUF).
 *
 * Ownership: after sw_forward_burst() every input packet and every copy is
 * in exactly one list of `out` — some ports[i].pkts or drop[] — and the
 * caller transmits ports[i] (sw_port_tx) then frees every packet of every
 * list (sw_fwd_out_free() does the freeing).
 *
 * Threads: sw_forward_burst() runs on any number of poll-mode threads at
 * once, each with its own struct sw_fwd_out (which holds its EMC and
 * pool). The calling thread must be a registered RCU reader of the flow
 * table's sw_rcu and call sw_quiesce() between bursts (never inside);
 * pointers in out (ports[i].port) stay valid until then. Ports are
 * attached/detached by the control thread with sw_bridge_ctx_set_port();
 * free a detached port only after sw_rcu_synchronize(). A port's VLAN
 * fields (tag, trunk, trunks) are read without locks: change them while
 * the port is detached.
 */
#ifndef VNET_SWITCH_FORWARD_H
#define VNET_SWITCH_FORWARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/parse.h"
#include "switch/fdb.h"
#include "switch/flow.h"
#include "switch/port.h"
#include "vnet/pkt.h"

/* ofports 1..SW_BRIDGE_MAX_PORTS-1 */
#define SW_BRIDGE_MAX_PORTS 256u
/* Most packets one sw_forward_burst() call takes. */
#define SW_FWD_MAX_BURST 64u
/* Most packets (originals + copies) one call queues for one port. */
#define SW_FWD_PORT_CAP SW_FWD_MAX_BURST
/* Most outputs one packet can produce. */
#define SW_FWD_MAX_OUTPUTS 512u

enum sw_drop_reason {
	SW_DROP_MALFORMED,  /* runt / cut VLAN tag (per packet) */
	SW_DROP_VLAN,       /* VLAN not admitted on the ingress port (per packet) */
	SW_DROP_FLOW,       /* the flow's actions send it nowhere: drop (per packet) */
	SW_DROP_NO_OUTPUT,  /* normal/flood found no other port (per packet) */
	SW_DROP_NO_PORT,    /* output to an ofport with no port (per output) */
	SW_DROP_LOOP,       /* output would be the ingress port (per output) */
	SW_DROP_NO_BUF,     /* no pool packet / room for a copy or tag (per output) */
	SW_DROP_OVERFLOW,   /* more than SW_FWD_PORT_CAP for one port (per output) */
	SW_DROP__COUNT
};

const char *sw_drop_reason_name(enum sw_drop_reason r);

/* One bridge as the forwarding core sees it. */
struct sw_bridge_ctx {
	_Atomic(struct sw_port *) ports[SW_BRIDGE_MAX_PORTS]; /* by ofport; [0] unused */
	_Atomic unsigned port_limit;  /* 1 + highest attached ofport */
	struct sw_fdb *fdb;
	struct sw_flow_table *flows;
	/* Statistics (relaxed atomics, added once per burst). */
	_Atomic uint64_t rx_packets, rx_bytes;
	_Atomic uint64_t drops[SW_DROP__COUNT];
};

/* fdb and flows must outlive the ctx. */
void sw_bridge_ctx_init(struct sw_bridge_ctx *br, struct sw_fdb *fdb, struct sw_flow_table *flows);
/* Attaches p at ofport (p->ofport should equal it), or detaches (p NULL).
 * -EINVAL when ofport is 0 or ≥ SW_BRIDGE_MAX_PORTS. Control thread. */
int sw_bridge_ctx_set_port(struct sw_bridge_ctx *br, uint16_t ofport, struct sw_port *p);

/* True if port p carries VLAN vlan (0 = native/untagged) for NORMAL. */
bool sw_port_carries_vlan(const struct sw_port *p, uint16_t vlan);

struct sw_fwd_out_port {
	uint16_t ofport;
	uint16_t n;
	struct sw_port *port;
	struct vnet_pkt *pkts[SW_FWD_PORT_CAP];
};

struct sw_fwd_out {
	unsigned n_ports;
	struct sw_fwd_out_port ports[SW_BRIDGE_MAX_PORTS];
	unsigned n_drop;
	struct vnet_pkt *drop[SW_FWD_MAX_BURST];
	uint64_t drops[SW_DROP__COUNT]; /* this call's, also added to the bridge and
					 * to the ingress port's fwd_drops */
	/* Per-thread state. */
	struct vnet_pkt_pool *pool;  /* copies come from here */
	struct sw_emc emc;
	uint16_t slot_of[SW_BRIDGE_MAX_PORTS]; /* ofport → index+1 in ports[] */
	struct {
		struct sw_port *port;
		uint16_t ofport;
		uint32_t state;
	} tmp[SW_FWD_MAX_OUTPUTS];
};

/* One per poll-mode thread (about 500 KiB). NULL on allocation failure. */
struct sw_fwd_out *sw_fwd_out_create(struct vnet_pkt_pool *pool);
void sw_fwd_out_destroy(struct sw_fwd_out *out);
/* Frees every packet still listed in out (sent or not) and empties it. */
void sw_fwd_out_free(struct sw_fwd_out *out);

/*
 * Forwards pkts[0..n) received on in_port of br at time now_ns (monotonic,
 * for FDB learning/aging). Empties `out` first (without freeing: the caller
 * has consumed it). Returns how many packets it took (min(n,
 * SW_FWD_MAX_BURST)); the caller keeps ownership of the rest.
 */
unsigned sw_forward_burst(struct sw_bridge_ctx *br, uint16_t in_port, struct vnet_pkt **pkts,
			  unsigned n, uint64_t now_ns, struct sw_fwd_out *out);

#endif
