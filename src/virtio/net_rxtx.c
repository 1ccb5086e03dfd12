/* net_rxtx.c — virtio-net frame path; see vnet/net_rxtx.h. */
#include "vnet/net_rxtx.h"

#include <string.h>

#define ETH_HDR_LEN 14u

enum copy_dir { FROM_IOV, TO_IOV };

/*
 * memcpy for frame bytes: small frames are the common case and libc's
 * memcpy call + size dispatch costs as much as the copy itself at 64 B.
 * Fixed-size 32/16-byte moves compile to vector loads/stores; the last
 * chunk overlaps the previous one instead of running past len.
 */
static inline void frame_copy(uint8_t *d, const uint8_t *s, size_t len)
{
	if (len > 256 || len < 16) {
		memcpy(d, s, len);
		return;
	}
	if (len < 32) {
		memcpy(d, s, 16);
		memcpy(d + len - 16, s + len - 16, 16);
		return;
	}
	size_t off = 0;
	for (; off + 32 < len; off += 32)
		memcpy(d + off, s + off, 32);
	memcpy(d + len - 32, s + len - 32, 32);
}

/* Copies len bytes between buf and the iovec's bytes from offset `off`. */
static void iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
		     enum copy_dir dir)
{
	uint8_t *b = buf;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - off;
		if (chunk > len)
			chunk = len;
		uint8_t *piece = (uint8_t *)iov[i].iov_base + off;
		if (dir == FROM_IOV)
			frame_copy(b, piece, chunk);
		else
			frame_copy(piece, b, chunk);
		b += chunk;
		len -= chunk;
		off = 0;
	}
}

void vnet_iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	iov_copy(iov, n, off, dst, len, FROM_IOV);
}

void vnet_buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
	iov_copy(iov, n, off, (void *)src, len, TO_IOV);
}

unsigned vnet_net_dequeue(struct vnet_vq *vq, unsigned hdr_len, struct vnet_pkt_pool *pool,
			  struct vnet_pkt **pkts, unsigned n, bool discard,
			  struct vnet_net_stats *st, bool *notify)
{
	struct vnet_vq_chain chains[VNET_NET_BURST];
	struct iovec iov[VNET_NET_BURST * VNET_NET_MAX_SEGS];
	if (n > VNET_NET_BURST)
		n = VNET_NET_BURST;
	/* Never take more chains than there are buffers to put them in. */
	if (!discard && n > pool->nfree)
		n = pool->nfree;
	unsigned got = vnet_vq_pop_burst(vq, chains, n, iov, VNET_NET_MAX_SEGS);
	unsigned out = 0;
	/* The driver wrote these buffers on another CPU: start every miss of
	 * the burst now so they overlap instead of stalling one copy at a time. */
	for (unsigned i = 0; i < got; i++)
		if (chains[i].n_out) {
			const uint8_t *b = chains[i].iov[0].iov_base;
			__builtin_prefetch(b, 0);
			if (chains[i].iov[0].iov_len > 64) /* header + a small frame span two lines */
				__builtin_prefetch(b + 64, 0);
		}
	for (unsigned i = 0; i < got; i++) {
		struct vnet_vq_chain *c = &chains[i];
		if (discard) {
			st->drop_disabled++;
		} else if (c->n_in || c->out_len < hdr_len + ETH_HDR_LEN) {
			st->err_bad_chain++;
		} else if (c->out_len - hdr_len > pool->frame_room) {
			st->drop_too_big++;
		} else {
			struct vnet_pkt *p = vnet_pkt_alloc(pool);
			p->len = c->out_len - hdr_len;
			if (c->iov[0].iov_len == c->out_len) {
				/* One buffer (header + frame): the usual layout. */
				const uint8_t *src = c->iov[0].iov_base;
				memcpy(&p->vhdr, src, sizeof(p->vhdr));
				frame_copy(p->data, src + hdr_len, p->len);
			} else {
				struct virtio_net_hdr_mrg_rxbuf h;
				iov_copy(c->iov, c->n_out, 0, &h, hdr_len, FROM_IOV);
				memcpy(&p->vhdr, &h.hdr, sizeof(p->vhdr));
				iov_copy(c->iov, c->n_out, hdr_len, p->data, p->len, FROM_IOV);
			}
			st->packets++;
			st->bytes += p->len;
			pkts[out++] = p;
		}
		vnet_vq_push(vq, c->head, 0);
	}
	*notify = got ? vnet_vq_flush(vq) : false;
	return out;
}

unsigned vnet_net_enqueue(struct vnet_vq *vq, unsigned hdr_len, struct vnet_pkt **pkts,
			  unsigned n, struct vnet_net_stats *st, bool *notify)
{
	struct vnet_vq_chain chains[VNET_NET_BURST];
	struct iovec iov[VNET_NET_BURST * VNET_NET_MAX_SEGS];
	unsigned delivered = 0, taken = 0;
	*notify = false;
	/* Chains that are not RX buffers are consumed without a packet: bound
	 * the call by one ring's worth so a guest cannot keep us here. */
	while (delivered < n && taken < vq->size) {
		unsigned want = n - delivered;
		if (want > VNET_NET_BURST)
			want = VNET_NET_BURST;
		unsigned got = vnet_vq_pop_burst(vq, chains, want, iov, VNET_NET_MAX_SEGS);
		if (got == 0)
			break;
		taken += got;
		/* Guest RX buffers were last touched by the driver's CPU: ask for
		 * ownership of their first lines for the whole burst at once. */
		for (unsigned i = 0; i < got; i++)
			if (chains[i].n_in) {
				uint8_t *b = chains[i].iov[0].iov_base;
				uint32_t need = hdr_len + pkts[delivered + i]->len; /* got <= n - delivered */
				__builtin_prefetch(b, 1);
				if (need > 64 && chains[i].iov[0].iov_len > 64)
					__builtin_prefetch(b + 64, 1);
			}
		for (unsigned i = 0; i < got; i++) {
			struct vnet_vq_chain *c = &chains[i];
			struct vnet_pkt *p = pkts[delivered];
			uint32_t need = hdr_len + p->len;
			uint32_t written = 0;
			if (c->n_out) {
				st->err_bad_chain++; /* RX buffers must be device-writable */
			} else if (c->in_len < need) {
				st->drop_too_big++;
				delivered++; /* the packet is dropped, not retried */
			} else {
				struct virtio_net_hdr_mrg_rxbuf h = {.num_buffers = 1};
				/* No guest offloads are negotiated: the frame is complete. */
				if (c->iov[0].iov_len >= need) {
					uint8_t *dst = c->iov[0].iov_base;
					/* Constant sizes: a libc call per frame costs more than the store. */
					if (hdr_len == sizeof(h))
						memcpy(dst, &h, sizeof(h));
					else
						memcpy(dst, &h, hdr_len);
					frame_copy(dst + hdr_len, p->data, p->len);
				} else {
					iov_copy(c->iov, c->n_in, 0, &h, hdr_len, TO_IOV);
					iov_copy(c->iov, c->n_in, hdr_len, p->data, p->len, TO_IOV);
				}
				written = need;
				st->packets++;
				st->bytes += p->len;
				delivered++;
			}
			vnet_vq_push(vq, c->head, written);
		}
		*notify |= vnet_vq_flush(vq);
		if (vnet_vq_is_broken(vq))
			break;
	}
	if (delivered < n)
		st->drop_no_buf += n - delivered;
	return delivered;
}
