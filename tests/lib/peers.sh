# shellcheck shell=bash
# Helpers for tests that need the real peers (QEMU, DPDK testpmd).
# Source from bash:  . "$repo/tests/lib/peers.sh"
#
#   vnet_skip REASON        print "1..0 # SKIP REASON" and exit ${VNET_SKIP_RC:-0}
#                           (0 for meson protocol: 'tap', which errors on 77; set 77 for exitcode tests)
#   skip_unless_root        vnet_skip unless root
#   need_qemu               QEMU + busybox-static + cpio present (installs if missing), prints versions
#   need_dpdk               dpdk-testpmd + net_vhost/net_virtio_user PMDs present (installs), prints version
#   testpmd_bin             path of dpdk-testpmd
#   testpmd_pmd_args        EAL -d args needed to load the vhost/virtio PMDs (empty on Debian 12:
#                           EAL loads every plugin in its built-in pmds-23.0 dir by itself)
#   testpmd_eal_args PREFIX common EAL args for a hugepage-less testpmd with its own --file-prefix
#   stop_wait PID SIG SECS  send SIG, wait up to SECS for PID to end, then SIGKILL; reaps it
#
# Packages come from scripts/install-deps.sh (its list holds them all); as
# non-root a missing package is reported and the caller should skip.

_vnet_peers_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

stop_wait() {
	local p=$1 i
	[[ -n $p ]] || return 0
	kill "-$2" "$p" 2>/dev/null
	for ((i = 0; i < $3 * 20; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

vnet_skip() {
	echo "1..0 # SKIP $*"
	exit "${VNET_SKIP_RC:-0}"
}

skip_unless_root() {
	((EUID == 0)) || vnet_skip "needs root"
}

_vnet_install_deps() {
	echo "peers: installing missing packages via scripts/install-deps.sh" >&2
	"$_vnet_peers_repo/scripts/install-deps.sh" >&2
}

need_qemu() {
	if ! command -v qemu-system-x86_64 >/dev/null || [[ ! -x /bin/busybox ]] ||
		! grep -qx insmod <<<"$(/bin/busybox --list 2>/dev/null)" || ! command -v cpio >/dev/null; then
		_vnet_install_deps || return 1
	fi
	command -v qemu-system-x86_64 >/dev/null || { echo "peers: qemu-system-x86_64 missing" >&2; return 1; }
	echo "peers: $(qemu-system-x86_64 --version | head -n1)" >&2
	echo "peers: busybox $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" >&2
}

# Directory that holds librte_net_vhost.so (empty if none).
_vnet_pmd_dir() {
	local f
	for f in ${VNET_DPDK_PMD_DIR:+$VNET_DPDK_PMD_DIR/librte_net_vhost.so} \
		/usr/lib/*/dpdk/pmds-*/librte_net_vhost.so /usr/local/lib/*/dpdk/pmds-*/librte_net_vhost.so; do
		[[ -e $f ]] && { dirname "$f"; return 0; }
	done
	return 1
}

testpmd_bin() {
	command -v dpdk-testpmd || command -v testpmd || return 1
}

need_dpdk() {
	local d
	if ! testpmd_bin >/dev/null || ! d=$(_vnet_pmd_dir) ||
		[[ ! -e $d/librte_net_virtio.so || ! -e $d/librte_mempool_ring.so ]]; then
		_vnet_install_deps || return 1
	fi
	testpmd_bin >/dev/null || { echo "peers: dpdk-testpmd missing (package dpdk-dev)" >&2; return 1; }
	d=$(_vnet_pmd_dir) || { echo "peers: net_vhost PMD missing (librte-net-vhost23)" >&2; return 1; }
	[[ -e $d/librte_net_virtio.so ]] || { echo "peers: net_virtio PMD missing (librte-net-virtio23)" >&2; return 1; }
	echo "peers: dpdk-testpmd $(testpmd_bin) (dpdk-dev $(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null)), PMDs in $d" >&2
}

testpmd_pmd_args() {
	local d eal builtin=
	d=$(_vnet_pmd_dir) || return 0
	eal=$(ls /usr/lib/*/librte_eal.so.* /usr/local/lib/*/librte_eal.so.* 2>/dev/null | head -n1)
	[[ -n $eal ]] && builtin=$(grep -aoE '/[^[:space:]]*/dpdk/pmds-[0-9.]+' "$eal" | head -n1)
	# EAL already loads its built-in plugin dir; otherwise name the PMDs we need.
	[[ -n $builtin && $builtin -ef $d ]] && return 0
	echo "-d $d/librte_mempool_ring.so -d $d/librte_net_vhost.so -d $d/librte_net_virtio.so"
}

# testpmd_eal_args PREFIX [MEM_MB]: EAL args for one of several concurrent testpmds.
testpmd_eal_args() {
	local prefix=$1 mem=${2:-256}
	echo "--no-huge -m $mem --single-file-segments --no-pci --file-prefix $prefix $(testpmd_pmd_args)"
}

# allowed_cpus: fills the array `cpus` with the CPUs this process may run on
# (from Cpus_allowed_list, ranges expanded), for pinning peers apart.
allowed_cpus() {
	cpus=()
	local parts p c
	IFS=, read -ra parts <<<"$(awk '/^Cpus_allowed_list/{print $2}' /proc/self/status)"
	for p in "${parts[@]}"; do
		if [[ $p == *-* ]]; then
			for ((c = ${p%-*}; c <= ${p#*-}; c++)); do cpus+=("$c"); done
		elif [[ -n $p ]]; then
			cpus+=("$p")
		fi
	done
}

# tap_result NAME [FAILURE...]: one TAP line; "ok" when no failure is given,
# else "not ok" with each failure as a diagnostic. Counts in the caller's
# globals t (test number) and any_fail.
tap_result() {
	local name=$1
	shift
	t=$((t + 1))
	if (($# == 0)); then
		echo "ok $t - $name"
		return 0
	fi
	echo "not ok $t - $name"
	any_fail=1
	local f
	for f in "$@"; do echo "# $f"; done
	return 1
}
