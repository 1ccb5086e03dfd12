#!/usr/bin/env bash
# vnet-switchd end to end with real peers: QEMU (TCG) Linux guests on
# vhost-user ports, a tap and a veth (afpacket) whose other ends live in
# network namespaces this test creates.  Issue 4, tests 1-4 and 6:
#
#   A. one daemon, bridge br0 (vhost-user server mode), guests A 10.0.0.1 and
#      B 10.0.0.2, tap port moved into netns T (10.0.0.3), afpacket port on a
#      veth whose peer is in netns P (10.0.0.4): pings both ways between the
#      guests, guest <-> tap netns, guest <-> afpacket netns; fdb-show lists
#      the guests' MACs on their ports; port counters moved.
#   B. same daemon, bridge br1 (VLANs, 10.0.10.0/24): guests C and D on tag=10,
#      a tap (netns V, 10.0.10.3 and 10.0.20.3) on tag=20, an afpacket trunk
#      (trunks=10) on a veth whose peer in netns K carries VLANs 10
#      (10.0.10.4) and 20 (10.0.20.4): 10<->10 pings, 10<->20 does not, the
#      trunk reaches tag 10 only.  The host kernel may lack 8021q (no
#      vethB.10 sub-interfaces), so the tagged side of K is a small raw-socket
#      ARP/ICMP endpoint (python3, written below) rather than a VLAN device.
#   C. a new daemon, client-mode vhost-user ports (QEMU is the server): both
#      guests ping each other continuously; the daemon is killed with -9 and
#      restarted on the same state dir: config restored, pings resume.
#
# Everything stays on private links: vhost-user sockets in a temporary
# directory, a tap and veths moved into namespaces; no address in the root
# namespace.  Prints TAP.  Needs root; installs QEMU via scripts/install-deps.sh.
# Environment: SWITCHD, VNETCTL (meson passes them), VNET_GUEST_DIR.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"
. "$repo/tests/integration/lib_switch.sh"

NTESTS=16
skip_unless_root
[[ -e /dev/net/tun ]] || vnet_skip "no /dev/net/tun"
command -v ip >/dev/null || vnet_skip "no ip(8)"
command -v python3 >/dev/null || vnet_skip "no python3 (VLAN trunk endpoint)"
ip netns add "vnet-probe-$$" 2>/dev/null || vnet_skip "cannot create network namespaces"
ip netns del "vnet-probe-$$"
need_qemu || vnet_skip "qemu not available"
for b in "$SWITCHD" "$VNETCTL"; do
	if [[ ! -x $b ]]; then
		echo "Bail out! $b not found (set SWITCHD/VNETCTL or build build/)"
		exit 1
	fi
done
if ! vnet_guest_ensure; then
	echo "Bail out! test guest build failed (tests/guest/build-guest.sh)"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-swg.XXXXXX") || exit 1
chmod 755 "$work"
id=$$
# Names: netns and interfaces unique per run (interface names <= 15 chars).
ns_t=vnet-swg$id-t ns_p=vnet-swg$id-p ns_v=vnet-swg$id-v ns_k=vnet-swg$id-k
if_t=sgt$id if_pa=sgpa$id if_pb=sgpb$id if_v=sgv$id if_ka=sgka$id if_kb=sgkb$id
declare -A qpid=() # guest name -> QEMU pid
probe_pid=

qemu_kill() { # NAME
	local p=${qpid[$1]:-}
	[[ -n $p ]] || return 0
	kill "$p" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset "qpid[$1]"
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local g
	for g in "${!qpid[@]}"; do qemu_kill "$g"; done
	[[ -n $probe_pid ]] && kill -KILL "$probe_pid" 2>/dev/null
	sw_stop >/dev/null 2>&1
	local n
	for n in "$ns_t" "$ns_p" "$ns_v" "$ns_k"; do ip netns del "$n" 2>/dev/null; done
	for n in "$if_t" "$if_pa" "$if_pb" "$if_v" "$if_ka" "$if_kb"; do ip link del "$n" 2>/dev/null; done
	if [[ -n ${KEEP_WORK:-} ]]; then echo "# work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- guest side
# Driven by kernel parameters (exported as VNET_*):
#   vnet.pings=IP,IP      must answer: wait until reachable (<= 40 s), then
#                         ping -c 3, report "ping IP sent=N recv=M"
#   vnet.nopings=IP,IP    must not answer: ping -c 3 -W 1, "noping IP sent= recv="
#   vnet.stream=IP        then ping IP once per iteration for vnet.streamn
#                         iterations: "stream I ok|fail" (restart test)
#   vnet.linger=S         stay up S seconds after "done" (host pings us)
cat >"$work/guest.sh" <<'EOF'
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null
counts() {
	sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/sent=\1 recv=\2/p' "$1"
}
for t in $(echo "${VNET_PINGS:-}" | tr , ' '); do
	i=0
	while ! ping -c 1 -W 1 "$t" >/dev/null 2>&1 && [ $i -lt 40 ]; do i=$((i + 1)); done
	ping -c 3 -W 2 "$t" >/tmp/p 2>&1
	result "ping $t $(counts /tmp/p) warmup=$i"
done
for t in $(echo "${VNET_NOPINGS:-}" | tr , ' '); do
	ping -c 3 -W 1 "$t" >/tmp/p 2>&1
	result "noping $t $(counts /tmp/p)"
done
if [ -n "${VNET_STREAM:-}" ]; then
	i=0
	while ! ping -c 1 -W 1 "$VNET_STREAM" >/dev/null 2>&1 && [ $i -lt 40 ]; do i=$((i + 1)); done
	result "stream start warmup=$i"
	i=0
	while [ $i -lt "${VNET_STREAMN:-60}" ]; do
		i=$((i + 1))
		if ping -c 1 -W 1 "$VNET_STREAM" >/dev/null 2>&1; then
			result "stream $i ok"
			sleep 0.2
		else
			result "stream $i fail"
		fi
	done
fi
s=/sys/class/net/eth0/statistics
result "counters rx_packets=$(cat $s/rx_packets) tx_packets=$(cat $s/tx_packets)"
result "done"
sleep "${VNET_LINGER:-0}"
EOF

# guest_start NAME IP MAC QEMU-NIC-OPTION SOCK APPEND
guest_start() {
	local name=$1 ip=$2 mac=$3 nicopt=$4 sock=$5 append=$6
	vnet_qemu_start "$work/$name.console" --script "$work/guest.sh" --ip "$ip" \
		--append "vnet.timeout=170 $append" --mac "$mac" "$nicopt" "$sock" || return 1
	qpid[$name]=$VNET_QEMU_PID
	VNET_QEMU_PID=
}

# wait_marker NAME REGEX TIMEOUT: 0 found, 1 timeout, 2 QEMU gone
wait_marker() {
	local con=$work/$1.console end=$((SECONDS + $3))
	while ((SECONDS < end)); do
		grep -qE "$2" "$con" 2>/dev/null && return 0
		if ! kill -0 "${qpid[$1]:-0}" 2>/dev/null; then
			grep -qE "$2" "$con" 2>/dev/null && return 0
			return 2
		fi
		sleep 0.2
	done
	return 1
}

results() { vnet_qemu_results "$work/$1.console"; }

# Each group has a deadline (dl, set at its start) so that a switch that does
# not forward fails the group in bounded time instead of adding up timeouts.
dl=0
rem() { # seconds left before dl, at least 1, at most $1 if given
	local r=$((dl - SECONDS))
	((r < 1)) && r=1
	[[ -n ${1:-} ]] && ((r > $1)) && r=$1
	echo "$r"
}

# ping_counts NAME KIND IP -> "sent recv" from the guest's result line
ping_counts() {
	results "$1" | sed -n "s/^$2 $3 sent=\\([0-9]*\\) recv=\\([0-9]*\\).*/\\1 \\2/p" | tail -n1
}

# ----------------------------------------------------------------- host side
# The tagged endpoint of the trunk netns (see the header).
cat >"$work/vlanprobe.py" <<'PYEOF'
# VLAN-tagged ARP/ICMP endpoint on a raw AF_PACKET socket: the host kernel
# here has no 8021q, so sub-interfaces such as eth0.10 cannot be created.
#   vlanprobe.py IFACE DURATION [--addr VLAN:IP]... [--ping VLAN:SRC:DST:COUNT:WAIT]...
# --addr: answer ARP requests and ICMP echo requests for IP on VLAN (tagged),
#         until DURATION seconds after the pings are done, or SIGTERM.
# --ping: resolve DST by ARP on VLAN (tagged, from SRC; up to WAIT seconds),
#         then send COUNT echo requests 0.3 s apart and count the replies.
# Prints "ping VLAN DST sent=N recv=M arp=ok|fail" and at the end
# "answered VLAN IP arp=N icmp=M".
import os, select, signal, socket, struct, sys, threading, time

ETH_P_ALL, SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 3, 263, 8, 0x10
iface, duration = sys.argv[1], float(sys.argv[2])
addrs, pings, a = {}, [], sys.argv[3:]
while a:
    if a[0] == "--addr":
        v, ip = a[1].split(":")
        addrs[(int(v), socket.inet_aton(ip))] = [0, 0]
    elif a[0] == "--ping":
        v, s, d, c, w = a[1].split(":")
        pings.append((int(v), socket.inet_aton(s), socket.inet_aton(d), int(c), float(w)))
    a = a[2:]
mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
BCAST = b"\xff" * 6


def sock():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    return s


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(dst, vlan, etype, payload):
    f = dst + mac + struct.pack("!HHH", 0x8100, vlan, etype) + payload
    return f + b"\0" * max(0, 64 - 4 - len(f))


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa


def ipv4(src, dst, proto, payload, ident=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def icmp(typ, ident, seq, data):
    h = struct.pack("!BBHHH", typ, 0, 0, ident, seq) + data
    return h[:2] + struct.pack("!H", csum(h)) + h[4:]


def recv(s, timeout):
    """(vlan, src_mac, ethertype, payload) of the next incoming frame, or None."""
    r, _, _ = select.select([s], [], [], max(timeout, 0))
    if not r:
        return None
    data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
    if addr[2] == socket.PACKET_OUTGOING:
        return False
    vlan = None
    for lvl, typ, d in anc:
        if lvl == SOL_PACKET and typ == PACKET_AUXDATA and len(d) >= 20:
            st, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", d[:20])
            if st & TP_STATUS_VLAN_VALID:
                vlan = tci & 0xFFF
    etype = struct.unpack("!H", data[12:14])[0]
    off = 14
    if vlan is None and etype == 0x8100:
        vlan = struct.unpack("!H", data[14:16])[0] & 0xFFF
        etype = struct.unpack("!H", data[16:18])[0]
        off = 18
    if vlan is None:
        vlan = 0
    return vlan, data[6:12], etype, data[off:]


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())


def responder():
    s = sock()
    while not stop.is_set():
        p = recv(s, 0.2)
        if not p:
            continue
        vlan, smac, etype, pl = p
        if etype == 0x0806 and len(pl) >= 28:
            op = struct.unpack("!H", pl[6:8])[0]
            spa, tpa = pl[14:18], pl[24:28]
            if op == 1 and (vlan, tpa) in addrs:
                s.send(frame(smac, vlan, 0x0806, arp(2, mac, tpa, pl[8:14], spa)))
                addrs[(vlan, tpa)][0] += 1
        elif etype == 0x0800 and len(pl) >= 28 and pl[9] == 1:
            ihl = (pl[0] & 15) * 4
            src, dst = pl[12:16], pl[16:20]
            ic = pl[ihl:struct.unpack("!H", pl[2:4])[0]]
            if ic and ic[0] == 8 and (vlan, dst) in addrs:
                rep = icmp(0, *struct.unpack("!HH", ic[4:8]), ic[8:])
                s.send(frame(smac, vlan, 0x0800, ipv4(dst, src, 1, rep)))
                addrs[(vlan, dst)][1] += 1


th = threading.Thread(target=responder, daemon=True)
th.start()
s = sock()
ident = os.getpid() & 0xFFFF
for vlan, src, dst, count, wait in pings:
    dmac, end = None, time.time() + wait
    while dmac is None and time.time() < end and not stop.is_set():
        s.send(frame(BCAST, vlan, 0x0806, arp(1, mac, src, b"\0" * 6, dst)))
        t1 = min(time.time() + 0.5, end)
        while dmac is None and time.time() < t1:
            p = recv(s, t1 - time.time())
            if p and p[0] == vlan and p[2] == 0x0806 and struct.unpack("!H", p[3][6:8])[0] == 2 \
                    and p[3][14:18] == dst:
                dmac = p[3][8:14]
    got, sent = set(), 0
    if dmac:
        for seq in range(count):
            s.send(frame(dmac, vlan, 0x0800, ipv4(src, dst, 1, icmp(8, ident, seq, b"vnet" * 14), seq)))
            sent += 1
            t1 = time.time() + (0.3 if seq + 1 < count else 1.5)
            while time.time() < t1:
                p = recv(s, t1 - time.time())
                if p and p[0] == vlan and p[2] == 0x0800 and p[3][9] == 1 and p[3][12:16] == dst:
                    ic = p[3][(p[3][0] & 15) * 4:]
                    if ic[0] == 0 and struct.unpack("!H", ic[4:6])[0] == ident:
                        got.add(struct.unpack("!H", ic[6:8])[0])
    print(f"ping {vlan} {socket.inet_ntoa(dst)} sent={sent} recv={len(got)} arp={'ok' if dmac else 'fail'}", flush=True)
print("pings-done", flush=True)
stop.wait(duration)
stop.set()
th.join()
for (vlan, ip), (na, ni) in addrs.items():
    print(f"answered {vlan} {socket.inet_ntoa(ip)} arp={na} icmp={ni}", flush=True)
PYEOF

# Host-side pings use busybox (installed with the guest's packages), so the
# test needs no iputils.
BB=/bin/busybox
# ns_ping NS IP COUNT [ARGS]: "sent recv" (waits for reachability first unless
# ARGS contains --no-wait)
ns_ping() {
	local ns=$1 ip=$2 c=$3 wait=1 out
	[[ ${4:-} == --no-wait ]] && wait=0
	if ((wait)); then
		local end=$((SECONDS + $(rem 20)))
		while ((SECONDS < end)) && ! ip netns exec "$ns" $BB ping -c 1 -W 1 "$ip" >/dev/null 2>&1; do
			sleep 0.2
		done
	fi
	out=$(ip netns exec "$ns" $BB ping -c "$c" -i 0.3 -W 1 "$ip" 2>&1)
	sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\1 \2/p' <<<"$out"
}

ns_setup() { # NS IFACE ADDR/LEN...: move IFACE into NS (created), addresses, up
	local ns=$1 ifc=$2
	shift 2
	ip netns add "$ns" 2>/dev/null
	ip link set "$ifc" netns "$ns" || return 1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" ip link set lo up
	local a
	for a in "$@"; do ip netns exec "$ns" ip addr add "$a" dev "$ifc" || return 1; done
	ip netns exec "$ns" ip link set "$ifc" up
}

veth_setup() { # ROOT-END NS-END: the pair, root end up without IPv6
	ip link add "$1" type veth peer name "$2" || return 1
	sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" 2>/dev/null
	ip link set "$1" up
	# Offloads: the afpacket port completes CHECKSUM_PARTIAL frames itself.
	if command -v ethtool >/dev/null; then
		ethtool -K "$1" gro off tso off gso off tx off >/dev/null 2>&1
		ethtool -K "$2" tso off gso off >/dev/null 2>&1
	fi
}

# port_stat PORT FIELD: from port-stats --json (rx_packets, tx_packets, ...)
port_stat() {
	vnetctl_ --json port-stats "$1" 2>/dev/null |
		grep -o "\"$2\":[0-9]*" | head -n1 | cut -d: -f2
}

any_fail=0
t=0
dump_guest() { # NAME
	echo "# --- guest $1 console (tail) ---"
	tr -d '\r' <"$work/$1.console" 2>/dev/null | grep -v '^VNET-MOD' | tail -n 25 | sed 's/^/#   /'
	echo "# --- guest $1 QEMU stderr ---"
	sed 's/^/#   /' "$work/$1.console.qemu" 2>/dev/null | tail -n 10
}
dump_switch() {
	echo "# --- vnetctl show ---"
	vnetctl_ show 2>&1 | sed 's/^/#   /'
	echo "# --- vnetctl port-stats ---"
	vnetctl_ port-stats 2>&1 | sed 's/^/#   /'
	echo "# --- vnet-switchd log (tail) ---"
	sw_log_tail 40
}

# want_all LABEL "sent recv" N: a failure text unless N of N came back (else nothing)
# want_none LABEL "sent recv": a failure text unless some were sent and none came back
want_all() {
	local sent=${2% *} recv=${2#* }
	[[ -n $2 && $sent == "$3" && $recv == "$3" ]] || echo "$1: ${sent:-?} sent, ${recv:-?} received, want $3/$3"
}
want_none() {
	local sent=${2% *} recv=${2#* }
	[[ -n $2 && $sent -gt 0 && $recv == 0 ]] || echo "$1: ${sent:-?} sent, ${recv:-?} received, want 0 received"
}

echo "1..$NTESTS"

# ============================================================ A: br0, server
sw_start "$work/sw1" || { echo "Bail out! vnet-switchd did not start"; sed 's/^/# /' "$work/sw1/switchd.log"; exit 1; }
setup_ok=1
{
	vnetctl_ add-br br0 &&
		vnetctl_ add-port br0 vmA type=vhost-user &&
		vnetctl_ add-port br0 vmB type=vhost-user &&
		vnetctl_ add-port br0 tapT type=tap name="$if_t" &&
		veth_setup "$if_pa" "$if_pb" &&
		vnetctl_ add-port br0 afP type=afpacket iface="$if_pa" &&
		ns_setup "$ns_t" "$if_t" 10.0.0.3/24 &&
		ns_setup "$ns_p" "$if_pb" 10.0.0.4/24 &&
		wait_for_sock "$work/sw1/vmA.sock" 5 && wait_for_sock "$work/sw1/vmB.sock" 5
} >"$work/setupA.log" 2>&1 || setup_ok=0
if ((!setup_ok)); then
	echo "# setup of group A failed:"
	sed 's/^/#   /' "$work/setupA.log"
	dump_switch
fi

tA=$SECONDS dl=$((SECONDS + 75))
guest_start gA 10.0.0.1/24 52:54:00:00:00:0a --vhost-user "$work/sw1/vmA.sock" \
	"vnet.pings=10.0.0.2,10.0.0.3,10.0.0.4 vnet.linger=60"
guest_start gB 10.0.0.2/24 52:54:00:00:00:0b --vhost-user "$work/sw1/vmB.sock" \
	"vnet.pings=10.0.0.1,10.0.0.3,10.0.0.4 vnet.linger=60"
wait_marker gA 'VNET-NET ' "$(rem 40)"
wait_marker gB 'VNET-NET ' "$(rem 40)"
# Host side pings while the guests run theirs (they linger after "done").
t_a=$(ns_ping "$ns_t" 10.0.0.1 3)
t_b=$(ns_ping "$ns_t" 10.0.0.2 3)
p_a=$(ns_ping "$ns_p" 10.0.0.1 3)
p_b=$(ns_ping "$ns_p" 10.0.0.2 3)
t_p=$(ns_ping "$ns_t" 10.0.0.4 3)
wait_marker gA 'VNET-RESULT: done' "$(rem)"
wait_marker gB 'VNET-RESULT: done' "$(rem)"
fdb=$(vnetctl_ fdb-show br0 2>&1)
declare -A rx=() tx=()
for p in vmA vmB tapT afP; do
	rx[$p]=$(port_stat $p rx_packets)
	tx[$p]=$(port_stat $p tx_packets)
done
echo "# group A: guests booted and pinged in $((SECONDS - tA))s"

f=()
m=$(want_all "guest A -> guest B" "$(ping_counts gA ping 10.0.0.2)" 3) || true
[[ -n $m ]] && f+=("$m")
echo "# A->B $(ping_counts gA ping 10.0.0.2), B->A $(ping_counts gB ping 10.0.0.1) (sent recv)"
tap_result "br0: guest A pings guest B over vhost-user ports 3/3" ${f[@]+"${f[@]}"} || { dump_guest gA; dump_switch; }
f=()
m=$(want_all "guest B -> guest A" "$(ping_counts gB ping 10.0.0.1)" 3)
[[ -n $m ]] && f+=("$m")
tap_result "br0: guest B pings guest A 3/3" ${f[@]+"${f[@]}"} || dump_guest gB

f=()
echo "# fdb-show br0:"
sed 's/^/#   /' <<<"$fdb"
grep -qiE '(^|[[:space:]])vmA[[:space:]].*52:54:00:00:00:0a' <<<"$fdb" || f+=("no fdb entry 52:54:00:00:00:0a on port vmA")
grep -qiE '(^|[[:space:]])vmB[[:space:]].*52:54:00:00:00:0b' <<<"$fdb" || f+=("no fdb entry 52:54:00:00:00:0b on port vmB")
n_a=$(grep -ci '52:54:00:00:00:0a' <<<"$fdb")
n_b=$(grep -ci '52:54:00:00:00:0b' <<<"$fdb")
((n_a == 1 && n_b == 1)) || f+=("guest MACs listed $n_a and $n_b times, want once each")
tap_result "br0: fdb-show lists both guests' MACs on their ports" ${f[@]+"${f[@]}"}

f=()
m=$(want_all "guest A -> tap netns 10.0.0.3" "$(ping_counts gA ping 10.0.0.3)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "guest B -> tap netns 10.0.0.3" "$(ping_counts gB ping 10.0.0.3)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "tap netns -> guest A" "$t_a" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "tap netns -> guest B" "$t_b" 3) && [[ -n $m ]] && f+=("$m")
echo "# tap: A->T $(ping_counts gA ping 10.0.0.3), B->T $(ping_counts gB ping 10.0.0.3), T->A $t_a, T->B $t_b"
tap_result "br0: guests <-> tap port moved into a netns, both ways" ${f[@]+"${f[@]}"} || dump_switch

f=()
m=$(want_all "guest A -> afpacket netns 10.0.0.4" "$(ping_counts gA ping 10.0.0.4)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "guest B -> afpacket netns 10.0.0.4" "$(ping_counts gB ping 10.0.0.4)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "afpacket netns -> guest A" "$p_a" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "afpacket netns -> guest B" "$p_b" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "tap netns -> afpacket netns" "$t_p" 3) && [[ -n $m ]] && f+=("$m")
echo "# afpacket: A->P $(ping_counts gA ping 10.0.0.4), B->P $(ping_counts gB ping 10.0.0.4), P->A $p_a, P->B $p_b, T->P $t_p"
tap_result "br0: guests <-> afpacket veth peer in a netns, both ways (and tap <-> afpacket)" ${f[@]+"${f[@]}"} || dump_switch

# Counters: every port received and sent at least the pings it answered
# (3 x 3 echo requests/replies per direction and peer, plus ARP).
f=()
for p in vmA vmB tapT afP; do
	echo "# port-stats $p rx=${rx[$p]:-?} tx=${tx[$p]:-?}"
	[[ -n ${rx[$p]} && ${rx[$p]} -ge 12 ]] || f+=("$p rx_packets=${rx[$p]:-?}, want >= 12")
	[[ -n ${tx[$p]} && ${tx[$p]} -ge 12 ]] || f+=("$p tx_packets=${tx[$p]:-?}, want >= 12")
done
gtx=$(results gA | sed -n 's/^counters .*tx_packets=\([0-9]*\).*/\1/p')
echo "# guest A eth0 tx_packets=${gtx:-?} (counted before its linger; switch vmA rx=${rx[vmA]:-?})"
[[ -n $gtx && -n ${rx[vmA]} && ${rx[vmA]} -ge $gtx ]] || f+=("switch vmA rx_packets ${rx[vmA]:-?} < guest A tx_packets ${gtx:-?}")
tap_result "br0: port-stats counters moved on all four ports" ${f[@]+"${f[@]}"} || dump_switch
qemu_kill gA
qemu_kill gB

# ============================================================ B: br1, VLANs
setup_ok=1
{
	vnetctl_ add-br br1 &&
		vnetctl_ add-port br1 vmC type=vhost-user tag=10 &&
		vnetctl_ add-port br1 vmD type=vhost-user tag=10 &&
		vnetctl_ add-port br1 tapV type=tap name="$if_v" tag=20 &&
		veth_setup "$if_ka" "$if_kb" &&
		vnetctl_ add-port br1 trunkK type=afpacket iface="$if_ka" trunks=10 &&
		ns_setup "$ns_v" "$if_v" 10.0.10.3/24 10.0.20.3/24 &&
		ns_setup "$ns_k" "$if_kb" &&
		wait_for_sock "$work/sw1/vmC.sock" 5 && wait_for_sock "$work/sw1/vmD.sock" 5
} >"$work/setupB.log" 2>&1 || setup_ok=0
if ((!setup_ok)); then
	echo "# setup of group B failed:"
	sed 's/^/#   /' "$work/setupB.log"
	dump_switch
fi
tB=$SECONDS dl=$((SECONDS + 75))
guest_start gC 10.0.10.1/24 52:54:00:00:00:0c --vhost-user "$work/sw1/vmC.sock" \
	"vnet.pings=10.0.10.2,10.0.10.4 vnet.nopings=10.0.10.3 vnet.linger=60"
guest_start gD 10.0.10.2/24 52:54:00:00:00:0d --vhost-user "$work/sw1/vmD.sock" \
	"vnet.pings=10.0.10.1,10.0.10.4 vnet.nopings=10.0.10.3 vnet.linger=60"
# Trunk netns K: answers for 10.0.10.4 on VLAN 10 and 10.0.20.4 on VLAN 20,
# pings both guests on VLAN 10 and the tag-20 tap netns on VLAN 20.
ip netns exec "$ns_k" python3 "$work/vlanprobe.py" "$if_kb" 90 \
	--addr 10:10.0.10.4 --addr 20:10.0.20.4 \
	--ping 10:10.0.10.4:10.0.10.1:3:60 --ping 10:10.0.10.4:10.0.10.2:3:30 \
	--ping 20:10.0.20.4:10.0.20.3:3:3 >"$work/probe.out" 2>&1 &
probe_pid=$!
wait_marker gC 'VNET-NET ' "$(rem 40)"
wait_marker gD 'VNET-NET ' "$(rem 40)"
v_rx0=$(port_stat tapV rx_packets)
v_c=$(ns_ping "$ns_v" 10.0.10.1 3 --no-wait)
v_k=$(ns_ping "$ns_v" 10.0.20.4 3 --no-wait)
v_rx1=$(port_stat tapV rx_packets)
wait_marker gC 'VNET-RESULT: done' "$(rem)"
wait_marker gD 'VNET-RESULT: done' "$(rem)"
end=$((SECONDS + $(rem)))
while ((SECONDS < end)) && ! grep -q pings-done "$work/probe.out" && kill -0 "$probe_pid" 2>/dev/null; do sleep 0.2; done
kill -TERM "$probe_pid" 2>/dev/null
wait "$probe_pid" 2>/dev/null
probe_pid=
fdb1=$(vnetctl_ fdb-show br1 2>&1)
v_tx=$(port_stat tapV tx_packets)
k_rx=$(port_stat trunkK rx_packets)
echo "# group B: guests booted and pinged in $((SECONDS - tB))s"
echo "# trunk netns endpoint:"
sed 's/^/#   /' "$work/probe.out"
# probe_counts VLAN DST -> "sent recv"
probe_counts() {
	sed -n "s/^ping $1 $2 sent=\\([0-9]*\\) recv=\\([0-9]*\\).*/\\1 \\2/p" "$work/probe.out"
}
probe_answered() { # VLAN IP -> "arp icmp"
	sed -n "s/^answered $1 $2 arp=\\([0-9]*\\) icmp=\\([0-9]*\\)/\\1 \\2/p" "$work/probe.out"
}

f=()
m=$(want_all "guest C (tag 10) -> guest D (tag 10)" "$(ping_counts gC ping 10.0.10.2)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "guest D (tag 10) -> guest C (tag 10)" "$(ping_counts gD ping 10.0.10.1)" 3) && [[ -n $m ]] && f+=("$m")
echo "# vlan 10<->10: C->D $(ping_counts gC ping 10.0.10.2), D->C $(ping_counts gD ping 10.0.10.1)"
echo "# fdb-show br1:"
sed 's/^/#   /' <<<"$fdb1"
grep -qiE '(^|[[:space:]])vmC[[:space:]]+10[[:space:]]+52:54:00:00:00:0c' <<<"$fdb1" ||
	f+=("fdb-show br1 has no entry vmC VLAN 10 52:54:00:00:00:0c")
tap_result "br1: guests on tag=10 ping each other 3/3; fdb learned on VLAN 10" ${f[@]+"${f[@]}"} ||
	{ dump_guest gC; dump_switch; }

f=()
m=$(want_none "guest C (tag 10) -> tap netns (tag 20) 10.0.10.3" "$(ping_counts gC noping 10.0.10.3)") && [[ -n $m ]] && f+=("$m")
m=$(want_none "guest D (tag 10) -> tap netns (tag 20) 10.0.10.3" "$(ping_counts gD noping 10.0.10.3)") && [[ -n $m ]] && f+=("$m")
m=$(want_none "tap netns (tag 20) -> guest C (tag 10)" "$v_c") && [[ -n $m ]] && f+=("$m")
# The tag-20 side did send (its ARP requests entered the switch), and nothing
# from VLAN 10 (the guests' ARP broadcasts for 10.0.10.3) ever left on it.
[[ -n $v_rx0 && -n $v_rx1 && $v_rx1 -gt $v_rx0 ]] || f+=("tapV rx_packets did not grow during its pings ($v_rx0 -> $v_rx1)")
[[ $v_tx == 0 ]] || f+=("tapV (tag 20) tx_packets=${v_tx:-?}, want 0: frames from VLAN 10 leaked")
echo "# vlan 10<->20: C->V $(ping_counts gC noping 10.0.10.3), D->V $(ping_counts gD noping 10.0.10.3), V->C $v_c; tapV rx $v_rx0 -> $v_rx1, tx $v_tx"
tap_result "br1: tag 10 and tag 20 are isolated (0 replies either way, tag-20 port tx 0)" ${f[@]+"${f[@]}"} || dump_switch

f=()
m=$(want_all "guest C -> trunk netns VLAN 10 10.0.10.4" "$(ping_counts gC ping 10.0.10.4)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "guest D -> trunk netns VLAN 10 10.0.10.4" "$(ping_counts gD ping 10.0.10.4)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "trunk netns VLAN 10 -> guest C" "$(probe_counts 10 10.0.10.1)" 3) && [[ -n $m ]] && f+=("$m")
m=$(want_all "trunk netns VLAN 10 -> guest D" "$(probe_counts 10 10.0.10.2)" 3) && [[ -n $m ]] && f+=("$m")
ans10=$(probe_answered 10 10.0.10.4)
[[ -n $ans10 && ${ans10#* } -ge 6 ]] || f+=("trunk endpoint answered '${ans10:-?}' (arp icmp) on VLAN 10, want >= 6 echo requests")
echo "# trunk VLAN 10: C->K $(ping_counts gC ping 10.0.10.4), D->K $(ping_counts gD ping 10.0.10.4), K->C $(probe_counts 10 10.0.10.1), K->D $(probe_counts 10 10.0.10.2)"
tap_result "br1: trunk port (trunks=10) to a netns reaches tag 10 (tagged 10 on the wire)" ${f[@]+"${f[@]}"} || dump_switch

f=()
grep -q '^ping 20 10.0.20.3 sent=0 recv=0 arp=fail' "$work/probe.out" ||
	f+=("trunk netns VLAN 20 -> tap netns (tag 20) 10.0.20.3: '$(grep '^ping 20' "$work/probe.out")', want arp=fail")
m=$(want_none "tap netns (tag 20) -> trunk netns VLAN 20 10.0.20.4" "$v_k") && [[ -n $m ]] && f+=("$m")
ans20=$(probe_answered 20 10.0.20.4)
[[ $ans20 == "0 0" ]] || f+=("trunk endpoint answered '${ans20:-?}' (arp icmp) on VLAN 20, want '0 0'")
[[ -n $k_rx && $k_rx -gt 0 ]] || f+=("trunkK rx_packets=${k_rx:-?}: the trunk endpoint's frames never entered the switch")
echo "# trunk VLAN 20: K->V $(probe_counts 20 10.0.20.3), V->K $v_k, K answered on VLAN 20: $ans20; trunkK rx_packets=${k_rx:-?}"
tap_result "br1: trunk port (trunks=10) does not reach tag 20 (either way)" ${f[@]+"${f[@]}"} || dump_switch
qemu_kill gC
qemu_kill gD

f=()
sw_stop || f+=("vnet-switchd exit status ${SW_RC:-?} on SIGTERM, want 0")
tap_result "vnet-switchd with 2 bridges, 8 ports stops cleanly on SIGTERM" ${f[@]+"${f[@]}"} || sw_log_tail 30

# ================================================ C: client mode + restart
tC=$SECONDS dl=$((SECONDS + 100))
sw_start "$work/sw2" || { echo "Bail out! vnet-switchd (restart group) did not start"; exit 1; }
guest_start gE 10.0.1.1/24 52:54:00:00:00:0e --vhost-user-server "$work/qE.sock" \
	"vnet.stream=10.0.1.2 vnet.streamn=70 vnet.linger=30"
guest_start gF 10.0.1.2/24 52:54:00:00:00:0f --vhost-user-server "$work/qF.sock" \
	"vnet.stream=10.0.1.1 vnet.streamn=70 vnet.linger=30"
setup_ok=1
{
	wait_for_sock "$work/qE.sock" 10 && wait_for_sock "$work/qF.sock" 10 &&
		vnetctl_ add-br br0 &&
		vnetctl_ add-port br0 vmE type=vhost-user mode=client path="$work/qE.sock" &&
		vnetctl_ add-port br0 vmF type=vhost-user mode=client path="$work/qF.sock"
} >"$work/setupC.log" 2>&1 || setup_ok=0
if ((!setup_ok)); then
	echo "# setup of group C failed:"
	sed 's/^/#   /' "$work/setupC.log"
	dump_switch
fi
show_before=$(vnetctl_ show 2>&1)

# stream_ok NAME FROM-LINE: "stream N ok" lines after console line FROM-LINE
stream_ok() {
	tr -d '\r' <"$work/$1.console" | tail -n +"$(($2 + 1))" | grep -c 'VNET-RESULT: stream [0-9]* ok'
}
f=()
# Kill once both guests have 8 replies.
end=$((SECONDS + $(rem 45)))
while ((SECONDS < end)); do
	(($(stream_ok gE 0) >= 8 && $(stream_ok gF 0) >= 8)) && break
	kill -0 "${qpid[gE]}" 2>/dev/null && kill -0 "${qpid[gF]}" 2>/dev/null || break
	sleep 0.2
done
okE0=$(stream_ok gE 0) okF0=$(stream_ok gF 0)
echo "# restart: replies before the kill: guest E $okE0, guest F $okF0 (after $((SECONDS - tC))s)"
((okE0 >= 8 && okF0 >= 8)) || f+=("before the kill: guest E $okE0, guest F $okF0 replies, want >= 8 each")
tap_result "restart: client-mode guests ping each other through the switch" ${f[@]+"${f[@]}"} ||
	{ dump_guest gE; dump_guest gF; dump_switch; }

lE=$(wc -l <"$work/gE.console") lF=$(wc -l <"$work/gF.console")
tk=$SECONDS
sw_kill9
sleep 1
f=()
sw_start "$work/sw2" || f+=("vnet-switchd did not restart")
show_after=$(vnetctl_ show 2>&1)
echo "# vnetctl show after the restart:"
sed 's/^/#   /' <<<"$show_after"
for p in vmE vmF; do
	grep -q "Port $p " <<<"$show_after" || f+=("port $p missing after the restart")
done
grep -q '^Bridge br0' <<<"$show_after" || f+=("bridge br0 missing after the restart")
[[ $(grep -v 'state:' <<<"$show_after") == $(grep -v 'state:' <<<"$show_before") ]] ||
	f+=("show differs (ignoring state lines) before/after the restart")
tap_result "restart: kill -9 and restart on the same state dir restores br0, vmE, vmF" ${f[@]+"${f[@]}"} || sw_log_tail 30

wait_marker gE 'VNET-RESULT: done' "$(rem)"
wait_marker gF 'VNET-RESULT: done' "$(rem)"
okE1=$(stream_ok gE "$lE") okF1=$(stream_ok gF "$lF")
failE=$(tr -d '\r' <"$work/gE.console" | tail -n +"$((lE + 1))" | grep -c 'stream [0-9]* fail')
failF=$(tr -d '\r' <"$work/gF.console" | tail -n +"$((lF + 1))" | grep -c 'stream [0-9]* fail')
# First reply after the restart: the gap the guests saw.
echo "# restart: after kill -9 at +$((tk - tC))s: guest E $okE1 replies / $failE lost, guest F $okF1 replies / $failF lost"
f=()
((okE1 > 0)) || f+=("guest E got no replies after the restart")
((okF1 > 0)) || f+=("guest F got no replies after the restart")
tap_result "restart: pings resume after the restart (client-mode ports reconnect)" ${f[@]+"${f[@]}"} ||
	{ dump_guest gE; dump_guest gF; dump_switch; }
f=()
# Reconnection is fast: most of the pings after the restart are answered.
((okE1 >= 10 && okF1 >= 10)) || f+=("after the restart: guest E $okE1, guest F $okF1 replies, want >= 10 each")
tap_result "restart: at least 10 replies per guest after the restart" ${f[@]+"${f[@]}"}
qemu_kill gE
qemu_kill gF
f=()
sw_stop || f+=("vnet-switchd exit status ${SW_RC:-?} on SIGTERM, want 0")
tap_result "restarted vnet-switchd stops cleanly on SIGTERM" ${f[@]+"${f[@]}"} || sw_log_tail 30
echo "# total ${SECONDS}s"
exit $any_fail
