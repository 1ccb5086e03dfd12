/*
 * net_vhost_net.c — the vhost-net back-end: the kernel's vhost-net worker
 * serves the guest's rings and moves frames to and from the tap (article,
 * Figures 3–4). The VMM only programs it: memory table (guest-physical →
 * this process's mapping of RAM), each ring's size, addresses (VMM virtual)
 * and start index, the kick eventfd (the KVM ioeventfd the guest's notify
 * write signals) and the call eventfd (the KVM irqfd), then the tap as the
 * ring's backend. No VMM thread is in the data path, and no interrupt passes
 * through the VMM (hence dev->irq_bypass for virtio-mmio's InterruptStatus).
 *
 * Features: the ring and header features come from vhost-net
 * (VHOST_GET_FEATURES: EVENT_IDX, INDIRECT_DESC, MRG_RXBUF, VERSION_1);
 * checksum and segmentation offloads come from the tap (vhost-net passes the
 * virtio-net header to it untouched), so they are offered whatever vhost
 * says, and only the vhost part is handed to VHOST_SET_FEATURES (which
 * refuses bits it does not know). vhost's own bits (VHOST_F_LOG_ALL,
 * VHOST_NET_F_VIRTIO_NET_HDR) never reach the guest: the tap carries the
 * 12-byte header, so vhost-net must not add one.
 *
 * Thread-safety: every op runs on the control path with the device lock
 * held (net_dev.h); the kernel worker owns the rings between start and stop.
 */
#include "vmm/net_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h> /* brings linux/virtio_ring.h: no vnet/net.h here */
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/tap.h"
#include "vmm/vmm.h"

/* Guest features vhost-net itself implements (the rest of VHOST_GET_FEATURES
 * is legacy-only or vhost's own). */
#define BIT(b) (1ull << (b))
#define VHN_RING_FEATURES                                                                \
	(BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |               \
	 BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_F_VERSION_1))

/* Split ring areas (virtio 1.2 §2.7), trailing event fields included. */
static uint64_t desc_bytes(unsigned n)
{
	return 16ull * n;
}

static uint64_t avail_bytes(unsigned n)
{
	return 6ull + 2ull * n;
}

static uint64_t used_bytes(unsigned n)
{
	return 6ull + 8ull * n;
}

static const unsigned vhn_queues[] = {NET_DEV_RXQ, NET_DEV_TXQ};

struct vhn {
	int vhost_fd, tap_fd;
	uint64_t vhost_features; /* VHOST_GET_FEATURES */
	bool running;
	const char *name;
};

static const char *dev_name(struct net_dev *nd)
{
	return nd->name[0] ? nd->name : "net";
}

/* One vhost ioctl; on failure logs it with the queue (when >= 0) and errno. */
static int vhn_ioctl(struct vhn *v, unsigned long req, const char *what, int queue, void *arg)
{
	if (ioctl(v->vhost_fd, req, arg) == 0)
		return 0;
	int rc = -errno;
	if (queue >= 0)
		vnet_err("vnet-vmm: %s: vhost-net: %s (queue %d): %s", v->name, what, queue, strerror(errno));
	else
		vnet_err("vnet-vmm: %s: vhost-net: %s: %s", v->name, what, strerror(errno));
	return rc;
}

static int vhn_open(struct net_dev *nd)
{
	struct vhn *v = calloc(1, sizeof(*v));
	if (!v) {
		vnet_err("vnet-vmm: %s: out of memory", dev_name(nd));
		return -ENOMEM;
	}
	v->name = dev_name(nd);
	v->tap_fd = -1;
	int rc;
	v->vhost_fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (v->vhost_fd < 0) {
		rc = -errno;
		vnet_err("vnet-vmm: %s: vhost-net: /dev/vhost-net: %s%s", v->name, strerror(errno),
			 errno == ENOENT ? " (modprobe vhost_net)" : "");
		free(v);
		return rc;
	}
	/* The vhost worker attaches to this process's memory: SET_OWNER first. */
	if ((rc = vhn_ioctl(v, VHOST_SET_OWNER, "VHOST_SET_OWNER", -1, NULL)) < 0 ||
	    (rc = vhn_ioctl(v, VHOST_GET_FEATURES, "VHOST_GET_FEATURES", -1,
			    &v->vhost_features)) < 0)
		goto fail;
	if (!(v->vhost_features & BIT(VIRTIO_F_VERSION_1))) {
		vnet_err("vnet-vmm: %s: vhost-net: this kernel's vhost-net lacks VERSION_1 (features 0x%llx)",
			 v->name, (unsigned long long)v->vhost_features);
		rc = -EOPNOTSUPP;
		goto fail;
	}
	v->tap_fd = tap_open(v->name, nd->cfg.tap);
	if (v->tap_fd < 0) {
		rc = v->tap_fd;
		goto fail;
	}
	nd->backend_priv = v;
	return 0;
fail:
	close(v->vhost_fd);
	free(v);
	return rc;
}

static uint64_t vhn_features(struct net_dev *nd)
{
	struct vhn *v = nd->backend_priv;
	return tap_net_offloads() | (v ? v->vhost_features & VHN_RING_FEATURES : 0);
}

static int vhn_set_mem_table(struct vhn *v, struct vmm *vmm)
{
	struct vhost_memory *mem =
		calloc(1, sizeof(*mem) + vmm->nregions * sizeof(struct vhost_memory_region));
	if (!mem) {
		vnet_err("vnet-vmm: %s: out of memory", v->name);
		return -ENOMEM;
	}
	mem->nregions = vmm->nregions;
	for (unsigned i = 0; i < vmm->nregions; i++) {
		mem->regions[i].guest_phys_addr = vmm->regions[i].gpa;
		mem->regions[i].memory_size = vmm->regions[i].size;
		mem->regions[i].userspace_addr = (uint64_t)(uintptr_t)vmm->regions[i].host;
	}
	int rc = vhn_ioctl(v, VHOST_SET_MEM_TABLE, "VHOST_SET_MEM_TABLE", -1, mem);
	free(mem);
	return rc;
}

static int vhn_setup_queue(struct vhn *v, struct net_dev *nd, unsigned index)
{
	struct vmm *vmm = nd->vdev.vmm;
	const struct virtio_queue *q = &nd->vdev.q[index];
	if (!q->ready) {
		vnet_err("vnet-vmm: %s: vhost-net: queue %u not enabled by the driver", v->name, index);
		return -EINVAL;
	}
	/* vhost wants this process's addresses of the rings. The transport
	 * checked them; a NULL here is a bug, not a guest error, but still no
	 * reason to hand the kernel a bogus pointer. */
	void *desc = vmm_gpa_to_host(vmm, q->desc, desc_bytes(q->size));
	void *avail = vmm_gpa_to_host(vmm, q->avail, avail_bytes(q->size));
	void *used = vmm_gpa_to_host(vmm, q->used, used_bytes(q->size));
	if (!desc || !avail || !used) {
		vnet_err("vnet-vmm: %s: vhost-net: queue %u: ring outside guest RAM", v->name, index);
		return -EFAULT;
	}
	struct vhost_vring_state num = {.index = index, .num = q->size};
	struct vhost_vring_addr addr = {
		.index = index,
		.desc_user_addr = (uint64_t)(uintptr_t)desc,
		.avail_user_addr = (uint64_t)(uintptr_t)avail,
		.used_user_addr = (uint64_t)(uintptr_t)used,
	};
	struct vhost_vring_state base = {.index = index, .num = 0}; /* a fresh ring */
	struct vhost_vring_file call = {.index = index, .fd = q->call_fd};
	struct vhost_vring_file kick = {.index = index, .fd = q->kick_fd};
	int rc;
	if ((rc = vhn_ioctl(v, VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM", (int)index, &num)) < 0 ||
	    (rc = vhn_ioctl(v, VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR", (int)index, &addr)) < 0 ||
	    (rc = vhn_ioctl(v, VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE", (int)index, &base)) < 0 ||
	    (rc = vhn_ioctl(v, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", (int)index, &call)) < 0 ||
	    (rc = vhn_ioctl(v, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", (int)index, &kick)) < 0)
		return rc;
	return 0;
}

/* Undoes start, in reverse; quiet, since half of it may never have been done. */
static void vhn_teardown(struct vhn *v, struct net_dev *nd)
{
	for (int i = (int)(sizeof(vhn_queues) / sizeof(vhn_queues[0])) - 1; i >= 0; i--) {
		unsigned index = vhn_queues[i];
		struct vhost_vring_file off = {.index = index, .fd = VHOST_FILE_UNBIND};
		ioctl(v->vhost_fd, VHOST_NET_SET_BACKEND, &off); /* the worker stops the ring */
	}
	for (int i = (int)(sizeof(vhn_queues) / sizeof(vhn_queues[0])) - 1; i >= 0; i--) {
		unsigned index = vhn_queues[i];
		struct vhost_vring_state base = {.index = index};
		ioctl(v->vhost_fd, VHOST_GET_VRING_BASE, &base); /* a reset forgets it */
		/* The eventfds stay the device's: vhost lets go of them. */
		struct vhost_vring_file none = {.index = index, .fd = VHOST_FILE_UNBIND};
		ioctl(v->vhost_fd, VHOST_SET_VRING_KICK, &none);
		ioctl(v->vhost_fd, VHOST_SET_VRING_CALL, &none);
	}
	tap_set_offloads(v->tap_fd, v->name, nd->cfg.tap, 0);
	nd->vdev.irq_bypass = false;
}

static int vhn_start(struct net_dev *nd)
{
	struct vhn *v = nd->backend_priv;
	if (!v)
		return -EINVAL;
	if (v->running)
		return 0;
	/* Only vhost's part: the offload bits are the tap's business and
	 * VHOST_SET_FEATURES would refuse them. No VHOST_NET_F_VIRTIO_NET_HDR:
	 * the tap reads and writes the header itself. */
	uint64_t features = nd->features & v->vhost_features & VHN_RING_FEATURES;
	int rc;
	if ((rc = vhn_ioctl(v, VHOST_SET_FEATURES, "VHOST_SET_FEATURES", -1, &features)) < 0 ||
	    (rc = vhn_set_mem_table(v, nd->vdev.vmm)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(vhn_queues) / sizeof(vhn_queues[0]); i++)
		if ((rc = vhn_setup_queue(v, nd, vhn_queues[i])) < 0)
			goto fail;
	if ((rc = tap_set_offloads(v->tap_fd, v->name, nd->cfg.tap, nd->features)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(vhn_queues) / sizeof(vhn_queues[0]); i++) {
		struct vhost_vring_file backend = {.index = vhn_queues[i], .fd = v->tap_fd};
		if ((rc = vhn_ioctl(v, VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND",
				    (int)vhn_queues[i], &backend)) < 0)
			goto fail;
	}
	/* vhost signals call_fd (the irqfd) itself: the VMM never sees it. */
	nd->vdev.irq_bypass = true;
	v->running = true;
	return 0;
fail:
	vhn_teardown(v, nd);
	return rc;
}

static void vhn_stop(struct net_dev *nd)
{
	struct vhn *v = nd->backend_priv;
	if (!v || !v->running)
		return;
	vhn_teardown(v, nd);
	v->running = false;
}

static void vhn_close(struct net_dev *nd)
{
	struct vhn *v = nd->backend_priv;
	if (!v)
		return;
	vhn_stop(nd);
	close(v->tap_fd);
	close(v->vhost_fd); /* releases the vhost worker and its rings */
	free(v);
	nd->backend_priv = NULL;
}

const struct net_backend_ops net_backend_vhost_net = {
	.name = "vhost-net",
	.open = vhn_open,
	.features = vhn_features,
	.start = vhn_start,
	.stop = vhn_stop,
	.close = vhn_close,
};
