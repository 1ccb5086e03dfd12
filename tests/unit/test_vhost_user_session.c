/*
 * test_vhost_user_session.c — the front-end protocol session against
 * libvnet's real back-end (struct vnet_vhu_dev served by a thread of this
 * test), set up the way vnet-vmm uses it: guest RAM in one memfd shared as
 * two regions that are not GPA-adjacent (low RAM at GPA 0, the rest at
 * 4 GiB, the second at an fd offset), rings the "guest" placed itself,
 * UADDRs from this process's mapping, eventfds owned by the caller. Checks
 * negotiation, frames crossing the shared memory, GET_VRING_BASE, a restart
 * after stop (a guest reset), REPLY_ACK refusals, liveness, start-up errors
 * and fds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "testmem.h"
#include "vhu_be.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/vhost_user_backend.h"
#include "vnet/vhost_user_session.h"
#include "vnet/virtqueue_driver.h"

#define F_V1  VNET_BIT(VIRTIO_F_VERSION_1)
#define F_EVT VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_IND VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_CSUM VNET_BIT(VIRTIO_NET_F_CSUM)
#define F_PF  VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)
#define P(bit) VNET_BIT(VHOST_USER_PROTOCOL_F_##bit)

#define REGION   (1u << 20)          /* each of the two RAM regions */
#define HIGH_GPA 0x100000000ull      /* region 1, like RAM above 4 GiB */
#define QSZ      64
#define HDR      12u

/* ---- fixture: guest RAM, rings, eventfds, session ---- */

struct fx {
	struct vhu_be be;           /* libvnet's back-end in a thread */
	struct vnet_vhu_backend_config be_cfg;
	bool be_connects;           /* the back-end connects (session in server mode) */
	struct vnet_vhu_session s;
	int memfd;
	uint8_t *mem;               /* the memfd mapped whole: region 0, then region 1 */
	struct vnet_vq_driver drv[2];
	int kick[2], call[2];
	unsigned fds_before;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->fds_before = vhu_count_fds();
	f->be_cfg = (struct vnet_vhu_backend_config){
		.name = "be", .max_queue_pairs = 2, .io_timeout_ms = 500,
		.has_mac = true, .mac = {2, 0, 0, 0xaa, 0xbb, 0xcc}, .mtu = 9000,
	};
	vnet_vhu_session_init(&f->s);
	f->memfd = -1;
	for (unsigned i = 0; i < 2; i++)
		f->kick[i] = f->call[i] = -1;
	testlog_capture();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vnet_vhu_session_close(&f->s);
	vhu_be_stop(&f->be);
	for (unsigned i = 0; i < 2; i++) {
		if (f->kick[i] >= 0)
			close(f->kick[i]);
		if (f->call[i] >= 0)
			close(f->call[i]);
	}
	if (f->mem)
		munmap(f->mem, 2 * REGION);
	if (f->memfd >= 0)
		close(f->memfd);
	testlog_release();
	unsigned before = f->fds_before, after = vhu_count_fds();
	free(f);
	if (after != before) {
		fprintf(stderr, "fd leak: %u fds before, %u after\n", before, after);
		return -1;
	}
	return 0;
}

static struct vnet_vhu_session_config session_cfg(struct fx *f)
{
	return (struct vnet_vhu_session_config){
		.name = "net0", .log_prefix = "vhost-user", .path = f->be.path,
		.server = f->be_connects, .connect_timeout_ms = 3000, .io_timeout_ms = 1000,
		.protocol_features = P(REPLY_ACK) | P(STATUS) | P(CONFIG) | P(NET_MTU) | P(MQ),
	};
}

/* Starts the back-end at a fresh path. */
static void be_start(struct fx *f)
{
	static unsigned seq;
	char path[108];
	snprintf(path, sizeof(path), "/tmp/vnet-session-test-%d-%u.sock", (int)getpid(), seq++);
	assert_int_equal(vhu_be_start(&f->be, path, f->be_connects, &f->be_cfg), 0);
}

static void connect_ok(struct fx *f)
{
	be_start(f);
	struct vnet_vhu_session_config c = session_cfg(f);
	assert_int_equal(vnet_vhu_session_connect(&f->s, &c), 0);
	assert_true(f->s.connected);
}

/* Host address of guest-physical gpa in this test's "VMM" layout. */
static uint8_t *gpa_host(struct fx *f, uint64_t gpa)
{
	return gpa >= HIGH_GPA ? f->mem + REGION + (gpa - HIGH_GPA) : f->mem + gpa;
}

/* Guest RAM like vnet-vmm's: one memfd, region 0 at GPA 0 (fd offset 0),
 * region 1 at 4 GiB (fd offset REGION); rings live in region 1. */
static void guest_memory(struct fx *f)
{
	f->memfd = vhu_memfd("vnet-session-test", 2 * REGION, (void **)&f->mem);
	for (unsigned i = 0; i < 2; i++) {
		f->kick[i] = vhu_eventfd();
		f->call[i] = vhu_eventfd();
	}
}

static void set_mem_table(struct fx *f)
{
	struct vnet_vhu_session_region regions[2] = {
		{.gpa = 0, .size = REGION, .uaddr = (uintptr_t)f->mem, .fd = f->memfd,
		 .fd_offset = 0},
		{.gpa = HIGH_GPA, .size = REGION, .uaddr = (uintptr_t)(f->mem + REGION),
		 .fd = f->memfd, .fd_offset = REGION},
	};
	assert_int_equal(vnet_vhu_session_set_mem_table(&f->s, regions, 2), 0);
}

/* The guest driver (re)initialises its rings, the session hands them over. */
static void start_rings(struct fx *f)
{
	for (unsigned i = 0; i < 2; i++) {
		uint64_t ring_gpa = HIGH_GPA + i * 0x4000;
		struct vnet_vq_driver_config dc = {
			.size = QSZ, .ring_host = gpa_host(f, ring_gpa), .ring_gpa = ring_gpa,
			.features = f->s.features, .name = "guest",
		};
		memset(dc.ring_host, 0, vnet_vq_driver_ring_bytes(QSZ));
		assert_int_equal(vnet_vq_driver_init(&f->drv[i], &dc), 0);
		struct vnet_vhu_session_ring r = {
			.index = i, .num = QSZ,
			.desc = (uintptr_t)f->drv[i].desc, .avail = (uintptr_t)f->drv[i].avail,
			.used = (uintptr_t)f->drv[i].used,
			.kick_fd = f->kick[i], .call_fd = f->call[i],
		};
		assert_int_equal(vnet_vhu_session_start_ring(&f->s, &r, false), 0);
	}
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vnet_vhu_session_enable_ring(&f->s, i, true), 0);
}

/* Everything a VMM does at DRIVER_OK. */
static void bring_up(struct fx *f)
{
	assert_int_equal(vnet_vhu_session_set_features(&f->s, F_V1 | F_EVT | F_IND), 0);
	assert_int_equal(vnet_vhu_session_set_status(&f->s, VNET_VIRTIO_STATUS_ACKNOWLEDGE |
							     VNET_VIRTIO_STATUS_DRIVER |
							     VNET_VIRTIO_STATUS_FEATURES_OK), 0);
	set_mem_table(f);
	start_rings(f);
	assert_int_equal(vnet_vhu_session_set_status(&f->s, f->s.status |
							     VNET_VIRTIO_STATUS_DRIVER_OK), 0);
}

/* Guest sends a frame on the TX ring from guest RAM at gpa. */
static void guest_tx(struct fx *f, uint64_t gpa, uint32_t len, uint8_t fill)
{
	uint8_t *p = gpa_host(f, gpa);
	memset(p, 0, HDR);
	memset(p + HDR, fill, len);
	struct vnet_buf b = {.addr = gpa, .len = HDR + len};
	assert_int_equal(vnet_vq_driver_add(&f->drv[1], &b, 1, 0, p, false), 0);
	if (vnet_vq_driver_kick_prepare(&f->drv[1]))
		eventfd_write(f->kick[1], 1);
}

/* The back-end's data plane takes one TX frame; returns its length (0: none). */
static size_t device_pop(struct fx *f, uint8_t fill)
{
	for (int tries = 0; tries < 100; tries++) {
		enum vnet_vhu_ring_state st;
		unsigned tok;
		struct vnet_vq *vq = vnet_vhu_ring_enter(&f->be.dev, 1, &st, &tok);
		if (!vq) {
			usleep(1000);
			continue;
		}
		struct vnet_vq_chain ch;
		struct iovec iov[4];
		size_t len = 0;
		if (vnet_vq_pop(vq, &ch, iov, 4) == 1) {
			for (unsigned i = 0; i < ch.n_out; i++) {
				const uint8_t *q = iov[i].iov_base;
				for (size_t k = 0; k < iov[i].iov_len; k++, len++)
					if (len >= HDR && q[k] != fill)
						fail_msg("byte %zu is 0x%x, expected 0x%x", len, q[k], fill);
			}
			vnet_vq_push(vq, ch.head, 0);
		}
		vnet_vhu_ring_exit(&f->be.dev, 1, tok, vnet_vq_flush(vq));
		return len;
	}
	return 0;
}

/* ---- tests ---- */

static void test_negotiation(void **state)
{
	struct fx *f = *state;
	connect_ok(f);
	assert_int_equal(f->s.offered_features, vnet_vhu_backend_default_features() |
							VNET_BIT(VIRTIO_NET_F_MAC) |
							VNET_BIT(VIRTIO_NET_F_MTU));
	/* acked = wanted ∩ offered (the back-end offers CONFIGURE_MEM_SLOTS too) */
	assert_int_equal(f->s.protocol, P(REPLY_ACK) | P(STATUS) | P(CONFIG) | P(NET_MTU) | P(MQ));
	assert_int_equal(f->be.dev.acked_protocol, f->s.protocol);
	assert_int_equal(f->s.queue_num, 2);
	/* not offered (CSUM) is dropped; PROTOCOL_FEATURES is added */
	assert_int_equal(vnet_vhu_session_set_features(&f->s, F_V1 | F_EVT | F_CSUM), 0);
	assert_int_equal(f->s.features, F_V1 | F_EVT | F_PF);
	assert_int_equal(f->be.dev.acked_features, F_V1 | F_EVT | F_PF);
	uint8_t mac[6];
	assert_int_equal(vnet_vhu_session_get_config(&f->s, 0, mac, 6), 0);
	assert_memory_equal(mac, "\x02\x00\x00\xaa\xbb\xcc", 6);
	assert_int_equal(vnet_vhu_session_set_mtu(&f->s, 1500), 0);
	assert_int_equal(f->be.dev.mtu, 1500);
	assert_int_equal(vnet_vhu_session_set_status(&f->s, 7), 0);
	assert_int_equal(f->be.dev.status, 7);
	assert_int_equal(vnet_vhu_session_check(&f->s), 0);
}

static void test_vmm_layout_traffic_stop_restart(void **state)
{
	struct fx *f = *state;
	connect_ok(f);
	guest_memory(f);
	bring_up(f);
	assert_int_equal(vhu_be_ring_state(&f->be, 0), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_be_ring_state(&f->be, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(f->be.dev.status, 0xf);

	/* frames from both regions cross the shared memory intact */
	guest_tx(f, 0x2000, 100, 0x11);
	guest_tx(f, HIGH_GPA + 0x80000, 1500, 0x22);
	assert_int_equal(device_pop(f, 0x11), HDR + 100);
	assert_int_equal(device_pop(f, 0x22), HDR + 1500);
	assert_true(vhu_eventfd_fired(f->call[1]) || vnet_vq_driver_has_used(&f->drv[1]));

	/* stop as at a guest reset: disable, GET_VRING_BASE, status 0 */
	uint16_t last[2] = {99, 99};
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vnet_vhu_session_enable_ring(&f->s, i, false), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vnet_vhu_session_stop_ring(&f->s, i, &last[i]), 0);
	assert_int_equal(last[0], 0);
	assert_int_equal(last[1], 2);
	assert_int_equal(vhu_be_ring_state(&f->be, 1), VNET_VHU_RING_STOPPED);
	assert_int_equal(vnet_vhu_session_set_status(&f->s, 0), 0);

	/* the guest sets the device up again from scratch: same session */
	for (unsigned i = 0; i < 2; i++)
		vnet_vq_driver_fini(&f->drv[i]);
	bring_up(f);
	assert_int_equal(vhu_be_ring_state(&f->be, 1), VNET_VHU_RING_ENABLED);
	guest_tx(f, 0x3000, 60, 0x33);
	assert_int_equal(device_pop(f, 0x33), HDR + 60);
	assert_int_equal(vnet_vhu_session_stop_ring(&f->s, 1, &last[1]), 0);
	assert_int_equal(last[1], 1);
	for (unsigned i = 0; i < 2; i++)
		vnet_vq_driver_fini(&f->drv[i]);
}

static void test_nofd_rings_and_refusal(void **state)
{
	struct fx *f = *state;
	connect_ok(f);
	guest_memory(f);
	assert_int_equal(vnet_vhu_session_set_features(&f->s, F_V1), 0);
	set_mem_table(f);
	struct vnet_vhu_session_ring r = {
		.index = 1, .num = QSZ, .desc = (uintptr_t)f->mem + REGION,
		.avail = (uintptr_t)f->mem + REGION + 0x1000,
		.used = (uintptr_t)f->mem + REGION + 0x2000, .kick_fd = -1, .call_fd = -1,
	};
	assert_int_equal(vnet_vhu_session_start_ring(&f->s, &r, true), 0);
	assert_int_equal(vhu_be_ring_state(&f->be, 1), VNET_VHU_RING_ENABLED);
	assert_int_equal(f->be.dev.rings[1].kick_fd, -1); /* NOFD: the back-end polls */
	/* a running ring cannot be resized: refused, but the session stays usable */
	assert_int_equal(vnet_vhu_session_start_ring(&f->s, &r, true), -EPROTO);
	assert_true(testlog_count_containing("vhost-user net0: back-end rejected SET_VRING_NUM") == 1);
	assert_true(f->s.connected);
	uint16_t last = 1;
	assert_int_equal(vnet_vhu_session_stop_ring(&f->s, 1, &last), 0);
	assert_int_equal(last, 0);
	assert_int_equal(vnet_vhu_session_check(&f->s), 0);
}

static void test_without_protocol_features(void **state)
{
	struct fx *f = *state;
	f->be_cfg.features = F_V1 | F_EVT; /* no PROTOCOL_FEATURES: no acks, no enable */
	connect_ok(f);
	assert_int_equal(f->s.protocol, 0);
	assert_int_equal(f->s.queue_num, 0);
	assert_int_equal(vnet_vhu_session_set_features(&f->s, F_V1 | F_EVT), 0);
	assert_int_equal(f->s.features, F_V1 | F_EVT);
	assert_int_equal(vnet_vhu_session_get_config(&f->s, 0, (uint8_t[6]){0}, 6), -EOPNOTSUPP);
	assert_int_equal(vnet_vhu_session_set_status(&f->s, 0xf), 0); /* not sent */
	assert_int_equal(f->s.status, 0);
	guest_memory(f);
	set_mem_table(f);
	start_rings(f);
	/* a message without NEED_REPLY is served asynchronously: wait for it */
	for (int i = 0; i < 200 && vhu_be_ring_state(&f->be, 1) != VNET_VHU_RING_ENABLED; i++)
		usleep(1000);
	assert_int_equal(vhu_be_ring_state(&f->be, 1), VNET_VHU_RING_ENABLED);
	guest_tx(f, 0x1000, 64, 0x44);
	assert_int_equal(device_pop(f, 0x44), HDR + 64);
	for (unsigned i = 0; i < 2; i++)
		vnet_vq_driver_fini(&f->drv[i]);
}

static void test_server_mode(void **state)
{
	struct fx *f = *state;
	f->be_connects = true;
	connect_ok(f);
	assert_int_equal(access(f->be.path, F_OK), -1); /* listening socket removed */
	assert_int_equal(f->s.queue_num, 2);
}

static void test_hangup_detected(void **state)
{
	struct fx *f = *state;
	connect_ok(f);
	assert_int_equal(vnet_vhu_session_check(&f->s), 0);
	vhu_be_stop(&f->be);
	int r = 0;
	for (int i = 0; i < 500 && r == 0; i++) {
		r = vnet_vhu_session_check(&f->s);
		if (r == 0)
			usleep(1000);
	}
	assert_int_equal(r, -ECONNRESET);
	assert_true(testlog_count_containing("vhost-user net0: back-end disconnected") == 1);
	assert_int_equal(vnet_vhu_session_check(&f->s), -ENOTCONN);
	/* later requests fail quietly */
	testlog_clear();
	assert_int_equal(vnet_vhu_session_set_features(&f->s, F_V1), -ENOTCONN);
	assert_int_equal(testlog_count(), 0);
}

static void test_request_after_hangup(void **state)
{
	struct fx *f = *state;
	connect_ok(f);
	vhu_be_stop(&f->be);
	int r = vnet_vhu_session_set_features(&f->s, F_V1);
	assert_true(r == -ECONNRESET);
	assert_false(f->s.connected);
	assert_true(testlog_count_containing("back-end closed the connection") == 1);
}

static void test_dead_socket(void **state)
{
	struct fx *f = *state;
	struct vnet_vhu_session_config c = session_cfg(f);
	c.path = "/tmp/vnet-session-test-nobody.sock";
	c.connect_timeout_ms = 100;
	assert_int_equal(vnet_vhu_session_connect(&f->s, &c), -ETIMEDOUT);
	assert_true(testlog_count_containing(
			    "vhost-user net0: no back-end listening at "
			    "/tmp/vnet-session-test-nobody.sock after 100 ms (connect: No such "
			    "file or directory)") == 1);
	assert_int_equal(f->s.sock, -1);
}

static void test_bad_config(void **state)
{
	struct fx *f = *state;
	struct vnet_vhu_session_config c = session_cfg(f);
	c.path = "/tmp/whatever.sock";
	c.protocol_features = P(BACKEND_REQ);
	assert_int_equal(vnet_vhu_session_connect(&f->s, &c), -EINVAL);
	c.protocol_features = 0;
	c.path = NULL;
	assert_int_equal(vnet_vhu_session_connect(&f->s, &c), -EINVAL);
	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	c.path = longpath;
	assert_int_equal(vnet_vhu_session_connect(&f->s, &c), -ENAMETOOLONG);
	assert_int_equal(f->s.sock, -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_negotiation),
		T(test_vmm_layout_traffic_stop_restart),
		T(test_nofd_rings_and_refusal),
		T(test_without_protocol_features),
		T(test_server_mode),
		T(test_hangup_detected),
		T(test_request_after_hangup),
		T(test_dead_socket),
		T(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
