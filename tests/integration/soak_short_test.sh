#!/usr/bin/env bash
# The short soak of `make check`: scripts/soak.sh for SOAK_S seconds
# (default 60; `make soak` runs 600): 8 vhost-user ports carrying
# sequence-checked traffic while ports are added and removed, front-ends
# reconnect or are killed and flows change every 10 s. Passes when the
# daemon's RSS (RssAnon), fds, threads and guest-memory mappings end within
# 5 % of their value after the warm-up, traffic flowed again after every
# round of churn, and no frame arrived corrupt or twice. The samples table
# and the verdict line are printed as TAP comments. Root only (like the other
# integration tests: it pins the PMD to a CPU). Prints TAP.
#
# Environment: SWITCHD, VNETCTL (meson passes them), SEQPEER, SOAK_S.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/peers.sh"
skip_unless_root
command -v python3 >/dev/null || vnet_skip "python3 missing"

SOAK_S=${SOAK_S:-60}
export SOAK_S
echo "1..1"
out=$("$repo/scripts/soak.sh" 2>&1)
rc=$?
while IFS= read -r l; do echo "# $l"; done <<<"$out"
verdict=$(grep -E '^soak: (PASS|FAIL)' <<<"$out" | tail -n 1)
if ((rc == 0)); then
	echo "ok 1 - soak of ${SOAK_S} s under churn: no leak (RssAnon, fds, threads, guest mappings within 5 %), traffic after every round, no corrupt or duplicate frame"
else
	echo "not ok 1 - soak of ${SOAK_S} s under churn: ${verdict:-soak.sh exited with status $rc}"
fi
exit $((rc != 0))
