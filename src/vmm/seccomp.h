/*
 * seccomp.h — vnet-vmm's system-call filter (libseccomp). Once the VM is set
 * up (RAM mapped, vCPUs created, every NIC's back-end opened, the kernel
 * loaded), nothing vnet-vmm still has to do needs a new file, a new process
 * or a network socket: the threads that handle what the guest controls
 * (vCPUs: KVM_RUN exits, device registers, DRIVER_OK and reset; the
 * emulated back-end's I/O thread; the vhost-user hang-up watcher; the serial
 * input thread) only run KVM_RUN and a few other ioctls, move bytes through
 * fds they already hold, wait, and start or join threads. The filter allows
 * exactly that (default deny), with ioctl restricted to the request numbers
 * in use, clone to new threads, mmap/mprotect to non-executable memory,
 * socket/connect to AF_UNIX and only when a vhost-user NIC may reconnect.
 *
 * A blocked call raises SIGSYS (SECCOMP_RET_TRAP); the handler writes
 * "vnet-vmm: seccomp: blocked syscall N (name) in thread T (tid X)" to stderr
 * and ends the process with status 1. Trapping rather than killing outright
 * puts the reason where the operator looks; it is not weaker: the call never
 * runs either way, the filter refuses to let anyone replace the SIGSYS
 * handler, and a blocked or ignored SIGSYS makes the kernel kill the process.
 *
 * Scope: the whole process (SECCOMP_FILTER_FLAG_TSYNC from the main thread,
 * so the serial thread started earlier gets it too, and every later thread
 * inherits it). In an AddressSanitizer build the main thread stays
 * unfiltered and each vCPU thread installs the filter for itself (its device
 * threads inherit it): LeakSanitizer's exit-time check runs on the main
 * thread and needs ptrace, /proc and a non-thread clone.
 *
 * Thread-safety: vmm_seccomp_install() runs on the main thread before
 * vmm_run(); vmm_seccomp_enter_thread() and vmm_seccomp_selftest() from any
 * thread afterwards (the per-thread installs are serialised).
 */
#ifndef VNET_VMM_SECCOMP_H
#define VNET_VMM_SECCOMP_H

#include <stdbool.h>

struct net_dev_config;

/* What the VM's NICs need at run time beyond the common core. */
struct vmm_seccomp_needs {
	bool tap;                  /* emulated or vhost-net: TUNSETOFFLOAD */
	bool emulated;             /* the I/O thread: epoll, readv/writev on the tap */
	bool vhost_net;            /* VHOST_* ioctls at DRIVER_OK and reset */
	bool vhost_user;           /* control messages (sendmsg/recvmsg) at DRIVER_OK and reset */
	bool vhost_user_reconnect; /* client mode: socket(AF_UNIX) + connect after a hang-up */
};

/* Adds what a NIC configured by `cfg` needs. */
void vmm_seccomp_needs_add(struct vmm_seccomp_needs *needs, const struct net_dev_config *cfg);

/*
 * Builds the filter for `needs`, installs the SIGSYS reporter and applies the
 * filter to every thread (or, in a sanitizer build, arms the per-thread
 * install). Logs the allowed calls at --log-level debug. Returns 0, or -errno
 * with a "vnet-vmm: seccomp: ..." message.
 */
int vmm_seccomp_install(const struct vmm_seccomp_needs *needs);

/*
 * First thing in a vCPU thread: applies the filter to the calling thread when
 * the install was per-thread; otherwise (already process-wide, or seccomp
 * off) does nothing. Returns 0 or -errno after logging.
 */
int vmm_seccomp_enter_thread(void);

/* True when this build installs per thread (see above). */
bool vmm_seccomp_per_thread(void);

/*
 * Test hook: when the environment variable VNET_VMM_SECCOMP_SELFTEST names a
 * probe (openat, execve, socket, ioctl), performs that forbidden call on the
 * calling thread, which the filter must block. With --seccomp=off the call
 * runs (harmlessly) and "... was not blocked" is logged.
 */
void vmm_seccomp_selftest(void);

#endif
