#!/usr/bin/env bash
# vnet-vmm's three data planes measured inside the lab VM (tests/lab): QEMU
# TCG boots a Linux L1 with nested KVM and vhost-net; in it vnet-vmm boots
# L2 RUNS times per mode (emulated, vhost-net, vhost-user to vnet-switchd),
# and L2 runs iperf3 against an iperf3 server in L1 on the tap's address:
#   tcp_mbps   TCP L2 -> L1, SECS seconds, receiver's Mbit/s
#   udp_pps    64-byte UDP datagrams L2 -> L1 at an unlimited send rate,
#              datagrams L1 received per second
#   boot_ms    vnet-vmm start -> L2's /init marker (VNET-BOOT)
#   rss_kb     vnet-vmm's VmRSS minus its resident guest RAM (memfd), KiB
# Prints the medians per mode as a Markdown table with the ratios
# vhost-net/emulated and vhost-user/emulated. Everything runs at nested TCG
# speed, so the absolute numbers say little; the ratios are the point.
# A measurement, not a test: run as root on an otherwise idle machine.
#
#   bench/vmm_lab.sh [BUILD_DIR]      (default: build-release, else build)
#
# Environment: RUNS (3), SECS (iperf3 seconds, 5), MODES ("emulated vhost-net
# vhost-user"), VNET_LAB_VMM=qemu (QEMU as the L1 VMM: the harness check),
# KEEP=1 (keep the work dir with the console log), BUDGET (whole run, s, 1200).
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/tests/lib/peers.sh"
. "$repo/tests/lib/qemu.sh"

die() { echo "vmm_lab: $*" >&2; exit 1; }
((EUID == 0)) || die "needs root"
need_qemu || die "qemu-system-x86_64 not available"

bdir=${1:-}
if [[ -z $bdir ]]; then
	for d in "$repo/build-release" "$repo/build"; do
		[[ -x $d/src/vmm/vnet-vmm ]] && { bdir=$d; break; }
	done
fi
export VMM=${VMM:-$bdir/src/vmm/vnet-vmm}
export SWITCHD=${SWITCHD:-$bdir/src/switch/vnet-switchd}
export VNETCTL=${VNETCTL:-$bdir/src/tools/vnetctl}
kind=${VNET_LAB_VMM:-vnet-vmm}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
read -ra modes <<<"${MODES:-emulated vhost-net vhost-user}"
BUDGET=${BUDGET:-1200}
labdir=${VNET_CACHE:-/var/cache/vnet}/lab/$kind-iperf

work=$(mktemp -d "${TMPDIR:-/tmp}/vnet-vmm-lab.XXXXXX") || exit 1
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	vnet_qemu_stop
	if [[ -n ${KEEP:-} ]]; then echo "vmm_lab: work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

VNET_LAB_VMM=$kind VNET_LAB_IPERF=1 VNET_LAB_DIR=$labdir "$repo/tests/lab/build-lab.sh" >&2 ||
	die "building the lab VM failed"

# Per nested boot: ~15 s to boot, 2 x SECS of iperf3, slack for TCG.
per_run=$((60 + 2 * SECS))
log=$work/l1.log
echo "vmm_lab: $kind, modes ${modes[*]}, $RUNS runs of ${SECS}s each; console $log" >&2
t0=$SECONDS
vnet_qemu_start "$log" --initrd "$labdir/l1.cpio.gz" --mem 2048 --qemu-arg -smp --qemu-arg 2 \
	--append "vnet.lab=1 vnet.job=bench vnet.runs=$RUNS vnet.secs=$SECS vnet.budget=$per_run" \
	--append "vnet.timeout=$((BUDGET - 10)) vnet.modes=$(IFS=,; echo "${modes[*]}")" ||
	die "could not start QEMU"
vnet_qemu_wait_exit "$BUDGET" || echo "vmm_lab: the lab VM did not finish in ${BUDGET}s" >&2
echo "vmm_lab: lab VM ran $((SECONDS - t0))s" >&2

tr -d '\r' <"$log" | grep '^LAB-RESULT ' >"$work/results" || die "no LAB-RESULT lines (console: KEEP=1 and see $log)"
sed 's/^/vmm_lab: /' "$work/results" >&2

# field MODE KEY: the KEY= values of MODE's successful runs, one a line
field() {
	awk -v m="mode=$1" -v k="$2=" '$2 == m && / rc=0 / {
		for (i = 3; i <= NF; i++) if (index($i, k) == 1) { v = substr($i, length(k) + 1); if (v ~ /^[0-9.]+$/) print v } }' \
		"$work/results"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

declare -A med=()
for m in "${modes[@]}"; do
	for k in tcp_mbps udp_pps boot_ms rss_kb; do
		med[$m.$k]=$(field "$m" "$k" | median)
	done
	med[$m.n]=$(field "$m" boot_ms | wc -l)
done

echo
echo "### vnet-vmm in the lab VM (nested KVM under QEMU TCG), medians of $RUNS runs"
echo
echo "| mode | runs ok | TCP L2→L1 Mbit/s | UDP 64 B pps | start-up ms | RSS beyond guest RAM KiB |"
echo "|---|---|---|---|---|---|"
for m in "${modes[@]}"; do
	echo "| $m | ${med[$m.n]}/$RUNS | ${med[$m.tcp_mbps]} | ${med[$m.udp_pps]} | ${med[$m.boot_ms]} | ${med[$m.rss_kb]} |"
done
if [[ -n ${med[emulated.tcp_mbps]:-} ]]; then
	echo
	echo "| ratio | TCP | UDP pps |"
	echo "|---|---|---|"
	for m in vhost-net vhost-user; do
		[[ -n ${med[$m.tcp_mbps]:-} ]] || continue
		echo "| $m / emulated | $(ratio "${med[$m.tcp_mbps]}" "${med[emulated.tcp_mbps]}") |" \
			"$(ratio "${med[$m.udp_pps]}" "${med[emulated.udp_pps]}") |"
	done
fi
echo
echo "VMM: $kind ($VMM); $(qemu-system-x86_64 --version | head -n1); host $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
