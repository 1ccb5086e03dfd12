/*
 * port_afpacket.c — an existing host interface (a NIC, a veth end) as a
 * switch port, through one AF_PACKET socket with PACKET_MMAP rings.
 *
 * Options:
 *   iface=IFNAME       required; the interface must exist
 *   rx-frames=N        RX ring slots (default 256, 16..65536)
 *   tx-frames=N        TX ring slots (default 256, 16..65536)
 *   frame-size=N       bytes per slot incl. the 32+20-byte ring header
 *                      (default 2048, 256..65536, a multiple of 16)
 *   qdisc-bypass=0|1   PACKET_QDISC_BYPASS (default 0: frames go through the
 *                      interface's qdisc and are seen by tcpdump)
 *
 * TPACKET_V2 for both rings: per-frame status words, so rx hands over each
 * frame as soon as the kernel wrote it. TPACKET_V3's block-based RX saves
 * status writes under heavy load, but a block is handed to user space only
 * when full or when its retire timer (>= 1 ms) fires, which is latency a
 * switch port should not add; and V3's TX ring is V2's anyway.
 *
 * RX: promiscuous (PACKET_MR_PROMISC membership, dropped by the kernel at
 * close), PACKET_IGNORE_OUTGOING so what we (or the host) transmit on the
 * interface is not received back; frames the kernel still reports as
 * PACKET_OUTGOING are skipped too. The kernel strips the outer VLAN tag
 * into tp_vlan_tci (TP_STATUS_VLAN_VALID); rx puts it back (TPID from
 * tp_vlan_tpid when valid, else 0x8100) so the switch sees the frame as it
 * was on the wire. Frames marked TP_STATUS_CSUMNOTREADY (sent by the local
 * stack with checksum offload, typical on a veth) get their TCP/UDP
 * checksum completed here, as the NIC would have. Frames cut by the slot
 * size (GRO/GSO aggregates: turn GRO/TSO off on the interface, as for any
 * AF_PACKET switch) are dropped and counted. The kernel's own ring drops
 * (PACKET_STATISTICS) are folded into rx_dropped by service().
 *
 * TX: frames are copied into TX slots (status SEND_REQUEST) and one
 * non-blocking sendto() per burst kicks the kernel; a burst that finds the
 * ring full drops the rest (tx_dropped). PACKET_LOSS lets the kernel skip a
 * malformed slot instead of stalling the ring. One rx and one tx queue.
 */
#include "switch/port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vnet/log.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* Offset of the frame data in a V2 TX slot (the kernel's tp_hdrlen - sll). */
#define TX_DATA_OFF (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))

struct ring {
	uint8_t *base;
	unsigned frame_nr, frame_size, head;
	size_t len;
};

struct afp_port {
	char ifname[IFNAMSIZ];
	int ifindex;
	int fd;
	uint8_t *map;
	size_t map_len;
	struct ring rx, tx;
	bool qdisc_bypass, ignore_outgoing;
	uint64_t kernel_drops;
};

static inline struct tpacket2_hdr *slot(const struct ring *r, unsigned i)
{
	return (struct tpacket2_hdr *)(r->base + (size_t)i * r->frame_size);
}

static inline uint32_t slot_status(const struct tpacket2_hdr *h)
{
	return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}

static inline void slot_set_status(struct tpacket2_hdr *h, uint32_t s)
{
	__atomic_store_n(&h->tp_status, s, __ATOMIC_RELEASE);
}

/* tpacket_req for `frames` slots of frame_size in page-sized blocks. */
static void ring_req(struct tpacket_req *req, unsigned frames, unsigned frame_size)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned psz = page > 0 ? (unsigned)page : 4096u;
	unsigned block = (frame_size + psz - 1) / psz * psz;
	unsigned per_block = block / frame_size;
	req->tp_block_size = block;
	req->tp_block_nr = (frames + per_block - 1) / per_block;
	req->tp_frame_size = frame_size;
	req->tp_frame_nr = req->tp_block_nr * per_block;
}

static void afp_free(struct afp_port *a)
{
	if (a->map)
		munmap(a->map, a->map_len);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

static int afp_open(struct sw_port *p, char *err, size_t errlen)
{
	static const char *const known[] = {"iface",      "rx-frames",    "tx-frames",
					    "frame-size", "qdisc-bypass", NULL};
	const struct sw_options *o = &p->opts;
	if (sw_options_check(o, "afpacket", known, err, errlen) < 0)
		return -EINVAL;
	unsigned rxn, txn, fsz, bypass;
	if (sw_options_uint(o, "rx-frames", 256, 16, 65536, &rxn, "afpacket", err, errlen) < 0 ||
	    sw_options_uint(o, "tx-frames", 256, 16, 65536, &txn, "afpacket", err, errlen) < 0 ||
	    sw_options_uint(o, "frame-size", 2048, 256, 65536, &fsz, "afpacket", err, errlen) < 0 ||
	    sw_options_uint(o, "qdisc-bypass", 0, 0, 1, &bypass, "afpacket", err, errlen) < 0)
		return -EINVAL;
	if (fsz % TPACKET_ALIGNMENT) {
		snprintf(err, errlen, "afpacket: frame-size %u is not a multiple of %d", fsz,
			 TPACKET_ALIGNMENT);
		return -EINVAL;
	}
	const char *iface = sw_options_get(o, "iface");
	if (!iface || !*iface) {
		snprintf(err, errlen, "afpacket: iface= is required");
		return -EINVAL;
	}
	if (strlen(iface) >= IFNAMSIZ) {
		snprintf(err, errlen, "afpacket: bad interface name '%s'", iface);
		return -EINVAL;
	}
	int ifindex = (int)if_nametoindex(iface);
	if (!ifindex) {
		snprintf(err, errlen, "afpacket: no interface %s", iface);
		return -ENODEV;
	}
	struct afp_port *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "afpacket: out of memory");
		return -ENOMEM;
	}
	memcpy(a->ifname, iface, strlen(iface) + 1); /* < IFNAMSIZ, checked */
	a->ifindex = ifindex;
	a->qdisc_bypass = bypass;
	/* Protocol 0: nothing is received before the rings exist and bind() names
	 * the interface. */
	a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		snprintf(err, errlen, "afpacket: socket: %s", strerror(errno));
		goto fail;
	}
	int one = 1, v2 = TPACKET_V2;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) < 0) {
		snprintf(err, errlen, "afpacket: TPACKET_V2: %s", strerror(errno));
		goto fail;
	}
	if (setsockopt(a->fd, SOL_PACKET, PACKET_LOSS, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "afpacket: PACKET_LOSS: %s", strerror(errno));
		goto fail;
	}
	a->ignore_outgoing =
		setsockopt(a->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) == 0;
	if (bypass &&
	    setsockopt(a->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "afpacket: PACKET_QDISC_BYPASS: %s", strerror(errno));
		goto fail;
	}
	struct tpacket_req rreq, treq;
	ring_req(&rreq, rxn, fsz);
	ring_req(&treq, txn, fsz);
	if (setsockopt(a->fd, SOL_PACKET, PACKET_RX_RING, &rreq, sizeof(rreq)) < 0 ||
	    setsockopt(a->fd, SOL_PACKET, PACKET_TX_RING, &treq, sizeof(treq)) < 0) {
		snprintf(err, errlen, "afpacket: cannot set up the rings (%u+%u x %u bytes): %s",
			 rxn, txn, fsz, strerror(errno));
		goto fail;
	}
	a->rx.len = (size_t)rreq.tp_block_size * rreq.tp_block_nr;
	a->tx.len = (size_t)treq.tp_block_size * treq.tp_block_nr;
	a->map_len = a->rx.len + a->tx.len;
	void *m = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, a->fd,
		       0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "afpacket: mmap of the rings: %s", strerror(errno));
		goto fail;
	}
	a->map = m;
	a->rx = (struct ring){.base = a->map, .frame_nr = rreq.tp_frame_nr,
			      .frame_size = fsz, .len = a->rx.len};
	a->tx = (struct ring){.base = a->map + a->rx.len, .frame_nr = treq.tp_frame_nr,
			      .frame_size = fsz, .len = a->tx.len};
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	if (bind(a->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		snprintf(err, errlen, "afpacket: bind to %s: %s", iface, strerror(errno));
		goto fail;
	}
	struct packet_mreq mr = {.mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC};
	if (setsockopt(a->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		snprintf(err, errlen, "afpacket: %s: promiscuous mode: %s", iface, strerror(errno));
		goto fail;
	}
	vnet_info("afpacket %s: attached to %s (TPACKET_V2, %u+%u slots of %u bytes%s)", p->name,
		  iface, rreq.tp_frame_nr, treq.tp_frame_nr, fsz,
		  bypass ? ", qdisc bypass" : "");
	p->priv = a;
	p->nrxq = p->ntxq = 1;
	return 0;
fail:
	afp_free(a);
	return -EINVAL;
}

static void afp_close(struct sw_port *p)
{
	struct afp_port *a = p->priv;
	if (!a)
		return;
	afp_free(a);
	p->priv = NULL;
}

/* ---- checksum completion for CHECKSUM_PARTIAL frames ---- */

static uint32_t csum_add(uint32_t sum, const uint8_t *d, size_t len)
{
	for (; len >= 2; d += 2, len -= 2)
		sum += (uint32_t)(d[0] << 8 | d[1]);
	if (len)
		sum += (uint32_t)d[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The stack left the TCP/UDP checksum field holding the pseudo-header sum
 * and expects the device to sum from the L4 header to the end: do that.
 * Frames this does not understand (not IPv4/IPv6 + TCP/UDP, IPv6 extension
 * headers, fragments) are left as they are.
 */
static void complete_csum(uint8_t *f, uint32_t len)
{
	uint32_t off = 12;
	uint16_t type;
	for (int tags = 0;; tags++) {
		if (off + 2 > len)
			return;
		type = (uint16_t)(f[off] << 8 | f[off + 1]);
		if ((type != ETH_P_8021Q && type != ETH_P_8021AD) || tags == 2)
			break;
		off += 4;
	}
	off += 2;
	uint32_t l4, l4len;
	uint8_t proto;
	if (type == ETH_P_IP) {
		if (off + 20 > len)
			return;
		uint32_t ihl = (f[off] & 0xfu) * 4u;
		uint32_t tot = (uint32_t)(f[off + 2] << 8 | f[off + 3]);
		if ((f[off] >> 4) != 4 || ihl < 20 || tot < ihl || off + tot > len ||
		    (f[off + 6] & 0x3f) || f[off + 7])
			return; /* fragments never carry CHECKSUM_PARTIAL */
		proto = f[off + 9];
		l4 = off + ihl;
		l4len = tot - ihl;
	} else if (type == ETH_P_IPV6) {
		if (off + 40 > len)
			return;
		uint32_t plen = (uint32_t)(f[off + 4] << 8 | f[off + 5]);
		if (off + 40 + plen > len)
			return;
		proto = f[off + 6];
		l4 = off + 40;
		l4len = plen;
	} else {
		return;
	}
	uint32_t cso;
	if (proto == IPPROTO_TCP)
		cso = 16;
	else if (proto == IPPROTO_UDP)
		cso = 6;
	else
		return;
	if (cso + 2 > l4len)
		return;
	uint16_t c = csum_fold(csum_add(0, f + l4, l4len));
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	f[l4 + cso] = (uint8_t)(c >> 8);
	f[l4 + cso + 1] = (uint8_t)c;
}

/* ---- data path ---- */

static unsigned afp_rx(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool,
		       struct vnet_pkt **pkts, unsigned n)
{
	struct afp_port *a = p->priv;
	if (q != 0)
		return 0;
	struct ring *r = &a->rx;
	unsigned got = 0;
	uint64_t bytes = 0, dropped = 0;
	while (got < n) {
		struct tpacket2_hdr *h = slot(r, r->head);
		uint32_t st = slot_status(h);
		if (!(st & TP_STATUS_USER))
			break;
		const struct sockaddr_ll *sll =
			(const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
		const uint8_t *src = (const uint8_t *)h + h->tp_mac;
		uint32_t len = h->tp_snaplen;
		bool vlan = st & TP_STATUS_VLAN_VALID;
		uint32_t need = len + (vlan ? 4 : 0);
		struct vnet_pkt *k = NULL;
		if (sll->sll_pkttype == PACKET_OUTGOING) {
			/* our own transmissions when IGNORE_OUTGOING is missing */
		} else if (len < h->tp_len || len < 14 || h->tp_mac + len > r->frame_size) {
			dropped++; /* cut by the slot size (a GRO aggregate?) or a runt */
		} else if (!(k = vnet_pkt_alloc(pool))) {
			dropped++;
		} else if (need > vnet_pkt_tailroom(k)) {
			dropped++;
			vnet_pkt_free(k);
			k = NULL;
		} else {
			uint8_t *d = k->data;
			if (vlan) {
				uint16_t tpid = (st & TP_STATUS_VLAN_TPID_VALID) && h->tp_vlan_tpid
							? h->tp_vlan_tpid
							: ETH_P_8021Q;
				memcpy(d, src, 12);
				d[12] = (uint8_t)(tpid >> 8);
				d[13] = (uint8_t)tpid;
				d[14] = (uint8_t)(h->tp_vlan_tci >> 8);
				d[15] = (uint8_t)h->tp_vlan_tci;
				memcpy(d + 16, src + 12, len - 12);
			} else {
				memcpy(d, src, len);
			}
			k->len = need;
			if (st & TP_STATUS_CSUMNOTREADY)
				complete_csum(d, need);
			k->in_port = p->ofport;
			bytes += need;
			pkts[got++] = k;
		}
		slot_set_status(h, TP_STATUS_KERNEL);
		r->head = r->head + 1 == r->frame_nr ? 0 : r->head + 1;
	}
	if (got) {
		atomic_fetch_add_explicit(&p->rxq[0].rx_packets, got, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->rxq[0].rx_bytes, bytes, memory_order_relaxed);
	}
	if (dropped)
		atomic_fetch_add_explicit(&p->rxq[0].rx_dropped, dropped, memory_order_relaxed);
	return got;
}

static unsigned afp_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n)
{
	struct afp_port *a = p->priv;
	(void)q;
	struct ring *r = &a->tx;
	unsigned queued = 0;
	uint64_t bytes = 0, dropped = 0;
	uint32_t max = r->frame_size - (uint32_t)TX_DATA_OFF;
	for (unsigned i = 0; i < n; i++) {
		if (pkts[i]->len > max || pkts[i]->len < 14) {
			dropped++;
			continue;
		}
		struct tpacket2_hdr *h = slot(r, r->head);
		uint32_t st = slot_status(h);
		if (st == TP_STATUS_WRONG_FORMAT)
			st = TP_STATUS_AVAILABLE; /* skipped by the kernel (PACKET_LOSS off) */
		if (st != TP_STATUS_AVAILABLE) {
			dropped += n - i; /* ring full */
			break;
		}
		memcpy((uint8_t *)h + TX_DATA_OFF, pkts[i]->data, pkts[i]->len);
		h->tp_len = pkts[i]->len;
		h->tp_snaplen = pkts[i]->len;
		slot_set_status(h, TP_STATUS_SEND_REQUEST);
		r->head = r->head + 1 == r->frame_nr ? 0 : r->head + 1;
		queued++;
		bytes += pkts[i]->len;
	}
	if (queued && sendto(a->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
	    errno != ENOBUFS && errno != EINTR)
		atomic_fetch_add_explicit(&p->txq[0].errors, 1, memory_order_relaxed);
	/* Queued frames stay in the ring until the kernel sends them; a failed
	 * kick is retried by the next one. */
	if (queued) {
		atomic_fetch_add_explicit(&p->txq[0].tx_packets, queued, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->txq[0].tx_bytes, bytes, memory_order_relaxed);
	}
	if (dropped)
		atomic_fetch_add_explicit(&p->txq[0].tx_dropped, dropped, memory_order_relaxed);
	return queued;
}

static void afp_service(struct sw_port *p)
{
	struct afp_port *a = p->priv;
	struct tpacket_stats s;
	socklen_t sl = sizeof(s);
	if (getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &s, &sl) == 0 && s.tp_drops) {
		a->kernel_drops += s.tp_drops;
		atomic_fetch_add_explicit(&p->rxq[0].rx_dropped, s.tp_drops, memory_order_relaxed);
	}
}

static int afp_service_fd(struct sw_port *p)
{
	(void)p;
	return -1;
}

static int afp_wake_fd(struct sw_port *p, unsigned q)
{
	struct afp_port *a = p->priv;
	return q == 0 ? a->fd : -1;
}

static void afp_describe(struct sw_port *p, char *buf, size_t len)
{
	struct afp_port *a = p->priv;
	snprintf(buf, len, "afpacket %s, TPACKET_V2 %u+%u slots of %u bytes%s%s, %llu ring drops",
		 a->ifname, a->rx.frame_nr, a->tx.frame_nr, a->rx.frame_size,
		 a->qdisc_bypass ? ", qdisc bypass" : "",
		 if_nametoindex(a->ifname) == (unsigned)a->ifindex ? "" : " (interface gone)",
		 (unsigned long long)a->kernel_drops);
}

const struct sw_port_ops sw_port_afpacket_ops = {
	.type = "afpacket",
	.open = afp_open,
	.close = afp_close,
	.rx = afp_rx,
	.tx = afp_tx,
	.service = afp_service,
	.service_fd = afp_service_fd,
	.wake_fd = afp_wake_fd,
	.describe = afp_describe,
};
