/*
 * vhost_user_frontend.c — vhost-user front-end control plane: guest memory,
 * ring layout and orderly stop, on top of the shared protocol session
 * (vnet/vhost_user_session.h: connection, negotiation, memory table, ring
 * start/stop). The data path is in vhost_user_frontend_io.c. See
 * vnet/vhost_user_frontend.h; thread-safety as documented there.
 */
#include "vnet/vhost_user_frontend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/vhost_user_session.h"

/* Shared with vhost_user_frontend_io.c (declared there too). */
int vnet_vhu_fe_rings_init(struct vnet_vhu_fe *fe);
void vnet_vhu_fe_rings_fini(struct vnet_vhu_fe *fe);

#define PAGE 4096u

/*
 * The public struct vnet_vhu_fe keeps its fields (sock, connected, features,
 * protocol, ...: callers read them, tests close fe->sock to simulate a
 * crash); the session that owns the conversation lives right behind it, and
 * the public copies are refreshed from it (fe_sync).
 */
struct fe_impl {
	struct vnet_vhu_fe fe; /* first: a struct vnet_vhu_fe * is a struct fe_impl * */
	struct vnet_vhu_session session;
};

static struct vnet_vhu_session *fe_session(struct vnet_vhu_fe *fe)
{
	return &((struct fe_impl *)fe)->session;
}

static void fe_sync(struct vnet_vhu_fe *fe)
{
	const struct vnet_vhu_session *s = fe_session(fe);
	fe->sock = s->sock;
	fe->connected = s->connected;
	fe->offered_features = s->offered_features;
	fe->features = s->features;
	fe->offered_protocol = s->offered_protocol;
	fe->protocol = s->protocol;
	fe->backend_queue_num = s->queue_num > 0xffff ? 0xffff : (unsigned)s->queue_num;
	fe->status = s->status;
}

/* Virtio feature bits this driver knows how to run with. */
static const uint64_t implemented_features =
	VNET_BIT(VIRTIO_F_VERSION_1) | VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
	VNET_BIT(VIRTIO_F_RING_EVENT_IDX) | VNET_BIT(VIRTIO_F_ANY_LAYOUT) |
	VNET_BIT(VIRTIO_NET_F_MRG_RXBUF) | VNET_BIT(VIRTIO_NET_F_MQ) | VNET_BIT(VIRTIO_NET_F_MTU) |
	VNET_BIT(VIRTIO_NET_F_MAC) | VNET_BIT(VIRTIO_NET_F_STATUS) |
	VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES);

uint64_t vnet_vhu_fe_default_features(void)
{
	return VNET_BIT(VIRTIO_F_VERSION_1) | VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
	       VNET_BIT(VIRTIO_F_RING_EVENT_IDX) | VNET_BIT(VIRTIO_NET_F_MQ) |
	       VNET_BIT(VIRTIO_NET_F_MTU) | VNET_BIT(VIRTIO_NET_F_MAC) |
	       VNET_BIT(VIRTIO_NET_F_STATUS) | VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

uint64_t vnet_vhu_fe_supported_protocol_features(void)
{
	return vnet_vhu_session_supported_protocol_features();
}

static int fe_err(struct vnet_vhu_fe *fe, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fe_err(struct vnet_vhu_fe *fe, int code, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vnet_err("vhost-user front-end %s: %s", fe->name, buf);
	return code;
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

/* ---- guest memory ---- */

static int setup_memory(struct vnet_vhu_fe *fe)
{
	uint16_t qs = fe->cfg.queue_size;
	unsigned nrings = 2 * fe->nqp;
	size_t off = 0;
	for (unsigned r = 0; r < nrings; r++) {
		fe->rings[r].ring_off = off;
		off += align_up(vnet_vq_driver_ring_bytes(qs), PAGE);
	}
	for (unsigned r = 1; r < nrings; r += 2) {
		fe->rings[r].ind_off = off;
		off += align_up((size_t)qs * 2 * sizeof(struct vring_desc), PAGE);
	}
	size_t buf_off = off;
	off += align_up((size_t)nrings * qs * fe->buf_size, PAGE);
	fe->mem_size = align_up(off, (size_t)PAGE * fe->cfg.mem_regions);

	fe->memfd = memfd_create("vnet-vhu-fe", MFD_CLOEXEC);
	if (fe->memfd < 0)
		return fe_err(fe, -errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(fe->memfd, (off_t)fe->mem_size) < 0)
		return fe_err(fe, -errno, "ftruncate memfd to %zu bytes: %s", fe->mem_size,
			      strerror(errno));
	void *m = mmap(NULL, fe->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, fe->memfd, 0);
	if (m == MAP_FAILED)
		return fe_err(fe, -errno, "mmap %zu bytes of guest memory: %s", fe->mem_size,
			      strerror(errno));
	fe->mem = m;
	for (unsigned r = 0; r < nrings; r++) {
		size_t o = buf_off + (size_t)r * qs * fe->buf_size;
		fe->rings[r].bufs = fe->mem + o;
		fe->rings[r].bufs_gpa = fe->gpa_base + o;
	}
	return 0;
}

static int send_mem_table(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session_region regions[VHOST_USER_MEM_TABLE_MAX];
	unsigned n = fe->cfg.mem_regions;
	uint64_t slice = fe->mem_size / n;
	for (unsigned i = 0; i < n; i++)
		regions[i] = (struct vnet_vhu_session_region){
			.gpa = fe->gpa_base + i * slice,
			.size = slice,
			.uaddr = (uint64_t)(uintptr_t)fe->mem + i * slice,
			.fd = fe->memfd,
			.fd_offset = i * slice,
		};
	return vnet_vhu_session_set_mem_table(fe_session(fe), regions, n);
}

/* ---- negotiation ---- */

static int negotiate_features(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session *s = fe_session(fe);
	if (vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_MQ)) {
		if (fe->nqp > s->queue_num)
			return fe_err(fe, -EOPNOTSUPP,
				      "%u queue pairs requested, back-end supports %llu (GET_QUEUE_NUM)",
				      fe->nqp, (unsigned long long)s->queue_num);
	} else if (fe->nqp > 1) {
		return fe_err(fe, -EOPNOTSUPP,
			      "%u queue pairs requested, back-end does not support multiqueue "
			      "(no VHOST_USER_PROTOCOL_F_MQ)", fe->nqp);
	}
	int r = vnet_vhu_session_set_features(s, fe->cfg.features);
	if (r < 0)
		return r;
	fe->hdr_len = vnet_net_hdr_len(s->features);
	return vnet_vhu_session_set_status(s, VNET_VIRTIO_STATUS_ACKNOWLEDGE |
						      VNET_VIRTIO_STATUS_DRIVER |
						      VNET_VIRTIO_STATUS_FEATURES_OK);
}

/* Reads MAC, status, max pairs and MTU (the first 12 bytes of the config). */
static int read_config(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session *s = fe_session(fe);
	if (!vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_CONFIG) ||
	    !(s->features & (VNET_BIT(VIRTIO_NET_F_MAC) | VNET_BIT(VIRTIO_NET_F_MTU))))
		return 0;
	struct virtio_net_config nc;
	memset(&nc, 0, sizeof(nc));
	int r = vnet_vhu_session_get_config(s, 0, &nc, 12);
	if (r < 0)
		return r;
	if (s->features & VNET_BIT(VIRTIO_NET_F_MAC)) {
		memcpy(fe->mac, nc.mac, sizeof(fe->mac));
		fe->have_mac = true;
	}
	if (s->features & VNET_BIT(VIRTIO_NET_F_MTU))
		fe->backend_mtu = nc.mtu;
	return 0;
}

static int start_rings(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session *s = fe_session(fe);
	uint64_t base = (uint64_t)(uintptr_t)fe->mem;
	for (unsigned i = 0; i < 2 * fe->nqp; i++) {
		struct vnet_vhu_fe_ring *ring = &fe->rings[i];
		struct vnet_vhu_session_ring sr = {
			.index = i,
			.num = fe->cfg.queue_size,
			.desc = base + (ring->drv.desc_gpa - fe->gpa_base),
			.avail = base + (ring->drv.avail_gpa - fe->gpa_base),
			.used = base + (ring->drv.used_gpa - fe->gpa_base),
			.base = 0,
			.kick_fd = ring->kick_fd, /* -1 in polling mode: NOFD */
			.call_fd = ring->call_fd,
		};
		int r = vnet_vhu_session_start_ring(s, &sr, false);
		if (r < 0)
			return r;
		ring->started = true;
	}
	/* Enabled only once every ring is set up, as QEMU and Cloud Hypervisor do. */
	for (unsigned i = 0; i < 2 * fe->nqp; i++) {
		int r = vnet_vhu_session_enable_ring(s, i, true);
		if (r < 0)
			return r;
	}
	return vnet_vhu_session_set_status(s, s->status | VNET_VIRTIO_STATUS_DRIVER_OK);
}

static int check_config(struct vnet_vhu_fe *fe, const struct vnet_vhu_fe_config *cfg)
{
	fe->cfg = *cfg;
	snprintf(fe->name, sizeof(fe->name), "%s", cfg->name ? cfg->name : "fe");
	fe->cfg.name = fe->name;
	if (!cfg->path || !*cfg->path)
		return fe_err(fe, -EINVAL, "no socket path");
	if (!fe->cfg.connect_timeout_ms)
		fe->cfg.connect_timeout_ms = 5000;
	if (!fe->cfg.io_timeout_ms)
		fe->cfg.io_timeout_ms = 2000;
	if (!fe->cfg.queue_pairs)
		fe->cfg.queue_pairs = 1;
	if (!fe->cfg.queue_size)
		fe->cfg.queue_size = VNET_VHU_FE_DEFAULT_QUEUE_SIZE;
	if (!fe->cfg.features)
		fe->cfg.features = vnet_vhu_fe_default_features();
	if (!fe->cfg.mem_regions)
		fe->cfg.mem_regions = 1;
	if (cfg->gpa_base == VNET_VHU_FE_GPA_ZERO)
		fe->gpa_base = 0;
	else
		fe->gpa_base = cfg->gpa_base ? cfg->gpa_base : VNET_VHU_FE_DEFAULT_GPA_BASE;
	fe->nqp = fe->cfg.queue_pairs;
	if (fe->nqp > VNET_VHU_FE_MAX_QUEUE_PAIRS)
		return fe_err(fe, -EINVAL, "%u queue pairs, at most %u", fe->nqp,
			      VNET_VHU_FE_MAX_QUEUE_PAIRS);
	if (!vring_size_valid(fe->cfg.queue_size))
		return fe_err(fe, -EINVAL, "queue size %u is not a power of two in 1..32768",
			      fe->cfg.queue_size);
	if (fe->cfg.mem_regions > VHOST_USER_MEM_TABLE_MAX)
		return fe_err(fe, -EINVAL, "%u memory regions, at most %u", fe->cfg.mem_regions,
			      VHOST_USER_MEM_TABLE_MAX);
	if (fe->gpa_base % PAGE)
		return fe_err(fe, -EINVAL, "GPA base 0x%llx is not page-aligned",
			      (unsigned long long)fe->gpa_base);
	if (!(fe->cfg.features & VNET_BIT(VIRTIO_F_VERSION_1)))
		return fe_err(fe, -EINVAL, "VERSION_1 must be requested (legacy is not supported)");
	uint64_t extra = fe->cfg.features & ~implemented_features;
	if (extra) {
		unsigned bit = (unsigned)__builtin_ctzll(extra);
		const char *n = vnet_net_feature_name(bit);
		return fe_err(fe, -EINVAL, "feature %s (bit %u) is not supported by the front-end",
			      n ? n : "?", bit);
	}
	/* VERSION_1 is required, so the header is the 12-byte form. */
	size_t hdr = sizeof(struct virtio_net_hdr_mrg_rxbuf);
	unsigned mtu = fe->cfg.mtu > 1500 ? fe->cfg.mtu : 1500;
	fe->buf_size = fe->cfg.buf_size ? fe->cfg.buf_size
					: (uint32_t)align_up(hdr + mtu + 18, 64);
	if (fe->buf_size < hdr + 60 || fe->buf_size > (1u << 20))
		return fe_err(fe, -EINVAL, "buffer size %u outside %zu..%u", fe->buf_size,
			      hdr + 60, 1u << 20);
	return 0;
}

static int create_eventfds(struct vnet_vhu_fe *fe)
{
	if (fe->cfg.polling)
		return 0;
	for (unsigned i = 0; i < 2 * fe->nqp; i++) {
		fe->rings[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fe->rings[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fe->rings[i].kick_fd < 0 || fe->rings[i].call_fd < 0)
			return fe_err(fe, -errno, "eventfd: %s", strerror(errno));
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int vnet_vhu_fe_open(struct vnet_vhu_fe **out, const struct vnet_vhu_fe_config *cfg)
{
	*out = NULL;
	struct fe_impl *impl = calloc(1, sizeof(*impl));
	if (!impl)
		return -ENOMEM;
	struct vnet_vhu_fe *fe = &impl->fe;
	struct vnet_vhu_session *s = &impl->session;
	vnet_vhu_session_init(s);
	fe->sock = fe->memfd = -1;
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++)
		fe->rings[i].kick_fd = fe->rings[i].call_fd = -1;

	int r = check_config(fe, cfg);
	if (r < 0)
		goto fail;
	uint64_t protocol = vnet_vhu_fe_supported_protocol_features();
	if (!fe->cfg.mtu)
		protocol &= ~VNET_BIT(VHOST_USER_PROTOCOL_F_NET_MTU);
	struct vnet_vhu_session_config sc = {
		.name = fe->name,
		.log_prefix = "vhost-user front-end",
		.path = fe->cfg.path,
		.server = fe->cfg.server,
		.connect_timeout_ms = fe->cfg.connect_timeout_ms,
		.io_timeout_ms = fe->cfg.io_timeout_ms,
		.protocol_features = protocol,
	};
	r = vnet_vhu_session_connect(s, &sc);
	fe_sync(fe);
	if (r < 0)
		goto fail;
	if ((r = negotiate_features(fe)) < 0 || (r = read_config(fe)) < 0)
		goto fail;
	if (fe->cfg.mtu && (s->features & VNET_BIT(VIRTIO_NET_F_MTU))) {
		r = vnet_vhu_session_set_mtu(s, fe->cfg.mtu);
		if (r < 0)
			goto fail;
	}
	fe_sync(fe); /* the data path reads fe->features */
	if ((r = setup_memory(fe)) < 0 || (r = create_eventfds(fe)) < 0)
		goto fail;
	r = vnet_vhu_fe_rings_init(fe);
	if (r < 0) {
		fe_err(fe, r, "cannot set up the rings: %s", strerror(-r));
		goto fail;
	}
	if ((r = send_mem_table(fe)) < 0 || (r = start_rings(fe)) < 0)
		goto fail;
	fe_sync(fe);
	vnet_info("vhost-user front-end %s: running, %u queue pair(s) of %u, features 0x%llx, "
		  "protocol 0x%llx%s",
		  fe->name, fe->nqp, fe->cfg.queue_size, (unsigned long long)fe->features,
		  (unsigned long long)fe->protocol, fe->cfg.polling ? ", polling" : "");
	*out = fe;
	return 0;
fail:
	/* Don't talk to a back-end that failed us; just drop the connection. */
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++)
		fe->rings[i].started = false;
	fe_sync(fe);
	fe->connected = false;
	vnet_vhu_fe_close(fe);
	return r;
}

/*
 * Waits (at most `ms`) until the back-end has used every TX chain, so frames
 * queued just before an orderly stop are delivered rather than lost when
 * the rings are disabled.
 */
static void drain_tx(struct vnet_vhu_fe *fe, unsigned ms)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned qp = 0; qp < fe->nqp; qp++) {
		for (;;) {
			int n = vnet_vhu_fe_tx_reclaim(fe, qp);
			if (n < 0 || (unsigned)n >= fe->cfg.queue_size)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
				return;
			struct timespec ts = {0, 100 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

int vnet_vhu_fe_stop(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session *s = fe_session(fe);
	if (fe->sock != s->sock) {
		/* The owner closed fe->sock itself (a simulated crash): the fd is
		 * no longer ours to use or to close. */
		s->sock = -1;
		s->connected = false;
	}
	int first = 0;
	if (fe->connected && s->connected) {
		bool alive = true;
		drain_tx(fe, 1000);
		for (unsigned i = 0; alive && i < 2 * fe->nqp; i++) {
			if (!fe->rings[i].started)
				continue;
			int r = vnet_vhu_session_enable_ring(s, i, false);
			if (r < 0) {
				first = r;
				alive = false;
			}
		}
		for (unsigned i = 0; alive && i < 2 * fe->nqp; i++) {
			if (!fe->rings[i].started)
				continue;
			int r = vnet_vhu_session_stop_ring(s, i, &fe->rings[i].last_avail);
			if (r < 0) {
				first = r;
				alive = false;
			}
		}
		if (alive) {
			int r = vnet_vhu_session_set_status(s, 0);
			if (r < 0)
				first = r;
		}
	}
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++) {
		fe->rings[i].started = false;
		close_fd(&fe->rings[i].kick_fd);
		close_fd(&fe->rings[i].call_fd);
	}
	vnet_vhu_session_close(s);
	fe_sync(fe);
	return first;
}

int vnet_vhu_fe_check(struct vnet_vhu_fe *fe)
{
	struct vnet_vhu_session *s = fe_session(fe);
	if (!fe->connected || fe->sock < 0 || fe->sock != s->sock)
		return -ENOTCONN;
	int r = vnet_vhu_session_check(s);
	fe->connected = s->connected;
	return r;
}

int vnet_vhu_fe_call_fd(const struct vnet_vhu_fe *fe, unsigned ring)
{
	return ring < 2 * fe->nqp ? fe->rings[ring].call_fd : -1;
}

void vnet_vhu_fe_close(struct vnet_vhu_fe *fe)
{
	if (!fe)
		return;
	vnet_vhu_fe_stop(fe);
	vnet_vhu_fe_rings_fini(fe);
	if (fe->mem)
		munmap(fe->mem, fe->mem_size);
	close_fd(&fe->memfd);
	free((struct fe_impl *)fe);
}
