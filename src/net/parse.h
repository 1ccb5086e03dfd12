/*
 * parse.h — flow key extraction: the fields of an Ethernet frame a switch
 * matches on (OpenFlow 1.0 style, plus IPv6), pulled out in one bounded
 * pass. Every read is checked against the frame length first; a truncated
 * or malformed header ends the key at the last complete layer and sets
 * VNET_KEY_F_TRUNC. Stateless; thread-safe.
 *
 * The key is a flat 60-byte struct with every padding byte zeroed, so it can
 * be hashed, compared with memcmp and matched word by word under a mask of
 * the same type (the flow table does exactly that).
 *
 * Conventions (as OVS):
 *  - vlan_tci: 0 when the frame has no 802.1Q/802.1ad tag; otherwise
 *    VNET_KEY_VLAN_PRESENT | PCP << 13 | VID of the first (outer) tag.
 *  - dl_type: the EtherType after up to two tags, host order; 802.3 length
 *    frames (type < 0x600) get VNET_DL_TYPE_NONE (0x05ff).
 *  - IPv4 addresses in host byte order in nw.v4; IPv6 addresses as bytes in
 *    nw.v6. ARP: nw.v4.src = SPA, nw.v4.dst = TPA, nw_proto = low byte of
 *    the opcode.
 *  - tp_src/tp_dst: TCP/UDP/SCTP ports; for ICMP and ICMPv6 the type and
 *    the code.
 *  - nw_frag: VNET_FRAG_ANY for any fragment, plus VNET_FRAG_LATER when the
 *    fragment offset is not 0 (only a first fragment carries L4 fields).
 */
#ifndef VNET_NET_PARSE_H
#define VNET_NET_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VNET_DL_TYPE_NONE 0x05ff
#define VNET_ETH_P_IPV6   0x86dd
#define VNET_ETH_P_QINQ   0x88a8

#define VNET_KEY_VLAN_PRESENT 0x1000u
#define VNET_KEY_VLAN_VID(tci) ((uint16_t)((tci) & 0x0fffu))
#define VNET_KEY_VLAN_PCP(tci) ((uint8_t)(((tci) >> 13) & 7u))

#define VNET_FRAG_ANY   0x01u
#define VNET_FRAG_LATER 0x02u

/* key.flags */
#define VNET_KEY_F_TRUNC 0x01u /* a header was cut short or malformed */
#define VNET_KEY_F_QINQ  0x02u /* two tags were skipped */

#define VNET_IPPROTO_ICMP   1
#define VNET_IPPROTO_TCP    6
#define VNET_IPPROTO_UDP    17
#define VNET_IPPROTO_SCTP   132
#define VNET_IPPROTO_ICMPV6 58

struct vnet_flow_key {
	uint16_t in_port;   /* as given by the caller */
	uint16_t vlan_tci;  /* see above */
	uint16_t dl_type;
	uint8_t dl_dst[6];
	uint8_t dl_src[6];
	uint8_t nw_proto;
	uint8_t nw_tos;     /* IPv4 TOS / IPv6 traffic class (DSCP + ECN) */
	uint8_t nw_frag;
	uint8_t flags;      /* VNET_KEY_F_* (not a match field) */
	uint16_t pad;
	union {
		struct {
			uint32_t src, dst;
		} v4;
		struct {
			uint8_t src[16], dst[16];
		} v6;
	} nw;
	uint16_t tp_src, tp_dst;
};

_Static_assert(sizeof(struct vnet_flow_key) == 60, "flow key is 60 bytes");
_Static_assert(sizeof(struct vnet_flow_key) % 4 == 0, "flow key is whole words");

#define VNET_FLOW_KEY_WORDS (sizeof(struct vnet_flow_key) / 4)

/*
 * Fills *key from the first len bytes of frame (never reads beyond). Every
 * byte of *key is written. Returns key->flags (VNET_KEY_F_TRUNC when some
 * layer was incomplete). A frame shorter than an Ethernet header gives a key
 * with only in_port set (and the flag).
 */
unsigned vnet_flow_extract(const uint8_t *frame, size_t len, uint16_t in_port,
			   struct vnet_flow_key *key);

/* 32-bit hash of the whole key (deterministic; seeded by `basis`). */
uint32_t vnet_flow_key_hash(const struct vnet_flow_key *key, uint32_t basis);

/* Byte offset of the first tag's TCI in a frame with a tag, i.e. 14. */
#define VNET_VLAN_TCI_OFFSET 14u

#endif
