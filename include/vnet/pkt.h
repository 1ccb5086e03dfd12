/*
 * pkt.h — packet buffers: fixed-size buffers carved from one allocation at
 * start-up and recycled through a free stack, so the data plane never
 * allocates per packet. A packet carries one Ethernet frame plus the offload
 * metadata of its virtio-net header.
 *
 * Thread-safety: a pool belongs to one thread (a poll-mode thread); packets
 * may be handed to another thread only if they come back to this pool on
 * the owner's thread.
 */
#ifndef VNET_PKT_H
#define VNET_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/net.h"

/* Room before the frame for pushing a VLAN tag or a tunnel header. */
#define VNET_PKT_HEADROOM 128u
/* Default frame room: 1500 MTU + Ethernet + two VLAN tags, rounded. */
#define VNET_PKT_DEFAULT_ROOM 1536u

struct vnet_pkt_pool;

struct vnet_pkt {
	uint8_t *data;               /* first byte of the frame */
	uint32_t len;                /* frame bytes */
	uint32_t room;               /* bytes available from buf start */
	struct virtio_net_hdr vhdr;  /* offloads (flags, gso) as the guest gave them */
	uint16_t in_port;            /* owner-defined (the switch's port number) */
	struct vnet_pkt_pool *pool;
	uint8_t *buf;                /* start of the buffer (headroom first) */
};

struct vnet_pkt_pool {
	struct vnet_pkt *pkts;
	struct vnet_pkt **free;
	unsigned nfree;
	unsigned count;
	uint32_t frame_room;
	uint8_t *mem;
	size_t mem_len;
};

/*
 * Creates `count` packets, each holding frames of up to `frame_room` bytes
 * (0 = VNET_PKT_DEFAULT_ROOM) after VNET_PKT_HEADROOM. Returns 0 or -ENOMEM.
 */
int vnet_pkt_pool_init(struct vnet_pkt_pool *pool, unsigned count, uint32_t frame_room);
void vnet_pkt_pool_fini(struct vnet_pkt_pool *pool);

/* Up to n packets (data at the headroom, len 0, no offloads); returns how many. */
unsigned vnet_pkt_alloc_burst(struct vnet_pkt_pool *pool, struct vnet_pkt **pkts, unsigned n);

static inline struct vnet_pkt *vnet_pkt_alloc(struct vnet_pkt_pool *pool)
{
	struct vnet_pkt *p;
	return vnet_pkt_alloc_burst(pool, &p, 1) ? p : NULL;
}

void vnet_pkt_free_burst(struct vnet_pkt **pkts, unsigned n);

static inline void vnet_pkt_free(struct vnet_pkt *p)
{
	vnet_pkt_free_burst(&p, 1);
}

/* Bytes a frame may grow to from the current data pointer. */
static inline uint32_t vnet_pkt_tailroom(const struct vnet_pkt *p)
{
	return p->room - (uint32_t)(p->data - p->buf);
}

#endif
