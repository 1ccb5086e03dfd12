/*
 * seccomp.c — vnet-vmm's system-call filter: the allow-list, the SIGSYS
 * reporter and the test hook (seccomp.h). The list comes from strace of the
 * tiny guest and of Linux guests in all three modes after start-up, and from
 * reading the run-time paths: KVM_RUN exits, device register writes,
 * DRIVER_OK / reset of each back-end, the I/O and watcher threads, the
 * serial thread, and the main thread's wait and teardown.
 *
 * Thread-safety: see seccomp.h; the per-thread install holds a mutex around
 * the shared libseccomp context, the SIGSYS handler is async-signal-safe.
 */
#include "vmm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/net_dev.h"

/* LeakSanitizer's exit-time check needs what the filter forbids. */
#if defined(__SANITIZE_ADDRESS__)
#define SECCOMP_PER_THREAD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECCOMP_PER_THREAD 1
#endif
#endif
#ifndef SECCOMP_PER_THREAD
#define SECCOMP_PER_THREAD 0
#endif

#define NAME_TABLE_SIZE 512 /* x86-64 syscall numbers in use stay below this */
#define NAME_LEN        24

/* Filled before the filter goes in: the handler may not allocate. */
static char syscall_names[NAME_TABLE_SIZE][NAME_LEN];
static uint32_t native_arch; /* AUDIT_ARCH_*, as in siginfo's si_arch */

static pthread_mutex_t thread_install_lock = PTHREAD_MUTEX_INITIALIZER;
static scmp_filter_ctx per_thread_ctx; /* armed per-thread filter, kept for the process's life */

/* ---- SIGSYS reporter ------------------------------------------------------- */

static void put_str(char *buf, size_t *len, size_t cap, const char *s)
{
	while (*s && *len + 1 < cap)
		buf[(*len)++] = *s++;
}

static void put_uint(char *buf, size_t *len, size_t cap, unsigned long v)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n > 0 && *len + 1 < cap)
		buf[(*len)++] = digits[--n];
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig;
	(void)uctx;
	char msg[384], thread[17] = {0};
	size_t n = 0;
	prctl(PR_GET_NAME, thread);
	put_str(msg, &n, sizeof(msg), "vnet-vmm: seccomp: blocked syscall ");
	put_uint(msg, &n, sizeof(msg), (unsigned long)(unsigned)si->si_syscall);
	put_str(msg, &n, sizeof(msg), " (");
	if (si->si_arch != native_arch)
		put_str(msg, &n, sizeof(msg), "of a foreign ABI");
	else if (si->si_syscall >= 0 && si->si_syscall < NAME_TABLE_SIZE &&
		 syscall_names[si->si_syscall][0])
		put_str(msg, &n, sizeof(msg), syscall_names[si->si_syscall]);
	else
		put_str(msg, &n, sizeof(msg), "unknown");
	put_str(msg, &n, sizeof(msg), ") in thread ");
	put_str(msg, &n, sizeof(msg), thread[0] ? thread : "?");
	put_str(msg, &n, sizeof(msg), " (tid ");
	put_uint(msg, &n, sizeof(msg), (unsigned long)gettid());
	put_str(msg, &n, sizeof(msg), "); stopping the VM\n");
	/* A sanitizer report needs files and a terminal: the filter cuts it short. */
	if (SECCOMP_PER_THREAD)
		put_str(msg, &n, sizeof(msg), "vnet-vmm: seccomp: (sanitizer build: a report just above "
			"may be cut short; --seccomp=off lets it finish)\n");
	ssize_t ignored = write(STDERR_FILENO, msg, n);
	(void)ignored;
	_exit(1);
}

static void fill_name_table(void)
{
	native_arch = seccomp_arch_native();
	for (int nr = 0; nr < NAME_TABLE_SIZE; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (name)
			snprintf(syscall_names[nr], NAME_LEN, "%s", name);
		free(name);
	}
}

/* ---- the allow-list -------------------------------------------------------- */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The kernel reads int arguments (ioctl requests, signal numbers, pids,
 * prctl options, socket domains) as 32 bits, whatever the caller left in the
 * upper half of the register; libseccomp's *_32 macros still compare all 64.
 * Comparing under this mask judges the value the kernel will act on.
 */
#define INT_BITS 0xffffffffull
#define INT_ARG(n, v) SCMP_CMP64((n), SCMP_CMP_MASKED_EQ, INT_BITS, (uint32_t)(v))

struct profile {
	scmp_filter_ctx ctx;
	int rc;             /* first error */
	char names[1024];   /* for the debug log */
	char ioctls[320];   /* request numbers, for the debug log */
};

static void note(struct profile *p, const char *name, const char *cond)
{
	size_t len = strlen(p->names);
	snprintf(p->names + len, sizeof(p->names) - len, "%s%s%s", len ? " " : "", name, cond);
}

/* Allows `nr` when every one of the `nargs` comparisons holds. */
static void allow_if(struct profile *p, int nr, const char *cond, unsigned nargs,
		     const struct scmp_arg_cmp *args)
{
	int rc = seccomp_rule_add_array(p->ctx, SCMP_ACT_ALLOW, nr, nargs, args);
	if (rc < 0 && p->rc == 0)
		p->rc = rc;
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	note(p, name ? name : "?", cond);
	free(name);
}

static void allow(struct profile *p, int nr)
{
	allow_if(p, nr, "", 0, NULL);
}

static void allow_ioctls(struct profile *p, const unsigned long *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct scmp_arg_cmp req = SCMP_A1_64(SCMP_CMP_MASKED_EQ, INT_BITS, (uint32_t)reqs[i]);
		int rc = seccomp_rule_add_array(p->ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &req);
		if (rc < 0 && p->rc == 0)
			p->rc = rc;
		size_t len = strlen(p->ioctls);
		snprintf(p->ioctls + len, sizeof(p->ioctls) - len, "%s%#lx", len ? " " : "", reqs[i]);
	}
}

static void add_core(struct profile *p)
{
	static const int plain[] = {
		/* bytes through fds already open: eventfds, console, log, stdin */
		SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(close),
		SCMP_SYS(poll), SCMP_SYS(ppoll),
		/* locks, thread start and end (clone is below) */
		SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
		SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(sched_yield),
		SCMP_SYS(sched_getaffinity), SCMP_SYS(gettid), SCMP_SYS(getpid),
		SCMP_SYS(madvise), SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(mremap),
		/* signals: SIGUSR1 kicks a vCPU out of KVM_RUN */
		SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
		SCMP_SYS(restart_syscall),
		/* time (normally the vDSO; the syscalls are its fallback) */
		SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
		SCMP_SYS(gettimeofday),
	};
	for (size_t i = 0; i < ARRAY_LEN(plain); i++)
		allow(p, plain[i]);

	/* New threads only (vCPUs, the I/O and watcher threads): no fork. glibc
	 * falls back from clone3, whose flags a filter cannot see, to clone. */
	struct scmp_arg_cmp thread = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	allow_if(p, SCMP_SYS(clone), "(CLONE_THREAD)", 1, &thread);
	int rc = seccomp_rule_add(p->ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc < 0 && p->rc == 0)
		p->rc = rc;
	note(p, "clone3", "(ENOSYS)");

	/* No new executable memory: thread stacks and heap are read/write. */
	struct scmp_arg_cmp no_exec = SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	allow_if(p, SCMP_SYS(mmap), "(!PROT_EXEC)", 1, &no_exec);
	allow_if(p, SCMP_SYS(mprotect), "(!PROT_EXEC)", 1, &no_exec);

	/* Handlers only for the signals vnet-vmm uses (vmm_run() sets them
	 * after the install), glibc's two internal ones and abort()'s: never
	 * SIGSYS, so nobody can take the reporter away. */
	static const struct { int sig; const char *name; } handlers[] = {
		{ SIGUSR1, "(SIGUSR1)" }, { SIGINT, "(SIGINT)" }, { SIGTERM, "(SIGTERM)" },
		{ SIGABRT, "(SIGABRT)" }, { 32, "(SIGCANCEL)" }, { 33, "(SIGSETXID)" },
	};
	for (size_t i = 0; i < ARRAY_LEN(handlers); i++) {
		struct scmp_arg_cmp sig = INT_ARG(0, handlers[i].sig);
		allow_if(p, SCMP_SYS(rt_sigaction), handlers[i].name, 1, &sig);
	}
	/* Signals to this process's own threads only (pthread_kill). */
	struct scmp_arg_cmp own = INT_ARG(0, getpid());
	allow_if(p, SCMP_SYS(tgkill), "(own pid)", 1, &own);
	/* Thread names: set by each thread, read by the reporter. */
	struct scmp_arg_cmp set_name = INT_ARG(0, PR_SET_NAME);
	struct scmp_arg_cmp get_name = INT_ARG(0, PR_GET_NAME);
	allow_if(p, SCMP_SYS(prctl), "(PR_SET_NAME)", 1, &set_name);
	allow_if(p, SCMP_SYS(prctl), "(PR_GET_NAME)", 1, &get_name);

	/* vCPUs: KVM_RUN and the register dump on a failed entry; devices: the
	 * irqchip pin, irqfd/ioeventfd when queues come and go, MSI routes when
	 * the guest programs MSI-X. */
	static const unsigned long kvm[] = {
		KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_IRQ_LINE, KVM_IRQFD,
		KVM_IOEVENTFD, KVM_SET_GSI_ROUTING,
	};
	allow_ioctls(p, kvm, ARRAY_LEN(kvm));
}

static void add_needs(struct profile *p, const struct vmm_seccomp_needs *needs)
{
	if (needs->tap) {
		static const unsigned long tap[] = { TUNSETOFFLOAD };
		allow_ioctls(p, tap, ARRAY_LEN(tap));
	}
	if (needs->emulated) {
		static const int io[] = {
			SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(eventfd2),
			SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
			SCMP_SYS(epoll_pwait),
		};
		for (size_t i = 0; i < ARRAY_LEN(io); i++)
			allow(p, io[i]);
	}
	if (needs->vhost_net) {
		static const unsigned long vhost[] = {
			VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM,
			VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE, VHOST_GET_VRING_BASE,
			VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_NET_SET_BACKEND,
		};
		allow_ioctls(p, vhost, ARRAY_LEN(vhost));
	}
	if (needs->vhost_user) {
		allow(p, SCMP_SYS(sendmsg));
		allow(p, SCMP_SYS(recvmsg));
		allow(p, SCMP_SYS(recvfrom)); /* recv(): payloads, the liveness peek */
	}
	if (needs->vhost_user_reconnect) {
		struct scmp_arg_cmp unix_only = INT_ARG(0, AF_UNIX);
		allow_if(p, SCMP_SYS(socket), "(AF_UNIX)", 1, &unix_only);
		allow(p, SCMP_SYS(connect));
		struct scmp_arg_cmp sol_socket = INT_ARG(1, SOL_SOCKET);
		allow_if(p, SCMP_SYS(setsockopt), "(SOL_SOCKET)", 1, &sol_socket);
	}
}

void vmm_seccomp_needs_add(struct vmm_seccomp_needs *needs, const struct net_dev_config *cfg)
{
	switch (cfg->mode) {
	case NET_MODE_EMULATED:
		needs->tap = needs->emulated = true;
		break;
	case NET_MODE_VHOST_NET:
		needs->tap = needs->vhost_net = true;
		break;
	case NET_MODE_VHOST_USER:
		needs->vhost_user = true;
		if (!cfg->socket_server)
			needs->vhost_user_reconnect = true;
		break;
	}
}

bool vmm_seccomp_per_thread(void)
{
	return SECCOMP_PER_THREAD;
}

/* At --log-level debug, in lines the log does not truncate. */
static void log_profile(const struct profile *p)
{
	if (vnet_log_get_level() < VNET_LOG_DEBUG)
		return;
	const char *rest = p->names;
	while (*rest) {
		size_t n = strlen(rest);
		if (n > 360) {
			n = 360;
			while (n > 0 && rest[n] != ' ')
				n--;
		}
		vnet_debug("vnet-vmm: seccomp: allowed: %.*s", (int)n, rest);
		rest += n;
		while (*rest == ' ')
			rest++;
	}
	vnet_debug("vnet-vmm: seccomp: ioctl requests allowed: %s; any other call traps", p->ioctls);
}

static int fail(int rc, const char *what)
{
	vnet_err("vnet-vmm: seccomp: %s: %s (--seccomp=off runs without the filter)", what,
		 strerror(-rc));
	return rc;
}

int vmm_seccomp_install(const struct vmm_seccomp_needs *needs)
{
	/* The log's first gmtime_r() reads /etc/localtime: do it while allowed. */
	tzset();
	fill_name_table();
	struct profile p = { .ctx = seccomp_init(SCMP_ACT_TRAP) };
	if (!p.ctx)
		return fail(-ENOMEM, "cannot build the filter");
	if (seccomp_attr_set(p.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP) < 0 ||
	    seccomp_attr_set(p.ctx, SCMP_FLTATR_CTL_NNP, 1) < 0)
		p.rc = -EINVAL;
	/* A binary tree of syscall numbers: KVM_RUN's ioctl is on every exit. */
	(void)seccomp_attr_set(p.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	add_core(&p);
	add_needs(&p, needs);
	if (p.rc < 0) {
		seccomp_release(p.ctx);
		return fail(p.rc, "cannot build the filter");
	}

	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		seccomp_release(p.ctx);
		return fail(-errno, "cannot install the SIGSYS handler");
	}
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);

	log_profile(&p);
	if (SECCOMP_PER_THREAD) {
		pthread_mutex_lock(&thread_install_lock);
		per_thread_ctx = p.ctx;
		pthread_mutex_unlock(&thread_install_lock);
		vnet_info("vnet-vmm: seccomp: filter armed for each vCPU thread and its device threads "
			  "(sanitizer build: the main thread, which runs the exit-time leak check, "
			  "stays unfiltered)");
		return 0;
	}
	int rc = seccomp_attr_set(p.ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_load(p.ctx);
	seccomp_release(p.ctx);
	if (rc < 0)
		return fail(rc, "cannot install the filter on every thread");
	vnet_info("vnet-vmm: seccomp: filter installed on every thread");
	return 0;
}

int vmm_seccomp_enter_thread(void)
{
	pthread_mutex_lock(&thread_install_lock);
	int rc = per_thread_ctx ? seccomp_load(per_thread_ctx) : 0;
	pthread_mutex_unlock(&thread_install_lock);
	return rc < 0 ? fail(rc, "cannot install the filter on this thread") : 0;
}

void vmm_seccomp_selftest(void)
{
	const char *probe = getenv("VNET_VMM_SECCOMP_SELFTEST");
	if (!probe || !*probe)
		return;
	vnet_warn("vnet-vmm: seccomp self-test: calling %s, which the filter must block", probe);
	long r;
	if (!strcmp(probe, "openat")) {
		r = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY | O_CLOEXEC);
		if (r >= 0)
			close((int)r);
	} else if (!strcmp(probe, "execve")) {
		/* Not blocked: the VMM becomes true(1) and exits 0 without the message. */
		char *const argv[] = { (char *)"true", NULL }, *const envp[] = { NULL };
		r = syscall(SYS_execve, "/bin/true", argv, envp);
	} else if (!strcmp(probe, "socket")) {
		r = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r >= 0)
			close((int)r);
	} else if (!strcmp(probe, "ioctl")) {
		int pending;
		r = syscall(SYS_ioctl, STDIN_FILENO, FIONREAD, &pending);
	} else {
		vnet_err("vnet-vmm: seccomp self-test: unknown probe '%s' (openat, execve, socket, ioctl)",
			 probe);
		return;
	}
	vnet_err("vnet-vmm: seccomp self-test: %s was not blocked (returned %ld)", probe, r);
}
