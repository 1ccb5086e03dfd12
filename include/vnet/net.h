/*
 * net.h — virtio-net definitions (virtio 1.2 §5.1): feature bits, the
 * per-packet header, the device configuration layout, control-queue
 * commands, and feature negotiation.
 *
 * Pure definitions and functions without state: safe from any thread.
 */
#ifndef VNET_NET_H
#define VNET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/virtio_ring.h"

/* Device ID of a network card. */
#define VIRTIO_ID_NET 1

/* Feature bits (virtio 1.2 §5.1.3). */
#define VIRTIO_NET_F_CSUM                0
#define VIRTIO_NET_F_GUEST_CSUM          1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU                 3
#define VIRTIO_NET_F_MAC                 5
#define VIRTIO_NET_F_GUEST_TSO4          7
#define VIRTIO_NET_F_GUEST_TSO6          8
#define VIRTIO_NET_F_GUEST_ECN           9
#define VIRTIO_NET_F_GUEST_UFO           10
#define VIRTIO_NET_F_HOST_TSO4           11
#define VIRTIO_NET_F_HOST_TSO6           12
#define VIRTIO_NET_F_HOST_ECN            13
#define VIRTIO_NET_F_HOST_UFO            14
#define VIRTIO_NET_F_MRG_RXBUF           15
#define VIRTIO_NET_F_STATUS              16
#define VIRTIO_NET_F_CTRL_VQ             17
#define VIRTIO_NET_F_CTRL_RX             18
#define VIRTIO_NET_F_CTRL_VLAN           19
#define VIRTIO_NET_F_GUEST_ANNOUNCE      21
#define VIRTIO_NET_F_MQ                  22
#define VIRTIO_NET_F_CTRL_MAC_ADDR       23
#define VIRTIO_NET_F_SPEED_DUPLEX        63

/* Features under which a guest's TX header may ask for checksum or
 * segmentation work (flags NEEDS_CSUM, gso_type): without any of them every
 * field of a TX header must be ignored. */
#define VNET_NET_OFFLOAD_FEATURES                                                        \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |                \
	 (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN) |            \
	 (1ull << VIRTIO_NET_F_HOST_UFO))

#define VNET_BIT(b) (1ull << (b))

/* Per-packet header (virtio 1.2 §5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO   4

#define VIRTIO_NET_HDR_GSO_NONE  0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP   3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#define VIRTIO_NET_HDR_GSO_ECN   0x80

/* Legacy form without MRG_RXBUF: 10 bytes. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
} __attribute__((packed));

/* VERSION_1 or MRG_RXBUF form: 12 bytes. */
struct virtio_net_hdr_mrg_rxbuf {
	struct virtio_net_hdr hdr;
	uint16_t num_buffers;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr is 10 bytes");
_Static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == 12, "mrg header is 12 bytes");

/* Device configuration space (virtio 1.2 §5.1.4). */
#define VIRTIO_NET_S_LINK_UP  1
#define VIRTIO_NET_S_ANNOUNCE 2

struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
	uint32_t speed;
	uint8_t duplex;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_net_config) == 17, "virtio_net_config layout");

/* Control virtqueue (virtio 1.2 §5.1.6.5). */
struct virtio_net_ctrl_hdr {
	uint8_t class;
	uint8_t cmd;
} __attribute__((packed));

#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

#define VIRTIO_NET_CTRL_RX              0
#define VIRTIO_NET_CTRL_RX_PROMISC      0
#define VIRTIO_NET_CTRL_RX_ALLMULTI     1
#define VIRTIO_NET_CTRL_RX_ALLUNI       2
#define VIRTIO_NET_CTRL_RX_NOMULTI      3
#define VIRTIO_NET_CTRL_RX_NOUNI        4
#define VIRTIO_NET_CTRL_RX_NOBCAST      5
#define VIRTIO_NET_CTRL_MAC             1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET   0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET    1
#define VIRTIO_NET_CTRL_VLAN            2
#define VIRTIO_NET_CTRL_VLAN_ADD        0
#define VIRTIO_NET_CTRL_VLAN_DEL        1
#define VIRTIO_NET_CTRL_ANNOUNCE        3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK    0
#define VIRTIO_NET_CTRL_MQ              4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS     5
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET 0

/*
 * Size of the per-packet header the driver uses with these negotiated
 * features: 12 with VERSION_1 or MRG_RXBUF, else 10.
 */
size_t vnet_net_hdr_len(uint64_t features);

/*
 * Feature negotiation: the result is offered ∩ accepted. Returns 0, or
 * -EINVAL with a reason in `err` when the driver accepted a bit that was not
 * offered, or when `modern` and VERSION_1 is missing, or when a feature's
 * dependency is missing (e.g. MQ or CTRL_RX without CTRL_VQ, GUEST_TSO4
 * without GUEST_CSUM, HOST_TSO4 without CSUM).
 */
int vnet_net_negotiate(uint64_t offered, uint64_t accepted, bool modern, uint64_t *result,
		       char *err, size_t errlen);

/* Human name of a feature bit ("MRG_RXBUF"), or NULL when unknown. */
const char *vnet_net_feature_name(unsigned bit);

#endif
