/* frame.c — test frames, ARP/ICMP answers, checksums; see vnet/frame.h. */
#include "vnet/frame.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define IP_HLEN 20u
#define UDP_HLEN 8u
#define ICMP_ECHO_REQUEST 8
#define ICMP_ECHO_REPLY 0

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

/* Sums in native 64-bit words and swaps the folded result into network
 * order at the end (one's-complement sums are byte-order independent,
 * RFC 1071 §2(B)): about 8x fewer operations than 16-bit big-endian steps. */
uint32_t vnet_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = 0;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		acc += (w & 0xffffffffu) + (w >> 32);
	}
	if (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		acc += w;
		p += 2;
		len -= 2;
	}
	if (len)
		acc += p[0]; /* the low byte of a native word is the first byte */
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	uint16_t native = (uint16_t)acc;
	uint16_t net = (uint16_t)(native >> 8 | native << 8);
	if (!((const union { uint16_t u; uint8_t b; }){.u = 1}).b)
		net = native; /* big-endian host: already in network order */
	return sum + net;
}

uint16_t vnet_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Offset of the Ethernet payload, and its type; 0 when too short. */
static size_t l3_offset(const uint8_t *f, size_t len, uint16_t *type)
{
	if (len < VNET_ETH_HLEN)
		return 0;
	*type = rd16(f + 12);
	if (*type != VNET_ETH_P_VLAN)
		return VNET_ETH_HLEN;
	if (len < VNET_ETH_HLEN + 4)
		return 0;
	*type = rd16(f + 16);
	return VNET_ETH_HLEN + 4;
}

size_t vnet_frame_udp_min(const struct vnet_udp_flow *f)
{
	size_t l2 = VNET_ETH_HLEN + (f->vlan ? 4 : 0);
	size_t min = l2 + IP_HLEN + UDP_HLEN + sizeof(struct vnet_probe);
	return min < VNET_FRAME_MIN ? VNET_FRAME_MIN : min;
}

static uint16_t udp_checksum(const uint8_t *ip, const uint8_t *udp, size_t udp_len)
{
	uint32_t sum = vnet_csum_add(0, ip + 12, 8); /* pseudo header: addresses */
	sum += 17 + (uint32_t)udp_len;
	sum = vnet_csum_add(sum, udp, udp_len);
	uint16_t c = (uint16_t)~vnet_csum_fold(sum);
	return c ? c : 0xffff;
}

static void write_probe(uint8_t *payload, uint64_t seq, uint64_t tx_ns)
{
	struct vnet_probe pr = {.magic = VNET_PROBE_MAGIC, .seq = (uint32_t)seq, .tx_ns = tx_ns};
	memcpy(payload, &pr, sizeof(pr));
}

size_t vnet_frame_build_udp(uint8_t *buf, size_t cap, size_t len, const struct vnet_udp_flow *f,
			    uint64_t seq, uint64_t tx_ns)
{
	if (len < vnet_frame_udp_min(f) || len > cap || len > 65535)
		return 0;
	memset(buf, 0, len);
	memcpy(buf, f->dst_mac, 6);
	memcpy(buf + 6, f->src_mac, 6);
	size_t l2 = VNET_ETH_HLEN;
	if (f->vlan) {
		wr16(buf + 12, VNET_ETH_P_VLAN);
		wr16(buf + 14, f->vlan & 0xfff);
		l2 += 4;
	}
	wr16(buf + l2 - 2, VNET_ETH_P_IPV4);

	uint8_t *ip = buf + l2, *udp = ip + IP_HLEN, *payload = udp + UDP_HLEN;
	size_t ip_len = len - l2, udp_len = ip_len - IP_HLEN;
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)ip_len);
	wr16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = 17;
	wr32(ip + 12, f->src_ip);
	wr32(ip + 16, f->dst_ip);
	wr16(ip + 10, (uint16_t)~vnet_csum_fold(vnet_csum_add(0, ip, IP_HLEN)));

	wr16(udp, f->src_port);
	wr16(udp + 2, f->dst_port);
	wr16(udp + 4, (uint16_t)udp_len);
	write_probe(payload, seq, tx_ns);
	size_t pattern_len = udp_len - UDP_HLEN - sizeof(struct vnet_probe);
	uint8_t *pat = payload + sizeof(struct vnet_probe);
	for (size_t i = 0; i < pattern_len; i++)
		pat[i] = (uint8_t)(seq + i);
	wr16(udp + 6, udp_checksum(ip, udp, udp_len));
	return len;
}

/* Locates IPv4/UDP/probe; returns the probe offset or 0. */
static size_t probe_offset(const uint8_t *f, size_t len, size_t *ip_off, size_t *udp_len)
{
	uint16_t type;
	size_t l3 = l3_offset(f, len, &type);
	if (!l3 || type != VNET_ETH_P_IPV4 || len < l3 + IP_HLEN)
		return 0;
	const uint8_t *ip = f + l3;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	size_t tot = rd16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || ip[9] != 17 || tot < ihl + UDP_HLEN ||
	    tot > len - l3)
		return 0;
	const uint8_t *udp = ip + ihl;
	size_t ulen = rd16(udp + 4);
	if (ulen < UDP_HLEN + sizeof(struct vnet_probe) || ulen > tot - ihl)
		return 0;
	*ip_off = l3;
	*udp_len = ulen;
	return l3 + ihl + UDP_HLEN;
}

bool vnet_frame_parse_probe(const uint8_t *frame, size_t len, bool verify, struct vnet_probe *probe)
{
	size_t ip_off, udp_len;
	size_t off = probe_offset(frame, len, &ip_off, &udp_len);
	if (!off)
		return false;
	memcpy(probe, frame + off, sizeof(*probe));
	if (probe->magic != VNET_PROBE_MAGIC)
		return false;
	if (!verify)
		return true;
	const uint8_t *ip = frame + ip_off;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	if (vnet_csum_fold(vnet_csum_add(0, ip, ihl)) != 0xffff)
		return false;
	const uint8_t *udp = ip + ihl;
	uint16_t stored = rd16(udp + 6);
	if (stored) {
		uint32_t sum = vnet_csum_add(0, ip + 12, 8) + 17 + (uint32_t)udp_len;
		if (vnet_csum_fold(vnet_csum_add(sum, udp, udp_len)) != 0xffff)
			return false;
	}
	const uint8_t *pat = frame + off + sizeof(*probe);
	size_t pattern_len = udp_len - UDP_HLEN - sizeof(*probe);
	for (size_t i = 0; i < pattern_len; i++)
		if (pat[i] != (uint8_t)(probe->seq + i))
			return false;
	return true;
}

void vnet_frame_set_probe(uint8_t *frame, size_t len, uint64_t seq, uint64_t tx_ns)
{
	size_t ip_off, udp_len;
	size_t off = probe_offset(frame, len, &ip_off, &udp_len);
	if (!off)
		return;
	uint8_t *udp = frame + off - UDP_HLEN;
	uint16_t old_csum = rd16(udp + 6);
	uint8_t old[sizeof(struct vnet_probe)];
	memcpy(old, frame + off, sizeof(old));
	write_probe(frame + off, seq, tx_ns);
	if (!old_csum)
		return;
	/* RFC 1624 incremental update: HC' = ~(~HC + ~m + m'). */
	uint32_t sum = (uint16_t)~old_csum;
	for (size_t i = 0; i < sizeof(old); i += 2)
		sum += (uint16_t)~rd16(old + i);
	sum = vnet_csum_add(sum, frame + off, sizeof(old));
	uint16_t c = (uint16_t)~vnet_csum_fold(sum);
	wr16(udp + 6, c ? c : 0xffff);
}

bool vnet_frame_restamp_udp(uint8_t *frame, size_t len, uint16_t src_port, uint64_t seq,
			    uint64_t tx_ns)
{
	size_t ip_off, udp_len;
	size_t off = probe_offset(frame, len, &ip_off, &udp_len);
	struct vnet_probe old;
	if (!off)
		return false;
	memcpy(&old, frame + off, sizeof(old));
	if (old.magic != VNET_PROBE_MAGIC || (uint8_t)old.seq != (uint8_t)seq)
		return false;
	uint8_t *udp = frame + off - UDP_HLEN;
	uint16_t old_csum = rd16(udp + 6), old_port = rd16(udp);
	uint8_t old_bytes[sizeof(old)];
	memcpy(old_bytes, &old, sizeof(old));
	wr16(udp, src_port);
	write_probe(frame + off, seq, tx_ns);
	if (!old_csum)
		return true;
	/* HC' = ~(~HC + ~m + m') over the changed 16-bit words. */
	uint32_t sum = (uint16_t)~old_csum;
	sum += (uint16_t)~old_port;
	sum += src_port;
	for (size_t i = 0; i < sizeof(old_bytes); i += 2)
		sum += (uint16_t)~rd16(old_bytes + i);
	sum = vnet_csum_add(sum, frame + off, sizeof(old_bytes));
	uint16_t c = (uint16_t)~vnet_csum_fold(sum);
	wr16(udp + 6, c ? c : 0xffff);
	return true;
}

void vnet_frame_swap_mac(uint8_t *frame, size_t len)
{
	if (len < 12)
		return;
	uint8_t tmp[6];
	memcpy(tmp, frame, 6);
	memcpy(frame, frame + 6, 6);
	memcpy(frame + 6, tmp, 6);
}

static size_t answer_arp(const uint8_t *f, size_t l3, size_t len, uint32_t ip,
			 const uint8_t mac[6], uint8_t *out, size_t cap)
{
	const uint8_t *a = f + l3;
	if (len < l3 + 28 || rd16(a) != 1 || rd16(a + 2) != VNET_ETH_P_IPV4 || a[4] != 6 ||
	    a[5] != 4 || rd16(a + 6) != 1 || rd32(a + 24) != ip)
		return 0;
	size_t n = l3 + 28 < VNET_FRAME_MIN ? VNET_FRAME_MIN : l3 + 28;
	if (cap < n)
		return 0;
	memset(out, 0, n);
	memcpy(out, f + 6, 6);  /* to the asker */
	memcpy(out + 6, mac, 6);
	memcpy(out + 12, f + 12, l3 - 12); /* type, or VLAN tag + type */
	uint8_t *r = out + l3;
	wr16(r, 1);
	wr16(r + 2, VNET_ETH_P_IPV4);
	r[4] = 6;
	r[5] = 4;
	wr16(r + 6, 2);
	memcpy(r + 8, mac, 6);
	wr32(r + 14, ip);
	memcpy(r + 18, a + 8, 10); /* asker's MAC and IP */
	return n;
}

static size_t answer_icmp(const uint8_t *f, size_t l3, size_t len, uint32_t ip,
			  const uint8_t mac[6], uint8_t *out, size_t cap)
{
	if (len < l3 + IP_HLEN)
		return 0;
	const uint8_t *iph = f + l3;
	size_t ihl = (size_t)(iph[0] & 0xf) * 4, tot = rd16(iph + 2);
	if ((iph[0] >> 4) != 4 || ihl < IP_HLEN || iph[9] != 1 || rd32(iph + 16) != ip ||
	    tot < ihl + 8 || tot > len - l3 || iph[ihl] != ICMP_ECHO_REQUEST)
		return 0;
	size_t n = l3 + tot;
	if (n < VNET_FRAME_MIN)
		n = VNET_FRAME_MIN < len ? VNET_FRAME_MIN : len;
	if (cap < n)
		return 0;
	memcpy(out, f, n);
	memcpy(out, f + 6, 6);
	memcpy(out + 6, mac, 6);
	uint8_t *rip = out + l3;
	memcpy(rip + 12, iph + 16, 4);
	memcpy(rip + 16, iph + 12, 4);
	rip[8] = 64;
	wr16(rip + 10, 0);
	wr16(rip + 10, (uint16_t)~vnet_csum_fold(vnet_csum_add(0, rip, ihl)));
	uint8_t *icmp = rip + ihl;
	icmp[0] = ICMP_ECHO_REPLY;
	wr16(icmp + 2, 0);
	wr16(icmp + 2, (uint16_t)~vnet_csum_fold(vnet_csum_add(0, icmp, tot - ihl)));
	return n;
}

size_t vnet_frame_answer(const uint8_t *frame, size_t len, uint32_t ip, const uint8_t mac[6],
			 uint8_t *out, size_t cap)
{
	uint16_t type;
	size_t l3 = l3_offset(frame, len, &type);
	if (!l3)
		return 0;
	if (type == VNET_ETH_P_ARP)
		return answer_arp(frame, l3, len, ip, mac, out, cap);
	if (type == VNET_ETH_P_IPV4)
		return answer_icmp(frame, l3, len, ip, mac, out, cap);
	return 0;
}

int vnet_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char extra;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &extra) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int vnet_parse_ipv4(const char *s, uint32_t *ip)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	return 0;
}
