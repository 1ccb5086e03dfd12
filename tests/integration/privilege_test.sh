#!/usr/bin/env bash
# Least privilege (issue 7), end to end:
#   vnet-vmm's seccomp filter (on by default; src/vmm/seccomp.h)
#     1. emulated mode: the tiny guest's frames reach the netns and pings are
#        answered while every thread of the VMM (sanitizer build: the vCPU and
#        I/O threads) runs under the filter (/proc/PID/task/*/status).
#     2. vhost-user mode to vnet-pktgen --mode echo: frames out and back.
#     3. vhost-user: the guest breaks a ring, the back-end reports it, the guest
#        resets the device and uses it again (stop/start path under the filter).
#     4. a forbidden call made by a vCPU thread after the install (hidden hook
#        VNET_VMM_SECCOMP_SELFTEST): openat and execve end the VMM with status 1
#        and "blocked syscall N (name) in thread vcpu0"; with --seccomp=off the
#        same call runs and the guest completes (the hook is not the cause).
#   vnet-switchd as an unprivileged user (useradd --system, removed at exit;
#   setpriv: no capabilities, empty bounding set; in a netns of this test)
#     5. it starts in its own run/state dirs; control socket 0600, owner the user.
#     6. vnetctl (as the user) adds vhost-user ports (0660), vnet-pktgen passes
#        1000 frames vm1 -> vm2, verified; the state file is 0600 and each save
#        replaces it (new inode: temp file + rename).
#     7. the control socket refuses another user; --ctl-group G makes it 0660
#        group G and a member of G gets in.
#     8. a tap it cannot create fails cleanly (no CAP_NET_ADMIN); a tap owned
#        by the user and up is attached.
#   refusals (the daemon never unlinks, creates or reads through a planted link)
#     9. symlink at the control socket path: start refused, target intact.
#    10. symlink at a vhost-user socket path: add-port refused, target intact.
#    11. run dir that is a symlink / writable by everyone / another user's:
#        start refused with the reason.
#    12. state file that is a symlink, or a FIFO: start refused, target intact,
#        no hang.
# Root only (it creates a user, a netns and taps); addresses only inside the
# netns it creates. Prints TAP.
#
# Environment: VMM, TINY_GUEST, SWITCHD, VNETCTL, PKTGEN (meson passes them;
# default build/).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/peers.sh"
skip_unless_root

VMM=${VMM:-$repo/build/src/vmm/vnet-vmm}
TINY_GUEST=${TINY_GUEST:-$repo/build/tests/guest-tiny/tiny-guest.elf}
. "$here/lib_switch.sh" # SWITCHD, VNETCTL, PKTGEN
. "$repo/tests/lib/tap.sh" # fail, report, need_bins
need_bins -e VMM TINY_GUEST SWITCHD VNETCTL PKTGEN
for t in useradd userdel setpriv ip python3; do
	command -v "$t" >/dev/null || vnet_skip "$t missing"
done
[[ -c /dev/kvm ]] || vnet_skip "no /dev/kvm"
[[ -c /dev/net/tun ]] || vnet_skip "no /dev/net/tun"
PING=()
if command -v ping >/dev/null; then PING=(ping); elif [[ -x /bin/busybox ]]; then PING=(/bin/busybox ping); else vnet_skip "no ping"; fi
ns=vpriv$$
ip netns add "$ns" 2>/dev/null || vnet_skip "cannot create network namespaces"

id=$$
user=vnet-test-$id
work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-priv.XXXXXX") || exit 1
chmod 0755 "$work"
pids=()
made_user=0

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	kill_pids "${pids[@]}"
	ip netns del "$ns" 2>/dev/null
	((made_user)) && userdel "$user" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..12"
nsx() { ip netns exec "$ns" "$@"; }
mode_of() { stat -c %a "$1" 2>/dev/null; }
wait_file() { # PATH SECS: 0 once PATH exists (any type)
	local end=$((SECONDS + $2))
	while ((SECONDS < end)); do [[ -e $1 || -L $1 ]] && return 0; sleep 0.05; done
	[[ -e $1 ]]
}
forget_pid() { local -a keep=() p; for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; pids=("${keep[@]}"); }
# wait_exit PID SECS: the exit status (124 if it had to be killed)
wait_exit() {
	local pid=$1 end=$((SECONDS + $2)) rc
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=124
	else
		wait "$pid" 2>/dev/null
		rc=$?
	fi
	forget_pid "$pid"
	return "$rc"
}
no_sanitizer_report() { grep -qE 'Sanitizer|runtime error:' "$1" && fail "sanitizer report in $(basename "$1")"; }

# ============================== vnet-vmm ============================================
nsx ip link set lo up
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
tap=vpt$id
nsx ip tuntap add dev "$tap" mode tap && nsx ip addr add 10.0.0.1/24 dev "$tap" && nsx ip link set "$tap" up ||
	echo "# cannot set up tap $tap in $ns"
guest="tiny.ip=10.0.0.2 tiny.dst=10.0.0.1"
# vmm NAME NS|- ARGS...: vnet-vmm in the background (sets vmm_pid)
vmm() {
	local name=$1 where=$2
	shift 2
	if [[ $where == - ]]; then
		"$VMM" --log-level info "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err" &
	else
		# ip netns exec execs the VMM: $! is vnet-vmm itself
		ip netns exec "$ns" "$VMM" --log-level info "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err" &
	fi
	vmm_pid=$!
	pids+=("$vmm_pid")
}
guest_done() { # NAME TX: exit 0 (vmm_rc), TINY-DONE rc=0, TINY-RESULT tx=TX
	[[ $vmm_rc == 0 ]] || fail "vnet-vmm exit status $vmm_rc, want 0"
	grep -q '^TINY-DONE rc=0$' "$work/$1.out" || fail "no 'TINY-DONE rc=0' on the console"
	grep -q "^TINY-RESULT tx=$2 " "$work/$1.out" || fail "no 'TINY-RESULT tx=$2' on the console"
	grep -q 'vnet-vmm: seccomp: filter \(installed on every thread\|armed for each vCPU\)' "$work/$1.err" ||
		fail "vnet-vmm did not log the seccomp install"
	grep -q 'blocked syscall' "$work/$1.err" && fail "$(grep -m1 'blocked syscall' "$work/$1.err")"
	no_sanitizer_report "$work/$1.err"
}

# --- 1: emulated --------------------------------------------------------------------
name="seccomp, emulated mode: 20 frames reach the netns, 3 pings answered, filter on the VMM's threads"
rx0=$(nsx cat "/sys/class/net/$tap/statistics/rx_packets" 2>/dev/null || echo 0)
vmm emu "$ns" --kernel "$TINY_GUEST" --mem 64M --cmdline "$guest tiny.tx=20 tiny.pings=3 tiny.wait=60" \
	--net "mode=emulated,tap=$tap,transport=mmio"
end=$((SECONDS + 30))
until grep -q '^TINY-SENT' "$work/emu.out" 2>/dev/null || ((SECONDS > end)) || ! kill -0 "$vmm_pid" 2>/dev/null; do sleep 0.1; done
if grep -q '^TINY-SENT' "$work/emu.out"; then
	filtered=() open=()
	for st in /proc/"$vmm_pid"/task/*/status; do
		comm=$(awk '/^Name:/{print $2}' "$st")
		if [[ $(awk '/^Seccomp:/{print $2}' "$st") == 2 ]]; then filtered+=("$comm"); else open+=("$comm"); fi
	done
	echo "# emu: threads under the filter: ${filtered[*]}; without: ${open[*]:-none}"
	[[ " ${filtered[*]} " == *" vcpu0 "* ]] || fail "vcpu0 is not under a seccomp filter"
	[[ " ${filtered[*]} " == *" net0-io "* ]] || fail "the I/O thread net0-io is not under a seccomp filter"
	if grep -q 'installed on every thread' "$work/emu.err" && ((${#open[@]})); then
		fail "threads without the filter: ${open[*]}"
	fi
	timeout 30 ip netns exec "$ns" "${PING[@]}" -c 3 -i 0.2 -W 5 10.0.0.2 >"$work/emu.ping" 2>&1 ||
		fail "ping 10.0.0.2: $(tail -n 2 "$work/emu.ping" | tr '\n' ' ')"
else
	fail "the guest did not get to TINY-SENT"
fi
wait_exit "$vmm_pid" 30
vmm_rc=$?
guest_done emu 20
rx=$(($(nsx cat "/sys/class/net/$tap/statistics/rx_packets" 2>/dev/null || echo 0) - rx0))
((rx >= 23)) || fail "tap rx_packets grew by $rx, want >= 23 (20 frames + 3 echo replies)"
report "$name" "$work/emu.out" "$work/emu.err"

# --- 2, 3: vhost-user to vnet-pktgen echo ----------------------------------------------
sock=$work/pg.sock
"$PKTGEN" --role backend --socket "$sock" --mode echo --duration 60 --log-level info >"$work/pg.json" 2>"$work/pg.err" &
pg_pid=$!
pids+=("$pg_pid")
wait_file "$sock" 10 || echo "# vnet-pktgen did not create $sock"

name="seccomp, vhost-user mode to vnet-pktgen --mode echo: 50 frames out, 50 back"
vmm vhu - --kernel "$TINY_GUEST" --mem 64M --cmdline "$guest tiny.tx=50 tiny.rx=50 tiny.wait=30" \
	--net "mode=vhost-user,socket=$sock,transport=mmio"
wait_exit "$vmm_pid" 45
vmm_rc=$?
guest_done vhu 50
r=$(grep -m1 '^TINY-RESULT' "$work/vhu.out" | sed -n 's/.* rx=\([0-9]*\).*/\1/p')
((${r:-0} >= 50)) || fail "TINY-RESULT rx=${r:-?}, want >= 50"
report "$name" "$work/vhu.out" "$work/vhu.err" "$work/pg.err"

name="seccomp, vhost-user: broken ring reported by the back-end, guest resets and sends again"
vmm bad - --kernel "$TINY_GUEST" --mem 64M --cmdline "$guest tiny.bad=ring-garbage tiny.tx=10" \
	--net "mode=vhost-user,socket=$sock,transport=mmio"
wait_exit "$vmm_pid" 45
vmm_rc=$?
guest_done bad 10
grep -q 'back-end found queue [01] broken; device needs reset' "$work/bad.err" ||
	fail "no 'back-end found queue broken' in vnet-vmm's log"
[[ $(grep -c 'vhost-user net0: running' "$work/bad.err") -ge 2 ]] || fail "the device did not start a second time"
report "$name" "$work/bad.out" "$work/bad.err"
kill -TERM "$pg_pid" 2>/dev/null
wait_exit "$pg_pid" 5

# --- 4: forbidden calls -------------------------------------------------------------------
name="seccomp: openat/execve on a vCPU thread end the VMM (status 1, 'blocked syscall N (name) in thread vcpu0'); with --seccomp=off they run"
for probe in openat:257 execve:59; do
	call=${probe%:*} nr=${probe#*:}
	VNET_VMM_SECCOMP_SELFTEST=$call vmm "probe-$call" "$ns" --kernel "$TINY_GUEST" --mem 64M \
		--cmdline "$guest tiny.tx=5" --net "mode=emulated,tap=$tap,transport=mmio"
	wait_exit "$vmm_pid" 15
	rc=$?
	[[ $rc == 1 ]] || fail "$call: exit status $rc, want 1"
	grep -q "^vnet-vmm: seccomp: blocked syscall $nr ($call) in thread vcpu0 (tid [0-9]*); stopping the VM$" \
		"$work/probe-$call.err" || fail "$call: no 'blocked syscall $nr ($call) in thread vcpu0' line"
	grep -q '^TINY-DONE' "$work/probe-$call.out" && fail "$call: the guest ran to the end"
	echo "# $call: status $rc: $(grep -m1 'blocked syscall' "$work/probe-$call.err")"
done
VNET_VMM_SECCOMP_SELFTEST=openat vmm probe-off "$ns" --seccomp=off --kernel "$TINY_GUEST" --mem 64M \
	--cmdline "$guest tiny.tx=5" --net "mode=emulated,tap=$tap,transport=mmio"
wait_exit "$vmm_pid" 30
vmm_rc=$?
[[ $vmm_rc == 0 ]] || fail "--seccomp=off: exit status $vmm_rc, want 0"
grep -q 'seccomp self-test: openat was not blocked' "$work/probe-off.err" || fail "--seccomp=off: the hook did not run openat"
grep -q '^TINY-DONE rc=0$' "$work/probe-off.out" || fail "--seccomp=off: the guest did not complete"
grep -q 'seccomp: filter' "$work/probe-off.err" && fail "--seccomp=off still installed a filter"
"$VMM" --seccomp=maybe --kernel "$TINY_GUEST" >/dev/null 2>"$work/usage.err"
rc=$?
if [[ $rc != 2 ]] || ! grep -q -- '--seccomp maybe: on|off' "$work/usage.err"; then
	fail "--seccomp=maybe: status $rc, $(cat "$work/usage.err")"
fi
report "$name" "$work/probe-openat.err" "$work/probe-execve.err" "$work/probe-off.err"

# ============================== unprivileged vnet-switchd ===============================
if useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$user" 2>"$work/useradd.err"; then
	made_user=1
else
	echo "# useradd $user: $(cat "$work/useradd.err")"
fi
uid=$(id -u "$user" 2>/dev/null)
gid=$(id -g "$user" 2>/dev/null)
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"; }
run=$work/run
state=$work/state
install -d -o "$user" -g "$user" -m 0755 "$run"
install -d -o "$user" -g "$user" -m 0700 "$state"
export VNET_CTL_SOCKET=$run/vnet-switchd.ctl
allowed_cpus
sw_cpu=${cpus[0]:-0}
# sw_up LOG ARGS...: the daemon as the user in the netns; sets sw_pid, 0 once the socket is up
sw_up() {
	local log=$1
	shift
	ip netns exec "$ns" setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
		--bounding-set=-all -- "$SWITCHD" --foreground --pmd-cpus "$sw_cpu" --log-level info "$@" \
		</dev/null >>"$log" 2>&1 &
	sw_pid=$!
	pids+=("$sw_pid")
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -S $VNET_CTL_SOCKET ]] && return 0
		kill -0 "$sw_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
sw_down() { kill -TERM "$sw_pid" 2>/dev/null; wait_exit "$sw_pid" 5; }
ctl() { as_user timeout 20 "$VNETCTL" "$@"; }

# --- 5: start --------------------------------------------------------------------------------
name="unprivileged vnet-switchd (no capabilities, own dirs): starts; control socket 0600, owned by the user"
if [[ -z $uid ]]; then
	fail "no user $user"
elif sw_up "$work/sw.log" --run-dir "$run" --state-dir "$state"; then
	st=/proc/$sw_pid/status
	[[ $(awk '/^Uid:/{print $3}' "$st") == "$uid" ]] || fail "daemon euid $(awk '/^Uid:/{print $3}' "$st"), want $uid"
	[[ $(awk '/^CapEff:/{print $2}' "$st") == 0000000000000000 ]] || fail "daemon has capabilities $(awk '/^CapEff:/{print $2}' "$st")"
	[[ $(mode_of "$VNET_CTL_SOCKET") == 600 ]] || fail "control socket mode $(mode_of "$VNET_CTL_SOCKET"), want 600"
	[[ $(stat -c %U "$VNET_CTL_SOCKET") == "$user" ]] || fail "control socket owner $(stat -c %U "$VNET_CTL_SOCKET")"
else
	fail "vnet-switchd did not start as $user: $(tail -n 3 "$work/sw.log" | tr '\n' '|')"
fi
report "$name" "$work/sw.log"

# --- 6: ports, traffic, state file ------------------------------------------------------------
name="unprivileged: vnetctl adds vhost-user ports (0660), 1000 frames vm1 -> vm2 verified, state file 0600 replaced on save"
ctl add-br br0 >/dev/null || fail "add-br br0 failed"
# An open fd keeps the old file's inode allocated, so a later save cannot
# get the same inode number back by chance (a freed inode is reused at once).
exec {held}<"$state/state.json"
ino0=$(stat -L -c %i "/proc/$$/fd/$held" 2>/dev/null)
for p in vm1 vm2; do ctl add-port br0 "$p" type=vhost-user >/dev/null || fail "add-port $p failed"; done
for p in vm1 vm2; do
	[[ $(mode_of "$run/$p.sock") == 660 ]] || fail "$p.sock mode $(mode_of "$run/$p.sock"), want 660"
done
as_user timeout 40 "$PKTGEN" --role frontend --socket "$run/vm2.sock" --mode rx --count 1000 --verify \
	--json --wait 10 >"$work/rx.json" 2>"$work/rx.err" &
rx_pid=$!
pids+=("$rx_pid")
end=$((SECONDS + 10))
until grep -q 'vhost-user vm2: front-end connected' "$work/sw.log" || ((SECONDS > end)); do sleep 0.05; done
as_user timeout 40 "$PKTGEN" --role frontend --socket "$run/vm1.sock" --mode tx --count 1000 --rate 2000 \
	--json --wait 10 --delay 0.5 >"$work/tx.json" 2>"$work/tx.err" || fail "tx pktgen exit status $?"
wait_exit "$rx_pid" 15 || fail "rx pktgen exit status $? (did not get 1000 frames)"
got=$(sed -n 's/.*"rx_packets":\([0-9]*\).*/\1/p' "$work/rx.json" | tail -n 1)
errs=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' "$work/rx.json" | tail -n 1)
[[ $got == 1000 && $errs == 0 ]] || fail "vm2 received ${got:-?} frames with ${errs:-?} errors, want 1000 and 0"
ctl port-stats >"$work/stats.txt" 2>&1 || fail "vnetctl port-stats failed"
[[ $(mode_of "$state/state.json") == 600 && -f $state/state.json && ! -L $state/state.json ]] ||
	fail "state file mode $(mode_of "$state/state.json"), want 600, a regular file"
[[ $(stat -c %U "$state/state.json") == "$user" ]] || fail "state file owner $(stat -c %U "$state/state.json")"
ino1=$(stat -c %i "$state/state.json" 2>/dev/null)
exec {held}<&-
[[ -n $ino0 && $ino0 != "$ino1" ]] || fail "the state file kept inode $ino1 across saves (not temp + rename?)"
temps=("$state"/.*tmp*)
[[ -e ${temps[0]} ]] && fail "temp files left in the state dir: ${temps[*]}"
echo "# vm2 received ${got:-?} frames, errors ${errs:-?}; state file inode $ino0 -> $ino1"
report "$name" "$work/sw.log" "$work/rx.err" "$work/tx.err"

# --- 7: control socket access ---------------------------------------------------------------
name="control socket: another user is refused; --ctl-group makes it 0660 and lets the group's members in"
other() { setpriv --reuid=65534 --regid=65534 "$@" -- timeout 20 "$VNETCTL" show; }
other --clear-groups >/dev/null 2>"$work/other.err" && fail "user nobody could use the 0600 control socket"
grep -q 'Permission denied' "$work/other.err" || fail "nobody's vnetctl: '$(cat "$work/other.err")', want Permission denied"
sw_down
if sw_up "$work/sw.log" --run-dir "$run" --state-dir "$state" --ctl-group "$gid"; then
	[[ $(mode_of "$VNET_CTL_SOCKET") == 660 && $(stat -c %g "$VNET_CTL_SOCKET") == "$gid" ]] ||
		fail "--ctl-group: socket mode $(mode_of "$VNET_CTL_SOCKET") group $(stat -c %g "$VNET_CTL_SOCKET"), want 660 $gid"
	other --groups="$gid" >"$work/member.out" 2>&1 || fail "a member of group $gid was refused: $(cat "$work/member.out")"
	grep -q vm1 "$work/member.out" || fail "the member's 'vnetctl show' does not list the restored port vm1"
	other --clear-groups >/dev/null 2>&1 && fail "a non-member could use the --ctl-group socket"
else
	fail "vnet-switchd --ctl-group $gid did not start"
fi
report "$name" "$work/sw.log" "$work/other.err"

# --- 8: taps -------------------------------------------------------------------------------
name="unprivileged: a tap it would have to create is refused cleanly; a tap owned by the user (up) is attached"
ctl add-port br0 newtap type=tap name=vpn$id >"$work/newtap.out" 2>&1 && fail "creating tap vpn$id succeeded without CAP_NET_ADMIN"
grep -q 'Operation not permitted' "$work/newtap.out" || fail "add-port newtap said '$(cat "$work/newtap.out")'"
kill -0 "$sw_pid" 2>/dev/null || fail "the daemon died"
if ! nsx ip tuntap add dev "vpo$id" mode tap user "$user" || ! nsx ip link set "vpo$id" up; then
	fail "cannot make tap vpo$id"
fi
ctl add-port br0 owned type=tap name="vpo$id" >"$work/owned.out" 2>&1 || fail "attaching the user's tap: $(cat "$work/owned.out")"
report "$name" "$work/sw.log"
sw_down

# ============================== refusals ===========================================
victim=$work/victim
echo "precious" >"$victim"
chmod 0644 "$victim"
victim_intact() { [[ -f $victim && ! -L $victim && $(cat "$victim") == precious && $(mode_of "$victim") == 644 ]] || fail "the link's target $victim was touched"; }
# refused_start LOG WANT ARGS...: the daemon must exit non-zero within 5 s naming WANT
refused_start() {
	local log=$1 want=$2
	shift 2
	: >"$log"
	sw_up "$log" "$@" && fail "vnet-switchd started ($*)"
	wait_exit "$sw_pid" 5
	local rc=$?
	((rc != 0 && rc != 124)) || fail "exit status $rc, want an error"
	grep -qF -- "$want" "$log" || fail "log does not say '$want': $(tail -n 2 "$log" | tr '\n' '|')"
	echo "# refused ($rc): $(grep -m1 -F -- "$want" "$log")"
}

name="symlink at the control socket path: start refused, the target untouched"
rm -f "$VNET_CTL_SOCKET"
ln -s "$victim" "$VNET_CTL_SOCKET"
refused_start "$work/ctl-link.log" "exists and is not a socket" --run-dir "$run" --state-dir "$state"
victim_intact
[[ -L $VNET_CTL_SOCKET ]] || fail "the planted link was removed"
rm -f "$VNET_CTL_SOCKET"
report "$name" "$work/ctl-link.log"

name="symlink at a vhost-user socket path (default dir and path=): add-port refused, target untouched"
if sw_up "$work/sw.log" --run-dir "$run" --state-dir "$state"; then
	ln -s "$victim" "$run/vm3.sock"
	ctl add-port br0 vm3 type=vhost-user >"$work/vm3.out" 2>&1 && fail "add-port vm3 over a symlink succeeded"
	grep -q 'exists and is not a socket' "$work/vm3.out" || fail "add-port vm3 said '$(cat "$work/vm3.out")'"
	mkdir -p "$work/other" && chown "$user" "$work/other" && ln -s "$victim" "$work/other/x.sock"
	ctl add-port br0 vm4 type=vhost-user path="$work/other/x.sock" >"$work/vm4.out" 2>&1 &&
		fail "add-port vm4 path=<symlink> succeeded"
	victim_intact
	[[ -L $run/vm3.sock && -L $work/other/x.sock ]] || fail "a planted link was removed"
	kill -0 "$sw_pid" 2>/dev/null || fail "the daemon died"
	sw_down
else
	fail "vnet-switchd did not start"
fi
report "$name" "$work/sw.log" "$work/vm3.out" "$work/vm4.out"

name="run dir refused when it is a symlink, writable by everyone, or another user's"
ln -s "$run" "$work/runlink"
refused_start "$work/dir1.log" "is a symbolic link" --run-dir "$work/runlink" --state-dir "$state"
install -d -o "$user" -g "$user" -m 0777 "$work/open"
refused_start "$work/dir2.log" "is writable by every user" --run-dir "$work/open" --state-dir "$state"
install -d -o nobody -m 0755 "$work/nobodys"
refused_start "$work/dir3.log" "belongs to uid 65534" --run-dir "$work/nobodys" --state-dir "$state"
report "$name" "$work/dir1.log" "$work/dir2.log" "$work/dir3.log"

name="state file that is a symlink or a FIFO: start refused (no hang), the target untouched"
mv "$state/state.json" "$work/state.saved"
ln -s "$victim" "$state/state.json"
refused_start "$work/st1.log" "is a symbolic link: refusing to follow it" --run-dir "$run" --state-dir "$state"
victim_intact
rm -f "$state/state.json"
mkfifo -m 0600 "$state/state.json" && chown "$user" "$state/state.json"
refused_start "$work/st2.log" "is not a regular file" --run-dir "$run" --state-dir "$state"
report "$name" "$work/st1.log" "$work/st2.log"

exit $any_fail
