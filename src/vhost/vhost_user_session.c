/*
 * vhost_user_session.c — the front-end's vhost-user conversation: connect or
 * accept, negotiate, memory table, ring start/stop, status, config, liveness.
 * Shared by the virtio-user driver (vhost_user_frontend.c) and vnet-vmm's
 * vhost-user network back-end. See vnet/vhost_user_session.h.
 *
 * Thread-safety: one thread at a time per session (stateless otherwise).
 */
#include "vnet/vhost_user_session.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"

#define REPLY_FLAGS (VHOST_USER_VERSION | VHOST_USER_REPLY)

uint64_t vnet_vhu_session_supported_protocol_features(void)
{
	return VNET_BIT(VHOST_USER_PROTOCOL_F_MQ) | VNET_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	       VNET_BIT(VHOST_USER_PROTOCOL_F_NET_MTU) | VNET_BIT(VHOST_USER_PROTOCOL_F_CONFIG) |
	       VNET_BIT(VHOST_USER_PROTOCOL_F_STATUS);
}

int vnet_vhu_session_err(const struct vnet_vhu_session *s, int code, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vnet_err("%s %s: %s", s->log_prefix, s->name, buf);
	return code;
}

/* The stream can no longer be trusted (hang-up, timeout, garbage): log it
 * (once, here) and refuse every later request. */
static int broken(struct vnet_vhu_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int broken(struct vnet_vhu_session *s, int code, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->connected = false;
	return vnet_vhu_session_err(s, code, "%s", buf);
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

/* ---- messages ---- */

static int send_req(struct vnet_vhu_session *s, uint32_t req, const void *payload, uint32_t size,
		    const int *fds, unsigned nfds, bool need_reply)
{
	if (!s->connected || s->sock < 0)
		return -ENOTCONN;
	struct vnet_vhu_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.request = req;
	msg.flags = VHOST_USER_VERSION | (need_reply ? VHOST_USER_NEED_REPLY : 0);
	msg.size = size;
	if (size)
		memcpy(&msg.payload, payload, size);
	int r = vnet_vhu_send(s->sock, &msg, fds, nfds);
	if (r == -EPIPE || r == -ECONNRESET)
		return broken(s, -ECONNRESET, "back-end closed the connection (sending %s)",
			      vnet_vhu_request_name(req));
	if (r < 0)
		return broken(s, r, "cannot send %s: %s", vnet_vhu_request_name(req), strerror(-r));
	return 0;
}

/* Reads the reply to `req` and checks it strictly: flags exactly 0x5, the
 * request echoed, exactly `size` payload bytes, no fds. */
static int recv_reply(struct vnet_vhu_session *s, uint32_t req, struct vnet_vhu_msg *reply,
		      uint32_t size)
{
	const char *name = vnet_vhu_request_name(req);
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = vnet_vhu_recv(s->sock, reply, fds, VHOST_USER_MAX_FDS, &nfds);
	if (r == -EAGAIN || r == -ETIMEDOUT)
		return broken(s, -ETIMEDOUT, "no reply to %s within %u ms (back-end stuck?)", name,
			      s->io_timeout_ms);
	if (r == -ECONNRESET || r == -EPROTO)
		return broken(s, -ECONNRESET, "back-end closed the connection (waiting for the "
					      "reply to %s)", name);
	if (r < 0)
		return broken(s, r == -EBADMSG || r == -EMSGSIZE ? -EPROTO : r,
			      "bad reply to %s: %s", name, strerror(-r));
	if (nfds) {
		vnet_vhu_close_fds(fds, nfds);
		return broken(s, -EPROTO, "reply to %s carries %u fds", name, nfds);
	}
	if (reply->flags != REPLY_FLAGS)
		return broken(s, -EPROTO, "reply to %s has flags 0x%x, expected 0x%x", name,
			      reply->flags, REPLY_FLAGS);
	if (reply->request != req)
		return broken(s, -EPROTO, "reply to %s names request %u (%s)", name, reply->request,
			      vnet_vhu_request_name(reply->request));
	if (reply->size != size)
		return broken(s, -EPROTO, "reply to %s has %u payload bytes, expected %u", name,
			      reply->size, size);
	return 0;
}

/* A request that changes state: with REPLY_ACK it asks for, and checks, the
 * back-end's status (0 = success). */
static int request(struct vnet_vhu_session *s, uint32_t req, const void *payload, uint32_t size,
		   const int *fds, unsigned nfds)
{
	bool ack = vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int r = send_req(s, req, payload, size, fds, nfds, ack);
	if (r < 0 || !ack)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(s, req, &reply, sizeof(uint64_t));
	if (r < 0)
		return r;
	if (reply.payload.u64 != 0)
		return vnet_vhu_session_err(s, -EPROTO, "back-end rejected %s (status %llu)",
					    vnet_vhu_request_name(req),
					    (unsigned long long)reply.payload.u64);
	return 0;
}

static int request_u64(struct vnet_vhu_session *s, uint32_t req, uint64_t val)
{
	return request(s, req, &val, sizeof(val), NULL, 0);
}

static int request_state(struct vnet_vhu_session *s, uint32_t req, uint32_t index, uint32_t num)
{
	struct vnet_vhu_vring_state st = {.index = index, .num = num};
	return request(s, req, &st, sizeof(st), NULL, 0);
}

/* GET_* without payload, answered with a u64. */
static int get_u64(struct vnet_vhu_session *s, uint32_t req, uint64_t *val)
{
	int r = send_req(s, req, NULL, 0, NULL, 0, false);
	if (r < 0)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(s, req, &reply, sizeof(uint64_t));
	if (r == 0)
		*val = reply.payload.u64;
	return r;
}

/* ---- connection ---- */

static int connect_client(struct vnet_vhu_session *s, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	unsigned delay = 10;
	for (;;) {
		int fd = vnet_vhu_connect(s->path);
		if (fd >= 0)
			return fd;
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			return vnet_vhu_session_err(s, fd, "cannot connect to %s: %s", s->path,
						    strerror(-fd));
		uint64_t now = now_ms();
		if (now >= deadline)
			return vnet_vhu_session_err(s, -ETIMEDOUT,
						    "no back-end listening at %s after %u ms "
						    "(connect: %s)",
						    s->path, timeout_ms, strerror(-fd));
		unsigned left = (unsigned)(deadline - now);
		sleep_ms(delay < left ? delay : left);
		delay = delay * 2 > 500 ? 500 : delay * 2;
	}
}

static int accept_server(struct vnet_vhu_session *s, unsigned timeout_ms)
{
	char err[160];
	int lfd = vnet_vhu_listen(s->path, 0660, err, sizeof(err));
	if (lfd < 0)
		return vnet_vhu_session_err(s, lfd, "%s", err);
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	uint64_t deadline = now_ms() + timeout_ms;
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
	unlink(s->path);
	if (fd == -ETIMEDOUT)
		return vnet_vhu_session_err(s, fd, "no back-end connected to %s within %u ms",
					    s->path, timeout_ms);
	if (fd < 0)
		return vnet_vhu_session_err(s, fd, "accept on %s: %s", s->path, strerror(-fd));
	return fd;
}

static int negotiate(struct vnet_vhu_session *s, uint64_t want_protocol)
{
	int r = send_req(s, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, false);
	if (r < 0)
		return r;
	r = get_u64(s, VHOST_USER_GET_FEATURES, &s->offered_features);
	if (r < 0)
		return r;
	if (!(s->offered_features & VNET_BIT(VIRTIO_F_VERSION_1)))
		return vnet_vhu_session_err(s, -EPROTO,
					    "back-end does not offer VERSION_1 (features 0x%llx)",
					    (unsigned long long)s->offered_features);

	if (s->offered_features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		r = get_u64(s, VHOST_USER_GET_PROTOCOL_FEATURES, &s->offered_protocol);
		if (r < 0)
			return r;
		uint64_t ack = s->offered_protocol & want_protocol;
		/* REPLY_ACK applies only once acked: this request is not acked. */
		r = send_req(s, VHOST_USER_SET_PROTOCOL_FEATURES, &ack, sizeof(ack), NULL, 0,
			     false);
		if (r < 0)
			return r;
		s->protocol = ack;
	}
	if (vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_MQ))
		return get_u64(s, VHOST_USER_GET_QUEUE_NUM, &s->queue_num);
	return 0;
}

void vnet_vhu_session_init(struct vnet_vhu_session *s)
{
	memset(s, 0, sizeof(*s));
	s->sock = -1;
	snprintf(s->name, sizeof(s->name), "fe");
	snprintf(s->log_prefix, sizeof(s->log_prefix), "vhost-user front-end");
}

int vnet_vhu_session_connect(struct vnet_vhu_session *s, const struct vnet_vhu_session_config *cfg)
{
	vnet_vhu_session_init(s);
	if (cfg->name)
		snprintf(s->name, sizeof(s->name), "%s", cfg->name);
	if (cfg->log_prefix)
		snprintf(s->log_prefix, sizeof(s->log_prefix), "%s", cfg->log_prefix);
	if (!cfg->path || !*cfg->path)
		return vnet_vhu_session_err(s, -EINVAL, "no socket path");
	if (strlen(cfg->path) >= sizeof(s->path))
		return vnet_vhu_session_err(s, -ENAMETOOLONG, "socket path %s is longer than %zu bytes",
					    cfg->path, sizeof(s->path) - 1);
	snprintf(s->path, sizeof(s->path), "%s", cfg->path);
	uint64_t supported = vnet_vhu_session_supported_protocol_features();
	uint64_t want = cfg->protocol_features ? cfg->protocol_features : supported;
	if (want & ~supported)
		return vnet_vhu_session_err(s, -EINVAL, "protocol features 0x%llx not implemented",
					    (unsigned long long)(want & ~supported));
	s->io_timeout_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms : 2000;
	unsigned connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;

	int r = cfg->server ? accept_server(s, connect_ms) : connect_client(s, connect_ms);
	if (r < 0)
		return r;
	s->sock = r;
	s->connected = true;
	r = vnet_vhu_set_timeout(s->sock, s->io_timeout_ms);
	if (r < 0)
		vnet_vhu_session_err(s, r, "cannot set the socket timeout: %s", strerror(-r));
	else
		r = negotiate(s, want);
	if (r < 0)
		vnet_vhu_session_close(s);
	return r;
}

void vnet_vhu_session_close(struct vnet_vhu_session *s)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	s->connected = false;
}

/* ---- configuration ---- */

int vnet_vhu_session_set_features(struct vnet_vhu_session *s, uint64_t features)
{
	uint64_t f = features & s->offered_features;
	f |= s->offered_features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	int r = request_u64(s, VHOST_USER_SET_FEATURES, f);
	if (r == 0)
		s->features = f;
	return r;
}

int vnet_vhu_session_set_status(struct vnet_vhu_session *s, uint8_t status)
{
	if (!vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_STATUS))
		return 0;
	s->status = status;
	return request_u64(s, VHOST_USER_SET_STATUS, status);
}

int vnet_vhu_session_set_mtu(struct vnet_vhu_session *s, uint16_t mtu)
{
	if (!vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_NET_MTU))
		return 0;
	return request_u64(s, VHOST_USER_NET_SET_MTU, mtu);
}

int vnet_vhu_session_get_config(struct vnet_vhu_session *s, uint32_t offset, void *buf,
				uint32_t len)
{
	if (!vnet_vhu_session_has_protocol(s, VHOST_USER_PROTOCOL_F_CONFIG))
		return -EOPNOTSUPP;
	struct vnet_vhu_config c;
	if (len == 0 || len > sizeof(c.region))
		return vnet_vhu_session_err(s, -EINVAL, "GET_CONFIG of %u bytes (1..%zu)", len,
					    sizeof(c.region));
	const uint32_t msg_size = (uint32_t)offsetof(struct vnet_vhu_config, region) + len;
	memset(&c, 0, sizeof(c));
	c.offset = offset;
	c.size = len;
	int r = send_req(s, VHOST_USER_GET_CONFIG, &c, msg_size, NULL, 0, false);
	if (r < 0)
		return r;
	struct vnet_vhu_msg reply;
	r = recv_reply(s, VHOST_USER_GET_CONFIG, &reply, msg_size);
	if (r < 0)
		return r;
	if (reply.payload.config.size != len || reply.payload.config.offset != offset)
		return vnet_vhu_session_err(s, -EPROTO,
					    "GET_CONFIG answered offset %u size %u, expected %u/%u",
					    reply.payload.config.offset, reply.payload.config.size,
					    offset, len);
	memcpy(buf, reply.payload.config.region, len);
	return 0;
}

int vnet_vhu_session_set_mem_table(struct vnet_vhu_session *s,
				   const struct vnet_vhu_session_region *regions, unsigned n)
{
	if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX)
		return vnet_vhu_session_err(s, -EINVAL, "%u memory regions (1..%u)", n,
					    VHOST_USER_MEM_TABLE_MAX);
	struct vnet_vhu_memory mt;
	int fds[VHOST_USER_MEM_TABLE_MAX];
	memset(&mt, 0, sizeof(mt));
	mt.nregions = n;
	for (unsigned i = 0; i < n; i++) {
		mt.regions[i].guest_phys_addr = regions[i].gpa;
		mt.regions[i].memory_size = regions[i].size;
		mt.regions[i].userspace_addr = regions[i].uaddr;
		mt.regions[i].mmap_offset = regions[i].fd_offset;
		fds[i] = regions[i].fd;
	}
	uint32_t size = (uint32_t)(offsetof(struct vnet_vhu_memory, regions) +
				   n * sizeof(struct vnet_vhu_mem_region));
	return request(s, VHOST_USER_SET_MEM_TABLE, &mt, size, fds, n);
}

/* ---- rings ---- */

static int set_vring_fd(struct vnet_vhu_session *s, uint32_t req, unsigned index, int fd)
{
	if (index > VHOST_USER_VRING_IDX_MASK)
		return vnet_vhu_session_err(s, -EINVAL, "ring %u: at most %u rings", index,
					    VHOST_USER_VRING_IDX_MASK + 1);
	uint64_t v = index;
	if (fd < 0) {
		v |= VHOST_USER_VRING_NOFD;
		return request(s, req, &v, sizeof(v), NULL, 0);
	}
	return request(s, req, &v, sizeof(v), &fd, 1);
}

int vnet_vhu_session_start_ring(struct vnet_vhu_session *s, const struct vnet_vhu_session_ring *r,
				bool enable)
{
	if (r->index > VHOST_USER_VRING_IDX_MASK)
		return vnet_vhu_session_err(s, -EINVAL, "ring %u: at most %u rings", r->index,
					    VHOST_USER_VRING_IDX_MASK + 1);
	struct vnet_vhu_vring_addr a = {
		.index = r->index,
		.desc_user_addr = r->desc,
		.avail_user_addr = r->avail,
		.used_user_addr = r->used,
	};
	int e = request_state(s, VHOST_USER_SET_VRING_NUM, r->index, r->num);
	if (e == 0)
		e = request(s, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (e == 0)
		e = request_state(s, VHOST_USER_SET_VRING_BASE, r->index, r->base);
	if (e == 0)
		e = set_vring_fd(s, VHOST_USER_SET_VRING_CALL, r->index, r->call_fd);
	if (e == 0)
		e = set_vring_fd(s, VHOST_USER_SET_VRING_KICK, r->index, r->kick_fd);
	if (e == 0 && enable)
		e = vnet_vhu_session_enable_ring(s, r->index, true);
	return e;
}

int vnet_vhu_session_set_vring_err(struct vnet_vhu_session *s, unsigned index, int fd)
{
	return set_vring_fd(s, VHOST_USER_SET_VRING_ERR, index, fd);
}

int vnet_vhu_session_enable_ring(struct vnet_vhu_session *s, unsigned index, bool enable)
{
	if (!(s->features & VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
		return 0;
	return request_state(s, VHOST_USER_SET_VRING_ENABLE, index, enable ? 1 : 0);
}

int vnet_vhu_session_stop_ring(struct vnet_vhu_session *s, unsigned index, uint16_t *last_avail)
{
	struct vnet_vhu_vring_state st = {.index = index, .num = 0};
	struct vnet_vhu_msg reply;
	int r = send_req(s, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), NULL, 0, false);
	if (r == 0)
		r = recv_reply(s, VHOST_USER_GET_VRING_BASE, &reply, sizeof(st));
	if (r < 0)
		return r;
	if (reply.payload.state.index != index)
		return broken(s, -EPROTO, "GET_VRING_BASE for ring %u answered ring %u", index,
			      reply.payload.state.index);
	if (last_avail)
		*last_avail = (uint16_t)reply.payload.state.num;
	return 0;
}

/* ---- liveness ---- */

int vnet_vhu_session_check(struct vnet_vhu_session *s)
{
	if (!s->connected || s->sock < 0)
		return -ENOTCONN;
	struct pollfd p = {.fd = s->sock, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	char c;
	ssize_t n = recv(s->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		s->connected = false;
		vnet_warn("%s %s: back-end disconnected", s->log_prefix, s->name);
		return -ECONNRESET;
	}
	if (n > 0)
		return vnet_vhu_session_err(s, -EPROTO, "back-end sent an unsolicited message");
	return 0;
}
