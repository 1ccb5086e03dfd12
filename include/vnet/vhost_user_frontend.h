/*
 * vhost_user_frontend.h — vnet's user-space virtio-net driver ("virtio-user"):
 * a vhost-user FRONT-END. It plays the part QEMU plays for a VM, but the
 * "guest" is this process: it creates the guest memory, negotiates with a
 * vhost-user back-end over a Unix socket (QEMU docs/interop/vhost-user.rst),
 * lays out the virtio-net rings in that memory, and moves frames through
 * them with libvnet's driver-side virtqueue (vnet/virtqueue_driver.h).
 * vnet-pktgen (--role frontend) and vnet-vmm (vhost-user mode) use it.
 *
 * Guest memory: one memfd (MFD_CLOEXEC, no hugepages) mapped once, shared
 * with the back-end by SET_MEM_TABLE as 1..8 regions (cfg.mem_regions; the
 * regions are GPA- and UADDR-adjacent slices of the same fd, so buffers may
 * straddle a region boundary). Guest-physical address = gpa_base + offset in
 * the memfd; the region's userspace_addr (UADDR) is this process's mapping
 * address, as QEMU does. SET_VRING_ADDR carries UADDRs, descriptors carry
 * GPAs. Everything the back-end touches (rings, indirect tables, packet
 * buffers) lives in it:
 *
 *     per ring (rx = 2*i, tx = 2*i+1):  desc | avail | used   (4 KiB-aligned)
 *     per TX ring:                       indirect tables, 2 descriptors/head
 *     per ring:                          queue_size packet buffers of buf_size
 *
 * Connection: client (connect to a back-end listening at cfg.path, retrying
 * with backoff for connect_timeout_ms) or server (listen at cfg.path, accept
 * one back-end within connect_timeout_ms, then stop listening and remove the
 * socket file). Negotiation, in the order QEMU and DPDK use:
 *
 *   SET_OWNER, GET_FEATURES, [GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES],
 *   [GET_QUEUE_NUM], SET_FEATURES, [SET_STATUS A|D|FEATURES_OK],
 *   [GET_CONFIG], [NET_SET_MTU], SET_MEM_TABLE, then per ring SET_VRING_NUM,
 *   SET_VRING_ADDR, SET_VRING_BASE(0), SET_VRING_CALL, SET_VRING_KICK, then
 *   [SET_VRING_ENABLE(1) per ring], [SET_STATUS ...|DRIVER_OK].
 *
 * Protocol features acknowledged (when offered): MQ, REPLY_ACK, NET_MTU (only
 * with cfg.mtu), CONFIG (GET_CONFIG reads MAC / MTU / max pairs), STATUS.
 * With REPLY_ACK every state-changing request carries NEED_REPLY and its
 * answer must be 0. Every reply is checked strictly (flags exactly
 * VERSION|REPLY = 0x5, the request echoed, the exact payload size, no fds)
 * and read with SO_RCVTIMEO = io_timeout_ms: a dead or silent back-end is an
 * error (-ETIMEDOUT, -ECONNRESET, -EPROTO), logged as
 * "vhost-user front-end <name>: ...", never a hang.
 *
 * Features: SET_FEATURES = requested ∩ offered, plus PROTOCOL_FEATURES when
 * offered; VERSION_1 is required. CTRL_VQ is never requested (like DPDK's
 * virtio-user, there is no control queue: extra queue pairs are switched on
 * with SET_VRING_ENABLE), so MQ may be negotiated without CTRL_VQ.
 *
 * Data path: zero offloads, 12-byte virtio_net_hdr (vnet_net_hdr_len) in
 * front of every frame, one frame per chain, no allocation and no syscall
 * per packet; the only syscall is an eventfd kick when the device asks for
 * one (EVENT_IDX-aware, vnet_vq_driver_kick_prepare), none in polling mode.
 * TX copies frames into preallocated buffers (header + frame contiguous; one
 * descriptor, or header and frame as two descriptors of an indirect table
 * when cfg.tx_indirect and INDIRECT_DESC is negotiated). RX buffers are all
 * pre-posted device-writable (one per frame; with MRG_RXBUF a frame spanning
 * several buffers is dropped and counted). rx_burst is ZERO-COPY: it returns
 * pointers into the shared memory, valid until the next rx_burst on the
 * same queue pair (which re-posts them) or until stop/close.
 *
 * Polling mode (cfg.polling): kick and call are sent as VHOST_USER_VRING_NOFD
 * and no eventfd is created; the back-end must poll the rings.
 *
 * Thread-safety: open/stop/close and the getters run on one control thread.
 * Each queue pair's data path (tx_burst, rx_burst, rx_wait, tx_reclaim) may
 * run on its own thread (one thread per queue pair; RX and TX of one pair on
 * the same thread). close/stop must not run concurrently with any data-path
 * call.
 */
#ifndef VNET_VHOST_USER_FRONTEND_H
#define VNET_VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnet/net.h"
#include "vnet/vhost_user.h"
#include "vnet/virtqueue_driver.h"

#define VNET_VHU_FE_MAX_QUEUE_PAIRS 16
#define VNET_VHU_FE_DEFAULT_QUEUE_SIZE 256
#define VNET_VHU_FE_DEFAULT_GPA_BASE 0x100000ull

/* Virtio device status bits (virtio 1.2 §2.1), sent with SET_STATUS. */
#define VNET_VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VNET_VIRTIO_STATUS_DRIVER      2u
#define VNET_VIRTIO_STATUS_DRIVER_OK   4u
#define VNET_VIRTIO_STATUS_FEATURES_OK 8u

struct vnet_vhu_fe_config {
	const char *name;           /* for log lines; default "fe" */
	const char *path;           /* Unix socket path (required) */
	bool server;                /* listen at path and accept one back-end */
	unsigned connect_timeout_ms; /* client retry / server accept window; 0 = 5000 */
	unsigned io_timeout_ms;     /* bound on each reply; 0 = 2000 */
	unsigned queue_pairs;       /* 0 = 1; at most VNET_VHU_FE_MAX_QUEUE_PAIRS */
	uint16_t queue_size;        /* power of two; 0 = 256 */
	uint64_t features;          /* virtio features to request; 0 = default set */
	bool polling;               /* NOFD kick/call: no eventfds, back-end polls */
	bool tx_indirect;           /* TX chains as header+frame via an indirect table */
	uint16_t mtu;               /* sent by NET_SET_MTU when negotiated; 0 = none */
	uint32_t buf_size;          /* bytes per packet buffer incl. header;
				     * 0 = header + max(mtu, 1500) + 18, 64-aligned */
	unsigned mem_regions;       /* SET_MEM_TABLE regions, 1..8; 0 = 1 */
	uint64_t gpa_base;          /* GPA of the memfd's first byte; 0 = 0x100000
				     * (use VNET_VHU_FE_GPA_ZERO for GPA 0) */
};

/* gpa_base value meaning "really 0". */
#define VNET_VHU_FE_GPA_ZERO UINT64_MAX

/* Requested by default: VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX, MQ,
 * MTU, MAC, STATUS and VHOST_USER_F_PROTOCOL_FEATURES. */
uint64_t vnet_vhu_fe_default_features(void);

/* Protocol features this front-end implements (acked when offered). */
uint64_t vnet_vhu_fe_supported_protocol_features(void);

struct vnet_vhu_fe_stats {
	uint64_t tx_packets, tx_bytes;
	uint64_t tx_full;        /* frames not queued: no free buffer/descriptor */
	uint64_t tx_oversize;    /* frames dropped: larger than a buffer */
	uint64_t rx_packets, rx_bytes;
	uint64_t rx_dropped;     /* malformed (shorter than the header, merged) */
	uint64_t kicks;          /* eventfd writes */
};

/* A received frame: points into shared memory (see rx_burst). */
struct vnet_vhu_fe_pkt {
	uint8_t *data;
	uint32_t len;
};

struct vnet_vhu_fe_ring {
	struct vnet_vq_driver drv;
	int kick_fd, call_fd;       /* -1 in polling mode */
	uint8_t *bufs;              /* host address of buffer 0 */
	uint64_t bufs_gpa;
	uint64_t ring_off, ind_off; /* offsets in the memfd */
	uint16_t *stack;            /* TX: free buffer indices; RX: held buffers */
	unsigned nstack;
	unsigned rx_skip;           /* RX: merged-buffer pieces still to drop */
	uint16_t last_avail;        /* GET_VRING_BASE answer at stop */
	bool started;
};

struct vnet_vhu_fe {
	char name[32];
	struct vnet_vhu_fe_config cfg;
	int sock;
	int memfd;
	uint8_t *mem;               /* our mapping of the whole memfd */
	size_t mem_size;
	uint64_t gpa_base;
	uint64_t offered_features, features;     /* back-end's / negotiated */
	uint64_t offered_protocol, protocol;     /* back-end's / acked */
	unsigned backend_queue_num;              /* GET_QUEUE_NUM, 0 when not asked */
	size_t hdr_len;
	uint32_t buf_size;
	unsigned nqp;
	uint8_t status;                          /* last SET_STATUS value */
	bool have_mac;
	uint8_t mac[6];                          /* from GET_CONFIG when offered */
	uint16_t backend_mtu;                    /* from GET_CONFIG, 0 = unknown */
	bool connected;
	struct vnet_vhu_fe_ring rings[2 * VNET_VHU_FE_MAX_QUEUE_PAIRS];
	struct vnet_vhu_fe_stats stats[VNET_VHU_FE_MAX_QUEUE_PAIRS];
};

/*
 * Creates the guest memory, connects (client) or accepts (server), negotiates
 * and starts every ring with its RX buffers posted. On success *out is a
 * running front-end; on failure nothing is left open and the reason is
 * logged. Errors: -EINVAL (config), -ETIMEDOUT (no back-end / no reply in
 * time), -ECONNRESET (back-end closed), -EPROTO (malformed reply, missing
 * VERSION_1, back-end rejected a request), -EOPNOTSUPP (more queue pairs
 * than the back-end's GET_QUEUE_NUM, or > 1 pair without MQ), -ENOMEM,
 * other -errno.
 */
int vnet_vhu_fe_open(struct vnet_vhu_fe **out, const struct vnet_vhu_fe_config *cfg);

/*
 * Orderly stop: waits up to 1 s for the back-end to use every queued TX
 * frame, then GET_VRING_BASE for every started ring (answers recorded in
 * rings[i].last_avail), SET_STATUS 0 when STATUS was negotiated, then
 * closes the socket and the eventfds. Memory stays mapped (stats and held RX
 * pointers stay readable) until close. Returns 0 or the first error (the
 * stop still completes). Idempotent.
 */
int vnet_vhu_fe_stop(struct vnet_vhu_fe *fe);

/* stop() if needed, then unmaps and closes everything and frees fe. NULL ok. */
void vnet_vhu_fe_close(struct vnet_vhu_fe *fe);

/*
 * Queues up to n frames (frames[i] = one contiguous Ethernet frame) on queue
 * pair qp's TX ring, after reclaiming buffers the device has used. Each frame
 * is copied behind a zeroed header into a free buffer. Returns the number of
 * frames taken from the array (frames larger than a buffer are dropped and
 * counted in tx_oversize but still count as taken; the burst stops at the
 * first frame that finds no free buffer), or -EINVAL (qp out of range),
 * -ENOTCONN (stopped), -EIO (device broke the ring; logged). Kicks at most
 * once per call.
 */
int vnet_vhu_fe_tx_burst(struct vnet_vhu_fe *fe, unsigned qp, const struct iovec *frames,
			 unsigned n);

/* Reclaims used TX buffers; returns how many TX buffers are free. */
int vnet_vhu_fe_tx_reclaim(struct vnet_vhu_fe *fe, unsigned qp);

/*
 * Re-posts the buffers returned by the previous call, then reaps up to n
 * received frames (header stripped) into pkts. The pointers stay valid until
 * the next rx_burst on this queue pair, stop or close. Returns the number of
 * frames, or -EINVAL / -ENOTCONN / -EIO as tx_burst.
 */
int vnet_vhu_fe_rx_burst(struct vnet_vhu_fe *fe, unsigned qp, struct vnet_vhu_fe_pkt *pkts,
			 unsigned n);

/*
 * Waits up to timeout_ms for received frames on qp: with eventfds it enables
 * used-buffer notifications and sleeps on the call eventfd; in polling mode
 * it checks the ring every 50 µs. Returns 1 (frames pending), 0 (timeout) or
 * <0 as rx_burst.
 */
int vnet_vhu_fe_rx_wait(struct vnet_vhu_fe *fe, unsigned qp, unsigned timeout_ms);

static inline uint64_t vnet_vhu_fe_features(const struct vnet_vhu_fe *fe)
{
	return fe->features;
}

static inline uint64_t vnet_vhu_fe_protocol_features(const struct vnet_vhu_fe *fe)
{
	return fe->protocol;
}

static inline const struct vnet_vhu_fe_stats *vnet_vhu_fe_stats(const struct vnet_vhu_fe *fe,
								 unsigned qp)
{
	return qp < fe->nqp ? &fe->stats[qp] : NULL;
}

/*
 * Control-thread liveness check (non-blocking): 0 while the back-end is
 * connected, -ECONNRESET once it hung up (then `connected` is false and the
 * owner should close the front-end), -ENOTCONN after stop. The back-end
 * never speaks unasked (no BACKEND_REQ channel), so unexpected bytes on the
 * socket are logged and reported as -EPROTO. The socket is fe->sock, for
 * callers that want to poll it (POLLIN/POLLHUP) themselves.
 */
int vnet_vhu_fe_check(struct vnet_vhu_fe *fe);

/* Call eventfd of ring `ring` (for epoll), -1 in polling mode / out of range. */
int vnet_vhu_fe_call_fd(const struct vnet_vhu_fe *fe, unsigned ring);

#endif
