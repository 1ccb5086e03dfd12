#!/usr/bin/env bash
# PVP loop through vnet-switchd: DPDK testpmd (the "VM") with two
# net_virtio_user ports attached to two vhost-user server ports of one
# bridge; testpmd io-forwards port 0 <-> port 1 and the switch sends every
# frame back (flows in_port=1->2, 2->1, or the learning bridge), so a few
# thousand frames injected with `start tx_first 64` circle as fast as the two
# forwarders allow. Prints the loop rate (frames per second testpmd
# receives, both ports together) over a fixed window, for:
#   flows  64 B, normal 64 B, flows 1518 B, normal 1518 B
# repeated RUNS times, and the medians; then vnet-switchd's RSS with the two
# ports (idle and after traffic). A measurement, not a test: run as root on
# an otherwise idle machine.
#
#   bench/pvp.sh [BUILD_DIR]      (default: build-release, else build)
#
# Environment: PVP_KEEP=1 keeps the work dir (logs), RUNS (3), WINDOW (seconds measured, 10), WARMUP (2),
# SW_CPU (vnet-switchd's PMD, 0), TP_CPU (testpmd, 1), QSIZE (ring size of
# the virtio-user ports, 1024), CASES ("flows:64 normal:64 flows:1518
# normal:1518"), PERF=1 (record 3 s of the switch's PMD with perf during the
# first run of each case, report in the work dir, kept).
# testpmd: hugepage-less (--no-huge -m 256 --single-file-segments
# --no-pci), its own --file-prefix, pinned with taskset; see
# tests/lib/peers.sh and tests/integration/dpdk_interop_test.sh.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/tests/lib/peers.sh"

if ((EUID != 0)); then
	echo "pvp: needs root" >&2
	exit 1
fi
need_dpdk || { echo "pvp: dpdk-testpmd with net_virtio_user not available" >&2; exit 1; }
TESTPMD=$(testpmd_bin) || exit 1

bdir=${1:-}
if [[ -z $bdir ]]; then
	for d in "$repo/build-release" "$repo/build"; do
		[[ -x $d/src/switch/vnet-switchd ]] && { bdir=$d; break; }
	done
fi
SWITCHD=${SWITCHD:-$bdir/src/switch/vnet-switchd}
VNETCTL=${VNETCTL:-$bdir/src/tools/vnetctl}
for b in "$SWITCHD" "$VNETCTL"; do
	[[ -x $b ]] || { echo "pvp: $b not found (give a build dir)" >&2; exit 1; }
done

RUNS=${RUNS:-3}
WINDOW=${WINDOW:-10}
WARMUP=${WARMUP:-2}
SW_CPU=${SW_CPU:-0}
TP_CPU=${TP_CPU:-1}
QSIZE=${QSIZE:-1024}
CASES=${CASES:-"flows:64 normal:64 flows:1518 normal:1518"}
PERF=${PERF:-0}

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-pvp.XXXXXX") || exit 1
prefix="vnetpvp$$"
sw_pid=
tp_pid=
fifo_fd=

# stop_pid (and the suite's other helpers); sourced after the defaults above,
# which lib.sh only fills in when unset.
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	[[ -n $fifo_fd ]] && exec {fifo_fd}>&-
	stop_pid "$tp_pid" INT 5
	stop_pid "$sw_pid" TERM 5
	rm -rf /var/run/dpdk/"$prefix"* 2>/dev/null
	if [[ $PERF == 1 ]]; then
		echo "pvp: perf reports kept in $work" >&2
	else
		[[ -n ${PVP_KEEP:-} ]] || rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$VNETCTL" --socket "$work/run/vnet-switchd.ctl" "$@"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

sw_begin() { # MODE: flows | normal
	rm -rf "$work/run" "$work/state"
	mkdir -p "$work/run" "$work/state"
	"$SWITCHD" --foreground --log-level warn --pmd-cpus "$SW_CPU" \
		--state-dir "$work/state" --run-dir "$work/run" 2>"$work/switchd.log" &
	sw_pid=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -S $work/run/vnet-switchd.ctl ]] && break
		sleep 0.05
	done
	ctl add-br br0 >/dev/null &&
		ctl add-port br0 vm1 type=vhost-user path="$work/run/vm1.sock" >/dev/null &&
		ctl add-port br0 vm2 type=vhost-user path="$work/run/vm2.sock" >/dev/null || return 1
	if [[ $1 == flows ]]; then
		ctl add-flow br0 "in_port=1,actions=output:2" >/dev/null &&
			ctl add-flow br0 "in_port=2,actions=output:1" >/dev/null || return 1
	fi
}

sw_end() {
	stop_pid "$sw_pid" TERM 5
	sw_pid=
}

# tp_cmd TEXT: one line to testpmd's prompt.
tp_cmd() { echo "$1" >&"$fifo_fd"; }

# tp_begin SIZE: testpmd io-forwarding between two virtio-user ports.
tp_seq=0
tp_begin() {
	local size=$1
	tp_seq=$((tp_seq + 1))
	rm -f "$work/tp.fifo"
	mkfifo "$work/tp.fifo"
	tp_log=$work/testpmd.$tp_seq.log
	local vd="queue_size=$QSIZE,queues=1"
	# shellcheck disable=SC2046 # testpmd_eal_args is a word list
	taskset -c "$TP_CPU" stdbuf -oL "$TESTPMD" --lcores "0@$TP_CPU,1@$TP_CPU" \
		$(testpmd_eal_args "${prefix}_$tp_seq") \
		--vdev "net_virtio_user0,path=$work/run/vm1.sock,$vd" \
		--vdev "net_virtio_user1,path=$work/run/vm2.sock,$vd" \
		-- -i --forward-mode=io --nb-cores=1 --rxd="$QSIZE" --txd="$QSIZE" \
		--total-num-mbufs=16384 --txpkts="$size" --no-flush-rx \
		<"$work/tp.fifo" >"$tp_log" 2>&1 &
	tp_pid=$!
	exec {fifo_fd}>"$work/tp.fifo"
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q 'testpmd>' "$tp_log" 2>/dev/null && return 0
		kill -0 "$tp_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "pvp: testpmd did not start; log:" >&2
	tail -n 20 "$tp_log" >&2
	return 1
}

tp_end() {
	tp_cmd "stop"
	tp_cmd "quit"
	sleep 1
	exec {fifo_fd}>&-
	fifo_fd=
	stop_pid "$tp_pid" INT 5
	tp_pid=
}

# Rx-pps of both ports from the last "show port stats all" block in the log.
last_rx_pps() {
	sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r//g' "$tp_log" | awk '
		/NIC statistics for port/ { port = $(NF - 1) }
		/Rx-pps:/ { pps[port] = $2 }
		END { print pps[0] + 0, pps[1] + 0 }'
}

# measure MODE SIZE RUN: sets m_p0 m_p1 (Rx-pps per port), rss_idle, rss_busy, stats
measure() {
	local mode=$1 size=$2 run=$3
	sw_begin "$mode" || { echo "pvp: switch setup failed" >&2; return 1; }
	tp_begin "$size" || { sw_end; return 1; }
	sleep 1
	rss_idle=$(rss_kb "$sw_pid")
	tp_cmd "start tx_first 64"
	sleep "$WARMUP"
	tp_cmd "show port stats all" # starts the throughput window
	if [[ $PERF == 1 && $run == 1 ]] && command -v perf >/dev/null; then
		perf record -q -g -o "$work/perf.$mode.$size.data" -p "$sw_pid" -- sleep 3 \
			>/dev/null 2>&1
		perf report -i "$work/perf.$mode.$size.data" --no-children --stdio 2>/dev/null |
			grep -v '^#' | grep '%' | head -n 25 >"$work/perf.$mode.$size.txt"
		sleep $((WINDOW > 3 ? WINDOW - 3 : 0))
	else
		sleep "$WINDOW"
	fi
	tp_cmd "show port stats all"
	sleep 1
	rss_busy=$(rss_kb "$sw_pid")
	stats=$(ctl port-stats 2>/dev/null)
	pmd_stats=$(ctl pmd-stats 2>/dev/null)
	tp_end
	# Read testpmd's log once it is gone (all of it written).
	read -r m_p0 m_p1 < <(last_rx_pps)
	sw_end
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

echo "pvp: vnet-switchd $SWITCHD (PMD on CPU $SW_CPU), testpmd $TESTPMD (CPU $TP_CPU)"
echo "pvp: $RUNS runs x ${WINDOW}s windows after ${WARMUP}s warm-up; start tx_first 64; rings $QSIZE"
echo "pvp: load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A results
rss_line=
for c in $CASES; do
	mode=${c%%:*} size=${c#*:}
	vals=()
	for ((r = 1; r <= RUNS; r++)); do
		measure "$mode" "$size" "$r" || { echo "pvp: $mode $size B run $r failed"; continue; }
		vals+=("$((m_p0 + m_p1))")
		awk -v m="$mode" -v s="$size" -v r="$r" -v a="$m_p0" -v b="$m_p1" 'BEGIN {
			printf "pvp: %-6s %4s B run %d: %7.3f Mpps (port0 rx %.3f, port1 rx %.3f)\n",
				m, s, r, (a + b) / 1e6, a / 1e6, b / 1e6 }'
		if [[ -n ${stats:-} && $r == 1 ]]; then
			sed 's/^/pvp:     /' <<<"$stats"
		fi
		[[ -n ${pmd_stats:-} ]] && sed 's/^/pvp:     /' <<<"$pmd_stats"
		[[ -z $rss_line ]] && rss_line="vnet-switchd VmRSS with 2 vhost-user ports: ${rss_idle} kB idle (testpmd attached), ${rss_busy} kB after traffic"
	done
	results[$c]=$(printf '%s\n' "${vals[@]}" | median)
	if [[ $PERF == 1 && -s $work/perf.$mode.$size.txt ]]; then
		echo "pvp: perf (switch, $mode $size B):"
		sed 's/^/pvp:     /' "$work/perf.$mode.$size.txt"
	fi
done
echo "pvp: --- medians of $RUNS runs (frames/s received by testpmd, both ports) ---"
for c in $CASES; do
	awk -v m="${c%%:*}" -v s="${c#*:}" -v v="${results[$c]}" \
		'BEGIN { printf "pvp: %-6s %4s B: %7.3f Mpps\n", m, s, v / 1e6 }'
done
echo "pvp: $rss_line"
