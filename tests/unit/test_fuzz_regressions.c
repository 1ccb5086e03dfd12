/*
 * test_fuzz_regressions.c — one named test per bug the fuzz targets
 * (tests/fuzz) found, each the smallest form of the input saved as
 * tests/fuzz/corpus/<target>/crash-<what>, so the property stays checked
 * by name even if a harness changes:
 *   - ctl: a flow respelled ("ip" / "dl_type=0x0800") at the same priority
 *     replaced the running flow but not the saved one (restart differs);
 *   - ctl: "priority=050" was octal 40 in the flow table, decimal 50 in the
 *     saved configuration (restart reorders flows);
 *   - vmm: virtio-mmio kept a queue's doorbell ioeventfd after the driver
 *     cleared QueueReady, so a notify of the disabled queue was not refused;
 *   - vmm: every refused FEATURES_OK logged a warning (a guest floods the
 *     log, one line per VM exit);
 *   - vq_split: vnet_net_enqueue skipped device-readable RX chains without
 *     any bound, so a guest whose used-ring writes fed its avail ring (or
 *     that keeps reposting bad RX chains from another vCPU) kept the device
 *     in the loop forever (CVE-2019-3900 class: no per-call budget);
 *   - vhost_user: the back-end writes interrupts into whatever fd the
 *     front-end gave as call fd; a pipe nobody reads blocked the data-plane
 *     thread once full (the fuzzer saw the SIGPIPE of a pipe without reader).
 *
 * vnet-vmm's four KVM calls are replaced by recorders at link time
 * (kvm_recorder.h, as test_vmm_pci). Single-threaded except the data-plane
 * threads of the last two tests.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakevm.h"
#include "kvm_recorder.h"
#include "switch/config.h"
#include "switch/flow.h"
#include "testmem.h"
#include "vhu_peer.h"
#include "vnet/guestmem.h"
#include "vnet/log.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/pkt.h"
#include "vnet/virtio_ring.h"
#include "vnet/virtqueue.h"
#include "vmm/virtio_dev.h"
#include "vmm/virtio_transport.h"
#include "vmm/vmm.h"

/* ---- vnet-switchd: what the state file keeps vs what the switch runs ---- */

/* crash-flow-respelled-restart-differs */
static void test_flow_respelled_replaces_saved_flow(void **state)
{
	(void)state;
	char err[256];
	struct sw_config *c = sw_config_new();
	assert_non_null(c);
	assert_int_equal(sw_config_add_bridge(c, "br0", err, sizeof(err)), 0);
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=5,ip,actions=drop", err, sizeof(err)), 0);
	/* One match for the flow table: it replaces; so must the configuration. */
	assert_int_equal(sw_config_add_flow(c, "br0", "priority=5,dl_type=0x0800,actions=NORMAL", err,
					    sizeof(err)), 0);
	struct sw_bridge_config *b = sw_config_bridge(c, "br0");
	assert_int_equal(b->nflows, 1);
	assert_non_null(strstr(b->flows[0].text, "NORMAL"));
	sw_config_free(c);
}

/* crash-flow-priority-octal-restart-differs */
static void test_flow_priority_read_alike(void **state)
{
	(void)state;
	static const char *const texts[] = {"priority=050,actions=drop", "priority=0,actions=drop",
					    "priority=65535,actions=drop"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char err[256];
		uint16_t saved;
		char *rest;
		assert_int_equal(sw_flow_text_parse(texts[i], &saved, &rest, err, sizeof(err)), 0);
		free(rest);
		struct sw_flow_spec spec;
		assert_int_equal(sw_flow_spec_parse(texts[i], SW_PARSE_FLOW, &spec, err, sizeof(err)), 0);
		if (spec.priority != saved)
			fail_msg("'%s': the flow table runs priority %u, the state file keeps %u",
				 texts[i], spec.priority, saved);
	}
}

/* ---- vnet-vmm: a device without KVM ---- */

#define RAM (64u << 10)

/* A queue's doorbell is an ioeventfd on its kick fd. */
static bool doorbell_registered(int fd)
{
	return kvm_recorder_ioeventfds_of(fd) > 0;
}

struct fake_vm {
	struct vmm vm;
	struct virtio_dev dev;
	struct fakevm_model model;
};

static void vm_start(struct fake_vm *f)
{
	memset(f, 0, sizeof(*f));
	kvm_recorder_reset();
	f->vm.vm_fd = -1;
	f->vm.mem = calloc(1, RAM);
	assert_non_null(f->vm.mem);
	f->vm.mem_size = f->vm.low_size = RAM;
	f->vm.nregions = 1;
	f->vm.regions[0] = (struct vnet_mem_region){.gpa = 0, .size = RAM,
						    .uaddr = (uintptr_t)f->vm.mem, .host = f->vm.mem};
	f->vm.next_gsi = VMM_GSI_MSI_BASE;
	pthread_mutex_init(&f->vm.irq_lock, NULL);
	vmm_bus_init(&f->vm.pio, "pio");
	vmm_bus_init(&f->vm.mmio, "mmio");
	f->model.features = 1ull << 5; /* MAC; the config reads as zeros */
	assert_int_equal(virtio_dev_init(&f->dev, &f->vm, "net0", 1, 1, 256, 12, &fakevm_model_ops, &f->model), 0);
	assert_int_equal(virtio_mmio_create(&f->vm, &f->dev), 0);
}

static void vm_stop(struct fake_vm *f)
{
	virtio_mmio_destroy(&f->dev);
	virtio_dev_destroy(&f->dev);
	assert_int_equal(kvm_recorder_refusals(), 0);
	assert_int_equal(kvm_recorder_ioeventfd_count() + kvm_recorder_irqfd_count(), 0);
	vmm_bus_destroy(&f->vm.pio);
	vmm_bus_destroy(&f->vm.mmio);
	pthread_mutex_destroy(&f->vm.irq_lock);
	free(f->vm.mem);
}

static void mmio_write(struct fake_vm *f, uint32_t reg, uint32_t v)
{
	assert_true(vmm_bus_access(&f->vm.mmio, VMM_MMIO_BASE + reg, &v, 4, true));
}

/* crash-mmio-kick-kept-after-queue-disabled */
static void test_mmio_doorbell_follows_queue_ready(void **state)
{
	(void)state;
	struct fake_vm f;
	vm_start(&f);
	mmio_write(&f, 0x030, 0);      /* QueueSel 0 */
	mmio_write(&f, 0x038, 256);    /* QueueNum */
	mmio_write(&f, 0x080, 0x0000); /* desc, driver, device areas in RAM */
	mmio_write(&f, 0x090, 0x1000);
	mmio_write(&f, 0x0a0, 0x2000);
	mmio_write(&f, 0x044, 1);      /* QueueReady */
	assert_true(f.dev.q[0].ready);
	assert_true(doorbell_registered(f.dev.q[0].kick_fd));
	mmio_write(&f, 0x044, 0);      /* disabled again before DRIVER_OK */
	assert_false(f.dev.q[0].ready);
	/* Otherwise the next notify is swallowed by KVM instead of refused. */
	assert_false(doorbell_registered(f.dev.q[0].kick_fd));
	vm_stop(&f);
}

/* fuzz_vmm, "queue 0 ready=0, 1 ioeventfds": Status is a 32-bit register
 * whose low byte is the status. Writing 0x100 reset the device (status 0)
 * but kept the doorbells, so the reset queues' kicks went to KVM. */
static void test_mmio_status_reset_high_bits_drops_doorbells(void **state)
{
	(void)state;
	struct fake_vm f;
	vm_start(&f);
	mmio_write(&f, 0x030, 0);
	mmio_write(&f, 0x038, 256);
	mmio_write(&f, 0x080, 0x0000);
	mmio_write(&f, 0x090, 0x1000);
	mmio_write(&f, 0x0a0, 0x2000);
	mmio_write(&f, 0x044, 1);
	assert_true(doorbell_registered(f.dev.q[0].kick_fd));
	mmio_write(&f, 0x070, 0x100);  /* Status: low byte 0, a reset */
	assert_int_equal(f.dev.status, 0);
	assert_false(f.dev.q[0].ready);
	assert_false(doorbell_registered(f.dev.q[0].kick_fd));
	vm_stop(&f);
}

static unsigned warnings;

static void count_warnings(enum vnet_log_level level, const char *line, void *arg)
{
	(void)line, (void)arg;
	if (level <= VNET_LOG_WARN)
		warnings++;
}

/* crash-features-ok-refusal-floods-log */
static void test_features_ok_refusal_logged_once(void **state)
{
	(void)state;
	struct fake_vm f;
	vm_start(&f);
	warnings = 0;
	vnet_log_set_sink(count_warnings, NULL);
	for (int i = 0; i < 30; i++) {
		mmio_write(&f, 0x070, 0x3);        /* ACKNOWLEDGE | DRIVER */
		mmio_write(&f, 0x024, 0);          /* DriverFeaturesSel 0 */
		mmio_write(&f, 0x020, 0xffffffff); /* features never offered */
		mmio_write(&f, 0x070, 0xb);        /* FEATURES_OK: refused */
		assert_false(f.dev.status & VIRTIO_STATUS_FEATURES_OK);
	}
	vnet_log_set_sink(NULL, NULL);
	if (warnings > 1)
		fail_msg("%u warnings for one guest's repeated refused FEATURES_OK", warnings);
	vm_stop(&f);
}

/* ---- the frame path: work per call is bounded ---- */

struct enqueuer {
	struct vnet_vq *vq;
	struct vnet_guestmem *gm;
	struct vnet_pkt *pkt;
	struct vnet_net_stats st;
};

static void *enqueue_one(void *arg)
{
	struct enqueuer *e = arg;
	bool notify;
	unsigned tok;
	vnet_guestmem_read_begin(e->gm, &tok);
	vnet_net_enqueue(e->vq, 12, &e->pkt, 1, &e->st, &notify);
	vnet_guestmem_read_end(e->gm, tok);
	return NULL;
}

/* crash-net-rx-bad-chains-endless-loop: the fuzzer's guest laid its used
 * ring over its avail ring, so each used index the device published made
 * one more chain available. Attach now refuses overlapping addresses, but
 * a front-end can still alias them: two regions of one host mapping. Each
 * chain is device-readable (no RX buffer): nothing is ever delivered. */
static void test_net_rx_bad_chains_bounded(void **state)
{
	(void)state;
	testlog_capture();
	const size_t len = 1 << 20;
	uint8_t *host = aligned_alloc(4096, len);
	assert_non_null(host);
	memset(host, 0, len);
	const struct vnet_mem_region regions[2] = {
		{.gpa = 0x100000, .size = len, .uaddr = 0x7f0000100000, .host = host},
		{.gpa = 0x300000, .size = len, .uaddr = 0x7f0000300000, .host = host},
	};
	char err[128];
	struct vnet_guestmem gm;
	assert_int_equal(vnet_guestmem_init(&gm), 0);
	struct vnet_mem_table *t = vnet_mem_table_new(regions, 2, err, sizeof(err));
	assert_non_null(t);
	vnet_mem_table_free(vnet_guestmem_replace(&gm, t));
	/* desc at +0, avail at +0x1000; used at +0x1000 of the alias */
	struct vring_desc *desc = (struct vring_desc *)host;
	for (uint16_t i = 0; i < 16; i++)
		desc[i] = (struct vring_desc){.addr = 0x180000 + 64u * i, .len = 64};
	struct vring_avail *avail = (struct vring_avail *)(host + 0x1000);
	avail->idx = 4; /* also the used index the device resumes at */
	struct vnet_vq_config cfg = {
		.size = 16, .desc_addr = 0x100000, .avail_addr = 0x101000, .used_addr = 0x301000,
		.ring_as = VNET_AS_GPA, .features = VNET_BIT(VIRTIO_F_VERSION_1), .name = "rx",
	};
	struct vnet_vq vq;
	memset(&vq, 0, sizeof(vq));
	unsigned tok;
	vnet_guestmem_read_begin(&gm, &tok);
	assert_int_equal(vnet_vq_attach(&vq, &gm, &cfg), 0);
	vnet_guestmem_read_end(&gm, tok);
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 1, 0), 0);
	struct enqueuer e = {.vq = &vq, .gm = &gm, .pkt = vnet_pkt_alloc(&pool)};
	e.pkt->len = 60;
	pthread_t device;
	assert_int_equal(pthread_create(&device, NULL, enqueue_one, &e), 0);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	if (pthread_timedjoin_np(device, NULL, &until) != 0) /* it spins on: leave its memory */
		fail_msg("vnet_net_enqueue of one packet still taking chains after 5 s");
	assert_int_equal(e.st.packets, 0);
	assert_true(e.st.err_bad_chain <= 16); /* at most one ring's worth per call */
	vnet_pkt_free(e.pkt);
	vnet_pkt_pool_fini(&pool);
	vnet_vq_detach(&vq);
	vnet_guestmem_destroy(&gm);
	free(host);
	testlog_release();
}

/* ---- vhost-user: the front-end chooses the call fd ---- */

struct notifier {
	struct vnet_vhu_dev *dev;
	unsigned ring;
	atomic_uint done;
};

/* The data plane signalling used buffers, as after every burst. */
static void *notify_many(void *arg)
{
	struct notifier *n = arg;
	for (; atomic_load(&n->done) < 20000; atomic_fetch_add(&n->done, 1)) {
		enum vnet_vhu_ring_state st;
		unsigned tok;
		if (vnet_vhu_ring_enter(n->dev, n->ring, &st, &tok))
			vnet_vhu_ring_exit(n->dev, n->ring, tok, true);
	}
	return NULL;
}

/* crash input of the vhost_user target that died of SIGPIPE (a pipe with
 * no reader as call fd); with a reader that never reads, the pipe fills. */
static void test_vhost_user_call_fd_never_blocks(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as vnet-switchd */
	testlog_capture();
	struct vhu_conn c;
	struct vnet_vhu_backend_config cfg = vhu_conn_default_config();
	assert_int_equal(vhu_conn_open(&c, &cfg, "fuzzreg", -1, -1), 0);
	assert_int_equal(vhu_conn_up(&c, ~0ull, ~0ull), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* blocking, as the front-end made it */
	int rc = vhu_conn_set_vring_fd(&c, VHOST_USER_SET_VRING_CALL, 1, p[1]);
	close(p[1]);
	if (rc == 0) { /* accepted: interrupts must not stall the data plane */
		struct notifier n = {.dev = c.dev, .ring = 1};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, notify_many, &n), 0);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		int j = pthread_timedjoin_np(t, NULL, &until);
		if (j != 0) {
			unsigned stuck = atomic_load(&n.done);
			/* Unblock the thread so the process can finish, then fail. */
			close(p[0]);
			pthread_join(t, NULL);
			fail_msg("the data plane blocked writing interrupt %u into the front-end's "
				 "call fd (a pipe nobody reads)", stuck + 1);
		}
	}
	close(p[0]);
	vhu_conn_close(&c);
	testlog_release();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flow_respelled_replaces_saved_flow),
		cmocka_unit_test(test_flow_priority_read_alike),
		cmocka_unit_test(test_mmio_doorbell_follows_queue_ready),
		cmocka_unit_test(test_mmio_status_reset_high_bits_drops_doorbells),
		cmocka_unit_test(test_features_ok_refusal_logged_once),
		cmocka_unit_test(test_net_rx_bad_chains_bounded),
		cmocka_unit_test(test_vhost_user_call_fd_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
