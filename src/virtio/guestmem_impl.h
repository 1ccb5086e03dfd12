/*
 * guestmem_impl.h — the guest memory table's layout, for libvnet's hot
 * paths only: an inline last-hit translation that avoids a call per
 * descriptor. Everything else goes through vnet/guestmem.h.
 * Same thread-safety as the table: immutable once built.
 */
#ifndef VNET_GUESTMEM_IMPL_H
#define VNET_GUESTMEM_IMPL_H

#include "vnet/guestmem.h"

/* One region as seen from one address space, kept sorted by start. */
struct mem_span {
	uint64_t start;
	uint64_t last; /* inclusive, so a region ending at 2^64 needs no wrap */
	uint8_t *host;
	unsigned prot;
	unsigned region; /* index in regions[] */
};

struct vnet_mem_table {
	uint64_t generation;
	unsigned n;
	struct vnet_mem_region regions[VNET_MEM_MAX_REGIONS]; /* GPA order */
	struct mem_span spans[2][VNET_MEM_MAX_REGIONS];       /* per address space */
};

/*
 * The common case of vnet_mem_translate(): len > 0 and the range inside the
 * span `*hint` names. Returns the host pointer, or NULL to take the full path.
 */
static inline void *guestmem_translate_hinted(const struct vnet_mem_table *t,
					      enum vnet_addr_space as, uint64_t addr,
					      uint64_t len, unsigned access, unsigned hint)
{
	if (hint >= t->n || len == 0)
		return NULL;
	const struct mem_span *s = &t->spans[as][hint];
	if (addr < s->start || addr > s->last || len - 1 > s->last - addr ||
	    (s->prot & access) != access)
		return NULL;
	return s->host + (addr - s->start);
}

#endif
