#!/usr/bin/env bash
# Builds the small test guest for QEMU: a Debian cloud kernel plus a busybox
# initramfs whose /init (tests/guest/init.sh) loads the virtio-net modules,
# configures eth0 from the kernel command line, runs a test script and powers
# off.  See tests/guest/README.md.
#
# usage: build-guest.sh [OUTDIR]
#   OUTDIR defaults to $VNET_GUEST_DIR, else ${VNET_CACHE:-/var/cache/vnet}/guest.
#   VNET_GUEST_KPKG=<pkg>  kernel meta/versioned package (default linux-image-cloud-amd64)
#   VNET_GUEST_FORCE=1     rebuild even if the cache is up to date
#
# Output (in OUTDIR): vmlinuz, initramfs.cpio.gz, kernel.version, stamp.
# Idempotent: does nothing when the stamp matches the inputs.  Never installs
# the kernel package on the host (apt-get download + dpkg-deb -x only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-${VNET_GUEST_DIR:-${VNET_CACHE:-/var/cache/vnet}/guest}}
kpkg_meta=${VNET_GUEST_KPKG:-linux-image-cloud-amd64}

say() { echo "build-guest: $*"; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

# Modules copied into the initramfs, as paths under lib/modules/<ver>/kernel/.
# The load order lives in init.sh; missing ones are skipped there.
MODULES=(
	net/core/failover
	drivers/net/net_failover
	drivers/virtio/virtio_ring
	drivers/virtio/virtio
	drivers/virtio/virtio_pci_modern_dev
	drivers/virtio/virtio_pci_legacy_dev
	drivers/virtio/virtio_pci
	drivers/virtio/virtio_mmio
	drivers/net/virtio_net
	# "lab VM" extras (loaded only with vnet.lab=1)
	virt/lib/irqbypass
	arch/x86/kvm/kvm
	arch/x86/kvm/kvm-amd
	arch/x86/kvm/kvm-intel
	drivers/vhost/vhost_iotlb
	drivers/vhost/vhost
	drivers/net/tap
	drivers/net/tun
	drivers/vhost/vhost_net
)

for t in apt-cache apt-get dpkg-deb dpkg-query cpio gzip sha256sum flock; do
	command -v "$t" >/dev/null || die "missing tool: $t (run scripts/install-deps.sh)"
done
[[ -x /bin/busybox ]] || die "missing /bin/busybox (package busybox-static)"
# grep reads the whole list: with pipefail, grep -q could exit early and
# leave busybox to die of SIGPIPE, failing the pipeline at random.
grep -qx insmod <<<"$(/bin/busybox --list)" || die "/bin/busybox lacks insmod (need busybox-static)"

# --- resolve inputs -----------------------------------------------------------
# One apt-cache call (they are slow): prints "<versioned package> <version>".
resolve_kpkg() {
	apt-cache show --no-all-versions "$kpkg_meta" 2>/dev/null | awk -v self="$kpkg_meta" '
		/^Version:/ && !v { v = $2 }
		/^Depends:/ && !d { if (match($0, /linux-image-[0-9][^ ,]*/)) d = substr($0, RSTART, RLENGTH) }
		END { if (self ~ /^linux-image-[0-9]/) d = self; if (d != "" && v != "") print d, v }'
}

read -r kpkg kver_pkg < <(resolve_kpkg || true) || true
if [[ -z ${kpkg:-} ]]; then
	if [[ -f $out/stamp && -f $out/vmlinuz && -f $out/initramfs.cpio.gz && -z ${VNET_GUEST_FORCE:-} ]]; then
		say "cannot resolve $kpkg_meta via apt; keeping cached guest in $out"
		exit 0
	fi
	say "apt lists do not know $kpkg_meta; running apt-get update"
	apt-get update -qq || die "apt-get update failed"
	read -r kpkg kver_pkg < <(resolve_kpkg || true) || true
	[[ -n ${kpkg:-} ]] || die "cannot resolve the package behind $kpkg_meta"
fi
bb_ver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)

stamp=$(
	{
		echo "kpkg=$kpkg $kver_pkg"
		echo "busybox=$bb_ver $(sha256sum /bin/busybox | cut -d' ' -f1)"
		echo "modules=${MODULES[*]}"
		sha256sum "$here/init.sh" "$here/build-guest.sh" | cut -d' ' -f1
	} | sha256sum | cut -d' ' -f1
)

mkdir -p "$out"
# Serialise concurrent builders (parallel tests): wait for the lock.
exec 9>"$out/.lock"
flock 9

if [[ -z ${VNET_GUEST_FORCE:-} && -f $out/stamp && $(cat "$out/stamp") == "$stamp" &&
	-s $out/vmlinuz && -s $out/initramfs.cpio.gz ]]; then
	say "up to date: $out ($kpkg $kver_pkg)"
	exit 0
fi

# --- build --------------------------------------------------------------------
say "output dir $out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vnet-guest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's _apt user must be able to write here

t0=$(date +%s)
say "downloading $kpkg ($kver_pkg) with apt-get download"
(cd "$tmp" && apt-get download -q "$kpkg" 2>&1 | grep -v -e unsandboxed -e '^Get:' || true)
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n1)
[[ -n $deb ]] || die "apt-get download $kpkg produced no .deb"
say "downloaded $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $(($(date +%s) - t0))s"

say "extracting with dpkg-deb -x"
dpkg-deb -x "$deb" "$tmp/pkg"
vmlinuz=$(ls "$tmp"/pkg/boot/vmlinuz-* 2>/dev/null | head -n1)
[[ -n $vmlinuz ]] || die "no boot/vmlinuz-* in $deb"
kver=${vmlinuz##*/vmlinuz-}
moddir=$tmp/pkg/lib/modules/$kver/kernel
[[ -d $moddir ]] || die "no lib/modules/$kver in $deb"
say "kernel $kver"

root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib/modules}
say "installing busybox $bb_ver and $(/bin/busybox --list-full | wc -l) applet links"
cp /bin/busybox "$root/bin/busybox"
/bin/busybox --list-full | while read -r p; do
	[[ $p == bin/busybox ]] && continue
	mkdir -p "$root/$(dirname "$p")"
	ln -sf /bin/busybox "$root/$p"
done
ln -sf /bin/busybox "$root/bin/sh"

n=0
for m in "${MODULES[@]}"; do
	name=${m##*/}
	src=
	for ext in ko ko.xz ko.zst ko.gz; do
		[[ -f $moddir/$m.$ext ]] && { src=$moddir/$m.$ext; break; }
	done
	if [[ -z $src ]]; then
		say "module $name: not in package (built in or absent), skipped"
		continue
	fi
	# busybox insmod cannot read compressed modules: store them plain.
	case $src in
	*.ko) cp "$src" "$root/lib/modules/$name.ko" ;;
	*.ko.xz) xz -dc "$src" >"$root/lib/modules/$name.ko" ;;
	*.ko.zst) zstd -qdc "$src" >"$root/lib/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$src" >"$root/lib/modules/$name.ko" ;;
	esac
	n=$((n + 1))
done
say "copied $n modules"
echo "$kver" >"$root/etc/kernel-version"

install -m 755 "$here/init.sh" "$root/init"
say "installed /init from init.sh"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner 0:0 --quiet) | gzip -9n >"$tmp/initramfs.cpio.gz"
cp "$vmlinuz" "$tmp/vmlinuz"
say "initramfs $(du -h "$tmp/initramfs.cpio.gz" | cut -f1), vmlinuz $(du -h "$tmp/vmlinuz" | cut -f1)"

# Publish atomically enough: files first, stamp last.
mv -f "$tmp/vmlinuz" "$out/vmlinuz"
mv -f "$tmp/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$kver" >"$out/kernel.version"
echo "$stamp" >"$out/stamp"
say "done in $(($(date +%s) - t0))s: $out/vmlinuz $out/initramfs.cpio.gz"
