/*
 * serial.c — a 16550A UART at 0x3f8, IRQ 4 (legacy.h). Enough of the chip
 * for Linux's 8250 driver: divisor latch, IER/IIR with THR-empty and
 * receive-data interrupts, FIFO control, LSR, MSR, scratch. Transmission is
 * instant (THR is always empty again), so the THRE interrupt is pending
 * whenever it is enabled and was not just acknowledged by an IIR read. The
 * IRQ line follows "an interrupt is pending" after every access.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/legacy.h"
#include "vmm/vmm.h"

#define COM1_BASE 0x3f8
#define COM1_IRQ  4

#define UART_IER_RDI  0x01
#define UART_IER_THRI 0x02
#define UART_IIR_NONE 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI  0x04
#define UART_IIR_FIFO 0xc0
#define UART_LCR_DLAB 0x80
#define UART_LSR_DR   0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MCR_LOOP 0x10
#define UART_FCR_ENABLE 0x01

#define RX_FIFO 64

static struct {
	pthread_mutex_t lock;
	struct vmm *vmm;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thre_pending;          /* THR-empty interrupt not yet acknowledged */
	uint8_t rx[RX_FIFO];
	unsigned rx_head, rx_count;
	bool line;                  /* current IRQ line level */
	char out[256];
	size_t out_len;
	pthread_t reader;
} uart = { .lock = PTHREAD_MUTEX_INITIALIZER, .dll = 12 };

static void flush_locked(void)
{
	size_t off = 0;
	while (off < uart.out_len) {
		ssize_t n = write(STDOUT_FILENO, uart.out + off, uart.out_len - off);
		if (n <= 0 && errno != EINTR)
			break;
		if (n > 0)
			off += (size_t)n;
	}
	uart.out_len = 0;
}

void serial_flush(void)
{
	pthread_mutex_lock(&uart.lock);
	flush_locked();
	pthread_mutex_unlock(&uart.lock);
}

static uint8_t iir_locked(void)
{
	uint8_t fifo = (uart.fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;
	if ((uart.ier & UART_IER_RDI) && uart.rx_count)
		return fifo | UART_IIR_RDI;
	if ((uart.ier & UART_IER_THRI) && uart.thre_pending)
		return fifo | UART_IIR_THRI;
	return fifo | UART_IIR_NONE;
}

static void update_irq_locked(void)
{
	bool level = !(iir_locked() & UART_IIR_NONE);
	if (level != uart.line) {
		uart.line = level;
		vmm_irq_line(uart.vmm, COM1_IRQ, level);
	}
}

static void uart_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	uint8_t v = 0;
	pthread_mutex_lock(&uart.lock);
	bool dlab = uart.lcr & UART_LCR_DLAB;
	switch (off) {
	case 0:
		if (dlab) {
			v = uart.dll;
		} else if (uart.rx_count) {
			v = uart.rx[uart.rx_head];
			uart.rx_head = (uart.rx_head + 1) % RX_FIFO;
			uart.rx_count--;
		}
		break;
	case 1: v = dlab ? uart.dlm : uart.ier; break;
	case 2:
		v = iir_locked();
		if ((v & 0x0f) == UART_IIR_THRI)
			uart.thre_pending = false; /* reading IIR acknowledges THRE */
		break;
	case 3: v = uart.lcr; break;
	case 4: v = uart.mcr; break;
	case 5: v = UART_LSR_THRE | UART_LSR_TEMT | (uart.rx_count ? UART_LSR_DR : 0); break;
	case 6:
		/* In loopback, MSR mirrors MCR (Linux's probe checks it); else
		 * carrier, data-set-ready and clear-to-send are up. */
		if (uart.mcr & UART_MCR_LOOP)
			v = (uint8_t)(((uart.mcr & 1) << 5) | ((uart.mcr & 2) << 3) | ((uart.mcr & 4) << 4) |
				      ((uart.mcr & 8) << 4));
		else
			v = 0xb0;
		break;
	case 7: v = uart.scr; break;
	}
	update_irq_locked();
	pthread_mutex_unlock(&uart.lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void uart_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)opaque;
	(void)len;
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&uart.lock);
	bool dlab = uart.lcr & UART_LCR_DLAB;
	switch (off) {
	case 0:
		if (dlab) {
			uart.dll = v;
		} else if (!(uart.mcr & UART_MCR_LOOP)) {
			uart.out[uart.out_len++] = (char)v;
			if (v == '\n' || uart.out_len == sizeof(uart.out))
				flush_locked();
			uart.thre_pending = true;
		} else if (uart.rx_count < RX_FIFO) {
			uart.rx[(uart.rx_head + uart.rx_count++) % RX_FIFO] = v;
			uart.thre_pending = true;
		}
		break;
	case 1:
		if (dlab) {
			uart.dlm = v;
		} else {
			/* Enabling THRI with an empty THR raises the interrupt at once. */
			if ((v & UART_IER_THRI) && !(uart.ier & UART_IER_THRI))
				uart.thre_pending = true;
			uart.ier = v & 0x0f;
		}
		break;
	case 2:
		uart.fcr = v;
		if (v & 0x02) { /* clear receive FIFO */
			uart.rx_count = 0;
			uart.rx_head = 0;
		}
		break;
	case 3: uart.lcr = v; break;
	case 4: uart.mcr = v & 0x1f; break;
	case 7: uart.scr = v; break;
	default: break;
	}
	update_irq_locked();
	pthread_mutex_unlock(&uart.lock);
}

static const struct vmm_bus_ops uart_ops = { uart_read, uart_write };

/* Feeds stdin to the receive FIFO; a full FIFO waits for the guest to read. */
static void *reader_thread(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "serial-in");
	uint8_t buf[64];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			return NULL;
		for (ssize_t i = 0; i < n;) {
			pthread_mutex_lock(&uart.lock);
			while (i < n && uart.rx_count < RX_FIFO)
				uart.rx[(uart.rx_head + uart.rx_count++) % RX_FIFO] = buf[i++];
			update_irq_locked();
			pthread_mutex_unlock(&uart.lock);
			if (i < n)
				poll(NULL, 0, 1);
		}
	}
}

int serial_init(struct vmm *vmm)
{
	uart.vmm = vmm;
	int rc = vmm_bus_register(&vmm->pio, COM1_BASE, 8, &uart_ops, NULL, "ttyS0");
	if (rc < 0)
		return rc;
	/* Only when stdin can deliver anything; the thread is detached and
	 * dies with the process. */
	if (fcntl(STDIN_FILENO, F_GETFD) != -1) {
		if (pthread_create(&uart.reader, NULL, reader_thread, NULL) == 0)
			pthread_detach(uart.reader);
	}
	return 0;
}
