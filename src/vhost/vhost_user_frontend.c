/*
 * vhost_user_frontend.c — vhost-user front-end control plane: guest memory,
 * connection, negotiation, ring setup and orderly stop. The data path is in
 * vhost_user_frontend_io.c. See vnet/vhost_user_frontend.h.
 */
#include "vnet/vhost_user_frontend.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"

/* Shared with vhost_user_frontend_io.c (declared there too). */
int vnet_vhu_fe_rings_init(struct vnet_vhu_fe *fe);
void vnet_vhu_fe_rings_fini(struct vnet_vhu_fe *fe);

#define PAGE 4096u
#define REPLY_FLAGS (VHOST_USER_VERSION | VHOST_USER_REPLY)

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
	return VNET_BIT(VHOST_USER_PROTOCOL_F_MQ) | VNET_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	       VNET_BIT(VHOST_USER_PROTOCOL_F_NET_MTU) | VNET_BIT(VHOST_USER_PROTOCOL_F_CONFIG) |
	       VNET_BIT(VHOST_USER_PROTOCOL_F_STATUS);
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

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static bool has_proto(const struct vnet_vhu_fe *fe, unsigned bit)
{
	return fe->protocol & VNET_BIT(bit);
}

/* ---- messages ---- */

static int send_req(struct vnet_vhu_fe *fe, uint32_t req, const void *payload, uint32_t size,
		    const int *fds, unsigned nfds, bool need_reply)
{
	struct vnet_vhu_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.request = req;
	msg.flags = VHOST_USER_VERSION | (need_reply ? VHOST_USER_NEED_REPLY : 0);
	msg.size = size;
	if (size)
		memcpy(&msg.payload, payload, size);
	int r = vnet_vhu_send(fe->sock, &msg, fds, nfds);
	if (r == -EPIPE || r == -ECONNRESET)
		return fe_err(fe, -ECONNRESET, "back-end closed the connection (sending %s)",
			      vnet_vhu_request_name(req));
	if (r < 0)
		return fe_err(fe, r, "cannot send %s: %s", vnet_vhu_request_name(req),
			      strerror(-r));
	return 0;
}

/* Reads the reply to `req` and checks it strictly: flags exactly 0x5, the
 * request echoed, exactly `size` payload bytes, no fds. */
static int recv_reply(struct vnet_vhu_fe *fe, uint32_t req, struct vnet_vhu_msg *reply,
		      uint32_t size)
{
	const char *name = vnet_vhu_request_name(req);
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = vnet_vhu_recv(fe->sock, reply, fds, VHOST_USER_MAX_FDS, &nfds);
	if (r == -EAGAIN || r == -ETIMEDOUT)
		return fe_err(fe, -ETIMEDOUT, "no reply to %s within %u ms (back-end stuck?)", name,
			      fe->cfg.io_timeout_ms);
	if (r == -ECONNRESET || r == -EPROTO)
		return fe_err(fe, -ECONNRESET, "back-end closed the connection (waiting for the "
					       "reply to %s)", name);
	if (r < 0)
		return fe_err(fe, r == -EBADMSG || r == -EMSGSIZE ? -EPROTO : r,
			      "bad reply to %s: %s", name, strerror(-r));
	if (nfds) {
		vnet_vhu_close_fds(fds, nfds);
		return fe_err(fe, -EPROTO, "reply to %s carries %u fds", name, nfds);
	}
	if (reply->flags != REPLY_FLAGS)
		return fe_err(fe, -EPROTO, "reply to %s has flags 0x%x, expected 0x%x", name,
			      reply->flags, REPLY_FLAGS);
	if (reply->request != req)
		return fe_err(fe, -EPROTO, "reply to %s names request %u (%s)", name,
			      reply->request, vnet_vhu_request_name(reply->request));
	if (reply->size != size)
		return fe_err(fe, -EPROTO, "reply to %s has %u payload bytes, expected %u", name,
			      reply->size, size);
	return 0;
}

/* A request that changes state: with REPLY_ACK it asks for, and checks, the
 * back-end's status (0 = success). */
static int request(struct vnet_vhu_fe *fe, uint32_t req, const void *payload, uint32_t size,
		   const int *fds, unsigned nfds)
{
	bool ack = has_proto(fe, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int r = send_req(fe, req, payload, size, fds, nfds, ack);
	if (r < 0 || !ack)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(fe, req, &reply, sizeof(uint64_t));
	if (r < 0)
		return r;
	if (reply.payload.u64 != 0)
		return fe_err(fe, -EPROTO, "back-end rejected %s (status %llu)",
			      vnet_vhu_request_name(req), (unsigned long long)reply.payload.u64);
	return 0;
}

static int request_u64(struct vnet_vhu_fe *fe, uint32_t req, uint64_t val)
{
	return request(fe, req, &val, sizeof(val), NULL, 0);
}

static int request_state(struct vnet_vhu_fe *fe, uint32_t req, uint32_t index, uint32_t num)
{
	struct vnet_vhu_vring_state st = {.index = index, .num = num};
	return request(fe, req, &st, sizeof(st), NULL, 0);
}

/* GET_* without payload, answered with a u64. */
static int get_u64(struct vnet_vhu_fe *fe, uint32_t req, uint64_t *val)
{
	int r = send_req(fe, req, NULL, 0, NULL, 0, false);
	if (r < 0)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(fe, req, &reply, sizeof(uint64_t));
	if (r == 0)
		*val = reply.payload.u64;
	return r;
}

/* ---- connection ---- */

static int connect_client(struct vnet_vhu_fe *fe)
{
	uint64_t deadline = now_ms() + fe->cfg.connect_timeout_ms;
	unsigned delay = 10;
	for (;;) {
		int fd = vnet_vhu_connect(fe->cfg.path);
		if (fd >= 0)
			return fd;
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			return fe_err(fe, fd, "cannot connect to %s: %s", fe->cfg.path,
				      strerror(-fd));
		uint64_t now = now_ms();
		if (now >= deadline)
			return fe_err(fe, -ETIMEDOUT, "no back-end listening at %s after %u ms",
				      fe->cfg.path, fe->cfg.connect_timeout_ms);
		unsigned left = (unsigned)(deadline - now);
		sleep_ms(delay < left ? delay : left);
		delay = delay * 2 > 500 ? 500 : delay * 2;
	}
}

static int accept_server(struct vnet_vhu_fe *fe)
{
	char err[160];
	int lfd = vnet_vhu_listen(fe->cfg.path, 0660, err, sizeof(err));
	if (lfd < 0)
		return fe_err(fe, lfd, "%s", err);
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	uint64_t deadline = now_ms() + fe->cfg.connect_timeout_ms;
	int fd = -ETIMEDOUT;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fd = -errno;
			break;
		}
		if (n > 0) {
			fd = vnet_vhu_accept(lfd);
			break;
		}
	}
	close(lfd);
	unlink(fe->cfg.path);
	if (fd == -ETIMEDOUT)
		return fe_err(fe, fd, "no back-end connected to %s within %u ms", fe->cfg.path,
			      fe->cfg.connect_timeout_ms);
	if (fd < 0)
		return fe_err(fe, fd, "accept on %s: %s", fe->cfg.path, strerror(-fd));
	return fd;
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
	struct vnet_vhu_memory mt;
	int fds[VHOST_USER_MEM_TABLE_MAX];
	unsigned n = fe->cfg.mem_regions;
	uint64_t slice = fe->mem_size / n;
	memset(&mt, 0, sizeof(mt));
	mt.nregions = n;
	for (unsigned i = 0; i < n; i++) {
		mt.regions[i].guest_phys_addr = fe->gpa_base + i * slice;
		mt.regions[i].memory_size = slice;
		mt.regions[i].userspace_addr = (uint64_t)(uintptr_t)fe->mem + i * slice;
		mt.regions[i].mmap_offset = i * slice;
		fds[i] = fe->memfd;
	}
	uint32_t size = (uint32_t)(offsetof(struct vnet_vhu_memory, regions) +
				   n * sizeof(struct vnet_vhu_mem_region));
	return request(fe, VHOST_USER_SET_MEM_TABLE, &mt, size, fds, n);
}

/* ---- negotiation ---- */

static int negotiate_features(struct vnet_vhu_fe *fe)
{
	int r = send_req(fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, false);
	if (r < 0)
		return r;
	r = get_u64(fe, VHOST_USER_GET_FEATURES, &fe->offered_features);
	if (r < 0)
		return r;
	if (!(fe->offered_features & VNET_BIT(VIRTIO_F_VERSION_1)))
		return fe_err(fe, -EPROTO, "back-end does not offer VERSION_1 (features 0x%llx)",
			      (unsigned long long)fe->offered_features);

	if (fe->offered_features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		r = get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &fe->offered_protocol);
		if (r < 0)
			return r;
		uint64_t want = vnet_vhu_fe_supported_protocol_features();
		if (!fe->cfg.mtu)
			want &= ~VNET_BIT(VHOST_USER_PROTOCOL_F_NET_MTU);
		uint64_t ack = fe->offered_protocol & want;
		/* REPLY_ACK applies only once acked: this request is not acked. */
		r = send_req(fe, VHOST_USER_SET_PROTOCOL_FEATURES, &ack, sizeof(ack), NULL, 0,
			     false);
		if (r < 0)
			return r;
		fe->protocol = ack;
	}

	if (has_proto(fe, VHOST_USER_PROTOCOL_F_MQ)) {
		uint64_t qn = 0;
		r = get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &qn);
		if (r < 0)
			return r;
		fe->backend_queue_num = qn > 0xffff ? 0xffff : (unsigned)qn;
		if (fe->nqp > qn)
			return fe_err(fe, -EOPNOTSUPP,
				      "%u queue pairs requested, back-end supports %llu (GET_QUEUE_NUM)",
				      fe->nqp, (unsigned long long)qn);
	} else if (fe->nqp > 1) {
		return fe_err(fe, -EOPNOTSUPP,
			      "%u queue pairs requested, back-end does not support multiqueue "
			      "(no VHOST_USER_PROTOCOL_F_MQ)", fe->nqp);
	}

	/* PROTOCOL_FEATURES is acked in SET_FEATURES too (QEMU and DPDK do). */
	fe->features = fe->cfg.features & fe->offered_features;
	r = request_u64(fe, VHOST_USER_SET_FEATURES, fe->features);
	if (r < 0)
		return r;
	fe->hdr_len = vnet_net_hdr_len(fe->features);

	if (has_proto(fe, VHOST_USER_PROTOCOL_F_STATUS)) {
		fe->status = VNET_VIRTIO_STATUS_ACKNOWLEDGE | VNET_VIRTIO_STATUS_DRIVER |
			     VNET_VIRTIO_STATUS_FEATURES_OK;
		r = request_u64(fe, VHOST_USER_SET_STATUS, fe->status);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Reads MAC, status, max pairs and MTU (the first 12 bytes of the config). */
static int read_config(struct vnet_vhu_fe *fe)
{
	if (!has_proto(fe, VHOST_USER_PROTOCOL_F_CONFIG) ||
	    !(fe->features & (VNET_BIT(VIRTIO_NET_F_MAC) | VNET_BIT(VIRTIO_NET_F_MTU))))
		return 0;
	const uint32_t want = 12, msg_size = 12 + want;
	struct vnet_vhu_config c;
	memset(&c, 0, sizeof(c));
	c.offset = 0;
	c.size = want;
	int r = send_req(fe, VHOST_USER_GET_CONFIG, &c, msg_size, NULL, 0, false);
	if (r < 0)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(fe, VHOST_USER_GET_CONFIG, &reply, msg_size);
	if (r < 0)
		return r;
	if (reply.payload.config.size != want || reply.payload.config.offset != 0)
		return fe_err(fe, -EPROTO, "GET_CONFIG answered offset %u size %u, expected 0/%u",
			      reply.payload.config.offset, reply.payload.config.size, want);
	struct virtio_net_config nc;
	memset(&nc, 0, sizeof(nc));
	memcpy(&nc, reply.payload.config.region, want);
	if (fe->features & VNET_BIT(VIRTIO_NET_F_MAC)) {
		memcpy(fe->mac, nc.mac, sizeof(fe->mac));
		fe->have_mac = true;
	}
	if (fe->features & VNET_BIT(VIRTIO_NET_F_MTU))
		fe->backend_mtu = nc.mtu;
	return 0;
}

static int start_rings(struct vnet_vhu_fe *fe)
{
	uint16_t qs = fe->cfg.queue_size;
	for (unsigned i = 0; i < 2 * fe->nqp; i++) {
		struct vnet_vhu_fe_ring *ring = &fe->rings[i];
		uint64_t base = (uint64_t)(uintptr_t)fe->mem;
		struct vnet_vhu_vring_addr a = {
			.index = i,
			.desc_user_addr = base + (ring->drv.desc_gpa - fe->gpa_base),
			.avail_user_addr = base + (ring->drv.avail_gpa - fe->gpa_base),
			.used_user_addr = base + (ring->drv.used_gpa - fe->gpa_base),
		};
		int r = request_state(fe, VHOST_USER_SET_VRING_NUM, i, qs);
		if (r == 0)
			r = request(fe, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
		if (r == 0)
			r = request_state(fe, VHOST_USER_SET_VRING_BASE, i, 0);
		if (r < 0)
			return r;
		uint64_t call = i, kick = i;
		if (fe->cfg.polling) {
			call |= VHOST_USER_VRING_NOFD;
			kick |= VHOST_USER_VRING_NOFD;
			r = request(fe, VHOST_USER_SET_VRING_CALL, &call, sizeof(call), NULL, 0);
			if (r == 0)
				r = request(fe, VHOST_USER_SET_VRING_KICK, &kick, sizeof(kick),
					    NULL, 0);
		} else {
			r = request(fe, VHOST_USER_SET_VRING_CALL, &call, sizeof(call),
				    &ring->call_fd, 1);
			if (r == 0)
				r = request(fe, VHOST_USER_SET_VRING_KICK, &kick, sizeof(kick),
					    &ring->kick_fd, 1);
		}
		if (r < 0)
			return r;
		ring->started = true;
	}
	if (fe->features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		for (unsigned i = 0; i < 2 * fe->nqp; i++) {
			int r = request_state(fe, VHOST_USER_SET_VRING_ENABLE, i, 1);
			if (r < 0)
				return r;
		}
	}
	if (has_proto(fe, VHOST_USER_PROTOCOL_F_STATUS)) {
		fe->status |= VNET_VIRTIO_STATUS_DRIVER_OK;
		return request_u64(fe, VHOST_USER_SET_STATUS, fe->status);
	}
	return 0;
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
	struct vnet_vhu_fe *fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->sock = fe->memfd = -1;
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++)
		fe->rings[i].kick_fd = fe->rings[i].call_fd = -1;

	int r = check_config(fe, cfg);
	if (r < 0)
		goto fail;
	r = fe->cfg.server ? accept_server(fe) : connect_client(fe);
	if (r < 0)
		goto fail;
	fe->sock = r;
	fe->connected = true;
	r = vnet_vhu_set_timeout(fe->sock, fe->cfg.io_timeout_ms);
	if (r < 0) {
		fe_err(fe, r, "cannot set the socket timeout: %s", strerror(-r));
		goto fail;
	}
	if ((r = negotiate_features(fe)) < 0 || (r = read_config(fe)) < 0)
		goto fail;
	if (fe->cfg.mtu && (fe->features & VNET_BIT(VIRTIO_NET_F_MTU)) &&
	    has_proto(fe, VHOST_USER_PROTOCOL_F_NET_MTU)) {
		r = request_u64(fe, VHOST_USER_NET_SET_MTU, fe->cfg.mtu);
		if (r < 0)
			goto fail;
	}
	if ((r = setup_memory(fe)) < 0 || (r = create_eventfds(fe)) < 0)
		goto fail;
	r = vnet_vhu_fe_rings_init(fe);
	if (r < 0) {
		fe_err(fe, r, "cannot set up the rings: %s", strerror(-r));
		goto fail;
	}
	if ((r = send_mem_table(fe)) < 0 || (r = start_rings(fe)) < 0)
		goto fail;
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
	int first = 0;
	if (fe->connected) {
		bool alive = true;
		drain_tx(fe, 1000);
		if (fe->features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
			for (unsigned i = 0; alive && i < 2 * fe->nqp; i++) {
				if (!fe->rings[i].started)
					continue;
				int r = request_state(fe, VHOST_USER_SET_VRING_ENABLE, i, 0);
				if (r < 0) {
					first = r;
					alive = false;
				}
			}
		}
		for (unsigned i = 0; alive && i < 2 * fe->nqp; i++) {
			if (!fe->rings[i].started)
				continue;
			struct vnet_vhu_vring_state st = {.index = i, .num = 0};
			struct vnet_vhu_msg reply;
			int r = send_req(fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), NULL, 0,
					 false);
			if (r == 0)
				r = recv_reply(fe, VHOST_USER_GET_VRING_BASE, &reply, sizeof(st));
			if (r == 0 && reply.payload.state.index != i)
				r = fe_err(fe, -EPROTO, "GET_VRING_BASE for ring %u answered ring %u",
					   i, reply.payload.state.index);
			if (r < 0) {
				first = r;
				alive = false;
				break;
			}
			fe->rings[i].last_avail = (uint16_t)reply.payload.state.num;
		}
		if (alive && has_proto(fe, VHOST_USER_PROTOCOL_F_STATUS)) {
			fe->status = 0;
			int r = request_u64(fe, VHOST_USER_SET_STATUS, 0);
			if (r < 0)
				first = r;
		}
	}
	for (unsigned i = 0; i < 2 * VNET_VHU_FE_MAX_QUEUE_PAIRS; i++) {
		fe->rings[i].started = false;
		close_fd(&fe->rings[i].kick_fd);
		close_fd(&fe->rings[i].call_fd);
	}
	close_fd(&fe->sock);
	fe->connected = false;
	return first;
}

int vnet_vhu_fe_check(struct vnet_vhu_fe *fe)
{
	if (!fe->connected || fe->sock < 0)
		return -ENOTCONN;
	struct pollfd p = {.fd = fe->sock, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	char c;
	ssize_t n = recv(fe->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		fe->connected = false;
		vnet_warn("vhost-user front-end %s: back-end disconnected", fe->name);
		return -ECONNRESET;
	}
	if (n > 0)
		return fe_err(fe, -EPROTO, "back-end sent an unsolicited message");
	return 0;
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
	free(fe);
}
