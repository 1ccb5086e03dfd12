/*
 * vnet-outb — writes one byte to an x86 I/O port: `vnet-outb PORT VALUE`
 * (numbers in C notation: 0x501, 1281, 0). The lab's nested guest ends its
 * VMM through the debug-exit port (0x501, the byte is the exit status) with
 * it; Debian's kernels are built without CONFIG_DEVPORT, so busybox dd on
 * /dev/port cannot do it. Built static by tests/lab/build-lab.sh into the L2
 * initramfs as /bin/vnet-outb (tests/guest/init.sh uses it for vnet.exit=port).
 * Needs CAP_SYS_RAWIO (root) and CONFIG_X86_IOPL_IOPERM. Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>

static int parse(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || end == s || *end || *out > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long port, value;

	if (argc != 3 || parse(argv[1], 0xffff, &port) || parse(argv[2], 0xff, &value)) {
		fprintf(stderr, "usage: vnet-outb PORT(0..0xffff) VALUE(0..0xff)\n");
		return 2;
	}
	if (ioperm(port, 1, 1)) {
		fprintf(stderr, "vnet-outb: ioperm 0x%lx: %s\n", port, strerror(errno));
		return 1;
	}
	outb((unsigned char)value, (unsigned short)port);
	return 0;
}
