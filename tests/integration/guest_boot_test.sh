#!/usr/bin/env bash
# Smoke test for the test guest: boots it under QEMU TCG with no network
# device, runs a test script in it and checks the console markers and that
# the guest powered off by itself.  Prints TAP (meson protocol: 'tap').
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"

skip_unless_root
need_qemu || vnet_skip "qemu not available"
if ! vnet_guest_ensure; then
	echo "1..1"
	echo "not ok 1 - guest boots # guest build failed"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-guest-boot.XXXXXX")
trap 'vnet_qemu_stop; rm -rf "$work"' EXIT

# Exercise both ways of passing a test: /test.sh (appended cpio) and vnet.cmd.
cat >"$work/test.sh" <<'EOF'
result "script kernel=$(uname -r)"
result "param foo=$VNET_FOO"
result "modules=$(grep -c . /proc/modules)"
[ -e /sys/class/net/eth0 ] && result "unexpected eth0"
exit 7
EOF

fail=()
t0=$SECONDS
vnet_qemu_run "$work/a.log" --script "$work/test.sh" --append "vnet.foo=bar" --qemu-arg -nic --qemu-arg none
rc=$?
t1=$SECONDS
vnet_qemu_run "$work/b.log" --cmd 'echo "multi word"; result "cmd ok $(echo a | tr a b)"'
rc2=$?

[[ $rc == 7 ]] || fail+=("script rc=$rc, want 7")
[[ $rc2 == 0 ]] || fail+=("cmd rc=$rc2, want 0")
results=$(vnet_qemu_results "$work/a.log")
grep -q '^script kernel=6\.' <<<"$results" || fail+=("no kernel result")
grep -qx 'param foo=bar' <<<"$results" || fail+=("vnet.foo not passed")
grep -q '^modules=[1-9]' <<<"$results" || fail+=("no modules loaded")
grep -q 'unexpected eth0' <<<"$results" && fail+=("eth0 present with -nic none")
grep -q 'VNET-MOD virtio_net ok' "$work/a.log" || fail+=("virtio_net not loaded")
grep -q 'VNET-POWEROFF' "$work/a.log" || fail+=("no poweroff marker")
grep -qx 'cmd ok b' < <(vnet_qemu_results "$work/b.log") || fail+=("vnet.cmd result missing")

echo "# boot+run+poweroff: script test $((t1 - t0))s, cmd test $((SECONDS - t1))s"
echo "1..1"
if ((${#fail[@]} == 0)); then
	echo "ok 1 - guest boots"
	exit 0
fi
for f in "${fail[@]}"; do echo "# $f"; done
echo "# --- console a ---"
sed 's/^/# /' "$work/a.log" "$work/a.log.qemu"
echo "# --- console b ---"
sed 's/^/# /' "$work/b.log" "$work/b.log.qemu"
echo "not ok 1 - guest boots"
exit 1
