/*
 * main.c — vnet-vmm: command line, start-up order, exit status.
 *
 *   vnet-vmm --kernel IMAGE [--initrd FILE] [--cmdline S] [--mem 256M]
 *            [--cpus N] [--net SPEC]... [--log-level L] [--seccomp on|off]
 *
 * Start-up order: VM and RAM, legacy devices and UART, NICs (each opens its
 * back-end now, so a missing tap or a dead socket fails before the guest
 * runs), then the kernel (after the NICs: virtio-mmio devices add their
 * hints to the command line), then the seccomp filter (seccomp.h: nothing
 * after this point opens a file or starts a process). Exit status: the
 * guest's (debug-exit port), 0 on a guest reset/reboot, 1 on a VMM error, 2 on a usage error,
 * 128+N on signal N.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/boot.h"
#include "vmm/legacy.h"
#include "vmm/net_dev.h"
#include "vmm/pci.h"
#include "vmm/seccomp.h"
#include "vmm/vmm.h"

#define MAX_NICS 4
#define DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vnet-vmm --kernel IMAGE [options]\n"
		"  --kernel IMAGE     Linux bzImage (boot protocol >= 2.06, 64-bit) or ELF64 executable\n"
		"  --initrd FILE      initial ramdisk\n"
		"  --cmdline S        kernel command line (default \"" DEFAULT_CMDLINE "\")\n"
		"  --mem SIZE         guest RAM, e.g. 256M or 1G (default 256M)\n"
		"  --cpus N           vCPUs (default 1, at most %d)\n"
		"  --net SPEC         a virtio-net NIC (up to %d), SPEC is one of\n"
		"      mode=emulated,tap=NAME     the VMM moves frames between the rings and a tap\n"
		"      mode=vhost-net,tap=NAME    the kernel's vhost-net serves the rings\n"
		"      mode=vhost-user,socket=PATH[,server=on]   a vhost-user back-end serves them\n"
		"    with optional ,mac=52:54:00:xx:xx:xx  ,transport=pci|mmio (default pci)  ,mtu=N\n"
		"  --log-level L      error|warn|info|debug (default warn)\n"
		"  --seccomp on|off   system-call filter on every thread once the VM is set up\n"
		"                     (default on; a forbidden call stops the VM with a message)\n"
		"The console is the guest's ttyS0 on stdin/stdout. Exit status: the guest's (a byte\n"
		"written to I/O port 0x501), 0 when the guest reboots, 1 on an error.\n",
		VMM_MAX_CPUS, MAX_NICS);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 0: shift = 20; break; /* plain numbers are MiB, as QEMU's -m */
	default: return -EINVAL;
	}
	if (*end || v == 0 || v > (1ull << (64 - 20 - 1)) >> (shift - (shift ? 10 : 0)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'p' },    { "net", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ "seccomp", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct boot_config boot = { .cmdline = DEFAULT_CMDLINE };
	struct vmm_config vcfg = { 0 };
	struct net_dev_config nets[MAX_NICS];
	unsigned nnets = 0;
	bool seccomp = true;
	char err[200];
	int c;

	vnet_log_set_level(VNET_LOG_WARN);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': boot.kernel = optarg; break;
		case 'i': boot.initrd = optarg; break;
		case 'c': boot.cmdline = optarg; break;
		case 'm':
			if (parse_size(optarg, &vcfg.mem_size) < 0) {
				fprintf(stderr, "vnet-vmm: --mem %s: not a size (e.g. 256M, 1G)\n", optarg);
				return 2;
			}
			break;
		case 'p': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > VMM_MAX_CPUS) {
				fprintf(stderr, "vnet-vmm: --cpus %s: 1..%d\n", optarg, VMM_MAX_CPUS);
				return 2;
			}
			vcfg.ncpus = (unsigned)n;
			break;
		}
		case 'n':
			if (nnets == MAX_NICS) {
				fprintf(stderr, "vnet-vmm: at most %d --net\n", MAX_NICS);
				return 2;
			}
			if (net_dev_parse(optarg, &nets[nnets], err, sizeof(err)) < 0) {
				fprintf(stderr, "vnet-vmm: --net %s: %s\n", optarg, err);
				return 2;
			}
			nnets++;
			break;
		case 'l': {
			int lvl = vnet_log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "vnet-vmm: --log-level %s: error|warn|info|debug\n", optarg);
				return 2;
			}
			vnet_log_set_level((enum vnet_log_level)lvl);
			break;
		}
		case 's':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vnet-vmm: --seccomp %s: on|off\n", optarg);
				return 2;
			}
			seccomp = !strcmp(optarg, "on");
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !boot.kernel) {
		fprintf(stderr, optind < argc ? "vnet-vmm: unexpected argument '%s'\n" : "vnet-vmm: --kernel is required\n",
			optind < argc ? argv[optind] : "");
		usage(stderr);
		return 2;
	}

	static struct vmm vmm;
	if (vmm_create(&vmm, &vcfg) < 0)
		return 1;
	struct net_dev *nics[MAX_NICS] = { 0 };
	int rc = legacy_init(&vmm);
	if (rc == 0)
		rc = serial_init(&vmm);
	if (rc == 0)
		rc = pci_init(&vmm); /* a PC has a host bridge even without PCI NICs */
	for (unsigned i = 0; i < nnets && rc == 0; i++)
		rc = net_dev_create(&vmm, &nets[i], i, &nics[i]);
	if (rc == 0)
		rc = boot_load(&vmm, &boot);
	if (rc == 0 && seccomp) {
		struct vmm_seccomp_needs needs = { 0 };
		for (unsigned i = 0; i < nnets; i++)
			vmm_seccomp_needs_add(&needs, &nets[i]);
		rc = vmm_seccomp_install(&needs);
	}
	int status = 1;
	if (rc == 0)
		status = vmm_run(&vmm);
	serial_flush();
	for (unsigned i = 0; i < nnets; i++)
		net_dev_destroy(nics[i]);
	pci_destroy(&vmm);
	vmm_destroy(&vmm);
	return status;
}
