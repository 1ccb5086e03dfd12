/*
 * vhost_user_backend.h — the vhost-user back-end ("handler"): one struct
 * vnet_vhu_dev per connection, holding the negotiated features, the guest
 * memory the front-end shared (mmapped from its fds) and the virtio-net
 * rings (2 per queue pair: rx = 2*i, tx = 2*i+1), each served by libvnet's
 * one device-side virtqueue.
 *
 * Control plane: the owner calls vnet_vhu_dev_handle() whenever the socket
 * is readable. Every message is checked against its rules (payload size,
 * fd count, vring index before any narrowing) before it is acted on; a
 * malformed or unsupported request is logged once and makes handle() return
 * <0, after which the owner calls vnet_vhu_dev_fini() (rings stopped, memory
 * unmapped, fds closed) and closes nothing else: other connections are
 * separate objects and never affected.
 *
 * Ring states follow the spec: stopped/started × disabled/enabled. A ring
 * starts when SET_VRING_KICK arrives with its size, addresses and memory
 * known (as libvhost-user does), stops on GET_VRING_BASE. Without
 * VHOST_USER_F_PROTOCOL_FEATURES a started ring is enabled at once,
 * otherwise by SET_VRING_ENABLE. A started but disabled ring must be served
 * as "discard guest TX, deliver no RX" by the data plane.
 *
 * Thread-safety: control functions (init, handle, fini) run on one control
 * thread. The data plane may serve each ring from one other thread through
 * vnet_vhu_ring_enter()/exit(), which take the ring's lock with a trylock
 * and the guest-memory read bracket; the control thread takes the same lock
 * (spinning for at most one burst) before it changes a ring or the memory.
 *
 * The owner must ignore SIGPIPE: a front-end may pass a pipe with no reader
 * as a call fd (vnet-switchd and vnet-pktgen do ignore it).
 */
#ifndef VNET_VHOST_USER_BACKEND_H
#define VNET_VHOST_USER_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vnet/guestmem.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/pkt.h"
#include "vnet/vhost_user.h"
#include "vnet/virtqueue.h"

#define VNET_VHU_MAX_QUEUE_PAIRS 64
#define VNET_VHU_MAX_MEM_SLOTS   32

enum vnet_vhu_ring_state {
	VNET_VHU_RING_STOPPED = 0,
	VNET_VHU_RING_DISABLED = 1, /* started, disabled: drop TX, no RX */
	VNET_VHU_RING_ENABLED = 2,  /* started and enabled */
};

struct vnet_vhu_dev;

/* Called on the control thread after a ring changed state or fds. */
typedef void (*vnet_vhu_ring_event_fn)(struct vnet_vhu_dev *dev, unsigned ring, void *arg);

struct vnet_log_limit; /* vnet/log.h */

struct vnet_vhu_backend_config {
	const char *name;          /* for log lines, e.g. "vm1" */
	unsigned max_queue_pairs;  /* 1..VNET_VHU_MAX_QUEUE_PAIRS (GET_QUEUE_NUM) */
	uint64_t features;         /* virtio features to offer; 0 = vnet's default */
	uint16_t mtu;              /* offered with VIRTIO_NET_F_MTU when non-zero */
	bool has_mac;              /* offer VIRTIO_NET_F_MAC, served by GET_CONFIG */
	uint8_t mac[6];
	unsigned io_timeout_ms;    /* bound on reading one message; 0 = 1000 */
	vnet_vhu_ring_event_fn ring_event;
	void *ring_event_arg;
	/* Refusals are logged through it (log.h), so a front-end reconnecting
	 * with bad messages cannot flood the log; kept by the caller across
	 * connections, used on the control thread. NULL: every one is logged. */
	struct vnet_log_limit *log_limit;
};

/* The features vnet's back-end implements fully and offers by default. */
uint64_t vnet_vhu_backend_default_features(void);

struct vnet_vhu_mapping {
	void *base;        /* mmap result */
	size_t len;
	struct vnet_mem_region region;
};

struct vnet_vhu_ring {
	struct vnet_vq vq;
	atomic_int state;           /* enum vnet_vhu_ring_state, read by data plane */
	atomic_flag lock;           /* control vs data plane */
	int kick_fd, call_fd, err_fd; /* -1 when absent (NOFD: polling) */
	uint16_t num;
	uint16_t base;              /* avail index to resume from */
	bool num_set, addr_set, enable_requested, started;
	bool err_signalled;         /* err fd written since the ring last started */
	struct vnet_vhu_vring_addr addr;
	uint64_t interrupts;        /* call eventfd writes */
	struct vnet_net_stats stats; /* written by the data-plane thread only */
};

struct vnet_vhu_dev {
	char name[48];
	int sock;
	struct vnet_vhu_backend_config cfg;
	uint64_t offered_features, acked_features;
	uint64_t offered_protocol, acked_protocol;
	bool features_set;
	bool owner;
	uint8_t status;
	uint16_t mtu;
	uint16_t hdr_len;           /* virtio-net header size for the acked features */
	struct vnet_guestmem gm;
	struct vnet_vhu_mapping maps[VNET_VHU_MAX_MEM_SLOTS];
	unsigned nmaps;
	unsigned nrings;            /* 2 * max_queue_pairs */
	struct vnet_vhu_ring rings[2 * VNET_VHU_MAX_QUEUE_PAIRS];
	char last_error[160];
};

/*
 * On success takes ownership of the connected socket `sock` (sets the I/O
 * timeout). Returns 0 or -EINVAL (bad config) / -ENOMEM; on failure the
 * caller still owns `sock`, and vnet_vhu_dev_fini() is safe to call.
 */
int vnet_vhu_dev_init(struct vnet_vhu_dev *dev, const struct vnet_vhu_backend_config *cfg,
		      int sock);

/*
 * Reads and serves one message; call it when the socket is readable.
 * Returns 0 when served (including a request that failed cleanly and was
 * answered with a REPLY_ACK error), -EAGAIN when no message arrived within
 * the I/O timeout (not fatal, nothing logged), or another <0 when the
 * connection must be dropped: -ECONNRESET (peer closed) or a protocol
 * violation, described in dev->last_error and logged.
 */
int vnet_vhu_dev_handle(struct vnet_vhu_dev *dev);

/* Stops every ring, unmaps guest memory, closes every fd incl. the socket. */
void vnet_vhu_dev_fini(struct vnet_vhu_dev *dev);

/* ---- data plane ---- */

/*
 * Takes ring `ring` for one burst: NULL when the ring is stopped, busy with
 * the control thread, or out of range. Otherwise returns the queue (started;
 * *state says enabled or disabled) inside a guest-memory read bracket;
 * vnet_vhu_ring_exit() must follow on the same thread.
 */
struct vnet_vq *vnet_vhu_ring_enter(struct vnet_vhu_dev *dev, unsigned ring,
				    enum vnet_vhu_ring_state *state, unsigned *token);

/*
 * Ends the burst; when `notify` (vnet_vq_flush()'s answer) writes the call
 * eventfd (none in polling mode). A queue that went broken during the
 * burst signals the err eventfd once.
 */
void vnet_vhu_ring_exit(struct vnet_vhu_dev *dev, unsigned ring, unsigned token, bool notify);

/*
 * Frames the guest sent on queue pair qp (its TX ring 2*qp+1), as packets
 * from `pool`; on a disabled ring they are consumed and dropped. Returns the
 * number of packets (0 when stopped or busy).
 */
unsigned vnet_vhu_rx_burst(struct vnet_vhu_dev *dev, unsigned qp, struct vnet_pkt_pool *pool,
			   struct vnet_pkt **pkts, unsigned n);

/*
 * Delivers packets to the guest's RX ring 2*qp (only when enabled). Returns
 * how many were consumed (see vnet_net_enqueue); the caller frees them all.
 */
unsigned vnet_vhu_tx_burst(struct vnet_vhu_dev *dev, unsigned qp, struct vnet_pkt **pkts,
			   unsigned n);

/* Kick eventfd of a ring (for epoll in idle mode), or -1. */
int vnet_vhu_ring_kick_fd(struct vnet_vhu_dev *dev, unsigned ring);

#endif
