/*
 * test_vmm_virtio_dev — the transport-independent virtio rules of vnet-vmm
 * (src/vmm/virtio_dev.c) without KVM: feature negotiation, the status
 * machine, queue validation against guest RAM, NEEDS_RESET on hostile
 * register values (logged once), notify routing, config bounds, reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fakevm.h"
#include "vnet/log.h"
#include "vmm/virtio_dev.h"
#include "vmm/vmm.h"

#define RAM (16u << 20)

static struct vmm vm;
static struct virtio_dev dev;
static struct fakevm_model model;
static int errors_logged;
static uint8_t config[12] = { 0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0, 0, 0 };

static void count_errors(enum vnet_log_level level, const char *line, void *arg)
{
	(void)line;
	(void)arg;
	if (level == VNET_LOG_ERROR)
		errors_logged++;
}

static int setup(void **state)
{
	(void)state;
	fakevm_init(&vm, RAM, 0);
	model = (struct fakevm_model){
		.features = (1ull << 5) | (1ull << 16) | (1ull << 29), /* MAC, STATUS, EVENT_IDX */
		.config = config,
	};
	errors_logged = 0;
	vnet_log_set_sink(count_errors, NULL);
	return virtio_dev_init(&dev, &vm, "net0", 1, 2, 256, sizeof(config), &fakevm_model_ops, &model);
}

static int teardown(void **state)
{
	(void)state;
	virtio_dev_destroy(&dev);
	vnet_log_set_sink(NULL, NULL);
	fakevm_fini(&vm);
	return 0;
}

static bool needs_reset(void)
{
	return virtio_dev_read_status(&dev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static void setup_queue(unsigned i, uint16_t size, uint64_t base)
{
	dev.queue_sel = (uint16_t)i;
	virtio_dev_write_queue_size(&dev, size);
	struct virtio_queue *q = virtio_dev_selected_queue(&dev);
	q->desc = base;
	q->avail = base + 16u * size;
	q->used = base + 0x2000;
	virtio_dev_write_queue_ready(&dev, true);
}

static void negotiate(uint64_t features)
{
	fakevm_negotiate(&dev, features);
}

static void features_and_driver_ok(void **state)
{
	(void)state;
	dev.device_features_sel = 1;
	assert_int_equal(virtio_dev_read_device_features(&dev), 1); /* VERSION_1 */
	dev.device_features_sel = 0;
	assert_int_equal(virtio_dev_read_device_features(&dev), (1u << 5) | (1u << 16) | (1u << 29));
	dev.device_features_sel = 7;
	assert_int_equal(virtio_dev_read_device_features(&dev), 0);

	negotiate((1ull << 32) | (1ull << 5));
	assert_true(virtio_dev_read_status(&dev) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(0, 128, 0x100000);
	setup_queue(1, 256, 0x200000);
	assert_false(needs_reset());
	virtio_dev_write_status(&dev, 0x0f);
	assert_int_equal(model.activations, 1);
	assert_true(dev.active);
	/* queue registers are frozen now */
	dev.queue_sel = 0;
	virtio_dev_write_queue_size(&dev, 64);
	assert_int_equal(dev.q[0].size, 128);
	virtio_dev_write_status(&dev, 0);
	assert_int_equal(model.deactivations, 1);
	assert_int_equal(virtio_dev_read_status(&dev), 0);
	assert_false(dev.q[0].ready);
	assert_int_equal(dev.q[0].size, 256);
	assert_int_equal(errors_logged, 0);
}

static void features_ok_refused(void **state)
{
	(void)state;
	negotiate(1ull << 5); /* no VERSION_1 */
	assert_false(virtio_dev_read_status(&dev) & VIRTIO_STATUS_FEATURES_OK);
	virtio_dev_write_status(&dev, 0);
	negotiate((1ull << 32) | (1ull << 40)); /* a bit the device never offered */
	assert_false(virtio_dev_read_status(&dev) & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK */
	virtio_dev_write_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_true(needs_reset());
	assert_int_equal(model.activations, 0);
}

static void hostile_queue_registers(void **state)
{
	(void)state;
	struct {
		uint16_t size;
		uint64_t base;
	} bad[] = {
		{ 0, 0x100000 },                 /* size 0 */
		{ 512, 0x100000 },               /* > max */
		{ 100, 0x100000 },               /* not a power of two */
		{ 64, RAM - 0x100 },             /* rings run past the end of RAM */
		{ 64, 0x7f0000000000ull },       /* nowhere near RAM */
		{ 64, 0x100008 },                /* descriptor table misaligned */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errors_logged = 0;
		negotiate((1ull << 32));
		setup_queue(0, bad[i].size, bad[i].base);
		assert_true(needs_reset());
		assert_false(dev.q[0].ready);
		/* logged once however often the guest repeats it */
		setup_queue(0, bad[i].size, bad[i].base);
		assert_int_equal(errors_logged, 1);
		/* no DRIVER_OK while the flag stands */
		virtio_dev_write_status(&dev, 0x0f);
		assert_int_equal(model.activations, 0);
		virtio_dev_write_status(&dev, 0);
		assert_false(needs_reset());
	}
	/* a queue that does not exist */
	dev.queue_sel = 9;
	assert_null(virtio_dev_selected_queue(&dev));
	virtio_dev_write_queue_ready(&dev, true);
	assert_true(needs_reset());
}

static void notify_routing(void **state)
{
	(void)state;
	virtio_dev_notify(&dev, 0); /* not ready */
	assert_true(needs_reset());
	virtio_dev_write_status(&dev, 0);
	virtio_dev_notify(&dev, 7); /* no such queue */
	assert_true(needs_reset());
	virtio_dev_write_status(&dev, 0);
	negotiate(1ull << 32);
	setup_queue(1, 64, 0x300000);
	virtio_dev_notify(&dev, 1);
	uint64_t v = 0;
	assert_int_equal(read(dev.q[1].kick_fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	assert_false(needs_reset());
}

static void activate_failure_and_config(void **state)
{
	(void)state;
	model.activate_rc = -5;
	negotiate(1ull << 32);
	setup_queue(0, 64, 0x100000);
	virtio_dev_write_status(&dev, 0x0f);
	assert_true(needs_reset());
	assert_false(dev.active);
	uint8_t buf[8];
	virtio_dev_config_read(&dev, 0, buf, 6);
	assert_memory_equal(buf, config, 6);
	memset(buf, 0xaa, sizeof(buf));
	virtio_dev_config_read(&dev, 10, buf, 4); /* crosses the end: zeros */
	assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
	virtio_dev_config_read(&dev, 0xffffffffu, buf, 4);
	assert_int_equal(buf[0], 0);
}

static void signal_queue_sets_isr(void **state)
{
	(void)state;
	virtio_dev_signal_queue(&dev, 1);
	assert_int_equal(atomic_load(&dev.isr) & VIRTIO_ISR_QUEUE, VIRTIO_ISR_QUEUE);
	uint64_t v = 0;
	assert_int_equal(read(dev.q[1].call_fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(features_and_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(features_ok_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_queue_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(notify_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(activate_failure_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(signal_queue_sets_isr, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
