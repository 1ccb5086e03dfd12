/*
 * fakevm.c — vnet-vmm devices without KVM (fakevm.h).
 */
#include "fakevm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

void fakevm_init(struct vmm *vm, uint64_t low, uint64_t high)
{
	memset(vm, 0, sizeof(*vm));
	vm->mem_fd = memfd_create("vnet-fakevm", MFD_CLOEXEC);
	assert_true(vm->mem_fd >= 0);
	assert_int_equal(ftruncate(vm->mem_fd, (off_t)(low + high)), 0);
	vm->mem = mmap(NULL, low + high, PROT_READ | PROT_WRITE, MAP_SHARED, vm->mem_fd, 0);
	assert_true(vm->mem != MAP_FAILED);
	vm->mem_size = low + high;
	vm->low_size = low;
	vm->nregions = high ? 2 : 1;
	vm->regions[0] = (struct vnet_mem_region){ .gpa = 0, .size = low, .uaddr = (uintptr_t)vm->mem,
						   .host = vm->mem };
	if (high)
		vm->regions[1] = (struct vnet_mem_region){ .gpa = VMM_HIGH_RAM_BASE, .size = high,
							   .uaddr = (uintptr_t)vm->mem + low,
							   .host = vm->mem + low };
	assert_int_equal(vnet_guestmem_init(&vm->gm), 0);
	struct vnet_mem_table *t = vnet_mem_table_new(vm->regions, vm->nregions, NULL, 0);
	assert_non_null(t);
	vnet_mem_table_free(vnet_guestmem_replace(&vm->gm, t));
}

void fakevm_fini(struct vmm *vm)
{
	vnet_guestmem_destroy(&vm->gm);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	vm->mem = NULL;
	vm->mem_fd = -1;
}

void *fakevm_host(struct vmm *vm, uint64_t gpa)
{
	return vmm_gpa_to_host(vm, gpa, 1);
}

bool fakevm_negotiate(struct virtio_dev *dev, uint64_t features)
{
	virtio_dev_write_status(dev, 0);
	virtio_dev_write_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	dev->driver_features_sel = 0;
	virtio_dev_write_driver_features(dev, (uint32_t)features);
	dev->driver_features_sel = 1;
	virtio_dev_write_driver_features(dev, (uint32_t)(features >> 32));
	virtio_dev_write_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					     VIRTIO_STATUS_FEATURES_OK);
	return virtio_dev_read_status(dev) & VIRTIO_STATUS_FEATURES_OK;
}

bool fakevm_driver_start(struct vmm *vm, struct virtio_dev *dev, uint64_t features,
			 const struct fakevm_ring *rings, unsigned nq, uint16_t size)
{
	assert_true(fakevm_negotiate(dev, features));
	for (unsigned i = 0; i < nq; i++) {
		const struct fakevm_ring *r = &rings[i];
		struct vnet_vq_driver_config c = {
			.size = size, .ring_host = fakevm_host(vm, r->ring_gpa), .ring_gpa = r->ring_gpa,
			.indirect_host = r->indirect_gpa ? fakevm_host(vm, r->indirect_gpa) : NULL,
			.indirect_gpa = r->indirect_gpa, .indirect_max = r->indirect_max,
			.features = features, .name = r->name,
		};
		assert_non_null(c.ring_host);
		memset(c.ring_host, 0, vnet_vq_driver_ring_bytes(size));
		assert_int_equal(vnet_vq_driver_init(r->drv, &c), 0);
		dev->queue_sel = (uint16_t)i;
		virtio_dev_write_queue_size(dev, size);
		struct virtio_queue *q = virtio_dev_selected_queue(dev);
		q->desc = r->drv->desc_gpa;
		q->avail = r->drv->avail_gpa;
		q->used = r->drv->used_gpa;
		virtio_dev_write_queue_ready(dev, true);
	}
	virtio_dev_write_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return dev->active;
}

void fakevm_driver_reset(struct virtio_dev *dev, const struct fakevm_ring *rings, unsigned nq)
{
	virtio_dev_write_status(dev, 0);
	for (unsigned i = 0; i < nq; i++)
		vnet_vq_driver_fini(rings[i].drv);
}

static uint64_t model_features(struct virtio_dev *dev)
{
	return ((struct fakevm_model *)dev->priv)->features;
}

static void model_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	const struct fakevm_model *m = dev->priv;
	if (m->config)
		memcpy(data, m->config + off, len);
	else
		memset(data, 0, len);
}

static int model_activate(struct virtio_dev *dev)
{
	struct fakevm_model *m = dev->priv;
	m->activations++;
	return m->activate_rc;
}

static void model_deactivate(struct virtio_dev *dev)
{
	((struct fakevm_model *)dev->priv)->deactivations++;
}

const struct virtio_dev_ops fakevm_model_ops = {
	.features = model_features,
	.config_read = model_config_read,
	.activate = model_activate,
	.deactivate = model_deactivate,
};

bool fakevm_wait_call(struct virtio_dev *dev, unsigned q, int ms)
{
	struct pollfd p = {.fd = dev->q[q].call_fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return false;
	uint64_t v;
	return read(p.fd, &v, 8) == 8;
}
