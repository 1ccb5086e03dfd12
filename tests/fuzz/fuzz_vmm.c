/*
 * fuzz_vmm.c — libFuzzer target for the registers a guest driver of
 * vnet-vmm reaches: the virtio-mmio v2 window (src/vmm/virtio_mmio.c) or
 * the virtio-pci modern function (src/vmm/virtio_pci.c: common config, ISR,
 * device config, notify, MSI-X table, the PCI config window) behind the PCI
 * host bridge (src/vmm/pci.c: configuration mechanism #1, BAR sizing and
 * moves), with the transport-independent rules of src/vmm/virtio_dev.c,
 * all reached through the port-I/O and MMIO buses (src/vmm/bus.c) as a
 * vCPU exit would. The input is a sequence of guest accesses (raw, or
 * driver-like steps that make a bring-up reachable).
 *
 * No KVM: RAM is a calloc'd buffer, and the four KVM calls the transports
 * make (MSI routes, irqfds, ioeventfds) are replaced at link time
 * (-Wl,--wrap=...) by recorders that refuse what KVM refuses (an fd bound
 * twice, removing what is not there, an irqfd on a GSI without a route:
 * tests/common/kvm_recorder.h).
 * The device model is a fake whose activate starts nothing.
 *
 * Oracles, after every access: KVM never refused a call; a queue's
 * doorbell is an ioeventfd exactly while the queue is ready (PCI: and BAR 0
 * decodes, at BAR 0 + 0x3000 + 4 q; MMIO: at QueueNotify), so the notify
 * of a queue that is not ready always exits to the VMM; every bound irqfd
 * belongs to this device and has a route (PCI), and none is bound after a
 * reset; the device is active only with DRIVER_OK and activate/deactivate
 * alternate; the identity registers never change. After teardown: no
 * ioeventfd, irqfd, route or bus range left, no fd leaked.
 *
 * Input (missing bytes read as 0):
 *   h0: bit 0 PCI (else MMIO), bit 1 activate fails, bits 2-4 queues - 1,
 *       bits 5-6 queue size max (1, 16, 256, 1024), bit 7 high RAM region
 *   then steps until the input ends: u8 opcode (mod STEP_COUNT) + arguments.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_pci.h>

#include "fuzz_common.h"
#include "kvm_recorder.h"
#include "vnet/log.h"
#include "vmm/pci.h"
#include "vmm/virtio_dev.h"
#include "vmm/virtio_transport.h"
#include "vmm/vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond) FUZZ_CHECK("fuzz_vmm", cond)

#define RAM_LOW   0x10000u   /* 64 KiB at GPA 0 */
#define RAM_HIGH  0x10000u   /* 64 KiB at VMM_HIGH_RAM_BASE when h0 bit 7 */
#define SLOT      1          /* the device's PCI slot (0 is the host bridge) */
#define CONFIG_SIZE 17

/* ---- the fake VM and device ------------------------------------------- */

static struct vmm vm;
static struct virtio_dev dev;
static uint8_t *ram_low, *ram_high;
static uint8_t net_config[CONFIG_SIZE];
static int activations, deactivations, activate_rc;
static bool pci; /* this input's transport */
static bool trace;

static uint64_t fake_features(struct virtio_dev *d)
{
	(void)d;
	return 1ull << 5 | 1ull << 16 | 1ull << 28 | 1ull << 29; /* MAC STATUS INDIRECT EVENT_IDX */
}

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	(void)d;
	CHECK(off < CONFIG_SIZE && len <= CONFIG_SIZE - off);
	memcpy(data, net_config + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	(void)d;
	CHECK(off < CONFIG_SIZE && len <= CONFIG_SIZE - off);
	if (off + len <= 6)
		memcpy(net_config + off, data, len); /* only the MAC is writable */
}

static int fake_activate(struct virtio_dev *d)
{
	CHECK(d->status & VIRTIO_STATUS_DRIVER_OK);
	CHECK(!d->active); /* activate and deactivate alternate */
	if (activate_rc == 0)
		activations++; /* a failed start leaves nothing to stop */
	return activate_rc;
}

static void fake_deactivate(struct virtio_dev *d)
{
	CHECK(d->active);
	deactivations++;
}

static const struct virtio_dev_ops fake_ops = {
	.features = fake_features,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.deactivate = fake_deactivate,
};

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* ---- guest accesses ---------------------------------------------------- */

static unsigned rd_width(struct reader *r)
{
	static const unsigned w[4] = {1, 2, 4, 8};
	return w[rd8(r) & 3];
}

static uint64_t pio(uint16_t port, unsigned len, bool write, uint64_t v)
{
	vmm_bus_access(&vm.pio, port, &v, len, write);
	return write ? 0 : v & (len == 8 ? ~0ull : (1ull << (8 * len)) - 1);
}

static uint64_t mmio(uint64_t addr, unsigned len, bool write, uint64_t v)
{
	vmm_bus_access(&vm.mmio, addr, &v, len, write);
	return write ? 0 : v & (len == 8 ? ~0ull : (1ull << (8 * len)) - 1);
}

static uint32_t conf1(unsigned slot, unsigned reg)
{
	return 0x80000000u | (slot & 31) << 11 | (reg & 0xfc);
}

static uint64_t cfg_access(unsigned slot, unsigned reg, unsigned len, bool write, uint64_t v)
{
	pio(0xcf8, 4, true, conf1(slot, reg));
	if (len == 8)
		len = 4;
	return pio((uint16_t)(0xcfc + (reg & 3)), len, write, v);
}

/* Where the device's registers are now: BAR 0 (0 when it does not decode)
 * or the virtio-mmio window. */
static uint64_t regs_base(void)
{
	if (!pci)
		return VMM_MMIO_BASE;
	uint16_t cmd = (uint16_t)cfg_access(SLOT, PCI_COMMAND, 2, false, 0);
	uint64_t bar = (cfg_access(SLOT, PCI_BASE_ADDRESS_0, 4, false, 0) & ~0xfull) |
		       cfg_access(SLOT, PCI_BASE_ADDRESS_1, 4, false, 0) << 32;
	return (cmd & PCI_COMMAND_MEMORY) ? bar : 0;
}

/* Where BAR 0 really decodes (its range on the MMIO bus), or 0. */
static uint64_t bar_decoding(void)
{
	uint64_t at = 0;
	for (unsigned i = 0; i < vm.mmio.n; i++)
		if (vm.mmio.ranges[i].name && !strcmp(vm.mmio.ranges[i].name, dev.name)) {
			CHECK(!at && vm.mmio.ranges[i].len == 0x4000);
			at = vm.mmio.ranges[i].base;
		}
	return at;
}

/* ---- the driver's registers, per transport ------------------------------ */

enum reg { R_STATUS, R_QSEL, R_QSIZE, R_QREADY, R_DESC, R_AVAIL, R_USED, R_GFSEL, R_GF, R_QVEC,
	   R_CFGVEC, R_NOTIFY };

static void reg_write(enum reg which, uint64_t v)
{
	uint64_t base = regs_base();
	if (!base)
		return;
	if (!pci) {
		static const uint32_t off[] = {0x070, 0x030, 0x038, 0x044, 0x080, 0x090, 0x0a0,
					       0x024, 0x020, 0, 0, 0x050};
		if (which == R_QVEC || which == R_CFGVEC)
			return;
		if (which == R_DESC || which == R_AVAIL || which == R_USED) {
			mmio(base + off[which], 4, true, (uint32_t)v);
			mmio(base + off[which] + 4, 4, true, v >> 32);
		} else {
			mmio(base + off[which], 4, true, v);
		}
		return;
	}
	switch (which) {
	case R_STATUS: mmio(base + VIRTIO_PCI_COMMON_STATUS, 1, true, v); break;
	case R_QSEL: mmio(base + VIRTIO_PCI_COMMON_Q_SELECT, 2, true, v); break;
	case R_QSIZE: mmio(base + VIRTIO_PCI_COMMON_Q_SIZE, 2, true, v); break;
	case R_QREADY: mmio(base + VIRTIO_PCI_COMMON_Q_ENABLE, 2, true, v); break;
	case R_DESC: mmio(base + VIRTIO_PCI_COMMON_Q_DESCLO, 8, true, v); break;
	case R_AVAIL: mmio(base + VIRTIO_PCI_COMMON_Q_AVAILLO, 8, true, v); break;
	case R_USED: mmio(base + VIRTIO_PCI_COMMON_Q_USEDLO, 8, true, v); break;
	case R_GFSEL: mmio(base + VIRTIO_PCI_COMMON_GFSELECT, 4, true, v); break;
	case R_GF: mmio(base + VIRTIO_PCI_COMMON_GF, 4, true, v); break;
	case R_QVEC: mmio(base + VIRTIO_PCI_COMMON_Q_MSIX, 2, true, v); break;
	case R_CFGVEC: mmio(base + VIRTIO_PCI_COMMON_MSIX, 2, true, v); break;
	case R_NOTIFY: mmio(base + 0x3000 + 4 * (v & 0xff), 2, true, v); break;
	}
}

/* Ring addresses: mostly sensible, sometimes not. */
static uint64_t ring_addr(struct reader *r, unsigned q, unsigned area)
{
	uint8_t sel = rd8(r);
	uint64_t good = 0x1000ull * q * 3 + 0x1000ull * area; /* 3 pages a queue, aligned */
	switch (sel & 7) {
	case 0: case 1: case 2: return good;
	case 3: return good + 1 + (sel >> 3);          /* misaligned */
	case 4: return RAM_LOW - 0x10 * (sel >> 3);    /* straddles the end of RAM */
	case 5: return VMM_HIGH_RAM_BASE + 0x1000ull * area; /* high RAM (if any) */
	case 6: return 0xfffffffffffff000ull + 0x10 * (sel >> 3); /* wraps */
	default: return rd64(r);
	}
}

/* The steps a driver takes to set up queue q. */
static void step_queue(struct reader *r)
{
	unsigned q = rd8(r) % (VIRTIO_DEV_MAX_QUEUES + 1);
	uint8_t sz = rd8(r);
	reg_write(R_QSEL, q);
	reg_write(R_QSIZE, (sz & 0x80) ? rd16(r) : 1u << (sz % 11));
	reg_write(R_DESC, ring_addr(r, q, 0));
	reg_write(R_AVAIL, ring_addr(r, q, 1));
	reg_write(R_USED, ring_addr(r, q, 2));
	if (pci)
		reg_write(R_QVEC, rd8(r) % (VIRTIO_DEV_MAX_QUEUES + 3));
	reg_write(R_QREADY, rd8(r) % 3 != 0);
}

/* Feature negotiation and status bits. */
static void step_status(struct reader *r)
{
	uint8_t s = rd8(r);
	switch (s & 3) {
	case 0: reg_write(R_STATUS, 0); break;
	case 1:
		reg_write(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		reg_write(R_GFSEL, 0);
		reg_write(R_GF, (s & 4) ? rd32(r) : (uint32_t)fake_features(&dev));
		reg_write(R_GFSEL, 1);
		reg_write(R_GF, (s & 8) ? rd32(r) : 1); /* VERSION_1 */
		reg_write(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					    VIRTIO_STATUS_FEATURES_OK);
		break;
	case 2: reg_write(R_STATUS, (uint8_t)(dev.status | VIRTIO_STATUS_DRIVER_OK)); break;
	default: reg_write(R_STATUS, rd8(r)); break;
	}
}

/* MSI-X: enable in config space, program and unmask a vector. */
static void step_msix(struct reader *r)
{
	uint8_t s = rd8(r);
	unsigned v = rd8(r) % (VIRTIO_DEV_MAX_QUEUES + 2);
	if (!pci)
		return;
	/* the MSI-X capability: walk the list as Linux does */
	unsigned pos = (unsigned)cfg_access(SLOT, PCI_CAPABILITY_LIST, 1, false, 0), steps = 0;
	while (pos && steps++ < 48 && cfg_access(SLOT, pos, 1, false, 0) != PCI_CAP_ID_MSIX)
		pos = (unsigned)cfg_access(SLOT, pos + 1, 1, false, 0);
	CHECK(pos && steps < 48);
	uint16_t flags = (s & 1) ? PCI_MSIX_FLAGS_ENABLE : 0;
	if (s & 2)
		flags |= PCI_MSIX_FLAGS_MASKALL;
	cfg_access(SLOT, pos + PCI_MSIX_FLAGS, 2, true, flags);
	uint64_t base = regs_base();
	if (!base)
		return;
	uint64_t e = base + 0x3800 + 16ull * v;
	mmio(e, 4, true, (s & 4) ? rd32(r) : 0xfee00000u);
	mmio(e + 4, 4, true, 0);
	mmio(e + 8, 4, true, 0x4000 + v);
	mmio(e + 12, 4, true, (s & 8) ? 1 : 0);
	reg_write((s & 16) ? R_CFGVEC : R_QVEC, v);
}

/* BAR 0 and Command: sizing, moving, decoding on and off. */
static void step_bar(struct reader *r)
{
	uint8_t s = rd8(r);
	if (!pci)
		return;
	static const uint64_t where[4] = {0xe0000000ull, 0xe0004000ull, VMM_MMIO_BASE, 0x123450000ull};
	uint64_t addr = (s & 4) ? rd64(r) : where[s & 3];
	if (s & 8) { /* sizing, as firmware does */
		cfg_access(SLOT, PCI_BASE_ADDRESS_0, 4, true, 0xffffffff);
		cfg_access(SLOT, PCI_BASE_ADDRESS_1, 4, true, 0xffffffff);
	}
	cfg_access(SLOT, PCI_BASE_ADDRESS_0, 4, true, (uint32_t)addr);
	cfg_access(SLOT, PCI_BASE_ADDRESS_1, 4, true, addr >> 32);
	cfg_access(SLOT, PCI_COMMAND, 2, true, (s & 16) ? 0 : PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* ---- invariants ------------------------------------------------------- */

/* Log lines at warning level or worse, and when the device last reset:
 * a hostile register write is logged once, not once per VM exit. */
static unsigned loud_lines, loud_at_reset, resets;
#define LOUD_LINES_PER_RESET 24

static void count_line(enum vnet_log_level level, const char *line, void *arg)
{
	(void)arg;
	if (trace)
		fprintf(stderr, "log: %s\n", line);
	if (level <= VNET_LOG_WARN)
		loud_lines++;
}

void __real_virtio_dev_write_status(struct virtio_dev *d, uint8_t status);
void __wrap_virtio_dev_write_status(struct virtio_dev *d, uint8_t status);

/* Every status write of the transports passes here (-Wl,--wrap). */
void __wrap_virtio_dev_write_status(struct virtio_dev *d, uint8_t status)
{
	__real_virtio_dev_write_status(d, status);
	if (status == 0) {
		resets++;
		loud_at_reset = loud_lines;
	}
}

static void check_state(void)
{
	if (kvm_recorder_refusals()) {
		fprintf(stderr, "fuzz_vmm: KVM would refuse: %s\n", kvm_recorder_first_refusal());
		CHECK(kvm_recorder_refusals() == 0);
	}
	CHECK(activations - deactivations == (dev.active ? 1 : 0));
	if (loud_lines - loud_at_reset > LOUD_LINES_PER_RESET) {
		fprintf(stderr, "fuzz_vmm: %u warnings since the last reset\n",
			loud_lines - loud_at_reset);
		CHECK(!"a hostile guest cannot flood the log");
	}
	if (dev.active)
		CHECK(dev.status & VIRTIO_STATUS_DRIVER_OK);
	uint64_t bar = pci ? bar_decoding() : 0;
	for (unsigned q = 0; q < dev.num_queues; q++) {
		unsigned found = 0;
		for (unsigned i = 0; i < KVM_RECORDER_MAX_IOEVENTFDS; i++) {
			const struct kvm_recorder_ioeventfd *e = kvm_recorder_ioeventfd(i);
			if (!e || e->fd != dev.q[q].kick_fd)
				continue;
			found++;
			CHECK(e->datamatch == q);
			if (pci)
				CHECK(e->addr == bar + 0x3000 + 4 * q && e->len == 2);
			else
				CHECK(e->addr == VMM_MMIO_BASE + 0x050 && e->len == 4);
		}
		/* A doorbell that is an ioeventfd never reaches the VMM's check of
		 * "queue not ready": it must exist exactly while the queue is ready. */
		bool want = dev.q[q].ready && (!pci || bar);
		if (trace)
			fprintf(stderr, "  queue %u: ready %d, %u ioeventfds\n", q, dev.q[q].ready, found);
		if ((found == 1) != want) {
			fprintf(stderr, "fuzz_vmm: queue %u ready=%d, %u ioeventfds (BAR 0x%llx)\n", q,
				dev.q[q].ready, found, (unsigned long long)bar);
			CHECK(!"queue doorbell is an ioeventfd exactly while the queue is ready");
		}
	}
	for (int fd = 0; fd < kvm_recorder_irqfd_end(); fd++) {
		int gsi = kvm_recorder_irqfd_gsi(fd);
		if (gsi < 0)
			continue;
		for (unsigned q = 0; q < dev.num_queues; q++)
			CHECK(fd != dev.q[q].kick_fd); /* only call fds and the config fd */
		if (pci)
			CHECK(kvm_recorder_route((unsigned)gsi));
	}
}

/* ---- driver ----------------------------------------------------------- */

enum { STEP_MMIO, STEP_PIO, STEP_CFG, STEP_QUEUE, STEP_STATUS, STEP_MSIX, STEP_BAR,
       STEP_SIGNAL, STEP_COUNT };

static void run_step(struct reader *r)
{
	uint8_t op = rd8(r) % STEP_COUNT;
	unsigned resets_before = resets;
	if (trace)
		fprintf(stderr, "step %u (remaining %zu) status 0x%x active %d\n", op, r->n,
			virtio_dev_read_status(&dev), dev.active);
	switch (op) {
	case STEP_MMIO: {
		uint16_t off = rd16(r);
		unsigned len = rd_width(r);
		bool write = rd8(r) & 1;
		uint64_t v = rd64(r);
		uint64_t base = pci ? regs_base() : VMM_MMIO_BASE;
		uint64_t got = mmio((base ? base : 0xe0000000ull) + (off & 0x7fff), len, write, v);
		if (!pci && !write && len == 4 && off == 0)
			CHECK(got == 0x74726976u); /* "virt", whatever the guest did */
		break;
	}
	case STEP_PIO: {
		static const uint16_t ports[8] = {0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd, 0xcfe, 0xcff};
		uint8_t sel = rd8(r);
		uint16_t port = (sel & 8) ? rd16(r) : ports[sel & 7];
		unsigned len = rd_width(r);
		if (len == 8)
			len = 4;
		pio(port, len, sel & 16, rd32(r));
		break;
	}
	case STEP_CFG: {
		unsigned slot = rd8(r) % 3, reg = rd8(r), len = rd_width(r);
		bool write = rd8(r) & 1;
		uint64_t got = cfg_access(slot, reg, len, write, rd32(r));
		if (pci && !write && slot == SLOT && reg == 0 && len >= 4)
			CHECK(got == 0x10411af4u); /* vendor 0x1af4, device 0x1041 */
		break;
	}
	case STEP_QUEUE: step_queue(r); break;
	case STEP_STATUS: step_status(r); break;
	case STEP_MSIX: step_msix(r); break;
	case STEP_BAR: step_bar(r); break;
	case STEP_SIGNAL: {
		/* The data plane's side: a used-buffer interrupt, a broken ring, a
		 * doorbell that exited (a width the ioeventfd does not match). */
		uint8_t s = rd8(r);
		unsigned q = (s >> 2) % dev.num_queues;
		pthread_mutex_lock(&dev.lock);
		if ((s & 3) == 0)
			virtio_dev_signal_queue(&dev, q);
		else if ((s & 3) == 1)
			virtio_dev_needs_reset(&dev, "queue %u broken by the fuzzer", q);
		pthread_mutex_unlock(&dev.lock);
		if ((s & 3) == 2)
			reg_write(R_NOTIFY, q);
		break;
	}
	}
	check_state();
	/* A reset (the last thing these steps do when they do it) unmaps every
	 * vector (virtio 1.2 §4.1.5.1.2): nothing can fire until re-mapped. */
	if (resets != resets_before && (op == STEP_STATUS || op == STEP_MMIO) && pci)
		CHECK(kvm_recorder_irqfd_count() == 0);
}

static void vm_init(bool high)
{
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	vm.mem = ram_low;
	memset(ram_low, 0, RAM_LOW);
	vm.low_size = RAM_LOW;
	vm.mem_size = RAM_LOW + (high ? RAM_HIGH : 0);
	vm.nregions = high ? 2 : 1;
	vm.regions[0] = (struct vnet_mem_region){.gpa = 0, .size = RAM_LOW,
						 .uaddr = (uintptr_t)ram_low, .host = ram_low};
	vm.regions[1] = (struct vnet_mem_region){.gpa = VMM_HIGH_RAM_BASE, .size = RAM_HIGH,
						 .uaddr = (uintptr_t)ram_high, .host = ram_high};
	vm.next_gsi = VMM_GSI_MSI_BASE;
	pthread_mutex_init(&vm.irq_lock, NULL);
	vmm_bus_init(&vm.pio, "pio");
	vmm_bus_init(&vm.mmio, "mmio");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *t = getenv("FUZZ_VMM_TRACE");
	trace = t && *t && *t != '0';
	vnet_log_set_level(trace ? VNET_LOG_DEBUG : VNET_LOG_WARN);
	vnet_log_set_sink(count_line, NULL);
	ram_low = calloc(1, RAM_LOW);
	ram_high = calloc(1, RAM_HIGH);
	CHECK(ram_low && ram_high);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ram_low)
		LLVMFuzzerInitialize(NULL, NULL);
	struct reader r = {data, size};
	uint8_t h0 = rd8(&r);
	pci = h0 & 1;
	activate_rc = (h0 & 2) ? -EIO : 0;
	unsigned nq = ((h0 >> 2) & 7) + 1;
	static const uint16_t qmax[4] = {1, 16, 256, 1024};

	kvm_recorder_reset();
	activations = deactivations = 0;
	loud_lines = loud_at_reset = resets = 0;
	static const uint8_t mac_cfg[CONFIG_SIZE] = {0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0, 0xdc, 5};
	memcpy(net_config, mac_cfg, sizeof(net_config));
	unsigned fds_before = count_fds();

	vm_init(h0 & 0x80);
	CHECK(virtio_dev_init(&dev, &vm, "net0", 1, nq, qmax[(h0 >> 5) & 3], CONFIG_SIZE,
			      &fake_ops, NULL) == 0);
	CHECK((pci ? virtio_pci_create(&vm, &dev) : virtio_mmio_create(&vm, &dev)) == 0);
	check_state();

	while (r.n)
		run_step(&r);

	if (pci) {
		virtio_pci_destroy(&dev);
		pci_destroy(&vm);
	} else {
		virtio_mmio_destroy(&dev);
	}
	/* The VMM stops a running device model at exit (not a transport job). */
	if (dev.active)
		fake_deactivate(&dev);
	virtio_dev_destroy(&dev);
	CHECK(kvm_recorder_refusals() == 0);
	CHECK(kvm_recorder_ioeventfd_count() == 0);
	CHECK(kvm_recorder_irqfd_count() == 0);
	CHECK(kvm_recorder_route_count() == 0);
	CHECK(vm.pio.n == 0 && vm.mmio.n == 0);
	vmm_bus_destroy(&vm.pio);
	vmm_bus_destroy(&vm.mmio);
	pthread_mutex_destroy(&vm.irq_lock);
	CHECK(count_fds() == fds_before);
	return 0;
}
