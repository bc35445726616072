#!/bin/sh
# tests/linux/kernel.sh: prints the path of the probe kernel (Linux 6.1, PVH
# vmlinux) on stdout, or exits 77 with the reason on stderr.
#
# Where it looks, in order:
#   1. $KEEL_LINUX_KERNEL, if set (must exist: no fallback then).
#   2. The cache, $KEEL_LINUX_CACHE (default <repo>/build/linux-cache):
#      vmlinux-6.1-probe there, filled once from
#      <repo>/../shared/linux/vmlinux-6.1-probe.gz (gunzip), or by a build.
#   3. A build from this directory's recipe (build.sh, config-6.1-probe,
#      skip-int3-selftest.patch), only when KEEL_LINUX_BUILD=1: it installs
#      linux-source-6.1 and builds for about 10 minutes on 2 cores.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=vmlinux-6.1-probe
skip() { echo "kernel.sh: SKIP: $*" >&2; exit 77; }

if [ -n "${KEEL_LINUX_KERNEL:-}" ]; then
    [ -f "$KEEL_LINUX_KERNEL" ] || skip "KEEL_LINUX_KERNEL=$KEEL_LINUX_KERNEL does not exist"
    echo "$KEEL_LINUX_KERNEL"
    exit 0
fi

cache=${KEEL_LINUX_CACHE:-$repo/build/linux-cache}
out=$cache/$name
gz=$repo/../shared/linux/$name.gz

if [ -f "$gz" ] && { [ ! -s "$out" ] || [ "$gz" -nt "$out" ]; }; then
    mkdir -p "$cache"
    tmp=$out.tmp.$$
    gunzip -c "$gz" > "$tmp" || { rm -f "$tmp"; skip "gunzip $gz failed"; }
    mv -f "$tmp" "$out"    # atomic: parallel tests never see half a file
fi
if [ -s "$out" ]; then
    echo "$out"
    exit 0
fi

if [ "${KEEL_LINUX_BUILD:-0}" != 1 ]; then
    skip "no probe kernel: set KEEL_LINUX_KERNEL, provide $gz, or set KEEL_LINUX_BUILD=1 to build it with tests/linux/build.sh (about 10 minutes; installs linux-source-6.1)"
fi
mkdir -p "$cache"
echo "kernel.sh: building the probe kernel in $cache/src (about 10 minutes)" >&2
"$here/build.sh" "$cache/src" >&2 || skip "tests/linux/build.sh failed"
cp "$cache/src/linux-source-6.1/vmlinux" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "$out"
