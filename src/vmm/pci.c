/*
 * pci.c — the PCI host bridge and configuration mechanism #1; see pci.h.
 *
 * Thread-safety: one mutex per host guards the address latch and every
 * function's config space; it is held across device callbacks. BAR moves
 * take the MMIO bus's write lock from inside a port-I/O bus callback, which
 * is why BARs are MMIO only. The registry of hosts (one per struct vmm) has
 * its own lock, used only at creation and teardown.
 */
#include "vmm/pci.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/log.h"
#include "vmm/vmm.h"

#define PCI_CONF1_ADDRESS_PORT 0xcf8
#define PCI_CONF1_DATA_PORT    0xcfc
#define PCI_CONF1_ENABLE       0x80000000u
/* Bits a conf1 address keeps: enable, AMD extended register (27:24), bus,
 * device, function, dword register. */
#define PCI_CONF1_ADDRESS_MASK 0x8ffffffcu

/* The i440FX's identity: Linux's pci_sanity_check() wants a host bridge
 * class or an Intel/Compaq vendor on bus 0 before it trusts conf1. */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x1237
#define PCI_CLASS_HOST_BRIDGE 0x060000

/* Command bits a guest may set; the rest of the header is read-only except
 * cache line size, latency timer and interrupt line, which Linux writes. */
#define PCI_COMMAND_WRITABLE (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
			      PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

struct pci_host {
	struct vmm *vmm;
	struct pci_host *next;             /* registry */
	pthread_mutex_t lock;              /* latch + all config spaces */
	uint32_t config_address;           /* the 0xcf8 latch */
	uint64_t next_bar_addr;            /* BAR allocator in the PCI window */
	bool ports_registered;
	struct pci_device bridge;
	struct pci_device *slots[PCI_MAX_SLOTS];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pci_host *registry;

static struct pci_host *host_lookup_locked(struct vmm *vmm)
{
	for (struct pci_host *h = registry; h; h = h->next)
		if (h->vmm == vmm)
			return h;
	return NULL;
}

/* ---- BARs --------------------------------------------------------------- */

static uint64_t bar_programmed_address(const struct pci_device *pdev, unsigned bar)
{
	unsigned off = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint64_t addr = pci_get_u32(pdev->cfg, off) & ~(uint64_t)0xf & 0xffffffffu;
	if (pdev->bar_64bit[bar])
		addr |= (uint64_t)pci_get_u32(pdev->cfg, off + 4) << 32;
	return addr;
}

/* Where the BAR should decode now: its address if memory decoding is on and
 * the range is a usable one, else 0. */
static uint64_t bar_wanted_address(const struct pci_device *pdev, unsigned bar)
{
	if (!(pci_get_u16(pdev->cfg, PCI_COMMAND) & PCI_COMMAND_MEMORY))
		return 0;
	uint64_t addr = bar_programmed_address(pdev, bar);
	uint64_t size = pdev->bar_size[bar];
	if (addr == 0 || addr + size < addr)
		return 0;
	return addr;
}

/* Brings one BAR's bus range in line with its register and the Command
 * register, and tells the device. Host lock held (or no vCPU running). */
static void bar_update(struct pci_host *host, struct pci_device *pdev, unsigned bar)
{
	struct vmm_bus *mmio = &host->vmm->mmio;
	uint64_t old = pdev->bar_decoding[bar];
	uint64_t want = bar_wanted_address(pdev, bar);
	uint64_t now = want;
	int rc = 0;

	if (old == want)
		return;
	if (old && want) {
		rc = vmm_bus_move(mmio, old, pdev->opaque, want);
		if (rc < 0) {
			vmm_bus_unregister(mmio, old, pdev->opaque);
			now = 0;
		}
	} else if (want) {
		rc = vmm_bus_register(mmio, want, pdev->bar_size[bar], pdev->bar_ops[bar], pdev->opaque,
				      pdev->name);
		if (rc < 0)
			now = 0;
	} else {
		vmm_bus_unregister(mmio, old, pdev->opaque);
	}
	if (rc < 0 && !pdev->map_error_logged) {
		pdev->map_error_logged = true;
		vnet_warn("vnet-vmm: pci: %s: BAR %u at 0x%llx (0x%llx bytes) not mapped: %s", pdev->name,
			  bar, (unsigned long long)want, (unsigned long long)pdev->bar_size[bar],
			  strerror(-rc));
	}
	pdev->bar_decoding[bar] = now;
	if (old != now && pdev->ops && pdev->ops->bar_moved)
		pdev->ops->bar_moved(pdev, bar, old, now);
}

static void bars_update(struct pci_host *host, struct pci_device *pdev)
{
	for (unsigned bar = 0; bar < PCI_STD_NUM_BARS; bar++)
		if (pdev->bar_size[bar])
			bar_update(host, pdev, bar);
}

static void bars_unmap(struct pci_host *host, struct pci_device *pdev)
{
	uint16_t cmd = pci_get_u16(pdev->cfg, PCI_COMMAND);
	pci_set_u16(pdev->cfg, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	bars_update(host, pdev);
}

uint64_t pci_bar_address(const struct pci_device *pdev, unsigned bar)
{
	return bar < PCI_STD_NUM_BARS ? pdev->bar_decoding[bar] : 0;
}

/* ---- config space ------------------------------------------------------- */

static void config_read(struct pci_device *pdev, uint32_t reg, void *data, unsigned len)
{
	if (pdev->ops && pdev->ops->config_read)
		pdev->ops->config_read(pdev, reg, len);
	memcpy(data, pdev->cfg + reg, len);
}

static void config_write(struct pci_host *host, struct pci_device *pdev, uint32_t reg,
			 const void *data, unsigned len)
{
	const uint8_t *bytes = data;
	for (unsigned i = 0; i < len; i++) {
		uint8_t mask = pdev->wmask[reg + i];
		pdev->cfg[reg + i] = (uint8_t)((pdev->cfg[reg + i] & ~mask) | (bytes[i] & mask));
	}
	if (pci_overlaps(reg, len, PCI_COMMAND, 2) ||
	    pci_overlaps(reg, len, PCI_BASE_ADDRESS_0, 4 * PCI_STD_NUM_BARS))
		bars_update(host, pdev);
	if (pdev->ops && pdev->ops->config_write)
		pdev->ops->config_write(pdev, reg, len);
}

/* The function the latch selects, or NULL (reads all-ones). */
static struct pci_device *selected_function(struct pci_host *host, uint32_t *reg)
{
	uint32_t addr = host->config_address;
	if (!(addr & PCI_CONF1_ENABLE))
		return NULL;
	unsigned bus = (addr >> 16) & 0xff, dev = (addr >> 11) & 0x1f, fn = (addr >> 8) & 0x7;
	/* AMD's extended register bits address config space beyond 256 bytes,
	 * which conventional PCI functions do not have. */
	if (bus != 0 || fn != 0 || (addr & 0x0f000000))
		return NULL;
	*reg = addr & 0xfc;
	return host->slots[dev];
}

static void conf1_address_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_host *host = opaque;
	/* Only a dword access at 0xcf8 is the latch; 0xcf9 (reset control)
	 * and the other bytes are not ours. */
	if (off != 0 || len != 4) {
		memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&host->lock);
	pci_le_store(data, 4, host->config_address);
	pthread_mutex_unlock(&host->lock);
}

static void conf1_address_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *host = opaque;
	if (off != 0 || len != 4)
		return;
	pthread_mutex_lock(&host->lock);
	host->config_address = (uint32_t)pci_le_load(data, 4) & PCI_CONF1_ADDRESS_MASK;
	pthread_mutex_unlock(&host->lock);
}

static void conf1_data_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_host *host = opaque;
	uint32_t reg = 0;
	memset(data, 0xff, len);
	if (off + len > 4)
		return;
	pthread_mutex_lock(&host->lock);
	struct pci_device *pdev = selected_function(host, &reg);
	if (pdev)
		config_read(pdev, reg + (uint32_t)off, data, len);
	pthread_mutex_unlock(&host->lock);
}

static void conf1_data_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *host = opaque;
	uint32_t reg = 0;
	if (off + len > 4)
		return;
	pthread_mutex_lock(&host->lock);
	struct pci_device *pdev = selected_function(host, &reg);
	if (pdev)
		config_write(host, pdev, reg + (uint32_t)off, data, len);
	pthread_mutex_unlock(&host->lock);
}

static const struct vmm_bus_ops conf1_address_ops = {
	.read = conf1_address_read,
	.write = conf1_address_write,
};

static const struct vmm_bus_ops conf1_data_ops = {
	.read = conf1_data_read,
	.write = conf1_data_write,
};

/* ---- devices ------------------------------------------------------------ */

int pci_add_capability(struct pci_device *pdev, uint8_t id, unsigned len)
{
	unsigned off = pdev->cap_free ? pdev->cap_free : PCI_CFG_HEADER_END;
	if (len < 2 || off + len > PCI_CFG_SPACE_SIZE)
		return -ENOSPC;

	/* Append: the list stays in the order the device added them. */
	unsigned link = PCI_CAPABILITY_LIST;
	while (pdev->cfg[link])
		link = pdev->cfg[link] + 1u;
	pdev->cfg[link] = (uint8_t)off;

	memset(pdev->cfg + off, 0, len);
	pdev->cfg[off] = id;
	pdev->cfg[off + 1] = 0;
	pdev->cap_free = (off + len + 3u) & ~3u;
	uint16_t status = pci_get_u16(pdev->cfg, PCI_STATUS);
	pci_set_u16(pdev->cfg, PCI_STATUS, status | PCI_STATUS_CAP_LIST);
	return (int)off;
}

/* The header bits every function lets the guest write. */
static void header_wmask(struct pci_device *pdev)
{
	pci_set_u16(pdev->wmask, PCI_COMMAND, PCI_COMMAND_WRITABLE);
	pdev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	pdev->wmask[PCI_LATENCY_TIMER] = 0xff;
	pdev->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

static int check_bars(const struct pci_device *pdev)
{
	for (unsigned bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
		uint64_t size = pdev->bar_size[bar];
		if (!size)
			continue;
		if (size < 16 || (size & (size - 1)) || !pdev->bar_ops[bar])
			return -EINVAL;
		if (!pdev->bar_64bit[bar] && size > 0x80000000ull)
			return -EINVAL;
		if (pdev->bar_64bit[bar]) {
			if (bar + 1 >= PCI_STD_NUM_BARS || pdev->bar_size[bar + 1])
				return -EINVAL;
			bar++;
		}
	}
	return 0;
}

/* Assigns each BAR an address in the PCI window, naturally aligned, as
 * firmware would, and sets the writable bits so that sizing works. */
static int assign_bars(struct pci_host *host, struct pci_device *pdev)
{
	uint64_t next = host->next_bar_addr;
	for (unsigned bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
		uint64_t size = pdev->bar_size[bar];
		unsigned off = PCI_BASE_ADDRESS_0 + 4 * bar;
		if (!size) {
			pci_set_u32(pdev->cfg, off, 0);
			pci_set_u32(pdev->wmask, off, 0);
			continue;
		}
		uint64_t addr = (next + size - 1) & ~(size - 1);
		if (addr + size > VMM_PCI_MMIO_BASE + VMM_PCI_MMIO_SIZE)
			return -ENOSPC;
		next = addr + size;

		uint32_t flags = pdev->bar_64bit[bar] ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
		uint64_t addr_mask = ~(size - 1);
		pci_set_u32(pdev->cfg, off, (uint32_t)addr | flags);
		pci_set_u32(pdev->wmask, off, (uint32_t)addr_mask & ~0xfu);
		if (pdev->bar_64bit[bar]) {
			pci_set_u32(pdev->cfg, off + 4, (uint32_t)(addr >> 32));
			pci_set_u32(pdev->wmask, off + 4, (uint32_t)(addr_mask >> 32));
			bar++;
		}
	}
	host->next_bar_addr = next;
	return 0;
}

static void host_free(struct pci_host *host)
{
	if (host->ports_registered) {
		vmm_bus_unregister(&host->vmm->pio, PCI_CONF1_ADDRESS_PORT, host);
		vmm_bus_unregister(&host->vmm->pio, PCI_CONF1_DATA_PORT, host);
	}
	pthread_mutex_destroy(&host->lock);
	free(host);
}

static int host_create(struct vmm *vmm, struct pci_host **out)
{
	struct pci_host *host = calloc(1, sizeof(*host));
	if (!host)
		return -ENOMEM;
	host->vmm = vmm;
	host->next_bar_addr = VMM_PCI_MMIO_BASE;
	pthread_mutex_init(&host->lock, NULL);

	struct pci_device *br = &host->bridge;
	br->name = "host-bridge";
	pci_set_u16(br->cfg, PCI_VENDOR_ID, PCI_HOST_VENDOR);
	pci_set_u16(br->cfg, PCI_DEVICE_ID, PCI_HOST_DEVICE);
	pci_set_u32(br->cfg, PCI_REVISION_ID, PCI_CLASS_HOST_BRIDGE << 8 | 0x02);
	pci_set_u16(br->cfg, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	header_wmask(br);
	br->host = host;
	host->slots[0] = br;

	int rc = vmm_bus_register(&vmm->pio, PCI_CONF1_ADDRESS_PORT, 4, &conf1_address_ops, host,
				  "pci-conf1-address");
	if (rc == 0) {
		rc = vmm_bus_register(&vmm->pio, PCI_CONF1_DATA_PORT, 4, &conf1_data_ops, host,
				      "pci-conf1-data");
		if (rc < 0)
			vmm_bus_unregister(&vmm->pio, PCI_CONF1_ADDRESS_PORT, host);
	}
	if (rc < 0) {
		vnet_err("vnet-vmm: pci: cannot claim ports 0xcf8-0xcff: %s", strerror(-rc));
		host_free(host);
		return rc;
	}
	host->ports_registered = true;
	*out = host;
	return 0;
}

static int host_get(struct vmm *vmm, struct pci_host **out)
{
	int rc = 0;
	pthread_mutex_lock(&registry_lock);
	struct pci_host *host = host_lookup_locked(vmm);
	if (!host) {
		rc = host_create(vmm, &host);
		if (rc == 0) {
			host->next = registry;
			registry = host;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	*out = host;
	return rc;
}

int pci_init(struct vmm *vmm)
{
	struct pci_host *host;
	return host_get(vmm, &host);
}

int pci_register(struct vmm *vmm, struct pci_device *pdev)
{
	struct pci_host *host;
	int rc = check_bars(pdev);
	if (rc < 0) {
		vnet_err("vnet-vmm: pci: %s: bad BAR layout", pdev->name);
		return rc;
	}
	rc = host_get(vmm, &host);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&host->lock);
	unsigned slot = 1;
	while (slot < PCI_MAX_SLOTS && host->slots[slot])
		slot++;
	if (slot == PCI_MAX_SLOTS) {
		rc = -ENOSPC;
		vnet_err("vnet-vmm: pci: %s: bus 0 is full", pdev->name);
		goto out;
	}
	rc = assign_bars(host, pdev);
	if (rc < 0) {
		vnet_err("vnet-vmm: pci: %s: no room for its BARs in the PCI window", pdev->name);
		goto out;
	}
	header_wmask(pdev);
	/* No ROM, no INTx: both read as 0 and stay so. */
	pci_set_u32(pdev->cfg, PCI_ROM_ADDRESS, 0);
	pci_set_u32(pdev->wmask, PCI_ROM_ADDRESS, 0);
	pdev->cfg[PCI_INTERRUPT_PIN] = 0;
	pdev->wmask[PCI_INTERRUPT_PIN] = 0;
	pdev->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	pci_set_u16(pdev->cfg, PCI_COMMAND, PCI_COMMAND_MEMORY);
	memset(pdev->bar_decoding, 0, sizeof(pdev->bar_decoding));
	pdev->host = host;
	pdev->slot = slot;
	host->slots[slot] = pdev;
	bars_update(host, pdev);
out:
	pthread_mutex_unlock(&host->lock);
	return rc;
}

void pci_unregister(struct pci_device *pdev)
{
	struct pci_host *host = pdev->host;
	if (!host)
		return;
	pthread_mutex_lock(&host->lock);
	bars_unmap(host, pdev);
	host->slots[pdev->slot] = NULL;
	pdev->host = NULL;
	pthread_mutex_unlock(&host->lock);
}

void pci_destroy(struct vmm *vmm)
{
	pthread_mutex_lock(&registry_lock);
	struct pci_host **link = &registry;
	while (*link && (*link)->vmm != vmm)
		link = &(*link)->next;
	struct pci_host *host = *link;
	if (host)
		*link = host->next;
	pthread_mutex_unlock(&registry_lock);
	if (!host)
		return;

	pthread_mutex_lock(&host->lock);
	for (unsigned slot = 1; slot < PCI_MAX_SLOTS; slot++) {
		struct pci_device *pdev = host->slots[slot];
		if (!pdev)
			continue;
		bars_unmap(host, pdev);
		pdev->host = NULL;
		host->slots[slot] = NULL;
	}
	pthread_mutex_unlock(&host->lock);
	host_free(host);
}
