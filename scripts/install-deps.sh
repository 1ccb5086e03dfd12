#!/usr/bin/env bash
# Installs the Debian 12 packages vnet needs to build and test.
# Idempotent and silent when everything is already present.
set -euo pipefail

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
	# man pages (optional at build time)
	scdoc
)

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

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
