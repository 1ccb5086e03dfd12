# shellcheck shell=bash
# TAP bookkeeping for the integration tests, and the chores they share
# (checking the binaries, killing background processes). Source it from bash:
#   . "$repo/tests/lib/tap.sh"
#
#   fail MSG                  records a failure of the current test
#   report NAME [LOGFILES...] prints "ok N - NAME" or "not ok N - NAME" with the
#                             recorded failures and the tails of LOGFILES (and
#                             of $SW_LOG, the switch daemon's log, when set),
#                             then whatever the test's own report_extra prints
#                             (when it defines one)
#   tail_logs N FILES...      the last N lines of each non-empty FILE under a
#                             "# --- NAME (tail) ---" line, '#   '-prefixed
#   over_budget NAME          when $BUDGET seconds are spent: fails NAME without
#                             running it (returns 0), else returns 1
#   need_bins [-e] VAR...     "Bail out!" (exit 1) unless the file each VAR
#                             names is executable (-e: exists)
#   kill_pids PID...          for a cleanup: SIGTERM to every PID, 0.2 s later
#                             SIGKILL, and reap each
# State: n (tests reported), any_fail (1 once anything failed): end the script
# with `exit $any_fail`.

n=0
any_fail=0
fails=()

# fail MSG: records a failure of the current test.
fail() { fails+=("$*"); }

# report NAME [LOGFILES...]: the test's TAP line, and on failure its diagnostics.
report() {
	local name=$1 f
	shift
	n=$((n + 1))
	if ((${#fails[@]} == 0)); then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		any_fail=1
		for f in "${fails[@]}"; do echo "# $f"; done
		tail_logs 15 "$@"
		if [[ -n ${SW_LOG:-} && -s ${SW_LOG:-} ]]; then
			echo "# --- daemon log (tail) ---"
			tail -n 25 "$SW_LOG" | sed 's/^/#   /'
		fi
		# a test with diagnostics of its own (other logs, other lengths) adds them here
		if declare -F report_extra >/dev/null; then report_extra; fi
	fi
	fails=()
}

# tail_logs N FILES...: the last N lines of each non-empty FILE, as TAP comments.
tail_logs() {
	local lines=$1 f
	shift
	for f in "$@"; do
		[[ -s $f ]] || continue
		echo "# --- $(basename "$f") (tail) ---"
		tail -n "$lines" "$f" | sed 's/^/#   /'
	done
}

# over_budget NAME: 0 (NAME reported as failed, not run) once $BUDGET s are spent.
over_budget() {
	((SECONDS < BUDGET)) && return 1
	n=$((n + 1))
	any_fail=1
	echo "not ok $n - $1"
	echo "# not run: time budget of ${BUDGET}s spent (${SECONDS}s elapsed)"
	return 0
}

# need_bins [-e] VAR...: Bail out unless each $VAR is executable (-e: exists).
need_bins() {
	local op=-x v
	if [[ ${1:-} == -e ]]; then
		op=-e
		shift
	fi
	for v in "$@"; do
		test "$op" "${!v:-}" && continue
		echo "Bail out! ${!v:-} not found (set $(IFS=/ && echo "$*") or build build/)"
		exit 1
	done
}

# kill_pids PID...: SIGTERM them all, then SIGKILL and reap each.
kill_pids() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.2
	for p in "$@"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}
