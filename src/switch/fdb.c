/* fdb.c — L2 forwarding database; see fdb.h. */
#include "switch/fdb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_SLOTS 8u
#define NIL UINT32_MAX
#define KEY_VALID (1ull << 63)
#define PORT_STATIC 0x10000u
#define PORT_MASK 0xffffu
/* A refresh closer than this to the stored timestamp is not written back,
 * so a busy source does not dirty its entry's cache line per packet. */
#define REFRESH_NS 1000000ull

struct fdb_entry {
	_Atomic uint64_t key;   /* 0 = empty, else KEY_VALID | vlan << 48 | mac */
	_Atomic uint32_t port;  /* ofport | PORT_STATIC */
	_Atomic uint64_t used;  /* last seen, ns */
	/* Writer-only (under the lock): */
	uint64_t stamp;         /* `used` when queued on its port's LRU list */
	uint32_t prev, next;    /* LRU list links (dynamic entries only) */
};

struct port_lru {
	uint32_t head, tail; /* head = least recently queued */
	uint32_t count;      /* dynamic entries */
};

struct sw_fdb {
	atomic_flag lock;
	struct fdb_entry *e;
	uint32_t bucket_mask;
	unsigned max_entries, max_per_port, max_ports;
	_Atomic uint64_t aging_ns;
	unsigned n;          /* live entries (static included) */
	struct port_lru *ports;
	struct sw_fdb_stats st;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void fdb_lock(struct sw_fdb *f)
{
	while (atomic_flag_test_and_set_explicit(&f->lock, memory_order_acquire))
		cpu_relax();
}

static void fdb_unlock(struct sw_fdb *f)
{
	atomic_flag_clear_explicit(&f->lock, memory_order_release);
}

static inline uint64_t make_key(uint16_t vlan, const uint8_t mac[6])
{
	uint64_t k = KEY_VALID | (uint64_t)(vlan & 0x0fff) << 48;
	for (int i = 0; i < 6; i++)
		k |= (uint64_t)mac[i] << (8 * (5 - i));
	return k;
}

static inline void key_split(uint64_t k, uint16_t *vlan, uint8_t mac[6])
{
	*vlan = (uint16_t)((k >> 48) & 0x0fff);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(k >> (8 * (5 - i)));
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline void buckets_of(const struct sw_fdb *f, uint64_t k, uint32_t b[2])
{
	uint64_t h = mix64(k);
	b[0] = (uint32_t)h & f->bucket_mask;
	b[1] = (uint32_t)(h >> 32) & f->bucket_mask;
	if (b[1] == b[0])
		b[1] = (b[0] + 1) & f->bucket_mask;
}

/* Slot holding k, or NIL. Safe without the lock (the result may be stale). */
static uint32_t find_slot(const struct sw_fdb *f, uint64_t k, const uint32_t b[2])
{
	for (int j = 0; j < 2; j++) {
		const struct fdb_entry *e = &f->e[(size_t)b[j] * BUCKET_SLOTS];
		for (uint32_t i = 0; i < BUCKET_SLOTS; i++)
			if (atomic_load_explicit(&e[i].key, memory_order_acquire) == k)
				return b[j] * BUCKET_SLOTS + i;
	}
	return NIL;
}

struct sw_fdb *sw_fdb_create(const struct sw_fdb_config *cfg)
{
	struct sw_fdb *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	atomic_flag_clear(&f->lock);
	f->max_entries = cfg && cfg->max_entries ? cfg->max_entries : SW_FDB_DEFAULT_MAX_ENTRIES;
	f->max_per_port = cfg && cfg->max_per_port ? cfg->max_per_port : f->max_entries;
	f->max_ports = cfg && cfg->max_ports ? cfg->max_ports : SW_FDB_DEFAULT_MAX_PORTS;
	if (f->max_ports > 65536)
		f->max_ports = 65536;
	unsigned aging = cfg && cfg->aging_s ? cfg->aging_s : SW_FDB_DEFAULT_AGING_S;
	atomic_init(&f->aging_ns, (uint64_t)aging * SW_FDB_NS_PER_S);
	/* About twice the slots as entries, power-of-two buckets, at least 2. */
	uint64_t want = ((uint64_t)f->max_entries * 2 + BUCKET_SLOTS - 1) / BUCKET_SLOTS;
	uint32_t nb = 2;
	while (nb < want)
		nb <<= 1;
	f->bucket_mask = nb - 1;
	f->e = calloc((size_t)nb * BUCKET_SLOTS, sizeof(*f->e));
	f->ports = calloc(f->max_ports, sizeof(*f->ports));
	if (!f->e || !f->ports) {
		sw_fdb_destroy(f);
		return NULL;
	}
	for (size_t i = 0; i < (size_t)nb * BUCKET_SLOTS; i++)
		f->e[i].prev = f->e[i].next = NIL;
	for (unsigned p = 0; p < f->max_ports; p++)
		f->ports[p].head = f->ports[p].tail = NIL;
	return f;
}

void sw_fdb_destroy(struct sw_fdb *f)
{
	if (!f)
		return;
	free(f->e);
	free(f->ports);
	free(f);
}

void sw_fdb_get_config(const struct sw_fdb *f, struct sw_fdb_config *cfg)
{
	cfg->max_entries = f->max_entries;
	cfg->max_per_port = f->max_per_port;
	cfg->max_ports = f->max_ports;
	cfg->aging_s = (unsigned)(atomic_load(&f->aging_ns) / SW_FDB_NS_PER_S);
}

void sw_fdb_set_aging(struct sw_fdb *f, unsigned aging_s)
{
	atomic_store(&f->aging_ns, (uint64_t)(aging_s ? aging_s : SW_FDB_DEFAULT_AGING_S) *
					   SW_FDB_NS_PER_S);
}

static inline bool expired(const struct sw_fdb *f, uint64_t used, uint64_t now)
{
	return now > used &&
	       now - used > atomic_load_explicit(&f->aging_ns, memory_order_relaxed);
}

uint16_t sw_fdb_lookup(struct sw_fdb *f, uint16_t vlan, const uint8_t mac[6], uint64_t now)
{
	uint64_t k = make_key(vlan, mac);
	uint32_t b[2];
	buckets_of(f, k, b);
	uint32_t s = find_slot(f, k, b);
	if (s == NIL)
		return 0;
	struct fdb_entry *e = &f->e[s];
	uint32_t port = atomic_load_explicit(&e->port, memory_order_relaxed);
	uint64_t used = atomic_load_explicit(&e->used, memory_order_relaxed);
	/* Pairs with the release fence before a slot is reused: if the slot
	 * now holds another key, the re-read sees it. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->key, memory_order_relaxed) != k)
		return 0;
	if (!(port & PORT_STATIC) && expired(f, used, now))
		return 0;
	return (uint16_t)(port & PORT_MASK);
}

/* ---- writer side (lock held) ---- */

static void lru_unlink(struct sw_fdb *f, uint32_t s, uint16_t port)
{
	struct fdb_entry *e = &f->e[s];
	struct port_lru *pl = &f->ports[port];
	if (e->prev != NIL)
		f->e[e->prev].next = e->next;
	else
		pl->head = e->next;
	if (e->next != NIL)
		f->e[e->next].prev = e->prev;
	else
		pl->tail = e->prev;
	e->prev = e->next = NIL;
	pl->count--;
}

static void lru_append(struct sw_fdb *f, uint32_t s, uint16_t port)
{
	struct fdb_entry *e = &f->e[s];
	struct port_lru *pl = &f->ports[port];
	e->stamp = atomic_load_explicit(&e->used, memory_order_relaxed);
	e->next = NIL;
	e->prev = pl->tail;
	if (pl->tail != NIL)
		f->e[pl->tail].next = s;
	else
		pl->head = s;
	pl->tail = s;
	pl->count++;
}

static void remove_slot(struct sw_fdb *f, uint32_t s)
{
	struct fdb_entry *e = &f->e[s];
	uint32_t port = atomic_load_explicit(&e->port, memory_order_relaxed);
	if (!(port & PORT_STATIC))
		lru_unlink(f, s, (uint16_t)(port & PORT_MASK));
	atomic_store_explicit(&e->key, 0, memory_order_relaxed);
	f->n--;
}

/* Fills a free slot (or one just emptied) with k → port. */
static void fill_slot(struct sw_fdb *f, uint32_t s, uint64_t k, uint32_t port, uint64_t now)
{
	struct fdb_entry *e = &f->e[s];
	/* Readers that see the new port must also see the old key gone. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&e->port, port, memory_order_relaxed);
	atomic_store_explicit(&e->used, now, memory_order_relaxed);
	atomic_store_explicit(&e->key, k, memory_order_release);
	if (!(port & PORT_STATIC))
		lru_append(f, s, (uint16_t)port);
	f->n++;
}

/* Evicts the least recently used dynamic entry of port; false if none. */
static bool evict_lru(struct sw_fdb *f, uint16_t port)
{
	struct port_lru *pl = &f->ports[port];
	/* Second chance: an entry refreshed since it was queued goes to the
	 * tail. Bounded in case refreshes race with us. */
	for (uint32_t tries = 0; pl->head != NIL; tries++) {
		uint32_t s = pl->head;
		struct fdb_entry *e = &f->e[s];
		uint64_t used = atomic_load_explicit(&e->used, memory_order_relaxed);
		if (used > e->stamp && tries < 2 * pl->count + 2 && pl->head != pl->tail) {
			lru_unlink(f, s, port);
			lru_append(f, s, port);
			continue;
		}
		remove_slot(f, s);
		f->st.evicted++;
		return true;
	}
	return false;
}

/* Full table: evict from the port with the most dynamic entries. */
static bool evict_fair(struct sw_fdb *f)
{
	unsigned best = 0;
	uint32_t most = 0;
	for (unsigned p = 1; p < f->max_ports; p++)
		if (f->ports[p].count > most) {
			most = f->ports[p].count;
			best = p;
		}
	return most ? evict_lru(f, (uint16_t)best) : false;
}

/* A free slot in k's buckets — in the emptier one (two-choice hashing keeps
 * bucket loads even) — making one by evicting the oldest dynamic entry
 * there if both are full. NIL when all 16 are static. */
static uint32_t slot_for_insert(struct sw_fdb *f, const uint32_t b[2])
{
	uint32_t victim = NIL, free_slot[2] = {NIL, NIL};
	unsigned used_cnt[2] = {0, 0};
	uint64_t oldest = UINT64_MAX;
	for (int j = 0; j < 2; j++) {
		for (uint32_t i = 0; i < BUCKET_SLOTS; i++) {
			uint32_t s = b[j] * BUCKET_SLOTS + i;
			struct fdb_entry *e = &f->e[s];
			if (atomic_load_explicit(&e->key, memory_order_relaxed) == 0) {
				if (free_slot[j] == NIL)
					free_slot[j] = s;
				continue;
			}
			used_cnt[j]++;
			if (atomic_load_explicit(&e->port, memory_order_relaxed) & PORT_STATIC)
				continue;
			uint64_t used = atomic_load_explicit(&e->used, memory_order_relaxed);
			if (used < oldest) {
				oldest = used;
				victim = s;
			}
		}
	}
	if (free_slot[0] != NIL && (free_slot[1] == NIL || used_cnt[0] <= used_cnt[1]))
		return free_slot[0];
	if (free_slot[1] != NIL)
		return free_slot[1];
	if (victim != NIL) {
		remove_slot(f, victim);
		f->st.evicted++;
	}
	return victim;
}

/* Makes room for one more dynamic entry on port (lock held). */
static void make_room(struct sw_fdb *f, uint16_t port)
{
	if (f->ports[port].count >= f->max_per_port)
		evict_lru(f, port);
	if (f->n >= f->max_entries)
		evict_fair(f);
}

enum sw_fdb_learn_result sw_fdb_learn(struct sw_fdb *f, uint16_t vlan, const uint8_t mac[6],
				      uint16_t port, uint64_t now)
{
	if (sw_mac_is_multicast(mac) || port == 0 || port >= f->max_ports)
		return SW_FDB_IGNORED;
	uint64_t k = make_key(vlan, mac);
	uint32_t b[2];
	buckets_of(f, k, b);

	/* Fast path: known on this port, refresh without the lock. */
	uint32_t s = find_slot(f, k, b);
	if (s != NIL) {
		struct fdb_entry *e = &f->e[s];
		uint32_t p = atomic_load_explicit(&e->port, memory_order_relaxed);
		if ((p & PORT_MASK) == port) {
			if (!(p & PORT_STATIC)) {
				uint64_t used = atomic_load_explicit(&e->used, memory_order_relaxed);
				if (now > used && now - used >= REFRESH_NS)
					atomic_store_explicit(&e->used, now, memory_order_relaxed);
			}
			return SW_FDB_KNOWN;
		}
		if (p & PORT_STATIC)
			return SW_FDB_IGNORED;
	}

	enum sw_fdb_learn_result r;
	fdb_lock(f);
	s = find_slot(f, k, b);
	if (s != NIL) {
		struct fdb_entry *e = &f->e[s];
		uint32_t p = atomic_load_explicit(&e->port, memory_order_relaxed);
		if (p & PORT_STATIC) {
			r = (p & PORT_MASK) == port ? SW_FDB_KNOWN : SW_FDB_IGNORED;
		} else if (p == port) {
			atomic_store_explicit(&e->used, now, memory_order_relaxed);
			r = SW_FDB_KNOWN;
		} else {
			lru_unlink(f, s, (uint16_t)p);
			if (f->ports[port].count >= f->max_per_port)
				evict_lru(f, port);
			atomic_store_explicit(&e->port, port, memory_order_release);
			atomic_store_explicit(&e->used, now, memory_order_relaxed);
			lru_append(f, s, port);
			f->st.moves++;
			r = SW_FDB_MOVED;
		}
	} else {
		make_room(f, port);
		s = f->n < f->max_entries ? slot_for_insert(f, b) : NIL;
		if (s == NIL) {
			f->st.refused++;
			r = SW_FDB_REFUSED;
		} else {
			fill_slot(f, s, k, port, now);
			f->st.learned++;
			r = SW_FDB_LEARNED;
		}
	}
	fdb_unlock(f);
	return r;
}

int sw_fdb_add_static(struct sw_fdb *f, uint16_t vlan, const uint8_t mac[6], uint16_t port)
{
	if (sw_mac_is_multicast(mac) || port == 0 || port >= f->max_ports || vlan > 4095)
		return -EINVAL;
	uint64_t k = make_key(vlan, mac);
	uint32_t b[2];
	buckets_of(f, k, b);
	int rc = 0;
	fdb_lock(f);
	uint32_t s = find_slot(f, k, b);
	if (s != NIL) {
		struct fdb_entry *e = &f->e[s];
		uint32_t p = atomic_load_explicit(&e->port, memory_order_relaxed);
		if (!(p & PORT_STATIC))
			lru_unlink(f, s, (uint16_t)p);
		atomic_store_explicit(&e->port, port | PORT_STATIC, memory_order_release);
	} else {
		if (f->n >= f->max_entries)
			evict_fair(f);
		s = f->n < f->max_entries ? slot_for_insert(f, b) : NIL;
		if (s == NIL)
			rc = -ENOSPC;
		else
			fill_slot(f, s, k, port | PORT_STATIC, 0);
	}
	fdb_unlock(f);
	return rc;
}

int sw_fdb_del(struct sw_fdb *f, uint16_t vlan, const uint8_t mac[6])
{
	uint64_t k = make_key(vlan, mac);
	uint32_t b[2];
	buckets_of(f, k, b);
	fdb_lock(f);
	uint32_t s = find_slot(f, k, b);
	if (s != NIL)
		remove_slot(f, s);
	fdb_unlock(f);
	return s != NIL ? 0 : -ENOENT;
}

static size_t nslots(const struct sw_fdb *f)
{
	return ((size_t)f->bucket_mask + 1) * BUCKET_SLOTS;
}

unsigned sw_fdb_flush(struct sw_fdb *f, uint16_t port, bool with_static)
{
	unsigned removed = 0;
	fdb_lock(f);
	for (size_t s = 0; s < nslots(f); s++) {
		struct fdb_entry *e = &f->e[s];
		if (!atomic_load_explicit(&e->key, memory_order_relaxed))
			continue;
		uint32_t p = atomic_load_explicit(&e->port, memory_order_relaxed);
		if ((p & PORT_STATIC) && !with_static)
			continue;
		if (port && (p & PORT_MASK) != port)
			continue;
		remove_slot(f, (uint32_t)s);
		removed++;
	}
	fdb_unlock(f);
	return removed;
}

unsigned sw_fdb_age(struct sw_fdb *f, uint64_t now)
{
	unsigned removed = 0;
	fdb_lock(f);
	for (size_t s = 0; s < nslots(f); s++) {
		struct fdb_entry *e = &f->e[s];
		if (!atomic_load_explicit(&e->key, memory_order_relaxed))
			continue;
		if (atomic_load_explicit(&e->port, memory_order_relaxed) & PORT_STATIC)
			continue;
		if (expired(f, atomic_load_explicit(&e->used, memory_order_relaxed), now)) {
			remove_slot(f, (uint32_t)s);
			removed++;
		}
	}
	f->st.aged += removed;
	fdb_unlock(f);
	return removed;
}

unsigned sw_fdb_count(struct sw_fdb *f)
{
	fdb_lock(f);
	unsigned n = f->n;
	fdb_unlock(f);
	return n;
}

unsigned sw_fdb_port_count(struct sw_fdb *f, uint16_t port)
{
	if (port >= f->max_ports)
		return 0;
	fdb_lock(f);
	unsigned n = f->ports[port].count;
	fdb_unlock(f);
	return n;
}

void sw_fdb_get_stats(struct sw_fdb *f, struct sw_fdb_stats *st)
{
	fdb_lock(f);
	*st = f->st;
	fdb_unlock(f);
}

unsigned sw_fdb_foreach(struct sw_fdb *f, uint64_t now,
			void (*fn)(const struct sw_fdb_entry_info *e, void *arg), void *arg)
{
	unsigned n = 0;
	fdb_lock(f);
	for (size_t s = 0; s < nslots(f); s++) {
		struct fdb_entry *e = &f->e[s];
		uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
		if (!k)
			continue;
		uint32_t p = atomic_load_explicit(&e->port, memory_order_relaxed);
		uint64_t used = atomic_load_explicit(&e->used, memory_order_relaxed);
		if (!(p & PORT_STATIC) && expired(f, used, now))
			continue;
		struct sw_fdb_entry_info info = {
			.port = (uint16_t)(p & PORT_MASK),
			.is_static = (p & PORT_STATIC) != 0,
		};
		key_split(k, &info.vlan, info.mac);
		if (!info.is_static && now > used)
			info.age_s = (uint32_t)((now - used) / SW_FDB_NS_PER_S);
		fn(&info, arg);
		n++;
	}
	fdb_unlock(f);
	return n;
}
