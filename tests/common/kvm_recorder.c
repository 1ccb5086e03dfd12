/*
 * kvm_recorder.c — vnet-vmm's KVM calls as recorders (kvm_recorder.h).
 */
#include "kvm_recorder.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vmm/vmm.h"

static struct {
	bool valid;
	struct kvm_recorder_route r;
} routes[VMM_MAX_GSI];
static int irqfd_gsi1[KVM_RECORDER_MAX_FD]; /* 1 + the GSI the fd is bound to, 0 none */
static int irqfd_end;
static struct {
	bool used;
	struct kvm_recorder_ioeventfd e;
} iofds[KVM_RECORDER_MAX_IOEVENTFDS];
static unsigned nroutes, nirqfds, niofds; /* how many of each are there now */
static int route_commits;
static int refusals;
static const char *first_refusal;

static int refuse(int rc, const char *why)
{
	if (!refusals++)
		first_refusal = why;
	return rc;
}

void kvm_recorder_reset(void)
{
	memset(routes, 0, sizeof(routes));
	memset(irqfd_gsi1, 0, sizeof(irqfd_gsi1));
	memset(iofds, 0, sizeof(iofds));
	nroutes = nirqfds = niofds = 0;
	route_commits = irqfd_end = refusals = 0;
	first_refusal = NULL;
}

/* ---- the wrapped calls (-Wl,--wrap=...) ---------------------------------- */

int __wrap_vmm_irq_route_msi(struct vmm *vmm, unsigned gsi, uint64_t address, uint32_t data);
int __wrap_vmm_irq_unroute_msi(struct vmm *vmm, unsigned gsi);
int __wrap_vmm_irqfd(struct vmm *vmm, int fd, unsigned gsi, bool assign);
int __wrap_vmm_ioeventfd(struct vmm *vmm, int fd, uint64_t addr, unsigned len, bool pio, bool match,
			 uint64_t datamatch, bool assign);

int __wrap_vmm_irq_route_msi(struct vmm *vmm, unsigned gsi, uint64_t address, uint32_t data)
{
	(void)vmm;
	if (gsi < VMM_GSI_MSI_BASE || gsi >= VMM_MAX_GSI)
		return refuse(-EINVAL, "MSI route outside the MSI GSIs");
	nroutes += !routes[gsi].valid;
	routes[gsi].valid = true;
	routes[gsi].r = (struct kvm_recorder_route){.addr = address, .data = data};
	route_commits++;
	return 0;
}

int __wrap_vmm_irq_unroute_msi(struct vmm *vmm, unsigned gsi)
{
	(void)vmm;
	if (gsi < VMM_MAX_GSI && routes[gsi].valid) {
		routes[gsi].valid = false;
		nroutes--;
	}
	return 0;
}

int __wrap_vmm_irqfd(struct vmm *vmm, int fd, unsigned gsi, bool assign)
{
	(void)vmm;
	if (fd < 0 || fd >= KVM_RECORDER_MAX_FD || gsi >= VMM_MAX_GSI)
		return refuse(-EINVAL, "irqfd with a bad fd or GSI");
	if (assign) {
		if (irqfd_gsi1[fd])
			return refuse(-EBUSY, "irqfd bound twice");
		if (gsi >= VMM_GSI_MSI_BASE && !routes[gsi].valid)
			refuse(0, "irqfd on an MSI GSI without a route");
		irqfd_gsi1[fd] = (int)gsi + 1;
		nirqfds++;
		if (fd >= irqfd_end)
			irqfd_end = fd + 1;
	} else {
		if (irqfd_gsi1[fd] != (int)gsi + 1)
			return refuse(-ENOENT, "irqfd removed that is not bound there");
		irqfd_gsi1[fd] = 0;
		nirqfds--;
	}
	return 0;
}

int __wrap_vmm_ioeventfd(struct vmm *vmm, int fd, uint64_t addr, unsigned len, bool pio, bool match,
			 uint64_t datamatch, bool assign)
{
	(void)vmm;
	if (pio || !match)
		return refuse(-EINVAL, "ioeventfd without datamatch or on port I/O");
	int free_slot = -1;
	for (int i = 0; i < KVM_RECORDER_MAX_IOEVENTFDS; i++) {
		if (!iofds[i].used) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		const struct kvm_recorder_ioeventfd *e = &iofds[i].e;
		if (e->addr == addr && e->len == len && e->datamatch == datamatch) {
			if (assign || e->fd != fd)
				return refuse(-EEXIST, "ioeventfd registered twice");
			iofds[i].used = false;
			niofds--;
			return 0;
		}
	}
	if (!assign)
		return refuse(-ENOENT, "ioeventfd removed that is not there");
	if (free_slot < 0)
		return refuse(-ENOSPC, "too many ioeventfds");
	iofds[free_slot].used = true;
	niofds++;
	iofds[free_slot].e = (struct kvm_recorder_ioeventfd){
		.fd = fd, .addr = addr, .len = len, .datamatch = datamatch};
	return 0;
}

/* ---- queries --------------------------------------------------------------- */

int kvm_recorder_refusals(void)
{
	return refusals;
}

const char *kvm_recorder_first_refusal(void)
{
	return first_refusal;
}

const struct kvm_recorder_route *kvm_recorder_route(unsigned gsi)
{
	return gsi < VMM_MAX_GSI && routes[gsi].valid ? &routes[gsi].r : NULL;
}

unsigned kvm_recorder_route_count(void)
{
	return nroutes;
}

int kvm_recorder_route_commits(void)
{
	return route_commits;
}

int kvm_recorder_irqfd_gsi(int fd)
{
	return fd >= 0 && fd < KVM_RECORDER_MAX_FD ? irqfd_gsi1[fd] - 1 : -1;
}

unsigned kvm_recorder_irqfd_count(void)
{
	return nirqfds;
}

int kvm_recorder_irqfd_end(void)
{
	return irqfd_end;
}

const struct kvm_recorder_ioeventfd *kvm_recorder_ioeventfd(unsigned i)
{
	return i < KVM_RECORDER_MAX_IOEVENTFDS && iofds[i].used ? &iofds[i].e : NULL;
}

unsigned kvm_recorder_ioeventfd_count(void)
{
	return niofds;
}

unsigned kvm_recorder_ioeventfds_of(int fd)
{
	unsigned n = 0;
	for (unsigned i = 0; i < KVM_RECORDER_MAX_IOEVENTFDS; i++)
		n += iofds[i].used && iofds[i].e.fd == fd;
	return n;
}

bool kvm_recorder_ioeventfd_at(int fd, uint64_t addr, unsigned len, uint64_t datamatch)
{
	for (unsigned i = 0; i < KVM_RECORDER_MAX_IOEVENTFDS; i++) {
		const struct kvm_recorder_ioeventfd *e = &iofds[i].e;
		if (iofds[i].used && e->fd == fd && e->addr == addr && e->len == len &&
		    e->datamatch == datamatch)
			return true;
	}
	return false;
}
