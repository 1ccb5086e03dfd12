/*
 * bad.c — hostile-driver scenarios (tiny.bad=<name>) for vnet-vmm's
 * bad-input tests. Each one misprograms the device the way a broken or
 * malicious guest could, then reads Status and prints
 *
 *   TINY-STATUS 0x<status>
 *   TINY-BAD <name> status=0x<status> [detail]
 *
 * The test expects DEVICE_NEEDS_RESET (0x40) for every scenario but
 * garbage-regs (there the point is only that the VMM survives and the
 * read-only registers kept their values). The caller then resets the
 * device and must be able to use it normally: the VMM kept running.
 *
 * Thread-safety: one CPU, interrupts off; nothing is shared.
 */
#include "tiny.h"

/* Far outside any RAM vnet-vmm could give (128 TiB - 64 GiB). */
#define OUTSIDE_RAM 0x7f0000000000ull
/* The data plane runs on another host thread: NEEDS_RESET after a kick
 * arrives asynchronously. */
#define ASYNC_WAIT_MS 5000

static void queue_addresses(const struct vnic *n, const struct vq *q, uint64_t desc)
{
	vnic_write(n, VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	vnic_write(n, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	vnic_write(n, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)q->avail);
	vnic_write(n, VMMIO_QUEUE_DRIVER_HIGH, 0);
	vnic_write(n, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)q->used);
	vnic_write(n, VMMIO_QUEUE_DEVICE_HIGH, 0);
}

/* Negotiated, rx queue memory prepared but not programmed. */
static void prepare(struct vnic *n)
{
	uint32_t max;

	vnic_reset(n);
	vnic_negotiate(n);
	vnic_write(n, VMMIO_QUEUE_SEL, 0);
	max = vnic_read(n, VMMIO_QUEUE_NUM_MAX);
	vnic_init_vq(&n->rx, 0, n->qsize < max ? n->qsize : (uint16_t)max);
}

static void queue_outside_ram(struct vnic *n)
{
	prepare(n);
	vnic_write(n, VMMIO_QUEUE_NUM, n->rx.size);
	queue_addresses(n, &n->rx, OUTSIDE_RAM);
	vnic_write(n, VMMIO_QUEUE_READY, 1);
}

static void qsize0(struct vnic *n)
{
	prepare(n);
	vnic_write(n, VMMIO_QUEUE_NUM, 0);
	queue_addresses(n, &n->rx, (uintptr_t)n->rx.desc);
	vnic_write(n, VMMIO_QUEUE_READY, 1);
}

static void qsize_big(struct vnic *n)
{
	uint32_t max;

	prepare(n);
	max = vnic_read(n, VMMIO_QUEUE_NUM_MAX);
	vnic_write(n, VMMIO_QUEUE_NUM, max * 2);
	queue_addresses(n, &n->rx, (uintptr_t)n->rx.desc);
	vnic_write(n, VMMIO_QUEUE_READY, 1);
}

static void notify_unready(struct vnic *n)
{
	prepare(n);
	/* rx and tx were never made ready; queue 7 does not exist */
	vnic_write(n, VMMIO_QUEUE_NOTIFY, 0);
	vnic_write(n, VMMIO_QUEUE_NOTIFY, 1);
	vnic_write(n, VMMIO_QUEUE_NOTIFY, 7);
}

/* Returns "regs-intact" or what changed. */
static const char *garbage_regs(struct vnic *n)
{
	static const uint16_t read_only[] = {
		VMMIO_MAGIC, VMMIO_VERSION, VMMIO_DEVICE_ID, VMMIO_VENDOR_ID,
		VMMIO_DEVICE_FEATURES, VMMIO_QUEUE_NUM_MAX, VMMIO_INTERRUPT_STATUS,
		VMMIO_CONFIG_GENERATION,
	};
	static const uint16_t unknown[] = {
		0x018, 0x01c, 0x028, 0x02c, 0x03c, 0x040, 0x048, 0x04c, 0x054, 0x058,
		0x05c, 0x068, 0x06c, 0x074, 0x0a8, 0x0ac, 0x0b0, 0x0c0, 0x0f0, 0x0f8,
		0x180, 0x1f0, 0x1fc,
	};
	uint32_t vendor = vnic_read(n, VMMIO_VENDOR_ID);
	volatile uint32_t sink;

	vnic_reset(n);
	vnic_write(n, VMMIO_STATUS, VSTAT_ACKNOWLEDGE);
	vnic_write(n, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER);
	for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
		vnic_write(n, read_only[i], 0xdeadbeef);
	for (unsigned i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		vnic_write(n, unknown[i], 0xa5a5a5a5);
		sink = vnic_read(n, unknown[i]);
	}
	/* Odd widths: the registers are 32-bit only (§4.2.2.1). */
	*(volatile uint8_t *)(n->base + 0x001) = 0x5a;
	*(volatile uint16_t *)(n->base + 0x006) = 0x5a5a;
	*(volatile uint64_t *)(n->base + 0x018) = 0x5a5a5a5a5a5a5a5aull;
	sink = *(volatile uint8_t *)(n->base + VMMIO_MAGIC + 3);
	sink = (uint32_t)*(volatile uint64_t *)(n->base + VMMIO_MAGIC);
	/* Selectors out of range */
	vnic_write(n, VMMIO_DEVICE_FEATURES_SEL, 0x7fffffff);
	sink = vnic_read(n, VMMIO_DEVICE_FEATURES);
	vnic_write(n, VMMIO_DRIVER_FEATURES_SEL, 0x7fffffff);
	vnic_write(n, VMMIO_DRIVER_FEATURES, 0xffffffff);
	vnic_write(n, VMMIO_QUEUE_SEL, 0x10000);
	sink = vnic_read(n, VMMIO_QUEUE_NUM_MAX);
	sink = vnic_read(n, VMMIO_QUEUE_READY);
	vnic_write(n, VMMIO_QUEUE_NUM, 64);
	vnic_write(n, VMMIO_QUEUE_DESC_LOW, 0x1000);
	vnic_write(n, VMMIO_QUEUE_READY, 1);
	vnic_write(n, VMMIO_QUEUE_SEL, 0);
	vnic_write(n, VMMIO_INTERRUPT_ACK, 0xffffffff);
	/* Config space past virtio_net_config and a write to it */
	sink = *(volatile uint8_t *)(n->base + VMMIO_CONFIG + 0x80);
	*(volatile uint8_t *)(n->base + VMMIO_CONFIG + 0x80) = 0x5a;
	(void)sink;

	if (vnic_read(n, VMMIO_MAGIC) != VMMIO_MAGIC_VALUE || vnic_read(n, VMMIO_VERSION) != 2 ||
	    vnic_read(n, VMMIO_DEVICE_ID) != 1 || vnic_read(n, VMMIO_VENDOR_ID) != vendor)
		return "regs-changed";
	return "regs-intact";
}

/* Full bring-up, then one bad chain in the tx ring, kicked. */
static void ring_chain(struct vnic *n, bool outside, bool loop)
{
	struct vq *q = &n->tx;
	struct vring_desc *d;

	vnic_bringup(n);
	d = q->desc;   /* set by the bring-up */
	d[0].addr = outside ? OUTSIDE_RAM : (uintptr_t)q->bufs[0];
	d[0].len = 64;
	d[0].flags = VRING_DESC_F_NEXT;
	d[0].next = 1;
	d[1].addr = (uintptr_t)q->bufs[1];
	d[1].len = 64;
	d[1].flags = loop ? VRING_DESC_F_NEXT : 0;
	d[1].next = 0;
	q->avail->ring[q->avail_idx % q->size] = 0;
	q->avail_idx++;
	barrier();
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
	vnic_kick(n, q);
}

/* Full bring-up, then an avail index more than a ring ahead. */
static void ring_idx(struct vnic *n)
{
	struct vq *q = &n->tx;

	vnic_bringup(n);
	q->avail_idx = (uint16_t)(q->size + 7);
	barrier();
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
	vnic_kick(n, q);
}

static const char *const scenarios[] = {
	"queue-outside-ram", "qsize0", "qsize-big", "notify-unready", "garbage-regs",
	"ring-garbage", "ring-loop", "ring-oob", "ring-idx",
};

bool bad_known(const char *name)
{
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!memcmp(name, scenarios[i], strlen(scenarios[i]) + 1))
			return true;
	return false;
}

static bool is(const char *name, const char *what)
{
	return !memcmp(name, what, strlen(what) + 1);
}

void bad_run(struct vnic *n, const char *name)
{
	const char *detail = "";
	bool async = false;
	uint32_t status;

	if (is(name, "queue-outside-ram")) {
		queue_outside_ram(n);
	} else if (is(name, "qsize0")) {
		qsize0(n);
	} else if (is(name, "qsize-big")) {
		qsize_big(n);
	} else if (is(name, "notify-unready")) {
		notify_unready(n);
	} else if (is(name, "garbage-regs")) {
		detail = garbage_regs(n);
	} else if (is(name, "ring-garbage")) {
		ring_chain(n, true, true);
		async = true;
	} else if (is(name, "ring-loop")) {
		ring_chain(n, false, true);
		async = true;
	} else if (is(name, "ring-oob")) {
		ring_chain(n, true, false);
		async = true;
	} else if (is(name, "ring-idx")) {
		ring_idx(n);
		async = true;
	} else {
		tiny_error(TINY_EXIT_USAGE, "unknown tiny.bad scenario '%s'", name);
	}

	status = vnic_read(n, VMMIO_STATUS);
	if (async) {
		uint64_t deadline = tiny_deadline(ASYNC_WAIT_MS);

		while (!(status & VSTAT_NEEDS_RESET) && !tiny_expired(deadline)) {
			for (unsigned i = 0; i < 1000; i++)
				cpu_relax();
			status = vnic_read(n, VMMIO_STATUS);
		}
	}
	tiny_print("TINY-STATUS 0x%02x\n", status);
	tiny_print("TINY-BAD %s status=0x%02x%s%s\n", name, status, *detail ? " " : "", detail);
}
