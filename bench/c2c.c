/*
 * c2c.c — core-to-core cache-line round trip between two CPUs, in ns.
 *
 * Every vhost figure here is a producer on one CPU and a consumer on the
 * other passing ring cache lines back and forth, so its rate follows what one
 * line transfer costs. On this machine (2 vCPUs of a many-core EPYC) that
 * cost changes every few seconds: the host moves the vCPUs between an SMT
 * pair (~27 ns round trip), two cores sharing an L3 (~65 ns) and two that do
 * not (~340 ns). bench/suite.sh runs this probe right after each sample so
 * the report can say on which kind of placement a sample (probably) ran.
 *
 * usage: bench_c2c [CPU_A CPU_B [ROUND_TRIPS]]   (default 0 1 200000)
 * Prints the median of 5 batches, in ns per round trip.
 * Single-purpose tool: two threads, one shared line, no other state.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/cycles.h"

static _Alignas(64) atomic_uint_fast64_t ball;
static atomic_bool responder_failed;
static unsigned long rounds;
static int cpu_b;

static int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Answers every odd value with the next even one. */
static void *responder(void *arg)
{
	(void)arg;
	if (pin(cpu_b)) {
		atomic_store(&responder_failed, true);
		return (void *)1;
	}
	for (uint64_t want = 1; want < 2 * rounds * 5; want += 2) {
		while (atomic_load_explicit(&ball, memory_order_acquire) != want)
			__builtin_ia32_pause();
		atomic_store_explicit(&ball, want + 1, memory_order_release);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
	cpu_b = argc > 2 ? atoi(argv[2]) : 1;
	rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 200000;
	if (rounds == 0 || cpu_a == cpu_b || pin(cpu_a)) {
		fprintf(stderr, "usage: bench_c2c [CPU_A CPU_B [ROUND_TRIPS]] (two different allowed CPUs)\n");
		return 2;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, responder, NULL)) {
		perror("bench_c2c: pthread_create");
		return 2;
	}
	double batch[5];
	uint64_t v = 0;
	for (int b = 0; b < 5; b++) {
		uint64_t t0 = vnet_mono_ns();
		for (unsigned long i = 0; i < rounds; i++) {
			atomic_store_explicit(&ball, ++v, memory_order_release);
			++v;
			while (atomic_load_explicit(&ball, memory_order_acquire) != v) {
				if (atomic_load_explicit(&responder_failed, memory_order_relaxed))
					goto joined;
				__builtin_ia32_pause();
			}
		}
		batch[b] = (double)(vnet_mono_ns() - t0) / (double)rounds;
	}
joined:;
	void *rc;
	pthread_join(t, &rc);
	if (rc) {
		fprintf(stderr, "bench_c2c: cannot run on CPU %d\n", cpu_b);
		return 2;
	}
	qsort(batch, 5, sizeof(batch[0]), cmp_double);
	printf("%.1f\n", batch[2]);
	return 0;
}
