/*
 * fakevm.h — vnet-vmm's devices without KVM, for unit tests: a struct vmm
 * whose RAM is a memfd (so a vhost-user back-end can map it too) laid out
 * as vmm_create does (low RAM at GPA 0, the rest at 4 GiB), with its
 * guestmem published; and a virtio driver's bring-up of a virtio_dev
 * through the transport-independent register helpers (virtio_dev.h), with
 * libvnet's driver-side virtqueues as the guest's rings; and a device model
 * that starts nothing, for the tests of the transports and of virtio_dev.
 *
 * Thread-safety: test set-up code, one thread.
 */
#ifndef VNET_TEST_FAKEVM_H
#define VNET_TEST_FAKEVM_H

#include <stdbool.h>
#include <stdint.h>

#include "vnet/virtqueue_driver.h"
#include "vmm/virtio_dev.h"
#include "vmm/vmm.h"

/* RAM of low + high bytes (high may be 0). Aborts the test on failure. */
void fakevm_init(struct vmm *vm, uint64_t low, uint64_t high);
void fakevm_fini(struct vmm *vm);
/* Host address of a GPA inside RAM (NULL outside). */
void *fakevm_host(struct vmm *vm, uint64_t gpa);

/* Where the guest's rings of one queue live, and how the driver is set up. */
struct fakevm_ring {
	struct vnet_vq_driver *drv;
	uint64_t ring_gpa;       /* vnet_vq_driver_ring_bytes(size) bytes there */
	uint64_t indirect_gpa;   /* 0: no indirect tables */
	uint16_t indirect_max;
	const char *name;
};

/* Reset, ACKNOWLEDGE|DRIVER, the feature words, FEATURES_OK: whether the
 * device accepted the features. */
bool fakevm_negotiate(struct virtio_dev *dev, uint64_t features);

/*
 * A driver's whole bring-up: negotiate `features` (asserted accepted), then
 * per queue i: initialise rings[i].drv in guest RAM with `size` entries,
 * write queue size, addresses, ready; then DRIVER_OK. Returns whether the
 * device is running (dev->active).
 */
bool fakevm_driver_start(struct vmm *vm, struct virtio_dev *dev, uint64_t features,
			 const struct fakevm_ring *rings, unsigned nq, uint16_t size);

/* Waits up to ms for queue q's interrupt (its call eventfd); consumes it. */
bool fakevm_wait_call(struct virtio_dev *dev, unsigned q, int ms);

/* Device reset (status 0) and the drivers' rings forgotten. */
void fakevm_driver_reset(struct virtio_dev *dev, const struct fakevm_ring *rings, unsigned nq);

/*
 * A device model that starts nothing: virtio_dev_init(..., &fakevm_model_ops,
 * &model). It offers `features`, gives the driver `config` to read, and
 * counts its activations (failed ones too) and deactivations.
 */
struct fakevm_model {
	uint64_t features;     /* offered (VERSION_1 is added by virtio_dev) */
	const uint8_t *config; /* the device config (config_size bytes); NULL: zeros */
	int activate_rc;       /* what activate returns */
	int activations, deactivations;
};
extern const struct virtio_dev_ops fakevm_model_ops;

#endif
