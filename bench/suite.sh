#!/usr/bin/env bash
# bench/suite.sh: vnet against DPDK 22.11 and OVS-DPDK 3.1 in the same run
# (`make bench`). Traffic source and sink are always DPDK's dpdk-testpmd
# (hugepage-less, net_virtio_user ports, pinned to TP_CPU); the system under
# test polls on SUT_CPU. Figures (BENCH_ONLY picks some):
#   ring      bench_ring: ns per chain through a split virtqueue (libvnet alone)
#   dequeue   guest TX -> handler: testpmd txonly into vnet-pktgen --role backend
#             --mode rx | testpmd net_vhost rxonly                      (64, 1518 B)
#   enqueue   handler -> guest RX: vnet-pktgen --role backend --mode tx |
#             testpmd net_vhost txonly into testpmd rxonly               (64, 1518 B)
#   switch    PVP loop without the wire: testpmd io-fwd over two virtio-user
#             ports, `start tx_first 64`, through vnet-switchd | OVS-DPDK |
#             testpmd io-fwd between two net_vhost ports; flows 1<->2 and the
#             learning bridge (NORMAL; driver in mac fwd mode, each port's peer
#             MAC being the other port's, so every MAC stays on its port)
#   latency   the same loop with one frame per direction (`set burst 1`,
#             `start tx_first 1`): mean RTT = 2 x frames in flight / loop rate
#             (Little's law), sampled every LAT_SAMPLE s for p50/p99
#   memory    VmHWM / RssAnon of vnet-switchd vs ovs-vswitchd + ovsdb-server
#             with MEM_PORTS vhost-user ports attached (and OVS's hugepages)
#   scaling   vnet-switchd with SCALE_PORTS ports in pairs (flows pairing
#             them, one testpmd io-forwarding N ports): aggregate Mpps
#   cpu       (runs by itself for the loop cases in which all switches reach
#             the same rate, or when named) CPU per forwarded packet at a fixed
#             offered rate: vnet-pktgen --rate on port 1 (the one non-DPDK
#             generator: testpmd cannot pace), testpmd rxonly on port 2,
#             `perf stat` (cycles, else task-clock) on the switch process
# Each figure: RUNS alternating runs (ours, anchor, ours, ...), medians and
# the median of per-run ratios (ours/anchor). Failed runs are recorded as
# failed, never as 0. Writes bench/results/<date>.{json,md,png}; logs of the
# run in bench/results/raw/<date>/ (not committed).
#
#   bench/suite.sh [BUILD_DIR]          (default build-release)
#
# Environment: RUNS (5), WARMUP (1 s), WINDOW (3 s), BENCH_ONLY ("ring
# dequeue enqueue switch latency memory scaling"), SIZES ("64 1518"),
# MEM_PORTS ("2 16"), MEM_RUNS (1), SCALE_PORTS ("2 8 32"), LAT_SAMPLE (0.1),
# CPU_RATE (10000 pps), CPU_RUNS (3), SAT_TOL (0.05), BENCH_PERF=0 (no perf),
# SWITCH_IMPLS ("vnet ovs dpdk": the switches of the switch/latency figures), SUT_CPU (0), TP_CPU (1), QSIZE (1024),
# BENCH_OUT (bench/results), BENCH_KEEP=1 (keep the work dir), BENCH_README=1
# (also replace the table in README.md).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/lib/peers.sh
. "$repo/tests/lib/peers.sh"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

RUNS=${RUNS:-5}
BENCH_ONLY=${BENCH_ONLY:-"ring dequeue enqueue switch latency memory scaling"}
SIZES=${SIZES:-"64 1518"}
MEM_PORTS=${MEM_PORTS:-"2 16"}
MEM_RUNS=${MEM_RUNS:-1}
SCALE_PORTS=${SCALE_PORTS:-"2 8 32"}
LAT_SAMPLE=${LAT_SAMPLE:-0.1}
CPU_RATE=${CPU_RATE:-10000}
CPU_RUNS=${CPU_RUNS:-3}
SWITCH_IMPLS=${SWITCH_IMPLS:-"vnet ovs dpdk"}
SAT_TOL=${SAT_TOL:-0.05}
OUT=${BENCH_OUT:-$repo/bench/results}

bdir=${1:-$repo/build-release}
SWITCHD=$bdir/src/switch/vnet-switchd
VNETCTL=$bdir/src/tools/vnetctl
PKTGEN=$bdir/src/tools/vnet-pktgen
RING=$bdir/bench/bench_ring
C2C=$bdir/bench/bench_c2c

want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

if ((EUID != 0)); then
	echo "bench: needs root (vhost-user peers, hugepages for OVS-DPDK)" >&2
	exit 1
fi
for b in "$SWITCHD" "$VNETCTL" "$PKTGEN" "$RING"; do
	[[ -x $b ]] || { echo "bench: $b missing (build $bdir first: make build-release)" >&2; exit 1; }
done
need_dpdk 2>/dev/null || { echo "bench: dpdk-testpmd with net_vhost/net_virtio_user missing (scripts/install-deps.sh --bench)" >&2; exit 1; }
TESTPMD=$(testpmd_bin)
HAVE_OVS=1
ovs_available || HAVE_OVS=0
if ((HAVE_OVS == 0)); then
	warn "OVS-DPDK not installed ($OVS_VSWITCHD): its runs are recorded as failed (scripts/install-deps.sh --bench)"
fi
if [[ ${BENCH_PERF:-1} == 0 ]]; then
	PERF_EVENT=
elif [[ $(perf stat -x, -e cycles -- true 2>&1) == *cycles* && $(perf stat -x, -e cycles -- true 2>&1) != *"not supported"* ]]; then
	PERF_EVENT=cycles
elif command -v perf >/dev/null; then
	PERF_EVENT=task-clock
else
	PERF_EVENT=
	warn "perf not found: no CPU-per-packet figures"
fi

# One suite at a time: two would share the CPUs (meaningless numbers) and
# step on each other's hugepage bookkeeping.
mkdir -p /run/lock
exec {lock_fd}>/run/lock/vnet-bench.lock || exit 1
if ! flock -n "$lock_fd"; then
	echo "bench: another bench/suite.sh is running (/run/lock/vnet-bench.lock)" >&2
	exit 1
fi

stamp=$(date +%Y-%m-%d-%H%M)
mkdir -p "$OUT/raw/$stamp" || exit 1
RAW=$OUT/raw/$stamp
SAMPLES=$RAW/samples.jsonl
: >"$SAMPLES"
WORK=$(mktemp -d /tmp/vnet-bench.XXXXXX) || exit 1
PREFIX=vnetbench$$
t_start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	trap - EXIT INT TERM
	tp_stop_all
	local n p
	for n in "${!PG_PID[@]}"; do pg_stop "$n"; done
	sw_stop
	ovs_stop
	ovs_unprepare
	for p in "${BG_PIDS[@]}"; do stop_pid "$p" TERM 3; done
	rm -rf /var/run/dpdk/"$PREFIX"* 2>/dev/null
	if [[ -n ${BENCH_KEEP:-} ]]; then
		echo "bench: work dir kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM
trap '' PIPE # a dead testpmd must not kill us through its fifo

exec > >(tee -a "$RAW/suite.log") 2>&1

# fail_cases FIG IMPL RUN WHY CASE...: the run's cases as failed.
fail_cases() {
	local fig=$1 impl=$2 run=$3 why=$4 c
	shift 4
	for c in "$@"; do record "$fig" "$c" "$impl" "$run" "" "error=$why"; done
	warn "$fig $impl run $run failed: $why"
}

# show FIG CASE IMPL RUN VALUE UNIT: progress line.
show() { say "$(printf '%-8s %-12s %-5s run %d: %s %s' "$1" "$2" "$3" "$4" "${5:-FAILED}" "$6")"; }

sut_pid() { # IMPL: the process to profile
	case $1 in
	vnet) echo "$SW_PID" ;;
	ovs) echo "$OVS_SW_PID" ;;
	dpdk) echo "${TP_PID[sut]:-}" ;;
	esac
}

# ns_per_pkt CPU PPS: perf's value over WINDOW per forwarded packet
# (task-clock: ns; cycles: cycles).
ns_per_pkt() {
	[[ -n $1 && -n $2 && $2 != 0 ]] || return 0
	awk -v c="$1" -v p="$2" -v w="$WINDOW" 'BEGIN { printf "%.1f", c * 1e6 / (p * w) }'
}

# --- ring -----------------------------------------------------------------------

fig_ring() {
	say "== ring: bench_ring (libvnet split virtqueue, one thread on CPU $SUT_CPU)"
	local j v r=0
	j=$(taskset -c "$SUT_CPU" "$RING" --json --runs "$RUNS" 2>"$RAW/ring.log")
	for v in $(grep -o '"runs_ns_per_chain":\[[^]]*' <<<"$j" | cut -d'[' -f2 | tr ',' ' '); do
		r=$((r + 1))
		record ring "ns/chain" vnet "$r" "$v"
	done
	((r > 0)) || record ring "ns/chain" vnet 1 "" "error=bench_ring failed"
	say "ring: $j"
}

# --- dequeue: guest TX -> handler ----------------------------------------------------

# handler_cycles IMPL: busy TSC cycles per packet of the handler under test
# (after it stopped): vnet-pktgen's own count (rounds that moved frames, the
# whole session: it runs at saturation throughout), testpmd's
# --record-core-cycles over the window (iterations that moved frames).
handler_cycles() {
	case $1 in
	vnet)
		local c p
		c=$(pg_field sut busy_cycles) p=$(pg_field sut "$2")
		cyc_per_pkt "$c" "$p"
		;;
	dpdk)
		# shellcheck disable=SC2046 # two numbers
		[[ -n ${CYC_TP_SHOWS[0]:-} ]] && cyc_per_pkt $(tp_fwd_cycles sut "${CYC_TP_SHOWS[0]}")
		;;
	esac
}

dequeue_run() { # IMPL RUN SIZE
	local impl=$1 run=$2 size=$3 sock=$WORK/dq.sock v='' b='' cpp=''
	rm -f "$sock"
	CYC_TP_SHOWS=()
	case $impl in
	vnet)
		pg_start sut "$SUT_CPU" --role backend --socket "$sock" --mode rx
		wait_sock "$sock" 10 "${PG_PID[sut]}" || { pg_stop sut; fail_cases dequeue "$impl" "$run" "pktgen did not listen" "$size"; return; }
		;;
	dpdk)
		tp_start sut "$SUT_CPU" 1 "$TP_MEM" "$(vh_vdev 0 "$sock")" -- --forward-mode=rxonly \
			--total-num-mbufs=16384 --record-core-cycles || { fail_cases dequeue "$impl" "$run" "testpmd net_vhost did not start" "$size"; return; }
		tp_cmd sut start
		wait_sock "$sock" 10 || { tp_stop sut; fail_cases dequeue "$impl" "$run" "no net_vhost socket" "$size"; return; }
		;;
	esac
	local own=''
	if tp_start drv "$TP_CPU" 1 "$TP_MEM" "$(vu_vdev 0 "$sock")" -- --forward-mode=txonly \
		--total-num-mbufs=16384 --txpkts="$size" --record-core-cycles; then
		tp_cmd drv start
		TP_OWN_CYCLES=1 tp_window drv "" "$([[ $impl == dpdk ]] && echo dpdk)" && b=$tp_block own=$tp_own_fshow
		tp_cmd drv stop
	fi
	tp_stop drv
	pg_stop sut
	tp_stop sut
	[[ -n $b ]] && v=$(mpps "$(tp_pps drv "$b" tx)")
	[[ -n $v ]] && cpp=$(handler_cycles "$impl" rx_packets)
	own_cycles drv "$own"
	record dequeue "$size" "$impl" "$run" "$v" "cycles_per_pkt=$cpp" \
		"driver_cycles_per_pkt=$own_cpp" "tsc_mhz=$own_mhz"
	show dequeue "$size B" "$impl" "$run" "$v" "Mpps (${cpp:-?} busy cycles per pkt in the handler; source ${own_cpp:-?})"
}

fig_dequeue() {
	say "== dequeue: testpmd net_virtio_user txonly (CPU $TP_CPU) -> vnet-pktgen --role backend --mode rx | testpmd net_vhost rxonly (CPU $SUT_CPU)"
	local r impl size
	for ((r = 1; r <= RUNS; r++)); do
		for size in $SIZES; do
			for impl in vnet dpdk; do dequeue_run "$impl" "$r" "$size"; done
		done
	done
}

# --- enqueue: handler -> guest RX ----------------------------------------------------

enqueue_run() { # IMPL RUN SIZE
	local impl=$1 run=$2 size=$3 sock=$WORK/eq.sock v='' b='' cpp=''
	rm -f "$sock"
	CYC_TP_SHOWS=()
	case $impl in
	vnet)
		pg_start sut "$SUT_CPU" --role backend --socket "$sock" --mode tx --size "$size"
		wait_sock "$sock" 10 "${PG_PID[sut]}" || { pg_stop sut; fail_cases enqueue "$impl" "$run" "pktgen did not listen" "$size"; return; }
		;;
	dpdk)
		tp_start sut "$SUT_CPU" 1 "$TP_MEM" "$(vh_vdev 0 "$sock")" -- --forward-mode=txonly \
			--total-num-mbufs=16384 --txpkts="$size" --record-core-cycles || { fail_cases enqueue "$impl" "$run" "testpmd net_vhost did not start" "$size"; return; }
		wait_sock "$sock" 10 || { tp_stop sut; fail_cases enqueue "$impl" "$run" "no net_vhost socket" "$size"; return; }
		;;
	esac
	local own=''
	if tp_start drv "$TP_CPU" 1 "$TP_MEM" "$(vu_vdev 0 "$sock")" -- --forward-mode=rxonly \
		--total-num-mbufs=16384 --record-core-cycles; then
		tp_cmd drv start
		[[ $impl == dpdk ]] && tp_cmd sut start
		TP_OWN_CYCLES=1 tp_window drv "" "$([[ $impl == dpdk ]] && echo dpdk)" && b=$tp_block own=$tp_own_fshow
	fi
	tp_stop drv
	pg_stop sut
	tp_stop sut
	[[ -n $b ]] && v=$(mpps "$(tp_pps drv "$b" rx)")
	[[ -n $v ]] && cpp=$(handler_cycles "$impl" tx_packets)
	own_cycles drv "$own"
	record enqueue "$size" "$impl" "$run" "$v" "cycles_per_pkt=$cpp" \
		"driver_cycles_per_pkt=$own_cpp" "tsc_mhz=$own_mhz"
	show enqueue "$size B" "$impl" "$run" "$v" "Mpps (${cpp:-?} busy cycles per pkt in the handler; sink ${own_cpp:-?})"
}

fig_enqueue() {
	say "== enqueue: vnet-pktgen --role backend --mode tx | testpmd net_vhost txonly (CPU $SUT_CPU) -> testpmd net_virtio_user rxonly (CPU $TP_CPU)"
	local r impl size
	for ((r = 1; r <= RUNS; r++)); do
		for size in $SIZES; do
			for impl in vnet dpdk; do enqueue_run "$impl" "$r" "$size"; done
		done
	done
}

# --- switch loop (and latency) -----------------------------------------------------

# sut_start IMPL NPORTS: the switch with NPORTS vhost-user ports, flows pairing
# them; sets SOCKS (socket paths, port 1 first).
sut_start() {
	local impl=$1 n=$2 i
	SOCKS=()
	SUT_ERR=""
	case $impl in
	vnet)
		sw_start "$n" && sw_pair_flows "$n" || return 1
		for ((i = 1; i <= n; i++)); do SOCKS+=("$(sw_sock "$i")"); done
		;;
	ovs)
		((HAVE_OVS)) || return 1
		ovs_start "$n" && ovs_pair_flows "$n" || return 1
		for ((i = 1; i <= n; i++)); do SOCKS+=("$(ovs_sock "$i")"); done
		;;
	dpdk)
		local -a vd=()
		for ((i = 1; i <= n; i++)); do
			SOCKS+=("$WORK/vh$i.sock")
			rm -f "$WORK/vh$i.sock"
			vd+=("$(vh_vdev $((i - 1)) "$WORK/vh$i.sock")")
		done
		tp_start sut "$SUT_CPU" "$n" "$TP_MEM" "${vd[@]}" -- --forward-mode=io \
			--total-num-mbufs=16384 --record-core-cycles || return 1
		tp_cmd sut start
		for ((i = 1; i <= n; i++)); do wait_sock "${SOCKS[$((i - 1))]}" 10 || return 1; done
		;;
	esac
}

sut_normal() {
	case $1 in
	vnet) sw_normal ;;
	ovs) ovs_normal ;;
	*) return 1 ;;
	esac
}

sut_stop() {
	sw_stop
	ovs_stop
	tp_stop sut
}

# drv_size NPORTS: sets mbufs and mem (MB) for a driver with NPORTS ports:
# 2 x 2048 frames in flight and 1024 RX buffers per port; 3 kB per mbuf
# and 192 MB for the rest (32 ports fail with less).
drv_size() {
	mbufs=$(($1 * 4096 + 8192))
	((mbufs < 16384)) && mbufs=16384
	mem=$((mbufs * 3 / 1024 + 192))
	((mem < TP_MEM)) && mem=$TP_MEM
}

# drv_start NPORTS MEM MBUFS: the PVP driver, io-fwd over the SOCKS.
drv_start() {
	local n=$1 i
	local -a vd=()
	for ((i = 0; i < n; i++)); do vd+=("$(vu_vdev "$i" "${SOCKS[$i]}")"); done
	# shellcheck disable=SC2046 # eth_peers is a word list
	tp_start drv "$TP_CPU" "$n" "$2" "${vd[@]}" -- --forward-mode=io --total-num-mbufs="$3" \
		--record-core-cycles $(eth_peers "$n")
}

# switch_run IMPL RUN CASES: one start of switch + driver, the CASES in order
# (flows:SIZE, lat, normal:SIZE; normal cases last).
switch_run() {
	local impl=$1 run=$2 c mode size v b mbufs mem
	shift 2
	local -a cases=("$@")
	local -A blk=() cpu=() lat=() cyc=() cycidx=() own=()
	if ! sut_start "$impl" 2; then
		sut_stop
		local -a tcases=()
		for c in "${cases[@]}"; do [[ $c == lat ]] || tcases+=("$c"); done
		fail_cases switch "$impl" "$run" "switch did not start" "${tcases[@]}"
		[[ " ${cases[*]} " == *" lat "* ]] && fail_cases latency "$impl" "$run" "switch did not start" "flows:64"
		return
	fi
	drv_size 2
	if drv_start 2 "$mem" "$mbufs"; then
		local normal=0
		for c in "${cases[@]}"; do
			mode=${c%%:*} size=${c#*:}
			if [[ $mode == normal && $normal == 0 ]]; then
				sut_normal "$impl" || { warn "$impl: cannot switch to NORMAL"; break; }
				tp_cmd drv "set fwd mac"
				normal=1
			fi
			if [[ $mode == lat ]]; then
				tp_cmd drv "set burst 1"
				tp_cmd drv "set txpkts 64"
				tp_cmd drv "start tx_first 1"
				sleep "$WARMUP"
				local first=$((TP_SHOWS[drv] + 1)) t
				tp_show drv
				local nsamples
				nsamples=$(awk -v w="$WINDOW" -v s="$LAT_SAMPLE" 'BEGIN { print int(w / s + 0.5) }')
				for ((t = 0; t < nsamples; t++)); do
					sleep "$LAT_SAMPLE"
					tp_show drv
				done
				lat[first]=$first lat[last]=${TP_SHOWS[drv]}
				tp_cmd drv stop
				tp_cmd drv "set burst 32"
				sleep 0.2
				continue
			fi
			tp_cmd drv "set txpkts $size"
			tp_cmd drv "start tx_first 64"
			CYC_TP_SHOWS=()
			if TP_OWN_CYCLES=1 tp_window drv "$(sut_pid "$impl")" "$impl"; then
				blk[$c]=$tp_block cpu[$c]=$cpu_ms cyc[$c]="$cyc_busy $cyc_pkts"
				cycidx[$c]=${CYC_TP_SHOWS[0]:-} own[$c]=$tp_own_fshow
			fi
			tp_cmd drv stop
			sleep 0.3
		done
	fi
	tp_stop drv
	sut_stop
	for c in "${cases[@]}"; do
		if [[ $c == lat ]]; then
			latency_record "$impl" "$run" "${lat[first]:-}" "${lat[last]:-}"
			continue
		fi
		v=
		[[ -n ${blk[$c]:-} ]] && v=$(tp_pps drv "${blk[$c]}" rx)
		[[ -n ${cycidx[$c]:-} ]] && cyc[$c]=$(tp_fwd_cycles sut "${cycidx[$c]}")
		local cpp
		# shellcheck disable=SC2086 # two numbers
		cpp=$(cyc_per_pkt ${cyc[$c]:-})
		own_cycles drv "${own[$c]:-}"
		record switch "$c" "$impl" "$run" "$(mpps "$v")" "error=$SUT_ERR" \
			"cpu_per_pkt=$(ns_per_pkt "${cpu[$c]:-}" "$v")" "cpu_event=$PERF_EVENT" \
			"cycles_per_pkt=$cpp" "driver_cycles_per_pkt=$own_cpp" "tsc_mhz=$own_mhz" \
			"port_rx_pps=$([[ -n ${blk[$c]:-} ]] && tp_pps_ports drv "${blk[$c]}" rx)"
		show switch "$c" "$impl" "$run" "$(mpps "$v")" "Mpps (${cpu[$c]:+$(ns_per_pkt "${cpu[$c]}" "$v") ${PERF_EVENT/task-clock/ns} of CPU per pkt, }${cpp:-?} busy cycles per pkt; driver ${own_cpp:-?})"
	done
}

# latency_record IMPL RUN FIRST LAST: RTT from the loop rate of the shows
# FIRST+1..LAST (2 frames in flight: RTT = 2 * 2 / rate).
latency_record() {
	local impl=$1 run=$2 f=$3 l=$4 i r rtts=() mean
	if [[ -n $f && -n $l ]]; then
		for ((i = f + 1; i <= l; i++)); do
			r=$(tp_pps drv "$i" rx)
			[[ -n $r && $r != 0 ]] && rtts+=("$(awk -v r="$r" 'BEGIN { printf "%.3f", 4e6 / r }')")
		done
	fi
	if ((${#rtts[@]} == 0)); then
		record latency "flows:64" "$impl" "$run" "" "error=no loop rate"
		show latency "flows:64" "$impl" "$run" "" ""
		return
	fi
	mean=$(printf '%s\n' "${rtts[@]}" | awk '{ s += 1 / $1; n++ } END { printf "%.3f", n / s }')
	record latency "flows:64" "$impl" "$run" "$mean" "samples_us=@[$(IFS=,; echo "${rtts[*]}")]"
	show latency "flows:64" "$impl" "$run" "$mean" "us mean RTT (${#rtts[@]} samples)"
}

fig_switch() {
	local -a cases=() tp_cases=()
	local -a impls
	read -ra impls <<<"$SWITCH_IMPLS"
	local s r impl
	if want switch; then
		for s in $SIZES; do cases+=("flows:$s"); done
	fi
	want latency && cases+=(lat)
	if want switch; then
		for s in $SIZES; do cases+=("normal:$s"); done
	fi
	for s in "${cases[@]}"; do [[ $s == normal:* ]] || tp_cases+=("$s"); done
	say "== switch loop: testpmd io-fwd, 2 net_virtio_user ports (CPU $TP_CPU) -> vnet-switchd | OVS-DPDK | testpmd io-fwd 2x net_vhost (CPU $SUT_CPU); cases: ${cases[*]}"
	for ((r = 1; r <= RUNS; r++)); do
		for impl in "${impls[@]}"; do
			if [[ $impl == dpdk ]]; then
				switch_run "$impl" "$r" "${tp_cases[@]}"
			else
				switch_run "$impl" "$r" "${cases[@]}"
			fi
		done
	done
}

# --- cpu per packet at a fixed offered rate -------------------------------------------
# testpmd cannot pace its transmissions, so the generator is vnet-pktgen
# --rate on port 1 (identical for every switch), the sink testpmd rxonly on
# port 2. Both share TP_CPU: at CPU_RATE (10 kpps) pktgen sleeps between
# frames (it spins only when the next frame is < 50 us away), so the sink
# keeps up. perf stat counts the whole switch process over the window.

cpu_run() { # IMPL RUN MODE:SIZE
	local impl=$1 run=$2 c=$3 mode=${3%%:*} size=${3#*:} v='' cpums='' cycs=
	if ! sut_start "$impl" 2 || { [[ $mode == normal ]] && ! sut_normal "$impl"; }; then
		sut_stop
		fail_cases cpu "$impl" "$run" "switch did not start" "$c"
		return
	fi
	# pktgen first: its handshake has 2 s timeouts, and OVS's vhost thread
	# can take seconds to serve a second connection while it maps the first.
	pg_start gen "$TP_CPU" --role frontend --socket "${SOCKS[0]}" --mode tx --size "$size" \
		--rate "$CPU_RATE" --delay 1 --src-mac "$(vu_mac 0)" --dst-mac "$(vu_mac 1)"
	sleep 1
	if tp_start drv "$TP_CPU" 1 "$TP_MEM" "$(vu_vdev 1 "${SOCKS[1]}")" -- --forward-mode=rxonly \
		--total-num-mbufs=16384; then
		tp_cmd drv start
		CYC_TP_SHOWS=()
		tp_window drv "$(sut_pid "$impl")" "$impl" && v=$tp_block cpums=$cpu_ms cycs="$cyc_busy $cyc_pkts"
	fi
	pg_stop gen
	tp_stop drv
	sut_stop
	[[ -n $v ]] && v=$(tp_pps drv "$v" rx)
	[[ $impl == dpdk && -n ${CYC_TP_SHOWS[0]:-} ]] && cycs=$(tp_fwd_cycles sut "${CYC_TP_SHOWS[0]}")
	local cpp
	# shellcheck disable=SC2086 # two numbers
	cpp=$(cyc_per_pkt $cycs)
	record cpu "$c" "$impl" "$run" "$(ns_per_pkt "$cpums" "$v")" "error=$SUT_ERR" "rx_mpps=$(mpps "$v")" \
		"offered_pps=$CPU_RATE" "cpu_event=$PERF_EVENT" "cpu_ms=$cpums" "cycles_per_pkt=$cpp"
	show cpu "$c" "$impl" "$run" "$(ns_per_pkt "$cpums" "$v")" \
		"${PERF_EVENT/task-clock/ns} of CPU per pkt at $(mpps "$v") Mpps forwarded; ${cpp:-?} busy cycles per pkt"
}

fig_cpu() { # MODE:SIZE...
	[[ -n $PERF_EVENT ]] || return 0
	say "== cpu: vnet-pktgen --rate $CPU_RATE -> switch -> testpmd rxonly (both on CPU $TP_CPU); perf stat -e $PERF_EVENT on the switch; cases $*"
	local r impl c
	for ((r = 1; r <= CPU_RUNS; r++)); do
		for c in "$@"; do
			for impl in vnet ovs dpdk; do
				[[ $impl == dpdk && $c == normal:* ]] && continue
				cpu_run "$impl" "$r" "$c"
			done
		done
	done
}

# saturated_cases: the switch cases whose loop rates agree within SAT_TOL.
saturated_cases() {
	python3 "$repo/bench/report.py" --saturated "$SAT_TOL" "$SAMPLES"
}

# --- memory ---------------------------------------------------------------------------

memory_run() { # IMPL RUN NPORTS
	local impl=$1 run=$2 n=$3 pid hwm anon rss db_hwm='' db_anon='' mbufs mem
	drv_size "$n"
	if ! sut_start "$impl" "$n"; then
		sut_stop
		fail_cases memory "$impl" "$run" "switch did not start" "$n ports"
		return
	fi
	if drv_start "$n" "$mem" "$mbufs"; then
		tp_cmd drv "start tx_first 64"
		sleep $((WARMUP + 1))
		tp_cmd drv stop
		sleep 0.3
	fi
	pid=$(sut_pid "$impl")
	hwm=$(proc_kb "$pid" VmHWM) anon=$(proc_kb "$pid" RssAnon) rss=$(proc_kb "$pid" VmRSS)
	local shm file
	shm=$(proc_kb "$pid" RssShmem) file=$(proc_kb "$pid" RssFile)
	if [[ $impl == ovs ]]; then
		db_hwm=$(proc_kb "$OVS_DB_PID" VmHWM) db_anon=$(proc_kb "$OVS_DB_PID" RssAnon)
	fi
	tp_stop drv
	sut_stop
	local tot_hwm=$hwm tot_anon=$anon
	[[ -n $db_hwm && -n $hwm ]] && tot_hwm=$((hwm + db_hwm)) tot_anon=$((anon + db_anon))
	record memory "$n ports" "$impl" "$run" "$tot_hwm" "error=$SUT_ERR" "rss_anon_kb=$tot_anon" \
		"switch_hwm_kb=$hwm" "switch_anon_kb=$anon" "switch_rss_kb=$rss" "switch_shmem_kb=$shm" \
		"switch_file_kb=$file" "ovsdb_hwm_kb=$db_hwm" "ovsdb_anon_kb=$db_anon" \
		"hugepages_mb=$([[ $impl == ovs ]] && echo "$OVS_HP_USED")"
	show memory "$n ports" "$impl" "$run" "$tot_hwm" "kB VmHWM, RssAnon $tot_anon kB${db_hwm:+ (incl. ovsdb-server)}$([[ $impl == ovs ]] && echo ", hugepages $OVS_HP_USED MB")"
}

fig_memory() {
	say "== memory: VmHWM/RssAnon with $MEM_PORTS vhost-user ports attached to testpmd (2 s of traffic)"
	local r n impl
	for ((r = 1; r <= MEM_RUNS; r++)); do
		for n in $MEM_PORTS; do
			for impl in vnet ovs; do memory_run "$impl" "$r" "$n"; done
		done
	done
}

# --- scaling ---------------------------------------------------------------------------

scaling_run() { # RUN NPORTS
	local run=$1 n=$2 v='' mbufs mem hwm=''
	drv_size "$n"
	if ! sut_start vnet "$n"; then
		sut_stop
		fail_cases scaling vnet "$run" "switch did not start" "$n ports"
		return
	fi
	if drv_start "$n" "$mem" "$mbufs"; then
		tp_cmd drv "set txpkts 64"
		tp_cmd drv "start tx_first 64"
		tp_window drv && v=$tp_block
		hwm=$(proc_kb "$SW_PID" VmHWM)
	fi
	tp_stop drv
	sut_stop
	[[ -n $v ]] && v=$(tp_pps drv "$v" rx)
	record scaling "$n ports" vnet "$run" "$(mpps "$v")" "error=$SUT_ERR" "switch_hwm_kb=$hwm"
	show scaling "$n ports" vnet "$run" "$(mpps "$v")" "Mpps aggregate (64 B, flows)"
}

fig_scaling() {
	say "== scaling: vnet-switchd with $SCALE_PORTS ports in pairs, one testpmd io-fwd over all of them, 64 B"
	local r n
	for ((r = 1; r <= RUNS; r++)); do
		for n in $SCALE_PORTS; do scaling_run "$r" "$n"; done
	done
}

# --- main --------------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
say "bench: $(nproc) CPUs ($cpu_model), kernel $(uname -r); load average $load_before"
say "bench: SUT on CPU $SUT_CPU, testpmd on CPU $TP_CPU; RUNS=$RUNS, ${WARMUP}s warm-up + ${WINDOW}s window; figures: $BENCH_ONLY"
say "bench: testpmd $TESTPMD ($(dpkg-query -W -f='${Version}' dpdk 2>/dev/null)), OVS $("$OVS_VSWITCHD" --version 2>/dev/null | head -n1), perf event ${PERF_EVENT:-none}"
awk -v l="${load_before%% *}" 'BEGIN { exit !(l > 0.5) }' &&
	warn "load average $load_before: other work shares the CPUs, expect noise"
if pgrep -x ovs-vswitchd >/dev/null || pgrep -f ovs-vswitchd-dpdk >/dev/null; then
	warn "a system ovs-vswitchd is running (left alone); if it polls with DPDK, numbers suffer"
fi

want ring && fig_ring
want dequeue && fig_dequeue
want enqueue && fig_enqueue
{ want switch || want latency; } && fig_switch
# shellcheck disable=SC2046,SC2086 # word lists
if want cpu; then
	fig_cpu $(for s in $SIZES; do echo "flows:$s"; done)
elif want switch; then
	sat=$(saturated_cases)
	if [[ -n $sat ]]; then
		say "bench: every switch saturates the loop at the same rate in $sat: CPU per packet at a fixed rate"
		BENCH_ONLY+=" cpu"
		fig_cpu $sat
	fi
fi
want memory && fig_memory
want scaling && fig_scaling

t_end=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
meta=$RAW/meta.json
{
	printf '{"date":"%s","stamp":"%s",' "$(date -Iseconds)" "$stamp"
	printf '"cpu_model":%s,"cpus":%d,"kernel":%s,' "$(jval "$cpu_model")" "$(nproc)" "$(jval "$(uname -r)")"
	printf '"os":%s,' "$(jval "$(. /etc/os-release && echo "$PRETTY_NAME")")"
	printf '"vnet":%s,' "$(jval "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)")"
	printf '"dpdk":%s,' "$(jval "$(dpkg-query -W -f='${Version}' dpdk 2>/dev/null)")"
	printf '"ovs":%s,' "$(jval "$("$OVS_VSWITCHD" --version 2>/dev/null | head -n1)")"
	printf '"runs":%d,"warmup_s":%s,"window_s":%s,"sut_cpu":%d,"tp_cpu":%d,"qsize":%d,' \
		"$RUNS" "$WARMUP" "$WINDOW" "$SUT_CPU" "$TP_CPU" "$QSIZE"
	printf '"figures":%s,"perf_event":%s,"cpu_rate_pps":%s,"lat_sample_ms":%s,' "$(jval "$BENCH_ONLY")" \
		"$(jval "${PERF_EVENT:-none}")" "$CPU_RATE" "$(awk -v s="$LAT_SAMPLE" 'BEGIN { print s * 1000 }')"
	printf '"load_before":%s,"load_after":%s,"wall_s":%d}\n' "$(jval "$load_before")" \
		"$(jval "$load_after")" $((t_end - t_start))
} >"$meta"

say "bench: done in $((t_end - t_start)) s; writing $OUT/$stamp.{json,md,png}"
readme=()
[[ -n ${BENCH_README:-} ]] && readme=(--readme "$repo/README.md")
python3 "$repo/bench/report.py" --meta "$meta" --samples "$SAMPLES" --out "$OUT/$stamp" "${readme[@]}" || exit 1
cat "$OUT/$stamp.md"
