/*
 * virtio_mmio.c — the virtio-mmio v2 transport (virtio_transport.h,
 * virtio 1.2 §4.2.2). Registers are 32-bit; another width on a register is
 * ignored (logged once), never a crash. A queue's QueueNotify becomes a KVM
 * ioeventfd (datamatch = queue index) when the queue is made ready, so a
 * notify of a queue that is not ready still exits here and is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/virtio_transport.h"
#include "vmm/vmm.h"

#define MMIO_SIZE 0x200
#define MMIO_MAGIC 0x74726976u   /* "virt" */
#define MMIO_VENDOR 0x54454e56u  /* "VNET" */

enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	unsigned irq;
	int config_fd;                         /* irqfd for config interrupts */
	bool kick_registered[VIRTIO_DEV_MAX_QUEUES];
	bool bad_width_logged;
};

static void set_kick(struct virtio_mmio *m, unsigned q, bool on)
{
	struct virtio_dev *dev = m->dev;
	if (m->kick_registered[q] == on)
		return;
	if (vmm_ioeventfd(dev->vmm, dev->q[q].kick_fd, m->base + REG_QUEUE_NOTIFY, 4, false, true, q, on) == 0)
		m->kick_registered[q] = on;
}

static void drop_kicks(struct virtio_mmio *m)
{
	for (unsigned q = 0; q < m->dev->num_queues; q++)
		set_kick(m, q, false);
}

static void set_addr_half(struct virtio_dev *dev, uint64_t *field, bool high, uint32_t v)
{
	if (!virtio_dev_queue_writable(dev)) {
		if (!virtio_dev_selected_queue(dev))
			virtio_dev_needs_reset(dev, "ring address for queue %u, which does not exist", dev->queue_sel);
		return;
	}
	if (high)
		*field = (*field & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*field = (*field & ~0xffffffffull) | v;
}

static uint32_t reg_read(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *dev = m->dev;
	struct virtio_queue *q = virtio_dev_selected_queue(dev);
	switch (off) {
	case REG_MAGIC: return MMIO_MAGIC;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return dev->device_id;
	case REG_VENDOR_ID: return MMIO_VENDOR;
	case REG_DEVICE_FEATURES: return virtio_dev_read_device_features(dev);
	case REG_QUEUE_NUM_MAX: return q ? q->max_size : 0;
	case REG_QUEUE_READY: return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		/* With vhost the queue interrupts never pass here: always claim
		 * one, or Linux's handler would ignore them. */
		return atomic_load(&dev->isr) | (dev->irq_bypass ? VIRTIO_ISR_QUEUE : 0);
	case REG_STATUS: return virtio_dev_read_status(dev);
	case REG_SHM_LEN_LOW: case REG_SHM_LEN_HIGH: return 0xffffffffu; /* no shared memory regions */
	case REG_SHM_BASE_LOW: case REG_SHM_BASE_HIGH: return 0xffffffffu;
	case REG_CONFIG_GENERATION: return dev->config_generation;
	default: return 0; /* write-only and reserved registers read as zero */
	}
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *dev = m->dev;
	struct virtio_queue *q = virtio_dev_selected_queue(dev);
	switch (off) {
	case REG_DEVICE_FEATURES_SEL: dev->device_features_sel = v; break;
	case REG_DRIVER_FEATURES: virtio_dev_write_driver_features(dev, v); break;
	case REG_DRIVER_FEATURES_SEL: dev->driver_features_sel = v; break;
	case REG_QUEUE_SEL: dev->queue_sel = (uint16_t)(v > 0xffff ? 0xffff : v); break;
	case REG_QUEUE_NUM: virtio_dev_write_queue_size(dev, (uint16_t)(v > 0xffff ? 0 : v)); break;
	case REG_QUEUE_READY:
		virtio_dev_write_queue_ready(dev, v != 0);
		/* The doorbell is an ioeventfd exactly while the queue is ready, so
		 * a notify of a disabled queue exits here and is refused. */
		if (q)
			set_kick(m, dev->queue_sel, q->ready);
		break;
	case REG_QUEUE_NOTIFY: virtio_dev_notify(dev, v); break;
	case REG_INTERRUPT_ACK: atomic_fetch_and(&dev->isr, ~v); break;
	case REG_STATUS:
		/* The status is the low byte: 0x100 is a reset too. */
		virtio_dev_write_status(dev, (uint8_t)v);
		if ((uint8_t)v == 0)
			drop_kicks(m);
		break;
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
		set_addr_half(dev, q ? &q->desc : NULL, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
		set_addr_half(dev, q ? &q->avail : NULL, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		set_addr_half(dev, q ? &q->used : NULL, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	case REG_SHM_SEL: break;
	default:
		vnet_debug("vnet-vmm: %s: write 0x%x to read-only/reserved register 0x%llx", dev->name, v,
			   (unsigned long long)off);
		break;
	}
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_mmio *m = opaque;
	struct virtio_dev *dev = m->dev;
	memset(data, 0, len);
	pthread_mutex_lock(&dev->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_read(dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = reg_read(m, off);
		memcpy(data, &v, 4);
	} else if (!m->bad_width_logged) {
		m->bad_width_logged = true;
		vnet_warn("vnet-vmm: %s: %u-byte read of register 0x%llx ignored", dev->name, len,
			  (unsigned long long)off);
	}
	pthread_mutex_unlock(&dev->lock);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_mmio *m = opaque;
	struct virtio_dev *dev = m->dev;
	pthread_mutex_lock(&dev->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_write(dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v;
		memcpy(&v, data, 4);
		reg_write(m, off, v);
	} else if (!m->bad_width_logged) {
		m->bad_width_logged = true;
		vnet_warn("vnet-vmm: %s: %u-byte write to register 0x%llx ignored", dev->name, len,
			  (unsigned long long)off);
	}
	pthread_mutex_unlock(&dev->lock);
}

static const struct vmm_bus_ops mmio_ops = { mmio_read, mmio_write };

static void signal_config(struct virtio_dev *dev)
{
	struct virtio_mmio *m = dev->transport_priv;
	uint64_t one = 1;
	(void)!write(m->config_fd, &one, sizeof(one));
}

static const struct virtio_transport_ops mmio_transport = { .signal_config = signal_config };

int virtio_mmio_create(struct vmm *vmm, struct virtio_dev *dev)
{
	struct virtio_mmio *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = dev;
	m->config_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int irq = vmm_irq_alloc_isa(vmm);
	if (m->config_fd < 0 || irq < 0) {
		vnet_err("vnet-vmm: %s: no %s for virtio-mmio", dev->name, irq < 0 ? "free IRQ" : "eventfd");
		goto fail;
	}
	m->irq = (unsigned)irq;
	m->base = VMM_MMIO_BASE + VMM_MMIO_STRIDE * vmm->mmio_devices;
	if (vmm_bus_register(&vmm->mmio, m->base, MMIO_SIZE, &mmio_ops, m, dev->name) < 0)
		goto fail;
	vmm->mmio_devices++;
	if (vmm_irqfd(vmm, m->config_fd, m->irq, true) < 0)
		goto fail_bus;
	unsigned bound = 0;
	for (; bound < dev->num_queues; bound++)
		if (vmm_irqfd(vmm, dev->q[bound].call_fd, m->irq, true) < 0)
			goto fail_irqfd;
	dev->transport = &mmio_transport;
	dev->transport_priv = m;
	char hint[80];
	snprintf(hint, sizeof(hint), "virtio_mmio.device=0x%x@0x%llx:%u", MMIO_SIZE, (unsigned long long)m->base,
		 m->irq);
	vmm_cmdline_append(vmm, hint);
	vnet_info("vnet-vmm: %s: virtio-mmio at 0x%llx, IRQ %u", dev->name, (unsigned long long)m->base, m->irq);
	return 0;

fail_irqfd:
	while (bound--)
		vmm_irqfd(vmm, dev->q[bound].call_fd, m->irq, false);
	vmm_irqfd(vmm, m->config_fd, m->irq, false);
fail_bus:
	vmm_bus_unregister(&vmm->mmio, m->base, m);
fail:
	if (m->config_fd >= 0)
		close(m->config_fd);
	free(m);
	return -EIO;
}

void virtio_mmio_destroy(struct virtio_dev *dev)
{
	struct virtio_mmio *m = dev->transport_priv;
	if (!m)
		return;
	struct vmm *vmm = dev->vmm;
	drop_kicks(m);
	for (unsigned q = 0; q < dev->num_queues; q++)
		vmm_irqfd(vmm, dev->q[q].call_fd, m->irq, false);
	vmm_irqfd(vmm, m->config_fd, m->irq, false);
	vmm_bus_unregister(&vmm->mmio, m->base, m);
	close(m->config_fd);
	free(m);
	dev->transport_priv = NULL;
	dev->transport = NULL;
}
