/*
 * virtio.c — the tiny guest's virtio-net driver over virtio-mmio v2
 * (virtio 1.2 §3.1 device initialization, §2.7 split virtqueues, §5.1 net).
 * Queue 0 receives, queue 1 transmits; no interrupts (avail flags ask for
 * none, the guest polls the used rings), no EVENT_IDX, no indirect
 * descriptors, no mergeable rx buffers: one descriptor per buffer, the
 * 12-byte virtio_net_hdr in front of each frame.
 *
 * Rings and buffers live in .bss, which is identity-mapped: their addresses
 * are guest-physical addresses.
 *
 * Thread-safety: one CPU, interrupts off; nothing is shared.
 */
#include "tiny.h"

struct vq_mem {
	struct vring_desc desc[VQ_MAX_SIZE] __attribute__((aligned(4096)));
	struct vring_avail avail __attribute__((aligned(4096)));
	struct vring_used used __attribute__((aligned(4096)));
	uint8_t bufs[VQ_NBUF][VQ_BUF_SIZE] __attribute__((aligned(4096)));
};

static struct vq_mem vq_mem[2];

/* A register that has to settle (reset) is polled this long. */
#define REG_WAIT_MS 2000

void vnic_probe(struct vnic *n, uintptr_t base)
{
	uint32_t magic, version, id;

	n->base = base;
	magic = vnic_read(n, VMMIO_MAGIC);
	version = vnic_read(n, VMMIO_VERSION);
	id = vnic_read(n, VMMIO_DEVICE_ID);
	if (magic != VMMIO_MAGIC_VALUE)
		tiny_error(TINY_EXIT_DEVICE, "no virtio-mmio device at 0x%lx (magic 0x%x)",
			   (unsigned long)base, magic);
	if (version != 2)
		tiny_error(TINY_EXIT_DEVICE, "virtio-mmio at 0x%lx is version %u, want 2",
			   (unsigned long)base, version);
	if (id != 1)
		tiny_error(TINY_EXIT_DEVICE, "virtio-mmio at 0x%lx is device %u, want 1 (net)",
			   (unsigned long)base, id);
}

void vnic_reset(struct vnic *n)
{
	uint64_t deadline = tiny_deadline(REG_WAIT_MS);
	uint32_t status;

	vnic_write(n, VMMIO_STATUS, 0);
	while ((status = vnic_read(n, VMMIO_STATUS)) != 0) {
		if (tiny_expired(deadline))
			tiny_error(TINY_EXIT_TIMEOUT, "timeout: status 0x%x after reset, want 0", status);
		cpu_relax();
	}
}

static uint64_t read_device_features(const struct vnic *n)
{
	uint64_t lo, hi;

	vnic_write(n, VMMIO_DEVICE_FEATURES_SEL, 0);
	lo = vnic_read(n, VMMIO_DEVICE_FEATURES);
	vnic_write(n, VMMIO_DEVICE_FEATURES_SEL, 1);
	hi = vnic_read(n, VMMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

void vnic_negotiate(struct vnic *n)
{
	uint32_t status;

	vnic_write(n, VMMIO_STATUS, VSTAT_ACKNOWLEDGE);
	vnic_write(n, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER);
	n->device_features = read_device_features(n);
	if (!(n->device_features & VIRTIO_F_VERSION_1))
		tiny_error(TINY_EXIT_DEVICE, "device features 0x%lx lack VERSION_1",
			   (unsigned long)n->device_features);
	n->features = n->device_features & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | n->want);
	/* Our rx buffers hold one frame each and we never look at the link
	 * status: everything else we would have to implement. */
	n->features &= ~VIRTIO_NET_F_MRG_RXBUF;
	vnic_write(n, VMMIO_DRIVER_FEATURES_SEL, 0);
	vnic_write(n, VMMIO_DRIVER_FEATURES, (uint32_t)n->features);
	vnic_write(n, VMMIO_DRIVER_FEATURES_SEL, 1);
	vnic_write(n, VMMIO_DRIVER_FEATURES, (uint32_t)(n->features >> 32));
	vnic_write(n, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER | VSTAT_FEATURES_OK);
	status = vnic_read(n, VMMIO_STATUS);
	if (!(status & VSTAT_FEATURES_OK))
		tiny_error(TINY_EXIT_DEVICE, "device refused features 0x%lx (status 0x%x)",
			   (unsigned long)n->features, status);
}

void vnic_init_vq(struct vq *q, unsigned index, uint16_t size)
{
	struct vq_mem *m = &vq_mem[index];

	memset(q, 0, sizeof(*q));
	/* Only the ring parts a device may have written: the buffers get
	 * overwritten before use anyway. */
	memset(m->desc, 0, sizeof(m->desc));
	memset(&m->avail, 0, sizeof(m->avail));
	memset(&m->used, 0, sizeof(m->used));
	q->index = index;
	q->size = size;
	q->nbuf = size < VQ_NBUF ? size : VQ_NBUF;
	q->desc = m->desc;
	q->avail = &m->avail;
	q->used = &m->used;
	q->bufs = m->bufs;
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	for (uint16_t i = 0; i < q->nbuf; i++)
		q->free_ids[i] = i;
	q->nfree = q->nbuf;
}

void vnic_setup_queue(struct vnic *n, struct vq *q)
{
	uint32_t max;
	uint64_t desc = (uintptr_t)q->desc, avail = (uintptr_t)q->avail, used = (uintptr_t)q->used;

	vnic_write(n, VMMIO_QUEUE_SEL, q->index);
	if (vnic_read(n, VMMIO_QUEUE_READY))
		tiny_error(TINY_EXIT_DEVICE, "queue %u is ready before setup", q->index);
	max = vnic_read(n, VMMIO_QUEUE_NUM_MAX);
	if (max == 0)
		tiny_error(TINY_EXIT_DEVICE, "queue %u does not exist (QueueNumMax 0)", q->index);
	if (q->size > max)
		tiny_error(TINY_EXIT_USAGE, "queue size %u > QueueNumMax %u", q->size, max);
	vnic_write(n, VMMIO_QUEUE_NUM, q->size);
	vnic_write(n, VMMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	vnic_write(n, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	vnic_write(n, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	vnic_write(n, VMMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	vnic_write(n, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	vnic_write(n, VMMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	vnic_write(n, VMMIO_QUEUE_READY, 1);
	if (vnic_read(n, VMMIO_QUEUE_READY) != 1)
		tiny_error(TINY_EXIT_DEVICE, "queue %u did not become ready (status 0x%x)", q->index,
			   vnic_read(n, VMMIO_STATUS));
}

static void read_mac(struct vnic *n)
{
	uint32_t gen;
	unsigned tries = 0;

	/* The generation counter tells a torn multi-byte read (§4.2.2.2). */
	do {
		if (++tries > 100)
			tiny_error(TINY_EXIT_DEVICE, "config generation keeps changing");
		gen = vnic_read(n, VMMIO_CONFIG_GENERATION);
		for (unsigned i = 0; i < 6; i++)
			n->mac[i] = *(volatile uint8_t *)(n->base + VMMIO_CONFIG + i);
	} while (vnic_read(n, VMMIO_CONFIG_GENERATION) != gen);
}

static uint16_t queue_size(struct vnic *n, unsigned index)
{
	uint32_t max;

	vnic_write(n, VMMIO_QUEUE_SEL, index);
	max = vnic_read(n, VMMIO_QUEUE_NUM_MAX);
	if (max == 0)
		tiny_error(TINY_EXIT_DEVICE, "queue %u does not exist (QueueNumMax 0)", index);
	return n->qsize < max ? n->qsize : (uint16_t)(max > VQ_MAX_SIZE ? VQ_MAX_SIZE : max);
}

void vnic_bringup(struct vnic *n)
{
	uint32_t status;

	vnic_reset(n);
	vnic_negotiate(n);
	vnic_init_vq(&n->rx, 0, queue_size(n, 0));
	vnic_init_vq(&n->tx, 1, queue_size(n, 1));
	vnic_setup_queue(n, &n->rx);
	vnic_setup_queue(n, &n->tx);
	/* Every rx buffer goes to the device before DRIVER_OK (§5.1.6.3). */
	for (uint16_t i = 0; i < n->rx.nbuf; i++)
		vnic_rx_repost(n, i);
	if (n->features & VIRTIO_NET_F_MAC)
		read_mac(n);
	vnic_write(n, VMMIO_STATUS,
		   VSTAT_ACKNOWLEDGE | VSTAT_DRIVER | VSTAT_FEATURES_OK | VSTAT_DRIVER_OK);
	status = vnic_read(n, VMMIO_STATUS);
	if (status & (VSTAT_NEEDS_RESET | VSTAT_FAILED) || !(status & VSTAT_DRIVER_OK))
		tiny_error(TINY_EXIT_DEVICE, "device status 0x%x after DRIVER_OK", status);
	vnic_kick(n, &n->rx);
}

void vnic_kick(struct vnic *n, const struct vq *q)
{
	vnic_write(n, VMMIO_QUEUE_NOTIFY, q->index);
}

/* Publishes descriptor `id` as the next avail entry. */
static void avail_push(struct vq *q, uint16_t id)
{
	q->avail->ring[q->avail_idx % q->size] = id;
	q->avail_idx++;
	barrier();
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
}

/* The next used entry, checked: a device handing back an id we never gave
 * it, or a length beyond the buffer, is a device bug worth stopping for. */
static bool used_pop(struct vq *q, uint16_t *id, uint32_t *len)
{
	uint16_t used_idx = *(volatile uint16_t *)&q->used->idx;
	struct vring_used_elem e;

	if (used_idx == q->used_seen)
		return false;
	if ((uint16_t)(used_idx - q->used_seen) > q->size)
		tiny_error(TINY_EXIT_DEVICE, "queue %u: used idx jumped from %u to %u", q->index,
			   q->used_seen, used_idx);
	barrier();
	e = q->used->ring[q->used_seen % q->size];
	q->used_seen++;
	if (e.id >= q->nbuf || e.len > VQ_BUF_SIZE)
		tiny_error(TINY_EXIT_DEVICE, "queue %u: bad used entry id %u len %u", q->index, e.id,
			   e.len);
	*id = (uint16_t)e.id;
	*len = e.len;
	return true;
}

uint8_t *vnic_tx_alloc(struct vnic *n, uint16_t *id)
{
	struct vq *q = &n->tx;

	if (q->nfree == 0 && vnic_tx_reclaim(n) == 0)
		return NULL;
	*id = q->free_ids[--q->nfree];
	return q->bufs[*id] + VNET_HDR_LEN;
}

void vnic_tx_post(struct vnic *n, uint16_t id, unsigned frame_len)
{
	struct vq *q = &n->tx;
	struct vring_desc *d = &q->desc[id];

	/* flags 0, gso NONE: the frame carries its own checksums */
	memset(q->bufs[id], 0, VNET_HDR_LEN);
	d->addr = (uintptr_t)q->bufs[id];
	d->len = VNET_HDR_LEN + frame_len;
	d->flags = 0;
	d->next = 0;
	avail_push(q, id);
}

unsigned vnic_tx_reclaim(struct vnic *n)
{
	struct vq *q = &n->tx;
	unsigned got = 0;
	uint16_t id;
	uint32_t len;

	while (used_pop(q, &id, &len)) {
		if (q->nfree >= q->nbuf)
			tiny_error(TINY_EXIT_DEVICE, "tx: device returned more buffers than posted");
		q->free_ids[q->nfree++] = id;
		got++;
	}
	return got;
}

void vnic_tx_drain(struct vnic *n, uint64_t deadline)
{
	while (n->tx.nfree < n->tx.nbuf) {
		if (vnic_tx_reclaim(n))
			continue;
		if (tiny_expired(deadline))
			tiny_error(TINY_EXIT_TIMEOUT, "timeout: tx: %u of %u buffers still with the device "
				   "(status 0x%x)", n->tx.nbuf - n->tx.nfree, n->tx.nbuf,
				   vnic_read(n, VMMIO_STATUS));
		cpu_relax();
	}
}

const uint8_t *vnic_rx_next(struct vnic *n, uint16_t *id, unsigned *frame_len)
{
	uint32_t len;

	if (!used_pop(&n->rx, id, &len))
		return NULL;
	*frame_len = len > VNET_HDR_LEN ? len - VNET_HDR_LEN : 0;
	return n->rx.bufs[*id] + VNET_HDR_LEN;
}

void vnic_rx_repost(struct vnic *n, uint16_t id)
{
	struct vq *q = &n->rx;
	struct vring_desc *d = &q->desc[id];

	d->addr = (uintptr_t)q->bufs[id];
	d->len = VQ_BUF_SIZE;
	d->flags = VRING_DESC_F_WRITE;
	d->next = 0;
	avail_push(q, id);
}
