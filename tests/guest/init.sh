#!/bin/sh
# /init of the vnet test guest (busybox). Installed by build-guest.sh.
#
# Kernel command line parameters (read from /proc/cmdline; every vnet.KEY=VAL
# is also exported to the test as VNET_KEY, upper-cased):
#   vnet.ip=ADDR/LEN     address for the NIC (default none: link only)
#   vnet.dev=NAME        NIC to configure (default eth0)
#   vnet.mtu=N           MTU for the NIC
#   vnet.gw=ADDR         default route via ADDR
#   vnet.peer=ADDR       only exported (VNET_PEER) for the test's use
#   vnet.cmd=BASE64      test script, base64 (used when there is no /test.sh)
#   vnet.timeout=SECS    kill the test after SECS (default 600, 0 = never)
#   vnet.lab=1           also load kvm/vhost/tap/tun modules ("lab VM")
#   vnet.modules=a,b     extra modules from /lib/modules to load, in order
#   vnet.shell=1         open a console shell instead of powering off (debug)
#   vnet.exit=port       end by writing the test's rc to I/O port 0x501 (the
#                        debug-exit port of vnet-vmm and QEMU's isa-debug-exit)
#                        with /bin/vnet-outb if present (the lab adds it:
#                        Debian's kernels lack /dev/port), else /dev/port;
#                        then reboot (reboot=k: i8042 reset) if still alive.
#                        Without ACPI a Linux poweroff only halts the CPU.
# A test script can also be added as /test.sh by appending a second cpio
# archive to the initramfs (see tests/lib/qemu.sh: vnet_guest_initrd).
#
# Console markers (each on its own line):
#   VNET-BOOT kernel=... uptime=...
#   VNET-MOD name ok|failed|absent|builtin
#   VNET-NET dev=... ip=... mac=... | VNET-NET-ERROR ...
#   VNET-TEST start
#   VNET-RESULT: text    (printed by the test through `result text`)
#   VNET-DONE rc=N       (exit status of the test; 124/137 on timeout)
#   VNET-POWEROFF | VNET-EXIT port rc=N

export PATH=/sbin:/bin:/usr/sbin:/usr/bin
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1

read -r up _ </proc/uptime
echo "VNET-BOOT kernel=$(uname -r) uptime=$up"

# --- command line -------------------------------------------------------------
VNET_DEV=eth0
VNET_TIMEOUT=600
for arg in $(cat /proc/cmdline); do
	case $arg in
	vnet.*=*)
		key=${arg%%=*}
		key=${key#vnet.}
		case $key in
		*[!a-zA-Z0-9_]* | '') continue ;;
		esac
		key=$(echo "$key" | tr a-z A-Z)
		eval "VNET_$key=\${arg#*=}"
		export "VNET_$key"
		;;
	esac
done
export VNET_DEV VNET_TIMEOUT

# --- modules ------------------------------------------------------------------
load_mod() {
	m=$1
	if [ -d "/sys/module/$(echo "$m" | tr - _)" ]; then
		echo "VNET-MOD $m builtin"
	elif [ ! -f "/lib/modules/$m.ko" ]; then
		echo "VNET-MOD $m absent"
	elif insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err; then
		echo "VNET-MOD $m ok"
	else
		echo "VNET-MOD $m failed: $(cat /tmp/insmod.err)"
	fi
}

for m in failover net_failover virtio_ring virtio virtio_pci_modern_dev \
	virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_net; do
	load_mod "$m"
done
if [ "${VNET_LAB:-0}" = 1 ]; then
	kvm_vendor=
	grep -qw svm /proc/cpuinfo && kvm_vendor=kvm-amd
	grep -qw vmx /proc/cpuinfo && kvm_vendor=kvm-intel
	for m in irqbypass kvm $kvm_vendor vhost_iotlb vhost tap tun vhost_net; do
		load_mod "$m"
	done
fi
for m in $(echo "${VNET_MODULES:-}" | tr , ' '); do
	load_mod "$m"
done

# --- network ------------------------------------------------------------------
ip link set lo up
if [ -n "${VNET_IP:-}" ] || [ -n "${VNET_MTU:-}" ]; then
	i=0
	while [ ! -e "/sys/class/net/$VNET_DEV" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ ! -e "/sys/class/net/$VNET_DEV" ]; then
		echo "VNET-NET-ERROR no device $VNET_DEV (have: $(ls /sys/class/net | tr '\n' ' '))"
	else
		[ -n "${VNET_MTU:-}" ] && ip link set "$VNET_DEV" mtu "$VNET_MTU"
		[ -n "${VNET_IP:-}" ] && ip addr add "$VNET_IP" dev "$VNET_DEV"
		ip link set "$VNET_DEV" up
		[ -n "${VNET_GW:-}" ] && ip route add default via "$VNET_GW"
		echo "VNET-NET dev=$VNET_DEV ip=${VNET_IP:-none} mac=$(cat "/sys/class/net/$VNET_DEV/address")"
	fi
fi

# --- test ---------------------------------------------------------------------
cat >/lib/vnet.sh <<'EOF'
# Helpers for guest test scripts (sourced before the test).
result() { echo "VNET-RESULT: $*"; }
vnet_result() { result "$@"; }
EOF

test=
if [ -f /test.sh ]; then
	test=/test.sh
elif [ -n "${VNET_CMD:-}" ]; then
	if echo "$VNET_CMD" | base64 -d >/tmp/cmd.sh 2>/dev/null; then
		test=/tmp/cmd.sh
	else
		echo "VNET-TEST error: vnet.cmd is not valid base64"
	fi
fi

rc=0
if [ -n "$test" ]; then
	echo "VNET-TEST start $test"
	if [ "$VNET_TIMEOUT" -gt 0 ] 2>/dev/null; then
		timeout -s KILL "$VNET_TIMEOUT" sh -c '. /lib/vnet.sh; . "$0"' "$test"
	else
		sh -c '. /lib/vnet.sh; . "$0"' "$test"
	fi
	rc=$?
else
	echo "VNET-TEST none"
fi
read -r up _ </proc/uptime
echo "VNET-DONE rc=$rc uptime=$up"

if [ "${VNET_SHELL:-0}" = 1 ]; then
	echo "VNET-SHELL (exit to power off)"
	setsid cttyhack sh
fi

if [ "${VNET_EXIT:-}" = port ]; then
	echo "VNET-EXIT port rc=$rc"
	sync
	if [ -x /bin/vnet-outb ]; then
		/bin/vnet-outb 0x501 $((rc & 255))
	else
		# The byte written is the exit status: octal escape for printf.
		# shellcheck disable=SC2059
		printf "\\$(printf %o $((rc & 255)))" |
			dd of=/dev/port bs=1 seek=1281 count=1 conv=notrunc
	fi
	sleep 1
	echo "VNET-EXIT port 0x501 did not end the VM, rebooting"
	reboot -f
	sleep 5
fi

echo "VNET-POWEROFF"
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 5
# Falling off /init panics the kernel; with panic=-1 and QEMU -no-reboot
# that still ends QEMU.
exit "$rc"
