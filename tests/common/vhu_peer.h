/*
 * vhu_peer.h — a raw vhost-user front-end for tests. It builds and sends
 * arbitrary messages (any request, flags, declared size, payload bytes and
 * any number of fds — malformed ones included) and reads replies with a
 * timeout. It checks nothing: that is the point.
 *
 *     int peer, devsock;
 *     vhu_peer_socketpair(&peer, &devsock);
 *     vhu_peer_send(peer, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, NULL, 0, NULL, 0);
 *     ... back-end handles it ...
 *     struct vhu_reply r;
 *     vhu_peer_recv(peer, &r, 500);
 *
 * Plus small fixtures: fd counting (/proc/self/fd), eventfds, memfd guest
 * memory, counting mappings of a memfd in /proc/self/maps; a test connection
 * (struct vhu_conn: back-end + raw front-end + guest driver) and a hostile
 * connection next to a good one (struct vhu_duo).
 *
 * Thread-safety: none; a peer, connection or duo belongs to one thread.
 */
#ifndef VNET_TESTS_VHU_PEER_H
#define VNET_TESTS_VHU_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/vhost_user.h"
#include "vnet/vhost_user_backend.h"
#include "vnet/virtqueue_driver.h"

/* Flags of a well-formed request. */
#define VHU_F  VHOST_USER_VERSION
#define VHU_FN (VHOST_USER_VERSION | VHOST_USER_NEED_REPLY)

/* A connected AF_UNIX stream pair (both CLOEXEC). 0 or -errno. */
int vhu_peer_socketpair(int *peer, int *dev);

/*
 * Sends a 12-byte header {request, flags, size} followed by `len` payload
 * bytes (len may differ from size: lies about the size are allowed), with
 * nfds fds (up to 64) in one SCM_RIGHTS message. 0 or -errno.
 */
int vhu_peer_send_ex(int sock, uint32_t request, uint32_t flags, uint32_t size,
		     const void *payload, size_t len, const int *fds, unsigned nfds);

/* Same with size == len. */
int vhu_peer_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		  uint32_t size, const int *fds, unsigned nfds);

/* Sends raw bytes (anything) with fds. 0 or -errno. */
int vhu_peer_send_raw(int sock, const void *bytes, size_t len, const int *fds, unsigned nfds);

/* Convenience senders for the common payloads. */
int vhu_peer_send_u64(int sock, uint32_t request, uint32_t flags, uint64_t v, const int *fds,
		      unsigned nfds);
int vhu_peer_send_state(int sock, uint32_t request, uint32_t flags, uint32_t index,
			uint32_t num);

struct vhu_reply {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vnet_vhu_vring_state state;
		struct vnet_vhu_config config;
		uint8_t raw[512];
	} payload;
	unsigned nfds; /* fds that came with it (closed by recv) */
};

/*
 * Reads one message within timeout_ms: 0, -ETIMEDOUT (nothing / incomplete
 * in time), -ECONNRESET (EOF before a header), -EMSGSIZE (payload larger
 * than the buffer; it is drained), or -errno. Fds that came along are
 * counted and closed.
 */
int vhu_peer_recv(int sock, struct vhu_reply *r, unsigned timeout_ms);

/* True when sock becomes readable (data or EOF) within timeout_ms. */
bool vhu_peer_readable(int sock, unsigned timeout_ms);
/* True when the other end has closed (EOF readable, nothing else queued). */
bool vhu_peer_closed(int sock, unsigned timeout_ms);

/* Open fds of this process (entries of /proc/self/fd, excluding the dir's own). */
unsigned vhu_count_fds(void);

/* Non-blocking, CLOEXEC eventfd; aborts on failure. */
int vhu_eventfd(void);
/* True when the eventfd has a non-zero count (and reads it, resetting it). */
bool vhu_eventfd_fired(int efd);

/*
 * Creates a memfd named `name` of `size` bytes, maps it (shared, RW) and
 * returns the fd; *map receives the mapping. Aborts on failure.
 */
int vhu_memfd(const char *name, size_t size, void **map);

/* Lines of /proc/self/maps that map the memfd called `name`. */
unsigned vhu_count_maps(const char *name);

/*
 * ---- a test connection: back-end + raw front-end + guest driver ----
 *
 * One struct vnet_vhu_dev on one end of a socket pair (or any connected
 * socket), the raw peer on the other, and guest memory in a memfd that the
 * test maps too, so the test is also the guest driver (vnet_vq_driver) on
 * the same rings. SET_VRING_ADDR carries the test's own mapping addresses
 * (UADDR), descriptors carry GPAs (gpa = VHU_GPA + offset in the memfd).
 *
 * Layout of the memfd: ring i at VHU_RING_OFF(i); frame buffers of ring i
 * at VHU_BUF_OFF(i) + slot * VHU_BUF_SIZE. Frames carry a pattern derived
 * from a 32-bit sequence number (first 4 bytes), checked on the other side.
 *
 * Every helper returns 0 / a count, or <0 naming the failure (the caller
 * asserts). The step-wise model: a helper sends one message and calls
 * vnet_vhu_dev_handle() once, then reads the reply when one is due.
 */
#define VHU_GPA       0x100000ull
#define VHU_MEMSZ     (4u << 20)
#define VHU_RINGS     4
#define VHU_QSZ       256
#define VHU_RING_OFF(i) ((uint64_t)(i) * 0x10000)
#define VHU_BUF_OFF(i)  (0x100000ull + (uint64_t)(i) * 0x80000)
#define VHU_BUF_SIZE  2048u

struct vhu_conn {
	int peer;                   /* the test's end */
	struct vnet_vhu_dev *dev;   /* heap */
	bool live;                  /* dev initialised and not yet fini'd */
	int last_rc;                /* last vnet_vhu_dev_handle() result */
	char memname[32];
	int memfd;
	uint8_t *mem;
	size_t memsz;
	int kick[VHU_RINGS], call[VHU_RINGS];
	struct vnet_vq_driver drv[VHU_RINGS];
	bool drv_live[VHU_RINGS];
	uint32_t slot_next[VHU_RINGS];
	uint32_t cookies[VHU_RINGS][VHU_QSZ];
	uint64_t features, protocol; /* acked */
	bool ack;                   /* REPLY_ACK negotiated: send NEED_REPLY, read acks */
};

/* Default back-end configuration (name "t", 1 queue pair, 300 ms I/O timeout). */
struct vnet_vhu_backend_config vhu_conn_default_config(void);

/*
 * Opens a connection: a socket pair (or, when dev_sock >= 0, the given
 * peer/dev sockets), vnet_vhu_dev_init(), and a memfd called memname of
 * VHU_MEMSZ bytes (no memfd when memname is NULL). 0 or <0.
 */
int vhu_conn_open(struct vhu_conn *c, const struct vnet_vhu_backend_config *cfg,
		  const char *memname, int peer_sock, int dev_sock);
/* vnet_vhu_dev_fini() (once). */
void vhu_conn_fini(struct vhu_conn *c);
/* fini + closes and unmaps everything the test side holds. */
void vhu_conn_close(struct vhu_conn *c);

/* Sends a message as given and runs handle() once; returns handle's result. */
int vhu_conn_req(struct vhu_conn *c, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds);
/*
 * A SET-type request the proper way: NEED_REPLY when c->ack, handle(), and
 * the ack checked (flags 0x5, same request, size 8). Returns 0 (served, ack
 * 0), 1 (served, ack non-zero), handle's error, or -EBADMSG/-ETIMEDOUT for
 * a bad/missing ack (-EEXIST when an unexpected reply came without ack).
 */
int vhu_conn_set(struct vhu_conn *c, uint32_t request, const void *payload, uint32_t size,
		 const int *fds, unsigned nfds);
int vhu_conn_set_u64(struct vhu_conn *c, uint32_t request, uint64_t v);
int vhu_conn_set_state(struct vhu_conn *c, uint32_t request, uint32_t index, uint32_t num);
/* SET_VRING_KICK/CALL/ERR with fd (or NOFD when fd < 0). */
int vhu_conn_set_vring_fd(struct vhu_conn *c, uint32_t request, unsigned ring, int fd);
/* A GET-type request; reply checked (flags 0x5, same request). 0 or <0. */
int vhu_conn_get(struct vhu_conn *c, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, struct vhu_reply *r);
int vhu_conn_get_u64(struct vhu_conn *c, uint32_t request, uint64_t *v);

/*
 * SET_OWNER, GET_FEATURES, [GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM],
 * SET_FEATURES with (offered & want_features), protocol (offered &
 * want_protocol) when bit 30 is in both.
 */
int vhu_conn_negotiate(struct vhu_conn *c, uint64_t want_features, uint64_t want_protocol);
/* One region {VHU_GPA, memsz, uaddr = test mapping, offset 0} with the memfd. */
int vhu_conn_set_mem(struct vhu_conn *c);
/* Driver init on ring i + SET_VRING_NUM/BASE 0/ADDR/KICK/CALL (fresh eventfds). */
int vhu_conn_ring(struct vhu_conn *c, unsigned ring, uint16_t size);
/* SET_VRING_ADDR for ring i at its driver's current location. */
int vhu_conn_ring_addr(struct vhu_conn *c, unsigned ring);
/* negotiate + memory + rings 0 and 1 + SET_VRING_ENABLE 1 (if protocol). */
int vhu_conn_up(struct vhu_conn *c, uint64_t want_features, uint64_t want_protocol);

/* The back-end's state of a ring. */
enum vnet_vhu_ring_state vhu_conn_ring_state(struct vhu_conn *c, unsigned ring);

/* Guest: adds n TX frames of len bytes (seq, seq+1, ...) on ring; kicks. n added or <0. */
int vhu_guest_tx(struct vhu_conn *c, unsigned ring, unsigned n, uint32_t len, uint32_t seq);
/* Guest: reaps used entries; count. */
int vhu_guest_reap(struct vhu_conn *c, unsigned ring);
/* Guest: posts n writable VHU_BUF_SIZE buffers on ring. n or <0. */
int vhu_guest_rx_post(struct vhu_conn *c, unsigned ring, unsigned n);
/* Guest: takes one used RX buffer: 1 (seq/len filled, pattern checked), 0 none, <0. */
int vhu_guest_rx_get(struct vhu_conn *c, unsigned ring, uint32_t *seq, uint32_t *len);

/*
 * Device ("data plane"): ring_enter, pops up to max chains, checks each
 * frame's pattern and records its seq, pushes, flushes, ring_exit(notify).
 * Returns frames taken, -ENOENT when ring_enter gave NULL, -EBADMSG on a
 * corrupt frame. *state (may be NULL) is the state ring_enter reported.
 */
int vhu_device_pop(struct vhu_conn *c, unsigned ring, uint32_t *seqs, unsigned max,
		   bool *notify, enum vnet_vhu_ring_state *state);
/* Device: writes one frame (seq, len) into the next RX chain. 1, 0 (no buffer), <0. */
int vhu_device_rx(struct vhu_conn *c, unsigned ring, uint32_t seq, uint32_t len, bool *notify);

/*
 * Round trip on queue pair 0: 4 TX frames reach the device intact and are
 * returned to the guest, one RX frame reaches the guest. 0 or <0 naming the
 * failing step (-100 - step).
 */
int vhu_conn_traffic(struct vhu_conn *c, uint32_t seq);

/*
 * ---- a hostile connection next to a good one ----
 *
 * Two back-ends in this process: "good" (memfd "vhu-good", all features and
 * protocol features, two rings up) carries VHU_DUO_GOOD_FRAMES frames before
 * and after every hostile case; "bad" (memfd "vhu-bad") is opened per case
 * and must lose only itself: nothing of it stays after close (fds, mappings)
 * and the good one still flows. The checks return 0 or <0 naming the failed
 * check, printed to stderr with the values (the caller asserts == 0).
 *
 *     struct vhu_duo d;
 *     vhu_duo_open(&d);
 *     struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
 *     vhu_duo_bad_open(&d, &cfg, true, true);
 *     int rc = vhu_conn_req(&d.bad, ...hostile...);
 *     vhu_duo_bad_dropped(&d, rc, "reason");     // or vhu_duo_bad_close(&d)
 *     vhu_duo_close(&d);
 */
#define VHU_DUO_GOOD_TX 32u  /* guest TX frames per round, on ring 1 */
#define VHU_DUO_GOOD_RX 8u   /* device RX frames per round, on ring 0 */
#define VHU_DUO_GOOD_FRAMES (VHU_DUO_GOOD_TX + VHU_DUO_GOOD_RX)

struct vhu_duo {
	struct vhu_conn good, bad;
	bool bad_open;
	unsigned fds0;  /* fds of the process before the bad connection opened */
	uint32_t seq;   /* the good traffic's next sequence number */
};

/* The good connection, up, and one round of good traffic checked. 0 or <0. */
int vhu_duo_open(struct vhu_duo *d);
/* Closes both connections (the bad one if open). */
void vhu_duo_close(struct vhu_duo *d);

/*
 * One round on the good connection: VHU_DUO_GOOD_TX frames guest → device,
 * VHU_DUO_GOOD_RX device → guest, each checked (sequence, length, payload).
 * Returns how many arrived intact (VHU_DUO_GOOD_FRAMES when all did).
 */
unsigned vhu_duo_good(struct vhu_duo *d);

/*
 * A round of good traffic (all intact), then the bad connection: cfg with
 * the name "bad", memfd "vhu-bad"; with `negotiate` vhu_conn_negotiate()
 * (everything offered but LOG_ALL: REPLY_ACK on), with `mem` also
 * vhu_conn_set_mem(). The test log is cleared. 0 or <0.
 */
int vhu_duo_bad_open(struct vhu_duo *d, const struct vnet_vhu_backend_config *cfg,
		     bool negotiate, bool mem);
/*
 * Closes the bad connection; then the process holds the fds it held before
 * vhu_duo_bad_open(), no mapping of "vhu-bad", and a round of good traffic
 * arrives intact. 0 or <0.
 */
int vhu_duo_bad_close(struct vhu_duo *d);
/*
 * The bad connection was dropped: rc < 0, its last_error contains needle,
 * "closing connection" logged exactly once, no reply sent; then
 * vhu_duo_bad_close(). 0 or <0.
 */
int vhu_duo_bad_dropped(struct vhu_duo *d, int rc, const char *needle);

#endif
