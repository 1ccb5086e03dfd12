/*
 * config.h — vnet-switchd's configuration model: bridges, their ports (type,
 * options, VLAN settings, OpenFlow port number) and their flows (text +
 * priority). This is what the state file holds and what the daemon applies;
 * it knows nothing of the data plane, so it can be unit-tested and fuzzed.
 *
 * Rules (as ovs-vsctl):
 *   - bridge and port names are 1..15 characters of [A-Za-z0-9_.-]
 *     (IFNAMSIZ - 1, so a name is usable as a tap/interface name);
 *   - a port name is unique across all bridges and may not equal a bridge
 *     name (a bridge has an implicit port of its own name in OVS);
 *   - port types: vhost-user, tap, afpacket, internal, null;
 *   - options: at most SW_PORT_MAX_OPTIONS key=value pairs; keys 1..31 of
 *     [A-Za-z0-9_.:-], values 1..127 printable characters. The keys type,
 *     tag, trunks and ofport_request are not options: they set the fields
 *     below (see sw_port_config_set());
 *   - tag=N (1..4094) makes an access port; trunks=LIST (e.g. "1,2,10-20",
 *     VLANs 0..4095) restricts a trunk port; the two are exclusive. A port
 *     with neither is a trunk for every VLAN (OVS's default);
 *   - ofport: 1..SW_OFPORT_MAX, unique in its bridge; assigned the lowest
 *     free number unless ofport_request=N asks for one; kept across restarts
 *     so flows naming in_port=N stay right;
 *   - flows: "[priority=N,]match,actions=LIST" as ovs-ofctl add-flow. The
 *     priority (0..65535, default 32768) is kept apart from the text; a flow
 *     with the same priority and match as an existing one replaces it.
 *     Only the shape is checked here (printable, one non-empty actions=);
 *     the daemon's flow parser checks the fields;
 *   - static FDB entries (as `ovs-appctl fdb/add`): per bridge at most
 *     SW_CONFIG_MAX_FDB of {port of that bridge, VLAN 0..4095, unicast MAC};
 *     the same (VLAN, MAC) again replaces the entry (it moves to the new
 *     port). Deleting a port or its bridge deletes its entries.
 *
 * Every mutating function validates fully before changing anything: on
 * error it returns -1, writes a message naming the problem into err
 * ("no bridge br9", "port vm1 exists") and leaves the config unchanged.
 *
 * Pointers returned by the lookups stay valid until the next mutation.
 * Not thread-safe: one owner (the daemon's control thread).
 */
#ifndef VNET_SWITCH_CONFIG_H
#define VNET_SWITCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switch/port.h"

struct json_t; /* jansson's json_t, for callers that want the tree */

#define SW_NAME_MAX 15            /* bridge and port names, without the NUL */
#define SW_PORT_TYPE_MAX 15
#define SW_FLOW_TEXT_MAX 1024
#define SW_FLOW_DEFAULT_PRIORITY 32768
#define SW_CONFIG_MAX_BRIDGES 64
#define SW_CONFIG_MAX_PORTS 1024  /* per bridge */
#define SW_CONFIG_MAX_FLOWS 65536 /* per bridge */
#define SW_CONFIG_MAX_FDB 4096   /* static FDB entries per bridge */
#define SW_VLAN_MAX 4095
#define SW_MAC_STR_LEN 18         /* "52:54:00:00:00:05" with the NUL */
#define SW_STATE_FORMAT "vnet-switchd-state"
#define SW_STATE_VERSION 1

struct sw_port_config {
	char name[SW_NAME_MAX + 1];
	char type[SW_PORT_TYPE_MAX + 1];
	uint16_t ofport;          /* 0 in a request = assign one */
	uint16_t tag;             /* access VLAN, 0 = none */
	uint64_t trunks[64];      /* bitmap of VLANs 0..4095; all 0 = none given */
	struct sw_options options; /* type-specific, without type/tag/trunks */
};

struct sw_flow_config {
	uint16_t priority;
	char *text;               /* "match,actions=..." without priority= */
};

/* A static FDB entry: frames to mac in vlan go to port (of the same bridge). */
struct sw_fdb_static_config {
	char port[SW_NAME_MAX + 1];
	uint16_t vlan;
	uint8_t mac[6];
};

struct sw_bridge_config {
	char name[SW_NAME_MAX + 1];
	struct sw_port_config *ports;
	unsigned nports, ports_cap;
	struct sw_flow_config *flows; /* in insertion order */
	unsigned nflows, flows_cap;
	struct sw_fdb_static_config *fdb; /* static entries, in insertion order */
	unsigned nfdb, fdb_cap;
};

struct sw_config {
	struct sw_bridge_config *bridges;
	unsigned nbridges, bridges_cap;
};

/* set-port: what to change on an existing port. */
struct sw_port_changes {
	struct sw_options set;    /* key=value to set; an empty value removes the key */
	bool set_tag;             /* tag=N (0 or empty clears) */
	uint16_t tag;
	bool set_trunks;          /* trunks=LIST (empty clears) */
	uint64_t trunks[64];
};

/* ---- messages (shared by the config, control and flow code) ---- */

/* Writes the message into err (when err/errlen allow) and returns -1. */
int sw_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A printable copy of s for error messages: at most 40 characters then
 * "...", other bytes as \xNN; into buf, which it returns. */
const char *sw_shown(const char *s, char *buf, size_t len);

/* ---- names, VLANs, options ---- */

bool sw_name_valid(const char *name);
/* -1 with "invalid <what> name 'x': ..." when invalid. */
int sw_name_check(const char *what, const char *name, char *err, size_t errlen);
bool sw_port_type_known(const char *type);
/* "vhost-user, tap, afpacket, internal, null" */
const char *sw_port_types_list(void);

/* "1,2,10-20" -> bitmap (cleared first); "" gives an empty set. */
int sw_vlan_list_parse(const char *s, uint64_t bm[64], char *err, size_t errlen);
/* bitmap -> "1,2,10-20" ("" when empty); truncated to len. */
void sw_vlan_list_format(const uint64_t bm[64], char *buf, size_t len);
bool sw_vlan_list_empty(const uint64_t bm[64]);
bool sw_vlan_list_has(const uint64_t bm[64], unsigned vlan);
/* "10" -> 10; "" or "0" -> 0 (none); -1 on a bad number or > 4094. */
int sw_tag_parse(const char *s, uint16_t *tag, char *err, size_t errlen);

/* Looks up an option in a config (same as sw_options_get, but without the
 * data plane). NULL when absent. */
const char *sw_config_option(const struct sw_options *opts, const char *key);

/* ---- ports ---- */

void sw_port_config_init(struct sw_port_config *p, const char *name);
/* Applies one key=value given to add-port: type, tag, trunks,
 * ofport_request, or else an option (replacing the same key). */
int sw_port_config_set(struct sw_port_config *p, const char *key, const char *value,
		       char *err, size_t errlen);
/* Name, type, options, VLAN settings (not uniqueness, not ofport range 0). */
int sw_port_config_validate(const struct sw_port_config *p, char *err, size_t errlen);

void sw_port_changes_init(struct sw_port_changes *ch);
/* Applies one key=value given to set-port ("type" and "ofport_request"
 * cannot be changed). */
int sw_port_changes_set(struct sw_port_changes *ch, const char *key, const char *value,
			char *err, size_t errlen);

/* ---- flows ---- */

/* Splits "priority=N,...,actions=..." into priority and the rest, checking
 * the shape. text_out gets a malloc'd copy without priority=. */
int sw_flow_text_parse(const char *flow, uint16_t *priority, char **text_out, char *err, size_t errlen);
/* "priority=N,text" into buf (truncated). */
void sw_flow_text_format(const struct sw_flow_config *f, char *buf, size_t len);
/* The match part of a flow text (before ",actions="), into buf. */
void sw_flow_text_match(const char *text, char *buf, size_t len);
/* Non-strict del-flows semantics (ovs-ofctl): every field of `match` (minus
 * priority) appears with the same value in the flow's match. NULL or ""
 * matches every flow. */
bool sw_flow_text_matches(const struct sw_flow_config *f, const char *match);

/* ---- the configuration ---- */

struct sw_config *sw_config_new(void);
void sw_config_free(struct sw_config *c);
struct sw_config *sw_config_dup(const struct sw_config *c);

struct sw_bridge_config *sw_config_bridge(const struct sw_config *c, const char *name);
/* Finds a port in any bridge; *bridge (if non-NULL) gets its bridge. */
struct sw_port_config *sw_config_port(const struct sw_config *c, const char *name,
				      struct sw_bridge_config **bridge);
struct sw_port_config *sw_bridge_port_by_ofport(const struct sw_bridge_config *b, uint16_t ofport);

int sw_config_add_bridge(struct sw_config *c, const char *name, char *err, size_t errlen);
/* Removes the bridge with its ports and flows. */
int sw_config_del_bridge(struct sw_config *c, const char *name, char *err, size_t errlen);
/* Copies p into bridge; p->ofport 0 = lowest free. *ofport_out (if
 * non-NULL) gets the number given. */
int sw_config_add_port(struct sw_config *c, const char *bridge, const struct sw_port_config *p,
		       uint16_t *ofport_out, char *err, size_t errlen);
/* bridge NULL or "": the port's own bridge. */
int sw_config_del_port(struct sw_config *c, const char *bridge, const char *port, char *err,
		       size_t errlen);
int sw_config_set_port(struct sw_config *c, const char *port, const struct sw_port_changes *ch,
		       char *err, size_t errlen);
/* Adds (or replaces same priority+match) a flow given as ovs-ofctl text. */
int sw_config_add_flow(struct sw_config *c, const char *bridge, const char *flow, char *err,
		       size_t errlen);
/* Removes flows for which sw_flow_text_matches(f, match); *ndeleted if non-NULL. */
int sw_config_del_flows(struct sw_config *c, const char *bridge, const char *match,
			unsigned *ndeleted, char *err, size_t errlen);
/* Same with the daemon's own predicate (e.g. its flow parser's "covers"). */
int sw_config_del_flows_if(struct sw_config *c, const char *bridge,
			   bool (*pred)(const struct sw_flow_config *f, void *arg), void *arg,
			   unsigned *ndeleted, char *err, size_t errlen);

/* ---- static FDB entries (config_fdb.c) ---- */

/* "52:54:00:00:00:05" (six bytes of two hex digits, either case, joined
 * by ':') -> mac; -1 with "invalid MAC 'xx' (expected ...)". */
int sw_mac_parse(const char *s, uint8_t mac[6], char *err, size_t errlen);
/* Lower-case "52:54:00:00:00:05" into buf (SW_MAC_STR_LEN bytes). */
void sw_mac_format(const uint8_t mac[6], char buf[SW_MAC_STR_LEN]);
/* VLAN and MAC of a static entry: VLAN 0..4095, MAC not multicast
 * ("MAC 01:00:5e:00:00:01 is multicast"). */
int sw_fdb_static_check(unsigned vlan, const uint8_t mac[6], char *err, size_t errlen);

/* The bridge's static entry for (vlan, mac), or NULL. */
struct sw_fdb_static_config *sw_bridge_fdb_find(const struct sw_bridge_config *b, uint16_t vlan,
						const uint8_t mac[6]);
/* Adds (or replaces the same VLAN + MAC: moves) a static entry. Errors:
 * "no bridge br9", "no port vm9 in bridge br0", VLAN/MAC as above, "bridge
 * br0 has too many static FDB entries (max 4096)". */
int sw_config_add_fdb(struct sw_config *c, const char *bridge, const char *port, unsigned vlan,
		      const uint8_t mac[6], char *err, size_t errlen);
/* Removes one: "no static entry for 52:54:00:00:00:05 on VLAN 0 in br0".
 * *port_out (if non-NULL, SW_NAME_MAX + 1 bytes) gets the entry's port. */
int sw_config_del_fdb(struct sw_config *c, const char *bridge, unsigned vlan,
		      const uint8_t mac[6], char *port_out, char *err, size_t errlen);
/* Removes the bridge's entries naming port; returns how many. */
unsigned sw_bridge_fdb_del_port(struct sw_bridge_config *b, const char *port);
/* sw_config_validate()'s part for b's static entries. */
int sw_bridge_fdb_validate(const struct sw_bridge_config *b, char *err, size_t errlen);
/* b's entries as a JSON array, NULL when there are none (or no memory). */
struct json_t *sw_bridge_fdb_to_json(const struct sw_bridge_config *b);
/* Adds the entries of the JSON array `fdb` (see below) to bridge number
 * index of c (its ports already added); err as "bridges[0].fdb[1]: ...". */
int sw_bridge_fdb_from_json(struct sw_config *c, size_t index, const struct json_t *fdb,
			    char *err, size_t errlen);

/* Checks a whole config (names, uniqueness, ports, flows, static FDB). */
int sw_config_validate(const struct sw_config *c, char *err, size_t errlen);

/* ---- JSON ----
 * {"format":"vnet-switchd-state","version":1,"bridges":[
 *   {"name":"br0",
 *    "ports":[{"name":"vm1","ofport":1,"type":"vhost-user",
 *              "options":{"mode":"server"},"tag":10,"trunks":"1,2,10-20"}],
 *    "flows":[{"priority":100,"text":"in_port=1,actions=output:2"}],
 *    "fdb":[{"port":"vm1","vlan":0,"mac":"52:54:00:00:00:05"}]}]}
 * tag and trunks are omitted when unset; options when empty; fdb (static
 * entries) when there are none.
 */
/* "an object", "a string", ... for error messages about a JSON value. */
const char *sw_json_kind(const struct json_t *j);

struct json_t *sw_config_to_json(const struct sw_config *c);
/* Pretty-printed, ending in "\n"; malloc'd (NULL on allocation failure). */
char *sw_config_to_string(const struct sw_config *c);
/* One port as in "ports" above (also used by `show`). */
struct json_t *sw_port_config_to_json(const struct sw_port_config *p);
/* Parses and validates; err says where ("line 3: ..." or
 * "bridges[0].ports[1].name: ..."). On error *out is untouched. */
int sw_config_from_json(const struct json_t *j, struct sw_config **out, char *err, size_t errlen);
int sw_config_from_string(const char *buf, size_t len, struct sw_config **out, char *err,
			  size_t errlen);

#endif
