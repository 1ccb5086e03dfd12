# shellcheck shell=sh
# Test run inside the lab VM (L1), as /test.sh of its initramfs (built by
# tests/lab/build-lab.sh; tests/guest/init.sh sources it after loading the
# kvm, vhost, tun and vhost_net modules for vnet.lab=1). For each mode it
# boots the nested guest (L2: the same kernel, /lab/l2.cpio.gz whose test is
# tests/lab/lab-l2.sh) under vnet-vmm, or QEMU as a stand-in, with its NIC on
# a tap that holds 10.0.2.1/24 in L1:
#   emulated    --net mode=emulated,tap=vtap0
#   vhost-net   --net mode=vhost-net,tap=vtap0
#   vhost-user  --net mode=vhost-user,socket=... of a vnet-switchd port whose
#               bridge also has the tap vtap0 (the switch owns the tap)
# and prints one line per run (definitions in tests/lab/README.md):
#   LAB-RESULT mode=M run=N <L2 results, e.g. ping=5/5> boot_ms=B rc=R rss_kb=K ...
# (a run whose nested guest reset before its /init is made once more; the
# first try is printed as LAB-ATTEMPT with the same fields)
# L2's console follows, prefixed "L2 M|". The L1 test's rc is the number of
# failed runs (a run passes with rc=0 from the VMM and L2's test passing).
#
# Parameters (L1 kernel command line, see tests/guest/init.sh):
#   vnet.modes=a,b,c   modes to run (default emulated,vhost-net,vhost-user)
#   vnet.job=ping|bench  L2's job (lab-l2.sh); bench also starts iperf3 -s here
#   vnet.runs=N        runs per mode (default 1)
#   vnet.budget=SECS   per run, then the VMM is killed (default 90)
#   vnet.l2mem=MB      nested guest RAM (default 256)
#   vnet.l2quiet=0     full L2 kernel log on the console (default quiet)
#   vnet.l2extra=a,b   more L2 kernel arguments (commas become spaces)
#   vnet.secs=N        passed to L2 (iperf3 duration)
# Single-threaded shell; the VMM and vnet-switchd run as its children.

LAB=/lab
kind=$(cat "$LAB/vmm-kind" 2>/dev/null || echo vnet-vmm)
modes=$(echo "${VNET_MODES:-emulated,vhost-net,vhost-user}" | tr , ' ')
job=${VNET_JOB:-ping}
runs=${VNET_RUNS:-1}
budget=${VNET_BUDGET:-90}
l2mem=${VNET_L2MEM:-256}
tap=vtap0
l1ip=10.0.2.1
l2ip=10.0.2.2
swdir=/run/vnet-lab-sw
cr=$(printf '\r')
sw_pid=

now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# --- the L1 side of the link ------------------------------------------------
tap_addr() {
	ip addr add "$l1ip/24" dev "$tap" && ip link set "$tap" up
}

sw_start() {
	rm -rf "$swdir"
	mkdir -p "$swdir"
	export VNET_CTL_SOCKET="$swdir/vnet-switchd.ctl"
	# PMD on the last CPU, away from the nested guest's vCPU thread when
	# there are two (it sleeps when idle anyway).
	vnet-switchd --foreground --run-dir "$swdir" --state-dir "$swdir" \
		--pmd-cpus $(($(nproc) - 1)) </dev/null >"$swdir/switchd.log" 2>&1 &
	sw_pid=$!
	i=0
	while [ ! -S "$VNET_CTL_SOCKET" ] && [ $i -lt 100 ]; do
		kill -0 "$sw_pid" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	if vnetctl add-br br0 && vnetctl add-port br0 tap0 type=tap name="$tap" &&
		vnetctl add-port br0 vm1 type=vhost-user; then
		i=0
		while [ ! -S "$swdir/vm1.sock" ] && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		[ -S "$swdir/vm1.sock" ] && tap_addr && return 0
	fi
	echo "L1 vhost-user: vnet-switchd setup failed"
	sed 's/^/L1 switchd| /' "$swdir/switchd.log"
	return 1
}

sw_stop() {
	[ -n "$sw_pid" ] || return 0
	kill "$sw_pid" 2>/dev/null
	i=0
	while kill -0 "$sw_pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$sw_pid" 2>/dev/null
	wait "$sw_pid" 2>/dev/null
	sw_pid=
}

# net_setup MODE: the tap (and the switch), sets netspec for vnet-vmm --net
net_setup() {
	case $1 in
	emulated | vhost-net)
		tunctl -t "$tap" >/dev/null && tap_addr || return 1
		netspec="mode=$1,tap=$tap"
		;;
	vhost-user)
		sw_start || return 1
		netspec="mode=vhost-user,socket=$swdir/vm1.sock"
		;;
	*)
		echo "L1: unknown mode $1"
		return 1
		;;
	esac
}

net_teardown() {
	if [ -n "$sw_pid" ]; then
		echo "L1 switch ports:"
		vnetctl port-stats 2>&1 | sed 's/^/L1 switch| /'
	fi
	sw_stop
	[ -e "/sys/class/net/$tap" ] && tunctl -d "$tap" >/dev/null 2>&1
	return 0
}

# --- one nested boot ----------------------------------------------------------
# sample_rss PID: keeps the largest "VmRSS - guest RAM" seen: the VMM's
# resident memory beyond the guest's, where guest RAM is the resident part of
# its memfd mappings (smaps "/memfd:..."; both vnet-vmm and the QEMU stand-in
# back guest RAM with a memfd). RssShmem would not do: the binaries live on
# the initramfs' tmpfs, so their text is shmem too. One read of smaps gives
# both sums; a sample without guest RAM (the VMM exiting) is dropped.
sample_rss() {
	# VmHWM first: the VMM may exit right after L2's last line.
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	# shellcheck disable=SC2046 # word splitting wanted
	set -- $(awk '/^[0-9a-f]+-[0-9a-f]+ / { memfd = ($0 ~ /\/memfd:/) }
		/^Rss:/ { t += $2; if (memfd) g += $2 }
		/^Anonymous:/ { a += $2 }
		END { print t + 0, g + 0, a + 0 }' "/proc/$1/smaps" 2>/dev/null)
	[ $# = 3 ] && [ "$2" -gt 0 ] || return 0
	if [ -z "$rss" ] || [ $(($1 - $2)) -gt "$rss" ]; then
		rss=$(($1 - $2)) rss_guest=$2 rss_anon=$3
		rss_hwm=$hwm
	fi
}

# run_vmm MODE RUN: boots L2, prints its console, sets result_line (what
# follows "LAB-RESULT "); returns 0 when the run passed.
run_vmm() {
	mode=$1 run=$2
	cmdline="console=ttyS0 reboot=k panic=-1 pci=conf1 vnet.ip=$l2ip/24 vnet.peer=$l1ip"
	cmdline="$cmdline vnet.exit=port vnet.job=$job vnet.timeout=$((budget - 10))"
	[ "${VNET_L2QUIET:-1}" = 1 ] && cmdline="$cmdline quiet"
	[ -n "${VNET_SECS:-}" ] && cmdline="$cmdline vnet.secs=$VNET_SECS"
	[ -n "${VNET_L2EXTRA:-}" ] && cmdline="$cmdline $(echo "$VNET_L2EXTRA" | tr , ' ')"
	if [ "$kind" = qemu ]; then
		# The stand-in: isa-debug-exit ends QEMU with (byte << 1) | 1.
		# vapic=false: the TPR-patching vapic syncs the vCPU registers, and
		# KVM_GET_SREGS marks TR busy; TCG's SVM then refuses every user
		# I/O-bitmap access (#GP), and L2's outb to 0x501 would segfault.
		set -- qemu-system-x86_64 -accel kvm -cpu host -nodefaults -no-user-config \
			-display none -no-reboot -m "$l2mem" \
			-object "memory-backend-memfd,id=mem,size=${l2mem}M,share=on" -numa node,memdev=mem \
			-serial stdio -kernel "$LAB/vmlinuz" -initrd "$LAB/l2.cpio.gz" -append "$cmdline" \
			-device isa-debug-exit,iobase=0x501,iosize=1 -global kvm-apic.vapic=false
		case $mode in
		emulated) set -- "$@" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=off" ;;
		vhost-net) set -- "$@" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=on" ;;
		vhost-user) set -- "$@" -chardev "socket,id=c0,path=$swdir/vm1.sock" \
			-netdev vhost-user,id=n0,chardev=c0 ;;
		esac
		set -- "$@" -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0,romfile=
	else
		# info: a guest reset or a back-end event is on the console too
		set -- vnet-vmm --kernel "$LAB/vmlinuz" --initrd "$LAB/l2.cpio.gz" --mem "${l2mem}M" \
			--cmdline "$cmdline" --net "$netspec" --log-level info
	fi
	echo "L1 $mode: $*"

	rm -f /tmp/l2.fifo
	mkfifo /tmp/l2.fifo
	boot_ms='' rss='' rss_guest='' rss_anon='' rss_hwm='' results='' l2_rc=''
	t0=$(now_ms)
	"$@" </dev/null >/tmp/l2.fifo 2>&1 &
	pid=$!
	(
		sleep "$budget"
		echo "L1 $mode: budget of ${budget}s over, killing the VMM"
		kill "$pid"
		sleep 2
		kill -9 "$pid"
	) 2>/dev/null &
	watchdog=$!
	while IFS= read -r line; do
		line=${line%"$cr"}
		case $line in
		*VNET-BOOT*) [ -n "$boot_ms" ] || boot_ms=$(($(now_ms) - t0)) ;;
		*VNET-RESULT:*)
			results="$results ${line#*VNET-RESULT: }"
			sample_rss "$pid"
			;;
		*VNET-DONE*)
			l2_rc=${line#*VNET-DONE rc=}
			l2_rc=${l2_rc%% *}
			sample_rss "$pid"
			;;
		esac
		echo "L2 $mode| $line"
	done </tmp/l2.fifo
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	raw_rc=$rc
	# QEMU's debug-exit code is odd; a reset (reboot) with -no-reboot is 0.
	[ "$kind" = qemu ] && [ $((rc & 1)) = 1 ] && rc=$((rc >> 1))

	result_line="mode=$mode run=$run$results boot_ms=${boot_ms:-none} rc=$rc rss_kb=${rss:-none}"
	result_line="$result_line l2_rc=${l2_rc:-none} guest_kb=${rss_guest:-none} anon_kb=${rss_anon:-none}"
	result_line="$result_line hwm_kb=${rss_hwm:-none} vmm=$kind raw_rc=$raw_rc"
	[ "$rc" = 0 ] || return 1
	if [ "$job" = ping ]; then
		case " $results " in *" ping=5/5 "*) ;; *) return 1 ;; esac
	fi
	return 0
}

tap_stats() {
	st=/sys/class/net/$tap/statistics
	[ -d "$st" ] || { echo "L1 tap| no $tap"; return 0; }
	echo "L1 tap| $tap $(cat "/sys/class/net/$tap/operstate"): rx $(cat "$st/rx_packets") (dropped" \
		"$(cat "$st/rx_dropped")), tx $(cat "$st/tx_packets") (dropped $(cat "$st/tx_dropped"))"
}

# --- main -----------------------------------------------------------------------
echo "L1 lab: vmm=$kind modes=$modes job=$job runs=$runs budget=${budget}s cpus=$(nproc)" \
	"kvm=$([ -c /dev/kvm ] && echo yes || echo no) vhost-net=$([ -c /dev/vhost-net ] && echo yes || echo no)" \
	"tun=$([ -c /dev/net/tun ] && echo yes || echo no)"
iperf_pid=
if [ "$job" = bench ]; then
	iperf3 -s >/tmp/iperf3-s.log 2>&1 &
	iperf_pid=$!
fi

failed=0
for mode in $modes; do
	r=1
	while [ "$r" -le "$runs" ]; do
		if net_setup "$mode"; then
			# A nested guest that resets before its /init (no VNET-BOOT, VMM
			# exit 0) never reached the NIC: nested SVM under TCG does this
			# now and then (seen only in vhost-user mode of ASan builds). The
			# attempt is printed as LAB-ATTEMPT and the run is made once more.
			run_vmm "$mode" "$r"
			ok=$?
			if [ "$ok" != 0 ] && [ -z "$boot_ms" ] && [ "$rc" = 0 ]; then
				echo "LAB-ATTEMPT $result_line"
				echo "L1 $mode: run $r: the nested guest reset before /init; once more"
				net_teardown
				if net_setup "$mode"; then
					run_vmm "$mode" "$r"
					ok=$?
				fi
			fi
			echo "LAB-RESULT $result_line"
			[ "$ok" = 0 ] || {
				failed=$((failed + 1))
				echo "L1 $mode: run $r failed; L1 kernel log (tail):"
				dmesg | tail -n 15 | sed 's/^/L1 dmesg| /'
				tap_stats
			}
		else
			failed=$((failed + 1))
			echo "LAB-RESULT mode=$mode run=$r setup=failed rc=none"
		fi
		net_teardown
		r=$((r + 1))
	done
done
[ -n "$iperf_pid" ] && kill "$iperf_pid" 2>/dev/null
result "lab failed=$failed"
exit "$failed"
