#!/usr/bin/env bash
# vnet-switchd end to end with vnet-pktgen front-ends as the "VMs" (issue 4,
# tests 5-8): flows (cross-connect, an ICMP drop rule that lets ARP pass,
# counters), capture to pcap read back by tshark, vnetctl's errors leaving the
# daemon's state unchanged, kill -9 and restart with the configuration
# restored and traffic flowing again, a corrupt state file moved aside, the
# modes of the control socket, vhost-user sockets and state file, static FDB
# entries (steering, persistence, removal) and the per-bridge / per-port
# drop statistics (null ports with rx=generate as the traffic source).
# A tap port moved into a network namespace is the second endpoint for ARP
# and ICMP (busybox ping), answered by `vnet-pktgen --mode responder`.
# Root only (netns, taps); bounded; cleans up. Prints TAP.
#
# Environment: SWITCHD, VNETCTL, PKTGEN (meson passes them; default build/).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/peers.sh"
skip_unless_root

. "$here/lib_switch.sh"
. "$repo/tests/lib/tap.sh" # fail, report, over_budget, need_bins
need_bins SWITCHD VNETCTL PKTGEN

command -v python3 >/dev/null || vnet_skip "python3 missing"
if ! command -v tshark >/dev/null; then
	"$repo/scripts/install-deps.sh" >&2 || true
fi
PING=()
if command -v ping >/dev/null; then
	PING=(ping)
elif [[ -x /bin/busybox ]]; then
	PING=(/bin/busybox ping)
fi

NTESTS=15
BUDGET=240 # seconds; later tests fail fast rather than overrun meson's timeout
work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-swctl.XXXXXX") || exit 1
chmod 0755 "$work"
ns=vswctl$$
tap=vswt$$
tap=${tap:0:15}
pids=()

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	kill_pids "${pids[@]}"
	sw_stop >/dev/null 2>&1
	ip netns del "$ns" 2>/dev/null
	ip link del "$tap" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- CPUs: the switch's PMD on the first allowed CPU, pktgens on the second ---
allowed_cpus
SW_CPU=${cpus[0]:-0}
PG_CPU=${cpus[1]:-$SW_CPU}

# --- helpers -------------------------------------------------------------------
ctl() { vnetctl_ "$@"; }

# json FILE FIELD: a numeric field of pktgen's --json line
json() { sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" "$1" 2>/dev/null | tail -n 1; }

# pg NAME SOCKNAME ARGS...: a pktgen front-end on the switch port's socket, in
# the background (sets pg_pid; output in $work/NAME.json and NAME.err).
pg() {
	local name=$1 sock=$2
	shift 2
	timeout -k 2 60 taskset -c "$PG_CPU" "$PKTGEN" --role frontend --socket "$RUN_DIR/$sock.sock" \
		--json --wait 10 --log-level info "$@" >"$work/$name.json" 2>"$work/$name.err" &
	pg_pid=$!
	pids+=("$pg_pid")
}

# pg_wait PID SECS: waits for a pktgen to exit, TERMs it after SECS; its status.
pg_wait() {
	local pid=$1 end=$((SECONDS + $2)) rc
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.05; done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	local -a keep=()
	local p
	for p in "${pids[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
	return $rc
}

# pg_stop PID: SIGTERM (pktgen prints its summary), bounded.
pg_stop() { pg_wait "$1" 0; }

# port_connected PORT SECS: waits until `show` says the port's front-end is connected.
port_connected() {
	local end=$((SECONDS + $2))
	while ((SECONDS < end)); do
		ctl --json show 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
st = [p["state"] for b in d["bridges"] for p in b["ports"] if p["name"] == sys.argv[1]]
sys.exit(0 if st and "connected" in st[0] and "disconnected" not in st[0] else 1)' "$1" && return 0
		sleep 0.1
	done
	return 1
}

# Normalized `show` (without the ports' free-text state) and flows (without
# counters): what the configuration is, as one line each.
show_cfg() {
	ctl --json show | python3 -c '
import json, sys
d = json.load(sys.stdin)
for b in d.get("bridges", []):
    for p in b["ports"]:
        p.pop("state", None)
print(json.dumps(d, sort_keys=True))' 2>/dev/null
}
flows_cfg() { # BR
	ctl --json dump-flows "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for f in d.get("flows", []):
    f.pop("n_packets", None); f.pop("n_bytes", None)
print(json.dumps(d, sort_keys=True))' 2>/dev/null
}
# flow_field BR TEXT-SUBSTRING FIELD: n_packets/n_bytes of the first matching flow
flow_field() {
	ctl --json dump-flows "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for f in d.get("flows", []):
    if sys.argv[1] in f["text"]:
        print(f[sys.argv[2]]); break' "$2" "$3" 2>/dev/null
}
# port_field PORT FIELD: a counter of port-stats
port_field() {
	ctl --json port-stats "$1" | python3 -c '
import json, sys
print(json.load(sys.stdin)["ports"][0][sys.argv[1]])' "$2" 2>/dev/null
}
# raw_request JSON: sends one request line to the daemon, prints the answer line.
raw_request() {
	python3 - "$VNET_CTL_SOCKET" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip())
EOF
}
mode_of() { stat -c %a "$1" 2>/dev/null; }
nsx() { ip netns exec "$ns" "$@"; }
ping_ns() { # COUNT: pings the responder from the netns; exit status of ping
	timeout 20 ip netns exec "$ns" "${PING[@]}" -c "$1" -i 0.2 -W 1 "$RESP_IP" >"$work/ping.out" 2>&1
}

# start_switch: the daemon (lib_switch.sh) in its own dir (run dir = state dir).
SWDIR=$work/sw
start_switch() {
	sw_start "$SWDIR" --pmd-cpus "$SW_CPU" --log-level debug || return 1
	RUN_DIR=$SW_DIR
	STATE_FILE=$SW_DIR/state.json
	SW_LOG=$SW_DIR/switchd.log
}

RESP_IP=10.77.$((RANDOM % 200 + 10)).1
NS_IP=${RESP_IP%.1}.2
RESP_MAC=02:00:5e:77:00:01

echo "1..$NTESTS"
echo "# switch PMD on CPU $SW_CPU, pktgens on CPU $PG_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1: daemon up, version, file modes ------------------------------------------
name="daemon starts; vnetctl version; control socket 0600, vhost-user sockets 0660, state file 0600"
if start_switch; then
	ctl add-br br0 >/dev/null || fail "add-br br0 failed"
	for p in vm1 vm2 vm3; do
		ctl add-port br0 $p type=vhost-user >/dev/null || fail "add-port br0 $p failed"
	done
	v=$(ctl version 2>&1) || fail "vnetctl version: exit $?"
	[[ $v == *"vnetctl "[0-9]* && $v == *"vnet-switchd "[0-9]*"protocol 1"* ]] ||
		fail "vnetctl version printed '$v' (want both versions and protocol 1)"
	jv=$(ctl --json version 2>&1)
	[[ $jv == *'"ok":true'* && $jv == *'"version":"'* && $jv == *'"protocol":1'* ]] ||
		fail "vnetctl --json version: '$jv'"
	[[ $(mode_of "$VNET_CTL_SOCKET") == 600 ]] || fail "control socket mode $(mode_of "$VNET_CTL_SOCKET"), want 600"
	for p in vm1 vm2 vm3; do
		[[ -S $RUN_DIR/$p.sock ]] || fail "no socket $RUN_DIR/$p.sock"
		[[ $(mode_of "$RUN_DIR/$p.sock") == 660 ]] || fail "$p.sock mode $(mode_of "$RUN_DIR/$p.sock"), want 660"
	done
	[[ -f $STATE_FILE ]] || fail "no state file $STATE_FILE"
	[[ $(mode_of "$STATE_FILE") == 600 ]] || fail "state file mode $(mode_of "$STATE_FILE"), want 600"
	echo "# $(head -n1 <<<"$v"); $(tail -n1 <<<"$v"); state file $STATE_FILE"
else
	fail "vnet-switchd did not start"
fi
report "$name"
if ((any_fail)); then
	echo "Bail out! the daemon did not come up"
	exit 1
fi

# --- 2: in_port cross-connect ------------------------------------------------------
N=1000
name="flows: in_port=1,actions=output:2 sends vm1's $N frames to vm2 only; n_packets=$N"
if ! over_budget "$name"; then
	ctl add-flow br0 "priority=100,in_port=1,actions=output:2" >/dev/null || fail "add-flow failed"
	pg rx2 vm2 --mode rx --count "$N" --verify
	rx2=$pg_pid
	pg rx3 vm3 --mode rx
	rx3=$pg_pid
	port_connected vm2 10 && port_connected vm3 10 || fail "vm2/vm3 front-ends did not connect"
	pg tx1 vm1 --mode tx --count "$N" --rate 1000
	pg_wait "$pg_pid" 30 || fail "tx pktgen exit status $?"
	pg_wait "$rx2" 10 || fail "vm2 rx pktgen exit status $? (did not get $N frames in time)"
	sleep 0.5
	pg_stop "$rx3"
	[[ $(json "$work/tx1.json" tx_packets) == "$N" ]] || fail "vm1 sent $(json "$work/tx1.json" tx_packets), want $N"
	[[ $(json "$work/rx2.json" rx_packets) == "$N" ]] || fail "vm2 received $(json "$work/rx2.json" rx_packets), want $N"
	[[ $(json "$work/rx2.json" errors) == 0 ]] || fail "vm2 verify errors $(json "$work/rx2.json" errors)"
	[[ $(json "$work/rx3.json" rx_packets) == 0 ]] || fail "vm3 received $(json "$work/rx3.json" rx_packets), want 0"
	np=$(flow_field br0 "in_port=1,actions=output:2" n_packets)
	nb=$(flow_field br0 "in_port=1,actions=output:2" n_bytes)
	[[ $np == "$N" ]] || fail "dump-flows n_packets=$np, want $N"
	[[ $nb == $((N * 64)) ]] || fail "dump-flows n_bytes=$nb, want $((N * 64))"
	txd=$(port_field vm2 tx_dropped)
	[[ $txd == 0 ]] || fail "vm2 tx_dropped=$txd (the front-end fell behind: machine busy?)"
	echo "# dump-flows: $(ctl dump-flows br0 | tr '\n' ' ')"
	report "$name" "$work/tx1.err" "$work/rx2.err" "$work/rx3.err"
fi

# --- 3: ICMP drop rule; ARP passes ---------------------------------------------------
name="flows: priority=200,icmp,actions=drop blocks ping but not ARP (tap in a netns <-> responder on vm2); counters move"
resp=
if ! over_budget "$name"; then
	ctl del-flows br0 >/dev/null || fail "del-flows br0 failed"
	if ((${#PING[@]} == 0)); then
		fail "no ping (iputils-ping or busybox) available"
	elif ! ctl add-port br0 tap0 type=tap name="$tap" >/dev/null; then
		fail "add-port tap0 type=tap failed"
	elif ! ip netns add "$ns" || ! ip link set "$tap" netns "$ns"; then
		fail "cannot move $tap into netns $ns"
	else
		nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		nsx sysctl -qw net.ipv6.conf."$tap".disable_ipv6=1 2>/dev/null
		nsx ip addr add "$NS_IP/24" dev "$tap"
		nsx ip link set lo up
		nsx ip link set "$tap" up
		pg resp vm2 --mode responder --ip "$RESP_IP" --mac "$RESP_MAC"
		resp=$pg_pid
		port_connected vm2 10 || fail "responder did not connect to vm2"
		ping_ns 3 || fail "baseline ping without the drop rule failed: $(tr '\n' ' ' <"$work/ping.out")"
		ctl add-flow br0 "priority=200,icmp,actions=drop" >/dev/null || fail "add-flow icmp drop failed"
		nsx ip neigh flush dev "$tap"
		if ping_ns 3; then
			fail "ping succeeded through the icmp drop rule"
		fi
		neigh=$(nsx ip neigh show "$RESP_IP" dev "$tap")
		[[ $neigh == *"lladdr $RESP_MAC"* ]] ||
			fail "ARP did not resolve $RESP_IP behind the drop rule (ip neigh: '$neigh')"
		np=$(flow_field br0 "icmp,actions=drop" n_packets)
		[[ -n $np ]] && ((np >= 3)) || fail "icmp drop flow n_packets=$np, want >= 3"
		echo "# after flush + 3 pings: ip neigh '$neigh'; drop flow n_packets=$np"
		ctl del-flows br0 icmp >/dev/null || fail "del-flows br0 icmp failed"
		ping_ns 2 || fail "ping after del-flows icmp failed"
		[[ -z $(flow_field br0 "icmp" n_packets) ]] || fail "icmp flow still listed after del-flows"
	fi
	report "$name" "$work/ping.out" "$work/resp.err"
fi

# --- 4: capture of pktgen's UDP frames -------------------------------------------
name="capture: vnetctl capture vm3 --count 10 -w FILE while pktgen sends; tshark reads 10 UDP frames"
if ! over_budget "$name"; then
	pcap=$work/udp.pcap
	pg rx3b vm3 --mode rx
	rx3=$pg_pid
	port_connected vm3 10 || fail "vm3 front-end did not connect"
	# no flow: the learning bridge floods vm1's frames (unknown destination) to vm3
	pg tx1b vm1 --mode tx --duration 20 --rate 2000
	tx1=$pg_pid
	out=$(ctl --timeout 15 capture vm3 --count 10 -w "$pcap" 2>&1) || fail "capture: exit $?: $out"
	pg_stop "$tx1"
	pg_stop "$rx3"
	[[ $out == *"10"* ]] || fail "capture printed '$out'"
	if ! command -v tshark >/dev/null; then
		fail "tshark not installed (scripts/install-deps.sh)"
	else
		total=$(tshark -r "$pcap" 2>/dev/null | wc -l)
		udp=$(tshark -r "$pcap" -Y udp 2>/dev/null | wc -l)
		[[ $total == 10 && $udp == 10 ]] || fail "tshark read $total frames ($udp UDP), want 10 UDP"
		echo "# $(tshark -r "$pcap" 2>/dev/null | head -n 1 | sed 's/^ *//')"
	fi
	report "$name" "$work/tx1b.err" "$work/rx3b.err"
fi

# --- 5: capture of 10 ICMP frames --------------------------------------------------
name="capture: 10 ICMP frames of a ping (netns tap <-> responder) to a pcap; tshark reads 10 ICMP packets"
if ! over_budget "$name"; then
	pcap=$work/icmp.pcap
	if [[ -z $resp ]] || ! kill -0 "$resp" 2>/dev/null; then
		fail "no responder on vm2 (test 3 failed)"
	else
		# no ARP in the capture: a permanent neighbour entry; no IPv6 chatter (disabled)
		nsx ip neigh replace "$RESP_IP" lladdr "$RESP_MAC" nud permanent dev "$tap"
		(
			sleep 0.5
			ping_ns 10
		) &
		pinger=$!
		out=$(ctl --timeout 15 capture vm2 --count 10 -w "$pcap" 2>&1) || fail "capture: exit $?: $out"
		wait "$pinger"
		if command -v tshark >/dev/null; then
			total=$(tshark -r "$pcap" 2>/dev/null | wc -l)
			icmp=$(tshark -r "$pcap" -Y icmp 2>/dev/null | wc -l)
			[[ $total == 10 && $icmp == 10 ]] || fail "tshark read $total frames ($icmp ICMP), want 10 ICMP"
			req=$(tshark -r "$pcap" -Y 'icmp.type == 8' 2>/dev/null | wc -l)
			rep=$(tshark -r "$pcap" -Y 'icmp.type == 0' 2>/dev/null | wc -l)
			echo "# $icmp ICMP: $req echo requests, $rep echo replies"
		else
			fail "tshark not installed"
		fi
	fi
	report "$name" "$work/ping.out"
fi

# --- 6: vnetctl errors ----------------------------------------------------------
name="vnetctl errors: non-zero exit, message naming the problem, daemon state unchanged"
if ! over_budget "$name"; then
	ctl add-flow br0 "priority=100,in_port=1,actions=output:2" >/dev/null &&
		ctl add-flow br0 "priority=90,in_port=2,dl_type=0x0800,nw_dst=10.1.0.0/16,actions=output:1" >/dev/null ||
		fail "setting up flows failed"
	ctl set-port vm3 tag=10 >/dev/null || fail "set-port vm3 tag=10 failed"
	pre_show=$(show_cfg)
	pre_flows=$(flows_cfg br0)
	pre_state=$(md5sum <"$STATE_FILE")
	# check RC SUBSTRING ARGS...: vnetctl ARGS must exit RC and print SUBSTRING
	check() {
		local want_rc=$1 want=$2 out rc
		shift 2
		out=$(ctl "$@" 2>&1)
		rc=$?
		if [[ $rc != "$want_rc" ]]; then
			fail "vnetctl $*: exit $rc, want $want_rc ($out)"
		elif [[ $out != *"$want"* ]]; then
			fail "vnetctl $*: message '$out' lacks '$want'"
		fi
	}
	check 2 "unknown command 'frobnicate'" frobnicate
	check 2 "add-br" add-br
	check 1 "no bridge br9" add-port br9 vm9 type=null
	check 1 "no bridge br9" del-br br9
	check 1 "no bridge br9" dump-flows br9
	check 1 "no bridge br9" add-flow br9 "actions=drop"
	check 1 "no bridge br9" fdb-show br9
	check 1 "no port nope" del-port br0 nope
	check 1 "no port nope" set-port nope tag=3
	check 1 "no port nope" port-stats nope
	check 1 "no port nope" capture nope --count 1 -w "$work/nope.pcap"
	check 1 "port vm1 exists" add-port br0 vm1 type=vhost-user
	check 1 "bridge br0 exists" add-br br0
	check 1 "br0" add-port br0 br0 type=null
	check 1 "unknown field 'foo'" add-flow br0 "priority=10,foo=1,actions=drop"
	check 1 "nw_dst" add-flow br0 "nw_dst=10.0.0.300,actions=drop"
	check 1 "nw_dst" add-flow br0 "nw_dst=10.0.0.0/33,actions=drop"
	check 2 "actions" add-flow br0 "in_port=1"
	check 1 "unknown action 'frob'" add-flow br0 "in_port=1,actions=frob"
	check 2 "tag '5000'" add-port br0 v5 type=null tag=5000
	check 2 "tag 'abc'" add-port br0 v5 type=null tag=abc
	check 2 "'1,5000'" add-port br0 v5 type=null trunks=1,5000
	check 2 "tag '4095'" set-port vm1 tag=4095
	check 2 "exclusive" add-port br0 v5 type=null tag=3 trunks=4
	check 2 "unknown port type 'bogus'" add-port br0 v5 type=bogus
	check 2 "invalid port name" add-port br0 'bad name!' type=null
	out=$(ctl --json add-br br0 2>/dev/null)
	[[ $out == '{"ok":false,"error":"bridge br0 exists"}' ]] || fail "--json add-br br0 printed '$out'"
	# The daemon checks what vnetctl lets through unchecked: raw requests.
	rawcheck() { # SUBSTRING JSON
		local out
		out=$(raw_request "$2" 2>&1)
		[[ $out == *'"ok":false'* && $out == *"$1"* ]] || fail "raw $2: answer '$out' (want ok:false and '$1')"
	}
	rawcheck "unknown command" '{"cmd":"frobnicate"}'
	rawcheck "actions" '{"cmd":"add-flow","bridge":"br0","flow":"in_port=1"}'
	rawcheck "foo" '{"cmd":"add-flow","bridge":"br0","flow":"foo=1,actions=drop"}'
	rawcheck "tag" '{"cmd":"add-port","bridge":"br0","port":"v6","options":{"type":"null"},"tag":5000}'
	rawcheck "extra" '{"cmd":"add-br","bridge":"br7","extra":1}'
	rawcheck "bridge" '{"cmd":"add-port","port":"v6","options":{"type":"null"}}'
	rawcheck "type" '{"cmd":"set-port","port":"vm1","options":{"type":"tap"}}'
	[[ $(show_cfg) == "$pre_show" ]] || fail "show changed: before $pre_show, after $(show_cfg)"
	[[ $(flows_cfg br0) == "$pre_flows" ]] || fail "dump-flows changed: before $pre_flows, after $(flows_cfg br0)"
	[[ $(md5sum <"$STATE_FILE") == "$pre_state" ]] || fail "the state file changed"
	report "$name"
fi

# --- 7: kill -9 during traffic, restart: configuration restored ------------------
name="kill -9 during traffic, restart with the same dirs: show and dump-flows as before"
if ! over_budget "$name"; then
	[[ -n $resp ]] && pg_stop "$resp"
	resp=
	pre_show=$(show_cfg)
	pre_flows=$(flows_cfg br0)
	ref_show=$pre_show
	pg rx2 vm2 --mode rx
	rx2=$pg_pid
	pg tx1 vm1 --mode tx --rate 5000
	tx1=$pg_pid
	port_connected vm1 10 && port_connected vm2 10 || fail "front-ends did not connect"
	sleep 1
	before=$(flow_field br0 "in_port=1,actions=output:2" n_packets)
	((before > 0)) || fail "no traffic through in_port=1 before the kill (n_packets=$before)"
	sw_kill9
	pg_stop "$tx1"
	pg_stop "$rx2"
	# restored with a tap port whose device stayed in the netns: the daemon makes a new one
	if start_switch; then
		sleep 1.5
		kill -0 "$SW_PID" 2>/dev/null || fail "the restarted daemon died (see the log: SIGSEGV in the PMD?)"
		post_show=$(show_cfg)
		post_flows=$(flows_cfg br0)
		[[ $post_show == "$pre_show" ]] || fail "show after restart differs: before $pre_show, after $post_show"
		[[ $post_flows == "$pre_flows" ]] || fail "dump-flows after restart differs: before $pre_flows, after $post_flows"
		for p in vm1 vm2 vm3; do
			[[ $(mode_of "$RUN_DIR/$p.sock") == 660 ]] || fail "$p.sock after restart: mode $(mode_of "$RUN_DIR/$p.sock")"
		done
	else
		fail "the daemon did not restart"
	fi
	report "$name" "$work/tx1.err" "$work/rx2.err"
fi

# --- 8: front-ends connect to the re-created sockets, traffic flows ----------------
N=1000
name="after the restart: new front-ends on the re-created sockets; $N frames vm1 -> vm2 through the restored flow"
if ! over_budget "$name"; then
	c0=$(flow_field br0 "in_port=1,actions=output:2" n_packets)
	pg rx2r vm2 --mode rx --count "$N" --verify
	rx2=$pg_pid
	port_connected vm2 10 || fail "vm2 front-end did not connect after the restart"
	pg tx1r vm1 --mode tx --count "$N" --rate 1000
	pg_wait "$pg_pid" 30 || fail "tx pktgen exit status $?"
	pg_wait "$rx2" 10 || fail "vm2 rx pktgen exit status $?"
	[[ $(json "$work/rx2r.json" rx_packets) == "$N" ]] || fail "vm2 received $(json "$work/rx2r.json" rx_packets), want $N"
	c1=$(flow_field br0 "in_port=1,actions=output:2" n_packets)
	[[ -n $c0 && -n $c1 ]] && (((c1 - c0) == N)) || fail "flow n_packets went $c0 -> $c1, want +$N"
	report "$name" "$work/tx1r.err" "$work/rx2r.err"
fi

# --- 9: repeated kill -9 / restart cycles -----------------------------------------
name="5 more kill -9 / restart cycles: the daemon comes up every time with the configuration"
if ! over_budget "$name"; then
	for i in 1 2 3 4 5; do
		sw_kill9
		if ! start_switch; then
			fail "cycle $i: the daemon did not restart"
			break
		fi
		sleep 1
		if ! kill -0 "$SW_PID" 2>/dev/null; then
			wait "$SW_PID" 2>/dev/null
			fail "cycle $i: the restarted daemon died (exit status $?)"
			start_switch || break
			continue
		fi
		now=$(show_cfg)
		[[ $now == "$ref_show" ]] || fail "cycle $i: show differs: $now"
	done
	report "$name"
fi

# --- 10: SIGTERM stops the daemon cleanly ------------------------------------------
name="SIGTERM: the daemon exits 0 and removes nothing from the state"
if ! over_budget "$name"; then
	pre=$(md5sum <"$STATE_FILE")
	sw_stop
	[[ $SW_RC == 0 ]] || fail "exit status $SW_RC after SIGTERM$( ((SW_RC == 139)) && echo ' (SIGSEGV)')"
	[[ $(md5sum <"$STATE_FILE") == "$pre" ]] || fail "the state file changed"
	report "$name"
fi

# --- 11: a corrupt state file ---------------------------------------------------
name="corrupt state.json: refused with a clear message, moved aside to state.json.corrupt-*, empty start"
if ! over_budget "$name"; then
	sw_stop 2>/dev/null
	printf '{"format":"vnet-switchd-state","version":1,"bridges":[{"name":"br0",\n garbage ]]\n' >"$STATE_FILE"
	cp "$STATE_FILE" "$work/garbage"
	if start_switch; then
		sleep 0.5
		out=$(ctl --json show)
		[[ $out == '{"ok":true,"bridges":[]}' ]] || fail "show after a corrupt state: '$out', want no bridges"
		aside=$(ls "$STATE_FILE".corrupt-* 2>/dev/null | head -n 1)
		if [[ -z $aside ]]; then
			fail "no $STATE_FILE.corrupt-* file"
		else
			cmp -s "$aside" "$work/garbage" || fail "$aside does not hold the corrupt file"
		fi
		if [[ -n ${SW_LOG:-} ]]; then
			msg=$(grep -m1 "is corrupt" "$SW_LOG")
			[[ $msg == *"$STATE_FILE"* && $msg == *"moved aside"* ]] ||
				fail "no clear message in the daemon log (got '$msg')"
			echo "# log: ${msg#*switchd: }"
		fi
		# the next change writes a fresh state file; the one aside stays
		ctl add-br br1 >/dev/null || fail "add-br br1 after the corrupt start failed"
		grep -q '"br1"' "$STATE_FILE" || fail "new state file lacks br1"
		[[ -n $aside && -f $aside ]] || fail "the corrupt file is gone"
	else
		fail "the daemon did not start with a corrupt state file"
	fi
	report "$name"
fi

# --- 12: empty state file --------------------------------------------------------
name="an empty state file is an empty configuration (not corrupt)"
if ! over_budget "$name"; then
	sw_stop >/dev/null 2>&1
	rm -f "$STATE_FILE".corrupt-*
	: >"$STATE_FILE"
	if start_switch; then
		out=$(ctl --json show)
		[[ $out == '{"ok":true,"bridges":[]}' ]] || fail "show: '$out'"
		ls "$STATE_FILE".corrupt-* >/dev/null 2>&1 && fail "an empty state file was moved aside"
	else
		fail "the daemon did not start with an empty state file"
	fi
	report "$name"
fi

# --- 13: a client-mode port reconnects to DPDK testpmd after kill -9 -------------
# testpmd's net_virtio_user with server=1 plays QEMU's server=on chardev: the
# switch connects to it and must reconnect and carry its frames again after a
# kill -9 (OVS's dpdkvhostuserclient model), with no action on testpmd's side.
name="client-mode port: kill -9 + restart reconnects to testpmd (virtio_user server=1) and its frames flow again"
if ! over_budget "$name"; then
	if ! need_dpdk 2>/dev/null || ! TESTPMD=$(testpmd_bin); then
		n=$((n + 1))
		echo "ok $n - $name # SKIP dpdk-testpmd with net_virtio_user not available"
	else
		csock=$work/c1.sock
		tp_log=$work/c1.testpmd.log
		# shellcheck disable=SC2046 # testpmd_eal_args is a word list
		timeout -k 5 -s INT 40 taskset -c "$PG_CPU" "$TESTPMD" --lcores "0@$PG_CPU,1@$PG_CPU" \
			$(testpmd_eal_args "vswctl$$") \
			--vdev "net_virtio_user0,path=$csock,server=1,queue_size=256" \
			-- --forward-mode=txonly --txpkts=64 --total-num-mbufs=8192 --stats-period 1 \
			</dev/null >"$tp_log" 2>&1 &
		tp=$!
		pids+=("$tp")
		c_rx() { port_field c1 rx_packets; }
		if ! wait_for_sock "$csock" 15; then
			fail "testpmd did not create $csock"
		else
			ctl add-br brc >/dev/null &&
				ctl add-port brc c1 type=vhost-user mode=client path="$csock" >/dev/null &&
				ctl add-port brc n1 type=null >/dev/null || fail "setting up brc failed"
			port_connected c1 10 || fail "c1 did not connect to testpmd"
			sleep 1
			r1=$(c_rx)
			[[ -n $r1 ]] && ((r1 > 0)) || fail "no frames from testpmd before the kill (rx_packets=$r1)"
			sw_kill9
			if start_switch; then
				port_connected c1 10 || fail "c1 did not reconnect to testpmd after the restart"
				sleep 1
				r2=$(c_rx)
				if [[ -z $r2 ]] || ((r2 == 0)); then
					fail "no frames from testpmd after the restart (rx_packets=$r2)"
					grep -m1 "jumped" "$SW_LOG" >/dev/null &&
						fail "daemon log: $(grep -m1 jumped "$SW_LOG" | sed 's/^[0-9:.]* //')"
				fi
				echo "# c1 rx_packets: $r1 before the kill, $r2 one second after the restart"
			else
				fail "the daemon did not restart"
			fi
		fi
		pg_wait "$tp" 0
		rm -rf /var/run/dpdk/"vswctl$$"* 2>/dev/null
	fi
	[[ $n == 13 ]] || report "$name" "$tp_log"
fi

# --- 14: static FDB entries -----------------------------------------------------
# brf: g1 generates frames 02:00:00:00:00:01 -> 02:00:00:00:00:02 (port_null.c
# rx=generate); n2 and n3 count what they are sent.
GMAC=02:00:00:00:00:02
tx_delta() { # PORT SECS: how much PORT's tx_packets grows in SECS (-1: unknown)
	local a b
	a=$(port_field "$1" tx_packets)
	sleep "$2"
	b=$(port_field "$1" tx_packets)
	[[ -n $a && -n $b ]] || { echo -1; return; }
	echo $((b - a))
}
static_line() { # BR PORT VLAN MAC: fdb-show lists that static entry
	ctl fdb-show "$1" | grep -Eq "^ +$2 +$3 +$4 +static\$"
}
name="static FDB: fdb-add steers NORMAL and shows as static, survives fdb-flush and kill -9 + restart; replace, fdb-del, del-port; bad input refused"
if ! over_budget "$name"; then
	sw_alive || start_switch || fail "the daemon is not running"
	ctl add-br brf >/dev/null && ctl add-port brf g1 type=null rx=generate >/dev/null &&
		ctl add-port brf n2 type=null >/dev/null && ctl add-port brf n3 type=null >/dev/null ||
		fail "setting up brf failed"
	sleep 0.3
	d3=$(tx_delta n3 0.3)
	((d3 > 0)) || fail "before fdb-add: n3 got $d3 frames (want the unknown destination flooded)"
	ctl fdb-add brf n2 0 "$GMAC" >/dev/null || fail "fdb-add brf n2 0 $GMAC: exit $?"
	static_line brf n2 0 "$GMAC" || fail "fdb-show brf lacks 'n2 0 $GMAC static': $(ctl fdb-show brf | tr '\n' '|')"
	grep -q "\"mac\": \"$GMAC\"" "$STATE_FILE" || fail "the state file lacks the static entry"
	sleep 0.2
	d2=$(tx_delta n2 0.3)
	d3=$(tx_delta n3 0.3)
	((d2 > 0 && d3 == 0)) || fail "with the static entry on n2: n2 got $d2, n3 got $d3 (want >0 and 0)"
	ctl fdb-flush brf >/dev/null || fail "fdb-flush brf failed"
	static_line brf n2 0 "$GMAC" || fail "fdb-flush removed the static entry"
	sw_kill9
	if start_switch; then
		sleep 0.5
		static_line brf n2 0 "$GMAC" || fail "after kill -9 + restart: fdb-show brf: $(ctl fdb-show brf | tr '\n' '|')"
		d2=$(tx_delta n2 0.3)
		d3=$(tx_delta n3 0.3)
		((d2 > 0 && d3 == 0)) || fail "after the restart: n2 got $d2, n3 got $d3 (want >0 and 0)"
	else
		fail "the daemon did not restart"
	fi
	# the same VLAN + MAC again moves the entry
	ctl fdb-add brf n3 0 "$GMAC" >/dev/null || fail "fdb-add brf n3 0 $GMAC (replace) failed"
	static_line brf n3 0 "$GMAC" || fail "the replaced entry is not on n3"
	static_line brf n2 0 "$GMAC" && fail "the replaced entry is still on n2"
	sleep 0.2
	d2=$(tx_delta n2 0.3)
	((d2 == 0)) || fail "after moving the entry to n3, n2 still got $d2 frames"
	ctl fdb-del brf 0 "$GMAC" >/dev/null || fail "fdb-del brf 0 $GMAC failed"
	static_line brf n3 0 "$GMAC" && fail "fdb-del left the static entry"
	grep -q '"fdb"' "$STATE_FILE" && fail "the state file still has static entries after fdb-del"
	d2=$(tx_delta n2 0.3)
	((d2 > 0)) || fail "after fdb-del the frames are not flooded to n2 again ($d2)"
	# del-port takes its static entries along (configuration and FDB)
	ctl fdb-add brf n3 7 52:54:00:00:00:07 >/dev/null || fail "fdb-add brf n3 7 failed"
	ctl del-port brf n3 >/dev/null || fail "del-port brf n3 failed"
	ctl fdb-show brf | grep -q "52:54:00:00:00:07" && fail "del-port n3 left its static entry in the FDB"
	grep -q '"fdb"' "$STATE_FILE" && fail "del-port n3 left its static entry in the state file"
	ctl add-port brf n3 type=null >/dev/null || fail "add-port brf n3 again failed"
	# bad input: refused, nothing changes
	pre_state=$(md5sum <"$STATE_FILE")
	fcheck() { # RC SUBSTRING ARGS...
		local want_rc=$1 want=$2 out rc
		shift 2
		out=$(ctl "$@" 2>&1)
		rc=$?
		[[ $rc == "$want_rc" && $out == *"$want"* ]] || fail "vnetctl $*: exit $rc, '$out' (want $want_rc, '$want')"
	}
	fcheck 1 "no bridge br9" fdb-add br9 n2 0 "$GMAC"
	fcheck 1 "no port vm9 in bridge brf" fdb-add brf vm9 0 "$GMAC"
	fcheck 2 "invalid MAC 'xx'" fdb-add brf n2 0 xx
	fcheck 2 "invalid VLAN '5000'" fdb-add brf n2 5000 "$GMAC"
	fcheck 2 "MAC 01:00:5e:00:00:01 is multicast" fdb-add brf n2 0 01:00:5e:00:00:01
	fcheck 2 "expected fdb-add BR PORT VLAN MAC" fdb-add brf n2 "$GMAC"
	fcheck 1 "no static entry for 52:54:00:00:00:09 on VLAN 0 in brf" fdb-del brf 0 52:54:00:00:00:09
	for raw in '{"cmd":"fdb-add","bridge":"brf","port":"n2","vlan":5000,"mac":"52:54:00:00:00:05"}' \
		'{"cmd":"fdb-add","bridge":"brf","port":"n2","vlan":0,"mac":"52:54:00:00:00:05","x":1}' \
		'{"cmd":"fdb-add","bridge":"brf","vlan":0,"mac":"52:54:00:00:00:05"}' \
		'{"cmd":"fdb-del","bridge":"brf","vlan":0,"mac":"nope"}'; do
		out=$(raw_request "$raw" 2>&1)
		[[ $out == *'"ok":false'* ]] || fail "raw $raw: answer '$out'"
	done
	[[ $(md5sum <"$STATE_FILE") == "$pre_state" ]] || fail "refused commands changed the state file"
	report "$name"
fi

# --- 15: bridge-stats and per-port drop reasons ---------------------------------
REASONS='["malformed","vlan","flow_drop","no_output","no_port","loop","no_buf","overflow"]'
name="bridge-stats [--json]: frames, drops, fdb and flows of a bridge; port-stats: every drop reason, counted on the ingress port; pmd-stats: packets and busy cycles"
if ! over_budget "$name"; then
	sw_alive || fail "the daemon is not running"
	ctl add-flow brf "priority=1,in_port=99,actions=drop" >/dev/null || fail "add-flow brf failed"
	# a static entry back to the ingress port: every generated frame is a loop drop of g1
	ctl fdb-add brf g1 0 "$GMAC" >/dev/null || fail "fdb-add brf g1 0 $GMAC failed"
	sleep 0.5
	out=$(ctl --json bridge-stats brf)
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
reasons = set(json.loads(sys.argv[2]))
assert d["ok"] is True and len(d["bridges"]) == 1, "one bridge"
b = d["bridges"][0]
assert b["name"] == "brf"
assert set(b) == {"name", "rx_packets", "rx_bytes", "drops", "fdb", "flows"}, sorted(b)
assert b["rx_packets"] > 0 and b["rx_bytes"] >= 60 * b["rx_packets"], (b["rx_packets"], b["rx_bytes"])
assert set(b["drops"]) == reasons, sorted(b["drops"])
assert b["drops"]["loop"] > 0, b["drops"]
assert set(b["fdb"]) == {"entries", "static", "learned", "moves", "evicted", "aged", "refused"}, b["fdb"]
assert b["fdb"]["static"] == 1 and b["fdb"]["entries"] >= 1 and b["fdb"]["learned"] >= 1, b["fdb"]
assert b["flows"] == 1, b["flows"]
' "$out" "$REASONS" 2>"$work/py.err" || fail "bridge-stats --json brf: $out: $(tail -n1 "$work/py.err")"
	out=$(ctl --json port-stats)
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
reasons = set(json.loads(sys.argv[2]))
ports = {p["name"]: p for p in d["ports"]}
for name, p in ports.items():
    assert set(p["drops"]) == reasons, (name, sorted(p["drops"]))
assert ports["g1"]["drops"]["loop"] > 0, ports["g1"]["drops"]
assert ports["n2"]["drops"]["loop"] == 0 and ports["n3"]["drops"]["loop"] == 0
' "$out" "$REASONS" 2>"$work/py.err" || fail "port-stats --json: $out: $(tail -n1 "$work/py.err")"
	txt=$(ctl bridge-stats brf)
	[[ $txt == *"Bridge brf"* && $txt == *"drops: "*"loop="* && $txt == *"(1 static)"* && $txt == *"flows: 1"* ]] ||
		fail "bridge-stats brf printed '$txt'"
	all=$(ctl bridge-stats)
	[[ $all == *"Bridge brf"* ]] || fail "bridge-stats (all) printed '$all'"
	ptxt=$(ctl port-stats g1)
	[[ $ptxt == *"  drops: "*"loop="* ]] || fail "port-stats g1 printed '$ptxt'"
	[[ $(ctl port-stats n2) != *"drops:"* ]] || fail "port-stats n2 shows drops: $(ctl port-stats n2)"
	# pmd-stats: the PMD that polls g1 counts its frames and busy cycles
	out=$(ctl --json pmd-stats)
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["ok"] is True and len(d["pmds"]) == 1, d
p = d["pmds"][0]
assert p["pmd"] == 0 and p["rx_queues"] >= 3, p
assert p["packets"] > 0 and p["busy_loops"] > 0 and p["loops"] >= p["busy_loops"], p
assert p["busy_cycles"] > 0 and p["tsc_hz"] > 0, p
assert abs(p["cycles_per_packet"] - p["busy_cycles"] / p["packets"]) < 1, p
' "$out" 2>"$work/py.err" || fail "pmd-stats --json: $out: $(tail -n1 "$work/py.err")"
	ptxt=$(ctl pmd-stats)
	[[ $ptxt == "pmd0 (CPU "*"rx queues"*"packets received: "*"cycles/packet"* ]] ||
		fail "pmd-stats printed '$ptxt'"
	echo "# $(tr '\n' ' ' <<<"$ptxt")"
	out=$(ctl bridge-stats br9 2>&1)
	rc=$?
	[[ $rc == 1 && $out == *"no bridge br9"* ]] || fail "bridge-stats br9: exit $rc, '$out'"
	echo "# $(tr '\n' ' ' <<<"$txt")"
	ctl del-br brf >/dev/null || fail "del-br brf failed"
	report "$name"
fi

echo "# total ${SECONDS}s"
exit $any_fail
