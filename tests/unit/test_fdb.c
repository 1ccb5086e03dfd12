/*
 * fdb.c: learning, VLAN keying, aging, per-port LRU and full-table fair
 * eviction, static entries, moves, flushes, iteration, capacity, and
 * lock-free lookups racing with learning.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "switch/fdb.h"

#define S(x) ((uint64_t)(x) * SW_FDB_NS_PER_S)

static void mac_n(uint8_t mac[6], unsigned n)
{
	mac[0] = 0x02;
	mac[1] = 0x00;
	mac[2] = (uint8_t)(n >> 24);
	mac[3] = (uint8_t)(n >> 16);
	mac[4] = (uint8_t)(n >> 8);
	mac[5] = (uint8_t)n;
}

static const uint8_t A[6] = {2, 0, 0, 0, 0, 0xa};
static const uint8_t B[6] = {2, 0, 0, 0, 0, 0xb};
static const uint8_t C[6] = {2, 0, 0, 0, 0, 0xc};
static const uint8_t D[6] = {2, 0, 0, 0, 0, 0xd};

static void test_learn_lookup_per_vlan(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	assert_non_null(f);
	assert_int_equal(sw_fdb_lookup(f, 10, A, S(1)), 0);
	assert_int_equal(sw_fdb_learn(f, 10, A, 1, S(1)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_learn(f, 10, A, 1, S(2)), SW_FDB_KNOWN);
	assert_int_equal(sw_fdb_lookup(f, 10, A, S(2)), 1);
	assert_int_equal(sw_fdb_lookup(f, 20, A, S(2)), 0); /* other VLAN */
	assert_int_equal(sw_fdb_learn(f, 20, A, 4, S(2)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_lookup(f, 20, A, S(2)), 4);
	assert_int_equal(sw_fdb_lookup(f, 10, A, S(2)), 1);
	assert_int_equal(sw_fdb_count(f), 2);
	struct sw_fdb_config cfg;
	sw_fdb_get_config(f, &cfg);
	assert_int_equal(cfg.max_entries, 8192);
	assert_int_equal(cfg.aging_s, 300);
	sw_fdb_destroy(f);
}

static void test_multicast_source_ignored(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	assert_int_equal(sw_fdb_learn(f, 0, bcast, 1, S(1)), SW_FDB_IGNORED);
	assert_int_equal(sw_fdb_learn(f, 0, mcast, 1, S(1)), SW_FDB_IGNORED);
	assert_int_equal(sw_fdb_learn(f, 0, A, 0, S(1)), SW_FDB_IGNORED);    /* port 0 */
	assert_int_equal(sw_fdb_learn(f, 0, A, 9999, S(1)), SW_FDB_IGNORED); /* > max_ports */
	assert_int_equal(sw_fdb_count(f), 0);
	assert_int_equal(sw_fdb_lookup(f, 0, bcast, S(1)), 0);
	sw_fdb_destroy(f);
}

static void test_aging(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	sw_fdb_learn(f, 0, A, 1, S(100));
	sw_fdb_learn(f, 0, B, 2, S(100));
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(399)), 1);
	sw_fdb_learn(f, 0, B, 2, S(300)); /* B seen again */
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(401)), 0); /* expired: invisible at once */
	assert_int_equal(sw_fdb_lookup(f, 0, B, S(401)), 2);
	assert_int_equal(sw_fdb_count(f), 2);
	assert_int_equal(sw_fdb_age(f, S(401)), 1);
	assert_int_equal(sw_fdb_count(f), 1);
	assert_int_equal(sw_fdb_age(f, S(601)), 1);
	assert_int_equal(sw_fdb_count(f), 0);
	struct sw_fdb_stats st;
	sw_fdb_get_stats(f, &st);
	assert_int_equal(st.aged, 2);
	/* Shorter aging takes effect immediately. */
	sw_fdb_learn(f, 0, C, 1, S(1000));
	sw_fdb_set_aging(f, 10);
	assert_int_equal(sw_fdb_lookup(f, 0, C, S(1011)), 0);
	sw_fdb_destroy(f);
}

static void test_per_port_lru_eviction(void **state)
{
	(void)state;
	struct sw_fdb_config cfg = {.max_per_port = 3};
	struct sw_fdb *f = sw_fdb_create(&cfg);
	sw_fdb_learn(f, 0, D, 2, S(0)); /* another port's entry, older than all */
	sw_fdb_learn(f, 0, A, 1, S(1));
	sw_fdb_learn(f, 0, B, 1, S(2));
	sw_fdb_learn(f, 0, C, 1, S(3));
	sw_fdb_learn(f, 0, A, 1, S(4)); /* A refreshed: B is now the oldest */
	uint8_t e[6];
	mac_n(e, 0xe);
	assert_int_equal(sw_fdb_learn(f, 0, e, 1, S(5)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_port_count(f, 1), 3);
	assert_int_equal(sw_fdb_lookup(f, 0, B, S(5)), 0);
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(5)), 1);
	assert_int_equal(sw_fdb_lookup(f, 0, C, S(5)), 1);
	assert_int_equal(sw_fdb_lookup(f, 0, e, S(5)), 1);
	assert_int_equal(sw_fdb_lookup(f, 0, D, S(5)), 2); /* not port 1's: kept */
	/* Next eviction takes C (A was refreshed after C was learnt). */
	uint8_t g[6];
	mac_n(g, 0x10);
	sw_fdb_learn(f, 0, g, 1, S(6));
	assert_int_equal(sw_fdb_lookup(f, 0, C, S(6)), 0);
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(6)), 1);
	struct sw_fdb_stats st;
	sw_fdb_get_stats(f, &st);
	assert_int_equal(st.evicted, 2);
	sw_fdb_destroy(f);
}

static void test_full_table_fair_eviction(void **state)
{
	(void)state;
	struct sw_fdb_config cfg = {.max_entries = 8};
	struct sw_fdb *f = sw_fdb_create(&cfg);
	sw_fdb_learn(f, 0, A, 1, S(1));
	sw_fdb_learn(f, 0, B, 1, S(2));
	uint8_t m[6];
	for (unsigned i = 0; i < 6; i++) { /* port 2 floods */
		mac_n(m, 100 + i);
		sw_fdb_learn(f, 0, m, 2, S(10 + i));
	}
	assert_int_equal(sw_fdb_count(f), 8);
	/* Port 1 (2 entries) learns while full: port 2 (the biggest) pays. */
	assert_int_equal(sw_fdb_learn(f, 0, C, 1, S(20)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_count(f), 8);
	assert_int_equal(sw_fdb_port_count(f, 1), 3);
	assert_int_equal(sw_fdb_port_count(f, 2), 5);
	mac_n(m, 100); /* port 2's oldest */
	assert_int_equal(sw_fdb_lookup(f, 0, m, S(20)), 0);
	/* Port 2 keeps flooding: only its own entries go. */
	for (unsigned i = 0; i < 50; i++) {
		mac_n(m, 1000 + i);
		sw_fdb_learn(f, 0, m, 2, S(30 + i));
	}
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(80)), 1);
	assert_int_equal(sw_fdb_lookup(f, 0, B, S(80)), 1);
	assert_int_equal(sw_fdb_lookup(f, 0, C, S(80)), 1);
	assert_int_equal(sw_fdb_count(f), 8);
	sw_fdb_destroy(f);
}

static void test_static_entries(void **state)
{
	(void)state;
	struct sw_fdb_config cfg = {.max_per_port = 2};
	struct sw_fdb *f = sw_fdb_create(&cfg);
	sw_fdb_learn(f, 5, B, 1, S(1));
	assert_int_equal(sw_fdb_add_static(f, 5, B, 3), 0); /* replaces the dynamic one */
	assert_int_equal(sw_fdb_add_static(f, 5, A, 3), 0);
	assert_int_equal(sw_fdb_port_count(f, 1), 0);
	assert_int_equal(sw_fdb_add_static(f, 5, (const uint8_t[6]){1, 0, 0, 0, 0, 1}, 3), -EINVAL);
	assert_int_equal(sw_fdb_add_static(f, 5, C, 0), -EINVAL);
	/* Learning never moves a static entry. */
	assert_int_equal(sw_fdb_learn(f, 5, A, 1, S(2)), SW_FDB_IGNORED);
	assert_int_equal(sw_fdb_lookup(f, 5, A, S(2)), 3);
	assert_int_equal(sw_fdb_learn(f, 5, A, 3, S(2)), SW_FDB_KNOWN);
	/* Never ages. */
	assert_int_equal(sw_fdb_age(f, S(1000000)), 0);
	assert_int_equal(sw_fdb_lookup(f, 5, A, S(1000000)), 3);
	/* Not evicted by port 3's dynamic entries past the per-port limit. */
	uint8_t m[6];
	for (unsigned i = 0; i < 5; i++) {
		mac_n(m, 50 + i);
		sw_fdb_learn(f, 5, m, 3, S(10 + i));
	}
	assert_int_equal(sw_fdb_lookup(f, 5, A, S(20)), 3);
	assert_int_equal(sw_fdb_lookup(f, 5, B, S(20)), 3);
	assert_int_equal(sw_fdb_port_count(f, 3), 2);
	/* Flush without statics keeps them; with, removes them. */
	assert_int_equal(sw_fdb_flush(f, 0, false), 2);
	assert_int_equal(sw_fdb_lookup(f, 5, A, S(20)), 3);
	assert_int_equal(sw_fdb_flush(f, 3, true), 2);
	assert_int_equal(sw_fdb_count(f), 0);
	sw_fdb_destroy(f);
}

static void test_move(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	sw_fdb_learn(f, 1, A, 1, S(1));
	assert_int_equal(sw_fdb_learn(f, 1, A, 2, S(2)), SW_FDB_MOVED);
	assert_int_equal(sw_fdb_lookup(f, 1, A, S(2)), 2);
	assert_int_equal(sw_fdb_port_count(f, 1), 0);
	assert_int_equal(sw_fdb_port_count(f, 2), 1);
	assert_int_equal(sw_fdb_count(f), 1);
	assert_int_equal(sw_fdb_learn(f, 1, A, 1, S(3)), SW_FDB_MOVED);
	struct sw_fdb_stats st;
	sw_fdb_get_stats(f, &st);
	assert_int_equal(st.moves, 2);
	assert_int_equal(st.learned, 1);
	/* Flushing port 2 no longer touches it. */
	assert_int_equal(sw_fdb_flush(f, 2, false), 0);
	assert_int_equal(sw_fdb_lookup(f, 1, A, S(3)), 1);
	sw_fdb_destroy(f);
}

static void test_flush_per_port_and_del(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	sw_fdb_learn(f, 0, A, 1, S(1));
	sw_fdb_learn(f, 0, B, 1, S(1));
	sw_fdb_learn(f, 0, C, 2, S(1));
	assert_int_equal(sw_fdb_flush(f, 1, false), 2);
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(1)), 0);
	assert_int_equal(sw_fdb_lookup(f, 0, C, S(1)), 2);
	assert_int_equal(sw_fdb_del(f, 0, C), 0);
	assert_int_equal(sw_fdb_del(f, 0, C), -ENOENT);
	assert_int_equal(sw_fdb_count(f), 0);
	/* Relearn after flush works (slots reused). */
	assert_int_equal(sw_fdb_learn(f, 0, A, 3, S(2)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_lookup(f, 0, A, S(2)), 3);
	sw_fdb_destroy(f);
}

struct seen {
	unsigned n, statics;
	uint32_t age_of_a;
	uint16_t vlan_of_a, port_of_a;
};

static void collect(const struct sw_fdb_entry_info *e, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->statics += e->is_static;
	if (!memcmp(e->mac, A, 6)) {
		s->age_of_a = e->age_s;
		s->vlan_of_a = e->vlan;
		s->port_of_a = e->port;
	}
}

static void test_foreach(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	sw_fdb_learn(f, 7, A, 4, S(10));
	sw_fdb_learn(f, 0, B, 1, S(30));
	sw_fdb_add_static(f, 0, C, 2);
	struct seen s = {0};
	assert_int_equal(sw_fdb_foreach(f, S(42), collect, &s), 3);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.statics, 1);
	assert_int_equal(s.age_of_a, 32);
	assert_int_equal(s.vlan_of_a, 7);
	assert_int_equal(s.port_of_a, 4);
	/* Expired entries are not shown. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(sw_fdb_foreach(f, S(320), collect, &s), 2);
	sw_fdb_destroy(f);
}

static void test_full_default_capacity(void **state)
{
	(void)state;
	struct sw_fdb *f = sw_fdb_create(NULL);
	uint8_t m[6];
	for (unsigned i = 0; i < 8192; i++) {
		mac_n(m, i * 7919u + 1);
		assert_int_equal(sw_fdb_learn(f, (uint16_t)(i % 5), m, (uint16_t)(1 + i % 32), S(1)),
				 SW_FDB_LEARNED);
	}
	assert_int_equal(sw_fdb_count(f), 8192);
	struct sw_fdb_stats st;
	sw_fdb_get_stats(f, &st);
	assert_int_equal(st.evicted, 0); /* two-choice buckets hold the whole table */
	assert_int_equal(st.refused, 0);
	for (unsigned i = 0; i < 8192; i++) {
		mac_n(m, i * 7919u + 1);
		assert_int_equal(sw_fdb_lookup(f, (uint16_t)(i % 5), m, S(2)), 1 + i % 32);
	}
	/* One more: an eviction, not a refusal. */
	mac_n(m, 0xfffffff);
	assert_int_equal(sw_fdb_learn(f, 0, m, 1, S(3)), SW_FDB_LEARNED);
	assert_int_equal(sw_fdb_count(f), 8192);
	sw_fdb_destroy(f);
}

struct race {
	struct sw_fdb *f;
	_Atomic int stop;
	unsigned bad;
	unsigned long lookups;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	uint8_t m[6];
	while (!atomic_load(&r->stop)) {
		for (unsigned i = 0; i < 64; i++) {
			mac_n(m, i);
			uint16_t p = sw_fdb_lookup(r->f, 0, m, S(1));
			/* MAC i only ever lives on port 1 + i % 4 or 9 + i % 4. */
			if (p != 0 && p != 1 + i % 4 && p != 9 + i % 4)
				r->bad++;
			r->lookups++;
		}
	}
	return NULL;
}

static void test_lockfree_lookup_vs_learning(void **state)
{
	(void)state;
	struct sw_fdb_config cfg = {.max_entries = 48};
	struct race r = {.f = sw_fdb_create(&cfg)};
	pthread_t th;
	pthread_create(&th, NULL, reader, &r);
	uint8_t m[6];
	for (unsigned round = 0; round < 3000; round++) {
		for (unsigned i = 0; i < 64; i++) {
			mac_n(m, i);
			sw_fdb_learn(r.f, 0, m, (uint16_t)((round & 1 ? 9 : 1) + i % 4), S(1));
		}
		if (round % 100 == 0)
			sw_fdb_flush(r.f, 0, true);
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(r.bad, 0);
	assert_true(r.lookups > 0);
	sw_fdb_destroy(r.f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learn_lookup_per_vlan),
		cmocka_unit_test(test_multicast_source_ignored),
		cmocka_unit_test(test_aging),
		cmocka_unit_test(test_per_port_lru_eviction),
		cmocka_unit_test(test_full_table_fair_eviction),
		cmocka_unit_test(test_static_entries),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_flush_per_port_and_del),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_full_default_capacity),
		cmocka_unit_test(test_lockfree_lookup_vs_learning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
