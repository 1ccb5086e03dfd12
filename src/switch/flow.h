/*
 * flow.h — the switch's OpenFlow-like flow table: match + priority →
 * actions, in ovs-ofctl syntax; the exact-match cache (EMC) in front of it;
 * and the RCU scheme that lets poll-mode threads look flows up without
 * locks while the control thread changes the table.
 *
 * Semantics (as ovs-ofctl / OVS):
 *  - Match fields: in_port, dl_src, dl_dst (optional /mask), dl_vlan
 *    (0..4095, or 0xffff = no tag), dl_vlan_pcp, dl_type, nw_src, nw_dst
 *    (a.b.c.d[/prefix|/mask]; for ARP the SPA/TPA, alias arp_spa/arp_tpa),
 *    nw_proto (ARP: the opcode, alias arp_op), nw_tos, tp_src, tp_dst
 *    (value[/mask]), icmp_type, icmp_code, ipv6_src, ipv6_dst (addr[/prefix]);
 *    aliases eth_src, eth_dst, eth_type, ip_proto. Shorthands: ip, ipv6,
 *    arp, icmp, icmp6, tcp, udp, sctp, tcp6, udp6, sctp6. Prerequisites are
 *    enforced (nw_* needs ip/arp, tp_* needs tcp/udp/sctp/icmp, ...).
 *  - priority 0..65535, default 32768; `table=0` is accepted.
 *  - Actions, run in order: output:N (also a bare N), normal, flood (alias
 *    all: every port but the ingress, frame as it is), mod_vlan_vid:V,
 *    strip_vlan (alias pop_vlan), drop (alone) or an empty list = drop.
 *  - Lookup returns the highest-priority matching flow (equal priorities:
 *    the earliest added wins). No matching flow — in particular an empty
 *    table — means NORMAL: the table behaves as if OVS's default
 *    "priority=0,actions=NORMAL" flow were always present (and cannot be
 *    deleted). For default-deny add "priority=0,actions=drop".
 *  - add-flow with the same match and priority replaces the old flow (its
 *    counters restart, as OpenFlow's OFPFC_ADD).
 *  - del-flows (non-strict): deletes every flow whose match is covered by
 *    the given one, i.e. at least as specific: each field the given match
 *    constrains is constrained by the flow to a subset of it. An empty
 *    match deletes all. Strict: same match and priority only.
 *
 * Concurrency (RCU, quiescent-state based):
 *  - The table publishes an immutable version (sorted array of flow
 *    pointers) through an atomic pointer. Writers (control thread; they are
 *    serialised by a mutex) build a new version and publish it; the old
 *    version and removed flows are freed once every registered reader has
 *    passed a quiescent point (sw_rcu_defer / sw_rcu_poll).
 *  - A poll-mode thread registers one struct sw_rcu_reader, gets the
 *    version with sw_flow_table_current() and may use it and its flows
 *    until its next sw_quiesce(), which it calls once per loop iteration
 *    (outside any use of table pointers). Before blocking (idle sleep) it
 *    calls sw_rcu_offline() and sw_rcu_online() after waking.
 *  - Flow counters are atomics updated by readers (sw_flow_count()).
 *  - The EMC is per thread (no sharing, no atomics); entries record the
 *    version generation, so any table change invalidates them all at once.
 */
#ifndef VNET_SWITCH_FLOW_H
#define VNET_SWITCH_FLOW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/parse.h"

/* ------------------------------------------------------------------ RCU */

#define SW_RCU_MAX_READERS 64

struct sw_rcu;

struct sw_rcu_reader {
	_Atomic uint64_t seen; /* last epoch observed at a quiescent point; 0 = offline */
	struct sw_rcu *rcu;
	int slot;
};

struct sw_rcu_cb;

struct sw_rcu {
	_Atomic uint64_t epoch;
	pthread_mutex_t lock; /* readers' registry and the deferred list */
	_Atomic(struct sw_rcu_reader *) readers[SW_RCU_MAX_READERS];
	struct sw_rcu_cb *pending; /* oldest first */
	struct sw_rcu_cb *pending_tail;
};

int sw_rcu_init(struct sw_rcu *rcu);
/* Runs every pending callback: only when no reader uses anything anymore. */
void sw_rcu_fini(struct sw_rcu *rcu);

/* Registers the calling thread's reader (online). 0 or -ENOSPC. */
int sw_rcu_register(struct sw_rcu *rcu, struct sw_rcu_reader *r);
void sw_rcu_unregister(struct sw_rcu_reader *r);

/* Quiescent point: the thread holds no pointer obtained from an RCU-
 * protected structure. Cheap (one load, one store). */
static inline void sw_quiesce(struct sw_rcu_reader *r)
{
	atomic_store(&r->seen, atomic_load(&r->rcu->epoch));
}

/* Extended quiescent state (e.g. sleeping in epoll) and back. */
void sw_rcu_offline(struct sw_rcu_reader *r);
void sw_rcu_online(struct sw_rcu_reader *r);

/* Calls fn(arg) once every reader has passed a quiescent point after this
 * call (from a later sw_rcu_poll/synchronize on some control thread). The
 * object must already be unreachable for new readers. */
void sw_rcu_defer(struct sw_rcu *rcu, void (*fn)(void *), void *arg);
/* Runs the callbacks whose grace period is over; returns how many ran. */
unsigned sw_rcu_poll(struct sw_rcu *rcu);
/* Waits until every online reader has quiesced, then polls. Never call it
 * from a registered (online) reader. */
void sw_rcu_synchronize(struct sw_rcu *rcu);

/* ------------------------------------------------------------ matches */

struct sw_match {
	union {
		struct vnet_flow_key key; /* values, already masked */
		uint32_t kw[VNET_FLOW_KEY_WORDS];
	};
	union {
		struct vnet_flow_key mask; /* 1 bits are significant */
		uint32_t mw[VNET_FLOW_KEY_WORDS];
	};
};

/* True if the packet key k matches m. */
bool sw_match_matches(const struct sw_match *m, const struct vnet_flow_key *k);
/* True if every packet matching `specific` also matches `general`. */
bool sw_match_covers(const struct sw_match *general, const struct sw_match *specific);
bool sw_match_equal(const struct sw_match *a, const struct sw_match *b);

/* ------------------------------------------------------------ actions */

enum sw_action_type {
	SW_ACT_OUTPUT,        /* arg = ofport */
	SW_ACT_NORMAL,
	SW_ACT_FLOOD,
	SW_ACT_MOD_VLAN_VID,  /* arg = VID */
	SW_ACT_STRIP_VLAN,
};

struct sw_action {
	uint16_t type;
	uint16_t arg;
};

#define SW_FLOW_MAX_ACTIONS 16
#define SW_FLOW_DEFAULT_PRIORITY 32768
#define SW_FLOW_OFPORT_MAX 0xfeff /* highest usable ofport number (OpenFlow's 0xff00+ are reserved) */

/* A parsed "match,actions=..." string. */
struct sw_flow_spec {
	struct sw_match match;
	uint16_t priority;
	bool has_priority;
	bool has_actions;
	unsigned n_actions;
	struct sw_action actions[SW_FLOW_MAX_ACTIONS];
};

enum sw_flow_parse_mode {
	SW_PARSE_FLOW,  /* add-flow: actions required */
	SW_PARSE_MATCH, /* del-flows / dump-flows filter: no actions */
};

/*
 * Parses an ovs-ofctl flow string; fields are separated by commas or white
 * space, "actions=" takes the rest. Returns 0, or -1 with a message in err
 * ("unknown field 'foo'", "bad value for nw_dst: '10.0.0.300'",
 * "missing actions", ...).
 */
int sw_flow_spec_parse(const char *s, enum sw_flow_parse_mode mode, struct sw_flow_spec *spec,
		  char *err, size_t errlen);

/* "priority=100,ip,in_port=1,nw_dst=10.0.0.0/24" (priority omitted when
 * default; "" for match-all). Returns the length snprintf would write. */
size_t sw_match_format(const struct sw_match *m, uint16_t priority, char *buf, size_t len);
/* "output:2,mod_vlan_vid:10", "NORMAL", "drop". */
size_t sw_actions_format(const struct sw_action *a, unsigned n, char *buf, size_t len);
/* The whole spec in add-flow syntax: "<match>,actions=<actions>" — parses
 * back to the same spec. */
size_t sw_flow_spec_format(const struct sw_flow_spec *spec, char *buf, size_t len);

/* -------------------------------------------------------------- flows */

struct sw_flow {
	struct sw_match match;
	uint16_t priority;
	uint8_t n_actions;
	bool has_normal;  /* some action is NORMAL (the packet is learnt) */
	struct sw_action actions[SW_FLOW_MAX_ACTIONS];
	uint8_t n_words;  /* mask words that are not zero, listed in widx */
	uint8_t widx[VNET_FLOW_KEY_WORDS];
	uint64_t seq;     /* insertion order */
	uint64_t created_ns;
	_Atomic uint64_t n_packets, n_bytes;
};

static inline void sw_flow_count(struct sw_flow *f, uint64_t packets, uint64_t bytes)
{
	atomic_fetch_add_explicit(&f->n_packets, packets, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->n_bytes, bytes, memory_order_relaxed);
}

/* dump-flows line: "duration=1.5s, table=0, n_packets=3, n_bytes=180,
 * priority=100,ip,in_port=1 actions=output:2" (now_ns: CLOCK_MONOTONIC). */
size_t sw_flow_dump_format(const struct sw_flow *f, uint64_t now_ns, char *buf, size_t len);

/* An immutable table version. */
struct sw_flow_version {
	uint64_t gen;     /* unique across all tables, never 0 */
	unsigned n;
	struct sw_flow *flows[]; /* priority descending, then seq ascending */
};

struct sw_flow_table;

#define SW_FLOW_TABLE_DEFAULT_MAX 65536u

/* max_flows 0 = default. NULL on allocation failure. */
struct sw_flow_table *sw_flow_table_create(struct sw_rcu *rcu, unsigned max_flows);
/* No reader may use the table any more (PMD threads detached). */
void sw_flow_table_destroy(struct sw_flow_table *t);

/* Control thread. 0, -ENOMEM, -ENOSPC (table full). *replaced (may be
 * NULL) tells whether a flow with that match+priority was replaced. */
int sw_flow_table_add(struct sw_flow_table *t, const struct sw_flow_spec *spec, bool *replaced);
/* Deletes as described above (match NULL = all); returns how many. */
unsigned sw_flow_table_del(struct sw_flow_table *t, const struct sw_match *match, bool strict,
			   uint16_t priority);
unsigned sw_flow_table_count(struct sw_flow_table *t);
/* Calls fn for each flow in lookup order, under the writers' mutex (fn must
 * not change the table). match (may be NULL) filters non-strictly. */
unsigned sw_flow_table_foreach(struct sw_flow_table *t, const struct sw_match *match,
			       void (*fn)(const struct sw_flow *f, void *arg), void *arg);

/* Reader side: the current version (valid until the reader's next quiesce). */
const struct sw_flow_version *sw_flow_table_current(struct sw_flow_table *t);

/* Highest-priority flow of v matching k, or NULL (= NORMAL). */
struct sw_flow *sw_flow_classify(const struct sw_flow_version *v, const struct vnet_flow_key *k);

/* ---------------------------------------------------------------- EMC */

#define SW_EMC_ENTRIES 4096u /* power of two */

struct sw_emc_entry {
	struct vnet_flow_key key;
	uint32_t hash;
	struct sw_flow *flow; /* NULL = no flow matched (NORMAL) */
	uint64_t gen;         /* 0 = empty */
};

struct sw_emc {
	struct sw_emc_entry e[SW_EMC_ENTRIES];
	uint64_t hits, misses;
};

void sw_emc_init(struct sw_emc *emc);

/* The flow for k (hash = vnet_flow_key_hash(k, 0)) in version v: the cache
 * first, the classifier on a miss (and the result cached). NULL = NORMAL. */
struct sw_flow *sw_emc_lookup(struct sw_emc *emc, const struct sw_flow_version *v,
			      const struct vnet_flow_key *k, uint32_t hash);

#endif
