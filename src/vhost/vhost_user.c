/* vhost_user.c — vhost-user message rules and I/O; see vnet/vhost_user.h. */
#include "vnet/vhost_user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RULE(req, min, max, fd, rep) \
	[req] = {.min_size = (min), .max_size = (max), .fds = (fd), .reply = (rep), .known = true}

#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vnet_vhu_vring_state)
#define MEM_HDR offsetof(struct vnet_vhu_memory, regions)

static const struct vnet_vhu_rule rules[VHOST_USER_MAX_REQUEST] = {
	RULE(VHOST_USER_GET_FEATURES, 0, U64, VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_FEATURES, U64, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_OWNER, 0, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_RESET_OWNER, 0, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_MEM_TABLE, MEM_HDR, sizeof(struct vnet_vhu_memory), VHU_FDS_MEM_TABLE,
	     false),
	RULE(VHOST_USER_SET_LOG_BASE, sizeof(struct vnet_vhu_log), sizeof(struct vnet_vhu_log),
	     VHU_FDS_ONE, true),
	RULE(VHOST_USER_SET_LOG_FD, 0, U64, VHU_FDS_ONE, false),
	RULE(VHOST_USER_SET_VRING_NUM, STATE, STATE, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_VRING_ADDR, sizeof(struct vnet_vhu_vring_addr),
	     sizeof(struct vnet_vhu_vring_addr), VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_VRING_BASE, STATE, STATE, VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_VRING_BASE, STATE, STATE, VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_VRING_KICK, U64, U64, VHU_FDS_VRING, false),
	RULE(VHOST_USER_SET_VRING_CALL, U64, U64, VHU_FDS_VRING, false),
	RULE(VHOST_USER_SET_VRING_ERR, U64, U64, VHU_FDS_VRING, false),
	RULE(VHOST_USER_GET_PROTOCOL_FEATURES, 0, U64, VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_PROTOCOL_FEATURES, U64, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_QUEUE_NUM, 0, U64, VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_VRING_ENABLE, STATE, STATE, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SEND_RARP, U64, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_NET_SET_MTU, U64, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_BACKEND_REQ_FD, 0, U64, VHU_FDS_ONE, false),
	RULE(VHOST_USER_IOTLB_MSG, 0, VHOST_USER_PAYLOAD_MAX, VHU_FDS_NONE, false),
	RULE(VHOST_USER_SET_VRING_ENDIAN, STATE, STATE, VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_CONFIG, 12, sizeof(struct vnet_vhu_config), VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_CONFIG, 12, sizeof(struct vnet_vhu_config), VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_INFLIGHT_FD, 24, 24, VHU_FDS_NONE, true),
	RULE(VHOST_USER_SET_INFLIGHT_FD, 24, 24, VHU_FDS_ONE, false),
	RULE(VHOST_USER_RESET_DEVICE, 0, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_MAX_MEM_SLOTS, 0, U64, VHU_FDS_NONE, true),
	RULE(VHOST_USER_ADD_MEM_REG, sizeof(struct vnet_vhu_mem_single),
	     sizeof(struct vnet_vhu_mem_single), VHU_FDS_ONE, false),
	RULE(VHOST_USER_REM_MEM_REG, sizeof(struct vnet_vhu_mem_single),
	     sizeof(struct vnet_vhu_mem_single), VHU_FDS_STRAY_OK, false),
	RULE(VHOST_USER_SET_STATUS, U64, U64, VHU_FDS_NONE, false),
	RULE(VHOST_USER_GET_STATUS, 0, U64, VHU_FDS_NONE, true),
};

static const char *const names[VHOST_USER_MAX_REQUEST] = {
	[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[VHOST_USER_SET_OWNER] = "SET_OWNER",
	[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
	[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
	[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
	[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VHOST_USER_SEND_RARP] = "SEND_RARP",
	[VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
	[VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
	[VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
	[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
	[VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	[VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
	[VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
	[VHOST_USER_SET_STATUS] = "SET_STATUS",
	[VHOST_USER_GET_STATUS] = "GET_STATUS",
};

const char *vnet_vhu_request_name(uint32_t request)
{
	return request < VHOST_USER_MAX_REQUEST && names[request] ? names[request] : "UNKNOWN";
}

const struct vnet_vhu_rule *vnet_vhu_rule(uint32_t request)
{
	if (request >= VHOST_USER_MAX_REQUEST || !rules[request].known)
		return NULL;
	return &rules[request];
}

static int reason(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int reason(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int vnet_vhu_check_request(const struct vnet_vhu_msg *msg, unsigned nfds, char *err,
			   size_t errlen)
{
	const char *name = vnet_vhu_request_name(msg->request);
	if ((msg->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		return reason(err, errlen, -EPROTO, "%s: protocol version %u, expected 1", name,
			      msg->flags & VHOST_USER_VERSION_MASK);
	if (msg->flags & VHOST_USER_REPLY)
		return reason(err, errlen, -EPROTO, "%s: request has the REPLY flag set", name);
	if (msg->request >= VHOST_USER_MAX_REQUEST || !rules[msg->request].known)
		return reason(err, errlen, -EINVAL, "unknown request %u", msg->request);

	const struct vnet_vhu_rule *r = &rules[msg->request];
	if (msg->size < r->min_size || msg->size > r->max_size)
		return reason(err, errlen, -EBADMSG, "%s: payload of %u bytes, expected %u..%u",
			      name, msg->size, r->min_size, r->max_size);

	unsigned want_min = 0, want_max = 0;
	switch (r->fds) {
	case VHU_FDS_NONE:
		break;
	case VHU_FDS_ONE:
		want_min = want_max = 1;
		break;
	case VHU_FDS_VRING:
		want_min = want_max = (msg->payload.u64 & VHOST_USER_VRING_NOFD) ? 0 : 1;
		break;
	case VHU_FDS_STRAY_OK:
		want_max = 1;
		break;
	case VHU_FDS_MEM_TABLE: {
		uint32_t n = msg->payload.memory.nregions;
		if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX)
			return reason(err, errlen, -EBADMSG, "%s: %u regions, expected 1..%u", name,
				      n, VHOST_USER_MEM_TABLE_MAX);
		if (msg->size < MEM_HDR + n * sizeof(struct vnet_vhu_mem_region))
			return reason(err, errlen, -EBADMSG,
				      "%s: %u regions do not fit in %u payload bytes", name, n,
				      msg->size);
		want_min = want_max = n;
		break;
	}
	}
	if (nfds >= want_min && nfds <= want_max)
		return 0;
	if (want_min == want_max)
		return reason(err, errlen, -EBADMSG, "%s: carries %u fds, expected %u", name, nfds,
			      want_min);
	return reason(err, errlen, -EBADMSG, "%s: carries %u fds, expected %u..%u", name, nfds,
		      want_min, want_max);
}

void vnet_vhu_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Reads exactly len bytes (no fds). */
static int read_full(int sock, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(sock, p, len, 0);
		if (n == 0)
			return -EPROTO;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vnet_vhu_recv(int sock, struct vnet_vhu_msg *msg, int *fds, unsigned max_fds,
		  unsigned *nfds)
{
	/* Room for more fds than any request may carry, to see (and close) extras. */
	union {
		char buf[CMSG_SPACE(sizeof(int) * (VHOST_USER_MAX_FDS + 8))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = msg, .iov_len = VHOST_USER_HDR_SIZE};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	*nfds = 0;

	ssize_t n;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return -ECONNRESET;

	int got[VHOST_USER_MAX_FDS + 8];
	unsigned ngot = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ngot < sizeof(got) / sizeof(got[0]))
				got[ngot++] = fd;
			else
				close(fd);
		}
	}

	int ret = 0;
	if (mh.msg_flags & MSG_CTRUNC)
		ret = -EBADMSG; /* the kernel dropped fds: the message is incomplete */
	else if (ngot > max_fds)
		ret = -EBADMSG;
	else if ((size_t)n < VHOST_USER_HDR_SIZE)
		ret = read_full(sock, (uint8_t *)msg + n, VHOST_USER_HDR_SIZE - (size_t)n);
	if (ret == 0 && msg->size > VHOST_USER_PAYLOAD_MAX)
		ret = -EMSGSIZE;
	if (ret == 0 && msg->size)
		ret = read_full(sock, &msg->payload, msg->size);
	if (ret < 0) {
		vnet_vhu_close_fds(got, ngot);
		return ret;
	}
	memcpy(fds, got, ngot * sizeof(int));
	*nfds = ngot;
	return 0;
}

int vnet_sock_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	if (nfds > VNET_SCM_MAX_FDS)
		return -EINVAL;
	union {
		char buf[CMSG_SPACE(sizeof(int) * VNET_SCM_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	const uint8_t *p = buf;
	size_t left = len;
	while (left) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		/* The fds went with the first chunk; send the rest plainly. */
		p += n;
		left -= (size_t)n;
		iov.iov_base = (void *)p;
		iov.iov_len = left;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	return 0;
}

int vnet_vhu_send(int sock, const struct vnet_vhu_msg *msg, const int *fds, unsigned nfds)
{
	if (nfds > VHOST_USER_MAX_FDS || msg->size > VHOST_USER_PAYLOAD_MAX)
		return -EINVAL;
	/* Header and payload contiguous, as on the wire. */
	uint8_t wire[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
	memcpy(wire, msg, VHOST_USER_HDR_SIZE);
	memcpy(wire + VHOST_USER_HDR_SIZE, &msg->payload, msg->size);
	return vnet_sock_send_fds(sock, wire, VHOST_USER_HDR_SIZE + msg->size, fds, nfds);
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A name beside path for binding before the socket listens: same directory
 * (so rename() is atomic), hidden, unique to the process. Empty if it does
 * not fit in sun_path; then path itself is bound. */
static void temp_name(const char *path, char *tmp, size_t len)
{
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	int n = snprintf(tmp, len, "%.*s.%s.%d.tmp", dirlen, path, slash ? slash + 1 : path,
			 (int)getpid());
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		tmp[0] = '\0';
}

int vnet_vhu_listen(const char *path, unsigned mode, char *err, size_t errlen)
{
	return vnet_vhu_listen_group(path, mode, (gid_t)-1, err, errlen);
}

int vnet_vhu_listen_group(const char *path, unsigned mode, gid_t gid, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) < 0)
		return reason(err, errlen, -ENAMETOOLONG, "socket path %s is too long", path);

	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return reason(err, errlen, -EEXIST,
				      "%s exists and is not a socket (refusing to replace it)", path);
		if (unlink(path) < 0)
			return reason(err, errlen, -errno, "cannot remove stale socket %s: %s", path,
				      strerror(errno));
	}
	char tmp[sizeof(sa.sun_path)];
	temp_name(path, tmp, sizeof(tmp));
	const char *bound = tmp[0] ? tmp : path;
	if (tmp[0]) {
		(void)unlink(tmp); /* left by a process of ours that died, same pid */
		fill_addr(&sa, tmp);
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return reason(err, errlen, -errno, "socket: %s", strerror(errno));
	/* The socket is born with its final mode (a chmod afterwards would
	 * follow a symlink swapped in after the bind). */
	mode_t old = umask(~mode & 0777);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int bind_errno = errno;
	umask(old);
	if (r < 0) {
		close(fd);
		return reason(err, errlen, -bind_errno, "bind %s: %s", bound, strerror(bind_errno));
	}
	if (listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		unlink(bound);
		return reason(err, errlen, -e, "listen on %s: %s", bound, strerror(e));
	}
	/* The group too before the socket is reachable under its name (and
	 * never through a link: AT_SYMLINK_NOFOLLOW). */
	if (gid != (gid_t)-1 && fchownat(AT_FDCWD, bound, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = errno;
		close(fd);
		unlink(bound);
		return reason(err, errlen, -e, "cannot give %s to group %u: %s", path, (unsigned)gid,
			      strerror(e));
	}
	/* rename() replaces, never follows, whatever is at path by now. */
	if (tmp[0] && rename(tmp, path) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return reason(err, errlen, -e, "rename %s to %s: %s", tmp, path, strerror(e));
	}
	return fd;
}

int vnet_vhu_accept(int listen_fd)
{
	int fd;
	do {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int vnet_vhu_connect(const char *path)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) < 0)
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r;
	do {
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int vnet_vhu_set_timeout(int sock, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

int vnet_vhu_reconnect_try(struct vnet_vhu_reconnect *rc, const char *path,
			   unsigned max_delay_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (now < rc->next_ns)
		return -EAGAIN;
	int fd = vnet_vhu_connect(path);
	if (fd >= 0) {
		rc->delay_ms = 0;
		return fd;
	}
	rc->delay_ms = rc->delay_ms ? rc->delay_ms * 2 : 50;
	if (rc->delay_ms > max_delay_ms)
		rc->delay_ms = max_delay_ms;
	rc->next_ns = now + rc->delay_ms * 1000000ull;
	return -EAGAIN;
}
