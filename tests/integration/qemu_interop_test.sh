#!/usr/bin/env bash
# Interop of vnet's vhost-user back-end (vnet-pktgen --role backend) with QEMU
# as the front-end: the test guest (tests/guest) boots under QEMU TCG with a
# virtio-net-pci vhost-user NIC whose back-end is pktgen in responder mode
# (answers ARP and ICMP echo for 10.0.0.1).  The guest pings it 5 times and
# reports its eth0 counters, which must match pktgen's exactly.
# Run twice: (a) pktgen listens, QEMU connects; (b) QEMU listens
# (server=on,wait=off), pktgen --client connects.
# Only the guest's private link (10.0.0.0/24 between guest and pktgen) and a
# Unix socket in a private temporary directory.  Prints TAP.
#
# Environment: PKTGEN (vnet-pktgen binary; meson passes it, default
# build/src/tools/vnet-pktgen).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"

NTESTS=6
skip_unless_root
need_qemu || vnet_skip "qemu not available"

PKTGEN=${PKTGEN:-$repo/build/src/tools/vnet-pktgen}
if [[ ! -x $PKTGEN ]]; then
	echo "Bail out! vnet-pktgen not found at $PKTGEN (set PKTGEN or build build/)"
	exit 1
fi
if ! vnet_guest_ensure; then
	echo "Bail out! test guest build failed (tests/guest/build-guest.sh)"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-qemu.XXXXXX") || exit 1
pg_pid=

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	vnet_qemu_stop
	if [[ -n $pg_pid ]]; then
		kill -TERM "$pg_pid" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			kill -0 "$pg_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pg_pid" 2>/dev/null
		wait "$pg_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The guest's test. IPv6 is switched off on eth0 first so that the guest sends
# nothing on its own (router solicitations, MLD reports) while or after the
# counters are read; what it sent before that is counted on both sides.
cat >"$work/guest-test.sh" <<'EOF'
echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null
ping -c 5 -W 2 "${VNET_PEER:-10.0.0.1}" >/tmp/ping.out 2>&1
prc=$?
while read -r l; do [ -n "$l" ] && result "ping: $l"; done </tmp/ping.out
result "ping rc=$prc"
s=/sys/class/net/eth0/statistics
result "counters rx_packets=$(cat $s/rx_packets) tx_packets=$(cat $s/tx_packets) rx_dropped=$(cat $s/rx_dropped) tx_dropped=$(cat $s/tx_dropped) rx_errors=$(cat $s/rx_errors) tx_errors=$(cat $s/tx_errors)"
EOF

jget() {
	grep -o "\"$2\":[-0-9.]*" "$1" 2>/dev/null | tail -n1 | cut -d: -f2
}

# guest_counter RESULTS NAME
guest_counter() {
	sed -n "s/^counters .*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$1" | tail -n1
}

any_fail=0
t=0

dump_logs() { # VARIANT
	local v=$1
	echo "# --- [$v] guest console (tail) ---"
	tr -d '\r' <"$work/$v.console" 2>/dev/null | tail -n 40 | sed 's/^/#   /'
	echo "# --- [$v] QEMU stderr ---"
	sed 's/^/#   /' "$work/$v.console.qemu" 2>/dev/null
	echo "# --- [$v] pktgen JSON ---"
	sed 's/^/#   /' "$work/$v.pktgen.json" 2>/dev/null
	echo "# --- [$v] pktgen log (tail) ---"
	tail -n 40 "$work/$v.pktgen.log" 2>/dev/null | sed 's/^/#   /'
}

# variant V DESCRIPTION: V=a (pktgen listens) or b (QEMU listens)
variant() {
	local v=$1 desc=$2 sock=$work/$1.sock
	local -a pgmode=() qnic=()
	if [[ $v == a ]]; then
		qnic=(--vhost-user "$sock")
	else
		pgmode=(--client)
		qnic=(--vhost-user-server "$sock")
	fi
	local json=$work/$v.pktgen.json log=$work/$v.pktgen.log con=$work/$v.console
	"$PKTGEN" --role backend "${pgmode[@]}" --socket "$sock" --mode responder --ip 10.0.0.1 \
		--json --wait 90 --log-level debug </dev/null >"$json" 2>"$log" &
	pg_pid=$!
	if [[ $v == a ]]; then
		local end=$((SECONDS + 10))
		while [[ ! -S $sock ]] && ((SECONDS < end)) && kill -0 "$pg_pid" 2>/dev/null; do sleep 0.05; done
	fi

	local t0=$SECONDS qrc=125 end=$((SECONDS + 60)) pg_gone=
	vnet_qemu_start "$con" --script "$work/guest-test.sh" \
		--ip 10.0.0.2/24 --append "vnet.peer=10.0.0.1 vnet.timeout=40" "${qnic[@]}"
	# Wait for QEMU to power off (bounded). If pktgen died before the guest
	# booted, QEMU waits for it forever (server) or has failed: stop it.
	while [[ -n $VNET_QEMU_PID ]] && kill -0 "$VNET_QEMU_PID" 2>/dev/null; do
		if ((SECONDS >= end)); then
			echo "# [$v] QEMU still running after 60 s, killing it"
			break
		fi
		if [[ -z $pg_gone ]] && ! kill -0 "$pg_pid" 2>/dev/null; then
			pg_gone=$SECONDS
		fi
		if [[ -n $pg_gone ]] && ((SECONDS - pg_gone >= 5)) && ! grep -q VNET-BOOT "$con"; then
			echo "# [$v] pktgen exited before the guest booted, stopping QEMU"
			break
		fi
		sleep 0.1
	done
	vnet_qemu_stop
	[[ -n $(vnet_qemu_rc "$con") ]] && qrc=$(vnet_qemu_rc "$con")
	local qsecs=$((SECONDS - t0))

	# pktgen prints its summary on SIGTERM.
	local pgrc=
	if kill -0 "$pg_pid" 2>/dev/null; then
		kill -TERM "$pg_pid"
		local end=$((SECONDS + 10))
		while kill -0 "$pg_pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.05; done
		kill -KILL "$pg_pid" 2>/dev/null
	fi
	wait "$pg_pid" 2>/dev/null
	pgrc=$?
	pg_pid=

	local res
	res=$(vnet_qemu_results "$con")
	local -a f1=() f2=() f3=()

	# 1: ping 5/5
	((qrc == 0)) || f1+=("guest test rc=$qrc (125: no VNET-DONE, QEMU killed or crashed)")
	local sent recv
	sent=$(sed -n 's/^ping: \([0-9]*\) packets transmitted.*/\1/p' <<<"$res")
	recv=$(sed -n 's/^ping: .* \([0-9]*\) packets received.*/\1/p' <<<"$res")
	[[ $sent == 5 && $recv == 5 ]] || f1+=("ping: ${sent:-?} sent, ${recv:-?} received, want 5/5")
	local rtt
	rtt=$(sed -n 's/^ping: round-trip //p' <<<"$res")
	echo "# [$v] QEMU run ${qsecs}s; guest ping ${sent:-?}/${recv:-?}, round-trip ${rtt:-?}"
	tap_result "[$v] $desc: guest pings pktgen responder 5/5" "${f1[@]}" || dump_logs "$v"

	# 2: pktgen answered
	local answered prx ptx
	answered=$(jget "$json" answered)
	prx=$(jget "$json" rx_packets)
	ptx=$(jget "$json" tx_packets)
	[[ $pgrc == 0 ]] || f2+=("pktgen exit status $pgrc, want 0 after SIGTERM")
	[[ -n $answered ]] && ((answered >= 5)) || f2+=("pktgen answered '${answered}', want >= 5")
	[[ $(jget "$json" errors) == 0 && $(jget "$json" drops) == 0 ]] ||
		f2+=("pktgen errors=$(jget "$json" errors) drops=$(jget "$json" drops)")
	tap_result "[$v] $desc: pktgen answered ARP+ICMP (answered=${answered:-?})" "${f2[@]}" || dump_logs "$v"

	# 3: counters agree: guest tx == pktgen rx, guest rx == pktgen tx
	local gtx grx
	gtx=$(guest_counter "$res" tx_packets)
	grx=$(guest_counter "$res" rx_packets)
	echo "# [$v] guest eth0 tx=$gtx rx=$grx; pktgen rx=$prx tx=$ptx answered=$answered"
	[[ -n $gtx && -n $prx && $gtx == "$prx" ]] || f3+=("guest tx_packets '$gtx' != pktgen rx_packets '$prx'")
	[[ -n $grx && -n $ptx && $grx == "$ptx" ]] || f3+=("guest rx_packets '$grx' != pktgen tx_packets '$ptx'")
	tap_result "[$v] $desc: guest and pktgen counters agree" "${f3[@]}" || dump_logs "$v"

	if grep -q 'warning' "$con.qemu" 2>/dev/null; then
		sed 's/^/# [QEMU] /' "$con.qemu" | grep warning
	fi
}

echo "1..$NTESTS"
variant a "pktgen server, QEMU client"
variant b "QEMU server, pktgen client"
echo "# total ${SECONDS}s"
exit $any_fail
