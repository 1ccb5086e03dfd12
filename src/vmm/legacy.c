/*
 * legacy.c — i8042, CMOS RTC, ports 0x80/0x92 and the debug-exit port (legacy.h).
 */
#include "vmm/legacy.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "vnet/log.h"
#include "vmm/vmm.h"

/* --- i8042 ------------------------------------------------------------------ */

#define I8042_DATA 0x60
#define I8042_CMD  0x64
#define I8042_STATUS_OBF 0x01   /* output buffer full: a byte waits at 0x60 */
#define I8042_STATUS_SYS 0x04

static struct {
	pthread_mutex_t lock;
	uint8_t out;          /* byte for the next data-port read */
	bool out_full;
	uint8_t command_byte;
	bool expect_cmd_byte; /* the next data write is the command byte */
	struct vmm *vmm;
} kbd = { .lock = PTHREAD_MUTEX_INITIALIZER, .command_byte = 0x45 };

static void kbd_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	uint8_t v;
	pthread_mutex_lock(&kbd.lock);
	if (off == 0) {
		v = kbd.out;
		kbd.out_full = false;
	} else if (off == I8042_CMD - I8042_DATA) {
		v = (uint8_t)(I8042_STATUS_SYS | (kbd.out_full ? I8042_STATUS_OBF : 0));
	} else {
		v = 0;
	}
	pthread_mutex_unlock(&kbd.lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void kbd_reply(uint8_t v)
{
	kbd.out = v;
	kbd.out_full = true;
}

static void kbd_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)opaque;
	(void)len;
	uint8_t v = *(const uint8_t *)data;
	bool reset = false;
	pthread_mutex_lock(&kbd.lock);
	if (off == 0) {
		if (kbd.expect_cmd_byte)
			kbd.command_byte = v;
		kbd.expect_cmd_byte = false;
	} else if (off == I8042_CMD - I8042_DATA) {
		switch (v) {
		case 0x20: kbd_reply(kbd.command_byte); break;   /* read command byte */
		case 0x60: kbd.expect_cmd_byte = true; break;    /* write command byte */
		case 0xaa: kbd_reply(0x55); break;               /* self test: passed */
		case 0xab: kbd_reply(0x00); break;               /* port test: ok */
		case 0xfe: reset = true; break;                  /* pulse reset line */
		default: break;
		}
	}
	pthread_mutex_unlock(&kbd.lock);
	if (reset) {
		vnet_info("vnet-vmm: guest reset (i8042)");
		vmm_request_exit(kbd.vmm, 0);
	}
}

static const struct vmm_bus_ops kbd_ops = { kbd_read, kbd_write };

/* --- CMOS RTC --------------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[128];
} cmos = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t cmos_reg(uint8_t reg)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	switch (reg) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd((1900 + tm.tm_year) / 100);
	case 0x0a: return 0x26;  /* 32.768 kHz, no update in progress */
	case 0x0b: return 0x02;  /* 24-hour, BCD */
	case 0x0c: return 0x00;
	case 0x0d: return 0x80;  /* battery good */
	default:   return cmos.ram[reg & 0x7f];
	}
}

static void cmos_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&cmos.lock);
	*(uint8_t *)data = off == 0 ? cmos.index : cmos_reg(cmos.index & 0x7f);
	pthread_mutex_unlock(&cmos.lock);
}

static void cmos_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)opaque;
	(void)len;
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&cmos.lock);
	if (off == 0)
		cmos.index = v & 0x7f; /* bit 7 is the NMI mask */
	else if (cmos.index >= 0x0e)
		cmos.ram[cmos.index] = v;
	pthread_mutex_unlock(&cmos.lock);
}

static const struct vmm_bus_ops cmos_ops = { cmos_read, cmos_write };

/* --- ports 0x80, 0x92, debug exit ------------------------------------------------ */

static void sink_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len);
}

static void sink_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)opaque;
	(void)off;
	(void)data;
	(void)len;
}

static const struct vmm_bus_ops sink_ops = { sink_read, sink_write };

static void port92_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	(void)len;
	if (*(const uint8_t *)data & 1) {
		vnet_info("vnet-vmm: guest reset (port 0x92)");
		vmm_request_exit(opaque, 0);
	}
}

static const struct vmm_bus_ops port92_ops = { sink_read, port92_write };

static void debug_exit_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	(void)len;
	uint8_t code = *(const uint8_t *)data;
	vnet_info("vnet-vmm: guest exit with status %u", code);
	vmm_request_exit(opaque, code);
}

static const struct vmm_bus_ops debug_exit_ops = { sink_read, debug_exit_write };

int legacy_init(struct vmm *vmm)
{
	kbd.vmm = vmm;
	int rc = 0;
	/* One range 0x60..0x64: 0x61 inside it is the in-kernel PIT's speaker
	 * port, which KVM serves before any exit. */
	rc = rc ? rc : vmm_bus_register(&vmm->pio, I8042_DATA, I8042_CMD - I8042_DATA + 1, &kbd_ops, NULL,
					"i8042");
	rc = rc ? rc : vmm_bus_register(&vmm->pio, 0x70, 2, &cmos_ops, NULL, "rtc");
	rc = rc ? rc : vmm_bus_register(&vmm->pio, 0x80, 1, &sink_ops, NULL, "post");
	rc = rc ? rc : vmm_bus_register(&vmm->pio, 0x92, 1, &port92_ops, vmm, "port92");
	rc = rc ? rc : vmm_bus_register(&vmm->pio, VMM_DEBUG_EXIT_PORT, 1, &debug_exit_ops, vmm, "debug-exit");
	if (rc < 0)
		vnet_err("vnet-vmm: legacy devices: %d", rc);
	return rc;
}
