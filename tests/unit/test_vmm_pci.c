/*
 * test_vmm_pci — vnet-vmm's PCI host bridge (src/vmm/pci.c) and virtio-pci
 * modern transport (src/vmm/virtio_pci.c) without KVM, driven through the
 * port-I/O and MMIO buses as a guest would: configuration mechanism #1 as
 * Linux probes it, identity and capability list, BAR sizing and moving
 * (Memory Space Enable), Linux's virtio-pci bring-up with MSI-X (routes,
 * irqfds, ioeventfds), masking, reset, config interrupts, hostile accesses,
 * and teardown without leaks.
 *
 * The KVM calls (MSI routes, irqfd, ioeventfd) are replaced with recorders
 * by the linker (kvm_recorder.h). They refuse what KVM refuses (an fd bound
 * twice, removing what is not there), so the bookkeeping is checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/virtio_pci.h>

#include "fakevm.h"
#include "kvm_recorder.h"
#include "vhu_peer.h"
#include "vnet/log.h"
#include "vmm/pci.h"
#include "vmm/virtio_dev.h"
#include "vmm/virtio_transport.h"
#include "vmm/vmm.h"

#define RAM (16u << 20)
#define BAR_SIZE 0x4000u
#define SLOT 1

/* ---- the fake VM -------------------------------------------------------- */

static struct vmm vm;
static struct virtio_dev dev;
static uint8_t net_config[12] = { 0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0, 0, 0 };
static struct fakevm_model model = { .features = 1ull << 5 /* MAC */, .config = net_config };
static int warnings, errors, open_fds;

static void count_logs(enum vnet_log_level level, const char *line, void *arg)
{
	(void)line;
	(void)arg;
	if (level == VNET_LOG_ERROR)
		errors++;
	else if (level == VNET_LOG_WARN)
		warnings++;
}

/* The fd bound to gsi other than the queues' call fds: the config eventfd. */
static int config_fd_on(int gsi)
{
	for (int fd = 0; fd < kvm_recorder_irqfd_end(); fd++)
		if (kvm_recorder_irqfd_gsi(fd) == gsi && fd != dev.q[0].call_fd && fd != dev.q[1].call_fd)
			return fd;
	return -1;
}

/* ioeventfds are the queues' doorbells: 16-bit writes of the queue index. */
static bool ioeventfd_at(int fd, uint64_t addr, uint64_t datamatch)
{
	return kvm_recorder_ioeventfd_at(fd, addr, 2, datamatch);
}

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	kvm_recorder_reset();
	model.activations = model.deactivations = warnings = errors = 0;
	open_fds = (int)vhu_count_fds();

	vm.vm_fd = -1;
	vm.mem = calloc(1, RAM);
	vm.mem_size = vm.low_size = RAM;
	vm.nregions = 1;
	vm.regions[0] = (struct vnet_mem_region){ .gpa = 0, .size = RAM, .uaddr = (uintptr_t)vm.mem, .host = vm.mem };
	vm.next_gsi = VMM_GSI_MSI_BASE;
	pthread_mutex_init(&vm.irq_lock, NULL);
	vmm_bus_init(&vm.pio, "pio");
	vmm_bus_init(&vm.mmio, "mmio");
	vnet_log_set_sink(count_logs, NULL);

	if (virtio_dev_init(&dev, &vm, "net0", 1, 2, 256, sizeof(net_config), &fakevm_model_ops, &model) < 0)
		return -1;
	return virtio_pci_create(&vm, &dev);
}

static int teardown(void **state)
{
	(void)state;
	virtio_pci_destroy(&dev);
	pci_destroy(&vm);
	virtio_dev_destroy(&dev);
	/* nothing left behind in KVM, on the buses or in the fd table */
	assert_int_equal(kvm_recorder_ioeventfd_count(), 0);
	assert_int_equal(kvm_recorder_irqfd_count(), 0);
	assert_int_equal(kvm_recorder_route_count(), 0);
	assert_int_equal(vm.pio.n, 0);
	assert_int_equal(vm.mmio.n, 0);
	assert_int_equal((int)vhu_count_fds(), open_fds);
	assert_int_equal(kvm_recorder_refusals(), 0);
	vmm_bus_destroy(&vm.pio);
	vmm_bus_destroy(&vm.mmio);
	pthread_mutex_destroy(&vm.irq_lock);
	vnet_log_set_sink(NULL, NULL);
	free(vm.mem);
	return 0;
}

/* ---- guest accessors ---------------------------------------------------- */

static uint32_t inl_(uint16_t port, unsigned len)
{
	uint32_t v = 0;
	vmm_bus_access(&vm.pio, port, &v, len, false);
	return v;
}

static void outl_(uint16_t port, unsigned len, uint32_t v)
{
	vmm_bus_access(&vm.pio, port, &v, len, true);
}

static uint32_t conf1_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len)
{
	outl_(0xcf8, 4, conf1_addr(0, slot, 0, reg));
	return inl_((uint16_t)(0xcfc + (reg & 3)), len);
}

static void cfg_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	outl_(0xcf8, 4, conf1_addr(0, slot, 0, reg));
	outl_((uint16_t)(0xcfc + (reg & 3)), len, v);
}

static uint64_t bar0(void)
{
	return (cfg_read(SLOT, PCI_BASE_ADDRESS_0, 4) & ~0xfull) |
	       (uint64_t)cfg_read(SLOT, PCI_BASE_ADDRESS_1, 4) << 32;
}

static uint64_t rd(uint32_t off, unsigned len)
{
	uint64_t v = 0;
	assert_true(vmm_bus_access(&vm.mmio, bar0() + off, &v, len, false));
	return v;
}

static void wr(uint32_t off, unsigned len, uint64_t v)
{
	assert_true(vmm_bus_access(&vm.mmio, bar0() + off, &v, len, true));
}

/* Offset of the first vendor capability of cfg_type `type` (or of capability
 * `id` when type is 0), walking the list as Linux does. */
static unsigned find_cap(uint8_t id, uint8_t type)
{
	unsigned pos = cfg_read(SLOT, PCI_CAPABILITY_LIST, 1), steps = 0;
	while (pos) {
		assert_true(pos >= 0x40 && pos <= 0xfc && !(pos & 3));
		assert_true(++steps < 48);
		if (cfg_read(SLOT, pos, 1) == id &&
		    (!type || cfg_read(SLOT, pos + VIRTIO_PCI_CAP_CFG_TYPE, 1) == type))
			return pos;
		pos = cfg_read(SLOT, pos + 1, 1);
	}
	return 0;
}

static unsigned cap_offset(uint8_t type)
{
	unsigned pos = find_cap(PCI_CAP_ID_VNDR, type);
	assert_int_not_equal(pos, 0);
	return cfg_read(SLOT, pos + VIRTIO_PCI_CAP_OFFSET, 4);
}

static bool needs_reset(void)
{
	return virtio_dev_read_status(&dev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

/* ---- configuration mechanism #1 and identity ---------------------------- */

static void conf1_probe_like_linux(void **state)
{
	(void)state;
	/* pci_check_type1(): a byte to 0xcfb, then the latch must read back */
	outl_(0xcfb, 1, 0x01);
	outl_(0xcf8, 4, 0x80000000u);
	assert_int_equal(inl_(0xcf8, 4), 0x80000000u);
	outl_(0xcf8, 4, 0x80000003u);          /* the low bits are not latched */
	assert_int_equal(inl_(0xcf8, 4), 0x80000000u);
	assert_int_equal(inl_(0xcf9, 1), 0xff); /* not ours */

	/* pci_sanity_check(): a host bridge (class 0x0600) by Intel at 00:00.0 */
	assert_int_equal(cfg_read(0, PCI_VENDOR_ID, 2), 0x8086);
	assert_int_equal(cfg_read(0, PCI_DEVICE_ID, 2), 0x1237);
	assert_int_equal(cfg_read(0, PCI_CLASS_DEVICE, 2), 0x0600);
	assert_int_equal(cfg_read(0, PCI_HEADER_TYPE, 1), 0);

	/* nothing behind other slots, functions, buses, or with enable clear */
	assert_int_equal(cfg_read(7, PCI_VENDOR_ID, 4), 0xffffffffu);
	outl_(0xcf8, 4, conf1_addr(0, SLOT, 1, 0));
	assert_int_equal(inl_(0xcfc, 2), 0xffff);
	outl_(0xcf8, 4, conf1_addr(1, SLOT, 0, 0));
	assert_int_equal(inl_(0xcfc, 4), 0xffffffffu);
	outl_(0xcf8, 4, conf1_addr(0, SLOT, 0, 0) & 0x7fffffffu);
	assert_int_equal(inl_(0xcfc, 4), 0xffffffffu);
	/* byte/word accesses at any offset in the data dword */
	outl_(0xcf8, 4, conf1_addr(0, SLOT, 0, PCI_VENDOR_ID));
	assert_int_equal(inl_(0xcfd, 1), 0x1a);
	assert_int_equal(inl_(0xcfe, 2), 0x1041);
	assert_int_equal(inl_(0xcfe, 4), 0xffffffffu); /* runs past the data port */
}

static void virtio_identity(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(SLOT, PCI_VENDOR_ID, 4), 0x10411af4u);
	assert_int_equal(cfg_read(SLOT, PCI_REVISION_ID, 4), 0x02000001u);
	assert_int_equal(cfg_read(SLOT, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(SLOT, PCI_SUBSYSTEM_ID, 2), 1);
	assert_int_equal(cfg_read(SLOT, PCI_HEADER_TYPE, 1), 0);
	assert_true(cfg_read(SLOT, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_true(cfg_read(SLOT, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
	assert_int_equal(cfg_read(SLOT, PCI_INTERRUPT_PIN, 1), 0);
	/* read-only identity, no ROM */
	cfg_write(SLOT, PCI_VENDOR_ID, 4, 0x12345678);
	assert_int_equal(cfg_read(SLOT, PCI_VENDOR_ID, 4), 0x10411af4u);
	cfg_write(SLOT, PCI_ROM_ADDRESS, 4, 0xfffff800u);
	assert_int_equal(cfg_read(SLOT, PCI_ROM_ADDRESS, 4), 0);
	cfg_write(SLOT, PCI_INTERRUPT_LINE, 1, 11); /* Linux writes it */
	assert_int_equal(cfg_read(SLOT, PCI_INTERRUPT_LINE, 1), 11);
}

static void capabilities(void **state)
{
	(void)state;
	static const struct {
		uint8_t type;
		uint32_t min_len;
	} want[] = {
		{ VIRTIO_PCI_CAP_COMMON_CFG, 0x38 },
		{ VIRTIO_PCI_CAP_NOTIFY_CFG, 4 * 1 + 2 },
		{ VIRTIO_PCI_CAP_ISR_CFG, 1 },
		{ VIRTIO_PCI_CAP_DEVICE_CFG, sizeof(net_config) },
		{ VIRTIO_PCI_CAP_PCI_CFG, 0 },
	};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		unsigned pos = find_cap(PCI_CAP_ID_VNDR, want[i].type);
		assert_int_not_equal(pos, 0);
		assert_int_equal(cfg_read(SLOT, pos + VIRTIO_PCI_CAP_BAR, 1), 0);
		uint32_t off = cfg_read(SLOT, pos + VIRTIO_PCI_CAP_OFFSET, 4);
		uint32_t len = cfg_read(SLOT, pos + VIRTIO_PCI_CAP_LENGTH, 4);
		assert_true(len >= want[i].min_len);
		assert_true(off + len <= BAR_SIZE);
		assert_true(cfg_read(SLOT, pos + VIRTIO_PCI_CAP_LEN, 1) >= 16);
	}
	unsigned notify = find_cap(PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_NOTIFY_CFG);
	assert_int_equal(cfg_read(SLOT, notify + offsetof(struct virtio_pci_notify_cap, notify_off_multiplier), 4), 4);

	unsigned msix = find_cap(PCI_CAP_ID_MSIX, 0);
	assert_int_not_equal(msix, 0);
	assert_int_equal(cfg_read(SLOT, msix + PCI_MSIX_FLAGS, 2), 2); /* 3 vectors, disabled */
	uint32_t table = cfg_read(SLOT, msix + PCI_MSIX_TABLE, 4);
	uint32_t pba = cfg_read(SLOT, msix + PCI_MSIX_PBA, 4);
	assert_int_equal(table & PCI_MSIX_TABLE_BIR, 0);
	assert_int_equal(pba & PCI_MSIX_PBA_BIR, 0);
	assert_true((table & PCI_MSIX_TABLE_OFFSET) + 3 * 16 <= BAR_SIZE);
	assert_true((pba & PCI_MSIX_PBA_OFFSET) + 8 <= BAR_SIZE);
	/* entries start masked */
	for (unsigned v = 0; v < 3; v++)
		assert_int_equal(rd((table & PCI_MSIX_TABLE_OFFSET) + 16 * v + 12, 4), 1);
}

/* ---- BARs ---------------------------------------------------------------- */

static void bar_sizing(void **state)
{
	(void)state;
	uint32_t lo = cfg_read(SLOT, PCI_BASE_ADDRESS_0, 4);
	assert_int_equal(lo & 0xf, PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(bar0(), VMM_PCI_MMIO_BASE);
	assert_int_equal(bar0() % BAR_SIZE, 0);

	/* __pci_read_base(): decoding off, all-ones, read the mask, restore */
	uint16_t cmd = (uint16_t)cfg_read(SLOT, PCI_COMMAND, 2);
	cfg_write(SLOT, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY);
	assert_int_equal(vm.mmio.n, 0);
	cfg_write(SLOT, PCI_BASE_ADDRESS_0, 4, 0xffffffffu);
	assert_int_equal(cfg_read(SLOT, PCI_BASE_ADDRESS_0, 4), (uint32_t)-BAR_SIZE | PCI_BASE_ADDRESS_MEM_TYPE_64);
	cfg_write(SLOT, PCI_BASE_ADDRESS_0, 4, lo);
	cfg_write(SLOT, PCI_BASE_ADDRESS_1, 4, 0xffffffffu);
	assert_int_equal(cfg_read(SLOT, PCI_BASE_ADDRESS_1, 4), 0xffffffffu);
	cfg_write(SLOT, PCI_BASE_ADDRESS_1, 4, 0);
	/* unused BARs size to 0 */
	cfg_write(SLOT, PCI_BASE_ADDRESS_2, 4, 0xffffffffu);
	assert_int_equal(cfg_read(SLOT, PCI_BASE_ADDRESS_2, 4), 0);
	cfg_write(SLOT, PCI_COMMAND, 2, cmd);
	assert_int_equal(vm.mmio.n, 1);
	assert_int_equal(rd(cap_offset(VIRTIO_PCI_CAP_COMMON_CFG) + VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	assert_int_equal(warnings + errors, 0);
}

static void setup_queue(unsigned q, uint64_t base, uint16_t vector)
{
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
	wr(common + VIRTIO_PCI_COMMON_Q_SIZE, 2, 128);
	/* vp_iowrite64_twopart(): low then high */
	wr(common + VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)base);
	wr(common + VIRTIO_PCI_COMMON_Q_DESCHI, 4, (uint32_t)(base >> 32));
	wr(common + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)(base + 0x800));
	wr(common + VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
	wr(common + VIRTIO_PCI_COMMON_Q_USEDLO, 8, base + 0x1000); /* one 64-bit write is fine too */
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_USEDLO, 8), base + 0x1000);
	wr(common + VIRTIO_PCI_COMMON_Q_MSIX, 2, vector);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_MSIX, 2), vector);
}

static uint32_t msix_table(void)
{
	return cfg_read(SLOT, find_cap(PCI_CAP_ID_MSIX, 0) + PCI_MSIX_TABLE, 4) & PCI_MSIX_TABLE_OFFSET;
}

static void msix_ctrl(uint16_t flags)
{
	unsigned msix = find_cap(PCI_CAP_ID_MSIX, 0);
	cfg_write(SLOT, msix + PCI_MSIX_FLAGS, 2, (cfg_read(SLOT, msix + PCI_MSIX_FLAGS, 2) & 0x7ff) | flags);
}

/* What Linux does: MSI-X enable with all masked, program the entries,
 * unmask the function, then per vector unmask as request_irq() runs. */
static void msix_enable_like_linux(void)
{
	uint32_t table = msix_table();
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	for (unsigned v = 0; v < 3; v++) {
		wr(table + 16 * v + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee00000u);
		wr(table + 16 * v + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0);
		wr(table + 16 * v + PCI_MSIX_ENTRY_DATA, 4, 0x4020 + v);
	}
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	for (unsigned v = 0; v < 3; v++)
		wr(table + 16 * v + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
}

static int vector_gsi(unsigned v)
{
	/* the fake VM hands out GSIs in order: vector v got VMM_GSI_MSI_BASE + v */
	return VMM_GSI_MSI_BASE + (int)v;
}

/* Linux's virtio_pci_modern probe + virtnet probe, per-queue vectors. */
static void bring_up(void)
{
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	int started = model.activations;
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 1), 0);
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(common + VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_DF, 4), 1);
	wr(common + VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_DF, 4), 1u << 5);
	wr(common + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	wr(common + VIRTIO_PCI_COMMON_GF, 4, 1u << 5);
	wr(common + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	wr(common + VIRTIO_PCI_COMMON_GF, 4, 1);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_GF, 4), 1);
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);

	msix_enable_like_linux();
	wr(common + VIRTIO_PCI_COMMON_MSIX, 2, 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_MSIX, 2), 0);
	setup_queue(0, 0x100000, 1);
	setup_queue(1, 0x200000, 2);
	for (unsigned q = 0; q < 2; q++) {
		wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		wr(common + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	}
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
	assert_int_equal(model.activations, started + 1);
	assert_false(needs_reset());
}

static void bar_move_follows(void **state)
{
	(void)state;
	bring_up();
	uint64_t old = bar0(), new = VMM_PCI_MMIO_BASE + 0x100000;
	uint32_t notify = cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG);
	assert_true(ioeventfd_at(dev.q[1].kick_fd, old + notify + 4, 1));

	uint16_t cmd = (uint16_t)cfg_read(SLOT, PCI_COMMAND, 2);
	cfg_write(SLOT, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 0); /* not decoding: no doorbells */
	cfg_write(SLOT, PCI_BASE_ADDRESS_0, 4, (uint32_t)new);
	cfg_write(SLOT, PCI_COMMAND, 2, cmd);
	assert_int_equal(bar0(), new);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 2);
	assert_true(ioeventfd_at(dev.q[0].kick_fd, new + notify, 0));
	assert_true(ioeventfd_at(dev.q[1].kick_fd, new + notify + 4, 1));
	uint64_t v = 0;
	assert_false(vmm_bus_access(&vm.mmio, old, &v, 2, false));

	/* moved while decoding, as a firmware-less guest may do */
	cfg_write(SLOT, PCI_BASE_ADDRESS_0, 4, (uint32_t)old);
	assert_int_equal(bar0(), old);
	assert_true(ioeventfd_at(dev.q[0].kick_fd, old + notify, 0));
	assert_int_equal(kvm_recorder_ioeventfd_count(), 2);
	assert_int_equal(rd(cap_offset(VIRTIO_PCI_CAP_COMMON_CFG) + VIRTIO_PCI_COMMON_NUMQ, 2), 2);
}

/* ---- MSI-X and the virtio registers --------------------------------------- */

static void bring_up_msix(void **state)
{
	(void)state;
	bring_up();
	uint32_t notify = cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG);
	for (unsigned v = 0; v < 3; v++) {
		const struct kvm_recorder_route *r = kvm_recorder_route(vector_gsi(v));
		assert_non_null(r);
		assert_int_equal(r->addr, 0xfee00000u);
		assert_int_equal(r->data, 0x4020 + v);
	}
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[0].call_fd), vector_gsi(1));
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[1].call_fd), vector_gsi(2));
	assert_true(config_fd_on(vector_gsi(0)) >= 0);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 2);
	assert_true(ioeventfd_at(dev.q[0].kick_fd, bar0() + notify, 0));
	assert_true(ioeventfd_at(dev.q[1].kick_fd, bar0() + notify + 4, 1));
	/* the device config is there */
	uint32_t devcfg = cap_offset(VIRTIO_PCI_CAP_DEVICE_CFG);
	assert_int_equal(rd(devcfg, 4), 0x01005452u);
	assert_int_equal(rd(devcfg + 4, 2), 0x0302);
	assert_int_equal(warnings + errors, 0);
}

static void msix_masking(void **state)
{
	(void)state;
	bring_up();
	uint32_t table = msix_table();
	int commits = kvm_recorder_route_commits();

	/* an entry masked: its queue's irqfd goes, the others stay */
	wr(table + 16 * 1 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 1);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[0].call_fd), -1);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[1].call_fd), vector_gsi(2));
	/* Linux rewrites the message while masked, then unmasks: re-routed */
	wr(table + 16 * 1 + PCI_MSIX_ENTRY_DATA, 4, 0x4041);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[0].call_fd), -1);
	wr(table + 16 * 1 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	assert_non_null(kvm_recorder_route(vector_gsi(1)));
	assert_int_equal(kvm_recorder_route(vector_gsi(1))->data, 0x4041);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[0].call_fd), vector_gsi(1));
	/* unmasking again with the same message commits nothing */
	commits = kvm_recorder_route_commits();
	wr(table + 16 * 1 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	assert_int_equal(kvm_recorder_route_commits(), commits);

	/* function mask, then MSI-X off: nothing bound */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_int_equal(kvm_recorder_irqfd_count(), 0);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(kvm_recorder_irqfd_count(), 3);
	msix_ctrl(0);
	assert_int_equal(kvm_recorder_irqfd_count(), 0);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(kvm_recorder_irqfd_count(), 3);

	/* moving a queue to another vector (shared-vector fallback) */
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	wr(common + VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[1].call_fd), vector_gsi(1));
	/* a vector beyond the table is refused with NO_VECTOR */
	wr(common + VIRTIO_PCI_COMMON_Q_MSIX, 2, 3);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(kvm_recorder_irqfd_gsi(dev.q[1].call_fd), -1);
	wr(common + VIRTIO_PCI_COMMON_MSIX, 2, 0x7ff);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(kvm_recorder_irqfd_count(), 1);
	/* the table reads back what was written; 64-bit accesses work */
	assert_int_equal(rd(table + 16 * 2, 8), 0xfee00000u);
	assert_int_equal(rd(table + 16 * 2 + 8, 8), 0x4022u);
	assert_int_equal(warnings + errors, 0);
}

static void reset_unmaps(void **state)
{
	(void)state;
	bring_up();
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 1), 0);
	assert_int_equal(model.deactivations, 1);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	for (unsigned q = 0; q < 2; q++) {
		wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
		assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	}
	assert_int_equal(kvm_recorder_irqfd_count(), 0);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 0);
	/* and it comes up again */
	bring_up();
	assert_int_equal(model.activations, 2);
	assert_int_equal(kvm_recorder_irqfd_count(), 3);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 2);
}

static void config_interrupt(void **state)
{
	(void)state;
	bring_up();
	uint32_t isr = cap_offset(VIRTIO_PCI_CAP_ISR_CFG);
	int cfd = config_fd_on(vector_gsi(0));
	assert_true(cfd >= 0);
	assert_false(vhu_eventfd_fired(cfd)); /* nothing yet */

	virtio_dev_needs_reset(&dev, "test");
	assert_true(vhu_eventfd_fired(cfd));
	assert_true(needs_reset());
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	assert_true(rd(common + VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* ISR: read-to-clear */
	assert_int_equal(rd(isr, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(rd(isr, 1), 0);
	errors = 0;
}

static void hostile_accesses(void **state)
{
	(void)state;
	bring_up();
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);
	uint32_t table = msix_table();

	/* wrong widths are ignored, logged once */
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 4), 0);
	wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 1, 1);
	wr(common + VIRTIO_PCI_COMMON_STATUS, 2, 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
	wr(common + 3, 1, 0xff); /* inside a field */
	assert_int_equal(warnings, 1);
	wr(table + 2, 2, 0xffff);
	wr(table + 4, 8, ~0ull);
	assert_int_equal(warnings, 2);
	assert_int_equal(kvm_recorder_irqfd_count(), 3);

	/* past the end of the BAR, gaps, read-only areas: zeros, no effect */
	assert_int_equal(rd(BAR_SIZE - 4, 8), 0);
	assert_int_equal(rd(0x0f00, 4), 0);
	wr(0x0f00, 4, 0xdeadbeef);
	wr(cap_offset(VIRTIO_PCI_CAP_DEVICE_CFG) + 0x100, 4, 1);
	assert_int_equal(rd(cap_offset(VIRTIO_PCI_CAP_DEVICE_CFG) + 10, 4), 0); /* straddles the end */

	/* queue registers after DRIVER_OK are frozen */
	wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	wr(common + VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x12345678);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x100000);
	assert_false(needs_reset());

	/* a queue that does not exist: reads as absent, writes break the device */
	wr(common + VIRTIO_PCI_COMMON_Q_SELECT, 2, 5);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	assert_int_equal(rd(common + VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	wr(common + VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	wr(common + VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
	assert_true(needs_reset());

	/* after a reset: a kick of a queue that is not ready exits and is refused */
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	assert_false(needs_reset());
	wr(cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG) + 4, 2, 1);
	assert_true(needs_reset());
	wr(common + VIRTIO_PCI_COMMON_STATUS, 1, 0);

	/* an MSI-X entry with an address that is no MSI: never routed */
	int commits = kvm_recorder_route_commits();
	wr(table + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 1);
	wr(table + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0x1000);
	wr(table + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	assert_int_equal(kvm_recorder_route_commits(), commits);
	wr(common + VIRTIO_PCI_COMMON_MSIX, 2, 0);
	assert_int_equal(config_fd_on(vector_gsi(0)), -1);
	errors = warnings = 0;
}

static void pci_cfg_window(void **state)
{
	(void)state;
	unsigned cap = find_cap(PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_PCI_CFG);
	unsigned data = cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t common = cap_offset(VIRTIO_PCI_CAP_COMMON_CFG);

	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_BAR, 1, 0);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_OFFSET, 4, common + VIRTIO_PCI_COMMON_NUMQ);
	assert_int_equal(cfg_read(SLOT, data, 4), 2);
	/* a write through the window: queue_select */
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_OFFSET, 4, common + VIRTIO_PCI_COMMON_Q_SELECT);
	cfg_write(SLOT, data, 4, 1);
	assert_int_equal(dev.queue_sel, 1);
	/* refused windows: odd length, unaligned, other BAR, out of range */
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_LENGTH, 4, 3);
	assert_int_equal(cfg_read(SLOT, data, 4), 0);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_LENGTH, 4, 4);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_OFFSET, 4, 2);
	assert_int_equal(cfg_read(SLOT, data, 4), 0);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_OFFSET, 4, 0xfffffffc);
	cfg_write(SLOT, data, 4, 1);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_BAR, 1, 2);
	cfg_write(SLOT, cap + VIRTIO_PCI_CAP_OFFSET, 4, 0);
	assert_int_equal(cfg_read(SLOT, data, 4), 0);
	assert_int_equal(warnings, 1);
	warnings = 0;
}

/* pci_destroy() before the device's own destroy (main's order may vary). */
static void destroy_order(void **state)
{
	(void)state;
	bring_up();
	pci_destroy(&vm);
	assert_int_equal(kvm_recorder_ioeventfd_count(), 0);
	assert_int_equal(vm.mmio.n, 0);
	assert_int_equal(vm.pio.n, 0);
	/* teardown() runs virtio_pci_destroy() and pci_destroy() again */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(conf1_probe_like_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(virtio_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(bar_move_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(bring_up_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(msix_masking, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_unmaps, setup, teardown),
		cmocka_unit_test_setup_teardown(config_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(pci_cfg_window, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
