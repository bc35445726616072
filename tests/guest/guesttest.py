#!/usr/bin/env python3
"""Boot one keel test guest under QEMU or keel and judge its serial output.

The guest reports on COM1: "PASS <what>" / "FAIL <what>: <why>" lines and
finally "KEEL-TEST-END pass=N fail=M", then resets the VM (which ends the
VMM: QEMU runs with -no-reboot). Exit status: 0 pass, 1 fail, 77 skip.
"""
import argparse
import codecs
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
KVM_GET_API_VERSION = 0xae00
END_RE = re.compile(r'KEEL-TEST-END pass=(\d+) fail=(\d+)')
CHECK_RE = re.compile(r'^(PASS|FAIL) ')


def kvm_usable():
    """(usable, reason) for /dev/kvm."""
    try:
        fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, '/dev/kvm: ' + e.strerror
    try:
        ver = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        return False, 'KVM_GET_API_VERSION: ' + e.strerror
    finally:
        os.close(fd)
    if ver != 12:
        return False, 'unexpected KVM API version %d' % ver
    return True, 'ok'


def make_initrd(size):
    """Initrd whose byte i is (i*7+3)&0xff, as the bootparams guest checks."""
    period = bytes((i * 7 + 3) & 0xff for i in range(256))
    full, rest = divmod(size, 256)
    with tempfile.NamedTemporaryFile(prefix='keel-initrd-',
                                     delete=False) as f:
        f.write(period * full + period[:rest])
    return f.name


def build_cmdline(a):
    words = [a.cmdline] if a.cmdline else []
    words.append('expect_mem_mib=%d' % a.mem)
    words.append('cpus=%d' % a.cpus)
    if a.initrd_size:
        words.append('initrd_size=%d' % a.initrd_size)
    if a.hosttime:
        words.append('hosttime=%d' % int(time.time()))
    return ' '.join(words)


def vmm_command(a, cmdline, initrd):
    if a.vmm == 'keel':
        cmd = [a.keel, 'run', '--cpus', str(a.cpus), '--memory',
               '%dM' % a.mem, '--kernel', a.guest, '--cmdline', cmdline]
        if initrd:
            cmd += ['--initrd', initrd]
        return cmd + ['--serial', 'stdio']
    kvm, _ = kvm_usable()
    cmd = [a.qemu, '-M', 'pc']
    if kvm:
        cmd += ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities,-xsave']
    else:
        cmd += ['-accel', 'tcg', '-cpu', 'max']
    # One CPU per socket: SeaBIOS lists one MP-table entry per package.
    cmd += ['-m', str(a.mem),
            '-smp', '%d,sockets=%d,cores=1,threads=1' % (a.cpus, a.cpus),
            '-nographic', '-no-reboot', '-serial', 'stdio', '-monitor', 'none',
            '-kernel', a.guest, '-append', cmdline]
    if initrd or a.module:
        cmd += ['-initrd', initrd or a.module]
    return cmd


def run_vm(cmd, stdin_data, timeout):
    """Run the VMM; return (output text, exit code or None on time-out)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out = bytearray()
    fed = [stdin_data is None]

    def reader():
        while True:
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:
                return
            out.extend(data)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            if not fed[0] and re.search(rb'(^|\n)READY\r?\n', out):
                fed[0] = True
                try:
                    proc.stdin.write(stdin_data.encode())
                    proc.stdin.flush()
                except OSError:
                    pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = None
    t.join(5)
    try:
        proc.stdin.close()
    except OSError:
        pass
    return out.decode('utf-8', 'replace'), rc


def judge(text, rc, expect_pass):
    lines = [l.strip('\r') for l in text.split('\n')]
    fails = [l for l in lines if CHECK_RE.match(l) and l.startswith('FAIL')]
    ends = [m for m in (END_RE.search(l) for l in lines) if m]
    if rc is None:
        return False, 'timed out (the guest never reset the VM)'
    if not ends:
        return False, 'no KEEL-TEST-END line (VMM exit status %d)' % rc
    if len(ends) > 1:
        return False, '%d KEEL-TEST-END lines' % len(ends)
    npass, nfail = int(ends[0].group(1)), int(ends[0].group(2))
    if nfail or fails:
        return False, '%d failed check(s): %s' % (max(nfail, len(fails)),
                                                  fails[0] if fails else '')
    if npass == 0:
        return False, 'no checks passed'
    if npass < expect_pass:
        return False, 'only %d checks passed, expected >= %d' % (npass,
                                                                expect_pass)
    if rc != 0:
        return False, 'VMM exited with status %d' % rc
    return True, '%d checks passed' % npass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmm', choices=['qemu', 'keel'], required=True)
    ap.add_argument('--keel', help='path to the keel binary')
    ap.add_argument('--qemu', default='qemu-system-x86_64')
    ap.add_argument('--guest', required=True, help='guest image')
    ap.add_argument('--cpus', type=int, default=1)
    ap.add_argument('--mem', type=int, default=128, help='MiB')
    ap.add_argument('--cmdline', default='')
    ap.add_argument('--initrd-size', type=int, default=0)
    ap.add_argument('--hosttime', action='store_true',
                    help='pass hosttime=<now> for the RTC check')
    ap.add_argument('--stdin-data', help='sent after READY; \\n escapes '
                    'work, a final newline is added if missing')
    ap.add_argument('--module', help='qemu only: file passed as -initrd '
                    '(the PVH module), e.g. the bzImage for bzload.elf')
    ap.add_argument('--timeout', type=float, default=120)
    ap.add_argument('--expect-pass', type=int, default=1)
    a = ap.parse_args()
    name = os.path.basename(a.guest)

    if a.vmm == 'keel':
        ok, why = kvm_usable()
        if not ok:
            print('SKIP %s under keel: %s' % (name, why))
            return SKIP
        if not a.keel or not os.access(a.keel, os.X_OK):
            print('FAIL %s: keel binary not found: %s' % (name, a.keel))
            return 1
    if a.module and (a.vmm != 'qemu' or a.initrd_size):
        print('FAIL %s: --module is for qemu without --initrd-size' % name)
        return 1
    if a.vmm == 'qemu' and not shutil.which(a.qemu):
        print('SKIP %s under qemu: %s not found' % (name, a.qemu))
        return SKIP

    stdin_data = None
    if a.stdin_data is not None:
        stdin_data = codecs.decode(a.stdin_data, 'unicode_escape')
        if not stdin_data.endswith('\n'):
            stdin_data += '\n'

    initrd = make_initrd(a.initrd_size) if a.initrd_size else None
    try:
        cmd = vmm_command(a, build_cmdline(a), initrd)
        print('+ ' + ' '.join(cmd))
        sys.stdout.flush()
        start = time.time()
        text, rc = run_vm(cmd, stdin_data, a.timeout)
    finally:
        if initrd:
            os.unlink(initrd)
    ok, why = judge(text, rc, a.expect_pass)
    print('\n%s: %s under %s: %s (%.1f s)' % ('PASS' if ok else 'FAIL', name,
                                             a.vmm, why, time.time() - start))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
