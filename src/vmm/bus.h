/*
 * bus.h — an address space of device ranges (port I/O or MMIO) and the
 * dispatch of a vCPU's exit to the device that owns the address. Each device
 * registers ranges with an ops table; an access that hits no range reads as
 * all-ones and writes are ignored (logged once per address, as hardware
 * ignores unclaimed cycles).
 *
 * Thread-safety: vmm_bus_access() takes a read lock and may run on every
 * vCPU thread at once; register/unregister/move take the write lock, so a
 * device may move its range (PCI BAR reprogramming) while vCPUs run. Device
 * callbacks run on vCPU threads, concurrently for different vCPUs: devices
 * lock their own state.
 */
#ifndef VNET_VMM_BUS_H
#define VNET_VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VMM_BUS_MAX_RANGES 64

struct vmm_bus_ops {
	/* `off` is relative to the range's base; len is 1, 2, 4 or 8;
	 * data is little-endian bytes. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned len);
};

struct vmm_bus_range {
	uint64_t base, len;
	const struct vmm_bus_ops *ops;
	void *opaque;
	const char *name;
};

struct vmm_bus {
	const char *name;                  /* "pio" / "mmio", for logs */
	pthread_rwlock_t lock;
	unsigned n;
	struct vmm_bus_range ranges[VMM_BUS_MAX_RANGES];
	uint64_t unclaimed_logged[8];      /* a few addresses already logged */
};

void vmm_bus_init(struct vmm_bus *bus, const char *name);
void vmm_bus_destroy(struct vmm_bus *bus);
/* -EBUSY when it overlaps a range, -ENOSPC when full, -EINVAL when len 0 or wraps. */
int vmm_bus_register(struct vmm_bus *bus, uint64_t base, uint64_t len, const struct vmm_bus_ops *ops,
		     void *opaque, const char *name);
/* Removes the range registered with (base, opaque); -ENOENT if none. */
int vmm_bus_unregister(struct vmm_bus *bus, uint64_t base, void *opaque);
/* Moves the range at (old_base, opaque) to new_base; -EBUSY on overlap. */
int vmm_bus_move(struct vmm_bus *bus, uint64_t old_base, void *opaque, uint64_t new_base);
/* Dispatches one access; returns false when no device claims it. */
bool vmm_bus_access(struct vmm_bus *bus, uint64_t addr, void *data, unsigned len, bool is_write);

#endif
