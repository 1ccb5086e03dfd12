/* ctl_io.c — line I/O of the control protocol for both sides: reading
 * bounded lines with a deadline, writing with a stall limit, the client's
 * connect/call (see ctl_proto.h), and the bound on how many connections the
 * daemon serves at once.
 *
 * Limits. The daemon serves each control connection on a thread of its own
 * (switchd.c), so without a bound a local client could hold any number of
 * threads and fds (a flood of idle connections) or park a thread forever on
 * an answer it never reads. So every ctl_conn takes a slot in a table:
 *   - at most CTL_MAX_CONNS are live. A new connection beyond that takes the
 *     place of the live one that has waited longest for a request (vnetctl
 *     sends its request at once: a connection that says nothing is not
 *     waiting for anything; one whose request waits unread, its thread not
 *     yet scheduled, is not idle) or has been stuck longest on an answer nobody
 *     reads; that one is shut down and its read or write fails at once. Only
 *     when every slot is running a command is the newcomer refused, with an
 *     error line.
 *   - an answer that makes no progress for CTL_WRITE_STALL_MS fails.
 *   - at most CTL_SLOTS threads serve connections (live ones plus those on
 *     their way out); beyond that the acceptor answers "busy" itself
 *     (ctl_thread_admit), so a flood cannot outrun the threads' ends.
 * Each cause is logged once, then at most once a minute with a count
 * (vnet_log_limited, burst 1): never a line per connection, and only on the
 * daemon's side: vnetctl's own timeouts are errors it prints.
 *
 * Thread-safety: any number of connections, each on its own thread; the
 * slot table and the log limit are under one mutex. A ctl_conn itself is
 * used by one thread.
 */
#include "switch/ctl_proto.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"

#define CTL_MAX_CONNS 64u
/* Room for connections shut down to make space, until their thread lets go
 * (in a flood, a burst of them may still be on their way out). */
#define CTL_SLOTS (4u * CTL_MAX_CONNS)
#define CTL_WRITE_STALL_MS 5000
/* A connection stuck this long on an unread answer may make room for another. */
#define CTL_EVICT_WRITER_MS 1000

enum slot_state { SLOT_FREE, SLOT_IDLE, SLOT_BUSY, SLOT_WRITING, SLOT_EVICTED };

struct slot {
	int fd;
	enum slot_state state;
	bool served;        /* the daemon's side (accepted), not a client's */
	long long since_ms;
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[CTL_SLOTS];
static unsigned live_slots;
static struct vnet_log_limit log_once_a_minute = {.burst = 1}; /* a kind per cause (format) */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs the first time a cause (fmt) happens, then once a minute with a
 * count; only for the daemon's side of a connection (vnetctl logs nothing). */
static void __attribute__((format(printf, 2, 3))) log_limit(bool served, const char *fmt, ...)
{
	if (!served)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&slots_lock);
	vnet_log_limited_as(&log_once_a_minute, fmt, VNET_LOG_WARN, "control socket: %s", msg);
	pthread_mutex_unlock(&slots_lock);
}

/* Caller holds slots_lock. */
static struct slot *slot_of(int fd)
{
	for (unsigned i = 0; i < CTL_SLOTS; i++)
		if (slots[i].state != SLOT_FREE && slots[i].fd == fd)
			return &slots[i];
	return NULL;
}

/* A request already waits on fd: its thread has not got to it yet (a busy
 * machine), so the connection is not idle. */
static bool request_waiting(int fd)
{
	char c;
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Caller holds slots_lock: shuts down the live connection that gives the
 * least (idle longest, else stuck longest on an unread answer). */
static bool evict_one(long long t)
{
	struct slot *victim = NULL;
	for (unsigned i = 0; i < CTL_SLOTS; i++) {
		struct slot *s = &slots[i];
		if (s->state == SLOT_IDLE && (!victim || victim->state != SLOT_IDLE ||
					      s->since_ms < victim->since_ms) &&
		    !request_waiting(s->fd))
			victim = s;
		else if (s->state == SLOT_WRITING && t - s->since_ms >= CTL_EVICT_WRITER_MS &&
			 (!victim || (victim->state == SLOT_WRITING &&
				      s->since_ms < victim->since_ms)))
			victim = s;
	}
	if (!victim)
		return false;
	victim->state = SLOT_EVICTED;
	live_slots--;
	shutdown(victim->fd, SHUT_RDWR); /* its thread wakes and lets go */
	return true;
}

/* An accepted connection has the listener's path as its local address; a
 * client's is unnamed. */
static bool accepted(int fd)
{
	struct sockaddr_un a;
	socklen_t len = sizeof a;
	return getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX &&
	       len > offsetof(struct sockaddr_un, sun_path) && a.sun_path[0];
}

enum admit { ADMITTED, EVICTED_OTHER, REFUSED, REFUSED_CLOSING };

static enum admit admit(int fd)
{
	enum admit how = ADMITTED;
	bool served = accepted(fd);
	long long t = now_ms();
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slot_of(fd);
	if (s) { /* a stale entry for a reused fd number */
		if (s->state != SLOT_EVICTED)
			live_slots--;
		s->state = SLOT_FREE;
	}
	if (live_slots >= CTL_MAX_CONNS)
		how = evict_one(t) ? EVICTED_OTHER : REFUSED;
	s = NULL;
	for (unsigned i = 0; how != REFUSED && i < CTL_SLOTS && !s; i++)
		if (slots[i].state == SLOT_FREE)
			s = &slots[i];
	if (s) {
		*s = (struct slot){.fd = fd, .state = SLOT_IDLE, .served = served, .since_ms = t};
		live_slots++;
	} else if (how != REFUSED) {
		how = REFUSED_CLOSING;
	}
	pthread_mutex_unlock(&slots_lock);
	if (how == EVICTED_OTHER)
		log_limit(served,
			  "%u connections open (the limit): closing the one that waited "
			  "longest for a request or answer to make room",
			  CTL_MAX_CONNS);
	else if (how == REFUSED)
		log_limit(served,
			  "%u connections open, all running commands: refusing new ones",
			  CTL_MAX_CONNS);
	else if (how == REFUSED_CLOSING)
		log_limit(served,
			  "%u connections closed to make room are still on their way out: "
			  "refusing new ones meanwhile",
			  CTL_SLOTS - CTL_MAX_CONNS);
	return how;
}

/* Moves fd's slot to state (unless it was shut down); its state before, or
 * SLOT_FREE when fd has no slot. */
static enum slot_state slot_move(int fd, enum slot_state state)
{
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slot_of(fd);
	enum slot_state was = s ? s->state : SLOT_FREE;
	if (s && s->state != SLOT_EVICTED && s->state != state) {
		s->state = state;
		s->since_ms = now_ms();
	}
	pthread_mutex_unlock(&slots_lock);
	return was;
}

static bool slot_served(int fd)
{
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slot_of(fd);
	bool served = s && s->served;
	pthread_mutex_unlock(&slots_lock);
	return served;
}

static bool slot_evicted(int fd)
{
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slot_of(fd);
	bool evicted = s && s->state == SLOT_EVICTED;
	pthread_mutex_unlock(&slots_lock);
	return evicted;
}

static void slot_release(int fd)
{
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slot_of(fd);
	if (s) {
		if (s->state != SLOT_EVICTED)
			live_slots--;
		s->state = SLOT_FREE;
	}
	pthread_mutex_unlock(&slots_lock);
}

/* Told at once, without waiting on a client that may not read. */
static void tell_busy(int fd)
{
	static const char busy[] = "{\"ok\":false,\"error\":\"too many control "
				   "connections busy; try again\"}\n";
	if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing more to do: the connection is refused either way */
	}
}

void ctl_conn_init(struct ctl_conn *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	if (admit(fd) >= REFUSED)
		tell_busy(fd);
}

/* Threads serving connections, counted from accept to their end: the slot
 * table only sees a thread once it runs, so under a flood (and a slow
 * scheduler) the acceptor could otherwise start threads faster than they
 * end. */
static atomic_uint serving_threads;

bool ctl_thread_admit(int fd)
{
	if (atomic_fetch_add(&serving_threads, 1) < CTL_SLOTS)
		return true;
	atomic_fetch_sub(&serving_threads, 1);
	tell_busy(fd);
	close(fd);
	log_limit(true, "%u connection threads running: refusing new connections meanwhile",
		  CTL_SLOTS);
	return false;
}

void ctl_thread_done(void)
{
	atomic_fetch_sub(&serving_threads, 1);
}

void ctl_conn_release(struct ctl_conn *c)
{
	slot_release(c->fd);
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
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

static int too_large(int fd, size_t max, char *err, size_t errlen)
{
	log_limit(slot_served(fd),
		  "closing a connection that sent a request over %zu bytes", max);
	return sw_fail(err, errlen, "request too large (more than %zu bytes)", max);
}

int ctl_conn_read_line(struct ctl_conn *c, size_t max, int timeout_ms, char **line, char *err,
		       size_t errlen)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	size_t scanned = 0;
	*line = NULL;
	enum slot_state was = slot_move(c->fd, SLOT_IDLE);
	if (was == SLOT_FREE)
		return sw_fail(err, errlen, "refused: %u control connections busy", CTL_MAX_CONNS);
	for (;;) {
		if (was == SLOT_EVICTED || slot_evicted(c->fd))
			return sw_fail(err, errlen, "closed to make room for another connection");
		char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			if (n > max)
				return too_large(c->fd, max, err, errlen);
			slot_move(c->fd, SLOT_BUSY);
			return take_line(c, n, 1, line, err, errlen);
		}
		scanned = c->len;
		if (c->len > max)
			return too_large(c->fd, max, err, errlen);
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
			if (left <= 0) {
				bool served = slot_served(c->fd);
				if (c->len)
					log_limit(served,
						  "closing a connection whose request was not "
						  "complete within %d ms",
						  timeout_ms);
				else
					log_limit(served,
						  "closing a connection that sent no request "
						  "within %d ms",
						  timeout_ms);
				return sw_fail(err, errlen, "timed out after %d ms waiting for a %s",
					       timeout_ms, c->len ? "complete line" : "line");
			}
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
			if (slot_evicted(c->fd)) /* our own shutdown, not the client's EOF */
				continue;
			if (!c->len)
				return 0;
			if (c->len > max)
				return too_large(c->fd, max, err, errlen);
			slot_move(c->fd, SLOT_BUSY);
			return take_line(c, c->len, 0, line, err, errlen); /* last line without "\n" */
		}
		c->len += (size_t)r;
	}
}

int ctl_write_all(int fd, const char *buf, size_t len)
{
	enum slot_state was = slot_move(fd, SLOT_WRITING);
	long long stall_deadline = now_ms() + CTL_WRITE_STALL_MS;
	int rc = 0;
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, buf, len);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			long long left = stall_deadline - now_ms();
			if (slot_evicted(fd)) {
				errno = ECONNABORTED;
				rc = -1;
				break;
			}
			if (left <= 0) {
				log_limit(slot_served(fd),
					  "closing a connection whose client has not read its "
					  "answer for %d ms",
					  CTL_WRITE_STALL_MS);
				errno = ETIMEDOUT;
				rc = -1;
				break;
			}
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR) {
				rc = -1;
				break;
			}
			continue;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		buf += w;
		len -= (size_t)w;
		stall_deadline = now_ms() + CTL_WRITE_STALL_MS; /* progress: a slow reader is fine */
	}
	if (was != SLOT_FREE) {
		int saved = errno;
		slot_move(fd, was == SLOT_WRITING ? SLOT_BUSY : was);
		errno = saved;
	}
	return rc;
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
