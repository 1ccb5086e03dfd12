/*
 * net_emulated.c — the emulated virtio-net back-end: an I/O thread of the
 * VMM moves frames between the guest's rings and a tap (article, Figures
 * 1–2). Kicks arrive on the queues' kick eventfds (KVM ioeventfds), frames on
 * the tap fd; interrupts leave through virtio_dev_signal_queue() (the call
 * eventfd, a KVM irqfd).
 *
 * Guest TX: a burst of up to 32 chains is popped and each frame goes to the
 * tap with one writev() straight from the guest's buffers, header first (the
 * tap parses and validates the 12-byte header itself, wherever the guest
 * split it). Guest RX: the thread holds a small reserve of the guest's RX
 * chains and reads each frame with one readv() straight into them; under
 * MRG_RXBUF the reserve covers a whole 64 KiB GSO frame, so a frame spans
 * several chains and num_buffers says how many. A bounce buffer at the end of
 * the readv catches a frame larger than the buffers held, which is dropped.
 * When the guest has no RX buffer the thread stops polling the tap and asks
 * for the guest's next RX kick. Each round moves up to 32 frames per
 * direction and raises at most one interrupt per queue. Nothing is allocated
 * per packet.
 *
 * A queue the guest broke (see vnet/virtqueue.h) makes the device
 * NEEDS_RESET through virtio_dev_needs_reset() (which only flags it and
 * raises the config interrupt, without dev->lock); the thread then parks
 * until the guest's reset calls stop().
 *
 * Thread-safety: open/start/stop/close run on the control path with the
 * device lock held (net_dev.h). Between start and stop the I/O thread alone
 * owns the queues, the reserve and the tap's data path; stop() joins it
 * before detaching the queues, so nothing touches guest memory afterwards.
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/virtqueue.h"
#include "vmm/tap.h"
#include "vmm/vmm.h"

#define EMU_BURST    VNET_NET_BURST    /* frames per direction per round */
#define EMU_SEGS     VNET_NET_MAX_SEGS /* pieces per chain (more breaks the queue) */
#define ETH_HDR_LEN  14u
/* The largest frame either way: a 64 KiB GSO frame with Ethernet + VLAN. */
#define EMU_MAX_FRAME (65535u + ETH_HDR_LEN + 4u)
/* Guest RX chains held at once; 64 small (1.5 KiB) buffers cover a GSO frame. */
#define EMU_RX_RESERVE 64u
#define EMU_RX_IOV   1024u /* IOV_MAX */

enum emu_event { EV_STOP, EV_TX_KICK, EV_RX_KICK, EV_TAP };

struct rx_slot {
	struct vnet_vq_chain chain;
	struct iovec iov[EMU_SEGS];
};

struct emu {
	struct net_dev *nd;
	const char *name;
	int tap_fd;

	/* valid between start and stop */
	int stop_fd, epoll_fd;
	pthread_t thread;
	bool running;
	atomic_bool exit_now;
	struct vnet_vq rxq, txq;
	unsigned hdr_len;
	bool mrg, guest_csum;
	uint32_t rx_need;      /* guest buffer bytes that hold any frame the tap sends */
	bool tap_polled;       /* EPOLLIN armed on the tap */
	bool tap_dead;         /* the tap failed (deleted?): out of the epoll set */
	bool rx_kicks_on;      /* the guest is asked to kick when it posts RX buffers */
	bool rx_pushed;        /* RX chains pushed since the last flush */
	bool tx_err_logged;

	/* guest RX chains popped and not yet used: a FIFO */
	struct rx_slot slots[EMU_RX_RESERVE];
	unsigned rs_head, rs_count;
	uint64_t rs_bytes;
	uint64_t rs_gen;       /* memory table generation the iovecs belong to */

	struct vnet_vq_chain tx_chains[EMU_BURST];
	struct iovec tx_iov[EMU_BURST * EMU_SEGS];
	struct iovec rx_iov[EMU_RX_IOV];
	uint8_t bounce[TAP_VNET_HDR_LEN + EMU_MAX_FRAME];
};

static const char *dev_name(struct net_dev *nd)
{
	return nd->name[0] ? nd->name : "net";
}

/* ---- guest RX ------------------------------------------------------------ */

static inline struct rx_slot *rs_slot(struct emu *e, unsigned i)
{
	return &e->slots[(e->rs_head + i) % EMU_RX_RESERVE];
}


/* Tops the reserve up from the RX ring: one chain without MRG_RXBUF, else
 * chains until they hold rx_need bytes. */
static void rx_refill(struct emu *e)
{
	unsigned limit = e->mrg ? EMU_RX_RESERVE : 1;
	while (e->rs_count < limit && (e->rs_count == 0 || e->rs_bytes < e->rx_need)) {
		struct rx_slot *s = rs_slot(e, e->rs_count);
		if (vnet_vq_pop(&e->rxq, &s->chain, s->iov, EMU_SEGS) <= 0)
			return;
		if (s->chain.n_out || s->chain.in_len < e->hdr_len) {
			/* Not an RX buffer: handed back empty, as vnet_net_enqueue does. */
			vnet_vq_push(&e->rxq, s->chain.head, 0);
			e->rx_pushed = true;
			continue;
		}
		e->rs_count++;
		e->rs_bytes += s->chain.in_len;
	}
}

/* The memory table changed under the held chains (never in vnet-vmm, whose
 * RAM is fixed): their iovecs are stale, give them back unused. */
static void rx_reserve_drop(struct emu *e)
{
	for (unsigned i = 0; i < e->rs_count; i++)
		vnet_vq_push(&e->rxq, rs_slot(e, i)->chain.head, 0);
	e->rx_pushed |= e->rs_count > 0;
	e->rs_count = 0;
	e->rs_bytes = 0;
}

/* Reads one frame from the tap into the reserve's chains: 1 delivered,
 * 0 dropped (try the next), -1 the tap is empty. */
static int rx_one(struct emu *e)
{
	struct net_dev *nd = e->nd;
	unsigned niov = 0, nchains = 0;
	uint64_t cap = 0;
	unsigned max_chains = e->mrg ? e->rs_count : 1;
	while (nchains < max_chains && cap < e->rx_need) {
		struct rx_slot *s = rs_slot(e, nchains);
		if (niov + s->chain.n_in > EMU_RX_IOV - 1)
			break;
		memcpy(&e->rx_iov[niov], s->chain.iov, s->chain.n_in * sizeof(struct iovec));
		niov += s->chain.n_in;
		cap += s->chain.in_len;
		nchains++;
	}
	e->rx_iov[niov++] = (struct iovec){.iov_base = e->bounce, .iov_len = sizeof(e->bounce)};

	ssize_t r = readv(e->tap_fd, e->rx_iov, (int)niov);
	if (r < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			/* EBADFD once the interface is deleted: the fd then polls
			 * EPOLLERR for ever, so it leaves the epoll set. */
			vnet_warn("vnet-vmm: %s: tap %s: read: %s; no more guest RX", e->name, nd->cfg.tap,
				  strerror(errno));
			epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, e->tap_fd, NULL);
			e->tap_dead = true;
			e->tap_polled = false;
		}
		return -1;
	}
	if ((size_t)r < e->hdr_len + ETH_HDR_LEN || (uint64_t)r > cap) {
		nd->rx_dropped++; /* a runt, or larger than the guest's buffers */
		return 0;
	}

	/* The frame fills chains in order; the header goes in the first. */
	unsigned used = 0;
	uint32_t lens[EMU_RX_RESERVE];
	uint64_t left = (uint64_t)r, held = 0;
	while (left) {
		struct rx_slot *s = rs_slot(e, used);
		lens[used] = left < s->chain.in_len ? (uint32_t)left : s->chain.in_len;
		left -= lens[used];
		held += s->chain.in_len;
		used++;
	}
	struct rx_slot *first = rs_slot(e, 0);
	uint16_t num_buffers = (uint16_t)used;
	vnet_buf_to_iov(first->chain.iov, first->chain.n_in,
		  offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers), &num_buffers,
		  sizeof(num_buffers));
	if (!e->guest_csum) {
		/* The tap may mark DATA_VALID; without GUEST_CSUM flags must be 0. */
		uint8_t zero = 0;
		vnet_buf_to_iov(first->chain.iov, first->chain.n_in, 0, &zero, 1);
	}
	for (unsigned i = 0; i < used; i++)
		vnet_vq_push(&e->rxq, rs_slot(e, i)->chain.head, lens[i]);
	e->rx_pushed = true;
	e->rs_head = (e->rs_head + used) % EMU_RX_RESERVE;
	e->rs_count -= used;
	e->rs_bytes -= held;
	nd->rx_packets++;
	return 1;
}

static void tap_poll(struct emu *e, bool on)
{
	if (e->tap_polled == on || e->tap_dead)
		return;
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u32 = EV_TAP};
	if (epoll_ctl(e->epoll_fd, EPOLL_CTL_MOD, e->tap_fd, &ev) == 0)
		e->tap_polled = on;
}

static void rx_round(struct emu *e)
{
	struct vnet_guestmem *gm = &e->nd->vdev.vmm->gm;
	unsigned tok;
	uint64_t gen = vnet_mem_table_generation(vnet_guestmem_read_begin(gm, &tok));
	if (e->rs_gen != gen)
		rx_reserve_drop(e);
	e->rs_gen = gen;

	unsigned frames = 0, spins = 0;
	while (frames < EMU_BURST && !vnet_vq_is_broken(&e->rxq)) {
		rx_refill(e);
		if (e->rs_count == 0) {
			/* No guest buffer: ask for its next kick, unless buffers raced in. */
			e->rx_kicks_on = true;
			if (vnet_vq_enable_notify(&e->rxq) && ++spins < 4)
				continue;
			tap_poll(e, false);
			break;
		}
		if (e->rx_kicks_on) {
			vnet_vq_disable_notify(&e->rxq); /* we hold buffers: no kicks needed */
			e->rx_kicks_on = false;
		}
		tap_poll(e, true);
		if (e->tap_dead)
			break;
		int r = rx_one(e);
		if (r < 0)
			break;
		frames += (unsigned)r;
	}
	bool notify = false;
	if (e->rx_pushed) {
		notify = vnet_vq_flush(&e->rxq);
		e->rx_pushed = false;
	}
	vnet_guestmem_read_end(gm, tok);
	if (notify)
		virtio_dev_signal_queue(&e->nd->vdev, NET_DEV_RXQ);
}

/* ---- guest TX ------------------------------------------------------------ */

/* One burst to the tap; true when more chains are waiting. */
static bool tx_round(struct emu *e)
{
	struct net_dev *nd = e->nd;
	struct vnet_guestmem *gm = &nd->vdev.vmm->gm;
	unsigned tok;
	vnet_guestmem_read_begin(gm, &tok);
	unsigned n = vnet_vq_pop_burst(&e->txq, e->tx_chains, EMU_BURST, e->tx_iov, EMU_SEGS);
	for (unsigned i = 0; i < n; i++) {
		struct vnet_vq_chain *c = &e->tx_chains[i];
		if (c->n_in || c->out_len < e->hdr_len + ETH_HDR_LEN ||
		    c->out_len - e->hdr_len > EMU_MAX_FRAME) {
			nd->tx_dropped++; /* writable parts, a runt, or too big */
		} else if (writev(e->tap_fd, c->iov, c->n_out) < 0) {
			/* EINVAL: a header the tap refused; EIO: link down */
			if (!e->tx_err_logged && errno != EAGAIN) {
				e->tx_err_logged = true;
				vnet_warn("vnet-vmm: %s: tap %s: write: %s (logged once)", e->name,
					  nd->cfg.tap, strerror(errno));
			}
			nd->tx_dropped++;
		} else {
			nd->tx_packets++;
		}
		vnet_vq_push(&e->txq, c->head, 0);
	}
	bool notify = n ? vnet_vq_flush(&e->txq) : false;
	bool more = n == EMU_BURST;
	if (more)
		vnet_vq_disable_notify(&e->txq); /* we poll while the guest keeps sending */
	else
		more = vnet_vq_enable_notify(&e->txq);
	vnet_guestmem_read_end(gm, tok);
	if (notify)
		virtio_dev_signal_queue(&nd->vdev, NET_DEV_TXQ);
	return more && !vnet_vq_is_broken(&e->txq);
}

/* ---- the I/O thread ------------------------------------------------------ */

static void drain_eventfd(int fd)
{
	uint64_t v;
	ssize_t ignored = read(fd, &v, sizeof(v));
	(void)ignored;
}

/* Waits for stop() after the device was marked NEEDS_RESET. */
static void park(struct emu *e)
{
	struct pollfd p = {.fd = e->stop_fd, .events = POLLIN};
	while (!atomic_load(&e->exit_now))
		if (poll(&p, 1, -1) == 1)
			return;
}

static void *emu_thread(void *arg)
{
	struct emu *e = arg;
	bool tx_more = true, rx_more = true; /* serve what was posted before start */
	/* Named from inside: naming another thread opens /proc/self/task/N/comm,
	 * which the seccomp filter forbids. */
	char tname[16];
	snprintf(tname, sizeof(tname), "%.11s-io", e->name);
	pthread_setname_np(pthread_self(), tname);
	while (!atomic_load(&e->exit_now)) {
		struct epoll_event ev[4];
		int n = epoll_wait(e->epoll_fd, ev, 4, tx_more || rx_more ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vnet_err("vnet-vmm: %s: I/O thread: epoll_wait: %s; data path stopped", e->name,
				 strerror(errno));
			park(e);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			switch (ev[i].data.u32) {
			case EV_STOP:
				return NULL;
			case EV_TX_KICK:
				drain_eventfd(e->nd->vdev.q[NET_DEV_TXQ].kick_fd);
				tx_more = true;
				break;
			case EV_RX_KICK:
				drain_eventfd(e->nd->vdev.q[NET_DEV_RXQ].kick_fd);
				rx_more = true;
				break;
			default:
				rx_more = true;
				break;
			}
		}
		if (tx_more)
			tx_more = tx_round(e);
		if (rx_more) {
			rx_round(e);
			rx_more = false; /* the tap is level-triggered: epoll says when */
		}
		struct vnet_vq *bad = vnet_vq_is_broken(&e->rxq) ? &e->rxq
				      : vnet_vq_is_broken(&e->txq) ? &e->txq : NULL;
		if (bad) {
			/* The virtqueue already logged why; say only what follows. */
			virtio_dev_needs_reset(&e->nd->vdev, "%s queue broken",
					       bad == &e->rxq ? "rx" : "tx");
			park(e);
			return NULL;
		}
	}
	return NULL;
}

/* ---- back-end ops -------------------------------------------------------- */

static int emu_open(struct net_dev *nd)
{
	struct emu *e = calloc(1, sizeof(*e));
	if (!e) {
		vnet_err("vnet-vmm: %s: out of memory", dev_name(nd));
		return -ENOMEM;
	}
	e->nd = nd;
	e->name = dev_name(nd);
	e->stop_fd = e->epoll_fd = -1;
	e->tap_fd = tap_open(e->name, nd->cfg.tap);
	if (e->tap_fd < 0) {
		int rc = e->tap_fd;
		free(e);
		return rc;
	}
	nd->backend_priv = e;
	return 0;
}

static uint64_t emu_features(struct net_dev *nd)
{
	(void)nd;
	return tap_net_offloads() | VNET_BIT(VIRTIO_NET_F_MRG_RXBUF) |
	       VNET_BIT(VIRTIO_F_RING_EVENT_IDX) | VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC);
}

static int attach_queue(struct emu *e, struct vnet_vq *vq, unsigned index, const char *what)
{
	struct net_dev *nd = e->nd;
	const struct virtio_queue *q = &nd->vdev.q[index];
	char name[32];
	snprintf(name, sizeof(name), "%s/%s", e->name, what);
	if (!q->ready) {
		vnet_err("vnet-vmm: %s: %s queue not enabled by the driver", e->name, what);
		return -EINVAL;
	}
	struct vnet_vq_config cfg = {
		.size = q->size,
		.desc_addr = q->desc,
		.avail_addr = q->avail,
		.used_addr = q->used,
		.ring_as = VNET_AS_GPA,
		.features = nd->features,
		.name = name,
	};
	return vnet_vq_attach(vq, &nd->vdev.vmm->gm, &cfg);
}

static int epoll_add(int epfd, int fd, uint32_t events, enum emu_event tag)
{
	struct epoll_event ev = {.events = events, .data.u32 = tag};
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void emu_teardown(struct emu *e)
{
	vnet_vq_detach(&e->rxq);
	vnet_vq_detach(&e->txq);
	if (e->epoll_fd >= 0)
		close(e->epoll_fd);
	if (e->stop_fd >= 0)
		close(e->stop_fd);
	e->epoll_fd = e->stop_fd = -1;
	e->rs_count = 0;
	e->rs_bytes = 0;
	tap_set_offloads(e->tap_fd, e->name, e->nd->cfg.tap, 0);
}

static int emu_start(struct net_dev *nd)
{
	struct emu *e = nd->backend_priv;
	if (!e)
		return -EINVAL;
	if (e->running)
		return 0;
	e->hdr_len = (unsigned)vnet_net_hdr_len(nd->features);
	if (e->hdr_len != TAP_VNET_HDR_LEN) {
		vnet_err("vnet-vmm: %s: emulated back-end needs VERSION_1 (12-byte header)", e->name);
		return -EINVAL;
	}
	e->mrg = nd->features & VNET_BIT(VIRTIO_NET_F_MRG_RXBUF);
	e->guest_csum = nd->features & VNET_BIT(VIRTIO_NET_F_GUEST_CSUM);
	bool gso = nd->features & (VNET_BIT(VIRTIO_NET_F_GUEST_TSO4) |
				   VNET_BIT(VIRTIO_NET_F_GUEST_TSO6) |
				   VNET_BIT(VIRTIO_NET_F_GUEST_UFO));
	uint32_t mtu = nd->cfg.mtu > 1500 ? nd->cfg.mtu : 1500;
	e->rx_need = e->hdr_len + (gso ? EMU_MAX_FRAME : mtu + ETH_HDR_LEN + 4);
	e->rs_head = e->rs_count = 0;
	e->rs_bytes = 0;
	e->rx_pushed = e->tx_err_logged = e->tap_dead = false;
	e->rx_kicks_on = true; /* a fresh ring asks for kicks */
	atomic_store(&e->exit_now, false);

	struct vnet_guestmem *gm = &nd->vdev.vmm->gm;
	unsigned tok;
	e->rs_gen = vnet_mem_table_generation(vnet_guestmem_read_begin(gm, &tok));
	int rc = attach_queue(e, &e->rxq, NET_DEV_RXQ, "rx");
	if (rc == 0)
		rc = attach_queue(e, &e->txq, NET_DEV_TXQ, "tx");
	vnet_guestmem_read_end(gm, tok);
	if (rc < 0)
		goto fail;
	rc = tap_set_offloads(e->tap_fd, e->name, nd->cfg.tap, nd->features);
	if (rc < 0)
		goto fail;

	e->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (e->stop_fd < 0 || e->epoll_fd < 0 ||
	    epoll_add(e->epoll_fd, e->stop_fd, EPOLLIN, EV_STOP) < 0 ||
	    epoll_add(e->epoll_fd, nd->vdev.q[NET_DEV_TXQ].kick_fd, EPOLLIN, EV_TX_KICK) < 0 ||
	    epoll_add(e->epoll_fd, nd->vdev.q[NET_DEV_RXQ].kick_fd, EPOLLIN, EV_RX_KICK) < 0 ||
	    epoll_add(e->epoll_fd, e->tap_fd, EPOLLIN, EV_TAP) < 0) {
		rc = -errno;
		vnet_err("vnet-vmm: %s: I/O thread set-up: %s", e->name, strerror(errno));
		goto fail;
	}
	e->tap_polled = true;

	/* Signals belong to the vCPU and main threads, not to this one. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&e->thread, NULL, emu_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		vnet_err("vnet-vmm: %s: cannot start the I/O thread: %s", e->name, strerror(-rc));
		goto fail;
	}
	e->running = true;
	return 0;
fail:
	emu_teardown(e);
	return rc;
}

static void emu_stop(struct net_dev *nd)
{
	struct emu *e = nd->backend_priv;
	if (!e || !e->running)
		return;
	atomic_store(&e->exit_now, true);
	uint64_t one = 1;
	ssize_t ignored = write(e->stop_fd, &one, sizeof(one));
	(void)ignored;
	pthread_join(e->thread, NULL);
	e->running = false;
	emu_teardown(e);
}

static void emu_close(struct net_dev *nd)
{
	struct emu *e = nd->backend_priv;
	if (!e)
		return;
	emu_stop(nd);
	close(e->tap_fd);
	free(e);
	nd->backend_priv = NULL;
}

const struct net_backend_ops net_backend_emulated = {
	.name = "emulated",
	.open = emu_open,
	.features = emu_features,
	.start = emu_start,
	.stop = emu_stop,
	.close = emu_close,
};
