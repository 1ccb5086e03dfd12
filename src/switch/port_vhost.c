/*
 * port_vhost.c — the vhost-user port: libvnet's back-end (handler) for one
 * VM, in server mode (the switch listens at the socket; QEMU/libvirt
 * connect) or client mode (the switch connects to the front-end's socket and
 * reconnects forever with backoff, as OVS's dpdkvhostuserclient).
 *
 * Options:
 *   mode=server|client   default server
 *   path=FILE            socket; server default $VNET_RUN_DIR/<port>.sock
 *                        (VNET_RUN_DIR defaults to /run/vnet); required in
 *                        client mode
 *   queues=N             queue pairs, 1..16 (default 1)
 *   socket-mode=0660     server: permissions of the socket file
 *   socket-group=NAME    server: group of the socket file (name or number)
 *
 * TX (frames to the guest) with a full RX ring is retried while the guest
 * keeps adding buffers, up to VHU_TX_RETRIES more attempts (as OVS's vhost
 * tx-retries); what still does not fit is dropped (tx_dropped).
 *
 * One connection at a time: in server mode a second connection while one is
 * active is accepted and closed at once; the first refusal is logged, then
 * at most one line a minute with a count (a flood must not flood the log),
 * and `show` says how many were refused.
 *
 * The control thread serves every port and the control socket, so no
 * front-end may make it wait. The library reads a message with a blocking
 * recv bounded by its I/O timeout per call, which a front-end trickling a
 * message byte by byte would turn into minutes, and it sends replies the
 * same way. So a message is handed to the library only once all of it has
 * arrived (header peeked, FIONREAD); one still incomplete after
 * VHU_MSG_COMPLETE_MS drops the connection. And a front-end that leaves
 * more than VHU_MAX_UNREAD_REPLY bytes of replies unread (SIOCOUTQ) is
 * dropped before the next message, so a reply never waits for room.
 *
 * ---- Teardown handover (control thread vs poll-mode threads) ----
 *
 * rx(q)/tx(q) run on poll-mode threads while service() (accept, messages,
 * disconnect) runs on the control thread. Ring-level changes (SET_VRING_*,
 * memory tables, GET_VRING_BASE) are already safe: the library serialises
 * them with the data plane through each ring's lock and the guest-memory
 * read bracket (vnet_vhu_ring_enter/exit).
 *
 * The connection's lifetime is not: vnet_vhu_dev_fini() stops every ring
 * under its lock, so a PMD that already holds the lock finishes its burst
 * first, and one that enters afterwards sees STOPPED. But the next
 * connection's vnet_vhu_dev_init() memsets the whole struct — ring locks,
 * states, nrings, the guest-memory object — and a PMD inside enter() at
 * that moment would race with plain stores (torn lock, reading nrings as 0,
 * a read bracket on a guest-memory object being re-created). Keeping the
 * dev allocated therefore is not enough on its own.
 *
 * So the port adds a gate around the whole struct vnet_vhu_dev:
 *   - `up` (atomic): 1 while the dev is initialised and may be entered;
 *   - `busy[q]` (atomic, one cache line per queue and direction): a PMD
 *     increments it, then reads `up`; only if up it calls the library;
 *     then decrements it.
 *   - disconnect (control thread): store up = 0, then wait until every
 *     busy counter is 0, then vnet_vhu_dev_fini(). connect: dev_init()
 *     while up = 0, then store up = 1.
 * All four accesses are sequentially consistent (a store-load pattern,
 * Dekker style): either the PMD's load sees up = 0 and it never touches the
 * dev, or the control thread's load sees the PMD's busy count and waits for
 * the burst (bounded: one burst) to finish. A PMD never blocks: the wait is
 * only on the control thread. Two uncontended atomic RMWs on a line owned by
 * the queue's thread cost a few ns per burst.
 *
 * wake_fd(q) is the guest TX ring's kick eventfd, published by the ring
 * event callback into an atomic (-1 while none). It changes when the
 * front-end re-sends SET_VRING_KICK or reconnects, and is closed at
 * disconnect: a PMD must fetch wake_fd() again each time it arms its
 * idle sleep (epoll drops closed fds on its own).
 */
#include "switch/port.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/vhost_user.h"
#include "vnet/vhost_user_backend.h"
#include "util/cycles.h"
#include "util/private_dir.h"

#define VHU_RECONNECT_MAX_MS 1000u
#define VHU_MAX_MSGS_PER_SERVICE 256
#define VHU_MAX_ACCEPTS_PER_SERVICE 64
/* A message must arrive whole within this (a real front-end writes it at once). */
#define VHU_MSG_COMPLETE_MS 1000u
/* Replies a front-end has not read, as the kernel counts them (about 1 KiB a
 * reply): a front-end that waits for its answers never gets near. */
#define VHU_MAX_UNREAD_REPLY (32 * 1024)

struct busy_ctr {
	alignas(64) atomic_uint n;
};

/* Enqueue attempts after the first while the guest keeps making room. */
#define VHU_TX_RETRIES 8u

struct vhu_port {
	struct sw_port *port;
	bool server;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned queues;
	unsigned sock_mode;
	int listen_fd;
	struct vnet_vhu_reconnect rc;
	bool connected;               /* control thread's view */
	uint64_t connections, refused;
	struct vnet_log_limit refusal_log; /* burst 1: once a minute, with a count */
	uint64_t partial_since_ns;    /* an incomplete message is waiting since; 0 = none */
	char last_error[160];
	/* connect/disconnect/refusal lines: a front-end reconnecting in a loop
	 * cannot flood the log (the library's refusals share it) */
	struct vnet_log_limit log_limit;

	alignas(64) atomic_int up;    /* the gate; see the top of the file */
	struct busy_ctr rx_busy[SW_PORT_MAX_QUEUES], tx_busy[SW_PORT_MAX_QUEUES];
	atomic_int wake[SW_PORT_MAX_QUEUES];
	/* Library counters already folded into the port's stats (per
	 * connection; written by the queue's data-plane thread). */
	struct vnet_net_stats rx_seen[SW_PORT_MAX_QUEUES], tx_seen[SW_PORT_MAX_QUEUES];

	struct vnet_vhu_dev dev;
};

static const char *const vhu_known[] = {"mode",        "path",         "queues",
					"socket-mode", "socket-group", NULL};

/* Ring event callback (control thread): publish the guest TX kick fds. */
static void vhu_ring_event(struct vnet_vhu_dev *dev, unsigned ring, void *arg)
{
	struct vhu_port *v = arg;
	if (ring % 2 == 1 && ring / 2 < v->queues)
		atomic_store(&v->wake[ring / 2], vnet_vhu_ring_kick_fd(dev, ring));
}

static int vhu_attach(struct vhu_port *v, int sock)
{
	struct vnet_vhu_backend_config cfg = {
		.name = v->port->name,
		.max_queue_pairs = v->queues,
		.ring_event = vhu_ring_event,
		.ring_event_arg = v,
		.log_limit = &v->log_limit,
	};
	/* up is 0 and every PMD backs off: nothing reads dev while it is rebuilt. */
	memset(v->rx_seen, 0, sizeof(v->rx_seen));
	memset(v->tx_seen, 0, sizeof(v->tx_seen));
	int e = vnet_vhu_dev_init(&v->dev, &cfg, sock);
	if (e < 0) {
		vnet_err("vhost-user %s: cannot set up the connection: %s", v->port->name,
			 strerror(-e));
		vnet_vhu_dev_fini(&v->dev);
		close(sock);
		return e;
	}
	v->connected = true;
	v->connections++;
	v->last_error[0] = '\0';
	atomic_store(&v->up, 1); /* seq_cst: publishes the initialised dev */
	vnet_log_limited(&v->log_limit, VNET_LOG_INFO, "vhost-user %s: front-end connected (%s %s)",
			 v->port->name, v->server ? "server" : "client", v->path);
	return 0;
}


static void vhu_disconnect(struct vhu_port *v)
{
	atomic_store(&v->up, 0); /* seq_cst, before reading the busy counters */
	for (unsigned q = 0; q < v->queues; q++) {
		while (atomic_load(&v->rx_busy[q].n) || atomic_load(&v->tx_busy[q].n))
			sched_yield(); /* a PMD finishes its burst */
		atomic_store(&v->wake[q], -1);
	}
	if (v->dev.last_error[0])
		snprintf(v->last_error, sizeof(v->last_error), "%s", v->dev.last_error);
	vnet_vhu_dev_fini(&v->dev);
	v->connected = false;
	v->partial_since_ns = 0;
	memset(&v->rc, 0, sizeof(v->rc)); /* client: first retry without delay */
	vnet_log_limited(&v->log_limit, VNET_LOG_INFO, "vhost-user %s: disconnected; %s",
			 v->port->name, v->server ? "listening again" : "reconnecting");
}

static int vhu_open(struct sw_port *p, char *err, size_t errlen)
{
	const struct sw_options *o = &p->opts;
	if (sw_options_check(o, "vhost-user", vhu_known, err, errlen) < 0)
		return -EINVAL;
	unsigned queues, smode;
	if (sw_options_uint(o, "queues", 1, 1, SW_PORT_MAX_QUEUES, &queues, "vhost-user", err,
			    errlen) < 0)
		return -EINVAL;
	const char *ms = sw_options_get(o, "socket-mode");
	if (ms) {
		char *end;
		errno = 0;
		unsigned long m = strtoul(ms, &end, 8);
		if (errno || end == ms || *end || m > 0777) {
			snprintf(err, errlen, "vhost-user: bad value '%s' for socket-mode (octal, e.g. 0660)", ms);
			return -EINVAL;
		}
		smode = (unsigned)m;
	} else {
		smode = 0660;
	}
	const char *mode = sw_options_get(o, "mode");
	bool server = true;
	if (mode && strcmp(mode, "client") == 0)
		server = false;
	else if (mode && strcmp(mode, "server") != 0) {
		snprintf(err, errlen, "vhost-user: bad value '%s' for mode (server or client)", mode);
		return -EINVAL;
	}
	const char *group = sw_options_get(o, "socket-group");
	if (!server && (group || ms)) {
		snprintf(err, errlen, "vhost-user: socket-mode/socket-group apply to mode=server only");
		return -EINVAL;
	}
	gid_t gid = (gid_t)-1;
	if (group && vnet_group_id(group, &gid) < 0) {
		snprintf(err, errlen, "vhost-user: no group '%s'", group);
		return -EINVAL;
	}

	/* alignas(64) members: calloc only promises 16 bytes, and with AVX the
	 * compiler copies such structs with 32-byte aligned moves. */
	size_t vsize = (sizeof(struct vhu_port) + 63) & ~(size_t)63;
	struct vhu_port *v = aligned_alloc(64, vsize);
	if (v)
		memset(v, 0, vsize);
	if (!v) {
		snprintf(err, errlen, "vhost-user: out of memory");
		return -ENOMEM;
	}
	v->port = p;
	v->server = server;
	v->queues = queues;
	v->sock_mode = smode;
	v->refusal_log.burst = 1;
	v->listen_fd = -1;
	v->dev.sock = -1;
	atomic_init(&v->up, 0);
	for (unsigned q = 0; q < SW_PORT_MAX_QUEUES; q++) {
		atomic_init(&v->wake[q], -1);
		atomic_init(&v->rx_busy[q].n, 0);
		atomic_init(&v->tx_busy[q].n, 0);
	}
	const char *path = sw_options_get(o, "path");
	int n;
	if (path) {
		n = snprintf(v->path, sizeof(v->path), "%s", path);
	} else if (server) {
		const char *dir = getenv("VNET_RUN_DIR");
		if (!dir || !*dir)
			dir = "/run/vnet";
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "vhost-user: cannot create %s: %s", dir, strerror(errno));
			free(v);
			return -EINVAL;
		}
		n = snprintf(v->path, sizeof(v->path), "%s/%s.sock", dir, p->name);
	} else {
		snprintf(err, errlen, "vhost-user: mode=client needs path=");
		free(v);
		return -EINVAL;
	}
	if (n <= 0 || (size_t)n >= sizeof(v->path)) {
		snprintf(err, errlen, "vhost-user: socket path too long");
		free(v);
		return -EINVAL;
	}
	if (server) {
		char why[160];
		v->listen_fd = vnet_vhu_listen_group(v->path, smode, gid, why, sizeof(why));
		if (v->listen_fd < 0) {
			snprintf(err, errlen, "vhost-user: %s", why);
			free(v);
			return -EINVAL;
		}
	}
	p->priv = v;
	p->nrxq = p->ntxq = queues;
	return 0;
}

static void vhu_close(struct sw_port *p)
{
	struct vhu_port *v = p->priv;
	if (!v)
		return;
	if (v->connected)
		vhu_disconnect(v);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	free(v);
	p->priv = NULL;
}

/* Server mode: accept pending connections (refused while one is active); a
 * bounded number per call, so a client connecting in a loop cannot keep the
 * control thread here. */
static void vhu_accept(struct vhu_port *v)
{
	struct pollfd pfd = {.fd = v->listen_fd, .events = POLLIN};
	for (int i = 0; i < VHU_MAX_ACCEPTS_PER_SERVICE && poll(&pfd, 1, 0) == 1; i++) {
		int s = vnet_vhu_accept(v->listen_fd);
		if (s < 0)
			return;
		if (v->connected) {
			v->refused++;
			close(s);
			vnet_log_limited(&v->refusal_log, VNET_LOG_WARN,
					 "vhost-user %s: refusing a second connection on %s "
					 "(one front-end at a time)",
					 v->port->name, v->path);
			continue;
		}
		vhu_attach(v, s);
	}
}

/* Drops the connection for a reason of ours (the library logs its own). */
static void vhu_drop(struct vhu_port *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vhu_drop(struct vhu_port *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->dev.last_error, sizeof(v->dev.last_error), fmt, ap);
	va_end(ap);
	vnet_log_limited(&v->log_limit, VNET_LOG_ERROR, "vhost-user %s: %s; closing connection",
			 v->port->name, v->dev.last_error);
	vhu_disconnect(v);
}

/*
 * Whether the next message can be read without waiting: true when it is all
 * there (or the library will refuse it from its header alone, or the peer
 * hung up), false while part of it is still on the way.
 */
static bool vhu_message_whole(struct vhu_port *v, int *queued)
{
	int n = 0;
	if (ioctl(v->dev.sock, FIONREAD, &n) < 0 || n == 0)
		return true; /* let the library find out (0 bytes readable: hang-up) */
	*queued = n;
	struct vnet_vhu_msg hdr;
	if ((size_t)n < VHOST_USER_HDR_SIZE)
		return false;
	ssize_t got = recv(v->dev.sock, &hdr, VHOST_USER_HDR_SIZE, MSG_PEEK | MSG_DONTWAIT);
	if (got < (ssize_t)VHOST_USER_HDR_SIZE)
		return true; /* split around passed fds: the bytes are all queued anyway */
	return hdr.size > VHOST_USER_PAYLOAD_MAX || (size_t)n >= VHOST_USER_HDR_SIZE + hdr.size;
}

static void vhu_serve_messages(struct vhu_port *v)
{
	for (int i = 0; v->connected && i < VHU_MAX_MSGS_PER_SERVICE; i++) {
		struct pollfd pfd = {.fd = v->dev.sock, .events = POLLIN};
		if (poll(&pfd, 1, 0) != 1)
			break;
		int queued = 0;
		if (!vhu_message_whole(v, &queued)) {
			uint64_t t = vnet_mono_ns();
			if (!v->partial_since_ns)
				v->partial_since_ns = t;
			else if (t - v->partial_since_ns > VHU_MSG_COMPLETE_MS * 1000000ull)
				vhu_drop(v, "a message stayed incomplete for %u ms (%d bytes came)",
					 VHU_MSG_COMPLETE_MS, queued);
			break;
		}
		v->partial_since_ns = 0;
		int unread = 0;
		if (ioctl(v->dev.sock, SIOCOUTQ, &unread) == 0 && unread > VHU_MAX_UNREAD_REPLY) {
			vhu_drop(v, "the front-end does not read its replies (%d bytes unread)",
				 unread);
			break;
		}
		int e = vnet_vhu_dev_handle(&v->dev);
		if (e < 0 && e != -EAGAIN)
			vhu_disconnect(v);
		else if (e == -EAGAIN)
			break;
	}
}

static void vhu_service(struct sw_port *p)
{
	struct vhu_port *v = p->priv;
	if (v->server)
		vhu_accept(v);
	else if (!v->connected) {
		int s = vnet_vhu_reconnect_try(&v->rc, v->path, VHU_RECONNECT_MAX_MS);
		if (s >= 0)
			vhu_attach(v, s);
	}
	vhu_serve_messages(v);
}

static int vhu_service_fd(struct sw_port *p)
{
	struct vhu_port *v = p->priv;
	/* An incomplete message keeps the socket readable: waking on it would
	 * spin the control thread, so it is looked at on the tick instead. */
	if (v->connected)
		return v->partial_since_ns ? -1 : v->dev.sock;
	return v->server ? v->listen_fd : -1; /* client: retried on the tick */
}

static int vhu_wake_fd(struct sw_port *p, unsigned q)
{
	struct vhu_port *v = p->priv;
	return q < v->queues ? atomic_load_explicit(&v->wake[q], memory_order_acquire) : -1;
}

/*
 * Idle-sleep arming of the guest TX ring (2q+1), on the PMD thread that owns
 * rx queue q, through the same gate as rx. A ring the control thread holds
 * right now answers "pending" (poll again); a stopped ring answers "nothing
 * pending" (its kick fd is -1 or about to change: the PMD's sleep needs a
 * timeout anyway, to pick up wake_fd() changes).
 */
static bool vhu_arm_wake(struct sw_port *p, unsigned q, bool on)
{
	struct vhu_port *v = p->priv;
	if (q >= v->queues)
		return false;
	bool pending = false;
	atomic_fetch_add(&v->rx_busy[q].n, 1);
	if (atomic_load(&v->up)) {
		unsigned ring = 2 * q + 1, tok;
		enum vnet_vhu_ring_state st;
		struct vnet_vq *vq = vnet_vhu_ring_enter(&v->dev, ring, &st, &tok);
		if (vq) {
			if (on) {
				pending = vnet_vq_enable_notify(vq);
			} else {
				vnet_vq_disable_notify(vq);
				int fd = v->dev.rings[ring].kick_fd;
				struct pollfd pfd = {.fd = fd, .events = POLLIN};
				uint64_t cnt;
				if (fd >= 0 && poll(&pfd, 1, 0) == 1 && read(fd, &cnt, sizeof(cnt)) < 0)
					cnt = 0; /* drained or raced: either way empty */
			}
			vnet_vhu_ring_exit(&v->dev, ring, tok, false);
		} else {
			pending = on && atomic_load(&v->dev.rings[ring].state) != VNET_VHU_RING_STOPPED;
		}
	}
	atomic_fetch_sub_explicit(&v->rx_busy[q].n, 1, memory_order_release);
	return pending;
}

static void fold_rx_stats(struct sw_port *p, unsigned q, const struct vnet_net_stats *now,
			  struct vnet_net_stats *seen)
{
	uint64_t drops = (now->drop_disabled - seen->drop_disabled) +
			 (now->drop_no_buf - seen->drop_no_buf) +
			 (now->drop_too_big - seen->drop_too_big);
	uint64_t errs = now->err_bad_chain - seen->err_bad_chain;
	if (drops)
		atomic_fetch_add_explicit(&p->rxq[q].rx_dropped, drops, memory_order_relaxed);
	if (errs)
		atomic_fetch_add_explicit(&p->rxq[q].errors, errs, memory_order_relaxed);
	*seen = *now;
}

static unsigned vhu_rx(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool,
		       struct vnet_pkt **pkts, unsigned n)
{
	struct vhu_port *v = p->priv;
	if (q >= v->queues)
		return 0;
	unsigned got = 0;
	atomic_fetch_add(&v->rx_busy[q].n, 1);
	if (atomic_load(&v->up)) {
		got = vnet_vhu_rx_burst(&v->dev, q, pool, pkts, n);
		fold_rx_stats(p, q, &v->dev.rings[2 * q + 1].stats, &v->rx_seen[q]);
	}
	atomic_fetch_sub_explicit(&v->rx_busy[q].n, 1, memory_order_release);
	if (got) {
		uint64_t bytes = 0;
		for (unsigned i = 0; i < got; i++) {
			bytes += pkts[i]->len;
			pkts[i]->in_port = p->ofport;
		}
		atomic_fetch_add_explicit(&p->rxq[q].rx_packets, got, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->rxq[q].rx_bytes, bytes, memory_order_relaxed);
	}
	return got;
}

static unsigned vhu_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n)
{
	struct vhu_port *v = p->priv;
	if (q >= v->queues)
		q = 0;
	uint64_t sent = 0, bytes = 0;
	atomic_fetch_add(&v->tx_busy[q].n, 1);
	if (atomic_load(&v->up)) {
		/* A full RX ring is often a guest a few microseconds behind: retry
		 * while it makes room (OVS's vhost tx-retries, 8 by default), never
		 * when an attempt moved nothing, so a stuck guest costs one try. */
		unsigned done = 0;
		for (unsigned tries = 0; done < n && tries <= VHU_TX_RETRIES; tries++) {
			unsigned k = vnet_vhu_tx_burst(&v->dev, q, pkts + done, n - done);
			if (!k)
				break;
			done += k;
		}
		const struct vnet_net_stats *now = &v->dev.rings[2 * q].stats;
		struct vnet_net_stats *seen = &v->tx_seen[q];
		sent = now->packets - seen->packets;
		bytes = now->bytes - seen->bytes;
		if (now->err_bad_chain != seen->err_bad_chain)
			atomic_fetch_add_explicit(&p->txq[q].errors,
						  now->err_bad_chain - seen->err_bad_chain,
						  memory_order_relaxed);
		*seen = *now;
	}
	atomic_fetch_sub_explicit(&v->tx_busy[q].n, 1, memory_order_release);
	if (sent) {
		atomic_fetch_add_explicit(&p->txq[q].tx_packets, sent, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->txq[q].tx_bytes, bytes, memory_order_relaxed);
	}
	if (sent < n)
		atomic_fetch_add_explicit(&p->txq[q].tx_dropped, n - sent, memory_order_relaxed);
	return (unsigned)sent;
}

static void vhu_describe(struct sw_port *p, char *buf, size_t len)
{
	struct vhu_port *v = p->priv;
	const char *role = v->server ? "server" : "client";
	if (!v->connected) {
		int n = snprintf(buf, len, "%s %s %s", role, v->path,
				 v->server ? "listening" : "connecting");
		if (v->last_error[0] && n >= 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, " (last: %s)", v->last_error);
		return;
	}
	unsigned enabled = 0;
	for (unsigned q = 0; q < v->queues; q++)
		if (atomic_load(&v->dev.rings[2 * q].state) == VNET_VHU_RING_ENABLED &&
		    atomic_load(&v->dev.rings[2 * q + 1].state) == VNET_VHU_RING_ENABLED)
			enabled++;
	int n = snprintf(buf, len, "%s %s connected, %u/%u queue pairs enabled", role, v->path,
			 enabled, v->queues);
	if (v->refused && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", %llu other connections refused",
			 (unsigned long long)v->refused);
}

const struct sw_port_ops sw_port_vhost_user_ops = {
	.type = "vhost-user",
	.open = vhu_open,
	.close = vhu_close,
	.rx = vhu_rx,
	.tx = vhu_tx,
	.service = vhu_service,
	.service_fd = vhu_service_fd,
	.wake_fd = vhu_wake_fd,
	.arm_wake = vhu_arm_wake,
	.describe = vhu_describe,
};
