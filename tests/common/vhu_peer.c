/* vhu_peer.c — see vhu_peer.h. */
#include "vhu_peer.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testmem.h"

#define PEER_MAX_FDS VNET_SCM_MAX_FDS

static void die(const char *what)
{
	fprintf(stderr, "vhu_peer: %s: %s\n", what, strerror(errno));
	abort();
}

int vhu_peer_socketpair(int *peer, int *dev)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	*peer = sv[0];
	*dev = sv[1];
	return 0;
}

int vhu_peer_send_raw(int sock, const void *bytes, size_t len, const int *fds, unsigned nfds)
{
	if (nfds > PEER_MAX_FDS)
		return -EINVAL;
	return vnet_sock_send_fds(sock, bytes, len, fds, nfds);
}

int vhu_peer_send_ex(int sock, uint32_t request, uint32_t flags, uint32_t size,
		     const void *payload, size_t len, const int *fds, unsigned nfds)
{
	size_t total = VHOST_USER_HDR_SIZE + len;
	uint8_t *wire = malloc(total);
	if (!wire)
		return -ENOMEM;
	uint32_t hdr[3] = {request, flags, size};
	memcpy(wire, hdr, sizeof(hdr));
	if (len)
		memcpy(wire + VHOST_USER_HDR_SIZE, payload, len);
	int e = vhu_peer_send_raw(sock, wire, total, fds, nfds);
	free(wire);
	return e;
}

int vhu_peer_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		  uint32_t size, const int *fds, unsigned nfds)
{
	return vhu_peer_send_ex(sock, request, flags, size, payload, size, fds, nfds);
}

int vhu_peer_send_u64(int sock, uint32_t request, uint32_t flags, uint64_t v, const int *fds,
		      unsigned nfds)
{
	return vhu_peer_send(sock, request, flags, &v, sizeof(v), fds, nfds);
}

int vhu_peer_send_state(int sock, uint32_t request, uint32_t flags, uint32_t index,
			uint32_t num)
{
	struct vnet_vhu_vring_state s = {.index = index, .num = num};
	return vhu_peer_send(sock, request, flags, &s, sizeof(s), NULL, 0);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes before the deadline; closes any fds that come along. */
static int read_until(int sock, void *buf, size_t len, long long deadline, unsigned *nfds)
{
	uint8_t *p = buf;
	while (len) {
		long long left = deadline - now_ms();
		if (left < 0)
			left = 0;
		struct pollfd pfd = {.fd = sock, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pr == 0)
			return -ETIMEDOUT;
		union {
			char buf[CMSG_SPACE(sizeof(int) * PEER_MAX_FDS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = p, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (unsigned i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
				if (nfds)
					(*nfds)++;
			}
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vhu_peer_recv(int sock, struct vhu_reply *r, unsigned timeout_ms)
{
	memset(r, 0, sizeof(*r));
	long long deadline = now_ms() + timeout_ms;
	uint32_t hdr[3];
	int e = read_until(sock, hdr, sizeof(hdr), deadline, &r->nfds);
	if (e < 0)
		return e;
	r->request = hdr[0];
	r->flags = hdr[1];
	r->size = hdr[2];
	if (r->size > sizeof(r->payload)) {
		uint8_t sink[256];
		size_t left = r->size;
		while (left) {
			size_t k = left < sizeof(sink) ? left : sizeof(sink);
			if (read_until(sock, sink, k, deadline, &r->nfds) < 0)
				break;
			left -= k;
		}
		return -EMSGSIZE;
	}
	if (r->size) {
		e = read_until(sock, &r->payload, r->size, deadline, &r->nfds);
		if (e == -ECONNRESET)
			e = -EPROTO;
	}
	return e;
}

bool vhu_peer_readable(int sock, unsigned timeout_ms)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	int pr;
	do {
		pr = poll(&pfd, 1, (int)timeout_ms);
	} while (pr < 0 && errno == EINTR);
	return pr > 0;
}

bool vhu_peer_closed(int sock, unsigned timeout_ms)
{
	if (!vhu_peer_readable(sock, timeout_ms))
		return false;
	char c;
	ssize_t n = recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

unsigned vhu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	unsigned n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
	}
	closedir(d);
	return n - 1; /* the directory's own fd */
}

int vhu_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		die("eventfd");
	return fd;
}

bool vhu_eventfd_fired(int efd)
{
	eventfd_t v = 0;
	return eventfd_read(efd, &v) == 0 && v != 0;
}

int vhu_memfd(const char *name, size_t size, void **map)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		die("memfd_create");
	if (ftruncate(fd, (off_t)size) < 0)
		die("ftruncate");
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	*map = p;
	return fd;
}

unsigned vhu_count_maps(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		die("fopen /proc/self/maps");
	char needle[128];
	snprintf(needle, sizeof(needle), "/memfd:%s", name);
	size_t nl = strlen(needle);
	unsigned n = 0;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		const char *hit = strstr(line, needle);
		if (hit && (hit[nl] == ' ' || hit[nl] == '\n' || hit[nl] == '\0'))
			n++;
	}
	fclose(f);
	return n;
}

/* ---- test connection ---- */

#define BIT(b) (1ull << (b))

struct vnet_vhu_backend_config vhu_conn_default_config(void)
{
	return (struct vnet_vhu_backend_config){
		.name = "t",
		.max_queue_pairs = 1,
		.io_timeout_ms = 300,
	};
}

int vhu_conn_open(struct vhu_conn *c, const struct vnet_vhu_backend_config *cfg,
		  const char *memname, int peer_sock, int dev_sock)
{
	memset(c, 0, sizeof(*c));
	c->peer = c->memfd = -1;
	for (unsigned i = 0; i < VHU_RINGS; i++)
		c->kick[i] = c->call[i] = -1;
	int ds = dev_sock;
	if (ds < 0) {
		int e = vhu_peer_socketpair(&c->peer, &ds);
		if (e < 0)
			return e;
	} else {
		c->peer = peer_sock;
	}
	c->dev = calloc(1, sizeof(*c->dev));
	if (!c->dev) {
		close(ds);
		return -ENOMEM;
	}
	int e = vnet_vhu_dev_init(c->dev, cfg, ds);
	if (e < 0) {
		close(ds);
		return e;
	}
	c->live = true;
	if (memname) {
		snprintf(c->memname, sizeof(c->memname), "%s", memname);
		void *m;
		c->memfd = vhu_memfd(memname, VHU_MEMSZ, &m);
		c->mem = m;
		c->memsz = VHU_MEMSZ;
	}
	return 0;
}

void vhu_conn_fini(struct vhu_conn *c)
{
	if (c->live)
		vnet_vhu_dev_fini(c->dev);
	c->live = false;
}

void vhu_conn_close(struct vhu_conn *c)
{
	vhu_conn_fini(c);
	free(c->dev);
	c->dev = NULL;
	if (c->peer >= 0)
		close(c->peer);
	c->peer = -1;
	for (unsigned i = 0; i < VHU_RINGS; i++) {
		if (c->kick[i] >= 0)
			close(c->kick[i]);
		if (c->call[i] >= 0)
			close(c->call[i]);
		c->kick[i] = c->call[i] = -1;
		if (c->drv_live[i])
			vnet_vq_driver_fini(&c->drv[i]);
		c->drv_live[i] = false;
	}
	if (c->mem)
		munmap(c->mem, c->memsz);
	c->mem = NULL;
	if (c->memfd >= 0)
		close(c->memfd);
	c->memfd = -1;
}

int vhu_conn_req(struct vhu_conn *c, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds)
{
	int e = vhu_peer_send(c->peer, request, flags, payload, size, fds, nfds);
	if (e < 0)
		return e;
	c->last_rc = vnet_vhu_dev_handle(c->dev);
	return c->last_rc;
}

int vhu_conn_set(struct vhu_conn *c, uint32_t request, const void *payload, uint32_t size,
		 const int *fds, unsigned nfds)
{
	int e = vhu_conn_req(c, request, c->ack ? VHU_FN : VHU_F, payload, size, fds, nfds);
	if (e < 0)
		return e;
	if (!c->ack)
		return vhu_peer_readable(c->peer, 0) ? -EEXIST : 0;
	struct vhu_reply r;
	e = vhu_peer_recv(c->peer, &r, 500);
	if (e < 0)
		return e;
	if (r.flags != (VHOST_USER_VERSION | VHOST_USER_REPLY) || r.request != request ||
	    r.size != 8 || r.nfds)
		return -EBADMSG;
	if (vhu_peer_readable(c->peer, 0))
		return -EEXIST; /* more than one reply */
	return r.payload.u64 ? 1 : 0;
}

int vhu_conn_set_u64(struct vhu_conn *c, uint32_t request, uint64_t v)
{
	return vhu_conn_set(c, request, &v, sizeof(v), NULL, 0);
}

int vhu_conn_set_state(struct vhu_conn *c, uint32_t request, uint32_t index, uint32_t num)
{
	struct vnet_vhu_vring_state s = {.index = index, .num = num};
	return vhu_conn_set(c, request, &s, sizeof(s), NULL, 0);
}

int vhu_conn_set_vring_fd(struct vhu_conn *c, uint32_t request, unsigned ring, int fd)
{
	uint64_t v = ring | (fd < 0 ? VHOST_USER_VRING_NOFD : 0);
	return vhu_conn_set(c, request, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

int vhu_conn_get(struct vhu_conn *c, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, struct vhu_reply *r)
{
	int e = vhu_conn_req(c, request, flags, payload, size, NULL, 0);
	if (e < 0)
		return e;
	e = vhu_peer_recv(c->peer, r, 500);
	if (e < 0)
		return e;
	if (r->flags != (VHOST_USER_VERSION | VHOST_USER_REPLY) || r->request != request ||
	    r->nfds)
		return -EBADMSG;
	if (vhu_peer_readable(c->peer, 0))
		return -EEXIST;
	return 0;
}

int vhu_conn_get_u64(struct vhu_conn *c, uint32_t request, uint64_t *v)
{
	struct vhu_reply r;
	int e = vhu_conn_get(c, request, VHU_F, NULL, 0, &r);
	if (e < 0)
		return e;
	if (r.size != 8)
		return -EBADMSG;
	*v = r.payload.u64;
	return 0;
}

int vhu_conn_negotiate(struct vhu_conn *c, uint64_t want_features, uint64_t want_protocol)
{
	int e = vhu_conn_set(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
	if (e)
		return e < 0 ? e : -EIO;
	uint64_t offered;
	if ((e = vhu_conn_get_u64(c, VHOST_USER_GET_FEATURES, &offered)) < 0)
		return e;
	uint64_t f = offered & want_features;
	if (f & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t p, q;
		if ((e = vhu_conn_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES, &p)) < 0)
			return e;
		p &= want_protocol;
		if ((e = vhu_conn_set_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, p)) != 0)
			return e < 0 ? e : -EIO;
		c->protocol = p;
		c->ack = p & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK);
		if (p & BIT(VHOST_USER_PROTOCOL_F_MQ)) {
			if ((e = vhu_conn_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &q)) < 0)
				return e;
		}
	}
	if ((e = vhu_conn_set_u64(c, VHOST_USER_SET_FEATURES, f)) != 0)
		return e < 0 ? e : -EIO;
	c->features = f;
	return 0;
}

int vhu_conn_set_mem(struct vhu_conn *c)
{
	struct vnet_vhu_memory m = {.nregions = 1};
	m.regions[0] = (struct vnet_vhu_mem_region){
		.guest_phys_addr = VHU_GPA,
		.memory_size = c->memsz,
		.userspace_addr = (uint64_t)(uintptr_t)c->mem,
		.mmap_offset = 0,
	};
	return vhu_conn_set(c, VHOST_USER_SET_MEM_TABLE, &m,
			    (uint32_t)(offsetof(struct vnet_vhu_memory, regions) + sizeof(m.regions[0])),
			    &c->memfd, 1);
}

static uint64_t uaddr_of_gpa(struct vhu_conn *c, uint64_t gpa)
{
	return (uint64_t)(uintptr_t)c->mem + (gpa - VHU_GPA);
}

int vhu_conn_ring_addr(struct vhu_conn *c, unsigned ring)
{
	struct vnet_vq_driver *d = &c->drv[ring];
	struct vnet_vhu_vring_addr a = {
		.index = ring,
		.desc_user_addr = uaddr_of_gpa(c, d->desc_gpa),
		.avail_user_addr = uaddr_of_gpa(c, d->avail_gpa),
		.used_user_addr = uaddr_of_gpa(c, d->used_gpa),
	};
	return vhu_conn_set(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

int vhu_conn_ring(struct vhu_conn *c, unsigned ring, uint16_t size)
{
	if (ring >= VHU_RINGS)
		return -EINVAL;
	if (c->drv_live[ring])
		vnet_vq_driver_fini(&c->drv[ring]);
	struct vnet_vq_driver_config dc = {
		.size = size,
		.ring_host = c->mem + VHU_RING_OFF(ring),
		.ring_gpa = VHU_GPA + VHU_RING_OFF(ring),
		.features = c->features,
		.name = "t/guest",
	};
	int e = vnet_vq_driver_init(&c->drv[ring], &dc);
	if (e < 0)
		return e;
	c->drv_live[ring] = true;
	c->slot_next[ring] = 0;
	if ((e = vhu_conn_set_state(c, VHOST_USER_SET_VRING_NUM, ring, size)) != 0)
		return e < 0 ? e : -EIO;
	if ((e = vhu_conn_set_state(c, VHOST_USER_SET_VRING_BASE, ring, 0)) != 0)
		return e < 0 ? e : -EIO;
	if ((e = vhu_conn_ring_addr(c, ring)) != 0)
		return e < 0 ? e : -EIO;
	if (c->kick[ring] < 0)
		c->kick[ring] = vhu_eventfd();
	if (c->call[ring] < 0)
		c->call[ring] = vhu_eventfd();
	if ((e = vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_KICK, ring, c->kick[ring])) != 0)
		return e < 0 ? e : -EIO;
	if ((e = vhu_conn_set_vring_fd(c, VHOST_USER_SET_VRING_CALL, ring, c->call[ring])) != 0)
		return e < 0 ? e : -EIO;
	return 0;
}

int vhu_conn_up(struct vhu_conn *c, uint64_t want_features, uint64_t want_protocol)
{
	int e = vhu_conn_negotiate(c, want_features, want_protocol);
	if (e)
		return e;
	if ((e = vhu_conn_set_mem(c)) != 0)
		return e < 0 ? e : -EIO;
	for (unsigned r = 0; r < 2; r++) {
		if ((e = vhu_conn_ring(c, r, VHU_QSZ)) != 0)
			return e;
		if (c->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
			if ((e = vhu_conn_set_state(c, VHOST_USER_SET_VRING_ENABLE, r, 1)) != 0)
				return e < 0 ? e : -EIO;
		}
	}
	return 0;
}

enum vnet_vhu_ring_state vhu_conn_ring_state(struct vhu_conn *c, unsigned ring)
{
	return (enum vnet_vhu_ring_state)atomic_load(&c->dev->rings[ring].state);
}

static void fill_frame(uint8_t *p, uint32_t len, uint32_t seq)
{
	for (uint32_t j = 0; j < len; j++)
		p[j] = (uint8_t)(seq * 7 + j);
	if (len >= 4)
		memcpy(p, &seq, 4);
}

static bool check_frame(const uint8_t *p, uint32_t len, uint32_t *seq)
{
	if (len < 4)
		return false;
	memcpy(seq, p, 4);
	for (uint32_t j = 4; j < len; j++)
		if (p[j] != (uint8_t)(*seq * 7 + j))
			return false;
	return true;
}

static uint32_t *next_slot(struct vhu_conn *c, unsigned ring, uint64_t *gpa)
{
	uint32_t s = c->slot_next[ring]++ % VHU_QSZ;
	*gpa = VHU_GPA + VHU_BUF_OFF(ring) + (uint64_t)s * VHU_BUF_SIZE;
	c->cookies[ring][s] = s;
	return &c->cookies[ring][s];
}

int vhu_guest_tx(struct vhu_conn *c, unsigned ring, unsigned n, uint32_t len, uint32_t seq)
{
	if (len > VHU_BUF_SIZE)
		return -EINVAL;
	unsigned k;
	for (k = 0; k < n; k++) {
		uint64_t gpa;
		uint32_t *cookie = next_slot(c, ring, &gpa);
		fill_frame(c->mem + (gpa - VHU_GPA), len, seq + k);
		struct vnet_buf b = {.addr = gpa, .len = len};
		int e = vnet_vq_driver_add(&c->drv[ring], &b, 1, 0, cookie, false);
		if (e < 0)
			return e;
	}
	if (vnet_vq_driver_kick_prepare(&c->drv[ring]) && c->kick[ring] >= 0)
		eventfd_write(c->kick[ring], 1);
	return (int)k;
}

int vhu_guest_reap(struct vhu_conn *c, unsigned ring)
{
	int n = 0;
	uint32_t w;
	while (vnet_vq_driver_get_used(&c->drv[ring], &w))
		n++;
	return n;
}

int vhu_guest_rx_post(struct vhu_conn *c, unsigned ring, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint64_t gpa;
		uint32_t *cookie = next_slot(c, ring, &gpa);
		memset(c->mem + (gpa - VHU_GPA), 0, VHU_BUF_SIZE);
		struct vnet_buf b = {.addr = gpa, .len = VHU_BUF_SIZE};
		int e = vnet_vq_driver_add(&c->drv[ring], &b, 0, 1, cookie, false);
		if (e < 0)
			return e;
	}
	if (vnet_vq_driver_kick_prepare(&c->drv[ring]) && c->kick[ring] >= 0)
		eventfd_write(c->kick[ring], 1);
	return (int)n;
}

int vhu_guest_rx_get(struct vhu_conn *c, unsigned ring, uint32_t *seq, uint32_t *len)
{
	uint32_t w;
	uint32_t *cookie = vnet_vq_driver_get_used(&c->drv[ring], &w);
	if (!cookie)
		return 0;
	uint64_t gpa = VHU_GPA + VHU_BUF_OFF(ring) + (uint64_t)*cookie * VHU_BUF_SIZE;
	*len = w;
	if (!check_frame(c->mem + (gpa - VHU_GPA), w, seq))
		return -EBADMSG;
	return 1;
}

#define POP_MAX 64
#define IOV_PER 8

int vhu_device_pop(struct vhu_conn *c, unsigned ring, uint32_t *seqs, unsigned max,
		   bool *notify, enum vnet_vhu_ring_state *state)
{
	enum vnet_vhu_ring_state st;
	unsigned tok;
	struct vnet_vq *vq = vnet_vhu_ring_enter(c->dev, ring, &st, &tok);
	if (notify)
		*notify = false;
	if (!vq)
		return -ENOENT;
	if (state)
		*state = st;
	if (max > POP_MAX)
		max = POP_MAX;
	struct vnet_vq_chain chains[POP_MAX];
	static struct iovec iov[POP_MAX * IOV_PER];
	unsigned n = vnet_vq_pop_burst(vq, chains, max, iov, IOV_PER);
	int ret = (int)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t frame[VHU_BUF_SIZE * 2];
		size_t off = 0;
		for (unsigned k = 0; k < chains[i].n_out; k++) {
			size_t l = chains[i].iov[k].iov_len;
			if (off + l > sizeof(frame)) {
				ret = -EBADMSG;
				break;
			}
			memcpy(frame + off, chains[i].iov[k].iov_base, l);
			off += l;
		}
		if (ret >= 0 && !check_frame(frame, (uint32_t)off, &seqs[i]))
			ret = -EBADMSG;
		vnet_vq_push(vq, chains[i].head, 0);
	}
	bool nt = vnet_vq_flush(vq);
	vnet_vhu_ring_exit(c->dev, ring, tok, nt);
	if (notify)
		*notify = nt;
	return ret;
}

int vhu_device_rx(struct vhu_conn *c, unsigned ring, uint32_t seq, uint32_t len, bool *notify)
{
	enum vnet_vhu_ring_state st;
	unsigned tok;
	if (notify)
		*notify = false;
	struct vnet_vq *vq = vnet_vhu_ring_enter(c->dev, ring, &st, &tok);
	if (!vq)
		return -ENOENT;
	struct vnet_vq_chain ch;
	struct iovec iov[IOV_PER];
	int r = vnet_vq_pop(vq, &ch, iov, IOV_PER);
	int ret = r < 0 ? r : 0;
	if (r == 1) {
		if (ch.in_len < len || len > VHU_BUF_SIZE) {
			ret = -ENOSPC;
			vnet_vq_push(vq, ch.head, 0);
		} else {
			uint8_t frame[VHU_BUF_SIZE];
			fill_frame(frame, len, seq);
			size_t off = 0;
			for (unsigned k = ch.n_out; k < ch.n_out + ch.n_in && off < len; k++) {
				size_t l = iov[k].iov_len;
				if (l > len - off)
					l = len - off;
				memcpy(iov[k].iov_base, frame + off, l);
				off += l;
			}
			vnet_vq_push(vq, ch.head, len);
			ret = 1;
		}
	}
	bool nt = vnet_vq_flush(vq);
	vnet_vhu_ring_exit(c->dev, ring, tok, nt);
	if (notify)
		*notify = nt;
	return ret;
}

int vhu_conn_traffic(struct vhu_conn *c, uint32_t seq)
{
	if (vhu_guest_tx(c, 1, 4, 100, seq) != 4)
		return -101;
	uint32_t seqs[8];
	int n = vhu_device_pop(c, 1, seqs, 8, NULL, NULL);
	if (n != 4)
		return n < 0 ? -1000 + n : -102;
	for (unsigned i = 0; i < 4; i++)
		if (seqs[i] != seq + i)
			return -103;
	if (vhu_guest_reap(c, 1) != 4)
		return -104;
	if (vhu_guest_rx_post(c, 0, 1) != 1)
		return -105;
	if (vhu_device_rx(c, 0, seq + 100, 200, NULL) != 1)
		return -106;
	uint32_t s, l;
	if (vhu_guest_rx_get(c, 0, &s, &l) != 1 || s != seq + 100 || l != 200)
		return -107;
	if (c->call[1] >= 0)
		vhu_eventfd_fired(c->call[1]);
	if (c->call[0] >= 0)
		vhu_eventfd_fired(c->call[0]);
	return 0;
}

/* ---- a hostile connection next to a good one ---- */

#define DUO_ALL_F (~0ull & ~BIT(VHOST_F_LOG_ALL))
#define DUO_P_ALL (~0ull)

/* Prints what failed and returns e. */
__attribute__((format(printf, 2, 3))) static int duo_fail(int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vhu_duo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return e;
}

unsigned vhu_duo_good(struct vhu_duo *d)
{
	struct vhu_conn *c = &d->good;
	unsigned intact = 0;
	if (vhu_guest_tx(c, 1, VHU_DUO_GOOD_TX, 100, d->seq) != (int)VHU_DUO_GOOD_TX)
		return 0;
	uint32_t seqs[64];
	int n = vhu_device_pop(c, 1, seqs, 64, NULL, NULL);
	for (int i = 0; i < n; i++)
		intact += seqs[i] == d->seq + (uint32_t)i;
	if (vhu_guest_reap(c, 1) != n)
		return 0;
	d->seq += VHU_DUO_GOOD_TX;
	if (vhu_guest_rx_post(c, 0, VHU_DUO_GOOD_RX) != (int)VHU_DUO_GOOD_RX)
		return intact;
	for (unsigned i = 0; i < VHU_DUO_GOOD_RX; i++)
		if (vhu_device_rx(c, 0, d->seq + i, 200, NULL) != 1)
			return intact;
	for (unsigned i = 0; i < VHU_DUO_GOOD_RX; i++) {
		uint32_t s, l;
		if (vhu_guest_rx_get(c, 0, &s, &l) == 1 && s == d->seq + i && l == 200)
			intact++;
	}
	d->seq += VHU_DUO_GOOD_RX;
	return intact;
}

/* A round of good traffic, all intact: 0 or -EIO. */
static int duo_good_flows(struct vhu_duo *d, const char *when)
{
	unsigned n = vhu_duo_good(d);
	if (n != VHU_DUO_GOOD_FRAMES)
		return duo_fail(-EIO, "good connection %s: %u of %u frames intact", when, n,
				VHU_DUO_GOOD_FRAMES);
	return 0;
}

int vhu_duo_open(struct vhu_duo *d)
{
	memset(d, 0, sizeof(*d));
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	cfg.name = "good";
	int e = vhu_conn_open(&d->good, &cfg, "vhu-good", -1, -1);
	if (e < 0)
		return duo_fail(e, "good connection: open: %s", strerror(-e));
	if ((e = vhu_conn_up(&d->good, DUO_ALL_F, DUO_P_ALL)) != 0)
		e = duo_fail(e < 0 ? e : -EIO, "good connection: set-up failed (%d)", e);
	else
		e = duo_good_flows(d, "at the start");
	if (e < 0)
		vhu_conn_close(&d->good);
	return e;
}

void vhu_duo_close(struct vhu_duo *d)
{
	if (d->bad_open)
		vhu_conn_close(&d->bad);
	d->bad_open = false;
	vhu_conn_close(&d->good);
}

int vhu_duo_bad_open(struct vhu_duo *d, const struct vnet_vhu_backend_config *cfg,
		     bool negotiate, bool mem)
{
	int e = duo_good_flows(d, "before the bad one opened");
	if (e < 0)
		return e;
	d->fds0 = vhu_count_fds();
	struct vnet_vhu_backend_config bc = *cfg;
	bc.name = "bad";
	if ((e = vhu_conn_open(&d->bad, &bc, "vhu-bad", -1, -1)) < 0)
		return duo_fail(e, "bad connection: open: %s", strerror(-e));
	d->bad_open = true;
	if (negotiate && (e = vhu_conn_negotiate(&d->bad, DUO_ALL_F, DUO_P_ALL)) != 0)
		return duo_fail(e < 0 ? e : -EIO, "bad connection: negotiation failed (%d)", e);
	if (mem && (e = vhu_conn_set_mem(&d->bad)) != 0)
		return duo_fail(e < 0 ? e : -EIO, "bad connection: SET_MEM_TABLE failed (%d)", e);
	testlog_clear();
	return 0;
}

int vhu_duo_bad_close(struct vhu_duo *d)
{
	vhu_conn_close(&d->bad);
	d->bad_open = false;
	unsigned fds = vhu_count_fds(), maps = vhu_count_maps("vhu-bad");
	if (fds != d->fds0)
		return duo_fail(-EMFILE, "bad connection closed: %u fds open, %u before it opened",
				fds, d->fds0);
	if (maps)
		return duo_fail(-EADDRINUSE, "bad connection closed: %u mappings of vhu-bad left",
				maps);
	return duo_good_flows(d, "after the bad one closed");
}

int vhu_duo_bad_dropped(struct vhu_duo *d, int rc, const char *needle)
{
	struct vhu_conn *c = &d->bad;
	if (rc >= 0 || !strstr(c->dev->last_error, needle))
		return duo_fail(rc >= 0 ? -EINVAL : -ENOMSG,
				"rc %d, last_error \"%s\", expected \"%s\"", rc,
				c->dev->last_error, needle);
	unsigned logged = testlog_count_containing("closing connection");
	if (logged != 1)
		return duo_fail(-EALREADY, "\"closing connection\" logged %u times, expected once",
				logged);
	if (vhu_peer_readable(c->peer, 0))
		return duo_fail(-EEXIST, "the dropped connection was answered");
	return vhu_duo_bad_close(d);
}
