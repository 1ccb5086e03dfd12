/*
 * vmm.h — vnet-vmm's core: one KVM virtual machine. Opens /dev/kvm, checks
 * the API version and every capability the VMM relies on (each missing one
 * is a clear error), creates the VM with the in-kernel irqchip (PIC + IOAPIC
 * + LAPIC) and PIT, maps guest RAM from one memfd (shareable with vhost-user
 * back-ends and vhost-net), creates the vCPUs and runs one thread per vCPU
 * whose KVM_RUN exits are dispatched to the port-I/O and MMIO buses.
 *
 * Guest-physical layout (x86):
 *   [0, min(RAM, 3 GiB))           RAM (region 0 of the memfd)
 *   0xd0000000 + 0x1000*i          virtio-mmio devices (VMM_MMIO_BASE)
 *   0xe0000000 .. 0xefffffff       PCI BAR window (VMM_PCI_MMIO_BASE)
 *   0xfec00000 / 0xfee00000        IOAPIC / LAPIC (in the kernel)
 *   [4 GiB, 4 GiB + RAM - 3 GiB)   the rest of RAM, when RAM > 3 GiB (region 1)
 *
 * Interrupts: GSIs 0..23 are the irqchip pins (ISA IRQs on the PIC and the
 * IOAPIC), GSIs from VMM_GSI_MSI_BASE up are MSI routes. The VMM keeps the
 * whole routing table because KVM_SET_GSI_ROUTING replaces it.
 *
 * Thread-safety: creation and device registration run on the main thread
 * before vmm_run(). After that: vmm_irq_*() and vmm_request_exit() may be
 * called from any thread (internally locked); the buses are read-locked on
 * every exit, so a device may move a range (a PCI BAR) at run time.
 */
#ifndef VNET_VMM_H
#define VNET_VMM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vnet/guestmem.h"
#include "vmm/bus.h"

#define VMM_MAX_CPUS 8
#define VMM_RAM_LOW_MAX     0xc0000000ull  /* RAM above this goes above 4 GiB */
#define VMM_HIGH_RAM_BASE   0x100000000ull
#define VMM_MMIO_BASE       0xd0000000ull  /* virtio-mmio devices, 4 KiB apart */
#define VMM_MMIO_STRIDE     0x1000ull
#define VMM_PCI_MMIO_BASE   0xe0000000ull
#define VMM_PCI_MMIO_SIZE   0x10000000ull
#define VMM_IOAPIC_PINS     24
#define VMM_GSI_MSI_BASE    24
#define VMM_MAX_GSI         1024
/* Writing byte V to this port ends the VM with exit status V (as QEMU's
 * isa-debug-exit, but the value unchanged). Used by test guests. */
#define VMM_DEBUG_EXIT_PORT 0x501

struct vmm_vcpu {
	struct vmm *vmm;
	unsigned index;
	int fd;
	struct kvm_run *run;     /* mmap of the vCPU fd */
	size_t run_size;
	pthread_t thread;
	bool started;
};

struct vmm {
	int kvm_fd, vm_fd;
	/* guest RAM: one memfd, mapped once in this process */
	int mem_fd;
	uint8_t *mem;            /* host address of memfd offset 0 */
	uint64_t mem_size;       /* total RAM bytes */
	uint64_t low_size;       /* RAM below 4 GiB, at GPA 0 */
	unsigned nregions;       /* 1 or 2 (low, high) */
	struct vnet_mem_region regions[2];   /* gpa, size, uaddr (= host), host */
	struct vnet_guestmem gm; /* the same map, for in-VMM devices' virtqueues */

	unsigned ncpus;
	struct vmm_vcpu vcpus[VMM_MAX_CPUS];

	struct vmm_bus pio, mmio;

	/* GSI routing table (KVM_SET_GSI_ROUTING replaces it whole) */
	pthread_mutex_t irq_lock;
	struct kvm_irq_routing *routing;     /* irqchip pins + MSI routes */
	unsigned next_gsi;                   /* next free MSI GSI */
	unsigned next_isa_irq;               /* next free ISA IRQ for devices */
	unsigned mmio_devices;               /* virtio-mmio slots handed out */
	char cmdline_extra[512];             /* appended to the kernel command line by devices */

	/* lifetime */
	atomic_bool exiting;
	atomic_int exit_code;
	pthread_mutex_t exit_lock;
	pthread_cond_t exit_cond;
};

struct vmm_config {
	uint64_t mem_size;       /* bytes; 0 = 256 MiB */
	unsigned ncpus;          /* 0 = 1 */
};

/*
 * Opens /dev/kvm and checks: KVM_GET_API_VERSION == 12; capabilities
 * USER_MEMORY, IRQCHIP, IOEVENTFD, IRQFD, IRQ_ROUTING, PIT2, SET_TSS_ADDR,
 * EXT_CPUID, NR_VCPUS >= ncpus. Creates the VM, RAM, irqchip, PIT, and the
 * vCPUs (CPUID from KVM_GET_SUPPORTED_CPUID with per-CPU APIC IDs, MSRs).
 * On error prints "vnet-vmm: ..." naming what is missing and returns -errno
 * with nothing left open.
 */
int vmm_create(struct vmm *vmm, const struct vmm_config *cfg);
void vmm_destroy(struct vmm *vmm);

/* Logs "vnet-vmm: <message>" as an error and returns rc (for `return vmm_fail(-E.., ...)`). */
int vmm_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Host pointer for [gpa, gpa+len) when it lies inside RAM, else NULL. */
void *vmm_gpa_to_host(struct vmm *vmm, uint64_t gpa, uint64_t len);

/*
 * Sets the boot CPU's registers for a 64-bit entry at `rip` with RSI =
 * `rsi` (Linux 64-bit boot protocol: flat 4 GiB identity map with 2 MiB
 * pages at VMM_BOOT_PML4, GDT with __BOOT_CS = 0x10 and __BOOT_DS = 0x18,
 * interrupts off). Page tables and GDT are written into guest RAM.
 * Other vCPUs stay in wait-for-SIPI (the guest starts them via the LAPIC).
 */
int vmm_setup_boot_cpu(struct vmm *vmm, uint64_t rip, uint64_t rsi);

/* Starts every vCPU thread and waits until the VM ends; returns its exit code. */
int vmm_run(struct vmm *vmm);

/* Ends the VM with `code` (first caller wins); wakes every vCPU. Any thread. */
void vmm_request_exit(struct vmm *vmm, int code);

static inline bool vmm_exiting(struct vmm *vmm)
{
	return atomic_load_explicit(&vmm->exiting, memory_order_acquire);
}

/* --- interrupts -------------------------------------------------------- */

/* Level of an irqchip pin (ISA IRQ / IOAPIC pin), for devices without irqfd. */
int vmm_irq_line(struct vmm *vmm, unsigned gsi, bool level);
/* Hands out an unused ISA IRQ (5, 6, 7, 9, 10, 11, 12, 14, 15) for a device. */
int vmm_irq_alloc_isa(struct vmm *vmm);
/* Allocates an MSI GSI (not yet routed). Returns the GSI or -ENOSPC. */
int vmm_irq_alloc_msi(struct vmm *vmm);
/* Routes `gsi` to the MSI (address, data) and commits the table. */
int vmm_irq_route_msi(struct vmm *vmm, unsigned gsi, uint64_t address, uint32_t data);
/* Removes the MSI route of `gsi` (the GSI stays allocated) and commits. */
int vmm_irq_unroute_msi(struct vmm *vmm, unsigned gsi);
/* KVM_IRQFD: eventfd `fd` raises `gsi` on every write (assign) / detaches it. */
int vmm_irqfd(struct vmm *vmm, int fd, unsigned gsi, bool assign);
/*
 * KVM_IOEVENTFD: a guest write of `len` bytes (1, 2, 4, or 0 = any) to
 * `addr` (MMIO, or port I/O with `pio`) signals `fd` instead of exiting,
 * only when the value equals `datamatch` (when `match`).
 */
int vmm_ioeventfd(struct vmm *vmm, int fd, uint64_t addr, unsigned len, bool pio,
		  bool match, uint64_t datamatch, bool assign);

/* Adds " text" to the kernel command line the loader builds (device hints). */
void vmm_cmdline_append(struct vmm *vmm, const char *text);

#endif
