/*
 * legacy.h — the PC platform bits a Linux guest without BIOS or ACPI
 * expects (legacy.c): the i8042 keyboard controller (only so that
 * `reboot=k` — command 0xfe — resets, which ends the VM with status 0), the
 * CMOS real-time clock (host time, so boot does not wait on an update
 * flag that never clears), port 0x80 (POST/io-delay) and port 0x92 (fast
 * reset), plus the debug-exit port VMM_DEBUG_EXIT_PORT for test guests.
 * The 8250 UART is serial.h. The PIT and PIC are in the kernel.
 *
 * Thread-safety: registers are accessed from vCPU threads under a lock.
 */
#ifndef VNET_VMM_LEGACY_H
#define VNET_VMM_LEGACY_H

struct vmm;

int legacy_init(struct vmm *vmm);

/*
 * serial.c: 16550A UART at 0x3f8 (IRQ 4). Transmit goes to stdout, line
 * by line; receive comes from stdin (a reader thread) when stdin is
 * readable. serial_flush() writes out a partial line (at exit).
 */
int serial_init(struct vmm *vmm);
void serial_flush(void);

#endif
