#!/usr/bin/env bash
# `make demo`: vnet-switchd joining two QEMU guests (vhost-user) and a tap in
# a network namespace on one bridge; everyone pings everyone; then a third VM
# run by vnet-vmm joins the bridge (the freestanding test guest: this host's
# KVM cannot boot Linux, see below); then the switch's view: vnetctl show,
# fdb-show, port-stats.  Under 2 minutes.
#
# Linux under vnet-vmm: with DEMO_LAB=1 the demo ends by booting the lab VM
# (tests/lab: QEMU TCG with nested KVM) in which vnet-vmm boots Linux once per
# data-plane mode, each nested guest pinging the lab VM's tap (about 1 min).
#
# Needs root (tap, netns) and the packages of scripts/install-deps.sh (make
# demo installs them and builds build/ first).  Everything it creates lives
# in a temporary directory and a private namespace and is removed on exit.
# Environment: BUILD (build dir, default build), SWITCHD, VNETCTL, VMM,
# TINY_GUEST, DEMO_LAB=1.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$repo/$BUILD
SWITCHD=${SWITCHD:-$BUILD/src/switch/vnet-switchd}
VNETCTL=${VNETCTL:-$BUILD/src/tools/vnetctl}
VMM=${VMM:-$BUILD/src/vmm/vnet-vmm}
TINY_GUEST=${TINY_GUEST:-$BUILD/tests/guest-tiny/tiny-guest.elf}
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"
. "$repo/tests/integration/lib_switch.sh"

B='' G='' R='' N=''
if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
run() { # show a command (vnetctl_ as vnetctl), then run it
	local shown="$*"
	shown=${shown/#vnetctl_ /vnetctl }
	printf '%s$ %s%s\n' "$B" "$shown" "$N"
	"$@"
}
die() {
	printf '\n%sdemo failed: %s%s\n' "$R" "$*" "$N" >&2
	if [[ -n ${SW_DIR:-} && -f $SW_DIR/switchd.log ]]; then
		echo "--- vnet-switchd log (tail) ---" >&2
		tail -n 20 "$SW_DIR/switchd.log" >&2
	fi
	exit 1
}

((EUID == 0)) || die "needs root (tap devices, network namespaces); try: sudo make demo"
for b in "$SWITCHD" "$VNETCTL"; do
	[[ -x $b ]] || die "$b not built (run make first)"
done
[[ -e /dev/net/tun ]] || die "no /dev/net/tun"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"

t0=$SECONDS
work=$(mktemp -d /tmp/vnet-demo.XXXXXX) || die "mktemp failed"
chmod 755 "$work"
ns=vnet-demo-$$ tapif=vdemo$$
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	sw_stop >/dev/null 2>&1
	ip netns del "$ns" 2>/dev/null
	ip link del "$tapif" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Test guest: Debian cloud kernel + busybox initramfs (tests/guest, cached in $VNET_GUEST_DIR)"
vnet_guest_ensure || die "guest build failed (tests/guest/build-guest.sh)"

step "Start vnet-switchd in $work (control socket, state file and vhost-user sockets there)"
run "$VNETCTL" --version
echo "\$ vnet-switchd --foreground --run-dir $work/sw --state-dir $work/sw --pmd-cpus 1 &"
sw_start "$work/sw" --log-level info || die "vnet-switchd did not start"
echo "pid $SW_PID, VNET_CTL_SOCKET=$VNET_CTL_SOCKET"

step "Bridge br0: two vhost-user ports for the VMs, one tap"
run vnetctl_ add-br br0 || die "add-br"
run vnetctl_ add-port br0 vm1 type=vhost-user || die "add-port vm1"
run vnetctl_ add-port br0 vm2 type=vhost-user || die "add-port vm2"
run vnetctl_ add-port br0 vm3 type=vhost-user || die "add-port vm3"
run vnetctl_ add-port br0 tap0 type=tap name="$tapif" || die "add-port tap0"
wait_for_sock "$work/sw/vm1.sock" 5 && wait_for_sock "$work/sw/vm2.sock" 5 || die "no vhost-user sockets"

step "Move the tap into network namespace $ns as 10.0.0.3/24"
run ip netns add "$ns" || die "ip netns add"
run ip link set "$tapif" netns "$ns" || die "moving the tap"
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
run ip netns exec "$ns" ip addr add 10.0.0.3/24 dev "$tapif" || die "tap address"
run ip netns exec "$ns" ip link set "$tapif" up || die "tap up"

# The guests ping the other guest and the tap, print the replies, then wait
# for the host to ping them.
cat >"$work/guest.sh" <<'EOF'
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
for t in $(echo "$VNET_PINGS" | tr , ' '); do
	i=0
	while ! ping -c 1 -W 1 "$t" >/dev/null 2>&1 && [ $i -lt 40 ]; do i=$((i + 1)); done
	ping -c 3 -W 2 "$t" >/tmp/p 2>&1
	while read -r l; do [ -n "$l" ] && result "$l"; done </tmp/p
done
result "done"
sleep 60
EOF

step "Boot two guests under QEMU (TCG): vm1 10.0.0.1, vm2 10.0.0.2, each a virtio-net NIC on a vhost-user port"
echo "\$ qemu-system-x86_64 -accel tcg -m 256 -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \\"
echo "    -chardev socket,id=chr0,path=$work/sw/vm1.sock -netdev vhost-user,id=net0,chardev=chr0 \\"
echo "    -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,vectors=0 -kernel ... -initrd ...   (and the same for vm2)"
declare -A con=()
i=0
for g in vm1 vm2; do
	i=$((i + 1))
	peer=$((3 - i))
	con[$g]=$work/$g.console
	vnet_qemu_start "${con[$g]}" --script "$work/guest.sh" --ip "10.0.0.$i/24" \
		--append "vnet.pings=10.0.0.$peer,10.0.0.3 vnet.timeout=100" \
		--mac "52:54:00:00:00:0$i" --vhost-user "$work/sw/$g.sock" || die "QEMU for $g did not start"
	pids+=("$VNET_QEMU_PID")
	VNET_QEMU_PID=
done
for g in vm1 vm2; do
	VNET_QEMU_PID=${pids[0]}
	[[ $g == vm2 ]] && VNET_QEMU_PID=${pids[1]}
	vnet_qemu_wait_marker "${con[$g]}" 'VNET-NET ' 60 || die "$g did not boot (see ${con[$g]})"
	echo "$g: $(tr -d '\r' <"${con[$g]}" | grep -m1 'VNET-NET ')"
done
VNET_QEMU_PID=

step "Ping from the tap's namespace to both guests"
fail=0
for ip in 10.0.0.1 10.0.0.2; do
	end=$((SECONDS + 30))
	while ((SECONDS < end)) && ! ip netns exec "$ns" /bin/busybox ping -c 1 -W 1 "$ip" >/dev/null 2>&1; do sleep 0.2; done
	echo "\$ ip netns exec $ns ping -c 3 $ip"
	out=$(ip netns exec "$ns" /bin/busybox ping -c 3 -W 2 "$ip" 2>&1)
	echo "$out"
	grep -q '3 packets received' <<<"$out" || fail=1
done

step "Pings from inside the guests (to the other guest and to the tap)"
for g in vm1 vm2; do
	VNET_QEMU_PID=${pids[0]}
	[[ $g == vm2 ]] && VNET_QEMU_PID=${pids[1]}
	vnet_qemu_wait_marker "${con[$g]}" 'VNET-RESULT: done' 60 || fail=1
	echo "--- $g ---"
	vnet_qemu_results "${con[$g]}" | grep -v '^done$'
	n=$(vnet_qemu_results "${con[$g]}" | grep -c ' 3 packets received')
	((n == 2)) || fail=1
done
VNET_QEMU_PID=

step "A third VM, run by vnet-vmm: the freestanding test guest (tests/guest-tiny) as 10.0.0.4 on port vm3"
# /dev/kvm here is a software KVM that runs small guests but cannot boot
# Linux; the test guest drives the same virtio-net device (over virtio-mmio)
# by itself and answers ARP and ping.
if [[ -x $VMM && -f $TINY_GUEST && -r /dev/kvm ]]; then
	vmmcmd=("$VMM" --kernel "$TINY_GUEST" --mem 64M
		--cmdline "tiny.ip=10.0.0.4 tiny.dst=10.0.0.3 tiny.tx=3 tiny.pings=3 tiny.wait=60"
		--net "mode=vhost-user,socket=$work/sw/vm3.sock,transport=mmio,mac=52:54:00:00:00:04")
	echo "\$ ${vmmcmd[*]}"
	"${vmmcmd[@]}" >"$work/vm3.console" 2>"$work/vm3.err" &
	vmm_pid=$!
	pids+=("$vmm_pid")
	for _ in $(seq 100); do grep -q TINY-SENT "$work/vm3.console" 2>/dev/null && break; sleep 0.1; done
	echo "\$ ip netns exec $ns ping -c 3 10.0.0.4"
	out=$(ip netns exec "$ns" /bin/busybox ping -c 3 -W 2 10.0.0.4 2>&1)
	echo "$out"
	grep -q '3 packets received' <<<"$out" || fail=1
	for _ in $(seq 50); do kill -0 "$vmm_pid" 2>/dev/null || break; sleep 0.1; done
	wait "$vmm_pid" 2>/dev/null
	vmm_rc=$?
	echo "--- vm3 console (vnet-vmm exit status $vmm_rc) ---"
	tr -d '\r' <"$work/vm3.console"
	((vmm_rc == 0)) || fail=1
else
	echo "skipped: needs $VMM, $TINY_GUEST and /dev/kvm"
fi

step "The switch's view"
run vnetctl_ show
echo
run vnetctl_ fdb-show br0
echo
run vnetctl_ port-stats

step "Clean up: stop the guests and vnet-switchd, remove the namespace"
cleanup
trap - EXIT
if [[ ${DEMO_LAB:-0} == 1 ]]; then
	step "Linux under vnet-vmm, in the lab VM: emulated, vhost-net, vhost-user (tests/lab)"
	VMM=$VMM SWITCHD=$SWITCHD VNETCTL=$VNETCTL "$repo/tests/integration/vmm_lab_test.sh" || fail=1
fi
if ((fail)); then
	die "some pings were not answered (see above)"
fi
printf '\n%sdemo OK: 2 QEMU VMs, a vnet-vmm VM and a tap in a netns, all pings answered through vnet-switchd (%ss)%s\n' \
	"$G" "$((SECONDS - t0))" "$N"
