#!/bin/bash
# tests/debian/setup.sh [CACHE_DIR]
#
# Idempotently builds the Debian guest kit (see README.md):
#   * Debian 12's own kernel, taken from tests/nested/setup.sh --kernel-only
#     (one mechanism: the package linux-image-amd64 points at, unpacked into
#     the nested cache, $KEEL_NESTED_CACHE or <repo>/build/nested-cache);
#   * a base initramfs: static busybox, this directory's init, keel.sh and
#     udhcpc.script, and the kernel's modules for virtio and the devices of
#     upcoming tests, with their dependencies (modprobe --show-depends), in
#     /lib/modules/<kver>/ with a modules.dep (busybox modprobe works) and a
#     load order (/lib/modules/load.order) that /init insmods.
#
# Cache dir: $1, else $KEEL_DEBIAN_CACHE, else <repo>/build/debian-guest.
# It holds vmlinux and vmlinuz (links into the nested cache), kernel.pkg,
# initramfs.cpio.gz (padded to a multiple of 4 bytes, so that a per-test
# archive can be appended), initramfs.list (what is in it) and
# initramfs.stamp.  KEEL_DEBIAN_FORCE=1 rebuilds even if the stamp matches.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-${KEEL_DEBIAN_CACHE:-$repo/build/debian-guest}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
ncache=${KEEL_NESTED_CACHE:-$repo/build/nested-cache}

log() { echo "debian-setup: $*" >&2; }

# The modules /init loads, in this order (each after its dependencies).  A
# module that fails to load (no such device: button without ACPI;
# crc32c-intel without SSE4.2) is reported by /init and does not stop it.
MODULES=(
    virtio_pci virtio_mmio
    virtio_blk virtio_net virtio_console virtio_rng
    crc32c_generic ext4
    virtio_scsi sd_mod sr_mod nvme
    xhci_pci usb_storage usbhid hid_generic
    virtio_input evdev virtio_gpu
    button
)

# ---- kernel (tests/nested/setup.sh fetches and unpacks it) ----------------
"$repo/tests/nested/setup.sh" --kernel-only "$ncache" >&2
ncache=$(cd "$ncache" && pwd)
PATH=$PATH:/usr/sbin:/sbin
kpkg=$(cat "$ncache/kernel.pkg")
kver=${kpkg#linux-image-}
kroot=$ncache/kernel/$kpkg
[ -d "$kroot/lib/modules/$kver" ] || { log "no modules in $kroot"; exit 1; }
echo "$kpkg" >"$cache/kernel.pkg"
ln -sfn "$(readlink -f "$ncache/vmlinuz")" "$cache/vmlinuz"
if [ -e "$ncache/vmlinux" ]; then
    ln -sfn "$(readlink -f "$ncache/vmlinux")" "$cache/vmlinux"
else
    rm -f "$cache/vmlinux"
fi

# ---- base initramfs ---------------------------------------------------------
initrd=$cache/initramfs.cpio.gz
sum() { md5sum <"$1" | cut -d' ' -f1; }
stamp="$kpkg $(sum "$here/init") $(sum "$here/keel.sh") $(sum "$here/udhcpc.script") $(sum /bin/busybox) $(sum "$0") ${MODULES[*]}"
if [ -z "${KEEL_DEBIAN_FORCE:-}" ] && [ -f "$initrd" ] &&
   [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date: $cache (kernel $kver)"
    exit 0
fi

log "building the base initramfs for $kver"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,keel}
mkdir -p "$work/etc/udhcpc" "$work/lib/modules/$kver"
chmod 1777 "$work/tmp"
# The kernel opens /dev/console for init before /init can mount devtmpfs.
mknod -m 600 "$work/dev/console" c 5 1 || log "cannot mknod dev/console (not root?): /init's first lines will be lost"
cp /bin/busybox "$work/bin/busybox"
# Applet links made here rather than by `busybox --install` at every boot.
for a in $(/bin/busybox --list-full); do
    [ -e "$work/$a" ] || ln -s /bin/busybox "$work/$a"
done
install -m 755 "$here/init" "$work/init"
install -m 644 "$here/keel.sh" "$work/lib/keel.sh"
install -m 755 "$here/udhcpc.script" "$work/etc/udhcpc/default.script"
echo keel-debian >"$work/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/etc/passwd"
printf 'root:x:0:\n' >"$work/etc/group"
printf '127.0.0.1 localhost\n' >"$work/etc/hosts"

# Modules in dependency order, each once (modprobe lists shared dependencies
# again for every module).
order=$work/lib/modules/load.order
: >"$order"
for m in "${MODULES[@]}"; do
    modprobe -d "$kroot" -S "$kver" --show-depends "$m" | while read -r what path _; do
        [ "$what" = insmod ] || continue
        rel=${path#"$kroot"/lib/modules/"$kver"/}
        grep -qxF "$rel" "$order" && continue
        mkdir -p "$work/lib/modules/$kver/$(dirname "$rel")"
        cp "$path" "$work/lib/modules/$kver/$rel"
        echo "$rel" >>"$order"
    done
done
cp "$order" "$work/lib/modules/$kver/modules.order"
cp "$kroot/lib/modules/$kver"/modules.{builtin,builtin.modinfo} "$work/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$work" "$kver"

(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -6 >"$initrd.tmp"
# The kernel reads an appended (uncompressed) archive only from a 4-byte
# aligned offset; zero bytes between archives are skipped.
pad=$(( (4 - $(stat -c %s "$initrd.tmp") % 4) % 4 ))
head -c "$pad" /dev/zero >>"$initrd.tmp"
(cd "$work" && find . -type f -o -type l | LC_ALL=C sort | while read -r f; do
    if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f $(stat -c %s "$f")"; fi
done | grep -v -e ' -> /bin/busybox$') >"$cache/initramfs.list"
mv "$initrd.tmp" "$initrd"
echo "$stamp" >"$cache/initramfs.stamp"
log "ready: $initrd ($(( $(stat -c %s "$initrd") / 1024 )) KiB; kernel $kver; $(wc -l <"$order") modules)"
