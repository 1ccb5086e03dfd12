/*
 * virtqueue_driver.h — the driver side of a split virtqueue: what a guest's
 * virtio driver does, for vnet's user-space virtio-net driver (virtio-user),
 * the tiny test guest and the ring tests. It owns a free list of
 * descriptors, adds chains of out/in buffers (optionally through an indirect
 * table), decides when the device needs a kick, and reaps used entries.
 *
 * The device is not trusted either: a used id that is out of range or not in
 * flight, a used index moved past what was made available, or a written
 * length larger than the chain's writable bytes marks the queue broken
 * (logged once) instead of corrupting state.
 *
 * Thread-safety: one thread at a time per queue; no internal locking.
 */
#ifndef VNET_VIRTQUEUE_DRIVER_H
#define VNET_VIRTQUEUE_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/virtio_ring.h"

/* A buffer as the device will see it: guest-physical address + length. */
struct vnet_buf {
	uint64_t addr;
	uint32_t len;
};

struct vnet_vq_driver_config {
	uint16_t size;       /* power of two, 1..32768 */
	void *ring_host;     /* vnet_vq_driver_ring_bytes(size) bytes, 16-aligned */
	uint64_t ring_gpa;   /* the device's address of ring_host */
	/* Optional indirect tables: size * indirect_max descriptors (16-aligned);
	 * NULL / 0 disables indirect chains. */
	void *indirect_host;
	uint64_t indirect_gpa;
	uint16_t indirect_max; /* descriptors per indirect table */
	uint64_t features;     /* negotiated; INDIRECT_DESC and EVENT_IDX matter */
	const char *name;
};

struct vnet_vq_driver {
	uint16_t size;
	uint16_t mask;
	bool event_idx;
	uint16_t indirect_max;   /* 0 when indirect chains are off */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct vring_desc *indirect; /* size tables of indirect_max entries */
	uint64_t indirect_gpa;

	/* addresses to program into the device */
	uint64_t desc_gpa, avail_gpa, used_gpa;

	uint16_t free_head;      /* first free descriptor (chained through next) */
	uint16_t num_free;
	uint16_t avail_idx;      /* shadow: next avail slot */
	uint16_t kicked_avail;   /* avail idx at the previous kick decision */
	uint16_t last_used;      /* next used slot to reap */
	uint16_t avail_flags_shadow;

	/* Private state per descriptor/head, never read back from shared memory:
	 * free-list links (which also link an in-flight chain), the caller's
	 * cookie, ring descriptors taken, and writable bytes (to check the
	 * device's used length). */
	uint16_t *next_free;
	void **cookie;
	uint16_t *ndesc;
	uint32_t *in_len;

	bool broken;
	char name[32];
};

/* Bytes needed at ring_host: desc table, avail ring, used ring (4 KiB-aligned). */
size_t vnet_vq_driver_ring_bytes(uint16_t size);

/* Lays out and zeroes the rings. Returns 0, -EINVAL or -ENOMEM. */
int vnet_vq_driver_init(struct vnet_vq_driver *drv, const struct vnet_vq_driver_config *cfg);
void vnet_vq_driver_fini(struct vnet_vq_driver *drv);

/*
 * Adds one chain: bufs[0 .. n_out) device-readable, then bufs[n_out ..
 * n_out+n_in) device-writable. With `indirect` (and indirect tables
 * configured) the chain takes one ring descriptor. Not visible to the device
 * until vnet_vq_driver_kick_prepare(). Returns 0, -ENOSPC (not enough free
 * descriptors now: reap and retry), -EINVAL (no buffers, cookie NULL, more
 * buffers than the ring or an indirect table can ever hold) or -EIO (broken).
 */
int vnet_vq_driver_add(struct vnet_vq_driver *drv, const struct vnet_buf *bufs, unsigned n_out,
		       unsigned n_in, void *cookie, bool indirect);

/*
 * Publishes added chains (release store of avail->idx) and returns whether
 * the device must be notified (NO_NOTIFY flag or EVENT_IDX avail_event).
 */
bool vnet_vq_driver_kick_prepare(struct vnet_vq_driver *drv);

/* Next used chain's cookie and written length, or NULL when none. */
void *vnet_vq_driver_get_used(struct vnet_vq_driver *drv, uint32_t *written);

/* True when the device has used chains not yet reaped. */
bool vnet_vq_driver_has_used(struct vnet_vq_driver *drv);

/*
 * Asks for used-buffer notifications (clears NO_INTERRUPT, or sets
 * used_event = last_used). Returns true when used chains are already
 * pending: the caller must reap again rather than sleep.
 */
bool vnet_vq_driver_enable_cb(struct vnet_vq_driver *drv);
void vnet_vq_driver_disable_cb(struct vnet_vq_driver *drv);

static inline unsigned vnet_vq_driver_num_free(const struct vnet_vq_driver *drv)
{
	return drv->num_free;
}

/*
 * Takes back every chain not yet used (device stopped): `release` is called
 * with each cookie, then the queue is as after init.
 */
void vnet_vq_driver_reset(struct vnet_vq_driver *drv, void (*release)(void *cookie, void *arg),
			  void *arg);

#endif
