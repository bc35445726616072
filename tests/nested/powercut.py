#!/usr/bin/env python3
"""Power-cut test of keel's virtio-blk sync modes: data the guest flushed
must survive the loss of the whole machine keel runs on, not only of keel.

    tests/nested/powercut.py --keel build/keel --guest build/guest/virtio_blk.elf
                             [--mode SYNC:CACHE[:EXPECT]]... [--runs N]

A kill -9 of keel (tests/guest, keel-virtio-blk-kill9) cannot tell the sync
modes apart: what keel wrote is in the host's page cache, which outlives
keel.  Here the machine keel runs on is the nested L1 (tests/nested/run-in-l1,
QEMU TCG), and the power cut is a SIGKILL of that L1's QEMU: L1's kernel,
its page cache and keel all vanish at once.  For each run:

 1. On the host, an ext4 file system image (the L1 scratch disk) is made
    with mkfs.ext4 -d, holding disk.img: 8 MiB, every sector s filled with
    u64 words s << 32 | w (tests/guest/guesttest.py's pattern).  The test
    owns that file: it outlives L1.
 2. run-in-l1 --scratch-file attaches it to L1 as virtio-blk with
    cache=none (QEMU opens the host file O_DIRECT, aio=io_uring or
    threads) and mounts it at $KEEL_L1_SCRATCH; --pidfile names the L1
    QEMU.  In L1, keel runs guest/tests/virtio_blk.c on disk.img with the
    mode under test (--disk ...,sync=S,cache=C); the guest writes its
    pattern (x 0xa5..) to sectors 64..127, reads it back, sends FLUSH and,
    once the FLUSH completed with status OK, prints BLK-FLUSHED on COM1 and
    spins (blk_hold_after_flush=1).
 3. keel's COM1 is its stdout in L1, which run-in-l1 brings out over an L1
    serial port to our stdout.  As soon as a whole BLK-FLUSHED line arrives
    the L1 QEMU gets SIGKILL.
 4. The file system image is checked as a reboot would find it: e2fsck -fy
    (replays the journal) and debugfs -R "dump /disk.img" (no mount).  The
    64 written sectors are "present" (all the guest's), "missing" (all the
    old pattern) or "partial"; every other sector must be untouched.

What dies with the power is L1's RAM, its page cache included: what keel
left there and never wrote to L1's disk is lost.  What L1 wrote to its
disk is in the host file, because QEMU completes a guest write only once
its pwrite() to the host file returned, and the host does not crash (its
page cache would keep the data even without O_DIRECT).  So the test asks
exactly whether keel's answer to FLUSH put the data on L1's disk:

  sync=full (fsync) and sync=data (fdatasync): present, with either cache
  sync=none, cache=host: missing (the data is in L1's page cache only; L1's
      flusher writes dirty pages back after 30 s, dirty_expire_centisecs,
      and the cut comes well under a second after the flush: the run fails
      if it does not, see --max-cut-ms)
  sync=none, cache=direct: present as well: an O_DIRECT write completes
      once it is on L1's disk, and QEMU's virtual disk loses nothing it has
      completed.  A real disk's volatile write cache is not modelled.

Default modes (the suite's): full:direct, full:host, data:host and the
control none:host:missing, which must come out missing (else the test could
not see a loss and fails).  Exit: 0 pass, 1 fail, 77 skip (no QEMU, no
e2fsprogs, no KVM in L1, or already inside L1).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'tests', 'guest'))
from guesttest import SECTOR, sector_bytes  # noqa: E402

SKIP = 77
IMAGE_MIB = 8
SCRATCH_MIB = 48
WRITE = (64, 64)                # sectors the guest writes, then flushes
SYNCS = ('full', 'data', 'none')
CACHES = ('host', 'direct')
DEFAULT_MODES = ['full:direct', 'full:host', 'data:host', 'none:host:missing']
SBIN = '/usr/sbin:/sbin'


def log(*a):
    print('[powercut]', *a, flush=True)


def tool(name):
    return shutil.which(name, path=os.environ.get('PATH', '') + ':' + SBIN)


def parse_mode(text):
    parts = text.split(':')
    if len(parts) == 2:
        parts.append('missing' if parts[0] == 'none' and parts[1] == 'host'
                     else 'present')
    if (len(parts) != 3 or parts[0] not in SYNCS or parts[1] not in CACHES or
            parts[2] not in ('present', 'missing', 'any')):
        raise argparse.ArgumentTypeError(
            'mode %r: expected SYNC:CACHE[:present|missing|any] with SYNC in '
            '%s and CACHE in %s' % (text, '|'.join(SYNCS), '|'.join(CACHES)))
    return tuple(parts)


def guest_cmdline(mem):
    return ' '.join([
        'expect_mem_mib=%d cpus=1 transport=pci virtio_devices=1' % mem,
        'blk_sectors=%d' % (IMAGE_MIB * 2048),
        'blk_write_sector=%d blk_write_count=%d' % WRITE,
        'blk_hold_after_flush=1'])


def make_scratch(tmp, mkfs):
    """ext4 image holding /disk.img with the host pattern."""
    root = os.path.join(tmp, 'root')
    os.mkdir(root)
    with open(os.path.join(root, 'disk.img'), 'wb') as f:
        for s in range(IMAGE_MIB * 2048):
            f.write(sector_bytes(s))
    fs = os.path.join(tmp, 'scratch.ext4')
    with open(fs, 'wb') as f:
        f.truncate(SCRATCH_MIB << 20)
    r = subprocess.run([mkfs, '-F', '-q', '-b', '4096', '-m', '0', '-L',
                        'keel-scratch', '-E', 'lazy_itable_init=0,'
                        'lazy_journal_init=0,root_owner=0:0', '-d', root, fs],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    shutil.rmtree(root)
    if r.returncode:
        raise RuntimeError('mkfs.ext4 -d: %s' % r.stdout.strip())
    return fs


def check_image(data):
    """('present'|'missing'|'partial'|'corrupt', detail)"""
    if len(data) != IMAGE_MIB << 20:
        return 'corrupt', 'disk.img is %d bytes, expected %d' % (
            len(data), IMAGE_MIB << 20)
    first, n = WRITE
    new = old = 0
    bad = []
    for s in range(IMAGE_MIB * 2048):
        got = data[s * SECTOR:(s + 1) * SECTOR]
        if first <= s < first + n:
            if got == sector_bytes(s, guest=True):
                new += 1
                continue
            if got == sector_bytes(s):
                old += 1
                continue
        elif got == sector_bytes(s):
            continue
        bad.append(s)
    if bad:
        return 'corrupt', '%d sector(s) hold neither pattern, first %d: %s' % (
            len(bad), bad[0], data[bad[0] * SECTOR:bad[0] * SECTOR + 16].hex())
    what = 'present' if new == n else 'missing' if old == n else 'partial'
    return what, '%d of %d flushed sectors hold the guest\'s data, %d the old' \
        % (new, n, old)


def read_back(fs, tmp, e2fsck, debugfs):
    """Replay the journal and dump /disk.img. (bytes or None, notes)"""
    r = subprocess.run([e2fsck, '-fy', fs], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    notes = 'e2fsck exit %d%s' % (r.returncode, ' (journal replayed)'
                                  if 'recovering journal' in r.stdout else '')
    if r.returncode >= 4:
        return None, notes + ': ' + r.stdout.strip()[-500:]
    out = os.path.join(tmp, 'disk.out')
    r = subprocess.run([debugfs, '-R', 'dump /disk.img %s' % out, fs],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode or not os.path.exists(out):
        return None, notes + '; debugfs dump failed: ' + r.stdout.strip()
    with open(out, 'rb') as f:
        return f.read(), notes


def one_run(a, mode, n, tools):
    """(result, ok, why, timings)"""
    sync, cache, expect = mode
    tmp = tempfile.mkdtemp(prefix='keel-powercut-')
    t = {}
    try:
        t0 = time.time()
        fs = make_scratch(tmp, tools['mkfs.ext4'])
        pidfile = os.path.join(tmp, 'qemu.pid')
        disk = '"$KEEL_L1_SCRATCH/disk.img",sync=%s,cache=%s' % (sync, cache)
        inner = ('echo "POWERCUT-L1 drive=$KEEL_L1_SCRATCH_DRIVE"; exec %s run '
                 '--cpus 1 --memory %dM --kernel %s --cmdline "%s" '
                 '--virtio-transport pci --disk %s --serial stdio' % (
                     a.keel, a.mem, a.guest, guest_cmdline(a.mem), disk))
        cmd = [os.path.join(HERE, 'run-in-l1'), '--timeout', str(a.timeout),
               '--clean-env', '--rw', tmp, '--scratch-file', fs, '--pidfile',
               pidfile, '--', 'sh', '-c', inner]
        log('run %d, sync=%s cache=%s: %s' % (n, sync, cache,
                                             ' '.join(cmd[:-1]) + " '...'"))
        t['start'] = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=REPO,
                                start_new_session=True)
        out = bytearray()
        cut = None
        fd = proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            out.extend(data)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            if cut is not None:
                continue
            done = out[:out.rfind(b'\n') + 1]
            if b'POWERCUT-L1' in done and 'l1' not in t:
                t['l1'] = time.time()
            if re.search(rb'^BLK-FLUSHED\r?$', done, re.M):
                t['flushed'] = time.time()
                try:
                    with open(pidfile) as f:
                        cut = int(f.read().split()[0])
                    os.kill(cut, signal.SIGKILL)
                    t['cut'] = time.time()
                except (OSError, ValueError, IndexError) as e:
                    cut = 0
                    log('cannot kill the L1 QEMU (pidfile %s): %s' % (
                        pidfile, e))
                print('\n[powercut: BLK-FLUSHED seen; SIGKILL to the L1 QEMU '
                      '(pid %s): power cut]' % cut, flush=True)
        rc = proc.wait()
        t['end'] = time.time()
        text = out.decode('utf-8', 'replace').replace('\r', '')
        m = re.search(r'POWERCUT-L1 drive=(\S*)', text)
        drive = m.group(1) if m else '?'
        if rc == SKIP:
            return 'skip', None, 'no /dev/kvm in L1 (run-in-l1 exit 77)', t
        fails = [l for l in text.split('\n') if l.startswith('FAIL ')]
        if not cut:
            return 'error', False, 'no power cut: %s (run-in-l1 exit %d)' % (
                fails[0] if fails else 'no BLK-FLUSHED line', rc), t
        if rc != 128 + signal.SIGKILL:
            return 'error', False, 'run-in-l1 exit %d, expected %d (L1 ' \
                'QEMU killed)' % (rc, 128 + signal.SIGKILL), t
        if fails:
            return 'error', False, 'guest check failed before the cut: ' + \
                fails[0], t
        if not drive.startswith('cache=none'):
            return 'error', False, 'L1 scratch disk served with %s, not ' \
                'cache=none (O_DIRECT on the host file)' % drive, t
        data, notes = read_back(fs, tmp, tools['e2fsck'], tools['debugfs'])
        if data is None:
            return 'error', False, notes, t
        result, detail = check_image(data)
        # The host sees COM1 in chunks: the time from keel's start in L1
        # (the POWERCUT-L1 line) to the cut bounds how long the written
        # data can have sat in L1's page cache.
        why = '%s; %s; L1 drive %s; cut %.1f ms after the BLK-FLUSHED line ' \
            'arrived, %.2f s after keel started in L1' % (
                detail, notes, drive, (t['cut'] - t['flushed']) * 1000,
                t['cut'] - t.get('l1', t['flushed']))
        if result == 'corrupt':
            return result, False, why, t
        if expect == 'any':
            return result, True, why, t
        if result != expect:
            if expect == 'missing':
                why += ' (the control lost nothing: this test cannot tell ' \
                    'durability apart)'
            return result, False, why, t
        return result, True, why, t
    finally:
        if a.keep:
            log('kept', tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        t.setdefault('t0', t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--keel', default=os.path.join(REPO, 'build', 'keel'))
    ap.add_argument('--guest', default=os.path.join(
        REPO, 'build', 'guest', 'virtio_blk.elf'))
    ap.add_argument('--mode', type=parse_mode, action='append',
                    metavar='SYNC:CACHE[:EXPECT]',
                    help='repeatable; default: %s' % ' '.join(DEFAULT_MODES))
    ap.add_argument('--runs', type=int, default=1, help='runs per mode')
    ap.add_argument('--mem', type=int, default=128, help='guest MiB')
    ap.add_argument('--timeout', type=int, default=240,
                    help='run-in-l1 timeout per run, seconds')
    ap.add_argument('--keep', action='store_true',
                    help='keep each run\'s scratch file system')
    a = ap.parse_args()
    modes = a.mode or [parse_mode(m) for m in DEFAULT_MODES]
    a.keel = os.path.abspath(a.keel)
    a.guest = os.path.abspath(a.guest)

    if os.path.exists('/run/keel/cmd.sh'):
        print('SKIP powercut: already inside the nested L1 machine (it '
              'boots its own)')
        return SKIP
    tools = {n: tool(n) for n in ('qemu-system-x86_64', 'mkfs.ext4',
                                  'e2fsck', 'debugfs')}
    missing = [n for n, p in tools.items() if not p]
    if missing:
        print('SKIP powercut: %s not found (packages qemu-system-x86, '
              'e2fsprogs)' % ', '.join(missing))
        return SKIP
    for p in (a.keel, a.guest):
        if not os.path.exists(p):
            print('FAIL powercut: %s not found (build first)' % p)
            return 1

    results = []
    begin = time.time()
    for mode in modes:
        for n in range(1, a.runs + 1):
            result, ok, why, t = one_run(a, mode, n, tools)
            if result == 'skip':
                print('SKIP powercut: %s' % why)
                return SKIP
            secs = t.get('end', time.time()) - t['t0']
            boot = t['l1'] - t['start'] if 'l1' in t else float('nan')
            results.append((mode, result, ok, why, secs))
            log('%s sync=%s cache=%s run %d: %s, expected %s: %s (%.1f s, L1 '
                'command start %.1f s)' % ('PASS' if ok else 'FAIL', mode[0],
                                          mode[1], n, result, mode[2], why,
                                          secs, boot))
    print('\npowercut summary (%.0f s):' % (time.time() - begin))
    for mode, result, ok, why, secs in results:
        print('  %-4s sync=%-4s cache=%-6s expected %-7s got %-7s %5.1f s' % (
            'ok' if ok else 'FAIL', mode[0], mode[1], mode[2], result, secs))
    failed = [r for r in results if not r[2]]
    print('%s: %d of %d power cuts as expected' % (
        'FAIL' if failed else 'PASS', len(results) - len(failed),
        len(results)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
