#!/usr/bin/env bash
# Builds the "lab VM" initramfs: the test guest's initramfs (tests/guest) plus
# an appended cpio holding the vnet binaries with their shared libraries,
# the nested guest (L2) kernel and initramfs, and the L1 test script.  Booted
# by QEMU TCG with -cpu max and vnet.lab=1, it gives a Linux with nested
# /dev/kvm and /dev/vhost-net in which vnet-vmm boots L2 once per mode.
# See tests/lab/README.md.
#
# usage: build-lab.sh [OUTDIR]
#   OUTDIR defaults to $VNET_LAB_DIR, else ${VNET_CACHE:-/var/cache/vnet}/lab/VARIANT
#   (VARIANT = vnet-vmm or qemu, plus -iperf).
# Environment:
#   VMM, SWITCHD, VNETCTL   binaries to put in (default: $repo/build/src/...)
#   VNET_LAB_VMM=qemu       put QEMU (binary, libraries, BIOS) in as the L1
#                           VMM instead of vnet-vmm: a stand-in to debug the
#                           harness with (default vnet-vmm)
#   VNET_LAB_IPERF=1        add iperf3 to L1 and L2 (bench/vmm_lab.sh); taken
#                           from the Debian packages with apt-get download,
#                           never installed on the host
#   VNET_LAB_FORCE=1        rebuild even if the cache is up to date
#   VNET_GUEST_DIR          the guest (built/refreshed by build-guest.sh)
#
# Output (in OUTDIR): l1.cpio.gz, stamp.  The L1 kernel is the guest's
# vmlinuz.  Does nothing when the stamp matches the inputs (guest stamp,
# binaries, libraries, scripts).  Concurrent runs wait on a flock.
#
# L1 layout: /test.sh (lab-l1.sh), /lab/vmlinuz, /lab/l2.cpio.gz (guest
# initramfs + lab-l2.sh as /test.sh + /bin/vnet-outb from outb.c), /lab/vmm-kind, binaries in /usr/bin,
# libraries in /lib/x86_64-linux-gnu and the loader in /lib64.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
kind=${VNET_LAB_VMM:-vnet-vmm}
iperf=${VNET_LAB_IPERF:-0}
guest=${VNET_GUEST_DIR:-${VNET_CACHE:-/var/cache/vnet}/guest}
VMM=${VMM:-$repo/build/src/vmm/vnet-vmm}
SWITCHD=${SWITCHD:-$repo/build/src/switch/vnet-switchd}
VNETCTL=${VNETCTL:-$repo/build/src/tools/vnetctl}

say() { echo "build-lab: $*"; }
die() { echo "build-lab: error: $*" >&2; exit 1; }

case $kind in
vnet-vmm | qemu) ;;
*) die "VNET_LAB_VMM=$kind: want vnet-vmm or qemu" ;;
esac
variant=$kind
[[ $iperf == 1 ]] && variant+=-iperf
out=${1:-${VNET_LAB_DIR:-${VNET_CACHE:-/var/cache/vnet}/lab/$variant}}

CC=${CC:-cc}
for t in cpio gzip sha256sum flock ldd "$CC"; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done

# --- inputs -------------------------------------------------------------------
"$repo/tests/guest/build-guest.sh" "$guest" | grep -v 'up to date' || true
[[ -s $guest/vmlinuz && -s $guest/initramfs.cpio.gz && -s $guest/stamp ]] ||
	die "no guest in $guest (tests/guest/build-guest.sh failed?)"

# name:path of each program for /usr/bin
bins=("vnet-switchd:$SWITCHD" "vnetctl:$VNETCTL")
if [[ $kind == vnet-vmm ]]; then
	bins+=("vnet-vmm:$VMM")
else
	qemu=$(command -v qemu-system-x86_64) || die "VNET_LAB_VMM=qemu but no qemu-system-x86_64"
	bins+=("qemu-system-x86_64:$qemu")
fi
for b in "${bins[@]}"; do
	[[ -x ${b#*:} ]] || die "${b%%:*}: ${b#*:} is not an executable (build it, or set ${b%%:*} path via VMM/SWITCHD/VNETCTL)"
done
# QEMU's firmware for the stand-in: SeaBIOS and the option ROMs -kernel uses.
qemu_data=(/usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin
	/usr/share/qemu/kvmvapic.bin)

# iperf3 from its .debs (cached next to the lab), unpacked, not installed.
iperf_debs=(iperf3 libiperf0 libsctp1)
debdir=${VNET_CACHE:-/var/cache/vnet}/lab/debs
iperf_root=$debdir/root
iperf_ready() { [[ -x $iperf_root/usr/bin/iperf3 ]]; }
if [[ $iperf == 1 ]] && ! iperf_ready; then
	mkdir -p "$debdir"
	chmod 755 "$debdir" # apt's _apt user writes here
	say "downloading ${iperf_debs[*]} with apt-get download"
	(cd "$debdir" && { apt-get download -q "${iperf_debs[@]}" 2>&1 | grep -v -e unsandboxed -e '^Get:'; }) || true
	rm -rf "$iperf_root"
	for d in "$debdir"/*.deb; do dpkg-deb -x "$d" "$iperf_root"; done
	iperf_ready || die "apt-get download ${iperf_debs[*]} gave no usr/bin/iperf3"
fi

# ldd of every program that goes in: its libraries (sorted, unique) and
# loader, as "SONAME PATH" lines; fails on a library that is not found.
libs_of() {
	local f=$1 line
	LD_LIBRARY_PATH=${2:-} ldd "$f" | while read -r line; do
		case $line in
		*"=> not found"*) echo "missing ${line%% *}"; return 1 ;;
		linux-vdso* | *"statically linked"*) ;;
		*" => "*) line=${line#* => }; echo "lib ${line%% (*}" ;;
		/*) echo "loader ${line%% (*}" ;;
		esac
	done
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vnet-lab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/libs"
for b in "${bins[@]}"; do
	libs_of "${b#*:}" >>"$tmp/libs" || die "${b#*:}: $(grep missing "$tmp/libs" | head -n1)"
done
l2libs=
if [[ $iperf == 1 ]]; then
	ilp=$iperf_root/usr/lib/x86_64-linux-gnu
	libs_of "$iperf_root/usr/bin/iperf3" "$ilp" >"$tmp/l2libs" ||
		die "iperf3: $(grep missing "$tmp/l2libs" | head -n1)"
	cat "$tmp/l2libs" >>"$tmp/libs"
	l2libs=$tmp/l2libs
fi
sort -u -o "$tmp/libs" "$tmp/libs"

stamp=$(
	{
		echo "kind=$kind iperf=$iperf"
		cat "$guest/stamp"
		for b in "${bins[@]}"; do echo "${b%%:*} $(sha256sum <"${b#*:}" | cut -d' ' -f1)"; done
		cut -d' ' -f2 "$tmp/libs" | xargs -r sha256sum
		[[ $kind == qemu ]] && sha256sum "${qemu_data[@]}"
		[[ $iperf == 1 ]] && sha256sum "$iperf_root/usr/bin/iperf3"
		"$CC" --version | head -n1
		sha256sum "$here/lab-l1.sh" "$here/lab-l2.sh" "$here/outb.c" "$here/build-lab.sh" | cut -d' ' -f1
	} | sha256sum | cut -d' ' -f1
)

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ -z ${VNET_LAB_FORCE:-} && -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -s $out/l1.cpio.gz ]]; then
	say "up to date: $out ($variant)"
	exit 0
fi

# --- build --------------------------------------------------------------------
t0=$(date +%s)
say "building $out ($variant)"

# install_libs ROOT LIST: libraries by soname into /lib/x86_64-linux-gnu (a
# real directory in the initramfs, searched by Debian's loader), the loader at
# the path programs name (PT_INTERP).
install_libs() {
	local root=$1 what path
	mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64"
	while read -r what path; do
		case $what in
		lib) cp -L "$path" "$root/lib/x86_64-linux-gnu/${path##*/}" ;;
		loader) mkdir -p "$root${path%/*}" && cp -L "$path" "$root$path" ;;
		esac
	done <"$2"
}

# cpio_gz DIR: the newc archive of DIR's tree, directories before their files.
cpio_gz() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner 0:0 --quiet) | gzip -1n
}

l2=$tmp/l2
mkdir -p "$l2"
install -m 755 "$here/lab-l2.sh" "$l2/test.sh"
# The debug-exit port writer for init.sh's vnet.exit=port (no /dev/port).
mkdir -p "$l2/bin"
"$CC" -static -Os -s -Wall -Wextra -Werror -o "$l2/bin/vnet-outb" "$here/outb.c" ||
	die "cannot build vnet-outb (static, needs libc6-dev)"
if [[ $iperf == 1 ]]; then
	mkdir -p "$l2/usr/bin"
	cp "$iperf_root/usr/bin/iperf3" "$l2/usr/bin/iperf3"
	install_libs "$l2" "$l2libs"
fi

l1=$tmp/l1
mkdir -p "$l1/lab" "$l1/usr/bin"
install -m 755 "$here/lab-l1.sh" "$l1/test.sh"
echo "$kind" >"$l1/lab/vmm-kind"
cp "$guest/vmlinuz" "$l1/lab/vmlinuz"
{
	cat "$guest/initramfs.cpio.gz"
	cpio_gz "$l2"
} >"$l1/lab/l2.cpio.gz"
for b in "${bins[@]}"; do
	install -m 755 "${b#*:}" "$l1/usr/bin/${b%%:*}"
done
[[ $iperf == 1 ]] && cp "$iperf_root/usr/bin/iperf3" "$l1/usr/bin/iperf3"
install_libs "$l1" "$tmp/libs"
if [[ $kind == qemu ]]; then
	for f in "${qemu_data[@]}"; do
		mkdir -p "$l1${f%/*}"
		cp -L "$f" "$l1$f"
	done
fi

{
	cat "$guest/initramfs.cpio.gz"
	cpio_gz "$l1"
} >"$tmp/l1.cpio.gz"
mv -f "$tmp/l1.cpio.gz" "$out/l1.cpio.gz"
echo "$stamp" >"$out/stamp"
say "done in $(($(date +%s) - t0))s: $out/l1.cpio.gz ($(du -h "$out/l1.cpio.gz" | cut -f1);" \
	"L2 initramfs $(du -h "$l1/lab/l2.cpio.gz" | cut -f1), $(wc -l <"$tmp/libs") libraries)"
