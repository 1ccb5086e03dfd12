/*
 * guestmem.h — guest memory map: which guest addresses exist, where they are
 * mapped in this process, and strict translation of (addr, len) ranges.
 *
 * A table holds up to VNET_MEM_MAX_REGIONS regions. Each region is known in
 * two address spaces:
 *   VNET_AS_GPA    guest-physical addresses (descriptor addresses; what an
 *                  in-VMM device sees in ring registers)
 *   VNET_AS_UADDR  the front-end's own virtual address of the region
 *                  (vhost-user SET_VRING_ADDR, vhost-net's VMM addresses)
 * Translation succeeds only when [addr, addr+len) lies wholly inside mapped
 * memory; a range crossing from one region into an adjacent one comes back
 * as one iovec piece per region. Nothing ever reads past a region's end.
 *
 * Thread-safety and replacement rule (an RCU-like epoch):
 *  - A struct vnet_mem_table is immutable once built; any number of threads
 *    may translate through it concurrently.
 *  - struct vnet_guestmem publishes the current table. Data-plane threads
 *    bracket every burst with vnet_guestmem_read_begin()/read_end() and use
 *    only the table returned by begin() (or by vnet_guestmem_table() inside
 *    the bracket). Pointers obtained from translation must not be used after
 *    read_end().
 *  - The control plane (one thread at a time; calls are serialised inside)
 *    swaps in a new table with vnet_guestmem_replace(), which returns only
 *    after every reader that could still see the old table has left its
 *    bracket. The old table is returned to the caller, who may then unmap the
 *    memory it alone referenced and free it. Readers never block.
 *  - Tables do not own mappings: whoever mapped memory unmaps it.
 */
#ifndef VNET_GUESTMEM_H
#define VNET_GUESTMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/uio.h>

#define VNET_MEM_MAX_REGIONS 64

enum vnet_addr_space {
	VNET_AS_GPA = 0,
	VNET_AS_UADDR = 1,
};

/* Access a translation must allow. */
#define VNET_MEM_READ  1u
#define VNET_MEM_WRITE 2u

struct vnet_mem_region {
	uint64_t gpa;    /* guest-physical start */
	uint64_t size;   /* bytes, > 0 */
	uint64_t uaddr;  /* front-end's virtual address of the start */
	void *host;      /* this process's mapping of the start */
	unsigned prot;   /* VNET_MEM_READ | VNET_MEM_WRITE; 0 means both */
};

struct vnet_mem_table;

/*
 * Builds an immutable table from `n` regions (copied). Fails with a message
 * in `err` (if non-NULL, `errlen` bytes) when: n > VNET_MEM_MAX_REGIONS, a
 * size is 0, a start+size wraps 64 bits (in either address space or in the
 * host mapping), host is NULL, or two regions overlap in GPA or in UADDR.
 * n == 0 gives a valid empty table (every translation fails).
 */
struct vnet_mem_table *vnet_mem_table_new(const struct vnet_mem_region *regions, unsigned n,
					  char *err, size_t errlen);
void vnet_mem_table_free(struct vnet_mem_table *t);

unsigned vnet_mem_table_count(const struct vnet_mem_table *t);
/* Regions in ascending GPA order; NULL when i is out of range. */
const struct vnet_mem_region *vnet_mem_table_region(const struct vnet_mem_table *t, unsigned i);
/* Incremented for every table built, so a user can tell tables apart. */
uint64_t vnet_mem_table_generation(const struct vnet_mem_table *t);

/*
 * Translates [addr, addr+len) into host pieces, one per region crossed.
 * Returns the number of pieces (0 when len == 0 and addr lies inside mapped
 * memory), or:
 *   -EFAULT  some byte is unmapped, addr+len wraps, or access not allowed
 *   -ENOBUFS more than max_iov pieces would be needed
 * iov_len fields never exceed the region size (they are size_t).
 * `hint` (may be NULL) is the caller's last-hit cache: an index the caller
 * keeps per queue; it is read and updated, never trusted beyond a check.
 */
int vnet_mem_translate(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		       uint64_t len, unsigned access, struct iovec *iov, unsigned max_iov,
		       unsigned *hint);

/* Host pointer for a range that must lie inside ONE region, else NULL. */
void *vnet_mem_translate_contig(const struct vnet_mem_table *t, enum vnet_addr_space as,
				uint64_t addr, uint64_t len, unsigned access, unsigned *hint);

/* Converts a UADDR to the GPA of the same byte (-EFAULT when unmapped). */
int vnet_mem_uaddr_to_gpa(const struct vnet_mem_table *t, uint64_t uaddr, uint64_t *gpa);

/* Copies guest memory out / in, across regions; -EFAULT when any byte unmapped. */
int vnet_mem_read(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		  void *dst, size_t len, unsigned *hint);
int vnet_mem_write(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		   const void *src, size_t len, unsigned *hint);

/* The published map a device's queues translate through. */
struct vnet_guestmem {
	_Atomic(struct vnet_mem_table *) table;
	atomic_uint epoch;           /* selects which reader counter new readers use */
	atomic_uint readers[2];      /* readers inside a bracket, per epoch parity */
	pthread_mutex_t writer_lock; /* serialises replace() callers */
};

/* Starts with an empty table. Returns 0 or -ENOMEM. */
int vnet_guestmem_init(struct vnet_guestmem *gm);
/* Frees the current table. No reader may be active. */
void vnet_guestmem_destroy(struct vnet_guestmem *gm);

/*
 * Enters a read-side bracket; *token must be passed to read_end(). Returns
 * the table to use until then (never NULL).
 */
const struct vnet_mem_table *vnet_guestmem_read_begin(struct vnet_guestmem *gm, unsigned *token);
void vnet_guestmem_read_end(struct vnet_guestmem *gm, unsigned token);

/* Current table, for single-threaded users and code already in a bracket. */
static inline const struct vnet_mem_table *vnet_guestmem_table(struct vnet_guestmem *gm)
{
	return atomic_load_explicit(&gm->table, memory_order_acquire);
}

/*
 * Publishes `next` (ownership passes to gm) and waits for readers of the
 * previous table to drain. Returns the previous table (caller frees it).
 * Must not be called from inside a read bracket on the same thread.
 */
struct vnet_mem_table *vnet_guestmem_replace(struct vnet_guestmem *gm, struct vnet_mem_table *next);

#endif
