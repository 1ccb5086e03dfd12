#!/usr/bin/env bash
# Installs the Debian 12 packages vnet needs to build and test.
# Idempotent and silent when everything is already present.
#
#   scripts/install-deps.sh           build + `make check` (PACKAGES)
#   scripts/install-deps.sh --bench   what `make bench` needs (BENCH_PACKAGES:
#                                     the build, DPDK, OVS-DPDK, gnuplot, perf);
#                                     `make check` never needs OVS
set -euo pipefail

bench=0
case ${1:-} in
--bench) bench=1 ;;
'') ;;
*)
	echo "usage: $0 [--bench]" >&2
	exit 2
	;;
esac

# One package per line; extend freely.
PACKAGES=(
	make
	meson
	ninja-build
	gcc
	clang
	libclang-rt-14-dev
	llvm
	libcmocka-dev
	pkg-config
	python3
	# guest/interop tests (tests/guest, tests/lib/peers.sh)
	qemu-system-x86
	busybox-static
	cpio
	dpdk-dev
	librte-net-vhost23
	librte-net-virtio23
	librte-mempool-ring23
	# vnet-switchd packet capture
	libpcap-dev
	# reading captures in tests/integration/switch_ctl_test.sh
	tshark
	# vnet-switchd state file and control protocol (JSON)
	libjansson-dev
	# vnet-vmm's seccomp filter
	libseccomp-dev
	# man pages (optional at build time)
	scdoc
)

# `make bench` alone (--bench): the release build, DPDK testpmd with its
# vhost/virtio PMDs, OVS-DPDK 3.1 as the anchor switch (bench/suite.sh runs a
# private ovsdb-server/ovs-vswitchd-dpdk), gnuplot for the chart, perf for
# the CPU figures. Not QEMU, clang or tshark: a fresh machine gets through
# `make bench` sooner.
BENCH_PACKAGES=(
	make
	meson
	ninja-build
	gcc
	pkg-config
	python3
	libcmocka-dev
	libpcap-dev
	libjansson-dev
	libseccomp-dev
	dpdk-dev
	librte-net-vhost23
	librte-net-virtio23
	librte-mempool-ring23
	openvswitch-switch-dpdk
	gnuplot-nox
	linux-perf
)
((bench)) && PACKAGES=("${BENCH_PACKAGES[@]}")

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$pkg")
done

((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

# Installing openvswitch-switch starts the system Open vSwitch on systemd
# machines. The bench runs a private instance and does not want it: stop
# what the installation started (a system OVS that ran before is left alone).
ovs_running() { pgrep -x ovs-vswitchd >/dev/null || pgrep -x ovsdb-server >/dev/null; }
ovs_before=0
ovs_running && ovs_before=1

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

if ((!ovs_before)) && ovs_running; then
	echo "install-deps: stopping the system Open vSwitch the installation started"
	if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
		systemctl stop openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service 2>/dev/null || true
	fi
	if ovs_running && [[ -x /etc/init.d/openvswitch-switch ]]; then
		/etc/init.d/openvswitch-switch stop >/dev/null 2>&1 || true
	fi
	ovs_running && echo "install-deps: warning: a system ovs-vswitchd/ovsdb-server is still running" >&2
fi
exit 0
