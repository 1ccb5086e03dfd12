/*
 * net.c — the tiny guest's IPv4 stack, just enough for the tests: UDP frames
 * whose payload the host side can verify (magic "TINY", a big-endian
 * sequence number, then NET_PATTERN_LEN bytes (seq + i) & 0xff), ARP replies
 * for our address and ICMP echo replies. Every checksum is computed, so a
 * frame corrupted on the way is dropped by the host's stack and shows up as
 * missing.
 *
 * Thread-safety: pure functions over caller-owned buffers.
 */
#include "tiny.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IP_HLEN 20
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17
#define UDP_HLEN 8
#define ARP_LEN 28
#define ETH_ZLEN 60   /* minimum frame without FCS: short frames are padded */
#define MAX_FRAME (VQ_BUF_SIZE - VNET_HDR_LEN)

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* One's-complement sum of big-endian 16-bit words (RFC 1071), unfolded. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, unsigned len)
{
	while (len > 1) {
		sum += get16(p);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

static void ip_header(uint8_t *ip, uint16_t total_len, uint8_t proto, uint32_t src, uint32_t dst,
		      uint16_t id)
{
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, total_len);
	put16(ip + 4, id);
	put16(ip + 6, 0x4000);     /* DF */
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
}

unsigned net_build_udp(const struct net_cfg *cfg, uint8_t *f, uint32_t seq)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *ip = f + ETH_HLEN, *udp = ip + IP_HLEN, *payload = udp + UDP_HLEN;
	unsigned plen = 8 + NET_PATTERN_LEN, ulen = UDP_HLEN + plen;
	uint32_t sum;

	eth_header(f, bcast, cfg->mac, ETH_P_IP);
	memcpy(payload, "TINY", 4);
	put32(payload + 4, seq);
	for (unsigned i = 0; i < NET_PATTERN_LEN; i++)
		payload[8 + i] = (uint8_t)(seq + i);
	ip_header(ip, (uint16_t)(IP_HLEN + ulen), IPPROTO_UDP, cfg->ip, cfg->dst, (uint16_t)seq);
	put16(udp, NET_UDP_PORT);
	put16(udp + 2, NET_UDP_PORT);
	put16(udp + 4, (uint16_t)ulen);
	put16(udp + 6, 0);
	/* pseudo header: addresses, protocol, UDP length */
	sum = csum_add(0, ip + 12, 8) + IPPROTO_UDP + ulen;
	sum = csum_fold(csum_add(sum, udp, ulen));
	put16(udp + 6, sum ? (uint16_t)sum : 0xffff);
	return ETH_HLEN + IP_HLEN + ulen;
}

static enum net_verdict arp_answer(const struct net_cfg *cfg, const uint8_t *f, unsigned len,
				   uint8_t *r, unsigned *rlen)
{
	const uint8_t *arp = f + ETH_HLEN;
	uint8_t *out = r + ETH_HLEN;

	if (len < ETH_HLEN + ARP_LEN)
		return NET_IGNORE;
	/* Ethernet/IPv4 request for our address */
	if (get16(arp) != 1 || get16(arp + 2) != ETH_P_IP || arp[4] != 6 || arp[5] != 4 ||
	    get16(arp + 6) != 1 || get32(arp + 24) != cfg->ip)
		return NET_IGNORE;
	memset(r, 0, ETH_ZLEN);
	eth_header(r, arp + 8, cfg->mac, ETH_P_ARP);
	put16(out, 1);
	put16(out + 2, ETH_P_IP);
	out[4] = 6;
	out[5] = 4;
	put16(out + 6, 2);             /* reply */
	memcpy(out + 8, cfg->mac, 6);
	put32(out + 14, cfg->ip);
	memcpy(out + 18, arp + 8, 10); /* requester's MAC and IP */
	*rlen = ETH_ZLEN;
	return NET_ARP_REPLY;
}

static enum net_verdict icmp_answer(const struct net_cfg *cfg, const uint8_t *f, unsigned len,
				    uint8_t *r, unsigned *rlen)
{
	const uint8_t *ip = f + ETH_HLEN;
	unsigned ihl, total, icmp_len;
	uint8_t *rip = r + ETH_HLEN, *icmp;

	if (len < ETH_HLEN + IP_HLEN)
		return NET_IGNORE;
	ihl = (ip[0] & 0xf) * 4u;
	total = get16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || total < ihl + 8 || ETH_HLEN + total > len ||
	    ETH_HLEN + total > MAX_FRAME || ip[9] != IPPROTO_ICMP || get32(ip + 16) != cfg->ip ||
	    (get16(ip + 6) & 0x3fff) != 0)   /* no fragments */
		return NET_IGNORE;
	if (csum_fold(csum_add(0, ip, ihl)) != 0)
		return NET_IGNORE;
	icmp_len = total - ihl;
	if (ip[ihl] != 8 || ip[ihl + 1] != 0)   /* echo request */
		return NET_IGNORE;
	if (csum_fold(csum_add(0, ip + ihl, icmp_len)) != 0)
		return NET_IGNORE;
	eth_header(r, f + 6, cfg->mac, ETH_P_IP);
	/* The reply drops any IP options: a plain 20-byte header. */
	ip_header(rip, (uint16_t)(IP_HLEN + icmp_len), IPPROTO_ICMP, cfg->ip, get32(ip + 12),
		  get16(ip + 4));
	icmp = rip + IP_HLEN;
	memcpy(icmp, ip + ihl, icmp_len);
	icmp[0] = 0;                   /* echo reply */
	put16(icmp + 2, 0);
	put16(icmp + 2, csum_fold(csum_add(0, icmp, icmp_len)));
	*rlen = ETH_HLEN + IP_HLEN + icmp_len;
	if (*rlen < ETH_ZLEN) {
		memset(r + *rlen, 0, ETH_ZLEN - *rlen);
		*rlen = ETH_ZLEN;
	}
	return NET_PING_REPLY;
}

enum net_verdict net_answer(const struct net_cfg *cfg, const uint8_t *f, unsigned len,
			    uint8_t *reply, unsigned *reply_len)
{
	if (len < ETH_HLEN)
		return NET_IGNORE;
	switch (get16(f + 12)) {
	case ETH_P_ARP:
		return arp_answer(cfg, f, len, reply, reply_len);
	case ETH_P_IP:
		return icmp_answer(cfg, f, len, reply, reply_len);
	default:
		return NET_IGNORE;
	}
}
