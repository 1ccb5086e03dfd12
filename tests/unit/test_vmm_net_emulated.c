/*
 * test_vmm_net_emulated — vnet-vmm's virtio-net back-ends against a real tap,
 * without KVM. The test process moves into a private network namespace
 * (unshare), creates a tap there, and plays both ends:
 *   guest: libvnet's driver-side virtqueue in a fake VM's RAM (struct vmm
 *          with malloc'ed memory), programming a virtio_dev through the same
 *          register helpers the transports use; kicks are writes to the
 *          queues' kick eventfds (what the KVM ioeventfd does), interrupts are
 *          the call eventfds firing.
 *   host:  an AF_PACKET socket with PACKET_VNET_HDR on the tap's interface.
 * Checked: frames cross both ways byte for byte (split headers, indirect
 * chains, a frame over several MRG_RXBUF buffers, 60 KB GSO frames both
 * ways), interrupts fire, RX waits for the guest's buffers (no lost
 * wake-up), hostile chains are dropped and counted, a broken ring marks the
 * device NEEDS_RESET, start/stop repeats without leaking fds, and the tap /
 * vhost-net start-up errors. The vhost-net back-end runs the same traffic
 * test when /dev/vhost-net exists (the lab VM), else that test is skipped.
 * Needs root and /dev/net/tun; skips otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fakevm.h"
#include "testmem.h"
#include "vnet/net.h"
#include "vnet/virtqueue_driver.h"
#include "vmm/net_dev.h"
#include "vmm/tap.h"
#include "vmm/virtio_dev.h"
#include "vmm/vmm.h"

#define TAP "vt0"
#define RAM (8u << 20)
#define QSIZE 256
#define RXQ_GPA 0x10000ull
#define TXQ_GPA 0x20000ull
#define TX_IND_GPA 0x30000ull
#define TX_BUF_GPA 0x100000ull
#define TX_SLOT 0x11000ull /* 68 KiB: a GSO frame and its header */
#define TX_SLOTS 32
#define RX_BUF_GPA 0x400000ull
#define HDR 12u
#define ETH_TEST 0x88b5 /* IEEE local experimental */

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t host_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static bool have_env;     /* root, /dev/net/tun, a private netns with the tap */
static bool device_open;  /* for the teardown after a failed assertion */
static int pkt_fd = -1;   /* AF_PACKET on the tap's interface */

static struct vmm vm;
static struct net_dev nd;
static struct vnet_vq_driver rxd, txd;
static uint8_t frame[70000], got[70000];

/* ---- environment --------------------------------------------------------- */

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, s, strlen(s));
		close(fd);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A tap has carrier while an fd is attached, but the kernel reacts to carrier
 * changes later (linkwatch, up to a second): it activates the queueing
 * discipline (until then frames sent to the tap vanish) and then sets the
 * operational state, which IFF_RUNNING reflects. Right after the link comes
 * up, before that first pass, IFF_RUNNING shows as well: so the test waits
 * for !RUNNING after every detach (setup, close) and RUNNING after attach.
 */
static bool wait_tap(bool running)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	uint64_t end = now_ms() + 3000;
	while (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_RUNNING) == running &&
	       now_ms() < end)
		usleep(10 * 1000);
	close(s);
	usleep(20 * 1000); /* the qdisc is activated right after the state is set */
	return !!(ifr.ifr_flags & IFF_RUNNING) == running;
}

/* A persistent tap, as `ip tuntap add mode tap` makes, with its link up. */
static int make_tap(const char *name, short type, bool persist)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = type | IFF_NO_PI;
	int rc = ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, persist ? 1 : 0) < 0;
	close(fd);
	if (rc)
		return -1;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ifr.ifr_flags = IFF_UP;
	rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return rc;
}

static void setup_env(void)
{
	if (getuid() != 0 || access("/dev/net/tun", R_OK | W_OK) < 0 || unshare(CLONE_NEWNET) < 0)
		return;
	/* No IPv6 chatter (router solicitations, MLD) on the new interfaces. */
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	if (make_tap(TAP, IFF_TAP, true) < 0 || make_tap("vtun0", IFF_TUN, true) < 0)
		return;
	pkt_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int one = 1;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(TAP)};
	if (pkt_fd < 0 || setsockopt(pkt_fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    bind(pkt_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return;
	have_env = wait_tap(false);
}

#define NEED_ENV()                                                                       \
	do {                                                                             \
		if (!have_env)                                                           \
			skip(); /* needs root, /dev/net/tun and unshare(CLONE_NEWNET) */ \
	} while (0)

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}


/* ---- the VM and device ----------------------------------------------------- */

static void *host(uint64_t gpa)
{
	return fakevm_host(&vm, gpa);
}

static const struct fakevm_ring rings[2] = {
	{ .drv = &rxd, .ring_gpa = RXQ_GPA, .name = "guest/rx" },
	{ .drv = &txd, .ring_gpa = TXQ_GPA, .indirect_gpa = TX_IND_GPA, .indirect_max = 4, .name = "guest/tx" },
};

/* The VM and vnet-vmm's own net device model with `mode`'s back-end opened
 * on the tap; not started. */
static int open_device(enum net_mode mode)
{
	fakevm_init(&vm, RAM, 0);
	struct net_dev_config cfg = { .mode = mode, .have_mac = true };
	snprintf(cfg.tap, sizeof(cfg.tap), TAP);
	memcpy(cfg.mac, guest_mac, 6);
	int rc = net_dev_model_init(&nd, &vm, &cfg, 0);
	if (rc < 0) {
		fakevm_fini(&vm);
		return rc;
	}
	device_open = true;
	assert_true(wait_tap(true));
	return 0;
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
	if (!device_open)
		return;
	device_open = false;
	driver_reset();
	net_dev_model_fini(&nd);
	fakevm_fini(&vm);
}

/* ---- guest side ---------------------------------------------------------- */

static void kick(struct vnet_vq_driver *drv, unsigned q)
{
	if (vnet_vq_driver_kick_prepare(drv)) {
		uint64_t one = 1;
		assert_int_equal(write(nd.vdev.q[q].kick_fd, &one, 8), 8);
	}
}


static void post_rx(unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = RX_BUF_GPA + (uint64_t)(i % QSIZE) * 2048;
		struct vnet_buf b = {.addr = gpa, .len = size};
		assert_int_equal(vnet_vq_driver_add(&rxd, &b, 0, 1, host(gpa), false), 0);
	}
	kick(&rxd, NET_DEV_RXQ);
}

/*
 * Sends hdr+len bytes of `frame` as one chain in TX slot `slot`: `split`
 * pieces (the header itself cut 5 + 7 when split >= 3), optionally indirect.
 */
static void guest_send(const struct virtio_net_hdr_mrg_rxbuf *h, size_t len, unsigned slot,
		       unsigned split, bool indirect)
{
	uint64_t base = TX_BUF_GPA + (uint64_t)slot * TX_SLOT;
	memcpy(host(base), h, HDR);
	memcpy(host(base + HDR), frame, len);
	struct vnet_buf b[8];
	unsigned n = 0;
	if (split >= 3) {
		b[n++] = (struct vnet_buf){base, 5};
		b[n++] = (struct vnet_buf){base + 5, HDR - 5};
	} else if (split == 2) {
		b[n++] = (struct vnet_buf){base, HDR};
	}
	uint64_t at = split >= 2 ? base + HDR : base;
	size_t left = split >= 2 ? len : len + HDR;
	unsigned pieces = split > 2 ? split - 2 : 1;
	for (unsigned i = 0; i < pieces; i++) {
		size_t chunk = i + 1 == pieces ? left : left / (pieces - i);
		b[n++] = (struct vnet_buf){at, (uint32_t)chunk};
		at += chunk;
		left -= chunk;
	}
	assert_int_equal(vnet_vq_driver_add(&txd, b, n, 0, host(base), indirect), 0);
	kick(&txd, NET_DEV_TXQ);
}

/* Reaps n used TX chains within 2 s. */
static void reap_tx(unsigned n)
{
	uint64_t end = now_ms() + 2000;
	uint32_t written;
	while (n && now_ms() < end) {
		if (vnet_vq_driver_get_used(&txd, &written))
			n--;
		else
			fakevm_wait_call(&nd.vdev, NET_DEV_TXQ, 20);
	}
	assert_int_equal(n, 0);
}

/* One received frame (merged over num_buffers chains) into got[]; its
 * length without the header, or -1 after ms. *nbuf = chains it used. */
static long guest_recv(struct virtio_net_hdr_mrg_rxbuf *h, unsigned *nbuf, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	size_t have = 0;
	unsigned want = 1, seen = 0;
	while (seen < want) {
		uint32_t written;
		uint8_t *buf = vnet_vq_driver_get_used(&rxd, &written);
		if (!buf) {
			vnet_vq_driver_enable_cb(&rxd);
			if (now_ms() > end)
				return -1;
			fakevm_wait_call(&nd.vdev, NET_DEV_RXQ, 20);
			continue;
		}
		if (seen == 0) {
			assert_true(written >= HDR);
			memcpy(h, buf, HDR);
			want = h->num_buffers;
			assert_true(want >= 1);
			buf += HDR;
			written -= HDR;
		}
		assert_true(have + written <= sizeof(got));
		memcpy(got + have, buf, written);
		have += written;
		seen++;
	}
	*nbuf = seen;
	return (long)have;
}

/* ---- host side ----------------------------------------------------------- */

static void make_frame(size_t len, uint16_t type, uint8_t seed, bool to_guest)
{
	memcpy(frame, to_guest ? guest_mac : host_mac, 6);
	memcpy(frame + 6, to_guest ? host_mac : guest_mac, 6);
	frame[12] = (uint8_t)(type >> 8);
	frame[13] = (uint8_t)type;
	for (size_t i = 14; i < len; i++)
		frame[i] = (uint8_t)(seed + i * 7);
}

/* IPv4/TCP headers for a GSO frame (checksums left to the offload). */
static void make_tcp_frame(size_t len, bool to_guest)
{
	make_frame(len, 0x0800, 3, to_guest);
	uint8_t *ip = frame + 14, *tcp = ip + 20;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((len - 14) >> 8);
	ip[3] = (uint8_t)(len - 14);
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	tcp[0] = 0x30, tcp[1] = 0x39, tcp[2] = 0x00, tcp[3] = 0x50;
	tcp[12] = 5 << 4;
	tcp[13] = 0x18; /* PSH ACK */
	tcp[15] = 0xff;
}

static void host_send(const struct virtio_net_hdr *vh, size_t len)
{
	struct virtio_net_hdr none = {0};
	struct iovec iov[2] = {{vh ? (void *)vh : &none, sizeof(none)}, {frame, len}};
	assert_int_equal(writev(pkt_fd, iov, 2), (ssize_t)(sizeof(none) + len));
}

/* The next frame the tap delivered to the host (not one we sent), or -1. */
static long host_recv(struct virtio_net_hdr *vh, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	for (;;) {
		struct pollfd p = {.fd = pkt_fd, .events = POLLIN};
		long left = (long)(end - now_ms());
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		struct iovec iov[2] = {{vh, sizeof(*vh)}, {got, sizeof(got)}};
		struct msghdr m = {.msg_name = &from, .msg_namelen = fl, .msg_iov = iov, .msg_iovlen = 2};
		ssize_t r = recvmsg(pkt_fd, &m, MSG_DONTWAIT);
		if (r >= (ssize_t)sizeof(*vh) && from.sll_pkttype != PACKET_OUTGOING)
			return (long)(r - (ssize_t)sizeof(*vh));
	}
}

/* ---- tests --------------------------------------------------------------- */

static const uint64_t base_features = VNET_BIT(VIRTIO_F_VERSION_1) |
				      VNET_BIT(VIRTIO_NET_F_MAC) |
				      VNET_BIT(VIRTIO_NET_F_MRG_RXBUF) |
				      VNET_BIT(VIRTIO_F_RING_EVENT_IDX) |
				      VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC);

/* 20 frames each way; the interrupts fire; counters add up. */
static void traffic_both_ways(void)
{
	post_rx(64, 2048);
	struct virtio_net_hdr_mrg_rxbuf h0 = {0};
	for (unsigned i = 0; i < 20; i++) {
		size_t len = 60 + i * 77;
		make_frame(len, ETH_TEST, (uint8_t)i, false);
		guest_send(&h0, len, i, i % 4 + 1, i % 5 == 4); /* 1..4 pieces, some indirect */
		struct virtio_net_hdr vh;
		long n = host_recv(&vh, 2000);
		assert_int_equal(n, (long)len);
		assert_memory_equal(got, frame, len);
	}
	reap_tx(20);
	for (unsigned i = 0; i < 20; i++) {
		size_t len = 1514 - i * 50;
		make_frame(len, ETH_TEST, (uint8_t)(100 + i), true);
		host_send(NULL, len);
		struct virtio_net_hdr_mrg_rxbuf h;
		unsigned nbuf;
		assert_int_equal(guest_recv(&h, &nbuf, 2000), (long)len);
		assert_memory_equal(got, frame, len);
		assert_int_equal(nbuf, 1);
		assert_int_equal(h.hdr.flags, 0); /* no GUEST_CSUM: flags must be 0 */
		assert_int_equal(h.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	}
}

static void emulated_frames_both_ways(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	traffic_both_ways();
	assert_int_equal(nd.tx_packets, 20);
	assert_int_equal(nd.rx_packets, 20);
	assert_int_equal(nd.tx_dropped + nd.rx_dropped, 0);
	close_device();
}

/* A 1514-byte frame in 512-byte MRG buffers: three chains, num_buffers = 3. */
static void emulated_frame_over_several_buffers(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	post_rx(32, 512);
	make_frame(1514, ETH_TEST, 9, true);
	host_send(NULL, 1514);
	struct virtio_net_hdr_mrg_rxbuf h;
	unsigned nbuf;
	assert_int_equal(guest_recv(&h, &nbuf, 2000), 1514);
	assert_int_equal(nbuf, 3);
	assert_memory_equal(got, frame, 1514);
	close_device();

	/* Without MRG_RXBUF a frame larger than the one buffer is dropped. */
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features & ~VNET_BIT(VIRTIO_NET_F_MRG_RXBUF)));
	post_rx(4, 1024);
	host_send(NULL, 1514);
	make_frame(600, ETH_TEST, 10, true);
	host_send(NULL, 600);
	assert_int_equal(guest_recv(&h, &nbuf, 2000), 600);
	assert_memory_equal(got, frame, 600);
	assert_int_equal(nd.rx_dropped, 1);
	close_device();
}

/* 60 KB TCP GSO frames: guest → tap whole, tap → guest over 2 KiB buffers. */
static void emulated_gso_both_ways(void **state)
{
	(void)state;
	NEED_ENV();
	uint64_t f = base_features | VNET_BIT(VIRTIO_NET_F_CSUM) |
		     VNET_BIT(VIRTIO_NET_F_GUEST_CSUM) | VNET_BIT(VIRTIO_NET_F_HOST_TSO4) |
		     VNET_BIT(VIRTIO_NET_F_GUEST_TSO4);
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(f));
	post_rx(128, 2048);

	size_t len = 54 + 60000;
	make_tcp_frame(len, false);
	struct virtio_net_hdr_mrg_rxbuf h = {.hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						     .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
						     .hdr_len = 54, .gso_size = 1448,
						     .csum_start = 34, .csum_offset = 16}};
	guest_send(&h, len, 0, 6, false); /* split header, four frame pieces */
	struct virtio_net_hdr vh;
	assert_int_equal(host_recv(&vh, 2000), (long)len);
	assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(vh.gso_size, 1448);
	assert_memory_equal(got, frame, len);
	reap_tx(1);

	len = 54 + 30000;
	make_tcp_frame(len, true);
	host_send(&h.hdr, len);
	unsigned nbuf;
	struct virtio_net_hdr_mrg_rxbuf rh;
	assert_int_equal(guest_recv(&rh, &nbuf, 2000), (long)len);
	assert_int_equal(nbuf, (HDR + len + 2047) / 2048);
	assert_int_equal(rh.hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_true(rh.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_memory_equal(got, frame, len);
	assert_int_equal(nd.tx_dropped + nd.rx_dropped, 0);
	close_device();
}

/* Frames wait in the tap while the guest has no buffer; its kick drains them. */
static void emulated_rx_waits_for_buffers(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	for (unsigned i = 0; i < 5; i++) {
		make_frame(100 + i, ETH_TEST, (uint8_t)i, true);
		host_send(NULL, 100 + i);
	}
	usleep(100 * 1000);
	assert_false(vnet_vq_driver_has_used(&rxd));
	post_rx(8, 2048);
	for (unsigned i = 0; i < 5; i++) {
		struct virtio_net_hdr_mrg_rxbuf h;
		unsigned nbuf;
		make_frame(100 + i, ETH_TEST, (uint8_t)i, true);
		assert_int_equal(guest_recv(&h, &nbuf, 2000), (long)(100 + i));
		assert_memory_equal(got, frame, 100 + i);
	}
	assert_int_equal(nd.rx_packets, 5);
	close_device();
}

/* Runts and chains with writable parts are dropped, counted, returned. */
static void emulated_bad_tx_chains(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	struct virtio_net_hdr_mrg_rxbuf h0 = {0};
	make_frame(60, ETH_TEST, 1, false);
	guest_send(&h0, 10, 0, 1, false); /* header + 10 bytes: a runt */
	struct vnet_buf wb[2] = {{TX_BUF_GPA + TX_SLOT, HDR + 60}, {TX_BUF_GPA + 2 * TX_SLOT, 64}};
	assert_int_equal(vnet_vq_driver_add(&txd, wb, 1, 1, host(wb[0].addr), false), 0);
	kick(&txd, NET_DEV_TXQ);
	guest_send(&h0, 60, 3, 1, false); /* a good one after them */
	struct virtio_net_hdr vh;
	assert_int_equal(host_recv(&vh, 2000), 60);
	reap_tx(3);
	assert_int_equal(nd.tx_dropped, 2);
	assert_int_equal(nd.tx_packets, 1);
	assert_false(virtio_dev_read_status(&nd.vdev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	close_device();
}

/* A guest that breaks its TX ring: NEEDS_RESET, logged once; reset recovers. */
static void emulated_broken_ring_needs_reset(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	testlog_capture();
	txd.avail->idx = (uint16_t)(txd.avail->idx + 1000); /* more than the ring holds */
	uint64_t one = 1;
	assert_int_equal(write(nd.vdev.q[NET_DEV_TXQ].kick_fd, &one, 8), 8);
	uint64_t end = now_ms() + 2000;
	while (!(virtio_dev_read_status(&nd.vdev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
	       now_ms() < end)
		usleep(5000);
	assert_true(virtio_dev_read_status(&nd.vdev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(nd.vdev.isr & VIRTIO_ISR_CONFIG);
	usleep(50 * 1000);
	assert_int_equal(testlog_count_containing("needs reset"), 1);
	testlog_release();
	/* The parked thread stops at the reset; the device works again. */
	driver_reset();
	assert_true(driver_start(base_features));
	traffic_both_ways();
	close_device();
}

/*
 * 1000 frames each way through 256-entry rings: indexes wrap, the RX
 * reserve cycles, buffers are reposted as the guest consumes them.
 */
static void emulated_many_frames(void **state)
{
	(void)state;
	NEED_ENV();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	assert_true(driver_start(base_features));
	post_rx(QSIZE, 2048);
	struct virtio_net_hdr_mrg_rxbuf h0 = {0};
	for (unsigned j = 0; j < 1000; j += TX_SLOTS) {
		for (unsigned k = 0; k < TX_SLOTS; k++) {
			make_frame(60 + (j + k) % 1455, ETH_TEST, (uint8_t)(j + k), false);
			guest_send(&h0, 60 + (j + k) % 1455, k, 1 + k % 2, false);
		}
		for (unsigned k = 0; k < TX_SLOTS; k++) {
			size_t len = 60 + (j + k) % 1455;
			make_frame(len, ETH_TEST, (uint8_t)(j + k), false);
			struct virtio_net_hdr vh;
			assert_int_equal(host_recv(&vh, 2000), (long)len);
			assert_memory_equal(got, frame, len);
		}
		reap_tx(TX_SLOTS);
		for (unsigned k = 0; k < TX_SLOTS; k++) {
			make_frame(1514 - (j + k) % 1455, ETH_TEST, (uint8_t)(7 * (j + k)), true);
			host_send(NULL, 1514 - (j + k) % 1455);
		}
		for (unsigned k = 0; k < TX_SLOTS; k++) {
			size_t len = 1514 - (j + k) % 1455;
			make_frame(len, ETH_TEST, (uint8_t)(7 * (j + k)), true);
			struct virtio_net_hdr_mrg_rxbuf h;
			unsigned nbuf;
			assert_int_equal(guest_recv(&h, &nbuf, 2000), (long)len);
			assert_memory_equal(got, frame, len);
		}
		/* repost what was consumed */
		for (unsigned k = 0; k < TX_SLOTS; k++) {
			uint64_t gpa = RX_BUF_GPA + (uint64_t)((j + k) % QSIZE) * 2048;
			struct vnet_buf b = {.addr = gpa, .len = 2048};
			assert_int_equal(vnet_vq_driver_add(&rxd, &b, 0, 1, host(gpa), false), 0);
		}
		kick(&rxd, NET_DEV_RXQ);
	}
	unsigned n = (1000 + TX_SLOTS - 1) / TX_SLOTS * TX_SLOTS;
	assert_int_equal(nd.tx_packets, n);
	assert_int_equal(nd.rx_packets, n);
	assert_int_equal(nd.tx_dropped + nd.rx_dropped, 0);
	close_device();
}

/* Guest resets and restarts the device: traffic each time, no fd leaks. */
static void emulated_restart_no_leak(void **state)
{
	(void)state;
	NEED_ENV();
	unsigned fds = count_fds();
	assert_int_equal(open_device(NET_MODE_EMULATED), 0);
	for (unsigned round = 0; round < 3; round++) {
		assert_true(driver_start(base_features));
		traffic_both_ways();
		driver_reset();
	}
	close_device();
	assert_int_equal(count_fds(), fds);
}

static void vhost_net_frames_both_ways(void **state)
{
	(void)state;
	NEED_ENV();
	if (access("/dev/vhost-net", R_OK | W_OK) < 0)
		skip(); /* no vhost-net on this host: the lab VM runs this */
	unsigned fds = count_fds();
	assert_int_equal(open_device(NET_MODE_VHOST_NET), 0);
	uint64_t offered = nd.vdev.device_features;
	assert_false(offered & VNET_BIT(26)); /* VHOST_F_LOG_ALL is vhost's own */
	assert_false(offered & VNET_BIT(27)); /* VHOST_NET_F_VIRTIO_NET_HDR / ANY_LAYOUT */
	for (unsigned round = 0; round < 2; round++) {
		assert_true(driver_start(base_features));
		assert_true(nd.vdev.irq_bypass);
		traffic_both_ways();
		driver_reset();
	}
	close_device();
	assert_int_equal(count_fds(), fds);
}

static void tap_open_errors(void **state)
{
	(void)state;
	testlog_capture();
	assert_int_equal(tap_open("net0", "nosuch0"), -ENODEV);
	assert_int_equal(testlog_count_containing("vnet-vmm: net0: tap nosuch0: no such device"), 1);
	assert_int_equal(tap_open("net0", "lo"), -EINVAL);
	assert_int_equal(testlog_count_containing("lo is not a tap"), 1);
	assert_int_equal(tap_open("net0", "../x"), -EINVAL);
	assert_int_equal(tap_open("net0", ""), -EINVAL);
	if (have_env) {
		assert_int_equal(tap_open("net0", "vtun0"), -EINVAL);
		assert_int_equal(testlog_count_containing("vtun0 is not a tap"), 1);
	}
	testlog_release();
}

static void tap_offload_mapping(void **state)
{
	(void)state;
	assert_int_equal(tap_offloads_for(0), 0);
	/* TSO without GUEST_CSUM is refused by tun (and by the virtio spec) */
	assert_int_equal(tap_offloads_for(VNET_BIT(VIRTIO_NET_F_GUEST_TSO4)), 0);
	assert_int_equal(tap_offloads_for(VNET_BIT(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
	uint64_t all = VNET_BIT(VIRTIO_NET_F_GUEST_CSUM) | VNET_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		       VNET_BIT(VIRTIO_NET_F_GUEST_TSO6) | VNET_BIT(VIRTIO_NET_F_GUEST_ECN) |
		       VNET_BIT(VIRTIO_NET_F_GUEST_UFO);
	assert_int_equal(tap_offloads_for(all),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO);
	/* host-side offloads do not change what the tap may send us */
	assert_int_equal(tap_offloads_for(VNET_BIT(VIRTIO_NET_F_CSUM) |
					  VNET_BIT(VIRTIO_NET_F_HOST_TSO4)),
			 0);
}

static void vhost_net_missing_is_clear(void **state)
{
	(void)state;
	memset(&nd, 0, sizeof(nd));
	snprintf(nd.name, sizeof(nd.name), "net0");
	snprintf(nd.cfg.tap, sizeof(nd.cfg.tap), TAP);
	testlog_capture();
	assert_int_equal(net_backend_vhost_net.open(&nd), -ENOENT);
	assert_int_equal(testlog_count_containing("vnet-vmm: net0: vhost-net: /dev/vhost-net: No "
						  "such file or directory (modprobe vhost_net)"),
			 1);
	testlog_release();
	assert_null(nd.backend_priv);
}

static int teardown(void **state)
{
	(void)state;
	close_device();
	testlog_release();
	return 0;
}

/*
 * Exactly one of the two vhost-net cases applies on a host: run that one
 * (meson counts cmocka's "not ok # SKIP" as a failure, so none is skipped).
 */
int main(void)
{
	setup_env();
	const struct CMUnitTest with_vhost = cmocka_unit_test_teardown(vhost_net_frames_both_ways, teardown),
				without_vhost = cmocka_unit_test(vhost_net_missing_is_clear);
	bool vhost = access("/dev/vhost-net", F_OK) == 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tap_open_errors),
		cmocka_unit_test(tap_offload_mapping),
		vhost ? with_vhost : without_vhost,
		cmocka_unit_test_teardown(emulated_frames_both_ways, teardown),
		cmocka_unit_test_teardown(emulated_frame_over_several_buffers, teardown),
		cmocka_unit_test_teardown(emulated_gso_both_ways, teardown),
		cmocka_unit_test_teardown(emulated_rx_waits_for_buffers, teardown),
		cmocka_unit_test_teardown(emulated_bad_tx_chains, teardown),
		cmocka_unit_test_teardown(emulated_broken_ring_needs_reset, teardown),
		cmocka_unit_test_teardown(emulated_many_frames, teardown),
		cmocka_unit_test_teardown(emulated_restart_no_leak, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
