#!/usr/bin/env bash
# vnet-pktgen front-end ↔ vnet-pktgen back-end over vhost-user: frames flow
# both ways with 1, 2 and 4 queue pairs and arrive intact; echo/latency round
# trips; and a front-end killed mid-traffic is replaced by a new one while
# the back-end keeps running, with its fd count and RSS back where they were.
# Prints TAP.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKTGEN=${PKTGEN:-$repo/build/src/tools/vnet-pktgen}
work=$(mktemp -d /tmp/vnet-pair.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fails=$((fails + 1))
	echo "not ok $n - $1"
	shift
	for f in "$@"; do [[ -f $f ]] && sed 's/^/# /' "$f" | tail -n 15; done
}
# json FILE FIELD -> value of a numeric field of pktgen's --json line
json() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | tail -n 1; }

# pair NAME QUEUES FRONT_MODE BACK_MODE COUNT [extra args for both]
# The back-end listens, the front-end connects; the receiving side verifies.
pair() {
	local name=$1 q=$2 fmode=$3 bmode=$4 count=$5
	shift 5
	local sock=$work/$name.sock
	local bverify= fverify=
	[[ $bmode == rx ]] && bverify=--verify
	[[ $fmode == rx ]] && fverify=--verify
	timeout 60 "$PKTGEN" --role backend --socket "$sock" --queues "$q" --mode "$bmode" \
		--count "$count" $bverify --json --wait 20 "$@" >"$work/$name.be" 2>"$work/$name.be.err" &
	local bpid=$!
	for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
	timeout 60 "$PKTGEN" --role frontend --socket "$sock" --queues "$q" --mode "$fmode" \
		--count "$count" $fverify --json --wait 20 "$@" >"$work/$name.fe" 2>"$work/$name.fe.err"
	local frc=$?
	wait "$bpid"
	local brc=$?
	local sender=$work/$name.fe receiver=$work/$name.be
	[[ $fmode == rx ]] && { sender=$work/$name.be; receiver=$work/$name.fe; }
	local sent got errs
	sent=$(json "$sender" tx_packets)
	got=$(json "$receiver" rx_packets)
	errs=$(json "$receiver" errors)
	if [[ $frc == 0 && $brc == 0 && $sent == "$count" && $got == "$count" && $errs == 0 ]]; then
		ok "$name: $count frames, $q queue pair(s), all verified ($(json "$receiver" pps) pps)"
	else
		not_ok "$name: rc fe=$frc be=$brc sent=$sent received=$got errors=$errs" \
			"$work/$name.fe" "$work/$name.fe.err" "$work/$name.be" "$work/$name.be.err"
	fi
}

echo "1..12"
pair fe-to-be-1q 1 tx rx 200000
pair be-to-fe-1q 1 rx tx 200000
pair fe-to-be-2q 2 tx rx 200000
pair be-to-fe-4q 4 rx tx 400000 --size 1518
pair fe-to-be-4q-poll 4 tx rx 200000 --poll
# --start-on-kick with a polling driver (no kick fd): nothing to wait for.
pair be-to-fe-poll-start-on-kick 1 rx tx 200000 --poll --start-on-kick

# --start-on-kick with a driver that does not kick RX (vnet's front-end posts
# its buffers before the rings start): the back-end, its rings enabled, gives
# up after --wait with a message naming the option, rather than sending or
# hanging.
sock=$work/nokick.sock
timeout 30 "$PKTGEN" --role backend --socket "$sock" --mode tx --count 1000 --start-on-kick \
	--wait 2 --json --log-level info >"$work/nokick.be" 2>"$work/nokick.be.err" &
bpid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
timeout 8 "$PKTGEN" --role frontend --socket "$sock" --mode rx --duration 3 --json \
	>"$work/nokick.fe" 2>"$work/nokick.fe.err"
wait "$bpid"
brc=$?
if [[ $brc == 1 && $(json "$work/nokick.be" tx_packets) == 0 ]] &&
	grep -q "rings enabled, waiting for the driver to kick RX" "$work/nokick.be.err" &&
	grep -q "start-on-kick: also waiting for a kick of its RX ring" "$work/nokick.be.err"; then
	ok "start-on-kick: a driver that never kicks RX gets no frames and a clear error (exit 1)"
else
	not_ok "start-on-kick without a kick: back-end rc=$brc" "$work/nokick.be" "$work/nokick.be.err"
fi

# Latency: the back-end echoes, the front-end times round trips.
sock=$work/lat.sock
"$PKTGEN" --role backend --socket "$sock" --mode echo --json >"$work/lat.be" 2>"$work/lat.be.err" &
pids+=($!)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
timeout 60 "$PKTGEN" --role frontend --socket "$sock" --mode latency --count 2000 --json \
	>"$work/lat.fe" 2>"$work/lat.fe.err"
samples=$(json "$work/lat.fe" latency_samples)
lost=$(json "$work/lat.fe" lost)
if [[ $samples == 2000 && $lost == 0 ]]; then
	ok "latency: 2000 round trips through an echoing back-end, p50 $(json "$work/lat.fe" p50_us) us, p99 $(json "$work/lat.fe" p99_us) us"
else
	not_ok "latency: samples=$samples lost=$lost" "$work/lat.fe" "$work/lat.fe.err" "$work/lat.be.err"
fi

# Restart: one long-running back-end; a front-end killed mid-traffic, then others.
sock=$work/restart.sock
"$PKTGEN" --role backend --socket "$sock" --mode rx --json >"$work/rs.be" 2>"$work/rs.be.err" &
bpid=$!
pids+=($bpid)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
fdcount() { ls "/proc/$1/fd" | wc -l; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }

# A first front-end connects, sends, and is killed in the middle of its traffic.
"$PKTGEN" --role frontend --socket "$sock" --mode tx --json >"$work/rs.fe1" 2>&1 &
fpid=$!
sleep 1
kill -9 "$fpid"
wait "$fpid" 2>/dev/null
sleep 0.3
fd1=$(fdcount "$bpid")
rss1=$(rss_kb "$bpid")
# A second front-end on the same socket: traffic resumes.
timeout 30 "$PKTGEN" --role frontend --socket "$sock" --mode tx --count 100000 --json \
	>"$work/rs.fe2" 2>"$work/rs.fe2.err"
rc2=$?
sent2=$(json "$work/rs.fe2" tx_packets)
if [[ $rc2 == 0 && $sent2 == 100000 ]]; then
	ok "restart: a new front-end on the same socket sends 100000 frames after the first was killed"
else
	not_ok "restart: second front-end rc=$rc2 sent=$sent2" "$work/rs.fe2" "$work/rs.fe2.err" "$work/rs.be.err"
fi
# Several more connect/kill cycles must not grow the back-end.
for _ in 1 2 3 4 5; do
	"$PKTGEN" --role frontend --socket "$sock" --mode tx --json >/dev/null 2>&1 &
	fpid=$!
	sleep 0.4
	kill -9 "$fpid"
	wait "$fpid" 2>/dev/null
done
sleep 0.3
fd2=$(fdcount "$bpid")
rss2=$(rss_kb "$bpid")
if [[ $fd2 == "$fd1" ]]; then
	ok "restart: back-end fd count unchanged after 6 more connections ($fd1 → $fd2)"
else
	not_ok "restart: back-end fd count $fd1 → $fd2" "$work/rs.be.err"
fi
# RSS may wobble by a page or two of allocator state; growth per connection would show.
if (( rss2 <= rss1 + 512 )); then
	ok "restart: back-end RSS back to its level ($rss1 kB → $rss2 kB)"
else
	not_ok "restart: back-end RSS grew $rss1 kB → $rss2 kB" "$work/rs.be.err"
fi
kill -TERM "$bpid"
wait "$bpid" 2>/dev/null
received=$(json "$work/rs.be" rx_packets)
reconnects=$(json "$work/rs.be" reconnects)
if (( received >= 100000 && reconnects >= 7 )); then
	ok "restart: back-end saw $reconnects front-ends come and go, received $received frames, exited cleanly"
else
	not_ok "restart: back-end received=$received reconnects=$reconnects" "$work/rs.be" "$work/rs.be.err"
fi
exit 0
