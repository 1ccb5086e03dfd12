/*
 * tap.c — attach vnet-vmm to an existing tap; see tap.h.
 *
 * Thread-safety: no shared state; each call works on its own fd.
 */
#include "vmm/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vnet/net.h"

static bool ifname_valid(const char *ifname)
{
	size_t len = strnlen(ifname, IFNAMSIZ);
	return len > 0 && len < IFNAMSIZ && !strchr(ifname, '/') && !strchr(ifname, ' ');
}

/*
 * What kind of interface `ifname` is, asked through a socket of this
 * process's network namespace (sysfs would answer for the namespace /sys
 * was mounted in, which is not ours after a plain unshare/setns). A tap
 * answers ETHTOOL_GDRVINFO with driver "tun", bus_info "tap".
 */
enum if_kind { IF_MISSING, IF_TAP, IF_TUN, IF_OTHER };

static enum if_kind if_kind(int sock, const char *ifname, bool *up)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return IF_MISSING;
	*up = ifr.ifr_flags & IFF_UP;
	struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
	ifr.ifr_data = (void *)&info;
	if (ioctl(sock, SIOCETHTOOL, &ifr) < 0 || strcmp(info.driver, "tun") != 0)
		return IF_OTHER;
	return strcmp(info.bus_info, "tap") == 0 ? IF_TAP : IF_TUN;
}

/* TUNSETIFF on an existing tap; 0 or -errno. */
static int attach(int fd, const char *ifname, bool multi_queue)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (multi_queue)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	return ioctl(fd, TUNSETIFF, &ifr) < 0 ? -errno : 0;
}

int tap_open(const char *who, const char *ifname)
{
	if (!ifname_valid(ifname)) {
		vnet_err("vnet-vmm: %s: bad tap name '%s' (1..%d characters)", who, ifname,
			 IFNAMSIZ - 1);
		return -EINVAL;
	}
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		int rc = -errno;
		vnet_err("vnet-vmm: %s: tap %s: socket: %s", who, ifname, strerror(errno));
		return rc;
	}
	bool up = false;
	enum if_kind kind = if_kind(sock, ifname, &up);
	close(sock);
	/* TUNSETIFF would create a missing tap: the VMM only attaches. */
	if (kind == IF_MISSING) {
		vnet_err("vnet-vmm: %s: tap %s: no such device (create it first: ip tuntap add "
			 "mode tap %s)",
			 who, ifname, ifname);
		return -ENODEV;
	}
	if (kind != IF_TAP) {
		vnet_err("vnet-vmm: %s: %s is not a tap%s", who, ifname,
			 kind == IF_TUN ? " (it is a tun: layer 3, no Ethernet frames)" : "");
		return -EINVAL;
	}

	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		vnet_err("vnet-vmm: %s: tap %s: /dev/net/tun: %s%s", who, ifname, strerror(errno),
			 errno == ENOENT ? " (modprobe tun)" : "");
		return rc;
	}
	int rc = attach(fd, ifname, false);
	if (rc == -EINVAL)
		rc = attach(fd, ifname, true); /* a multiqueue tap wants the flag back */
	const char *failed = rc < 0 ? "TUNSETIFF" : NULL;
	int hdr_len = TAP_VNET_HDR_LEN;
	if (!failed && ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		failed = "TUNSETVNETHDRSZ 12";
	else if (!failed && ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) /* a previous user's may linger */
		failed = "TUNSETOFFLOAD 0";
	if (failed) {
		if (rc == 0)
			rc = -errno;
		vnet_err("vnet-vmm: %s: tap %s: %s: %s%s", who, ifname, failed, strerror(-rc),
			 rc == -EBUSY ? " (another process has it open)"
			 : rc == -EPERM ? " (owned by another user: ip tuntap add ... user U)"
					: "");
		close(fd);
		return rc;
	}
	if (!up)
		vnet_warn("vnet-vmm: %s: tap %s is down: no frame crosses until 'ip link set %s up'",
			  who, ifname, ifname);
	return fd;
}

uint64_t tap_net_offloads(void)
{
	return VNET_BIT(VIRTIO_NET_F_CSUM) | VNET_BIT(VIRTIO_NET_F_GUEST_CSUM) |
	       VNET_BIT(VIRTIO_NET_F_HOST_TSO4) | VNET_BIT(VIRTIO_NET_F_HOST_TSO6) |
	       VNET_BIT(VIRTIO_NET_F_HOST_ECN) | VNET_BIT(VIRTIO_NET_F_GUEST_TSO4) |
	       VNET_BIT(VIRTIO_NET_F_GUEST_TSO6) | VNET_BIT(VIRTIO_NET_F_GUEST_ECN);
}

unsigned tap_offloads_for(uint64_t features)
{
	/* The tun driver refuses TSO/UFO without CSUM and ECN without TSO
	 * (EINVAL), as the virtio spec makes them depend on GUEST_CSUM. */
	if (!(features & VNET_BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	unsigned off = TUN_F_CSUM;
	if (features & VNET_BIT(VIRTIO_NET_F_GUEST_TSO4))
		off |= TUN_F_TSO4;
	if (features & VNET_BIT(VIRTIO_NET_F_GUEST_TSO6))
		off |= TUN_F_TSO6;
	if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) && (features & VNET_BIT(VIRTIO_NET_F_GUEST_ECN)))
		off |= TUN_F_TSO_ECN;
	if (features & VNET_BIT(VIRTIO_NET_F_GUEST_UFO))
		off |= TUN_F_UFO;
	return off;
}

int tap_set_offloads(int fd, const char *who, const char *ifname, uint64_t features)
{
	unsigned off = tap_offloads_for(features);
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
		int rc = -errno;
		vnet_err("vnet-vmm: %s: tap %s: TUNSETOFFLOAD 0x%x: %s", who, ifname, off, strerror(errno));
		return rc;
	}
	return 0;
}
