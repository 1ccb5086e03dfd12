/*
 * Port capture (capture.c): frames queued by poll-mode threads come out of
 * the pcap file intact and in order; a full queue counts misses instead of
 * blocking; a concurrent producer never corrupts the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "switch/capture.h"

static char path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/vnet-capture-%d.pcap", getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void frame(uint8_t *buf, uint32_t len, uint32_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 7 + i);
}

/* Reads the file back; returns the number of frames, checking each. */
static unsigned read_back(uint32_t (*len_of)(uint32_t))
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, err);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	struct pcap_pkthdr *h;
	const u_char *data;
	unsigned n = 0;
	while (pcap_next_ex(p, &h, &data) == 1) {
		uint32_t want = len_of(n);
		assert_int_equal(h->len, want);
		assert_int_equal(h->caplen, want);
		uint8_t expect[4000];
		frame(expect, want, n);
		assert_memory_equal(data, expect, want);
		n++;
	}
	pcap_close(p);
	return n;
}

static uint32_t mixed_len(uint32_t seq)
{
	return seq % 3 == 2 ? 3000 : 60 + seq; /* every third frame takes the heap path */
}

static void test_capture_count_limits_the_file(void **state)
{
	(void)state;
	char err[128];
	struct sw_capture *c = sw_capture_start(path, 10, err, sizeof(err));
	assert_non_null(c);
	uint8_t buf[4000];
	for (uint32_t i = 0; i < 15; i++) {
		frame(buf, mixed_len(i), i);
		sw_capture_frame(c, buf, mixed_len(i));
	}
	assert_true(sw_capture_drain(c));
	assert_int_equal(sw_capture_written(c), 10);
	sw_capture_stop(c);
	assert_int_equal(read_back(mixed_len), 10);
}

static uint32_t small_len(uint32_t seq)
{
	(void)seq;
	return 64;
}

static void test_full_queue_counts_missed(void **state)
{
	(void)state;
	char err[128];
	struct sw_capture *c = sw_capture_start(path, 0, err, sizeof(err));
	uint8_t buf[64];
	for (uint32_t i = 0; i < 1100; i++) {
		frame(buf, 64, i);
		sw_capture_frame(c, buf, 64);
	}
	assert_int_equal(sw_capture_missed(c), 1100 - 1024);
	assert_false(sw_capture_drain(c)); /* no count: never "done" */
	assert_int_equal(sw_capture_written(c), 1024);
	sw_capture_stop(c);
	assert_int_equal(read_back(small_len), 1024);
}

static void test_unwritable_file_is_an_error(void **state)
{
	(void)state;
	char err[160] = "";
	assert_null(sw_capture_start("/nonexistent-dir/x.pcap", 1, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/x.pcap"));
}

struct producer {
	struct sw_capture *c;
	uint32_t n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	uint8_t buf[128];
	for (uint32_t i = 0; i < p->n; i++) {
		frame(buf, 128, 0);
		sw_capture_frame(p->c, buf, 128);
	}
	return NULL;
}

static void test_concurrent_producer(void **state)
{
	(void)state;
	char err[128];
	struct producer p = {.c = sw_capture_start(path, 0, err, sizeof(err)), .n = 200000};
	pthread_t t;
	pthread_create(&t, NULL, produce, &p);
	for (int i = 0; i < 2000; i++)
		sw_capture_drain(p.c);
	pthread_join(t, NULL);
	sw_capture_drain(p.c);
	uint64_t written = sw_capture_written(p.c), missed = sw_capture_missed(p.c);
	assert_int_equal(written + missed, p.n);
	sw_capture_stop(p.c);
	/* Every frame in the file is intact (all were built with seq 0). */
	char e[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap_open_offline(path, e);
	struct pcap_pkthdr *h;
	const u_char *data;
	uint8_t expect[128];
	frame(expect, 128, 0);
	uint64_t n = 0;
	while (pcap_next_ex(pc, &h, &data) == 1) {
		assert_int_equal(h->caplen, 128);
		assert_memory_equal(data, expect, 128);
		n++;
	}
	pcap_close(pc);
	assert_int_equal(n, written);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_capture_count_limits_the_file),
		T(test_full_queue_counts_missed),
		T(test_unwritable_file_is_an_error),
		T(test_concurrent_producer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
