/*
 * pktgen_port.c — vnet-pktgen's two roles behind one small interface:
 * the back-end (vnet's vhost-user handler, as testpmd's net_vhost) and the
 * front-end (vnet's virtio-user driver, as testpmd's net_virtio_user).
 * Frames cross the interface as iovecs, so neither role copies more than its
 * ring requires. Single-threaded.
 */
#include "tools/pktgen.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/vhost_user_backend.h"
#include "vnet/vhost_user_frontend.h"

/* ---- back-end ---- */

struct backend {
	struct pg_port port;
	int listen_fd;
	bool connected;
	struct vnet_vhu_dev dev;
	struct vnet_pkt_pool pool;
	struct vnet_pkt *held[PG_MAX_QUEUES][PG_BURST]; /* frames lent out by rx */
	unsigned nheld[PG_MAX_QUEUES];
	bool rx_kicked[PG_MAX_QUEUES]; /* --start-on-kick: the driver kicked RX */
	bool kick_wait_logged[PG_MAX_QUEUES];
	struct vnet_vhu_reconnect reconnect;
};

static void backend_disconnect(struct backend *b)
{
	for (unsigned q = 0; q < PG_MAX_QUEUES; q++) {
		vnet_pkt_free_burst(b->held[q], b->nheld[q]);
		b->nheld[q] = 0;
		b->rx_kicked[q] = false; /* the next front-end brings its own kick fds */
		b->kick_wait_logged[q] = false;
	}
	vnet_vhu_dev_fini(&b->dev);
	b->connected = false;
	b->port.connections_closed++;
}

static int backend_attach(struct backend *b, int sock)
{
	struct vnet_vhu_backend_config cfg = {
		.name = "pktgen",
		.max_queue_pairs = b->port.opts->queues,
	};
	int e = vnet_vhu_dev_init(&b->dev, &cfg, sock);
	if (e < 0) {
		close(sock);
		return e;
	}
	b->connected = true;
	vnet_info("pktgen: front-end connected on %s", b->port.opts->socket);
	return 0;
}

/* Accepts or (re)connects, and serves every pending control message. */
static void backend_service(struct pg_port *p)
{
	struct backend *b = (struct backend *)p;
	const struct pg_opts *o = p->opts;
	if (!b->connected) {
		if (o->server) {
			struct pollfd pfd = {.fd = b->listen_fd, .events = POLLIN};
			if (poll(&pfd, 1, 0) == 1) {
				int s = vnet_vhu_accept(b->listen_fd);
				if (s >= 0)
					backend_attach(b, s);
			}
		} else {
			/* The front-end is the server: retry forever with backoff. */
			int fd = vnet_vhu_reconnect_try(&b->reconnect, o->socket, 1000);
			if (fd >= 0)
				backend_attach(b, fd);
		}
		if (!b->connected)
			return;
	}
	struct pollfd pfd = {.fd = b->dev.sock, .events = POLLIN};
	while (b->connected && poll(&pfd, 1, 0) == 1) {
		int e = vnet_vhu_dev_handle(&b->dev);
		if (e < 0 && e != -EAGAIN)
			backend_disconnect(b);
	}
}

/* --start-on-kick: nothing here reads the kick eventfd, so once the driver
 * has kicked the RX ring it stays readable; a polling driver (no kick fd)
 * counts as kicked since there is nothing to wait for. */
static bool rx_kicked(struct backend *b, unsigned qp)
{
	if (!b->rx_kicked[qp]) {
		int fd = vnet_vhu_ring_kick_fd(&b->dev, 2 * qp);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (fd < 0 || poll(&pfd, 1, 0) == 1) {
			b->rx_kicked[qp] = true;
			vnet_debug("pktgen: queue pair %u: %s", qp,
				   fd < 0 ? "no RX kick fd (polling driver)" : "driver kicked RX");
		}
	}
	return b->rx_kicked[qp];
}

static bool backend_ready(struct pg_port *p, unsigned qp)
{
	struct backend *b = (struct backend *)p;
	if (!b->connected ||
	    atomic_load(&b->dev.rings[2 * qp].state) != VNET_VHU_RING_ENABLED ||
	    atomic_load(&b->dev.rings[2 * qp + 1].state) != VNET_VHU_RING_ENABLED) {
		/* A ring stopped and started again on the same connection (a port
		 * restart) must be kicked again. */
		b->rx_kicked[qp] = false;
		b->kick_wait_logged[qp] = false;
		return false;
	}
	if (!p->opts->start_on_kick || rx_kicked(b, qp))
		return true;
	if (!b->kick_wait_logged[qp]) {
		b->kick_wait_logged[qp] = true;
		vnet_info("pktgen: queue pair %u: rings enabled, waiting for the driver to kick RX "
			  "(--start-on-kick)", qp);
	}
	return false;
}

static int backend_rx(struct pg_port *p, unsigned qp, struct iovec *frames, unsigned n)
{
	struct backend *b = (struct backend *)p;
	vnet_pkt_free_burst(b->held[qp], b->nheld[qp]);
	b->nheld[qp] = 0;
	if (!b->connected)
		return 0;
	if (n > PG_BURST)
		n = PG_BURST;
	unsigned got = vnet_vhu_rx_burst(&b->dev, qp, &b->pool, b->held[qp], n);
	for (unsigned i = 0; i < got; i++) {
		frames[i].iov_base = b->held[qp][i]->data;
		frames[i].iov_len = b->held[qp][i]->len;
	}
	b->nheld[qp] = got;
	return (int)got;
}

static int backend_tx(struct pg_port *p, unsigned qp, const struct iovec *frames, unsigned n)
{
	struct backend *b = (struct backend *)p;
	if (!b->connected)
		return 0;
	/* The enqueue path reads only data and len: describe the frames in place. */
	struct vnet_pkt pkts[PG_BURST], *ptrs[PG_BURST];
	if (n > PG_BURST)
		n = PG_BURST;
	for (unsigned i = 0; i < n; i++) {
		memset(&pkts[i], 0, sizeof(pkts[i]));
		pkts[i].data = frames[i].iov_base;
		pkts[i].len = (uint32_t)frames[i].iov_len;
		ptrs[i] = &pkts[i];
	}
	return (int)vnet_vhu_tx_burst(&b->dev, qp, ptrs, n);
}

static bool backend_drained(struct pg_port *p, unsigned qp)
{
	struct backend *b = (struct backend *)p;
	if (!b->connected)
		return true;
	enum vnet_vhu_ring_state state;
	unsigned tok;
	struct vnet_vq *vq = vnet_vhu_ring_enter(&b->dev, 2 * qp, &state, &tok);
	if (!vq)
		return false;
	bool done = vnet_vq_avail_count(vq) >= vq->size;
	vnet_vhu_ring_exit(&b->dev, 2 * qp, tok, false);
	return done;
}

static void backend_close(struct pg_port *p)
{
	struct backend *b = (struct backend *)p;
	if (b->connected)
		backend_disconnect(b);
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		unlink(p->opts->socket);
	}
	vnet_pkt_pool_fini(&b->pool);
	free(b);
}

static int backend_open(const struct pg_opts *o, struct pg_port **out)
{
	struct backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->port.opts = o;
	b->listen_fd = -1;
	if (vnet_pkt_pool_init(&b->pool, PG_MAX_QUEUES * PG_BURST * 4, 9216) < 0) {
		free(b);
		return -ENOMEM;
	}
	if (o->server) {
		char err[160];
		b->listen_fd = vnet_vhu_listen(o->socket, 0660, err, sizeof(err));
		if (b->listen_fd < 0) {
			vnet_err("pktgen: %s", err);
			vnet_pkt_pool_fini(&b->pool);
			free(b);
			return -EINVAL;
		}
	}
	b->port.service = backend_service;
	b->port.ready = backend_ready;
	b->port.rx = backend_rx;
	b->port.tx = backend_tx;
	b->port.close = backend_close;
	b->port.drained = backend_drained;
	*out = &b->port;
	return 0;
}

/* ---- front-end ---- */

struct frontend {
	struct pg_port port;
	struct vnet_vhu_fe *fe;
	struct vnet_vhu_fe_pkt pkts[PG_BURST];
};

static void frontend_service(struct pg_port *p)
{
	(void)p; /* negotiation happened in open; nothing arrives unasked */
}

static bool frontend_ready(struct pg_port *p, unsigned qp)
{
	(void)qp;
	return ((struct frontend *)p)->fe->connected;
}

static int frontend_rx(struct pg_port *p, unsigned qp, struct iovec *frames, unsigned n)
{
	struct frontend *f = (struct frontend *)p;
	if (n > PG_BURST)
		n = PG_BURST;
	int got = vnet_vhu_fe_rx_burst(f->fe, qp, f->pkts, n);
	for (int i = 0; i < got; i++) {
		frames[i].iov_base = f->pkts[i].data;
		frames[i].iov_len = f->pkts[i].len;
	}
	return got;
}

static int frontend_tx(struct pg_port *p, unsigned qp, const struct iovec *frames, unsigned n)
{
	return vnet_vhu_fe_tx_burst(((struct frontend *)p)->fe, qp, frames, n);
}

static void frontend_close(struct pg_port *p)
{
	struct frontend *f = (struct frontend *)p;
	vnet_vhu_fe_close(f->fe);
	free(f);
}

static int frontend_open(const struct pg_opts *o, struct pg_port **out)
{
	struct frontend *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct vnet_vhu_fe_config cfg = {
		.name = "pktgen",
		.path = o->socket,
		.server = o->server,
		.connect_timeout_ms = o->connect_timeout_ms,
		.queue_pairs = o->queues,
		.polling = o->poll,
	};
	int e = vnet_vhu_fe_open(&f->fe, &cfg);
	if (e < 0) {
		free(f);
		return e;
	}
	f->port.opts = o;
	f->port.service = frontend_service;
	f->port.ready = frontend_ready;
	f->port.rx = frontend_rx;
	f->port.tx = frontend_tx;
	f->port.close = frontend_close;
	*out = &f->port;
	return 0;
}

int pg_port_open(const struct pg_opts *o, struct pg_port **out)
{
	return o->frontend ? frontend_open(o, out) : backend_open(o, out);
}
