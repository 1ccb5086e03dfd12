/* virtqueue_driver.c — driver side of a split virtqueue; see vnet/virtqueue_driver.h. */
#include "vnet/virtqueue_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/log.h"
#include "virtio/vring_access.h"

#define USED_RING_ALIGN 64u /* keeps the device-written ring off our cache lines */

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static size_t used_offset(uint16_t size)
{
	return align_up(vring_desc_bytes(size) + vring_avail_bytes(size), USED_RING_ALIGN);
}

size_t vnet_vq_driver_ring_bytes(uint16_t size)
{
	return align_up(used_offset(size) + vring_used_bytes(size), USED_RING_ALIGN);
}

static void mark_broken(struct vnet_vq_driver *drv, const char *what, unsigned value)
{
	if (drv->broken)
		return;
	drv->broken = true;
	vnet_err("virtqueue driver %s: device %s (%u); queue stopped", drv->name, what, value);
}

/* Empty rings, every descriptor on the free list (kept privately: the
 * shared table could be scribbled on by a hostile device). */
static void reset_rings(struct vnet_vq_driver *drv)
{
	memset(drv->desc, 0, vnet_vq_driver_ring_bytes(drv->size));
	for (unsigned i = 0; i < drv->size; i++) {
		drv->next_free[i] = (uint16_t)(i + 1);
		drv->cookie[i] = NULL;
		drv->ndesc[i] = 0;
		drv->in_len[i] = 0;
	}
	drv->free_head = 0;
	drv->num_free = drv->size;
	drv->avail_idx = 0;
	drv->kicked_avail = 0;
	drv->last_used = 0;
	drv->avail_flags_shadow = 0;
	drv->broken = false;
}

int vnet_vq_driver_init(struct vnet_vq_driver *drv, const struct vnet_vq_driver_config *cfg)
{
	memset(drv, 0, sizeof(*drv));
	snprintf(drv->name, sizeof(drv->name), "%s", cfg->name ? cfg->name : "?");
	if (!vring_size_valid(cfg->size) || !cfg->ring_host ||
	    (uintptr_t)cfg->ring_host % VRING_DESC_ALIGN || cfg->ring_gpa % VRING_DESC_ALIGN) {
		vnet_err("virtqueue driver %s: bad size %u or misaligned ring", drv->name,
			 cfg->size);
		return -EINVAL;
	}
	bool want_indirect = cfg->indirect_host && cfg->indirect_max &&
			     (cfg->features & (1ull << VIRTIO_F_RING_INDIRECT_DESC));
	if (want_indirect &&
	    ((uintptr_t)cfg->indirect_host % VRING_DESC_ALIGN || cfg->indirect_gpa % VRING_DESC_ALIGN))
		return -EINVAL;

	drv->size = cfg->size;
	drv->mask = cfg->size - 1;
	drv->event_idx = cfg->features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	drv->desc = cfg->ring_host;
	drv->avail = (struct vring_avail *)((uint8_t *)cfg->ring_host + vring_desc_bytes(cfg->size));
	drv->used = (struct vring_used *)((uint8_t *)cfg->ring_host + used_offset(cfg->size));
	drv->desc_gpa = cfg->ring_gpa;
	drv->avail_gpa = cfg->ring_gpa + vring_desc_bytes(cfg->size);
	drv->used_gpa = cfg->ring_gpa + used_offset(cfg->size);
	if (want_indirect) {
		drv->indirect = cfg->indirect_host;
		drv->indirect_gpa = cfg->indirect_gpa;
		drv->indirect_max = cfg->indirect_max;
	}

	drv->cookie = calloc(drv->size, sizeof(*drv->cookie));
	drv->ndesc = calloc(drv->size, sizeof(*drv->ndesc));
	drv->next_free = calloc(drv->size, sizeof(*drv->next_free));
	drv->in_len = calloc(drv->size, sizeof(*drv->in_len));
	if (!drv->cookie || !drv->ndesc || !drv->next_free || !drv->in_len) {
		vnet_vq_driver_fini(drv);
		return -ENOMEM;
	}
	reset_rings(drv);
	return 0;
}

void vnet_vq_driver_fini(struct vnet_vq_driver *drv)
{
	free(drv->cookie);
	free(drv->ndesc);
	free(drv->next_free);
	free(drv->in_len);
	drv->cookie = NULL;
	drv->ndesc = NULL;
	drv->next_free = NULL;
	drv->in_len = NULL;
}

static inline void write_desc(struct vring_desc *d, const struct vnet_buf *b, uint16_t flags,
			      uint16_t next)
{
	d->addr = b->addr;
	d->len = b->len;
	d->flags = flags;
	d->next = next;
}

int vnet_vq_driver_add(struct vnet_vq_driver *drv, const struct vnet_buf *bufs, unsigned n_out,
		       unsigned n_in, void *cookie, bool indirect)
{
	unsigned total = n_out + n_in;
	if (drv->broken)
		return -EIO;
	if (total == 0 || !cookie || total > drv->size)
		return -EINVAL;
	indirect = indirect && drv->indirect_max;
	if (indirect && total > drv->indirect_max)
		return -EINVAL;
	unsigned needed = indirect ? 1 : total;
	if (drv->num_free < needed)
		return -ENOSPC;

	uint32_t writable = 0;
	uint16_t head = drv->free_head;
	if (indirect) {
		/* Each head owns one table, so a table is never reused while in flight. */
		struct vring_desc *table = drv->indirect + (size_t)head * drv->indirect_max;
		for (unsigned i = 0; i < total; i++) {
			uint16_t flags = (i >= n_out ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < total ? VRING_DESC_F_NEXT : 0);
			write_desc(&table[i], &bufs[i], flags, (uint16_t)(i + 1));
			if (i >= n_out)
				writable += bufs[i].len;
		}
		struct vnet_buf ring_buf = {
			.addr = drv->indirect_gpa +
				(uint64_t)head * drv->indirect_max * sizeof(struct vring_desc),
			.len = (uint32_t)(total * sizeof(struct vring_desc)),
		};
		write_desc(&drv->desc[head], &ring_buf, VRING_DESC_F_INDIRECT, 0);
		drv->free_head = drv->next_free[head];
	} else {
		/* The chain follows the free list, which keeps it linked for the free. */
		uint16_t idx = head;
		for (unsigned i = 0; i < total; i++) {
			uint16_t flags = (i >= n_out ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < total ? VRING_DESC_F_NEXT : 0);
			write_desc(&drv->desc[idx], &bufs[i], flags, drv->next_free[idx]);
			if (i >= n_out)
				writable += bufs[i].len;
			if (i + 1 < total)
				idx = drv->next_free[idx];
		}
		drv->free_head = drv->next_free[idx];
	}
	drv->num_free -= needed;
	drv->ndesc[head] = (uint16_t)needed;
	drv->cookie[head] = cookie;
	drv->in_len[head] = writable;
	drv->avail->ring[drv->avail_idx & drv->mask] = head;
	drv->avail_idx++;
	return 0;
}

bool vnet_vq_driver_kick_prepare(struct vnet_vq_driver *drv)
{
	uint16_t old = drv->kicked_avail, new = drv->avail_idx;
	if (drv->broken || old == new)
		return false;
	vring_store_release(&drv->avail->idx, new);
	drv->kicked_avail = new;
	/* Publish the index before reading the device's suppression state. */
	vring_mb();
	if (drv->event_idx)
		return vring_need_event(vring_read16(vring_avail_event(drv->used, drv->size)), new,
					old);
	return !(vring_read16(&drv->used->flags) & VRING_USED_F_NO_NOTIFY);
}

bool vnet_vq_driver_has_used(struct vnet_vq_driver *drv)
{
	return !drv->broken && vring_load_acquire(&drv->used->idx) != drv->last_used;
}

void *vnet_vq_driver_get_used(struct vnet_vq_driver *drv, uint32_t *written)
{
	if (drv->broken)
		return NULL;
	uint16_t idx = vring_load_acquire(&drv->used->idx);
	if (idx == drv->last_used)
		return NULL;
	uint16_t in_flight = (uint16_t)(drv->kicked_avail - drv->last_used);
	if ((uint16_t)(idx - drv->last_used) > in_flight) {
		mark_broken(drv, "moved the used index past what was made available", idx);
		return NULL;
	}
	struct vring_used_elem *e = &drv->used->ring[drv->last_used & drv->mask];
	uint32_t id = vring_read32(&e->id);
	uint32_t len = vring_read32(&e->len);
	if (id >= drv->size || !drv->cookie[id]) {
		mark_broken(drv, "returned a head that is not in flight", id);
		return NULL;
	}
	if (len > drv->in_len[id]) {
		mark_broken(drv, "reported more bytes written than the chain holds", len);
		return NULL;
	}

	void *cookie = drv->cookie[id];
	drv->cookie[id] = NULL;
	uint16_t last = (uint16_t)id;
	for (unsigned i = 1; i < drv->ndesc[id]; i++)
		last = drv->next_free[last];
	drv->next_free[last] = drv->free_head;
	drv->free_head = (uint16_t)id;
	drv->num_free += drv->ndesc[id];
	drv->last_used++;
	if (written)
		*written = len;
	return cookie;
}

bool vnet_vq_driver_enable_cb(struct vnet_vq_driver *drv)
{
	if (drv->broken)
		return false;
	if (drv->event_idx) {
		vring_write16(vring_used_event(drv->avail, drv->size), drv->last_used);
	} else {
		drv->avail_flags_shadow &= (uint16_t)~VRING_AVAIL_F_NO_INTERRUPT;
		vring_write16(&drv->avail->flags, drv->avail_flags_shadow);
	}
	/* Publish the request before checking for entries that raced with it. */
	vring_mb();
	return vring_load_acquire(&drv->used->idx) != drv->last_used;
}

void vnet_vq_driver_disable_cb(struct vnet_vq_driver *drv)
{
	if (drv->event_idx) {
		/* An event index just behind us is not crossed for 65535 entries. */
		vring_write16(vring_used_event(drv->avail, drv->size),
			      (uint16_t)(drv->last_used - 1));
	} else {
		drv->avail_flags_shadow |= VRING_AVAIL_F_NO_INTERRUPT;
		vring_write16(&drv->avail->flags, drv->avail_flags_shadow);
	}
}

void vnet_vq_driver_reset(struct vnet_vq_driver *drv, void (*release)(void *cookie, void *arg),
			  void *arg)
{
	for (unsigned i = 0; i < drv->size; i++)
		if (drv->cookie[i] && release)
			release(drv->cookie[i], arg);
	reset_rings(drv);
}
