/* guestmem.c — guest memory table and translation; see vnet/guestmem.h. */
#include "vnet/guestmem.h"

#include <errno.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virtio/guestmem_impl.h"

static atomic_uint_fast64_t table_generation;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int span_cmp(const void *a, const void *b)
{
	const struct mem_span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static bool range_wraps(uint64_t start, uint64_t size)
{
	return size - 1 > UINT64_MAX - start;
}

struct vnet_mem_table *vnet_mem_table_new(const struct vnet_mem_region *regions, unsigned n,
					  char *err, size_t errlen)
{
	if (n > VNET_MEM_MAX_REGIONS) {
		set_err(err, errlen, "%u memory regions, at most %u allowed", n,
			VNET_MEM_MAX_REGIONS);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct vnet_mem_region *r = &regions[i];
		if (r->size == 0) {
			set_err(err, errlen, "region %u has size 0", i);
			return NULL;
		}
		if (!r->host) {
			set_err(err, errlen, "region %u has no host mapping", i);
			return NULL;
		}
		if (range_wraps(r->gpa, r->size) || range_wraps(r->uaddr, r->size) ||
		    range_wraps((uintptr_t)r->host, r->size)) {
			set_err(err, errlen,
				"region %u (gpa 0x%llx size 0x%llx) wraps the address space", i,
				(unsigned long long)r->gpa, (unsigned long long)r->size);
			return NULL;
		}
		if (r->prot & ~(VNET_MEM_READ | VNET_MEM_WRITE)) {
			set_err(err, errlen, "region %u has unknown protection bits 0x%x", i,
				r->prot);
			return NULL;
		}
	}

	struct vnet_mem_table *t = calloc(1, sizeof(*t));
	if (!t) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	t->n = n;
	t->generation = atomic_fetch_add(&table_generation, 1) + 1;

	/* Regions are presented in GPA order (insertion sort: n ≤ 64). */
	for (unsigned i = 0; i < n; i++) {
		struct vnet_mem_region r = regions[i];
		if (!r.prot)
			r.prot = VNET_MEM_READ | VNET_MEM_WRITE;
		unsigned j = i;
		while (j > 0 && t->regions[j - 1].gpa > r.gpa) {
			t->regions[j] = t->regions[j - 1];
			j--;
		}
		t->regions[j] = r;
	}

	for (int as = 0; as < 2; as++) {
		for (unsigned i = 0; i < n; i++) {
			const struct vnet_mem_region *r = &t->regions[i];
			uint64_t start = as == VNET_AS_GPA ? r->gpa : r->uaddr;
			t->spans[as][i] = (struct mem_span){
				.start = start,
				.last = start + (r->size - 1),
				.host = r->host,
				.prot = r->prot,
				.region = i,
			};
		}
		qsort(t->spans[as], n, sizeof(struct mem_span), span_cmp);
		for (unsigned i = 1; i < n; i++) {
			if (t->spans[as][i].start <= t->spans[as][i - 1].last) {
				set_err(err, errlen, "regions overlap in %s space at 0x%llx",
					as == VNET_AS_GPA ? "guest-physical" : "front-end virtual",
					(unsigned long long)t->spans[as][i].start);
				free(t);
				return NULL;
			}
		}
	}
	return t;
}

void vnet_mem_table_free(struct vnet_mem_table *t)
{
	free(t);
}

unsigned vnet_mem_table_count(const struct vnet_mem_table *t)
{
	return t->n;
}

const struct vnet_mem_region *vnet_mem_table_region(const struct vnet_mem_table *t, unsigned i)
{
	return i < t->n ? &t->regions[i] : NULL;
}

uint64_t vnet_mem_table_generation(const struct vnet_mem_table *t)
{
	return t->generation;
}

/* Index of the span holding addr, or -1. Checks *hint first, then bisects. */
static inline int find_span(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
			    unsigned *hint)
{
	const struct mem_span *s = t->spans[as];
	if (hint && *hint < t->n && addr >= s[*hint].start && addr <= s[*hint].last)
		return (int)*hint;

	unsigned lo = 0, hi = t->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (addr < s[mid].start)
			hi = mid;
		else if (addr > s[mid].last)
			lo = mid + 1;
		else {
			if (hint)
				*hint = mid;
			return (int)mid;
		}
	}
	return -1;
}

int vnet_mem_translate(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		       uint64_t len, unsigned access, struct iovec *iov, unsigned max_iov,
		       unsigned *hint)
{
	if ((unsigned)as > VNET_AS_UADDR)
		return -EINVAL;
	if (len == 0)
		return find_span(t, as, addr, hint) >= 0 ? 0 : -EFAULT;

	uint64_t last = addr + (len - 1);
	if (last < addr)
		return -EFAULT;

	uint64_t cur = addr;
	unsigned n = 0;
	unsigned local_hint = hint ? *hint : 0;
	for (;;) {
		int i = find_span(t, as, cur, &local_hint);
		if (i < 0)
			return -EFAULT;
		const struct mem_span *s = &t->spans[as][i];
		if ((s->prot & access) != access)
			return -EFAULT;
		if (n == max_iov)
			return -ENOBUFS;
		uint64_t piece_last = last < s->last ? last : s->last;
		iov[n].iov_base = s->host + (cur - s->start);
		iov[n].iov_len = piece_last - cur + 1;
		n++;
		if (piece_last == last)
			break;
		cur = piece_last + 1;
		local_hint = (unsigned)i + 1; /* an adjacent region is the next span */
	}
	if (hint)
		*hint = local_hint;
	return (int)n;
}

void *vnet_mem_translate_contig(const struct vnet_mem_table *t, enum vnet_addr_space as,
				uint64_t addr, uint64_t len, unsigned access, unsigned *hint)
{
	if ((unsigned)as > VNET_AS_UADDR)
		return NULL;
	int i = find_span(t, as, addr, hint);
	if (i < 0)
		return NULL;
	const struct mem_span *s = &t->spans[as][i];
	if ((s->prot & access) != access)
		return NULL;
	/* Bytes available from addr to the region end, without overflow. */
	if (len != 0 && len - 1 > s->last - addr)
		return NULL;
	return s->host + (addr - s->start);
}

int vnet_mem_uaddr_to_gpa(const struct vnet_mem_table *t, uint64_t uaddr, uint64_t *gpa)
{
	int i = find_span(t, VNET_AS_UADDR, uaddr, NULL);
	if (i < 0)
		return -EFAULT;
	const struct mem_span *s = &t->spans[VNET_AS_UADDR][i];
	*gpa = t->regions[s->region].gpa + (uaddr - s->start);
	return 0;
}

static int mem_copy(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		    void *buf, size_t len, unsigned access, unsigned *hint)
{
	struct iovec iov[VNET_MEM_MAX_REGIONS];
	int n = vnet_mem_translate(t, as, addr, len, access, iov, VNET_MEM_MAX_REGIONS, hint);
	if (n < 0)
		return n;
	uint8_t *p = buf;
	for (int i = 0; i < n; i++) {
		if (access == VNET_MEM_WRITE)
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		else
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return 0;
}

int vnet_mem_read(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		  void *dst, size_t len, unsigned *hint)
{
	return mem_copy(t, as, addr, dst, len, VNET_MEM_READ, hint);
}

int vnet_mem_write(const struct vnet_mem_table *t, enum vnet_addr_space as, uint64_t addr,
		   const void *src, size_t len, unsigned *hint)
{
	return mem_copy(t, as, addr, (void *)src, len, VNET_MEM_WRITE, hint);
}

/* ---- published table with an epoch-based grace period ---- */

int vnet_guestmem_init(struct vnet_guestmem *gm)
{
	struct vnet_mem_table *empty = vnet_mem_table_new(NULL, 0, NULL, 0);
	if (!empty)
		return -ENOMEM;
	atomic_init(&gm->table, empty);
	atomic_init(&gm->epoch, 0);
	atomic_init(&gm->readers[0], 0);
	atomic_init(&gm->readers[1], 0);
	pthread_mutex_init(&gm->writer_lock, NULL);
	return 0;
}

void vnet_guestmem_destroy(struct vnet_guestmem *gm)
{
	vnet_mem_table_free(atomic_load(&gm->table));
	atomic_store(&gm->table, NULL);
	pthread_mutex_destroy(&gm->writer_lock);
}

/*
 * A reader counts itself under the current epoch's parity and confirms the
 * epoch did not move meanwhile; a writer that flips the epoch afterwards
 * therefore waits for it, and a writer that flipped before it published its
 * table before the flip, so the reader sees that table or a newer one.
 * All operations are seq_cst: the argument needs the single total order.
 */
const struct vnet_mem_table *vnet_guestmem_read_begin(struct vnet_guestmem *gm, unsigned *token)
{
	for (;;) {
		unsigned e = atomic_load(&gm->epoch);
		atomic_fetch_add(&gm->readers[e & 1], 1);
		if (atomic_load(&gm->epoch) == e) {
			*token = e & 1;
			return atomic_load(&gm->table);
		}
		atomic_fetch_sub(&gm->readers[e & 1], 1);
	}
}

void vnet_guestmem_read_end(struct vnet_guestmem *gm, unsigned token)
{
	atomic_fetch_sub_explicit(&gm->readers[token & 1], 1, memory_order_release);
}

struct vnet_mem_table *vnet_guestmem_replace(struct vnet_guestmem *gm, struct vnet_mem_table *next)
{
	pthread_mutex_lock(&gm->writer_lock);
	struct vnet_mem_table *old = atomic_exchange(&gm->table, next);
	unsigned e = atomic_fetch_add(&gm->epoch, 1);
	unsigned spins = 0;
	while (atomic_load(&gm->readers[e & 1]) != 0) {
		/* Readers hold a bracket for one burst: microseconds. */
		if (++spins < 64) {
			sched_yield();
		} else {
			struct timespec ts = {0, 50 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	pthread_mutex_unlock(&gm->writer_lock);
	return old;
}
