/* test_net.c — virtio-net header sizes, feature negotiation, feature names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vnet/net.h"

#define B(x) VNET_BIT(VIRTIO_NET_F_##x)
#define V1   VNET_BIT(VIRTIO_F_VERSION_1)

static void test_hdr_len(void **state)
{
	(void)state;
	assert_int_equal(vnet_net_hdr_len(0), 10);
	assert_int_equal(vnet_net_hdr_len(B(CSUM) | B(GUEST_CSUM) | B(HOST_TSO4)), 10);
	assert_int_equal(vnet_net_hdr_len(V1), 12);
	assert_int_equal(vnet_net_hdr_len(B(MRG_RXBUF)), 12);
	assert_int_equal(vnet_net_hdr_len(V1 | B(MRG_RXBUF)), 12);
	assert_int_equal(vnet_net_hdr_len(~0ull), 12);
}

static void test_struct_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct virtio_net_hdr), 10);
	assert_int_equal(sizeof(struct virtio_net_hdr_mrg_rxbuf), 12);
	assert_int_equal(offsetof(struct virtio_net_hdr, hdr_len), 2);
	assert_int_equal(offsetof(struct virtio_net_hdr, csum_offset), 8);
	assert_int_equal(offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers), 10);
	assert_int_equal(sizeof(struct virtio_net_config), 17);
	assert_int_equal(offsetof(struct virtio_net_config, status), 6);
	assert_int_equal(offsetof(struct virtio_net_config, max_virtqueue_pairs), 8);
	assert_int_equal(offsetof(struct virtio_net_config, mtu), 10);
	assert_int_equal(offsetof(struct virtio_net_config, speed), 12);
	assert_int_equal(offsetof(struct virtio_net_config, duplex), 16);
	assert_int_equal(sizeof(struct virtio_net_ctrl_hdr), 2);
}

static void test_negotiate_intersection(void **state)
{
	(void)state;
	uint64_t offered = V1 | B(CSUM) | B(GUEST_CSUM) | B(MAC) | B(MRG_RXBUF) | B(STATUS) |
			   VNET_BIT(VIRTIO_F_RING_EVENT_IDX);
	uint64_t accepted = V1 | B(CSUM) | B(MAC) | VNET_BIT(VIRTIO_F_RING_EVENT_IDX);
	uint64_t result = 0xdead;
	char err[128] = "";
	assert_int_equal(vnet_net_negotiate(offered, accepted, true, &result, err, sizeof(err)), 0);
	assert_int_equal(result, offered & accepted);
	/* nothing accepted, legacy: fine */
	assert_int_equal(vnet_net_negotiate(offered, 0, false, &result, NULL, 0), 0);
	assert_int_equal(result, 0);
	/* full set, legacy transport */
	assert_int_equal(vnet_net_negotiate(offered, offered, false, &result, err, sizeof(err)), 0);
	assert_int_equal(result, offered);
}

static void test_negotiate_not_offered(void **state)
{
	(void)state;
	uint64_t result = 0;
	char err[128] = "";
	assert_int_equal(vnet_net_negotiate(V1 | B(MAC), V1 | B(MAC) | B(STATUS), true, &result,
					    err, sizeof(err)),
			 -EINVAL);
	assert_true(strlen(err) > 0);
	/* high bit too */
	err[0] = '\0';
	assert_int_equal(vnet_net_negotiate(V1, V1 | B(SPEED_DUPLEX), true, &result, err,
					    sizeof(err)),
			 -EINVAL);
	assert_true(strlen(err) > 0);
}

static void test_negotiate_modern_needs_version_1(void **state)
{
	(void)state;
	uint64_t result = 0;
	char err[128] = "";
	assert_int_equal(vnet_net_negotiate(V1 | B(MAC), B(MAC), true, &result, err, sizeof(err)),
			 -EINVAL);
	assert_true(strlen(err) > 0);
	assert_int_equal(vnet_net_negotiate(V1 | B(MAC), B(MAC), false, &result, err, sizeof(err)),
			 0);
	assert_int_equal(result, B(MAC));
}

static void expect_dependency_error(uint64_t accepted)
{
	uint64_t offered = ~0ull;
	uint64_t result = 0;
	char err[128] = "";
	assert_int_equal(vnet_net_negotiate(offered, accepted | V1, true, &result, err,
					    sizeof(err)),
			 -EINVAL);
	assert_true(strlen(err) > 0);
}

static void expect_ok(uint64_t accepted)
{
	uint64_t result = 0;
	char err[128] = "";
	assert_int_equal(vnet_net_negotiate(~0ull, accepted | V1, true, &result, err, sizeof(err)),
			 0);
	assert_int_equal(result, accepted | V1);
}

static void test_negotiate_dependencies(void **state)
{
	(void)state;
	expect_dependency_error(B(MQ));
	expect_dependency_error(B(CTRL_RX));
	expect_dependency_error(B(CTRL_VLAN));
	expect_dependency_error(B(GUEST_TSO4));
	expect_dependency_error(B(GUEST_TSO6));
	expect_dependency_error(B(GUEST_TSO4) | B(CTRL_VQ));
	expect_dependency_error(B(HOST_TSO4));
	expect_dependency_error(B(HOST_TSO6));
	expect_dependency_error(B(HOST_TSO4) | B(GUEST_CSUM));
	/* satisfied dependencies pass */
	expect_ok(B(MQ) | B(CTRL_VQ));
	expect_ok(B(CTRL_RX) | B(CTRL_VQ));
	expect_ok(B(GUEST_TSO4) | B(GUEST_TSO6) | B(GUEST_CSUM));
	expect_ok(B(HOST_TSO4) | B(HOST_TSO6) | B(CSUM));
	expect_ok(B(MRG_RXBUF) | B(MAC) | B(STATUS));
}

static void test_feature_names(void **state)
{
	(void)state;
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_MRG_RXBUF), "MRG_RXBUF");
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_CSUM), "CSUM");
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_GUEST_CSUM), "GUEST_CSUM");
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_MQ), "MQ");
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_CTRL_VQ), "CTRL_VQ");
	assert_string_equal(vnet_net_feature_name(VIRTIO_NET_F_HOST_TSO4), "HOST_TSO4");
	assert_null(vnet_net_feature_name(4));
	assert_null(vnet_net_feature_name(64));
	assert_null(vnet_net_feature_name(1000));
	/* every defined net bit has a distinct name */
	static const unsigned bits[] = {0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15,
					16, 17, 18, 19, 21, 22, 23};
	for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		const char *a = vnet_net_feature_name(bits[i]);
		assert_non_null(a);
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(a, vnet_net_feature_name(bits[j]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_len),
		cmocka_unit_test(test_struct_layout),
		cmocka_unit_test(test_negotiate_intersection),
		cmocka_unit_test(test_negotiate_not_offered),
		cmocka_unit_test(test_negotiate_modern_needs_version_1),
		cmocka_unit_test(test_negotiate_dependencies),
		cmocka_unit_test(test_feature_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
