# shellcheck shell=bash
# Shared helpers for the vnet-switchd integration tests (switch_*_test.sh).
# Source from bash:  . "$repo/tests/integration/lib_switch.sh"
#
#   SWITCHD, VNETCTL, PKTGEN  binaries (meson passes them; default build/...);
#                             SWITCHD and VNETCTL are exported
#   sw_start DIR [ARGS...]    start vnet-switchd --foreground in DIR (run dir and
#                             state dir = DIR, log DIR/switchd.log appended),
#                             default args --pmd-cpus 1 --log-level debug unless
#                             given; waits (10 s) for DIR/vnet-switchd.ctl.
#                             Sets SW_PID, SW_DIR, exports VNET_CTL_SOCKET.
#                             Returns 0 when the socket is up, 1 otherwise.
#   sw_stop                   SIGTERM the daemon, wait (5 s), then SIGKILL. Returns 0
#                             if it exited with status 0 on SIGTERM, 1 otherwise
#                             (status in SW_RC: 139 = segfault, 137 = killed)
#   sw_kill9                  SIGKILL the daemon and reap it
#   sw_alive                  0 if SW_PID still runs
#   vnetctl_ ARGS...          run vnetctl (its own 10 s answer timeout; timeout(1)
#                             backstop of ${VNETCTL_TIMEOUT:-90} s); returns its status
#   wait_for_sock PATH TIMEOUT   0 once PATH is a socket, 1 after TIMEOUT seconds
#                             (TIMEOUT may be fractional)
#   sw_log_tail [N]           last N (default 60) lines of the daemon log, '# '-prefixed
#
# Nothing here installs traps: the caller's cleanup should call sw_stop.

_sw_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SWITCHD=${SWITCHD:-$_sw_repo/build/src/switch/vnet-switchd}
VNETCTL=${VNETCTL:-$_sw_repo/build/src/tools/vnetctl}
PKTGEN=${PKTGEN:-$_sw_repo/build/src/tools/vnet-pktgen}
export SWITCHD VNETCTL
SW_PID=
SW_RC=
SW_DIR=

# wait_for_sock PATH TIMEOUT: 0 once PATH is a socket.
wait_for_sock() {
	local path=$1 timeout=${2:-10} i n
	# 20 polls a second, no floating point in bash.
	n=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 20 + 0.5 }')
	for ((i = 0; i <= n; i++)); do
		[[ -S $path ]] && return 0
		sleep 0.05
	done
	[[ -S $path ]]
}

# sw_alive: 0 while the daemon runs.
sw_alive() {
	[[ -n $SW_PID ]] && kill -0 "$SW_PID" 2>/dev/null
}

# sw_start DIR [ARGS...]: the daemon in the background; 0 once its control socket is up.
sw_start() {
	local dir=$1
	shift
	local -a args=("$@")
	local have_pmd=0 have_log=0 a
	for a in "${args[@]}"; do
		[[ $a == --pmd-cpus* ]] && have_pmd=1
		[[ $a == --log-level* ]] && have_log=1
	done
	((have_pmd)) || args+=(--pmd-cpus 1)
	((have_log)) || args+=(--log-level debug)
	mkdir -p "$dir" || return 1
	SW_DIR=$dir
	export VNET_CTL_SOCKET=$dir/vnet-switchd.ctl
	# A stale socket from a killed daemon must not count as "up".
	rm -f "$VNET_CTL_SOCKET"
	"$SWITCHD" --foreground --run-dir "$dir" --state-dir "$dir" "${args[@]}" \
		</dev/null >>"$dir/switchd.log" 2>&1 &
	SW_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -S $VNET_CTL_SOCKET ]] && return 0
		kill -0 "$SW_PID" 2>/dev/null || break
		sleep 0.05
	done
	[[ -S $VNET_CTL_SOCKET ]] && sw_alive && return 0
	echo "sw_start: vnet-switchd did not create $VNET_CTL_SOCKET" >&2
	return 1
}

# sw_stop: SIGTERM (SIGKILL after 5 s); 0 if it exited with status 0.
sw_stop() {
	SW_RC=
	[[ -n $SW_PID ]] || return 0
	local i killed=0
	kill -TERM "$SW_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SW_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$SW_PID" 2>/dev/null; then
		echo "sw_stop: vnet-switchd $SW_PID ignored SIGTERM for 5 s, killing" >&2
		kill -KILL "$SW_PID" 2>/dev/null
		killed=1
	fi
	wait "$SW_PID" 2>/dev/null
	SW_RC=$?
	SW_PID=
	((killed)) && return 1
	if ((SW_RC != 0)); then
		echo "sw_stop: vnet-switchd exited with status $SW_RC on SIGTERM" >&2
		return 1
	fi
	return 0
}

# sw_kill9: SIGKILL the daemon and reap it.
sw_kill9() {
	[[ -n $SW_PID ]] || return 0
	kill -KILL "$SW_PID" 2>/dev/null
	wait "$SW_PID" 2>/dev/null
	SW_PID=
	return 0
}

# vnetctl_ ARGS...: vnetctl with a timeout(1) backstop.
vnetctl_() {
	# vnetctl waits 10 s for an answer by itself (--timeout; for capture the
	# capture time + 10 s); timeout(1) is only a backstop.
	timeout -k 2 "${VNETCTL_TIMEOUT:-90}" "$VNETCTL" "$@"
}

# sw_log_tail [N]: the daemon log's last N lines as TAP comments.
sw_log_tail() {
	local n=${1:-60}
	[[ -n $SW_DIR && -f $SW_DIR/switchd.log ]] || return 0
	tail -n "$n" "$SW_DIR/switchd.log" | sed 's/^/#   /'
}
