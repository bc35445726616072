#!/bin/bash
# tests/nested/setup.sh [--kernel-only] [CACHE_DIR]
#
# Idempotently prepares everything tests/nested/run-in-l1 needs:
#   * host packages: qemu-system-x86, busybox-static, cpio, kmod
#   * Debian 12's own kernel (the package linux-image-amd64 points at), fetched
#     with `apt-get download` and unpacked into the cache (it is NOT installed
#     on the host: no /boot changes, no initramfs/grub hooks)
#   * a small initramfs: static busybox + kvm/kvm_amd/9p/virtio modules + init
#     (+ tun/bridge/veth for the networking tests, virtio_blk + ext4 for
#     run-in-l1 --scratch-mib)
#
# --kernel-only stops after the kernel (package, vmlinuz and vmlinux links in
# the cache): tests/debian/setup.sh takes Debian's kernel from here.
# Cache dir: $1, else $KEEL_NESTED_CACHE, else <repo>/build/nested-cache.
# Env: KEEL_NESTED_KPKG=linux-image-6.1.0-NN-amd64 pins a kernel package.
#      KEEL_NESTED_FORCE=1 rebuilds the initramfs even if it looks current.
set -euo pipefail

kernel_only=0
if [ "${1:-}" = --kernel-only ]; then kernel_only=1; shift; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-${KEEL_NESTED_CACHE:-$repo/build/nested-cache}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

log() { echo "nested-setup: $*" >&2; }

# ---- host packages -------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod \
    && ! ldd /bin/busybox >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v depmod >/dev/null || need_pkgs+=(kmod)
# mkfs.ext4 for run-in-l1 --scratch-mib
PATH=$PATH:/usr/sbin:/sbin command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
fi
PATH=$PATH:/usr/sbin:/sbin

# ---- kernel package -----------------------------------------------------
kpkg=${KEEL_NESTED_KPKG:-}
if [ -z "$kpkg" ]; then
    if [ -f "$cache/kernel.pkg" ]; then
        kpkg=$(cat "$cache/kernel.pkg")
    else
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
        if [ -z "$kpkg" ]; then
            apt-get update >/dev/null
            kpkg=$(apt-cache depends linux-image-amd64 |
                   awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
        fi
    fi
fi
[ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
kver=${kpkg#linux-image-}
kroot=$cache/kernel/$kpkg
if [ ! -f "$kroot/.done" ]; then
    log "fetching $kpkg"
    rm -rf "$kroot" "$cache/dl"
    mkdir -p "$cache/dl" "$kroot"
    # apt-get download drops privileges to _apt; make the dir writable for it
    chmod 777 "$cache/dl"
    (cd "$cache/dl" && { apt-get download "$kpkg" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get download "$kpkg" >/dev/null; }; })
    dpkg-deb -x "$cache"/dl/"$kpkg"_*.deb "$kroot"
    depmod -b "$kroot" "$kver"
    rm -rf "$cache/dl"
    touch "$kroot/.done"
fi
echo "$kpkg" >"$cache/kernel.pkg"
ln -sfn "kernel/$kpkg/boot/vmlinuz-$kver" "$cache/vmlinuz"
# Uncompressed ELF vmlinux: QEMU boots it via the PVH entry point, which skips
# the xz decompression and real-mode setup (~3.5 s faster under TCG).
vmlinux=$cache/kernel/$kpkg/vmlinux
if [ ! -s "$vmlinux" ] && command -v python3 >/dev/null && command -v xz >/dev/null; then
    off=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().find(b"\xfd7zXZ\x00"))' \
          "$cache/kernel/$kpkg/boot/vmlinuz-$kver")
    if [ "${off:--1}" -ge 0 ]; then
        tail -c +$((off + 1)) "$cache/kernel/$kpkg/boot/vmlinuz-$kver" | xz -dc >"$vmlinux.tmp" 2>/dev/null || true  # xz complains about trailing data
        if head -c 4 "$vmlinux.tmp" | grep -q ELF; then mv "$vmlinux.tmp" "$vmlinux"; else rm -f "$vmlinux.tmp"; fi
    fi
fi
if [ -s "$vmlinux" ]; then ln -sfn "kernel/$kpkg/vmlinux" "$cache/vmlinux"; else rm -f "$cache/vmlinux"; fi
[ $kernel_only = 0 ] || exit 0

# ---- initramfs ------------------------------------------------------------
initrd=$cache/initramfs.cpio.gz
stamp="$kpkg $(md5sum <"$here/l1-init" | cut -d' ' -f1) $(md5sum </bin/busybox | cut -d' ' -f1) $(md5sum <"$0" | cut -d' ' -f1)"
if [ -z "${KEEL_NESTED_FORCE:-}" ] && [ -f "$initrd" ] && [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date: $cache (kernel $kver)"
    exit 0
fi

log "building initramfs for $kver"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,mnt,ctl,lib/modules,tmp}
cp /bin/busybox "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
cp "$here/l1-init" "$work/init"
chmod 755 "$work/init"

# Module load order, resolved from modules.dep (modprobe --show-depends).
# Groups: "base" (needed to mount the 9p shares), "kvm", "net" and "blk".
add_mods() { # group modname...
    local group=$1; shift
    local m line path
    for m in "$@"; do
        modprobe -d "$kroot" -S "$kver" --show-depends "$m" | while read -r line; do
            case $line in
            insmod\ *)
                path=${line#insmod }; path=${path%% *}
                rel=${path#"$kroot"/lib/modules/"$kver"/}
                base=$(basename "$rel")
                if [ ! -f "$work/lib/modules/$base" ]; then
                    cp "$path" "$work/lib/modules/$base"
                    echo "$base" >>"$work/lib/modules/$group.order"
                fi ;;
            builtin\ *) ;;
            esac
        done
    done
}
: >"$work/lib/modules/base.order"
: >"$work/lib/modules/kvm.order"
: >"$work/lib/modules/net.order"
: >"$work/lib/modules/blk.order"
add_mods base virtio_pci 9pnet_virtio 9p
add_mods kvm kvm_amd
# Networking tests (virtio-net back ends): TAP devices, bridges, veth pairs;
# loop devices for the host-block-device disk test.
add_mods net tun bridge veth loop
# run-in-l1 --scratch-mib: a virtio-blk disk with ext4 (modprobe lists the
# crc32c soft dependencies too); loaded only when that disk is attached.
add_mods blk virtio_blk ext4

(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
echo "$stamp" >"$cache/initramfs.stamp"
log "ready: $cache (kernel $kver; modules: $(tr '\n' ' ' <"$work/lib/modules/base.order")$(tr '\n' ' ' <"$work/lib/modules/kvm.order")$(tr '\n' ' ' <"$work/lib/modules/net.order")$(tr '\n' ' ' <"$work/lib/modules/blk.order"))"
