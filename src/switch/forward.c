/* forward.c — the per-packet pipeline; see forward.h. */
#include "switch/forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/frame.h"

/* Tag state of a frame: 0 = no tag, else TAGGED | TCI. */
#define TAGGED 0x10000u
#define STATE_TCI(s) ((uint16_t)((s) & 0xffffu))
#define STATE_VID(s) ((uint16_t)((s) & 0x0fffu))

_Static_assert(SW_DROP__COUNT <= SW_PORT_FWD_DROP_SLOTS,
	       "struct sw_port's fwd_drops[] must hold every enum sw_drop_reason");

const char *sw_drop_reason_name(enum sw_drop_reason r)
{
	static const char *const names[SW_DROP__COUNT] = {
		[SW_DROP_MALFORMED] = "malformed",
		[SW_DROP_VLAN] = "vlan",
		[SW_DROP_FLOW] = "flow_drop",
		[SW_DROP_NO_OUTPUT] = "no_output",
		[SW_DROP_NO_PORT] = "no_port",
		[SW_DROP_LOOP] = "loop",
		[SW_DROP_NO_BUF] = "no_buf",
		[SW_DROP_OVERFLOW] = "overflow",
	};
	return (unsigned)r < SW_DROP__COUNT ? names[r] : "?";
}

void sw_bridge_ctx_init(struct sw_bridge_ctx *br, struct sw_fdb *fdb, struct sw_flow_table *flows)
{
	memset(br, 0, sizeof(*br));
	for (unsigned i = 0; i < SW_BRIDGE_MAX_PORTS; i++)
		atomic_init(&br->ports[i], NULL);
	br->fdb = fdb;
	br->flows = flows;
}

int sw_bridge_ctx_set_port(struct sw_bridge_ctx *br, uint16_t ofport, struct sw_port *p)
{
	if (ofport == 0 || ofport >= SW_BRIDGE_MAX_PORTS)
		return -EINVAL;
	atomic_store(&br->ports[ofport], p);
	unsigned limit = 0;
	for (unsigned i = SW_BRIDGE_MAX_PORTS; i-- > 1;)
		if (atomic_load(&br->ports[i])) {
			limit = i + 1;
			break;
		}
	atomic_store(&br->port_limit, limit);
	return 0;
}

static inline struct sw_port *get_port(struct sw_bridge_ctx *br, unsigned ofport)
{
	if (ofport == 0 || ofport >= SW_BRIDGE_MAX_PORTS)
		return NULL;
	return atomic_load_explicit(&br->ports[ofport], memory_order_acquire);
}

static bool trunks_any(const struct sw_port *p)
{
	for (unsigned i = 0; i < 64; i++)
		if (p->trunks[i])
			return false;
	return true;
}

static inline bool is_access(const struct sw_port *p)
{
	return !p->trunk && p->tag != 0;
}

/* Inline in the per-packet path: a call there made the compiler spill the
 * VLAN to the stack narrow and reload it wide, a store-forwarding stall of
 * about 20 cycles a packet in NORMAL. */
static inline bool carries_vlan(const struct sw_port *p, uint16_t vlan)
{
	vlan &= 0x0fff;
	if (is_access(p))
		return p->tag == vlan;
	if (!p->trunk || vlan == 0)
		return true; /* default port trunks everything; VLAN 0 is native */
	if ((p->trunks[vlan / 64] >> (vlan % 64)) & 1)
		return true;
	return trunks_any(p);
}

bool sw_port_carries_vlan(const struct sw_port *p, uint16_t vlan)
{
	return carries_vlan(p, vlan);
}

/* VLAN of a frame in tag state `state` arriving on p, or -1 (not admitted). */
static int ingress_vlan(const struct sw_port *p, uint32_t state)
{
	uint16_t vid = (state & TAGGED) ? STATE_VID(state) : 0;
	if (is_access(p))
		return vid == 0 ? p->tag : -1;
	return carries_vlan(p, vid) ? vid : -1;
}

/* Tag state NORMAL gives a frame of VLAN vlan leaving on p. */
static uint32_t egress_state(const struct sw_port *p, uint16_t vlan, uint32_t cur)
{
	if (is_access(p) || vlan == 0)
		return 0;
	uint16_t pcp = (cur & TAGGED) ? (STATE_TCI(cur) & 0xe000) : 0;
	return TAGGED | pcp | vlan;
}

/* ---- out bookkeeping ---- */

struct sw_fwd_out *sw_fwd_out_create(struct vnet_pkt_pool *pool)
{
	struct sw_fwd_out *out = calloc(1, sizeof(*out));
	if (!out)
		return NULL;
	out->pool = pool;
	sw_emc_init(&out->emc);
	return out;
}

void sw_fwd_out_destroy(struct sw_fwd_out *out)
{
	free(out);
}

static void out_reset(struct sw_fwd_out *out)
{
	for (unsigned i = 0; i < out->n_ports; i++)
		out->slot_of[out->ports[i].ofport] = 0;
	out->n_ports = 0;
	out->n_drop = 0;
	memset(out->drops, 0, sizeof(out->drops));
}

void sw_fwd_out_free(struct sw_fwd_out *out)
{
	for (unsigned i = 0; i < out->n_ports; i++)
		vnet_pkt_free_burst(out->ports[i].pkts, out->ports[i].n);
	vnet_pkt_free_burst(out->drop, out->n_drop);
	out_reset(out);
}

/* Queues pkt for ofport (port p); false when that port's list is full. */
static bool out_add(struct sw_fwd_out *out, uint16_t ofport, struct sw_port *p,
		    struct vnet_pkt *pkt)
{
	unsigned s = out->slot_of[ofport];
	struct sw_fwd_out_port *op;
	if (s == 0) {
		op = &out->ports[out->n_ports++];
		out->slot_of[ofport] = (uint16_t)out->n_ports;
		op->ofport = ofport;
		op->port = p;
		op->n = 0;
	} else {
		op = &out->ports[s - 1];
	}
	if (op->n == SW_FWD_PORT_CAP)
		return false;
	op->pkts[op->n++] = pkt;
	return true;
}

/* ---- frame edits ---- */

static void vhdr_shift(struct vnet_pkt *p, int delta)
{
	if (p->vhdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		p->vhdr.csum_start = (uint16_t)(p->vhdr.csum_start + delta);
	if (p->vhdr.gso_type != VIRTIO_NET_HDR_GSO_NONE && p->vhdr.hdr_len)
		p->vhdr.hdr_len = (uint16_t)(p->vhdr.hdr_len + delta);
}

/* Rewrites pkt's outer tag from state `from` to `to`. false: no room. */
static bool apply_tag(struct vnet_pkt *p, uint32_t from, uint32_t to)
{
	if (from == to)
		return true;
	if ((from & TAGGED) && (to & TAGGED)) {
		uint16_t tci = STATE_TCI(to);
		p->data[14] = (uint8_t)(tci >> 8);
		p->data[15] = (uint8_t)tci;
		return true;
	}
	if (from & TAGGED) { /* pop */
		memmove(p->data + 4, p->data, 12);
		p->data += 4;
		p->len -= 4;
		vhdr_shift(p, -4);
		return true;
	}
	/* push */
	if (p->data - p->buf < 4) {
		if (vnet_pkt_tailroom(p) < p->len + 4)
			return false;
		memmove(p->data + 4, p->data, p->len);
		p->data += 4;
	}
	memmove(p->data - 4, p->data, 12);
	p->data -= 4;
	p->len += 4;
	uint16_t tci = STATE_TCI(to);
	p->data[12] = VNET_ETH_P_VLAN >> 8;
	p->data[13] = VNET_ETH_P_VLAN & 0xff;
	p->data[14] = (uint8_t)(tci >> 8);
	p->data[15] = (uint8_t)tci;
	vhdr_shift(p, 4);
	return true;
}

static struct vnet_pkt *clone_pkt(struct vnet_pkt_pool *pool, const struct vnet_pkt *p)
{
	if (!pool)
		return NULL;
	struct vnet_pkt *c = vnet_pkt_alloc(pool);
	if (!c)
		return NULL;
	if (vnet_pkt_tailroom(c) < p->len) {
		vnet_pkt_free(c);
		return NULL;
	}
	memcpy(c->data, p->data, p->len);
	c->len = p->len;
	c->vhdr = p->vhdr;
	c->in_port = p->in_port;
	return c;
}

/* ---- per-packet decision ---- */

struct pkt_ctx {
	struct sw_bridge_ctx *br;
	struct sw_fwd_out *out;
	uint16_t in_port;
	struct sw_port *in;
	const struct vnet_flow_key *key;
	uint64_t now;
	unsigned nout;
	unsigned ndrops;      /* drop events counted for this packet */
	struct burst_fdb *fdb_seen; /* what this burst already asked the FDB */
};

/* A burst is mostly one conversation: one source to learn, one destination
 * to look up. Tags are learn_tag()s, 0 when unset. Learning clears the
 * remembered lookup, since the MAC just learnt may be a later destination. */
struct burst_fdb {
	uint64_t learnt;   /* (vlan, src) learnt last */
	uint64_t dst;      /* (vlan, dst) looked up last */
	uint16_t dst_port; /* its answer (0: unknown) */
};

static inline void drop_ev(struct pkt_ctx *c, enum sw_drop_reason r)
{
	c->out->drops[r]++;
	c->ndrops++;
}

static void emit(struct pkt_ctx *c, uint16_t ofport, struct sw_port *p, uint32_t state)
{
	if (c->nout == SW_FWD_MAX_OUTPUTS) {
		drop_ev(c, SW_DROP_OVERFLOW);
		return;
	}
	c->out->tmp[c->nout].port = p;
	c->out->tmp[c->nout].ofport = ofport;
	c->out->tmp[c->nout].state = state;
	c->nout++;
}

static void do_output(struct pkt_ctx *c, uint16_t port, uint32_t state)
{
	struct sw_port *p = port == c->in_port ? NULL : get_port(c->br, port);
	if (port == c->in_port)
		drop_ev(c, SW_DROP_LOOP);
	else if (!p)
		drop_ev(c, SW_DROP_NO_PORT);
	else
		emit(c, port, p, state);
}

static void do_flood(struct pkt_ctx *c, uint32_t state)
{
	unsigned limit = atomic_load_explicit(&c->br->port_limit, memory_order_relaxed);
	for (unsigned i = 1; i < limit; i++) {
		struct sw_port *p = i == c->in_port ? NULL : get_port(c->br, i);
		if (p)
			emit(c, (uint16_t)i, p, state);
	}
}

static void flood_vlan(struct pkt_ctx *c, uint16_t vlan, uint32_t cur)
{
	unsigned limit = atomic_load_explicit(&c->br->port_limit, memory_order_relaxed);
	for (unsigned i = 1; i < limit; i++) {
		if (i == c->in_port)
			continue;
		struct sw_port *p = get_port(c->br, i);
		if (p && carries_vlan(p, vlan))
			emit(c, (uint16_t)i, p, egress_state(p, vlan, cur));
	}
}

/* An equality tag only (byte order is irrelevant): the MAC's six bytes in
 * two loads, the VLAN above them, bit 63 so that no tag is 0. */
static inline uint64_t learn_tag(uint64_t vlan_bits, const uint8_t *mac)
{
	uint32_t lo;
	uint16_t hi;
	memcpy(&lo, mac, 4);
	memcpy(&hi, mac + 4, 2);
	return vlan_bits | (uint64_t)hi << 32 | lo;
}

static void do_normal(struct pkt_ctx *c, uint32_t cur)
{
	int v = ingress_vlan(c->in, cur);
	if (v < 0) {
		drop_ev(c, SW_DROP_VLAN);
		return;
	}
	uint16_t vlan = (uint16_t)v;
	uint64_t vlan_bits = 1ull << 63 | (uint64_t)vlan << 48;
	const struct vnet_flow_key *k = c->key;
	if (!sw_mac_is_multicast(k->dl_src)) {
		uint64_t t = learn_tag(vlan_bits, k->dl_src);
		if (c->fdb_seen->learnt != t) {
			sw_fdb_learn(c->br->fdb, vlan, k->dl_src, c->in_port, c->now);
			c->fdb_seen->learnt = t;
			c->fdb_seen->dst = 0;
		}
	}
	if (!sw_mac_is_multicast(k->dl_dst)) {
		uint64_t d = learn_tag(vlan_bits, k->dl_dst);
		if (c->fdb_seen->dst != d) {
			c->fdb_seen->dst_port = sw_fdb_lookup(c->br->fdb, vlan, k->dl_dst, c->now);
			c->fdb_seen->dst = d;
		}
		uint16_t port = c->fdb_seen->dst_port;
		if (port == c->in_port) {
			drop_ev(c, SW_DROP_LOOP);
			return;
		}
		struct sw_port *p = port ? get_port(c->br, port) : NULL;
		if (p && carries_vlan(p, vlan)) {
			emit(c, port, p, egress_state(p, vlan, cur));
			return;
		}
	}
	flood_vlan(c, vlan, cur);
}

static const struct sw_action normal_action = {.type = SW_ACT_NORMAL};

unsigned sw_forward_burst(struct sw_bridge_ctx *br, uint16_t in_port, struct vnet_pkt **pkts,
			  unsigned n, uint64_t now_ns, struct sw_fwd_out *out)
{
	out_reset(out);
	if (n > SW_FWD_MAX_BURST)
		n = SW_FWD_MAX_BURST;
	struct sw_port *in = get_port(br, in_port);
	uint64_t bytes = 0;
	for (unsigned i = 0; i < n; i++)
		bytes += pkts[i]->len;
	atomic_fetch_add_explicit(&br->rx_packets, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&br->rx_bytes, bytes, memory_order_relaxed);
	if (!in) {
		for (unsigned i = 0; i < n; i++)
			out->drop[out->n_drop++] = pkts[i];
		out->drops[SW_DROP_NO_PORT] += n;
		goto done;
	}

	const struct sw_flow_version *ver = sw_flow_table_current(br->flows);
	struct sw_flow *acc_flow = NULL;
	uint64_t acc_pkts = 0, acc_bytes = 0;
	struct burst_fdb fdb_seen = {0};
	const struct vnet_flow_key *prev_key = NULL;
	struct sw_flow *prev_flow = NULL;

	/* Every key of the burst first: comparing a key just written field by
	 * field stalls on store forwarding; a pass later, the stores are done. */
	struct vnet_flow_key keys[SW_FWD_MAX_BURST];
	for (unsigned i = 0; i < n; i++)
		vnet_flow_extract(pkts[i]->data, pkts[i]->len, in_port, &keys[i]);

	for (unsigned i = 0; i < n; i++) {
		struct vnet_pkt *pkt = pkts[i];
		const struct vnet_flow_key *key = &keys[i];
		if (pkt->len < VNET_ETH_HLEN ||
		    ((key->flags & VNET_KEY_F_TRUNC) &&
		     (key->dl_type == VNET_ETH_P_VLAN || key->dl_type == VNET_ETH_P_QINQ))) {
			out->drops[SW_DROP_MALFORMED]++;
			out->drop[out->n_drop++] = pkt;
			continue;
		}
		uint32_t orig = key->vlan_tci ? TAGGED | (key->vlan_tci & ~VNET_KEY_VLAN_PRESENT) : 0;
		if (ingress_vlan(in, orig) < 0) {
			out->drops[SW_DROP_VLAN]++;
			out->drop[out->n_drop++] = pkt;
			continue;
		}

		struct sw_flow *flow = NULL;
		if (ver->n) {
			/* Same key as the previous packet (a burst of one flow):
			 * same flow, no hashing. */
			if (prev_key && !memcmp(key, prev_key, sizeof(*key))) {
				flow = prev_flow;
			} else {
				flow = sw_emc_lookup(&out->emc, ver, key,
						     vnet_flow_key_hash(key, 0));
				prev_flow = flow;
			}
			prev_key = key;
		}
		if (flow != acc_flow) {
			if (acc_flow)
				sw_flow_count(acc_flow, acc_pkts, acc_bytes);
			acc_flow = flow;
			acc_pkts = acc_bytes = 0;
		}
		acc_pkts++;
		acc_bytes += pkt->len;
		const struct sw_action *acts = flow ? flow->actions : &normal_action;
		unsigned nacts = flow ? flow->n_actions : 1;

		struct pkt_ctx c = {
			.br = br, .out = out, .in_port = in_port, .in = in, .key = key,
			.now = now_ns, .fdb_seen = &fdb_seen,
		};
		uint32_t cur = orig;
		for (unsigned a = 0; a < nacts; a++) {
			switch (acts[a].type) {
			case SW_ACT_OUTPUT:
				do_output(&c, acts[a].arg, cur);
				break;
			case SW_ACT_FLOOD:
				do_flood(&c, cur);
				break;
			case SW_ACT_NORMAL:
				do_normal(&c, cur);
				break;
			case SW_ACT_MOD_VLAN_VID:
				cur = TAGGED | ((cur & TAGGED) ? (STATE_TCI(cur) & 0xe000) : 0) |
				      acts[a].arg;
				break;
			case SW_ACT_STRIP_VLAN:
				cur = 0;
				break;
			default:
				break;
			}
		}

		if (c.nout == 0) {
			/* Reason already counted (vlan, loop, no_port...)? If not,
			 * say why it went nowhere. */
			if (c.ndrops == 0) {
				bool fwd = false;
				for (unsigned a = 0; a < nacts; a++)
					fwd |= acts[a].type == SW_ACT_NORMAL ||
					       acts[a].type == SW_ACT_FLOOD;
				out->drops[fwd ? SW_DROP_NO_OUTPUT : SW_DROP_FLOW]++;
			}
			out->drop[out->n_drop++] = pkt;
			continue;
		}
		/* Copies first (from the untouched original), original last. */
		for (unsigned j = 0; j < c.nout; j++) {
			bool last = j + 1 == c.nout;
			struct vnet_pkt *p = last ? pkt : clone_pkt(out->pool, pkt);
			if (!p) {
				out->drops[SW_DROP_NO_BUF]++;
				continue;
			}
			enum sw_drop_reason why = SW_DROP__COUNT;
			if (!apply_tag(p, orig, out->tmp[j].state))
				why = SW_DROP_NO_BUF;
			else if (!out_add(out, out->tmp[j].ofport, out->tmp[j].port, p))
				why = SW_DROP_OVERFLOW;
			if (why != SW_DROP__COUNT) {
				out->drops[why]++;
				if (last)
					out->drop[out->n_drop++] = p;
				else
					vnet_pkt_free(p);
			}
		}
	}
	if (acc_flow)
		sw_flow_count(acc_flow, acc_pkts, acc_bytes);
done:
	for (unsigned r = 0; r < SW_DROP__COUNT; r++) {
		if (!out->drops[r])
			continue;
		atomic_fetch_add_explicit(&br->drops[r], out->drops[r], memory_order_relaxed);
		if (in) /* and to the ingress port (none when it is unknown) */
			atomic_fetch_add_explicit(&in->fwd_drops[r], out->drops[r],
						  memory_order_relaxed);
	}
	return n;
}
