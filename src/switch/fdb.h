/*
 * fdb.h — a bridge's L2 forwarding database: (VLAN, MAC) → ofport, learnt
 * from source addresses, aged, bounded, with static entries (as OVS's
 * mac-learning table and `bridge fdb`).
 *
 * Storage: one preallocated array of entries, organised as 2-choice
 * buckets of 8 slots (about twice as many slots as max_entries), so an
 * entry never moves once stored, lookup costs at most two cache-line
 * groups and nothing is allocated after sw_fdb_create().
 *
 * Limits (MAC-flood defence, as OVS):
 *  - max_per_port: learning a new MAC on a port that already holds that
 *    many dynamic entries evicts that port's least recently used one;
 *  - max_entries: when the table is full, the LRU entry of the port with
 *    the most dynamic entries is evicted ("fair" eviction, so a port
 *    flooding random source MACs only evicts its own entries);
 *  - in the rare case both candidate buckets are full, the least recently
 *    used dynamic entry among them is replaced.
 * LRU is a second-chance approximation: per-port lists in learning order,
 * and an entry refreshed since it was queued goes to the tail instead of
 * being evicted (exact for the usual "refreshed vs not" cases).
 *
 * Time: every call that needs it takes `now` in nanoseconds from a
 * monotonic clock chosen by the caller (tests pass made-up values).
 * An entry is expired when now - used > aging; expired entries are
 * invisible to lookups at once and removed by sw_fdb_age().
 *
 * Thread-safety:
 *  - sw_fdb_lookup() is lock-free and may run on any number of threads
 *    concurrently with everything else (a reader racing with a change sees
 *    the old or the new port, never a torn one).
 *  - sw_fdb_learn() is safe from any thread: a source already known on the
 *    same port only refreshes its timestamp (lock-free); anything else
 *    (new MAC, move) takes the FDB's spinlock.
 *  - add_static / del / flush / age / foreach / set_* take the spinlock too
 *    (control thread; they are short except age/foreach/flush which walk
 *    the table: ~16k slots for the default size).
 *  - create/destroy: no concurrent users.
 */
#ifndef VNET_SWITCH_FDB_H
#define VNET_SWITCH_FDB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_FDB_DEFAULT_MAX_ENTRIES 8192u
#define SW_FDB_DEFAULT_AGING_S     300u
/* Ports 1..max_ports-1 can learn (ofport 0 is never a port). */
#define SW_FDB_DEFAULT_MAX_PORTS   256u

#define SW_FDB_NS_PER_S 1000000000ull

struct sw_fdb_config {
	unsigned max_entries;   /* 0 = default (8192) */
	unsigned max_per_port;  /* 0 = max_entries (only fair eviction applies) */
	unsigned aging_s;       /* 0 = default (300) */
	unsigned max_ports;     /* 0 = default (256) */
};

struct sw_fdb_stats {
	uint64_t learned;   /* new dynamic entries */
	uint64_t moves;     /* a MAC seen on another port than its entry's */
	uint64_t evicted;   /* LRU evictions (per-port limit, full table, bucket) */
	uint64_t aged;      /* removed by aging */
	uint64_t refused;   /* could not learn (e.g. all candidates static) */
};

enum sw_fdb_learn_result {
	SW_FDB_KNOWN,      /* already there on that port (timestamp refreshed) */
	SW_FDB_LEARNED,    /* new entry */
	SW_FDB_MOVED,      /* entry moved from another port */
	SW_FDB_IGNORED,    /* multicast/broadcast source, port out of range, static entry elsewhere */
	SW_FDB_REFUSED,    /* no room */
};

struct sw_fdb;

/* NULL on allocation failure; cfg may be NULL for the defaults. */
struct sw_fdb *sw_fdb_create(const struct sw_fdb_config *cfg);
void sw_fdb_destroy(struct sw_fdb *fdb);

/* Effective configuration (defaults resolved). */
void sw_fdb_get_config(const struct sw_fdb *fdb, struct sw_fdb_config *cfg);
/* Changes aging (takes effect at once). */
void sw_fdb_set_aging(struct sw_fdb *fdb, unsigned aging_s);

/* ofport for (vlan, mac), 0 when unknown or expired. Lock-free. */
uint16_t sw_fdb_lookup(struct sw_fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint64_t now);

/* Learns mac (a source address) on port in vlan. */
enum sw_fdb_learn_result sw_fdb_learn(struct sw_fdb *fdb, uint16_t vlan, const uint8_t mac[6],
				      uint16_t port, uint64_t now);

/* Static entry: never ages, never moved or evicted by learning. Replaces a
 * dynamic entry for the same key. 0, -EINVAL (bad port / multicast MAC) or
 * -ENOSPC. */
int sw_fdb_add_static(struct sw_fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint16_t port);
/* Removes one entry (static or dynamic): 0 or -ENOENT. */
int sw_fdb_del(struct sw_fdb *fdb, uint16_t vlan, const uint8_t mac[6]);

/* Removes the entries of `port` (0 = every port); static ones only when
 * with_static. Returns how many were removed. */
unsigned sw_fdb_flush(struct sw_fdb *fdb, uint16_t port, bool with_static);

/* Removes expired dynamic entries; returns how many. */
unsigned sw_fdb_age(struct sw_fdb *fdb, uint64_t now);

/* Entries currently stored (static included). */
unsigned sw_fdb_count(struct sw_fdb *fdb);
/* Dynamic entries on one port. */
unsigned sw_fdb_port_count(struct sw_fdb *fdb, uint16_t port);

void sw_fdb_get_stats(struct sw_fdb *fdb, struct sw_fdb_stats *st);

struct sw_fdb_entry_info {
	uint16_t port;
	uint16_t vlan;
	uint8_t mac[6];
	bool is_static;
	uint32_t age_s;   /* seconds since last seen (0 for static) */
};

/*
 * Calls fn for every live entry (unordered) under the lock; fn must not
 * call back into this FDB. Returns the number of entries visited.
 */
unsigned sw_fdb_foreach(struct sw_fdb *fdb, uint64_t now,
			void (*fn)(const struct sw_fdb_entry_info *e, void *arg), void *arg);

/* Helpers */
static inline bool sw_mac_is_multicast(const uint8_t mac[6])
{
	return mac[0] & 1;
}

#endif
