/* config.c — vnet-switchd's configuration model (see config.h). */
#include "switch/config.h"
#include "switch/flow.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int sw_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *sw_shown(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < len; p++) {
		if (p - (const unsigned char *)s >= 40) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (*p >= 0x20 && *p < 0x7f)
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return buf;
}

static const char *const port_types[] = {"vhost-user", "tap", "afpacket", "internal", "null"};

/* ---- names, VLANs, options ---- */

static bool name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '-';
}

bool sw_name_valid(const char *name)
{
	if (!name)
		return false;
	size_t n = strlen(name);
	if (n < 1 || n > SW_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i]))
			return false;
	return true;
}

/* Prints s for a message: printable ASCII as is, the rest escaped, cut. */
static const char *show_str(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		if (p - (const unsigned char *)s >= 40 && p[1]) {
			if (o + 4 < len) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
	}
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

int sw_name_check(const char *what, const char *name, char *err, size_t errlen)
{
	char sb[64];
	if (!name || !*name)
		return sw_fail(err, errlen, "empty %s name", what);
	size_t n = strlen(name);
	if (n > SW_NAME_MAX)
		return sw_fail(err, errlen, "invalid %s name '%s': longer than %d characters", what,
			    show_str(name, sb, sizeof sb), SW_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i]))
			return sw_fail(err, errlen,
				    "invalid %s name '%s': only letters, digits, '_', '.' and '-' are allowed",
				    what, show_str(name, sb, sizeof sb));
	return 0;
}

bool sw_port_type_known(const char *type)
{
	if (!type)
		return false;
	for (size_t i = 0; i < sizeof port_types / sizeof port_types[0]; i++)
		if (!strcmp(type, port_types[i]))
			return true;
	return false;
}

const char *sw_port_types_list(void)
{
	return "vhost-user, tap, afpacket, internal, null";
}

/* Decimal number without sign or junk; -1 when not one or above max. */
static long parse_uint(const char *s, size_t n, long max)
{
	if (n == 0 || n > 9)
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > max ? -1 : v;
}

int sw_vlan_list_parse(const char *s, uint64_t bm[64], char *err, size_t errlen)
{
	char sb[64];
	uint64_t tmp[64];
	memset(tmp, 0, sizeof tmp);
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		/* tolerate spaces around items */
		while (n && *p == ' ') {
			p++;
			n--;
		}
		while (n && p[n - 1] == ' ')
			n--;
		const char *dash = memchr(p, '-', n);
		long lo, hi;
		if (dash) {
			lo = parse_uint(p, (size_t)(dash - p), SW_VLAN_MAX);
			hi = parse_uint(dash + 1, n - (size_t)(dash - p) - 1, SW_VLAN_MAX);
		} else {
			lo = hi = parse_uint(p, n, SW_VLAN_MAX);
		}
		if (lo < 0 || hi < 0)
			return sw_fail(err, errlen, "invalid VLAN list '%s': expected VLANs 0-4095 as 1,2,10-20",
				    show_str(s, sb, sizeof sb));
		if (lo > hi)
			return sw_fail(err, errlen, "invalid VLAN list '%s': range %ld-%ld is reversed",
				    show_str(s, sb, sizeof sb), lo, hi);
		for (long v = lo; v <= hi; v++)
			tmp[v / 64] |= 1ull << (v % 64);
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return sw_fail(err, errlen, "invalid VLAN list '%s': trailing comma",
				    show_str(s, sb, sizeof sb));
	}
	memcpy(bm, tmp, sizeof tmp);
	return 0;
}

bool sw_vlan_list_has(const uint64_t bm[64], unsigned vlan)
{
	return vlan <= SW_VLAN_MAX && (bm[vlan / 64] >> (vlan % 64)) & 1;
}

bool sw_vlan_list_empty(const uint64_t bm[64])
{
	for (unsigned i = 0; i < 64; i++)
		if (bm[i])
			return false;
	return true;
}

void sw_vlan_list_format(const uint64_t bm[64], char *buf, size_t len)
{
	size_t o = 0;
	if (!len)
		return;
	buf[0] = '\0';
	for (unsigned v = 0; v <= SW_VLAN_MAX; v++) {
		if (!sw_vlan_list_has(bm, v))
			continue;
		unsigned e = v;
		while (e < SW_VLAN_MAX && sw_vlan_list_has(bm, e + 1))
			e++;
		int n;
		if (e == v)
			n = snprintf(buf + o, len - o, "%s%u", o ? "," : "", v);
		else
			n = snprintf(buf + o, len - o, "%s%u-%u", o ? "," : "", v, e);
		if (n < 0 || (size_t)n >= len - o) {
			buf[o] = '\0';
			return;
		}
		o += (size_t)n;
		v = e;
	}
}

int sw_tag_parse(const char *s, uint16_t *tag, char *err, size_t errlen)
{
	char sb[64];
	if (!*s) {
		*tag = 0;
		return 0;
	}
	long v = parse_uint(s, strlen(s), 4094);
	if (v < 0)
		return sw_fail(err, errlen, "invalid tag '%s': expected a VLAN 1-4094",
			    show_str(s, sb, sizeof sb));
	*tag = (uint16_t)v;
	return 0;
}

const char *sw_config_option(const struct sw_options *opts, const char *key)
{
	for (unsigned i = 0; i < opts->n && i < SW_PORT_MAX_OPTIONS; i++)
		if (!strcmp(opts->o[i].key, key))
			return opts->o[i].value;
	return NULL;
}

static int option_key_check(const char *key, char *err, size_t errlen)
{
	char sb[64];
	size_t n = strlen(key);
	if (n == 0)
		return sw_fail(err, errlen, "empty option name");
	if (n >= sizeof ((struct sw_option *)0)->key)
		return sw_fail(err, errlen, "option name '%s' is too long (max %zu)",
			    show_str(key, sb, sizeof sb), sizeof ((struct sw_option *)0)->key - 1);
	for (size_t i = 0; i < n; i++) {
		char ch = key[i];
		if (!(isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.' || ch == ':'))
			return sw_fail(err, errlen, "invalid option name '%s'", show_str(key, sb, sizeof sb));
	}
	return 0;
}

static int option_value_check(const char *key, const char *value, bool allow_empty, char *err,
			      size_t errlen)
{
	size_t n = strlen(value);
	if (n == 0 && !allow_empty)
		return sw_fail(err, errlen, "option %s has an empty value", key);
	if (n >= sizeof ((struct sw_option *)0)->value)
		return sw_fail(err, errlen, "option %s: value is too long (max %zu)", key,
			    sizeof ((struct sw_option *)0)->value - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] == 0x7f)
			return sw_fail(err, errlen, "option %s: value has control characters", key);
	return 0;
}

/* Sets (or with value NULL removes) key in opts. */
static int options_put(struct sw_options *opts, const char *key, const char *value, char *err,
		       size_t errlen)
{
	for (unsigned i = 0; i < opts->n; i++) {
		if (strcmp(opts->o[i].key, key))
			continue;
		if (value) {
			snprintf(opts->o[i].value, sizeof opts->o[i].value, "%s", value);
		} else {
			memmove(&opts->o[i], &opts->o[i + 1], (opts->n - i - 1) * sizeof opts->o[0]);
			opts->n--;
		}
		return 0;
	}
	if (!value)
		return 0;
	if (opts->n >= SW_PORT_MAX_OPTIONS)
		return sw_fail(err, errlen, "too many options (max %d)", SW_PORT_MAX_OPTIONS);
	snprintf(opts->o[opts->n].key, sizeof opts->o[0].key, "%s", key);
	snprintf(opts->o[opts->n].value, sizeof opts->o[0].value, "%s", value);
	opts->n++;
	return 0;
}

static bool reserved_key(const char *key)
{
	return !strcmp(key, "type") || !strcmp(key, "tag") || !strcmp(key, "trunks") ||
	       !strcmp(key, "ofport_request") || !strcmp(key, "ofport");
}

/* ---- ports ---- */

void sw_port_config_init(struct sw_port_config *p, const char *name)
{
	memset(p, 0, sizeof *p);
	if (name)
		snprintf(p->name, sizeof p->name, "%s", name);
}

int sw_port_config_set(struct sw_port_config *p, const char *key, const char *value, char *err,
		       size_t errlen)
{
	char sb[64];
	if (!strcmp(key, "type")) {
		if (!sw_port_type_known(value))
			return sw_fail(err, errlen, "unknown port type '%s' (known: %s)",
				    show_str(value, sb, sizeof sb), sw_port_types_list());
		snprintf(p->type, sizeof p->type, "%s", value);
		return 0;
	}
	if (!strcmp(key, "tag"))
		return sw_tag_parse(value, &p->tag, err, errlen);
	if (!strcmp(key, "trunks"))
		return sw_vlan_list_parse(value, p->trunks, err, errlen);
	if (!strcmp(key, "ofport_request") || !strcmp(key, "ofport")) {
		long v = parse_uint(value, strlen(value), SW_OFPORT_MAX);
		if (v < 1)
			return sw_fail(err, errlen, "invalid %s '%s': expected 1-%d", key,
				    show_str(value, sb, sizeof sb), SW_OFPORT_MAX);
		p->ofport = (uint16_t)v;
		return 0;
	}
	if (option_key_check(key, err, errlen) || option_value_check(key, value, false, err, errlen))
		return -1;
	return options_put(&p->options, key, value, err, errlen);
}

static int options_validate(const struct sw_options *o, char *err, size_t errlen)
{
	if (o->n > SW_PORT_MAX_OPTIONS)
		return sw_fail(err, errlen, "too many options (max %d)", SW_PORT_MAX_OPTIONS);
	for (unsigned i = 0; i < o->n; i++) {
		const char *k = o->o[i].key, *v = o->o[i].value;
		if (!memchr(k, 0, sizeof o->o[i].key) || !memchr(v, 0, sizeof o->o[i].value))
			return sw_fail(err, errlen, "option %u is not terminated", i);
		if (option_key_check(k, err, errlen) || option_value_check(k, v, false, err, errlen))
			return -1;
		if (reserved_key(k))
			return sw_fail(err, errlen, "'%s' is not an option", k);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(o->o[j].key, k))
				return sw_fail(err, errlen, "option %s given twice", k);
	}
	return 0;
}

int sw_port_config_validate(const struct sw_port_config *p, char *err, size_t errlen)
{
	char e[192];
	if (!memchr(p->name, 0, sizeof p->name) || !memchr(p->type, 0, sizeof p->type))
		return sw_fail(err, errlen, "port name or type not terminated");
	if (sw_name_check("port", p->name, err, errlen))
		return -1;
	if (!p->type[0])
		return sw_fail(err, errlen, "port %s: missing type", p->name);
	if (!sw_port_type_known(p->type))
		return sw_fail(err, errlen, "port %s: unknown port type '%s' (known: %s)", p->name, p->type,
			    sw_port_types_list());
	if (p->tag > 4094)
		return sw_fail(err, errlen, "port %s: invalid tag %u", p->name, p->tag);
	if (p->tag && !sw_vlan_list_empty(p->trunks))
		return sw_fail(err, errlen,
			    "port %s: tag and trunks are exclusive (an access port has one VLAN)",
			    p->name);
	if (options_validate(&p->options, e, sizeof e))
		return sw_fail(err, errlen, "port %s: %s", p->name, e);
	return 0;
}

void sw_port_changes_init(struct sw_port_changes *ch)
{
	memset(ch, 0, sizeof *ch);
}

int sw_port_changes_set(struct sw_port_changes *ch, const char *key, const char *value, char *err,
			size_t errlen)
{
	if (!strcmp(key, "type"))
		return sw_fail(err, errlen, "the type of a port cannot be changed (del-port, then add-port)");
	if (!strcmp(key, "ofport_request") || !strcmp(key, "ofport"))
		return sw_fail(err, errlen, "the ofport of a port cannot be changed (del-port, then add-port)");
	if (!strcmp(key, "tag")) {
		if (sw_tag_parse(value, &ch->tag, err, errlen))
			return -1;
		ch->set_tag = true;
		return 0;
	}
	if (!strcmp(key, "trunks")) {
		if (sw_vlan_list_parse(value, ch->trunks, err, errlen))
			return -1;
		ch->set_trunks = true;
		return 0;
	}
	if (option_key_check(key, err, errlen) || option_value_check(key, value, true, err, errlen))
		return -1;
	/* an empty value stays in the change set: it means "remove" */
	for (unsigned i = 0; i < ch->set.n; i++)
		if (!strcmp(ch->set.o[i].key, key)) {
			snprintf(ch->set.o[i].value, sizeof ch->set.o[i].value, "%s", value);
			return 0;
		}
	if (ch->set.n >= SW_PORT_MAX_OPTIONS)
		return sw_fail(err, errlen, "too many options (max %d)", SW_PORT_MAX_OPTIONS);
	snprintf(ch->set.o[ch->set.n].key, sizeof ch->set.o[0].key, "%s", key);
	snprintf(ch->set.o[ch->set.n].value, sizeof ch->set.o[0].value, "%s", value);
	ch->set.n++;
	return 0;
}

/* ---- flows ---- */

/* Token [s, s+n) trimmed of spaces. */
static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

int sw_flow_text_parse(const char *flow, uint16_t *priority, char **text_out, char *err, size_t errlen)
{
	size_t len = strlen(flow);
	if (len == 0)
		return sw_fail(err, errlen, "empty flow");
	if (len > SW_FLOW_TEXT_MAX)
		return sw_fail(err, errlen, "flow is too long (max %d characters)", SW_FLOW_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)flow[i] < 0x20 || (unsigned char)flow[i] >= 0x7f)
			return sw_fail(err, errlen, "flow has a non-printable character at offset %zu", i);

	/* actions= starts the last part: at the beginning or after a comma/space */
	const char *act = NULL;
	for (const char *p = flow; (p = strstr(p, "actions=")); p++)
		if (p == flow || p[-1] == ',' || isspace((unsigned char)p[-1])) {
			act = p;
			break;
		}
	if (!act)
		return sw_fail(err, errlen, "flow '%.*s%s' has no actions= (e.g. in_port=1,actions=output:2)",
			    60, flow, len > 60 ? "..." : "");
	const char *acts = act + strlen("actions=");
	size_t an = strlen(acts);
	trim(&acts, &an);
	if (an == 0)
		return sw_fail(err, errlen, "flow has an empty actions= (use actions=drop to drop)");

	/* match tokens, pulling priority= out */
	long prio = SW_FLOW_DEFAULT_PRIORITY;
	bool seen_prio = false;
	char *text = malloc(len + 2);
	if (!text)
		return sw_fail(err, errlen, "out of memory");
	size_t o = 0;
	const char *p = flow;
	while (p < act) {
		const char *e = p;
		while (e < act && *e != ',')
			e++;
		const char *tok = p;
		size_t tn = (size_t)(e - p);
		trim(&tok, &tn);
		p = e + 1;
		if (tn == 0)
			continue;
		const char *eq = memchr(tok, '=', tn);
		if (eq == tok) {
			free(text);
			return sw_fail(err, errlen, "flow: field without a name in '%.*s'", (int)tn, tok);
		}
		if (eq && (size_t)(eq - tok) == strlen("priority") && !strncmp(tok, "priority", 8)) {
			if (seen_prio) {
				free(text);
				return sw_fail(err, errlen, "flow: priority given twice");
			}
			seen_prio = true;
			prio = parse_uint(eq + 1, tn - 9, 65535);
			if (prio < 0) {
				free(text);
				return sw_fail(err, errlen, "flow: invalid priority '%.*s' (expected 0-65535)",
					    (int)(tn - 9), eq + 1);
			}
			continue;
		}
		if (eq && (size_t)(eq - tok) + 1 == tn) {
			free(text);
			return sw_fail(err, errlen, "flow: field '%.*s' has no value", (int)(eq - tok), tok);
		}
		memcpy(text + o, tok, tn);
		o += tn;
		text[o++] = ',';
	}
	memcpy(text + o, "actions=", 8);
	o += 8;
	memcpy(text + o, acts, an);
	o += an;
	text[o] = '\0';
	*priority = (uint16_t)prio;
	*text_out = text;
	return 0;
}

void sw_flow_text_format(const struct sw_flow_config *f, char *buf, size_t len)
{
	snprintf(buf, len, "priority=%u,%s", f->priority, f->text);
}

void sw_flow_text_match(const char *text, char *buf, size_t len)
{
	const char *a = strstr(text, "actions=");
	while (a && a != text && a[-1] != ',')
		a = strstr(a + 1, "actions=");
	size_t n = a ? (size_t)(a - text) : strlen(text);
	if (n && text[n - 1] == ',')
		n--;
	if (n >= len)
		n = len ? len - 1 : 0;
	if (len) {
		memcpy(buf, text, n);
		buf[n] = '\0';
	}
}

/* Is token [t, t+n) one of the comma-separated tokens in list? */
static bool has_token(const char *list, const char *t, size_t n)
{
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t ln = e ? (size_t)(e - p) : strlen(p);
		if (ln == n && !memcmp(p, t, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

bool sw_flow_text_matches(const struct sw_flow_config *f, const char *match)
{
	if (!match || !*match)
		return true;
	char fm[SW_FLOW_TEXT_MAX + 1];
	sw_flow_text_match(f->text, fm, sizeof fm);
	const char *p = match;
	while (*p) {
		const char *e = strchr(p, ',');
		const char *tok = p;
		size_t tn = e ? (size_t)(e - p) : strlen(p);
		trim(&tok, &tn);
		if (tn && !(tn > 9 && !strncmp(tok, "priority=", 9)) && !has_token(fm, tok, tn))
			return false;
		if (!e)
			break;
		p = e + 1;
	}
	return true;
}

/* ---- the configuration ---- */

struct sw_config *sw_config_new(void)
{
	return calloc(1, sizeof(struct sw_config));
}

static void bridge_clear(struct sw_bridge_config *b)
{
	for (unsigned i = 0; i < b->nflows; i++)
		free(b->flows[i].text);
	free(b->flows);
	free(b->ports);
	free(b->fdb);
	memset(b, 0, sizeof *b);
}

void sw_config_free(struct sw_config *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nbridges; i++)
		bridge_clear(&c->bridges[i]);
	free(c->bridges);
	free(c);
}

struct sw_config *sw_config_dup(const struct sw_config *c)
{
	struct sw_config *d = sw_config_new();
	if (!d)
		return NULL;
	if (!c->nbridges)
		return d;
	d->bridges = calloc(c->nbridges, sizeof *d->bridges);
	if (!d->bridges)
		goto oom;
	d->bridges_cap = c->nbridges;
	for (unsigned i = 0; i < c->nbridges; i++) {
		const struct sw_bridge_config *s = &c->bridges[i];
		struct sw_bridge_config *b = &d->bridges[i];
		d->nbridges++;
		memcpy(b->name, s->name, sizeof b->name);
		if (s->nports) {
			b->ports = malloc(s->nports * sizeof *b->ports);
			if (!b->ports)
				goto oom;
			memcpy(b->ports, s->ports, s->nports * sizeof *b->ports);
			b->nports = b->ports_cap = s->nports;
		}
		if (s->nflows) {
			b->flows = calloc(s->nflows, sizeof *b->flows);
			if (!b->flows)
				goto oom;
			b->flows_cap = s->nflows;
			for (unsigned j = 0; j < s->nflows; j++) {
				b->flows[j].priority = s->flows[j].priority;
				b->flows[j].text = strdup(s->flows[j].text);
				if (!b->flows[j].text)
					goto oom;
				b->nflows++;
			}
		}
		if (s->nfdb) {
			b->fdb = malloc(s->nfdb * sizeof *b->fdb);
			if (!b->fdb)
				goto oom;
			memcpy(b->fdb, s->fdb, s->nfdb * sizeof *b->fdb);
			b->nfdb = b->fdb_cap = s->nfdb;
		}
	}
	return d;
oom:
	sw_config_free(d);
	return NULL;
}

struct sw_bridge_config *sw_config_bridge(const struct sw_config *c, const char *name)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < c->nbridges; i++)
		if (!strcmp(c->bridges[i].name, name))
			return &c->bridges[i];
	return NULL;
}

struct sw_port_config *sw_config_port(const struct sw_config *c, const char *name,
				      struct sw_bridge_config **bridge)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < c->nbridges; i++)
		for (unsigned j = 0; j < c->bridges[i].nports; j++)
			if (!strcmp(c->bridges[i].ports[j].name, name)) {
				if (bridge)
					*bridge = &c->bridges[i];
				return &c->bridges[i].ports[j];
			}
	return NULL;
}

struct sw_port_config *sw_bridge_port_by_ofport(const struct sw_bridge_config *b, uint16_t ofport)
{
	for (unsigned j = 0; j < b->nports; j++)
		if (b->ports[j].ofport == ofport)
			return &b->ports[j];
	return NULL;
}

static int grow(void **arr, unsigned *cap, unsigned need, size_t elem)
{
	if (need <= *cap)
		return 0;
	unsigned ncap = *cap ? *cap * 2 : 4;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*arr, (size_t)ncap * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

int sw_config_add_bridge(struct sw_config *c, const char *name, char *err, size_t errlen)
{
	if (sw_name_check("bridge", name, err, errlen))
		return -1;
	if (sw_config_bridge(c, name))
		return sw_fail(err, errlen, "bridge %s exists", name);
	struct sw_bridge_config *ob;
	if (sw_config_port(c, name, &ob))
		return sw_fail(err, errlen, "%s is a port on bridge %s", name, ob->name);
	if (c->nbridges >= SW_CONFIG_MAX_BRIDGES)
		return sw_fail(err, errlen, "too many bridges (max %d)", SW_CONFIG_MAX_BRIDGES);
	if (grow((void **)&c->bridges, &c->bridges_cap, c->nbridges + 1, sizeof *c->bridges))
		return sw_fail(err, errlen, "out of memory");
	struct sw_bridge_config *b = &c->bridges[c->nbridges++];
	memset(b, 0, sizeof *b);
	snprintf(b->name, sizeof b->name, "%s", name);
	return 0;
}

static struct sw_bridge_config *need_bridge(const struct sw_config *c, const char *name, char *err,
					    size_t errlen)
{
	struct sw_bridge_config *b = sw_config_bridge(c, name);
	if (!b) {
		char sb[64];
		if (!name || !*name)
			sw_fail(err, errlen, "missing bridge name");
		else
			sw_fail(err, errlen, "no bridge %s", show_str(name, sb, sizeof sb));
	}
	return b;
}

int sw_config_del_bridge(struct sw_config *c, const char *name, char *err, size_t errlen)
{
	struct sw_bridge_config *b = need_bridge(c, name, err, errlen);
	if (!b)
		return -1;
	bridge_clear(b);
	unsigned i = (unsigned)(b - c->bridges);
	memmove(b, b + 1, (c->nbridges - i - 1) * sizeof *b);
	c->nbridges--;
	return 0;
}

int sw_config_add_port(struct sw_config *c, const char *bridge, const struct sw_port_config *p,
		       uint16_t *ofport_out, char *err, size_t errlen)
{
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	if (sw_port_config_validate(p, err, errlen))
		return -1;
	struct sw_bridge_config *ob;
	if (sw_config_port(c, p->name, &ob)) {
		if (ob == b)
			return sw_fail(err, errlen, "port %s exists", p->name);
		return sw_fail(err, errlen, "port %s exists on bridge %s", p->name, ob->name);
	}
	if (sw_config_bridge(c, p->name))
		return sw_fail(err, errlen, "%s is a bridge name", p->name);
	if (b->nports >= SW_CONFIG_MAX_PORTS)
		return sw_fail(err, errlen, "bridge %s has too many ports (max %d)", b->name,
			    SW_CONFIG_MAX_PORTS);
	uint16_t ofport = p->ofport;
	if (ofport) {
		if (ofport > SW_OFPORT_MAX)
			return sw_fail(err, errlen, "invalid ofport %u", ofport);
		const struct sw_port_config *used = sw_bridge_port_by_ofport(b, ofport);
		if (used)
			return sw_fail(err, errlen, "ofport %u is in use by port %s on bridge %s", ofport,
				    used->name, b->name);
	} else {
		for (ofport = 1; sw_bridge_port_by_ofport(b, ofport); ofport++)
			;
	}
	if (grow((void **)&b->ports, &b->ports_cap, b->nports + 1, sizeof *b->ports))
		return sw_fail(err, errlen, "out of memory");
	struct sw_port_config *np = &b->ports[b->nports++];
	*np = *p;
	np->ofport = ofport;
	if (ofport_out)
		*ofport_out = ofport;
	return 0;
}

int sw_config_del_port(struct sw_config *c, const char *bridge, const char *port, char *err,
		       size_t errlen)
{
	char sb[64];
	struct sw_bridge_config *b = NULL;
	if (bridge && *bridge && !(b = need_bridge(c, bridge, err, errlen)))
		return -1;
	struct sw_bridge_config *pb;
	struct sw_port_config *p = sw_config_port(c, port, &pb);
	if (!p)
		return sw_fail(err, errlen, "no port %s", port ? show_str(port, sb, sizeof sb) : "(null)");
	if (b && pb != b)
		return sw_fail(err, errlen, "port %s is on bridge %s, not %s", port, pb->name, b->name);
	sw_bridge_fdb_del_port(pb, p->name); /* its static FDB entries go with it */
	unsigned i = (unsigned)(p - pb->ports);
	memmove(p, p + 1, (pb->nports - i - 1) * sizeof *p);
	pb->nports--;
	return 0;
}

int sw_config_set_port(struct sw_config *c, const char *port, const struct sw_port_changes *ch,
		       char *err, size_t errlen)
{
	char sb[64];
	struct sw_port_config *p = sw_config_port(c, port, NULL);
	if (!p)
		return sw_fail(err, errlen, "no port %s", port ? show_str(port, sb, sizeof sb) : "(null)");
	struct sw_port_config n = *p;
	for (unsigned i = 0; i < ch->set.n && i < SW_PORT_MAX_OPTIONS; i++) {
		const struct sw_option *o = &ch->set.o[i];
		if (reserved_key(o->key))
			return sw_fail(err, errlen, "'%s' is not an option", o->key);
		if (options_put(&n.options, o->key, o->value[0] ? o->value : NULL, err, errlen))
			return -1;
	}
	if (ch->set_tag)
		n.tag = ch->tag;
	if (ch->set_trunks)
		memcpy(n.trunks, ch->trunks, sizeof n.trunks);
	if (sw_port_config_validate(&n, err, errlen))
		return -1;
	*p = n;
	return 0;
}

int sw_config_add_flow(struct sw_config *c, const char *bridge, const char *flow, char *err,
		       size_t errlen)
{
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	uint16_t prio;
	char *text;
	if (sw_flow_text_parse(flow, &prio, &text, err, errlen))
		return -1;
	/* The flow table replaces a flow with the same priority and the same
	 * match however it is spelled ("ip" and "dl_type=0x0800" are one
	 * match): so does the saved configuration, or a restart would bring
	 * back flows the running switch replaced. */
	struct sw_flow_spec spec_new, spec_old;
	char perr[128], buf[SW_FLOW_TEXT_MAX + 32];
	snprintf(buf, sizeof buf, "priority=%u,%s", prio, text);
	bool parsed = sw_flow_spec_parse(buf, SW_PARSE_FLOW, &spec_new, perr, sizeof perr) == 0;
	char m1[SW_FLOW_TEXT_MAX + 1], m2[SW_FLOW_TEXT_MAX + 1];
	sw_flow_text_match(text, m1, sizeof m1);
	for (unsigned i = 0; i < b->nflows; i++) {
		if (b->flows[i].priority != prio)
			continue;
		bool same;
		snprintf(buf, sizeof buf, "priority=%u,%s", prio, b->flows[i].text);
		if (parsed && sw_flow_spec_parse(buf, SW_PARSE_FLOW, &spec_old, perr, sizeof perr) == 0) {
			same = sw_match_equal(&spec_new.match, &spec_old.match);
		} else {
			sw_flow_text_match(b->flows[i].text, m2, sizeof m2);
			same = !strcmp(m1, m2);
		}
		if (same) {
			free(b->flows[i].text);
			b->flows[i].text = text;
			return 0;
		}
	}
	if (b->nflows >= SW_CONFIG_MAX_FLOWS) {
		free(text);
		return sw_fail(err, errlen, "bridge %s has too many flows (max %d)", b->name,
			    SW_CONFIG_MAX_FLOWS);
	}
	if (grow((void **)&b->flows, &b->flows_cap, b->nflows + 1, sizeof *b->flows)) {
		free(text);
		return sw_fail(err, errlen, "out of memory");
	}
	b->flows[b->nflows].priority = prio;
	b->flows[b->nflows].text = text;
	b->nflows++;
	return 0;
}

static bool match_pred(const struct sw_flow_config *f, void *arg)
{
	return sw_flow_text_matches(f, arg);
}

int sw_config_del_flows(struct sw_config *c, const char *bridge, const char *match,
			unsigned *ndeleted, char *err, size_t errlen)
{
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	if (match && strlen(match) > SW_FLOW_TEXT_MAX)
		return sw_fail(err, errlen, "match is too long (max %d characters)", SW_FLOW_TEXT_MAX);
	if (match && strstr(match, "actions="))
		return sw_fail(err, errlen, "del-flows takes a match without actions=");
	return sw_config_del_flows_if(c, bridge, match_pred, (void *)match, ndeleted, err, errlen);
}

int sw_config_del_flows_if(struct sw_config *c, const char *bridge,
			   bool (*pred)(const struct sw_flow_config *f, void *arg), void *arg,
			   unsigned *ndeleted, char *err, size_t errlen)
{
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	unsigned o = 0, n = 0;
	for (unsigned i = 0; i < b->nflows; i++) {
		if (pred(&b->flows[i], arg)) {
			free(b->flows[i].text);
			n++;
		} else {
			b->flows[o++] = b->flows[i];
		}
	}
	b->nflows = o;
	if (ndeleted)
		*ndeleted = n;
	return 0;
}

int sw_config_validate(const struct sw_config *c, char *err, size_t errlen)
{
	char e[256];
	if (c->nbridges > SW_CONFIG_MAX_BRIDGES)
		return sw_fail(err, errlen, "too many bridges (max %d)", SW_CONFIG_MAX_BRIDGES);
	for (unsigned i = 0; i < c->nbridges; i++) {
		const struct sw_bridge_config *b = &c->bridges[i];
		if (!memchr(b->name, 0, sizeof b->name))
			return sw_fail(err, errlen, "bridge %u: name not terminated", i);
		if (sw_name_check("bridge", b->name, err, errlen))
			return -1;
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(c->bridges[k].name, b->name))
				return sw_fail(err, errlen, "bridge %s given twice", b->name);
		if (b->nports > SW_CONFIG_MAX_PORTS)
			return sw_fail(err, errlen, "bridge %s has too many ports", b->name);
		for (unsigned j = 0; j < b->nports; j++) {
			const struct sw_port_config *p = &b->ports[j];
			if (sw_port_config_validate(p, e, sizeof e))
				return sw_fail(err, errlen, "bridge %s: %s", b->name, e);
			if (p->ofport < 1 || p->ofport > SW_OFPORT_MAX)
				return sw_fail(err, errlen, "port %s: invalid ofport %u", p->name, p->ofport);
			if (sw_config_bridge(c, p->name))
				return sw_fail(err, errlen, "port %s: %s is a bridge name", p->name, p->name);
			for (unsigned k = 0; k < j; k++) {
				if (!strcmp(b->ports[k].name, p->name))
					return sw_fail(err, errlen, "port %s given twice", p->name);
				if (b->ports[k].ofport == p->ofport)
					return sw_fail(err, errlen, "ofport %u of bridge %s given twice",
						    p->ofport, b->name);
			}
			for (unsigned k = 0; k < i; k++) {
				const struct sw_bridge_config *ob = &c->bridges[k];
				for (unsigned m = 0; m < ob->nports; m++)
					if (!strcmp(ob->ports[m].name, p->name))
						return sw_fail(err, errlen,
							    "port %s is in two bridges (%s and %s)",
							    p->name, ob->name, b->name);
			}
		}
		if (b->nflows > SW_CONFIG_MAX_FLOWS)
			return sw_fail(err, errlen, "bridge %s has too many flows", b->name);
		for (unsigned j = 0; j < b->nflows; j++) {
			uint16_t prio;
			char *t;
			if (!b->flows[j].text)
				return sw_fail(err, errlen, "bridge %s: flow %u has no text", b->name, j);
			if (sw_flow_text_parse(b->flows[j].text, &prio, &t, e, sizeof e))
				return sw_fail(err, errlen, "bridge %s: flow %u: %s", b->name, j, e);
			bool had_prio = prio != SW_FLOW_DEFAULT_PRIORITY || strstr(b->flows[j].text, "priority=");
			free(t);
			if (had_prio)
				return sw_fail(err, errlen, "bridge %s: flow %u: text has a priority= of its own",
					    b->name, j);
		}
		if (sw_bridge_fdb_validate(b, err, errlen))
			return -1;
	}
	return 0;
}

/* ---- JSON ---- */

json_t *sw_port_config_to_json(const struct sw_port_config *p)
{
	json_t *j = json_object();
	json_t *opts = json_object();
	if (!j || !opts) {
		json_decref(j);
		json_decref(opts);
		return NULL;
	}
	json_object_set_new(j, "name", json_string(p->name));
	json_object_set_new(j, "ofport", json_integer(p->ofport));
	json_object_set_new(j, "type", json_string(p->type));
	for (unsigned i = 0; i < p->options.n && i < SW_PORT_MAX_OPTIONS; i++)
		json_object_set_new(opts, p->options.o[i].key, json_string(p->options.o[i].value));
	json_object_set_new(j, "options", opts);
	if (p->tag)
		json_object_set_new(j, "tag", json_integer(p->tag));
	if (!sw_vlan_list_empty(p->trunks)) {
		char buf[20000];
		sw_vlan_list_format(p->trunks, buf, sizeof buf);
		json_object_set_new(j, "trunks", json_string(buf));
	}
	return j;
}

json_t *sw_config_to_json(const struct sw_config *c)
{
	json_t *root = json_object(), *bridges = json_array();
	if (!root || !bridges) {
		json_decref(root);
		json_decref(bridges);
		return NULL;
	}
	json_object_set_new(root, "format", json_string(SW_STATE_FORMAT));
	json_object_set_new(root, "version", json_integer(SW_STATE_VERSION));
	json_object_set_new(root, "bridges", bridges);
	for (unsigned i = 0; i < c->nbridges; i++) {
		const struct sw_bridge_config *b = &c->bridges[i];
		json_t *jb = json_object(), *ports = json_array(), *flows = json_array();
		json_object_set_new(jb, "name", json_string(b->name));
		json_object_set_new(jb, "ports", ports);
		json_object_set_new(jb, "flows", flows);
		for (unsigned j = 0; j < b->nports; j++)
			json_array_append_new(ports, sw_port_config_to_json(&b->ports[j]));
		for (unsigned j = 0; j < b->nflows; j++)
			json_array_append_new(flows, json_pack("{s:i,s:s}", "priority",
							       (int)b->flows[j].priority, "text",
							       b->flows[j].text));
		json_t *fdb = sw_bridge_fdb_to_json(b);
		if (b->nfdb && (!fdb || json_object_set_new(jb, "fdb", fdb))) {
			json_decref(jb);
			json_decref(root);
			return NULL;
		}
		if (json_array_append_new(bridges, jb)) {
			json_decref(root);
			return NULL;
		}
	}
	return root;
}

char *sw_config_to_string(const struct sw_config *c)
{
	json_t *j = sw_config_to_json(c);
	if (!j)
		return NULL;
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *r = realloc(s, n + 2);
	if (!r) {
		free(s);
		return NULL;
	}
	r[n] = '\n';
	r[n + 1] = '\0';
	return r;
}

/* "where: what" */
__attribute__((format(printf, 4, 5))) static int jfail(char *err, size_t errlen, const char *where,
						       const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sw_fail(err, errlen, "%s: %s", where, msg);
}

const char *sw_json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* Checks that obj has only the listed keys. */
static int only_keys(const json_t *obj, const char *const *keys, const char *where, char *err,
		     size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (const char *const *p = keys; *p; p++)
			if (!strcmp(*p, k))
				ok = true;
		if (!ok) {
			char sb[64];
			return jfail(err, errlen, where, "unknown field '%s'", show_str(k, sb, sizeof sb));
		}
	}
	return 0;
}

static int get_string(const json_t *obj, const char *key, bool required, const char **out,
		      const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return jfail(err, errlen, where, "missing field '%s'", key);
		return 0;
	}
	if (!json_is_string(v))
		return jfail(err, errlen, where, "'%s' must be a string, not %s", key, sw_json_kind(v));
	*out = json_string_value(v);
	return 0;
}

static int get_uint(const json_t *obj, const char *key, bool required, long max, long *out,
		    const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			return jfail(err, errlen, where, "missing field '%s'", key);
		return 0;
	}
	if (!json_is_integer(v))
		return jfail(err, errlen, where, "'%s' must be an integer, not %s", key, sw_json_kind(v));
	json_int_t x = json_integer_value(v);
	if (x < 0 || x > max)
		return jfail(err, errlen, where, "'%s' is out of range (0-%ld)", key, max);
	*out = (long)x;
	return 0;
}

static int port_from_json(const json_t *jp, struct sw_port_config *p, const char *where, char *err,
			  size_t errlen)
{
	static const char *const keys[] = {"name", "ofport", "type", "options", "tag", "trunks", NULL};
	char e[256];
	if (!json_is_object(jp))
		return jfail(err, errlen, where, "must be an object, not %s", sw_json_kind(jp));
	if (only_keys(jp, keys, where, err, errlen))
		return -1;
	const char *name, *type, *trunks;
	long ofport = 0, tag = 0;
	if (get_string(jp, "name", true, &name, where, err, errlen) ||
	    get_string(jp, "type", true, &type, where, err, errlen) ||
	    get_string(jp, "trunks", false, &trunks, where, err, errlen) ||
	    get_uint(jp, "ofport", true, SW_OFPORT_MAX, &ofport, where, err, errlen) ||
	    get_uint(jp, "tag", false, 4094, &tag, where, err, errlen))
		return -1;
	if (sw_name_check("port", name, e, sizeof e))
		return jfail(err, errlen, where, "%s", e);
	sw_port_config_init(p, name);
	if (sw_port_config_set(p, "type", type, e, sizeof e))
		return jfail(err, errlen, where, "%s", e);
	p->ofport = (uint16_t)ofport;
	p->tag = (uint16_t)tag;
	if (trunks && sw_vlan_list_parse(trunks, p->trunks, e, sizeof e))
		return jfail(err, errlen, where, "%s", e);
	json_t *opts = json_object_get(jp, "options");
	if (opts) {
		if (!json_is_object(opts))
			return jfail(err, errlen, where, "'options' must be an object, not %s",
				     sw_json_kind(opts));
		const char *k;
		json_t *v;
		json_object_foreach(opts, k, v) {
			if (!json_is_string(v))
				return jfail(err, errlen, where, "option %s must be a string", k);
			if (reserved_key(k))
				return jfail(err, errlen, where, "'%s' is not an option", k);
			if (sw_port_config_set(p, k, json_string_value(v), e, sizeof e))
				return jfail(err, errlen, where, "%s", e);
		}
	}
	return 0;
}

int sw_config_from_json(const json_t *j, struct sw_config **out, char *err, size_t errlen)
{
	static const char *const root_keys[] = {"format", "version", "bridges", NULL};
	static const char *const br_keys[] = {"name", "ports", "flows", "fdb", NULL};
	static const char *const flow_keys[] = {"priority", "text", NULL};
	char where[96], e[256];
	if (!json_is_object(j))
		return sw_fail(err, errlen, "top level must be an object, not %s", sw_json_kind(j));
	if (only_keys(j, root_keys, "top level", err, errlen))
		return -1;
	const char *format;
	long version = 0;
	if (get_string(j, "format", true, &format, "top level", err, errlen) ||
	    get_uint(j, "version", true, 1000000, &version, "top level", err, errlen))
		return -1;
	if (strcmp(format, SW_STATE_FORMAT))
		return sw_fail(err, errlen, "format is not \"%s\"", SW_STATE_FORMAT);
	if (version != SW_STATE_VERSION)
		return sw_fail(err, errlen, "unsupported version %ld (this build reads %d)", version,
			    SW_STATE_VERSION);
	json_t *bridges = json_object_get(j, "bridges");
	if (!bridges)
		return sw_fail(err, errlen, "top level: missing field 'bridges'");
	if (!json_is_array(bridges))
		return sw_fail(err, errlen, "'bridges' must be an array, not %s", sw_json_kind(bridges));
	if (json_array_size(bridges) > SW_CONFIG_MAX_BRIDGES)
		return sw_fail(err, errlen, "too many bridges (max %d)", SW_CONFIG_MAX_BRIDGES);

	struct sw_config *c = sw_config_new();
	if (!c)
		return sw_fail(err, errlen, "out of memory");
	struct sw_port_config *p = malloc(sizeof *p);
	if (!p) {
		sw_config_free(c);
		return sw_fail(err, errlen, "out of memory");
	}
	size_t i;
	json_t *jb;
	json_array_foreach(bridges, i, jb) {
		snprintf(where, sizeof where, "bridges[%zu]", i);
		if (!json_is_object(jb)) {
			jfail(err, errlen, where, "must be an object, not %s", sw_json_kind(jb));
			goto bad;
		}
		const char *name;
		if (only_keys(jb, br_keys, where, err, errlen) ||
		    get_string(jb, "name", true, &name, where, err, errlen))
			goto bad;
		if (sw_config_add_bridge(c, name, e, sizeof e)) {
			jfail(err, errlen, where, "%s", e);
			goto bad;
		}
		json_t *ports = json_object_get(jb, "ports");
		if (ports && !json_is_array(ports)) {
			jfail(err, errlen, where, "'ports' must be an array, not %s", sw_json_kind(ports));
			goto bad;
		}
		size_t k;
		json_t *jp;
		json_array_foreach(ports, k, jp) {
			snprintf(where, sizeof where, "bridges[%zu].ports[%zu]", i, k);
			if (port_from_json(jp, p, where, err, errlen))
				goto bad;
			if (p->ofport == 0) {
				jfail(err, errlen, where, "ofport must be 1-%d", SW_OFPORT_MAX);
				goto bad;
			}
			if (sw_config_add_port(c, name, p, NULL, e, sizeof e)) {
				jfail(err, errlen, where, "%s", e);
				goto bad;
			}
		}
		json_t *flows = json_object_get(jb, "flows");
		if (flows && !json_is_array(flows)) {
			snprintf(where, sizeof where, "bridges[%zu]", i);
			jfail(err, errlen, where, "'flows' must be an array, not %s", sw_json_kind(flows));
			goto bad;
		}
		json_t *jf;
		json_array_foreach(flows, k, jf) {
			snprintf(where, sizeof where, "bridges[%zu].flows[%zu]", i, k);
			if (!json_is_object(jf)) {
				jfail(err, errlen, where, "must be an object, not %s", sw_json_kind(jf));
				goto bad;
			}
			const char *text;
			long prio = SW_FLOW_DEFAULT_PRIORITY;
			if (only_keys(jf, flow_keys, where, err, errlen) ||
			    get_string(jf, "text", true, &text, where, err, errlen) ||
			    get_uint(jf, "priority", true, 65535, &prio, where, err, errlen))
				goto bad;
			if (strstr(text, "priority=")) {
				jfail(err, errlen, where, "text has a priority= of its own");
				goto bad;
			}
			char full[SW_FLOW_TEXT_MAX + 32];
			int fn = snprintf(full, sizeof full, "priority=%ld,%s", prio, text);
			if (fn < 0 || (size_t)fn >= sizeof full) {
				jfail(err, errlen, where, "flow is too long");
				goto bad;
			}
			struct sw_bridge_config *b = sw_config_bridge(c, name);
			unsigned before = b->nflows;
			if (sw_config_add_flow(c, name, full, e, sizeof e)) {
				jfail(err, errlen, where, "%s", e);
				goto bad;
			}
			if (b->nflows == before) {
				jfail(err, errlen, where, "same priority and match as an earlier flow");
				goto bad;
			}
		}
		json_t *fdb = json_object_get(jb, "fdb");
		if (fdb && sw_bridge_fdb_from_json(c, c->nbridges - 1, fdb, err, errlen))
			goto bad;
	}
	free(p);
	if (sw_config_validate(c, err, errlen)) {
		sw_config_free(c);
		return -1;
	}
	*out = c;
	return 0;
bad:
	free(p);
	sw_config_free(c);
	return -1;
}

int sw_config_from_string(const char *buf, size_t len, struct sw_config **out, char *err,
			  size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return sw_fail(err, errlen, "line %d: %s", je.line, je.text);
	int r = sw_config_from_json(j, out, err, errlen);
	json_decref(j);
	return r;
}
