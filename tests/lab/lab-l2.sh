# shellcheck shell=sh
# Test run inside the nested guest (L2) of the lab VM, as /test.sh of its
# initramfs (tests/guest/init.sh sources it with the `result` helper after
# configuring eth0 from vnet.ip=). L1 (tests/lab/lab-l1.sh) reads the
# VNET-RESULT lines from the VMM's console.
#
#   vnet.job=ping (default)  ping vnet.peer 5 times: "ping=R/5", rc 0 iff 5/5
#   vnet.job=bench           iperf3 client against vnet.peer (iperf3 -s runs
#                            in L1): "tcp_mbps=X" (L2 -> L1, TCP, vnet.secs
#                            seconds, default 5) and "udp_pps=Y" (64-byte UDP
#                            datagrams received by L1 per second, unlimited
#                            send rate); rc 0 iff both numbers came out
# Single-threaded shell, nothing shared.

peer=${VNET_PEER:?vnet.peer= missing}
count=5

case ${VNET_JOB:-ping} in
ping)
	# -W: per-reply wait; the first one also covers ARP at nested-TCG speed.
	out=$(ping -c "$count" -W 3 "$peer" 2>&1)
	echo "$out" | tail -n 2
	recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
	result "ping=${recv:-0}/$count"
	[ "${recv:-0}" = "$count" ]
	;;
bench)
	secs=${VNET_SECS:-5}
	# The iperf3 server in L1 may take a moment after the link comes up.
	ping -c 1 -W 5 "$peer" >/dev/null 2>&1
	tcp=$(iperf3 -c "$peer" -t "$secs" -f m 2>&1)
	echo "$tcp" | tail -n 4
	mbps=$(echo "$tcp" | awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { print v }')
	udp=$(iperf3 -c "$peer" -u -b 0 -l 64 -t "$secs" -f m 2>&1)
	echo "$udp" | tail -n 4
	# receiver line: ... Lost/Total Datagrams as "L/T (p%)"; pps = (T - L) / secs
	pps=$(echo "$udp" | awk -v s="$secs" '/receiver/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, a, "/"); v = int((a[2] - a[1]) / s) } } END { print v }')
	result "tcp_mbps=${mbps:-none}"
	result "udp_pps=${pps:-none}"
	[ -n "$mbps" ] && [ -n "$pps" ]
	;;
*)
	result "unknown vnet.job=$VNET_JOB"
	exit 2
	;;
esac
