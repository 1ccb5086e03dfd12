/*
 * tap.h — the tap side of vnet-vmm's virtio-net back-ends (emulated and
 * vhost-net): attach to an existing tap with a 12-byte virtio-net header
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ 12: the VERSION_1 header with
 * num_buffers), and switch the tap's receive offloads to exactly those the
 * guest accepted.
 *
 * The VMM never creates a tap: TUNSETIFF would silently create a missing
 * name, so tap_open() first asks the kernel (ioctls on a socket of the
 * caller's network namespace) whether NAME exists and is a tap, and reports
 * "tap NAME: no such device" / "NAME is not a tap".
 *
 * Thread-safety: plain functions on an fd; no shared state.
 */
#ifndef VNET_VMM_TAP_H
#define VNET_VMM_TAP_H

#include <stdint.h>

/* The header the tap prepends / expects: struct virtio_net_hdr_mrg_rxbuf. */
#define TAP_VNET_HDR_LEN 12


/*
 * Opens the existing tap `ifname` (non-blocking, close-on-exec, vnet header
 * of TAP_VNET_HDR_LEN, offloads off). `who` names the device in messages
 * ("net0"). Returns the fd, or -errno with one error line logged:
 *   -ENODEV  no interface of that name
 *   -EINVAL  bad name, or the interface is not a tap (a tun, a veth, ...)
 *   other    /dev/net/tun or an ioctl failed (EBUSY: another process has it)
 * A tap whose link is down is accepted with a warning.
 */
int tap_open(const char *who, const char *ifname);

/* virtio-net offload features a tap with a vnet header handles in both
 * directions (the kernel checksums and segments), whoever serves the rings:
 * CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6, HOST/GUEST_ECN. (A function, so this
 * header needs neither vnet/net.h nor linux/virtio_net.h, which clash.) */
uint64_t tap_net_offloads(void);

/* The TUN_F_* receive offloads matching the virtio-net guest features
 * accepted in `features` (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN, GUEST_UFO). */
unsigned tap_offloads_for(uint64_t features);

/* TUNSETOFFLOAD with tap_offloads_for(features); 0 or -errno (logged). */
int tap_set_offloads(int fd, const char *who, const char *ifname, uint64_t features);

#endif
