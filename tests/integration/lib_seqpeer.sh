# shellcheck shell=bash
# Helpers for tests and scripts that drive seqpeer front-ends (the fault,
# soak and resource-limit tests). Source from bash after lib_switch.sh:
#   . "$repo/tests/integration/lib_seqpeer.sh"
#
#   SEQPEER                   the binary; default: next to $SWITCHD's build dir
#                             (<build>/tests/integration/seqpeer)
#   PEER_DIR                  where status/output files go (set it first)
#   PEER_CPU                  CPU list for taskset (empty: no pinning)
#   peer_start NAME ARGS...   seqpeer ARGS in the background; status file
#                             $PEER_DIR/NAME.st, summary NAME.out, log NAME.err
#   peer_pid NAME             its pid (empty when not running)
#   peer_kill9 NAME           SIGKILL and reap
#   peer_stop NAME            stop sending (SIGUSR2), let the frames in flight
#                             arrive, SIGTERM (final summary), reap; 5 s bound
#   peer_stop_all             peer_stop every peer still running
#   peer_check ARGS...        tests/integration/seqpeer_check.py ARGS
#
# Nothing here installs traps: the caller's cleanup should call peer_stop_all.

_sp_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${SEQPEER:-} ]]; then
	SEQPEER=${SWITCHD%/src/switch/vnet-switchd}/tests/integration/seqpeer
fi
declare -A PEER_PIDS=()
PEER_DIR=${PEER_DIR:-/tmp}
PEER_CPU=${PEER_CPU:-}

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

peer_pid() {
	local p=${PEER_PIDS[$1]:-}
	[[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}

peer_kill9() {
	local p=${PEER_PIDS[$1]:-}
	[[ -n $p ]] || return 0
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset 'PEER_PIDS[$1]'
}

peer_stop() {
	local p=${PEER_PIDS[$1]:-} i
	[[ -n $p ]] || return 0
	kill -USR2 "$p" 2>/dev/null
	sleep 0.3
	kill -TERM "$p" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset 'PEER_PIDS[$1]'
}

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

peer_check() {
	python3 "$_sp_here/seqpeer_check.py" "$@"
}
