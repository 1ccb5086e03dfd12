/*
 * vhost_user_session.h — the front-end half of a vhost-user conversation
 * (QEMU docs/interop/vhost-user.rst), independent of who owns the guest
 * memory and the rings: connection, feature and protocol-feature
 * negotiation, memory table, ring start / stop, status, config and liveness.
 * Two users: libvnet's virtio-user driver (vnet/vhost_user_frontend.h), whose
 * "guest" is its own memfd, and vnet-vmm's vhost-user network back-end, which
 * hands over a real guest's RAM (the VMM's memfd), the rings the guest driver
 * placed, and the transport's kick (ioeventfd) and call (irqfd) eventfds.
 *
 * Connection: client (connect to cfg.path, retrying with backoff for
 * connect_timeout_ms while nobody listens) or server (listen at cfg.path,
 * accept one back-end within connect_timeout_ms, then stop listening and
 * remove the socket file). vnet_vhu_session_connect() then runs
 *
 *   SET_OWNER, GET_FEATURES, [GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES],
 *   [GET_QUEUE_NUM]
 *
 * and the owner continues in the order QEMU and DPDK use: set_features,
 * [set_status A|D|FEATURES_OK], [get_config], [set_mtu], set_mem_table,
 * per ring start_ring (NUM, ADDR, BASE, CALL, KICK), [enable_ring per ring],
 * [set_status ...|DRIVER_OK]; to stop: [enable_ring 0], stop_ring
 * (GET_VRING_BASE) per ring, [set_status 0].
 *
 * Protocol features acked are cfg.protocol_features ∩ offered; the session
 * implements MQ (GET_QUEUE_NUM), REPLY_ACK, NET_MTU, CONFIG and STATUS.
 * VERSION_1 must be offered (legacy virtio is not supported). With REPLY_ACK
 * every state-changing request carries NEED_REPLY and its answer must be 0.
 * Every reply is checked strictly (flags exactly VERSION|REPLY = 0x5, the
 * request echoed, the exact payload size, no fds) and read with SO_RCVTIMEO
 * = io_timeout_ms: a dead or silent back-end is an error (-ETIMEDOUT,
 * -ECONNRESET, -EPROTO), logged as "<log_prefix> <name>: ...", never a hang.
 * After such an error the stream can no longer be trusted: the session is
 * marked disconnected and later requests fail with -ENOTCONN without a
 * word. A refusal (REPLY_ACK status != 0, -EPROTO) leaves it connected.
 *
 * Thread-safety: a session is used by one thread at a time (the owner
 * serialises). Another thread may poll s->sock for POLLHUP/POLLRDHUP as long
 * as the owner does not close the session meanwhile.
 */
#ifndef VNET_VHOST_USER_SESSION_H
#define VNET_VHOST_USER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "vnet/net.h"
#include "vnet/vhost_user.h"

/* Virtio device status bits (virtio 1.2 §2.1), sent with SET_STATUS (the
 * same values as in vnet/vhost_user_frontend.h). */
#ifndef VNET_VIRTIO_STATUS_ACKNOWLEDGE
#define VNET_VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VNET_VIRTIO_STATUS_DRIVER      2u
#define VNET_VIRTIO_STATUS_DRIVER_OK   4u
#define VNET_VIRTIO_STATUS_FEATURES_OK 8u
#endif

struct vnet_vhu_session_config {
	const char *name;            /* for log lines; default "fe" */
	const char *log_prefix;      /* default "vhost-user front-end" */
	const char *path;            /* Unix socket path (required) */
	bool server;                 /* listen at path and accept one back-end */
	unsigned connect_timeout_ms; /* client retry / server accept window; 0 = 5000 */
	unsigned io_timeout_ms;      /* bound on each reply; 0 = 2000 */
	uint64_t protocol_features;  /* acked when offered; 0 = all the session supports */
};

struct vnet_vhu_session {
	char name[32];
	char log_prefix[32];
	char path[108];
	int sock;                                /* -1 when closed */
	unsigned io_timeout_ms;
	uint64_t offered_features, features;     /* back-end's / sent by SET_FEATURES */
	uint64_t offered_protocol, protocol;     /* back-end's / acked */
	uint64_t queue_num;                      /* GET_QUEUE_NUM, 0 when MQ not acked */
	uint8_t status;                          /* last SET_STATUS value sent */
	bool connected;                          /* false after hang-up or a broken reply */
};

/* A slice of an fd shared as guest memory (SET_MEM_TABLE). */
struct vnet_vhu_session_region {
	uint64_t gpa, size;
	uint64_t uaddr;        /* the front-end's address of the slice (SET_VRING_ADDR space) */
	int fd;
	uint64_t fd_offset;    /* where the slice starts in fd */
};

/* One ring as the back-end must run it. Addresses are front-end UADDRs. */
struct vnet_vhu_session_ring {
	unsigned index;
	uint16_t num;
	uint64_t desc, avail, used;
	uint16_t base;         /* next avail index to process */
	int kick_fd, call_fd;  /* -1 = VHOST_USER_VRING_NOFD (the back-end polls) */
};

/* Protocol features the session implements. */
uint64_t vnet_vhu_session_supported_protocol_features(void);

/* An empty, closed session (close() is then a no-op). */
void vnet_vhu_session_init(struct vnet_vhu_session *s);

/*
 * Initialises s, connects (or accepts) and negotiates up to GET_QUEUE_NUM.
 * Returns 0 or -EINVAL (config), -ETIMEDOUT (nobody there / no reply in
 * time), -ECONNRESET, -EPROTO (malformed reply, no VERSION_1), -errno; on
 * failure the reason is logged and nothing is left open.
 */
int vnet_vhu_session_connect(struct vnet_vhu_session *s, const struct vnet_vhu_session_config *cfg);

static inline bool vnet_vhu_session_has_protocol(const struct vnet_vhu_session *s, unsigned bit)
{
	return s->protocol & VNET_BIT(bit);
}

/* SET_FEATURES with (features ∩ offered), plus PROTOCOL_FEATURES when
 * offered (QEMU and DPDK ack it too). The result is in s->features. */
int vnet_vhu_session_set_features(struct vnet_vhu_session *s, uint64_t features);

/* SET_STATUS when STATUS was negotiated (s->status); otherwise nothing is sent. */
int vnet_vhu_session_set_status(struct vnet_vhu_session *s, uint8_t status);

/* NET_SET_MTU when NET_MTU was negotiated; otherwise nothing is sent. */
int vnet_vhu_session_set_mtu(struct vnet_vhu_session *s, uint16_t mtu);

/* GET_CONFIG of [offset, offset+len) of the device config (len <= 256) into
 * buf; -EOPNOTSUPP when CONFIG was not negotiated. */
int vnet_vhu_session_get_config(struct vnet_vhu_session *s, uint32_t offset, void *buf,
				uint32_t len);

/* SET_MEM_TABLE with n (1..8) regions, one fd each. */
int vnet_vhu_session_set_mem_table(struct vnet_vhu_session *s,
				   const struct vnet_vhu_session_region *regions, unsigned n);

/* SET_VRING_NUM, _ADDR, _BASE, _CALL, _KICK, then SET_VRING_ENABLE 1 when
 * `enable` (only with PROTOCOL_FEATURES; without it the ring runs at once). */
int vnet_vhu_session_start_ring(struct vnet_vhu_session *s, const struct vnet_vhu_session_ring *r,
				bool enable);

/* SET_VRING_ERR: the back-end writes the eventfd `fd` when it finds ring
 * `index` broken by the driver (fd -1: VHOST_USER_VRING_NOFD, none). */
int vnet_vhu_session_set_vring_err(struct vnet_vhu_session *s, unsigned index, int fd);

/* SET_VRING_ENABLE when PROTOCOL_FEATURES was negotiated; otherwise 0. */
int vnet_vhu_session_enable_ring(struct vnet_vhu_session *s, unsigned index, bool enable);

/* GET_VRING_BASE: the back-end stops the ring and answers the next avail
 * index it would have processed (*last_avail). */
int vnet_vhu_session_stop_ring(struct vnet_vhu_session *s, unsigned index, uint16_t *last_avail);

/*
 * Non-blocking liveness check: 0 while connected, -ECONNRESET once the
 * back-end hung up (logged; connected becomes false), -ENOTCONN when not
 * connected. The back-end never speaks unasked (no BACKEND_REQ channel), so
 * bytes waiting on the socket are logged and reported as -EPROTO.
 */
int vnet_vhu_session_check(struct vnet_vhu_session *s);

/* Logs "<log_prefix> <name>: <message>" as an error and returns code. */
int vnet_vhu_session_err(const struct vnet_vhu_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Closes the socket (the back-end sees a hang-up). Idempotent. */
void vnet_vhu_session_close(struct vnet_vhu_session *s);

#endif
