/*
 * virtio_ring.h — split virtqueue memory layout (virtio 1.2 §2.7) and the
 * notification-suppression arithmetic both sides share.
 *
 * Pure definitions: no state, safe from any thread. All fields are
 * little-endian on the wire; vnet only targets little-endian hosts (x86-64,
 * arm64), which a static assertion in the implementation enforces.
 */
#ifndef VNET_VIRTIO_RING_H
#define VNET_VIRTIO_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VRING_DESC_F_NEXT      1u  /* chain continues via `next` */
#define VRING_DESC_F_WRITE     2u  /* device writes (driver reads) this buffer */
#define VRING_DESC_F_INDIRECT  4u  /* buffer is a table of descriptors */

#define VRING_AVAIL_F_NO_INTERRUPT 1u /* driver: don't interrupt me */
#define VRING_USED_F_NO_NOTIFY     1u /* device: don't kick me */

/* Largest split queue the spec allows. */
#define VRING_MAX_SIZE 32768u

/* Feature bits that change ring behaviour (virtio 1.2 §6). */
#define VIRTIO_F_NOTIFY_ON_EMPTY   24
#define VIRTIO_F_ANY_LAYOUT        27
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX    29
#define VIRTIO_F_VERSION_1         32
#define VIRTIO_F_ACCESS_PLATFORM   33
#define VIRTIO_F_RING_PACKED       34
#define VIRTIO_F_IN_ORDER          35

struct vring_desc {
	uint64_t addr;  /* guest-physical address */
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
	/* uint16_t used_event follows ring[size] when EVENT_IDX is negotiated */
};

struct vring_used_elem {
	uint32_t id;   /* head descriptor index (u32 on the wire) */
	uint32_t len;  /* bytes written into the chain's writable buffers */
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
	/* uint16_t avail_event follows ring[size] when EVENT_IDX is negotiated */
};

/* Required alignments of the three areas (virtio 1.2 §2.7, table 2.3). */
#define VRING_DESC_ALIGN  16u
#define VRING_AVAIL_ALIGN 2u
#define VRING_USED_ALIGN  4u

static inline size_t vring_desc_bytes(unsigned size)
{
	return (size_t)size * sizeof(struct vring_desc);
}

/* Includes the trailing used_event slot, which is always allocated. */
static inline size_t vring_avail_bytes(unsigned size)
{
	return sizeof(struct vring_avail) + (size_t)size * sizeof(uint16_t) + sizeof(uint16_t);
}

/* Includes the trailing avail_event slot. */
static inline size_t vring_used_bytes(unsigned size)
{
	return sizeof(struct vring_used) + (size_t)size * sizeof(struct vring_used_elem) +
	       sizeof(uint16_t);
}

static inline uint16_t *vring_used_event(struct vring_avail *avail, unsigned size)
{
	return &avail->ring[size];
}

static inline uint16_t *vring_avail_event(struct vring_used *used, unsigned size)
{
	return (uint16_t *)&used->ring[size];
}

/*
 * The spec's vring_need_event(): true when the other side asked to be
 * notified once the index passes `event_idx`, and it did so somewhere in
 * (old_idx, new_idx]. All arithmetic is modulo 2^16, so it is correct across
 * the 65535 → 0 wrap.
 */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

static inline bool vring_size_valid(unsigned size)
{
	return size != 0 && size <= VRING_MAX_SIZE && (size & (size - 1)) == 0;
}

#endif
