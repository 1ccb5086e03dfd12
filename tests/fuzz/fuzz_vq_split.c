/*
 * fuzz_vq_split.c — libFuzzer target for the device side of a split
 * virtqueue (vnet/virtqueue.h) driven by a hostile driver.
 *
 * The input is a small program for a mock driver that owns the rings in a
 * three-region guest memory (tests/common/testmem). The device under test is
 * attached over it and the program interleaves driver writes (descriptors,
 * avail entries and indices, flags, arbitrary bytes, whole chains, indirect
 * tables) with device calls (pop, pop_burst, push, flush, notify control,
 * detach/re-attach) and memory-table replacements, including one that moves
 * the ring region to a new host mapping and revokes the old one.
 *
 * Every writable iovec handed out is memset, so an out-of-bounds piece hits a
 * guard page or ASan. The harness aborts when an invariant of the header
 * contract fails (see check_chain(), op_flush() ...). Every notification
 * decision (flush) is checked against the spec's rule (virtio 1.2 §2.7.7 /
 * §2.7.10: NO_INTERRUPT, or EVENT_IDX's used_event crossed since the last
 * decision), so a missed interrupt shows.
 *
 * The same rings also feed libvnet's virtio-net frame path (net_rxtx.h):
 * guest TX (vnet_net_dequeue, header split across descriptors, chains
 * shorter than the header, device-writable parts, oversized frames) and
 * guest RX (vnet_net_enqueue into multi-descriptor writable chains), with
 * their accounting checked (every chain returned and counted once, packets
 * Ethernet-sized, the pool gets every packet back).
 *
 * Input format (all integers little-endian; missing bytes read as 0):
 *   h0: bits 0-2 log2(queue size) (1..128), bit 3 INDIRECT_DESC,
 *       bit 4 EVENT_IDX, bit 5 custom ring addresses follow (3 x u16),
 *       bit 6 ring addresses in UADDR space
 *   h1: bits 0-1 region 1 size variant, bit 2 region 1 read-only,
 *       bit 3 region 2 read-only
 *   [u16 desc, u16 avail, u16 used]   when h0 bit 5: GPA = 0xfe00 + value
 *   then ops until the input ends: u8 opcode (mod OP_COUNT) + arguments.
 * See gen-corpus.py for a writer of this format.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_vq_split.h"
#include "vnet/guestmem.h"
#include "vnet/log.h"
#include "vnet/virtio_ring.h"
#include "vnet/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


enum {
	OP_DESC,        /* u8 idx, addr, len, u8 flags, u8 next: ring descriptor */
	OP_DESC_AT,     /* addr(where), addr, len, u8 flags, u8 next: anywhere */
	OP_AVAIL_ADD,   /* u16 head: next avail slot, not yet published */
	OP_AVAIL_PUB,   /* avail->idx = shadow */
	OP_AVAIL_BUMP,  /* u16 delta: avail->idx += delta */
	OP_AVAIL_MISC,  /* u16 flags, u16 used_event */
	OP_POP,         /* u16 max_iov */
	OP_POP_BURST,   /* u8 n, u8 iov_per_chain */
	OP_PUSH,        /* u8 which, u8 mode: complete an in-flight chain */
	OP_PUSH_RAW,    /* u16 head, u8 written */
	OP_FLUSH,
	OP_ENABLE,
	OP_DISABLE,
	OP_HAS_AVAIL,
	OP_POKE,        /* addr, u8 n, n bytes */
	OP_REATTACH,    /* u8 mode, u16 last_avail */
	OP_REPLACE,     /* u8 variant */
	OP_CHAIN,       /* u8 n, u8 start, n x (addr, len, u8 write): build + publish */
	OP_INDIRECT,    /* u8 n, u8 idx, addr(table), n x (addr, len, u8 write) */
	OP_NET_TX,      /* u8 flags: guest TX chains -> packets (vnet_net_dequeue) */
	OP_NET_RX,      /* u8 flags, n x u16 len: packets -> guest RX (vnet_net_enqueue) */
	OP_COUNT
};

struct vq_harness S;
static size_t page_sz;

/* ---- guest-side memory access (the driver's view) ---- */

uint8_t *ghost(uint64_t gpa)
{
	for (unsigned i = 0; i < 3; i++) {
		const struct region *r = &S.reg[i];
		if (r->present && gpa >= r->gpa && gpa - r->gpa < r->size)
			return (uint8_t *)S.m.maps[r->map].host + (gpa - r->gpa);
	}
	return NULL;
}

static bool range_hits(uint64_t gpa, uint64_t len, uint64_t start, uint64_t alen)
{
	return len && gpa < start + alen && start < gpa + len;
}

/* Byte-wise write that silently drops unmapped bytes. */
static void gwrite(uint64_t gpa, const void *src, size_t len)
{
	const uint8_t *s = src;
	for (size_t i = 0; i < len; i++) {
		uint8_t *p = ghost(gpa + i);
		if (p)
			*p = s[i];
	}
	if (range_hits(gpa, len, S.used_gpa, vring_used_bytes(S.qsize)))
		S.used_dirty = true;
}

bool gread(uint64_t gpa, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (size_t i = 0; i < len; i++) {
		uint8_t *p = ghost(gpa + i);
		if (!p)
			return false;
		d[i] = *p;
	}
	return true;
}

static void gwrite16(uint64_t gpa, uint16_t v)
{
	gwrite(gpa, &v, sizeof(v));
}

uint16_t gread16(uint64_t gpa)
{
	uint16_t v = 0;
	gread(gpa, &v, sizeof(v));
	return v;
}

static void gdesc(uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	gwrite(gpa, &d, sizeof(d));
}

static uint64_t rd_addr(struct reader *r)
{
	static const uint64_t bases[8] = {
		R0_GPA + 0x3000,         /* data part of R0 */
		R1_GPA,                  /* region 1 */
		R2_GPA,                  /* region 2 */
		R1_GPA - 0x400,          /* straddles R0/R1 */
		R2_GPA + R2_SIZE - 0x400, /* near the end of R2 */
		R0_GPA,                  /* the rings themselves */
		0xfffffffffffff000ull,   /* wraps */
		0,                       /* raw u64 */
	};
	uint8_t sel = rd8(r);
	if ((sel & 7) == 7)
		return rd64(r);
	uint64_t off = rd16(r);
	return (sel & 8) ? bases[sel & 7] - off : bases[sel & 7] + off;
}

static uint32_t rd_len(struct reader *r)
{
	uint16_t l = rd16(r);
	return l == 0xffff ? rd32(r) : l;
}

/* ---- memory tables ---- */

static void publish_table(void)
{
	struct vnet_mem_region regs[3];
	unsigned n = 0;
	for (unsigned i = 0; i < 3; i++) {
		const struct region *r = &S.reg[i];
		if (!r->present)
			continue;
		regs[n++] = (struct vnet_mem_region){
			.gpa = r->gpa,
			.size = r->size,
			.uaddr = testmem_uaddr(r->gpa),
			.host = S.m.maps[r->map].host,
			.prot = r->prot,
		};
	}
	char err[128];
	struct vnet_mem_table *t = vnet_mem_table_new(regs, n, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "fuzz_vq_split: vnet_mem_table_new: %s\n", err);
		abort();
	}
	vnet_mem_table_free(vnet_guestmem_replace(&S.m.gm, t));
}

static void set_map_prot(unsigned map, int prot)
{
	struct testmem_map *t = &S.m.maps[map];
	if (mprotect((uint8_t *)t->map + page_sz, t->map_len - 2 * page_sz, prot) != 0)
		abort();
}

static void op_replace(struct reader *r)
{
	switch (rd8(r) % 5) {
	case 0:
		S.reg[1].present = true;
		S.reg[2].present = true;
		S.reg[2].gpa = R2_GPA;
		break;
	case 1:
		S.reg[1].present = false;
		break;
	case 2:
		S.reg[2].present = false;
		break;
	case 3:
		S.reg[2].gpa = S.reg[2].gpa == R2_GPA ? R2_GPA_MOVED : R2_GPA;
		break;
	case 4: {
		/* Region 0 (the rings) gets a new host mapping, as after a vhost-user
		 * SET_MEM_TABLE; the old one becomes inaccessible once the
		 * replacement has returned. */
		unsigned old = S.reg[0].map, nu = old == MAP_R0 ? MAP_R0_SHADOW : MAP_R0;
		set_map_prot(nu, PROT_READ | PROT_WRITE);
		memcpy(S.m.maps[nu].host, S.m.maps[old].host, R0_SIZE);
		S.reg[0].map = nu;
		publish_table();
		set_map_prot(old, PROT_NONE);
		S.revoked = true;
		return;
	}
	}
	publish_table();
}

/* ---- driver-side conveniences ---- */

static uint64_t desc_slot(uint16_t i)
{
	return S.desc_gpa + (uint64_t)(i & (S.qsize - 1)) * sizeof(struct vring_desc);
}

static void avail_add(uint16_t head)
{
	gwrite16(S.avail_gpa + offsetof(struct vring_avail, ring) +
			 (uint64_t)(S.avail_shadow & (S.qsize - 1)) * 2,
		 head);
	S.avail_shadow++;
}

static void avail_publish(void)
{
	gwrite16(S.avail_gpa + offsetof(struct vring_avail, idx), S.avail_shadow);
}

static void op_chain(struct reader *r)
{
	unsigned n = rd8(r) % 8 + 1;
	uint16_t start = rd8(r);
	for (unsigned k = 0; k < n; k++) {
		uint64_t addr = rd_addr(r);
		uint32_t len = rd_len(r);
		uint8_t w = rd8(r);
		uint16_t flags = (uint16_t)((k + 1 < n ? VRING_DESC_F_NEXT : 0) |
					    ((w & 1) ? VRING_DESC_F_WRITE : 0));
		gdesc(desc_slot((uint16_t)(start + k)), addr, len, flags,
		      (uint16_t)((start + k + 1) & (S.qsize - 1)));
	}
	avail_add((uint16_t)(start & (S.qsize - 1)));
	avail_publish();
}

static void op_indirect(struct reader *r)
{
	unsigned n = rd8(r) % 16 + 1;
	uint16_t idx = rd8(r);
	uint64_t table = rd_addr(r);
	for (unsigned k = 0; k < n; k++) {
		uint64_t addr = rd_addr(r);
		uint32_t len = rd_len(r);
		uint8_t w = rd8(r);
		uint16_t flags = (uint16_t)((k + 1 < n ? VRING_DESC_F_NEXT : 0) |
					    ((w & 1) ? VRING_DESC_F_WRITE : 0));
		gdesc(table + (uint64_t)k * sizeof(struct vring_desc), addr, len, flags,
		      (uint16_t)(k + 1));
	}
	gdesc(desc_slot(idx), table, (uint32_t)(n * sizeof(struct vring_desc)),
	      VRING_DESC_F_INDIRECT, 0);
	avail_add((uint16_t)(idx & (S.qsize - 1)));
	avail_publish();
}

static bool trace; /* FUZZ_VQ_TRACE=1: print each op (for minimised crashes) */

static void run_op(struct reader *r)
{
	uint8_t op = rd8(r) % OP_COUNT;
	if (trace) {
		static const char *const names[OP_COUNT] = {
			"desc", "desc_at", "avail_add", "avail_pub", "avail_bump", "avail_misc",
			"pop", "pop_burst", "push", "push_raw", "flush", "enable", "disable",
			"has_avail", "poke", "reattach", "replace", "chain", "indirect",
			"net_tx", "net_rx"};
		fprintf(stderr, "op %s (remaining %zu) inflight %u last_avail %u used_idx %u%s\n",
			names[op], r->n, S.nfl, S.vq.last_avail, S.vq.used_idx,
			S.vq.broken ? " BROKEN" : "");
	}
	switch (op) {
	case OP_DESC: {
		uint16_t i = rd8(r);
		uint64_t addr = rd_addr(r);
		uint32_t len = rd_len(r);
		uint16_t flags = rd8(r), next = rd8(r);
		gdesc(desc_slot(i), addr, len, flags, next);
		break;
	}
	case OP_DESC_AT: {
		uint64_t where = rd_addr(r), addr = rd_addr(r);
		uint32_t len = rd_len(r);
		uint16_t flags = rd8(r), next = rd8(r);
		gdesc(where, addr, len, flags, next);
		break;
	}
	case OP_AVAIL_ADD:
		avail_add(rd16(r));
		break;
	case OP_AVAIL_PUB:
		avail_publish();
		break;
	case OP_AVAIL_BUMP:
		S.avail_shadow = (uint16_t)(gread16(S.avail_gpa + 2) + rd16(r));
		avail_publish();
		break;
	case OP_AVAIL_MISC: {
		uint16_t flags = rd16(r), ev = rd16(r);
		gwrite16(S.avail_gpa, flags);
		gwrite16(S.avail_gpa + offsetof(struct vring_avail, ring) + (uint64_t)S.qsize * 2,
			 ev);
		break;
	}
	case OP_POP:
		op_pop(r);
		break;
	case OP_POP_BURST:
		op_pop_burst(r);
		break;
	case OP_PUSH:
		op_push(r);
		break;
	case OP_PUSH_RAW:
		op_push_raw(r);
		break;
	case OP_FLUSH:
		op_flush();
		break;
	case OP_ENABLE:
		op_enable();
		break;
	case OP_DISABLE:
		op_disable();
		break;
	case OP_HAS_AVAIL:
		op_has_avail();
		break;
	case OP_POKE: {
		uint64_t addr = rd_addr(r);
		unsigned n = rd8(r) % 32;
		for (unsigned i = 0; i < n; i++) {
			uint8_t b = rd8(r);
			gwrite(addr + i, &b, 1);
		}
		break;
	}
	case OP_REATTACH:
		op_reattach(r);
		break;
	case OP_REPLACE:
		op_replace(r);
		break;
	case OP_CHAIN:
		op_chain(r);
		break;
	case OP_INDIRECT:
		op_indirect(r);
		break;
	case OP_NET_TX:
		op_net_tx(r);
		break;
	case OP_NET_RX:
		op_net_rx(r);
		break;
	}
	check_state();
	/* Once broken (or detached), the queue stays dead and hands out nothing. */
	if (!S.attached || S.vq.broken) {
		unsigned tok;
		bracket_begin(&tok);
		struct vnet_vq_chain c;
		CHECK(vnet_vq_pop(&S.vq, &c, S.iov, 4) < 0);
		CHECK(vnet_vq_pop_burst(&S.vq, S.chains, 2, S.iov, 4) == 0);
		vnet_guestmem_read_end(&S.m.gm, tok);
		check_state();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	page_sz = (size_t)sysconf(_SC_PAGESIZE);
	const char *t = getenv("FUZZ_VQ_TRACE");
	trace = t && *t && *t != '0';
	testlog_capture(); /* counts log lines; keeps stderr quiet */
	if (vnet_pkt_pool_init(&S.pool, NET_POOL, 0) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!page_sz)
		LLVMFuzzerInitialize(NULL, NULL);
	struct reader r = {data, size};
	uint8_t h0 = rd8(&r), h1 = rd8(&r);

	memset(&S.vq, 0, sizeof(S.vq));
	S.qsize = (uint16_t)(1u << (h0 & 7));
	S.features = 1ull << VIRTIO_F_VERSION_1;
	if (h0 & 0x08)
		S.features |= 1ull << VIRTIO_F_RING_INDIRECT_DESC;
	if (h0 & 0x10)
		S.features |= 1ull << VIRTIO_F_RING_EVENT_IDX;
	S.desc_gpa = DEF_DESC;
	S.avail_gpa = DEF_AVAIL;
	S.used_gpa = DEF_USED;
	if (h0 & 0x20) {
		S.desc_gpa = CUSTOM_BASE + rd16(&r);
		S.avail_gpa = CUSTOM_BASE + rd16(&r);
		S.used_gpa = CUSTOM_BASE + rd16(&r);
	}

	if (!S.mem_ready) {
		testmem_begin(&S.m);
		testmem_add(&S.m, R0_GPA, R0_SIZE, 0);
		testmem_add(&S.m, SHADOW_GPA, R0_SIZE, 0);
		for (unsigned v = 0; v < 4; v++)
			testmem_add(&S.m, SHADOW_GPA * (2 + v), R1_SIZE(v), 0);
		testmem_add(&S.m, SHADOW_GPA * 6, R2_SIZE, 0);
		S.mem_ready = true;
	}
	if (S.revoked) {
		set_map_prot(MAP_R0, PROT_READ | PROT_WRITE);
		set_map_prot(MAP_R0_SHADOW, PROT_READ | PROT_WRITE);
		S.revoked = false;
	}
	unsigned r1v = h1 & 3;
	memset(S.m.maps[MAP_R0].host, 0, R0_SIZE);
	memset(S.m.maps[MAP_R1 + r1v].host, 0, R1_SIZE(r1v));
	memset(S.m.maps[MAP_R2].host, 0, R2_SIZE);
	S.reg[0] = (struct region){R0_GPA, R0_SIZE, 0, MAP_R0, true};
	S.reg[1] = (struct region){R1_GPA, R1_SIZE(r1v), (h1 & 4) ? VNET_MEM_READ : 0,
				   MAP_R1 + r1v, true};
	S.reg[2] = (struct region){R2_GPA, R2_SIZE, (h1 & 8) ? VNET_MEM_READ : 0, MAP_R2, true};
	publish_table();

	S.cfg = (struct vnet_vq_config){
		.size = S.qsize,
		.desc_addr = (h0 & 0x40) ? testmem_uaddr(S.desc_gpa) : S.desc_gpa,
		.avail_addr = (h0 & 0x40) ? testmem_uaddr(S.avail_gpa) : S.avail_gpa,
		.used_addr = (h0 & 0x40) ? testmem_uaddr(S.used_gpa) : S.used_gpa,
		.ring_as = (h0 & 0x40) ? VNET_AS_UADDR : VNET_AS_GPA,
		.features = S.features,
		.name = "fuzz",
	};
	S.avail_shadow = 0;
	testlog_clear();
	attach();

	while (r.n)
		run_op(&r);

	if (S.attached)
		vnet_vq_detach(&S.vq);
	S.attached = false;
	return 0;
}
