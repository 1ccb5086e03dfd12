/*
 * virtio_transport.h — the two ways a virtio_dev appears to the guest.
 *
 * virtio-mmio v2 (virtio 1.2 §4.2.2): a 0x200-byte register window at
 * VMM_MMIO_BASE + VMM_MMIO_STRIDE * slot, one ISA IRQ, announced on the
 * kernel command line as "virtio_mmio.device=0x200@0x<base>:<irq>" (how
 * Linux finds it when built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, and how
 * vnet's test guest finds it). QueueNotify is a KVM ioeventfd per queue
 * (datamatch = queue index); every queue's call_fd is an irqfd on the IRQ.
 *
 * virtio-pci modern (virtio 1.2 §4.1): vendor 0x1af4, device 0x1040 + id,
 * revision 1, on the PCI host bridge (configuration mechanism #1, ports
 * 0xcf8/0xcfc); common / notify / ISR / device config capabilities in BAR 0
 * (64-bit memory BAR), MSI-X table and PBA in the same BAR, one MSI GSI and
 * route per vector; a queue's call_fd is an irqfd bound to the GSI of the
 * vector it selected; notify is an ioeventfd per queue.
 *
 * Thread-safety: create/destroy on the main thread before/after vmm_run.
 */
#ifndef VNET_VMM_VIRTIO_TRANSPORT_H
#define VNET_VMM_VIRTIO_TRANSPORT_H

#include "vmm/virtio_dev.h"

struct vmm;

int virtio_mmio_create(struct vmm *vmm, struct virtio_dev *dev);
void virtio_mmio_destroy(struct virtio_dev *dev);

int virtio_pci_create(struct vmm *vmm, struct virtio_dev *dev);
void virtio_pci_destroy(struct virtio_dev *dev);

#endif
