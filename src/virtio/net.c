/* net.c — virtio-net feature helpers; see vnet/net.h. */
#include "vnet/net.h"

#include <errno.h>
#include <stdio.h>

size_t vnet_net_hdr_len(uint64_t features)
{
	if (features & (VNET_BIT(VIRTIO_F_VERSION_1) | VNET_BIT(VIRTIO_NET_F_MRG_RXBUF)))
		return sizeof(struct virtio_net_hdr_mrg_rxbuf);
	return sizeof(struct virtio_net_hdr);
}

static const char *const feature_names[64] = {
	[VIRTIO_NET_F_CSUM] = "CSUM",
	[VIRTIO_NET_F_GUEST_CSUM] = "GUEST_CSUM",
	[VIRTIO_NET_F_CTRL_GUEST_OFFLOADS] = "CTRL_GUEST_OFFLOADS",
	[VIRTIO_NET_F_MTU] = "MTU",
	[VIRTIO_NET_F_MAC] = "MAC",
	[VIRTIO_NET_F_GUEST_TSO4] = "GUEST_TSO4",
	[VIRTIO_NET_F_GUEST_TSO6] = "GUEST_TSO6",
	[VIRTIO_NET_F_GUEST_ECN] = "GUEST_ECN",
	[VIRTIO_NET_F_GUEST_UFO] = "GUEST_UFO",
	[VIRTIO_NET_F_HOST_TSO4] = "HOST_TSO4",
	[VIRTIO_NET_F_HOST_TSO6] = "HOST_TSO6",
	[VIRTIO_NET_F_HOST_ECN] = "HOST_ECN",
	[VIRTIO_NET_F_HOST_UFO] = "HOST_UFO",
	[VIRTIO_NET_F_MRG_RXBUF] = "MRG_RXBUF",
	[VIRTIO_NET_F_STATUS] = "STATUS",
	[VIRTIO_NET_F_CTRL_VQ] = "CTRL_VQ",
	[VIRTIO_NET_F_CTRL_RX] = "CTRL_RX",
	[VIRTIO_NET_F_CTRL_VLAN] = "CTRL_VLAN",
	[VIRTIO_NET_F_GUEST_ANNOUNCE] = "GUEST_ANNOUNCE",
	[VIRTIO_NET_F_MQ] = "MQ",
	[VIRTIO_NET_F_CTRL_MAC_ADDR] = "CTRL_MAC_ADDR",
	[VIRTIO_F_NOTIFY_ON_EMPTY] = "NOTIFY_ON_EMPTY",
	[VIRTIO_F_ANY_LAYOUT] = "ANY_LAYOUT",
	[VIRTIO_F_RING_INDIRECT_DESC] = "RING_INDIRECT_DESC",
	[VIRTIO_F_RING_EVENT_IDX] = "RING_EVENT_IDX",
	[30] = "PROTOCOL_FEATURES", /* vhost-user's bit, never a guest feature */
	[VIRTIO_F_VERSION_1] = "VERSION_1",
	[VIRTIO_F_ACCESS_PLATFORM] = "ACCESS_PLATFORM",
	[VIRTIO_F_RING_PACKED] = "RING_PACKED",
	[VIRTIO_F_IN_ORDER] = "IN_ORDER",
	[VIRTIO_NET_F_SPEED_DUPLEX] = "SPEED_DUPLEX",
};

const char *vnet_net_feature_name(unsigned bit)
{
	return bit < 64 ? feature_names[bit] : NULL;
}

/* A feature that is only meaningful with another (virtio 1.2 §5.1.3.1). */
static const struct {
	uint8_t feature, requires;
} dependencies[] = {
	{VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM},
	{VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM},
	{VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_GUEST_CSUM},
	{VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM},
	{VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM},
	{VIRTIO_NET_F_HOST_UFO, VIRTIO_NET_F_CSUM},
	{VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, VIRTIO_NET_F_CTRL_VQ},
	{VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VQ},
	{VIRTIO_NET_F_CTRL_VLAN, VIRTIO_NET_F_CTRL_VQ},
	{VIRTIO_NET_F_GUEST_ANNOUNCE, VIRTIO_NET_F_CTRL_VQ},
	{VIRTIO_NET_F_MQ, VIRTIO_NET_F_CTRL_VQ},
	{VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_CTRL_VQ},
};

static void bit_name(unsigned bit, char *buf, size_t len)
{
	const char *name = vnet_net_feature_name(bit);
	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "bit %u", bit);
}

int vnet_net_negotiate(uint64_t offered, uint64_t accepted, bool modern, uint64_t *result,
		       char *err, size_t errlen)
{
	char a[32], b[32];
	uint64_t extra = accepted & ~offered;
	if (extra) {
		bit_name((unsigned)__builtin_ctzll(extra), a, sizeof(a));
		if (err)
			snprintf(err, errlen, "driver accepted %s, which the device did not offer", a);
		return -EINVAL;
	}
	if (modern && !(accepted & VNET_BIT(VIRTIO_F_VERSION_1))) {
		if (err)
			snprintf(err, errlen, "modern device requires VERSION_1");
		return -EINVAL;
	}
	for (unsigned i = 0; i < sizeof(dependencies) / sizeof(dependencies[0]); i++) {
		if ((accepted & VNET_BIT(dependencies[i].feature)) &&
		    !(accepted & VNET_BIT(dependencies[i].requires))) {
			bit_name(dependencies[i].feature, a, sizeof(a));
			bit_name(dependencies[i].requires, b, sizeof(b));
			if (err)
				snprintf(err, errlen, "%s requires %s", a, b);
			return -EINVAL;
		}
	}
	*result = offered & accepted;
	return 0;
}
