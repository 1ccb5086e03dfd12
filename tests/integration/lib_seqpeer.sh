# shellcheck shell=bash
# Helpers for tests and scripts that drive seqpeer front-ends (the fault,
# soak and resource-limit tests). Source from bash (it sources
# tests/lib/peers.sh and lib_switch.sh itself):
#   . "$repo/tests/integration/lib_seqpeer.sh"
#
#   SEQPEER                   the binary; default: next to $SWITCHD's build dir
#                             (<build>/tests/integration/seqpeer)
#   PEER_DIR                  where status/output files go (set it first, or
#                             let seqpeer_workdir set it)
#   PEER_CPU                  CPU list for taskset (empty: no pinning)
#   seqpeer_workdir TAG       a fresh work dir: sets work (vnet-TAG.XXXXXX under
#                             $TMPDIR), PEER_DIR=$work (exported), SWDIR=$work/sw
#                             (the switch's dir); 1 if it cannot be made
#   seqpeer_cpus              SW_CPU (the switch's PMD) and PEER_CPU: the first
#                             two CPUs this process may use (one when alone)
#   seqpeer_setup TAG         the start of a TAP test (needs tests/lib/tap.sh):
#                             skips unless root or without python3, bails out
#                             unless SWITCHD, VNETCTL and SEQPEER are built,
#                             then seqpeer_workdir TAG and seqpeer_cpus
#   seqpeer_cleanup           for the caller's EXIT trap: stops the peers and the
#                             switch, removes $work (kept when KEEP is set)
#   peer_start NAME ARGS...   seqpeer ARGS in the background; status file
#                             $PEER_DIR/NAME.st, summary NAME.out, log NAME.err
#   peer_pid NAME             its pid (empty when not running)
#   peer_kill9 NAME           SIGKILL and reap
#   peer_stop NAME            stop sending (SIGUSR2), let the frames in flight
#                             arrive, SIGTERM (final summary), reap; 5 s bound
#   peer_stop_all             peer_stop every peer still running
#   peer_check ARGS...        tests/integration/seqpeer_check.py ARGS
#
# Nothing here installs traps: the caller's cleanup should call
# seqpeer_cleanup (or peer_stop_all).

_sp_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_sp_here/../lib/peers.sh"
. "$_sp_here/lib_switch.sh"
if [[ -z ${SEQPEER:-} ]]; then
	SEQPEER=${SWITCHD%/src/switch/vnet-switchd}/tests/integration/seqpeer
fi
declare -A PEER_PIDS=()
PEER_DIR=${PEER_DIR:-/tmp}
PEER_CPU=${PEER_CPU:-}

# peer_start NAME ARGS...: seqpeer ARGS in the background as NAME.
peer_start() {
	local name=$1
	shift
	local -a pin=()
	[[ -n $PEER_CPU ]] && pin=(taskset -c "$PEER_CPU")
	rm -f "$PEER_DIR/$name.st"
	"${pin[@]}" "$SEQPEER" --status "$PEER_DIR/$name.st" "$@" \
		>"$PEER_DIR/$name.out" 2>>"$PEER_DIR/$name.err" </dev/null &
	PEER_PIDS[$name]=$!
}

# peer_pid NAME: its pid while it runs.
peer_pid() {
	local p=${PEER_PIDS[$1]:-}
	[[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}

# peer_kill9 NAME: SIGKILL and reap.
peer_kill9() {
	local p=${PEER_PIDS[$1]:-}
	[[ -n $p ]] || return 0
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset 'PEER_PIDS[$1]'
}

# peer_stop NAME: quiesce, then SIGTERM (its final summary) and reap.
peer_stop() {
	local p=${PEER_PIDS[$1]:-}
	[[ -n $p ]] || return 0
	kill -USR2 "$p" 2>/dev/null
	sleep 0.3
	stop_wait "$p" TERM 5
	unset 'PEER_PIDS[$1]'
}

# peer_stop_all: peer_stop every peer still running.
peer_stop_all() {
	local n p
	# Quiesce every sender first, so no receiver stops while frames are on the way.
	for n in "${!PEER_PIDS[@]}"; do
		p=${PEER_PIDS[$n]}
		kill -USR2 "$p" 2>/dev/null
	done
	sleep 0.3
	for n in "${!PEER_PIDS[@]}"; do peer_stop "$n"; done
}

# peer_check ARGS...: seqpeer_check.py ARGS.
peer_check() {
	python3 "$_sp_here/seqpeer_check.py" "$@"
}

# seqpeer_workdir TAG: makes $work, PEER_DIR and SWDIR.
seqpeer_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-$1.XXXXXX") || return 1
	PEER_DIR=$work
	export PEER_DIR
	# shellcheck disable=SC2034 # the caller's
	SWDIR=$work/sw
}

# seqpeer_cpus: SW_CPU and PEER_CPU, the first two allowed CPUs.
seqpeer_cpus() {
	allowed_cpus
	SW_CPU=${cpus[0]:-0}
	PEER_CPU=${cpus[1]:-$SW_CPU}
}

# seqpeer_setup TAG: root, python3 and the binaries checked; work dir and CPUs.
seqpeer_setup() {
	skip_unless_root
	need_bins SWITCHD VNETCTL SEQPEER
	command -v python3 >/dev/null || vnet_skip "python3 missing"
	seqpeer_workdir "$1" || exit 1
	seqpeer_cpus
}

# seqpeer_cleanup: peers and switch stopped, $work removed unless KEEP is set.
seqpeer_cleanup() {
	peer_stop_all >/dev/null 2>&1
	sw_stop >/dev/null 2>&1
	[[ -n ${KEEP:-} ]] || rm -rf "$work"
}
