/*
 * ctl_proto.h — vnet-switchd's control protocol: JSON over a Unix stream
 * socket, one JSON object per line each way. The client sends a request, the
 * daemon answers with one response line; a connection may carry several
 * requests in turn.
 *
 * Limits: a request line is at most CTL_MAX_REQUEST bytes (else the answer is
 * {"ok":false,"error":"request too large ..."} and the connection closes);
 * a started line must be complete within CTL_READ_TIMEOUT_MS; at most 64
 * live connections (the idlest makes room); an answer stalled 5 s fails.
 *
 * Every response is an object with "ok". On failure:
 *   {"ok":false,"error":"no bridge br9"}
 * On success "ok":true plus the command's data below. Unknown fields in a
 * request are refused (typos fail loudly). Names are 1..15 of [A-Za-z0-9_.-].
 *
 * Requests and responses (fields in [] are optional):
 *
 *   add-br      {"cmd":"add-br","bridge":"br0"}                -> {"ok":true}
 *   del-br      {"cmd":"del-br","bridge":"br0"}                -> {"ok":true}
 *   add-port    {"cmd":"add-port","bridge":"br0","port":"vm1",
 *                "options":{"type":"vhost-user","mode":"server",...},
 *                ["type":"tap"], ["tag":10], ["trunks":"1,2,10-20"],
 *                ["ofport_request":3]}
 *               -> {"ok":true,"ofport":1}
 *               type/tag/trunks/ofport_request may be given at top level or
 *               inside options; option values are strings (numbers and
 *               booleans are accepted and turned into strings).
 *   del-port    {"cmd":"del-port",["bridge":"br0"],"port":"vm1"} -> {"ok":true}
 *   set-port    {"cmd":"set-port","port":"vm1","options":{"queues":"2",
 *                "tag":"10","trunks":"","path":""}}          -> {"ok":true}
 *               an empty value removes an option / clears tag or trunks;
 *               type and ofport_request cannot be changed.
 *   show        {"cmd":"show"}
 *               -> {"ok":true,"bridges":[{"name":"br0","ports":[
 *                    {"name":"vm1","ofport":1,"type":"vhost-user",
 *                     "options":{"mode":"server"},"tag":10,"trunks":"",
 *                     "state":"connected"}]}]}
 *               tag 0 = none, trunks "" = none (a trunk for every VLAN
 *               when tag is 0 too); state is free text from the port type.
 *   list-ports  {"cmd":"list-ports","bridge":"br0"}  -> {"ok":true,"ports":["vm1","vm2"]}
 *   fdb-show    {"cmd":"fdb-show","bridge":"br0"}
 *               -> {"ok":true,"entries":[{"port":"vm1","ofport":1,"vlan":0,
 *                    "mac":"52:54:00:12:34:01","age":3,"static":false}]}
 *               age in seconds since last seen (0 for static entries).
 *   fdb-flush   {"cmd":"fdb-flush","bridge":"br0"}   -> {"ok":true,["flushed":N]}
 *               forgets the learned entries; static ones stay (configuration).
 *   fdb-add     {"cmd":"fdb-add","bridge":"br0","port":"vm1","vlan":0,
 *                "mac":"52:54:00:00:00:05"}                 -> {"ok":true}
 *               a static entry (as ovs-appctl fdb/add BR PORT VLAN MAC):
 *               never ages, not moved by learning, saved in the state file;
 *               the same VLAN + MAC again moves it to the new port. vlan is
 *               0-4095 (0 = untagged), mac a unicast "xx:xx:xx:xx:xx:xx".
 *               Deleting the port (or bridge) deletes its static entries.
 *   fdb-del     {"cmd":"fdb-del","bridge":"br0","vlan":0,
 *                "mac":"52:54:00:00:00:05"}                 -> {"ok":true}
 *               removes a static entry ("no static entry for ... on VLAN 0
 *               in br0" when there is none).
 *   add-flow    {"cmd":"add-flow","bridge":"br0",
 *                "flow":"priority=100,in_port=1,actions=output:2"} -> {"ok":true}
 *   del-flows   {"cmd":"del-flows","bridge":"br0",["match":"in_port=1"]}
 *               -> {"ok":true,["deleted":N]}   (no match: every flow)
 *   dump-flows  {"cmd":"dump-flows","bridge":"br0"}
 *               -> {"ok":true,"flows":[{"priority":100,
 *                    "text":"in_port=1,actions=output:2",
 *                    "n_packets":10,"n_bytes":980}]}
 *               text is the flow without priority= (as config.h keeps it).
 *   port-stats  {"cmd":"port-stats",["port":"vm1"]}   (no port: every port)
 *               -> {"ok":true,"ports":[{"name":"vm1","bridge":"br0",
 *                    "rx_packets":..,"rx_bytes":..,"rx_dropped":..,
 *                    "tx_packets":..,"tx_bytes":..,"tx_dropped":..,"errors":..,
 *                    "drops":{"malformed":0,"vlan":3,...},
 *                    "queues":[{"queue":0,"rx_packets":..,...,"errors":..}]}]}
 *               drops: frames the forwarding pipeline dropped after receiving
 *               them on this port, by reason (every reason of forward.h's
 *               sw_drop_reason_name, zeros included: a stable schema).
 *   bridge-stats {"cmd":"bridge-stats",["bridge":"br0"]}  (no bridge: every bridge)
 *               -> {"ok":true,"bridges":[{"name":"br0","rx_packets":..,
 *                    "rx_bytes":..,"drops":{"malformed":0,"vlan":3,...},
 *                    "fdb":{"entries":5,"static":1,"learned":9,"moves":0,
 *                           "evicted":0,"aged":4,"refused":0},
 *                    "flows":2}]}
 *               rx: frames the bridge's ports received; drops: as port-stats,
 *               summed over the bridge; fdb: entries now (static among them)
 *               and counters since the bridge was created (learned = new
 *               dynamic entries); flows: flows in the table.
 *   pmd-stats   {"cmd":"pmd-stats"}
 *               -> {"ok":true,"pmds":[{"pmd":0,"cpu":0,"rx_queues":2,
 *                    "packets":..,"loops":..,"busy_loops":..,"sleeps":..,
 *                    "busy_cycles":..,"idle_cycles":..,"cycles_per_packet":41.5,
 *                    "tsc_hz":..}]}
 *               per poll-mode thread since it started (as ovs-appctl
 *               dpif-netdev/pmd-stats-show): packets received; busy =
 *               rounds that moved frames, idle = empty rounds (time asleep
 *               is in neither); cycles are TSC cycles (util/cycles.h), so
 *               cycles_per_packet = busy_cycles / packets compares with
 *               testpmd --record-core-cycles and OVS's "processing cycles".
 *   capture     {"cmd":"capture","port":"vm1","file":"/abs/path.pcap",
 *                ["count":10],["timeout":30]}
 *               count 0 = until the timeout; timeout 1..86400 s, default 30;
 *               the daemon writes the pcap itself and answers when count
 *               frames were written or the timeout passed:
 *               -> {"ok":true,"file":"/abs/path.pcap","captured":10,"timed_out":false}
 *   version     {"cmd":"version"} -> {"ok":true,"version":"0.1.0","protocol":1}
 *
 * Thread-safety: ctl_parse_request / ctl_handle_request and the reply
 * builders have no shared state; one reply belongs to one thread at a time.
 */
#ifndef VNET_SWITCH_CTL_PROTO_H
#define VNET_SWITCH_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switch/config.h"

struct json_t;

#define CTL_PROTO_VERSION 1
#define CTL_MAX_REQUEST (64u * 1024u)
#define CTL_MAX_RESPONSE (64u * 1024u * 1024u) /* what a client accepts */
#define CTL_READ_TIMEOUT_MS 5000
#define CTL_DEFAULT_SOCKET "/run/vnet/vnet-switchd.ctl"
#define CTL_SOCKET_ENV "VNET_CTL_SOCKET"
#define CTL_CAPTURE_DEFAULT_TIMEOUT 30
#define CTL_CAPTURE_MAX_TIMEOUT 86400
#define CTL_CAPTURE_MAX_COUNT 100000000u
#define CTL_PATH_MAX 4096
#ifndef VNET_VERSION
#define VNET_VERSION "0.1.0"
#endif

enum ctl_cmd {
	CTL_CMD_NONE = 0,
	CTL_CMD_ADD_BR,
	CTL_CMD_DEL_BR,
	CTL_CMD_ADD_PORT,
	CTL_CMD_DEL_PORT,
	CTL_CMD_SET_PORT,
	CTL_CMD_SHOW,
	CTL_CMD_LIST_PORTS,
	CTL_CMD_FDB_SHOW,
	CTL_CMD_FDB_FLUSH,
	CTL_CMD_FDB_ADD,
	CTL_CMD_FDB_DEL,
	CTL_CMD_ADD_FLOW,
	CTL_CMD_DEL_FLOWS,
	CTL_CMD_DUMP_FLOWS,
	CTL_CMD_PORT_STATS,
	CTL_CMD_BRIDGE_STATS,
	CTL_CMD_PMD_STATS,
	CTL_CMD_CAPTURE,
	CTL_CMD_VERSION,
	CTL_CMD__COUNT
};

/* "add-br"...; NULL for CTL_CMD_NONE / out of range. */
const char *ctl_cmd_name(enum ctl_cmd cmd);
/* CTL_CMD_NONE when unknown. */
enum ctl_cmd ctl_cmd_lookup(const char *name);

/* A parsed, validated request. */
struct ctl_request {
	enum ctl_cmd cmd;
	char bridge[SW_NAME_MAX + 1]; /* "" when absent */
	char port[SW_NAME_MAX + 1];   /* "" when absent */
	struct sw_port_config port_cfg;  /* add-port: name = port, type, options, VLANs */
	struct sw_port_changes changes;  /* set-port */
	char *flow;                      /* add-flow: flow; del-flows: match or NULL */
	unsigned count, timeout_s;       /* capture */
	char file[CTL_PATH_MAX];         /* capture */
	uint16_t vlan;                   /* fdb-add, fdb-del */
	uint8_t mac[6];                  /* fdb-add, fdb-del */
};

/* Parses one request line (a trailing "\n" is fine). 0, or -1 with err
 * ("unknown command 'foo'", "add-port: missing field 'bridge'", ...).
 * ctl_request_free() after either. */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen);
void ctl_request_free(struct ctl_request *req);

/* ---- the response, built by the daemon's callbacks ---- */

struct ctl_reply;

struct ctl_counters {
	uint64_t rx_packets, rx_bytes, rx_dropped;
	uint64_t tx_packets, tx_bytes, tx_dropped;
	uint64_t errors;
};

/* bridge-stats: a bridge's counters (drop reasons: ctl_reply_add_drop_reason). */
struct ctl_bridge_counters {
	uint64_t rx_packets, rx_bytes;
	uint64_t fdb_entries, fdb_static;
	uint64_t fdb_learned, fdb_moves, fdb_evicted, fdb_aged, fdb_refused;
	uint64_t flows;
};

/* pmd-stats: one poll-mode thread (cpu -1: not pinned). */
struct ctl_pmd_counters {
	unsigned pmd, rx_queues;
	int cpu;
	uint64_t packets, loops, busy_loops, sleeps;
	uint64_t busy_cycles, idle_cycles, tsc_hz;
};

struct ctl_reply *ctl_reply_new(enum ctl_cmd cmd);
void ctl_reply_free(struct ctl_reply *r);
enum ctl_cmd ctl_reply_cmd(const struct ctl_reply *r);
/* Marks the reply failed with a message (the first error wins). */
void ctl_reply_error(struct ctl_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool ctl_reply_failed(const struct ctl_reply *r);
/* Generic top-level fields ("ofport", "flushed", "deleted", ...). */
void ctl_reply_set_int(struct ctl_reply *r, const char *key, long long v);
void ctl_reply_set_str(struct ctl_reply *r, const char *key, const char *v);
void ctl_reply_set_bool(struct ctl_reply *r, const char *key, bool v);
/* The reply object itself, for anything the helpers do not cover. */
struct json_t *ctl_reply_json(struct ctl_reply *r);

/* show: a bridge, then its ports (each goes into the last bridge added). */
void ctl_reply_add_bridge(struct ctl_reply *r, const char *name);
void ctl_reply_add_port(struct ctl_reply *r, const struct sw_port_config *p, const char *state);
/* show: the whole config at once; state(arg, port) may be NULL. */
void ctl_reply_show_config(struct ctl_reply *r, const struct sw_config *c,
			   const char *(*state)(void *arg, const struct sw_port_config *p),
			   void *arg);
/* list-ports */
void ctl_reply_add_port_name(struct ctl_reply *r, const char *name);
/* fdb-show; port may be NULL (then only ofport). */
void ctl_reply_add_fdb(struct ctl_reply *r, const char *port, uint16_t ofport, uint16_t vlan,
		       const uint8_t mac[6], unsigned age_s, bool is_static);
/* dump-flows */
void ctl_reply_add_flow(struct ctl_reply *r, uint16_t priority, const char *text,
			uint64_t n_packets, uint64_t n_bytes);
/* port-stats: a port's totals, then (optional) its queues and drop reasons,
 * which go into the last port added. bridge may be NULL. */
void ctl_reply_add_port_stats(struct ctl_reply *r, const char *name, const char *bridge,
			      const struct ctl_counters *total);
void ctl_reply_add_queue_stats(struct ctl_reply *r, unsigned queue, const struct ctl_counters *q);
/* port-stats: into the last port added; bridge-stats: into the last bridge. */
void ctl_reply_add_drop_reason(struct ctl_reply *r, const char *reason, uint64_t count);
/* bridge-stats: one bridge (then its drop reasons). */
void ctl_reply_add_bridge_stats(struct ctl_reply *r, const char *name,
				const struct ctl_bridge_counters *c);
/* pmd-stats */
void ctl_reply_add_pmd_stats(struct ctl_reply *r, const struct ctl_pmd_counters *c);
/* capture */
void ctl_reply_capture(struct ctl_reply *r, const char *file, uint64_t captured, bool timed_out);

/* The response line ("...\n", malloc'd) and frees r. */
char *ctl_reply_finish(struct ctl_reply *r);

/* ---- the daemon's side ---- */

/* Returned by a callback that keeps the reply to finish it later (capture):
 * it must eventually call ctl_reply_finish(r) and send the line itself. */
#define CTL_ASYNC 1

/*
 * One callback per command, implemented by the daemon. Arguments are already
 * validated for shape (names, VLANs, options, flow shape); the callback
 * checks against its state ("no bridge br9", "port vm1 exists") and must
 * leave the state unchanged on error — sw_config_*() do that for the config.
 * Return 0 when done (the reply is ok unless ctl_reply_error() was called),
 * -1 on error (with ctl_reply_error(); else "internal error" is sent), or
 * CTL_ASYNC. A NULL callback answers "<cmd>: not supported by this daemon";
 * version may be NULL (then {"version":VNET_VERSION,"protocol":1}).
 */
struct ctl_ops {
	int (*add_br)(void *arg, const char *bridge, struct ctl_reply *r);
	int (*del_br)(void *arg, const char *bridge, struct ctl_reply *r);
	/* port->name is the port; port->ofport is ofport_request or 0; set
	 * "ofport" in the reply (ctl_reply_set_int) */
	int (*add_port)(void *arg, const char *bridge, const struct sw_port_config *port,
			struct ctl_reply *r);
	/* bridge NULL: the port's own bridge */
	int (*del_port)(void *arg, const char *bridge, const char *port, struct ctl_reply *r);
	int (*set_port)(void *arg, const char *port, const struct sw_port_changes *changes,
			struct ctl_reply *r);
	int (*show)(void *arg, struct ctl_reply *r);
	int (*list_ports)(void *arg, const char *bridge, struct ctl_reply *r);
	int (*fdb_show)(void *arg, const char *bridge, struct ctl_reply *r);
	int (*fdb_flush)(void *arg, const char *bridge, struct ctl_reply *r);
	/* vlan 0-4095, mac unicast (checked) */
	int (*fdb_add)(void *arg, const char *bridge, const char *port, uint16_t vlan,
		       const uint8_t mac[6], struct ctl_reply *r);
	int (*fdb_del)(void *arg, const char *bridge, uint16_t vlan, const uint8_t mac[6],
		       struct ctl_reply *r);
	/* flow as the user gave it ("priority=..,match,actions=.."), shape-checked */
	int (*add_flow)(void *arg, const char *bridge, const char *flow, struct ctl_reply *r);
	/* match NULL: every flow */
	int (*del_flows)(void *arg, const char *bridge, const char *match, struct ctl_reply *r);
	int (*dump_flows)(void *arg, const char *bridge, struct ctl_reply *r);
	/* port NULL: every port */
	int (*port_stats)(void *arg, const char *port, struct ctl_reply *r);
	/* bridge NULL: every bridge */
	int (*bridge_stats)(void *arg, const char *bridge, struct ctl_reply *r);
	int (*pmd_stats)(void *arg, struct ctl_reply *r);
	/* file is absolute; count 0 = until timeout_s */
	int (*capture)(void *arg, const char *port, unsigned count, const char *file,
		       unsigned timeout_s, struct ctl_reply *r);
	int (*version)(void *arg, struct ctl_reply *r);
};

/* Handles one request line: parses it, calls the callback, and sets
 * *response to the malloc'd response line (ending in "\n"). Returns 0, or
 * CTL_ASYNC when the callback kept the reply (*response is NULL then). */
int ctl_handle_request(const char *line, struct ctl_ops *ops, void *arg, char **response);

/* ---- line I/O for both sides (ctl_io.c) ---- */

/* A connection's read buffer. */
struct ctl_conn {
	int fd;
	char *buf;
	size_t len, cap;
};

void ctl_conn_init(struct ctl_conn *c, int fd);
/* Frees the buffer; does not close fd. */
void ctl_conn_release(struct ctl_conn *c);
/* Reads one line (without "\n"), at most max bytes, all of it within
 * timeout_ms (-1 = no limit). 1 = *line set (malloc'd), 0 = clean EOF,
 * -1 = error/timeout/too long (err says). */
int ctl_conn_read_line(struct ctl_conn *c, size_t max, int timeout_ms, char **line, char *err,
		       size_t errlen);
/* Writes all of buf (MSG_NOSIGNAL). 0 or -1 (errno). */
int ctl_write_all(int fd, const char *buf, size_t len);

/* The daemon's acceptor, before it starts a thread for connection fd: true
 * if it may (the thread calls ctl_thread_done() at its end); false when as
 * many threads as the connection table holds already run, and fd has been
 * told "busy" and closed. */
bool ctl_thread_admit(int fd);
void ctl_thread_done(void);

/* Serves one connection until EOF or error: a blocking loop for a thread
 * per connection. Callbacks must not return CTL_ASYNC here (they may block:
 * capture does). Sends "request too large" / timeout errors before closing.
 * Does not close fd. */
void ctl_serve_connection(int fd, struct ctl_ops *ops, void *arg);

/* Client: connects to the socket (path NULL: $VNET_CTL_SOCKET or the
 * default). fd or -1 with err ("cannot connect to ...: is vnet-switchd
 * running?"). */
int ctl_connect(const char *path, char *err, size_t errlen);
/* Client: sends request (a line; "\n" added when missing) and reads the
 * response line within timeout_ms. 0 with *response (malloc'd) or -1. */
int ctl_call(int fd, const char *request, int timeout_ms, char **response, char *err,
	     size_t errlen);

#endif
