/*
 * kvm.c — the VM itself (vmm.h): /dev/kvm checks, RAM from a memfd, the
 * in-kernel irqchip and PIT, GSI routing, irqfd/ioeventfd, vCPUs and their
 * run loops. Exits are dispatched to vmm->pio / vmm->mmio (bus.c).
 *
 * Ending the VM: vmm_request_exit() records the code, sets immediate_exit in
 * every vCPU's kvm_run and sends each vCPU thread SIGUSR1, whose empty
 * handler makes a blocked KVM_RUN return EINTR — no vCPU can miss it.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vnet/log.h"

#define KVM_TSS_ADDR      0xfffbd000ul
#define KVM_IDENTITY_ADDR 0xfffbc000ul

/* Boot page tables and GDT in low guest RAM (below the 640 KiB hole). */
#define BOOT_GDT   0x500ull
#define BOOT_PML4  0x9000ull
#define BOOT_PDPT  0xa000ull
#define BOOT_PD    0xb000ull   /* 4 pages: identity map of 4 GiB, 2 MiB pages */
#define BOOT_STACK 0x8ff0ull

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 1ull

int vmm_fail(int rc, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vnet_err("vnet-vmm: %s", msg);
	return rc;
}

static int check_caps(struct vmm *vmm, unsigned ncpus)
{
	static const struct {
		int cap;
		const char *name;
	} required[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
		{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
		{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	};
	int v = ioctl(vmm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return vmm_fail(-ENOTSUP, "/dev/kvm: API version %d, need %d", v, KVM_API_VERSION);
	for (unsigned i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0)
			return vmm_fail(-ENOTSUP, "/dev/kvm lacks %s", required[i].name);
	int max = ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && (unsigned)max < ncpus)
		return vmm_fail(-ENOTSUP, "/dev/kvm allows %d vCPUs, %u asked", max, ncpus);
	return 0;
}

static int create_ram(struct vmm *vmm, uint64_t size)
{
	vmm->mem_fd = memfd_create("vnet-vmm-ram", MFD_CLOEXEC);
	if (vmm->mem_fd < 0)
		return vmm_fail(-errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(vmm->mem_fd, (off_t)size) < 0)
		return vmm_fail(-errno, "guest RAM of %llu bytes: %s", (unsigned long long)size,
				strerror(errno));
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, vmm->mem_fd, 0);
	if (p == MAP_FAILED)
		return vmm_fail(-errno, "mmap guest RAM: %s", strerror(errno));
	vmm->mem = p;
	vmm->mem_size = size;
	vmm->low_size = size < VMM_RAM_LOW_MAX ? size : VMM_RAM_LOW_MAX;
	vmm->nregions = 0;
	vmm->regions[vmm->nregions++] = (struct vnet_mem_region){
		.gpa = 0, .size = vmm->low_size, .uaddr = (uintptr_t)p, .host = p,
	};
	if (size > vmm->low_size)
		vmm->regions[vmm->nregions++] = (struct vnet_mem_region){
			.gpa = VMM_HIGH_RAM_BASE, .size = size - vmm->low_size,
			.uaddr = (uintptr_t)p + vmm->low_size, .host = (uint8_t *)p + vmm->low_size,
		};
	for (unsigned i = 0; i < vmm->nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = vmm->regions[i].gpa,
			.memory_size = vmm->regions[i].size,
			.userspace_addr = vmm->regions[i].uaddr,
		};
		if (ioctl(vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return vmm_fail(-errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	}
	char err[128];
	struct vnet_mem_table *t = vnet_mem_table_new(vmm->regions, vmm->nregions, err, sizeof(err));
	if (!t)
		return vmm_fail(-EINVAL, "guest memory table: %s", err);
	vnet_mem_table_free(vnet_guestmem_replace(&vmm->gm, t));
	return 0;
}

/* KVM's default routing (irqchip pins), which KVM_SET_GSI_ROUTING would drop. */
static int init_routing(struct vmm *vmm)
{
	vmm->routing = calloc(1, sizeof(*vmm->routing) +
				     VMM_MAX_GSI * sizeof(struct kvm_irq_routing_entry));
	if (!vmm->routing)
		return -ENOMEM;
	struct kvm_irq_routing_entry *e = vmm->routing->entries;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < VMM_IOAPIC_PINS; gsi++) {
		if (gsi < 16) {
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
		}
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
	}
	vmm->routing->nr = n;
	vmm->next_gsi = VMM_GSI_MSI_BASE;
	vmm->next_isa_irq = 0;
	return 0;
}

static int commit_routing(struct vmm *vmm)
{
	if (ioctl(vmm->vm_fd, KVM_SET_GSI_ROUTING, vmm->routing) < 0)
		return vmm_fail(-errno, "KVM_SET_GSI_ROUTING: %s", strerror(errno));
	return 0;
}

static struct kvm_cpuid2 *supported_cpuid(struct vmm *vmm)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(vmm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			break;
	}
	vmm_fail(0, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	return NULL;
}

static int setup_vcpu(struct vmm *vmm, struct vmm_vcpu *vcpu, const struct kvm_cpuid2 *base)
{
	vcpu->fd = ioctl(vmm->vm_fd, KVM_CREATE_VCPU, (unsigned long)vcpu->index);
	if (vcpu->fd < 0)
		return vmm_fail(-errno, "KVM_CREATE_VCPU %u: %s", vcpu->index, strerror(errno));
	int sz = ioctl(vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		return vmm_fail(-EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vcpu->run_size = (size_t)sz;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return vmm_fail(-errno, "mmap vCPU %u: %s", vcpu->index, strerror(errno));
	}

	size_t csz = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	struct kvm_cpuid2 *c = malloc(csz);
	if (!c)
		return -ENOMEM;
	memcpy(c, base, csz);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			/* Initial APIC ID; the MP table names the same IDs. */
			e->ebx = (e->ebx & 0x00ffffffu) | (vcpu->index << 24);
			e->ecx |= 1u << 31; /* hypervisor present */
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = vcpu->index;
		}
	}
	int rc = ioctl(vcpu->fd, KVM_SET_CPUID2, c);
	free(c);
	if (rc < 0)
		return vmm_fail(-errno, "KVM_SET_CPUID2: %s", strerror(errno));

	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs = { .hdr.nmsrs = 1 };
	msrs.hdr.entries[0] = (struct kvm_msr_entry){ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING };
	if (ioctl(vcpu->fd, KVM_SET_MSRS, &msrs) < 0)
		vnet_warn("vnet-vmm: vCPU %u: KVM_SET_MSRS: %s", vcpu->index, strerror(errno));

	/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as a BIOS leaves them. */
	struct kvm_lapic_state lapic;
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) == 0) {
		uint32_t *lvt0 = (uint32_t *)&lapic.regs[0x350], *lvt1 = (uint32_t *)&lapic.regs[0x360];
		*lvt0 = (*lvt0 & ~0x700u & ~0x10000u) | (7u << 8);
		*lvt1 = (*lvt1 & ~0x700u & ~0x10000u) | (4u << 8);
		if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
			vnet_warn("vnet-vmm: vCPU %u: KVM_SET_LAPIC: %s", vcpu->index, strerror(errno));
	}
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		vnet_warn("vnet-vmm: vCPU %u: KVM_SET_FPU: %s", vcpu->index, strerror(errno));
	return 0;
}

int vmm_create(struct vmm *vmm, const struct vmm_config *cfg)
{
	memset(vmm, 0, sizeof(*vmm));
	vmm->kvm_fd = vmm->vm_fd = vmm->mem_fd = -1;
	for (unsigned i = 0; i < VMM_MAX_CPUS; i++)
		vmm->vcpus[i].fd = -1;
	pthread_mutex_init(&vmm->irq_lock, NULL);
	pthread_mutex_init(&vmm->exit_lock, NULL);
	pthread_cond_init(&vmm->exit_cond, NULL);
	vmm_bus_init(&vmm->pio, "pio");
	vmm_bus_init(&vmm->mmio, "mmio");
	int rc = vnet_guestmem_init(&vmm->gm);
	if (rc < 0)
		return rc;

	uint64_t mem = cfg->mem_size ? cfg->mem_size : 256ull << 20;
	unsigned ncpus = cfg->ncpus ? cfg->ncpus : 1;
	if (ncpus > VMM_MAX_CPUS) {
		rc = vmm_fail(-EINVAL, "--cpus %u: at most %d", ncpus, VMM_MAX_CPUS);
		goto fail;
	}
	if (mem < (16ull << 20) || mem % 4096) {
		rc = vmm_fail(-EINVAL, "--mem: at least 16M, a multiple of 4K");
		goto fail;
	}
	vmm->ncpus = ncpus;

	vmm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vmm->kvm_fd < 0) {
		rc = vmm_fail(-errno, "/dev/kvm: %s", strerror(errno));
		goto fail;
	}
	if ((rc = check_caps(vmm, ncpus)) < 0)
		goto fail;
	vmm->vm_fd = ioctl(vmm->kvm_fd, KVM_CREATE_VM, 0);
	if (vmm->vm_fd < 0) {
		rc = vmm_fail(-errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vmm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		rc = vmm_fail(-errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	uint64_t ident = KVM_IDENTITY_ADDR;
	if (ioctl(vmm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		vnet_debug("vnet-vmm: KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vmm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		rc = vmm_fail(-errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto fail;
	}
	struct kvm_pit_config pit = { .flags = 0 };
	if (ioctl(vmm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		rc = vmm_fail(-errno, "KVM_CREATE_PIT2: %s", strerror(errno));
		goto fail;
	}
	if ((rc = init_routing(vmm)) < 0 || (rc = commit_routing(vmm)) < 0)
		goto fail;
	if ((rc = create_ram(vmm, mem)) < 0)
		goto fail;

	struct kvm_cpuid2 *cpuid = supported_cpuid(vmm);
	if (!cpuid) {
		rc = -ENOTSUP;
		goto fail;
	}
	for (unsigned i = 0; i < ncpus && rc == 0; i++) {
		vmm->vcpus[i].vmm = vmm;
		vmm->vcpus[i].index = i;
		rc = setup_vcpu(vmm, &vmm->vcpus[i], cpuid);
	}
	free(cpuid);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	vmm_destroy(vmm);
	return rc;
}

void vmm_destroy(struct vmm *vmm)
{
	for (unsigned i = 0; i < VMM_MAX_CPUS; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
		v->run = NULL;
		v->fd = -1;
	}
	if (vmm->mem)
		munmap(vmm->mem, vmm->mem_size);
	vmm->mem = NULL;
	if (vmm->mem_fd >= 0)
		close(vmm->mem_fd);
	if (vmm->vm_fd >= 0)
		close(vmm->vm_fd);
	if (vmm->kvm_fd >= 0)
		close(vmm->kvm_fd);
	vmm->mem_fd = vmm->vm_fd = vmm->kvm_fd = -1;
	free(vmm->routing);
	vmm->routing = NULL;
	vnet_guestmem_destroy(&vmm->gm);
	vmm_bus_destroy(&vmm->pio);
	vmm_bus_destroy(&vmm->mmio);
}

void *vmm_gpa_to_host(struct vmm *vmm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < vmm->nregions; i++) {
		const struct vnet_mem_region *r = &vmm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return (uint8_t *)r->host + (gpa - r->gpa);
	}
	return NULL;
}

/* --- boot CPU state --------------------------------------------------------- */

static void write_u64(struct vmm *vmm, uint64_t gpa, uint64_t v)
{
	memcpy(vmm->mem + gpa, &v, sizeof(v));
}

static struct kvm_segment seg_from_gdt(uint64_t desc, uint16_t selector)
{
	return (struct kvm_segment){
		.base = (uint32_t)(((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000)),
		.limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000)),
		.selector = selector,
		.type = (desc >> 40) & 0xf,
		.present = (desc >> 47) & 1,
		.dpl = (desc >> 45) & 3,
		.db = (desc >> 54) & 1,
		.s = (desc >> 44) & 1,
		.l = (desc >> 53) & 1,
		.g = (desc >> 55) & 1,
	};
}

int vmm_setup_boot_cpu(struct vmm *vmm, uint64_t rip, uint64_t rsi)
{
	/* Flat GDT: __BOOT_CS = 0x10, __BOOT_DS = 0x18, a TSS at 0x20 because
	 * VMX refuses to enter with an unusable TR. */
	static const uint64_t gdt[] = {
		0, 0,
		0x00af9b000000ffffull, /* 64-bit code */
		0x00cf93000000ffffull, /* data */
		0x00808b0000000fffull, /* TSS (busy) */
	};
	memcpy(vmm->mem + BOOT_GDT, gdt, sizeof(gdt));

	memset(vmm->mem + BOOT_PML4, 0, 0x6000);
	write_u64(vmm, BOOT_PML4, BOOT_PDPT | 3);
	for (uint64_t i = 0; i < 4; i++) {
		write_u64(vmm, BOOT_PDPT + 8 * i, (BOOT_PD + 0x1000 * i) | 3);
		for (uint64_t j = 0; j < 512; j++)
			write_u64(vmm, BOOT_PD + 0x1000 * i + 8 * j, ((i * 512 + j) << 21) | 0x83);
	}

	struct vmm_vcpu *v = &vmm->vcpus[0];
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return vmm_fail(-errno, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.gdt.base = BOOT_GDT;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0xffff;
	sregs.cs = seg_from_gdt(gdt[2], 0x10);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg_from_gdt(gdt[3], 0x18);
	sregs.tr = seg_from_gdt(gdt[4], 0x20);
	sregs.ldt = (struct kvm_segment){ .type = 2, .present = 1, .unusable = 1 };
	sregs.cr3 = BOOT_PML4;
	sregs.cr4 = 0x20;                                 /* PAE */
	sregs.cr0 = 0x80000000u | 0x20 | 0x10 | 0x1;      /* PG | NE | ET | PE */
	sregs.efer = 0x500;                               /* LME | LMA */
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return vmm_fail(-errno, "KVM_SET_SREGS: %s", strerror(errno));

	struct kvm_regs regs = { .rflags = 2, .rip = rip, .rsi = rsi, .rsp = BOOT_STACK };
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return vmm_fail(-errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

/* --- interrupts ----------------------------------------------------------- */

int vmm_irq_line(struct vmm *vmm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };
	return ioctl(vmm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int vmm_irq_alloc_isa(struct vmm *vmm)
{
	static const unsigned free_irqs[] = { 5, 6, 7, 9, 10, 11, 12, 14, 15 };
	int irq = -ENOSPC;
	pthread_mutex_lock(&vmm->irq_lock);
	if (vmm->next_isa_irq < sizeof(free_irqs) / sizeof(free_irqs[0]))
		irq = (int)free_irqs[vmm->next_isa_irq++];
	pthread_mutex_unlock(&vmm->irq_lock);
	return irq;
}

int vmm_irq_alloc_msi(struct vmm *vmm)
{
	int gsi = -ENOSPC;
	pthread_mutex_lock(&vmm->irq_lock);
	if (vmm->next_gsi < VMM_MAX_GSI)
		gsi = (int)vmm->next_gsi++;
	pthread_mutex_unlock(&vmm->irq_lock);
	return gsi;
}

static int find_msi_route(struct vmm *vmm, unsigned gsi)
{
	for (unsigned i = 0; i < vmm->routing->nr; i++)
		if (vmm->routing->entries[i].gsi == gsi &&
		    vmm->routing->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return (int)i;
	return -1;
}

int vmm_irq_route_msi(struct vmm *vmm, unsigned gsi, uint64_t address, uint32_t data)
{
	if (gsi < VMM_GSI_MSI_BASE || gsi >= VMM_MAX_GSI)
		return -EINVAL;
	pthread_mutex_lock(&vmm->irq_lock);
	int i = find_msi_route(vmm, gsi);
	if (i < 0)
		i = (int)vmm->routing->nr++;
	vmm->routing->entries[i] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = (uint32_t)address, .address_hi = (uint32_t)(address >> 32), .data = data },
	};
	int rc = commit_routing(vmm);
	pthread_mutex_unlock(&vmm->irq_lock);
	return rc;
}

int vmm_irq_unroute_msi(struct vmm *vmm, unsigned gsi)
{
	pthread_mutex_lock(&vmm->irq_lock);
	int i = find_msi_route(vmm, gsi), rc = 0;
	if (i >= 0) {
		vmm->routing->entries[i] = vmm->routing->entries[--vmm->routing->nr];
		rc = commit_routing(vmm);
	}
	pthread_mutex_unlock(&vmm->irq_lock);
	return rc;
}

int vmm_irqfd(struct vmm *vmm, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd req = { .fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };
	if (ioctl(vmm->vm_fd, KVM_IRQFD, &req) < 0)
		return vmm_fail(-errno, "KVM_IRQFD %s gsi %u: %s", assign ? "assign" : "deassign", gsi,
				strerror(errno));
	return 0;
}

int vmm_ioeventfd(struct vmm *vmm, int fd, uint64_t addr, unsigned len, bool pio, bool match,
		  uint64_t datamatch, bool assign)
{
	struct kvm_ioeventfd req = {
		.datamatch = datamatch, .addr = addr, .len = len, .fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (ioctl(vmm->vm_fd, KVM_IOEVENTFD, &req) < 0)
		return vmm_fail(-errno, "KVM_IOEVENTFD %s 0x%llx: %s", assign ? "assign" : "deassign",
				(unsigned long long)addr, strerror(errno));
	return 0;
}

void vmm_cmdline_append(struct vmm *vmm, const char *text)
{
	size_t n = strlen(vmm->cmdline_extra);
	snprintf(vmm->cmdline_extra + n, sizeof(vmm->cmdline_extra) - n, " %s", text);
}
