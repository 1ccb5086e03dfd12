# shellcheck shell=bash
# Helpers to boot the vnet test guest (tests/guest) under QEMU and read its
# serial console.  Source it from bash:  . "$repo/tests/lib/qemu.sh"
#
#   vnet_guest_ensure                 build/refresh the cached guest (quiet unless it builds)
#   vnet_guest_initrd SCRIPT OUT [BASE]   OUT = BASE (default: the guest initramfs) + SCRIPT as /test.sh
#   vnet_qemu_start LOG [opts...]     boot in the background; sets VNET_QEMU_PID
#   vnet_qemu_wait_marker LOG REGEX [TIMEOUT]   0 found, 1 timeout, 2 QEMU gone
#   vnet_qemu_wait_exit [TIMEOUT]     wait for VNET_QEMU_PID, kill it after TIMEOUT
#   vnet_qemu_stop                    kill VNET_QEMU_PID (if still running)
#   vnet_qemu_results LOG             the VNET-RESULT texts, one per line
#   vnet_qemu_rc LOG                  the rc of VNET-DONE (empty if none)
#   vnet_qemu_run LOG [opts...]       start + wait for exit (VNET_QEMU_TIMEOUT, default 120 s)
#                                     returns the guest test's rc, or 125 if no VNET-DONE
#
# vnet_qemu_start options:
#   --script FILE        test script run in the guest as /test.sh
#   --cmd 'SHELL'        short test script, passed base64 on the kernel cmdline
#   --ip ADDR/LEN        guest eth0 address (vnet.ip=)
#   --append 'k=v ...'   more kernel parameters (e.g. vnet.peer=..., vnet.timeout=...)
#   --mem MB             guest memory (default 256)
#   --initrd FILE        boot FILE instead of the guest initramfs (e.g. the lab VM's)
#   --vhost-user SOCK    vhost-user NIC; QEMU connects (client) to a backend's socket
#   --vhost-user-server SOCK   vhost-user NIC; QEMU listens (backend connects, client=1)
#   --tap IFNAME         tap NIC (needs root and /dev/net/tun; QEMU creates the tap)
#   --mac MAC            MAC of the next NIC (default 52:54:00:12:34:NN)
#   --netns NS           run QEMU inside network namespace NS (ip netns exec)
#   --qemu-arg ARG       extra raw QEMU argument (repeatable)
# Every NIC is virtio-net-pci with vectors=0 (MSI-X crashes QEMU 7.2 under TCG).
# With any vhost-user NIC the guest RAM is a shared memfd (required).
# Environment: VNET_QEMU (binary), VNET_QEMU_ACCEL (default tcg: /dev/kvm here
# exists but does not work), VNET_QEMU_CPU (default max), VNET_GUEST_DIR.
#
# Guest traffic on vhost-user/tap links stays inside this machine: use any
# addresses on those private links, but never route them to the host network.

_vnet_qemu_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VNET_GUEST_DIR=${VNET_GUEST_DIR:-${VNET_CACHE:-/var/cache/vnet}/guest}
VNET_QEMU=${VNET_QEMU:-qemu-system-x86_64}
VNET_QEMU_PID=

vnet_guest_ensure() {
	local out
	if ! out=$("$_vnet_qemu_repo/tests/guest/build-guest.sh" "$VNET_GUEST_DIR" 2>&1); then
		echo "$out" >&2
		return 1
	fi
	# Show the build steps only when something was built.
	grep -q 'up to date' <<<"$out" || echo "$out" >&2
	return 0
}

# vnet_guest_initrd SCRIPT OUT [BASE]: BASE (default the guest initramfs) with
# SCRIPT appended as /test.sh (the kernel unpacks concatenated compressed cpio
# archives in order).
vnet_guest_initrd() {
	local script=$1 out=$2 base=${3:-$VNET_GUEST_DIR/initramfs.cpio.gz} d
	d=$(mktemp -d) || return 1
	install -m 755 "$script" "$d/test.sh"
	{
		cat "$base"
		(cd "$d" && echo test.sh | cpio -o -H newc --owner 0:0 --quiet | gzip -n)
	} >"$out"
	local rc=$?
	rm -rf "$d"
	return $rc
}

vnet_qemu_start() {
	local log=$1
	shift
	local mem=256 script= cmd= ip= append= netns= mac= nic=0 shared=0
	local initrd=$VNET_GUEST_DIR/initramfs.cpio.gz
	local -a nics=() extra=()
	while (($#)); do
		case $1 in
		--script) script=$2; shift ;;
		--cmd) cmd=$2; shift ;;
		--ip) ip=$2; shift ;;
		--append) append+=" $2"; shift ;;
		--mem) mem=$2; shift ;;
		--initrd) initrd=$2; shift ;;
		--mac) mac=$2; shift ;;
		--netns) netns=$2; shift ;;
		--qemu-arg) extra+=("$2"); shift ;;
		--vhost-user | --vhost-user-server)
			local srv=
			[[ $1 == --vhost-user-server ]] && srv=",server=on,wait=off"
			nics+=(-chardev "socket,id=chr$nic,path=$2$srv"
				-netdev "vhost-user,id=net$nic,chardev=chr$nic"
				-device "virtio-net-pci,netdev=net$nic,mac=${mac:-52:54:00:12:34:$(printf %02x $((nic + 1)))},vectors=0")
			shared=1 nic=$((nic + 1)) mac=
			shift
			;;
		--tap)
			nics+=(-netdev "tap,id=net$nic,ifname=$2,script=no,downscript=no"
				-device "virtio-net-pci,netdev=net$nic,mac=${mac:-52:54:00:12:34:$(printf %02x $((nic + 1)))},vectors=0")
			nic=$((nic + 1)) mac=
			shift
			;;
		*)
			echo "vnet_qemu_start: unknown option $1" >&2
			return 2
			;;
		esac
		shift
	done

	if [[ -n $script ]]; then
		vnet_guest_initrd "$script" "$log.initrd" "$initrd" || return 1
		initrd=$log.initrd
	fi
	local kargs="console=ttyS0 panic=-1 quiet"
	[[ -n $ip ]] && kargs+=" vnet.ip=$ip"
	[[ -n $cmd ]] && kargs+=" vnet.cmd=$(printf '%s\n' "$cmd" | base64 -w0)"
	kargs+=$append
	if ((${#kargs} > 2000)); then
		echo "vnet_qemu_start: kernel command line too long (${#kargs}); use --script" >&2
		return 2
	fi

	local -a memargs=(-m "$mem")
	((shared)) && memargs+=(-object "memory-backend-memfd,id=mem,size=${mem}M,share=on"
		-numa node,memdev=mem)
	local accel=${VNET_QEMU_ACCEL:-tcg} cpu=${VNET_QEMU_CPU:-max}
	local -a pre=()
	[[ -n $netns ]] && pre=(ip netns exec "$netns")

	: >"$log"
	"${pre[@]}" "$VNET_QEMU" -accel "$accel" -cpu "$cpu" -nodefaults -no-user-config \
		-display none -no-reboot "${memargs[@]}" \
		-serial "file:$log" -kernel "$VNET_GUEST_DIR/vmlinuz" -initrd "$initrd" \
		-append "$kargs" "${nics[@]}" "${extra[@]}" \
		</dev/null >"$log.qemu" 2>&1 &
	VNET_QEMU_PID=$!
}

vnet_qemu_wait_marker() {
	local log=$1 re=$2 timeout=${3:-60}
	local end=$((SECONDS + timeout))
	while ((SECONDS < end)); do
		grep -qE "$re" "$log" 2>/dev/null && return 0
		if [[ -n $VNET_QEMU_PID ]] && ! kill -0 "$VNET_QEMU_PID" 2>/dev/null; then
			grep -qE "$re" "$log" 2>/dev/null && return 0
			return 2
		fi
		sleep 0.1
	done
	return 1
}

vnet_qemu_wait_exit() {
	local timeout=${1:-120} end
	[[ -n $VNET_QEMU_PID ]] || return 0
	end=$((SECONDS + timeout))
	while kill -0 "$VNET_QEMU_PID" 2>/dev/null; do
		if ((SECONDS >= end)); then
			echo "vnet_qemu_wait_exit: QEMU $VNET_QEMU_PID still running after ${timeout}s, killing" >&2
			vnet_qemu_stop
			return 1
		fi
		sleep 0.1
	done
	wait "$VNET_QEMU_PID" 2>/dev/null
	local rc=$?
	VNET_QEMU_PID=
	return $rc
}

vnet_qemu_stop() {
	[[ -n $VNET_QEMU_PID ]] || return 0
	kill "$VNET_QEMU_PID" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$VNET_QEMU_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill -9 "$VNET_QEMU_PID" 2>/dev/null
	wait "$VNET_QEMU_PID" 2>/dev/null
	VNET_QEMU_PID=
	return 0
}

vnet_qemu_results() {
	tr -d '\r' <"$1" | sed -n 's/^.*VNET-RESULT: //p'
}

vnet_qemu_rc() {
	tr -d '\r' <"$1" | sed -n 's/^.*VNET-DONE rc=\([0-9]*\).*/\1/p' | tail -n1
}

vnet_qemu_run() {
	local log=$1
	vnet_qemu_start "$@" || return 125
	vnet_qemu_wait_exit "${VNET_QEMU_TIMEOUT:-120}"
	local rc
	rc=$(vnet_qemu_rc "$log")
	[[ -n $rc ]] || return 125
	return "$rc"
}
