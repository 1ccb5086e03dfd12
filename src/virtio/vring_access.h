/*
 * vring_access.h — how both sides of a split ring touch shared memory.
 *
 * Memory the other side writes is read exactly once through these helpers
 * (volatile or atomic loads), so the compiler can never re-read a field
 * after it was validated. Index publication uses C11 release stores and
 * acquire loads; the full fence is the spec's "memory barrier" between
 * publishing an index and reading the other side's suppression fields.
 * Internal to libvnet.
 */
#ifndef VNET_VRING_ACCESS_H
#define VNET_VRING_ACCESS_H

#include <stdatomic.h>
#include <stdint.h>

#include "vnet/virtio_ring.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "vnet accesses virtio rings in host byte order: little-endian hosts only");
_Static_assert(sizeof(_Atomic uint16_t) == sizeof(uint16_t), "atomic u16 layout");

static inline uint16_t vring_load_acquire(const uint16_t *p)
{
	return atomic_load_explicit((const _Atomic uint16_t *)p, memory_order_acquire);
}

static inline void vring_store_release(uint16_t *p, uint16_t v)
{
	atomic_store_explicit((_Atomic uint16_t *)p, v, memory_order_release);
}

static inline uint16_t vring_read16(const uint16_t *p)
{
	return *(const volatile uint16_t *)p;
}

static inline void vring_write16(uint16_t *p, uint16_t v)
{
	*(volatile uint16_t *)p = v;
}

static inline uint32_t vring_read32(const uint32_t *p)
{
	return *(const volatile uint32_t *)p;
}

static inline void vring_write32(uint32_t *p, uint32_t v)
{
	*(volatile uint32_t *)p = v;
}

/* Full barrier: store of our index ordered before the load of theirs. */
static inline void vring_mb(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* One copy of a descriptor the driver may be rewriting under us. */
static inline struct vring_desc vring_desc_read(const struct vring_desc *p)
{
	const volatile struct vring_desc *v = p;
	struct vring_desc d;
	d.addr = v->addr;
	d.len = v->len;
	d.flags = v->flags;
	d.next = v->next;
	return d;
}

#endif
