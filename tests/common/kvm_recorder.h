/*
 * kvm_recorder.h — vnet-vmm's four KVM calls (vmm_irq_route_msi,
 * vmm_irq_unroute_msi, vmm_irqfd, vmm_ioeventfd) replaced, for tests and
 * fuzz harnesses without /dev/kvm, by recorders that keep what KVM would
 * hold (MSI routes, irqfds, ioeventfds) and refuse what KVM refuses: an
 * MSI route outside the MSI GSIs or an irqfd with a bad fd or GSI
 * (-EINVAL), an fd bound twice (-EBUSY), an ioeventfd registered twice
 * (-EEXIST), removing what is not there (-ENOENT), one ioeventfd too many
 * (-ENOSPC), an ioeventfd on port I/O or without datamatch (-EINVAL). An
 * irqfd on an MSI GSI without a route is accepted (as KVM does) but counted
 * as a refusal too: the first interrupt would be lost. Each refusal is
 * counted, so a test or harness checks kvm_recorder_refusals() == 0 after
 * the code under test ran, then that nothing is left behind.
 *
 * A program links them in place of the real calls with the linker's
 * -Wl,--wrap=... (kvm_recorder_wraps in tests/common/meson.build; unit tests
 * get them with kvm_recorder_dep). No cmocka: the fuzz harness uses it too.
 *
 * Thread-safety: none. The state is global; the calls and the queries must
 * come from one thread at a time (the tests' and the harness's main thread).
 */
#ifndef VNET_TEST_KVM_RECORDER_H
#define VNET_TEST_KVM_RECORDER_H

#include <stdbool.h>
#include <stdint.h>

#define KVM_RECORDER_MAX_FD 1024       /* fds 0 .. MAX_FD - 1 can be irqfds */
#define KVM_RECORDER_MAX_IOEVENTFDS 32 /* more is -ENOSPC */

struct kvm_recorder_route {
	uint64_t addr;
	uint32_t data;
};

struct kvm_recorder_ioeventfd {
	int fd;
	uint64_t addr;
	unsigned len;
	uint64_t datamatch;
};

/* Forgets everything: no route, irqfd, ioeventfd, refusal or commit. */
void kvm_recorder_reset(void);

/* Calls KVM would have failed (or that would lose an interrupt) since the
 * reset, and what the first one was (NULL when none). */
int kvm_recorder_refusals(void);
const char *kvm_recorder_first_refusal(void);

/* MSI routes: the one of `gsi` (NULL when none), how many there are, and
 * how many vmm_irq_route_msi calls succeeded since the reset. */
const struct kvm_recorder_route *kvm_recorder_route(unsigned gsi);
unsigned kvm_recorder_route_count(void);
int kvm_recorder_route_commits(void);

/* irqfds: the GSI `fd` is bound to (-1 when none), how many are bound, and
 * 1 + the highest fd bound since the reset (scans of fds stop there). */
int kvm_recorder_irqfd_gsi(int fd);
unsigned kvm_recorder_irqfd_count(void);
int kvm_recorder_irqfd_end(void);

/* ioeventfds: slot i < KVM_RECORDER_MAX_IOEVENTFDS (NULL when free), how
 * many are registered, how many of them signal `fd`, and whether `fd` is
 * registered at `addr` with that length and datamatch. */
const struct kvm_recorder_ioeventfd *kvm_recorder_ioeventfd(unsigned i);
unsigned kvm_recorder_ioeventfd_count(void);
unsigned kvm_recorder_ioeventfds_of(int fd);
bool kvm_recorder_ioeventfd_at(int fd, uint64_t addr, unsigned len, uint64_t datamatch);

#endif
