/* pkt.c — packet buffer pool; see vnet/pkt.h. */
#include "vnet/pkt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int vnet_pkt_pool_init(struct vnet_pkt_pool *pool, unsigned count, uint32_t frame_room)
{
	memset(pool, 0, sizeof(*pool));
	if (count == 0)
		return -EINVAL;
	pool->frame_room = frame_room ? frame_room : VNET_PKT_DEFAULT_ROOM;
	/* Cache-line multiples keep neighbouring buffers off each other's lines. */
	size_t stride = (VNET_PKT_HEADROOM + pool->frame_room + 63) & ~(size_t)63;
	pool->mem_len = stride * count;
	/* mmap, not malloc: untouched buffers cost no resident memory. */
	pool->mem = mmap(NULL, pool->mem_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pool->pkts = calloc(count, sizeof(*pool->pkts));
	pool->free = calloc(count, sizeof(*pool->free));
	if (pool->mem == MAP_FAILED || !pool->pkts || !pool->free) {
		if (pool->mem == MAP_FAILED)
			pool->mem = NULL;
		vnet_pkt_pool_fini(pool);
		return -ENOMEM;
	}
	pool->count = count;
	for (unsigned i = 0; i < count; i++) {
		struct vnet_pkt *p = &pool->pkts[i];
		p->buf = pool->mem + (size_t)i * stride;
		p->room = VNET_PKT_HEADROOM + pool->frame_room;
		p->pool = pool;
		/* Lowest addresses on top: reused buffers stay warm in cache. */
		pool->free[count - 1 - i] = p;
	}
	pool->nfree = count;
	return 0;
}

void vnet_pkt_pool_fini(struct vnet_pkt_pool *pool)
{
	if (pool->mem)
		munmap(pool->mem, pool->mem_len);
	free(pool->pkts);
	free(pool->free);
	memset(pool, 0, sizeof(*pool));
}

unsigned vnet_pkt_alloc_burst(struct vnet_pkt_pool *pool, struct vnet_pkt **pkts, unsigned n)
{
	if (n > pool->nfree)
		n = pool->nfree;
	for (unsigned i = 0; i < n; i++) {
		struct vnet_pkt *p = pool->free[--pool->nfree];
		p->data = p->buf + VNET_PKT_HEADROOM;
		p->len = 0;
		memset(&p->vhdr, 0, sizeof(p->vhdr));
		pkts[i] = p;
	}
	return n;
}

void vnet_pkt_free_burst(struct vnet_pkt **pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vnet_pkt_pool *pool = pkts[i]->pool;
		pool->free[pool->nfree++] = pkts[i];
	}
}
