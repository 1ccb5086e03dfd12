/*
 * fuzz_vhost_user.c — libFuzzer target for vnet's vhost-user back-end as a
 * hostile front-end drives it: one connection per input, through the real
 * message path (vnet_vhu_dev_handle: vnet_vhu_recv with SCM_RIGHTS, the
 * request rules, dispatch in src/vhost/vhost_user_backend.c) and then the
 * data plane on whatever rings the messages started (vnet_vhu_rx_burst /
 * tx_burst, i.e. net_rxtx over guest memory the front-end shared).
 *
 * The harness is the front-end and the guest. It writes framed messages
 * (header + payload; sizes from the input, sometimes lying, so that the
 * stream desynchronises) on one end of a socket pair, attaching fds it
 * creates: memfds of several sizes (64 KiB, 4 KiB, empty, 64 KiB + 1) for
 * SET_MEM_TABLE / ADD_MEM_REG, eventfds for kick/call/err, a pipe or
 * /dev/null where the wrong kind of fd goes, extra fds on messages that
 * take none. Every message is queued first (a pipelining front-end), the
 * write side is shut, then the back-end handles one message per MSG step,
 * interleaved with the guest's writes into its memory and data-plane bursts.
 *
 * Oracles: handle() never times out on a complete stream; a dropped
 * connection says why; after every message the device state is coherent
 * (acked ⊆ offered, ring states follow started/enabled, every fd the
 * device holds is open, at most 32 mappings); replies are well-formed
 * (flags exactly VERSION|REPLY, acks 0 or 1); packets from the guest are
 * Ethernet-sized and come from the pool, which gets every one back. After
 * fini: the process has exactly the fds and the memfd mappings it had
 * before the input (/proc/self/fd, /proc/self/maps).
 *
 * Input (missing bytes read as 0):
 *   h0: bits 0-1 queue pairs (1, 2, 3, 64), bit 2 MAC, bit 3 MTU,
 *       bit 4 features from h1..h8 (else the default set)
 *   then steps until the input ends: u8 opcode (mod STEP_COUNT) + arguments
 *   (see the step functions; gen-corpus.py writes this format).
 * Single-threaded. Memfds and their guest-side mappings live across inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "testmem.h"
#include "vhu_peer.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/pkt.h"
#include "vnet/vhost_user.h"
#include "vnet/vhost_user_backend.h"
#include "vnet/virtio_ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond) FUZZ_CHECK("fuzz_vhost_user", cond)

#define BIT(b) (1ull << (b))
#define MEMFD_NAME "fuzz-vhu"
#define NMEMFD 4
#define GUEST_GPA  0x100000ull         /* memfd k at GUEST_GPA + k * GPA_STRIDE */
#define GPA_STRIDE 0x100000ull
#define GUEST_UADDR 0x7f0000000000ull  /* front-end addresses, same layout */
#define RING_STRIDE 0x2000u            /* ring r: desc, +0x1000 avail, +0x1800 used */
#define BUF_OFF    0x8000u             /* frame buffers in memfd 0 */
#define MAX_STEPS  96
#define MAX_FDS_MSG 10                 /* more than any message may carry */
#define BURST 32

static const size_t memfd_size[NMEMFD] = {0x10000, 0x1000, 0, 0x10001};

static struct {
	int memfd[NMEMFD];
	uint8_t *guest[NMEMFD]; /* the guest's view (NULL for the empty memfd) */
	unsigned fds_base, maps_base;
	size_t stream_bytes; /* written to the back-end by this input */
	struct vnet_vhu_dev dev;
	struct vnet_pkt_pool pool;
	bool ready;
} S;

static bool trace; /* FUZZ_VHU_TRACE=1: steps, results and the back-end's log */

/* ---- building messages ------------------------------------------------- */

struct out_msg {
	uint8_t buf[VHOST_USER_HDR_SIZE + 512];
	size_t len; /* payload bytes actually written */
	int fds[MAX_FDS_MSG];
	bool close_fd[MAX_FDS_MSG]; /* created for this message only */
	unsigned nfds;
};

static void put(struct out_msg *m, const void *p, size_t n)
{
	CHECK(m->len + n <= sizeof(m->buf) - VHOST_USER_HDR_SIZE);
	memcpy(m->buf + VHOST_USER_HDR_SIZE + m->len, p, n);
	m->len += n;
}

static void put64(struct out_msg *m, uint64_t v)
{
	put(m, &v, sizeof(v));
}

static void put32(struct out_msg *m, uint32_t v)
{
	put(m, &v, sizeof(v));
}

/* An fd of the kind the input asks for (kind 0: the natural one given). */
static void add_fd(struct out_msg *m, unsigned kind, int natural)
{
	if (m->nfds == MAX_FDS_MSG)
		return;
	int fd = -1;
	bool own = true;
	switch (kind % 6) {
	case 0:
		if (natural >= 0) {
			fd = natural;
			own = false;
		} else {
			fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		}
		break;
	case 1: fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); break;
	case 2: {
		int p[2];
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		close(p[0]);
		fd = p[1]; /* a blocking pipe where an eventfd or a memfd belongs */
		break;
	}
	case 3: fd = open("/dev/null", O_RDWR | O_CLOEXEC); break;
	case 4: fd = S.memfd[kind / 6 % NMEMFD]; own = false; break;
	default: return; /* no fd at all */
	}
	CHECK(fd >= 0);
	m->fds[m->nfds] = fd;
	m->close_fd[m->nfds] = own;
	m->nfds++;
}

/* Ring index: mostly in range, sometimes past the end or wider than 8 bits. */
static uint32_t rd_ring(struct reader *r)
{
	uint8_t v = rd8(r);
	return (v & 0x80) ? rd32(r) : v & 7;
}

/* A memory region: one of the memfds as a front-end would describe it, or
 * variations that lie about sizes and offsets. */
static void gen_region(struct reader *r, struct out_msg *m, bool with_fd)
{
	uint8_t sel = rd8(r);
	unsigned k = sel & 3;
	struct vnet_vhu_mem_region reg = {
		.guest_phys_addr = GUEST_GPA + k * GPA_STRIDE,
		.memory_size = memfd_size[k] ? memfd_size[k] : 0x1000,
		.userspace_addr = GUEST_UADDR + k * GPA_STRIDE,
		.mmap_offset = 0,
	};
	if (sel & 0x04)
		reg.memory_size += 0x1000; /* past the end of the file */
	if (sel & 0x08) {
		reg.mmap_offset = 0x1000; /* the guest's memory starts 4 KiB in */
		reg.memory_size = reg.memory_size > 0x1000 ? reg.memory_size - 0x1000 : 1;
	}
	if (sel & 0x10) /* overlaps memfd 0's addresses */
		reg.guest_phys_addr = reg.userspace_addr = GUEST_GPA + 0x800;
	if (sel & 0x20) {
		reg.guest_phys_addr = rd64(r);
		reg.memory_size = rd64(r);
		reg.userspace_addr = rd64(r);
		reg.mmap_offset = rd64(r);
	}
	put(m, &reg, sizeof(reg));
	if (with_fd)
		add_fd(m, (sel & 0x40) ? rd8(r) : 0, S.memfd[k]);
}

static uint64_t ring_uaddr(uint32_t ring, unsigned area)
{
	return GUEST_UADDR + (uint64_t)(ring & 3) * RING_STRIDE + (area == 0 ? 0 : area == 1 ? 0x1000 : 0x1800);
}

/* Payload for `req`, as a front-end would send it (with variations). */
static void gen_payload(struct reader *r, struct out_msg *m, uint32_t req)
{
	switch (req) {
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES: {
		uint8_t sel = rd8(r);
		uint64_t want = req == VHOST_USER_SET_FEATURES ? S.dev.offered_features
							       : S.dev.offered_protocol;
		put64(m, (sel & 0x80) ? rd64(r) : want & ~((uint64_t)sel << 20 | (sel & 0xf)));
		break;
	}
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
	case VHOST_USER_SET_VRING_ENDIAN: {
		uint32_t idx = rd_ring(r);
		uint8_t v = rd8(r);
		put32(m, idx);
		put32(m, (v & 0x80) ? rd32(r) : req == VHOST_USER_SET_VRING_NUM ? 1u << (v % 9) : v & 1);
		break;
	}
	case VHOST_USER_SET_VRING_ADDR: {
		uint32_t idx = rd_ring(r);
		uint8_t sel = rd8(r);
		struct vnet_vhu_vring_addr a = {
			.index = idx,
			.flags = (sel & 1) ? 1 : 0,
			.desc_user_addr = ring_uaddr(idx, 0),
			.used_user_addr = ring_uaddr(idx, 2),
			.avail_user_addr = ring_uaddr(idx, 1),
		};
		if (sel & 2)
			a.desc_user_addr = rd64(r);
		if (sel & 4)
			a.used_user_addr = a.avail_user_addr + (sel >> 4); /* overlapping, misaligned */
		if (sel & 8)
			a.avail_user_addr = GUEST_UADDR + GPA_STRIDE - 2; /* straddles the end */
		put(m, &a, sizeof(a));
		break;
	}
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR: {
		uint32_t idx = rd_ring(r);
		uint8_t sel = rd8(r);
		uint64_t v = (idx & 0xff) | ((sel & 1) ? VHOST_USER_VRING_NOFD : 0);
		if (sel & 2)
			v |= (uint64_t)rd16(r) << 9; /* unknown bits */
		put64(m, v);
		if (!(sel & 1))
			add_fd(m, sel >> 2, -1);
		break;
	}
	case VHOST_USER_SET_MEM_TABLE: {
		uint8_t n = rd8(r);
		unsigned regions = n & 0xf;
		put32(m, (n & 0x80) ? rd32(r) : regions); /* nregions may lie */
		put32(m, 0);
		for (unsigned i = 0; i < regions && i < VHOST_USER_MEM_TABLE_MAX + 1; i++)
			gen_region(r, m, true);
		break;
	}
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		put64(m, 0);
		gen_region(r, m, req == VHOST_USER_ADD_MEM_REG || (rd8(r) & 1));
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG: {
		uint8_t sel = rd8(r);
		put32(m, (sel & 0x80) ? rd32(r) : sel & 0x1f);  /* offset */
		put32(m, (sel & 0x40) ? rd32(r) : (sel >> 3) & 7); /* size */
		put32(m, 0);
		break;
	}
	case VHOST_USER_NET_SET_MTU:
	case VHOST_USER_SET_STATUS:
	case VHOST_USER_SET_LOG_BASE:
	case VHOST_USER_SEND_RARP:
		put64(m, rd16(r));
		if (req == VHOST_USER_SET_LOG_BASE) {
			put64(m, 0);
			add_fd(m, 0, S.memfd[0]);
		}
		break;
	case VHOST_USER_SET_LOG_FD:
	case VHOST_USER_SET_BACKEND_REQ_FD:
	case VHOST_USER_SET_INFLIGHT_FD:
		add_fd(m, 1, -1);
		break;
	default: { /* whatever the input says */
		unsigned n = rd8(r) % 48;
		for (unsigned i = 0; i < n; i++) {
			uint8_t b = rd8(r);
			put(m, &b, 1);
		}
		break;
	}
	}
}

/* OP_MSG: u8 request, u8 flags, u8 size mode, payload arguments, u8 extra fds. */
static void step_msg(struct reader *r, int peer)
{
	static const uint32_t common[16] = {
		VHOST_USER_SET_OWNER, VHOST_USER_GET_FEATURES, VHOST_USER_SET_FEATURES,
		VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_SET_MEM_TABLE,
		VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_ADDR, VHOST_USER_SET_VRING_BASE,
		VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL,
		VHOST_USER_SET_VRING_ENABLE, VHOST_USER_GET_VRING_BASE, VHOST_USER_ADD_MEM_REG,
		VHOST_USER_REM_MEM_REG, VHOST_USER_RESET_DEVICE, VHOST_USER_GET_CONFIG,
	};
	uint8_t q = rd8(r);
	uint32_t req = (q & 0x80) ? (q & 0x40 ? rd32(r) : q & 0x3f) : common[q & 15];
	uint8_t fl = rd8(r);
	uint32_t flags = VHOST_USER_VERSION | ((fl & 1) ? VHOST_USER_NEED_REPLY : 0);
	if (fl & 2)
		flags = rd8(r); /* any flags: version 0/2/3, REPLY set... */

	struct out_msg m;
	m.len = 0;
	m.nfds = 0;
	gen_payload(r, &m, req);
	uint8_t sz = rd8(r);
	uint32_t size = (uint32_t)m.len;
	switch (sz & 3) {
	case 1: size = size > (sz >> 2) ? size - (sz >> 2) : 0; break; /* says less */
	case 2: size += sz >> 2; break;                               /* says more */
	case 3: size = rd32(r); break;
	default: break;
	}
	uint8_t extra = rd8(r);
	for (unsigned i = 0; i < (extra & 7u); i++)
		add_fd(&m, extra >> 3, S.memfd[0]);

	memcpy(m.buf, &req, 4);
	memcpy(m.buf + 4, &flags, 4);
	memcpy(m.buf + 8, &size, 4);
	CHECK(vnet_sock_send_fds(peer, m.buf, VHOST_USER_HDR_SIZE + m.len, m.fds, m.nfds) == 0);
	S.stream_bytes += VHOST_USER_HDR_SIZE + m.len;
	for (unsigned i = 0; i < m.nfds; i++)
		if (m.close_fd[i])
			close(m.fds[i]);
}

/* ---- the guest: descriptors and avail entries in memfd 0 --------------- */

static void guest_write(uint64_t off, const void *p, size_t n)
{
	if (off < memfd_size[0] && n <= memfd_size[0] - off)
		memcpy(S.guest[0] + off, p, n);
}

/* u8 ring, u8 slot, u16 buffer offset, u16 len, u8 flags, u8 next, u8 publish */
static void step_desc(struct reader *r)
{
	unsigned ring = rd8(r) & 3, slot = rd8(r);
	uint16_t boff = rd16(r), len = rd16(r);
	uint8_t flags = rd8(r), next = rd8(r), pub = rd8(r);
	struct vring_desc d = {
		.addr = (flags & 0x80) ? rd64(r) : GUEST_GPA + BUF_OFF + (boff & 0x7fff),
		.len = len,
		.flags = flags & (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT),
		.next = next,
	};
	uint64_t base = (uint64_t)ring * RING_STRIDE;
	guest_write(base + (uint64_t)(slot & 127) * sizeof(d), &d, sizeof(d));
	if (pub & 1) {
		uint16_t idx;
		memcpy(&idx, S.guest[0] + base + 0x1000 + 2, 2);
		uint16_t head = (pub & 2) ? rd16(r) : (uint16_t)slot;
		uint64_t qsz = 1u << ((pub >> 2) % 8); /* the guest's idea of the ring size */
		guest_write(base + 0x1000 + 4 + (idx & (qsz - 1)) * 2, &head, 2);
		idx = (uint16_t)(idx + ((pub & 0x40) ? rd16(r) : 1));
		__atomic_store_n((uint16_t *)(S.guest[0] + base + 0x1000 + 2), idx, __ATOMIC_RELEASE);
	}
}

/* u8 memfd, u16 offset, u8 n, n bytes */
static void step_poke(struct reader *r)
{
	unsigned k = rd8(r) % NMEMFD;
	uint16_t off = rd16(r);
	unsigned n = rd8(r) % 64;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = rd8(r);
		if (S.guest[k] && off + i < memfd_size[k])
			S.guest[k][off + i] = b;
	}
}

/* ---- the data plane ---------------------------------------------------- */

/* u8 qp, u8 mode (bit 0 rx, bit 1 tx), tx: u8 count, u16 len each */
static void step_data(struct reader *r)
{
	unsigned qp = rd8(r) % (S.dev.nrings / 2 + 1);
	uint8_t mode = rd8(r);
	struct vnet_pkt *pkts[BURST];
	if (mode & 1) {
		unsigned got = vnet_vhu_rx_burst(&S.dev, qp, &S.pool, pkts, BURST);
		CHECK(got <= BURST);
		if (trace)
			fprintf(stderr, "  rx_burst(qp %u): %u packets\n", qp, got);
		for (unsigned i = 0; i < got; i++) {
			CHECK(pkts[i]->pool == &S.pool);
			CHECK(pkts[i]->len >= 14 && pkts[i]->len <= S.pool.frame_room);
		}
		vnet_pkt_free_burst(pkts, got);
	}
	if (mode & 2) {
		unsigned n = vnet_pkt_alloc_burst(&S.pool, pkts, rd8(r) % BURST + 1);
		for (unsigned i = 0; i < n; i++) {
			uint16_t len = rd16(r) % (S.pool.frame_room + 1);
			memset(pkts[i]->data, (int)i, len);
			pkts[i]->len = len;
		}
		unsigned done = vnet_vhu_tx_burst(&S.dev, qp, pkts, n);
		CHECK(done <= n);
		if (trace)
			fprintf(stderr, "  tx_burst(qp %u): %u of %u packets\n", qp, done, n);
		vnet_pkt_free_burst(pkts, n);
	}
	CHECK(S.pool.nfree == S.pool.count);
}

/* Moves past a DATA step's arguments without running it. */
static void skip_data(struct reader *r)
{
	rd8(r);
	if (rd8(r) & 2) {
		unsigned n = rd8(r) % BURST + 1;
		for (unsigned i = 0; i < n; i++)
			rd16(r);
	}
}

/* ---- oracles ---------------------------------------------------------- */

/* An fd the data plane may write an interrupt into without ever blocking:
 * an eventfd (it blocks only when its counter would overflow) or a
 * non-blocking file. A front-end's blocking pipe that nobody reads would
 * stall the data-plane thread after 8192 interrupts. */
static bool never_blocks(int fd)
{
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		return true;
	char path[64], target[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return !strcmp(target, "anon_inode:[eventfd]");
}

static void check_dev(void)
{
	struct vnet_vhu_dev *d = &S.dev;
	CHECK(!(d->acked_features & ~d->offered_features));
	CHECK(!(d->acked_protocol & ~d->offered_protocol));
	CHECK(d->nmaps <= VNET_VHU_MAX_MEM_SLOTS);
	for (unsigned i = 0; i < d->nmaps; i++)
		CHECK(d->maps[i].base && d->maps[i].len && d->maps[i].region.size);
	if (d->features_set)
		CHECK(d->hdr_len == vnet_net_hdr_len(d->acked_features));
	bool proto = d->acked_features & BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	for (unsigned i = 0; i < d->nrings; i++) {
		struct vnet_vhu_ring *rg = &d->rings[i];
		int st = atomic_load(&rg->state);
		if (!rg->started)
			CHECK(st == VNET_VHU_RING_STOPPED);
		else
			CHECK(rg->num_set && rg->addr_set &&
			      st == ((!proto || rg->enable_requested) ? VNET_VHU_RING_ENABLED
								      : VNET_VHU_RING_DISABLED));
		int fds[3] = {rg->kick_fd, rg->call_fd, rg->err_fd};
		for (unsigned k = 0; k < 3; k++)
			if (fds[k] >= 0)
				CHECK(fcntl(fds[k], F_GETFD) != -1); /* a live fd, not a stale number */
		for (unsigned k = 1; k < 3; k++)
			if (fds[k] >= 0 && !never_blocks(fds[k])) {
				fprintf(stderr, "fuzz_vhost_user: ring %u keeps a %s fd that can block\n", i,
					k == 1 ? "call" : "err");
				CHECK(!"the data plane never blocks on a front-end's fd");
			}
	}
}

/* Every reply the back-end wrote: VERSION|REPLY, sane size, acks 0/1. */
static void check_replies(int peer)
{
	for (;;) {
		struct vnet_vhu_msg m;
		ssize_t n = recv(peer, &m, VHOST_USER_HDR_SIZE, MSG_DONTWAIT);
		if (n <= 0)
			break;
		CHECK(n == VHOST_USER_HDR_SIZE);
		CHECK(m.flags == (VHOST_USER_VERSION | VHOST_USER_REPLY));
		CHECK(m.size <= VHOST_USER_PAYLOAD_MAX);
		if (m.size)
			CHECK(recv(peer, &m.payload, m.size, MSG_DONTWAIT) == (ssize_t)m.size);
		const struct vnet_vhu_rule *rule = vnet_vhu_rule(m.request);
		CHECK(rule);
		if (!rule->reply) { /* a REPLY_ACK */
			CHECK(m.size == 8 && m.payload.u64 <= 1);
		} else if (m.request == VHOST_USER_GET_CONFIG) {
			CHECK(m.size >= 12 && m.size - 12 <= sizeof(struct virtio_net_config));
		} else {
			CHECK(m.size == 8); /* a u64 or a vring state */
		}
	}
}

/* ---- driver ----------------------------------------------------------- */

enum { STEP_MSG, STEP_MSG2, STEP_DESC, STEP_POKE, STEP_DATA, STEP_COUNT };

struct step {
	uint8_t op;
	struct reader args; /* where its arguments start (DESC/POKE/DATA run later) */
};

static void log_sink(enum vnet_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	if (trace)
		fprintf(stderr, "  log: %s\n", line);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* As vnet-switchd: the back-end writes to fds the front-end chose (a
	 * pipe nobody reads, as call fd) and must get EPIPE, not die. */
	signal(SIGPIPE, SIG_IGN);
	const char *t = getenv("FUZZ_VHU_TRACE");
	trace = t && *t && *t != '0';
	vnet_log_set_sink(log_sink, NULL);
	vnet_log_set_level(trace ? VNET_LOG_DEBUG : VNET_LOG_ERROR);
	for (unsigned k = 0; k < NMEMFD; k++) {
		void *map = NULL;
		if (memfd_size[k]) {
			S.memfd[k] = vhu_memfd(MEMFD_NAME, memfd_size[k], &map);
		} else {
			S.memfd[k] = memfd_create(MEMFD_NAME, MFD_CLOEXEC);
			CHECK(S.memfd[k] >= 0);
		}
		S.guest[k] = map;
	}
	CHECK(vnet_pkt_pool_init(&S.pool, 2 * BURST, 0) == 0);
	S.maps_base = vhu_count_maps(MEMFD_NAME);
	S.ready = true;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!S.ready)
		LLVMFuzzerInitialize(NULL, NULL);
	struct reader r = {data, size};
	uint8_t h0 = rd8(&r);
	static const unsigned qps[4] = {1, 2, 3, VNET_VHU_MAX_QUEUE_PAIRS};
	struct vnet_vhu_backend_config cfg = {
		.name = "fuzz",
		.max_queue_pairs = qps[h0 & 3],
		.has_mac = h0 & 4,
		.mac = {0x52, 0x54, 0, 0, 0, 1},
		.mtu = (h0 & 8) ? 1500 : 0,
		.features = (h0 & 0x10) ? rd64(&r) : 0,
		.io_timeout_ms = 200, /* a read that waits this long is a harness bug */
	};
	for (unsigned k = 0; k < NMEMFD; k++)
		if (S.guest[k])
			memset(S.guest[k], 0, memfd_size[k]);
	/* Counted per input: libFuzzer's symbolizer opens pipes between inputs. */
	S.fds_base = vhu_count_fds();

	int peer, sock;
	S.stream_bytes = 0;
	CHECK(vhu_peer_socketpair(&peer, &sock) == 0);
	CHECK(vnet_vhu_dev_init(&S.dev, &cfg, sock) == 0);

	/* Queue every message first (fds travel with them), remember the rest. */
	static struct step steps[MAX_STEPS];
	unsigned nsteps = 0;
	while (r.n && nsteps < MAX_STEPS) {
		struct step *s = &steps[nsteps++];
		s->op = rd8(&r) % STEP_COUNT;
		s->args = r;
		switch (s->op) {
		case STEP_MSG:
		case STEP_MSG2: step_msg(&r, peer); break;
		case STEP_DESC: step_desc(&r); break; /* undone below, redone in order */
		case STEP_POKE: step_poke(&r); break;
		default: skip_data(&r); break;
		}
	}
	/* The guest memory writes of the first pass are undone: they run again
	 * in order below. */
	for (unsigned k = 0; k < NMEMFD; k++)
		if (S.guest[k])
			memset(S.guest[k], 0, memfd_size[k]);
	CHECK(shutdown(peer, SHUT_WR) == 0);

	bool live = true;
	for (unsigned i = 0; i < nsteps; i++) {
		struct reader a = steps[i].args;
		switch (steps[i].op) {
		case STEP_MSG:
		case STEP_MSG2:
			if (live) {
				int rc = vnet_vhu_dev_handle(&S.dev);
				if (trace)
					fprintf(stderr, "step %u: handle %d %s\n", i, rc, S.dev.last_error);
				CHECK(rc != -EAGAIN); /* the whole stream is there: never a timeout */
				if (rc < 0) {
					CHECK(S.dev.last_error[0]);
					live = false;
				} else {
					check_dev();
				}
			}
			break;
		case STEP_DESC: step_desc(&a); break;
		case STEP_POKE: step_poke(&a); break;
		default:
			if (live)
				step_data(&a);
			break;
		}
	}
	/* Whatever a desynchronised stream left: served until the end (each
	 * message takes at least a 12-byte header of the stream). */
	for (size_t i = 0; live && i <= S.stream_bytes / VHOST_USER_HDR_SIZE + 1; i++) {
		int rc = vnet_vhu_dev_handle(&S.dev);
		CHECK(rc != -EAGAIN);
		if (rc < 0)
			live = false;
		else
			check_dev();
	}
	CHECK(!live); /* the stream ends, so the back-end saw the end */
	vnet_vhu_dev_fini(&S.dev);
	check_replies(peer);
	close(peer);

	unsigned fds = vhu_count_fds(), maps = vhu_count_maps(MEMFD_NAME);
	if (fds != S.fds_base || maps != S.maps_base) {
		fprintf(stderr, "fuzz_vhost_user: %u fds (had %u), %u mappings of the memfds (had %u)\n",
			fds, S.fds_base, maps, S.maps_base);
		if (trace && system("ls -l /proc/$PPID/fd >&2; grep " MEMFD_NAME " /proc/$PPID/maps >&2"))
			fprintf(stderr, "(could not list them)\n");
		CHECK(!"every fd and mapping the input caused is gone");
	}
	return 0;
}
