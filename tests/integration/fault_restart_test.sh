#!/usr/bin/env bash
# Faults under load (issue 7): vnet-switchd with traffic in both directions
# on two pairs of vhost-user ports while front-ends and the switch itself are
# killed -9 in the middle of the stream and restarted, in every order.
#
#   br0: vm1 <-> vm2   server ports (the switch listens); seqpeer front-ends
#                      with --reconnect, as QEMU with reconnect=1
#   br1: c2  <-> c1    client ports (the switch connects and reconnects):
#                      c2 = seqpeer --server, c1 = DPDK testpmd net_virtio_user
#                      server=1 in io mode, port looped to itself (it keeps its
#                      rings across the switch's restarts, as a VM does), so
#                      c2's frames cross the switch twice and come back; a
#                      second seqpeer stands in for testpmd when DPDK is missing
#
# Flows cross-connect the pairs (in_port=1 -> 2, 2 -> 1). seqpeer stamps
# every frame with a sequence number and checks every frame it receives
# (checksums, payload pattern), per sender: after each fault the test waits
# until frames flow again in every direction (a ring left un-kicked after a
# restart, the rust-vmm bug, stops one), and at the end no receiver may have
# seen a corrupt, foreign or duplicate frame, and losses stay within what the
# rings in flight can hold. Root only; about 1-2 minutes. Prints TAP.
#
# Environment: SWITCHD, VNETCTL (meson passes them; default build/), SEQPEER
# (default: next to SWITCHD's build), RATE (frames/s per sender, default 8000),
# KILLS (switch kills in test 3, default 4), FAULT_NO_DPDK=1 (seqpeer for c1).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/tap.sh"
. "$here/lib_seqpeer.sh"
seqpeer_setup fault # root, python3, binaries; $work, $SWDIR; SW_CPU, PEER_CPU

RATE=${RATE:-8000}
BUDGET=170 # seconds; later tests fail fast rather than overrun meson's timeout
tp_pid=
tp_prefix=vfault$$

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [[ -n $tp_pid ]]; then
		kill -INT "$tp_pid" 2>/dev/null
		sleep 0.5
		kill -KILL "$tp_pid" 2>/dev/null
		wait "$tp_pid" 2>/dev/null
	fi
	seqpeer_cleanup
	rm -rf /var/run/dpdk/"$tp_prefix"* 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# After a failure, report shows the daemon log, then each front-end's stderr.
# shellcheck disable=SC2317,SC2154 # called by report; work is seqpeer_setup's
report_extra() {
	echo "# --- daemon log (tail) ---"
	sw_log_tail 25
	tail_logs 5 "$work"/*.err
}

# --- the peers ---------------------------------------------------------------------
# Each incarnation of a front-end sends as a new identity (source address),
# so a restarted sender's sequence numbers never look like duplicates.
declare -A gen=([A]=0 [D]=0)
ip_of() { # PEER
	case $1 in
	A) echo "10.1.${gen[A]}.1" ;;
	B) echo "10.2.0.1" ;;
	D) echo "10.3.${gen[D]}.1" ;;
	E) echo "10.4.0.1" ;;
	esac
}
start_A() {
	gen[A]=$((gen[A] + 1))
	peer_start "A${gen[A]}" --socket "$SWDIR/vm1.sock" --reconnect --rate "$RATE" \
		--src-ip "$(ip_of A)" --src-mac 02:00:00:00:01:01 --dst-mac 02:00:00:00:02:01
	A=A${gen[A]}
}
start_D() {
	gen[D]=$((gen[D] + 1))
	peer_start "D${gen[D]}" --socket "$work/c2.sock" --server --reconnect --rate "$RATE" \
		--src-ip "$(ip_of D)" --src-mac 02:00:00:00:03:01 --dst-mac 02:00:00:00:04:01
	D=D${gen[D]}
}
start_c1_peer() {
	if ((have_dpdk)); then
		# shellcheck disable=SC2046 # testpmd_eal_args is a word list
		timeout -k 5 -s INT 300 taskset -c "$PEER_CPU" "$TESTPMD" --lcores "0@$PEER_CPU,1@$PEER_CPU" \
			$(testpmd_eal_args "$tp_prefix") \
			--vdev "net_virtio_user0,path=$work/c1.sock,server=1,queue_size=256" \
			-- --forward-mode=io --port-topology=loop --total-num-mbufs=8192 --stats-period 10 \
			</dev/null >"$work/testpmd.log" 2>&1 &
		tp_pid=$!
		wait_for_sock "$work/c1.sock" 15
	else
		peer_start E --socket "$work/c1.sock" --server --reconnect --rate "$RATE" \
			--src-ip "$(ip_of E)" --src-mac 02:00:00:00:04:01 --dst-mac 02:00:00:00:03:01
	fi
}
# directions: sets `dirs` to the directions that must carry frames, as
# seqpeer_check.py FILE:SENDER pairs (the current incarnations).
directions() {
	dirs=("$work/$A.st:$(ip_of B)" "$work/B.st:$(ip_of A)")
	if ((have_dpdk)); then
		dirs+=("$work/$D.st:$(ip_of D)") # c2 -> c1 (testpmd) -> c2
	else
		dirs+=("$work/$D.st:$(ip_of E)" "$work/E.st:$(ip_of D)")
	fi
}
# moving: frames are flowing in every direction right now (before a kill).
moving() {
	directions
	peer_check wait --min 200 --timeout 5 "${dirs[@]}" >/dev/null
}
# flowing SECS: every direction gains 1000 frames within SECS; failures noted.
flowing() {
	local out
	directions
	out=$(peer_check wait --min 1000 --timeout "$1" "${dirs[@]}")
	local rc=$?
	while read -r l; do echo "#   $l"; done <<<"$out"
	((rc == 0)) || fail "traffic did not flow again in every direction within $1 s"
	return $rc
}
start_switch() {
	sw_start "$SWDIR" --pmd-cpus "$SW_CPU" --log-level info
}
config_of() { # the configuration as `show` prints it, without the live states
	vnetctl_ show 2>/dev/null | grep -v 'state:'
}

have_dpdk=0
if [[ -z ${FAULT_NO_DPDK:-} ]] && need_dpdk 2>/dev/null && TESTPMD=$(testpmd_bin); then
	have_dpdk=1
fi

echo "1..6"
echo "# switch PMD on CPU $SW_CPU, peers on CPU $PEER_CPU; $RATE frames/s per sender;" \
	"c1's front-end: $( ((have_dpdk)) && echo "testpmd io loop" || echo "seqpeer (no DPDK)")"

# --- 1: set-up, traffic in every direction ------------------------------------------
name="set-up: vm1 <-> vm2 (server ports) and c2 <-> c1 (client ports) carry frames in every direction"
if start_switch; then
	vnetctl_ add-br br0 >/dev/null && vnetctl_ add-port br0 vm1 type=vhost-user >/dev/null &&
		vnetctl_ add-port br0 vm2 type=vhost-user >/dev/null &&
		vnetctl_ add-flow br0 "priority=100,in_port=1,actions=output:2" >/dev/null &&
		vnetctl_ add-flow br0 "priority=100,in_port=2,actions=output:1" >/dev/null ||
		fail "setting up br0 failed"
	start_A
	peer_start B --socket "$SWDIR/vm2.sock" --reconnect --rate "$RATE" --src-ip "$(ip_of B)" \
		--src-mac 02:00:00:00:02:01 --dst-mac 02:00:00:00:01:01
	start_D
	start_c1_peer || fail "testpmd did not create $work/c1.sock"
	vnetctl_ add-br br1 >/dev/null &&
		vnetctl_ add-port br1 c1 type=vhost-user mode=client path="$work/c1.sock" >/dev/null &&
		vnetctl_ add-port br1 c2 type=vhost-user mode=client path="$work/c2.sock" >/dev/null &&
		vnetctl_ add-flow br1 "priority=100,in_port=1,actions=output:2" >/dev/null &&
		vnetctl_ add-flow br1 "priority=100,in_port=2,actions=output:1" >/dev/null ||
		fail "setting up br1 failed"
	flowing 20
	ref_config=$(config_of)
else
	fail "vnet-switchd did not start"
fi
report "$name"
if ((any_fail)); then
	echo "Bail out! no traffic to fault"
	exit 1
fi

# --- 2: front-ends killed mid-burst -------------------------------------------------
name="front-ends killed -9 mid-burst (vm1's, c2's) and restarted: the ports take the new ones, frames flow again both ways"
if ! over_budget "$name"; then
	moving || fail "no traffic right before the kill"
	peer_kill9 "$A"
	peer_kill9 "$D"
	sleep 0.5
	sw_alive || fail "vnet-switchd died when its front-ends were killed"
	start_A
	start_D
	flowing 15
	report "$name"
fi

# --- 3: the switch killed mid-burst, several times ------------------------------------
KILLS=${KILLS:-4}
name="vnet-switchd killed -9 mid-burst and restarted, $KILLS times: ports and flows restored, front-ends reconnect, frames flow both ways (no stuck ring)"
if ! over_budget "$name"; then
	for ((k = 1; k <= KILLS; k++)); do
		moving || fail "kill $k: no traffic right before the kill"
		# somewhere inside a burst, not on a round time
		sleep "0.$((RANDOM % 90 + 10))"
		sw_kill9
		if ! start_switch; then
			fail "kill $k: vnet-switchd did not restart"
			break
		fi
		[[ $(config_of) == "$ref_config" ]] ||
			fail "kill $k: configuration after the restart differs: $(config_of | tr '\n' '|')"
		echo "# kill $k:"
		flowing 20 || break
	done
	report "$name"
fi

# --- 4: both killed, the switch back first --------------------------------------------
name="switch and front-ends killed -9 together; the switch restarted first, then the front-ends: frames flow again both ways"
if ! over_budget "$name"; then
	moving || fail "no traffic right before the kill"
	sw_kill9
	peer_kill9 "$A"
	peer_kill9 "$D"
	if start_switch; then
		sleep 1
		start_A
		start_D
		flowing 20
	else
		fail "vnet-switchd did not restart"
	fi
	report "$name"
fi

# --- 5: both killed, the front-ends back first ------------------------------------------
name="switch and front-ends killed -9 together; the front-ends restarted first (waiting), then the switch: frames flow again both ways"
if ! over_budget "$name"; then
	moving || fail "no traffic right before the kill"
	peer_kill9 "$A"
	peer_kill9 "$D"
	sw_kill9
	start_A
	start_D
	sleep 1.5 # the client retries and the listening seqpeer wait for a switch
	if start_switch; then
		flowing 20
	else
		fail "vnet-switchd did not restart"
	fi
	report "$name"
fi

# --- 6: accounting ------------------------------------------------------------------
# Frames may be lost: those in the rings at a kill, and those a receiver's
# full ring could not take while it was off the CPU (the switch drops, it
# never waits). A few hundred per fault, so holes in more than 5 % of a
# receiver's sequence point at something else.
MAX_LOST_PCT=5
name="no corrupt or duplicate frame delivered to any receiver; holes <= $MAX_LOST_PCT %; clean exit on SIGTERM"
if ! over_budget "$name"; then
	peer_stop_all
	files=()
	for f in "$work"/A*.st "$work"/B.st "$work"/D*.st "$work"/E.st; do
		[[ -f $f ]] && files+=("$f")
	done
	out=$(peer_check verdict --max-lost-pct "$MAX_LOST_PCT" "${files[@]}") || fail "a receiver failed the checks"
	while read -r l; do echo "# $l"; done <<<"$out"
	sw_alive || fail "vnet-switchd is not running at the end"
	sw_stop || fail "vnet-switchd did not exit cleanly on SIGTERM (status $SW_RC; under ASan: a leak report?)"
	# a ring the switch found inconsistent after a restart is marked broken
	grep -m1 "jumped" "$SWDIR/switchd.log" >/dev/null &&
		fail "daemon log: $(grep -m1 jumped "$SWDIR/switchd.log")"
	report "$name"
fi

echo "# total ${SECONDS}s"
exit $any_fail
