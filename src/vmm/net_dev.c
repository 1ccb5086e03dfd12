/*
 * net_dev.c — the virtio-net device model of vnet-vmm (net_dev.h): the
 * --net option, features, config space, and the hand-over of the queues to
 * the back-end at DRIVER_OK.
 */
#include "vmm/net_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/log.h"
#include "vnet/net.h"
#include "vmm/virtio_transport.h"
#include "vmm/vmm.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_S_LINK_UP 1

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return (mac[0] & 1) ? -EINVAL : 0; /* a NIC's own address is unicast */
}

int net_dev_parse(const char *spec, struct net_dev_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = -1;
	char *copy = strdup(spec), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
		char *val = strchr(kv, '=');
		if (!val) {
			snprintf(err, errlen, "'%s' is not key=value", kv);
			rc = -EINVAL;
			break;
		}
		*val++ = 0;
		if (!strcmp(kv, "mode")) {
			if (!strcmp(val, "emulated"))
				cfg->mode = NET_MODE_EMULATED;
			else if (!strcmp(val, "vhost-net"))
				cfg->mode = NET_MODE_VHOST_NET;
			else if (!strcmp(val, "vhost-user"))
				cfg->mode = NET_MODE_VHOST_USER;
			else
				snprintf(err, errlen, "mode '%s': use emulated, vhost-net or vhost-user", val), rc = -EINVAL;
		} else if (!strcmp(kv, "tap")) {
			if (!*val || strlen(val) >= sizeof(cfg->tap))
				snprintf(err, errlen, "tap name '%s': 1..15 characters", val), rc = -EINVAL;
			else
				strcpy(cfg->tap, val);
		} else if (!strcmp(kv, "socket")) {
			if (!*val || strlen(val) >= sizeof(cfg->socket))
				snprintf(err, errlen, "socket path too long or empty"), rc = -EINVAL;
			else
				strcpy(cfg->socket, val);
		} else if (!strcmp(kv, "server")) {
			if (!strcmp(val, "on") || !strcmp(val, "off"))
				cfg->socket_server = !strcmp(val, "on");
			else
				snprintf(err, errlen, "server=%s: use on or off", val), rc = -EINVAL;
		} else if (!strcmp(kv, "mac")) {
			if (parse_mac(val, cfg->mac) < 0)
				snprintf(err, errlen, "mac '%s': need a unicast xx:xx:xx:xx:xx:xx", val), rc = -EINVAL;
			else
				cfg->have_mac = true;
		} else if (!strcmp(kv, "transport")) {
			if (!strcmp(val, "pci"))
				cfg->transport = NET_TRANSPORT_PCI;
			else if (!strcmp(val, "mmio"))
				cfg->transport = NET_TRANSPORT_MMIO;
			else
				snprintf(err, errlen, "transport '%s': use pci or mmio", val), rc = -EINVAL;
		} else if (!strcmp(kv, "mtu")) {
			char *end;
			unsigned long mtu = strtoul(val, &end, 10);
			if (*end || mtu < 68 || mtu > 65535)
				snprintf(err, errlen, "mtu '%s': 68..65535", val), rc = -EINVAL;
			else
				cfg->mtu = (uint16_t)mtu;
		} else {
			snprintf(err, errlen, "unknown key '%s'", kv);
			rc = -EINVAL;
		}
	}
	free(copy);
	if (rc == 0 && (int)cfg->mode == -1)
		snprintf(err, errlen, "mode= is required"), rc = -EINVAL;
	if (rc == 0 && cfg->mode != NET_MODE_VHOST_USER && !cfg->tap[0])
		snprintf(err, errlen, "mode=%s needs tap=NAME", cfg->mode == NET_MODE_EMULATED ? "emulated" : "vhost-net"),
			rc = -EINVAL;
	if (rc == 0 && cfg->mode == NET_MODE_VHOST_USER && !cfg->socket[0])
		snprintf(err, errlen, "mode=vhost-user needs socket=PATH"), rc = -EINVAL;
	if (rc == 0 && cfg->mode == NET_MODE_VHOST_USER && cfg->tap[0])
		snprintf(err, errlen, "mode=vhost-user takes no tap="), rc = -EINVAL;
	if (rc == 0 && cfg->mode != NET_MODE_VHOST_USER && (cfg->socket[0] || cfg->socket_server))
		snprintf(err, errlen, "socket=/server= only with mode=vhost-user"), rc = -EINVAL;
	return rc;
}

static struct net_dev *to_net(struct virtio_dev *dev)
{
	return dev->priv;
}

static uint64_t net_features(struct virtio_dev *dev)
{
	struct net_dev *nd = to_net(dev);
	uint64_t f = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
	if (nd->cfg.mtu)
		f |= 1ull << VIRTIO_NET_F_MTU;
	return f | nd->backend->features(nd);
}

static void net_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, to_net(dev)->config + off, len);
}

static void net_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	/* Every field is read-only for the driver (no CTRL_MAC_ADDR, legacy MAC
	 * writes are a VERSION_0 habit): ignore. */
	(void)dev, (void)off, (void)data, (void)len;
}

static int net_activate(struct virtio_dev *dev)
{
	struct net_dev *nd = to_net(dev);
	nd->features = dev->driver_features;
	vnet_info("vnet-vmm: %s: driver ready, features 0x%llx, %s back-end", dev->name,
		  (unsigned long long)nd->features, nd->backend->name);
	return nd->backend->start(nd);
}

static void net_deactivate(struct virtio_dev *dev)
{
	struct net_dev *nd = to_net(dev);
	nd->backend->stop(nd);
}

static const struct virtio_dev_ops net_ops = {
	.features = net_features,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.deactivate = net_deactivate,
};

int net_dev_model_init(struct net_dev *nd, struct vmm *vmm, const struct net_dev_config *cfg, unsigned index)
{
	memset(nd, 0, sizeof(*nd));
	nd->cfg = *cfg;
	nd->vdev.vmm = vmm;
	snprintf(nd->name, sizeof(nd->name), "net%u", index);
	nd->vdev.name = nd->name;
	switch (cfg->mode) {
	case NET_MODE_EMULATED: nd->backend = &net_backend_emulated; break;
	case NET_MODE_VHOST_NET: nd->backend = &net_backend_vhost_net; break;
	case NET_MODE_VHOST_USER: nd->backend = &net_backend_vhost_user; break;
	}
	if (!cfg->have_mac) {
		static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
		memcpy(nd->cfg.mac, base, 6);
		nd->cfg.mac[5] = (uint8_t)(0x56 + index);
	}
	memcpy(nd->config, nd->cfg.mac, 6);
	uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = 1, mtu = nd->cfg.mtu;
	memcpy(nd->config + 6, &status, 2);
	memcpy(nd->config + 8, &pairs, 2);
	memcpy(nd->config + 10, &mtu, 2);

	int rc = nd->backend->open(nd);
	if (rc < 0)
		return rc;
	rc = virtio_dev_init(&nd->vdev, vmm, nd->name, VIRTIO_ID_NET, 2, NET_DEV_QUEUE_SIZE, sizeof(nd->config),
			     &net_ops, nd);
	if (rc < 0) {
		vnet_err("vnet-vmm: %s: %s", nd->name, strerror(-rc));
		nd->backend->close(nd);
	}
	return rc;
}

void net_dev_model_fini(struct net_dev *nd)
{
	pthread_mutex_lock(&nd->vdev.lock);
	if (nd->vdev.active)
		nd->backend->stop(nd);
	nd->vdev.active = false;
	pthread_mutex_unlock(&nd->vdev.lock);
	nd->backend->close(nd);
	virtio_dev_destroy(&nd->vdev);
}

int net_dev_create(struct vmm *vmm, const struct net_dev_config *cfg, unsigned index, struct net_dev **out)
{
	struct net_dev *nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	int rc = net_dev_model_init(nd, vmm, cfg, index);
	if (rc < 0) {
		free(nd);
		return rc;
	}
	rc = cfg->transport == NET_TRANSPORT_MMIO ? virtio_mmio_create(vmm, &nd->vdev)
						  : virtio_pci_create(vmm, &nd->vdev);
	if (rc < 0) {
		net_dev_model_fini(nd);
		free(nd);
		return rc;
	}
	*out = nd;
	return 0;
}

void net_dev_destroy(struct net_dev *nd)
{
	if (!nd)
		return;
	/* Stop the data plane before the transport drops the eventfds' KVM bindings. */
	pthread_mutex_lock(&nd->vdev.lock);
	if (nd->vdev.active)
		nd->backend->stop(nd);
	nd->vdev.active = false;
	pthread_mutex_unlock(&nd->vdev.lock);
	if (nd->cfg.transport == NET_TRANSPORT_MMIO)
		virtio_mmio_destroy(&nd->vdev);
	else
		virtio_pci_destroy(&nd->vdev);
	net_dev_model_fini(nd);
	free(nd);
}
