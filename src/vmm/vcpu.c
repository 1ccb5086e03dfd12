/*
 * vcpu.c — one thread per vCPU running KVM_RUN and dispatching its exits
 * (port I/O, MMIO) to the buses; the VM's lifetime (vmm_run,
 * vmm_request_exit). A guest reset (i8042, triple fault, KVM system event)
 * ends the VM with status 0; an entry failure or internal error with 1,
 * after dumping the registers; SIGINT/SIGTERM with 128 + signal.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vnet/log.h"
#include "vmm/seccomp.h"

static volatile sig_atomic_t stop_signal;

static void on_kick(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

static void on_stop(int sig)
{
	stop_signal = sig;
}

void vmm_request_exit(struct vmm *vmm, int code)
{
	pthread_mutex_lock(&vmm->exit_lock);
	if (!atomic_load(&vmm->exiting)) {
		atomic_store(&vmm->exit_code, code);
		atomic_store_explicit(&vmm->exiting, true, memory_order_release);
	}
	for (unsigned i = 0; i < vmm->ncpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (v->started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, SIGUSR1);
	}
	pthread_cond_broadcast(&vmm->exit_cond);
	pthread_mutex_unlock(&vmm->exit_lock);
}

static void dump_regs(struct vmm_vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	vnet_err("vnet-vmm: vCPU %u: rip=0x%llx rsp=0x%llx rflags=0x%llx cr0=0x%llx cr3=0x%llx "
		 "cr4=0x%llx efer=0x%llx cs=0x%x", v->index, (unsigned long long)r.rip,
		 (unsigned long long)r.rsp, (unsigned long long)r.rflags, (unsigned long long)s.cr0,
		 (unsigned long long)s.cr3, (unsigned long long)s.cr4, (unsigned long long)s.efer,
		 s.cs.selector);
}

static void handle_io(struct vmm *vmm, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		vmm_bus_access(&vmm->pio, run->io.port, data, run->io.size, write);
}

/* Returns false when the VM must end. */
static bool handle_exit(struct vmm_vcpu *v)
{
	struct vmm *vmm = v->vmm;
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vmm, run);
		return true;
	case KVM_EXIT_MMIO:
		if (run->mmio.len <= 8)
			vmm_bus_access(&vmm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				       run->mmio.is_write);
		return true;
	case KVM_EXIT_HLT:
		/* Only without a runnable interrupt source: a guest that halts with
		 * interrupts off has stopped for good. */
		vnet_info("vnet-vmm: vCPU %u halted", v->index);
		vmm_request_exit(vmm, 0);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vnet_info("vnet-vmm: guest reset (triple fault)");
		vmm_request_exit(vmm, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vnet_info("vnet-vmm: guest %s", run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? "power-off"
					  : run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "reset" : "crash");
		vmm_request_exit(vmm, run->system_event.type == KVM_SYSTEM_EVENT_CRASH ? 1 : 0);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vnet_err("vnet-vmm: vCPU %u: KVM_EXIT_FAIL_ENTRY, reason 0x%llx", v->index,
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		vnet_err("vnet-vmm: vCPU %u: KVM internal error, suberror %u", v->index,
			 run->internal.suberror);
		break;
	default:
		vnet_err("vnet-vmm: vCPU %u: unhandled exit reason %u", v->index, run->exit_reason);
		break;
	}
	dump_regs(v);
	vmm_request_exit(vmm, 1);
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;
	struct vmm *vmm = v->vmm;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	if (vmm_seccomp_enter_thread() < 0) {
		vmm_request_exit(vmm, 1);
		return NULL;
	}
	if (v->index == 0)
		vmm_seccomp_selftest();

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!vmm_exiting(vmm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vnet_err("vnet-vmm: vCPU %u: KVM_RUN: %s", v->index, strerror(errno));
			dump_regs(v);
			vmm_request_exit(vmm, 1);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vmm_run(struct vmm *vmm)
{
	struct sigaction sa = { .sa_handler = on_kick };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Only vCPU threads take SIGUSR1; device threads started later inherit
	 * the main thread's mask, so block it here first. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (unsigned i = 0; i < vmm->ncpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (rc) {
			vnet_err("vnet-vmm: vCPU %u thread: %s", i, strerror(rc));
			vmm_request_exit(vmm, 1);
			break;
		}
		pthread_mutex_lock(&vmm->exit_lock);
		v->started = true;
		pthread_mutex_unlock(&vmm->exit_lock);
	}

	pthread_mutex_lock(&vmm->exit_lock);
	while (!atomic_load(&vmm->exiting)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vmm->exit_cond, &vmm->exit_lock, &ts);
		if (stop_signal && !atomic_load(&vmm->exiting)) {
			pthread_mutex_unlock(&vmm->exit_lock);
			vnet_info("vnet-vmm: signal %d, stopping the VM", (int)stop_signal);
			vmm_request_exit(vmm, 128 + stop_signal);
			pthread_mutex_lock(&vmm->exit_lock);
		}
	}
	pthread_mutex_unlock(&vmm->exit_lock);
	/* A vCPU that was between the exiting check and KVM_RUN sees immediate_exit. */
	vmm_request_exit(vmm, 0);
	for (unsigned i = 0; i < vmm->ncpus; i++)
		if (vmm->vcpus[i].started)
			pthread_join(vmm->vcpus[i].thread, NULL);
	return atomic_load(&vmm->exit_code);
}
