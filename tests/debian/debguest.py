#!/usr/bin/env python3
"""Boots Debian 12's kernel with the Debian guest kit (tests/debian) under
keel or QEMU, runs a test script in the guest and collects its checks.

Library (python3 stdlib only):

    import debguest as dg
    cfg = dg.Config(vmm='keel', keel='build/keel', cpus=2, mem=256,
                    disks=[dg.Disk('data.img', serial='data')], rng=True,
                    console=True, nets=[dg.Net('nat', hostfwd=[('tcp', 8022, 22)])],
                    script=open('cases/basic.sh').read(), env={'X': '1'})
    with dg.Boot(cfg, keep='/tmp/logs') as b:
        b.wait_for(r'^KEEL-WAIT ready$')      # optional: act on the host
        res = b.wait_end()                    # stops the VMM, returns Result
    print(res.report()); sys.exit(0 if res.ok else 1)

Command line:

    debguest.py --vmm keel|qemu [--keel PATH] (--case NAME | --script FILE |
                -c TEXT | --shell) [--cpus N] [--mem MiB] [--transport pci|mmio]
                [--kernel vmlinux|vmlinuz|PATH] [--disk PATH[,ro][,serial=S]]...
                [--net nat[,hostfwd=tcp::H-:G]...|tap=IF]... [--rng] [--console]
                [--file HOST[:GUEST]]... [--env K=V]... [--cmdline WORDS]
                [--timeout S] [--keep DIR] [--verbose]

Exit: 0 the script ended with rc 0, every check ok (and with --case, every
expected check present); 1 otherwise; 77 skip (keel without hardware KVM,
no qemu-system-x86_64).

A guest test script prints `KEEL-CHECK name ok|fail detail` lines (helpers in
/lib/keel.sh); /init ends it with `KEEL-DEBIAN-END rc=N`.  Without ACPI
(keel today) `poweroff -f` only halts the guest, so the runner stops the VMM
itself (SIGTERM) once it has seen that line; a VMM that exits on its own
(QEMU -M pc powers off through ACPI) is fine too.
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests'))
from kvmhost import hardware_kvm  # noqa: E402

KIT_SOURCES = ['setup.sh', 'init', 'keel.sh', 'udhcpc.script',
               os.path.join('..', 'nested', 'setup.sh')]
BASE_CMDLINE = 'console=ttyS0 panic=-1 reboot=k rdinit=/init'


class Skip(Exception):
    pass


class KitError(Exception):
    pass


# ------------------------------------------------------------------ the kit

def cache_dir():
    return os.environ.get('KEEL_DEBIAN_CACHE') or os.path.join(REPO, 'build', 'debian-guest')


def kit(build=True, log=sys.stderr):
    """Paths of the kit ({'vmlinux', 'vmlinuz', 'initrd', 'kpkg'}), running
    setup.sh first when the cache is missing or older than the kit's sources."""
    cache = cache_dir()
    initrd = os.path.join(cache, 'initramfs.cpio.gz')
    try:
        built = os.path.getmtime(initrd)
        stale = any(os.path.getmtime(os.path.join(HERE, s)) > built for s in KIT_SOURCES)
    except OSError:
        stale = True
    if stale and build:
        print('debguest: building the kit: tests/debian/setup.sh %s' % cache, file=log, flush=True)
        r = subprocess.run([os.path.join(HERE, 'setup.sh'), cache], stdout=log, stderr=log)
        if r.returncode != 0:
            raise KitError('tests/debian/setup.sh failed with status %d' % r.returncode)
    if not os.path.exists(initrd):
        raise KitError('no kit in %s (run tests/debian/setup.sh)' % cache)
    k = {'initrd': initrd, 'vmlinuz': os.path.join(cache, 'vmlinuz'),
         'vmlinux': os.path.join(cache, 'vmlinux')}
    with open(os.path.join(cache, 'kernel.pkg')) as f:
        k['kpkg'] = f.read().strip()
    return k


def cpio_newc(entries):
    """An uncompressed newc archive of [(path, mode, data or None)], with
    its trailer.  Directories: data None and a S_IFDIR mode."""
    out = bytearray()

    def add(name, mode, data, ino):
        nb = name.encode() + b'\0'
        hdr = '070701' + ''.join('%08X' % v for v in (
            ino, mode, 0, 0, 1 if mode & 0o170000 != 0o040000 else 2, 0,
            len(data), 0, 0, 0, 0, len(nb), 0))
        out.extend(hdr.encode() + nb)
        out.extend(b'\0' * (-len(out) % 4))
        out.extend(data)
        out.extend(b'\0' * (-len(out) % 4))

    for i, (name, mode, data) in enumerate(entries):
        add(name.lstrip('/'), mode, data or b'', 1000 + i)
    add('TRAILER!!!', 0, b'', 0)
    out.extend(b'\0' * (-len(out) % 512))
    return bytes(out)


def test_archive(script, files=None, env=None):
    """The per-test archive: /keel/test, /keel/env, and files
    ({guest path: bytes or (bytes, mode)}), with their directories."""
    files = dict(files or {})
    if script is not None:
        files['/keel/test'] = (script.encode() if isinstance(script, str) else script, 0o755)
    if env:
        files['/keel/env'] = ''.join('%s=%s\n' % (k, shlex.quote(str(v)))
                                     for k, v in sorted(env.items())).encode()
    dirs, entries = set(), []
    for path in sorted(files):
        parts = path.strip('/').split('/')[:-1]
        for i in range(1, len(parts) + 1):
            d = '/'.join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entries.append((d, 0o040755, None))
    for path in sorted(files):
        v = files[path]
        data, mode = v if isinstance(v, tuple) else (v, 0o644)
        entries.append((path, 0o100000 | mode, data))
    return cpio_newc(entries)


# ------------------------------------------------------------ configuration

class Disk:
    """A raw image: ro attaches it read-only; serial shows in the guest at
    /sys/block/vdX/serial (keel.sh: disk_by_serial)."""

    def __init__(self, path, ro=False, serial=None):
        self.path, self.ro, self.serial = path, ro, serial

    @classmethod
    def parse(cls, spec):
        parts = spec.split(',')
        d = cls(parts[0])
        for p in parts[1:]:
            if p == 'ro':
                d.ro = True
            elif p.startswith('serial='):
                d.serial = p[7:]
            else:
                raise ValueError('--disk %s: unknown option %s' % (spec, p))
        return d


class Net:
    """kind 'nat' (keel --net nat / QEMU -netdev user; the host is 10.0.2.2,
    hostfwd [(proto, host_port, guest_port)]) or 'tap' (ifname)."""

    def __init__(self, kind='nat', hostfwd=(), ifname=None, mac=None):
        self.kind, self.hostfwd, self.ifname, self.mac = kind, list(hostfwd), ifname, mac

    @classmethod
    def parse(cls, spec):
        parts = spec.split(',')
        if parts[0] == 'nat':
            n = cls('nat')
        elif parts[0].startswith('tap='):
            n = cls('tap', ifname=parts[0][4:])
        else:
            raise ValueError('--net %s: want nat[,...] or tap=IFNAME' % spec)
        for p in parts[1:]:
            m = re.fullmatch(r'hostfwd=(tcp|udp)::(\d+)-:(\d+)', p)
            if m:
                n.hostfwd.append((m.group(1), int(m.group(2)), int(m.group(3))))
            elif p.startswith('mac='):
                n.mac = p[4:]
            else:
                raise ValueError('--net %s: unknown option %s' % (spec, p))
        return n


class Config:
    """What to boot.  vmm: 'keel' or 'qemu'; transport: 'pci' (QEMU -M pc)
    or 'mmio' (QEMU -M microvm with ACPI, keel --virtio-transport mmio);
    kernel: 'vmlinux' (PVH entry), 'vmlinuz' (bzImage) or a path; console:
    a virtio console (hvc0) written to console.log; script: the shell text
    of /keel/test (None: an interactive shell); files: extra files of the
    per-test archive; env: variables exported to the script (/keel/env)."""

    def __init__(self, vmm='qemu', keel=None, cpus=1, mem=256, transport='pci',
                 kernel='vmlinux', disks=(), nets=(), rng=False, console=False,
                 cmdline='', script=None, files=None, env=None, timeout=300,
                 name='debguest'):
        self.vmm, self.keel, self.cpus, self.mem = vmm, keel, cpus, mem
        self.transport, self.kernel = transport, kernel
        self.disks, self.nets = list(disks), list(nets)
        self.rng, self.console, self.cmdline = rng, console, cmdline
        self.script, self.files, self.env = script, dict(files or {}), dict(env or {})
        self.timeout, self.name = timeout, name


def tcg_machine():
    """True inside a machine that QEMU's TCG emulates (the nested L1 of
    tests/nested runs on QEMU's "max" CPU model)."""
    try:
        with open('/proc/cpuinfo') as f:
            return 'QEMU TCG CPU' in f.read()
    except OSError:
        return False


def noxsave():
    """Whether guests get `noxsave`: in the nested L1 (TCG below KVM), a
    guest that enables XSAVE gets CPUID(0xD,0).EBX stale after XSETBV, and
    Debian's kernel warns "XSAVE consistency problem: size 2696 !=
    kernel_size 576" with a Call Trace, under keel and under QEMU -cpu host
    alike.  QEMU's reference CPU has -xsave anyway; noxsave gives keel's
    guest the same.  KEEL_DEBIAN_NOXSAVE=0|1 overrides."""
    v = os.environ.get('KEEL_DEBIAN_NOXSAVE')
    if v in ('0', '1'):
        return v == '1'
    return tcg_machine()


def qemu_binary():
    q = shutil.which('qemu-system-x86_64')
    if not q:
        raise Skip('qemu-system-x86_64 not found (Debian package qemu-system-x86)')
    return q


def qemu_accel():
    if hardware_kvm()[0] and os.environ.get('KEEL_DEBIAN_QEMU_ACCEL') != 'tcg':
        return ['-accel', 'kvm', '-cpu', os.environ.get(
            'KEEL_DEBIAN_QEMU_CPU', 'host,-arch-capabilities,-xsave')]
    return ['-accel', 'tcg', '-cpu', 'max']


def vmm_argv(cfg, kernel, initrd, cmdline, serial, console_log, interactive=False):
    if cfg.vmm == 'keel':
        keel = cfg.keel or os.path.join(REPO, 'build', 'keel')
        argv = [keel, 'run', '--cpus', str(cfg.cpus), '--memory', '%dM' % cfg.mem,
                '--kernel', kernel, '--initrd', initrd, '--cmdline', cmdline,
                '--serial', 'stdio' if interactive else 'file:' + serial]
        if cfg.transport == 'mmio':
            argv += ['--virtio-transport', 'mmio']
        for d in cfg.disks:
            argv += ['--disk', d.path + (',ro' if d.ro else '') +
                     (',serial=' + d.serial if d.serial else '')]
        for n in cfg.nets:
            if n.kind == 'nat':
                spec = 'nat' + ''.join(',hostfwd=%s::%d-:%d' % f for f in n.hostfwd)
            else:
                spec = 'tap=' + n.ifname
            argv += ['--net', spec + (',mac=' + n.mac if n.mac else '')]
        if cfg.rng:
            argv += ['--rng']
        if cfg.console:
            argv += ['--console', 'file:' + console_log]
        return argv
    mmio = cfg.transport == 'mmio'
    sfx = '-device' if mmio else '-pci'
    opt = '' if mmio else ',disable-legacy=on'   # modern-only, as keel's
    argv = [qemu_binary()] + qemu_accel() + [
        '-M', 'microvm,acpi=on' if mmio else 'pc',
        '-m', str(cfg.mem), '-smp', str(cfg.cpus),
        '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
        '-kernel', kernel, '-initrd', initrd, '-append', cmdline]
    argv += ['-serial', 'mon:stdio'] if interactive else ['-monitor', 'none', '-serial', 'file:' + serial]
    if mmio:
        argv += ['-global', 'virtio-mmio.force-legacy=false']
    for i, d in enumerate(cfg.disks):
        argv += ['-drive', 'file=%s,format=raw,if=none,id=d%d%s' % (
                     d.path, i, ',readonly=on' if d.ro else ''),
                 '-device', 'virtio-blk%s,drive=d%d%s%s' % (
                     sfx, i, opt, ',serial=' + d.serial if d.serial else '')]
    for i, n in enumerate(cfg.nets):
        if n.kind == 'nat':
            nd = 'user,id=n%d' % i + ''.join(',hostfwd=%s::%d-:%d' % f for f in n.hostfwd)
        else:
            nd = 'tap,id=n%d,ifname=%s,script=no,downscript=no' % (i, n.ifname)
        argv += ['-netdev', nd, '-device', 'virtio-net%s,netdev=n%d%s%s%s' % (
            sfx, i, opt, '' if mmio else ',romfile=', ',mac=' + n.mac if n.mac else '')]
    if cfg.rng:
        argv += ['-device', 'virtio-rng%s%s' % (sfx, opt)]
    if cfg.console:
        argv += ['-device', 'virtio-serial%s%s' % (sfx, opt),
                 '-chardev', 'file,id=vc0,path=' + console_log,
                 '-device', 'virtconsole,chardev=vc0']
    return argv


# ------------------------------------------------------------------ running

MARK_INIT = re.compile(r'^KEEL-DEBIAN-INIT uptime=(\S+)', re.M)
MARK_READY = re.compile(r'^KEEL-DEBIAN-READY uptime=(\S+) modules=(\d+) failed=(\S*)', re.M)
MARK_END = re.compile(r'^KEEL-DEBIAN-END rc=(\d+) uptime=(\S+)', re.M)
HALTED = re.compile(r'reboot: (System halted|Power down|Restarting system)')
CHECK = re.compile(r'^KEEL-CHECK (\S+) (ok|fail) ?(.*)$', re.M)
NOTE = re.compile(r'^KEEL-NOTE (\S+) ?(.*)$', re.M)


class BootError(Exception):
    pass


class Result:
    """rc: the script's exit status (None: no KEEL-DEBIAN-END); checks:
    [(name, ok, detail, where)] from the guest ('guest') and the runner
    ('host'); notes {name: value}; times in seconds from the VMM's start
    (t_user: /init ran, t_ready: modules loaded, t_end: the END line, wall:
    until the VMM was gone), with the guest's uptime at those points;
    vmm_how: how the VMM ended; serial, console: the logs' text."""

    def __init__(self):
        self.rc = None
        self.checks, self.notes, self.errors = [], {}, []
        self.expected = []
        self.t_user = self.t_ready = self.t_end = self.wall = None
        self.up_user = self.up_ready = self.up_end = None
        self.modules_failed = None
        self.vmm_how, self.vmm_status, self.serial, self.console, self.stderr = '', None, '', '', ''
        self.cmdline = self.kernel = ''
        self.argv, self.workdir, self.vmm, self.name = [], None, '', ''

    def check(self, name, ok, detail=''):
        """Adds a runner-side check."""
        self.checks.append((name, bool(ok), str(detail), 'host'))

    def expect(self, *names):
        """Check names that must appear (a missing one fails the result)."""
        self.expected += names

    def missing(self):
        have = {c[0] for c in self.checks}
        return [n for n in self.expected if n not in have]

    @property
    def ok(self):
        return (self.rc == 0 and not self.errors and not self.missing() and
                all(c[1] for c in self.checks))

    def times(self):
        def f(t, up):
            return '-' if t is None else '%.1f s (guest %s s)' % (t, up)
        return ('user space %s, ready %s, end %s, VMM gone %s' % (
            f(self.t_user, self.up_user), f(self.t_ready, self.up_ready),
            f(self.t_end, self.up_end), '-' if self.wall is None else '%.1f s' % self.wall))

    def report(self):
        out = ['%s on %s: script rc %s; VMM %s' % (self.name, self.vmm, self.rc, self.vmm_how),
               'times: ' + self.times(),
               'kernel %s, command line: %s' % (os.path.basename(self.kernel), self.cmdline)]
        if self.modules_failed:
            out.append('modules not loaded: ' + self.modules_failed)
        for n, v in self.notes.items():
            out.append('note %s: %s' % (n, v))
        for name, ok, detail, where in self.checks:
            out.append('%s %s%s: %s' % ('ok' if ok else 'FAIL', name,
                                        '' if where == 'guest' else ' (host)', detail))
        for n in self.missing():
            out.append('FAIL %s: the check never reported' % n)
        for e in self.errors:
            out.append('FAIL: ' + e)
        if not self.ok:
            tail = self.serial.splitlines()[-40:]
            out.append('--- serial log (last %d lines) ---' % len(tail))
            out += tail
            if self.stderr.strip():
                out.append('--- VMM stderr ---')
                out.append(self.stderr.strip()[-3000:])
        out.append('PASS' if self.ok else 'FAIL')
        return '\n'.join(out)

    def as_dict(self):
        return {k: getattr(self, k) for k in (
            'name', 'vmm', 'rc', 'ok', 'checks', 'notes', 'errors', 't_user', 't_ready',
            't_end', 'wall', 'up_user', 'up_ready', 'up_end', 'modules_failed',
            'vmm_how', 'vmm_status', 'kernel', 'cmdline', 'argv')}


class Boot:
    """One boot of the kit.  Use as a context manager (the VMM is killed on
    the way out whatever happens); keep=DIR keeps the logs, the initrd and
    the argv there, else a temporary directory is removed."""

    def __init__(self, cfg, keep=None, verbose=False, log=sys.stdout):
        self.cfg, self.verbose, self.log = cfg, verbose, log
        self.res = Result()
        self.res.vmm, self.res.name = cfg.vmm, cfg.name
        self._tmp = None
        if keep:
            os.makedirs(keep, exist_ok=True)
            self.wd = os.path.abspath(keep)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix='keel-debian-')
            self.wd = self._tmp.name
        self.res.workdir = self.wd
        self.serial_path = os.path.join(self.wd, 'serial.log')
        self.console_path = os.path.join(self.wd, 'console.log')
        self.stderr_path = os.path.join(self.wd, 'vmm.stderr')
        self.p = None
        self._buf = b''
        self.text = ''
        self._halted_at = None

    # -- set-up
    def _prepare(self, interactive=False):
        cfg = self.cfg
        if cfg.vmm == 'keel':
            ok, why = hardware_kvm()
            if not ok:
                raise Skip(why + ' (run inside tests/nested/run-in-l1)')
            keel = cfg.keel or os.path.join(REPO, 'build', 'keel')
            if not os.access(keel, os.X_OK):
                raise BootError('keel binary %s not found' % keel)
        else:
            qemu_binary()
        k = kit()
        kernel = k.get(cfg.kernel, cfg.kernel)
        if cfg.kernel == 'vmlinux' and not os.path.exists(kernel):
            kernel = k['vmlinuz']   # no xz on the host: no PVH vmlinux extracted
        if not os.path.exists(kernel):
            raise BootError('kernel %s not found' % kernel)
        initrd = os.path.join(self.wd, 'initrd.img')
        with open(k['initrd'], 'rb') as f:
            base = f.read()
        with open(initrd, 'wb') as f:
            f.write(base)
            f.write(b'\0' * (-len(base) % 4))
            if cfg.script is not None or cfg.files or cfg.env:
                f.write(test_archive(cfg.script, cfg.files, cfg.env))
        cmdline = BASE_CMDLINE
        if noxsave():
            cmdline += ' noxsave'
        if cfg.cmdline:
            cmdline += ' ' + cfg.cmdline
        self.res.cmdline, self.res.kernel = cmdline, kernel
        if interactive and cfg.script is None:
            cmdline += ' keel.shell'
        for p in (self.serial_path, self.console_path):
            open(p, 'wb').close()
        argv = vmm_argv(cfg, kernel, initrd, cmdline, self.serial_path,
                        self.console_path, interactive)
        self.res.argv = argv
        with open(os.path.join(self.wd, 'argv'), 'w') as f:
            f.write(' '.join(shlex.quote(a) for a in argv) + '\n')
        if self.verbose:
            print('+ ' + ' '.join(shlex.quote(a) for a in argv), file=self.log, flush=True)
        return argv

    def start(self):
        argv = self._prepare()
        self._err = open(self.stderr_path, 'wb')
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.cfg.timeout
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._err,
                                  stderr=self._err, start_new_session=True)
        return self

    def interactive(self):
        """Runs the VMM in the foreground on this terminal (serial on stdio)."""
        argv = self._prepare(interactive=True)
        return subprocess.call(argv)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop('the runner left early')
        if self._tmp:
            self._tmp.cleanup()
        return False

    # -- watching
    def elapsed(self):
        return time.monotonic() - self.t0

    def poll(self):
        """Reads new serial output; records the markers' times."""
        with open(self.serial_path, 'rb') as f:
            f.seek(len(self._buf))
            new = f.read()
        if new:
            self._buf += new
            # Complete lines only: a marker read half-written must not match.
            self.text = self._buf[:self._buf.rfind(b'\n') + 1].decode(
                'utf-8', 'replace').replace('\r', '')
            if self.verbose:
                self.log.write(new.decode('utf-8', 'replace').replace('\r', ''))
                self.log.flush()
        now = self.elapsed()
        r = self.res
        if r.t_user is None:
            m = MARK_INIT.search(self.text)
            if m:
                r.t_user, r.up_user = now, m.group(1)
        if r.t_ready is None:
            m = MARK_READY.search(self.text)
            if m:
                r.t_ready, r.up_ready = now, m.group(1)
                r.modules_failed = m.group(3)
        if r.t_end is None:
            m = MARK_END.search(self.text)
            if m:
                r.t_end, r.up_end, r.rc = now, m.group(2), int(m.group(1))
        if self._halted_at is None and HALTED.search(self.text):
            self._halted_at = now

    def running(self):
        return self.p is not None and self.p.poll() is None

    def wait_for(self, regex, timeout=None, start=0):
        """Waits for regex (re.M) in the serial log from offset start;
        returns the match.  BootError on the deadline or when the VMM ends."""
        rx = re.compile(regex, re.M) if isinstance(regex, str) else regex
        limit = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        while True:
            self.poll()
            m = rx.search(self.text, start)
            if m:
                return m
            if not self.running():
                raise BootError('the VMM ended (%s) before /%s/' % (self._status(), rx.pattern))
            if time.monotonic() > limit:
                raise BootError('timed out after %.0f s waiting for /%s/' % (self.elapsed(), rx.pattern))
            time.sleep(0.1)

    def _status(self):
        rc = self.p.poll()
        if rc is None:
            return 'running'
        return 'killed by signal %d' % -rc if rc < 0 else 'exit %d' % rc

    def wait_end(self, grace=10):
        """Waits for KEEL-DEBIAN-END, lets the VMM exit by itself (power-off
        through ACPI) or stops it once the guest halted (or after grace
        seconds), collects the logs and checks into the Result."""
        try:
            self.wait_for(MARK_END)
        except BootError as e:
            self.res.errors.append(str(e))
            self.stop('no KEEL-DEBIAN-END')
            return self.finish()
        end = time.monotonic()
        while self.running():
            self.poll()
            now = time.monotonic()
            if self._halted_at is not None and self.elapsed() - self._halted_at > 1:
                break
            if now - end > grace:
                break
            time.sleep(0.1)
        self.stop()
        return self.finish()

    def stop(self, why=None):
        """Ends the VMM: SIGTERM, SIGKILL after 10 s.  Records how it ended."""
        if self.p is None or self.res.vmm_status is not None:
            return
        if self.p.poll() is not None:
            self.res.vmm_how = 'exited by itself (%s)' % self._status()
        else:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
                how = 'stopped by the runner (SIGTERM: %s)' % self._status()
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
                how = 'killed by the runner (SIGTERM ignored for 10 s)'
            if self._halted_at is not None:
                how = 'guest halted; ' + how
            self.res.vmm_how = how + (': ' + why if why else '')
        self.res.vmm_status = self.p.returncode
        self.res.wall = self.elapsed()
        self._err.close()

    def finish(self):
        self.poll()
        r = self.res
        r.serial = self.text = self._buf.decode('utf-8', 'replace').replace('\r', '')
        r.console = read_text(self.console_path)
        r.stderr = read_text(self.stderr_path)
        for m in CHECK.finditer(self.text):
            r.checks.append((m.group(1), m.group(2) == 'ok', m.group(3).strip(), 'guest'))
        for m in NOTE.finditer(self.text):
            r.notes[m.group(1)] = m.group(2).strip()
        if r.rc is None and not r.errors:
            r.errors.append('no KEEL-DEBIAN-END line')
        elif r.rc not in (None, 0):
            r.errors.append('the test script exited %d' % r.rc)
        return r


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')
    except OSError:
        return ''


def run(cfg, keep=None, verbose=False, host=None):
    """Boots cfg, runs host(boot) (if given) while the guest runs, waits for
    the end; returns the Result."""
    with Boot(cfg, keep=keep, verbose=verbose) as b:
        if host:
            try:
                host(b)
            except BootError as e:
                b.res.errors.append(str(e))
        return b.wait_end()


# ------------------------------------------------------------ host helpers

def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pattern(seed, size):
    """size deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(b'%s:%d' % (seed.encode(), i)).digest()
        i += 1
    return bytes(out[:size])


class HttpServer:
    """Serves {path: bytes} on 127.0.0.1 (the guest's 10.0.2.2 under NAT)."""

    def __init__(self, files):
        self.files, self.requests = files, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.send_header('Content-Type', 'application/octet-stream')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.port = self.srv.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


# ------------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='See tests/debian/README.md.  Cases: ' + ', '.join(sorted(_cases())))
    ap.add_argument('--vmm', choices=['keel', 'qemu'], default='qemu')
    ap.add_argument('--keel', help='keel binary (default build/keel)')
    what = ap.add_mutually_exclusive_group()
    what.add_argument('--case', help='a case of cases.py (meson runs these)')
    what.add_argument('--script', help='a shell script to run as /keel/test')
    what.add_argument('-c', dest='text', help='shell text to run as /keel/test')
    what.add_argument('--shell', action='store_true',
                      help='an interactive shell on this terminal (the default without a script)')
    ap.add_argument('--cpus', type=int, default=1)
    ap.add_argument('--mem', type=int, default=256, help='MiB')
    ap.add_argument('--transport', choices=['pci', 'mmio'], default='pci')
    ap.add_argument('--kernel', default=None, help='vmlinux (PVH, default), vmlinuz or a path')
    ap.add_argument('--disk', action='append', default=[], help='PATH[,ro][,serial=S]')
    ap.add_argument('--net', action='append', default=[],
                    help='nat[,hostfwd=tcp::H-:G]...[,mac=M] or tap=IFNAME[,mac=M]')
    ap.add_argument('--rng', action='store_true')
    ap.add_argument('--console', action='store_true', help='virtio console to console.log')
    ap.add_argument('--file', action='append', default=[],
                    help='HOST[:GUEST]: put a file in the guest (default /keel/NAME)')
    ap.add_argument('--env', action='append', default=[], help='K=V for the script')
    ap.add_argument('--cmdline', default='', help='more kernel command line words')
    ap.add_argument('--timeout', type=float, default=None, help='seconds for the whole boot')
    ap.add_argument('--keep', help='keep logs, initrd and argv in this directory')
    ap.add_argument('--json', help='write the result as JSON here')
    ap.add_argument('--verbose', action='store_true', help='echo the serial log')
    a = ap.parse_args(argv)

    try:
        if a.case:
            cases = _cases()
            if a.case not in cases:
                ap.error('unknown case %s (cases: %s)' % (a.case, ', '.join(sorted(cases))))
            res = cases[a.case](a)
        else:
            script = None
            if a.script:
                with open(a.script) as f:
                    script = f.read()
            elif a.text is not None:
                script = a.text
            files = {}
            for spec in a.file:
                hostp, _, guestp = spec.partition(':')
                with open(hostp, 'rb') as f:
                    data = f.read()
                mode = 0o755 if os.access(hostp, os.X_OK) else 0o644
                files[guestp or '/keel/' + os.path.basename(hostp)] = (data, mode)
            cfg = Config(vmm=a.vmm, keel=a.keel, cpus=a.cpus, mem=a.mem,
                         transport=a.transport, kernel=a.kernel or 'vmlinux',
                         disks=[Disk.parse(d) for d in a.disk],
                         nets=[Net.parse(n) for n in a.net], rng=a.rng,
                         console=a.console, cmdline=a.cmdline, script=script,
                         files=files, env=dict(e.split('=', 1) for e in a.env),
                         timeout=a.timeout or 600, name=a.script or 'script')
            if script is None:
                return Boot(cfg, keep=a.keep).interactive()
            res = run(cfg, keep=a.keep, verbose=a.verbose)
    except Skip as e:
        print('SKIP: %s' % e)
        return 77
    except (KitError, BootError, ValueError) as e:
        print('FAIL: %s' % e)
        return 1
    print(res.report())
    if a.keep:
        print('logs kept in %s' % res.workdir)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res.as_dict(), f, indent=1)
    return 0 if res.ok else 1


def _cases():
    import cases
    return cases.CASES


if __name__ == '__main__':
    sys.path.insert(0, HERE)
    sys.exit(main())
