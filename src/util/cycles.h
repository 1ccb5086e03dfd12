/*
 * cycles.h — a cheap timestamp counter for "busy cycles per packet", the
 * efficiency figure DPDK testpmd (--record-core-cycles) and OVS
 * (dpif-netdev/pmd-stats-show) report: the TSC on x86-64, whose rate is
 * constant (invariant TSC) and readable in a VM where perf's cycle counter
 * is not; nanoseconds from CLOCK_MONOTONIC elsewhere.
 *
 * vnet_mono_ns(): CLOCK_MONOTONIC in nanoseconds, for deadlines and ages.
 *
 * vnet_cycles_hz() calibrates once (about 20 ms, first call) against
 * CLOCK_MONOTONIC. Thread-safe (the calibration race is benign: every
 * caller computes about the same value).
 */
#ifndef VNET_UTIL_CYCLES_H
#define VNET_UTIL_CYCLES_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

static inline uint64_t vnet_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vnet_cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return vnet_mono_ns();
#endif
}

#if defined(__x86_64__) || defined(__i386__)
/* One (CLOCK_MONOTONIC, TSC) pair read close together: of a few tries, the
 * one whose clock reads bracket the TSC read most tightly, so a preemption
 * between the two reads cannot skew the calibration (or an anchor). */
static inline void vnet_clock_tsc_pair(double *ns, uint64_t *tsc)
{
	double best = -1;
	*ns = 0;
	*tsc = 0;
	for (int i = 0; i < 8; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		uint64_t c = __rdtsc();
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ta = (double)a.tv_sec * 1e9 + (double)a.tv_nsec;
		double tb = (double)b.tv_sec * 1e9 + (double)b.tv_nsec;
		if (best < 0 || tb - ta < best) {
			best = tb - ta;
			*ns = (ta + tb) / 2;
			*tsc = c;
		}
	}
}
#endif

static inline uint64_t vnet_cycles_hz(void)
{
#if defined(__x86_64__) || defined(__i386__)
	static uint64_t hz;
	if (!hz) {
		struct timespec d = {0, 20000000};
		double ns0 = 0, ns1 = 0;
		uint64_t c0 = 0, c1 = 0;
		vnet_clock_tsc_pair(&ns0, &c0);
		nanosleep(&d, NULL);
		vnet_clock_tsc_pair(&ns1, &c1);
		hz = ns1 > ns0 && c1 > c0 ? (uint64_t)((double)(c1 - c0) * 1e9 / (ns1 - ns0)) : 1;
	}
	return hz;
#else
	return 1000000000ull;
#endif
}

#endif
