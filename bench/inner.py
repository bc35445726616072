#!/usr/bin/env python3
"""keel vs QEMU benchmark, the part that needs /dev/kvm (see bench/README.md).

Run by bench/run.py, either directly (host has /dev/kvm) or inside one L1
boot of tests/nested/run-in-l1. Runs every metric with the VMMs alternating
(keel, QEMU, keel, QEMU, ...), one warm-up pair first, and writes the raw
samples as JSON to --out. bench/run.py turns that into the table.
"""
import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

BENCH_RE = re.compile(r'^BENCH (.*)$', re.M)
RESET_STATUS = {'keel': 3, 'qemu': 0}


def log(*a):
    print('[bench]', *a, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.keel = os.path.join(a.build, 'keel')
        self.guest = lambda n: os.path.join(a.build, 'guest', n + '.elf')
        self.qemu = a.qemu
        self.qemu_aio = 'io_uring'
        self.samples = {}
        # One TSC frequency for both VMMs: guest TSC = this kernel's TSC
        # (plus an offset), but each VMM tells the guest a different
        # frequency (QEMU via CPUID, keel not: the kit calibrates on the PIT).
        self.hz = host_tsc_hz()
        self.guest_hz = {}

    # ---- command lines -------------------------------------------------
    def cmd(self, vmm, guest, cmdline, mem=128, cpus=1, disks=()):
        if vmm == 'keel':
            c = [self.keel, 'run', '--cpus', str(cpus), '--memory',
                 '%dM' % mem, '--kernel', self.guest(guest),
                 '--cmdline', cmdline, '--serial', 'stdio']
            if disks:
                c += ['--virtio-transport', 'mmio']
            for d in disks:
                c += ['--disk', d + ',cache=direct']
            return c
        # QEMU microvm: virtio-mmio; it appends virtio_mmio.device= words
        # itself. No i8042 on microvm by default: add one for the reset.
        c = [self.qemu, '-M', 'microvm,acpi=off', '-accel', 'kvm',
             '-cpu', 'host,-arch-capabilities,-xsave', '-m', str(mem),
             '-smp', '%d,sockets=%d,cores=1,threads=1' % (cpus, cpus),
             '-nographic', '-no-reboot', '-serial', 'stdio',
             '-monitor', 'none', '-kernel', self.guest(guest),
             '-append', cmdline, '-device', 'i8042',
             '-global', 'virtio-mmio.force-legacy=false']
        for i, d in enumerate(disks):
            c += ['-drive', 'file=%s,if=none,id=d%d,format=raw,cache=none,'
                  'aio=%s' % (d, i, self.qemu_aio),
                  '-device', 'virtio-blk-device,drive=d%d' % i]
        return c

    # ---- one VM run ----------------------------------------------------
    def run(self, vmm, cmd, hold=False, mem=128, timeout=120):
        """Run one VM. Returns dict: first_ms, exit_ms, maxrss_kib,
        guest_rss_kib (hold only), text, rc."""
        errf = tempfile.TemporaryFile()
        t0 = time.monotonic_ns()
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=errf)
        out = bytearray()
        first = None
        guest_rss = None
        hwm = None
        deadline = time.monotonic() + timeout
        fd = p.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                p.kill()
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            if first is None:
                first = time.monotonic_ns()
            out.extend(data)
            if hold and guest_rss is None and b'READY\n' in out.replace(
                    b'\r', b''):
                guest_rss = guest_ram_rss(p.pid, mem)
                hwm = vm_hwm(p.pid)
                try:
                    p.stdin.write(b'\n')
                    p.stdin.flush()
                except OSError:
                    pass
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.monotonic_ns()
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode('utf-8', 'replace')
        text = out.decode('utf-8', 'replace').replace('\r', '')
        res = {'rc': p.returncode, 'text': text, 'err': err,
               'first_ms': (first - t0) / 1e6 if first else None,
               'exit_ms': (t1 - t0) / 1e6,
               # wait4's ru_maxrss includes the forked Python's RSS from
               # before exec(): read the VMM's own high-water mark instead.
               'maxrss_kib': hwm if hwm is not None else ru.ru_maxrss,
               'guest_rss_kib': guest_rss}
        ok = (p.returncode == RESET_STATUS[vmm] and
              'KEEL-TEST-END pass=' in text and 'fail=0' in text)
        if not ok:
            log('%s run failed (rc %s): %s' % (vmm, p.returncode,
                                              ' '.join(cmd)))
            log('stdout:', text[-1500:])
            log('stderr:', err[-1500:])
            raise RuntimeError('%s run failed' % vmm)
        return res

    def add(self, metric, vmm, value):
        self.samples.setdefault(metric, {}).setdefault(vmm, []).append(value)

    def alternate(self, name, fn):
        """Warm-up pair, then a.runs counted pairs: keel, QEMU, keel, ..."""
        t = time.monotonic()
        for i in range(self.a.warmup + self.a.runs):
            for vmm in ('keel', 'qemu'):
                vals = fn(vmm)
                if i >= self.a.warmup:
                    for k, v in vals.items():
                        self.add(k, vmm, v)
        log('%s: %.1f s' % (name, time.monotonic() - t))

    # ---- metrics -------------------------------------------------------
    def boot(self, vmm):
        r = self.run(vmm, self.cmd(vmm, 'bench_boot', 'hold=0'))
        return {'boot_first_ms': r['first_ms'], 'boot_exit_ms': r['exit_ms']}

    def mem_small(self, vmm):
        r = self.run(vmm, self.cmd(vmm, 'bench_boot', 'hold=1'), hold=True)
        return mem_vals('mem_small', r)

    def mem_big(self, vmm):
        r = self.run(vmm, self.cmd(vmm, 'bench_boot', 'hold=1', mem=1024,
                                   cpus=4, disks=self.a.images),
                     hold=True, mem=1024)
        return mem_vals('mem_big', r)

    def exits(self, vmm):
        r = self.run(vmm, self.cmd(vmm, 'bench_exit',
                                   'exits=%d' % self.a.exits))
        vals = {}
        m = re.search(r'BENCH tsc_hz (\d+)', r['text'])
        self.guest_hz.setdefault(vmm, []).append(int(m.group(1)))
        for kind in ('pio', 'mmio'):
            m = re.search(r'BENCH exit %s n=(\d+) cycles=(\d+) ns=\d+' % kind,
                          r['text'])
            vals['exit_%s_ns' % kind] = (int(m.group(2)) / self.hz * 1e9 /
                                         int(m.group(1)))
        return vals

    def blk(self, vmm):
        cl = 'blk_ms=%d blk_tests=%s seq_qd=%d' % (
            self.a.blk_ms, self.a.blk_tests, self.a.seq_qd)
        r = self.run(vmm, self.cmd(vmm, 'bench_blk', cl, mem=256,
                                   disks=self.a.images[:1]), mem=256,
                     timeout=60 + 20 * self.a.blk_ms / 1000 * 6)
        vals = {}
        for m in re.finditer(r'BENCH blk (\w+) bs=(\d+) qd=(\d+) ops=(\d+) '
                             r'cycles=(\d+)', r['text']):
            name, bs, ops = m.group(1), int(m.group(2)), int(m.group(4))
            ns = int(m.group(5)) / self.hz * 1e9
            if name.startswith('s'):
                vals['blk_' + name] = ops * bs / (ns / 1e9) / 2**20
            else:
                vals['blk_' + name] = ops / (ns / 1e9)
        return vals

    def probe_aio(self):
        """QEMU aio=io_uring, else aio=threads (one boot of bench_blk)."""
        cl = 'blk_ms=10 blk_tests=rr1'
        try:
            self.run('qemu', self.cmd('qemu', 'bench_blk', cl, mem=256,
                                      disks=self.a.images[:1]), mem=256)
        except RuntimeError:
            log('QEMU aio=io_uring failed; falling back to aio=threads')
            self.qemu_aio = 'threads'

    def fio(self):
        """Host fio on the same file: io_uring, O_DIRECT, same bs/iodepth."""
        fio = shutil.which('fio')
        res = {}
        if not fio:
            log('fio not found: no host column')
            return res
        secs = max(1, round(self.a.blk_ms / 1000))
        for name in self.a.blk_tests.split(','):
            rw = {'rr': 'randread', 'rw': 'randwrite', 'sr': 'read',
                  'sw': 'write'}[name[:2]]
            seq = name[0] == 's'
            qd = self.a.seq_qd if seq else int(name[2:])
            bs = '1M' if seq else '4k'
            cmd = [fio, '--name=' + name, '--filename=' + self.a.images[0],
                   '--ioengine=io_uring', '--direct=1', '--rw=' + rw,
                   '--bs=' + bs, '--iodepth=%d' % qd, '--time_based',
                   '--runtime=%d' % secs, '--output-format=json',
                   '--randrepeat=0', '--norandommap']
            try:
                p = subprocess.run(cmd, capture_output=True, text=True,
                                   timeout=60 + secs)
                j = json.loads(p.stdout[p.stdout.index('{'):])['jobs'][0]
                part = j['read'] if rw in ('randread', 'read') else j['write']
                if seq:
                    res['blk_' + name] = part['bw_bytes'] / 2**20
                else:
                    res['blk_' + name] = part['iops']
            except Exception as e:	# noqa: BLE001 - report and go on
                log('fio %s failed: %s %s' % (name, e, getattr(
                    p, 'stderr', '')[-300:] if 'p' in dir() else ''))
        return res


def host_tsc_hz():
    """This kernel's TSC frequency: dmesg "tsc: Refined/Detected ... MHz",
    else /proc/cpuinfo "cpu MHz"."""
    try:
        d = subprocess.run(['dmesg'], capture_output=True, text=True).stdout
        m = re.findall(r'tsc: (?:Refined TSC clocksource calibration|'
                       r'Detected) ([\d.]+) MHz', d)
        if m:
            return float(m[-1]) * 1e6
    except OSError:
        pass
    for line in open('/proc/cpuinfo'):
        if line.startswith('cpu MHz'):
            return float(line.split(':')[1]) * 1e6
    raise RuntimeError('no TSC frequency')


def vm_hwm(pid):
    """VmHWM (KiB) of the running VMM: its peak RSS since exec()."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError as e:
        log('status of %d: %s' % (pid, e))
    return None


def guest_ram_rss(pid, mem_mib):
    """Rss (KiB) of the VMM's guest-RAM mapping: the largest-Rss mapping
    whose size is within [mem, mem + 8 MiB]."""
    lo, hi = mem_mib << 10, (mem_mib + 8) << 10
    best = None
    size = None
    try:
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                if line.startswith('Size:'):
                    size = int(line.split()[1])
                elif line.startswith('Rss:') and size is not None:
                    if lo <= size <= hi:
                        rss = int(line.split()[1])
                        best = rss if best is None else max(best, rss)
                    size = None
    except OSError as e:
        log('smaps of %d: %s' % (pid, e))
    return best


def mem_vals(prefix, r):
    touched = r['guest_rss_kib'] or 0
    return {prefix + '_overhead_mib': (r['maxrss_kib'] - touched) / 1024,
            prefix + '_peak_mib': r['maxrss_kib'] / 1024,
            prefix + '_touched_mib': touched / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', required=True)
    ap.add_argument('--qemu', default='qemu-system-x86_64')
    ap.add_argument('--out', required=True, help='JSON results')
    ap.add_argument('--image', dest='images', action='append', required=True,
                    help='raw disk image (first: benchmarked; second: '
                    'extra disk of the 1 GiB memory guest)')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--exits', type=int, default=10000)
    ap.add_argument('--blk-ms', type=int, default=1000)
    ap.add_argument('--blk-tests', default='rr1,rw1,rr32,rw32,sr,sw')
    ap.add_argument('--seq-qd', type=int, default=4)
    ap.add_argument('--only', default='boot,mem,exit,blk,fio')
    a = ap.parse_args()
    b = Bench(a)
    only = a.only.split(',')
    info = {'runs': a.runs, 'warmup': a.warmup, 'exits': a.exits,
            'blk_ms': a.blk_ms, 'seq_qd': a.seq_qd,
            'image_mib': os.path.getsize(a.images[0]) >> 20,
            'kernel': os.uname().release,
            'kvm': kvm_kind(),
            'qemu_version': subprocess.run([a.qemu, '--version'],
                                           capture_output=True, text=True)
            .stdout.split('\n')[0]}
    t = time.monotonic()
    if 'boot' in only:
        b.alternate('start-up', b.boot)
    if 'mem' in only:
        b.alternate('memory 128M', b.mem_small)
        b.alternate('memory 1G/4vCPU/2 disks', b.mem_big)
    if 'exit' in only:
        b.alternate('exits', b.exits)
    if 'blk' in only:
        b.probe_aio()
        b.alternate('virtio-blk', b.blk)
    host = {}
    if 'fio' in only:
        t1 = time.monotonic()
        host = b.fio()
        log('fio: %.1f s' % (time.monotonic() - t1))
    info['qemu_aio'] = b.qemu_aio
    info['tsc_hz'] = b.hz
    info['guest_tsc_hz'] = b.guest_hz
    info['inner_s'] = time.monotonic() - t
    with open(a.out, 'w') as f:
        json.dump({'info': info, 'samples': b.samples, 'host': host}, f,
                  indent=1)
    log('done in %.1f s' % info['inner_s'])


def kvm_kind():
    try:
        mods = open('/proc/modules').read()
    except OSError:
        mods = ''
    cpu = open('/proc/cpuinfo').read()
    hv = 'hypervisor' in cpu.split('\nflags')[1].split('\n')[0] \
        if '\nflags' in cpu else False
    if 'kvm_pvm' in mods:
        return 'kvm_pvm'
    if hv:
        return 'nested (L1 is itself a guest)'
    return 'hardware'


if __name__ == '__main__':
    main()
