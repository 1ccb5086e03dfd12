/* ctl_io.c — line I/O of the control protocol for both sides: reading
 * bounded lines with a deadline, writing, and the client's connect/call
 * (see ctl_proto.h). */
#include "switch/ctl_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void ctl_conn_init(struct ctl_conn *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
}

void ctl_conn_release(struct ctl_conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes the first n bytes as a line and drops them plus the separator. */
static int take_line(struct ctl_conn *c, size_t n, size_t skip, char **line, char *err,
		     size_t errlen)
{
	char *l = malloc(n + 1);
	if (!l)
		return sw_fail(err, errlen, "out of memory");
	memcpy(l, c->buf, n);
	l[n] = '\0';
	if (n && l[n - 1] == '\r')
		l[n - 1] = '\0';
	memmove(c->buf, c->buf + n + skip, c->len - n - skip);
	c->len -= n + skip;
	*line = l;
	return 1;
}

int ctl_conn_read_line(struct ctl_conn *c, size_t max, int timeout_ms, char **line, char *err,
		       size_t errlen)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	size_t scanned = 0;
	*line = NULL;
	for (;;) {
		char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			if (n > max)
				return sw_fail(err, errlen, "request too large (more than %zu bytes)", max);
			return take_line(c, n, 1, line, err, errlen);
		}
		scanned = c->len;
		if (c->len > max)
			return sw_fail(err, errlen, "request too large (more than %zu bytes)", max);
		if (c->cap - c->len < 4096) {
			size_t ncap = c->cap ? c->cap * 2 : 8192;
			if (ncap > max + 4096 + 1)
				ncap = max + 4096 + 1;
			if (ncap <= c->cap)
				ncap = c->cap + 4096;
			char *nb = realloc(c->buf, ncap);
			if (!nb)
				return sw_fail(err, errlen, "out of memory");
			c->buf = nb;
			c->cap = ncap;
		}
		int wait = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				return sw_fail(err, errlen, "timed out after %d ms waiting for a %s",
					    timeout_ms, c->len ? "complete line" : "line");
			wait = left > 1000000 ? 1000000 : (int)left;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, wait);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return sw_fail(err, errlen, "poll: %s", strerror(errno));
		}
		if (pr == 0)
			continue; /* the deadline check above reports it */
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return sw_fail(err, errlen, "read: %s", strerror(errno));
		}
		if (r == 0) {
			if (!c->len)
				return 0;
			if (c->len > max)
				return sw_fail(err, errlen, "request too large (more than %zu bytes)", max);
			return take_line(c, c->len, 0, line, err, errlen); /* last line without "\n" */
		}
		c->len += (size_t)r;
	}
}

int ctl_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int ctl_connect(const char *path, char *err, size_t errlen)
{
	if (!path || !*path)
		path = getenv(CTL_SOCKET_ENV);
	if (!path || !*path)
		path = CTL_DEFAULT_SOCKET;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		return sw_fail(err, errlen, "socket path %s is too long (max %zu)", path,
			    sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sw_fail(err, errlen, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return sw_fail(err, errlen, "cannot connect to %s: %s (is vnet-switchd running?)",
				    path, strerror(e));
		return sw_fail(err, errlen, "cannot connect to %s: %s", path, strerror(e));
	}
	return fd;
}

int ctl_call(int fd, const char *request, int timeout_ms, char **response, char *err,
	     size_t errlen)
{
	*response = NULL;
	size_t n = strlen(request);
	if (ctl_write_all(fd, request, n) < 0 ||
	    ((n == 0 || request[n - 1] != '\n') && ctl_write_all(fd, "\n", 1) < 0))
		return sw_fail(err, errlen, "cannot send the request: %s", strerror(errno));
	struct ctl_conn c;
	ctl_conn_init(&c, fd);
	char e[256];
	int r = ctl_conn_read_line(&c, CTL_MAX_RESPONSE, timeout_ms, response, e, sizeof e);
	ctl_conn_release(&c);
	if (r == 1)
		return 0;
	if (r == 0)
		return sw_fail(err, errlen, "the daemon closed the connection without answering");
	if (strstr(e, "timed out"))
		return sw_fail(err, errlen, "no answer from the daemon within %d s", timeout_ms / 1000);
	return sw_fail(err, errlen, "%s", e);
}
