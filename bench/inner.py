#!/usr/bin/env python3
"""keel vs QEMU benchmark, the part that needs /dev/kvm (see bench/README.md).

Run by bench/run.py, either directly (host has /dev/kvm) or inside one L1
boot of tests/nested/run-in-l1. Runs every metric with the VMMs alternating
(keel, QEMU, keel, QEMU, ...), one warm-up pair first, and writes the raw
samples as JSON to --out. bench/run.py turns that into the table.
"""
import argparse
import ctypes
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BENCH_RE = re.compile(r'^BENCH (.*)$', re.M)
RESET_STATUS = {'keel': 3, 'qemu': 0}
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TAP_HOST, TAP_GUEST = '192.168.77.1', '192.168.77.2'
NAT_HOST = '10.0.2.2'		# host loopback as seen by a NAT guest
SINK_PORT = 7777
CLONE_NEWNET = 0x40000000
INIT_RE = re.compile(r'^time to init: ([\d.]+) s', re.M)


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
        self.ns = None
        self.net_lost = {}

    # ---- command lines -------------------------------------------------
    def cmd(self, vmm, guest, cmdline, mem=128, cpus=1, disks=(), net=None):
        """net: None, 'nat' or 'tap' (tap0 in self.ns; the command is then
        prefixed with ip netns exec)."""
        pre = ['ip', 'netns', 'exec', self.ns] if net == 'tap' else []
        if vmm == 'keel':
            c = [self.keel, 'run', '--cpus', str(cpus), '--memory',
                 '%dM' % mem, '--kernel', self.guest(guest),
                 '--cmdline', cmdline, '--serial', 'stdio']
            if disks or net:
                c += ['--virtio-transport', 'mmio']
            for d in disks:
                c += ['--disk', d + ',cache=direct']
            if net:
                c += ['--net', 'nat' if net == 'nat' else 'tap=tap0']
            return pre + c
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
        if net == 'nat':
            c += ['-netdev', 'user,id=n0']
        elif net == 'tap':
            c += ['-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no,'
                  'vhost=off']
        if net:
            c += ['-device', 'virtio-net-device,netdev=n0']
        return pre + c

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

    def alternate(self, name, fn, runs=None, warmup=None):
        """Warm-up pair, then a.runs counted pairs: keel, QEMU, keel, ..."""
        t = time.monotonic()
        runs = self.a.runs if runs is None else runs
        warmup = self.a.warmup if warmup is None else warmup
        for i in range(warmup + runs):
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
        # The configuration: 2 disks and a NIC (NAT: keel loads
        # libslirp for it, QEMU has slirp built in; the guest leaves it idle).
        r = self.run(vmm, self.cmd(vmm, 'bench_boot', 'hold=1', mem=1024,
                                   cpus=4, disks=self.a.images, net='nat'),
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

    # ---- virtio-net (guest net_test=perf -> UDP sink on the host) -----
    def tap_setup(self):
        """Namespace keelb-PID with a persistent tap0 at 192.168.77.1/24.
        Returns None, or why the TAP rows cannot run."""
        if os.geteuid() != 0:
            return 'not root'
        if not os.path.exists('/dev/net/tun'):
            return '/dev/net/tun missing'
        if not shutil.which('ip'):
            return 'ip (iproute2) missing'
        ns = 'keelb-%d' % os.getpid()
        r = subprocess.run(['ip', 'netns', 'add', ns], capture_output=True,
                           text=True)
        if r.returncode:
            return 'ip netns add: ' + r.stderr.strip()
        self.ns = ns
        for c in (['link', 'set', 'lo', 'up'],
                  ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap'],
                  ['addr', 'add', TAP_HOST + '/24', 'dev', 'tap0'],
                  ['link', 'set', 'tap0', 'up']):
            r = subprocess.run(['ip', '-n', ns] + c, capture_output=True,
                               text=True)
            if r.returncode:
                return 'ip %s: %s' % (' '.join(c), r.stderr.strip())
        return None

    def tap_cleanup(self):
        if self.ns:
            subprocess.run(['ip', 'netns', 'del', self.ns],
                           stderr=subprocess.DEVNULL)
            self.ns = None

    def sink(self, net):
        """UDP socket for the guest's datagrams: 127.0.0.1 (NAT) or
        192.168.77.1 inside the namespace (TAP; created there with setns).
        A large receive buffer holds the whole burst; it is read after the
        VMM exits, so the sink takes no CPU during the measurement."""
        libc = ctypes.CDLL(None, use_errno=True)
        own = target = None
        if net == 'tap':
            own = os.open('/proc/self/ns/net', os.O_RDONLY)
            target = os.open('/run/netns/' + self.ns, os.O_RDONLY)
            if libc.setns(target, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), 'setns')
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, getattr(socket, 'SO_RCVBUFFORCE', 33),
                             64 << 20)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            s.bind((TAP_HOST if net == 'tap' else '127.0.0.1',
                    SINK_PORT if net == 'tap' else 0))
        finally:
            if own is not None:
                if libc.setns(own, CLONE_NEWNET):
                    raise OSError(ctypes.get_errno(), 'setns back')
                os.close(own)
                os.close(target)
        return s

    def net(self, vmm, net):
        s = self.sink(net)
        try:
            port = s.getsockname()[1]
            peer = (TAP_HOST if net == 'tap' else NAT_HOST) + ':%d' % port
            cl = 'net_test=perf count=%d size=%d peer=%s' % (
                self.a.net_count, self.a.net_size, peer)
            if net == 'tap':
                cl += ' ip=%s gw=%s' % (TAP_GUEST, TAP_HOST)
            r = self.run(vmm, self.cmd(vmm, 'virtio_net', cl, net=net),
                         timeout=120 + self.a.net_count / 100)
            time.sleep(0.1)
            s.setblocking(False)
            got = nbytes = 0
            while True:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    break
                got += 1
                nbytes += len(d)
        finally:
            s.close()
        m = re.search(r'PERF-NET count=(\d+) size=(\d+) frame=\d+ '
                      r'cycles=(\d+)', r['text'])
        n, size, cyc = int(m.group(1)), int(m.group(2)), int(m.group(3))
        secs = cyc / self.hz
        p = 'net_%s_' % net
        return {p + 'pps': n / secs / 1e3, p + 'mbs': n * size / secs / 1e6,
                p + 'recv': 100.0 * got / n}

    # ---- Linux: process start -> "Run /init" (tests/linux/linuxtest.py)
    def linux(self, vmm):
        cmd = ['python3', os.path.join(REPO, 'tests/linux/linuxtest.py'),
               '--vmm', vmm, '--keel', self.keel, '--case', 'pci']
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=700)
        m = INIT_RE.search(r.stdout)
        if r.returncode == 77:
            raise SkipMetric(r.stdout.strip().splitlines()[-1])
        if r.returncode != 0 or not m:
            log('linuxtest %s failed (%d): %s' % (vmm, r.returncode,
                                                 r.stdout[-1500:]))
            raise RuntimeError('linuxtest %s failed' % vmm)
        return {'linux_init_s': float(m.group(1))}

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
        """Host fio on the same file: io_uring, O_DIRECT, same bs/iodepth;
        each job a.runs times (one 1 s run varies by +-30 % here)."""
        fio = shutil.which('fio')
        res = {}
        if not fio:
            log('fio not found: no host column')
            return res
        secs = max(1, round(self.a.blk_ms / 1000))
        for _ in range(self.a.runs):
            for name in self.a.blk_tests.split(','):
                val = self.fio_job(fio, name, secs)
                if val is not None:
                    res.setdefault('blk_' + name, []).append(val)
        return res

    def fio_job(self, fio, name, secs):
        rw = {'rr': 'randread', 'rw': 'randwrite', 'sr': 'read',
              'sw': 'write'}[name[:2]]
        seq = name[0] == 's'
        qd = self.a.seq_qd if seq else int(name[2:])
        cmd = [fio, '--name=' + name, '--filename=' + self.a.images[0],
               '--ioengine=io_uring', '--direct=1', '--rw=' + rw,
               '--bs=' + ('1M' if seq else '4k'), '--iodepth=%d' % qd,
               '--time_based', '--runtime=%d' % secs, '--output-format=json',
               '--randrepeat=0', '--norandommap']
        p = None
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=60 + secs)
            j = json.loads(p.stdout[p.stdout.index('{'):])['jobs'][0]
            part = j['read'] if rw in ('randread', 'read') else j['write']
            return part['bw_bytes'] / 2**20 if seq else part['iops']
        except Exception as e:	# noqa: BLE001 - report and go on
            log('fio %s failed: %s %s' % (name, e,
                                          p.stderr[-300:] if p else ''))
            return None


class SkipMetric(Exception):
    pass


def make_image(path, mib):
    """Fully allocated raw image of MIB MiB (non-zero data, no holes),
    flushed to its disk and dropped from the page cache."""
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    chunk = os.urandom(1 << 20)
    with open(path + '.tmp', 'wb') as f:
        for _ in range(mib):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    os.replace(path + '.tmp', path)


def where(path):
    """'FSTYPE on SOURCE' of the file system that holds PATH
    (/proc/self/mountinfo entry with the file's st_dev)."""
    st = os.stat(path)
    dev = '%d:%d' % (os.major(st.st_dev), os.minor(st.st_dev))
    found = '?'
    try:
        with open('/proc/self/mountinfo') as f:
            for line in f:
                fields = line.split()
                if fields[2] == dev and ' - ' in line:
                    fstype, source = line.split(' - ', 1)[1].split()[:2]
                    found = '%s on %s' % (fstype, source)
    except OSError:
        pass
    return found


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
    """Rss (KiB) of the VMM's guest RAM: a run of address-contiguous
    mappings, all marked do-not-copy on fork (VmFlags "dc": both VMMs
    madvise(MADV_DONTFORK) guest RAM; keel's is two mappings, the first
    2 MiB without THP), whose total size is within [mem, mem + 8 MiB];
    the largest-Rss such run."""
    lo, hi = mem_mib << 10, (mem_mib + 8) << 10
    vmas = []
    try:
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                head = line.split()
                if re.match(r'^[0-9a-f]+-[0-9a-f]+$', head[0]):
                    start, end = (int(x, 16) for x in head[0].split('-'))
                    vmas.append({'start': start, 'end': end, 'rss': 0,
                                 'dc': False})
                elif head[0] == 'Rss:':
                    vmas[-1]['rss'] = int(head[1])
                elif head[0] == 'VmFlags:':
                    vmas[-1]['dc'] = 'dc' in head[1:]
    except OSError as e:
        log('smaps of %d: %s' % (pid, e))
        return None
    best, run = None, []
    for v in vmas + [{'start': -1, 'end': -1, 'rss': 0, 'dc': False}]:
        if v['dc'] and run and run[-1]['end'] == v['start']:
            run.append(v)
            continue
        if run:
            size = (run[-1]['end'] - run[0]['start']) >> 10
            if lo <= size <= hi:
                rss = sum(x['rss'] for x in run)
                best = rss if best is None else max(best, rss)
        run = [v] if v['dc'] else []
    return best


def mem_vals(prefix, r):
    touched = r['guest_rss_kib']
    if touched is None:
        # Overhead would silently become peak RSS.
        raise RuntimeError('%s: no guest-RAM mapping found in smaps' % prefix)
    return {prefix + '_overhead_mib': (r['maxrss_kib'] - touched) / 1024,
            prefix + '_peak_mib': r['maxrss_kib'] / 1024,
            prefix + '_touched_mib': touched / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', required=True)
    ap.add_argument('--qemu', default='qemu-system-x86_64')
    ap.add_argument('--out', required=True, help='JSON results')
    ap.add_argument('--image', dest='images', action='append', default=[],
                    help='raw disk image (first: benchmarked; second: '
                    'extra disk of the 1 GiB memory guest); ignored when '
                    '$KEEL_L1_SCRATCH is set')
    ap.add_argument('--image-mib', type=int, default=1024,
                    help='size of the benchmarked image made on '
                    '$KEEL_L1_SCRATCH')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--exits', type=int, default=10000)
    ap.add_argument('--blk-ms', type=int, default=1000)
    ap.add_argument('--blk-tests', default='rr1,rw1,rr32,rw32,sr,sw')
    ap.add_argument('--seq-qd', type=int, default=4)
    ap.add_argument('--net-count', type=int, default=5000,
                    help='UDP datagrams per network run')
    ap.add_argument('--net-size', type=int, default=1024,
                    help='UDP payload bytes')
    ap.add_argument('--linux-runs', type=int, default=3)
    ap.add_argument('--linux-warmup', type=int, default=0)
    ap.add_argument('--only', default='boot,mem,exit,blk,fio,net,linux')
    a = ap.parse_args()
    only = a.only.split(',')
    scratch = os.environ.get('KEEL_L1_SCRATCH')
    disk_rows = bool({'mem', 'blk', 'fio'} & set(only))
    if scratch and disk_rows:
        # run-in-l1 --scratch-mib: ext4 on a virtio-blk disk of L1, where
        # O_DIRECT is real (not 9p requests, as in the repository dir).
        t = time.monotonic()
        a.images = [os.path.join(scratch, 'disk-%dM.img' % a.image_mib),
                    os.path.join(scratch, 'disk2-16M.img')]
        make_image(a.images[0], a.image_mib)
        make_image(a.images[1], 16)
        log('images on %s: %.1f s' % (scratch, time.monotonic() - t))
    elif disk_rows and len(a.images) < 2:
        ap.error('two --image files needed (or $KEEL_L1_SCRATCH)')
    b = Bench(a)
    info = {'runs': a.runs, 'warmup': a.warmup, 'exits': a.exits,
            'blk_ms': a.blk_ms, 'seq_qd': a.seq_qd,
            'l1_cpus': os.cpu_count(),
            'kernel': os.uname().release,
            'kvm': kvm_kind(),
            'qemu_version': subprocess.run([a.qemu, '--version'],
                                           capture_output=True, text=True)
            .stdout.split('\n')[0]}
    if a.images:
        info.update({'image_mib': os.path.getsize(a.images[0]) >> 20,
                     'image': os.path.abspath(a.images[0]),
                     'image_fs': where(a.images[0]),
                     'image_drive': os.environ.get('KEEL_L1_SCRATCH_DRIVE')
                     if scratch else None})
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
    skipped = {}
    if 'net' in only:
        why = b.tap_setup()
        try:
            if why:
                log('TAP rows skipped: ' + why)
                skipped['net_tap'] = why
            else:
                b.alternate('virtio-net TAP', lambda v: b.net(v, 'tap'))
        finally:
            b.tap_cleanup()
        b.alternate('virtio-net NAT', lambda v: b.net(v, 'nat'))
    if 'linux' in only:
        try:
            b.alternate('Linux time to init', b.linux, runs=a.linux_runs,
                        warmup=a.linux_warmup)
        except SkipMetric as e:
            log('Linux rows skipped: %s' % e)
            skipped['linux'] = str(e)
    host = {}
    if 'fio' in only:
        t1 = time.monotonic()
        host = b.fio()
        log('fio: %.1f s' % (time.monotonic() - t1))
    info['qemu_aio'] = b.qemu_aio
    info['only'] = only
    info['skipped'] = skipped
    info['net_count'], info['net_size'] = a.net_count, a.net_size
    info['linux_runs'], info['linux_warmup'] = a.linux_runs, a.linux_warmup
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
