#!/usr/bin/env bash
# The lab-VM test of vnet-vmm (issue 6): /dev/kvm here cannot boot Linux, so
# QEMU TCG (-cpu max) boots a Linux "lab VM" (L1) with nested KVM and
# vhost-net, and inside it vnet-vmm boots the same Linux (L2) once per mode:
# emulated, vhost-net, vhost-user (to vnet-switchd in L1). L2 pings L1's tap
# address 10.0.2.1 five times and exits through the debug-exit port with its
# test's rc. One TAP test per mode: ping 5/5 and vnet-vmm exit code 0.
# See tests/lab/README.md.
#
# Environment: VMM, SWITCHD, VNETCTL (meson passes them), VNET_LAB_VMM=qemu
# (QEMU as the L1 VMM, to check the harness), VNET_LAB_BUDGET (whole run,
# seconds, default 240), VNET_LAB_MODE_BUDGET (per nested boot, default 60),
# VNET_LAB_MODES (default "emulated vhost-net vhost-user"), VNET_LAB_RUNS
# (nested boots per mode in the one lab VM, default 1: more to hunt a rare
# failure; every run must pass), VNET_LAB_KEEP=1 (keep the work dir with the
# console log).
# Prints TAP (meson protocol: 'tap'); skips only without QEMU or its TCG.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"

skip_unless_root
need_qemu || vnet_skip "qemu-system-x86_64 not available"
grep -qx tcg < <(qemu-system-x86_64 -accel help 2>/dev/null) || vnet_skip "QEMU without TCG"

export VMM=${VMM:-$repo/build/src/vmm/vnet-vmm}
export SWITCHD=${SWITCHD:-$repo/build/src/switch/vnet-switchd}
export VNETCTL=${VNETCTL:-$repo/build/src/tools/vnetctl}
kind=${VNET_LAB_VMM:-vnet-vmm}
budget=${VNET_LAB_BUDGET:-240}
mode_budget=${VNET_LAB_MODE_BUDGET:-60}
read -ra modes <<<"${VNET_LAB_MODES:-emulated vhost-net vhost-user}"
runs=${VNET_LAB_RUNS:-1}
labdir=${VNET_CACHE:-/var/cache/vnet}/lab/$kind

t=0
any_fail=0
echo "1..${#modes[@]}"
# bail MESSAGE [LOGFILE]: every mode fails with MESSAGE
bail() {
	local m
	[[ -n ${2:-} ]] && sed 's/^/# /' "$2"
	for m in "${modes[@]}"; do tap_result "$m: nested guest pings 5/5, exit 0" "$1"; done
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-lab.XXXXXX")
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	vnet_qemu_stop
	if [[ -n ${VNET_LAB_KEEP:-} ]]; then echo "# work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

t0=$SECONDS
VNET_LAB_VMM=$kind VNET_LAB_DIR=$labdir "$repo/tests/lab/build-lab.sh" >"$work/build.log" 2>&1 ||
	bail "building the lab VM failed" "$work/build.log"
grep -v 'up to date' "$work/build.log" | sed 's/^/# /'
t_build=$((SECONDS - t0))

# The L1 test budget leaves room for the L1 boot and teardown inside ours.
log=$work/l1.log
vnet_qemu_start "$log" --initrd "$labdir/l1.cpio.gz" --mem 2048 --qemu-arg -smp --qemu-arg 2 \
	--append "vnet.lab=1 vnet.timeout=$((budget - 20)) vnet.budget=$mode_budget" \
	--append "vnet.modes=$(IFS=,; echo "${modes[*]}") vnet.runs=$runs" || bail "could not start QEMU"
vnet_qemu_wait_exit "$((budget - t_build))"
t_run=$((SECONDS - t0 - t_build))
echo "# build ${t_build}s, lab VM ${t_run}s (vmm=$kind)"
tr -d '\r' <"$log" | grep -E '^(L1 lab:|LAB-RESULT|LAB-ATTEMPT)' | sed 's/^/# /'

for m in "${modes[@]}"; do
	f=()
	got=0
	while read -r line; do
		[[ -n $line ]] || continue
		got=$((got + 1))
		r=$(grep -o ' run=[0-9]*' <<<"$line")
		[[ " $line " == *" ping=5/5 "* ]] ||
			f+=("run${r#*=}: ping: $(grep -o 'ping=[^ ]*' <<<"$line" || echo none), want 5/5")
		[[ " $line " == *" rc=0 "* ]] || f+=("run${r#*=}: VMM exit: $(grep -o ' rc=[^ ]*' <<<"$line" || echo none), want rc=0")
	done < <(tr -d '\r' <"$log" | grep -E "^LAB-RESULT mode=$m ")
	((got == runs)) || f+=("$got of $runs LAB-RESULT lines for $m (L1 lost or out of time?)")
	desc="$m: nested guest pings 5/5, exit 0"
	((runs > 1)) && desc+=" ($runs runs)"
	if ! tap_result "$desc" ${f[@]+"${f[@]}"}; then
		echo "# --- L1 and L2 console for $m ---"
		tr -d '\r' <"$log" | awk -v m="$m" '
			/^L1 [a-z-]+:/ { cur = $2; sub(/:$/, "", cur) }
			$0 ~ "^L2 " m "\\|" || cur == m { print "#   " $0 }' | tail -n 80
	fi
done
if ((any_fail)); then
	echo "# --- L1 console (start) ---"
	tr -d '\r' <"$log" | grep -v '^L2 ' | head -n 60 | sed 's/^/#   /'
	[[ -s $log.qemu ]] && sed 's/^/#   qemu: /' "$log.qemu"
fi
exit "$any_fail"
