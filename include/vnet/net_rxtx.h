/*
 * net_rxtx.h — the one virtio-net frame path, on a device-side virtqueue:
 * guest TX chains → packets (dequeue) and packets → guest RX chains
 * (enqueue), with the virtio-net header read and written here. Shared by the
 * vhost-user handler and the VMM's emulated device.
 *
 * Hostile-guest rules: a TX chain shorter than the header, with device-
 * writable parts, a frame shorter than an Ethernet header or longer than a
 * packet buffer is dropped and counted (its chain returned), never read
 * past; the header may be split across any number of descriptors (it is
 * gathered by copy, CVE-2022-2132). Violations of the ring itself break only
 * that queue (see virtqueue.h).
 *
 * Thread-safety: as the queue (one thread per queue, inside a guest-memory
 * read bracket).
 */
#ifndef VNET_NET_RXTX_H
#define VNET_NET_RXTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnet/pkt.h"
#include "vnet/virtqueue.h"

/* Pieces per chain the frame path accepts (a chain needing more breaks the queue). */
#define VNET_NET_MAX_SEGS 64
#define VNET_NET_BURST 32

struct vnet_net_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t drop_disabled;  /* guest TX discarded: ring started but disabled */
	uint64_t drop_no_buf;    /* no packet buffer / no guest RX buffer */
	uint64_t drop_too_big;   /* frame larger than the buffer offered */
	uint64_t err_bad_chain;  /* short header, wrong direction, runt */
};

/*
 * Guest TX → packets: takes up to n chains, copies each frame into a packet
 * from `pool` (header into pkt->vhdr), returns the chains to the guest.
 * With `discard` the chains are consumed and dropped. Returns the number of
 * packets produced; *notify says whether the guest wants an interrupt.
 */
unsigned vnet_net_dequeue(struct vnet_vq *vq, unsigned hdr_len, struct vnet_pkt_pool *pool,
			  struct vnet_pkt **pkts, unsigned n, bool discard,
			  struct vnet_net_stats *st, bool *notify);

/*
 * Packets → guest RX: copies up to n packets into the guest's buffers (one
 * chain per packet; num_buffers = 1 when the header has the field). Returns
 * how many of pkts were consumed, a prefix: delivered, or dropped because
 * the guest's buffer was too small (drop_too_big). The rest found no buffer
 * (drop_no_buf). The caller still owns and frees every packet.
 */
unsigned vnet_net_enqueue(struct vnet_vq *vq, unsigned hdr_len, struct vnet_pkt **pkts,
			  unsigned n, struct vnet_net_stats *st, bool *notify);

/*
 * Copies len bytes between a flat buffer and the bytes of iov[0..n) counted
 * from offset `off` (gather into dst / scatter from src). Stops at the end
 * of the iovec: never touches memory outside the pieces.
 */
void vnet_iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);
void vnet_buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len);

#endif
