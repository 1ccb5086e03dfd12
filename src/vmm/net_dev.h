/*
 * net_dev.h — vnet-vmm's virtio-net device: one device model (features,
 * config space with MAC / status / MTU, two queues: rx = 0, tx = 1) that
 * sits on either transport (virtio-pci or virtio-mmio) and hands its
 * queues, at DRIVER_OK, to one of three back-ends — the guest cannot tell
 * them apart:
 *
 *   emulated    net_emulated.c   an I/O thread of the VMM moves frames between
 *                                the rings (libvnet's virtqueue) and a tap
 *                                (IFF_VNET_HDR); kicks come from the queues'
 *                                ioeventfds, interrupts go out via irqfd.
 *   vhost-net   net_vhost_net.c  /dev/vhost-net serves the rings in the kernel;
 *                                the VMM only sets it up (kick = ioeventfd,
 *                                call = irqfd, backend = the tap).
 *   vhost-user  net_vhost_user.c a vhost-user back-end (vnet-switchd, DPDK,
 *                                vnet-pktgen) serves the rings; RAM is shared
 *                                by its memfd; kick/call = the same eventfds.
 *
 * Back-end contract: open() checks everything it can at start-up (tap
 * exists, /dev/vhost-net opens, the socket answers) so that a bad command
 * line fails before the guest boots, with a message naming the problem.
 * features() is the subset of the device's features the back-end supports.
 * start() runs at DRIVER_OK with the negotiated features and the validated
 * queues (dev->q[]); stop() at reset must leave the queues untouched and
 * return only when nothing touches guest memory any more. close() at exit.
 * A back-end that fails at run time (peer gone, ring broken) marks only this
 * device NEEDS_RESET via virtio_dev_needs_reset() and logs once.
 *
 * Thread-safety: all ops are called from the control path with the device
 * lock held (vCPU thread doing the status write, or the main thread).
 */
#ifndef VNET_VMM_NET_DEV_H
#define VNET_VMM_NET_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtio_dev.h"

enum net_mode { NET_MODE_EMULATED, NET_MODE_VHOST_NET, NET_MODE_VHOST_USER };
enum net_transport { NET_TRANSPORT_PCI, NET_TRANSPORT_MMIO };

#define NET_DEV_RXQ 0
#define NET_DEV_TXQ 1
#define NET_DEV_QUEUE_SIZE 256

/* One --net option, parsed. */
struct net_dev_config {
	enum net_mode mode;
	enum net_transport transport;
	char tap[16];           /* emulated, vhost-net */
	char socket[108];       /* vhost-user */
	bool socket_server;     /* vhost-user: listen (server=on) instead of connect */
	uint8_t mac[6];
	bool have_mac;
	uint16_t mtu;           /* 0 = not offered */
};

struct net_dev;

struct net_backend_ops {
	const char *name;
	/* Start-up checks and resources; <0 with a message printed. */
	int (*open)(struct net_dev *nd);
	uint64_t (*features)(struct net_dev *nd);
	int (*start)(struct net_dev *nd);
	void (*stop)(struct net_dev *nd);
	void (*close)(struct net_dev *nd);
};

struct net_dev {
	struct virtio_dev vdev;
	char name[16];          /* "net0" */
	struct net_dev_config cfg;
	const struct net_backend_ops *backend;
	void *backend_priv;
	uint64_t features;      /* negotiated, valid between start and stop */
	uint8_t config[12];     /* struct virtio_net_config: mac, status, max pairs, mtu */
	/* statistics kept by the back-end (emulated mode) */
	uint64_t rx_packets, tx_packets, rx_dropped, tx_dropped;
};

extern const struct net_backend_ops net_backend_emulated;
extern const struct net_backend_ops net_backend_vhost_net;
extern const struct net_backend_ops net_backend_vhost_user;

/*
 * Parses "mode=emulated,tap=NAME[,mac=..][,transport=pci|mmio][,mtu=N]",
 * "mode=vhost-net,tap=NAME", "mode=vhost-user,socket=PATH[,server=on]".
 * Returns 0 or -EINVAL with a message in err.
 */
int net_dev_parse(const char *spec, struct net_dev_config *cfg, char *err, size_t errlen);

/*
 * The device model alone in caller-owned memory, without a transport (the
 * unit tests drive it through the virtio_dev helpers): MAC (default
 * 52:54:00:12:34:56+index), config space, back-end opened, queues and
 * eventfds made. model_fini stops a running back-end, closes it and frees
 * the queues' eventfds.
 */
int net_dev_model_init(struct net_dev *nd, struct vmm *vmm, const struct net_dev_config *cfg, unsigned index);
void net_dev_model_fini(struct net_dev *nd);

/* Creates the device, opens its back-end, attaches it to its transport. */
int net_dev_create(struct vmm *vmm, const struct net_dev_config *cfg, unsigned index,
		   struct net_dev **out);
void net_dev_destroy(struct net_dev *nd);

#endif
