/*
 * test_vhost_user_frontend.c — the vhost-user front-end (virtio-user driver)
 * against a scripted fake back-end running in a thread of this test. The
 * fake back-end speaks the wire protocol through libvnet's message I/O,
 * checks every request with vnet_vhu_check_request(), answers GET_* and
 * REPLY_ACK, mmaps the memfd regions it receives, and can misbehave on cue
 * (wrong reply flags, NACK, silence, hang-up). For the data path the test
 * attaches libvnet's real device-side virtqueue (struct vnet_vq) to the
 * rings the front-end announced, in the back-end's own mapping of the
 * shared memory, using the UADDRs from SET_VRING_ADDR.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testmem.h"
#include "vnet/net.h"
#include "vnet/vhost_user.h"
#include "vnet/vhost_user_frontend.h"
#include "vnet/virtqueue.h"

#define MAX_RINGS 8
#define MAX_LOG   256

#define F_V1    VNET_BIT(VIRTIO_F_VERSION_1)
#define F_IND   VNET_BIT(VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVT   VNET_BIT(VIRTIO_F_RING_EVENT_IDX)
#define F_MRG   VNET_BIT(VIRTIO_NET_F_MRG_RXBUF)
#define F_MQ    VNET_BIT(VIRTIO_NET_F_MQ)
#define F_MTU   VNET_BIT(VIRTIO_NET_F_MTU)
#define F_MAC   VNET_BIT(VIRTIO_NET_F_MAC)
#define F_CSUM  VNET_BIT(VIRTIO_NET_F_CSUM)
#define F_PF    VNET_BIT(VHOST_USER_F_PROTOCOL_FEATURES)

#define P(bit) VNET_BIT(VHOST_USER_PROTOCOL_F_##bit)

/* ---- the fake back-end ---- */

struct be_ring {
	uint32_t num;
	struct vnet_vhu_vring_addr addr;
	bool addr_set;
	uint32_t base;
	int kick_fd, call_fd;
	bool kick_set, kick_nofd, call_nofd;
	bool enabled;
};

struct be_map {
	void *base;
	size_t len;
};

struct fake_be {
	/* script */
	uint64_t features, protocol, queue_num;
	uint32_t bad_flags_req; /* reply to it with flags 0xd */
	uint32_t close_req;     /* hang up when it arrives */
	uint32_t silent_req;    /* never answer it */
	uint32_t nack_req;      /* REPLY_ACK status 1 */
	unsigned expect_rings;
	uint8_t mac[6];
	uint16_t mtu;
	bool connect_mode;      /* the back-end connects (front-end in server mode) */
	char path[108];

	/* recorded */
	uint32_t log[MAX_LOG];
	uint32_t log_flags[MAX_LOG];
	unsigned nlog;
	unsigned violations;
	uint64_t acked_features, acked_protocol, set_mtu;
	uint64_t status;
	struct vnet_vhu_memory mem;
	struct be_map maps[VHOST_USER_MEM_TABLE_MAX];
	unsigned nmaps;
	struct be_ring rings[MAX_RINGS];
	_Atomic uint16_t base_answer[MAX_RINGS];

	struct vnet_guestmem gm;
	atomic_bool ready;
	atomic_bool finished;
	bool started;
	int lfd, sock;
	pthread_t thread;
	pthread_mutex_t lock; /* guards the recorded state while the thread runs */
};

static unsigned path_seq;

static bool be_is_ready(struct fake_be *b)
{
	if (!b->expect_rings)
		return false;
	bool pf = b->acked_features & F_PF;
	for (unsigned i = 0; i < b->expect_rings; i++)
		if (!b->rings[i].kick_set || (pf && !b->rings[i].enabled))
			return false;
	return true;
}

static void be_reply(struct fake_be *b, struct vnet_vhu_msg *m, uint32_t size)
{
	m->flags = m->request == b->bad_flags_req ? 0xd : (VHOST_USER_VERSION | VHOST_USER_REPLY);
	m->size = size;
	vnet_vhu_send(b->sock, m, NULL, 0);
}

static void be_mem_table(struct fake_be *b, struct vnet_vhu_msg *m, int *fds)
{
	struct vnet_mem_region regs[VHOST_USER_MEM_TABLE_MAX];
	b->mem = m->payload.memory;
	for (unsigned i = 0; i < m->payload.memory.nregions; i++) {
		const struct vnet_vhu_mem_region *r = &m->payload.memory.regions[i];
		void *p = mmap(NULL, r->memory_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i],
			       (off_t)r->mmap_offset);
		if (p == MAP_FAILED) {
			b->violations++;
			continue;
		}
		b->maps[b->nmaps++] = (struct be_map){p, r->memory_size};
		regs[i] = (struct vnet_mem_region){.gpa = r->guest_phys_addr,
						   .size = r->memory_size,
						   .uaddr = r->userspace_addr,
						   .host = p};
	}
	char err[128];
	struct vnet_mem_table *t =
		vnet_mem_table_new(regs, m->payload.memory.nregions, err, sizeof(err));
	if (!t) {
		b->violations++;
		return;
	}
	vnet_mem_table_free(vnet_guestmem_replace(&b->gm, t));
}

/* Serves one message; false when the connection is over. */
static bool be_serve(struct fake_be *b)
{
	struct vnet_vhu_msg m;
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = vnet_vhu_recv(b->sock, &m, fds, VHOST_USER_MAX_FDS, &nfds);
	if (r == -EAGAIN || r == -ETIMEDOUT)
		return !atomic_load(&b->finished);
	if (r < 0)
		return false;
	char err[128];
	if (vnet_vhu_check_request(&m, nfds, err, sizeof(err)) < 0) {
		fprintf(stderr, "fake back-end: %s\n", err);
		b->violations++;
	}
	pthread_mutex_lock(&b->lock);
	if (b->nlog < MAX_LOG) {
		b->log[b->nlog] = m.request;
		b->log_flags[b->nlog++] = m.flags;
	}
	pthread_mutex_unlock(&b->lock);
	if (m.request == b->close_req) {
		vnet_vhu_close_fds(fds, nfds);
		return false;
	}
	uint32_t idx = m.payload.state.index;
	bool answered = false;
	pthread_mutex_lock(&b->lock);
	switch (m.request) {
	case VHOST_USER_GET_FEATURES:
		m.payload.u64 = b->features;
		if (m.request != b->silent_req)
			be_reply(b, &m, 8);
		answered = true;
		break;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		m.payload.u64 = b->protocol;
		if (m.request != b->silent_req)
			be_reply(b, &m, 8);
		answered = true;
		break;
	case VHOST_USER_GET_QUEUE_NUM:
		m.payload.u64 = b->queue_num;
		be_reply(b, &m, 8);
		answered = true;
		break;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		b->acked_protocol = m.payload.u64;
		break;
	case VHOST_USER_SET_FEATURES:
		b->acked_features = m.payload.u64;
		break;
	case VHOST_USER_SET_STATUS:
		b->status = m.payload.u64;
		break;
	case VHOST_USER_NET_SET_MTU:
		b->set_mtu = m.payload.u64;
		break;
	case VHOST_USER_GET_CONFIG: {
		struct virtio_net_config c = {.mtu = b->mtu, .max_virtqueue_pairs = 1};
		memcpy(c.mac, b->mac, 6);
		memcpy(m.payload.config.region, &c, m.payload.config.size);
		be_reply(b, &m, m.size);
		answered = true;
		break;
	}
	case VHOST_USER_SET_MEM_TABLE:
		if (nfds == m.payload.memory.nregions && b->nmaps == 0)
			be_mem_table(b, &m, fds);
		else
			b->violations++;
		vnet_vhu_close_fds(fds, nfds);
		nfds = 0;
		break;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
	case VHOST_USER_GET_VRING_BASE:
		if (idx >= MAX_RINGS) {
			b->violations++;
			break;
		}
		if (m.request == VHOST_USER_SET_VRING_NUM)
			b->rings[idx].num = m.payload.state.num;
		else if (m.request == VHOST_USER_SET_VRING_BASE)
			b->rings[idx].base = m.payload.state.num;
		else if (m.request == VHOST_USER_SET_VRING_ENABLE)
			b->rings[idx].enabled = m.payload.state.num;
		else {
			m.payload.state.num = atomic_load(&b->base_answer[idx]);
			be_reply(b, &m, sizeof(m.payload.state));
			answered = true;
		}
		break;
	case VHOST_USER_SET_VRING_ADDR:
		idx = m.payload.addr.index;
		if (idx < MAX_RINGS) {
			b->rings[idx].addr = m.payload.addr;
			b->rings[idx].addr_set = true;
		}
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL: {
		idx = (uint32_t)(m.payload.u64 & VHOST_USER_VRING_IDX_MASK);
		bool nofd = m.payload.u64 & VHOST_USER_VRING_NOFD;
		if (idx >= MAX_RINGS)
			break;
		struct be_ring *br = &b->rings[idx];
		int fd = nofd || nfds == 0 ? -1 : fds[0];
		nfds = 0;
		if (m.request == VHOST_USER_SET_VRING_KICK) {
			if (br->kick_fd >= 0)
				close(br->kick_fd);
			br->kick_fd = fd;
			br->kick_nofd = nofd;
			br->kick_set = true;
		} else {
			if (br->call_fd >= 0)
				close(br->call_fd);
			br->call_fd = fd;
			br->call_nofd = nofd;
		}
		break;
	}
	default:
		break;
	}
	if (!answered && (m.flags & VHOST_USER_NEED_REPLY) && m.request != b->silent_req) {
		m.payload.u64 = m.request == b->nack_req ? 1 : 0;
		be_reply(b, &m, 8);
	}
	if (be_is_ready(b))
		atomic_store(&b->ready, true);
	pthread_mutex_unlock(&b->lock);
	vnet_vhu_close_fds(fds, nfds);
	return true;
}

static void *be_thread(void *arg)
{
	struct fake_be *b = arg;
	if (b->connect_mode) {
		for (int i = 0; i < 500 && b->sock < 0; i++) {
			int fd = vnet_vhu_connect(b->path);
			if (fd >= 0)
				b->sock = fd;
			else
				usleep(10000);
		}
	} else {
		struct pollfd p = {.fd = b->lfd, .events = POLLIN};
		if (poll(&p, 1, 5000) == 1)
			b->sock = vnet_vhu_accept(b->lfd);
	}
	if (b->sock < 0)
		return NULL;
	vnet_vhu_set_timeout(b->sock, 100);
	while (be_serve(b))
		;
	close(b->sock);
	b->sock = -1;
	return NULL;
}

static void be_start(struct fake_be *b)
{
	for (unsigned i = 0; i < MAX_RINGS; i++)
		b->rings[i].kick_fd = b->rings[i].call_fd = -1;
	b->sock = b->lfd = -1;
	snprintf(b->path, sizeof(b->path), "/tmp/vnet-fe-test-%d-%u.sock", (int)getpid(),
		 path_seq++);
	assert_int_equal(vnet_guestmem_init(&b->gm), 0);
	pthread_mutex_init(&b->lock, NULL);
	if (!b->connect_mode) {
		char err[128];
		b->lfd = vnet_vhu_listen(b->path, 0600, err, sizeof(err));
		assert_true(b->lfd >= 0);
	}
	assert_int_equal(pthread_create(&b->thread, NULL, be_thread, b), 0);
	b->started = true;
}

static void be_stop(struct fake_be *b)
{
	if (!b->started)
		return;
	b->started = false;
	atomic_store(&b->finished, true);
	pthread_join(b->thread, NULL);
	if (b->lfd >= 0) {
		close(b->lfd);
		unlink(b->path);
	}
	for (unsigned i = 0; i < MAX_RINGS; i++) {
		if (b->rings[i].kick_fd >= 0)
			close(b->rings[i].kick_fd);
		if (b->rings[i].call_fd >= 0)
			close(b->rings[i].call_fd);
	}
	vnet_guestmem_destroy(&b->gm);
	for (unsigned i = 0; i < b->nmaps; i++)
		munmap(b->maps[i].base, b->maps[i].len);
	pthread_mutex_destroy(&b->lock);
}

static void be_wait_ready(struct fake_be *b)
{
	for (int i = 0; i < 2000 && !atomic_load(&b->ready); i++)
		usleep(1000);
	assert_true(atomic_load(&b->ready));
}

static unsigned be_count(struct fake_be *b, uint32_t req)
{
	unsigned n = 0;
	pthread_mutex_lock(&b->lock);
	for (unsigned i = 0; i < b->nlog; i++)
		n += b->log[i] == req;
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* ---- fixture ---- */

struct fx {
	struct fake_be be;
	struct vnet_vhu_fe_config cfg;
	struct vnet_vhu_fe *fe;
	struct vnet_vq dev[MAX_RINGS];
	unsigned ndev;
	int fds_before;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->fds_before = count_fds();
	f->be.features = F_V1 | F_IND | F_EVT | F_MRG | F_MQ | F_MTU | F_MAC | F_PF;
	f->be.protocol = P(MQ) | P(REPLY_ACK) | P(NET_MTU) | P(CONFIG) | P(STATUS);
	f->be.queue_num = 4;
	f->be.expect_rings = 2;
	f->cfg.name = "t";
	f->cfg.queue_size = 64;
	f->cfg.io_timeout_ms = 2000;
	f->cfg.connect_timeout_ms = 3000;
	testlog_capture();
	*state = f;
	return 0;
}

static void dev_detach_all(struct fx *f)
{
	for (unsigned i = 0; i < f->ndev; i++)
		atomic_store(&f->be.base_answer[i], vnet_vq_detach(&f->dev[i]));
	f->ndev = 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	dev_detach_all(f);
	vnet_vhu_fe_close(f->fe);
	f->fe = NULL;
	be_stop(&f->be);
	testlog_release();
	/* No fd may outlive a front-end and its back-end, whatever happened. */
	int after = count_fds(), before = f->fds_before;
	free(f);
	if (after != before) {
		fprintf(stderr, "fd leak: %d fds before the test, %d after\n", before, after);
		return -1;
	}
	return 0;
}

/* Starts the fake back-end and opens the front-end against it. */
static int open_fe(struct fx *f)
{
	be_start(&f->be);
	f->cfg.path = f->be.path;
	f->cfg.server = f->be.connect_mode;
	return vnet_vhu_fe_open(&f->fe, &f->cfg);
}

static void open_ok(struct fx *f)
{
	f->be.expect_rings = 2 * (f->cfg.queue_pairs ? f->cfg.queue_pairs : 1);
	assert_int_equal(open_fe(f), 0);
	assert_non_null(f->fe);
	be_wait_ready(&f->be);
	assert_int_equal(f->be.violations, 0);
}

/* Device side: a real vnet_vq on each ring, in the back-end's mapping. */
static void dev_attach_all(struct fx *f)
{
	unsigned tok;
	vnet_guestmem_read_begin(&f->be.gm, &tok);
	for (unsigned i = 0; i < f->be.expect_rings; i++) {
		struct be_ring *br = &f->be.rings[i];
		assert_true(br->addr_set);
		struct vnet_vq_config c = {
			.size = (uint16_t)br->num,
			.desc_addr = br->addr.desc_user_addr,
			.avail_addr = br->addr.avail_user_addr,
			.used_addr = br->addr.used_user_addr,
			.ring_as = VNET_AS_UADDR,
			.features = f->be.acked_features,
			.name = "be",
		};
		assert_int_equal(vnet_vq_attach(&f->dev[i], &f->be.gm, &c), 0);
		vnet_vq_set_last_avail(&f->dev[i], (uint16_t)br->base);
	}
	f->ndev = f->be.expect_rings;
	vnet_guestmem_read_end(&f->be.gm, tok);
}

static void make_frame(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* Pops one TX chain on ring `ring`, gathers it into out; returns its length. */
static size_t dev_pop_tx(struct fx *f, unsigned ring, uint8_t *out, size_t max,
			 unsigned *n_pieces)
{
	unsigned tok;
	struct iovec iov[8];
	struct vnet_vq_chain ch;
	vnet_guestmem_read_begin(&f->be.gm, &tok);
	int r = vnet_vq_pop(&f->dev[ring], &ch, iov, 8);
	size_t got = 0;
	if (r == 1) {
		assert_int_equal(ch.n_in, 0);
		for (unsigned i = 0; i < ch.n_out; i++) {
			assert_true(got + iov[i].iov_len <= max);
			memcpy(out + got, iov[i].iov_base, iov[i].iov_len);
			got += iov[i].iov_len;
		}
		if (n_pieces)
			*n_pieces = ch.n_out;
		vnet_vq_push(&f->dev[ring], ch.head, 0);
		if (vnet_vq_flush(&f->dev[ring]) && f->be.rings[ring].call_fd >= 0)
			eventfd_write(f->be.rings[ring].call_fd, 1);
	}
	vnet_guestmem_read_end(&f->be.gm, tok);
	return got;
}

/* Device delivers one frame into RX ring `ring`; false when no buffer. */
static bool dev_push_rx(struct fx *f, unsigned ring, const uint8_t *frame, size_t len)
{
	unsigned tok;
	struct iovec iov[8];
	struct vnet_vq_chain ch;
	bool ok = false;
	vnet_guestmem_read_begin(&f->be.gm, &tok);
	if (vnet_vq_pop(&f->dev[ring], &ch, iov, 8) == 1) {
		assert_int_equal(ch.n_out, 0);
		struct virtio_net_hdr_mrg_rxbuf h = {.num_buffers = 1};
		uint8_t tmp[4096];
		assert_true(sizeof(h) + len <= sizeof(tmp) && sizeof(h) + len <= ch.in_len);
		memcpy(tmp, &h, sizeof(h));
		memcpy(tmp + sizeof(h), frame, len);
		size_t off = 0;
		for (unsigned i = 0; i < ch.n_in && off < sizeof(h) + len; i++) {
			size_t k = iov[i].iov_len < sizeof(h) + len - off ? iov[i].iov_len
									   : sizeof(h) + len - off;
			memcpy(iov[i].iov_base, tmp + off, k);
			off += k;
		}
		vnet_vq_push(&f->dev[ring], ch.head, (uint32_t)(sizeof(h) + len));
		if (vnet_vq_flush(&f->dev[ring]) && f->be.rings[ring].call_fd >= 0)
			eventfd_write(f->be.rings[ring].call_fd, 1);
		ok = true;
	}
	vnet_guestmem_read_end(&f->be.gm, tok);
	return ok;
}

static void check_no_fd_leak(struct fx *f)
{
	dev_detach_all(f);
	vnet_vhu_fe_close(f->fe);
	f->fe = NULL;
	be_stop(&f->be);
	assert_int_equal(count_fds(), f->fds_before);
}

/* ---- tests ---- */

static void test_negotiation_order_and_features(void **state)
{
	struct fx *f = *state;
	f->be.features = F_V1 | F_EVT | F_MRG | F_CSUM | F_PF | F_MTU; /* no INDIRECT, MAC */
	f->be.protocol = P(MQ) | P(REPLY_ACK) | P(LOG_SHMFD) | P(BACKEND_REQ) | P(STATUS);
	open_ok(f);

	/* requested (default) ∩ offered, plus PROTOCOL_FEATURES */
	assert_int_equal(vnet_vhu_fe_features(f->fe), F_V1 | F_EVT | F_PF | F_MTU);
	assert_int_equal(f->be.acked_features, F_V1 | F_EVT | F_PF | F_MTU);
	/* only what the front-end implements; NET_MTU not without cfg.mtu */
	assert_int_equal(f->be.acked_protocol, P(MQ) | P(REPLY_ACK) | P(STATUS));
	assert_int_equal(vnet_vhu_fe_protocol_features(f->fe), f->be.acked_protocol);
	assert_int_equal(f->be.status, VNET_VIRTIO_STATUS_ACKNOWLEDGE | VNET_VIRTIO_STATUS_DRIVER |
					       VNET_VIRTIO_STATUS_FEATURES_OK |
					       VNET_VIRTIO_STATUS_DRIVER_OK);

	static const uint32_t expect[] = {
		VHOST_USER_SET_OWNER,         VHOST_USER_GET_FEATURES,
		VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_SET_PROTOCOL_FEATURES,
		VHOST_USER_GET_QUEUE_NUM,     VHOST_USER_SET_FEATURES,
		VHOST_USER_SET_STATUS,        VHOST_USER_SET_MEM_TABLE,
		VHOST_USER_SET_VRING_NUM,     VHOST_USER_SET_VRING_ADDR,
		VHOST_USER_SET_VRING_BASE,    VHOST_USER_SET_VRING_CALL,
		VHOST_USER_SET_VRING_KICK,    VHOST_USER_SET_VRING_NUM,
		VHOST_USER_SET_VRING_ADDR,    VHOST_USER_SET_VRING_BASE,
		VHOST_USER_SET_VRING_CALL,    VHOST_USER_SET_VRING_KICK,
		VHOST_USER_SET_VRING_ENABLE,  VHOST_USER_SET_VRING_ENABLE,
		VHOST_USER_SET_STATUS,
	};
	unsigned n = sizeof(expect) / sizeof(expect[0]);
	/* The last message may still be in flight: open() does not wait for it
	 * without an ack — but everything here is acked, so it arrived. */
	assert_true(f->be.nlog >= n);
	for (unsigned i = 0; i < n; i++) {
		assert_string_equal(vnet_vhu_request_name(f->be.log[i]),
				    vnet_vhu_request_name(expect[i]));
		bool get = f->be.log[i] == VHOST_USER_GET_FEATURES ||
			   f->be.log[i] == VHOST_USER_GET_PROTOCOL_FEATURES ||
			   f->be.log[i] == VHOST_USER_GET_QUEUE_NUM;
		bool before_ack = i <= 3; /* SET_OWNER .. SET_PROTOCOL_FEATURES */
		bool want_ack = !get && !before_ack;
		assert_int_equal(f->be.log_flags[i],
				 VHOST_USER_VERSION | (want_ack ? VHOST_USER_NEED_REPLY : 0));
	}
	/* rings: size, GPA layout, UADDRs inside the announced region */
	assert_int_equal(f->be.rings[0].num, 64);
	assert_int_equal(f->be.mem.nregions, 1);
	uint64_t ua = f->be.mem.regions[0].userspace_addr;
	uint64_t sz = f->be.mem.regions[0].memory_size;
	assert_int_equal(f->be.mem.regions[0].guest_phys_addr, VNET_VHU_FE_DEFAULT_GPA_BASE);
	assert_int_equal(ua, (uint64_t)(uintptr_t)f->fe->mem);
	for (unsigned i = 0; i < 2; i++) {
		const struct vnet_vhu_vring_addr *a = &f->be.rings[i].addr;
		assert_true(a->desc_user_addr >= ua && a->used_user_addr < ua + sz);
		assert_int_equal(a->desc_user_addr % 16, 0);
		assert_int_equal(f->be.rings[i].base, 0);
		assert_true(f->be.rings[i].kick_fd >= 0 && f->be.rings[i].call_fd >= 0);
	}
	dev_attach_all(f);
}

static void test_no_protocol_features(void **state)
{
	struct fx *f = *state;
	f->be.features = F_V1 | F_EVT; /* no PROTOCOL_FEATURES: no ack, no enable */
	open_ok(f);
	assert_int_equal(vnet_vhu_fe_features(f->fe), F_V1 | F_EVT);
	assert_int_equal(be_count(&f->be, VHOST_USER_GET_PROTOCOL_FEATURES), 0);
	assert_int_equal(be_count(&f->be, VHOST_USER_SET_VRING_ENABLE), 0);
	for (unsigned i = 0; i < f->be.nlog; i++)
		assert_int_equal(f->be.log_flags[i], VHOST_USER_VERSION);
}

static void test_bad_reply_flags(void **state)
{
	struct fx *f = *state;
	f->be.bad_flags_req = VHOST_USER_GET_FEATURES;
	assert_int_equal(open_fe(f), -EPROTO);
	assert_null(f->fe);
	assert_true(testlog_count_containing("reply to GET_FEATURES has flags 0xd") >= 1);
}

static void test_bad_ack_flags(void **state)
{
	struct fx *f = *state;
	f->be.bad_flags_req = VHOST_USER_SET_FEATURES; /* a REPLY_ACK answer */
	assert_int_equal(open_fe(f), -EPROTO);
	assert_true(testlog_count_containing("reply to SET_FEATURES has flags") >= 1);
}

static void test_nack(void **state)
{
	struct fx *f = *state;
	f->be.nack_req = VHOST_USER_SET_MEM_TABLE;
	assert_int_equal(open_fe(f), -EPROTO);
	assert_true(testlog_count_containing("back-end rejected SET_MEM_TABLE") >= 1);
}

static void test_no_version_1(void **state)
{
	struct fx *f = *state;
	f->be.features = F_EVT | F_IND | F_PF;
	assert_int_equal(open_fe(f), -EPROTO);
	assert_true(testlog_count_containing(
			    "vhost-user front-end t: back-end does not offer VERSION_1") == 1);
	assert_int_equal(be_count(&f->be, VHOST_USER_SET_FEATURES), 0);
}

static void test_close_mid_negotiation(void **state)
{
	struct fx *f = *state;
	f->be.close_req = VHOST_USER_SET_MEM_TABLE;
	assert_int_equal(open_fe(f), -ECONNRESET);
	assert_true(testlog_count_containing("back-end closed the connection") >= 1);
}

static void test_close_before_get_reply(void **state)
{
	struct fx *f = *state;
	f->be.close_req = VHOST_USER_GET_PROTOCOL_FEATURES;
	assert_int_equal(open_fe(f), -ECONNRESET);
	assert_true(testlog_count_containing("reply to GET_PROTOCOL_FEATURES") >= 1);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_timeout(void **state)
{
	struct fx *f = *state;
	f->be.silent_req = VHOST_USER_GET_FEATURES;
	f->cfg.io_timeout_ms = 300;
	uint64_t t0 = mono_ms();
	assert_int_equal(open_fe(f), -ETIMEDOUT);
	uint64_t dt = mono_ms() - t0;
	assert_true(dt >= 250 && dt < 1500);
	assert_true(testlog_count_containing("no reply to GET_FEATURES within 300 ms") == 1);
}

static void test_ack_timeout(void **state)
{
	struct fx *f = *state;
	f->be.silent_req = VHOST_USER_SET_VRING_ADDR; /* NEED_REPLY never answered */
	f->cfg.io_timeout_ms = 200;
	assert_int_equal(open_fe(f), -ETIMEDOUT);
	assert_true(testlog_count_containing("no reply to SET_VRING_ADDR") == 1);
}

static void test_queue_num_refused(void **state)
{
	struct fx *f = *state;
	f->be.queue_num = 2;
	f->cfg.queue_pairs = 4;
	assert_int_equal(open_fe(f), -EOPNOTSUPP);
	assert_true(testlog_count_containing("4 queue pairs requested, back-end supports 2") == 1);
	assert_int_equal(be_count(&f->be, VHOST_USER_SET_FEATURES), 0);
}

static void test_mq_without_protocol_mq(void **state)
{
	struct fx *f = *state;
	f->be.protocol = P(REPLY_ACK);
	f->cfg.queue_pairs = 2;
	assert_int_equal(open_fe(f), -EOPNOTSUPP);
	assert_true(testlog_count_containing("does not support multiqueue") == 1);
}

static void test_no_backend(void **state)
{
	struct fx *f = *state;
	f->cfg.path = "/tmp/vnet-fe-test-nobody-here.sock";
	f->cfg.connect_timeout_ms = 150;
	uint64_t t0 = mono_ms();
	assert_int_equal(vnet_vhu_fe_open(&f->fe, &f->cfg), -ETIMEDOUT);
	assert_true(mono_ms() - t0 < 1000);
	assert_true(testlog_count_containing("no back-end listening at") == 1);
}

static void test_tx_frames_arrive(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	dev_attach_all(f);
	static uint8_t frames[40][1514];
	struct iovec iov[40];
	for (unsigned i = 0; i < 40; i++) {
		size_t len = 60 + (i * 37) % 1455;
		make_frame(frames[i], len, i);
		iov[i] = (struct iovec){frames[i], len};
	}
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov, 40), 40);
	/* the device got a kick through the eventfd */
	eventfd_t v = 0;
	assert_int_equal(eventfd_read(f->be.rings[1].kick_fd, &v), 0);
	assert_true(v >= 1);

	for (unsigned i = 0; i < 40; i++) {
		uint8_t got[2048];
		size_t n = dev_pop_tx(f, 1, got, sizeof(got), NULL);
		assert_int_equal(n, 12 + iov[i].iov_len);
		static const uint8_t zero[12];
		assert_memory_equal(got, zero, 12); /* no offloads */
		assert_memory_equal(got + 12, frames[i], iov[i].iov_len);
	}
	assert_int_equal(dev_pop_tx(f, 1, NULL, 0, NULL), 0);
	/* all buffers come back; the ring can be filled again, many times */
	assert_int_equal(vnet_vhu_fe_tx_reclaim(f->fe, 0), 64);
	for (unsigned round = 0; round < 10; round++) {
		assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov, 40), 40);
		for (unsigned i = 0; i < 40; i++) {
			uint8_t got[2048];
			assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL),
					 12 + iov[i].iov_len);
			assert_memory_equal(got + 12, frames[i], iov[i].iov_len);
		}
	}
	const struct vnet_vhu_fe_stats *st = vnet_vhu_fe_stats(f->fe, 0);
	assert_int_equal(st->tx_packets, 440);
	assert_int_equal(st->tx_full, 0);
}

static void test_tx_full_and_oversize(void **state)
{
	struct fx *f = *state;
	f->cfg.queue_size = 16;
	open_ok(f);
	dev_attach_all(f);
	static uint8_t big[4000], small[100];
	struct iovec iov[20];
	iov[0] = (struct iovec){big, sizeof(big)}; /* > buffer: dropped, taken */
	for (unsigned i = 1; i < 20; i++)
		iov[i] = (struct iovec){small, sizeof(small)};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov, 20), 17); /* 1 + 16 buffers */
	const struct vnet_vhu_fe_stats *st = vnet_vhu_fe_stats(f->fe, 0);
	assert_int_equal(st->tx_oversize, 1);
	assert_int_equal(st->tx_full, 3);
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov + 17, 3), 0);
	uint8_t got[256];
	assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL), 112);
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov + 17, 3), 1);
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 1, iov, 1), -EINVAL);
}

static void test_tx_indirect(void **state)
{
	struct fx *f = *state;
	f->cfg.tx_indirect = true;
	open_ok(f);
	assert_true(vnet_vhu_fe_features(f->fe) & F_IND);
	dev_attach_all(f);
	uint8_t frame[300];
	make_frame(frame, sizeof(frame), 9);
	struct iovec iov = {frame, sizeof(frame)};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, &iov, 1), 1);
	uint8_t got[512];
	unsigned pieces = 0;
	assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), &pieces), 312);
	assert_int_equal(pieces, 2); /* header and frame, through an indirect table */
	assert_memory_equal(got + 12, frame, sizeof(frame));
}

static void test_rx_frames_arrive(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	dev_attach_all(f);
	struct vnet_vhu_fe_pkt pkts[64];
	assert_int_equal(vnet_vhu_fe_rx_burst(f->fe, 0, pkts, 64), 0);
	assert_int_equal(vnet_vhu_fe_rx_wait(f->fe, 0, 50), 0);

	static uint8_t frames[100][1514];
	size_t lens[100];
	unsigned sent = 0, recvd = 0;
	/* more frames than the ring holds: the front-end re-posts as it goes */
	while (recvd < 100) {
		while (sent < 100) {
			lens[sent] = 60 + (sent * 53) % 1455;
			make_frame(frames[sent], lens[sent], sent + 1000);
			if (!dev_push_rx(f, 0, frames[sent], lens[sent]))
				break;
			sent++;
		}
		assert_int_equal(vnet_vhu_fe_rx_wait(f->fe, 0, 1000), 1);
		int n = vnet_vhu_fe_rx_burst(f->fe, 0, pkts, 7);
		assert_true(n > 0);
		for (int i = 0; i < n; i++, recvd++) {
			assert_int_equal(pkts[i].len, lens[recvd]);
			assert_memory_equal(pkts[i].data, frames[recvd], lens[recvd]);
		}
	}
	const struct vnet_vhu_fe_stats *st = vnet_vhu_fe_stats(f->fe, 0);
	assert_int_equal(st->rx_packets, 100);
	assert_int_equal(st->rx_dropped, 0);
}

static void test_rx_wait_eventfd(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	dev_attach_all(f);
	/* rx_wait asks for an interrupt; the device's flush says "notify" and
	 * writes the call eventfd (dev_push_rx does), which wakes the waiter. */
	uint8_t frame[64];
	make_frame(frame, sizeof(frame), 3);
	assert_int_equal(vnet_vhu_fe_rx_wait(f->fe, 0, 20), 0);
	assert_true(dev_push_rx(f, 0, frame, sizeof(frame)));
	assert_int_equal(vnet_vhu_fe_rx_wait(f->fe, 0, 1000), 1);
	struct vnet_vhu_fe_pkt p;
	assert_int_equal(vnet_vhu_fe_rx_burst(f->fe, 0, &p, 1), 1);
	assert_int_equal(p.len, 64);
	assert_true(vnet_vhu_fe_call_fd(f->fe, 0) >= 0);
}

static void test_polling_mode(void **state)
{
	struct fx *f = *state;
	f->cfg.polling = true;
	open_ok(f);
	for (unsigned i = 0; i < 2; i++) {
		assert_true(f->be.rings[i].kick_nofd && f->be.rings[i].call_nofd);
		assert_int_equal(f->be.rings[i].kick_fd, -1);
		assert_int_equal(f->fe->rings[i].kick_fd, -1);
	}
	assert_int_equal(vnet_vhu_fe_call_fd(f->fe, 0), -1);
	dev_attach_all(f);
	uint8_t frame[128];
	make_frame(frame, sizeof(frame), 77);
	struct iovec iov = {frame, sizeof(frame)};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, &iov, 1), 1);
	uint8_t got[256];
	assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL), 140);
	assert_memory_equal(got + 12, frame, sizeof(frame));
	assert_true(dev_push_rx(f, 0, frame, sizeof(frame)));
	assert_int_equal(vnet_vhu_fe_rx_wait(f->fe, 0, 1000), 1);
	struct vnet_vhu_fe_pkt p;
	assert_int_equal(vnet_vhu_fe_rx_burst(f->fe, 0, &p, 1), 1);
	assert_memory_equal(p.data, frame, sizeof(frame));
	assert_int_equal(vnet_vhu_fe_stats(f->fe, 0)->kicks, 0);
}

static void test_server_mode(void **state)
{
	struct fx *f = *state;
	f->be.connect_mode = true; /* front-end listens, back-end connects */
	open_ok(f);
	dev_attach_all(f);
	uint8_t frame[100];
	make_frame(frame, sizeof(frame), 5);
	struct iovec iov = {frame, sizeof(frame)};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, &iov, 1), 1);
	uint8_t got[256];
	assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL), 112);
	/* the socket file is gone once the back-end was accepted */
	assert_int_equal(access(f->be.path, F_OK), -1);
}

static void test_multiqueue_multiregion(void **state)
{
	struct fx *f = *state;
	f->cfg.queue_pairs = 2;
	f->cfg.mem_regions = 3;
	f->cfg.gpa_base = VNET_VHU_FE_GPA_ZERO;
	open_ok(f);
	assert_int_equal(f->be.mem.nregions, 3);
	assert_int_equal(f->be.mem.regions[0].guest_phys_addr, 0);
	assert_int_equal(f->be.mem.regions[1].guest_phys_addr, f->be.mem.regions[0].memory_size);
	assert_int_equal(be_count(&f->be, VHOST_USER_SET_VRING_ENABLE), 4);
	dev_attach_all(f);
	for (unsigned qp = 0; qp < 2; qp++) {
		for (unsigned k = 0; k < 70; k++) { /* > queue size: reuse + reclaim */
			uint8_t frame[1000], got[1100];
			make_frame(frame, sizeof(frame), qp * 100 + k);
			struct iovec iov = {frame, sizeof(frame)};
			assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, qp, &iov, 1), 1);
			assert_int_equal(dev_pop_tx(f, 2 * qp + 1, got, sizeof(got), NULL), 1012);
			assert_memory_equal(got + 12, frame, sizeof(frame));
			assert_true(dev_push_rx(f, 2 * qp, frame, sizeof(frame)));
			struct vnet_vhu_fe_pkt p;
			assert_int_equal(vnet_vhu_fe_rx_burst(f->fe, qp, &p, 1), 1);
			assert_int_equal(p.len, sizeof(frame));
			assert_memory_equal(p.data, frame, sizeof(frame));
		}
	}
	/* the other queue pair's rings were untouched */
	assert_int_equal(vnet_vhu_fe_stats(f->fe, 1)->tx_packets, 70);
}

static void test_config_mtu_mac(void **state)
{
	struct fx *f = *state;
	memcpy(f->be.mac, "\x02\x00\x00\xaa\xbb\xcc", 6);
	f->be.mtu = 9000;
	f->cfg.mtu = 9000;
	open_ok(f);
	assert_true(f->fe->have_mac);
	assert_memory_equal(f->fe->mac, "\x02\x00\x00\xaa\xbb\xcc", 6);
	assert_int_equal(f->fe->backend_mtu, 9000);
	assert_int_equal(f->be.set_mtu, 9000);
	assert_true(f->be.acked_protocol & P(NET_MTU));
	assert_true(f->fe->buf_size >= 9000 + 12 + 14);
	dev_attach_all(f);
	static uint8_t jumbo[9014];
	make_frame(jumbo, sizeof(jumbo), 1);
	struct iovec iov = {jumbo, sizeof(jumbo)};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, &iov, 1), 1);
	static uint8_t got[9100];
	assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL), 9026);
	assert_memory_equal(got + 12, jumbo, sizeof(jumbo));
}

static void test_backend_hangup_detected(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	assert_int_equal(vnet_vhu_fe_check(f->fe), 0);
	be_stop(&f->be); /* the back-end goes away */
	int r = 0;
	for (int i = 0; i < 200 && r == 0; i++) {
		r = vnet_vhu_fe_check(f->fe);
		if (r == 0)
			usleep(1000);
	}
	assert_int_equal(r, -ECONNRESET);
	assert_false(f->fe->connected);
	/* stop does not talk to a dead back-end, and says nothing went wrong */
	assert_int_equal(vnet_vhu_fe_stop(f->fe), 0);
	assert_int_equal(vnet_vhu_fe_check(f->fe), -ENOTCONN);
}

static void test_stop_get_vring_base_and_no_fd_leak(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	dev_attach_all(f);
	uint8_t frame[80];
	make_frame(frame, sizeof(frame), 8);
	struct iovec iov[3] = {{frame, 80}, {frame, 80}, {frame, 80}};
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov, 3), 3);
	uint8_t got[128];
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(dev_pop_tx(f, 1, got, sizeof(got), NULL), 92);
	dev_detach_all(f); /* the answers GET_VRING_BASE will give */
	assert_int_equal(atomic_load(&f->be.base_answer[1]), 3);

	assert_int_equal(vnet_vhu_fe_stop(f->fe), 0);
	assert_int_equal(f->fe->rings[1].last_avail, 3);
	assert_int_equal(f->fe->rings[0].last_avail, 0);
	assert_int_equal(be_count(&f->be, VHOST_USER_GET_VRING_BASE), 2);
	assert_int_equal(f->be.status, 0);
	/* stopped: the data path refuses politely; stop is idempotent */
	assert_int_equal(vnet_vhu_fe_tx_burst(f->fe, 0, iov, 1), -ENOTCONN);
	assert_int_equal(vnet_vhu_fe_stop(f->fe), 0);
	check_no_fd_leak(f);
}

static void test_no_fd_leak_after_failures(void **state)
{
	struct fx *f = *state;
	f->be.nack_req = VHOST_USER_SET_VRING_KICK; /* fails after memfd + eventfds exist */
	assert_int_equal(open_fe(f), -EPROTO);
	check_no_fd_leak(f);
}

static void test_no_fd_leak_polling_cycles(void **state)
{
	struct fx *f = *state;
	f->cfg.polling = true;
	f->cfg.queue_pairs = 2;
	open_ok(f);
	check_no_fd_leak(f);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct vnet_vhu_fe *fe = NULL;
	struct vnet_vhu_fe_config c = {.name = "t", .path = "/tmp/x", .queue_size = 100};
	assert_int_equal(vnet_vhu_fe_open(&fe, &c), -EINVAL);
	c.queue_size = 0;
	c.features = F_EVT; /* no VERSION_1 */
	assert_int_equal(vnet_vhu_fe_open(&fe, &c), -EINVAL);
	c.features = F_V1 | F_CSUM; /* offload the front-end does not do */
	assert_int_equal(vnet_vhu_fe_open(&fe, &c), -EINVAL);
	assert_true(testlog_count_containing("feature CSUM") == 1);
	c.features = 0;
	c.queue_pairs = VNET_VHU_FE_MAX_QUEUE_PAIRS + 1;
	assert_int_equal(vnet_vhu_fe_open(&fe, &c), -EINVAL);
	assert_null(fe);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_negotiation_order_and_features),
		T(test_no_protocol_features),
		T(test_bad_reply_flags),
		T(test_bad_ack_flags),
		T(test_nack),
		T(test_no_version_1),
		T(test_close_mid_negotiation),
		T(test_close_before_get_reply),
		T(test_timeout),
		T(test_ack_timeout),
		T(test_queue_num_refused),
		T(test_mq_without_protocol_mq),
		T(test_no_backend),
		T(test_tx_frames_arrive),
		T(test_tx_full_and_oversize),
		T(test_tx_indirect),
		T(test_rx_frames_arrive),
		T(test_rx_wait_eventfd),
		T(test_polling_mode),
		T(test_server_mode),
		T(test_multiqueue_multiregion),
		T(test_config_mtu_mac),
		T(test_backend_hangup_detected),
		T(test_stop_get_vring_base_and_no_fd_leak),
		T(test_no_fd_leak_after_failures),
		T(test_no_fd_leak_polling_cycles),
		T(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
