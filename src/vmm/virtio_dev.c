/*
 * virtio_dev.c — the transport-independent rules of a virtio device
 * (virtio_dev.h): feature words, the status state machine, queue register
 * validation, NEEDS_RESET, config space bounds.
 */
#include "vmm/virtio_dev.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/vmm.h"

#define VIRTIO_F_VERSION_1 32

int virtio_dev_init(struct virtio_dev *dev, struct vmm *vmm, const char *name, uint32_t device_id,
		    unsigned num_queues, uint16_t max_queue_size, uint32_t config_size,
		    const struct virtio_dev_ops *ops, void *priv)
{
	if (num_queues == 0 || num_queues > VIRTIO_DEV_MAX_QUEUES || max_queue_size == 0 ||
	    max_queue_size > VIRTIO_DEV_MAX_QUEUE_SIZE || (max_queue_size & (max_queue_size - 1)))
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	pthread_mutex_init(&dev->lock, NULL);
	dev->name = name;
	dev->device_id = device_id;
	dev->vmm = vmm;
	dev->ops = ops;
	dev->priv = priv;
	dev->num_queues = num_queues;
	dev->config_size = config_size;
	for (unsigned i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++)
		dev->q[i].kick_fd = dev->q[i].call_fd = -1;
	for (unsigned i = 0; i < num_queues; i++) {
		struct virtio_queue *q = &dev->q[i];
		q->max_size = q->size = max_queue_size;
		q->msix_vector = VIRTIO_NO_VECTOR;
		q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick_fd < 0 || q->call_fd < 0) {
			int rc = -errno;
			virtio_dev_destroy(dev);
			return rc;
		}
	}
	dev->device_features = ops->features(dev) | (1ull << VIRTIO_F_VERSION_1);
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
	for (unsigned i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++) {
		if (dev->q[i].kick_fd >= 0)
			close(dev->q[i].kick_fd);
		if (dev->q[i].call_fd >= 0)
			close(dev->q[i].call_fd);
		dev->q[i].kick_fd = dev->q[i].call_fd = -1;
	}
	pthread_mutex_destroy(&dev->lock);
}

void virtio_dev_needs_reset(struct virtio_dev *dev, const char *fmt, ...)
{
	if (atomic_exchange(&dev->needs_reset, true))
		return;
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vnet_err("vnet-vmm: %s: %s; device needs reset", dev->name, why);
	atomic_fetch_or(&dev->isr, VIRTIO_ISR_CONFIG);
	if (dev->transport && dev->transport->signal_config)
		dev->transport->signal_config(dev);
}

uint8_t virtio_dev_read_status(struct virtio_dev *dev)
{
	return (uint8_t)(dev->status | (atomic_load(&dev->needs_reset) ? VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0));
}

uint32_t virtio_dev_read_device_features(struct virtio_dev *dev)
{
	if (dev->device_features_sel > 1)
		return 0;
	return (uint32_t)(dev->device_features >> (32 * dev->device_features_sel));
}

void virtio_dev_write_driver_features(struct virtio_dev *dev, uint32_t value)
{
	if (dev->status & VIRTIO_STATUS_FEATURES_OK) {
		virtio_dev_needs_reset(dev, "driver features written after FEATURES_OK");
		return;
	}
	if (dev->driver_features_sel > 1)
		return; /* no features there: writes of zero are legal, others meaningless */
	unsigned shift = 32 * dev->driver_features_sel;
	dev->driver_features = (dev->driver_features & ~(0xffffffffull << shift)) | ((uint64_t)value << shift);
}

static void reset(struct virtio_dev *dev)
{
	if (dev->active && dev->ops->deactivate)
		dev->ops->deactivate(dev);
	dev->active = false;
	dev->irq_bypass = false;
	dev->refusal_logged = false;
	dev->status = 0;
	dev->driver_features = 0;
	dev->device_features_sel = dev->driver_features_sel = 0;
	dev->queue_sel = 0;
	for (unsigned i = 0; i < dev->num_queues; i++) {
		struct virtio_queue *q = &dev->q[i];
		q->size = q->max_size;
		q->ready = false;
		q->desc = q->avail = q->used = 0;
		q->msix_vector = VIRTIO_NO_VECTOR;
		uint64_t junk;
		/* A kick left over from before the reset means nothing now
		 * (EAGAIN when none is pending). */
		(void)!read(q->kick_fd, &junk, sizeof(junk));
	}
	atomic_store(&dev->isr, 0);
	atomic_store(&dev->needs_reset, false);
}

/* Ring areas (virtio 1.2 §2.7): in RAM, aligned 16 / 2 / 4. */
static const char *queue_problem(struct virtio_dev *dev, const struct virtio_queue *q)
{
	uint64_t n = q->size;
	if (n == 0 || n > q->max_size || (n & (n - 1)))
		return "size is not a power of two up to the maximum";
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
		return "ring address misaligned";
	if (!vmm_gpa_to_host(dev->vmm, q->desc, 16 * n) || !vmm_gpa_to_host(dev->vmm, q->avail, 6 + 2 * n) ||
	    !vmm_gpa_to_host(dev->vmm, q->used, 6 + 8 * n))
		return "ring outside guest RAM";
	return NULL;
}

void virtio_dev_write_status(struct virtio_dev *dev, uint8_t status)
{
	if (status == 0) {
		reset(dev);
		return;
	}
	uint8_t old = dev->status;
	uint8_t set = (uint8_t)(status & ~old);
	/* A driver can only add bits; clearing needs a reset. */
	status |= old;
	status &= (uint8_t)~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (set & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t extra = dev->driver_features & ~dev->device_features;
		if (extra || !(dev->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
			/* Once per reset: a guest retrying in a loop must not flood the log. */
			if (!dev->refusal_logged)
				vnet_warn("vnet-vmm: %s: FEATURES_OK refused (driver features 0x%llx, device offers 0x%llx)",
				  dev->name, (unsigned long long)dev->driver_features,
				  (unsigned long long)dev->device_features);
			dev->refusal_logged = true;
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_dev_needs_reset(dev, "DRIVER_OK without FEATURES_OK");
		status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	dev->status = status;
	if ((set & VIRTIO_STATUS_DRIVER_OK) && (status & VIRTIO_STATUS_DRIVER_OK) &&
	    !atomic_load(&dev->needs_reset)) {
		for (unsigned i = 0; i < dev->num_queues; i++) {
			const char *why = dev->q[i].ready ? queue_problem(dev, &dev->q[i]) : NULL;
			if (why) {
				virtio_dev_needs_reset(dev, "queue %u: %s", i, why);
				return;
			}
		}
		if (dev->ops->activate(dev) < 0)
			virtio_dev_needs_reset(dev, "back-end failed to start");
		else
			dev->active = true;
	}
	if ((set & VIRTIO_STATUS_FAILED) && dev->active) {
		vnet_warn("vnet-vmm: %s: driver set FAILED", dev->name);
		dev->ops->deactivate(dev);
		dev->active = false;
	}
}

struct virtio_queue *virtio_dev_selected_queue(struct virtio_dev *dev)
{
	return dev->queue_sel < dev->num_queues ? &dev->q[dev->queue_sel] : NULL;
}

bool virtio_dev_queue_writable(struct virtio_dev *dev)
{
	struct virtio_queue *q = virtio_dev_selected_queue(dev);
	return q && !q->ready && !(dev->status & VIRTIO_STATUS_DRIVER_OK);
}

void virtio_dev_write_queue_size(struct virtio_dev *dev, uint16_t size)
{
	struct virtio_queue *q = virtio_dev_selected_queue(dev);
	if (!q) {
		virtio_dev_needs_reset(dev, "queue size for queue %u, which does not exist", dev->queue_sel);
		return;
	}
	if (!virtio_dev_queue_writable(dev))
		return;
	/* Kept even when bad, so that enabling the queue is refused too. */
	q->size = size;
	if (size == 0 || size > q->max_size || (size & (size - 1)))
		virtio_dev_needs_reset(dev, "queue %u: size %u (must be a power of two up to %u)", dev->queue_sel,
				       size, q->max_size);
}

void virtio_dev_write_queue_ready(struct virtio_dev *dev, bool ready)
{
	struct virtio_queue *q = virtio_dev_selected_queue(dev);
	if (!q) {
		virtio_dev_needs_reset(dev, "queue ready for queue %u, which does not exist", dev->queue_sel);
		return;
	}
	if (!ready) {
		/* Disabling one queue of a running device is not supported
		 * (VIRTIO_F_RING_RESET is not offered): only a reset stops it. */
		if (q->ready && (dev->status & VIRTIO_STATUS_DRIVER_OK))
			virtio_dev_needs_reset(dev, "queue %u disabled while running", dev->queue_sel);
		else
			q->ready = false;
		return;
	}
	if (q->ready || atomic_load(&dev->needs_reset))
		return;
	const char *why = queue_problem(dev, q);
	if (why) {
		virtio_dev_needs_reset(dev, "queue %u: %s (desc 0x%llx avail 0x%llx used 0x%llx size %u)",
				       dev->queue_sel, why, (unsigned long long)q->desc,
				       (unsigned long long)q->avail, (unsigned long long)q->used, q->size);
		return;
	}
	q->ready = true;
}

void virtio_dev_notify(struct virtio_dev *dev, uint32_t queue)
{
	if (queue >= dev->num_queues || !dev->q[queue].ready) {
		virtio_dev_needs_reset(dev, "notify of queue %u, which %s", queue,
				       queue >= dev->num_queues ? "does not exist" : "is not ready");
		return;
	}
	uint64_t one = 1;
	if (write(dev->q[queue].kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a kick is pending anyway */
	}
}

void virtio_dev_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
	if (off < dev->config_size && len <= dev->config_size - off)
		dev->ops->config_read(dev, off, data, len);
}

void virtio_dev_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	if (off < dev->config_size && len <= dev->config_size - off && dev->ops->config_write)
		dev->ops->config_write(dev, off, data, len);
}

void virtio_dev_signal_queue(struct virtio_dev *dev, unsigned q)
{
	atomic_fetch_or(&dev->isr, VIRTIO_ISR_QUEUE);
	uint64_t one = 1;
	if (write(dev->q[q].call_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: an interrupt is pending anyway */
	}
}
