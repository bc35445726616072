#!/bin/bash
# tests/nested/l1-qemu/build.sh [--reason-file FILE] [--force] [--cached-only] [--quiet]
#
# Builds (once per machine) the L1 emulator for firmware tests: Debian's own
# source of the installed qemu-system-x86, with cr8-bql.patch (the big QEMU
# lock around cpu_interrupt() in helper_write_crN, case 8), x86_64-softmmu
# only, TCG only. Stock QEMU aborts L1 when an L2 guest such as OVMF writes
# CR8 with an interrupt window pending; see ../README.md, "Firmware in the
# nested machine".
#
# Prints the binary's path on stdout; progress goes to stderr.
# Cache: ${KEEL_L1_QEMU_CACHE:-/var/cache/keel/l1-qemu}/<source version>-<key>/
#   qemu-system-x86_64, BUILD-INFO, cr8-bql.patch
# <key> = first 12 hex digits of sha256(patch + configure options), so a new
# patch, new options or a new installed qemu source version builds anew (the
# other entries are then removed). A build runs in a temporary directory and
# is moved into place only when it succeeded and the binary runs.
#
# Options:
#   --reason-file FILE  on failure, write the one-line reason there too
#   --force             rebuild even if the cache entry is there
#   --cached-only       do not build: print the path if cached, else exit 1
#   --quiet             say nothing on stderr when the cache entry is there
# Env: KEEL_L1_QEMU_CACHE (cache root), KEEL_L1_QEMU_JOBS (ninja -j, default 2)
# Needs root (apt) on a machine where the build dependencies or the deb-src
# entry are missing. Exit: 0 ok, 1 cannot build (reason on the last stderr line).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patch_file=$here/cr8-bql.patch
root=${KEEL_L1_QEMU_CACHE:-/var/cache/keel/l1-qemu}
jobs=${KEEL_L1_QEMU_JOBS:-2}
reason_file="" force=0 cached_only=0 quiet=0
while [ $# -gt 0 ]; do
    case $1 in
    --reason-file) reason_file=$2; shift 2 ;;
    --force) force=1; shift ;;
    --cached-only) cached_only=1; shift ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 1 ;;
    *) echo "l1-qemu: unknown option $1" >&2; exit 1 ;;
    esac
done

# Packages the build needs (Makefile: L1_QEMU_PKGS). dpkg-dev: apt-get source.
build_pkgs=(dpkg-dev build-essential pkg-config meson ninja-build python3
            libglib2.0-dev libpixman-1-dev libattr1-dev libcap-ng-dev
            zlib1g-dev libfdt-dev)
# The note's options (shared/notes/nested-firmware.md), plus where Debian's
# own build puts data and firmware, and the system meson. configure and ninja
# run with PATH=/usr/bin:/bin so that the system Python is used, not a pyenv
# or venv one that PATH may find first (--python wants QEMU's bundled meson,
# which Debian's source does not have).
configure_opts=(--target-list=x86_64-softmmu --disable-docs --disable-werror
    --enable-virtfs --enable-attr --enable-cap-ng --disable-kvm --enable-tcg
    --disable-gtk --disable-sdl --disable-vnc --disable-spice --disable-opengl
    --disable-curses --disable-libusb --disable-usb-redir --disable-xen
    --disable-capstone --disable-slirp --disable-gnutls --disable-nettle
    --disable-gcrypt --disable-curl --disable-rbd --disable-glusterfs
    --disable-libiscsi --disable-libnfs --disable-seccomp --disable-tools
    --disable-guest-agent
    --prefix=/usr --sysconfdir=/etc
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
    --meson=/usr/bin/meson)

log() { echo "l1-qemu: $*" >&2; }
fail() {
    echo "l1-qemu: cannot build: $*" >&2
    [ -n "$reason_file" ] && echo "$*" >"$reason_file"
    exit 1
}
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

# ---- what to build --------------------------------------------------------
read -r src_pkg src_ver bin_ver < <(dpkg-query -W -f='${source:Package} ${source:Version} ${Version}\n' \
    qemu-system-x86 2>/dev/null) ||
    fail "qemu-system-x86 is not installed (tests/nested/setup.sh installs it)"
[ -n "$src_ver" ] || fail "qemu-system-x86 is not installed (tests/nested/setup.sh installs it)"
[ -f "$patch_file" ] || fail "missing $patch_file"
key=$( { cat "$patch_file"; printf '%s\n' "${configure_opts[@]}"; } | sha256sum | cut -c1-12)
dir_ver=${src_ver#*:}                       # file names without the epoch, as Debian's
entry=$root/$dir_ver-$key
bin=$entry/qemu-system-x86_64

works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
if [ $force = 0 ] && works "$bin"; then
    [ $quiet = 1 ] || log "cached: $bin"
    echo "$bin"
    exit 0
fi
if [ $cached_only = 1 ]; then
    log "not built yet: $bin"
    exit 1
fi

mkdir -p "$root" 2>/dev/null || fail "cannot create the cache directory $root (set KEEL_L1_QEMU_CACHE)"
exec 9>"$root/.lock" || fail "cannot write in $root"
if ! flock -n 9; then
    log "another build holds $root/.lock; waiting"
    flock 9
fi
if [ $force = 0 ] && works "$bin"; then     # built by whoever held the lock
    log "cached: $bin"
    echo "$bin"
    exit 0
fi

for stale in "$root"/.build.*; do     # left by a killed build (we hold the lock)
    [ -e "$stale" ] && rm -rf "$stale"
done

t0=$(date +%s)
log "building qemu-system-x86_64 from Debian source $src_pkg $src_ver (installed binary package $bin_ver) + $(basename "$patch_file") (key $key)"

apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q "$@"; }
need_root() { [ "$(id -u)" = 0 ] || fail "$1 needs root; run tests/nested/l1-qemu/build.sh once as root"; }
apt_updated=0
apt_update() {
    [ $apt_updated = 1 ] && return 0
    log "apt-get update"
    apt_get update >"$tmp/apt-update.log" 2>&1 || {
        if [ "${added_src:-0}" = 1 ]; then
            rm -f /etc/apt/sources.list.d/keel-src.list
            log "removed /etc/apt/sources.list.d/keel-src.list again"
        fi
        fail "apt-get update failed (no network to the apt mirror?): $(grep -E '^(E|W):' "$tmp/apt-update.log" | head -n 2 | tr '\n' ' ')"
    }
    apt_updated=1
}

tmp=$(mktemp -d "$root/.build.XXXXXX") || fail "cannot make a temporary directory in $root"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# ---- deb-src --------------------------------------------------------------
# (no grep -q after a pipe: with pipefail, the writer's SIGPIPE fails it)
have_src() { apt-cache showsrc "$src_pkg" 2>/dev/null | grep -x "Version: $src_ver" >/dev/null; }
has_deb_src_entry() {
    grep -qsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list ||
    grep -qsiE '^Types:.*\bdeb-src\b' /etc/apt/sources.list.d/*.sources
}
if ! have_src; then
    if ! has_deb_src_entry; then
        need_root "adding a deb-src entry"
        codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}")
        # The "deb" entries of this suite (and -updates, -security) as deb-src,
        # with the same options (apt refuses differing Signed-By values).
        /usr/bin/python3 - "$codename" >"$tmp/keel-src.list" <<'PY' || fail "cannot read the apt sources"
import glob, re, sys
family = {sys.argv[1], sys.argv[1] + '-updates', sys.argv[1] + '-security'}
out = []
for f in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):
    try:
        lines = open(f).read().splitlines()
    except OSError:
        continue
    for l in lines:
        m = re.match(r'\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)', l.split('#')[0])
        if m and m.group(3) in family:
            out.append('deb-src %s%s %s %s' % (m.group(1) or '', m.group(2), m.group(3), m.group(4).strip()))
for f in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
    for stanza in re.split(r'\n\s*\n', open(f).read()):
        fields, key = {}, None
        for l in stanza.splitlines():
            if l.startswith('#'):
                continue
            if l[:1] in (' ', '\t') and key:
                fields[key] += '\n' + l.strip()
            elif ':' in l:
                key, v = l.split(':', 1)
                key = key.strip().lower()
                fields[key] = v.strip()
        if 'deb' not in fields.get('types', '').split() or fields.get('enabled', 'yes').lower() == 'no':
            continue
        opts = ''
        sb = fields.get('signed-by', '')
        if sb and '\n' not in sb and not sb.startswith('-----'):
            opts = '[signed-by=%s] ' % sb
        for uri in fields.get('uris', '').split():
            for suite in fields.get('suites', '').split():
                if suite in family:
                    out.append('deb-src %s%s %s %s' % (opts, uri, suite, fields.get('components', '')))
print('\n'.join(dict.fromkeys(out)))
PY
        grep -q '^deb-src' "$tmp/keel-src.list" ||
            fail "no deb-src entry in the apt sources, and no $codename deb entry to derive one from"
        { echo "# Added by keel tests/nested/l1-qemu/build.sh: Debian's qemu source for the L1 emulator"
          cat "$tmp/keel-src.list"; } >/etc/apt/sources.list.d/keel-src.list
        added_src=1
        log "no deb-src entry in the apt sources: added /etc/apt/sources.list.d/keel-src.list:"
        sed 's/^/l1-qemu:   /' "$tmp/keel-src.list" >&2
    fi
    apt_update
    have_src || fail "apt has no source package $src_pkg=$src_ver (deb-src entries: $(grep -hsE '^[[:space:]]*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | wc -l) one-line, $(grep -lsiE '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources | wc -l) deb822 files; the mirror may have moved on from the installed version)"
fi

# ---- build dependencies -----------------------------------------------------
missing=()
for p in "${build_pkgs[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    need_root "installing ${missing[*]}"
    log "installing build dependencies: ${missing[*]}"
    apt_get install -y --no-install-recommends "${missing[@]}" >"$tmp/apt-install.log" 2>&1 || {
        apt_update
        apt_get install -y --no-install-recommends "${missing[@]}" >"$tmp/apt-install.log" 2>&1 ||
            fail "apt-get install ${missing[*]} failed: $(grep -E '^E:' "$tmp/apt-install.log" | head -n 2 | tr '\n' ' ')"
    }
fi

# ---- source + patch ---------------------------------------------------------
log "apt-get source $src_pkg=$src_ver"
(cd "$tmp" && chmod 777 . && apt_get source "$src_pkg=$src_ver") >"$tmp/apt-source.log" 2>&1 || {
    tail -n 5 "$tmp/apt-source.log" >&2
    fail "apt-get source $src_pkg=$src_ver failed (no network to the apt mirror?): $(grep -m1 '^E:' "$tmp/apt-source.log" | cut -c1-160)"
}
srcdir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name "$src_pkg-*" | head -n 1)
[ -n "$srcdir" ] && [ -x "$srcdir/configure" ] || fail "apt-get source left no source tree in $tmp"
log "patch -p1 < $(basename "$patch_file")"
(cd "$srcdir" && patch -p1 --forward --no-backup-if-mismatch <"$patch_file") >"$tmp/patch.log" 2>&1 || {
    cat "$tmp/patch.log" >&2
    fail "$(basename "$patch_file") does not apply to $src_pkg $src_ver"
}

# ---- configure + build --------------------------------------------------------
mkdir "$srcdir/build"
log "configure (x86_64-softmmu only)"
sys_path=/usr/bin:/bin:/usr/sbin:/sbin
(cd "$srcdir/build" && PATH=$sys_path nice ../configure "${configure_opts[@]}" \
    --with-pkgversion="Debian $src_ver, keel cr8-bql $key") >"$tmp/configure.log" 2>&1 || {
    tail -n 25 "$tmp/configure.log" >&2
    fail "configure failed (log tail above)"
}
log "ninja -j$jobs qemu-system-x86_64 (about 7-8 min on 2 idle cores)"
tb=$(date +%s)
PATH=$sys_path nice ninja -C "$srcdir/build" -j"$jobs" qemu-system-x86_64 >"$tmp/ninja.log" 2>&1 || {
    grep -B2 -A8 -m3 -E 'error:|FAILED:' "$tmp/ninja.log" | tail -n 40 >&2
    tail -n 5 "$tmp/ninja.log" >&2
    fail "ninja failed (log tail above)"
}
build_s=$(( $(date +%s) - tb ))
works "$srcdir/build/qemu-system-x86_64" ||
    fail "the built qemu-system-x86_64 does not run: $("$srcdir/build/qemu-system-x86_64" --version 2>&1 | head -n 1)"

# ---- into the cache ------------------------------------------------------------
out=$tmp/out
mkdir "$out"
cp "$srcdir/build/qemu-system-x86_64" "$out/"
cp "$patch_file" "$out/"
{
    echo "source: $src_pkg $src_ver (installed qemu-system-x86 $bin_ver)"
    echo "patch: $(basename "$patch_file") sha256 $(sha256sum <"$patch_file" | cut -d' ' -f1)"
    echo "key: $key"
    echo "configure: ${configure_opts[*]}"
    echo "version: $("$out/qemu-system-x86_64" --version | head -n 1)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs, ninja -j$jobs: ${build_s}s, total $(elapsed)"
    echo "run it with: -L /usr/share/qemu -L /usr/share/seabios"
} >"$out/BUILD-INFO"
rm -rf "$entry"
mv "$out" "$entry" || fail "cannot move the build into $entry"
for old in "$root"/*; do
    [ -d "$old" ] && [ "$old" != "$entry" ] || continue
    log "removing the stale cache entry $old"
    rm -rf "$old"
done
log "built in $(elapsed) (ninja ${build_s}s): $bin"
echo "$bin"
