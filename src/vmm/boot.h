/*
 * boot.h — loading a guest kernel without a BIOS: a Linux bzImage by the
 * x86 boot protocol (header version ≥ 2.06; 64-bit entry when the kernel
 * sets XLF_KERNEL_64, else the 32-bit protected-mode entry), or an ELF64
 * executable by its PT_LOAD physical addresses (a vmlinux, or vnet's test
 * guest), entered in long mode. Either way the guest gets a Linux
 * boot_params ("zero page") with the e820 map, the command line and the
 * initrd, and an MP table naming the vCPUs and the IOAPIC (mptable.c), as
 * kvmtool does — no ACPI.
 *
 * Guest-physical layout below 1 MiB: GDT 0x500, boot_params 0x7000, page
 * tables 0x9000–0xefff, command line 0x20000, EBDA/MP table 0x9fc00 and
 * 0xf0000. The kernel goes to its preferred address (pref_address, else
 * 1 MiB); the initrd as high as initrd_addr_max and RAM allow.
 *
 * Thread-safety: call once, before vmm_run().
 */
#ifndef VNET_VMM_BOOT_H
#define VNET_VMM_BOOT_H

#include <stdint.h>

struct vmm;

struct boot_config {
	const char *kernel;
	const char *initrd;     /* may be NULL */
	const char *cmdline;    /* vmm->cmdline_extra is appended */
};

/* Loads everything and sets the boot vCPU's registers. Errors are printed
 * ("vnet-vmm: kernel FILE: not a bzImage or ELF64 executable") and returned
 * as -errno. */
int boot_load(struct vmm *vmm, const struct boot_config *cfg);

/* The loading alone, without touching a vCPU (for tests): guest RAM,
 * boot_params at BOOT_ZERO_PAGE and the entry point. */
#define BOOT_ZERO_PAGE 0x7000ull
int boot_load_image(struct vmm *vmm, const struct boot_config *cfg, uint64_t *entry);

/* Writes the MP floating pointer and configuration table (mptable.c). */
int mptable_write(struct vmm *vmm);

#endif
