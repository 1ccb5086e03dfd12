/*
 * net_vhost_user.c — vnet-vmm's vhost-user back-end: a vhost-user back-end
 * process (vnet-switchd, vnet-pktgen --role backend, DPDK, ...) serves the
 * guest's rings directly; the VMM only speaks the control protocol through
 * libvnet's front-end session (vnet/vhost_user_session.h) and has no thread
 * in the data path:
 *
 *   memory   SET_MEM_TABLE with the VMM's RAM memfd, one region per RAM
 *            region (low RAM at offset 0, RAM above 4 GiB at low_size);
 *            UADDR = the VMM's own mapping of it;
 *   rings    the addresses the guest driver programmed, as UADDRs;
 *   kick     the queue's kick eventfd, which KVM signals on the guest's
 *            notify write (ioeventfd);
 *   call     the queue's call eventfd, which KVM turns into the guest
 *            interrupt (irqfd) — so dev->irq_bypass.
 *
 * open() connects (socket=PATH, retrying for 5 s while nobody listens) or,
 * with server=on, listens and waits up to 30 s for the back-end, then
 * negotiates protocol features and reads the back-end's features: a dead
 * socket fails start-up with a message naming it. start() (DRIVER_OK) hands
 * the guest's negotiated features, memory and rings over; stop() (reset)
 * disables the rings and takes them back with GET_VRING_BASE, so the device
 * can be set up again.
 *
 * A small watcher thread (from the first start() to close) marks the device
 * NEEDS_RESET, logging once, when the back-end hangs up (POLLRDHUP on the
 * socket; it never reads it) or reports a ring the guest broke (the ring's
 * SET_VRING_ERR eventfd). Reconnection: in client mode the next start() (the
 * guest reset the device) connects again once, with a 1 s timeout, and
 * accepts the new back-end only if it offers every feature the guest
 * negotiated; there is no transparent reconnect under a running guest, and
 * none in server mode. A back-end that fails or refuses a request during
 * stop() is hung up on, since it may still be running the rings.
 *
 * Thread-safety: open/features/start/stop/close run on the control path with
 * the device lock held (net_dev.h) and alone use the session. The watcher
 * only polls a copy of the socket fd and the err eventfds and calls
 * virtio_dev_needs_reset() (any thread, and it does not call back into
 * stop()); it is joined before that socket is closed.
 */
#include "vmm/net_dev.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/net.h"
#include "vnet/vhost_user_session.h"
#include "vmm/vmm.h"

#define VHU_CONNECT_MS   5000  /* client: retry while nobody listens yet */
#define VHU_ACCEPT_MS    30000 /* server=on: wait for the back-end to connect */
#define VHU_RECONNECT_MS 1000  /* at a later DRIVER_OK, on a vCPU thread */
#define VHU_IO_MS        2000  /* bound on each reply */
#define VHU_QUEUES       2     /* rx, tx: one queue pair, no control queue */

/*
 * Features that describe what the back-end does with the rings and frames,
 * so the guest may only get them when the back-end offers them. MAC and
 * STATUS are served by the VMM's own config space (net_dev.c), like QEMU's
 * vhost-user-net; CTRL_VQ and MQ are not offered (one pair, no control queue).
 */
static const uint64_t backend_features =
	VNET_BIT(VIRTIO_F_VERSION_1) | VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
	VNET_BIT(VIRTIO_F_RING_EVENT_IDX) | VNET_BIT(VIRTIO_NET_F_MRG_RXBUF) |
	VNET_BIT(VIRTIO_NET_F_MTU) | VNET_BIT(VIRTIO_NET_F_CSUM) |
	VNET_BIT(VIRTIO_NET_F_GUEST_CSUM) | VNET_BIT(VIRTIO_NET_F_GUEST_TSO4) |
	VNET_BIT(VIRTIO_NET_F_GUEST_TSO6) | VNET_BIT(VIRTIO_NET_F_GUEST_ECN) |
	VNET_BIT(VIRTIO_NET_F_GUEST_UFO) | VNET_BIT(VIRTIO_NET_F_HOST_TSO4) |
	VNET_BIT(VIRTIO_NET_F_HOST_TSO6) | VNET_BIT(VIRTIO_NET_F_HOST_ECN) |
	VNET_BIT(VIRTIO_NET_F_HOST_UFO);

struct vhu_net {
	struct net_dev *nd;
	struct vnet_vhu_session s;
	bool ring_started[VHU_QUEUES];
	bool started;            /* start() succeeded, stop() pending */
	atomic_bool running;     /* `started`, as the watcher reads it */
	atomic_bool lost;        /* the watcher saw the back-end hang up */

	pthread_t watcher;
	bool watching;           /* watcher created, not yet joined */
	int watch_sock;          /* the socket the watcher polls */
	int wake_fd;             /* eventfd: tells the watcher to quit */
	int err_fd[VHU_QUEUES];  /* SET_VRING_ERR: the back-end found a ring broken */
	atomic_bool quit;
};

static const char *dev_name(const struct net_dev *nd)
{
	return nd->vdev.name ? nd->vdev.name : nd->name[0] ? nd->name : "net";
}

/* ---- hang-up watcher ------------------------------------------------------ */

static void *watch_thread(void *arg)
{
	struct vhu_net *v = arg;
	/* POLLRDHUP only: replies arriving for the control path do not wake us. */
	struct pollfd p[2 + VHU_QUEUES] = {
		{.fd = v->watch_sock, .events = POLLRDHUP},
		{.fd = v->wake_fd, .events = POLLIN},
	};
	for (unsigned i = 0; i < VHU_QUEUES; i++)
		p[2 + i] = (struct pollfd){.fd = v->err_fd[i], .events = POLLIN};
	for (;;) {
		int n = poll(p, 2 + VHU_QUEUES, -1);
		if (atomic_load(&v->quit))
			return NULL;
		if (n < 0 && errno != EINTR) {
			vnet_err("vnet-vmm: vhost-user %s: watcher: poll: %s; hang-ups go unnoticed",
				 dev_name(v->nd), strerror(errno));
			return NULL;
		}
		if (n > 0 && p[0].revents)
			break;
		for (unsigned i = 0; n > 0 && i < VHU_QUEUES; i++) {
			uint64_t count;
			if (!p[2 + i].revents || read(v->err_fd[i], &count, sizeof(count)) < 0)
				continue;
			/* After stop() a late report is about rings the guest reset. */
			if (atomic_load(&v->running))
				virtio_dev_needs_reset(&v->nd->vdev,
						       "vhost-user back-end found queue %u broken", i);
		}
	}
	atomic_store(&v->lost, true);
	if (atomic_load(&v->running))
		virtio_dev_needs_reset(&v->nd->vdev, "vhost-user back-end at %s hung up",
				       v->s.path);
	else
		vnet_warn("vnet-vmm: vhost-user %s: back-end at %s hung up", dev_name(v->nd), v->s.path);
	return NULL;
}

static int watcher_start(struct vhu_net *v)
{
	if (v->watching)
		return 0;
	uint64_t junk;
	(void)!read(v->wake_fd, &junk, sizeof(junk));
	for (unsigned i = 0; i < VHU_QUEUES; i++)
		(void)!read(v->err_fd[i], &junk, sizeof(junk));
	atomic_store(&v->quit, false);
	v->watch_sock = v->s.sock;
	/* Signals belong to the vCPU and main threads, not to this one. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = -pthread_create(&v->watcher, NULL, watch_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		return vnet_vhu_session_err(&v->s, rc, "cannot start the hang-up watcher: %s",
					    strerror(-rc));
	v->watching = true;
	return 0;
}

/* Returns at once: the watcher blocks only in poll(), which the eventfd ends. */
static void watcher_stop(struct vhu_net *v)
{
	if (!v->watching)
		return;
	atomic_store(&v->quit, true);
	uint64_t one = 1;
	(void)!write(v->wake_fd, &one, sizeof(one));
	pthread_join(v->watcher, NULL);
	v->watching = false;
}

/* ---- connection ----------------------------------------------------------- */

static int session_open(struct vhu_net *v, unsigned connect_ms)
{
	struct net_dev *nd = v->nd;
	uint64_t protocol = VNET_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			    VNET_BIT(VHOST_USER_PROTOCOL_F_STATUS);
	if (nd->cfg.mtu)
		protocol |= VNET_BIT(VHOST_USER_PROTOCOL_F_NET_MTU);
	struct vnet_vhu_session_config sc = {
		.name = dev_name(nd),
		.log_prefix = "vnet-vmm: vhost-user",
		.path = nd->cfg.socket,
		.server = nd->cfg.socket_server,
		.connect_timeout_ms = connect_ms,
		.io_timeout_ms = VHU_IO_MS,
		.protocol_features = protocol,
	};
	/* Shown at the default level: the VM does not start meanwhile. */
	if (nd->cfg.socket_server)
		vnet_warn("vnet-vmm: vhost-user %s: waiting up to %u s for a back-end to connect to %s",
			  dev_name(nd), connect_ms / 1000, nd->cfg.socket);
	int rc = vnet_vhu_session_connect(&v->s, &sc);
	if (rc < 0)
		return rc;
	atomic_store(&v->lost, false);
	vnet_info("vnet-vmm: vhost-user %s: back-end at %s: features 0x%llx, protocol 0x%llx",
		  dev_name(nd), nd->cfg.socket, (unsigned long long)v->s.offered_features,
		  (unsigned long long)v->s.protocol);
	return 0;
}

/* Client mode: a new back-end behind the same path, if it can run what the
 * guest negotiated with the old one. */
static int reconnect(struct vhu_net *v, uint64_t guest_features)
{
	if (v->nd->cfg.socket_server)
		return vnet_vhu_session_err(&v->s, -ENOTCONN,
					    "the back-end hung up; no reconnect in server mode "
					    "(restart vnet-vmm)");
	watcher_stop(v);
	vnet_vhu_session_close(&v->s);
	int rc = session_open(v, VHU_RECONNECT_MS);
	if (rc < 0)
		return rc;
	uint64_t missing = guest_features & ~v->s.offered_features;
	if (missing) {
		vnet_vhu_session_close(&v->s);
		return vnet_vhu_session_err(&v->s, -EOPNOTSUPP,
					    "the new back-end lacks features 0x%llx the guest uses",
					    (unsigned long long)missing);
	}
	return 0;
}

/* ---- back-end ops --------------------------------------------------------- */

static void close_fds(struct vhu_net *v)
{
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	for (unsigned i = 0; i < VHU_QUEUES; i++)
		if (v->err_fd[i] >= 0)
			close(v->err_fd[i]);
}

static int vhu_open(struct net_dev *nd)
{
	struct vhu_net *v = calloc(1, sizeof(*v));
	if (!v) {
		vnet_err("vnet-vmm: vhost-user %s: out of memory", dev_name(nd));
		return -ENOMEM;
	}
	v->nd = nd;
	vnet_vhu_session_init(&v->s);
	v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < VHU_QUEUES; i++)
		v->err_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = 0;
	if (v->wake_fd < 0 || v->err_fd[0] < 0 || v->err_fd[1] < 0) {
		rc = -errno;
		vnet_err("vnet-vmm: vhost-user %s: eventfd: %s", dev_name(nd), strerror(errno));
	}
	if (rc == 0)
		rc = session_open(v, nd->cfg.socket_server ? VHU_ACCEPT_MS : VHU_CONNECT_MS);
	if (rc < 0) {
		close_fds(v);
		free(v);
		return rc;
	}
	nd->backend_priv = v;
	return 0;
}

static uint64_t vhu_features(struct net_dev *nd)
{
	struct vhu_net *v = nd->backend_priv;
	return v->s.offered_features & backend_features;
}

/* Takes the rings back (best effort, in the order QEMU uses) and forgets them. */
static void take_rings_back(struct vhu_net *v)
{
	bool alive = v->s.connected && !atomic_load(&v->lost);
	for (unsigned i = 0; alive && i < VHU_QUEUES; i++)
		if (v->ring_started[i] && vnet_vhu_session_enable_ring(&v->s, i, false) < 0)
			alive = false;
	for (unsigned i = 0; alive && i < VHU_QUEUES; i++) {
		uint16_t last_avail = 0;
		if (!v->ring_started[i])
			continue;
		if (vnet_vhu_session_stop_ring(&v->s, i, &last_avail) < 0)
			alive = false;
		else
			vnet_debug("vnet-vmm: vhost-user %s: ring %u stopped at avail index %u",
				   dev_name(v->nd), i, last_avail);
	}
	if (alive && vnet_vhu_session_set_status(&v->s, 0) < 0)
		alive = false;
	if (!alive && v->s.sock >= 0) {
		/* A back-end that did not answer (or refused) may still be running
		 * the rings: hanging up is the one order it cannot miss. The next
		 * start() connects again (client mode). */
		watcher_stop(v);
		vnet_vhu_session_close(&v->s);
	}
	for (unsigned i = 0; i < VHU_QUEUES; i++)
		v->ring_started[i] = false;
}

static int start_ring(struct vhu_net *v, unsigned i)
{
	struct net_dev *nd = v->nd;
	const struct virtio_queue *q = &nd->vdev.q[i];
	struct vmm *vmm = nd->vdev.vmm;
	uint64_t n = q->size;
	/* virtio_dev checked these at DRIVER_OK; a NULL here is a VMM bug. */
	void *desc = vmm_gpa_to_host(vmm, q->desc, 16 * n);
	void *avail = vmm_gpa_to_host(vmm, q->avail, 6 + 2 * n);
	void *used = vmm_gpa_to_host(vmm, q->used, 6 + 8 * n);
	if (!desc || !avail || !used)
		return vnet_vhu_session_err(&v->s, -EFAULT, "queue %u lies outside guest RAM", i);
	struct vnet_vhu_session_ring r = {
		.index = i,
		.num = q->size,
		.desc = (uintptr_t)desc,
		.avail = (uintptr_t)avail,
		.used = (uintptr_t)used,
		.base = 0, /* a fresh ring: the driver starts at index 0 */
		.kick_fd = q->kick_fd,
		.call_fd = q->call_fd,
	};
	int rc = vnet_vhu_session_start_ring(&v->s, &r, false);
	if (rc == 0)
		v->ring_started[i] = true;
	if (rc == 0)
		rc = vnet_vhu_session_set_vring_err(&v->s, i, v->err_fd[i]);
	return rc;
}

static int vhu_start(struct net_dev *nd)
{
	struct vhu_net *v = nd->backend_priv;
	struct vmm *vmm = nd->vdev.vmm;
	uint64_t guest = nd->features & backend_features;
	int rc = 0;
	if (!v->s.connected || atomic_load(&v->lost))
		rc = reconnect(v, guest);
	if (rc == 0)
		rc = watcher_start(v);
	if (rc == 0)
		rc = vnet_vhu_session_set_features(&v->s, guest);
	if (rc == 0)
		rc = vnet_vhu_session_set_status(&v->s, VNET_VIRTIO_STATUS_ACKNOWLEDGE |
							VNET_VIRTIO_STATUS_DRIVER |
							VNET_VIRTIO_STATUS_FEATURES_OK);
	if (rc == 0 && nd->cfg.mtu && (guest & VNET_BIT(VIRTIO_NET_F_MTU)))
		rc = vnet_vhu_session_set_mtu(&v->s, nd->cfg.mtu);
	if (rc == 0) {
		struct vnet_vhu_session_region regions[2];
		unsigned n = vmm->nregions < 2 ? vmm->nregions : 2;
		for (unsigned i = 0; i < n; i++)
			regions[i] = (struct vnet_vhu_session_region){
				.gpa = vmm->regions[i].gpa,
				.size = vmm->regions[i].size,
				.uaddr = vmm->regions[i].uaddr,
				.fd = vmm->mem_fd,
				.fd_offset = i == 0 ? 0 : vmm->low_size,
			};
		rc = vnet_vhu_session_set_mem_table(&v->s, regions, n);
	}
	/* A queue the driver did not enable is not handed over (its ring
	 * addresses mean nothing); virtio-net drivers enable both. */
	for (unsigned i = 0; rc == 0 && i < VHU_QUEUES; i++)
		if (nd->vdev.q[i].ready)
			rc = start_ring(v, i);
	for (unsigned i = 0; rc == 0 && i < VHU_QUEUES; i++)
		if (v->ring_started[i])
			rc = vnet_vhu_session_enable_ring(&v->s, i, true);
	if (rc == 0)
		rc = vnet_vhu_session_set_status(&v->s, v->s.status | VNET_VIRTIO_STATUS_DRIVER_OK);
	if (rc == 0) {
		atomic_store(&v->running, true);
		/* A hang-up the watcher saw before `running` was set. */
		if (atomic_load(&v->lost))
			rc = vnet_vhu_session_err(&v->s, -ECONNRESET, "back-end hung up while starting");
	}
	if (rc < 0) {
		atomic_store(&v->running, false);
		take_rings_back(v);
		return rc;
	}
	nd->vdev.irq_bypass = true;
	v->started = true;
	vnet_info("vnet-vmm: vhost-user %s: running, features 0x%llx", dev_name(nd),
		  (unsigned long long)v->s.features);
	return 0;
}

static void vhu_stop(struct net_dev *nd)
{
	struct vhu_net *v = nd->backend_priv;
	if (!v->started)
		return;
	atomic_store(&v->running, false);
	take_rings_back(v);
	v->started = false;
}

static void vhu_close(struct net_dev *nd)
{
	struct vhu_net *v = nd->backend_priv;
	if (!v)
		return;
	vhu_stop(nd);
	watcher_stop(v);
	vnet_vhu_session_close(&v->s);
	close_fds(v);
	free(v);
	nd->backend_priv = NULL;
}

const struct net_backend_ops net_backend_vhost_user = {
	.name = "vhost-user",
	.open = vhu_open,
	.features = vhu_features,
	.start = vhu_start,
	.stop = vhu_stop,
	.close = vhu_close,
};
