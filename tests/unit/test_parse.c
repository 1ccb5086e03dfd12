/*
 * parse.c: flow key extraction for every protocol the switch matches on,
 * and truncation at every byte offset (frames are malloc'd with exactly
 * their length, so ASan catches any read past the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/parse.h"
#include "vnet/frame.h"

static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0x0b};

struct fb {
	uint8_t b[256];
	size_t n;
};

static void put8(struct fb *f, unsigned v)
{
	f->b[f->n++] = (uint8_t)v;
}

static void put16(struct fb *f, unsigned v)
{
	put8(f, v >> 8);
	put8(f, v);
}

static void put32(struct fb *f, uint32_t v)
{
	put16(f, v >> 16);
	put16(f, v);
}

static void putn(struct fb *f, const void *p, size_t n)
{
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void eth(struct fb *f, unsigned type)
{
	f->n = 0;
	putn(f, MAC_B, 6);
	putn(f, MAC_A, 6);
	if (type)
		put16(f, type);
}

/* IPv4 header, 20 bytes, tot_len = 20 + l4len. */
static void ipv4(struct fb *f, unsigned proto, unsigned l4len, unsigned frag, unsigned tos)
{
	put8(f, 0x45);
	put8(f, tos);
	put16(f, 20 + l4len);
	put16(f, 0x1234);
	put16(f, frag);
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	put32(f, 0x0a000001);
	put32(f, 0x0a000002);
}

static void tcp(struct fb *f, unsigned sp, unsigned dp)
{
	put16(f, sp);
	put16(f, dp);
	put32(f, 1);
	put32(f, 0);
	put16(f, 0x5002);
	put16(f, 1000);
	put32(f, 0);
}

static const uint8_t V6_SRC[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t V6_DST[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};

static void ipv6(struct fb *f, unsigned nh, unsigned plen)
{
	put32(f, 0x60000000u | (0xb8u << 20)); /* traffic class 0xb8 */
	put16(f, plen);
	put8(f, nh);
	put8(f, 64);
	putn(f, V6_SRC, 16);
	putn(f, V6_DST, 16);
}

static struct vnet_flow_key extract(const struct fb *f)
{
	struct vnet_flow_key k;
	vnet_flow_extract(f->b, f->n, 7, &k);
	return k;
}

static void build_tcp4(struct fb *f)
{
	eth(f, VNET_ETH_P_IPV4);
	ipv4(f, VNET_IPPROTO_TCP, 20, 0x4000, 0x10);
	tcp(f, 40000, 80);
}

static void test_tcp_ipv4(void **state)
{
	(void)state;
	struct fb f;
	build_tcp4(&f);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.in_port, 7);
	assert_memory_equal(k.dl_dst, MAC_B, 6);
	assert_memory_equal(k.dl_src, MAC_A, 6);
	assert_int_equal(k.vlan_tci, 0);
	assert_int_equal(k.dl_type, 0x0800);
	assert_int_equal(k.nw_proto, 6);
	assert_int_equal(k.nw_tos, 0x10);
	assert_int_equal(k.nw.v4.src, 0x0a000001);
	assert_int_equal(k.nw.v4.dst, 0x0a000002);
	assert_int_equal(k.tp_src, 40000);
	assert_int_equal(k.tp_dst, 80);
	assert_int_equal(k.nw_frag, 0); /* DF is not a fragment */
	assert_int_equal(k.flags, 0);
	assert_true(sizeof(k) <= 64);
}

static void test_udp_sctp_ipv4(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_UDP, 8, 0, 0);
	put16(&f, 5353);
	put16(&f, 53);
	put16(&f, 8);
	put16(&f, 0);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.nw_proto, 17);
	assert_int_equal(k.tp_src, 5353);
	assert_int_equal(k.tp_dst, 53);
	assert_int_equal(k.flags, 0);

	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_SCTP, 12, 0, 0);
	put16(&f, 2905);
	put16(&f, 2906);
	put32(&f, 0);
	put32(&f, 0);
	k = extract(&f);
	assert_int_equal(k.nw_proto, 132);
	assert_int_equal(k.tp_src, 2905);
	assert_int_equal(k.tp_dst, 2906);
}

static void test_icmp_ipv4(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_ICMP, 8, 0, 0);
	put8(&f, 8); /* echo request */
	put8(&f, 0);
	put16(&f, 0);
	put32(&f, 0x00010001);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.nw_proto, 1);
	assert_int_equal(k.tp_src, 8);
	assert_int_equal(k.tp_dst, 0);
	f.b[f.n - 8] = 3; /* dest unreachable, code 1 */
	f.b[f.n - 7] = 1;
	k = extract(&f);
	assert_int_equal(k.tp_src, 3);
	assert_int_equal(k.tp_dst, 1);
}

static void test_arp(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_ARP);
	put16(&f, 1);
	put16(&f, 0x0800);
	put8(&f, 6);
	put8(&f, 4);
	put16(&f, 2); /* reply */
	putn(&f, MAC_A, 6);
	put32(&f, 0xc0a80001);
	putn(&f, MAC_B, 6);
	put32(&f, 0xc0a80002);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.dl_type, 0x0806);
	assert_int_equal(k.nw_proto, 2);
	assert_int_equal(k.nw.v4.src, 0xc0a80001);
	assert_int_equal(k.nw.v4.dst, 0xc0a80002);
	assert_int_equal(k.flags, 0);
	/* 27 bytes of ARP: truncated, no ARP fields. */
	f.n--;
	k = extract(&f);
	assert_int_equal(k.dl_type, 0x0806);
	assert_int_equal(k.nw.v4.src, 0);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
}

static void test_vlan_8021q(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_VLAN);
	put16(&f, (5u << 13) | 100); /* PCP 5, VID 100 */
	put16(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_TCP, 20, 0, 0);
	tcp(&f, 1, 2);
	struct vnet_flow_key k = extract(&f);
	assert_true(k.vlan_tci & VNET_KEY_VLAN_PRESENT);
	assert_int_equal(VNET_KEY_VLAN_VID(k.vlan_tci), 100);
	assert_int_equal(VNET_KEY_VLAN_PCP(k.vlan_tci), 5);
	assert_int_equal(k.dl_type, 0x0800);
	assert_int_equal(k.tp_dst, 2);
	assert_int_equal(k.flags, 0);
	/* VID 0 (priority tag) is still "tagged". */
	f.b[14] = 0;
	f.b[15] = 0;
	k = extract(&f);
	assert_int_equal(k.vlan_tci, VNET_KEY_VLAN_PRESENT);
}

static void test_qinq_takes_outer_tag(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_QINQ);
	put16(&f, 200);
	put16(&f, VNET_ETH_P_VLAN);
	put16(&f, 300);
	put16(&f, VNET_ETH_P_ARP);
	for (int i = 0; i < 28; i++)
		put8(&f, 0);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(VNET_KEY_VLAN_VID(k.vlan_tci), 200);
	assert_int_equal(k.dl_type, 0x0806);
	assert_true(k.flags & VNET_KEY_F_QINQ);
}

static void test_ipv4_fragments(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_UDP, 8, 0x2000 /* MF, offset 0 */, 0);
	put16(&f, 1111);
	put16(&f, 2222);
	put32(&f, 0);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.nw_frag, VNET_FRAG_ANY);
	assert_int_equal(k.tp_src, 1111); /* first fragment carries L4 */

	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_UDP, 8, 0x0010 /* offset 128 bytes, last */, 0);
	put16(&f, 1111);
	put16(&f, 2222);
	put32(&f, 0);
	k = extract(&f);
	assert_int_equal(k.nw_frag, VNET_FRAG_ANY | VNET_FRAG_LATER);
	assert_int_equal(k.nw_proto, 17);
	assert_int_equal(k.tp_src, 0); /* later fragment: bytes are payload */
	assert_int_equal(k.tp_dst, 0);
	assert_int_equal(k.flags, 0);
}

static void test_ipv6_ext_headers(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV6);
	ipv6(&f, 0 /* hop-by-hop */, 8 + 16 + 20);
	put8(&f, 60); /* next: destination options */
	put8(&f, 0);  /* 8 bytes */
	put16(&f, 0);
	put32(&f, 0);
	put8(&f, VNET_IPPROTO_TCP);
	put8(&f, 1); /* 16 bytes */
	for (int i = 0; i < 14; i++)
		put8(&f, 0);
	tcp(&f, 443, 55555);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.dl_type, VNET_ETH_P_IPV6);
	assert_memory_equal(k.nw.v6.src, V6_SRC, 16);
	assert_memory_equal(k.nw.v6.dst, V6_DST, 16);
	assert_int_equal(k.nw_tos, 0xb8);
	assert_int_equal(k.nw_proto, 6);
	assert_int_equal(k.tp_src, 443);
	assert_int_equal(k.tp_dst, 55555);
	assert_int_equal(k.flags, 0);
}

static void test_ipv6_fragment_and_icmpv6(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV6);
	ipv6(&f, 44, 8 + 8);
	put8(&f, VNET_IPPROTO_UDP);
	put8(&f, 0);
	put16(&f, 0x0008 << 3); /* offset 8 units */
	put32(&f, 99);
	put32(&f, 0x12345678);
	put32(&f, 0);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.nw_frag, VNET_FRAG_ANY | VNET_FRAG_LATER);
	assert_int_equal(k.nw_proto, 17);
	assert_int_equal(k.tp_src, 0);

	eth(&f, VNET_ETH_P_IPV6);
	ipv6(&f, VNET_IPPROTO_ICMPV6, 8);
	put8(&f, 135); /* neighbour solicitation */
	put8(&f, 0);
	put16(&f, 0);
	put32(&f, 0);
	k = extract(&f);
	assert_int_equal(k.nw_proto, 58);
	assert_int_equal(k.tp_src, 135);
	assert_int_equal(k.tp_dst, 0);
}

static void test_ipv6_ext_header_bound(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV6);
	ipv6(&f, 60, 8 * 12);
	for (int i = 0; i < 12; i++) { /* a chain of 12 destination-options headers */
		put8(&f, i == 11 ? VNET_IPPROTO_TCP : 60);
		put8(&f, 0);
		put16(&f, 0);
		put32(&f, 0);
	}
	struct vnet_flow_key k = extract(&f);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	assert_int_equal(k.nw_proto, 60);
	assert_int_equal(k.tp_src, 0);
	assert_memory_equal(k.nw.v6.dst, V6_DST, 16); /* the IPv6 layer is kept */
}

static void test_malformed_ipv4(void **state)
{
	(void)state;
	struct fb f;
	build_tcp4(&f);
	f.b[14] = 0x44; /* IHL 4: below the minimum */
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.dl_type, 0x0800);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	assert_int_equal(k.nw.v4.src, 0);
	build_tcp4(&f);
	f.b[14] = 0x65; /* version 6 in an IPv4 frame */
	k = extract(&f);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	assert_int_equal(k.nw_proto, 0);
	build_tcp4(&f);
	f.b[14] = 0x4f; /* IHL 60 bytes > what is there */
	k = extract(&f);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	assert_int_equal(k.nw_proto, 0);
}

static void test_ip_padding_is_not_l4(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_TCP, 0, 0, 0); /* tot_len 20: no TCP header */
	while (f.n < 60)
		put8(&f, 0xee); /* Ethernet padding */
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.nw_proto, 6);
	assert_int_equal(k.tp_src, 0);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
}

static void test_8023_and_runt(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, 46); /* 802.3 length field */
	for (int i = 0; i < 46; i++)
		put8(&f, 0xaa);
	struct vnet_flow_key k = extract(&f);
	assert_int_equal(k.dl_type, VNET_DL_TYPE_NONE);
	assert_int_equal(k.flags, 0);
	uint8_t *tiny = malloc(13);
	memcpy(tiny, f.b, 13);
	vnet_flow_extract(tiny, 13, 3, &k);
	assert_int_equal(k.in_port, 3);
	assert_int_equal(k.dl_type, 0);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	vnet_flow_extract(NULL, 0, 3, &k);
	assert_true(k.flags & VNET_KEY_F_TRUNC);
	free(tiny);
}

/*
 * Cuts `full` at every length; checks each prefix parses without reading
 * past it (ASan), and which layers survive: the *_end arguments are the
 * lengths from which the L2 fields, the L3 addresses, the rest of L3
 * (nw_proto: after IPv6 extension headers) and L4 are complete.
 */
static void truncate_everywhere(const struct fb *full, const struct vnet_flow_key *want,
				size_t l2_end, size_t addr_end, size_t l3_end, size_t l4_end)
{
	for (size_t len = 0; len <= full->n; len++) {
		uint8_t *buf = malloc(len ? len : 1);
		memcpy(buf, full->b, len);
		struct vnet_flow_key k;
		vnet_flow_extract(buf, len, 7, &k);
		free(buf);
		if (len < full->n)
			assert_true(k.flags & VNET_KEY_F_TRUNC);
		else
			assert_int_equal(k.flags & VNET_KEY_F_TRUNC, 0);
		if (len >= 14)
			assert_memory_equal(k.dl_src, want->dl_src, 6);
		if (len >= l2_end) {
			assert_int_equal(k.dl_type, want->dl_type);
			assert_int_equal(k.vlan_tci, want->vlan_tci);
		}
		if (len >= l3_end)
			assert_int_equal(k.nw_proto, want->nw_proto);
		if (len >= addr_end) {
			assert_memory_equal(&k.nw, &want->nw, sizeof(k.nw));
		} else {
			uint8_t zero[sizeof(k.nw)] = {0};
			assert_memory_equal(&k.nw, zero, sizeof(k.nw));
		}
		if (len >= l4_end) {
			assert_int_equal(k.tp_src, want->tp_src);
			assert_int_equal(k.tp_dst, want->tp_dst);
		} else {
			assert_int_equal(k.tp_src, 0);
			assert_int_equal(k.tp_dst, 0);
		}
	}
}

static void test_truncate_tcp4_every_offset(void **state)
{
	(void)state;
	struct fb f;
	build_tcp4(&f);
	struct vnet_flow_key want = extract(&f);
	truncate_everywhere(&f, &want, 14, 34, 34, 54);
}

static void test_truncate_vlan_tcp4_every_offset(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_VLAN);
	put16(&f, 42);
	put16(&f, VNET_ETH_P_IPV4);
	ipv4(&f, VNET_IPPROTO_TCP, 20, 0, 0);
	tcp(&f, 7, 9);
	struct vnet_flow_key want = extract(&f);
	assert_int_equal(VNET_KEY_VLAN_VID(want.vlan_tci), 42);
	truncate_everywhere(&f, &want, 18, 38, 38, 58);
}

static void test_truncate_ipv6_every_offset(void **state)
{
	(void)state;
	struct fb f;
	eth(&f, VNET_ETH_P_IPV6);
	ipv6(&f, 0, 8 + 20);
	put8(&f, VNET_IPPROTO_TCP);
	put8(&f, 0);
	put16(&f, 0);
	put32(&f, 0);
	tcp(&f, 22, 2222);
	struct vnet_flow_key want = extract(&f);
	assert_int_equal(want.nw_proto, 6);
	/* Addresses come with the fixed header (54), nw_proto after the
	 * hop-by-hop header (62), ports with the TCP header (82). */
	truncate_everywhere(&f, &want, 14, 54, 62, 82);
}

static void test_hash(void **state)
{
	(void)state;
	struct fb f;
	build_tcp4(&f);
	struct vnet_flow_key a = extract(&f), b = extract(&f);
	assert_int_equal(vnet_flow_key_hash(&a, 0), vnet_flow_key_hash(&b, 0));
	b.tp_dst++;
	assert_int_not_equal(vnet_flow_key_hash(&a, 0), vnet_flow_key_hash(&b, 0));
	b = a;
	b.in_port++;
	assert_int_not_equal(vnet_flow_key_hash(&a, 0), vnet_flow_key_hash(&b, 0));
	assert_int_not_equal(vnet_flow_key_hash(&a, 0), vnet_flow_key_hash(&a, 1));
	/* Spread: 4096 keys differing in the source port fill most of 4096
	 * buckets (a poor hash would collide massively). */
	static uint8_t used[4096];
	unsigned distinct = 0;
	for (unsigned i = 0; i < 4096; i++) {
		b = a;
		b.tp_src = (uint16_t)i;
		uint32_t h = vnet_flow_key_hash(&b, 0) & 4095;
		distinct += !used[h];
		used[h] = 1;
	}
	assert_true(distinct > 2400); /* ~63% expected for random */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_ipv4),
		cmocka_unit_test(test_udp_sctp_ipv4),
		cmocka_unit_test(test_icmp_ipv4),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_vlan_8021q),
		cmocka_unit_test(test_qinq_takes_outer_tag),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_ipv6_ext_headers),
		cmocka_unit_test(test_ipv6_fragment_and_icmpv6),
		cmocka_unit_test(test_ipv6_ext_header_bound),
		cmocka_unit_test(test_malformed_ipv4),
		cmocka_unit_test(test_ip_padding_is_not_l4),
		cmocka_unit_test(test_8023_and_runt),
		cmocka_unit_test(test_truncate_tcp4_every_offset),
		cmocka_unit_test(test_truncate_vlan_tcp4_every_offset),
		cmocka_unit_test(test_truncate_ipv6_every_offset),
		cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
