/* config_fdb.c — static FDB entries of the configuration model (config.h). */
#include "switch/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int sw_mac_parse(const char *s, uint8_t mac[6], char *err, size_t errlen)
{
	char sb[64];
	uint8_t m[6];
	if (!s)
		return sw_fail(err, errlen, "missing MAC");
	bool ok = strlen(s) == 17;
	for (int i = 0; ok && i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			ok = false;
		else
			m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!ok)
		return sw_fail(err, errlen, "invalid MAC '%s' (expected six hex bytes as 52:54:00:00:00:05)",
			    sw_shown(s, sb, sizeof sb));
	memcpy(mac, m, 6);
	return 0;
}

void sw_mac_format(const uint8_t mac[6], char buf[SW_MAC_STR_LEN])
{
	snprintf(buf, SW_MAC_STR_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

int sw_fdb_static_check(unsigned vlan, const uint8_t mac[6], char *err, size_t errlen)
{
	char m[SW_MAC_STR_LEN];
	if (vlan > SW_VLAN_MAX)
		return sw_fail(err, errlen, "invalid VLAN %u (expected 0-%d)", vlan, SW_VLAN_MAX);
	if (mac[0] & 1) {
		sw_mac_format(mac, m);
		return sw_fail(err, errlen, "MAC %s is multicast (a static entry needs a unicast MAC)", m);
	}
	return 0;
}

struct sw_fdb_static_config *sw_bridge_fdb_find(const struct sw_bridge_config *b, uint16_t vlan,
						const uint8_t mac[6])
{
	for (unsigned i = 0; i < b->nfdb; i++)
		if (b->fdb[i].vlan == vlan && !memcmp(b->fdb[i].mac, mac, 6))
			return &b->fdb[i];
	return NULL;
}

static struct sw_bridge_config *need_bridge(const struct sw_config *c, const char *name, char *err,
					    size_t errlen)
{
	char sb[64];
	struct sw_bridge_config *b = sw_config_bridge(c, name);
	if (!b)
		sw_fail(err, errlen, "no bridge %s", name && *name ? sw_shown(name, sb, sizeof sb) : "(none)");
	return b;
}

static bool bridge_has_port(const struct sw_bridge_config *b, const char *port)
{
	for (unsigned i = 0; i < b->nports; i++)
		if (!strcmp(b->ports[i].name, port))
			return true;
	return false;
}

int sw_config_add_fdb(struct sw_config *c, const char *bridge, const char *port, unsigned vlan,
		      const uint8_t mac[6], char *err, size_t errlen)
{
	char sb[64];
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	if (!port || !bridge_has_port(b, port))
		return sw_fail(err, errlen, "no port %s in bridge %s",
			    port ? sw_shown(port, sb, sizeof sb) : "(none)", b->name);
	if (sw_fdb_static_check(vlan, mac, err, errlen))
		return -1;
	struct sw_fdb_static_config *e = sw_bridge_fdb_find(b, (uint16_t)vlan, mac);
	if (!e) {
		if (b->nfdb >= SW_CONFIG_MAX_FDB)
			return sw_fail(err, errlen, "bridge %s has too many static FDB entries (max %d)",
				    b->name, SW_CONFIG_MAX_FDB);
		if (b->nfdb == b->fdb_cap) {
			unsigned ncap = b->fdb_cap ? b->fdb_cap * 2 : 4;
			void *n = realloc(b->fdb, (size_t)ncap * sizeof *b->fdb);
			if (!n)
				return sw_fail(err, errlen, "out of memory");
			b->fdb = n;
			b->fdb_cap = ncap;
		}
		e = &b->fdb[b->nfdb++];
		memset(e, 0, sizeof *e);
		e->vlan = (uint16_t)vlan;
		memcpy(e->mac, mac, 6);
	}
	snprintf(e->port, sizeof e->port, "%s", port);
	return 0;
}

int sw_config_del_fdb(struct sw_config *c, const char *bridge, unsigned vlan,
		      const uint8_t mac[6], char *port_out, char *err, size_t errlen)
{
	char m[SW_MAC_STR_LEN];
	struct sw_bridge_config *b = need_bridge(c, bridge, err, errlen);
	if (!b)
		return -1;
	if (vlan > SW_VLAN_MAX)
		return sw_fail(err, errlen, "invalid VLAN %u (expected 0-%d)", vlan, SW_VLAN_MAX);
	struct sw_fdb_static_config *e = sw_bridge_fdb_find(b, (uint16_t)vlan, mac);
	if (!e) {
		sw_mac_format(mac, m);
		return sw_fail(err, errlen, "no static entry for %s on VLAN %u in %s", m, vlan, b->name);
	}
	if (port_out)
		snprintf(port_out, SW_NAME_MAX + 1, "%s", e->port);
	unsigned i = (unsigned)(e - b->fdb);
	memmove(e, e + 1, (b->nfdb - i - 1) * sizeof *e);
	b->nfdb--;
	return 0;
}

unsigned sw_bridge_fdb_del_port(struct sw_bridge_config *b, const char *port)
{
	unsigned o = 0, n = 0;
	for (unsigned i = 0; i < b->nfdb; i++) {
		if (!strcmp(b->fdb[i].port, port))
			n++;
		else
			b->fdb[o++] = b->fdb[i];
	}
	b->nfdb = o;
	return n;
}

int sw_bridge_fdb_validate(const struct sw_bridge_config *b, char *err, size_t errlen)
{
	char e[160], m[SW_MAC_STR_LEN];
	if (b->nfdb > SW_CONFIG_MAX_FDB)
		return sw_fail(err, errlen, "bridge %s has too many static FDB entries (max %d)", b->name,
			    SW_CONFIG_MAX_FDB);
	for (unsigned i = 0; i < b->nfdb; i++) {
		const struct sw_fdb_static_config *f = &b->fdb[i];
		if (!memchr(f->port, 0, sizeof f->port))
			return sw_fail(err, errlen, "bridge %s: static entry %u: port not terminated",
				    b->name, i);
		if (!bridge_has_port(b, f->port))
			return sw_fail(err, errlen, "bridge %s: static entry %u: no port %s in bridge %s",
				    b->name, i, f->port, b->name);
		if (sw_fdb_static_check(f->vlan, f->mac, e, sizeof e))
			return sw_fail(err, errlen, "bridge %s: static entry %u: %s", b->name, i, e);
		for (unsigned k = 0; k < i; k++)
			if (b->fdb[k].vlan == f->vlan && !memcmp(b->fdb[k].mac, f->mac, 6)) {
				sw_mac_format(f->mac, m);
				return sw_fail(err, errlen, "bridge %s: static entry for %s on VLAN %u given twice",
					    b->name, m, f->vlan);
			}
	}
	return 0;
}

json_t *sw_bridge_fdb_to_json(const struct sw_bridge_config *b)
{
	if (!b->nfdb)
		return NULL;
	json_t *a = json_array();
	for (unsigned i = 0; a && i < b->nfdb; i++) {
		char m[SW_MAC_STR_LEN];
		sw_mac_format(b->fdb[i].mac, m);
		if (json_array_append_new(a, json_pack("{s:s,s:i,s:s}", "port", b->fdb[i].port, "vlan",
						       (int)b->fdb[i].vlan, "mac", m))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int sw_bridge_fdb_from_json(struct sw_config *c, size_t index, const json_t *fdb, char *err,
			    size_t errlen)
{
	char where[64], e[256], sb[64];
	if (index >= c->nbridges)
		return sw_fail(err, errlen, "bridges[%zu]: no such bridge", index);
	struct sw_bridge_config *b = &c->bridges[index];
	if (!json_is_array(fdb))
		return sw_fail(err, errlen, "bridges[%zu]: 'fdb' must be an array, not %s", index,
			    sw_json_kind(fdb));
	if (json_array_size(fdb) > SW_CONFIG_MAX_FDB)
		return sw_fail(err, errlen, "bridges[%zu]: too many static FDB entries (max %d)", index,
			    SW_CONFIG_MAX_FDB);
	size_t i;
	json_t *je;
	json_array_foreach(fdb, i, je) {
		snprintf(where, sizeof where, "bridges[%zu].fdb[%zu]", index, i);
		if (!json_is_object(je))
			return sw_fail(err, errlen, "%s: must be an object, not %s", where, sw_json_kind(je));
		const char *k;
		json_t *v;
		json_object_foreach(je, k, v) {
			if (strcmp(k, "port") && strcmp(k, "vlan") && strcmp(k, "mac"))
				return sw_fail(err, errlen, "%s: unknown field '%s'", where,
					    sw_shown(k, sb, sizeof sb));
		}
		static const char *const keys[] = {"port", "vlan", "mac"};
		for (int f = 0; f < 3; f++) {
			v = json_object_get(je, keys[f]);
			if (!v)
				return sw_fail(err, errlen, "%s: missing field '%s'", where, keys[f]);
			bool want_int = f == 1;
			if (want_int ? !json_is_integer(v) : !json_is_string(v))
				return sw_fail(err, errlen, "%s: '%s' must be %s, not %s", where, keys[f],
					    want_int ? "an integer" : "a string", sw_json_kind(v));
		}
		const char *port = json_string_value(json_object_get(je, "port"));
		json_int_t vlan = json_integer_value(json_object_get(je, "vlan"));
		uint8_t mac[6];
		if (vlan < 0 || vlan > SW_VLAN_MAX)
			return sw_fail(err, errlen, "%s: 'vlan' is out of range (0-%d)", where, SW_VLAN_MAX);
		if (sw_name_check("port", port, e, sizeof e) ||
		    sw_mac_parse(json_string_value(json_object_get(je, "mac")), mac, e, sizeof e))
			return sw_fail(err, errlen, "%s: %s", where, e);
		if (sw_bridge_fdb_find(b, (uint16_t)vlan, mac))
			return sw_fail(err, errlen, "%s: same VLAN and MAC as an earlier entry", where);
		if (sw_config_add_fdb(c, b->name, port, (unsigned)vlan, mac, e, sizeof e))
			return sw_fail(err, errlen, "%s: %s", where, e);
	}
	return 0;
}
