/*
 * fuzz_vq_split.h — what the two halves of the split-ring fuzz target share
 * (fuzz_vq_split.c: input, guest memory and the hostile driver;
 * fuzz_vq_split_device.c: the device calls and their invariants): the
 * guest memory layout, the harness state and the driver-side helpers.
 * Single-threaded.
 */
#ifndef VNET_FUZZ_VQ_SPLIT_H
#define VNET_FUZZ_VQ_SPLIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fuzz_common.h"
#include "testmem.h"
#include "vnet/pkt.h"
#include "vnet/virtqueue.h"

#define CHECK(cond) FUZZ_CHECK("fuzz_vq_split", cond)

/* Guest memory layout (GPA). */
#define R0_GPA   0x10000ull /* rings + data, RW */
#define R0_SIZE  0x4000ull
#define R1_GPA   0x14000ull /* adjacent to R0: buffers may straddle */
#define R2_GPA   0x20000ull /* after a gap */
#define R2_GPA_MOVED 0x30000ull
#define R2_SIZE  0x2000ull
#define SHADOW_GPA 0x40000000ull /* GPAs given to testmem for the extra mappings */

/* testmem maps, created once and reused by every input (mmap per input
 * would cost more than the run itself). Map sizes equal region sizes, so the
 * guard page right after each region's last byte always applies. */
enum {
	MAP_R0,          /* rings + data */
	MAP_R0_SHADOW,   /* second host mapping of R0 (see OP_REPLACE 4) */
	MAP_R1,          /* + variant 0..3: region 1 comes in four sizes */
	MAP_R2 = MAP_R1 + 4,
	MAP_COUNT
};
#define R1_SIZE(v) (0x1000ull + (uint64_t)(v) * 0x1f0)

#define DEF_DESC  (R0_GPA + 0x0000)
#define DEF_AVAIL (R0_GPA + 0x1000)
#define DEF_USED  (R0_GPA + 0x2000)
#define CUSTOM_BASE 0xfe00ull

#define MAX_QSIZE 128
#define IOV_MAX_POP 320   /* > VNET_VQ_MAX_SEGS */
#define BURST_MAX 32
#define BURST_IOV_MAX 24
#define NET_POOL 64      /* packets for the frame path */

/* A region as the harness (the guest) sees it right now. */
struct region {
	uint64_t gpa, size;
	unsigned prot;
	unsigned map;  /* index into testmem maps of the live host mapping */
	bool present;
};

struct inflight {
	uint16_t head;
	uint32_t in_len;
};

struct pushed {
	uint16_t head;
	uint32_t len;
};

struct vq_harness {
	struct testmem m;
	struct region reg[3];
	uint16_t qsize;
	uint64_t features;
	struct vnet_vq_config cfg;
	uint64_t desc_gpa, avail_gpa, used_gpa; /* where the guest keeps its rings */
	struct vnet_vq vq;
	bool attached;
	uint16_t avail_shadow;
	struct inflight fl[MAX_QSIZE * 2];
	unsigned nfl;
	struct pushed pend[MAX_QSIZE * 2];
	unsigned npend;
	bool used_dirty;   /* something other than the device wrote the used ring */
	bool was_broken;
	unsigned log_at_break;
	bool mem_ready;
	bool revoked; /* one R0 mapping is PROT_NONE */
	struct iovec iov[BURST_MAX * BURST_IOV_MAX + IOV_MAX_POP];
	struct vnet_vq_chain chains[BURST_MAX];
	/* the spec's notification state: used index at the last decision */
	uint16_t sig_used;
	bool sig_valid;
	struct vnet_pkt_pool pool;
};

extern struct vq_harness S;


/* The driver's view of guest memory (fuzz_vq_split.c). */
bool gread(uint64_t gpa, void *dst, size_t len);
uint16_t gread16(uint64_t gpa);
uint8_t *ghost(uint64_t gpa);

/* Device calls with their checks (fuzz_vq_split_device.c). */
const struct vnet_mem_table *bracket_begin(unsigned *tok);
void check_state(void);
void attach(void);
void op_pop(struct reader *r);
void op_pop_burst(struct reader *r);
void op_push(struct reader *r);
void op_push_raw(struct reader *r);
void op_flush(void);
void op_enable(void);
void op_disable(void);
void op_has_avail(void);
void op_reattach(struct reader *r);
void op_net_tx(struct reader *r);
void op_net_rx(struct reader *r);

#endif
