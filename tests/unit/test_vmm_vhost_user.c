/*
 * test_vmm_vhost_user — vnet-vmm's vhost-user back-end (net_vhost_user.c)
 * against libvnet's real vhost-user back-end (struct vnet_vhu_dev served by a
 * thread of this test), without KVM. A fake VM (struct vmm) has its RAM in a
 * memfd laid out as vnet-vmm's: low RAM at GPA 0, the rest at 4 GiB (fd
 * offset low_size). The test is the guest driver (libvnet's driver-side
 * virtqueue, programming the virtio_dev through the transports' register
 * helpers; kicks are writes to the kick eventfds, as KVM's ioeventfd does)
 * and the back-end's data plane (vnet_vhu_ring_enter on the test thread).
 * Checked: features, the memory table, frames both ways with the call
 * eventfd firing (no VMM thread involved), reset and restart, a back-end
 * that hangs up (NEEDS_RESET, then a reconnect at the next DRIVER_OK), a
 * ring the back-end finds broken (SET_VRING_ERR → NEEDS_RESET), server=on,
 * the start-up error for a dead socket, and no fd leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fakevm.h"
#include "testmem.h"
#include "vhu_be.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/vhost_user_backend.h"
#include "vnet/virtqueue_driver.h"
#include "vmm/net_dev.h"
#include "vmm/virtio_dev.h"
#include "vmm/vmm.h"

#define LOW      (4u << 20)
#define HIGH     (4u << 20)
#define QSIZE    64
#define RXQ_GPA  0x10000ull
#define TXQ_GPA  (VMM_HIGH_RAM_BASE + 0x10000ull) /* rings in the high region */
#define TXB_GPA  (VMM_HIGH_RAM_BASE + 0x100000ull)
#define RXB_GPA  0x100000ull
#define HDR      12u

#define F_V1  VNET_BIT(VIRTIO_F_VERSION_1)
#define F_IND VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVT VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_MAC VNET_BIT(VIRTIO_NET_F_MAC)
#define F_PF  VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)

/* ---- the fake VM and device (as net_dev.c) ---- */

static struct vmm vm;
static struct net_dev nd;
static struct vhu_be be;            /* libvnet's back-end in a thread */
static struct vnet_vq_driver rxd, txd;
static char sock_path[108];
static unsigned fds_before;

static uint8_t *host(uint64_t gpa)
{
	return fakevm_host(&vm, gpa);
}

static const struct fakevm_ring rings[2] = {
	{ .drv = &rxd, .ring_gpa = RXQ_GPA, .name = "guest/rx" },
	{ .drv = &txd, .ring_gpa = TXQ_GPA, .name = "guest/tx" },
};

/* vnet-vmm's net device model with its vhost-user back-end opened on
 * sock_path (connect, or listen with `server`); not started. */
static int open_device(bool server)
{
	struct net_dev_config cfg = { .mode = NET_MODE_VHOST_USER, .socket_server = server };
	snprintf(cfg.socket, sizeof(cfg.socket), "%s", sock_path);
	return net_dev_model_init(&nd, &vm, &cfg, 0);
}

/* What a driver does from reset to DRIVER_OK; true when the device runs. */
static bool driver_start(uint64_t features)
{
	return fakevm_driver_start(&vm, &nd.vdev, features, rings, 2, QSIZE);
}

static void driver_reset(void)
{
	fakevm_driver_reset(&nd.vdev, rings, 2);
}

static void close_device(void)
{
	driver_reset();
	net_dev_model_fini(&nd);
}

/* libvnet's back-end listening at sock_path, or connecting to it (`connects`). */
static void be_start(bool connects)
{
	static const struct vnet_vhu_backend_config cfg = {.name = "be", .max_queue_pairs = 1,
							   .io_timeout_ms = 500};
	assert_int_equal(vhu_be_start(&be, sock_path, connects, &cfg), 0);
}

static int setup(void **state)
{
	(void)state;
	static unsigned seq;
	snprintf(sock_path, sizeof(sock_path), "/tmp/vnet-vmm-vhu-test-%d-%u.sock", (int)getpid(),
		 seq++);
	fds_before = vhu_count_fds();
	testlog_capture();
	fakevm_init(&vm, LOW, HIGH);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vhu_be_stop(&be);
	fakevm_fini(&vm);
	unlink(sock_path);
	testlog_release();
	unsigned after = vhu_count_fds();
	if (after != fds_before) {
		fprintf(stderr, "fd leak: %u fds before, %u after\n", fds_before, after);
		return -1;
	}
	return 0;
}

/* ---- guest and back-end data plane ---- */

static void kick(struct vnet_vq_driver *drv, unsigned q)
{
	if (vnet_vq_driver_kick_prepare(drv))
		eventfd_write(nd.vdev.q[q].kick_fd, 1);
}


/* The back-end runs `ring` for one burst: pops a chain and checks or fills it. */
static int device_burst(unsigned ring, uint8_t fill, uint32_t len)
{
	for (int tries = 0; tries < 200; tries++) {
		enum vnet_vhu_ring_state st;
		unsigned tok;
		struct vnet_vq *vq = vnet_vhu_ring_enter(&be.dev, ring, &st, &tok);
		if (!vq) {
			usleep(1000);
			continue;
		}
		struct vnet_vq_chain ch;
		struct iovec iov[4];
		int got = -1;
		if (vnet_vq_pop(vq, &ch, iov, 4) == 1) {
			uint8_t *p = iov[0].iov_base;
			if (ring == NET_DEV_TXQ) {
				got = (int)iov[0].iov_len;
				for (int k = HDR; k < got; k++)
					if (p[k] != fill)
						got = -2;
				vnet_vq_push(vq, ch.head, 0);
			} else {
				memset(p, 0, HDR);
				((struct virtio_net_hdr_mrg_rxbuf *)p)->num_buffers = 1;
				memset(p + HDR, fill, len);
				vnet_vq_push(vq, ch.head, HDR + len);
				got = (int)(HDR + len);
			}
		}
		vnet_vhu_ring_exit(&be.dev, ring, tok, vnet_vq_flush(vq));
		if (got != -1 || vnet_vq_is_broken(vq))
			return got;
		usleep(1000);
	}
	return -1;
}

/* Guest TX of one frame from the high region, RX of one into the low one. */
static void traffic(uint8_t fill)
{
	memset(host(TXB_GPA), 0, HDR);
	memset(host(TXB_GPA) + HDR, fill, 100);
	struct vnet_buf tb = {.addr = TXB_GPA, .len = HDR + 100};
	assert_int_equal(vnet_vq_driver_add(&txd, &tb, 1, 0, host(TXB_GPA), false), 0);
	kick(&txd, NET_DEV_TXQ);
	assert_int_equal(device_burst(NET_DEV_TXQ, fill, 0), HDR + 100);
	assert_true(fakevm_wait_call(&nd.vdev, NET_DEV_TXQ, 1000)); /* the back-end wrote the irqfd's eventfd */

	struct vnet_buf rb = {.addr = RXB_GPA, .len = 2048};
	assert_int_equal(vnet_vq_driver_add(&rxd, &rb, 0, 1, host(RXB_GPA), false), 0);
	kick(&rxd, NET_DEV_RXQ);
	assert_int_equal(device_burst(NET_DEV_RXQ, (uint8_t)~fill, 200), HDR + 200);
	assert_true(fakevm_wait_call(&nd.vdev, NET_DEV_RXQ, 1000));
	uint32_t written = 0;
	assert_ptr_equal(vnet_vq_driver_get_used(&rxd, &written), host(RXB_GPA));
	assert_int_equal(written, HDR + 200);
	assert_int_equal(host(RXB_GPA)[HDR + 199], (uint8_t)~fill);
	assert_ptr_equal(vnet_vq_driver_get_used(&txd, &written), host(TXB_GPA));
}

static bool wait_needs_reset(int ms)
{
	for (int i = 0; i < ms && !atomic_load(&nd.vdev.needs_reset); i++)
		usleep(1000);
	return atomic_load(&nd.vdev.needs_reset);
}

/* ---- tests ---- */

static void test_run_reset_restart(void **state)
{
	(void)state;
	be_start(false);
	assert_int_equal(open_device(false), 0);
	/* the back-end's data-path features; no MQ, no PROTOCOL_FEATURES */
	assert_int_equal(nd.backend->features(&nd), F_V1 | F_IND | F_EVT);
	assert_true(driver_start(F_V1 | F_EVT | F_MAC));
	assert_true(nd.vdev.irq_bypass);
	/* the back-end got the guest's data-path features, not MAC (the VMM's) */
	assert_int_equal(be.dev.acked_features, F_V1 | F_EVT | F_PF);
	assert_int_equal(be.dev.nmaps, 2);
	assert_int_equal(vhu_be_ring_state(&be, 0), VNET_VHU_RING_ENABLED);
	assert_int_equal(vhu_be_ring_state(&be, 1), VNET_VHU_RING_ENABLED);
	traffic(0x5a);

	driver_reset(); /* GET_VRING_BASE: the back-end lets go of the rings */
	assert_int_equal(vhu_be_ring_state(&be, 0), VNET_VHU_RING_STOPPED);
	assert_int_equal(vhu_be_ring_state(&be, 1), VNET_VHU_RING_STOPPED);
	assert_false(nd.vdev.irq_bypass);
	assert_true(driver_start(F_V1 | F_IND));
	assert_int_equal(be.dev.acked_features, F_V1 | F_IND | F_PF);
	traffic(0x33);
	assert_int_equal(testlog_count_containing("needs reset"), 0);
	close_device();
}

static void test_hangup_then_reconnect(void **state)
{
	(void)state;
	be_start(false);
	assert_int_equal(open_device(false), 0);
	assert_true(driver_start(F_V1 | F_EVT));
	vhu_be_stop(&be);
	assert_true(wait_needs_reset(2000));
	assert_int_equal(testlog_count_containing("hung up; device needs reset"), 1);
	/* the guest resets; the back-end is still gone: DRIVER_OK fails cleanly */
	driver_reset();
	assert_false(driver_start(F_V1 | F_EVT));
	assert_true(testlog_count_containing("no back-end listening at") >= 1);
	driver_reset();
	/* it comes back; the next DRIVER_OK reconnects */
	be_start(false);
	assert_true(driver_start(F_V1 | F_EVT));
	traffic(0x77);
	close_device();
}

static void test_broken_ring_reported(void **state)
{
	(void)state;
	be_start(false);
	assert_int_equal(open_device(false), 0);
	assert_true(driver_start(F_V1));
	/* an avail index more than a ring ahead: the back-end's queue breaks */
	txd.avail->idx = QSIZE + 7;
	eventfd_write(nd.vdev.q[NET_DEV_TXQ].kick_fd, 1);
	device_burst(NET_DEV_TXQ, 0, 0);
	assert_true(wait_needs_reset(2000));
	assert_int_equal(testlog_count_containing("found queue 1 broken"), 1);
	driver_reset();
	assert_true(driver_start(F_V1)); /* and the device recovers */
	traffic(0x11);
	close_device();
}

static void test_server_mode(void **state)
{
	(void)state;
	be_start(true);
	assert_int_equal(open_device(true), 0);
	assert_int_equal(access(sock_path, F_OK), -1); /* listening socket removed */
	assert_true(driver_start(F_V1 | F_EVT));
	traffic(0x42);
	close_device();
}

static void test_dead_socket(void **state)
{
	(void)state;
	uint64_t t0 = (uint64_t)time(NULL);
	assert_int_equal(open_device(false), -ETIMEDOUT);
	assert_true((uint64_t)time(NULL) - t0 <= 7);
	char want[200];
	snprintf(want, sizeof(want), "vnet-vmm: vhost-user net0: no back-end listening at %s", sock_path);
	assert_int_equal(testlog_count_containing(want), 1);
	assert_int_equal(testlog_count_containing("No such file or directory"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_run_reset_restart),
		T(test_hangup_then_reconnect),
		T(test_broken_ring_reported),
		T(test_server_mode),
		T(test_dead_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
