/*
 * virtio_pci.c — the virtio-pci modern transport (virtio 1.2 §4.1) with
 * MSI-X, on the host bridge of pci.c.
 *
 * BAR 0 (64-bit memory, 16 KiB) holds every structure:
 *   0x0000 common config      0x1000 ISR         0x2000 device config
 *   0x3000 notify (4 bytes a queue: notify_off_multiplier 4, queue_notify_off
 *          = queue index; each doorbell is a KVM ioeventfd of 2 bytes with
 *          datamatch = queue index, so a kick never exits to the VMM)
 *   0x3800 MSI-X table (one vector per queue + one for config changes)
 *   0x3c00 MSI-X PBA
 * plus the PCI configuration access capability (a window onto BAR 0 from
 * config space).
 *
 * Interrupts: each vector owns a GSI from creation. A vector is "live" when
 * MSI-X is enabled, the function is not masked, the entry is not masked and
 * its address is an x86 MSI address; a live vector is routed (KVM MSI route
 * with the entry's address/data). Every interrupt source is an eventfd — a
 * queue's call_fd, or the transport's config_fd for config changes — bound as
 * a KVM irqfd to the GSI of the vector it selected while that vector is live,
 * and detached otherwise, so a masked vector never fires; an eventfd written
 * meanwhile stays readable and KVM injects it when the irqfd is bound again
 * (the PBA's pending semantics without the VMM in the path; the PBA itself
 * reads as zero). Kicks are ioeventfds, registered while the queue is ready
 * and BAR 0 decodes, so a notify of a queue that is not ready exits here and
 * is refused (NEEDS_RESET) as on virtio-mmio.
 *
 * Thread-safety: BAR accesses come from vCPU threads and take dev->lock for
 * the whole access; PCI config callbacks come with the PCI lock held and take
 * dev->lock inside it (never the other way round). bind_queue_irq is called
 * with dev->lock held; signal_config from any thread, with or without it (it
 * only writes config_fd). Everything in struct virtio_pci except pdev.cfg
 * (PCI lock) and the constants set at creation is guarded by dev->lock.
 */
#include "vmm/virtio_transport.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_pci.h>

#include "vnet/log.h"
#include "vmm/pci.h"
#include "vmm/vmm.h"

#define VPCI_VENDOR          0x1af4
#define VPCI_DEVICE_BASE     0x1040
#define VPCI_CLASS_NET       0x020000
#define VPCI_CLASS_OTHER     0xff0000
#define VIRTIO_ID_NET        1

#define VPCI_BAR             0
#define VPCI_BAR_SIZE        0x4000u
#define VPCI_COMMON_OFF      0x0000u
#define VPCI_COMMON_LEN      VIRTIO_PCI_COMMON_Q_NDATA  /* through queue_device */
#define VPCI_ISR_OFF         0x1000u
#define VPCI_DEVICE_OFF      0x2000u
#define VPCI_DEVICE_MAX      0x1000u
#define VPCI_NOTIFY_OFF      0x3000u
#define VPCI_NOTIFY_MULT     4u
#define VPCI_MSIX_TABLE_OFF  0x3800u
#define VPCI_MSIX_PBA_OFF    0x3c00u
#define VPCI_MAX_VECTORS     (VIRTIO_DEV_MAX_QUEUES + 1)
/* interrupt sources: queues 0..num_queues-1, then the config interrupt */
#define VPCI_MAX_SOURCES     (VIRTIO_DEV_MAX_QUEUES + 1)

/* x86 MSI messages go to the LAPICs' window. */
#define MSI_ADDR_MASK        0xfff00000u
#define MSI_ADDR_BASE        0xfee00000u

/* once-only warnings */
enum {
	WARN_WIDTH = 1u << 0,
	WARN_QUEUE_LOCKED = 1u << 1,
	WARN_ROUTE = 1u << 2,
	WARN_IRQFD = 1u << 3,
	WARN_IOEVENTFD = 1u << 4,
	WARN_MSI_ADDR = 1u << 5,
	WARN_CFG_WINDOW = 1u << 6,
	WARN_MSIX_WIDTH = 1u << 7,
};

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;  /* the guest-visible table entry */
	int gsi;                                /* allocated at creation */
	bool routed;                            /* route committed with... */
	uint64_t routed_addr;                   /* ...this address */
	uint32_t routed_data;                   /* ...and this data */
};

struct virtio_pci {
	struct pci_device pdev;
	struct virtio_dev *dev;
	struct vmm *vmm;
	unsigned nvec;
	struct msix_vector vec[VPCI_MAX_VECTORS];
	unsigned msix_cap, cfg_window_cap;      /* config-space offsets */
	bool msix_enabled, msix_function_masked;
	uint16_t config_vector;
	int config_fd;                          /* eventfd: config-change interrupt */
	int bound_gsi[VPCI_MAX_SOURCES];        /* GSI each source's irqfd is on; -1 = none */
	uint64_t notify_base;                   /* GPA of BAR 0 while it decodes; 0 = none */
	uint64_t kick_addr[VIRTIO_DEV_MAX_QUEUES];  /* ioeventfd registered there; 0 = none */
	unsigned warned;
};

static void warn_once(struct virtio_pci *vp, unsigned what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn_once(struct virtio_pci *vp, unsigned what, const char *fmt, ...)
{
	if (vp->warned & what)
		return;
	vp->warned |= what;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vnet_warn("vnet-vmm: %s: virtio-pci: %s", vp->dev->name, msg);
}

static void drain(int fd)
{
	uint64_t junk;
	(void)!read(fd, &junk, sizeof(junk)); /* EAGAIN when nothing is pending */
}

/* ---- interrupts: MSI-X vectors and the eventfds bound to them ----------- */

static unsigned nsources(const struct virtio_pci *vp)
{
	return vp->dev->num_queues + 1;
}

static int source_fd(const struct virtio_pci *vp, unsigned s)
{
	return s < vp->dev->num_queues ? vp->dev->q[s].call_fd : vp->config_fd;
}

static uint16_t source_vector(const struct virtio_pci *vp, unsigned s)
{
	return s < vp->dev->num_queues ? vp->dev->q[s].msix_vector : vp->config_vector;
}

static uint64_t vector_address(const struct msix_vector *v)
{
	return (uint64_t)v->addr_hi << 32 | v->addr_lo;
}

static bool vector_unmasked(const struct virtio_pci *vp, unsigned v)
{
	return v < vp->nvec && vp->msix_enabled && !vp->msix_function_masked &&
	       !(vp->vec[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Unmasked and routed with the entry's current message: may fire. */
static bool vector_live(const struct virtio_pci *vp, unsigned v)
{
	if (!vector_unmasked(vp, v))
		return false;
	const struct msix_vector *mv = &vp->vec[v];
	return mv->routed && mv->routed_addr == vector_address(mv) && mv->routed_data == mv->data;
}

/* Binds source s's eventfd to the GSI of its vector when that vector is
 * live, else detaches it. */
static int bind_source(struct virtio_pci *vp, unsigned s)
{
	uint16_t v = source_vector(vp, s);
	int want = vector_live(vp, v) ? vp->vec[v].gsi : -1;
	int fd = source_fd(vp, s);
	int rc = 0;

	if (want == vp->bound_gsi[s])
		return 0;
	if (vp->bound_gsi[s] >= 0) {
		vmm_irqfd(vp->vmm, fd, (unsigned)vp->bound_gsi[s], false);
		vp->bound_gsi[s] = -1;
	}
	if (want >= 0) {
		rc = vmm_irqfd(vp->vmm, fd, (unsigned)want, true);
		if (rc < 0)
			warn_once(vp, WARN_IRQFD, "%s%u: irqfd on GSI %d failed: its interrupts are lost",
				  s < vp->dev->num_queues ? "queue " : "config vector ", v, want);
		else
			vp->bound_gsi[s] = want;
	}
	return rc;
}

static void bind_all_sources(struct virtio_pci *vp)
{
	for (unsigned s = 0; s < nsources(vp); s++)
		bind_source(vp, s);
}

/* Re-evaluates vector v after a change to its entry or to the MSI-X
 * control bits: routes it when it is unmasked and its message is not the
 * routed one, then re-binds the sources. */
static void vector_update(struct virtio_pci *vp, unsigned v)
{
	struct msix_vector *mv = &vp->vec[v];
	if (vector_unmasked(vp, v) && !vector_live(vp, v)) {
		uint64_t addr = vector_address(mv);
		int rc = -EINVAL;
		if ((mv->addr_lo & MSI_ADDR_MASK) != MSI_ADDR_BASE)
			warn_once(vp, WARN_MSI_ADDR, "vector %u unmasked with address 0x%llx, not an MSI address: ignored",
				  v, (unsigned long long)addr);
		else if ((rc = vmm_irq_route_msi(vp->vmm, (unsigned)mv->gsi, addr, mv->data)) < 0)
			warn_once(vp, WARN_ROUTE, "vector %u: MSI route on GSI %d: %s", v, mv->gsi,
				  strerror(-rc));
		mv->routed = rc == 0;
		mv->routed_addr = addr;
		mv->routed_data = mv->data;
		/* No route left behind for a message that was refused (a no-op
		 * when there is none). */
		if (rc < 0)
			vmm_irq_unroute_msi(vp->vmm, (unsigned)mv->gsi);
	}
	bind_all_sources(vp);
}

static void vectors_update_all(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvec; v++)
		vector_update(vp, v);
}

/* A vector number as the driver may select it; NO_VECTOR reports a refusal. */
static uint16_t valid_vector(const struct virtio_pci *vp, uint32_t v)
{
	return v < vp->nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static bool msix_access_ok(struct virtio_pci *vp, uint32_t off, unsigned len)
{
	if ((len == 4 || len == 8) && off % len == 0)
		return true;
	warn_once(vp, WARN_MSIX_WIDTH, "MSI-X table: %u-byte access at 0x%x ignored", len, off);
	return false;
}

static uint64_t msix_table_read(struct virtio_pci *vp, uint32_t off, unsigned len)
{
	if (!msix_access_ok(vp, off, len))
		return 0;
	const struct msix_vector *mv = &vp->vec[off / PCI_MSIX_ENTRY_SIZE];
	uint32_t words[4] = {mv->addr_lo, mv->addr_hi, mv->data, mv->ctrl};
	unsigned w = off % PCI_MSIX_ENTRY_SIZE / 4;
	return len == 8 ? words[w] | (uint64_t)words[w + 1] << 32 : words[w];
}

static void msix_table_write_word(struct msix_vector *mv, unsigned field, uint32_t value)
{
	switch (field) {
	case PCI_MSIX_ENTRY_LOWER_ADDR: mv->addr_lo = value; break;
	case PCI_MSIX_ENTRY_UPPER_ADDR: mv->addr_hi = value; break;
	case PCI_MSIX_ENTRY_DATA: mv->data = value; break;
	default: mv->ctrl = value & PCI_MSIX_ENTRY_CTRL_MASKBIT; break; /* the rest is reserved */
	}
}

static void msix_table_write(struct virtio_pci *vp, uint32_t off, unsigned len, uint64_t value)
{
	if (!msix_access_ok(vp, off, len))
		return;
	unsigned v = off / PCI_MSIX_ENTRY_SIZE, field = off % PCI_MSIX_ENTRY_SIZE;
	msix_table_write_word(&vp->vec[v], field, (uint32_t)value);
	if (len == 8)
		msix_table_write_word(&vp->vec[v], field + 4, (uint32_t)(value >> 32));
	vector_update(vp, v);
}

/* ---- notifications: one ioeventfd a ready queue ------------------------- */

static uint64_t queue_notify_addr(const struct virtio_pci *vp, unsigned q)
{
	return vp->notify_base + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * q;
}

/* Registers queue q's doorbell when the queue is ready and BAR 0 decodes,
 * unregisters it otherwise (or at its old address after a BAR move). */
static void kick_update(struct virtio_pci *vp, unsigned q)
{
	struct virtio_queue *vq = &vp->dev->q[q];
	uint64_t want = vp->notify_base && vq->ready ? queue_notify_addr(vp, q) : 0;
	if (want == vp->kick_addr[q])
		return;
	if (vp->kick_addr[q])
		vmm_ioeventfd(vp->vmm, vq->kick_fd, vp->kick_addr[q], 2, false, true, q, false);
	vp->kick_addr[q] = 0;
	if (want) {
		/* Linux writes the queue index as 16 bits; any other write
		 * exits and reaches virtio_dev_notify(). */
		if (vmm_ioeventfd(vp->vmm, vq->kick_fd, want, 2, false, true, q, true) == 0)
			vp->kick_addr[q] = want;
		else
			warn_once(vp, WARN_IOEVENTFD, "queue %u: no ioeventfd, its kicks exit to the VMM", q);
	}
}

static void kicks_update(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->dev->num_queues; q++)
		kick_update(vp, q);
}

/* ---- common configuration ----------------------------------------------- */

/* Each field at its natural width; 64-bit fields also as 32-bit halves. */
static bool common_width_ok(uint32_t off, unsigned len)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_GFSELECT:
	case VIRTIO_PCI_COMMON_GF:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return len == 4;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return len == 4 || len == 8;
	case VIRTIO_PCI_COMMON_MSIX:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_Q_SELECT:
	case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX:
	case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return len == 2;
	case VIRTIO_PCI_COMMON_STATUS:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return len == 1;
	default:
		return false;
	}
}

/* The ring-address field holding common-config offset `off`, or NULL. */
static uint64_t *queue_address_field(struct virtio_queue *vq, uint32_t off)
{
	switch (off & ~4u) {
	case VIRTIO_PCI_COMMON_Q_DESCLO: return &vq->desc;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return &vq->avail;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return &vq->used;
	default: return NULL;
	}
}

static uint64_t common_read(struct virtio_pci *vp, uint32_t off, unsigned len)
{
	struct virtio_dev *dev = vp->dev;
	struct virtio_queue *vq = virtio_dev_selected_queue(dev);

	if (!common_width_ok(off, len)) {
		warn_once(vp, WARN_WIDTH, "common config: %u-byte read at 0x%x ignored", len, off);
		return 0;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return dev->device_features_sel;
	case VIRTIO_PCI_COMMON_DF: return virtio_dev_read_device_features(dev);
	case VIRTIO_PCI_COMMON_GFSELECT: return dev->driver_features_sel;
	case VIRTIO_PCI_COMMON_GF:
		return dev->driver_features_sel < 2 ?
			       (uint32_t)(dev->driver_features >> (32 * dev->driver_features_sel)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return vp->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ: return dev->num_queues;
	case VIRTIO_PCI_COMMON_STATUS: return virtio_dev_read_status(dev);
	case VIRTIO_PCI_COMMON_CFGGENERATION: return (uint8_t)dev->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT: return dev->queue_sel;
	}
	/* queue registers: a queue that does not exist has size 0 (unavailable) */
	if (!vq)
		return off == VIRTIO_PCI_COMMON_Q_MSIX ? VIRTIO_MSI_NO_VECTOR : 0;
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE: return vq->size;
	case VIRTIO_PCI_COMMON_Q_MSIX: return vq->msix_vector;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return vq->ready;
	case VIRTIO_PCI_COMMON_Q_NOFF: return dev->queue_sel;
	}
	uint64_t *field = queue_address_field(vq, off);
	if (!field)
		return 0;
	return len == 8 ? *field : (uint32_t)(*field >> (off & 4 ? 32 : 0));
}

/* After a reset: every event unmapped (virtio 1.2, "MSI-X Vector
 * Configuration": "all ... events are unmapped upon reset"), no kicks
 * registered, interrupts raised before the reset forgotten. */
static void after_reset(struct virtio_pci *vp)
{
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < vp->dev->num_queues; q++)
		vp->dev->q[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	bind_all_sources(vp);
	kicks_update(vp);
	for (unsigned s = 0; s < nsources(vp); s++)
		drain(source_fd(vp, s));
}

static void write_queue_address(struct virtio_pci *vp, uint32_t off, unsigned len, uint64_t value)
{
	struct virtio_dev *dev = vp->dev;
	struct virtio_queue *vq = virtio_dev_selected_queue(dev);
	if (!vq) {
		virtio_dev_needs_reset(dev, "ring address for queue %u, which does not exist", dev->queue_sel);
		return;
	}
	if (!virtio_dev_queue_writable(dev)) {
		warn_once(vp, WARN_QUEUE_LOCKED, "queue %u: ring address written while enabled, ignored",
			  dev->queue_sel);
		return;
	}
	uint64_t *field = queue_address_field(vq, off);
	if (len == 8)
		*field = value;
	else if (off & 4)
		*field = (*field & 0xffffffffull) | value << 32;
	else
		*field = (*field & ~0xffffffffull) | (uint32_t)value;
}

static void common_write(struct virtio_pci *vp, uint32_t off, unsigned len, uint64_t value)
{
	struct virtio_dev *dev = vp->dev;
	struct virtio_queue *vq = virtio_dev_selected_queue(dev);

	if (!common_width_ok(off, len)) {
		warn_once(vp, WARN_WIDTH, "common config: %u-byte write at 0x%x ignored", len, off);
		return;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		dev->device_features_sel = (uint32_t)value;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		dev->driver_features_sel = (uint32_t)value;
		break;
	case VIRTIO_PCI_COMMON_GF:
		virtio_dev_write_driver_features(dev, (uint32_t)value);
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		vp->config_vector = valid_vector(vp, (uint32_t)value);
		bind_source(vp, dev->num_queues);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		virtio_dev_write_status(dev, (uint8_t)value);
		if ((uint8_t)value == 0)
			after_reset(vp);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		dev->queue_sel = (uint16_t)value;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		virtio_dev_write_queue_size(dev, (uint16_t)value);
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		/* Vectors may change at any time (Linux unmaps them at teardown). */
		if (vq) {
			vq->msix_vector = valid_vector(vp, (uint32_t)value);
			bind_source(vp, dev->queue_sel);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		virtio_dev_write_queue_ready(dev, value != 0);
		if (vq)
			kick_update(vp, dev->queue_sel);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO: case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO: case VIRTIO_PCI_COMMON_Q_USEDHI:
		write_queue_address(vp, off, len, value);
		break;
	default:
		break; /* device_feature, num_queues, config_generation, queue_notify_off: read-only */
	}
}

/* ---- BAR 0 -------------------------------------------------------------- */

static bool in_region(uint64_t off, unsigned len, uint32_t base, uint32_t size)
{
	return off >= base && off + len <= (uint64_t)base + size;
}

static uint32_t notify_len(const struct virtio_pci *vp)
{
	return VPCI_NOTIFY_MULT * vp->dev->num_queues;
}

static void bar_read_locked(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *dev = vp->dev;
	uint64_t value = 0;

	memset(data, 0, len);
	if (in_region(off, len, VPCI_COMMON_OFF, VPCI_COMMON_LEN)) {
		value = common_read(vp, (uint32_t)(off - VPCI_COMMON_OFF), len);
	} else if (off == VPCI_ISR_OFF) {
		/* Read-to-clear (virtio 1.2, "ISR status capability"); only byte 0 is the ISR. */
		value = atomic_exchange(&dev->isr, 0) & 0xff;
	} else if (in_region(off, len, VPCI_DEVICE_OFF, dev->config_size)) {
		virtio_dev_config_read(dev, (uint32_t)(off - VPCI_DEVICE_OFF), data, len);
		return;
	} else if (in_region(off, len, VPCI_MSIX_TABLE_OFF, vp->nvec * PCI_MSIX_ENTRY_SIZE)) {
		value = msix_table_read(vp, (uint32_t)(off - VPCI_MSIX_TABLE_OFF), len);
	}
	/* notify area, PBA (nothing is ever pending from the VMM's view: see
	 * the top of the file) and gaps read as zero */
	pci_le_store(data, len, value);
}

static void bar_write_locked(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *dev = vp->dev;
	uint64_t value = pci_le_load(data, len);

	if (in_region(off, len, VPCI_COMMON_OFF, VPCI_COMMON_LEN)) {
		common_write(vp, (uint32_t)(off - VPCI_COMMON_OFF), len, value);
	} else if (in_region(off, len, VPCI_DEVICE_OFF, dev->config_size)) {
		virtio_dev_config_write(dev, (uint32_t)(off - VPCI_DEVICE_OFF), data, len);
	} else if (in_region(off, len, VPCI_NOTIFY_OFF, notify_len(vp))) {
		/* The ioeventfd did not take it (queue not ready, or another
		 * width or value): the doorbell's address names the queue. */
		uint32_t rel = (uint32_t)(off - VPCI_NOTIFY_OFF);
		if (rel % VPCI_NOTIFY_MULT == 0)
			virtio_dev_notify(dev, rel / VPCI_NOTIFY_MULT);
	} else if (in_region(off, len, VPCI_MSIX_TABLE_OFF, vp->nvec * PCI_MSIX_ENTRY_SIZE)) {
		msix_table_write(vp, (uint32_t)(off - VPCI_MSIX_TABLE_OFF), len, value);
	}
	/* ISR, PBA and the gaps are read-only */
}

static void vpci_bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;
	pthread_mutex_lock(&vp->dev->lock);
	bar_read_locked(vp, off, data, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

static void vpci_bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;
	pthread_mutex_lock(&vp->dev->lock);
	bar_write_locked(vp, off, data, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

static const struct vmm_bus_ops vpci_bar_ops = {
	.read = vpci_bar_read,
	.write = vpci_bar_write,
};

/* ---- PCI callbacks (PCI lock held) -------------------------------------- */

static void vpci_bar_moved(struct pci_device *pdev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *vp = pdev->opaque;
	(void)old_addr;
	if (bar != VPCI_BAR)
		return;
	pthread_mutex_lock(&vp->dev->lock);
	vp->notify_base = new_addr;
	kicks_update(vp);
	pthread_mutex_unlock(&vp->dev->lock);
}

/* The PCI configuration access capability: cap.bar, cap.offset and
 * cap.length select a window onto BAR 0; pci_cfg_data is its data. */
static bool cfg_window(struct virtio_pci *vp, uint32_t *off, unsigned *len)
{
	const uint8_t *cap = vp->pdev.cfg + vp->cfg_window_cap;
	unsigned bar = cap[VIRTIO_PCI_CAP_BAR];
	uint32_t offset = pci_get_u32(cap, VIRTIO_PCI_CAP_OFFSET);
	uint32_t length = pci_get_u32(cap, VIRTIO_PCI_CAP_LENGTH);
	if (bar != VPCI_BAR || (length != 1 && length != 2 && length != 4) || offset % length ||
	    offset >= VPCI_BAR_SIZE) {
		pthread_mutex_lock(&vp->dev->lock);
		warn_once(vp, WARN_CFG_WINDOW, "PCI config window: bar %u offset 0x%x length %u refused",
			  bar, offset, length);
		pthread_mutex_unlock(&vp->dev->lock);
		return false;
	}
	*off = offset;
	*len = length;
	return true;
}

static unsigned cfg_window_data(const struct virtio_pci *vp)
{
	return vp->cfg_window_cap + (unsigned)offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
}

static void vpci_config_read(struct pci_device *pdev, uint32_t off, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	unsigned data = cfg_window_data(vp);
	uint32_t win_off;
	unsigned win_len;

	if (!pci_overlaps(off, len, data, 4))
		return;
	memset(pdev->cfg + data, 0, 4);
	if (cfg_window(vp, &win_off, &win_len))
		vpci_bar_read(vp, win_off, pdev->cfg + data, win_len);
}

static void vpci_config_write(struct pci_device *pdev, uint32_t off, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	unsigned ctrl = vp->msix_cap + PCI_MSIX_FLAGS, data = cfg_window_data(vp);
	uint32_t win_off;
	unsigned win_len;

	if (pci_overlaps(off, len, ctrl, 2)) {
		uint16_t flags = pci_get_u16(pdev->cfg, ctrl);
		pthread_mutex_lock(&vp->dev->lock);
		vp->msix_enabled = flags & PCI_MSIX_FLAGS_ENABLE;
		vp->msix_function_masked = flags & PCI_MSIX_FLAGS_MASKALL;
		vectors_update_all(vp);
		pthread_mutex_unlock(&vp->dev->lock);
	}
	if (pci_overlaps(off, len, data, 4) && cfg_window(vp, &win_off, &win_len))
		vpci_bar_write(vp, win_off, pdev->cfg + data, win_len);
}

static const struct pci_device_ops vpci_pci_ops = {
	.config_write = vpci_config_write,
	.config_read = vpci_config_read,
	.bar_moved = vpci_bar_moved,
};

/* ---- transport ops ------------------------------------------------------ */

/* Any thread, with or without dev->lock: touches nothing but the eventfd. */
static void vpci_signal_config(struct virtio_dev *dev)
{
	struct virtio_pci *vp = dev->transport_priv;
	uint64_t one = 1;
	if (!vp)
		return;
	atomic_fetch_or(&dev->isr, VIRTIO_ISR_CONFIG);
	(void)!write(vp->config_fd, &one, sizeof(one)); /* EAGAIN: one is pending anyway */
}

/* dev->lock held */
static int vpci_bind_queue_irq(struct virtio_dev *dev, unsigned q)
{
	struct virtio_pci *vp = dev->transport_priv;
	if (q >= dev->num_queues)
		return -EINVAL;
	return bind_source(vp, q);
}

static const struct virtio_transport_ops vpci_transport_ops = {
	.signal_config = vpci_signal_config,
	.bind_queue_irq = vpci_bind_queue_irq,
};

/* ---- creation ----------------------------------------------------------- */

static int add_virtio_cap(struct pci_device *pdev, uint8_t cfg_type, unsigned cap_len,
			  uint32_t offset, uint32_t length)
{
	int off = pci_add_capability(pdev, PCI_CAP_ID_VNDR, cap_len);
	if (off < 0)
		return off;
	uint8_t *cap = pdev->cfg + off;
	cap[VIRTIO_PCI_CAP_LEN] = (uint8_t)cap_len;
	cap[VIRTIO_PCI_CAP_CFG_TYPE] = cfg_type;
	cap[VIRTIO_PCI_CAP_BAR] = VPCI_BAR;
	pci_set_u32(cap, VIRTIO_PCI_CAP_OFFSET, offset);
	pci_set_u32(cap, VIRTIO_PCI_CAP_LENGTH, length);
	return off;
}

static int build_config_space(struct virtio_pci *vp)
{
	struct virtio_dev *dev = vp->dev;
	struct pci_device *pdev = &vp->pdev;
	uint32_t class = dev->device_id == VIRTIO_ID_NET ? VPCI_CLASS_NET : VPCI_CLASS_OTHER;
	int off;

	pci_set_u16(pdev->cfg, PCI_VENDOR_ID, VPCI_VENDOR);
	pci_set_u16(pdev->cfg, PCI_DEVICE_ID, (uint16_t)(VPCI_DEVICE_BASE + dev->device_id));
	pci_set_u32(pdev->cfg, PCI_REVISION_ID, class << 8 | 1); /* revision 1: modern only */
	pci_set_u16(pdev->cfg, PCI_SUBSYSTEM_VENDOR_ID, VPCI_VENDOR);
	pci_set_u16(pdev->cfg, PCI_SUBSYSTEM_ID, (uint16_t)dev->device_id);

	off = add_virtio_cap(pdev, VIRTIO_PCI_CAP_COMMON_CFG, sizeof(struct virtio_pci_cap),
			     VPCI_COMMON_OFF, VPCI_COMMON_LEN);
	if (off < 0)
		return off;
	off = add_virtio_cap(pdev, VIRTIO_PCI_CAP_NOTIFY_CFG, sizeof(struct virtio_pci_notify_cap),
			     VPCI_NOTIFY_OFF, notify_len(vp));
	if (off < 0)
		return off;
	pci_set_u32(pdev->cfg, (unsigned)off + offsetof(struct virtio_pci_notify_cap, notify_off_multiplier),
		    VPCI_NOTIFY_MULT);
	off = add_virtio_cap(pdev, VIRTIO_PCI_CAP_ISR_CFG, sizeof(struct virtio_pci_cap), VPCI_ISR_OFF, 1);
	if (off < 0)
		return off;
	if (dev->config_size) {
		off = add_virtio_cap(pdev, VIRTIO_PCI_CAP_DEVICE_CFG, sizeof(struct virtio_pci_cap),
				     VPCI_DEVICE_OFF, dev->config_size);
		if (off < 0)
			return off;
	}
	off = add_virtio_cap(pdev, VIRTIO_PCI_CAP_PCI_CFG, sizeof(struct virtio_pci_cfg_cap), 0, 0);
	if (off < 0)
		return off;
	vp->cfg_window_cap = (unsigned)off;
	/* cap.bar, cap.offset, cap.length and pci_cfg_data are the driver's */
	pdev->wmask[off + VIRTIO_PCI_CAP_BAR] = 0xff;
	pci_set_u32(pdev->wmask, (unsigned)off + VIRTIO_PCI_CAP_OFFSET, 0xffffffff);
	pci_set_u32(pdev->wmask, (unsigned)off + VIRTIO_PCI_CAP_LENGTH, 0xffffffff);
	pci_set_u32(pdev->wmask, cfg_window_data(vp), 0xffffffff);

	off = pci_add_capability(pdev, PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
	if (off < 0)
		return off;
	vp->msix_cap = (unsigned)off;
	pci_set_u16(pdev->cfg, (unsigned)off + PCI_MSIX_FLAGS, (uint16_t)(vp->nvec - 1));
	pci_set_u16(pdev->wmask, (unsigned)off + PCI_MSIX_FLAGS,
		    PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	pci_set_u32(pdev->cfg, (unsigned)off + PCI_MSIX_TABLE, VPCI_MSIX_TABLE_OFF | VPCI_BAR);
	pci_set_u32(pdev->cfg, (unsigned)off + PCI_MSIX_PBA, VPCI_MSIX_PBA_OFF | VPCI_BAR);
	return 0;
}

int virtio_pci_create(struct vmm *vmm, struct virtio_dev *dev)
{
	if (dev->num_queues == 0 || dev->num_queues > VIRTIO_DEV_MAX_QUEUES ||
	    dev->config_size > VPCI_DEVICE_MAX) {
		vnet_err("vnet-vmm: %s: virtio-pci: %u queues / %u config bytes not supported", dev->name,
			 dev->num_queues, dev->config_size);
		return -EINVAL;
	}
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->dev = dev;
	vp->vmm = vmm;
	vp->nvec = dev->num_queues + 1;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned s = 0; s < VPCI_MAX_SOURCES; s++)
		vp->bound_gsi[s] = -1;
	for (unsigned q = 0; q < dev->num_queues; q++)
		dev->q[q].msix_vector = VIRTIO_MSI_NO_VECTOR;

	int rc = -ENOSPC;
	vp->config_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vp->config_fd < 0) {
		rc = -errno;
		vnet_err("vnet-vmm: %s: virtio-pci: eventfd: %s", dev->name, strerror(errno));
		free(vp);
		return rc;
	}
	for (unsigned v = 0; v < vp->nvec; v++) {
		vp->vec[v].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT; /* entries start masked */
		vp->vec[v].gsi = vmm_irq_alloc_msi(vmm);
		if (vp->vec[v].gsi < 0) {
			vnet_err("vnet-vmm: %s: virtio-pci: no free MSI GSI for vector %u", dev->name, v);
			goto fail;
		}
	}
	rc = build_config_space(vp);
	if (rc < 0) {
		vnet_err("vnet-vmm: %s: virtio-pci: capabilities do not fit in config space", dev->name);
		goto fail;
	}
	vp->pdev.name = dev->name;
	vp->pdev.bar_size[VPCI_BAR] = VPCI_BAR_SIZE;
	vp->pdev.bar_64bit[VPCI_BAR] = true;
	vp->pdev.bar_ops[VPCI_BAR] = &vpci_bar_ops;
	vp->pdev.opaque = vp;
	vp->pdev.ops = &vpci_pci_ops;

	dev->transport = &vpci_transport_ops;
	dev->transport_priv = vp;
	rc = pci_register(vmm, &vp->pdev);
	if (rc < 0) {
		dev->transport = NULL;
		dev->transport_priv = NULL;
		goto fail;
	}
	vnet_info("vnet-vmm: %s: virtio-pci at 00:%02x.0, BAR 0 at 0x%llx, %u MSI-X vectors", dev->name,
		  vp->pdev.slot, (unsigned long long)pci_bar_address(&vp->pdev, VPCI_BAR), vp->nvec);
	return 0;

fail:
	close(vp->config_fd);
	free(vp);
	return rc;
}

void virtio_pci_destroy(struct virtio_dev *dev)
{
	struct virtio_pci *vp = dev->transport_priv;
	if (!vp || dev->transport != &vpci_transport_ops)
		return;
	pci_unregister(&vp->pdev); /* BAR 0 stops decoding: the kicks go */

	pthread_mutex_lock(&dev->lock);
	vp->notify_base = 0;
	kicks_update(vp);
	vp->msix_enabled = false; /* no vector live: every irqfd goes */
	bind_all_sources(vp);
	for (unsigned v = 0; v < vp->nvec; v++)
		if (vp->vec[v].routed)
			vmm_irq_unroute_msi(vp->vmm, (unsigned)vp->vec[v].gsi);
	dev->transport = NULL;
	dev->transport_priv = NULL;
	pthread_mutex_unlock(&dev->lock);
	close(vp->config_fd);
	free(vp);
}
