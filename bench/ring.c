/*
 * bench/ring.c — split-virtqueue round-trip cost (bench_ring).
 *
 * One thread plays both sides over testmem guest memory (2 regions), queue
 * size 256, EVENT_IDX negotiated, no indirect. Per burst of 32
 * single-descriptor chains (one 64-byte readable buffer each):
 *   driver:  32 x vnet_vq_driver_add, vnet_vq_driver_kick_prepare
 *   device:  read bracket, vnet_vq_pop_burst(32), 32 x vnet_vq_push,
 *            vnet_vq_flush, end of bracket
 *   driver:  32 x vnet_vq_driver_get_used
 * Reports ns per chain (whole round trip) for each run and the median.
 *
 *   bench_ring [--runs N] [--seconds S] [--burst B] [--json]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testmem.h"
#include "vnet/net.h"
#include "vnet/virtqueue.h"
#include "vnet/virtqueue_driver.h"

#define QSIZE 256
#define BURST_MAX 256
#define RING_GPA 0x100000ull
#define BUF_GPA 0x200000ull /* second region */
#define BUF_LEN 64u

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct bench {
	struct testmem m;
	struct vnet_vq_driver drv;
	struct vnet_vq vq;
	unsigned burst;
	struct vnet_buf bufs[BURST_MAX];
	struct vnet_vq_chain chains[BURST_MAX];
	struct iovec iov[BURST_MAX * 2];
	int cookies[BURST_MAX];
};

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_ring: %s failed (%d)\n", what, err);
	exit(1);
}

/* One burst round trip; returns chains completed. */
static unsigned burst(struct bench *b)
{
	unsigned n = b->burst;
	for (unsigned i = 0; i < n; i++) {
		int ret = vnet_vq_driver_add(&b->drv, &b->bufs[i], 1, 0, &b->cookies[i], false);
		if (__builtin_expect(ret != 0, 0))
			die("vnet_vq_driver_add", ret);
	}
	(void)vnet_vq_driver_kick_prepare(&b->drv);

	unsigned tok;
	vnet_guestmem_read_begin(&b->m.gm, &tok);
	unsigned got = vnet_vq_pop_burst(&b->vq, b->chains, n, b->iov, 2);
	for (unsigned i = 0; i < got; i++)
		vnet_vq_push(&b->vq, b->chains[i].head, 0);
	(void)vnet_vq_flush(&b->vq);
	vnet_guestmem_read_end(&b->m.gm, tok);
	if (__builtin_expect(got != n, 0))
		die("vnet_vq_pop_burst (short)", (int)got);

	uint32_t written;
	for (unsigned i = 0; i < n; i++)
		if (__builtin_expect(!vnet_vq_driver_get_used(&b->drv, &written), 0))
			die("vnet_vq_driver_get_used", -1);
	return n;
}

static double run(struct bench *b, double seconds)
{
	uint64_t chains = 0;
	double t0 = now_s(), t;
	do {
		for (unsigned k = 0; k < 1024; k++)
			chains += burst(b);
		t = now_s();
	} while (t - t0 < seconds);
	return (t - t0) * 1e9 / (double)chains;
}

int main(int argc, char **argv)
{
	unsigned runs = 5, bsz = 32;
	double seconds = 1.0;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--burst") && i + 1 < argc) {
			bsz = (unsigned)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--runs N] [--seconds S] [--burst B] [--json]\n",
				argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 100 || bsz < 1 || bsz > QSIZE || !(seconds > 0)) {
		fprintf(stderr, "bench_ring: bad arguments\n");
		return 2;
	}

	static struct bench b;
	b.burst = bsz;
	testmem_init(&b.m, RING_GPA, 0x200000, 2);
	void *ring = testmem_host(&b.m, RING_GPA);
	struct vnet_vq_driver_config dc = {
		.size = QSIZE,
		.ring_host = ring,
		.ring_gpa = RING_GPA,
		.features = VNET_BIT(VIRTIO_F_VERSION_1) | VNET_BIT(VIRTIO_F_RING_EVENT_IDX),
		.name = "bench",
	};
	int ret = vnet_vq_driver_init(&b.drv, &dc);
	if (ret)
		die("vnet_vq_driver_init", ret);
	unsigned tok;
	vnet_guestmem_read_begin(&b.m.gm, &tok);
	struct vnet_vq_config vc = {
		.size = QSIZE,
		.desc_addr = b.drv.desc_gpa,
		.avail_addr = b.drv.avail_gpa,
		.used_addr = b.drv.used_gpa,
		.ring_as = VNET_AS_GPA,
		.features = dc.features,
		.name = "bench",
	};
	ret = vnet_vq_attach(&b.vq, &b.m.gm, &vc);
	vnet_guestmem_read_end(&b.m.gm, tok);
	if (ret)
		die("vnet_vq_attach", ret);
	for (unsigned i = 0; i < BURST_MAX; i++)
		b.bufs[i] = (struct vnet_buf){BUF_GPA + (uint64_t)i * 256, BUF_LEN};

	run(&b, seconds / 4); /* warm-up */
	double res[100], sorted[100];
	for (unsigned r = 0; r < runs; r++)
		res[r] = run(&b, seconds);
	memcpy(sorted, res, runs * sizeof(double));
	qsort(sorted, runs, sizeof(double), cmp_double);
	double median = runs % 2 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2;

	if (json) {
		printf("{\"bench\":\"ring\",\"burst\":%u,\"queue_size\":%u,\"event_idx\":true,"
		       "\"median_ns_per_chain\":%.2f,\"runs_ns_per_chain\":[",
		       bsz, QSIZE, median);
		for (unsigned r = 0; r < runs; r++)
			printf("%s%.2f", r ? "," : "", res[r]);
		printf("]}\n");
	} else {
		printf("ring: %u-chain bursts, median %.1f ns/chain (runs:", bsz, median);
		for (unsigned r = 0; r < runs; r++)
			printf(" %.1f", res[r]);
		printf(")\n");
	}

	vnet_guestmem_read_begin(&b.m.gm, &tok);
	vnet_vq_detach(&b.vq);
	vnet_guestmem_read_end(&b.m.gm, tok);
	vnet_vq_driver_fini(&b.drv);
	testmem_fini(&b.m);
	return 0;
}
