/*
 * testmem.h — shared fixtures for vnet tests, fuzz harnesses and benchmarks.
 *
 * 1. struct testmem: a test guest memory. Every region is its own mmap
 *    (host pointers of GPA-adjacent regions are NOT adjacent), surrounded by
 *    PROT_NONE guard pages so a read past a region's end faults at once.
 *    Each region's UADDR is TESTMEM_UADDR_BASE + gpa, so GPA, UADDR and host
 *    addresses all differ. The table is published in the embedded
 *    struct vnet_guestmem `gm`.
 *
 *        struct testmem m;
 *        testmem_init(&m, 0x100000, 1 << 20, 2);   // two 512 KiB regions
 *        uint8_t *p = testmem_host(&m, 0x100000);
 *
 *    Custom layouts (gaps, read-only regions, huge sparse regions):
 *        testmem_begin(&m);
 *        testmem_add(&m, 0x100000, 0x10000, 0);              // RW
 *        testmem_add(&m, 0x200000, 0x10000, VNET_MEM_READ);  // read-only
 *        testmem_publish(&m);        // (re)builds + replaces the table
 *
 * 2. struct rawring: a "hostile driver" that writes descriptors and avail
 *    entries straight into guest memory at chosen GPAs and reads back the
 *    used ring. No validation at all: tests use it to build broken rings.
 *
 * 3. testlog: a log sink that captures vnet_log lines for assertions.
 */
#ifndef VNET_TESTS_TESTMEM_H
#define VNET_TESTS_TESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/guestmem.h"
#include "vnet/log.h"
#include "vnet/virtio_ring.h"
#include "vnet/virtqueue.h"

#define TESTMEM_UADDR_BASE 0x7f0000000000ull

struct testmem_map {
	uint64_t gpa;
	uint64_t size;
	unsigned prot;   /* as in struct vnet_mem_region */
	void *host;      /* start of the region's bytes */
	void *map;       /* the mmap (guard pages included) */
	size_t map_len;
};

#define TESTMEM_MAX_DEAD 16

struct testmem {
	struct vnet_guestmem gm;
	unsigned n;
	struct testmem_map maps[VNET_MEM_MAX_REGIONS];
	/* old mappings retired by testmem_remap(), unmapped by fini */
	unsigned ndead;
	struct testmem_map dead[TESTMEM_MAX_DEAD];
};

/* Maps `nregions` regions of size/nregions bytes each, adjacent in GPA
 * starting at gpa_base, and publishes them. Aborts on failure. */
void testmem_init(struct testmem *m, uint64_t gpa_base, size_t size, unsigned nregions);

/* Custom layouts: begin (empty guestmem), add regions, publish. */
void testmem_begin(struct testmem *m);
/* Maps one region (MAP_NORESERVE, zero-filled); returns its host pointer.
 * prot: 0 or VNET_MEM_READ|VNET_MEM_WRITE for RW, VNET_MEM_READ read-only
 * (the host mapping stays writable so tests can fill it). */
void *testmem_add(struct testmem *m, uint64_t gpa, uint64_t size, unsigned prot);
/* Builds a table from the current regions and replaces the published one
 * (old table freed). Must not be called inside a read bracket. */
void testmem_publish(struct testmem *m);
/* Moves region i to a fresh host mapping with the same contents, as a VMM
 * re-sending its memory table would. The old mapping is kept (so a stale
 * pointer does not hit someone else's memory) and, with `fault_old`, made
 * PROT_NONE so any later access through a stale pointer faults. Call
 * testmem_publish() afterwards (outside a read bracket). Returns the new
 * host pointer. */
void *testmem_remap(struct testmem *m, unsigned i, bool fault_old);
/* Unmaps everything and destroys the guestmem. */
void testmem_fini(struct testmem *m);

/* Host pointer of a GPA, or NULL when unmapped. */
void *testmem_host(const struct testmem *m, uint64_t gpa);
static inline uint64_t testmem_uaddr(uint64_t gpa)
{
	return TESTMEM_UADDR_BASE + gpa;
}
/* The current table (single-threaded users). */
static inline const struct vnet_mem_table *testmem_table(struct testmem *m)
{
	return vnet_guestmem_table(&m->gm);
}

/* Copies to / from guest memory through testmem_host; aborts when unmapped
 * or when the range leaves its region. */
void testmem_put(const struct testmem *m, uint64_t gpa, const void *src, size_t len);
void testmem_get(const struct testmem *m, uint64_t gpa, void *dst, size_t len);
/* Writes one descriptor at an arbitrary GPA (e.g. into an indirect table). */
void testmem_put_desc(const struct testmem *m, uint64_t gpa, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next);

/* ---- raw ring writer (the hostile driver) ---- */

struct rawring {
	struct testmem *m;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;   /* host pointers */
	struct vring_avail *avail;
	struct vring_used *used;
};

/* Zeroes and lays out a ring at the given GPAs (each area in one region). */
void rawring_init(struct rawring *r, struct testmem *m, uint16_t size, uint64_t desc_gpa,
		  uint64_t avail_gpa, uint64_t used_gpa);
/* Same with desc at base, avail right after it, used at the next 4 KiB. */
void rawring_init_at(struct rawring *r, struct testmem *m, uint16_t size, uint64_t base_gpa);
/* Bytes rawring_init_at() uses from base_gpa. */
uint64_t rawring_bytes(uint16_t size);

/* Recomputes the host pointers (after testmem_remap), without zeroing. */
void rawring_refresh(struct rawring *r);

/* A vnet_vq_config for this ring (GPA addresses). */
struct vnet_vq_config rawring_config(const struct rawring *r, uint64_t features,
				     const char *name);

void rawring_set_desc(struct rawring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next);
/* avail->ring[avail->idx % size] = head; then avail->idx++ (release). */
void rawring_publish(struct rawring *r, uint16_t head);
/* Writes the ring slot only, without bumping idx. */
void rawring_set_avail_slot(struct rawring *r, uint16_t slot, uint16_t head);
void rawring_set_avail_idx(struct rawring *r, uint16_t idx);
uint16_t rawring_avail_idx(const struct rawring *r);
void rawring_set_avail_flags(struct rawring *r, uint16_t flags);
void rawring_set_used_event(struct rawring *r, uint16_t v);

uint16_t rawring_used_idx(const struct rawring *r);   /* acquire load */
void rawring_set_used_idx(struct rawring *r, uint16_t idx);
uint16_t rawring_used_flags(const struct rawring *r);
uint16_t rawring_avail_event(const struct rawring *r);
void rawring_set_avail_event(struct rawring *r, uint16_t v);
/* used->ring[i % size] */
struct vring_used_elem rawring_used_elem(const struct rawring *r, uint16_t i);

/* ---- log capture ---- */

/* Installs a capturing sink (level set to DEBUG) and clears the buffer. */
void testlog_capture(void);
/* Restores stderr and the INFO level. */
void testlog_release(void);
void testlog_clear(void);
unsigned testlog_count(void);
/* Lines containing `needle` (all lines when NULL). */
unsigned testlog_count_containing(const char *needle);
/* Copy of line i (oldest first), "" when out of range. */
const char *testlog_line(unsigned i);
/* Level of line i. */
enum vnet_log_level testlog_level(unsigned i);

#endif
