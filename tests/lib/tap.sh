# shellcheck shell=bash
# TAP bookkeeping for the integration tests. Source it from bash:
#   . "$repo/tests/lib/tap.sh"
#
#   fail MSG                  records a failure of the current test
#   report NAME [LOGFILES...] prints "ok N - NAME" or "not ok N - NAME" with the
#                             recorded failures and the tails of LOGFILES (and
#                             of $SW_LOG, the switch daemon's log, when set)
#   over_budget NAME          when $BUDGET seconds are spent: fails NAME without
#                             running it (returns 0), else returns 1
# State: n (tests reported), any_fail (1 once anything failed): end the script
# with `exit $any_fail`.

n=0
any_fail=0
fails=()

fail() { fails+=("$*"); }

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
		for f in "$@"; do
			[[ -s $f ]] || continue
			echo "# --- $(basename "$f") (tail) ---"
			tail -n 15 "$f" | sed 's/^/#   /'
		done
		if [[ -n ${SW_LOG:-} && -s ${SW_LOG:-} ]]; then
			echo "# --- daemon log (tail) ---"
			tail -n 25 "$SW_LOG" | sed 's/^/#   /'
		fi
	fi
	fails=()
}

over_budget() {
	((SECONDS < BUDGET)) && return 1
	n=$((n + 1))
	any_fail=1
	echo "not ok $n - $1"
	echo "# not run: time budget of ${BUDGET}s spent (${SECONDS}s elapsed)"
	return 0
}
