/* vhost_user_backend.c — vhost-user back-end control plane; see vnet/vhost_user_backend.h. */
#include "vnet/vhost_user_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vnet/log.h"

#define BIT(b) (1ull << (b))

/* Result of one request handler. */
enum served {
	SERVED_OK = 0,     /* done; ack 0 if asked */
	SERVED_FAILED = 1, /* refused cleanly; ack 1 if asked, connection stays */
	/* <0: protocol violation, connection dropped */
};

uint64_t vnet_vhu_backend_default_features(void)
{
	return BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_INDIRECT_DESC) |
	       BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(VIRTIO_NET_F_MQ) |
	       BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

static uint64_t offered_protocol_features(const struct vnet_vhu_dev *dev)
{
	uint64_t p = BIT(VHOST_USER_PROTOCOL_F_MQ) | BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		     BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
		     BIT(VHOST_USER_PROTOCOL_F_STATUS);
	/* GET_CONFIG only serves a configured MAC; QEMU's virtio-net warns about
	 * CONFIG and drops it, so it is not offered without one. */
	if (dev->cfg.has_mac)
		p |= BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	if (dev->cfg.mtu)
		p |= BIT(VHOST_USER_PROTOCOL_F_NET_MTU);
	return p;
}

static int fail(struct vnet_vhu_dev *dev, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records and logs why a request was refused; returns `code`. */
static int fail(struct vnet_vhu_dev *dev, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dev->last_error, sizeof(dev->last_error), fmt, ap);
	va_end(ap);
	/* Each refusal (the caller's format) is its own kind of line. */
	if (code < 0)
		vnet_log_limited_as(dev->cfg.log_limit, fmt, VNET_LOG_ERROR,
				    "vhost-user %s: %s; closing connection", dev->name, dev->last_error);
	else
		vnet_log_limited_as(dev->cfg.log_limit, fmt, VNET_LOG_WARN, "vhost-user %s: %s",
				    dev->name, dev->last_error);
	return code;
}

static void ring_lock(struct vnet_vhu_ring *r)
{
	while (atomic_flag_test_and_set_explicit(&r->lock, memory_order_acquire))
		; /* the data plane holds it for one burst at most */
}

static void ring_unlock(struct vnet_vhu_ring *r)
{
	atomic_flag_clear_explicit(&r->lock, memory_order_release);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void ring_event(struct vnet_vhu_dev *dev, unsigned idx)
{
	if (dev->cfg.ring_event)
		dev->cfg.ring_event(dev, idx, dev->cfg.ring_event_arg);
}

static bool protocol_negotiated(const struct vnet_vhu_dev *dev)
{
	return dev->acked_features & BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

/* Recomputes the state the data plane sees. Caller holds the ring lock. */
static void ring_publish_state(struct vnet_vhu_dev *dev, struct vnet_vhu_ring *r)
{
	enum vnet_vhu_ring_state s = VNET_VHU_RING_STOPPED;
	if (r->started)
		s = (!protocol_negotiated(dev) || r->enable_requested) ? VNET_VHU_RING_ENABLED
								    : VNET_VHU_RING_DISABLED;
	atomic_store_explicit(&r->state, s, memory_order_release);
}

/* Stops a ring and returns the avail index to resume from. Caller holds the lock. */
static uint16_t ring_stop(struct vnet_vhu_dev *dev, struct vnet_vhu_ring *r)
{
	if (r->started) {
		r->base = vnet_vq_detach(&r->vq);
		r->started = false;
	}
	ring_publish_state(dev, r);
	return r->base;
}

/* Starts a ring once its size, addresses and memory are known. Lock held. */
static int ring_start(struct vnet_vhu_dev *dev, unsigned idx)
{
	struct vnet_vhu_ring *r = &dev->rings[idx];
	if (!r->num_set || !r->addr_set)
		return fail(dev, SERVED_FAILED, "ring %u kicked before its size and addresses", idx);
	char qname[64];
	snprintf(qname, sizeof(qname), "%s/%s%u", dev->name, idx % 2 ? "tx" : "rx", idx / 2);
	struct vnet_vq_config c = {
		.size = r->num,
		.desc_addr = r->addr.desc_user_addr,
		.avail_addr = r->addr.avail_user_addr,
		.used_addr = r->addr.used_user_addr,
		.ring_as = VNET_AS_UADDR,
		.features = dev->acked_features,
		.name = qname,
	};
	unsigned tok;
	vnet_guestmem_read_begin(&dev->gm, &tok);
	int e = vnet_vq_attach(&r->vq, &dev->gm, &c);
	vnet_guestmem_read_end(&dev->gm, tok);
	if (e < 0)
		return fail(dev, SERVED_FAILED, "ring %u: addresses not usable in shared memory (%s)",
			    idx, strerror(-e));
	/* A front-end that kept its rings across our restart (DPDK virtio-user in
	 * server mode) sends base 0 while the used index in guest memory has moved
	 * on; resuming at the base would look like a huge avail jump. Resume where
	 * the previous back-end left off, as DPDK's vhost library does: chains it
	 * took but never returned are taken again. */
	uint16_t resume = r->base;
	if (r->vq.used_idx != r->base) {
		vnet_log_limited(dev->cfg.log_limit, VNET_LOG_WARN,
				 "vhost-user %s: ring %u: vring base %u but used index %u in guest "
				 "memory; resuming at the used index",
				 dev->name, idx, r->base, r->vq.used_idx);
		resume = r->vq.used_idx;
	}
	vnet_vq_set_last_avail(&r->vq, resume);
	/* Poll-mode consumers (the switch's PMDs, pktgen) need no kicks: a
	 * driver that kicks costs itself a syscall per burst. Whoever wants to
	 * sleep on the kick fd asks for kicks first (vnet_vq_enable_notify),
	 * as DPDK's vhost PMD does with guest notifications. */
	vnet_guestmem_read_begin(&dev->gm, &tok);
	vnet_vq_disable_notify(&r->vq);
	vnet_guestmem_read_end(&dev->gm, tok);
	r->started = true;
	r->err_signalled = false;
	ring_publish_state(dev, r);
	return SERVED_OK;
}

/* ---- memory ---- */

static void unmap_all(struct vnet_vhu_mapping *maps, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (maps[i].base)
			munmap(maps[i].base, maps[i].len);
}

/* Maps one front-end region from fd (which stays the caller's to close). */
static int map_region(struct vnet_vhu_dev *dev, const struct vnet_vhu_mem_region *reg, int fd,
		      struct vnet_vhu_mapping *out)
{
	if (reg->memory_size == 0)
		return fail(dev, -EINVAL, "memory region at gpa 0x%llx has size 0",
			    (unsigned long long)reg->guest_phys_addr);
	uint64_t end;
	if (__builtin_add_overflow(reg->mmap_offset, reg->memory_size, &end) ||
	    end > (uint64_t)SIZE_MAX / 2)
		return fail(dev, -EINVAL, "memory region mmap_offset 0x%llx + size 0x%llx overflows",
			    (unsigned long long)reg->mmap_offset,
			    (unsigned long long)reg->memory_size);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail(dev, -EINVAL, "memory region fd: %s", strerror(errno));
	/* Touching a page beyond the file's end would SIGBUS the whole process. */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < end)
		return fail(dev, -EINVAL,
			    "memory region needs 0x%llx bytes of its fd, which has 0x%llx",
			    (unsigned long long)end, (unsigned long long)st.st_size);
	/* Whole blocks from offset 0: hugetlbfs fds need block-aligned lengths. */
	uint64_t block = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
	uint64_t len = (end + block - 1) / block * block;
	if (len > (uint64_t)st.st_size)
		len = end; /* the kernel rounds up to the page itself */
	void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return fail(dev, -EINVAL, "mmap of 0x%llx bytes failed: %s",
			    (unsigned long long)len, strerror(errno));
	*out = (struct vnet_vhu_mapping){
		.base = base,
		.len = len,
		.region = {
			.gpa = reg->guest_phys_addr,
			.size = reg->memory_size,
			.uaddr = reg->userspace_addr,
			.host = (uint8_t *)base + reg->mmap_offset,
			.prot = VNET_MEM_READ | VNET_MEM_WRITE,
		},
	};
	return 0;
}

static void lock_all_rings(struct vnet_vhu_dev *dev)
{
	for (unsigned i = 0; i < dev->nrings; i++)
		ring_lock(&dev->rings[i]);
}

static void unlock_all_rings(struct vnet_vhu_dev *dev)
{
	for (unsigned i = 0; i < dev->nrings; i++)
		ring_unlock(&dev->rings[i]);
}

/*
 * Publishes `maps[0..n)` as the new memory and unmaps what the old table
 * alone used. On failure nothing changes and the new mappings are unmapped.
 */
static int install_memory(struct vnet_vhu_dev *dev, struct vnet_vhu_mapping *maps, unsigned n)
{
	struct vnet_mem_region regions[VNET_VHU_MAX_MEM_SLOTS] = {0};
	for (unsigned i = 0; i < n; i++)
		regions[i] = maps[i].region;
	char err[128];
	struct vnet_mem_table *t = vnet_mem_table_new(regions, n, err, sizeof(err));
	if (!t)
		return fail(dev, -EINVAL, "memory table refused: %s", err);

	/* Rings re-translate their addresses on their next use of the new table. */
	vnet_mem_table_free(vnet_guestmem_replace(&dev->gm, t));

	for (unsigned i = 0; i < dev->nmaps; i++) {
		bool kept = false;
		for (unsigned j = 0; j < n; j++)
			kept |= maps[j].base == dev->maps[i].base;
		if (!kept)
			munmap(dev->maps[i].base, dev->maps[i].len);
	}
	if (n)
		memcpy(dev->maps, maps, n * sizeof(*maps));
	dev->nmaps = n;
	return 0;
}

static int set_mem_table(struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg, int *fds)
{
	const struct vnet_vhu_memory *m = &msg->payload.memory;
	struct vnet_vhu_mapping maps[VHOST_USER_MEM_TABLE_MAX] = {0};
	for (unsigned i = 0; i < m->nregions; i++) {
		int e = map_region(dev, &m->regions[i], fds[i], &maps[i]);
		if (e < 0) {
			unmap_all(maps, i);
			return e;
		}
	}
	lock_all_rings(dev);
	int e = install_memory(dev, maps, m->nregions);
	unlock_all_rings(dev);
	if (e < 0)
		unmap_all(maps, m->nregions);
	return e;
}

static bool same_region(const struct vnet_vhu_mapping *map, const struct vnet_vhu_mem_region *r)
{
	return map->region.gpa == r->guest_phys_addr && map->region.size == r->memory_size &&
	       map->region.uaddr == r->userspace_addr;
}

static int add_mem_reg(struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg, int fd)
{
	if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		return fail(dev, -EPROTO, "ADD_MEM_REG without CONFIGURE_MEM_SLOTS");
	if (dev->nmaps >= VNET_VHU_MAX_MEM_SLOTS)
		return fail(dev, -ENOSPC, "ADD_MEM_REG beyond the %u memory slots",
			    VNET_VHU_MAX_MEM_SLOTS);
	struct vnet_vhu_mapping maps[VNET_VHU_MAX_MEM_SLOTS];
	memcpy(maps, dev->maps, dev->nmaps * sizeof(*maps));
	int e = map_region(dev, &msg->payload.mem_reg.region, fd, &maps[dev->nmaps]);
	if (e < 0)
		return e;
	lock_all_rings(dev);
	e = install_memory(dev, maps, dev->nmaps + 1);
	unlock_all_rings(dev);
	if (e < 0)
		unmap_all(&maps[dev->nmaps], 1);
	return e;
}

static int rem_mem_reg(struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg)
{
	if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		return fail(dev, -EPROTO, "REM_MEM_REG without CONFIGURE_MEM_SLOTS");
	struct vnet_vhu_mapping maps[VNET_VHU_MAX_MEM_SLOTS];
	unsigned n = 0;
	bool found = false;
	for (unsigned i = 0; i < dev->nmaps; i++) {
		if (!found && same_region(&dev->maps[i], &msg->payload.mem_reg.region))
			found = true;
		else
			maps[n++] = dev->maps[i];
	}
	if (!found)
		return fail(dev, SERVED_FAILED, "REM_MEM_REG: no region at gpa 0x%llx",
			    (unsigned long long)msg->payload.mem_reg.region.guest_phys_addr);
	lock_all_rings(dev);
	int e = install_memory(dev, maps, n);
	unlock_all_rings(dev);
	return e;
}

/* ---- rings ---- */

/* Checks a 32-bit vring index before anything narrows it (CVE-2020-10723). */
static int check_ring_index(struct vnet_vhu_dev *dev, const char *what, uint64_t index)
{
	if (index >= dev->nrings)
		return fail(dev, -ERANGE, "%s: vring index %llu, device has %u", what,
			    (unsigned long long)index, dev->nrings);
	return 0;
}

static bool is_eventfd(int fd)
{
	char path[40], target[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static int set_vring_fd(struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg, int *fds,
			unsigned nfds)
{
	const char *name = vnet_vhu_request_name(msg->request);
	uint64_t v = msg->payload.u64;
	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD))
		return fail(dev, -EINVAL, "%s: unknown bits in 0x%llx", name, (unsigned long long)v);
	unsigned idx = v & VHOST_USER_VRING_IDX_MASK;
	int e = check_ring_index(dev, name, idx);
	if (e < 0)
		return e;
	struct vnet_vhu_ring *r = &dev->rings[idx];
	int fd = nfds ? fds[0] : -1;
	fds[0] = -1; /* ownership moves to the ring */
	/* The data plane writes call and err on its polling thread: a full
	 * pipe (or any fd but an eventfd) must give EAGAIN, never block it.
	 * Real front-ends pass eventfds, whose flags are theirs: DPDK's
	 * virtio-user misbehaves when we make its eventfds non-blocking (they
	 * share the open file). An eventfd blocks a writer only at a counter of
	 * 2^64-2, which takes the front-end's own deliberate writes. */
	if (fd >= 0 && msg->request != VHOST_USER_SET_VRING_KICK && !is_eventfd(fd)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
			int err = errno;
			close(fd);
			return fail(dev, -err, "%s: fd refused: %s", name, strerror(err));
		}
	}

	ring_lock(r);
	int ret = SERVED_OK;
	switch (msg->request) {
	case VHOST_USER_SET_VRING_KICK:
		/* A new kick fd (re)starts the ring, as in libvhost-user. */
		if (r->started)
			ring_stop(dev, r);
		close_fd(&r->kick_fd);
		r->kick_fd = fd;
		ret = ring_start(dev, idx);
		break;
	case VHOST_USER_SET_VRING_CALL:
		close_fd(&r->call_fd);
		r->call_fd = fd;
		break;
	default:
		close_fd(&r->err_fd);
		r->err_fd = fd;
		break;
	}
	ring_unlock(r);
	ring_event(dev, idx);
	return ret;
}

static int ring_state_msg(struct vnet_vhu_dev *dev, struct vnet_vhu_msg *msg, bool *reply)
{
	const char *name = vnet_vhu_request_name(msg->request);
	uint32_t idx = msg->payload.state.index;
	uint32_t num = msg->payload.state.num;
	int e = check_ring_index(dev, name, idx);
	if (e < 0)
		return e;
	struct vnet_vhu_ring *r = &dev->rings[idx];
	int ret = SERVED_OK;
	ring_lock(r);
	switch (msg->request) {
	case VHOST_USER_SET_VRING_NUM:
		if (!vring_size_valid(num))
			ret = fail(dev, -EINVAL, "SET_VRING_NUM: size %u is not a power of two in 1..%u",
				   num, VRING_MAX_SIZE);
		else if (r->started)
			ret = fail(dev, SERVED_FAILED, "SET_VRING_NUM on running ring %u", idx);
		else {
			r->num = (uint16_t)num;
			r->num_set = true;
		}
		break;
	case VHOST_USER_SET_VRING_BASE:
		if (num > UINT16_MAX)
			ret = fail(dev, -EINVAL, "SET_VRING_BASE: index %u beyond 16 bits", num);
		else if (r->started)
			ret = fail(dev, SERVED_FAILED, "SET_VRING_BASE on running ring %u", idx);
		else
			r->base = (uint16_t)num;
		break;
	case VHOST_USER_GET_VRING_BASE:
		msg->payload.state.num = ring_stop(dev, r);
		/* The ring stays stopped until a new kick fd arrives. */
		close_fd(&r->kick_fd);
		*reply = true;
		break;
	default: /* SET_VRING_ENABLE */
		if (num > 1)
			ret = fail(dev, -EINVAL, "SET_VRING_ENABLE: value %u is not 0 or 1", num);
		else {
			r->enable_requested = num;
			ring_publish_state(dev, r);
		}
		break;
	}
	ring_unlock(r);
	if (ret == SERVED_OK)
		ring_event(dev, idx);
	return ret;
}

static int set_vring_addr(struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg)
{
	const struct vnet_vhu_vring_addr *a = &msg->payload.addr;
	int e = check_ring_index(dev, "SET_VRING_ADDR", a->index);
	if (e < 0)
		return e;
	if (a->flags)
		return fail(dev, -EINVAL, "SET_VRING_ADDR: flags 0x%x (dirty logging is not supported)",
			    a->flags);
	struct vnet_vhu_ring *r = &dev->rings[a->index];
	int ret = SERVED_OK;
	ring_lock(r);
	r->addr = *a;
	r->addr_set = true;
	if (r->started) {
		/* Moving a running ring: resume where it is. */
		ring_stop(dev, r);
		ret = ring_start(dev, a->index);
	}
	ring_unlock(r);
	ring_event(dev, a->index);
	return ret;
}

/* ---- device-level requests ---- */

static void stop_all_rings(struct vnet_vhu_dev *dev)
{
	for (unsigned i = 0; i < dev->nrings; i++) {
		struct vnet_vhu_ring *r = &dev->rings[i];
		ring_lock(r);
		ring_stop(dev, r);
		close_fd(&r->kick_fd);
		close_fd(&r->call_fd);
		close_fd(&r->err_fd);
		r->num_set = r->addr_set = r->enable_requested = false;
		r->base = 0;
		ring_unlock(r);
		ring_event(dev, i);
	}
}

/* RESET_OWNER / RESET_DEVICE: back to the state of a fresh connection. */
static void reset_device(struct vnet_vhu_dev *dev)
{
	stop_all_rings(dev);
	lock_all_rings(dev);
	install_memory(dev, NULL, 0);
	unlock_all_rings(dev);
	dev->acked_features = 0;
	dev->acked_protocol = 0;
	dev->features_set = false;
	dev->status = 0;
}

static int set_features(struct vnet_vhu_dev *dev, uint64_t features)
{
	if (features & ~dev->offered_features)
		return fail(dev, -EINVAL, "SET_FEATURES 0x%llx has bits not offered (0x%llx)",
			    (unsigned long long)features,
			    (unsigned long long)(features & ~dev->offered_features));
	dev->acked_features = features;
	dev->hdr_len = (uint16_t)vnet_net_hdr_len(features);
	dev->features_set = true;
	/* Without protocol features rings are enabled as soon as they start. */
	for (unsigned i = 0; i < dev->nrings; i++) {
		ring_lock(&dev->rings[i]);
		ring_publish_state(dev, &dev->rings[i]);
		ring_unlock(&dev->rings[i]);
	}
	return SERVED_OK;
}

static int get_config(struct vnet_vhu_dev *dev, struct vnet_vhu_msg *msg)
{
	struct vnet_vhu_config *c = &msg->payload.config;
	struct virtio_net_config cfg = {
		.status = VIRTIO_NET_S_LINK_UP,
		.max_virtqueue_pairs = (uint16_t)dev->cfg.max_queue_pairs,
		.mtu = dev->mtu,
	};
	memcpy(cfg.mac, dev->cfg.mac, sizeof(cfg.mac));
	if (c->size > sizeof(c->region) || c->offset > sizeof(cfg) ||
	    c->size > sizeof(cfg) - c->offset)
		return fail(dev, -EINVAL, "GET_CONFIG: offset %u size %u outside the %zu-byte config",
			    c->offset, c->size, sizeof(cfg));
	memcpy(c->region, (uint8_t *)&cfg + c->offset, c->size);
	msg->size = 12 + c->size;
	return SERVED_OK;
}

static int dispatch(struct vnet_vhu_dev *dev, struct vnet_vhu_msg *msg, int *fds, unsigned nfds,
		    bool *reply)
{
	switch (msg->request) {
	case VHOST_USER_GET_FEATURES:
		msg->payload.u64 = dev->offered_features;
		msg->size = sizeof(uint64_t);
		*reply = true;
		return SERVED_OK;
	case VHOST_USER_SET_FEATURES:
		return set_features(dev, msg->payload.u64);
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		msg->payload.u64 = dev->offered_protocol;
		msg->size = sizeof(uint64_t);
		*reply = true;
		return SERVED_OK;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (msg->payload.u64 & ~dev->offered_protocol)
			return fail(dev, -EINVAL, "SET_PROTOCOL_FEATURES 0x%llx not offered",
				    (unsigned long long)msg->payload.u64);
		dev->acked_protocol = msg->payload.u64;
		return SERVED_OK;
	case VHOST_USER_SET_OWNER:
		dev->owner = true;
		return SERVED_OK;
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
		reset_device(dev);
		return SERVED_OK;
	case VHOST_USER_GET_QUEUE_NUM:
		msg->payload.u64 = dev->cfg.max_queue_pairs;
		msg->size = sizeof(uint64_t);
		*reply = true;
		return SERVED_OK;
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		msg->payload.u64 = VNET_VHU_MAX_MEM_SLOTS;
		msg->size = sizeof(uint64_t);
		*reply = true;
		return SERVED_OK;
	case VHOST_USER_SET_MEM_TABLE:
		return set_mem_table(dev, msg, fds);
	case VHOST_USER_ADD_MEM_REG:
		return add_mem_reg(dev, msg, fds[0]);
	case VHOST_USER_REM_MEM_REG:
		return rem_mem_reg(dev, msg);
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		return ring_state_msg(dev, msg, reply);
	case VHOST_USER_SET_VRING_ADDR:
		return set_vring_addr(dev, msg);
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return set_vring_fd(dev, msg, fds, nfds);
	case VHOST_USER_SET_STATUS:
		if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_STATUS)))
			return fail(dev, -EPROTO, "SET_STATUS without the STATUS protocol feature");
		if (msg->payload.u64 > 0xff)
			return fail(dev, -EINVAL, "SET_STATUS 0x%llx beyond 8 bits",
				    (unsigned long long)msg->payload.u64);
		dev->status = (uint8_t)msg->payload.u64;
		return SERVED_OK;
	case VHOST_USER_GET_STATUS:
		if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_STATUS)))
			return fail(dev, -EPROTO, "GET_STATUS without the STATUS protocol feature");
		msg->payload.u64 = dev->status;
		msg->size = sizeof(uint64_t);
		*reply = true;
		return SERVED_OK;
	case VHOST_USER_NET_SET_MTU:
		if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_NET_MTU)))
			return fail(dev, -EPROTO, "NET_SET_MTU without the NET_MTU protocol feature");
		if (msg->payload.u64 < 68 || msg->payload.u64 > dev->cfg.mtu)
			return fail(dev, SERVED_FAILED, "NET_SET_MTU %llu outside 68..%u",
				    (unsigned long long)msg->payload.u64, dev->cfg.mtu);
		dev->mtu = (uint16_t)msg->payload.u64;
		return SERVED_OK;
	case VHOST_USER_GET_CONFIG:
		if (!(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_CONFIG)))
			return fail(dev, -EPROTO, "GET_CONFIG without the CONFIG protocol feature");
		*reply = true;
		return get_config(dev, msg);
	default:
		/* Known to the protocol, not implemented here (logging, IOTLB, inflight,
		 * RARP, back-end channel, config writes): never offered, so refused. */
		return fail(dev, -EOPNOTSUPP, "%s is not supported by this back-end",
			    vnet_vhu_request_name(msg->request));
	}
}

/* The message sequence at debug level: what a front-end did to a ring is the
 * first question when its traffic goes missing.  Vring state and enable
 * messages show ring and value (for GET_VRING_BASE the value returned). */
static void trace_request(const struct vnet_vhu_dev *dev, const struct vnet_vhu_msg *msg, int served)
{
	if (vnet_log_get_level() < VNET_LOG_DEBUG)
		return;
	const char *name = vnet_vhu_request_name(msg->request);
	const char *result = served < 0 ? " (refused, connection dropped)"
			     : served != SERVED_OK ? " (refused)" : "";
	switch (msg->request) {
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		vnet_debug("vhost-user %s: %s ring %u value %u%s", dev->name, name,
			   msg->payload.state.index, msg->payload.state.num, result);
		break;
	case VHOST_USER_SET_VRING_ADDR:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		vnet_debug("vhost-user %s: %s ring %u%s%s", dev->name, name,
			   msg->request == VHOST_USER_SET_VRING_ADDR ? msg->payload.addr.index
								      : (unsigned)(msg->payload.u64 & VHOST_USER_VRING_IDX_MASK),
			   msg->request != VHOST_USER_SET_VRING_ADDR &&
					   (msg->payload.u64 & VHOST_USER_VRING_NOFD)
				   ? " (no fd)" : "",
			   result);
		break;
	default:
		vnet_debug("vhost-user %s: %s%s", dev->name, name, result);
	}
}

static int send_reply(struct vnet_vhu_dev *dev, struct vnet_vhu_msg *msg)
{
	msg->flags = VHOST_USER_VERSION | VHOST_USER_REPLY;
	int e = vnet_vhu_send(dev->sock, msg, NULL, 0);
	if (e < 0)
		return fail(dev, e, "cannot send the %s reply: %s",
			    vnet_vhu_request_name(msg->request), strerror(-e));
	return 0;
}

int vnet_vhu_dev_handle(struct vnet_vhu_dev *dev)
{
	struct vnet_vhu_msg msg;
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds = 0;
	int e = vnet_vhu_recv(dev->sock, &msg, fds, VHOST_USER_MAX_FDS, &nfds);
	if (e == -EAGAIN)
		return e; /* nothing arrived: not the front-end's fault */
	if (e == -ECONNRESET) {
		snprintf(dev->last_error, sizeof(dev->last_error), "front-end disconnected");
		vnet_log_limited(dev->cfg.log_limit, VNET_LOG_INFO, "vhost-user %s: front-end disconnected",
				 dev->name);
		return e;
	}
	if (e < 0)
		return fail(dev, e, "bad message: %s",
			    e == -EBADMSG    ? "wrong or truncated file descriptors"
			    : e == -EMSGSIZE ? "payload larger than any request"
					     : strerror(-e));

	char why[160];
	e = vnet_vhu_check_request(&msg, nfds, why, sizeof(why));
	if (e < 0) {
		vnet_vhu_close_fds(fds, nfds);
		return fail(dev, e, "%s", why);
	}
	if (msg.request == VHOST_USER_REM_MEM_REG)
		vnet_vhu_close_fds(fds, nfds); /* a tolerated stray fd, never used */

	bool need_ack = (msg.flags & VHOST_USER_NEED_REPLY) &&
			(dev->acked_protocol & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	bool reply = false;
	int served = dispatch(dev, &msg, fds, nfds, &reply);
	vnet_vhu_close_fds(fds, nfds); /* whatever a handler did not take */
	trace_request(dev, &msg, served);
	if (served < 0)
		return served;
	if (reply)
		return send_reply(dev, &msg);
	if (need_ack) {
		msg.size = sizeof(uint64_t);
		msg.payload.u64 = served == SERVED_OK ? 0 : 1;
		return send_reply(dev, &msg);
	}
	return 0;
}

int vnet_vhu_dev_init(struct vnet_vhu_dev *dev, const struct vnet_vhu_backend_config *cfg,
		      int sock)
{
	memset(dev, 0, sizeof(*dev));
	dev->sock = -1;
	if (cfg->max_queue_pairs < 1 || cfg->max_queue_pairs > VNET_VHU_MAX_QUEUE_PAIRS)
		return -EINVAL;
	dev->cfg = *cfg;
	snprintf(dev->name, sizeof(dev->name), "%s", cfg->name ? cfg->name : "?");
	dev->cfg.name = dev->name;
	if (vnet_guestmem_init(&dev->gm) < 0)
		return -ENOMEM;
	dev->offered_features = cfg->features ? cfg->features : vnet_vhu_backend_default_features();
	if (cfg->mtu)
		dev->offered_features |= BIT(VIRTIO_NET_F_MTU);
	if (cfg->has_mac)
		dev->offered_features |= BIT(VIRTIO_NET_F_MAC);
	if (cfg->max_queue_pairs == 1)
		dev->offered_features &= ~BIT(VIRTIO_NET_F_MQ);
	dev->offered_protocol = offered_protocol_features(dev);
	dev->mtu = cfg->mtu;
	dev->nrings = 2 * cfg->max_queue_pairs;
	for (unsigned i = 0; i < dev->nrings; i++) {
		struct vnet_vhu_ring *r = &dev->rings[i];
		r->kick_fd = r->call_fd = r->err_fd = -1;
		atomic_flag_clear(&r->lock);
		atomic_init(&r->state, VNET_VHU_RING_STOPPED);
	}
	dev->sock = sock;
	vnet_vhu_set_timeout(sock, cfg->io_timeout_ms ? cfg->io_timeout_ms : 1000);
	return 0;
}

void vnet_vhu_dev_fini(struct vnet_vhu_dev *dev)
{
	stop_all_rings(dev);
	lock_all_rings(dev);
	install_memory(dev, NULL, 0);
	unlock_all_rings(dev);
	vnet_guestmem_destroy(&dev->gm);
	close_fd(&dev->sock);
}

/* ---- data plane ---- */

struct vnet_vq *vnet_vhu_ring_enter(struct vnet_vhu_dev *dev, unsigned ring,
				    enum vnet_vhu_ring_state *state, unsigned *token)
{
	if (ring >= dev->nrings)
		return NULL;
	struct vnet_vhu_ring *r = &dev->rings[ring];
	if (atomic_load_explicit(&r->state, memory_order_acquire) == VNET_VHU_RING_STOPPED)
		return NULL;
	if (atomic_flag_test_and_set_explicit(&r->lock, memory_order_acquire))
		return NULL; /* the control thread is changing it: skip this round */
	enum vnet_vhu_ring_state s = atomic_load_explicit(&r->state, memory_order_relaxed);
	if (s == VNET_VHU_RING_STOPPED) {
		ring_unlock(r);
		return NULL;
	}
	*state = s;
	vnet_guestmem_read_begin(&dev->gm, token);
	return &r->vq;
}

void vnet_vhu_ring_exit(struct vnet_vhu_dev *dev, unsigned ring, unsigned token, bool notify)
{
	struct vnet_vhu_ring *r = &dev->rings[ring];
	vnet_guestmem_read_end(&dev->gm, token);
	if (notify && r->call_fd >= 0) {
		eventfd_write(r->call_fd, 1);
		r->interrupts++;
	}
	if (vnet_vq_is_broken(&r->vq) && !r->err_signalled && r->err_fd >= 0) {
		eventfd_write(r->err_fd, 1);
		r->err_signalled = true; /* once per start: the front-end restarts the ring */
	}
	ring_unlock(r);
}

int vnet_vhu_ring_kick_fd(struct vnet_vhu_dev *dev, unsigned ring)
{
	return ring < dev->nrings ? dev->rings[ring].kick_fd : -1;
}

unsigned vnet_vhu_rx_burst(struct vnet_vhu_dev *dev, unsigned qp, struct vnet_pkt_pool *pool,
			   struct vnet_pkt **pkts, unsigned n)
{
	enum vnet_vhu_ring_state state;
	unsigned tok, ring = 2 * qp + 1;
	struct vnet_vq *vq = vnet_vhu_ring_enter(dev, ring, &state, &tok);
	if (!vq)
		return 0;
	bool notify;
	unsigned got = vnet_net_dequeue(vq, dev->hdr_len, pool, pkts, n,
					state != VNET_VHU_RING_ENABLED, &dev->rings[ring].stats,
					&notify);
	vnet_vhu_ring_exit(dev, ring, tok, notify);
	/* The handler offers no checksum or segmentation offload, so a guest
	 * header asking for one is a lie: forwarding it (to a tap, whose
	 * kernel would act on csum_start/gso fields) is the CVE-2024-11614
	 * class. Clear it; the test is cheap for the all-zero common case. */
	if (!(dev->acked_features & VNET_NET_OFFLOAD_FEATURES))
		for (unsigned i = 0; i < got; i++)
			if (pkts[i]->vhdr.flags | pkts[i]->vhdr.gso_type)
				memset(&pkts[i]->vhdr, 0, sizeof(pkts[i]->vhdr));
	return got;
}

unsigned vnet_vhu_tx_burst(struct vnet_vhu_dev *dev, unsigned qp, struct vnet_pkt **pkts,
			   unsigned n)
{
	enum vnet_vhu_ring_state state;
	unsigned tok, ring = 2 * qp;
	struct vnet_vq *vq = vnet_vhu_ring_enter(dev, ring, &state, &tok);
	if (!vq)
		return 0;
	bool notify = false;
	unsigned done = 0;
	if (state == VNET_VHU_RING_ENABLED) /* a disabled ring gets no RX */
		done = vnet_net_enqueue(vq, dev->hdr_len, pkts, n, &dev->rings[ring].stats, &notify);
	vnet_vhu_ring_exit(dev, ring, tok, notify);
	return done;
}
