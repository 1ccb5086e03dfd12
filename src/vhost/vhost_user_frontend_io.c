/*
 * vhost_user_frontend_io.c — vhost-user front-end data path: ring layout in
 * the shared memory, TX copy-in with buffer reclaim, zero-copy RX with
 * re-posting, waiting for RX. See vnet/vhost_user_frontend.h.
 */
#include "vnet/vhost_user_frontend.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"

/* Called by vhost_user_frontend.c. */
int vnet_vhu_fe_rings_init(struct vnet_vhu_fe *fe);
void vnet_vhu_fe_rings_fini(struct vnet_vhu_fe *fe);

/* Descriptors per TX indirect table: header, frame. */
#define TX_INDIRECT_MAX 2

static inline void *cookie_of(unsigned idx)
{
	return (void *)(uintptr_t)(idx + 1);
}

static inline unsigned idx_of(void *cookie)
{
	return (unsigned)((uintptr_t)cookie - 1);
}

static inline uint8_t *buf_host(const struct vnet_vhu_fe *fe, const struct vnet_vhu_fe_ring *r,
				unsigned idx)
{
	return r->bufs + (size_t)idx * fe->buf_size;
}

static inline uint64_t buf_gpa(const struct vnet_vhu_fe *fe, const struct vnet_vhu_fe_ring *r,
			       unsigned idx)
{
	return r->bufs_gpa + (uint64_t)idx * fe->buf_size;
}

static int post_rx(struct vnet_vhu_fe *fe, struct vnet_vhu_fe_ring *r, unsigned idx)
{
	struct vnet_buf b = {.addr = buf_gpa(fe, r, idx), .len = fe->buf_size};
	return vnet_vq_driver_add(&r->drv, &b, 0, 1, cookie_of(idx), false);
}

/* Publishes what was added; one eventfd write when the device asks for it. */
static void kick(struct vnet_vhu_fe_ring *r, struct vnet_vhu_fe_stats *st)
{
	if (vnet_vq_driver_kick_prepare(&r->drv) && r->kick_fd >= 0) {
		if (eventfd_write(r->kick_fd, 1) == 0)
			st->kicks++;
	}
}

int vnet_vhu_fe_rings_init(struct vnet_vhu_fe *fe)
{
	uint16_t qs = fe->cfg.queue_size;
	for (unsigned i = 0; i < 2 * fe->nqp; i++) {
		struct vnet_vhu_fe_ring *r = &fe->rings[i];
		bool tx = i & 1;
		char name[32];
		snprintf(name, sizeof(name), "%.20s/%s%u", fe->name, tx ? "tx" : "rx", i / 2);
		struct vnet_vq_driver_config dc = {
			.size = qs,
			.ring_host = fe->mem + r->ring_off,
			.ring_gpa = fe->gpa_base + r->ring_off,
			.features = fe->features,
			.name = name,
		};
		if (tx && fe->cfg.tx_indirect) {
			dc.indirect_host = fe->mem + r->ind_off;
			dc.indirect_gpa = fe->gpa_base + r->ind_off;
			dc.indirect_max = TX_INDIRECT_MAX;
		}
		int ret = vnet_vq_driver_init(&r->drv, &dc);
		if (ret < 0)
			return ret;
		r->stack = calloc(qs, sizeof(*r->stack));
		if (!r->stack)
			return -ENOMEM;
		r->nstack = 0;
		r->rx_skip = 0;
		/* We reap in bursts; interrupts only while someone waits (rx_wait). */
		vnet_vq_driver_disable_cb(&r->drv);
		if (tx) {
			for (unsigned b = 0; b < qs; b++)
				r->stack[r->nstack++] = (uint16_t)(qs - 1 - b);
		} else {
			for (unsigned b = 0; b < qs; b++) {
				ret = post_rx(fe, r, b);
				if (ret < 0)
					return ret;
			}
			/* Published now; the back-end finds them when the ring starts. */
			vnet_vq_driver_kick_prepare(&r->drv);
		}
	}
	return 0;
}

void vnet_vhu_fe_rings_fini(struct vnet_vhu_fe *fe)
{
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++) {
		struct vnet_vhu_fe_ring *r = &fe->rings[i];
		vnet_vq_driver_fini(&r->drv);
		free(r->stack);
		r->stack = NULL;
		r->nstack = 0;
	}
}

static int check_qp(const struct vnet_vhu_fe *fe, unsigned qp)
{
	if (qp >= fe->nqp)
		return -EINVAL;
	if (!fe->rings[2 * qp].started || !fe->rings[2 * qp + 1].started)
		return -ENOTCONN;
	return 0;
}

static unsigned reclaim(struct vnet_vhu_fe_ring *r)
{
	void *c;
	while ((c = vnet_vq_driver_get_used(&r->drv, NULL)) != NULL)
		r->stack[r->nstack++] = (uint16_t)idx_of(c);
	return r->nstack;
}

int vnet_vhu_fe_tx_reclaim(struct vnet_vhu_fe *fe, unsigned qp)
{
	int ret = check_qp(fe, qp);
	if (ret < 0)
		return ret;
	struct vnet_vhu_fe_ring *r = &fe->rings[2 * qp + 1];
	unsigned n = reclaim(r);
	return r->drv.broken ? -EIO : (int)n;
}

int vnet_vhu_fe_tx_burst(struct vnet_vhu_fe *fe, unsigned qp, const struct iovec *frames,
			 unsigned n)
{
	int ret = check_qp(fe, qp);
	if (ret < 0)
		return ret;
	struct vnet_vhu_fe_ring *r = &fe->rings[2 * qp + 1];
	struct vnet_vhu_fe_stats *st = &fe->stats[qp];
	reclaim(r);
	if (r->drv.broken)
		return -EIO;

	size_t hdr = fe->hdr_len;
	size_t room = fe->buf_size - hdr;
	bool indirect = r->drv.indirect_max != 0;
	unsigned taken = 0, queued = 0;
	for (; taken < n; taken++) {
		size_t len = frames[taken].iov_len;
		if (len > room) {
			st->tx_oversize++;
			continue;
		}
		if (r->nstack == 0)
			break;
		unsigned idx = r->stack[r->nstack - 1];
		uint8_t *buf = buf_host(fe, r, idx);
		uint64_t gpa = buf_gpa(fe, r, idx);
		memset(buf, 0, hdr); /* no offloads; num_buffers is the device's */
		memcpy(buf + hdr, frames[taken].iov_base, len);
		struct vnet_buf b[2];
		unsigned nb = 1;
		if (indirect) {
			b[0] = (struct vnet_buf){.addr = gpa, .len = (uint32_t)hdr};
			b[1] = (struct vnet_buf){.addr = gpa + hdr, .len = (uint32_t)len};
			nb = 2;
		} else {
			b[0] = (struct vnet_buf){.addr = gpa, .len = (uint32_t)(hdr + len)};
		}
		if (vnet_vq_driver_add(&r->drv, b, nb, 0, cookie_of(idx), indirect) < 0)
			break;
		r->nstack--;
		queued++;
		st->tx_packets++;
		st->tx_bytes += len;
	}
	st->tx_full += n - taken;
	if (queued)
		kick(r, st);
	return (int)taken;
}

int vnet_vhu_fe_rx_burst(struct vnet_vhu_fe *fe, unsigned qp, struct vnet_vhu_fe_pkt *pkts,
			 unsigned n)
{
	int ret = check_qp(fe, qp);
	if (ret < 0)
		return ret;
	struct vnet_vhu_fe_ring *r = &fe->rings[2 * qp];
	struct vnet_vhu_fe_stats *st = &fe->stats[qp];
	bool mrg = fe->features & VNET_BIT(VIRTIO_NET_F_MRG_RXBUF);

	/* The caller is done with the previous burst's frames: re-post them. */
	if (r->nstack) {
		for (unsigned i = 0; i < r->nstack; i++)
			if (post_rx(fe, r, r->stack[i]) < 0)
				return -EIO;
		r->nstack = 0;
		kick(r, st);
	}

	size_t hdr = fe->hdr_len;
	unsigned got = 0;
	while (got < n) {
		uint32_t len = 0;
		void *c = vnet_vq_driver_get_used(&r->drv, &len);
		if (!c)
			break;
		unsigned idx = idx_of(c);
		uint8_t *buf = buf_host(fe, r, idx);
		r->stack[r->nstack++] = (uint16_t)idx; /* held until the next call */
		if (r->rx_skip) {
			r->rx_skip--;
			st->rx_dropped++;
			continue;
		}
		if (len < hdr) {
			st->rx_dropped++;
			continue;
		}
		if (mrg) {
			uint16_t nbufs;
			memcpy(&nbufs, buf + offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers),
			       sizeof(nbufs));
			if (nbufs != 1) {
				/* Frames larger than one buffer are not reassembled. */
				r->rx_skip = nbufs > 1 ? nbufs - 1u : 0;
				st->rx_dropped++;
				continue;
			}
		}
		pkts[got].data = buf + hdr;
		pkts[got].len = (uint32_t)(len - hdr);
		st->rx_packets++;
		st->rx_bytes += len - hdr;
		got++;
	}
	if (got == 0 && r->drv.broken)
		return -EIO;
	return (int)got;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int vnet_vhu_fe_rx_wait(struct vnet_vhu_fe *fe, unsigned qp, unsigned timeout_ms)
{
	int ret = check_qp(fe, qp);
	if (ret < 0)
		return ret;
	struct vnet_vhu_fe_ring *r = &fe->rings[2 * qp];
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000u;
	for (;;) {
		if (r->drv.broken)
			return -EIO;
		if (vnet_vq_driver_has_used(&r->drv))
			return 1;
		uint64_t now = now_us();
		if (now >= deadline)
			return 0;
		if (r->call_fd < 0) {
			struct timespec ts = {.tv_nsec = 50000};
			nanosleep(&ts, NULL);
			continue;
		}
		bool pending = vnet_vq_driver_enable_cb(&r->drv);
		if (!pending) {
			struct pollfd p = {.fd = r->call_fd, .events = POLLIN};
			int ms = (int)((deadline - now + 999) / 1000);
			if (poll(&p, 1, ms) > 0) {
				eventfd_t v;
				(void)eventfd_read(r->call_fd, &v);
			}
		}
		vnet_vq_driver_disable_cb(&r->drv);
	}
}
