/*
 * port_tap.c — a tap interface as a switch port.
 *
 * Options:
 *   name=IFNAME      the tap (default: the port's name); created when
 *                    missing, attached when it exists
 *   multiqueue=N     1..16 queues (IFF_MULTI_QUEUE when N > 1), one fd each
 *
 * Every fd is IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with a 12-byte header
 * (TUNSETVNETHDRSZ 12, what QEMU uses with VERSION_1/MRG_RXBUF), non-
 * blocking. No TUNSETOFFLOAD: the kernel checksums and segments everything
 * before handing it to us, so received headers carry nothing we need (their
 * DATA_VALID hint is dropped: packets leave rx with a zero vhdr). On tx the
 * packet's own vhdr is written in front of the frame (zero for frames that
 * came from anywhere but a guest that negotiated offloads), so a guest's
 * NEEDS_CSUM/GSO frame is finished by the kernel instead of leaving broken.
 *
 * Costs: a tap has no batch receive (recvmmsg does not work on a tun fd)
 * and no ring, so rx is one readv() per frame until EAGAIN or the burst is
 * full, and tx is one writev() per frame. A frame larger than the packet's
 * room lands in a per-queue scratch tail and is dropped and counted
 * (rx_dropped), never truncated.
 *
 * The link is brought up at open. close() closes the fds: a tap we created
 * (not persistent) disappears with its last fd; one that existed stays.
 */
#include "switch/port.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/net.h"

#define TAP_HDR_LEN 12
#define TAP_SCRATCH 65536

struct tap_port {
	char ifname[IFNAMSIZ];
	bool created;
	unsigned nq;
	int fds[SW_PORT_MAX_QUEUES];
	uint8_t *scratch[SW_PORT_MAX_QUEUES]; /* rx tail for oversize frames, per queue */
};

/* name is known to be shorter than IFNAMSIZ */
static void ifname_copy(char dst[IFNAMSIZ], const char *name)
{
	size_t n = strnlen(name, IFNAMSIZ - 1);
	memcpy(dst, name, n);
	dst[n] = '\0';
}

static void tap_free(struct tap_port *t)
{
	for (unsigned q = 0; q < SW_PORT_MAX_QUEUES; q++) {
		if (t->fds[q] >= 0)
			close(t->fds[q]);
		free(t->scratch[q]);
	}
	free(t);
}

static int tap_set_up(const char *ifname, char *err, size_t errlen)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(err, errlen, "tap: socket: %s", strerror(errno));
		return -errno;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifname_copy(ifr.ifr_name, ifname);
	int rc = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "tap: %s: SIOCGIFFLAGS: %s", ifname, strerror(errno));
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
			rc = -errno;
			snprintf(err, errlen, "tap: %s: cannot bring the link up: %s", ifname,
				 strerror(errno));
		}
	}
	close(s);
	return rc;
}

static int tap_open(struct sw_port *p, char *err, size_t errlen)
{
	static const char *const known[] = {"name", "multiqueue", NULL};
	if (sw_options_check(&p->opts, "tap", known, err, errlen) < 0)
		return -EINVAL;
	unsigned nq;
	if (sw_options_uint(&p->opts, "multiqueue", 1, 1, SW_PORT_MAX_QUEUES, &nq, "tap", err,
			    errlen) < 0)
		return -EINVAL;
	const char *name = sw_options_get(&p->opts, "name");
	if (!name)
		name = p->name;
	if (!*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || strchr(name, ' ')) {
		snprintf(err, errlen, "tap: bad interface name '%s'", name);
		return -EINVAL;
	}
	struct tap_port *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "tap: out of memory");
		return -ENOMEM;
	}
	for (unsigned q = 0; q < SW_PORT_MAX_QUEUES; q++)
		t->fds[q] = -1;
	ifname_copy(t->ifname, name);
	t->nq = nq;
	t->created = if_nametoindex(name) == 0;

	for (unsigned q = 0; q < nq; q++) {
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "tap: cannot open /dev/net/tun: %s", strerror(errno));
			goto fail;
		}
		t->fds[q] = fd;
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		ifname_copy(ifr.ifr_name, name);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (nq > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			int e = errno;
			snprintf(err, errlen, "tap: cannot %s %s%s: %s%s",
				 t->created ? "create" : "attach to", name,
				 nq > 1 ? " (multiqueue)" : "", strerror(e),
				 e == EPERM ? " (needs CAP_NET_ADMIN, or a tap owned by this user and up)" : "");
			goto fail;
		}
		int hl = TAP_HDR_LEN;
		if (ioctl(fd, TUNSETVNETHDRSZ, &hl) < 0) {
			snprintf(err, errlen, "tap: %s: TUNSETVNETHDRSZ: %s", name, strerror(errno));
			goto fail;
		}
		t->scratch[q] = malloc(TAP_SCRATCH);
		if (!t->scratch[q]) {
			snprintf(err, errlen, "tap: out of memory");
			goto fail;
		}
	}
	if (tap_set_up(name, err, errlen) < 0)
		goto fail;
	vnet_info("tap %s: %s %s, %u queue%s", p->name, t->created ? "created" : "attached to",
		  name, nq, nq == 1 ? "" : "s");
	p->priv = t;
	p->nrxq = p->ntxq = nq;
	return 0;
fail:
	tap_free(t);
	return -EINVAL;
}

static void tap_close(struct sw_port *p)
{
	struct tap_port *t = p->priv;
	if (!t)
		return;
	tap_free(t); /* a tap we created is not persistent: it goes with its fds */
	p->priv = NULL;
}

static unsigned tap_rx(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool,
		       struct vnet_pkt **pkts, unsigned n)
{
	struct tap_port *t = p->priv;
	if (q >= t->nq)
		return 0;
	unsigned got = 0;
	uint64_t bytes = 0, dropped = 0, errs = 0;
	struct vnet_pkt *k = NULL;
	struct virtio_net_hdr_mrg_rxbuf hdr;
	while (got < n) {
		if (!k && !(k = vnet_pkt_alloc(pool)))
			break;
		uint32_t room = vnet_pkt_tailroom(k);
		struct iovec iov[3] = {
			{.iov_base = &hdr, .iov_len = TAP_HDR_LEN},
			{.iov_base = k->data, .iov_len = room},
			{.iov_base = t->scratch[q], .iov_len = TAP_SCRATCH},
		};
		ssize_t r = readv(t->fds[q], iov, 3);
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				errs++;
			break;
		}
		if (r < TAP_HDR_LEN + 14 || (size_t)r - TAP_HDR_LEN > room) {
			dropped++; /* runt or larger than a packet */
			continue;
		}
		k->len = (uint32_t)(r - TAP_HDR_LEN);
		memset(&k->vhdr, 0, sizeof(k->vhdr));
		k->in_port = p->ofport;
		bytes += k->len;
		pkts[got++] = k;
		k = NULL;
	}
	if (k)
		vnet_pkt_free(k);
	if (got) {
		atomic_fetch_add_explicit(&p->rxq[q].rx_packets, got, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->rxq[q].rx_bytes, bytes, memory_order_relaxed);
	}
	if (dropped)
		atomic_fetch_add_explicit(&p->rxq[q].rx_dropped, dropped, memory_order_relaxed);
	if (errs)
		atomic_fetch_add_explicit(&p->rxq[q].errors, errs, memory_order_relaxed);
	return got;
}

static unsigned tap_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n)
{
	struct tap_port *t = p->priv;
	if (q >= t->nq)
		q = 0;
	unsigned sent = 0;
	uint64_t bytes = 0, dropped = 0, errs = 0;
	for (unsigned i = 0; i < n; i++) {
		struct virtio_net_hdr_mrg_rxbuf hdr = {.hdr = pkts[i]->vhdr, .num_buffers = 0};
		struct iovec iov[2] = {
			{.iov_base = &hdr, .iov_len = TAP_HDR_LEN},
			{.iov_base = pkts[i]->data, .iov_len = pkts[i]->len},
		};
		ssize_t w = writev(t->fds[q], iov, 2);
		if (w < 0) {
			if (errno == EAGAIN || errno == ENOBUFS) {
				dropped += n - i; /* the tap's queue is full: drop the rest */
				break;
			}
			errs++; /* EIO while the link is down, EINVAL for a bad header */
			continue;
		}
		sent++;
		bytes += pkts[i]->len;
	}
	if (sent) {
		atomic_fetch_add_explicit(&p->txq[q].tx_packets, sent, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->txq[q].tx_bytes, bytes, memory_order_relaxed);
	}
	if (dropped)
		atomic_fetch_add_explicit(&p->txq[q].tx_dropped, dropped, memory_order_relaxed);
	if (errs)
		atomic_fetch_add_explicit(&p->txq[q].errors, errs, memory_order_relaxed);
	return sent;
}

static void tap_service(struct sw_port *p)
{
	(void)p;
}

static int tap_service_fd(struct sw_port *p)
{
	(void)p;
	return -1;
}

static int tap_wake_fd(struct sw_port *p, unsigned q)
{
	struct tap_port *t = p->priv;
	return q < t->nq ? t->fds[q] : -1;
}

static void tap_describe(struct sw_port *p, char *buf, size_t len)
{
	struct tap_port *t = p->priv;
	unsigned idx = if_nametoindex(t->ifname);
	snprintf(buf, len, "tap %s (%s), %u queue%s, vnet hdr %d%s", t->ifname,
		 t->created ? "created" : "attached", t->nq, t->nq == 1 ? "" : "s", TAP_HDR_LEN,
		 idx ? "" : ", moved to another netns or gone");
}

const struct sw_port_ops sw_port_tap_ops = {
	.type = "tap",
	.open = tap_open,
	.close = tap_close,
	.rx = tap_rx,
	.tx = tap_tx,
	.service = tap_service,
	.service_fd = tap_service_fd,
	.wake_fd = tap_wake_fd,
	.describe = tap_describe,
};
