#!/usr/bin/env python3
"""Boots the probe Linux kernel (tests/linux/kernel.sh) under QEMU or keel
and checks its boot log for the lines that prove each device works.

  linuxtest.py --vmm qemu|keel [--keel PATH] --case pci|mmio|reboot-t
               [--timeout S] [--keep DIR] [--verbose]

Exit: 0 all lines present and the VMM stopped the way the case expects;
1 lines missing or a wrong end (listed); 77 skip (no kernel; keel: no
/dev/kvm; qemu: no qemu-system-x86_64).

Cases:
  pci   PCI transport: MBR disk, read-only GPT disk (3 partitions), net
        (QEMU only), rng, virtio console to a file with console=hvc0.
  mmio  virtio-mmio transport: MBR disk and net (QEMU only).
  reboot-t (optional) rdinit=/keel-no-such-init reboot=t: the kernel panics
        and reboots through its triple-fault path, which runs int3 in ring 0;
        keel must exit 3 (reset), 4 (triple fault) or 5 (internal error,
        kvm_pvm hosts), never hang. QEMU (the reference) exits 0.

How a boot ends: where user space cannot run (kvm_pvm hosts) /init dies,
the kernel panics and panic=-1 reboot=k resets through the i8042: QEMU
(-no-reboot) exits 0, keel exits 3.  Where user space runs (QEMU TCG, KVM
on hardware or nested), /init prints KEEL-INT80-USERSPACE-OK and asks for
power-off; this kernel has no ACPI, so it prints "reboot: System halted" and
halts with interrupts off.  keel notices every vCPU halted for good and
exits 7 (guest halted) by itself; QEMU waits forever, so the test stops it
(SIGTERM) and counts that as a clean end.
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from kvmhost import hardware_kvm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SECTOR = 512
DISK_SECTORS = 131072  # 64 MiB

# ---------------------------------------------------------------- images


def mbr_entry(ptype, start, count, boot=False):
    # CHS fields set to the "use LBA" values 0xfe,0xff,0xff.
    return struct.pack('<B3sB3sII', 0x80 if boot else 0, b'\xfe\xff\xff',
                       ptype, b'\xfe\xff\xff', start, count)


def write_mbr(f, entries):
    mbr = bytearray(SECTOR)
    struct.pack_into('<I', mbr, 440, 0x4b45454c)  # disk signature "KEEL"
    for i, e in enumerate(entries):
        mbr[446 + 16 * i:446 + 16 * (i + 1)] = e
    mbr[510:512] = b'\x55\xaa'
    f.seek(0)
    f.write(mbr)


def make_mbr_image(path, sectors=DISK_SECTORS):
    """One Linux partition (type 0x83) from sector 2048 to the end."""
    with open(path, 'wb') as f:
        f.truncate(sectors * SECTOR)
        write_mbr(f, [mbr_entry(0x83, 2048, sectors - 2048)])


def make_gpt_image(path, sectors=DISK_SECTORS, nparts=3):
    """A GPT disk (protective MBR, primary and backup headers and entry
    arrays) with nparts equal Linux-data partitions."""
    linux_data = uuid.UUID('0fc63daf-8483-4772-8e79-3d47d8e4e709')
    nentries, esize = 128, 128
    entry_sectors = nentries * esize // SECTOR  # 32
    first_usable = 2 + entry_sectors             # 34
    last_usable = sectors - 1 - entry_sectors - 1
    align = 2048
    span = ((last_usable + 1 - align) // nparts) // align * align
    entries = bytearray(nentries * esize)
    for i in range(nparts):
        first = align + i * span
        last = first + span - 1
        name = ('keel%d' % (i + 1)).encode('utf-16-le').ljust(72, b'\0')
        uniq = uuid.UUID(int=0x4b45454c000000000000000000000000 + i + 1)
        entries[i * esize:(i + 1) * esize] = struct.pack(
            '<16s16sQQQ72s', linux_data.bytes_le, uniq.bytes_le,
            first, last, 0, name)
    ecrc = zlib.crc32(entries) & 0xffffffff
    disk_guid = uuid.UUID('4b45454c-0000-4000-8000-000000000001')

    def header(cur, backup, entries_lba):
        h = bytearray(struct.pack(
            '<8sIIIIQQQQ16sQIII', b'EFI PART', 0x00010000, 92, 0, 0,
            cur, backup, first_usable, last_usable, disk_guid.bytes_le,
            entries_lba, nentries, esize, ecrc))
        struct.pack_into('<I', h, 16, zlib.crc32(h) & 0xffffffff)
        return bytes(h).ljust(SECTOR, b'\0')

    with open(path, 'wb') as f:
        f.truncate(sectors * SECTOR)
        write_mbr(f, [mbr_entry(0xee, 1, min(sectors - 1, 0xffffffff))])
        f.seek(1 * SECTOR)
        f.write(header(1, sectors - 1, 2))
        f.write(entries)
        f.seek((sectors - 1 - entry_sectors) * SECTOR)
        f.write(entries)
        f.write(header(sectors - 1, 1, sectors - 1 - entry_sectors))

# ---------------------------------------------------------------- cases


class Check:
    def __init__(self, name, regex, where='serial', qemu=True, keel=True, skip=None):
        self.name, self.regex, self.where = name, regex, where
        self.qemu, self.keel, self.skip = qemu, keel, skip


def case_checks(case):
    pci_virtio = r'pci 0000:00:[0-9a-f]{2}\.0: \[1af4:10[0-9a-f]{2}\]'
    blk = [
        Check('vda-size', r'virtio_blk virtio\d+: \[vda\] 131072 512-byte logical blocks'),
        Check('vda-parts', r'\svda: vda1$'),
    ]
    net = [Check('dhcp', r'IP-Config: Got DHCP answer from \S+, my address is \S+')]
    init = [Check('init', r'Run /init as init process')]
    serial = [Check('serial8250', r'serial8250: ttyS0 at I/O 0x3f8 .* is a 16550A')]
    if case == 'pci':
        return [
            Check('pci-virtio', pci_virtio),
            Check('pci-blk', r'pci 0000:00:[0-9a-f]{2}\.0: \[1af4:(1001|1042)\]'),
            Check('pci-rng', r'pci 0000:00:[0-9a-f]{2}\.0: \[1af4:(1005|1044)\]'),
            Check('pci-console', r'pci 0000:00:[0-9a-f]{2}\.0: \[1af4:(1003|1043)\]'),
        ] + blk + [
            Check('vdb-size', r'virtio_blk virtio\d+: \[vdb\] 131072 512-byte logical blocks'),
            Check('vdb-parts', r'\svdb: vdb1 vdb2 vdb3$'),
            Check('hvc0', r'printk: console \[hvc0\] enabled'),
            Check('hvc0-log', r'Run /init as init process', where='console'),
        ] + serial + [
            Check('i8042', r'serio: i8042 KBD port at 0x60,0x64 irq 1'),
            Check('rtc', r'rtc_cmos rtc_cmos: setting system clock to (\d{4}-\d\d-\d\d)T'),
        ] + net + init + [
            Check('vdb-ro', None, skip='Linux 6.1 virtio_blk prints nothing for a '
                  'read-only disk (VIRTIO_BLK_F_RO); checked instead: the GPT image is '
                  'unchanged after the boot'),
            Check('msix', None, skip='Linux prints nothing about MSI-X for virtio-pci '
                  'and user space (/proc/interrupts) cannot run on kvm_pvm hosts'),
            Check('rng', None, skip='virtio-rng probes silently; the PCI list shows it '
                  '(pci-rng)'),
        ]
    if case == 'mmio':
        return [Check('virtio-mmio', r'virtio-mmio: Registering device virtio-mmio\.\d+ at 0x[0-9a-f]+-0x[0-9a-f]+, IRQ \d+')] \
            + blk + serial + net + init
    if case == 'reboot-t':
        return [Check('panic', r'Kernel panic - not syncing: VFS: Unable to mount root fs')]
    raise SystemExit('unknown case %s' % case)


def build_cmdline(case, vmm):
    with open(os.path.join(HERE, 'cmdline-cpu.txt')) as f:
        cpu = f.read().strip()
    if case == 'reboot-t':
        # No init at all: the kernel panics wherever it runs (user space or
        # not), and panic=-1 reboots at once, through reboot=t's triple fault.
        return 'console=ttyS0 panic=-1 reboot=t rdinit=/keel-no-such-init ' + cpu
    cmd = 'console=ttyS0 panic=-1 reboot=k rdinit=/init ip=dhcp %s' % cpu
    if case == 'pci':
        cmd += ' console=hvc0'
    return cmd


def qemu_argv(case, kernel, initrd, cmdline, d):
    q = shutil.which('qemu-system-x86_64')
    if not q:
        skip('qemu-system-x86_64 not found (Debian package qemu-system-x86)')
    if hardware_kvm()[0] and os.environ.get('KEEL_LINUX_QEMU_ACCEL') != 'tcg':
        accel = ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities,-xsave,-smap,-smep']
    else:
        accel = ['-accel', 'tcg', '-cpu', 'max']
    argv = [q] + accel + ['-m', '256', '-smp', '1', '-nodefaults', '-display', 'none',
                          '-monitor', 'none', '-no-reboot',
                          '-serial', 'file:' + d['serial'],
                          '-kernel', kernel, '-initrd', initrd, '-append', cmdline]
    if case == 'pci':
        argv += ['-M', 'pc',
                 '-drive', 'file=%s,format=raw,if=none,id=d0' % d['mbr'],
                 '-device', 'virtio-blk-pci,drive=d0',
                 '-drive', 'file=%s,format=raw,if=none,id=d1,readonly=on' % d['gpt'],
                 '-device', 'virtio-blk-pci,drive=d1',
                 '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
                 '-device', 'virtio-rng-pci',
                 '-device', 'virtio-serial-pci',
                 '-chardev', 'file,id=c0,path=' + d['console'],
                 '-device', 'virtconsole,chardev=c0']
    elif case == 'reboot-t':
        argv += ['-M', 'microvm,acpi=off']
    else:
        argv += ['-M', 'microvm,acpi=off',
                 '-drive', 'file=%s,format=raw,if=none,id=d0' % d['mbr'],
                 '-device', 'virtio-blk-device,drive=d0',
                 '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0']
    return argv


def keel_argv(case, keel, kernel, initrd, cmdline, d):
    argv = [keel, 'run', '--cpus', '1', '--memory', '256M', '--kernel', kernel,
            '--initrd', initrd, '--cmdline', cmdline, '--serial', 'file:' + d['serial']]
    if case == 'pci':
        argv += ['--disk', d['mbr'], '--disk', d['gpt'] + ',ro', '--rng',
                 '--console', 'file:' + d['console'], '--net', 'nat']
    elif case == 'mmio':
        argv += ['--virtio-transport', 'mmio', '--disk', d['mbr'], '--net', 'nat']
    return argv

# ---------------------------------------------------------------- running


def skip(msg):
    print('SKIP: ' + msg)
    sys.exit(77)


def read(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')
    except OSError:
        return ''


def file_hash(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


HALTED = re.compile(r'reboot: (System halted|Power down)')
INIT = re.compile(r'\[\s*(\d+\.\d+)\] Run /init as init process')


def run_vmm(argv, serial, timeout, verbose, stop_halted):
    """Runs the VMM; returns (status, how, wall seconds to init or None).

    stop_halted: the VMM stays up after the guest halted (QEMU): stop it
    2 s after "System halted" and report 'halted'.
    """
    if verbose:
        print('+ ' + ' '.join(argv), flush=True)
    t0 = time.monotonic()
    err = open(serial + '.stderr', 'wb')
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    t_init = None
    halted_at = None
    how = None
    while True:
        try:
            rc = p.wait(timeout=0.2)
            how = 'exited %d' % rc
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        log = read(serial)
        if t_init is None and INIT.search(log):
            t_init = now - t0
        if halted_at is None and HALTED.search(log):
            halted_at = now
        if stop_halted and halted_at is not None and now - halted_at > 2:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            how = 'guest halted, stopped by the test (status %d)' % rc
            rc = 'halted'
            break
        if now - t0 > timeout:
            p.kill()
            p.wait()
            how = 'TIMEOUT after %d s' % timeout
            rc = 'timeout'
            break
    err.close()
    if t_init is None and INIT.search(read(serial)):
        t_init = time.monotonic() - t0
    return rc, how, t_init, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmm', choices=['qemu', 'keel'], required=True)
    ap.add_argument('--keel', default=None, help='keel binary (default build/keel)')
    ap.add_argument('--case', choices=['pci', 'mmio', 'reboot-t'], required=True)
    ap.add_argument('--timeout', type=float, default=None)
    ap.add_argument('--keep', default=None, help='keep logs and images in this dir')
    ap.add_argument('--verbose', action='store_true')
    a = ap.parse_args()

    if a.vmm == 'keel':
        keel = a.keel or os.path.join(HERE, '..', '..', 'build', 'keel')
        ok, why = hardware_kvm()
        if not ok:
            skip(why + ' (run inside tests/nested/run-in-l1)')
        if not os.access(keel, os.X_OK):
            print('FAIL: keel binary %s not found' % keel)
            return 1
    k = subprocess.run([os.path.join(HERE, 'kernel.sh')], stdout=subprocess.PIPE,
                       universal_newlines=True)
    if k.returncode == 77:
        skip('probe kernel unavailable (see kernel.sh message above)')
    if k.returncode != 0:
        print('FAIL: kernel.sh exited %d' % k.returncode)
        return 1
    kernel = k.stdout.strip()
    initrd = os.path.join(HERE, 'initramfs-int80.cpio.gz')
    timeout = a.timeout or (600 if a.vmm == 'keel' else 400)

    tmp = None
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        wd = a.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix='keel-linux-')
        wd = tmp.name
    d = {n: os.path.join(wd, f) for n, f in
         [('serial', 'serial.log'), ('console', 'console.log'),
          ('mbr', 'mbr.img'), ('gpt', 'gpt.img')]}
    for n in ('serial', 'console'):
        open(d[n], 'wb').close()
    make_mbr_image(d['mbr'])
    make_gpt_image(d['gpt'])
    gpt_sum = file_hash(d['gpt'])

    cmdline = build_cmdline(a.case, a.vmm)
    if a.vmm == 'qemu':
        argv = qemu_argv(a.case, kernel, initrd, cmdline, d)
    else:
        argv = keel_argv(a.case, keel, kernel, initrd, cmdline, d)
    date0 = datetime.datetime.now(datetime.timezone.utc).date()
    rc, how, t_init, wall = run_vmm(argv, d['serial'], timeout, a.verbose, a.vmm == 'qemu')
    date1 = datetime.datetime.now(datetime.timezone.utc).date()

    logs = {'serial': read(d['serial']), 'console': read(d['console'])}
    stderr = read(d['serial'] + '.stderr')
    failures = []
    print('%s %s: %s after %.1f s' % (a.vmm, a.case, how, wall))
    if a.case == 'reboot-t':
        pass
    elif t_init is not None:
        m = INIT.search(logs['serial'])
        print('time to init: %.1f s (guest clock %s s)' % (t_init, m.group(1)))
    else:
        print('time to init: - (Run /init not reached)')

    for c in case_checks(a.case):
        if (a.vmm == 'qemu' and not c.qemu) or (a.vmm == 'keel' and not c.keel):
            print('SKIP-CHECK %s: not checked on %s' % (c.name, a.vmm))
            continue
        if c.skip:
            print('SKIP-CHECK %s: %s' % (c.name, c.skip))
            continue
        m = re.search(c.regex, logs[c.where], re.M)
        if not m:
            failures.append('missing %s in %s log: /%s/' % (c.name, c.where, c.regex))
            continue
        if c.name == 'rtc':
            got = datetime.date.fromisoformat(m.group(1))
            if got not in (date0, date1):
                failures.append('rtc: guest date %s, host UTC date %s' % (got, date0))
        print('ok %s: %s' % (c.name, m.group(0).strip()))

    if a.case == 'pci':
        if file_hash(d['gpt']) != gpt_sum:
            failures.append('the read-only GPT disk image was modified')
        else:
            print('ok gpt-unchanged: the read-only disk image is unchanged')

    # How the VMM ended.
    if a.vmm == 'keel' and a.case == 'reboot-t':
        if rc not in (3, 4, 5):
            failures.append('keel with reboot=t: %s; want exit 3 (reset), 4 (triple '
                            'fault) or 5 (internal error)' % how)
    elif rc == 'timeout':
        failures.append('VMM did not stop: ' + how)
    elif a.vmm == 'keel' and HALTED.search(logs['serial'] + logs['console']):
        if rc != 7:
            failures.append('keel %s after the guest halted; want exit 7 (guest halted)' % how)
        else:
            print('ok halted: keel ended by itself with exit 7 (guest halted)')
    elif rc != 'halted':
        want = 0 if a.vmm == 'qemu' else 3
        if rc != want:
            failures.append('VMM %s; want exit %d (guest reset)' % (how, want))
    if 'KEEL-INT80-USERSPACE-OK' in logs['serial'] + logs['console']:
        print('note: user space ran (/init printed through int $0x80)')

    if failures or a.verbose:
        tail = logs['serial'].splitlines()[-25:]
        print('--- serial log (last %d lines) ---' % len(tail))
        print('\n'.join(tail))
        if stderr.strip():
            print('--- VMM stderr ---')
            print(stderr.strip()[-3000:])
    if failures:
        for f in failures:
            print('FAIL: ' + f)
        if not a.keep:
            print('(rerun with --keep DIR to keep the logs and images)')
        return 1
    print('PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
