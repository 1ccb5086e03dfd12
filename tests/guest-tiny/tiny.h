/*
 * tiny.h — shared declarations of vnet's tiny test guest: a freestanding
 * 64-bit program that vnet-vmm boots instead of Linux to drive its
 * virtio-net device over virtio-mmio (virtio.c), answer ARP and ping and send
 * UDP frames (net.c), and play hostile driver on request (bad.c).
 * tiny.c holds the console, the command line and the main sequence.
 *
 * Thread-safety: one CPU, interrupts off; nothing is shared, nothing locks.
 */
#ifndef TINY_H
#define TINY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (outb to the VMM's debug-exit port). */
enum {
	TINY_EXIT_OK = 0,
	TINY_EXIT_USAGE = 2,   /* bad command line, no device */
	TINY_EXIT_FAULT = 3,   /* CPU exception */
	TINY_EXIT_DEVICE = 4,  /* the device misbehaved or refused us */
	TINY_EXIT_TIMEOUT = 5, /* a bounded wait ran out */
};

/* --- CPU and port I/O -------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* The device is another host thread; x86 keeps stores and loads in order,
 * so keeping the compiler from reordering ring accesses is enough. */
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* --- tiny.c: console, library, time -------------------------------------- */

void tiny_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void tiny_exit(int code);
/* Prints "TINY-ERROR <message>" and exits with `code`. */
_Noreturn void tiny_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* A deadline `ms` milliseconds from now (TSC based, approximate). */
uint64_t tiny_deadline(uint64_t ms);
bool tiny_expired(uint64_t deadline);

/* --- virtio.c: the virtio-mmio virtio-net driver ------------------------- */

#define VQ_MAX_SIZE 256   /* ring arrays are sized for this */
#define VQ_NBUF 64        /* buffers per queue (fewer if the queue is smaller) */
#define VQ_BUF_SIZE 2048  /* virtio_net_hdr + a 1514-byte frame, rounded */
#define VNET_HDR_LEN 12   /* virtio_net_hdr with num_buffers (VERSION_1) */

/* virtio-mmio v2 registers (virtio 1.2 §4.2.2) */
enum {
	VMMIO_MAGIC = 0x000,
	VMMIO_VERSION = 0x004,
	VMMIO_DEVICE_ID = 0x008,
	VMMIO_VENDOR_ID = 0x00c,
	VMMIO_DEVICE_FEATURES = 0x010,
	VMMIO_DEVICE_FEATURES_SEL = 0x014,
	VMMIO_DRIVER_FEATURES = 0x020,
	VMMIO_DRIVER_FEATURES_SEL = 0x024,
	VMMIO_QUEUE_SEL = 0x030,
	VMMIO_QUEUE_NUM_MAX = 0x034,
	VMMIO_QUEUE_NUM = 0x038,
	VMMIO_QUEUE_READY = 0x044,
	VMMIO_QUEUE_NOTIFY = 0x050,
	VMMIO_INTERRUPT_STATUS = 0x060,
	VMMIO_INTERRUPT_ACK = 0x064,
	VMMIO_STATUS = 0x070,
	VMMIO_QUEUE_DESC_LOW = 0x080,
	VMMIO_QUEUE_DESC_HIGH = 0x084,
	VMMIO_QUEUE_DRIVER_LOW = 0x090,
	VMMIO_QUEUE_DRIVER_HIGH = 0x094,
	VMMIO_QUEUE_DEVICE_LOW = 0x0a0,
	VMMIO_QUEUE_DEVICE_HIGH = 0x0a4,
	VMMIO_CONFIG_GENERATION = 0x0fc,
	VMMIO_CONFIG = 0x100,
};
#define VMMIO_MAGIC_VALUE 0x74726976u   /* "virt" */

#define VSTAT_ACKNOWLEDGE 0x01
#define VSTAT_DRIVER 0x02
#define VSTAT_DRIVER_OK 0x04
#define VSTAT_FEATURES_OK 0x08
#define VSTAT_NEEDS_RESET 0x40
#define VSTAT_FAILED 0x80

#define VIRTIO_NET_F_MAC (1ull << 5)
#define VIRTIO_NET_F_MRG_RXBUF (1ull << 15)
#define VIRTIO_NET_F_STATUS (1ull << 16)
#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VQ_MAX_SIZE];
	uint16_t used_event;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[VQ_MAX_SIZE];
	uint16_t avail_event;
};

struct vq {
	unsigned index;             /* queue number: 0 rx, 1 tx */
	uint16_t size;              /* QueueNum we wrote */
	uint16_t nbuf;              /* buffers in use: min(size, VQ_NBUF) */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint8_t (*bufs)[VQ_BUF_SIZE];
	uint16_t avail_idx;         /* our copy of avail->idx */
	uint16_t used_seen;         /* used entries consumed */
	uint16_t free_ids[VQ_NBUF]; /* tx: descriptors not in flight */
	uint16_t nfree;
};

struct vnic {
	uintptr_t base;             /* virtio-mmio window (identity-mapped) */
	uint64_t device_features;
	uint64_t features;          /* negotiated */
	uint64_t want;              /* optional features the driver accepts if offered */
	uint16_t qsize;             /* requested queue size */
	uint8_t mac[6];
	struct vq rx, tx;
};

static inline uint32_t vnic_read(const struct vnic *n, unsigned off)
{
	return *(volatile uint32_t *)(n->base + off);
}

static inline void vnic_write(const struct vnic *n, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(n->base + off) = v;
}

/* Checks magic, version 2 and device id 1; exits with TINY-ERROR if not. */
void vnic_probe(struct vnic *n, uintptr_t base);
/* Status 0 and waits until the device reads back 0. */
void vnic_reset(struct vnic *n);
/* ACKNOWLEDGE|DRIVER, features (VERSION_1 + MAC + n->want), FEATURES_OK
 * checked. Leaves the device ready for queue setup. */
void vnic_negotiate(struct vnic *n);
/* Points the queue registers of q at q's rings and sets QueueReady. */
void vnic_setup_queue(struct vnic *n, struct vq *q);
/* Whole bring-up: reset, negotiate, both queues, rx buffers, DRIVER_OK, MAC. */
void vnic_bringup(struct vnic *n);
/* Ring memory and buffers of queue `index` (rings zeroed, counters reset). */
void vnic_init_vq(struct vq *q, unsigned index, uint16_t size);

/* Frame buffer (after the header) of a free tx descriptor, or NULL. */
uint8_t *vnic_tx_alloc(struct vnic *n, uint16_t *id);
void vnic_tx_post(struct vnic *n, uint16_t id, unsigned frame_len);
void vnic_kick(struct vnic *n, const struct vq *q);
/* Takes back the tx descriptors the device has used; returns how many. */
unsigned vnic_tx_reclaim(struct vnic *n);
/* Reclaims until every tx descriptor is back (bounded by `deadline`). */
void vnic_tx_drain(struct vnic *n, uint64_t deadline);
/* Next received frame (past the header), or NULL; give it back with repost. */
const uint8_t *vnic_rx_next(struct vnic *n, uint16_t *id, unsigned *frame_len);
void vnic_rx_repost(struct vnic *n, uint16_t id);

/* --- net.c: the guest's tiny IPv4 stack ----------------------------------- */

struct net_cfg {
	uint8_t mac[6];
	uint32_t ip, dst;           /* host byte order */
};

/* A UDP/IPv4 frame to cfg->dst:9, broadcast MAC, payload "TINY", seq, pattern. */
unsigned net_build_udp(const struct net_cfg *cfg, uint8_t *frame, uint32_t seq);
#define NET_UDP_PORT 9
#define NET_PATTERN_LEN 32

enum net_verdict { NET_IGNORE, NET_ARP_REPLY, NET_PING_REPLY };
/* Builds the answer to an ARP request / ICMP echo request for cfg->ip in
 * `reply` (VQ_BUF_SIZE - VNET_HDR_LEN bytes); anything else is NET_IGNORE. */
enum net_verdict net_answer(const struct net_cfg *cfg, const uint8_t *frame, unsigned len,
			    uint8_t *reply, unsigned *reply_len);

/* --- bad.c: hostile-driver scenarios --------------------------------------- */

/* Runs scenario `name` (a known one, see bad.c) and prints its TINY-BAD line.
 * Afterwards the device may be in any state: the caller resets it. */
void bad_run(struct vnic *n, const char *name);
bool bad_known(const char *name);

#endif
