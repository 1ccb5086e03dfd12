/*
 * fuzz_packet.c — libFuzzer target for what vnet-switchd does with a frame
 * a guest, a tap or the wire hands it:
 *   - flow-key extraction (src/net/parse.c: Ethernet, 802.1Q/802.1ad,
 *     IPv4 options and fragments, IPv6 extension headers, ARP,
 *     TCP/UDP/SCTP/ICMP);
 *   - the forwarding pipeline (src/switch/forward.c) on a bridge of access
 *     and trunk ports with flows parsed from the input (src/switch/flow.c):
 *     VLAN admission, tag push/pop, copies per output, and the virtio-net
 *     header's offload fields (csum_start/csum_offset/hdr_len/gso_size, as a
 *     hostile guest sets them: CVE-2024-11614, CVE-2022-2132, gso_size 0),
 *     which the switch shifts with the tag and hands to taps unread;
 *   - pktgen's frame parsers (src/net/frame.c): probe parsing, restamping,
 *     ARP/ICMP answers.
 *
 * Oracles (abort on failure): key extraction reads nothing past len (same
 * key with garbage after the frame) and a complete parse of a prefix is the
 * parse of the whole frame; padding bytes are zero. The classifier and the
 * EMC agree with a linear scan of the table. After sw_forward_burst every
 * packet is in exactly one list, copies come from the pool and go back,
 * output frames stay inside their buffers, carry the original bytes with
 * only the outer tag changed, and their header's checksum target still
 * names the same bytes (a header that was inside the frame stays inside,
 * one that was not never becomes valid). Answers are well-formed and never
 * answered themselves; a restamped valid probe stays valid.
 *
 * Input (missing bytes read as 0):
 *   b0  ports 1..4, two bits each: 0 trunk for all VLANs, 1 access (tags
 *       10, 20, 10, 4094), 2 trunk for VLANs 0,10,20, 3 no port
 *   b1  bits 0-2 ingress ofport (0..7), bits 3-4 pool size (4/16/64/256)
 *   b2  number of flows (0..3), then per flow: u8 length + text
 *   then frames until the input ends: u8 ctl (bit 0 ends the burst, bit 1
 *   a 10-byte virtio-net header follows, bit 2 the length is a u16 else a
 *   u8, bits 3-7 vary the answering IP and the restamped port and seq),
 *   [header], length, frame bytes (fewer if the input ends).
 * Single-threaded: the harness is the only RCU reader and never registers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/parse.h"
#include "switch/fdb.h"
#include "switch/flow.h"
#include "switch/forward.h"
#include "vnet/frame.h"
#include "vnet/log.h"
#include "vnet/pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond) FUZZ_CHECK("fuzz_packet", cond)

#define NPORTS 4
#define MAX_FLOWS 3
#define BURST_MAX 72  /* more than SW_FWD_MAX_BURST: the rest stays ours */
#define MAX_PKTS 256
#define FRAME_MAX VNET_PKT_DEFAULT_ROOM
#define TAG_BASE 1000 /* pkt->in_port = TAG_BASE + index: who a copy came from */

/* The frame and header as the guest sent them, to compare outputs with. */
struct original {
	uint8_t bytes[FRAME_MAX];
	uint32_t len;
	struct virtio_net_hdr vhdr;
};

static struct {
	struct sw_rcu rcu;
	struct sw_fwd_out *out;
	struct sw_emc emc; /* the harness's own, to check the forwarder's results */
	struct sw_port ports[NPORTS + 1];
	struct original orig[BURST_MAX];
	uint8_t scratch[FRAME_MAX + 64];
	uint8_t answer[FRAME_MAX + 64];
	bool ready;
} S;

static bool trace; /* FUZZ_PACKET_TRACE=1: print what each frame did */

/* ---- flow keys ---- */

static bool is_tag_type(uint16_t t)
{
	return t == VNET_ETH_P_VLAN || t == VNET_ETH_P_QINQ;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void check_key(const uint8_t *frame, size_t len, uint16_t in_port, struct vnet_flow_key *key)
{
	unsigned flags = vnet_flow_extract(frame, len, in_port, key);
	CHECK(flags == key->flags);
	CHECK(!(flags & ~(unsigned)(VNET_KEY_F_TRUNC | VNET_KEY_F_QINQ)));
	CHECK(key->in_port == in_port && key->pad == 0);
	if (len < VNET_ETH_HLEN) {
		struct vnet_flow_key empty;
		memset(&empty, 0, sizeof(empty));
		empty.in_port = in_port;
		empty.flags = VNET_KEY_F_TRUNC;
		CHECK(!memcmp(key, &empty, sizeof(empty)));
		return;
	}
	CHECK(!memcmp(key->dl_dst, frame, 6) && !memcmp(key->dl_src, frame + 6, 6));
	uint16_t type = be16(frame + 12);
	if (!is_tag_type(type)) {
		CHECK(key->vlan_tci == 0);
		CHECK(key->dl_type == (type < 0x600 ? VNET_DL_TYPE_NONE : type));
	} else if (len >= 18) {
		CHECK(key->vlan_tci == (be16(frame + 14) | VNET_KEY_VLAN_PRESENT));
	}

	/* The same bytes followed by garbage: reading past len would show. */
	memcpy(S.scratch, frame, len);
	memset(S.scratch + len, 0xa5, 64);
	struct vnet_flow_key again;
	vnet_flow_extract(S.scratch, len, in_port, &again);
	CHECK(!memcmp(key, &again, sizeof(again)));

	/* A prefix parsed completely (no layer cut) already holds every field
	 * the whole frame gives: later bytes cannot change a finished parse. */
	for (size_t cut = len > 64 ? len - 64 : VNET_ETH_HLEN; cut < len; cut += 13) {
		struct vnet_flow_key pre;
		if (!(vnet_flow_extract(frame, cut, in_port, &pre) & VNET_KEY_F_TRUNC))
			CHECK(!memcmp(&pre, key, sizeof(pre)));
	}
}

/* The first flow of v whose match accepts k, every word compared. */
static struct sw_flow *linear_classify(const struct sw_flow_version *v,
				       const struct vnet_flow_key *k)
{
	for (unsigned i = 0; i < v->n; i++) {
		if (i)
			CHECK(v->flows[i - 1]->priority > v->flows[i]->priority ||
			      (v->flows[i - 1]->priority == v->flows[i]->priority &&
			       v->flows[i - 1]->seq < v->flows[i]->seq));
		if (sw_match_matches(&v->flows[i]->match, k))
			return v->flows[i];
	}
	return NULL;
}

static void check_classify(const struct sw_flow_version *v, const struct vnet_flow_key *k)
{
	struct sw_flow *want = linear_classify(v, k);
	CHECK(sw_flow_classify(v, k) == want);
	uint32_t h = vnet_flow_key_hash(k, 0);
	CHECK(h == vnet_flow_key_hash(k, 0));
	CHECK(sw_emc_lookup(&S.emc, v, k, h) == want);
	CHECK(sw_emc_lookup(&S.emc, v, k, h) == want); /* now from the cache */
}

/* ---- pktgen's parsers ---- */

static void check_frame_parsers(const uint8_t *frame, size_t len, uint8_t ctl)
{
	struct vnet_probe p1, p2;
	bool loose = vnet_frame_parse_probe(frame, len, false, &p1);
	bool strict = vnet_frame_parse_probe(frame, len, true, &p2);
	CHECK(!strict || (loose && !memcmp(&p1, &p2, sizeof(p1))));
	CHECK(!loose || p1.magic == VNET_PROBE_MAGIC);

	uint32_t ip = 0x0a000001u + ((ctl >> 3) & 3);
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, 0x99};
	size_t cap = FRAME_MAX + 64;
	size_t n = vnet_frame_answer(frame, len, ip, mac, S.answer, cap);
	CHECK(n <= cap);
	if (n) {
		CHECK(n >= VNET_ETH_HLEN);
		CHECK(!memcmp(S.answer, frame + 6, 6) && !memcmp(S.answer + 6, mac, 6));
		/* An answer is never a question: no reply loops between two stacks. */
		uint8_t again[FRAME_MAX + 64];
		CHECK(vnet_frame_answer(S.answer, n, ip, mac, again, sizeof(again)) == 0);
		struct vnet_flow_key k;
		vnet_flow_extract(S.answer, n, 0, &k);
		size_t l3 = k.vlan_tci ? 18 : 14;
		if (k.dl_type == VNET_ETH_P_IPV4 && n >= l3 + 20) {
			/* ICMP echo reply: header checksum right (ihl from the request). */
			const uint8_t *iph = S.answer + l3;
			size_t ihl = (size_t)(iph[0] & 0xf) * 4;
			CHECK(k.nw_proto == 1 && iph[ihl] == 0);
			CHECK(vnet_csum_fold(vnet_csum_add(0, iph, ihl)) == 0xffff);
		} else {
			CHECK(k.dl_type == VNET_ETH_P_ARP && k.nw_proto == 2 && k.nw.v4.src == ip);
		}
	}

	if (len > sizeof(S.scratch))
		return;
	memcpy(S.scratch, frame, len);
	uint16_t port = (uint16_t)(0x1200 | ctl);
	uint64_t seq = (uint64_t)(ctl >> 5) << 40 | (uint64_t)ctl << 8 | (strict ? (uint8_t)p2.seq : ctl);
	bool restamped = vnet_frame_restamp_udp(S.scratch, len, port, seq, 0x1122334455667788ull);
	if (!restamped) {
		CHECK(!memcmp(S.scratch, frame, len)); /* untouched */
	} else if (strict) {
		/* A verifiable probe stays verifiable (RFC 1624 update). */
		struct vnet_probe p3;
		CHECK(vnet_frame_parse_probe(S.scratch, len, true, &p3));
		CHECK(p3.seq == (uint32_t)seq && p3.tx_ns == 0x1122334455667788ull);
	}
}

/* ---- the forwarding pipeline ---- */

static bool tagged(const uint8_t *f, size_t len)
{
	return len >= 18 && is_tag_type(be16(f + 12));
}

/* csum_start/offset name two bytes inside the frame, after its L2 header. */
static bool csum_inside(const struct virtio_net_hdr *h, const uint8_t *f, uint32_t len)
{
	uint32_t l2 = tagged(f, len) ? 18 : 14;
	return h->csum_start >= l2 && (uint32_t)h->csum_start + h->csum_offset + 2 <= len;
}

static void check_output(const struct vnet_pkt *p, uint16_t ofport, unsigned npkts)
{
	CHECK(p->in_port >= TAG_BASE && p->in_port < TAG_BASE + npkts);
	const struct original *o = &S.orig[p->in_port - TAG_BASE];
	CHECK(p->data >= p->buf && p->len <= p->room &&
	      (size_t)(p->data - p->buf) <= p->room - p->len);
	if (ofport) {
		CHECK(ofport <= NPORTS && S.ports[ofport].ofport == ofport);
		CHECK(ofport != (S.ports[0].ofport)); /* never back out the ingress */
	}
	const uint8_t *d = p->data;
	int delta = (int)p->len - (int)o->len;
	CHECK(delta == 0 || delta == 4 || delta == -4);
	CHECK(!memcmp(d, o->bytes, o->len < 12 ? o->len : 12));
	if (delta == 0) {
		bool retagged = tagged(o->bytes, o->len) && tagged(d, p->len);
		size_t same_from = retagged ? 16 : 12; /* only the TCI may change */
		if (o->len > same_from)
			CHECK(!memcmp(d + same_from, o->bytes + same_from, o->len - same_from));
		if (retagged)
			CHECK(be16(d + 12) == be16(o->bytes + 12));
	} else if (delta == 4) {
		CHECK(be16(d + 12) == VNET_ETH_P_VLAN);
		CHECK(!memcmp(d + 16, o->bytes + 12, o->len - 12));
	} else {
		CHECK(tagged(o->bytes, o->len));
		CHECK(!memcmp(d + 12, o->bytes + 16, o->len - 16));
	}

	/* Offload fields: everything but the two offsets is passed through. */
	const struct virtio_net_hdr *h = &p->vhdr, *oh = &o->vhdr;
	CHECK(h->flags == oh->flags && h->gso_type == oh->gso_type &&
	      h->gso_size == oh->gso_size && h->csum_offset == oh->csum_offset);
	if (oh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		bool was = csum_inside(oh, o->bytes, o->len), is = csum_inside(h, d, p->len);
		CHECK(was == is); /* a bad header never turns into a plausible one */
		if (is) /* and a good one still names the same bytes */
			CHECK(!memcmp(d + h->csum_start, o->bytes + oh->csum_start,
				      (size_t)h->csum_offset + 2));
	} else {
		CHECK(h->csum_start == oh->csum_start);
	}
	if (oh->gso_type != VIRTIO_NET_HDR_GSO_NONE && oh->hdr_len)
		CHECK(h->hdr_len == (uint16_t)(oh->hdr_len + delta));
	else
		CHECK(h->hdr_len == oh->hdr_len);
}

/* Every packet in exactly one list; copies accounted for by the pool. */
static void check_ownership(struct vnet_pkt_pool *pool, struct vnet_pkt **in, unsigned n,
			    unsigned taken)
{
	struct sw_fwd_out *out = S.out;
	unsigned listed = 0, inputs_seen = 0;
	static struct vnet_pkt *seen[SW_FWD_MAX_BURST * (NPORTS + 2)];
	for (unsigned i = 0; i <= out->n_ports; i++) {
		bool drops = i == out->n_ports;
		unsigned cnt = drops ? out->n_drop : out->ports[i].n;
		for (unsigned j = 0; j < cnt; j++) {
			struct vnet_pkt *p = drops ? out->drop[j] : out->ports[i].pkts[j];
			CHECK(p->pool == pool);
			for (unsigned k = 0; k < listed; k++)
				CHECK(seen[k] != p);
			CHECK(listed < sizeof(seen) / sizeof(seen[0]));
			seen[listed++] = p;
			for (unsigned k = 0; k < n; k++)
				if (in[k] == p) {
					CHECK(k < taken); /* the rest stays the caller's */
					inputs_seen++;
				}
			if (!drops)
				check_output(p, out->ports[i].ofport, n);
		}
	}
	CHECK(inputs_seen == taken);
	/* Pool: our untaken inputs plus every listed packet are out of it. */
	CHECK(pool->count - pool->nfree == listed + (n - taken));
}

static void build_ports(uint8_t b0)
{
	static const uint16_t access_tag[NPORTS + 1] = {0, 10, 20, 10, 4094};
	for (uint16_t i = 1; i <= NPORTS; i++) {
		struct sw_port *p = &S.ports[i];
		memset(p, 0, sizeof(*p));
		unsigned mode = (b0 >> (2 * (i - 1))) & 3;
		if (mode == 3)
			continue;
		snprintf(p->name, sizeof(p->name), "p%u", i);
		p->ofport = i;
		if (mode == 1) {
			p->tag = access_tag[i];
		} else if (mode == 2) {
			p->trunk = true;
			p->trunks[0] |= 1ull << 0 | 1ull << 10 | 1ull << 20;
		}
	}
}

static void forward_burst(struct sw_bridge_ctx *br, struct vnet_pkt_pool *pool, uint16_t in_port,
			  struct vnet_pkt **pkts, unsigned n, uint64_t now)
{
	unsigned taken = sw_forward_burst(br, in_port, pkts, n, now, S.out);
	CHECK(taken == (n < SW_FWD_MAX_BURST ? n : SW_FWD_MAX_BURST));
	if (trace)
		fprintf(stderr, "burst of %u on port %u: %u outputs, %u dropped\n", n, in_port,
			S.out->n_ports, S.out->n_drop);
	check_ownership(pool, pkts, n, taken);
	sw_fwd_out_free(S.out);
	vnet_pkt_free_burst(pkts + taken, n - taken);
}

static void add_flows(struct reader *r, struct sw_flow_table *t)
{
	unsigned nflows = rd8(r) % (MAX_FLOWS + 1);
	for (unsigned i = 0; i < nflows; i++) {
		char text[256];
		unsigned len = rd8(r);
		unsigned k = 0;
		for (; k < len && r->n; k++)
			text[k] = (char)rd8(r);
		text[k] = '\0';
		struct sw_flow_spec spec;
		char err[256];
		if (sw_flow_spec_parse(text, SW_PARSE_FLOW, &spec, err, sizeof(err)) == 0)
			CHECK(sw_flow_table_add(t, &spec, NULL) == 0);
		else
			CHECK(err[0] != '\0'); /* a refusal says why */
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *t = getenv("FUZZ_PACKET_TRACE");
	trace = t && *t && *t != '0';
	vnet_log_set_level(VNET_LOG_ERROR);
	sw_rcu_init(&S.rcu);
	sw_emc_init(&S.emc);
	/* One EMC across inputs on purpose: flow-version generations must keep
	 * entries of a destroyed table from ever matching a new one. */
	S.out = sw_fwd_out_create(NULL);
	CHECK(S.out);
	S.ready = true;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!S.ready)
		LLVMFuzzerInitialize(NULL, NULL);
	struct reader r = {data, size};
	uint8_t b0 = rd8(&r), b1 = rd8(&r);
	static const unsigned pool_sizes[4] = {4, 16, 64, 256};
	uint16_t in_port = b1 & 7;

	struct vnet_pkt_pool pool;
	CHECK(vnet_pkt_pool_init(&pool, pool_sizes[(b1 >> 3) & 3], 0) == 0);
	S.out->pool = &pool;
	struct sw_fdb_config fc = {.max_entries = 16, .max_per_port = 4};
	struct sw_fdb *fdb = sw_fdb_create(&fc);
	struct sw_flow_table *flows = sw_flow_table_create(&S.rcu, 8);
	CHECK(fdb && flows);
	struct sw_bridge_ctx *br = calloc(1, sizeof(*br));
	CHECK(br);
	sw_bridge_ctx_init(br, fdb, flows);
	build_ports(b0);
	for (uint16_t i = 1; i <= NPORTS; i++)
		if (S.ports[i].ofport)
			CHECK(sw_bridge_ctx_set_port(br, i, &S.ports[i]) == 0);
	S.ports[0].ofport = in_port; /* remembered for check_output */
	add_flows(&r, flows);
	const struct sw_flow_version *ver = sw_flow_table_current(flows);

	struct vnet_pkt *burst[BURST_MAX];
	unsigned nb = 0, total = 0;
	uint64_t now = 1000 * SW_FDB_NS_PER_S;
	while (r.n && total < MAX_PKTS) {
		uint8_t ctl = rd8(&r);
		struct original *o = &S.orig[nb];
		memset(&o->vhdr, 0, sizeof(o->vhdr));
		if (ctl & 2) {
			uint8_t raw[sizeof(o->vhdr)];
			for (size_t i = 0; i < sizeof(raw); i++)
				raw[i] = rd8(&r);
			memcpy(&o->vhdr, raw, sizeof(raw));
		}
		size_t want = (ctl & 4) ? rd16(&r) : rd8(&r);
		if (want > FRAME_MAX)
			want = FRAME_MAX;
		size_t len = want < r.n ? want : r.n;
		/* An exact-size copy: the parsers reading one byte too far fault. */
		uint8_t *frame = malloc(len ? len : 1);
		CHECK(frame);
		memcpy(frame, r.p, len);
		r.p += len;
		r.n -= len;

		struct vnet_flow_key key;
		check_key(frame, len, in_port, &key);
		check_classify(ver, &key);
		check_frame_parsers(frame, len, ctl);

		struct vnet_pkt *p = vnet_pkt_alloc(&pool);
		if (p) {
			memcpy(p->data, frame, len);
			p->len = (uint32_t)len;
			p->vhdr = o->vhdr;
			p->in_port = (uint16_t)(TAG_BASE + nb);
			memcpy(o->bytes, frame, len);
			o->len = (uint32_t)len;
			burst[nb++] = p;
		}
		free(frame);
		total++;
		if (nb && ((ctl & 1) || nb == BURST_MAX || !p || !r.n)) {
			forward_burst(br, &pool, in_port, burst, nb, now);
			nb = 0;
			now += SW_FDB_NS_PER_S;
		}
	}
	if (nb)
		forward_burst(br, &pool, in_port, burst, nb, now);

	CHECK(pool.nfree == pool.count); /* nothing leaked, nothing freed twice */
	S.out->pool = NULL;
	vnet_pkt_pool_fini(&pool);
	free(br);
	sw_fdb_destroy(fdb);
	sw_flow_table_destroy(flows);
	sw_rcu_synchronize(&S.rcu); /* frees what table updates deferred */
	return 0;
}
