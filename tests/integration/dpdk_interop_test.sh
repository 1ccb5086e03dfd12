#!/usr/bin/env bash
# Interop of vnet-pktgen with DPDK testpmd, both vhost-user roles:
#   pktgen --role backend  (vnet's vhost-user handler)  <-> testpmd net_virtio_user
#   pktgen --role frontend (vnet's virtio-user driver)  <-> testpmd net_vhost
# Counts must match exactly on both ends; latency probes must all come back.
# testpmd busy-polls one CPU and pktgen another (pinned with taskset: the two
# pollers sharing a CPU collapse to a few kpps, see tests/guest/README.md).
# Unix sockets only, in a private temporary directory.  Prints TAP.
#
# Environment: PKTGEN (vnet-pktgen binary; meson passes it, default
# build/src/tools/vnet-pktgen), VNET_INTEROP_COUNT (frames per bulk test,
# default 2000000).
#
# testpmd is run with --no-flush-rx: by default it drops whatever already sits
# in its RX rings when forwarding starts, and pktgen (rightly) starts sending
# as soon as the rings are enabled, i.e. before testpmd's forwarding starts;
# without the option testpmd silently discards up to one ring (256 frames).
# For the same reason pktgen's back-end sends with --start-on-kick: DPDK's
# virtio PMD, when its port starts, drops what its RX ring already holds
# ("flush the old packets") and then kicks RX; pktgen sees the rings enabled
# before that, and on a busy machine could fill the ring in between (CI lost
# 96 frames so; with a CPU hog beside each peer it lost 256 in half the runs).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$repo/tests/lib/peers.sh"

skip_unless_root
need_dpdk || vnet_skip "dpdk-testpmd with net_vhost/net_virtio_user PMDs not available"
TESTPMD=$(testpmd_bin) || vnet_skip "dpdk-testpmd not found"

PKTGEN=${PKTGEN:-$repo/build/src/tools/vnet-pktgen}
if [[ ! -x $PKTGEN ]]; then
	echo "Bail out! vnet-pktgen not found at $PKTGEN (set PKTGEN or build build/)"
	exit 1
fi

N=${VNET_INTEROP_COUNT:-2000000}
LAT_COUNT=1000
LAT_RATE=2000
NTESTS=8
BUDGET=160 # seconds; later tests fail fast rather than overrun meson's timeout

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-dpdk.XXXXXX") || exit 1
prefix="vnetdpdk$$"
pids=()

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$work"
	rm -rf /var/run/dpdk/"$prefix"_* 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- CPUs: testpmd on the first allowed CPU, pktgen on the second -------------
allowed_cpus
cpu_tp=${cpus[0]:-0}
cpu_pg=${cpus[1]:-$cpu_tp}
echo "1..$NTESTS"
echo "# testpmd on CPU $cpu_tp, pktgen on CPU $cpu_pg; $N frames per bulk test; testpmd from dpdk-dev $(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (rates drop when other jobs share these CPUs)"
if [[ $cpu_tp == "$cpu_pg" ]]; then
	echo "# only one CPU available: the two busy-polling peers share it, expect very low rates"
	N=${VNET_INTEROP_COUNT:-20000}
fi

# --- helpers ------------------------------------------------------------------

# forget PID: a reaped child is no longer ours to kill (its PID may be reused).
forget() {
	local -a keep=()
	local p
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# wait_exit PID SECS: waits for PID, kills it after SECS; returns its status (124 on timeout).
wait_exit() {
	local pid=$1 end=$((SECONDS + $2)) rc
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= end)); then
			kill -TERM "$pid" 2>/dev/null
			sleep 1
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			forget "$pid"
			return 124
		fi
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
	rc=$?
	forget "$pid"
	return $rc
}

# wait_sock PATH SECS PID: waits for the listening socket of PID (gives up early if PID died).
wait_sock() {
	local end=$((SECONDS + $2))
	while ((SECONDS < end)); do
		[[ -S $1 ]] && return 0
		kill -0 "$3" 2>/dev/null || { [[ -S $1 ]]; return; }
		sleep 0.05
	done
	return 1
}

# tp_start NAME VDEV TESTPMD-APP-ARGS...: testpmd in the background (sets tp_pid, tp_log).
tp_seq=0
tp_start() {
	local name=$1 vdev=$2
	shift 2
	tp_seq=$((tp_seq + 1))
	tp_log=$work/$name.testpmd.log
	# shellcheck disable=SC2046 # testpmd_eal_args is a word list
	timeout -k 5 -s INT 60 taskset -c "$cpu_tp" "$TESTPMD" --lcores "0@$cpu_tp,1@$cpu_tp" \
		$(testpmd_eal_args "${prefix}_$tp_seq") --vdev "$vdev" \
		-- --no-flush-rx --total-num-mbufs=8192 --stats-period 1 "$@" \
		</dev/null >"$tp_log" 2>&1 &
	tp_pid=$!
	pids+=("$tp_pid")
}

# tp_stop: SIGINT (testpmd prints its final statistics), bounded wait.
tp_stop() {
	kill -INT "$tp_pid" 2>/dev/null
	wait_exit "$tp_pid" 15
	tp_rc=$?
}

# pg_start NAME PKTGEN-ARGS...: pktgen in the background (sets pg_pid, pg_json, pg_err).
pg_start() {
	local name=$1
	shift
	pg_json=$work/$name.pktgen.json
	pg_err=$work/$name.pktgen.log
	timeout -k 5 -s TERM 45 taskset -c "$cpu_pg" "$PKTGEN" --json --wait 15 --log-level debug "$@" \
		</dev/null >"$pg_json" 2>"$pg_err" &
	pg_pid=$!
	pids+=("$pg_pid")
}

# jget FILE FIELD: a field of pktgen's JSON summary (empty if absent).
jget() {
	grep -o "\"$2\":[-0-9.]*" "$1" 2>/dev/null | tail -n1 | cut -d: -f2
}

# tp_stat LOG FIELD: RX-packets / TX-packets from testpmd's last "Forward statistics for port 0".
tp_stat() {
	awk -v f="$2:" '
		/Forward statistics for port 0/ { blk = 1; next }
		blk && /^ *-+ *$/ { blk = 0 }
		blk && $1 == f { v = $2 }
		END { print v }' "$1" 2>/dev/null
}

fails=()
any_fail=0
fail() { fails+=("$*"); }

# eq A B WHAT: records a failure unless A and B are the same non-empty number.
eq() {
	[[ -n $1 && -n $2 && $1 == "$2" ]] || fail "$3: got '${1}', want '${2}'"
}

strip_esc() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r//g' "$1" 2>/dev/null; }

# report I NAME: TAP line for test I, with diagnostics (log tails) on failure.
report() {
	local i=$1 name=$2 f
	if ((${#fails[@]} == 0)); then
		echo "ok $i - $name"
	else
		echo "not ok $i - $name"
		any_fail=1
		for f in "${fails[@]}"; do echo "# $f"; done
		echo "# --- pktgen JSON ---"
		sed 's/^/#   /' "$pg_json" 2>/dev/null
		echo "# --- pktgen log (tail) ---"
		tail -n 30 "$pg_err" 2>/dev/null | sed 's/^/#   /'
		echo "# --- testpmd log (tail, rc ${tp_rc:-?}) ---"
		strip_esc "$tp_log" | grep -v '^ *$' | tail -n 40 | sed 's/^/#   /'
	fi
	fails=()
}

# over_budget I NAME: fails test I without running it when the time budget is spent.
over_budget() {
	((SECONDS < BUDGET)) && return 1
	echo "not ok $1 - $2"
	any_fail=1
	echo "# not run: time budget of ${BUDGET}s spent (${SECONDS}s elapsed)"
	return 0
}

pps_note() { # TEXT JSONFILE
	[[ -s $2 ]] || return 0
	local pps secs
	pps=$(jget "$2" pps)
	secs=$(jget "$2" seconds)
	awk -v t="$1" -v p="${pps:-0}" -v s="${secs:-0}" \
		'BEGIN { printf "# %s: %.3f Mpps (%.3f s)\n", t, p / 1e6, s }'
}

lat_note() { # TEXT JSONFILE
	[[ -s $2 ]] || return 0
	echo "# $1: p50 $(jget "$2" p50_us) us, p99 $(jget "$2" p99_us) us, max $(jget "$2" max_us) us," \
		"$(jget "$2" latency_samples) samples, $(jget "$2" lost) lost, $(jget "$2" pps) probes/s"
}

# --- 1: pktgen back-end rx <- testpmd net_virtio_user txonly ------------------
t=1 name="pktgen backend rx <- testpmd virtio_user txonly: $N frames"
if ! over_budget $t "$name"; then
	sock=$work/t1.sock
	pg_start t1 --role backend --socket "$sock" --mode rx --count "$N"
	wait_sock "$sock" 10 "$pg_pid" || fail "pktgen did not create $sock"
	tp_start t1 "net_virtio_user0,path=$sock,queue_size=256" --forward-mode=txonly --txpkts=64
	wait_exit "$pg_pid" 40
	pg_rc=$?
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" rx_packets)" "$N" "pktgen rx_packets"
	tx=$(tp_stat "$tp_log" TX-packets)
	if [[ -z $tx ]] || ((tx < N)); then fail "testpmd TX-packets '$tx' < $N"; fi
	pps_note "pktgen backend rx from testpmd txonly" "$pg_json"
	report $t "$name"
fi

# --- 2: pktgen back-end tx -> testpmd net_virtio_user rxonly ------------------
t=2 name="pktgen backend tx -> testpmd virtio_user rxonly: $N frames"
if ! over_budget $t "$name"; then
	sock=$work/t2.sock
	pg_start t2 --role backend --socket "$sock" --mode tx --count "$N" --start-on-kick
	wait_sock "$sock" 10 "$pg_pid" || fail "pktgen did not create $sock"
	tp_start t2 "net_virtio_user0,path=$sock,queue_size=256" --forward-mode=rxonly
	wait_exit "$pg_pid" 40
	pg_rc=$?
	sleep 1 # let testpmd drain its ring
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" tx_packets)" "$N" "pktgen tx_packets"
	eq "$(tp_stat "$tp_log" RX-packets)" "$(jget "$pg_json" tx_packets)" "testpmd RX-packets vs pktgen tx_packets"
	pps_note "pktgen backend tx to testpmd rxonly" "$pg_json"
	report $t "$name"
fi

# --- 3: pktgen front-end tx -> testpmd net_vhost rxonly -----------------------
t=3 name="pktgen frontend tx -> testpmd vhost rxonly: $N frames"
if ! over_budget $t "$name"; then
	sock=$work/t3.sock
	tp_start t3 "net_vhost0,iface=$sock" --forward-mode=rxonly
	wait_sock "$sock" 15 "$tp_pid" || fail "testpmd did not create $sock"
	pg_start t3 --role frontend --socket "$sock" --mode tx --count "$N"
	wait_exit "$pg_pid" 40
	pg_rc=$?
	sleep 1
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" tx_packets)" "$N" "pktgen tx_packets"
	eq "$(tp_stat "$tp_log" RX-packets)" "$(jget "$pg_json" tx_packets)" "testpmd RX-packets vs pktgen tx_packets"
	pps_note "pktgen frontend tx to testpmd vhost rxonly" "$pg_json"
	report $t "$name"
fi

# --- 4: pktgen front-end rx <- testpmd net_vhost txonly -----------------------
t=4 name="pktgen frontend rx <- testpmd vhost txonly: $N frames"
if ! over_budget $t "$name"; then
	sock=$work/t4.sock
	tp_start t4 "net_vhost0,iface=$sock" --forward-mode=txonly --txpkts=64
	wait_sock "$sock" 15 "$tp_pid" || fail "testpmd did not create $sock"
	pg_start t4 --role frontend --socket "$sock" --mode rx --count "$N"
	wait_exit "$pg_pid" 40
	pg_rc=$?
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" rx_packets)" "$N" "pktgen rx_packets"
	tx=$(tp_stat "$tp_log" TX-packets)
	if [[ -z $tx ]] || ((tx < N)); then fail "testpmd TX-packets '$tx' < $N"; fi
	pps_note "pktgen frontend rx from testpmd vhost txonly" "$pg_json"
	report $t "$name"
fi

# --- 5/6: latency probes through testpmd (both directions of one link) --------
# lat_test I NAME FWD TESTPMD-IS-SERVER
lat_test() {
	local i=$1 name=$2 fwd=$3 tp_server=$4 sock=$work/t$1.sock
	over_budget "$i" "$name" && return
	local -a pgargs=(--role frontend --socket "$sock" --mode latency --count "$LAT_COUNT" --rate "$LAT_RATE")
	if ((tp_server)); then
		tp_start "t$i" "net_vhost0,iface=$sock" --forward-mode="$fwd"
		wait_sock "$sock" 15 "$tp_pid" || fail "testpmd did not create $sock"
		pg_start "t$i" "${pgargs[@]}"
	else
		pg_start "t$i" "${pgargs[@]}" --server
		wait_sock "$sock" 10 "$pg_pid" || fail "pktgen did not create $sock"
		tp_start "t$i" "net_vhost0,iface=$sock,client=1" --forward-mode="$fwd"
	fi
	wait_exit "$pg_pid" 40
	pg_rc=$?
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" latency_samples)" "$LAT_COUNT" "pktgen latency_samples"
	eq "$(jget "$pg_json" lost)" 0 "pktgen lost"
	eq "$(tp_stat "$tp_log" RX-packets)" "$(jget "$pg_json" tx_packets)" "testpmd RX-packets vs pktgen tx_packets"
	eq "$(tp_stat "$tp_log" TX-packets)" "$(jget "$pg_json" rx_packets)" "testpmd TX-packets vs pktgen rx_packets"
	lat_note "RTT pktgen frontend <-> testpmd vhost $fwd" "$pg_json"
	report "$i" "$name"
}
lat_test 5 "pktgen frontend latency <-> testpmd vhost (server) macswap: $LAT_COUNT probes" macswap 1
lat_test 6 "pktgen frontend (server) latency <-> testpmd vhost (client=1) io: $LAT_COUNT probes" io 0

# --- 7: roles of the socket swapped: pktgen back-end connects -----------------
t=7 name="pktgen backend (client) tx -> testpmd virtio_user (server=1) rxonly: $N frames"
if ! over_budget $t "$name"; then
	sock=$work/t7.sock
	tp_start t7 "net_virtio_user0,path=$sock,queue_size=256,server=1" --forward-mode=rxonly
	wait_sock "$sock" 15 "$tp_pid" || fail "testpmd did not create $sock"
	# testpmd's server-mode virtio-user flushes its RX ring when the port
	# starts, too (header). It may kick RX before pktgen connects (its kick
	# eventfd is the same across the reconnect), so the kick alone may not
	# mark the flush as done: pktgen also waits 1 s more, as before.
	pg_start t7 --role backend --client --socket "$sock" --mode tx --count "$N" --start-on-kick --delay 1
	wait_exit "$pg_pid" 40
	pg_rc=$?
	sleep 1
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" tx_packets)" "$N" "pktgen tx_packets"
	eq "$(tp_stat "$tp_log" RX-packets)" "$(jget "$pg_json" tx_packets)" "testpmd RX-packets vs pktgen tx_packets"
	pps_note "pktgen backend (client) tx to testpmd virtio_user (server) rxonly" "$pg_json"
	report $t "$name"
fi

# --- 8: pktgen back-end latency <-> testpmd net_virtio_user io ---------------
t=8 name="pktgen backend latency <-> testpmd virtio_user io: $LAT_COUNT probes"
if ! over_budget $t "$name"; then
	sock=$work/t8.sock
	pg_start t8 --role backend --socket "$sock" --mode latency --count "$LAT_COUNT" --rate "$LAT_RATE"
	wait_sock "$sock" 10 "$pg_pid" || fail "pktgen did not create $sock"
	tp_start t8 "net_virtio_user0,path=$sock,queue_size=256" --forward-mode=io
	wait_exit "$pg_pid" 40
	pg_rc=$?
	tp_stop
	((pg_rc == 0)) || fail "pktgen exit status $pg_rc"
	eq "$(jget "$pg_json" latency_samples)" "$LAT_COUNT" "pktgen latency_samples"
	eq "$(jget "$pg_json" lost)" 0 "pktgen lost"
	# A probe sent before testpmd's engine ran is warm-up, not loss; what
	# testpmd forwarded is exactly what came back.
	eq "$(tp_stat "$tp_log" TX-packets)" "$(jget "$pg_json" rx_packets)" "testpmd TX-packets vs pktgen rx_packets"
	eq "$(jget "$pg_json" rx_packets)" "$LAT_COUNT" "pktgen rx_packets"
	lat_note "RTT pktgen backend <-> testpmd virtio_user io" "$pg_json"
	report $t "$name"
fi

echo "# total ${SECONDS}s"
exit $any_fail
