/* parse.c — flow key extraction; see parse.h. */
#include "net/parse.h"

#include <string.h>

#include "vnet/frame.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Most IPv6 extension headers we walk through before giving up. */
#define IPV6_MAX_EXT_HEADERS 8

/* L4 ports / ICMP type+code from l4[0..len). */
static void parse_l4(struct vnet_flow_key *key, const uint8_t *l4, size_t len)
{
	switch (key->nw_proto) {
	case VNET_IPPROTO_TCP:
		if (len < 20) {
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		break;
	case VNET_IPPROTO_UDP:
		if (len < 8) {
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		break;
	case VNET_IPPROTO_SCTP:
		if (len < 12) {
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		break;
	case VNET_IPPROTO_ICMP:
	case VNET_IPPROTO_ICMPV6:
		if (len < 4) {
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		key->tp_src = l4[0];
		key->tp_dst = l4[1];
		return;
	default:
		return;
	}
	key->tp_src = rd16(l4);
	key->tp_dst = rd16(l4 + 2);
}

static void parse_ipv4(struct vnet_flow_key *key, const uint8_t *ip, size_t len)
{
	if (len < 20 || (ip[0] >> 4) != 4) {
		key->flags |= VNET_KEY_F_TRUNC;
		return;
	}
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	size_t tot = rd16(ip + 2);
	if (ihl < 20 || ihl > len || tot < ihl) {
		key->flags |= VNET_KEY_F_TRUNC;
		return;
	}
	key->nw_tos = ip[1];
	key->nw_proto = ip[9];
	key->nw.v4.src = rd32(ip + 12);
	key->nw.v4.dst = rd32(ip + 16);
	uint16_t frag = rd16(ip + 6);
	if (frag & 0x3fff) { /* MF or an offset */
		key->nw_frag = VNET_FRAG_ANY;
		if (frag & 0x1fff) {
			key->nw_frag |= VNET_FRAG_LATER;
			return;
		}
	}
	/* L4 lies within both the frame and the datagram (Ethernet padding
	 * after a short datagram is not L4). */
	size_t end = tot < len ? tot : len;
	parse_l4(key, ip + ihl, end - ihl);
}

static bool ipv6_ext_header(uint8_t nh)
{
	return nh == 0 /* hop-by-hop */ || nh == 43 /* routing */ || nh == 44 /* fragment */ ||
	       nh == 60 /* destination options */ || nh == 51 /* AH */;
}

static void parse_ipv6(struct vnet_flow_key *key, const uint8_t *ip, size_t len)
{
	if (len < 40 || (ip[0] >> 4) != 6) {
		key->flags |= VNET_KEY_F_TRUNC;
		return;
	}
	key->nw_tos = (uint8_t)(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
	memcpy(key->nw.v6.src, ip + 8, 16);
	memcpy(key->nw.v6.dst, ip + 24, 16);
	size_t plen = rd16(ip + 4);
	size_t end = 40 + plen < len ? 40 + plen : len;
	size_t off = 40;
	uint8_t nh = ip[6];
	for (unsigned i = 0; ipv6_ext_header(nh); i++) {
		if (i == IPV6_MAX_EXT_HEADERS || end - off < 8) {
			key->nw_proto = nh;
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		const uint8_t *h = ip + off;
		size_t hlen;
		if (nh == 44) {
			hlen = 8;
			uint16_t fo = rd16(h + 2);
			key->nw_frag = VNET_FRAG_ANY;
			if (fo & 0xfff8) {
				key->nw_frag |= VNET_FRAG_LATER;
				key->nw_proto = h[0];
				return;
			}
		} else if (nh == 51) {
			hlen = ((size_t)h[1] + 2) * 4;
		} else {
			hlen = ((size_t)h[1] + 1) * 8;
		}
		if (hlen > end - off) {
			key->nw_proto = nh;
			key->flags |= VNET_KEY_F_TRUNC;
			return;
		}
		nh = h[0];
		off += hlen;
	}
	key->nw_proto = nh;
	parse_l4(key, ip + off, end - off);
}

static void parse_arp(struct vnet_flow_key *key, const uint8_t *a, size_t len)
{
	if (len < 28) {
		key->flags |= VNET_KEY_F_TRUNC;
		return;
	}
	/* Ethernet / IPv4 ARP only; others keep just the L2 fields. */
	if (rd16(a) != 1 || rd16(a + 2) != VNET_ETH_P_IPV4 || a[4] != 6 || a[5] != 4)
		return;
	key->nw_proto = (uint8_t)rd16(a + 6);
	key->nw.v4.src = rd32(a + 14);
	key->nw.v4.dst = rd32(a + 24);
}

unsigned vnet_flow_extract(const uint8_t *frame, size_t len, uint16_t in_port,
			   struct vnet_flow_key *key)
{
	memset(key, 0, sizeof(*key));
	key->in_port = in_port;
	if (len < VNET_ETH_HLEN) {
		key->flags = VNET_KEY_F_TRUNC;
		return key->flags;
	}
	memcpy(key->dl_dst, frame, 6);
	memcpy(key->dl_src, frame + 6, 6);
	size_t off = 12;
	uint16_t type = rd16(frame + 12);
	for (unsigned tags = 0; (type == VNET_ETH_P_VLAN || type == VNET_ETH_P_QINQ) && tags < 2;
	     tags++) {
		if (len - off < 6) { /* TPID, TCI and the next type */
			/* Stop at the tag: dl_type names what could not be crossed. */
			key->flags |= VNET_KEY_F_TRUNC;
			key->dl_type = type;
			return key->flags;
		}
		uint16_t tci = rd16(frame + off + 2);
		if (tags == 0)
			key->vlan_tci = (uint16_t)((tci & ~VNET_KEY_VLAN_PRESENT) | VNET_KEY_VLAN_PRESENT);
		else
			key->flags |= VNET_KEY_F_QINQ;
		off += 4;
		type = rd16(frame + off);
	}
	off += 2;
	key->dl_type = type < 0x600 ? VNET_DL_TYPE_NONE : type;
	const uint8_t *l3 = frame + off;
	size_t l3len = len - off;
	switch (key->dl_type) {
	case VNET_ETH_P_IPV4:
		parse_ipv4(key, l3, l3len);
		break;
	case VNET_ETH_P_IPV6:
		parse_ipv6(key, l3, l3len);
		break;
	case VNET_ETH_P_ARP:
		parse_arp(key, l3, l3len);
		break;
	default:
		break;
	}
	return key->flags;
}

static inline uint32_t rotl32(uint32_t x, unsigned r)
{
	return (x << r) | (x >> (32 - r));
}

/* murmur3-style mixing over the key's 15 words. */
uint32_t vnet_flow_key_hash(const struct vnet_flow_key *key, uint32_t basis)
{
	const unsigned char *p = (const unsigned char *)key;
	uint32_t h = basis ^ 0x9747b28cu;
	for (size_t i = 0; i < VNET_FLOW_KEY_WORDS; i++) {
		uint32_t w;
		memcpy(&w, p + 4 * i, 4);
		w *= 0xcc9e2d51u;
		w = rotl32(w, 15);
		w *= 0x1b873593u;
		h ^= w;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64u;
	}
	h ^= (uint32_t)sizeof(*key);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}
