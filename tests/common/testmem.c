/* testmem.c — see testmem.h. */
#include "testmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "testmem: %s\n", what);
	abort();
}

static size_t page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

void testmem_begin(struct testmem *m)
{
	memset(m, 0, sizeof(*m));
	if (vnet_guestmem_init(&m->gm) != 0)
		die("vnet_guestmem_init failed");
}

static struct testmem_map map_region(uint64_t gpa, uint64_t size, unsigned prot)
{
	if (size == 0)
		die("region size 0");
	size_t ps = page_size();
	size_t rounded = ((size_t)size + ps - 1) & ~(ps - 1);
	size_t len = rounded + 2 * ps; /* [guard][data][guard] */
	uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		die("mmap failed");
	if (mprotect(map, ps, PROT_NONE) != 0 || mprotect(map + ps + rounded, ps, PROT_NONE) != 0)
		die("mprotect failed");
	/* The bytes sit at the END of the data pages so an overrun faults on
	 * the first byte past the region. */
	return (struct testmem_map){
		.gpa = gpa,
		.size = size,
		.prot = prot,
		.map = map,
		.map_len = len,
		.host = map + ps + (rounded - (size_t)size),
	};
}

void *testmem_add(struct testmem *m, uint64_t gpa, uint64_t size, unsigned prot)
{
	if (m->n >= VNET_MEM_MAX_REGIONS)
		die("too many regions");
	m->maps[m->n] = map_region(gpa, size, prot);
	return m->maps[m->n++].host;
}

void *testmem_remap(struct testmem *m, unsigned i, bool fault_old)
{
	if (i >= m->n || m->ndead >= TESTMEM_MAX_DEAD)
		die("bad testmem_remap");
	struct testmem_map old = m->maps[i];
	struct testmem_map nw = map_region(old.gpa, old.size, old.prot);
	memcpy(nw.host, old.host, (size_t)old.size);
	if (fault_old && mprotect(old.map, old.map_len, PROT_NONE) != 0)
		die("mprotect failed");
	m->dead[m->ndead++] = old;
	m->maps[i] = nw;
	return nw.host;
}

void testmem_publish(struct testmem *m)
{
	struct vnet_mem_region regs[VNET_MEM_MAX_REGIONS];
	for (unsigned i = 0; i < m->n; i++) {
		regs[i] = (struct vnet_mem_region){
			.gpa = m->maps[i].gpa,
			.size = m->maps[i].size,
			.uaddr = testmem_uaddr(m->maps[i].gpa),
			.host = m->maps[i].host,
			.prot = m->maps[i].prot,
		};
	}
	char err[256] = "";
	struct vnet_mem_table *t = vnet_mem_table_new(regs, m->n, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "testmem: vnet_mem_table_new: %s\n", err);
		abort();
	}
	struct vnet_mem_table *old = vnet_guestmem_replace(&m->gm, t);
	vnet_mem_table_free(old);
}

void testmem_init(struct testmem *m, uint64_t gpa_base, size_t size, unsigned nregions)
{
	if (nregions == 0 || nregions > VNET_MEM_MAX_REGIONS || size % nregions)
		die("bad testmem_init arguments");
	testmem_begin(m);
	uint64_t each = size / nregions;
	for (unsigned i = 0; i < nregions; i++)
		testmem_add(m, gpa_base + i * each, each, 0);
	testmem_publish(m);
}

void testmem_fini(struct testmem *m)
{
	vnet_guestmem_destroy(&m->gm);
	for (unsigned i = 0; i < m->n; i++)
		munmap(m->maps[i].map, m->maps[i].map_len);
	for (unsigned i = 0; i < m->ndead; i++)
		munmap(m->dead[i].map, m->dead[i].map_len);
	m->n = 0;
	m->ndead = 0;
}

static const struct testmem_map *find(const struct testmem *m, uint64_t gpa)
{
	for (unsigned i = 0; i < m->n; i++)
		if (gpa >= m->maps[i].gpa && gpa - m->maps[i].gpa < m->maps[i].size)
			return &m->maps[i];
	return NULL;
}

void *testmem_host(const struct testmem *m, uint64_t gpa)
{
	const struct testmem_map *t = find(m, gpa);
	return t ? (uint8_t *)t->host + (gpa - t->gpa) : NULL;
}

static void *host_range(const struct testmem *m, uint64_t gpa, size_t len)
{
	const struct testmem_map *t = find(m, gpa);
	if (!t || len > t->size - (gpa - t->gpa))
		die("testmem range not inside one region");
	return (uint8_t *)t->host + (gpa - t->gpa);
}

void testmem_put(const struct testmem *m, uint64_t gpa, const void *src, size_t len)
{
	memcpy(host_range(m, gpa, len), src, len);
}

void testmem_get(const struct testmem *m, uint64_t gpa, void *dst, size_t len)
{
	memcpy(dst, host_range(m, gpa, len), len);
}

void testmem_put_desc(const struct testmem *m, uint64_t gpa, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	testmem_put(m, gpa, &d, sizeof(d));
}

/* ---- raw ring ---- */

uint64_t rawring_bytes(uint16_t size)
{
	unsigned s = size ? size : 65536u;
	uint64_t used = (vring_desc_bytes(s) + vring_avail_bytes(s) + 4095) & ~4095ull;
	return used + vring_used_bytes(s);
}

void rawring_init(struct rawring *r, struct testmem *m, uint16_t size, uint64_t desc_gpa,
		  uint64_t avail_gpa, uint64_t used_gpa)
{
	unsigned s = size ? size : 65536u;
	r->m = m;
	r->size = size;
	r->desc_gpa = desc_gpa;
	r->avail_gpa = avail_gpa;
	r->used_gpa = used_gpa;
	r->desc = host_range(m, desc_gpa, vring_desc_bytes(s));
	r->avail = host_range(m, avail_gpa, vring_avail_bytes(s));
	r->used = host_range(m, used_gpa, vring_used_bytes(s));
	memset(r->desc, 0, vring_desc_bytes(s));
	memset(r->avail, 0, vring_avail_bytes(s));
	memset(r->used, 0, vring_used_bytes(s));
}

void rawring_refresh(struct rawring *r)
{
	unsigned s = r->size ? r->size : 65536u;
	r->desc = host_range(r->m, r->desc_gpa, vring_desc_bytes(s));
	r->avail = host_range(r->m, r->avail_gpa, vring_avail_bytes(s));
	r->used = host_range(r->m, r->used_gpa, vring_used_bytes(s));
}

void rawring_init_at(struct rawring *r, struct testmem *m, uint16_t size, uint64_t base_gpa)
{
	unsigned s = size ? size : 65536u;
	uint64_t avail = base_gpa + vring_desc_bytes(s);
	uint64_t used = base_gpa + ((vring_desc_bytes(s) + vring_avail_bytes(s) + 4095) & ~4095ull);
	rawring_init(r, m, size, base_gpa, avail, used);
}

struct vnet_vq_config rawring_config(const struct rawring *r, uint64_t features, const char *name)
{
	return (struct vnet_vq_config){
		.size = r->size,
		.desc_addr = r->desc_gpa,
		.avail_addr = r->avail_gpa,
		.used_addr = r->used_gpa,
		.ring_as = VNET_AS_GPA,
		.features = features,
		.name = name,
	};
}

static unsigned rsize(const struct rawring *r)
{
	return r->size ? r->size : 65536u;
}

void rawring_set_desc(struct rawring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	struct vring_desc *d = &r->desc[i % rsize(r)];
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void rawring_set_avail_slot(struct rawring *r, uint16_t slot, uint16_t head)
{
	r->avail->ring[slot % rsize(r)] = head;
}

void rawring_publish(struct rawring *r, uint16_t head)
{
	uint16_t idx = __atomic_load_n(&r->avail->idx, __ATOMIC_RELAXED);
	r->avail->ring[idx % rsize(r)] = head;
	__atomic_store_n(&r->avail->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

void rawring_set_avail_idx(struct rawring *r, uint16_t idx)
{
	__atomic_store_n(&r->avail->idx, idx, __ATOMIC_RELEASE);
}

uint16_t rawring_avail_idx(const struct rawring *r)
{
	return __atomic_load_n(&r->avail->idx, __ATOMIC_ACQUIRE);
}

void rawring_set_avail_flags(struct rawring *r, uint16_t flags)
{
	__atomic_store_n(&r->avail->flags, flags, __ATOMIC_RELEASE);
}

void rawring_set_used_event(struct rawring *r, uint16_t v)
{
	__atomic_store_n(vring_used_event(r->avail, rsize(r)), v, __ATOMIC_RELEASE);
}

uint16_t rawring_used_idx(const struct rawring *r)
{
	return __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
}

void rawring_set_used_idx(struct rawring *r, uint16_t idx)
{
	__atomic_store_n(&r->used->idx, idx, __ATOMIC_RELEASE);
}

uint16_t rawring_used_flags(const struct rawring *r)
{
	return __atomic_load_n(&r->used->flags, __ATOMIC_ACQUIRE);
}

uint16_t rawring_avail_event(const struct rawring *r)
{
	return __atomic_load_n(vring_avail_event(r->used, rsize(r)), __ATOMIC_ACQUIRE);
}

void rawring_set_avail_event(struct rawring *r, uint16_t v)
{
	__atomic_store_n(vring_avail_event(r->used, rsize(r)), v, __ATOMIC_RELEASE);
}

struct vring_used_elem rawring_used_elem(const struct rawring *r, uint16_t i)
{
	struct vring_used_elem e;
	memcpy(&e, &r->used->ring[i % rsize(r)], sizeof(e));
	return e;
}

/* ---- log capture ---- */

#define TESTLOG_MAX 1024 /* room for the vhost-user message trace at debug level */
#define TESTLOG_LINE 512

static struct {
	pthread_mutex_t lock;
	unsigned n;
	char lines[TESTLOG_MAX][TESTLOG_LINE];
	enum vnet_log_level levels[TESTLOG_MAX];
} tl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void testlog_sink(enum vnet_log_level level, const char *line, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&tl.lock);
	if (tl.n < TESTLOG_MAX) {
		snprintf(tl.lines[tl.n], TESTLOG_LINE, "%s", line);
		tl.levels[tl.n] = level;
	}
	tl.n++;
	pthread_mutex_unlock(&tl.lock);
}

void testlog_clear(void)
{
	pthread_mutex_lock(&tl.lock);
	tl.n = 0;
	pthread_mutex_unlock(&tl.lock);
}

void testlog_capture(void)
{
	testlog_clear();
	vnet_log_set_level(VNET_LOG_DEBUG);
	vnet_log_set_sink(testlog_sink, NULL);
}

void testlog_release(void)
{
	vnet_log_set_sink(NULL, NULL);
	vnet_log_set_level(VNET_LOG_INFO);
}

unsigned testlog_count(void)
{
	pthread_mutex_lock(&tl.lock);
	unsigned n = tl.n;
	pthread_mutex_unlock(&tl.lock);
	return n;
}

unsigned testlog_count_containing(const char *needle)
{
	pthread_mutex_lock(&tl.lock);
	unsigned c = 0, n = tl.n < TESTLOG_MAX ? tl.n : TESTLOG_MAX;
	for (unsigned i = 0; i < n; i++)
		if (!needle || strstr(tl.lines[i], needle))
			c++;
	pthread_mutex_unlock(&tl.lock);
	return c;
}

const char *testlog_line(unsigned i)
{
	if (i >= TESTLOG_MAX || i >= testlog_count())
		return "";
	return tl.lines[i];
}

enum vnet_log_level testlog_level(unsigned i)
{
	if (i >= TESTLOG_MAX || i >= testlog_count())
		return VNET_LOG_DEBUG;
	return tl.levels[i];
}
