/*
 * pci.h — vnet-vmm's PCI host bridge: bus 0 behind configuration mechanism
 * #1 (ports 0xcf8 address / 0xcfc..0xcff data), an i440FX-like host bridge
 * at 00:00.0 (so Linux's pci_sanity_check accepts it with `pci=conf1` and no
 * ACPI), and one function per slot for the VMM's devices. Memory BARs are
 * assigned at registration from the VMM_PCI_MMIO_BASE window, naturally
 * aligned, with Memory Space Enable on (as firmware would leave them); the
 * guest may size them (all-ones write) and move them, and the BAR's MMIO
 * range follows: pci.c keeps the bus range in step with the BAR and the
 * Command register and tells the device, which re-registers whatever it
 * bound to the old address (ioeventfds).
 *
 * A device fills its identity (vendor, device, class...) and capabilities in
 * cfg[] before pci_register(); the guest may then write only the bits set in
 * wmask[] (pci.c fills the standard header's), and the device hears of each
 * write through ops->config_write.
 *
 * No I/O BARs: a BAR move happens inside a config-space access, i.e. inside
 * a port-I/O bus callback, so only MMIO ranges can be moved from there.
 * No INTx: devices use MSI-X (Interrupt Pin 0).
 *
 * The PCI state is kept per struct vmm in a small registry inside pci.c,
 * created by the first pci_init()/pci_register() and torn down by
 * pci_destroy().
 *
 * Thread-safety: registration and pci_destroy() run on the main thread
 * while no vCPU runs. Configuration accesses come from vCPU threads and are
 * serialised by one lock per host; device callbacks (ops) run with that lock
 * held and may take the device's own lock (order: PCI lock, then device
 * lock — a device must never call into pci.c holding its own lock).
 */
#ifndef VNET_VMM_PCI_H
#define VNET_VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/pci_regs.h>

#include "vmm/bus.h"

struct vmm;

#define PCI_MAX_SLOTS 32
/* End of the type-0 header: capabilities live in [0x40, 0x100). */
#define PCI_CFG_HEADER_END 0x40

struct pci_device;
struct pci_host;

struct pci_device_ops {
	/* The guest wrote [off, off+len) (already stored in cfg[] through
	 * wmask). Called for every write, header included. May be NULL. */
	void (*config_write)(struct pci_device *pdev, uint32_t off, unsigned len);
	/* Before a guest read of [off, off+len): lets the device refresh cfg[]
	 * (e.g. a window register). May be NULL. */
	void (*config_read)(struct pci_device *pdev, uint32_t off, unsigned len);
	/* BAR `bar` stopped decoding at old_addr (0: it did not decode) and now
	 * decodes at new_addr (0: it does not any more). May be NULL. */
	void (*bar_moved)(struct pci_device *pdev, unsigned bar, uint64_t old_addr,
			  uint64_t new_addr);
};

struct pci_device {
	/* --- filled by the device before pci_register() --- */
	const char *name;                 /* "net0", for logs and bus ranges */
	uint8_t cfg[PCI_CFG_SPACE_SIZE];  /* identity, class, capabilities */
	uint8_t wmask[PCI_CFG_SPACE_SIZE];/* device-owned writable bits (capabilities) */
	uint64_t bar_size[PCI_STD_NUM_BARS];  /* 0 = unused; memory BARs, power of two >= 16 */
	bool bar_64bit[PCI_STD_NUM_BARS];     /* takes the next BAR slot as its high half */
	const struct vmm_bus_ops *bar_ops[PCI_STD_NUM_BARS];
	void *opaque;                     /* passed to bar_ops */
	const struct pci_device_ops *ops;

	/* --- owned by pci.c --- */
	struct pci_host *host;
	unsigned slot;
	uint64_t bar_decoding[PCI_STD_NUM_BARS];   /* address the bus range sits at; 0 = none */
	bool map_error_logged;               /* a BAR could not be mapped: logged once */
	unsigned cap_free;                   /* next free capability offset; 0 = 0x40 */
};

/* Creates the host bridge for `vmm` (idempotent). 0 or -errno. */
int pci_init(struct vmm *vmm);

/*
 * Adds a capability of `len` bytes with ID `id` at the next free dword in
 * cfg[0x40..0xff] and links it at the end of the list (sets CAP_LIST).
 * Returns its offset (the device fills the body), or -ENOSPC.
 */
int pci_add_capability(struct pci_device *pdev, uint8_t id, unsigned len);

/*
 * Puts `pdev` in the next free slot of bus 0 (creating the host bridge if
 * needed), assigns its BARs and maps them (Memory Space Enable set), calling
 * ops->bar_moved(pdev, bar, 0, addr) for each. 0 or -errno (message logged).
 */
int pci_register(struct vmm *vmm, struct pci_device *pdev);

/* Unmaps the device's BARs (bar_moved(..., addr, 0)) and frees its slot. */
void pci_unregister(struct pci_device *pdev);

/* Unmaps every device and the config ports, frees the host. */
void pci_destroy(struct vmm *vmm);

/* Guest-physical address BAR `bar` decodes at now, or 0. Stable only inside
 * ops callbacks (PCI lock held) or while no vCPU runs. */
uint64_t pci_bar_address(const struct pci_device *pdev, unsigned bar);

/* True when [a, a+alen) and [b, b+blen) share a byte (config registers). */
static inline bool pci_overlaps(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
	return a < b + blen && b < a + alen;
}

/* Little-endian bytes <-> value, for bus accesses of 1..8 bytes. */
static inline void pci_le_store(void *data, unsigned len, uint64_t value)
{
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

static inline uint64_t pci_le_load(const void *data, unsigned len)
{
	const uint8_t *p = data;
	uint64_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Little-endian accessors for cfg[]/wmask[] building. */
static inline void pci_set_u16(uint8_t *cfg, unsigned off, uint16_t v)
{
	cfg[off] = (uint8_t)v;
	cfg[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_set_u32(uint8_t *cfg, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t pci_get_u16(const uint8_t *cfg, unsigned off)
{
	return (uint16_t)(cfg[off] | (cfg[off + 1] << 8));
}

static inline uint32_t pci_get_u32(const uint8_t *cfg, unsigned off)
{
	return (uint32_t)cfg[off] | (uint32_t)cfg[off + 1] << 8 | (uint32_t)cfg[off + 2] << 16 |
	       (uint32_t)cfg[off + 3] << 24;
}

#endif
