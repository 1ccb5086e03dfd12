/*
 * virtqueue.h — the device side of a split virtqueue (virtio 1.2 §2.7): the
 * one ring consumer used by the VMM's virtio-net device, the vhost-user
 * handler and every test. It takes chains the driver made available, hands
 * them out as validated iovecs, and returns them through the used ring.
 *
 * Hostile-driver rules: every descriptor, avail entry and index is read from
 * guest memory exactly once into a local copy, validated, then used (no
 * TOCTOU). Any violation marks the queue broken: one log line with the
 * reason, every later call is a no-op returning "empty"/error, and nothing
 * outside guest memory is touched. Other queues are never affected; the
 * owner may raise DEVICE_NEEDS_RESET.
 *
 * Thread-safety: a struct vnet_vq is owned by one thread at a time (the
 * data-plane thread serving it); no internal locking. Calls that translate
 * guest memory (attach, pop, push, flush, notify control) must run inside a
 * vnet_guestmem read bracket of the queue's guestmem, and the iovecs handed
 * out are valid only until that bracket ends. When the memory table changes
 * the queue re-translates its ring addresses on its next call.
 */
#ifndef VNET_VIRTQUEUE_H
#define VNET_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnet/guestmem.h"
#include "vnet/virtio_ring.h"

/* A chain longer than this many iovec pieces is refused (DPDK uses 256). */
#define VNET_VQ_MAX_SEGS 256

struct vnet_vq_config {
	uint16_t size;       /* power of two, 1..32768 */
	uint64_t desc_addr;  /* 16-byte aligned */
	uint64_t avail_addr; /* 2-byte aligned */
	uint64_t used_addr;  /* 4-byte aligned */
	enum vnet_addr_space ring_as; /* address space of the three addresses */
	uint64_t features;   /* negotiated; INDIRECT_DESC and EVENT_IDX matter */
	const char *name;    /* for log lines, e.g. "vm1/rx0"; copied */
};

/* One available chain, as handed out by pop. */
struct vnet_vq_chain {
	uint16_t head;      /* id to push back */
	uint16_t n_out;     /* device-readable pieces: iov[0 .. n_out) */
	uint16_t n_in;      /* device-writable pieces: iov[n_out .. n_out+n_in) */
	uint32_t out_len;   /* total readable bytes */
	uint32_t in_len;    /* total writable bytes */
	struct iovec *iov;  /* caller's array */
};

struct vnet_vq {
	/* configuration */
	uint16_t size;
	uint16_t mask;
	bool event_idx;
	bool indirect;
	enum vnet_addr_space ring_as;
	uint64_t desc_addr, avail_addr, used_addr;
	struct vnet_guestmem *gm;

	/* ring pointers, valid for the table of generation mem_gen */
	uint64_t mem_gen;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;

	/* progress */
	uint16_t last_avail;     /* next avail slot to consume */
	uint16_t avail_cached;   /* last avail->idx read */
	uint16_t used_idx;       /* next used slot to fill (shadow) */
	uint16_t used_published; /* used->idx as last stored */
	uint16_t signalled_used; /* used idx at the last notify decision */
	bool signalled_valid;
	uint32_t inflight;       /* popped, not yet pushed */
	uint64_t *inflight_map;  /* bit per head in flight; catches double use */
	unsigned hint;           /* guestmem last-hit cache */

	bool attached;
	bool broken;
	char name[32];
	char broken_reason[96];
};

/*
 * Validates the configuration against the current table (caller in a read
 * bracket) and makes the queue ready, starting from avail index 0 and the
 * used index found in guest memory. Each ring area must lie inside one
 * region (as every VMM allocates them). Allocates the in-flight bitmap that
 * vnet_vq_detach() frees. `vq` must be zero-initialised before its first
 * attach; attaching an attached queue detaches it first (nothing leaks). Errors (queue left detached, logged):
 *   -EINVAL  size not a power of two in 1..32768, misaligned address
 *   -EFAULT  an area not wholly mapped in one region, or used ring read-only
 *   -ENOMEM
 */
int vnet_vq_attach(struct vnet_vq *vq, struct vnet_guestmem *gm, const struct vnet_vq_config *cfg);

/* Resume point for a queue moved between back ends (SET_VRING_BASE). */
void vnet_vq_set_last_avail(struct vnet_vq *vq, uint16_t last_avail);

/*
 * Stops the queue (also a broken one) and frees its bitmap; returns the next
 * avail index to consume (GET_VRING_BASE). Safe on a never-attached,
 * zero-initialised queue.
 */
uint16_t vnet_vq_detach(struct vnet_vq *vq);

/*
 * Takes the next available chain: 1 = `chain` filled (iov must hold max_iov
 * entries; the chain is refused as broken if it needs more, or more than
 * VNET_VQ_MAX_SEGS), 0 = nothing available, <0 = queue broken/detached.
 */
int vnet_vq_pop(struct vnet_vq *vq, struct vnet_vq_chain *chain, struct iovec *iov,
		unsigned max_iov);

/*
 * Burst pop: up to n chains; chains[i].iov = iov + i * iov_per_chain. Returns
 * the number taken (0 when empty or broken).
 */
unsigned vnet_vq_pop_burst(struct vnet_vq *vq, struct vnet_vq_chain *chains, unsigned n,
			   struct iovec *iov, unsigned iov_per_chain);

/*
 * Queues (head, written) in the used ring; not visible to the driver until
 * vnet_vq_flush(). A head the queue does not hold in flight marks it broken.
 */
void vnet_vq_push(struct vnet_vq *vq, uint16_t head, uint32_t written);

/*
 * Publishes every pushed entry with one release store of used->idx and
 * returns whether the driver wants a used-buffer notification now
 * (NO_INTERRUPT flag, or EVENT_IDX used_event crossed; the first decision
 * after attach under EVENT_IDX is always yes, as in Linux vhost). With
 * nothing pushed it writes nothing and returns false.
 */
bool vnet_vq_flush(struct vnet_vq *vq);

/*
 * Asks the driver to kick on new buffers (clears NO_NOTIFY, or sets
 * avail_event = last_avail under EVENT_IDX). Returns true when buffers
 * arrived meanwhile: the caller must poll again rather than sleep.
 */
bool vnet_vq_enable_notify(struct vnet_vq *vq);
/* Tells the driver kicks are not needed (we are polling). */
void vnet_vq_disable_notify(struct vnet_vq *vq);

/* How many chains the driver has made available and we have not popped
 * (0 on a broken or detached queue). */
unsigned vnet_vq_avail_count(struct vnet_vq *vq);

/* True when the driver has made chains available that were not popped. */
bool vnet_vq_has_avail(struct vnet_vq *vq);

/* Marks the queue broken and logs the reason once (printf format). */
void vnet_vq_mark_broken(struct vnet_vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline bool vnet_vq_is_broken(const struct vnet_vq *vq)
{
	return vq->broken;
}

#endif
