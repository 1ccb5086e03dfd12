/*
 * frame.h — building and answering Ethernet frames: UDP/IPv4 test frames
 * with a sequence number and a verifiable payload, ARP replies and ICMP
 * echo replies, and the Internet checksum. Used by vnet-pktgen and tests.
 * Every parser checks lengths before it reads. Stateless; thread-safe.
 */
#ifndef VNET_FRAME_H
#define VNET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VNET_ETH_HLEN 14u
#define VNET_ETH_P_IPV4 0x0800
#define VNET_ETH_P_ARP  0x0806
#define VNET_ETH_P_VLAN 0x8100

/* Smallest frame pktgen builds: Ethernet minimum without FCS. */
#define VNET_FRAME_MIN 60u

struct vnet_udp_flow {
	uint8_t src_mac[6], dst_mac[6];
	uint16_t vlan;       /* 1..4094 adds an 802.1Q tag; 0 = untagged */
	uint32_t src_ip, dst_ip; /* host byte order */
	uint16_t src_port, dst_port;
};

/* Payload pktgen puts behind the UDP header (then a byte pattern). */
/* 16 bytes, so a probe fits a 64-byte frame even with a VLAN tag. */
struct vnet_probe {
	uint32_t magic;
	uint32_t seq;    /* low 32 bits of the sender's sequence number */
	uint64_t tx_ns;
};

#define VNET_PROBE_MAGIC 0x766e6574u /* "vnet" */

/*
 * Writes a UDP/IPv4 frame of `len` bytes (≥ the headers + probe, ≤ cap) with
 * correct IPv4 and UDP checksums and a payload pattern derived from seq.
 * Returns the length written or 0 when len does not fit.
 */
size_t vnet_frame_build_udp(uint8_t *buf, size_t cap, size_t len, const struct vnet_udp_flow *f,
			    uint64_t seq, uint64_t tx_ns);

/* Smallest frame vnet_frame_build_udp() accepts for this flow. */
size_t vnet_frame_udp_min(const struct vnet_udp_flow *f);

/*
 * Finds the probe in a frame built above. Returns true and fills *probe
 * when the frame is an intact pktgen frame (lengths, magic and, when
 * `verify`, the checksums and pattern all agree).
 */
bool vnet_frame_parse_probe(const uint8_t *frame, size_t len, bool verify, struct vnet_probe *probe);

/* Rewrites the probe's seq/tx_ns in place (UDP checksum updated). */
void vnet_frame_set_probe(uint8_t *frame, size_t len, uint64_t seq, uint64_t tx_ns);

/*
 * Turns a frame built by vnet_frame_build_udp() into the one it would build
 * for (src_port, seq, tx_ns), provided seq has the same low 8 bits as the
 * frame's probe (the payload pattern repeats every 256 sequence numbers):
 * only the UDP source port, the probe and the UDP checksum (RFC 1624
 * incremental update) are written, so a sender that keeps one buffer per
 * seq % 256 never rewrites or re-checksums payloads. False (frame
 * untouched) when the frame is not such a frame or the low bits differ.
 */
bool vnet_frame_restamp_udp(uint8_t *frame, size_t len, uint16_t src_port, uint64_t seq,
			    uint64_t tx_ns);

/*
 * If `frame` is an ARP request for `ip` or an ICMP echo request to `ip`
 * (host byte order), writes the answer from `mac` into out (cap bytes) and
 * returns its length; otherwise 0.
 */
size_t vnet_frame_answer(const uint8_t *frame, size_t len, uint32_t ip, const uint8_t mac[6],
			 uint8_t *out, size_t cap);

/* Swaps source and destination MAC in place. */
void vnet_frame_swap_mac(uint8_t *frame, size_t len);

/* Internet checksum (RFC 1071) of buf, folded, not inverted, seeded by sum. */
uint32_t vnet_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t vnet_csum_fold(uint32_t sum);

/* Parses "aa:bb:cc:dd:ee:ff" / "a.b.c.d"; 0 or -1. */
int vnet_parse_mac(const char *s, uint8_t mac[6]);
int vnet_parse_ipv4(const char *s, uint32_t *ip);

#endif
