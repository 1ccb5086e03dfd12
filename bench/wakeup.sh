#!/usr/bin/env bash
# Wake-up latency of vnet-switchd's idle mode. Two taps of one bridge, each
# moved into its own network namespace (10.99.0.1 and 10.99.0.2); ping from
# one to the other every 50 ms, so the PMD (after --pmd-idle-spins empty
# rounds, ~1 ms) is asleep when each request arrives. The same pings with
# --pmd-idle-spins 0 (the PMD never sleeps) give the baseline; the
# difference of the RTT medians is what waking costs (the reply finds the
# PMD awake again). A measurement, not a test: root, quiet machine.
#
#   bench/wakeup.sh [BUILD_DIR]     (default build-release, else build)
# Environment: COUNT (pings per run, 200), RUNS (3), SW_CPU (0).
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
((EUID == 0)) || { echo "wakeup: needs root" >&2; exit 1; }
bdir=${1:-}
if [[ -z $bdir ]]; then
	for d in "$repo/build-release" "$repo/build"; do
		[[ -x $d/src/switch/vnet-switchd ]] && { bdir=$d; break; }
	done
fi
SWITCHD=$bdir/src/switch/vnet-switchd VNETCTL=$bdir/src/tools/vnetctl
[[ -x $SWITCHD && -x $VNETCTL ]] || { echo "wakeup: no binaries in '$bdir'" >&2; exit 1; }
COUNT=${COUNT:-200} RUNS=${RUNS:-3} SW_CPU=${SW_CPU:-0} PING_CPU=${PING_CPU:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-wakeup.XXXXXX") || exit 1
nsa=vnwa$$ nsb=vnwb$$ sw_pid=
cleanup() {
	[[ -n $sw_pid ]] && { kill "$sw_pid" 2>/dev/null; wait "$sw_pid" 2>/dev/null; }
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PING=(ping); command -v ping >/dev/null || PING=(/bin/busybox ping)
ctl() { "$VNETCTL" --socket "$work/run/vnet-switchd.ctl" "$@"; }

# run SPINS: sets rtts (one per line, ms) and sleeps (PMD sleeps during the pings)
run() {
	rm -rf "$work/run" "$work/state"
	mkdir -p "$work/run" "$work/state"
	"$SWITCHD" --foreground --log-level warn --pmd-cpus "$SW_CPU" --pmd-idle-spins "$1" \
		--run-dir "$work/run" --state-dir "$work/state" 2>>"$work/switchd.log" &
	sw_pid=$!
	local i
	for ((i = 0; i < 100; i++)); do [[ -S $work/run/vnet-switchd.ctl ]] && break; sleep 0.05; done
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	ip netns add "$nsa" && ip netns add "$nsb" &&
		ctl add-br br0 >/dev/null &&
		ctl add-port br0 ta type=tap name="vwa$$" >/dev/null &&
		ctl add-port br0 tb type=tap name="vwb$$" >/dev/null &&
		ip link set "vwa$$" netns "$nsa" && ip link set "vwb$$" netns "$nsb" &&
		ip -n "$nsa" addr add 10.99.0.1/24 dev "vwa$$" && ip -n "$nsa" link set "vwa$$" up &&
		ip -n "$nsb" addr add 10.99.0.2/24 dev "vwb$$" && ip -n "$nsb" link set "vwb$$" up ||
		return 1
	ip netns exec "$nsa" "${PING[@]}" -c 3 -i 0.2 -W 1 10.99.0.2 >/dev/null || return 1 # ARP, learning
	local s0 s1
	s0=$(ctl --json pmd-stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["pmds"][0]["sleeps"])')
	rtts=$(ip netns exec "$nsa" taskset -c "$PING_CPU" "${PING[@]}" -c "$COUNT" -i 0.05 -W 1 10.99.0.2 |
		sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
	s1=$(ctl --json pmd-stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["pmds"][0]["sleeps"])')
	sleeps=$((s1 - s0))
	kill "$sw_pid"; wait "$sw_pid" 2>/dev/null; sw_pid=
}

stats() { # p50 p99 in microseconds of the values on stdin (ms)
	sort -n | awk '{ v[NR] = $1 * 1000 } END {
		if (!NR) { print "0 0"; exit }
		i50 = int((NR + 1) / 2); i99 = int(NR * 0.99 + 0.999)
		printf "%.1f %.1f\n", v[i50], v[(i99 > NR) ? NR : i99] }'
}

echo "wakeup: vnet-switchd $SWITCHD, PMD on CPU $SW_CPU; $COUNT pings every 50 ms, $RUNS runs each"
echo "wakeup: load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -a busy_p50 idle_p50
for ((r = 1; r <= RUNS; r++)); do
	for mode in busy idle; do
		spins=0
		[[ $mode == idle ]] && spins=20000
		run "$spins" || { echo "wakeup: run failed (see $work/switchd.log)" >&2; exit 1; }
		n=$(grep -c . <<<"$rtts")
		read -r p50 p99 < <(stats <<<"$rtts")
		echo "wakeup: run $r $mode (--pmd-idle-spins $spins): $n replies, RTT p50 $p50 us, p99 $p99 us, PMD sleeps $sleeps"
		if [[ $mode == busy ]]; then busy_p50+=("$p50"); else idle_p50+=("$p50"); fi
	done
done
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
b=$(med "${busy_p50[@]}") i=$(med "${idle_p50[@]}")
awk -v b="$b" -v i="$i" 'BEGIN { printf "wakeup: median RTT p50 never sleeping %.1f us, sleeping between pings %.1f us: wake-up costs %.1f us\n", b, i, i - b }'
