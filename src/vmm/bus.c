/*
 * bus.c — device ranges of one address space and exit dispatch (bus.h).
 * A linear scan: a VM has a dozen ranges, and an exit costs microseconds
 * anyway; the last hit is tried first because exits come in runs.
 */
#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

#include "vnet/log.h"

void vmm_bus_init(struct vmm_bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	pthread_rwlock_init(&bus->lock, NULL);
}

void vmm_bus_destroy(struct vmm_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static bool overlaps(const struct vmm_bus *bus, uint64_t base, uint64_t len, int skip)
{
	for (unsigned i = 0; i < bus->n; i++) {
		const struct vmm_bus_range *r = &bus->ranges[i];
		if ((int)i != skip && base < r->base + r->len && r->base < base + len)
			return true;
	}
	return false;
}

int vmm_bus_register(struct vmm_bus *bus, uint64_t base, uint64_t len, const struct vmm_bus_ops *ops,
		     void *opaque, const char *name)
{
	if (len == 0 || base + len < base)
		return -EINVAL;
	int rc = 0;
	pthread_rwlock_wrlock(&bus->lock);
	if (bus->n == VMM_BUS_MAX_RANGES)
		rc = -ENOSPC;
	else if (overlaps(bus, base, len, -1))
		rc = -EBUSY;
	else
		bus->ranges[bus->n++] = (struct vmm_bus_range){ base, len, ops, opaque, name };
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

static int find(const struct vmm_bus *bus, uint64_t base, void *opaque)
{
	for (unsigned i = 0; i < bus->n; i++)
		if (bus->ranges[i].base == base && bus->ranges[i].opaque == opaque)
			return (int)i;
	return -1;
}

int vmm_bus_unregister(struct vmm_bus *bus, uint64_t base, void *opaque)
{
	pthread_rwlock_wrlock(&bus->lock);
	int i = find(bus, base, opaque);
	if (i >= 0)
		bus->ranges[i] = bus->ranges[--bus->n];
	pthread_rwlock_unlock(&bus->lock);
	return i >= 0 ? 0 : -ENOENT;
}

int vmm_bus_move(struct vmm_bus *bus, uint64_t old_base, void *opaque, uint64_t new_base)
{
	int rc = 0;
	pthread_rwlock_wrlock(&bus->lock);
	int i = find(bus, old_base, opaque);
	if (i < 0)
		rc = -ENOENT;
	else if (new_base + bus->ranges[i].len < new_base ||
		 overlaps(bus, new_base, bus->ranges[i].len, i))
		rc = -EBUSY;
	else
		bus->ranges[i].base = new_base;
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

static void log_unclaimed(struct vmm_bus *bus, uint64_t addr, bool is_write)
{
	/* Racy on purpose: at worst an address is logged twice. */
	for (unsigned i = 0; i < sizeof(bus->unclaimed_logged) / sizeof(bus->unclaimed_logged[0]); i++) {
		if (bus->unclaimed_logged[i] == addr + 1)
			return;
		if (bus->unclaimed_logged[i] == 0) {
			bus->unclaimed_logged[i] = addr + 1;
			vnet_debug("vnet-vmm: %s %s at 0x%llx: no device", bus->name,
				       is_write ? "write" : "read", (unsigned long long)addr);
			return;
		}
	}
}

bool vmm_bus_access(struct vmm_bus *bus, uint64_t addr, void *data, unsigned len, bool is_write)
{
	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned i = 0; i < bus->n; i++) {
		const struct vmm_bus_range *r = &bus->ranges[i];
		if (addr < r->base || addr - r->base >= r->len)
			continue;
		uint64_t off = addr - r->base;
		if (is_write)
			r->ops->write(r->opaque, off, data, len);
		else
			r->ops->read(r->opaque, off, data, len);
		pthread_rwlock_unlock(&bus->lock);
		return true;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!is_write)
		memset(data, 0xff, len);
	log_unclaimed(bus, addr, is_write);
	return false;
}
