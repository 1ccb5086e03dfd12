/*
 * tiny.c — main sequence of vnet's tiny test guest, plus its console
 * (8250 UART at 0x3f8), exception handler, command line and the few
 * library functions a freestanding program needs.
 *
 * What it does, driven by the kernel command line (README.md):
 *   TINY-BOOT, TINY-CMDLINE, [tiny.bad scenario: TINY-STATUS, TINY-BAD],
 *   bring-up of the virtio-mmio NIC (TINY-READY), tiny.tx UDP frames
 *   (TINY-SENT), ARP/ping service until tiny.pings echo requests are
 *   answered and tiny.rx frames received, TINY-RESULT, TINY-DONE, exit status 0 through port 0x501.
 *   Any failure prints TINY-ERROR and exits non-zero; every wait is bounded.
 *
 * Thread-safety: one CPU, interrupts off; nothing is shared.
 */
#include "tiny.h"

void tiny_main(const uint8_t *boot_params);
void tiny_fault(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2);

#define UART_THR 0x3f8
#define UART_LSR 0x3fd
#define UART_LSR_THRE 0x20
#define DEBUG_EXIT_PORT 0x501

/* boot_params offsets (Linux Documentation/arch/x86/zero-page.rst) */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_CMD_LINE_PTR 0x228
#define CMDLINE_MAX 2048

/* We cannot ask anyone the TSC frequency cheaply: assume a fast one, so
 * that timeouts come out long rather than short on a slower host. */
#define TSC_KHZ_GUESS 3000000ull
#define TX_WAIT_MS 10000
#define STATUS_CHECK_MS 200

/* --- library ----------------------------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

uint64_t tiny_deadline(uint64_t ms)
{
	return rdtsc() + ms * TSC_KHZ_GUESS;
}

bool tiny_expired(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

/* --- console ----------------------------------------------------------- */

static void uart_putc(char c)
{
	/* Bounded: a VMM without a UART must not hang us here. */
	for (unsigned i = 0; i < 100000 && !(inb(UART_LSR) & UART_LSR_THRE); i++)
		cpu_relax();
	outb(UART_THR, (uint8_t)c);
}

static void put_str(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, unsigned width, char pad)
{
	char buf[24];
	unsigned n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	for (; width > n; width--)
		uart_putc(pad);
	while (n)
		uart_putc(buf[--n]);
}

/* %s %c %d %u %x with optional 0-padding, width and 'l'. */
static void vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		unsigned width = 0;
		bool is_long = false;
		char pad = ' ';
		int64_t sv;

		if (*fmt != '%') {
			uart_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		if (*fmt == 'l') {
			is_long = true;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			put_str(s ? s : "(null)");
			break;
		}
		case 'c':
			uart_putc((char)va_arg(ap, int));
			break;
		case 'd':
			sv = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (sv < 0) {
				uart_putc('-');
				sv = -sv;
			}
			put_num((uint64_t)sv, 10, width, pad);
			break;
		case 'u':
		case 'x':
			put_num(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned),
				*fmt == 'u' ? 10 : 16, width, pad);
			break;
		case '\0':
			return;
		default:
			uart_putc(*fmt);
			break;
		}
	}
}

void tiny_print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

_Noreturn void tiny_exit(int code)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)code);
	/* Only a VMM without the exit port gets here. */
	for (;;)
		__asm__ volatile("cli; hlt");
}

_Noreturn void tiny_error(int code, const char *fmt, ...)
{
	va_list ap;

	put_str("TINY-ERROR ");
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	uart_putc('\n');
	tiny_exit(code);
}

/* --- exceptions -------------------------------------------------------- */

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t tiny_exception_stubs[32];
static struct idt_gate idt[32] __attribute__((aligned(16)));

static void idt_setup(void)
{
	struct idt_pointer idtr;
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	for (unsigned i = 0; i < 32; i++) {
		uint64_t a = tiny_exception_stubs[i];

		idt[i] = (struct idt_gate){
			.offset_low = (uint16_t)a,
			.selector = cs,
			.type_attr = 0x8e,   /* present, DPL 0, 64-bit interrupt gate */
			.offset_mid = (uint16_t)(a >> 16),
			.offset_high = (uint32_t)(a >> 32),
		};
	}
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void tiny_fault(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2)
{
	tiny_print("TINY-FAULT vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx\n", (unsigned long)vector,
		   (unsigned long)error, (unsigned long)rip, (unsigned long)cr2);
	tiny_exit(TINY_EXIT_FAULT);
}

/* --- command line -------------------------------------------------------- */

struct param {
	const char *val;
	unsigned len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* The value of the first "key=value" token, or false. */
static bool param_get(const char *cmdline, const char *key, struct param *p)
{
	size_t klen = strlen(key);
	const char *s = cmdline;

	while (*s) {
		const char *tok;

		while (is_space(*s))
			s++;
		tok = s;
		while (*s && !is_space(*s))
			s++;
		if ((size_t)(s - tok) > klen && !memcmp(tok, key, klen) && tok[klen] == '=') {
			p->val = tok + klen + 1;
			p->len = (unsigned)(s - p->val);
			return true;
		}
	}
	return false;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Linux memparse(): 0x hex, leading-0 octal, decimal; K/M/G suffix.
 * Advances *s; false when no digit was there. */
static bool parse_number(const char **s, const char *end, uint64_t *out)
{
	const char *p = *s;
	unsigned base = 10;
	uint64_t v = 0;
	bool any = false;

	if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (end - p > 1 && p[0] == '0') {
		base = 8;
	}
	while (p < end && digit_value(*p) < (int)base) {
		v = v * base + (unsigned)digit_value(*p++);
		any = true;
	}
	if (p < end && (*p == 'K' || *p == 'k'))
		v <<= 10, p++;
	else if (p < end && (*p == 'M' || *p == 'm'))
		v <<= 20, p++;
	else if (p < end && (*p == 'G' || *p == 'g'))
		v <<= 30, p++;
	*s = p;
	*out = v;
	return any;
}

static uint64_t param_number(const char *cmdline, const char *key, uint64_t def)
{
	struct param p;
	const char *s;
	uint64_t v;

	if (!param_get(cmdline, key, &p))
		return def;
	s = p.val;
	if (!parse_number(&s, p.val + p.len, &v) || s != p.val + p.len)
		tiny_error(TINY_EXIT_USAGE, "%s: not a number", key);
	return v;
}

static uint32_t param_ip(const char *cmdline, const char *key, uint32_t def)
{
	struct param p;
	const char *s, *end;
	uint32_t ip = 0;

	if (!param_get(cmdline, key, &p))
		return def;
	s = p.val;
	end = p.val + p.len;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t octet = 0;
		unsigned digits = 0;

		while (s < end && *s >= '0' && *s <= '9' && digits < 4) {
			octet = octet * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || octet > 255 || (i < 3 && (s >= end || *s++ != '.')))
			tiny_error(TINY_EXIT_USAGE, "%s: not an IPv4 address", key);
		ip = ip << 8 | (uint32_t)octet;
	}
	if (s != end)
		tiny_error(TINY_EXIT_USAGE, "%s: not an IPv4 address", key);
	return ip;
}

static bool param_mac(const char *cmdline, const char *key, uint8_t mac[6])
{
	struct param p;

	if (!param_get(cmdline, key, &p))
		return false;
	if (p.len != 17)
		tiny_error(TINY_EXIT_USAGE, "%s: not a MAC address", key);
	for (unsigned i = 0; i < 6; i++) {
		int hi = digit_value(p.val[3 * i]), lo = digit_value(p.val[3 * i + 1]);

		if (hi > 15 || lo > 15 || (i < 5 && p.val[3 * i + 2] != ':'))
			tiny_error(TINY_EXIT_USAGE, "%s: not a MAC address", key);
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* "virtio_mmio.device=<size>@<base>:<irq>[:<id>]" as Linux parses it. */
static uintptr_t find_device(const char *cmdline)
{
	struct param p;
	const char *s, *end;
	uint64_t size, base, irq;

	if (!param_get(cmdline, "virtio_mmio.device", &p))
		tiny_error(TINY_EXIT_USAGE, "no virtio_mmio.device= on the command line");
	s = p.val;
	end = p.val + p.len;
	if (!parse_number(&s, end, &size) || s >= end || *s++ != '@' ||
	    !parse_number(&s, end, &base) || s >= end || *s++ != ':' ||
	    !parse_number(&s, end, &irq))
		tiny_error(TINY_EXIT_USAGE, "cannot parse virtio_mmio.device= (want <size>@<base>:<irq>)");
	if (size < 0x100 + 6 || base == 0 || base + size > 0x100000000ull)
		tiny_error(TINY_EXIT_USAGE, "virtio_mmio.device window 0x%lx@0x%lx unusable "
			   "(must lie below 4 GiB, the identity map)", (unsigned long)size,
			   (unsigned long)base);
	return (uintptr_t)base;
}

static const char *boot_cmdline(const uint8_t *bp)
{
	uint32_t lo, hi;
	uint64_t addr;

	memcpy(&lo, bp + BP_CMD_LINE_PTR, 4);
	memcpy(&hi, bp + BP_EXT_CMD_LINE_PTR, 4);
	addr = (uint64_t)hi << 32 | lo;
	if (addr == 0 || addr >= 0x100000000ull)
		return "";
	return (const char *)(uintptr_t)addr;
}

/* --- the test sequence ---------------------------------------------------- */

static struct vnic nic;
static struct net_cfg net;
static uint8_t reply[VQ_BUF_SIZE - VNET_HDR_LEN];
static uint64_t rx_frames, pings_answered;

static uint8_t *tx_alloc_wait(uint16_t *id)
{
	uint64_t deadline = tiny_deadline(TX_WAIT_MS);
	uint8_t *buf;

	while (!(buf = vnic_tx_alloc(&nic, id))) {
		if (tiny_expired(deadline))
			tiny_error(TINY_EXIT_TIMEOUT, "timeout: no tx buffer back from the device "
				   "(status 0x%x)", vnic_read(&nic, VMMIO_STATUS));
		cpu_relax();
	}
	return buf;
}

static void send_udp(uint64_t count)
{
	unsigned batch = 0;

	for (uint64_t seq = 0; seq < count; seq++) {
		uint16_t id;
		uint8_t *f;

		if (nic.tx.nfree == 0 && batch) {
			vnic_kick(&nic, &nic.tx);
			batch = 0;
		}
		f = tx_alloc_wait(&id);
		vnic_tx_post(&nic, id, net_build_udp(&net, f, (uint32_t)seq));
		batch++;
	}
	if (batch)
		vnic_kick(&nic, &nic.tx);
	vnic_tx_drain(&nic, tiny_deadline(TX_WAIT_MS));
}

/* Handles every frame the device has delivered; returns pings answered. */
static unsigned serve_rx(void)
{
	unsigned pings = 0, reposted = 0, replies = 0;
	const uint8_t *f;
	unsigned len, rlen;
	uint16_t id;

	while ((f = vnic_rx_next(&nic, &id, &len))) {
		enum net_verdict v = net_answer(&net, f, len, reply, &rlen);

		rx_frames++;
		vnic_rx_repost(&nic, id);
		reposted++;
		if (v == NET_IGNORE)
			continue;
		memcpy(tx_alloc_wait(&id), reply, rlen);
		vnic_tx_post(&nic, id, rlen);
		replies++;
		if (v == NET_PING_REPLY)
			pings++;
	}
	if (reposted)
		vnic_kick(&nic, &nic.rx);
	if (replies)
		vnic_kick(&nic, &nic.tx);
	vnic_tx_reclaim(&nic);
	return pings;
}

static void check_status(void)
{
	uint32_t status = vnic_read(&nic, VMMIO_STATUS);

	if (status & (VSTAT_NEEDS_RESET | VSTAT_FAILED))
		tiny_error(TINY_EXIT_DEVICE, "device status 0x%x (needs reset) while serving", status);
}

static void serve(uint64_t want_pings, uint64_t want_rx, uint64_t wait_ms)
{
	uint64_t deadline = tiny_deadline(wait_ms), next_check = tiny_deadline(STATUS_CHECK_MS);

	while (pings_answered < want_pings || rx_frames < want_rx) {
		unsigned got = serve_rx();

		if (got) {
			pings_answered += got;
			continue;
		}
		if (tiny_expired(next_check)) {
			check_status();
			next_check = tiny_deadline(STATUS_CHECK_MS);
		}
		if (tiny_expired(deadline))
			tiny_error(TINY_EXIT_TIMEOUT, "timeout: answered %lu of %lu pings, received "
				   "%lu of %lu frames in %lu ms", (unsigned long)pings_answered,
				   (unsigned long)want_pings, (unsigned long)rx_frames,
				   (unsigned long)want_rx, (unsigned long)wait_ms);
		cpu_relax();
	}
	/* The last reply must have left before the VM ends. */
	vnic_tx_drain(&nic, tiny_deadline(TX_WAIT_MS));
}

void tiny_main(const uint8_t *boot_params)
{
	static const uint8_t default_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
	const char *cmdline;
	struct param bad = { 0 };
	uint64_t tx, pings, rx, qsize;
	char bad_name[32];

	idt_setup();
	cmdline = boot_cmdline(boot_params);
	if (strlen(cmdline) > CMDLINE_MAX)
		tiny_error(TINY_EXIT_USAGE, "command line longer than %u bytes", CMDLINE_MAX);
	tiny_print("TINY-BOOT\n");
	tiny_print("TINY-CMDLINE %s\n", cmdline);

	net.ip = param_ip(cmdline, "tiny.ip", 0x0a000002);
	net.dst = param_ip(cmdline, "tiny.dst", 0x0a000001);
	tx = param_number(cmdline, "tiny.tx", 0);
	pings = param_number(cmdline, "tiny.pings", 0);
	rx = param_number(cmdline, "tiny.rx", 0);
	qsize = param_number(cmdline, "tiny.qsize", 64);
	if (qsize == 0 || qsize > VQ_MAX_SIZE || (qsize & (qsize - 1)))
		tiny_error(TINY_EXIT_USAGE, "tiny.qsize=%lu: want a power of two in 1..%u",
			   (unsigned long)qsize, VQ_MAX_SIZE);
	nic.qsize = (uint16_t)qsize;
	nic.want = param_number(cmdline, "tiny.features", 0);
	if (param_get(cmdline, "tiny.bad", &bad)) {
		if (bad.len >= sizeof(bad_name))
			tiny_error(TINY_EXIT_USAGE, "tiny.bad: unknown scenario");
		memcpy(bad_name, bad.val, bad.len);
		bad_name[bad.len] = '\0';
		if (!bad_known(bad_name))
			tiny_error(TINY_EXIT_USAGE, "tiny.bad=%s: unknown scenario", bad_name);
	}
	if (param_number(cmdline, "tiny.fault", 0))
		__asm__ volatile("ud2");

	vnic_probe(&nic, find_device(cmdline));
	if (bad.val)
		bad_run(&nic, bad_name);
	vnic_bringup(&nic);
	if (nic.features & VIRTIO_NET_F_MAC)
		memcpy(net.mac, nic.mac, 6);
	else if (!param_mac(cmdline, "tiny.mac", net.mac))
		memcpy(net.mac, default_mac, 6);
	tiny_print("TINY-READY mac=%02x:%02x:%02x:%02x:%02x:%02x features=0x%lx qsize=%u/%u\n",
		   net.mac[0], net.mac[1], net.mac[2], net.mac[3], net.mac[4], net.mac[5],
		   (unsigned long)nic.features, nic.rx.size, nic.tx.size);

	send_udp(tx);
	tiny_print("TINY-SENT tx=%lu\n", (unsigned long)tx);
	serve(pings, rx, param_number(cmdline, "tiny.wait", 60) * 1000);
	pings_answered += serve_rx();   /* count what else arrived */
	check_status();
	tiny_print("TINY-RESULT tx=%lu rx=%lu pings=%lu\n", (unsigned long)tx,
		   (unsigned long)rx_frames, (unsigned long)pings_answered);
	tiny_print("TINY-DONE rc=0\n");
	tiny_exit(TINY_EXIT_OK);
}
