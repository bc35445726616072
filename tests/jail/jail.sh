#!/bin/sh
# SPDX-License-Identifier: MIT
#
# keel jailed, as docs/security.md ("Running keel jailed") recommends to
# hosting providers, and a check that a guest works in there:
#
#   jail.sh KEEL VIRTIO_NET_GUEST
#
# A chroot with only keel, its libraries (and libslirp's, which NAT loads)
# and /etc/resolv.conf; /dev/kvm, the kernel (read-only) and a disk image
# bind-mounted into it in a new mount namespace, with new PID, network, IPC
# and UTS namespaces; a cgroup v2 group with memory, PID and CPU limits;
# keel's sandbox on (its default) and --user 65534:65534 once the VM is
# created.  The guest (guest/tests/virtio_net.c) gets its DHCP lease from
# keel's NAT and resets the machine: keel exits 3.
#
# Needs root, /dev/kvm, unshare and chroot (util-linux, coreutils); exits 77
# (skip) without them.  Prints the commands it runs.
set -eu

keel=$(realpath "$1")
guest=$(realpath "$2")
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
[ -c /dev/kvm ] || skip "no /dev/kvm"
for c in unshare chroot ldd mount ldconfig; do
	command -v $c >/dev/null || skip "no $c"
done
slirp=$(ldconfig -p | awk '/libslirp\.so\.0 /{print $NF; exit}')
[ -n "$slirp" ] || skip "no libslirp.so.0 (NAT)"

J=$(mktemp -d /tmp/keel-jail.XXXXXX)    # the jail's root
V=$(mktemp -d /tmp/keel-vm.XXXXXX)      # the VM's files, outside it
cg=
cleanup() {
	if [ -n "$cg" ]; then
		echo $$ > /sys/fs/cgroup/cgroup.procs 2>/dev/null || :
		rmdir "$cg" 2>/dev/null || :
	fi
	rm -rf "$J" "$V"
}
trap cleanup EXIT
run() { echo "+ $*"; "$@"; }

# The VM's files, where the provider keeps them.
run cp "$guest" "$V/kernel"
run truncate -s 8M "$V/disk.img"

# 1. The jail's root: keel, the libraries in a directory the loader searches
#    by default (keel's own may come from a build tree), the loader, an
#    /etc/resolv.conf for NAT's DNS, and mount points.
run mkdir -p "$J/bin" "$J/lib/x86_64-linux-gnu" "$J/lib64" "$J/etc" "$J/dev" "$J/vm"
run cp "$keel" "$J/bin/keel"
for f in "$slirp" $(ldd "$keel" "$slirp" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
	run cp -L "$f" "$J/lib/x86_64-linux-gnu/"
done
run cp -L /lib64/ld-linux-x86-64.so.2 "$J/lib64/"
run sh -c "cp /etc/resolv.conf '$J/etc/' 2>/dev/null || : > '$J/etc/resolv.conf'"
run touch "$J/dev/kvm" "$J/vm/kernel" "$J/vm/disk.img"

# 2. Limits: a cgroup v2 group this shell (and so keel) moves into.
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
	run mount -t cgroup2 none /sys/fs/cgroup || :
fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	cg=/sys/fs/cgroup/keel-jail-$$
	run sh -c "echo '+memory +pids +cpu' > /sys/fs/cgroup/cgroup.subtree_control" || :
	run mkdir "$cg"
	run sh -c "echo 192M > $cg/memory.max"          # 64 MiB guest + keel
	run sh -c "echo 32 > $cg/pids.max"              # keel: 2 + vCPUs + disks + NICs
	run sh -c "echo '100000 100000' > $cg/cpu.max"  # one CPU
	run sh -c "echo $$ > $cg/cgroup.procs"
else
	echo "jail: no cgroup v2 here: no limits"
fi

# 3. New namespaces; in the new mount namespace /dev/kvm and the VM's files
#    are bind-mounted into the jail (the kernel read-only); then chroot and
#    keel, which drops to 65534:65534 once the VM is created.
out=$V/out
set +e
run unshare --mount --pid --net --ipc --uts --fork --kill-child -- sh -c '
	J=$0 V=$1
	mount --make-rprivate / &&
	mount --bind /dev/kvm $J/dev/kvm &&
	mount --bind -o ro $V/kernel $J/vm/kernel &&
	mount --bind $V/disk.img $J/vm/disk.img &&
	exec chroot $J /bin/keel run --memory 64M --kernel /vm/kernel \
		--disk /vm/disk.img --net nat --serial stdio --user 65534:65534 \
		--cmdline "net_test=dhcp expect_ip=10.0.2.15 expect_gw=10.0.2.2 expect_dns=10.0.2.3"
' "$J" "$V" >"$out" 2>&1
rc=$?
set -e
cat "$out"
if [ -n "$cg" ]; then
	echo "jail: cgroup memory.peak $(cat $cg/memory.peak 2>/dev/null || echo ?)," \
	     "pids.peak $(cat $cg/pids.peak 2>/dev/null || echo ?)"
fi
echo "jail: keel exited $rc"
fail=0
[ $rc = 3 ] || { echo "FAIL: keel's exit status $rc, want 3 (the guest reset)"; fail=1; }
grep -q 'PASS DHCP lease 10.0.2.15' "$out" && grep -q 'KEEL-TEST-END pass=[1-9][0-9]* fail=0' "$out" ||
	{ echo "FAIL: no DHCP lease through NAT, or a failed check"; fail=1; }
if grep -q 'keel: sandbox:' "$out"; then
	echo "FAIL: a sandbox line"
	fail=1
fi
[ $fail = 0 ] && echo "ok: keel ran jailed, sandboxed, as 65534:65534"
exit $fail
