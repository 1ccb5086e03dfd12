/*
 * vhost_user.h — the vhost-user wire protocol (QEMU docs/interop/
 * vhost-user.rst) shared by vnet's back-end (handler) and front-end
 * (virtio-user driver): message layout, per-request rules, and message I/O
 * with file descriptors over a Unix stream socket.
 *
 * Every received message is checked against its request's rules before a
 * handler sees it: payload size, number of fds (extra fds are closed, a
 * truncated fd list is an error), version and flags. Functions are
 * stateless; a socket must be used by one thread at a time.
 */
#ifndef VNET_VHOST_USER_H
#define VNET_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum vnet_vhu_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_MAX_REQUEST = 41,
};

/* Header flags. */
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_VERSION      0x1u
#define VHOST_USER_REPLY        0x4u
#define VHOST_USER_NEED_REPLY   0x8u

/* Virtio feature bit that gates protocol features (never a guest feature). */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* vhost feature: dirty logging for migration (not supported by vnet). */
#define VHOST_F_LOG_ALL 26

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ                  0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD           1
#define VHOST_USER_PROTOCOL_F_RARP                2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK           3
#define VHOST_USER_PROTOCOL_F_NET_MTU             4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ         5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN        6
#define VHOST_USER_PROTOCOL_F_CONFIG              9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD      12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE        13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS              16

/* SET_VRING_KICK/CALL/ERR u64 payload. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD     (1u << 8)

/* SET_MEM_TABLE carries at most this many regions (and fds). */
#define VHOST_USER_MEM_TABLE_MAX 8
/* Most fds any message may carry. */
#define VHOST_USER_MAX_FDS 8

struct vnet_vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vnet_vhu_vring_addr {
	uint32_t index;
	uint32_t flags; /* bit 0: log used-ring writes */
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

struct vnet_vhu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vnet_vhu_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vnet_vhu_mem_region regions[VHOST_USER_MEM_TABLE_MAX];
};

/* ADD_MEM_REG / REM_MEM_REG */
struct vnet_vhu_mem_single {
	uint64_t padding;
	struct vnet_vhu_mem_region region;
};

struct vnet_vhu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vnet_vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[256];
};

#define VHOST_USER_HDR_SIZE 12u

/*
 * One message. On the wire the payload follows the 12-byte header directly;
 * in memory it is 8-byte aligned (offset 16) so its fields can be used in
 * place. vnet_vhu_recv()/send() do the conversion.
 */
struct vnet_vhu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow the header */
	union {
		uint64_t u64;
		struct vnet_vhu_vring_state state;
		struct vnet_vhu_vring_addr addr;
		struct vnet_vhu_memory memory;
		struct vnet_vhu_mem_single mem_reg;
		struct vnet_vhu_log log;
		struct vnet_vhu_config config;
		uint8_t raw[264];
	} payload;
};

_Static_assert(offsetof(struct vnet_vhu_msg, size) == 8, "header fields are contiguous");
_Static_assert(sizeof(struct vnet_vhu_vring_addr) == 40, "vring address payload");
_Static_assert(sizeof(struct vnet_vhu_memory) == 8 + 8 * 32, "memory table payload");
_Static_assert(sizeof(struct vnet_vhu_mem_single) == 40, "single region payload");

/* Largest payload vnet accepts; anything bigger closes the connection. */
#define VHOST_USER_PAYLOAD_MAX sizeof(((struct vnet_vhu_msg *)0)->payload)

/* Name of a request ("SET_MEM_TABLE"), or "UNKNOWN". */
const char *vnet_vhu_request_name(uint32_t request);

/* How many fds a request carries. */
enum vnet_vhu_fd_rule {
	VHU_FDS_NONE,       /* no fd */
	VHU_FDS_ONE,        /* exactly one */
	VHU_FDS_VRING,      /* one, or none when the NOFD bit is set */
	VHU_FDS_MEM_TABLE,  /* exactly nregions (1..8) */
	VHU_FDS_STRAY_OK,   /* none, but one is tolerated and must be closed
			     * unused (REM_MEM_REG: older front-ends send it) */
};

struct vnet_vhu_rule {
	uint16_t min_size;   /* payload bytes */
	uint16_t max_size;
	uint8_t fds;         /* enum vnet_vhu_fd_rule */
	bool reply;          /* back-end always replies (GET_*) */
	bool known;
};

/* The rule for a known request, or NULL for an unknown one. */
const struct vnet_vhu_rule *vnet_vhu_rule(uint32_t request);

/*
 * Checks a received front-end request against its rule. Returns 0, or
 * -EPROTO / -EBADMSG / -EINVAL with a reason in err:
 *   version not 1, REPLY flag set, unknown request, size outside the rule,
 *   wrong number of fds.
 */
int vnet_vhu_check_request(const struct vnet_vhu_msg *msg, unsigned nfds, char *err,
			   size_t errlen);

/*
 * Receives one message (header, then exactly `size` payload bytes) and up to
 * max_fds fds (which arrive with the header). Received fds are CLOEXEC; when
 * more than max_fds arrive, or the kernel truncated the fd list (MSG_CTRUNC),
 * every received fd is closed and -EBADMSG is returned. Returns 0,
 * -ECONNRESET on EOF, -EMSGSIZE when size > VHOST_USER_PAYLOAD_MAX, -EPROTO
 * on a short message, -EAGAIN if the socket is non-blocking and empty, or
 * -errno. The payload read blocks until complete (a peer that stops mid-
 * message is bounded by the socket's SO_RCVTIMEO, which callers set).
 */
int vnet_vhu_recv(int sock, struct vnet_vhu_msg *msg, int *fds, unsigned max_fds,
		  unsigned *nfds);

/* Sends header + msg->size payload bytes with fds. Returns 0 or -errno. */
int vnet_vhu_send(int sock, const struct vnet_vhu_msg *msg, const int *fds, unsigned nfds);

/* Most fds vnet_sock_send_fds() passes (tests send more than any request may). */
#define VNET_SCM_MAX_FDS 64

/*
 * Sends len raw bytes on a stream socket, the fds (SCM_RIGHTS) with the
 * first byte. Returns 0, -EINVAL (too many fds), -ETIMEDOUT, or -errno.
 */
int vnet_sock_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);

/* Closes fds[0..n) and sets them to -1. */
void vnet_vhu_close_fds(int *fds, unsigned n);

/*
 * Creates a listening Unix socket at `path` with permissions `mode` (e.g.
 * 0660). An existing socket file at path is replaced; a symlink or any other
 * kind of file is refused. The path appears only once the socket listens
 * (bound under a temporary name, then renamed), so a client that waits for
 * the file and connects is never refused. Returns the fd (CLOEXEC) or
 * -errno with a reason in err.
 */
int vnet_vhu_listen(const char *path, unsigned mode, char *err, size_t errlen);
/* The same, the socket given to group gid before it appears at path. */
int vnet_vhu_listen_group(const char *path, unsigned mode, gid_t gid, char *err, size_t errlen);

/* Accepts one connection (CLOEXEC). fd or -errno. */
int vnet_vhu_accept(int listen_fd);

/* Connects to a listening socket (client mode). fd (CLOEXEC) or -errno:
 * -ENOENT / -ECONNREFUSED mean "not there yet, retry later". */
int vnet_vhu_connect(const char *path);

/*
 * Client-mode reconnection (the front-end is the server): try to connect
 * when due; on failure the next try waits twice as long, from 50 ms up to
 * max_delay_ms, forever. Zero-initialise before the first call.
 */
struct vnet_vhu_reconnect {
	unsigned delay_ms;
	uint64_t next_ns; /* CLOCK_MONOTONIC */
};

/* Returns a connected fd, or -EAGAIN when not due yet or the try failed. */
int vnet_vhu_reconnect_try(struct vnet_vhu_reconnect *rc, const char *path,
			   unsigned max_delay_ms);

/* Bounds blocking reads and writes on a connection (0 = no bound). */
int vnet_vhu_set_timeout(int sock, unsigned ms);

#endif
