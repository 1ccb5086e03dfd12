/* virtqueue.c — device side of a split virtqueue; see vnet/virtqueue.h. */
#include "vnet/virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/log.h"
#include "virtio/guestmem_impl.h"
#include "virtio/vring_access.h"

void vnet_vq_mark_broken(struct vnet_vq *vq, const char *fmt, ...)
{
	if (vq->broken)
		return;
	vq->broken = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, ap);
	va_end(ap);
	vnet_err("virtqueue %s: %s; queue stopped until reset", vq->name, vq->broken_reason);
}

/* Translates the three ring areas through table `t`. */
static int map_rings(struct vnet_vq *vq, const struct vnet_mem_table *t)
{
	vq->desc = vnet_mem_translate_contig(t, vq->ring_as, vq->desc_addr,
					     vring_desc_bytes(vq->size), VNET_MEM_READ, NULL);
	vq->avail = vnet_mem_translate_contig(t, vq->ring_as, vq->avail_addr,
					      vring_avail_bytes(vq->size), VNET_MEM_READ, NULL);
	vq->used = vnet_mem_translate_contig(t, vq->ring_as, vq->used_addr,
					     vring_used_bytes(vq->size),
					     VNET_MEM_READ | VNET_MEM_WRITE, NULL);
	vq->mem_gen = vnet_mem_table_generation(t);
	if (vq->desc && vq->avail && vq->used)
		return 0;
	const char *what = !vq->desc ? "descriptor table" : !vq->avail ? "avail ring" : "used ring";
	uint64_t addr = !vq->desc ? vq->desc_addr : !vq->avail ? vq->avail_addr : vq->used_addr;
	snprintf(vq->broken_reason, sizeof(vq->broken_reason),
		 "%s at 0x%llx (queue size %u) is not inside one %sguest memory region", what,
		 (unsigned long long)addr, vq->size, vq->used ? "" : "writable ");
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	return -EFAULT;
}

/* The table to translate through; re-maps the rings when memory changed. */
static const struct vnet_mem_table *current_table(struct vnet_vq *vq)
{
	const struct vnet_mem_table *t = vnet_guestmem_table(vq->gm);
	if (__builtin_expect(t->generation != vq->mem_gen, 0)) {
		if (map_rings(vq, t) < 0) {
			char reason[sizeof(vq->broken_reason)];
			memcpy(reason, vq->broken_reason, sizeof(reason));
			vnet_vq_mark_broken(vq, "after memory table change: %s", reason);
			return NULL;
		}
	}
	return t;
}

int vnet_vq_attach(struct vnet_vq *vq, struct vnet_guestmem *gm, const struct vnet_vq_config *cfg)
{
	vnet_vq_detach(vq); /* re-attach (repeated SET_VRING_*) must not leak */
	memset(vq, 0, sizeof(*vq));
	snprintf(vq->name, sizeof(vq->name), "%s", cfg->name ? cfg->name : "?");

	if (!vring_size_valid(cfg->size)) {
		vnet_err("virtqueue %s: size %u is not a power of two in 1..%u", vq->name,
			 cfg->size, VRING_MAX_SIZE);
		return -EINVAL;
	}
	if (cfg->desc_addr % VRING_DESC_ALIGN || cfg->avail_addr % VRING_AVAIL_ALIGN ||
	    cfg->used_addr % VRING_USED_ALIGN) {
		vnet_err("virtqueue %s: misaligned ring (desc 0x%llx needs 16, avail 0x%llx 2, "
			 "used 0x%llx 4)",
			 vq->name, (unsigned long long)cfg->desc_addr,
			 (unsigned long long)cfg->avail_addr, (unsigned long long)cfg->used_addr);
		return -EINVAL;
	}
	if ((unsigned)cfg->ring_as > VNET_AS_UADDR)
		return -EINVAL;

	vq->size = cfg->size;
	vq->mask = cfg->size - 1;
	vq->ring_as = cfg->ring_as;
	vq->desc_addr = cfg->desc_addr;
	vq->avail_addr = cfg->avail_addr;
	vq->used_addr = cfg->used_addr;
	vq->event_idx = cfg->features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = cfg->features & (1ull << VIRTIO_F_RING_INDIRECT_DESC);
	vq->gm = gm;

	if (map_rings(vq, vnet_guestmem_table(gm)) < 0) {
		vnet_err("virtqueue %s: %s", vq->name, vq->broken_reason);
		vq->broken_reason[0] = '\0';
		return -EFAULT;
	}
	/* The used ring is the one area the device writes: if it overlapped the
	 * descriptors or the avail ring, the device's own writes would feed it
	 * new "available" chains for ever (a fuzzer found that spin). */
	uint64_t used_end = cfg->used_addr + 6 + 8ull * cfg->size;
	if ((cfg->used_addr < cfg->desc_addr + 16ull * cfg->size && cfg->desc_addr < used_end) ||
	    (cfg->used_addr < cfg->avail_addr + 6 + 2ull * cfg->size && cfg->avail_addr < used_end)) {
		vnet_err("virtqueue %s: used ring 0x%llx overlaps the descriptors 0x%llx or the avail "
			 "ring 0x%llx", vq->name, (unsigned long long)cfg->used_addr,
			 (unsigned long long)cfg->desc_addr, (unsigned long long)cfg->avail_addr);
		return -EINVAL; /* not attached: nothing to undo */
	}
	vq->inflight_map = calloc((vq->size + 63) / 64, sizeof(uint64_t));
	if (!vq->inflight_map)
		return -ENOMEM;

	vq->used_idx = vring_read16(&vq->used->idx);
	vq->used_published = vq->used_idx;
	vq->attached = true;
	return 0;
}

void vnet_vq_set_last_avail(struct vnet_vq *vq, uint16_t last_avail)
{
	vq->last_avail = last_avail;
	vq->avail_cached = last_avail;
}

uint16_t vnet_vq_detach(struct vnet_vq *vq)
{
	free(vq->inflight_map);
	vq->inflight_map = NULL;
	vq->attached = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	return vq->last_avail;
}

/*
 * Chains the driver has published and we have not taken, re-reading
 * avail->idx only when the cached count is used up. -1 when broken.
 */
static int avail_pending(struct vnet_vq *vq)
{
	if (vq->avail_cached == vq->last_avail) {
		uint16_t idx = vring_load_acquire(&vq->avail->idx);
		if ((uint16_t)(idx - vq->last_avail) > vq->size) {
			vnet_vq_mark_broken(vq, "avail index jumped from %u to %u (queue size %u)",
					    vq->last_avail, idx, vq->size);
			return -1;
		}
		vq->avail_cached = idx;
	}
	return (uint16_t)(vq->avail_cached - vq->last_avail);
}

/* Walk state of the chain being popped. */
struct chain_walk {
	struct vnet_vq_chain *chain;
	unsigned max_iov;
	unsigned n_iov;
	unsigned n_out_iov; /* pieces that are device-readable */
	uint64_t out_len, in_len;
	bool seen_writable;
};

/* Inlined so the walk state stays in registers on the direct-chain path. */
static inline __attribute__((always_inline)) int
add_buffer(struct vnet_vq *vq, const struct vnet_mem_table *t, struct chain_walk *w,
	   const struct vring_desc *d, const char *where, unsigned index)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	if (!writable && w->seen_writable) {
		vnet_vq_mark_broken(vq, "%s descriptor %u is readable after a writable one", where,
				    index);
		return -1;
	}
	w->seen_writable |= writable;
	if (writable)
		w->in_len += d->len;
	else
		w->out_len += d->len;
	if (w->out_len + w->in_len > UINT32_MAX) {
		vnet_vq_mark_broken(vq, "chain at head %u is longer than 4 GiB", w->chain->head);
		return -1;
	}
	unsigned access = writable ? VNET_MEM_WRITE : VNET_MEM_READ;
	void *host = guestmem_translate_hinted(t, VNET_AS_GPA, d->addr, d->len, access, vq->hint);
	if (__builtin_expect(host && w->n_iov < w->max_iov, 1)) {
		w->chain->iov[w->n_iov].iov_base = host;
		w->chain->iov[w->n_iov].iov_len = d->len;
		w->n_iov++;
		if (!writable)
			w->n_out_iov = w->n_iov;
		return 0;
	}
	int n = vnet_mem_translate(t, VNET_AS_GPA, d->addr, d->len, access,
				   w->chain->iov + w->n_iov, w->max_iov - w->n_iov, &vq->hint);
	if (n == -ENOBUFS) {
		vnet_vq_mark_broken(vq, "chain at head %u needs more than %u segments",
				    w->chain->head, w->max_iov);
		return -1;
	}
	if (n < 0) {
		vnet_vq_mark_broken(vq,
				    "%s descriptor %u: buffer 0x%llx+%u is not in %sguest memory",
				    where, index, (unsigned long long)d->addr, d->len,
				    writable ? "writable " : "");
		return -1;
	}
	w->n_iov += (unsigned)n;
	if (!writable)
		w->n_out_iov = w->n_iov;
	return 0;
}

static __attribute__((noinline)) int walk_indirect(struct vnet_vq *vq, const struct vnet_mem_table *t, struct chain_walk *w,
			 const struct vring_desc *ind)
{
	if (!vq->indirect) {
		vnet_vq_mark_broken(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
		return -1;
	}
	if (ind->flags & VRING_DESC_F_NEXT) {
		vnet_vq_mark_broken(vq, "descriptor has both INDIRECT and NEXT");
		return -1;
	}
	if (ind->len == 0 || ind->len % sizeof(struct vring_desc) ||
	    ind->len / sizeof(struct vring_desc) > 65535) {
		vnet_vq_mark_broken(vq, "indirect table length %u is not 1..65535 descriptors",
				    ind->len);
		return -1;
	}
	unsigned count = ind->len / sizeof(struct vring_desc);
	const struct vring_desc *table =
		vnet_mem_translate_contig(t, VNET_AS_GPA, ind->addr, ind->len, VNET_MEM_READ,
					  &vq->hint);
	if (!table) {
		/* A table crossing regions is legal; it is then read piecewise. */
		struct iovec probe[VNET_MEM_MAX_REGIONS];
		if (vnet_mem_translate(t, VNET_AS_GPA, ind->addr, ind->len, VNET_MEM_READ, probe,
				       VNET_MEM_MAX_REGIONS, &vq->hint) < 0) {
			vnet_vq_mark_broken(vq, "indirect table 0x%llx+%u is not in guest memory",
					    (unsigned long long)ind->addr, ind->len);
			return -1;
		}
	}

	unsigned i = 0;
	for (unsigned ttl = count;; ttl--) {
		if (ttl == 0) {
			vnet_vq_mark_broken(vq, "indirect table loops (more than %u steps)", count);
			return -1;
		}
		struct vring_desc d;
		if (table) {
			d = vring_desc_read(&table[i]);
		} else if (vnet_mem_read(t, VNET_AS_GPA, ind->addr + (uint64_t)i * sizeof(d), &d,
					 sizeof(d), &vq->hint) < 0) {
			vnet_vq_mark_broken(vq, "indirect table became unreadable");
			return -1;
		}
		if (d.flags & VRING_DESC_F_INDIRECT) {
			vnet_vq_mark_broken(vq, "indirect descriptor inside an indirect table");
			return -1;
		}
		if (add_buffer(vq, t, w, &d, "indirect", i) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= count) {
			vnet_vq_mark_broken(vq, "indirect descriptor %u: next %u beyond table of %u",
					    i, d.next, count);
			return -1;
		}
		i = d.next;
	}
}

static inline bool test_and_set_inflight(struct vnet_vq *vq, uint16_t head)
{
	uint64_t bit = 1ull << (head & 63);
	uint64_t *word = &vq->inflight_map[head >> 6];
	bool was = *word & bit;
	*word |= bit;
	return was;
}

static int pop_one(struct vnet_vq *vq, const struct vnet_mem_table *t, struct vnet_vq_chain *chain,
		   struct iovec *iov, unsigned max_iov)
{
	int pending = avail_pending(vq);
	if (pending <= 0)
		return pending;
	if (vq->inflight >= vq->size) {
		vnet_vq_mark_broken(vq, "more than %u chains in flight", vq->size);
		return -1;
	}

	uint16_t head = vring_read16(&vq->avail->ring[vq->last_avail & vq->mask]);
	if (head >= vq->size) {
		vnet_vq_mark_broken(vq, "avail ring entry %u holds head %u >= queue size %u",
				    vq->last_avail, head, vq->size);
		return -1;
	}

	chain->head = head;
	chain->iov = iov;
	struct chain_walk w = {
		.chain = chain,
		.max_iov = max_iov < VNET_VQ_MAX_SEGS ? max_iov : VNET_VQ_MAX_SEGS,
	};

	uint16_t i = head;
	for (unsigned ttl = vq->size;; ttl--) {
		if (ttl == 0) {
			vnet_vq_mark_broken(vq, "chain at head %u is longer than the queue (loop?)",
					    head);
			return -1;
		}
		struct vring_desc d = vring_desc_read(&vq->desc[i]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* A copy, so `w` itself never escapes and stays in registers. */
			struct chain_walk wi = w;
			if (walk_indirect(vq, t, &wi, &d) < 0)
				return -1;
			w = wi;
			break;
		}
		if (add_buffer(vq, t, &w, &d, "ring", i) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= vq->size) {
			vnet_vq_mark_broken(vq, "descriptor %u: next %u >= queue size %u", i, d.next,
					    vq->size);
			return -1;
		}
		i = d.next;
	}

	if (test_and_set_inflight(vq, head)) {
		vnet_vq_mark_broken(vq, "head %u made available again while in flight", head);
		return -1;
	}

	chain->out_len = (uint32_t)w.out_len;
	chain->in_len = (uint32_t)w.in_len;
	chain->n_out = (uint16_t)w.n_out_iov;
	chain->n_in = (uint16_t)(w.n_iov - w.n_out_iov);

	vq->last_avail++;
	vq->inflight++;
	return 1;
}

static inline bool queue_usable(struct vnet_vq *vq)
{
	return vq->attached && !vq->broken;
}

int vnet_vq_pop(struct vnet_vq *vq, struct vnet_vq_chain *chain, struct iovec *iov,
		unsigned max_iov)
{
	if (!queue_usable(vq))
		return -EIO;
	const struct vnet_mem_table *t = current_table(vq);
	if (!t)
		return -EIO;
	int r = pop_one(vq, t, chain, iov, max_iov);
	return r < 0 ? -EIO : r;
}

unsigned vnet_vq_pop_burst(struct vnet_vq *vq, struct vnet_vq_chain *chains, unsigned n,
			   struct iovec *iov, unsigned iov_per_chain)
{
	if (!queue_usable(vq))
		return 0;
	const struct vnet_mem_table *t = current_table(vq);
	if (!t)
		return 0;
	/* The driver wrote the avail entries and descriptors on another CPU:
	 * touch every head's descriptor line first so the misses overlap (a
	 * hint only: pop_one reads and checks everything again). */
	int pending = avail_pending(vq);
	unsigned ahead = pending > 0 ? ((unsigned)pending < n ? (unsigned)pending : n) : 0;
	for (unsigned i = 0; i < ahead; i++) {
		uint16_t h = vring_read16(&vq->avail->ring[(uint16_t)(vq->last_avail + i) & vq->mask]);
		if (h < vq->size)
			__builtin_prefetch(&vq->desc[h], 0);
	}
	unsigned got = 0;
	while (got < n && pop_one(vq, t, &chains[got], iov + (size_t)got * iov_per_chain,
				  iov_per_chain) > 0)
		got++;
	return got;
}

void vnet_vq_push(struct vnet_vq *vq, uint16_t head, uint32_t written)
{
	/* A push may come in a later bracket than its pop: rings may have moved. */
	if (!queue_usable(vq) || !current_table(vq))
		return;
	uint64_t bit = 1ull << (head & 63);
	if (head >= vq->size || !(vq->inflight_map[head >> 6] & bit)) {
		vnet_vq_mark_broken(vq, "push of head %u that is not in flight", head);
		return;
	}
	vq->inflight_map[head >> 6] &= ~bit;
	vq->inflight--;
	struct vring_used_elem *e = &vq->used->ring[vq->used_idx & vq->mask];
	vring_write32(&e->id, head);
	vring_write32(&e->len, written);
	vq->used_idx++;
}

/* Does the driver want a used-buffer notification for what we published? */
static bool driver_wants_interrupt(struct vnet_vq *vq)
{
	/* Order the used->idx store before reading the driver's suppression state. */
	vring_mb();
	if (!vq->event_idx)
		return !(vring_read16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);

	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_valid;
	vq->signalled_used = vq->used_published;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	uint16_t event = vring_read16(vring_used_event(vq->avail, vq->size));
	return vring_need_event(event, vq->used_published, old);
}

bool vnet_vq_flush(struct vnet_vq *vq)
{
	if (!queue_usable(vq) || vq->used_idx == vq->used_published)
		return false;
	if (!current_table(vq))
		return false;
	vring_store_release(&vq->used->idx, vq->used_idx);
	vq->used_published = vq->used_idx;
	return driver_wants_interrupt(vq);
}

bool vnet_vq_enable_notify(struct vnet_vq *vq)
{
	if (!queue_usable(vq) || !current_table(vq))
		return false;
	if (vq->event_idx)
		vring_write16(vring_avail_event(vq->used, vq->size), vq->last_avail);
	else
		vring_write16(&vq->used->flags,
			      vring_read16(&vq->used->flags) & ~VRING_USED_F_NO_NOTIFY);
	/* Publish the request before looking for buffers that raced with it. */
	vring_mb();
	vq->avail_cached = vq->last_avail;
	return avail_pending(vq) > 0;
}

void vnet_vq_disable_notify(struct vnet_vq *vq)
{
	if (!queue_usable(vq) || vq->event_idx || !current_table(vq))
		return;
	vring_write16(&vq->used->flags, vring_read16(&vq->used->flags) | VRING_USED_F_NO_NOTIFY);
}

unsigned vnet_vq_avail_count(struct vnet_vq *vq)
{
	if (!queue_usable(vq) || !current_table(vq))
		return 0;
	vq->avail_cached = vq->last_avail; /* read the driver's index afresh */
	int n = avail_pending(vq);
	return n > 0 ? (unsigned)n : 0;
}

bool vnet_vq_has_avail(struct vnet_vq *vq)
{
	if (!queue_usable(vq) || !current_table(vq))
		return false;
	return avail_pending(vq) > 0;
}
