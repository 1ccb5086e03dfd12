# shellcheck shell=bash disable=SC2034 # results (tp_block, cpu_ms, cyc_*, OVS_HP_USED) go to the caller
# bench/lib.sh: helpers for bench/suite.sh (sourced). Child processes and
# their cleanup, DPDK testpmd driven through a fifo, vnet-switchd, OVS-DPDK
# with private directories, vnet-pktgen, raw sample records.
#
# The caller sets: WORK (private temporary dir: sockets, fifos, OVS dirs),
# RAW (logs), SAMPLES (JSON lines), PREFIX (DPDK --file-prefix stem), and the
# binaries TESTPMD SWITCHD VNETCTL PKTGEN. Nothing here opens anything but
# the Unix sockets it creates under $WORK: testpmd and OVS run with --no-pci.

SUT_CPU=${SUT_CPU:-0}  # system under test (switch PMD, handler, anchor testpmd)
TP_CPU=${TP_CPU:-1}    # traffic source/sink testpmd
QSIZE=${QSIZE:-1024}   # virtio ring size of every net_virtio_user port
WARMUP=${WARMUP:-1}    # seconds between starting traffic and the window
WINDOW=${WINDOW:-3}    # seconds measured
TP_MEM=${TP_MEM:-256}  # MB of (hugepage-less) memory per testpmd

say() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }
warn() { printf '[%4ds] WARNING: %s\n' "$SECONDS" "$*" >&2; }

# --- child processes ------------------------------------------------------------

BG_PIDS=()

bg_add() { BG_PIDS+=("$1"); }

bg_forget() {
	local -a keep=()
	local p
	for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	BG_PIDS=("${keep[@]}")
}

# stop_pid PID SIG SECS: stop_wait (tests/lib/peers.sh), and forget it.
stop_pid() {
	[[ -n $1 ]] || return 0
	stop_wait "$@"
	bg_forget "$1"
}

# wait_gone PID SECS: waits for PID to exit by itself; 1 if it did not.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; bg_forget "$1"; return 0; }
		sleep 0.05
	done
	return 1
}

# wait_sock PATH SECS [PID]: waits for a listening socket (early exit if PID died).
wait_sock() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[[ -S $1 ]] && return 0
		[[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null && return 1
		sleep 0.05
	done
	return 1
}

# proc_kb PID FIELD: a /proc/PID/status field in kB (VmHWM, VmRSS, RssAnon, ...).
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }

hugepages_free() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }

# --- testpmd through a fifo ---------------------------------------------------------
# Interactive testpmd reading commands from a fifo we hold open. Its stdout is
# a file (line-buffered, see tp_start): "show port stats all" blocks are
# parsed after it has quit. testpmd's Rx-pps/Tx-pps are packets since the previous "show" of
# that port divided by the time between them, so a show at the start and one
# at the end of a window give the window's mean rate.

declare -A TP_PID TP_FD TP_LOG TP_NPORTS TP_SHOWS TP_PREFIX
TP_SEQ=0
tp_block=0

# tp_start NAME CPU NPORTS MEM_MB VDEV... -- APP-ARGS...
tp_start() {
	local name=$1 cpu=$2 nports=$3 mem=$4
	shift 4
	local -a vdevs=()
	while (($#)) && [[ $1 != -- ]]; do
		vdevs+=(--vdev "$1")
		shift
	done
	[[ ${1:-} == -- ]] && shift
	TP_SEQ=$((TP_SEQ + 1))
	local fifo=$WORK/tp.$TP_SEQ.fifo log=$RAW/tp.$TP_SEQ.$name.log pfx=${PREFIX}_$TP_SEQ
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	# stdbuf -oL: testpmd echoes each command as it reads it, straight to the
	# log, while its stats sit in a 4 KB stdio buffer: an echo could land
	# inside a "NIC statistics for port N" header and shift every later block.
	# shellcheck disable=SC2046 # testpmd_pmd_args is a word list
	taskset -c "$cpu" stdbuf -oL "$TESTPMD" --lcores "0@$cpu,1@$cpu" --no-huge -m "$mem" \
		--single-file-segments --no-pci --file-prefix "$pfx" $(testpmd_pmd_args) \
		"${vdevs[@]}" -- -i --nb-cores=1 --rxd="$QSIZE" --txd="$QSIZE" "$@" \
		<"$fifo" >"$log" 2>&1 &
	local pid=$! fd
	bg_add "$pid"
	exec {fd}>"$fifo"
	TP_PID[$name]=$pid TP_FD[$name]=$fd TP_LOG[$name]=$log
	TP_NPORTS[$name]=$nports TP_SHOWS[$name]=0 TP_PREFIX[$name]=$pfx TP_FSHOWS[$name]=0
	local i
	for ((i = 0; i < 600; i++)); do
		grep -q 'testpmd>' "$log" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	warn "testpmd $name did not come up (log $log):"
	tail -n 15 "$log" | sed 's/^/    /' >&2
	tp_stop "$name"
	return 1
}

# tp_cmd NAME LINE: one command to testpmd's prompt.
tp_cmd() {
	[[ -n ${TP_FD[$1]:-} ]] || return 1
	echo "$2" >&"${TP_FD[$1]}"
}

tp_alive() { [[ -n ${TP_PID[$1]:-} ]] && kill -0 "${TP_PID[$1]}" 2>/dev/null; }

tp_show() {
	tp_cmd "$1" "show port stats all" || return 1
	TP_SHOWS[$1]=$((TP_SHOWS[$1] + 1))
}

# tp_window NAME [PID_TO_PROFILE [IMPL]]: WARMUP s, then a WINDOW s window
# between two stats shows; sets tp_block (the show that ends it, for tp_pps),
# with a PID cpu_ms (perf stat $PERF_EVENT over the window: ms of CPU, or
# Mcycles), with an IMPL the switch's own busy-cycle counters (cyc_mark/cyc_take).
# With TP_OWN_CYCLES=1 (testpmd NAME runs with --record-core-cycles) it also
# sets tp_own_fshow: the forward-statistics show of NAME's own busy cycles over
# the window (tp_fwd_cycles NAME tp_own_fshow, once NAME quit).
tp_window() {
	local name=$1 ppid=${2:-} impl=${3:-} pf=$WORK/perf.out
	cpu_ms= tp_own_fshow=
	sleep "$WARMUP"
	tp_show "$name" || return 1
	[[ -n $impl ]] && cyc_mark "$impl"
	[[ ${TP_OWN_CYCLES:-0} == 1 ]] && tp_cmd "$name" "clear fwd stats all"
	if [[ -n $ppid && -n ${PERF_EVENT:-} ]]; then
		rm -f "$pf"
		perf stat -x, -e "$PERF_EVENT" -o "$pf" -p "$ppid" -- sleep "$WINDOW" >/dev/null 2>&1
	else
		sleep "$WINDOW"
	fi
	tp_show "$name" || return 1
	[[ -n $impl ]] && cyc_take "$impl"
	if [[ ${TP_OWN_CYCLES:-0} == 1 ]] && tp_cmd "$name" "show fwd stats all"; then
		TP_FSHOWS[$name]=$((${TP_FSHOWS[$name]:-0} + 1))
		tp_own_fshow=${TP_FSHOWS[$name]}
	fi
	tp_block=${TP_SHOWS[$name]}
	if [[ -n $ppid && -s $pf ]]; then
		# task-clock: msec; cycles: count (reported in millions)
		cpu_ms=$(awk -F, -v e="$PERF_EVENT" '$3 ~ e && $1 ~ /^[0-9.]+$/ {
			v = $1; if (e == "cycles") v /= 1e6; printf "%.1f", v }' "$pf")
	fi
	tp_alive "$name"
}

# tp_stop NAME: stop + quit, bounded wait, kill if needed.
tp_stop() {
	local name=$1 pid=${TP_PID[$1]:-} fd=${TP_FD[$1]:-}
	[[ -n $pid ]] || return 0
	tp_cmd "$name" "stop"
	tp_cmd "$name" "quit"
	[[ -n $fd ]] && exec {fd}>&-
	unset "TP_FD[$name]"
	wait_gone "$pid" 10 || stop_pid "$pid" INT 5
	unset "TP_PID[$name]"
	rm -rf "/var/run/dpdk/${TP_PREFIX[$name]}" 2>/dev/null
}

tp_stop_all() {
	local n
	for n in "${!TP_PID[@]}"; do tp_stop "$n"; done
}

# tp_pps NAME BLOCK rx|tx: packets/s summed over all ports in the BLOCK-th
# "show port stats all" (after the testpmd has quit). Empty if not found.
tp_pps() {
	sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r//g' "${TP_LOG[$1]}" 2>/dev/null | awk \
		-v want="$2" -v np="${TP_NPORTS[$1]}" -v f="$3" '
		/NIC statistics for port/ { h++; blk = int((h - 1) / np) + 1; next }
		blk == want && f == "rx" && $1 == "Rx-pps:" { s += $2; n++ }
		blk == want && f == "tx" && $1 == "Tx-pps:" { s += $2; n++ }
		END { if (n == np) print s }'
}

# tp_pps_ports NAME BLOCK rx|tx: the same, one value per port.
tp_pps_ports() {
	sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r//g' "${TP_LOG[$1]}" 2>/dev/null | awk \
		-v want="$2" -v np="${TP_NPORTS[$1]}" -v f="$3" '
		/NIC statistics for port/ { h++; blk = int((h - 1) / np) + 1; next }
		blk == want && f == "rx" && $1 == "Rx-pps:" { printf "%s ", $2 }
		blk == want && f == "tx" && $1 == "Tx-pps:" { printf "%s ", $2 }'
}

# --- the switches' own busy-cycle counters ---------------------------------------
# vnet: `vnetctl pmd-stats` (TSC cycles of polling rounds that moved frames),
# OVS: dpif-netdev/pmd-stats-show "processing cycles", testpmd (as the switch,
# started with --record-core-cycles): "show fwd stats all" (cycles of
# iterations that received frames). cyc_take sets cyc_busy and cyc_pkts (the
# differences over the window) for vnet and OVS; testpmd prints to its log,
# read after it quit: cyc_take appends the show's index to CYC_TP_SHOWS and
# tp_fwd_cycles NAME INDEX gives "cycles packets MHz" later.

CYC_VNET0=
CYC_TP_SHOWS=()
declare -A TP_FSHOWS

vnet_pmd_counters() { # prints "busy_cycles packets" summed over the PMDs
	sw_ctl --json pmd-stats 2>/dev/null | grep -o '"packets":[0-9]*\|"busy_cycles":[0-9]*' |
		awk -F: '$1 == "\"packets\"" { p += $2 } $1 == "\"busy_cycles\"" { c += $2 }
			END { if (NR) print c + 0, p + 0 }'
}

cyc_mark() {
	cyc_busy='' cyc_pkts=''
	case $1 in
	vnet) CYC_VNET0=$(vnet_pmd_counters) ;;
	ovs) ovs_appctl dpif-netdev/pmd-stats-clear >/dev/null 2>&1 ;;
	dpdk) tp_cmd sut "clear fwd stats all" ;;
	esac
}

cyc_take() {
	local now
	cyc_busy='' cyc_pkts=''
	case $1 in
	vnet)
		now=$(vnet_pmd_counters)
		[[ -n $now && -n $CYC_VNET0 ]] || return 0
		read -r cyc_busy cyc_pkts < <(echo "$now $CYC_VNET0" | awk '{ print $1 - $3, $2 - $4 }')
		;;
	ovs)
		read -r cyc_busy cyc_pkts < <(ovs_appctl dpif-netdev/pmd-stats-show 2>/dev/null | awk '
			$1 == "packets" && $2 == "received:" { p += $3 }
			$1 == "processing" && $2 == "cycles:" { c += $3 }
			END { if (NR) print c + 0, p + 0 }')
		;;
	dpdk)
		tp_cmd sut "show fwd stats all" || return 0
		TP_FSHOWS[sut]=$((${TP_FSHOWS[sut]:-0} + 1))
		CYC_TP_SHOWS+=("${TP_FSHOWS[sut]}")
		;;
	esac
}

# own_cycles NAME INDEX: testpmd NAME's own cycles per packet over the window
# of tp_own_fshow INDEX (after NAME quit) and its TSC clock: sets own_cpp and
# own_mhz (empty if unknown). In io and rxonly modes testpmd counts only
# iterations that received frames (busy cycles); txonly counts every one.
own_cycles() {
	own_cpp='' own_mhz=''
	[[ -n ${2:-} ]] || return 0
	local c p mhz
	read -r c p mhz < <(tp_fwd_cycles "$1" "$2")
	own_cpp=$(cyc_per_pkt "$c" "$p")
	own_mhz=${mhz:-}
	return 0
}

# cyc_per_pkt BUSY PKTS
cyc_per_pkt() {
	[[ -n $1 && -n $2 && $2 != 0 ]] || return 0
	awk -v c="$1" -v p="$2" 'BEGIN { printf "%.1f", c / p }'
}

# tp_fwd_cycles NAME INDEX: "cycles packets MHz" from the INDEX-th forward
# statistics testpmd printed for "show fwd stats all" (after it quit; empty if
# that block has no "CPU cycles/packet" line, i.e. no packets). The blocks a
# "stop" prints (between "Telling cores to stop" and "Done.") do not count.
tp_fwd_cycles() {
	sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r//g' "${TP_LOG[$1]}" 2>/dev/null | awk -v want="$2" '
		/Telling cores to stop/ { stopping = 1 }
		/^Done\./ { stopping = 0 }
		/Accumulated forward statistics/ && !stopping { n++ }
		!stopping && n == want && /CPU cycles\/packet=/ {
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^cycles=/) { c = substr($i, 8) }
				if ($i ~ /^packets=/) { p = substr($i, 9) }
				if ($i == "MHz") { mhz = $(i - 1) }
			}
			gsub(/[^0-9]/, "", c); gsub(/[^0-9]/, "", p)
			print c, p, mhz; exit
		}'
}

# vdev strings; virtio-user port I gets the MAC vu_mac I (02:00:00:00:01:I).
vu_mac() { printf '02:00:00:00:01:%02x' "$1"; }
vu_vdev() { echo "net_virtio_user$1,path=$2,queue_size=$QSIZE,queues=1,mac=$(vu_mac "$1")"; }
# eth_peers N: --eth-peer args pairing ports 2k and 2k+1 (each the other's
# MAC), so `mac` forwarding sends to the MAC a learning switch saw on the
# port pair's other side.
eth_peers() {
	local i
	for ((i = 0; i + 1 < $1; i += 2)); do
		echo "--eth-peer=$i,$(vu_mac $((i + 1))) --eth-peer=$((i + 1)),$(vu_mac "$i")"
	done
}
vh_vdev() { echo "net_vhost$1,iface=$2,queues=1"; }

# --- vnet-pktgen ---------------------------------------------------------------

declare -A PG_PID PG_JSON

# pg_start NAME CPU PKTGEN-ARGS...: JSON summary in $RAW/pg.NAME.N.json.
PG_SEQ=0
pg_start() {
	local name=$1 cpu=$2
	shift 2
	PG_SEQ=$((PG_SEQ + 1))
	PG_JSON[$name]=$RAW/pg.$PG_SEQ.$name.json
	taskset -c "$cpu" "$PKTGEN" --json --log-level warn "$@" \
		</dev/null >"${PG_JSON[$name]}" 2>"$RAW/pg.$PG_SEQ.$name.log" &
	PG_PID[$name]=$!
	bg_add "${PG_PID[$name]}"
}

pg_stop() {
	[[ -n ${PG_PID[$1]:-} ]] || return 0
	stop_pid "${PG_PID[$1]}" TERM 5
	unset "PG_PID[$1]"
}

# pg_field NAME FIELD: a number from the pktgen's JSON summary.
pg_field() { grep -o "\"$2\":[-0-9.e+]*" "${PG_JSON[$1]}" 2>/dev/null | tail -n1 | cut -d: -f2; }

# --- vnet-switchd ---------------------------------------------------------------

SW_PID=
SW_SEQ=0

sw_ctl() { "$VNETCTL" --socket "$WORK/sw/run/vnet-switchd.ctl" --timeout 10 "$@"; }

sw_sock() { echo "$WORK/sw/run/p$1.sock"; }

# sw_start NPORTS: switch (PMD on SUT_CPU), bridge br0, NPORTS vhost-user
# server ports p1..pN with ofport i, no flows (NORMAL).
sw_start() {
	local n=$1 i
	sw_stop
	rm -rf "$WORK/sw"
	mkdir -p "$WORK/sw/run" "$WORK/sw/state"
	SW_SEQ=$((SW_SEQ + 1))
	"$SWITCHD" --foreground --log-level warn --pmd-cpus "$SUT_CPU" \
		--state-dir "$WORK/sw/state" --run-dir "$WORK/sw/run" \
		</dev/null >"$RAW/switchd.$SW_SEQ.log" 2>&1 &
	SW_PID=$!
	bg_add "$SW_PID"
	wait_sock "$WORK/sw/run/vnet-switchd.ctl" 10 "$SW_PID" || {
		warn "vnet-switchd did not start ($RAW/switchd.$SW_SEQ.log)"
		return 1
	}
	sw_ctl add-br br0 >/dev/null || return 1
	for ((i = 1; i <= n; i++)); do
		sw_ctl add-port br0 "p$i" type=vhost-user path="$(sw_sock "$i")" ofport_request="$i" \
			>/dev/null || { warn "vnet-switchd: add-port p$i failed"; return 1; }
	done
	for ((i = 1; i <= n; i++)); do
		wait_sock "$(sw_sock "$i")" 10 "$SW_PID" || { warn "no socket for p$i"; return 1; }
	done
}

# sw_pair_flows NPORTS: in_port=2k-1 -> 2k and back.
sw_pair_flows() {
	local i
	for ((i = 1; i < $1; i += 2)); do
		sw_ctl add-flow br0 "in_port=$i,actions=output:$((i + 1))" >/dev/null &&
			sw_ctl add-flow br0 "in_port=$((i + 1)),actions=output:$i" >/dev/null ||
			return 1
	done
}

sw_normal() { sw_ctl del-flows br0 >/dev/null; }

# died_pid PID NAME: true (and SUT_ERR set, a warning printed) when PID
# already exited by itself; reaps it.
died_pid() {
	kill -0 "$1" 2>/dev/null && return 1
	local rc=0
	wait "$1" 2>/dev/null || rc=$?
	bg_forget "$1"
	SUT_ERR="$2 exited by itself (status $rc$( ((rc > 128)) && echo ", signal $((rc - 128))"))"
	warn "$SUT_ERR"
	return 0
}

sw_stop() {
	[[ -n $SW_PID ]] || return 0
	died_pid "$SW_PID" vnet-switchd || stop_pid "$SW_PID" TERM 5
	SW_PID=
}

# --- OVS-DPDK -------------------------------------------------------------------
# A private ovsdb-server + ovs-vswitchd (DPDK build) under $WORK/ovs, as our
# own children (no --detach): own db, run, log and sysconf dirs, own DPDK
# --file-prefix, --no-pci, hugepages from a hugetlbfs mount of our own. A
# system Open vSwitch, if any, is left alone.

OVS_VSWITCHD=${OVS_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}
OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
OVS_HUGEPAGES=${OVS_HUGEPAGES:-600} # 2 MB pages free for OVS
OVS_SOCKET_MEM=${OVS_SOCKET_MEM:-512}
OVS_DB_PID='' OVS_SW_PID=''
HP_ORIG='' HP_MOUNT=''
OVS_SEQ=0
OVS_HP_USED=
# The bridge's LOCAL port is a tap in the netdev datapath: a name of our own
# (never a host's br0); it stays down and no flow outputs to it.
OVS_BR=vnb$$

# OVS_ENV: the private OVS directories; ovs_env CMD... runs CMD with them.
# Daemons are started as `env "${OVS_ENV[@]}" CMD &` so that $! is CMD itself.
ovs_envs() {
	OVS_ENV=(OVS_RUNDIR="$WORK/ovs/run" OVS_DBDIR="$WORK/ovs/db" OVS_LOGDIR="$WORK/ovs/log"
		OVS_SYSCONFDIR="$WORK/ovs/etc" OVS_PKGDATADIR=/usr/share/openvswitch)
}
ovs_env() {
	ovs_envs
	env "${OVS_ENV[@]}" "$@"
}
ovs_vsctl() { ovs_env ovs-vsctl --db="unix:$WORK/ovs/run/db.sock" --timeout=30 "$@"; }
ovs_ofctl() { ovs_env ovs-ofctl "$1" "unix:$WORK/ovs/run/$OVS_BR.mgmt" "${@:2}"; }
ovs_appctl() { ovs_env ovs-appctl -t "$WORK/ovs/run/ovs-vswitchd.ctl" "$@"; }
ovs_sock() { echo "$WORK/ovs/run/vu$1"; }

ovs_available() {
	[[ -x $OVS_VSWITCHD && -r $OVS_SCHEMA ]] && command -v ovsdb-server >/dev/null &&
		command -v ovs-vsctl >/dev/null && command -v ovs-ofctl >/dev/null
}

# ovs_prepare: hugepages (raise nr_hugepages if fewer than OVS_HUGEPAGES are
# free; restored by ovs_unprepare) and a private hugetlbfs mount.
ovs_prepare() {
	[[ -n $HP_MOUNT ]] && return 0
	local free need=$OVS_HUGEPAGES cur
	free=$(hugepages_free)
	if ((free < need)); then
		HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
		cur=$((HP_ORIG + need - free))
		echo "$cur" >/proc/sys/vm/nr_hugepages 2>/dev/null
		free=$(hugepages_free)
		if ((free < need)); then
			warn "only $free of $need 2 MB hugepages free after nr_hugepages=$cur"
		fi
	fi
	mkdir -p "$WORK/huge"
	mount -t hugetlbfs -o pagesize=2M nodev "$WORK/huge" || {
		warn "cannot mount hugetlbfs on $WORK/huge"
		return 1
	}
	HP_MOUNT=$WORK/huge
}

ovs_unprepare() {
	if [[ -n $HP_MOUNT ]]; then
		rm -f "$HP_MOUNT"/* 2>/dev/null
		umount "$HP_MOUNT" 2>/dev/null || umount -l "$HP_MOUNT" 2>/dev/null
		HP_MOUNT=
	fi
	if [[ -n $HP_ORIG ]]; then
		echo "$HP_ORIG" >/proc/sys/vm/nr_hugepages 2>/dev/null
		HP_ORIG=
	fi
}

# ovs_start NPORTS: fresh db, ovsdb-server, ovs-vswitchd with DPDK (PMD on
# SUT_CPU), bridge $OVS_BR (netdev), NPORTS dpdkvhostuser ports vu1..vuN with
# ofport i, the default NORMAL flow. Sets OVS_HP_USED (MB of hugepages taken).
ovs_start() {
	local n=$1 i d=$WORK/ovs hp0
	ovs_stop
	ovs_prepare || return 1
	rm -rf "$d"
	mkdir -p "$d/run" "$d/db" "$d/log" "$d/etc"
	rm -f "$HP_MOUNT"/* 2>/dev/null
	OVS_SEQ=$((OVS_SEQ + 1))
	local log=$RAW/ovs.$OVS_SEQ
	ovsdb-tool create "$d/db/conf.db" "$OVS_SCHEMA" || return 1
	ovs_envs
	env "${OVS_ENV[@]}" ovsdb-server "$d/db/conf.db" --remote="punix:$d/run/db.sock" \
		--pidfile="$d/run/ovsdb-server.pid" --unixctl="$d/run/ovsdb-server.ctl" \
		--log-file="$log.ovsdb-server.log" -vconsole:off --no-chdir \
		</dev/null >/dev/null 2>&1 &
	OVS_DB_PID=$!
	bg_add "$OVS_DB_PID"
	wait_sock "$d/run/db.sock" 10 "$OVS_DB_PID" || { warn "ovsdb-server did not start"; return 1; }
	ovs_vsctl --no-wait init || return 1
	ovs_vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
		other_config:dpdk-socket-mem="$OVS_SOCKET_MEM" \
		other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << SUT_CPU)))" \
		other_config:dpdk-hugepage-dir="$HP_MOUNT" \
		"other_config:dpdk-extra=--no-pci --file-prefix=${PREFIX}_ovs$OVS_SEQ" || return 1
	hp0=$(hugepages_free)
	env "${OVS_ENV[@]}" "$OVS_VSWITCHD" "unix:$d/run/db.sock" --pidfile="$d/run/ovs-vswitchd.pid" \
		--unixctl="$d/run/ovs-vswitchd.ctl" --log-file="$log.ovs-vswitchd.log" \
		-vconsole:off --no-chdir </dev/null >"$log.ovs-vswitchd.out" 2>&1 &
	OVS_SW_PID=$!
	bg_add "$OVS_SW_PID"
	for ((i = 0; i < 1200; i++)); do
		[[ $(ovs_vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null) == true ]] && break
		kill -0 "$OVS_SW_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [[ $(ovs_vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null) != true ]]; then
		warn "ovs-vswitchd: DPDK did not initialize ($log.ovs-vswitchd.log):"
		grep -E 'ERR|EMER|WARN' "$log.ovs-vswitchd.log" 2>/dev/null | tail -n 8 | sed 's/^/    /' >&2
		return 1
	fi
	local -a cmd=(add-br "$OVS_BR" -- set bridge "$OVS_BR" datapath_type=netdev)
	for ((i = 1; i <= n; i++)); do
		cmd+=(-- add-port "$OVS_BR" "vu$i" -- set Interface "vu$i" type=dpdkvhostuser ofport_request="$i")
	done
	ovs_vsctl "${cmd[@]}" || { warn "ovs-vsctl add-br/add-port failed"; return 1; }
	for ((i = 1; i <= n; i++)); do
		wait_sock "$(ovs_sock "$i")" 20 "$OVS_SW_PID" || { warn "OVS: no socket for vu$i"; return 1; }
	done
	OVS_HP_USED=$(((hp0 - $(hugepages_free)) * 2))
}

ovs_pair_flows() {
	local i
	ovs_ofctl del-flows || return 1
	for ((i = 1; i < $1; i += 2)); do
		ovs_ofctl add-flow "in_port=$i,actions=output:$((i + 1))" &&
			ovs_ofctl add-flow "in_port=$((i + 1)),actions=output:$i" || return 1
	done
}

ovs_normal() { ovs_ofctl del-flows && ovs_ofctl add-flow "actions=NORMAL"; }

ovs_stop() {
	if [[ -n $OVS_SW_PID ]]; then
		if ! died_pid "$OVS_SW_PID" ovs-vswitchd; then
			ovs_appctl exit --cleanup >/dev/null 2>&1
			wait_gone "$OVS_SW_PID" 10 || stop_pid "$OVS_SW_PID" TERM 5
		fi
		OVS_SW_PID=
		rm -rf "/var/run/dpdk/${PREFIX}_ovs$OVS_SEQ" 2>/dev/null
	fi
	if [[ -n $OVS_DB_PID ]]; then
		stop_pid "$OVS_DB_PID" TERM 5
		OVS_DB_PID=
	fi
	[[ -n $HP_MOUNT ]] && rm -f "$HP_MOUNT"/* 2>/dev/null
	return 0
}

# --- raw samples ------------------------------------------------------------------

# jval V: V as a JSON number if it is one, else as a string.
jval() {
	if [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
		printf '%s' "$1"
	else
		local s=${1//\\/\\\\}
		printf '"%s"' "${s//\"/\\\"}"
	fi
}

# c2c_probe: core-to-core cache-line round trip between SUT_CPU and TP_CPU,
# ns (bench_c2c; empty if it is missing). Taken as each sample is recorded,
# once its peers have stopped (a probe beside busy pollers measures the
# scheduler): the host moves this VM's vCPUs every few seconds, and a round
# trip of ~65 ns (an L3 shared) or ~340 ns (not) moves every ring figure.
c2c_probe() {
	[[ -x ${C2C:-} ]] && timeout 5 "$C2C" "$SUT_CPU" "$TP_CPU" 20000 2>/dev/null
}

# record FIG CASE IMPL RUN VALUE [KEY=VALUE...]: one sample (JSON line) with
# its c2c_ns; an empty VALUE records a failed run (never counted as 0).
# KEY=@JSON puts raw JSON (e.g. an array); empty values are left out.
record() {
	local fig=$1 cas=$2 impl=$3 run=$4 val=$5 kv v extra=
	shift 5
	set -- "$@" "c2c_ns=$(c2c_probe)"
	for kv in "$@"; do
		v=${kv#*=}
		[[ -z $v ]] && continue
		if [[ $v == @* ]]; then # raw JSON
			extra+=",\"${kv%%=*}\":${v#@}"
		else
			extra+=",\"${kv%%=*}\":$(jval "$v")"
		fi
	done
	if [[ -n $val ]]; then
		[[ $val == @* ]] && val=${val#@}
		printf '{"fig":"%s","case":"%s","impl":"%s","run":%d,"ok":true,"value":%s%s}\n' \
			"$fig" "$cas" "$impl" "$run" "$(jval "$val")" "$extra" >>"$SAMPLES"
	else
		printf '{"fig":"%s","case":"%s","impl":"%s","run":%d,"ok":false,"value":null%s}\n' \
			"$fig" "$cas" "$impl" "$run" "$extra" >>"$SAMPLES"
	fi
}

# mpps PPS: packets/s -> Mpps with 4 decimals (empty stays empty, 0 -> empty: a dead run).
mpps() {
	[[ -n $1 && $1 != 0 ]] || return 0
	awk -v v="$1" 'BEGIN { printf "%.4f", v / 1e6 }'
}
