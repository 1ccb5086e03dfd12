/*
 * mptable.c — the Intel MultiProcessor Specification 1.4 table: how a guest
 * without ACPI learns its CPUs, the IOAPIC and how ISA IRQs reach it (as
 * kvmtool does). ISA IRQ n goes to IOAPIC pin n, matching KVM's default
 * GSI routing (GSI n → IOAPIC pin n, also for the PIT on GSI 0). PCI
 * devices use MSI-X only, so no PCI interrupt entries are needed.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot.h"
#include "vmm/vmm.h"

#define MP_TABLE_ADDR 0xf0000ull
#define IOAPIC_ADDR   0xfec00000u
#define LAPIC_ADDR    0xfee00000u

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

int mptable_write(struct vmm *vmm)
{
	uint8_t *base = vmm_gpa_to_host(vmm, MP_TABLE_ADDR, 4096);
	if (!base)
		return -ENOSPC;
	memset(base, 0, 4096);
	uint8_t *fp = base, *cfg = base + 16, *p = cfg + 44;
	unsigned entries = 0;
	uint8_t ioapic_id = (uint8_t)vmm->ncpus;

	for (unsigned i = 0; i < vmm->ncpus; i++, entries++) {
		uint8_t cpu[20] = { 0, (uint8_t)i, 0x14, (uint8_t)(1 | (i == 0 ? 2 : 0)) };
		uint32_t signature = 0x600, features = 0x201; /* family 6; FPU, APIC */
		memcpy(cpu + 4, &signature, 4);
		memcpy(cpu + 8, &features, 4);
		p = put(p, cpu, sizeof(cpu));
	}
	static const uint8_t bus_pci[8] = { 1, 0, 'P', 'C', 'I', ' ', ' ', ' ' };
	static const uint8_t bus_isa[8] = { 1, 1, 'I', 'S', 'A', ' ', ' ', ' ' };
	p = put(p, bus_pci, 8);
	p = put(p, bus_isa, 8);
	entries += 2;
	uint8_t ioapic[8] = { 2, ioapic_id, 0x11, 1 };
	uint32_t ioapic_addr = IOAPIC_ADDR;
	memcpy(ioapic + 4, &ioapic_addr, 4);
	p = put(p, ioapic, 8);
	entries++;
	for (uint8_t irq = 0; irq < 16; irq++, entries++) {
		uint8_t intsrc[8] = { 3, 0 /* INT */, 0, 0, 1 /* ISA */, irq, ioapic_id, irq };
		p = put(p, intsrc, 8);
	}
	/* Local interrupts: the PIC on LINT0 (virtual wire), NMI on LINT1. */
	static const uint8_t lint0[8] = { 4, 3 /* ExtINT */, 0, 0, 1, 0, 0xff, 0 };
	static const uint8_t lint1[8] = { 4, 1 /* NMI */, 0, 0, 1, 0, 0xff, 1 };
	p = put(p, lint0, 8);
	p = put(p, lint1, 8);
	entries += 2;

	uint16_t table_len = (uint16_t)(p - cfg), count = (uint16_t)entries;
	uint32_t lapic = LAPIC_ADDR;
	memcpy(cfg, "PCMP", 4);
	memcpy(cfg + 4, &table_len, 2);
	cfg[6] = 4; /* spec 1.4 */
	memcpy(cfg + 8, "VNET    ", 8);
	memcpy(cfg + 16, "VNET-VMM    ", 12);
	memcpy(cfg + 34, &count, 2);
	memcpy(cfg + 36, &lapic, 4);
	cfg[7] = checksum(cfg, table_len);

	uint32_t cfg_addr = (uint32_t)(MP_TABLE_ADDR + 16);
	memcpy(fp, "_MP_", 4);
	memcpy(fp + 4, &cfg_addr, 4);
	fp[8] = 1;  /* length in paragraphs */
	fp[9] = 4;  /* spec 1.4 */
	fp[10] = checksum(fp, 16);
	return 0;
}
