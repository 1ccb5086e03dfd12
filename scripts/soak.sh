#!/usr/bin/env bash
# `make soak`: vnet-switchd under load and churn for SOAK_S seconds (default
# 600), then a verdict on leaks and data.
#
# Load: 8 vhost-user ports in 4 cross-connected pairs (p1<->p2 ... p7<->p8;
# p7 and p8 in client mode, the switch connecting to listening front-ends),
# each with a seqpeer front-end sending RATE frames/s (default 2000) of
# sequence-stamped, checksummed frames and checking every frame it receives.
# Churn, in every 10 s period:
#   - a vhost-user port and a null port are added, the vhost-user one takes a
#     front-end, and both are removed again;
#   - two front-ends reconnect: one closes its device in order and opens a
#     new one (SIGUSR1), one is killed -9 and started again (a new sender);
#   - flows change: a pair's flow is deleted and added back, an overlapping
#     higher-priority flow comes and goes, and an unrelated drop flow too.
# At the end of each period the switch is brought back to the same state
# (the 8 ports, all connected, the base flows, traffic flowing on every
# pair), and its RSS, open fds, threads and guest-memory mappings are
# sampled. After WARMUP_S (default 60; 20 for runs under 5 min) the first
# sample is the reference: the last one must be within 5 % of it for each
# figure (no leak). No receiver may have seen a corrupt, foreign or duplicate
# frame, and the daemon must exit cleanly on SIGTERM (under ASan:
# LeakSanitizer finds no leak). RSS here is RssAnon, the daemon's own memory,
# with glibc's malloc told not to pad or hoard (GLIBC_TUNABLES below); VmRSS
# is printed too, but its RssShmem part is guest memory the switch has
# touched (see the verdict). Prints a table of the samples and one verdict
# line ("soak: PASS ..." / "soak: FAIL ..."); exit status 0 or 1.
#
# Root is not needed. Environment: SOAK_S, RATE, WARMUP_S, BUILD (default
# build) or SWITCHD/VNETCTL/SEQPEER, SOAK_CPUS ("SWITCH_CPU PEER_CPU";
# default the first two allowed CPUs).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$repo/$BUILD
SWITCHD=${SWITCHD:-$BUILD/src/switch/vnet-switchd}
VNETCTL=${VNETCTL:-$BUILD/src/tools/vnetctl}
SOAK_S=${SOAK_S:-600}
RATE=${RATE:-2000}
# The first minute has one-time allocations (first port removal, first
# reconnect of each kind): a long soak takes its reference after it.
WARMUP_S=${WARMUP_S:-$((SOAK_S >= 300 ? 60 : 20))}
PERIOD_S=10
TOLERANCE_PCT=5
. "$repo/tests/integration/lib_seqpeer.sh" # and lib_switch.sh (exports SWITCHD, VNETCTL), peers.sh
for b in "$SWITCHD" "$VNETCTL" "$SEQPEER"; do
	[[ -x $b ]] || { echo "soak: $b not found (make, or set BUILD / SWITCHD, VNETCTL, SEQPEER)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "soak: python3 missing" >&2; exit 2; }

seqpeer_workdir soak || exit 2
trap seqpeer_cleanup EXIT
trap 'exit 130' INT TERM

seqpeer_cpus
[[ -n ${SOAK_CPUS:-} ]] && read -r SW_CPU PEER_CPU <<<"$SOAK_CPUS"

say() { echo "soak: $*"; }
die() { echo "soak: FAIL: $*"; sw_log_tail 20 | sed 's/^#/soak:/'; exit 1; }
ctl() { vnetctl_ "$@" >/dev/null || die "vnetctl $* failed"; }

# --- the peers: pair k = ports p(2k-1), p(2k); p7, p8 in client mode -----------------
declare -A gen=()
peer_args() { # N: seqpeer arguments for port pN's front-end (its current generation)
	local i=$1 g=${gen[$1]:-0}
	local mac
	mac=$(printf '02:00:00:00:%02x:%02x' "$i" "$g")
	if ((i >= 7)); then
		echo "--socket $work/p$i.sock --server"
	else
		echo "--socket $SWDIR/p$i.sock"
	fi
	echo "--reconnect --rate $RATE --src-ip 10.$i.$g.1 --src-mac $mac"
}
start_peer() { # N: (re)starts pN's front-end as a new generation (a new sender)
	gen[$1]=$((${gen[$1]:--1} + 1))
	# shellcheck disable=SC2046 # peer_args is a word list
	peer_start "p$1g${gen[$1]}" $(peer_args "$1")
	cur[$1]=p$1g${gen[$1]}
}
partner() { (($1 % 2)) && echo $(($1 + 1)) || echo $(($1 - 1)); }
directions() { # sets `dirs`: every receiver's status file : its partner's current sender
	local i p
	dirs=()
	for i in 1 2 3 4 5 6 7 8; do
		p=$(partner "$i")
		dirs+=("$work/${cur[$i]}.st:10.$p.${gen[$p]}.1")
	done
}
base_flows() {
	local k
	# a frame no flow wants is dropped, not flooded to the other pairs
	ctl add-flow br0 "priority=1,actions=drop"
	for k in 1 3 5 7; do
		ctl add-flow br0 "priority=100,in_port=$k,actions=output:$((k + 1))"
		ctl add-flow br0 "priority=100,in_port=$((k + 1)),actions=output:$k"
	done
	# the temporary ports (ofport 20, 21) never reach the pairs
	ctl add-flow br0 "priority=150,in_port=20,actions=drop"
	ctl add-flow br0 "priority=150,in_port=21,actions=drop"
}
all_connected() { # the 8 ports' front-ends connected (10 s)
	local end=$((SECONDS + 10)) n
	while ((SECONDS < end)); do
		n=$("$VNETCTL" show 2>/dev/null | grep -c 'state: .* connected, 1/1 queue pairs enabled')
		((n == 8)) && return 0
		sleep 0.2
	done
	return 1
}

# --- sampling -------------------------------------------------------------------------
samples=()
sample() { # appends "t rss_kb fds threads frames anon_kb shmem_kb guest_maps" to samples
	local rss fds thr frames anon shm maps
	maps=$(grep -c 'memfd:' "/proc/$SW_PID/maps")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SW_PID/status")
	anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$SW_PID/status")
	shm=$(awk '/^RssShmem:/ {print $2}' "/proc/$SW_PID/status")
	fds=$(find "/proc/$SW_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	thr=$(awk '/^Threads:/ {print $2}' "/proc/$SW_PID/status")
	frames=$("$VNETCTL" --json port-stats 2>/dev/null |
		python3 -c 'import json,sys; print(sum(p["rx_packets"] for p in json.load(sys.stdin)["ports"]))' 2>/dev/null)
	samples+=("$SECONDS $rss $fds $thr ${frames:-?} $anon $shm $maps")
}

# --- start ------------------------------------------------------------------------------
say "$SOAK_S s, $RATE frames/s per sender on 8 ports, samples every ${PERIOD_S} s after ${WARMUP_S} s of warm-up;" \
	"switch PMD on CPU $SW_CPU, front-ends on CPU $PEER_CPU"
# glibc's malloc moves in steps as large as 5 % of this daemon's few MB of
# its own memory: 128 KiB of padding per heap, lazy trimming, a mmap
# threshold that rises after the first large free (so the next port's
# ~100 KiB structure lands in a heap and can strand it), and one more arena
# whenever two control threads overlap, each keeping its own free pages.
# With no padding, immediate trimming, a fixed 64 KiB threshold and one
# arena, RSS follows what the daemon holds (a 10 min soak: +-1 % instead of
# steps of +-7 %). ASan's allocator ignores this; it is not judged on RSS.
export GLIBC_TUNABLES=glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=0:glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=1
sw_start "$SWDIR" --pmd-cpus "$SW_CPU" --log-level info || die "vnet-switchd did not start"
unset GLIBC_TUNABLES

declare -A cur=()
ctl add-br br0
base_flows
for i in 7 8; do start_peer "$i"; done # listening front-ends first (client-mode ports)
for i in 1 2 3 4 5 6; do
	ctl add-port br0 "p$i" type=vhost-user ofport_request="$i"
done
for i in 7 8; do
	ctl add-port br0 "p$i" type=vhost-user mode=client path="$work/p$i.sock" ofport_request="$i"
done
for i in 1 2 3 4 5 6; do start_peer "$i"; done
all_connected || die "the 8 front-ends did not connect"
directions
peer_check wait --min 500 --timeout 20 "${dirs[@]}" >/dev/null || die "no traffic on every pair at the start"

# --- churn ----------------------------------------------------------------------------------
period=0
reconnects=0 kills=0 port_changes=0 flow_changes=0
start=$SECONDS
while ((SECONDS - start < SOAK_S)); do
	period=$((period + 1))
	t0=$SECONDS
	# a temporary vhost-user port with a receiving front-end, and a null port
	ctl add-port br0 tmp1 type=vhost-user ofport_request=20
	ctl add-port br0 tmp2 type=null ofport_request=21
	peer_start "tmp$period" --socket "$SWDIR/tmp1.sock"
	port_changes=$((port_changes + 2))
	# two front-ends reconnect: one in order, one killed
	r=$((period % 8 + 1))
	k=$(((period + 3) % 8 + 1))
	kill -USR1 "$(peer_pid "${cur[$r]}")" 2>/dev/null && reconnects=$((reconnects + 1))
	peer_kill9 "${cur[$k]}"
	start_peer "$k"
	kills=$((kills + 1))
	# flows change under traffic
	pk=$((period % 4 * 2 + 1))
	ctl del-flows br0 "in_port=$pk"
	ctl add-flow br0 "priority=100,in_port=$pk,actions=output:$((pk + 1))"
	ctl add-flow br0 "priority=200,ip,in_port=$((pk + 1)),actions=output:$pk"
	ctl add-flow br0 "priority=300,ip,nw_src=192.0.2.0/24,actions=drop"
	flow_changes=$((flow_changes + 4))
	sleep 2
	# (del-flows ignores priority: the extra "ip" token tells the two apart)
	ctl del-flows br0 "ip,in_port=$((pk + 1))"
	ctl del-flows br0 "ip,nw_src=192.0.2.0/24"
	peer_stop "tmp$period"
	ctl del-port br0 tmp1
	ctl del-port br0 tmp2
	flow_changes=$((flow_changes + 2))
	port_changes=$((port_changes + 2))
	# back to the reference state, traffic on every pair, then sample
	all_connected || die "period $period: the 8 front-ends did not all reconnect"
	directions
	peer_check wait --min 200 --timeout 15 "${dirs[@]}" >"$work/wait.out" ||
		die "period $period: traffic stopped: $(tr '\n' ';' <"$work/wait.out")"
	sleep 1
	sample
	left=$((PERIOD_S - (SECONDS - t0)))
	((left > 0)) && sleep "$left"
done
peer_stop_all

# --- verdict ------------------------------------------------------------------------------
fail=()
printf '%7s %8s %8s %9s %5s %8s %11s %11s\n' "time_s" "rss_kB" "anon_kB" "shmem_kB" "fds" \
	"threads" "guest_maps" "frames_rx"
ref=
for s in "${samples[@]}"; do
	read -r t rss fds thr frames anon shm maps <<<"$s"
	mark=
	if [[ -z $ref ]] && ((t - start >= WARMUP_S)); then
		ref=$s
		mark="  <- reference (after warm-up)"
	fi
	printf '%7s %8s %8s %9s %5s %8s %11s %11s%s\n' "$((t - start))" "$rss" "$anon" "$shm" \
		"$fds" "$thr" "$maps" "$frames" "$mark"
done
[[ -n $ref ]] || ref=${samples[0]}
read -r _ rss0 fds0 thr0 _ anon0 shm0 maps0 <<<"$ref"
read -r _ rss1 fds1 thr1 _ anon1 shm1 maps1 <<<"${samples[-1]}"
within() { # NAME FROM TO: TO within TOLERANCE_PCT of FROM
	local d=$(($3 - $2))
	((d < 0)) && d=$((-d))
	((d * 100 <= $2 * TOLERANCE_PCT)) || fail+=("$1 went from $2 to $3 (more than $TOLERANCE_PCT %)")
}
# RSS = the daemon's own memory (RssAnon: heap, stacks, packet pools). The
# rest of VmRSS is RssShmem: pages of the front-ends' guest memory the switch
# has touched, which follows how deep each guest's rings got since it
# (re)connected, not the daemon; a leak of guest memory would show as mappings
# left behind, so those are counted instead.
if grep -qa __asan_init "$SWITCHD"; then
	# ASan's allocator keeps freed memory in quarantine, so RSS grows with
	# churn whatever the daemon does; LeakSanitizer judges memory at the exit.
	say "ASan build: RSS not judged (allocator quarantine); LeakSanitizer checks at exit"
else
	within "RSS (RssAnon)" "$anon0" "$anon1"
fi
within fds "$fds0" "$fds1"
within threads "$thr0" "$thr1"
within "guest memory mappings" "$maps0" "$maps1"
if ! verdict=$(peer_check verdict "$work"/p*.st); then
	fail+=("a receiver saw a corrupt, foreign or duplicate frame")
	while read -r l; do say "$l"; done <<<"$verdict"
fi
if ! sw_alive; then
	fail+=("vnet-switchd is not running")
elif ! sw_stop; then
	fail+=("vnet-switchd did not exit cleanly on SIGTERM (status $SW_RC; under ASan: a leak report?)")
fi
totals=$(python3 - "$work" <<'EOF'
import glob, json, sys
rx = dup = corrupt = lost = 0
for f in glob.glob(sys.argv[1] + "/p*.st"):
    d = json.load(open(f))
    rx += d["valid"]; dup += d["dup"]; corrupt += d["corrupt"]; lost += d["lost"]
print(f"{rx} frames checked, {corrupt} corrupt, {dup} duplicate, {lost} lost")
EOF
)
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f %%", (b - a) * 100 / a }'; }
summary="$((SECONDS - start)) s, ${#samples[@]} samples; RssAnon $anon0 -> $anon1 kB ($(pct "$anon0" "$anon1")), fds $fds0 -> $fds1, threads $thr0 -> $thr1, guest mappings $maps0 -> $maps1 (VmRSS $rss0 -> $rss1 kB, $(pct "$rss0" "$rss1"), of which guest memory $shm0 -> $shm1 kB); $totals; $port_changes port changes, $flow_changes flow changes, $reconnects reconnects, $kills front-end kills"
if ((${#fail[@]})); then
	for f in "${fail[@]}"; do say "$f"; done
	echo "soak: FAIL: $summary"
	exit 1
fi
echo "soak: PASS: $summary"
exit 0
