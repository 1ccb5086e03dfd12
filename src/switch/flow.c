/* flow.c — flow table, flow-spec parser/formatter, EMC, RCU; see flow.h. */
#include "switch/flow.h"
#include "switch/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vnet/frame.h"
#include "util/cycles.h"

/* ================================================================ RCU */

struct sw_rcu_cb {
	struct sw_rcu_cb *next;
	uint64_t epoch;
	void (*fn)(void *);
	void *arg;
};

int sw_rcu_init(struct sw_rcu *rcu)
{
	memset(rcu, 0, sizeof(*rcu));
	atomic_init(&rcu->epoch, 1);
	for (int i = 0; i < SW_RCU_MAX_READERS; i++)
		atomic_init(&rcu->readers[i], NULL);
	return pthread_mutex_init(&rcu->lock, NULL) ? -ENOMEM : 0;
}

void sw_rcu_fini(struct sw_rcu *rcu)
{
	struct sw_rcu_cb *cb = rcu->pending;
	rcu->pending = rcu->pending_tail = NULL;
	while (cb) {
		struct sw_rcu_cb *next = cb->next;
		cb->fn(cb->arg);
		free(cb);
		cb = next;
	}
	pthread_mutex_destroy(&rcu->lock);
}

int sw_rcu_register(struct sw_rcu *rcu, struct sw_rcu_reader *r)
{
	int rc = -ENOSPC;
	pthread_mutex_lock(&rcu->lock);
	for (int i = 0; i < SW_RCU_MAX_READERS; i++) {
		if (atomic_load(&rcu->readers[i]))
			continue;
		r->rcu = rcu;
		r->slot = i;
		atomic_store(&r->seen, atomic_load(&rcu->epoch));
		atomic_store(&rcu->readers[i], r);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&rcu->lock);
	return rc;
}

void sw_rcu_unregister(struct sw_rcu_reader *r)
{
	struct sw_rcu *rcu = r->rcu;
	if (!rcu)
		return;
	pthread_mutex_lock(&rcu->lock);
	atomic_store(&rcu->readers[r->slot], NULL);
	pthread_mutex_unlock(&rcu->lock);
	r->rcu = NULL;
}

void sw_rcu_offline(struct sw_rcu_reader *r)
{
	atomic_store(&r->seen, 0);
}

void sw_rcu_online(struct sw_rcu_reader *r)
{
	atomic_store(&r->seen, atomic_load(&r->rcu->epoch));
	atomic_thread_fence(memory_order_seq_cst);
}

/* Every online reader has quiesced at or after epoch e. */
static bool grace_passed(struct sw_rcu *rcu, uint64_t e)
{
	for (int i = 0; i < SW_RCU_MAX_READERS; i++) {
		struct sw_rcu_reader *r = atomic_load(&rcu->readers[i]);
		if (!r)
			continue;
		uint64_t s = atomic_load(&r->seen);
		if (s && s < e)
			return false;
	}
	return true;
}

static void wait_grace(struct sw_rcu *rcu, uint64_t e)
{
	for (unsigned spins = 0; !grace_passed(rcu, e); spins++) {
		if (spins < 64) {
			sched_yield();
		} else {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
}

void sw_rcu_defer(struct sw_rcu *rcu, void (*fn)(void *), void *arg)
{
	struct sw_rcu_cb *cb = malloc(sizeof(*cb));
	uint64_t e = atomic_fetch_add(&rcu->epoch, 1) + 1;
	if (!cb) {
		wait_grace(rcu, e);
		fn(arg);
		return;
	}
	cb->next = NULL;
	cb->epoch = e;
	cb->fn = fn;
	cb->arg = arg;
	pthread_mutex_lock(&rcu->lock);
	if (rcu->pending_tail)
		rcu->pending_tail->next = cb;
	else
		rcu->pending = cb;
	rcu->pending_tail = cb;
	pthread_mutex_unlock(&rcu->lock);
}

unsigned sw_rcu_poll(struct sw_rcu *rcu)
{
	struct sw_rcu_cb *ready = NULL, **rtail = &ready;
	pthread_mutex_lock(&rcu->lock);
	struct sw_rcu_cb **pp = &rcu->pending, *last = NULL;
	while (*pp) {
		struct sw_rcu_cb *cb = *pp;
		if (grace_passed(rcu, cb->epoch)) {
			*pp = cb->next;
			cb->next = NULL;
			*rtail = cb;
			rtail = &cb->next;
		} else {
			last = cb;
			pp = &cb->next;
		}
	}
	rcu->pending_tail = last;
	pthread_mutex_unlock(&rcu->lock);
	unsigned n = 0;
	while (ready) {
		struct sw_rcu_cb *next = ready->next;
		ready->fn(ready->arg);
		free(ready);
		ready = next;
		n++;
	}
	return n;
}

void sw_rcu_synchronize(struct sw_rcu *rcu)
{
	uint64_t e = atomic_fetch_add(&rcu->epoch, 1) + 1;
	wait_grace(rcu, e);
	sw_rcu_poll(rcu);
}

/* ============================================================ matches */

bool sw_match_matches(const struct sw_match *m, const struct vnet_flow_key *k)
{
	uint32_t w[VNET_FLOW_KEY_WORDS];
	memcpy(w, k, sizeof(w));
	for (size_t i = 0; i < VNET_FLOW_KEY_WORDS; i++)
		if ((w[i] & m->mw[i]) != m->kw[i])
			return false;
	return true;
}

bool sw_match_covers(const struct sw_match *g, const struct sw_match *s)
{
	for (size_t i = 0; i < VNET_FLOW_KEY_WORDS; i++) {
		if ((g->mw[i] & s->mw[i]) != g->mw[i])
			return false; /* g constrains bits s leaves free */
		if ((s->kw[i] & g->mw[i]) != g->kw[i])
			return false;
	}
	return true;
}

bool sw_match_equal(const struct sw_match *a, const struct sw_match *b)
{
	return memcmp(a->kw, b->kw, sizeof(a->kw)) == 0 && memcmp(a->mw, b->mw, sizeof(a->mw)) == 0;
}

/* ============================================================= parser */

enum prereq {
	P_NONE,
	P_IP_ARP,   /* nw_src, nw_dst */
	P_ARP,      /* arp_spa, arp_tpa, arp_op */
	P_IP6,      /* ipv6_src, ipv6_dst */
	P_NWPROTO,  /* nw_proto: ip, ipv6 or arp */
	P_IP_ANY,   /* nw_tos */
	P_L4,       /* tp_src, tp_dst */
	P_ICMP,     /* icmp_type, icmp_code */
};

enum ftype { F_PORT, F_MAC, F_VLAN, F_PCP, F_ETHTYPE, F_IP4, F_IP6, F_U8, F_TOS, F_TP, F_ICMP };

#define KOFF(f) offsetof(struct vnet_flow_key, f)

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	enum prereq pre;
};

static const struct field fields[] = {
	{"in_port", F_PORT, KOFF(in_port), P_NONE},
	{"dl_src", F_MAC, KOFF(dl_src), P_NONE},
	{"eth_src", F_MAC, KOFF(dl_src), P_NONE},
	{"dl_dst", F_MAC, KOFF(dl_dst), P_NONE},
	{"eth_dst", F_MAC, KOFF(dl_dst), P_NONE},
	{"dl_vlan", F_VLAN, KOFF(vlan_tci), P_NONE},
	{"dl_vlan_pcp", F_PCP, KOFF(vlan_tci), P_NONE},
	{"dl_type", F_ETHTYPE, KOFF(dl_type), P_NONE},
	{"eth_type", F_ETHTYPE, KOFF(dl_type), P_NONE},
	{"nw_src", F_IP4, KOFF(nw.v4.src), P_IP_ARP},
	{"nw_dst", F_IP4, KOFF(nw.v4.dst), P_IP_ARP},
	{"arp_spa", F_IP4, KOFF(nw.v4.src), P_ARP},
	{"arp_tpa", F_IP4, KOFF(nw.v4.dst), P_ARP},
	{"ipv6_src", F_IP6, KOFF(nw.v6.src), P_IP6},
	{"ipv6_dst", F_IP6, KOFF(nw.v6.dst), P_IP6},
	{"nw_proto", F_U8, KOFF(nw_proto), P_NWPROTO},
	{"ip_proto", F_U8, KOFF(nw_proto), P_NWPROTO},
	{"arp_op", F_U8, KOFF(nw_proto), P_ARP},
	{"nw_tos", F_TOS, KOFF(nw_tos), P_IP_ANY},
	{"tp_src", F_TP, KOFF(tp_src), P_L4},
	{"tp_dst", F_TP, KOFF(tp_dst), P_L4},
	{"icmp_type", F_ICMP, KOFF(tp_src), P_ICMP},
	{"icmp_code", F_ICMP, KOFF(tp_dst), P_ICMP},
};

struct shorthand {
	const char *name;
	uint16_t dl_type;
	int nw_proto; /* -1: none */
};

static const struct shorthand shorthands[] = {
	{"ip", VNET_ETH_P_IPV4, -1},
	{"ipv6", VNET_ETH_P_IPV6, -1},
	{"arp", VNET_ETH_P_ARP, -1},
	{"icmp", VNET_ETH_P_IPV4, VNET_IPPROTO_ICMP},
	{"tcp", VNET_ETH_P_IPV4, VNET_IPPROTO_TCP},
	{"udp", VNET_ETH_P_IPV4, VNET_IPPROTO_UDP},
	{"sctp", VNET_ETH_P_IPV4, VNET_IPPROTO_SCTP},
	{"icmp6", VNET_ETH_P_IPV6, VNET_IPPROTO_ICMPV6},
	{"tcp6", VNET_ETH_P_IPV6, VNET_IPPROTO_TCP},
	{"udp6", VNET_ETH_P_IPV6, VNET_IPPROTO_UDP},
	{"sctp6", VNET_ETH_P_IPV6, VNET_IPPROTO_SCTP},
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Unsigned number (decimal, 0x hex) ≤ max, whole string. A leading zero
 * is decimal, as in ovs-ofctl (and as the saved configuration reads it). */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	if (!*s || !isdigit((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	unsigned long v = strtoul(s, &end, hex ? 16 : 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool parse_mac_strict(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int h = hexval(*s);
		if (h < 0)
			return false;
		unsigned v = (unsigned)h;
		s++;
		if ((h = hexval(*s)) >= 0) {
			v = v * 16 + (unsigned)h;
			s++;
		}
		mac[i] = (uint8_t)v;
		if (i < 5 && *s++ != ':')
			return false;
	}
	return *s == '\0';
}

static uint32_t prefix_mask32(unsigned len)
{
	return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

/* Merges (val, mask) of n bytes at off into the spec; false on conflict. */
static bool merge(struct sw_match *m, size_t off, const void *val, const void *mask, size_t n)
{
	uint8_t *k = (uint8_t *)&m->key + off, *mk = (uint8_t *)&m->mask + off;
	const uint8_t *v = val, *vm = mask;
	for (size_t i = 0; i < n; i++) {
		uint8_t common = mk[i] & vm[i];
		if ((k[i] & common) != (v[i] & vm[i] & common))
			return false;
	}
	for (size_t i = 0; i < n; i++) {
		k[i] |= v[i] & vm[i];
		mk[i] |= vm[i];
	}
	return true;
}

static int parse_field(struct sw_match *m, const struct field *f, const char *val, char *err,
		       size_t errlen)
{
	char buf[128];
	if (strlen(val) >= sizeof(buf))
		return sw_fail(err, errlen, "bad value for %s: '%.40s...'", f->name, val);
	strcpy(buf, val);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	unsigned long u = 0, um = 0;
	bool ok = true;
	switch (f->type) {
	case F_PORT: {
		ok = !slash && parse_uint(buf, SW_FLOW_OFPORT_MAX, &u) && u > 0;
		uint16_t v = (uint16_t)u, mk = 0xffff;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	case F_MAC: {
		uint8_t v[6], mk[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
		ok = parse_mac_strict(buf, v) && (!slash || parse_mac_strict(slash, mk));
		if (ok && !merge(m, f->off, v, mk, 6))
			goto conflict;
		break;
	}
	case F_VLAN: {
		ok = !slash && parse_uint(buf, 0xffff, &u) && (u <= 4095 || u == 0xffff);
		uint16_t v = u == 0xffff ? 0 : (uint16_t)(VNET_KEY_VLAN_PRESENT | u);
		uint16_t mk = u == 0xffff ? 0xffff : 0x1fff;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	case F_PCP: {
		ok = !slash && parse_uint(buf, 7, &u);
		uint16_t v = (uint16_t)(VNET_KEY_VLAN_PRESENT | u << 13), mk = 0xf000;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	case F_ETHTYPE: {
		ok = !slash && parse_uint(buf, 0xffff, &u);
		uint16_t v = (uint16_t)u, mk = 0xffff;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	case F_IP4: {
		uint32_t v, mk = 0xffffffffu;
		ok = vnet_parse_ipv4(buf, &v) == 0;
		if (ok && slash) {
			if (strchr(slash, '.'))
				ok = vnet_parse_ipv4(slash, &mk) == 0;
			else if ((ok = parse_uint(slash, 32, &um)))
				mk = prefix_mask32((unsigned)um);
		}
		v &= mk;
		if (ok && !merge(m, f->off, &v, &mk, 4))
			goto conflict;
		break;
	}
	case F_IP6: {
		uint8_t v[16], mk[16];
		ok = inet_pton(AF_INET6, buf, v) == 1;
		um = 128;
		if (ok && slash)
			ok = parse_uint(slash, 128, &um);
		for (unsigned i = 0; i < 16; i++) {
			unsigned bits = um > i * 8 ? (unsigned)um - i * 8 : 0;
			mk[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
			v[i] &= mk[i];
		}
		if (ok && !merge(m, f->off, v, mk, 16))
			goto conflict;
		break;
	}
	case F_U8: {
		ok = !slash && parse_uint(buf, 0xff, &u);
		uint8_t v = (uint8_t)u, mk = 0xff;
		if (ok && !merge(m, f->off, &v, &mk, 1))
			goto conflict;
		break;
	}
	case F_TOS: {
		/* DSCP bits only, as OVS's nw_tos (ECN bits must be 0). */
		ok = !slash && parse_uint(buf, 0xff, &u) && !(u & 3);
		uint8_t v = (uint8_t)u, mk = 0xfc;
		if (ok && !merge(m, f->off, &v, &mk, 1))
			goto conflict;
		break;
	}
	case F_TP: {
		um = 0xffff;
		ok = parse_uint(buf, 0xffff, &u) && (!slash || parse_uint(slash, 0xffff, &um));
		uint16_t v = (uint16_t)(u & um), mk = (uint16_t)um;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	case F_ICMP: {
		ok = !slash && parse_uint(buf, 0xff, &u);
		uint16_t v = (uint16_t)u, mk = 0xffff;
		if (ok && !merge(m, f->off, &v, &mk, 2))
			goto conflict;
		break;
	}
	}
	if (!ok)
		return sw_fail(err, errlen, "bad value for %s: '%s'", f->name, val);
	return 0;
conflict:
	return sw_fail(err, errlen, "conflicting values for %s", f->name);
}

static int parse_actions(struct sw_flow_spec *sp, const char *s, char *err, size_t errlen)
{
	sp->n_actions = 0;
	bool drop = false;
	while (*s) {
		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		char tok[128];
		size_t n = strcspn(s, ", \t\r\n");
		if (n >= sizeof(tok))
			return sw_fail(err, errlen, "unknown action '%.40s...'", s);
		memcpy(tok, s, n);
		tok[n] = '\0';
		s += n;
		char *arg = strchr(tok, ':');
		if (arg)
			*arg++ = '\0';
		if (sp->n_actions == SW_FLOW_MAX_ACTIONS)
			return sw_fail(err, errlen, "too many actions (max %d)", SW_FLOW_MAX_ACTIONS);
		struct sw_action *a = &sp->actions[sp->n_actions];
		unsigned long u;
		if (!strcasecmp(tok, "drop") && !arg) {
			drop = true;
			continue;
		} else if (!strcasecmp(tok, "normal") && !arg) {
			a->type = SW_ACT_NORMAL;
			a->arg = 0;
		} else if ((!strcasecmp(tok, "flood") || !strcasecmp(tok, "all")) && !arg) {
			a->type = SW_ACT_FLOOD;
			a->arg = 0;
		} else if ((!strcmp(tok, "strip_vlan") || !strcmp(tok, "pop_vlan")) && !arg) {
			a->type = SW_ACT_STRIP_VLAN;
			a->arg = 0;
		} else if (!strcmp(tok, "output")) {
			if (!arg || !parse_uint(arg, SW_FLOW_OFPORT_MAX, &u) || u == 0)
				return sw_fail(err, errlen, "bad value for output: '%s'", arg ? arg : "");
			a->type = SW_ACT_OUTPUT;
			a->arg = (uint16_t)u;
		} else if (!strcmp(tok, "mod_vlan_vid")) {
			if (!arg || !parse_uint(arg, 4095, &u))
				return sw_fail(err, errlen, "bad value for mod_vlan_vid: '%s'",
					    arg ? arg : "");
			a->type = SW_ACT_MOD_VLAN_VID;
			a->arg = (uint16_t)u;
		} else if (!arg && isdigit((unsigned char)tok[0])) {
			if (!parse_uint(tok, SW_FLOW_OFPORT_MAX, &u) || u == 0)
				return sw_fail(err, errlen, "bad value for output: '%s'", tok);
			a->type = SW_ACT_OUTPUT;
			a->arg = (uint16_t)u;
		} else {
			if (arg)
				arg[-1] = ':';
			return sw_fail(err, errlen, "unknown action '%s'", tok);
		}
		sp->n_actions++;
	}
	if (drop && sp->n_actions)
		return sw_fail(err, errlen, "drop must be the only action");
	return 0;
}

static const char *prereq_text(enum prereq p)
{
	switch (p) {
	case P_IP_ARP: return "ip or arp";
	case P_ARP: return "arp";
	case P_IP6: return "ipv6";
	case P_NWPROTO: return "ip, ipv6 or arp";
	case P_IP_ANY: return "ip or ipv6";
	case P_L4: return "tcp, udp or sctp (or their ipv6 forms)";
	case P_ICMP: return "icmp or icmp6";
	case P_NONE: break;
	}
	return "";
}

static bool prereq_met(const struct sw_match *m, enum prereq p)
{
	int type = m->mask.dl_type == 0xffff ? m->key.dl_type : -1;
	int proto = m->mask.nw_proto == 0xff ? m->key.nw_proto : -1;
	bool ip4 = type == VNET_ETH_P_IPV4, ip6 = type == VNET_ETH_P_IPV6,
	     arp = type == VNET_ETH_P_ARP;
	switch (p) {
	case P_NONE: return true;
	case P_IP_ARP: return ip4 || arp;
	case P_ARP: return arp;
	case P_IP6: return ip6;
	case P_NWPROTO: return ip4 || ip6 || arp;
	case P_IP_ANY: return ip4 || ip6;
	case P_L4:
		return (ip4 || ip6) && (proto == VNET_IPPROTO_TCP || proto == VNET_IPPROTO_UDP ||
					proto == VNET_IPPROTO_SCTP);
	case P_ICMP:
		return (ip4 && proto == VNET_IPPROTO_ICMP) || (ip6 && proto == VNET_IPPROTO_ICMPV6);
	}
	return false;
}

int sw_flow_spec_parse(const char *s, enum sw_flow_parse_mode mode, struct sw_flow_spec *sp,
		  char *err, size_t errlen)
{
	memset(sp, 0, sizeof(*sp));
	sp->priority = SW_FLOW_DEFAULT_PRIORITY;
	if (err && errlen)
		err[0] = '\0';
	const struct field *used[32];
	unsigned nused = 0;
	for (;;) {
		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		char name[64];
		size_t n = strcspn(s, "=, \t\r\n");
		if (n >= sizeof(name))
			return sw_fail(err, errlen, "unknown field '%.40s...'", s);
		memcpy(name, s, n);
		name[n] = '\0';
		s += n;
		if (*s != '=') {
			/* A keyword: protocol shorthand. */
			const struct shorthand *sh = NULL;
			for (size_t i = 0; i < ARRAY_SIZE(shorthands); i++)
				if (!strcmp(name, shorthands[i].name))
					sh = &shorthands[i];
			if (!sh) {
				if (!strcmp(name, "actions"))
					return sw_fail(err, errlen, "missing '=' after actions");
				return sw_fail(err, errlen, "unknown field '%s'", name);
			}
			uint16_t t = sh->dl_type, tm = 0xffff;
			uint8_t p = (uint8_t)sh->nw_proto, pm = 0xff;
			if (!merge(&sp->match, KOFF(dl_type), &t, &tm, 2) ||
			    (sh->nw_proto >= 0 && !merge(&sp->match, KOFF(nw_proto), &p, &pm, 1)))
				return sw_fail(err, errlen, "conflicting values for %s", name);
			continue;
		}
		s++; /* '=' */
		if (!strcmp(name, "actions")) {
			if (mode == SW_PARSE_MATCH)
				return sw_fail(err, errlen, "actions not allowed here");
			if (parse_actions(sp, s, err, errlen))
				return -1;
			sp->has_actions = true;
			break;
		}
		char val[160];
		n = strcspn(s, ", \t\r\n");
		if (n >= sizeof(val))
			return sw_fail(err, errlen, "bad value for %s: '%.40s...'", name, s);
		memcpy(val, s, n);
		val[n] = '\0';
		s += n;
		if (!strcmp(name, "priority")) {
			unsigned long u;
			if (!parse_uint(val, 0xffff, &u))
				return sw_fail(err, errlen, "bad value for priority: '%s'", val);
			sp->priority = (uint16_t)u;
			sp->has_priority = true;
			continue;
		}
		if (!strcmp(name, "table")) {
			unsigned long u;
			if (!parse_uint(val, 0, &u))
				return sw_fail(err, errlen, "bad value for table: '%s' (only table 0)", val);
			continue;
		}
		const struct field *f = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			if (!strcmp(name, fields[i].name))
				f = &fields[i];
		if (!f)
			return sw_fail(err, errlen, "unknown field '%s'", name);
		if (parse_field(&sp->match, f, val, err, errlen))
			return -1;
		if (nused < ARRAY_SIZE(used))
			used[nused++] = f;
	}
	for (unsigned i = 0; i < nused; i++)
		if (!prereq_met(&sp->match, used[i]->pre))
			return sw_fail(err, errlen, "%s requires %s", used[i]->name,
				    prereq_text(used[i]->pre));
	if (mode == SW_PARSE_FLOW && !sp->has_actions)
		return sw_fail(err, errlen, "missing actions");
	return 0;
}

/* ========================================================= formatting */

struct sbuf {
	char *buf;
	size_t len, pos; /* pos counts what would have been written */
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *dst = b->pos < b->len ? b->buf + b->pos : NULL;
	size_t room = b->pos < b->len ? b->len - b->pos : 0;
	int n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->pos += (size_t)n;
}

/* Field separator: a comma unless first. */
static void sb_sep(struct sbuf *b, bool *first)
{
	if (!*first)
		sb_printf(b, ",");
	*first = false;
}

static void fmt_mac(struct sbuf *b, const uint8_t *m)
{
	sb_printf(b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void fmt_ip4(struct sbuf *b, uint32_t ip)
{
	sb_printf(b, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

static void fmt_ip4_masked(struct sbuf *b, uint32_t v, uint32_t m)
{
	fmt_ip4(b, v);
	if (m == 0xffffffffu)
		return;
	unsigned len = 0;
	while (len < 32 && (m & (0x80000000u >> len)))
		len++;
	if (prefix_mask32(len) == m) {
		sb_printf(b, "/%u", len);
	} else {
		sb_printf(b, "/");
		fmt_ip4(b, m);
	}
}

static void fmt_ip6_masked(struct sbuf *b, const uint8_t *v, const uint8_t *m)
{
	char s[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, v, s, sizeof(s));
	sb_printf(b, "%s", s);
	unsigned len = 0;
	for (unsigned i = 0; i < 128 && (m[i / 8] & (0x80 >> (i % 8))); i++)
		len++;
	if (len < 128)
		sb_printf(b, "/%u", len);
}

static bool all_ones(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0xff)
			return false;
	return true;
}

static bool any_set(const void *p, size_t n)
{
	const uint8_t *q = p;
	for (size_t i = 0; i < n; i++)
		if (q[i])
			return true;
	return false;
}

size_t sw_match_format(const struct sw_match *m, uint16_t priority, char *buf, size_t len)
{
	struct sbuf b = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	const struct vnet_flow_key *k = &m->key, *mk = &m->mask;
	bool first = true;
	if (priority != SW_FLOW_DEFAULT_PRIORITY) {
		sb_sep(&b, &first);
		sb_printf(&b, "priority=%u", priority);
	}
	int type = mk->dl_type == 0xffff ? k->dl_type : -1;
	bool proto_done = false, type_done = false;
	bool icmp = false, arp = type == VNET_ETH_P_ARP;
	if (type >= 0) {
		const char *name = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(shorthands); i++) {
			const struct shorthand *sh = &shorthands[i];
			if (sh->dl_type != type)
				continue;
			if (sh->nw_proto < 0 && !name)
				name = sh->name;
			else if (sh->nw_proto >= 0 && mk->nw_proto == 0xff && k->nw_proto == sh->nw_proto) {
				name = sh->name;
				proto_done = true;
				icmp = sh->nw_proto == VNET_IPPROTO_ICMP ||
				       sh->nw_proto == VNET_IPPROTO_ICMPV6;
			}
		}
		if (name) {
			sb_sep(&b, &first);
			sb_printf(&b, "%s", name);
			type_done = true;
		}
	}
	if (mk->in_port) {
		sb_sep(&b, &first);
		sb_printf(&b, "in_port=%u", k->in_port);
	}
	if (mk->vlan_tci == 0xffff && k->vlan_tci == 0) {
		sb_sep(&b, &first);
		sb_printf(&b, "dl_vlan=0xffff");
	} else {
		if (mk->vlan_tci & 0x0fff) {
			sb_sep(&b, &first);
			sb_printf(&b, "dl_vlan=%u", VNET_KEY_VLAN_VID(k->vlan_tci));
		}
		if (mk->vlan_tci & 0xe000) {
			sb_sep(&b, &first);
			sb_printf(&b, "dl_vlan_pcp=%u", VNET_KEY_VLAN_PCP(k->vlan_tci));
		}
	}
	const struct {
		const char *name;
		const uint8_t *v, *m;
	} macs[] = {{"dl_src", k->dl_src, mk->dl_src}, {"dl_dst", k->dl_dst, mk->dl_dst}};
	for (size_t i = 0; i < 2; i++) {
		if (!any_set(macs[i].m, 6))
			continue;
		sb_sep(&b, &first);
		sb_printf(&b, "%s=", macs[i].name);
		fmt_mac(&b, macs[i].v);
		if (!all_ones(macs[i].m, 6)) {
			sb_printf(&b, "/");
			fmt_mac(&b, macs[i].m);
		}
	}
	if (mk->dl_type && !type_done) {
		sb_sep(&b, &first);
		sb_printf(&b, "dl_type=0x%04x", k->dl_type);
	}
	if (type == VNET_ETH_P_IPV6) {
		if (any_set(mk->nw.v6.src, 16)) {
			sb_sep(&b, &first);
			sb_printf(&b, "ipv6_src=");
			fmt_ip6_masked(&b, k->nw.v6.src, mk->nw.v6.src);
		}
		if (any_set(mk->nw.v6.dst, 16)) {
			sb_sep(&b, &first);
			sb_printf(&b, "ipv6_dst=");
			fmt_ip6_masked(&b, k->nw.v6.dst, mk->nw.v6.dst);
		}
	} else {
		if (mk->nw.v4.src) {
			sb_sep(&b, &first);
			sb_printf(&b, "%s=", arp ? "arp_spa" : "nw_src");
			fmt_ip4_masked(&b, k->nw.v4.src, mk->nw.v4.src);
		}
		if (mk->nw.v4.dst) {
			sb_sep(&b, &first);
			sb_printf(&b, "%s=", arp ? "arp_tpa" : "nw_dst");
			fmt_ip4_masked(&b, k->nw.v4.dst, mk->nw.v4.dst);
		}
	}
	if (mk->nw_proto && !proto_done) {
		sb_sep(&b, &first);
		sb_printf(&b, "%s=%u", arp ? "arp_op" : "nw_proto", k->nw_proto);
	}
	if (mk->nw_tos) {
		sb_sep(&b, &first);
		sb_printf(&b, "nw_tos=%u", k->nw_tos);
	}
	const struct {
		const char *name, *icmp_name;
		uint16_t v, m;
	} tps[] = {{"tp_src", "icmp_type", k->tp_src, mk->tp_src},
		   {"tp_dst", "icmp_code", k->tp_dst, mk->tp_dst}};
	for (size_t i = 0; i < 2; i++) {
		if (!tps[i].m)
			continue;
		sb_sep(&b, &first);
		if (icmp)
			sb_printf(&b, "%s=%u", tps[i].icmp_name, tps[i].v);
		else if (tps[i].m == 0xffff)
			sb_printf(&b, "%s=%u", tps[i].name, tps[i].v);
		else
			sb_printf(&b, "%s=0x%x/0x%x", tps[i].name, tps[i].v, tps[i].m);
	}
	return b.pos;
}

size_t sw_actions_format(const struct sw_action *a, unsigned n, char *buf, size_t len)
{
	struct sbuf b = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	if (n == 0)
		sb_printf(&b, "drop");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			sb_printf(&b, ",");
		switch (a[i].type) {
		case SW_ACT_OUTPUT: sb_printf(&b, "output:%u", a[i].arg); break;
		case SW_ACT_NORMAL: sb_printf(&b, "NORMAL"); break;
		case SW_ACT_FLOOD: sb_printf(&b, "FLOOD"); break;
		case SW_ACT_MOD_VLAN_VID: sb_printf(&b, "mod_vlan_vid:%u", a[i].arg); break;
		case SW_ACT_STRIP_VLAN: sb_printf(&b, "strip_vlan"); break;
		default: sb_printf(&b, "?"); break;
		}
	}
	return b.pos;
}

size_t sw_flow_spec_format(const struct sw_flow_spec *sp, char *buf, size_t len)
{
	char m[512], a[256];
	size_t ml = sw_match_format(&sp->match, sp->priority, m, sizeof(m));
	sw_actions_format(sp->actions, sp->n_actions, a, sizeof(a));
	return (size_t)snprintf(buf, len, "%s%sactions=%s", m, ml ? "," : "", a);
}

size_t sw_flow_dump_format(const struct sw_flow *f, uint64_t now_ns, char *buf, size_t len)
{
	char m[512], a[256];
	size_t ml = sw_match_format(&f->match, f->priority, m, sizeof(m));
	sw_actions_format(f->actions, f->n_actions, a, sizeof(a));
	uint64_t d = now_ns > f->created_ns ? now_ns - f->created_ns : 0;
	return (size_t)snprintf(buf, len,
				"duration=%" PRIu64 ".%03us, table=0, n_packets=%" PRIu64
				", n_bytes=%" PRIu64 ", %s%sactions=%s",
				d / 1000000000u, (unsigned)(d / 1000000u % 1000u),
				atomic_load_explicit(&f->n_packets, memory_order_relaxed),
				atomic_load_explicit(&f->n_bytes, memory_order_relaxed), m,
				ml ? " " : "", a);
}

/* ============================================================= tables */

struct sw_flow_table {
	_Atomic(struct sw_flow_version *) cur;
	struct sw_rcu *rcu;
	pthread_mutex_t lock; /* writers */
	uint64_t next_seq;
	unsigned max_flows;
};

static _Atomic uint64_t gen_counter;

static struct sw_flow_version *version_alloc(unsigned n)
{
	struct sw_flow_version *v = malloc(sizeof(*v) + (size_t)(n ? n : 1) * sizeof(v->flows[0]));
	if (v) {
		v->gen = atomic_fetch_add(&gen_counter, 1) + 1;
		v->n = n;
	}
	return v;
}

struct retired {
	struct sw_flow_version *v;
	unsigned n;
	struct sw_flow *dead[];
};

static void retired_free(void *arg)
{
	struct retired *r = arg;
	for (unsigned i = 0; i < r->n; i++)
		free(r->dead[i]);
	free(r->v);
	free(r);
}


struct sw_flow_table *sw_flow_table_create(struct sw_rcu *rcu, unsigned max_flows)
{
	struct sw_flow_table *t = calloc(1, sizeof(*t));
	struct sw_flow_version *v = version_alloc(0);
	if (!t || !v || pthread_mutex_init(&t->lock, NULL)) {
		free(t);
		free(v);
		return NULL;
	}
	t->rcu = rcu;
	t->max_flows = max_flows ? max_flows : SW_FLOW_TABLE_DEFAULT_MAX;
	atomic_init(&t->cur, v);
	return t;
}

void sw_flow_table_destroy(struct sw_flow_table *t)
{
	if (!t)
		return;
	struct sw_flow_version *v = atomic_load(&t->cur);
	for (unsigned i = 0; i < v->n; i++)
		free(v->flows[i]);
	free(v);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const struct sw_flow_version *sw_flow_table_current(struct sw_flow_table *t)
{
	return atomic_load_explicit(&t->cur, memory_order_acquire);
}

/* Publishes nv; the old version and `dead` flows are freed after a grace
 * period. Consumes dead[] (copied). Lock held. */
static void publish(struct sw_flow_table *t, struct sw_flow_version *nv, struct sw_flow **dead,
		    unsigned ndead)
{
	struct sw_flow_version *old = atomic_load(&t->cur);
	atomic_store(&t->cur, nv);
	struct retired *r = malloc(sizeof(*r) + (size_t)ndead * sizeof(r->dead[0]));
	if (!r) {
		/* Out of memory: wait for readers, then free in place. */
		sw_rcu_synchronize(t->rcu);
		for (unsigned i = 0; i < ndead; i++)
			free(dead[i]);
		free(old);
	} else {
		r->v = old;
		r->n = ndead;
		if (ndead)
			memcpy(r->dead, dead, (size_t)ndead * sizeof(dead[0]));
		sw_rcu_defer(t->rcu, retired_free, r);
	}
	sw_rcu_poll(t->rcu);
}

static struct sw_flow *flow_new(const struct sw_flow_spec *sp, uint64_t seq)
{
	struct sw_flow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->match = sp->match;
	for (size_t i = 0; i < VNET_FLOW_KEY_WORDS; i++) {
		f->match.kw[i] &= f->match.mw[i];
		if (f->match.mw[i])
			f->widx[f->n_words++] = (uint8_t)i;
	}
	f->priority = sp->priority;
	f->n_actions = (uint8_t)sp->n_actions;
	memcpy(f->actions, sp->actions, sp->n_actions * sizeof(sp->actions[0]));
	for (unsigned i = 0; i < sp->n_actions; i++)
		if (sp->actions[i].type == SW_ACT_NORMAL)
			f->has_normal = true;
	f->seq = seq;
	f->created_ns = vnet_mono_ns();
	atomic_init(&f->n_packets, 0);
	atomic_init(&f->n_bytes, 0);
	return f;
}

int sw_flow_table_add(struct sw_flow_table *t, const struct sw_flow_spec *sp, bool *replaced)
{
	if (replaced)
		*replaced = false;
	if (sp->n_actions > SW_FLOW_MAX_ACTIONS)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	struct sw_flow_version *old = atomic_load(&t->cur);
	struct sw_flow *f = flow_new(sp, t->next_seq++);
	struct sw_match norm = f ? f->match : sp->match;
	int rc = 0;
	unsigned same = old->n;
	for (unsigned i = 0; i < old->n; i++)
		if (old->flows[i]->priority == sp->priority &&
		    sw_match_equal(&old->flows[i]->match, &norm)) {
			same = i;
			break;
		}
	struct sw_flow_version *nv = NULL;
	if (!f) {
		rc = -ENOMEM;
	} else if (same == old->n && old->n >= t->max_flows) {
		rc = -ENOSPC;
	} else if (!(nv = version_alloc(old->n + (same == old->n)))) {
		rc = -ENOMEM;
	}
	if (rc) {
		free(f);
		pthread_mutex_unlock(&t->lock);
		return rc;
	}
	if (same < old->n) {
		/* Replace in place: same position in the order. */
		f->seq = old->flows[same]->seq;
		memcpy(nv->flows, old->flows, old->n * sizeof(old->flows[0]));
		struct sw_flow *dead = old->flows[same];
		nv->flows[same] = f;
		publish(t, nv, &dead, 1);
		if (replaced)
			*replaced = true;
	} else {
		unsigned pos = 0;
		while (pos < old->n && old->flows[pos]->priority >= sp->priority)
			pos++;
		memcpy(nv->flows, old->flows, pos * sizeof(old->flows[0]));
		nv->flows[pos] = f;
		memcpy(nv->flows + pos + 1, old->flows + pos, (old->n - pos) * sizeof(old->flows[0]));
		publish(t, nv, NULL, 0);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static bool del_selects(const struct sw_flow *f, const struct sw_match *m, bool strict,
			uint16_t priority)
{
	if (!m)
		return !strict || priority == f->priority;
	if (strict)
		return f->priority == priority && sw_match_equal(&f->match, m);
	return sw_match_covers(m, &f->match);
}

unsigned sw_flow_table_del(struct sw_flow_table *t, const struct sw_match *m, bool strict,
			   uint16_t priority)
{
	struct sw_match norm;
	if (m) {
		norm = *m;
		for (size_t i = 0; i < VNET_FLOW_KEY_WORDS; i++)
			norm.kw[i] &= norm.mw[i];
		m = &norm;
	}
	pthread_mutex_lock(&t->lock);
	struct sw_flow_version *old = atomic_load(&t->cur);
	unsigned ndead = 0;
	for (unsigned i = 0; i < old->n; i++)
		ndead += del_selects(old->flows[i], m, strict, priority);
	if (ndead) {
		struct sw_flow_version *nv = version_alloc(old->n - ndead);
		struct sw_flow **dead = malloc(ndead * sizeof(*dead));
		if (!nv || !dead) {
			free(nv);
			free(dead);
			pthread_mutex_unlock(&t->lock);
			return 0;
		}
		unsigned k = 0, d = 0;
		for (unsigned i = 0; i < old->n; i++) {
			if (del_selects(old->flows[i], m, strict, priority))
				dead[d++] = old->flows[i];
			else
				nv->flows[k++] = old->flows[i];
		}
		publish(t, nv, dead, ndead);
		free(dead);
	}
	pthread_mutex_unlock(&t->lock);
	return ndead;
}

unsigned sw_flow_table_count(struct sw_flow_table *t)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = atomic_load(&t->cur)->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned sw_flow_table_foreach(struct sw_flow_table *t, const struct sw_match *m,
			       void (*fn)(const struct sw_flow *f, void *arg), void *arg)
{
	unsigned n = 0;
	pthread_mutex_lock(&t->lock);
	const struct sw_flow_version *v = atomic_load(&t->cur);
	for (unsigned i = 0; i < v->n; i++) {
		if (m && !sw_match_covers(m, &v->flows[i]->match))
			continue;
		fn(v->flows[i], arg);
		n++;
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct sw_flow *sw_flow_classify(const struct sw_flow_version *v, const struct vnet_flow_key *k)
{
	uint32_t w[VNET_FLOW_KEY_WORDS];
	memcpy(w, k, sizeof(w));
	for (unsigned i = 0; i < v->n; i++) {
		struct sw_flow *f = v->flows[i];
		unsigned j = 0;
		for (; j < f->n_words; j++) {
			unsigned x = f->widx[j];
			if ((w[x] & f->match.mw[x]) != f->match.kw[x])
				break;
		}
		if (j == f->n_words)
			return f;
	}
	return NULL;
}

/* ================================================================ EMC */

void sw_emc_init(struct sw_emc *emc)
{
	memset(emc, 0, sizeof(*emc));
}

struct sw_flow *sw_emc_lookup(struct sw_emc *emc, const struct sw_flow_version *v,
			      const struct vnet_flow_key *k, uint32_t hash)
{
	struct sw_emc_entry *e1 = &emc->e[hash & (SW_EMC_ENTRIES - 1)];
	struct sw_emc_entry *e2 = &emc->e[(hash >> 16) & (SW_EMC_ENTRIES - 1)];
	if (e1->gen == v->gen && e1->hash == hash && !memcmp(&e1->key, k, sizeof(*k))) {
		emc->hits++;
		return e1->flow;
	}
	if (e2->gen == v->gen && e2->hash == hash && !memcmp(&e2->key, k, sizeof(*k))) {
		emc->hits++;
		return e2->flow;
	}
	emc->misses++;
	struct sw_flow *f = sw_flow_classify(v, k);
	struct sw_emc_entry *e;
	if (e1->gen != v->gen)
		e = e1;
	else if (e2->gen != v->gen)
		e = e2;
	else
		e = (hash >> 31) ? e2 : e1;
	e->key = *k;
	e->hash = hash;
	e->flow = f;
	e->gen = v->gen;
	return f;
}
