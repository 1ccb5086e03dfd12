/*
 * virtio_dev.h — a virtio device as the transports see it, independent of
 * the transport (virtio-mmio v2, virtio-pci modern): feature words, status,
 * queue registers, config space, and the common rules of virtio 1.2 §2–3
 * (feature negotiation, FEATURES_OK, queue validation, reset, NEEDS_RESET).
 * A device model (virtio-net) fills `ops`; a transport maps its registers
 * onto these fields and calls the virtio_dev_*() helpers, so both transports
 * enforce the same rules.
 *
 * Notifications and interrupts never go through the VMM's threads in the
 * data path: every queue has a kick eventfd (the transport registers it as a
 * KVM ioeventfd on its notify register, datamatch = queue index) and a call
 * eventfd (the transport binds it as a KVM irqfd to the queue's MSI-X vector
 * GSI, or to the device's IRQ line for virtio-mmio). A back-end reads kick_fd
 * and writes call_fd itself — the VMM's I/O thread in emulated mode, or the
 * kernel's vhost / a vhost-user back-end, to which the fds are handed.
 *
 * Hostile-guest rule: a bad register write (queue outside RAM, size 0 or
 * > max, garbage status, notify of an unready queue) is logged once, sets
 * DEVICE_NEEDS_RESET (and raises a config interrupt) and stops the device's
 * data plane; the VM keeps running and a guest reset recovers.
 *
 * Thread-safety: register accesses arrive on vCPU threads; the transport
 * holds dev->lock around every access and every virtio_dev_*() call. Device
 * ops are called with dev->lock held. The data plane (back-ends) never takes
 * dev->lock on its fast path: it owns its queues between activate and reset.
 */
#ifndef VNET_VMM_VIRTIO_DEV_H
#define VNET_VMM_VIRTIO_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vmm;

#define VIRTIO_DEV_MAX_QUEUES 8
#define VIRTIO_DEV_MAX_QUEUE_SIZE 1024
#define VIRTIO_NO_VECTOR 0xffff

/* device status (virtio 1.2 §2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* interrupt status bits (ISR / InterruptStatus) */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

struct virtio_queue {
	uint16_t size;            /* driver-chosen; starts at max_size */
	uint16_t max_size;
	bool ready;               /* queue_enable / QueueReady */
	uint64_t desc, avail, used;   /* guest-physical */
	uint16_t msix_vector;     /* virtio-pci only; VIRTIO_NO_VECTOR otherwise */
	int kick_fd;              /* eventfd, KVM ioeventfd on the notify register */
	int call_fd;              /* eventfd, KVM irqfd to the queue's interrupt */
};

struct virtio_dev;

struct virtio_dev_ops {
	/* Feature bits the device offers (VERSION_1 is added by virtio_dev). */
	uint64_t (*features)(struct virtio_dev *dev);
	/* Device-specific config space (bounds already checked against config_size). */
	void (*config_read)(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len);
	/* DRIVER_OK: queues are validated; start the data plane. <0: the device
	 * is marked NEEDS_RESET (the error is logged by the device). */
	int (*activate)(struct virtio_dev *dev);
	/* Reset (status 0) or NEEDS_RESET: stop the data plane, forget queues. */
	void (*deactivate)(struct virtio_dev *dev);
};

/* What the transport provides to the device and to virtio_dev. */
struct virtio_transport_ops {
	/* Raise the config-change interrupt (ISR bit already set). */
	void (*signal_config)(struct virtio_dev *dev);
	/* Re-bind queue `q`'s call_fd after its vector changed (PCI); may be NULL. */
	int (*bind_queue_irq)(struct virtio_dev *dev, unsigned q);
};

struct virtio_dev {
	const char *name;           /* "net0", for logs */
	uint32_t device_id;         /* 1 = network */
	struct vmm *vmm;
	pthread_mutex_t lock;

	const struct virtio_dev_ops *ops;
	void *priv;                 /* the device model */
	const struct virtio_transport_ops *transport;
	void *transport_priv;

	unsigned num_queues;
	struct virtio_queue q[VIRTIO_DEV_MAX_QUEUES];
	uint32_t config_size;
	uint32_t config_generation;

	uint64_t device_features;   /* ops->features() | VERSION_1, fixed at reset */
	uint64_t driver_features;   /* written by the driver */
	uint32_t device_features_sel, driver_features_sel;
	uint16_t queue_sel;
	uint8_t status;
	atomic_uint isr;            /* VIRTIO_ISR_* pending; read-to-clear on PCI */
	/* Queue interrupts bypass the VMM (vhost): with virtio-mmio,
	 * InterruptStatus then always reports VIRTIO_ISR_QUEUE, because the
	 * VMM never sees those interrupts and Linux ignores one without it. */
	bool irq_bypass;
	bool active;                /* activate() succeeded, deactivate() pending */
	bool refusal_logged;        /* a FEATURES_OK refusal was logged since the reset */
	/* DEVICE_NEEDS_RESET, set from any thread without dev->lock (a data-plane
	 * thread may report a broken ring while a vCPU holds the lock to stop
	 * it); status reads OR it in; a reset clears it. */
	atomic_bool needs_reset;
};

/*
 * Initialises the common state: `num_queues` queues of `max_queue_size`,
 * their kick and call eventfds (EFD_NONBLOCK|EFD_CLOEXEC). Returns 0 or -errno.
 */
int virtio_dev_init(struct virtio_dev *dev, struct vmm *vmm, const char *name, uint32_t device_id,
		    unsigned num_queues, uint16_t max_queue_size, uint32_t config_size,
		    const struct virtio_dev_ops *ops, void *priv);
/* Closes the eventfds (after the transport unregistered them). */
void virtio_dev_destroy(struct virtio_dev *dev);

/* Register semantics shared by the transports (dev->lock held). */
uint32_t virtio_dev_read_device_features(struct virtio_dev *dev);  /* word device_features_sel */
void virtio_dev_write_driver_features(struct virtio_dev *dev, uint32_t value);
/* Status write: 0 resets; FEATURES_OK is refused (bit stays clear) unless the
 * driver's features are a subset of the device's and include VERSION_1;
 * DRIVER_OK validates every ready queue and calls activate(). */
void virtio_dev_write_status(struct virtio_dev *dev, uint8_t status);
/* The selected queue, or NULL when queue_sel >= num_queues. */
struct virtio_queue *virtio_dev_selected_queue(struct virtio_dev *dev);
/* Queue size write: must be a power of two in 1..max_size (else NEEDS_RESET). */
void virtio_dev_write_queue_size(struct virtio_dev *dev, uint16_t size);
/* Queue enable: checks size and that desc/avail/used lie in RAM and are
 * aligned (16/2/4); a bad queue sets NEEDS_RESET. */
void virtio_dev_write_queue_ready(struct virtio_dev *dev, bool ready);
/* True when queue registers may be written now (not after DRIVER_OK). */
bool virtio_dev_queue_writable(struct virtio_dev *dev);
/* A notify that reached the VMM as an exit rather than through the
 * ioeventfd: of a queue that does not exist or is not ready → NEEDS_RESET;
 * of a ready queue (an odd access width) → forwarded to its kick_fd. */
void virtio_dev_notify(struct virtio_dev *dev, uint32_t queue);
/*
 * Marks the device DEVICE_NEEDS_RESET: logs `why` (only the first time until
 * the next reset) and raises a config interrupt. Any thread, with or without
 * dev->lock. It does not stop the data plane (a back-end that reports a
 * broken ring parks itself; the driver's reset stops the rest); while the
 * flag is set DRIVER_OK does not activate the device.
 */
void virtio_dev_needs_reset(struct virtio_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Status as the driver reads it (NEEDS_RESET included). */
uint8_t virtio_dev_read_status(struct virtio_dev *dev);
/* Config space access with bounds checks (reads outside give 0). */
void virtio_dev_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len);
void virtio_dev_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len);

/* Data-plane helper: a used-buffer interrupt for queue q (sets ISR, writes call_fd). */
void virtio_dev_signal_queue(struct virtio_dev *dev, unsigned q);

#endif
