#!/usr/bin/env python3
"""keel vs QEMU benchmark: start-up, memory, exits, virtio-blk/-net, Linux.

    bench/run.py --build build [--quick]

Runs bench/inner.py with /dev/kvm: directly when this host has a usable
/dev/kvm, otherwise inside ONE boot of tests/nested/run-in-l1 (L1 under
QEMU TCG, nested kvm_amd). Prints a markdown table and writes it to
bench/results/latest.md (--quick: bench/work/quick.md, and checks only that
every metric produced a number). See bench/README.md.

Exit status: 0 ok, 1 failure, 77 no /dev/kvm anywhere (not even in L1).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from inner import make_image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
from kvmhost import hardware_kvm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (key, label, unit, higher_is_better, fio key)
ROWS = [
    ('boot_first_ms', 'start-up: process start -> first serial byte '
     '(1 vCPU, 128 MiB)', 'ms', False),
    ('boot_exit_ms', 'start-up: process start -> exit after guest reset',
     'ms', False),
    ('mem_small_overhead_mib', 'VMM memory overhead, 1 vCPU 128 MiB '
     '(peak RSS - guest RAM touched)', 'MiB', False),
    ('mem_small_peak_mib', '  peak RSS, 1 vCPU 128 MiB', 'MiB', False),
    ('mem_big_overhead_mib', 'VMM memory overhead, 4 vCPU 1 GiB 2 disks + NIC',
     'MiB', False),
    ('mem_big_peak_mib', '  peak RSS, 4 vCPU 1 GiB 2 disks + NIC', 'MiB', False),
    ('exit_pio_ns', 'exit round-trip: port-I/O write, unclaimed port',
     'us/exit', False),
    ('exit_mmio_ns', 'exit round-trip: MMIO write, unclaimed address',
     'us/exit', False),
    ('blk_rr1', 'virtio-blk 4 KiB random read, QD1', 'IOPS', True),
    ('blk_rw1', 'virtio-blk 4 KiB random write, QD1', 'IOPS', True),
    ('blk_rr32', 'virtio-blk 4 KiB random read, QD32', 'IOPS', True),
    ('blk_rw32', 'virtio-blk 4 KiB random write, QD32', 'IOPS', True),
    ('blk_sr', 'virtio-blk 1 MiB sequential read, QD{seq_qd}', 'MiB/s',
     True),
    ('blk_sw', 'virtio-blk 1 MiB sequential write, QD{seq_qd}', 'MiB/s',
     True),
    ('net_tap_pps', 'virtio-net UDP guest -> host, TAP: guest send rate '
     '({net_count} x {net_size} B)', 'kpkt/s', True),
    ('net_tap_mbs', '  same, payload throughput', 'MB/s', True),
    ('net_tap_recv', '  same, received by the host socket', '% of sent',
     True),
    ('net_nat_pps', 'virtio-net UDP guest -> host, NAT (user-mode): guest '
     'send rate ({net_count} x {net_size} B)', 'kpkt/s', True),
    ('net_nat_mbs', '  same, payload throughput', 'MB/s', True),
    ('net_nat_recv', '  same, received by the host socket', '% of sent',
     True),
    ('linux_init_s', 'Linux 6.1 boot: process start -> "Run /init" '
     '(linuxtest.py --case pci)', 's', False),
]
GROUP = {'boot': 'boot', 'mem_': 'mem', 'exit': 'exit', 'blk_': 'blk',
         'net_': 'net', 'linu': 'linux'}


def log(*a):
    print('[bench]', *a, file=sys.stderr, flush=True)


def ensure_fio(quick):
    if shutil.which('fio'):
        return
    if quick:
        log('fio not installed: no host column (quick mode installs nothing)')
        return
    log('fio missing: apt-get install -y fio')
    subprocess.run(['apt-get', 'install', '-y', '-q', 'fio'],
                   stdout=subprocess.DEVNULL)
    if not shutil.which('fio'):
        log('could not install fio: no host column')


def fmt(v):
    if v is None:
        return '-'
    if v >= 100:
        return '%.0f' % v
    if v >= 10:
        return '%.1f' % v
    return '%.2f' % v


def summary(vals, scale=1.0):
    if not vals:
        return 'n/a', None
    v = [x * scale for x in vals]
    med = statistics.median(v)
    return '%s [%s-%s]' % (fmt(med), fmt(min(v)), fmt(max(v))), med


def cpu_model():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or '?'


def image_text(info):
    """Where the block rows' image lives, for the table's description."""
    if 'image' not in info:
        return 'image location not recorded'
    text = 'image %s on %s' % (info['image'], info.get('image_fs', '?'))
    if info.get('image_drive'):
        text += (', a virtio-blk disk of L1 (run-in-l1 --scratch-mib; host '
                 'back end: a sparse raw file, -drive %s), so O_DIRECT is '
                 'real' % info['image_drive'])
    return text + '; host fio uses the same file'


def with_opt(cmd, opt, value):
    """CMD with OPT's value replaced (or OPT VALUE appended)."""
    cmd = list(cmd)
    if opt in cmd:
        cmd[cmd.index(opt) + 1] = value
    else:
        cmd += [opt, value]
    return cmd


def table(raw, machine):
    info, s, host = raw['info'], raw['samples'], raw['host']
    out = []
    out.append('# keel vs QEMU benchmark (%s)' % machine['kvm_short'])
    out.append('')
    out.append('Machine: %s' % machine['text'])
    out.append('')
    out.append('Counted runs: %d per VMM (after %d warm-up pair), VMMs '
               'alternating keel, QEMU, keel, QEMU. Values: median '
               '[min-max]; ratio: median [min-max] of keel/QEMU per pair. '
               'QEMU %s, microvm, virtio-mmio for both VMMs, QEMU disk '
               'cache=none,aio=%s; keel --disk IMG,cache=direct. Exit rows: '
               '%d exits per run; guest rdtsc cycles converted at this '
               'kernel\'s TSC rate, %.0f MHz, for both VMMs. Block rows: %d MiB raw image, %d ms per '
               'test, polled guest driver; %s.' % (
                   info['runs'], info['warmup'],
                   info['qemu_version'].replace('QEMU emulator version ', ''),
                   info['qemu_aio'], info['exits'], info['tsc_hz'] / 1e6,
                   info.get('image_mib', 0),
                   info['blk_ms'], image_text(info)))
    only = info.get('only', [])
    if 'net' in only:
        out.append('')
        out.append('Network rows: guest net_test=perf sends %d UDP datagrams '
                   'of %d payload bytes back to back (polled virtio-net over '
                   'virtio-mmio, 1 vCPU); rate = datagrams / guest rdtsc '
                   'time from the first send to the last tx completion; MB = '
                   '10^6 payload bytes; "received" = datagrams read from the '
                   'host UDP socket after the VMM exited. TAP: persistent '
                   'tap0 (192.168.77.1/24) in a network namespace the bench '
                   'creates, both VMMs run in it (QEMU -netdev tap,vhost=off; '
                   'keel --net tap=tap0). NAT: QEMU -netdev user (slirp), '
                   'keel --net nat; the guest sends to 10.0.2.2, the socket '
                   'is on 127.0.0.1.' % (info['net_count'], info['net_size']))
    if 'linux' in only:
        out.append('')
        out.append('Linux row: tests/linux/linuxtest.py --case pci (probe '
                   'kernel 6.1, 256 MiB, 1 vCPU; QEMU -M pc -accel kvm with '
                   'SeaBIOS and virtio-pci blk x2, net, rng, console; keel '
                   'its PCI equivalent): its "time to init" line, host '
                   'monotonic time from Popen to "Run /init" appearing in '
                   'the serial log file (polled every 0.2 s). %d counted '
                   'runs per VMM, alternating, %d warm-up pair.' % (
                       info['linux_runs'], info['linux_warmup']))
    for k, why in sorted(info.get('skipped', {}).items()):
        out.append('')
        out.append('Skipped %s rows: %s.' % (k, why))
    out.append('')
    hdr = ('| metric (%s) | unit | keel | QEMU | host fio | keel/QEMU | '
           'keel/fio |' % machine['kvm_short'])
    out.append(hdr)
    out.append('|---|---|---|---|---|---|---|')
    for key, label, unit, higher in ROWS:
        label = label.format(seq_qd=info['seq_qd'],
                             net_count=info.get('net_count'),
                             net_size=info.get('net_size'))
        d = s.get(key, {})
        k, q = d.get('keel', []), d.get('qemu', [])
        if not k and not q:
            continue
        scale = 1e-3 if unit == 'us/exit' else 1.0
        if key.endswith('_recv'):
            # Per-pair ratios of loss figures say little: show both values.
            ks, _ = summary(k)
            qs, _ = summary(q)
            out.append('| %s (higher is better) | %s | %s | %s |  | - |  |' % (
                label, unit, ks, qs))
            continue
        ks, kmed = summary(k, scale)
        qs, _ = summary(q, scale)
        ratios = [a / b for a, b in zip(k, q) if b]
        rs = summary(ratios)[0] if ratios else 'n/a'
        fio = host.get(key)
        if fio is None:
            fs = '-' if key.startswith('blk') else ''
            fr = fs
        else:
            # A list of runs (older results: one number).
            fs, fmed = summary(fio if isinstance(fio, list) else [fio])
            fr = fmt(kmed / fmed) if kmed is not None and fmed else 'n/a'
        better = '(higher is better)' if higher else '(lower is better)'
        out.append('| %s %s | %s | %s | %s | %s | %s | %s |' % (
            label, better, unit, ks, qs, fs, rs, fr))
    out.append('')
    out.append('All figures come from a %s; they show relative cost on this '
               'setup, not bare-metal performance.' % machine['kvm_long'])
    return '\n'.join(out) + '\n'


def check_quick(raw):
    missing = []
    only = raw['info'].get('only', [])
    skipped = raw['info'].get('skipped', {})
    for key, *_ in ROWS:
        if GROUP[key[:4]] not in only or \
                any(key.startswith(s) for s in skipped):
            continue
        if key.startswith('blk_s') and key not in raw['samples']:
            missing.append(key)
            continue
        d = raw['samples'].get(key, {})
        for vmm in ('keel', 'qemu'):
            if not d.get(vmm) or any(v is None for v in d[vmm]):
                missing.append('%s/%s' % (key, vmm))
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build', help='meson build dir')
    ap.add_argument('--quick', action='store_true',
                    help='smoke run: 1 run each, tiny counts')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--exits', type=int, default=10000)
    ap.add_argument('--blk-ms', type=int, default=1000)
    ap.add_argument('--image-mib', type=int, default=1024)
    ap.add_argument('--net-count', type=int, default=5000)
    ap.add_argument('--net-size', type=int, default=1024)
    ap.add_argument('--linux-runs', type=int, default=3)
    ap.add_argument('--only', default='boot,mem,exit,blk,fio,net',
                    help='rows to run (comma list); "linux" (Linux time to '
                    'init) is not in the default set')
    ap.add_argument('--timeout', type=int, default=900,
                    help='run-in-l1 timeout, seconds')
    ap.add_argument('--l1-cpus', type=int, default=2,
                    help='vCPUs of the nested L1 (default 2: the VMM\'s '
                    'I/O threads do not share one CPU with a spinning guest)')
    a = ap.parse_args()
    t0 = time.monotonic()
    build = os.path.relpath(os.path.abspath(a.build), REPO)
    for f in ['keel'] + ['guest/%s.elf' % g for g in
                         ('bench_boot', 'bench_exit', 'bench_blk',
                          'virtio_net')]:
        if not os.path.exists(os.path.join(REPO, build, f)):
            log('missing %s/%s: build first (ninja -C %s)' % (build, f, build))
            return 1
    if a.quick:
        a.runs, a.exits, a.blk_ms, a.image_mib = 1, 1000, 100, 16
        a.net_count = 200
        # No host fio (~2 s per job) and no Linux boots (~30 s each) in the
        # smoke run.
        a.only = ','.join(x for x in a.only.split(',')
                          if x not in ('fio', 'linux'))
    work = os.path.join(HERE, 'work')
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.join(HERE, 'results'), exist_ok=True)
    ensure_fio(a.quick)
    raw_path = os.path.join(work, 'quick.json' if a.quick else 'raw.json')
    if os.path.exists(raw_path):
        os.unlink(raw_path)
    rel = lambda p: os.path.relpath(p, REPO)	# noqa: E731
    inner = ['python3', rel(os.path.join(HERE, 'inner.py')), '--build', build,
             '--out', rel(raw_path), '--image-mib', str(a.image_mib),
             '--runs', str(a.runs), '--warmup', '0' if a.quick else '1',
             '--exits', str(a.exits), '--blk-ms', str(a.blk_ms),
             '--net-count', str(a.net_count), '--net-size', str(a.net_size),
             '--linux-runs', str(a.linux_runs), '--only', a.only]
    l1_text = []                  # "rows: N vCPUs" per L1 boot
    ok, why = hardware_kvm()
    machine = {'cpu': cpu_model(), 'kernel': platform.release()}
    if ok:
        kind = 'hardware, ' + why
        runs = [(inner, raw_path)]
        if not os.environ.get('KEEL_L1_SCRATCH'):
            # Otherwise (already in an L1 with a scratch disk) inner.py
            # makes the images there.
            img = os.path.join(work, 'disk-%dM.img' % a.image_mib)
            img2 = os.path.join(work, 'disk2-16M.img')
            make_image(img, a.image_mib)
            make_image(img2, 16)
            runs = [(inner + ['--image', rel(img), '--image', rel(img2)],
                     raw_path)]
        machine['kvm_short'] = '/dev/kvm: %s' % kind
        machine['kvm_long'] = 'host with /dev/kvm (%s)' % kind
    elif os.environ.get('KEEL_BENCH_NO_NESTED'):
        # The test suite's smoke run: make check-nested runs it in L1.
        log('no usable /dev/kvm here (%s); the nested run covers this: skipped' % why)
        return 77
    else:
        log('no usable /dev/kvm here (%s): running inside an L1 boot of '
            'tests/nested/run-in-l1' % why)
        # The images go on a scratch disk of L1 (ext4 on virtio-blk, real
        # O_DIRECT), made and filled by inner.py there: room for both images
        # plus ext4's journal (<= 16 MiB here) and metadata.
        scratch_mib = a.image_mib + 16 + 48 + a.image_mib // 8
        l1 = [os.path.join(REPO, 'tests/nested/run-in-l1'), '--timeout',
              str(a.timeout)]
        # I/O rows run in an L1 with a.l1_cpus CPUs, so the VMMs' I/O
        # threads run beside the polled guest's vCPU; the latency rows of a
        # 1-vCPU guest (and Linux, which stalls in a multi-CPU L1) in a
        # 1-CPU L1, where round-robin TCG adds no cross-CPU wake-up noise
        # (README, Caveats).
        only = a.only.split(',')
        io = [x for x in only if x in ('blk', 'fio', 'net')]
        groups = [(io, a.l1_cpus), ([x for x in only if x not in io], 1)]
        if a.l1_cpus == 1 or not all(g for g, _ in groups):
            groups = [(only, a.l1_cpus)]
        runs = []
        for rows, cpus in groups:
            out = raw_path if not runs else '%s.%d' % (raw_path, len(runs))
            c = l1 + ['--smp', str(cpus)]
            if {'mem', 'blk', 'fio'} & set(rows):
                c += ['--scratch-mib', str(scratch_mib)]
            runs.append((c + ['--'] + with_opt(with_opt(
                inner, '--only', ','.join(rows)), '--out', rel(out)), out))
        machine['kvm_short'] = 'NESTED under QEMU TCG: L1 kvm_amd on ' \
            'emulated SVM'
        machine['kvm_long'] = ('nested setup: both VMMs run in an L1 Linux '
                               'VM emulated by QEMU TCG (no hardware '
                               'virtualization), whose kvm_amd runs on '
                               'TCG-emulated SVM+NPT')
    for c, out in runs:
        if os.path.exists(out):
            os.unlink(out)
        r = subprocess.run(c, cwd=REPO)
        if r.returncode == 77:
            log('no /dev/kvm, not even in L1: skipped')
            return 77
        if r.returncode != 0 or not os.path.exists(out):
            log('benchmark failed (status %d)' % r.returncode)
            return 1
    raw = None
    for _, out in runs:
        with open(out) as f:
            part = json.load(f)
        rows = ','.join(part['info']['only'])
        l1_text.append('%s: %d vCPU%s' % (rows, part['info']['l1_cpus'],
                                          's' if part['info']['l1_cpus'] > 1
                                          else ''))
        if raw is None:
            raw = part
            continue
        info = raw['info']
        raw['samples'].update(part['samples'])
        raw['host'].update(part['host'])
        info['only'] += part['info']['only']
        info['skipped'].update(part['info']['skipped'])
        info['inner_s'] += part['info']['inner_s']
        for k, v in part['info'].items():
            info.setdefault(k, v)       # image_*, qemu_aio, ... of that part
    info = raw['info']
    machine['text'] = ('host CPU %s, host kernel %s, host /dev/kvm: %s; '
                       'VMMs ran on kernel %s, /dev/kvm there: %s%s. '
                       'Wall time %.0f s (VMM runs %.0f s).' % (
                           machine['cpu'], machine['kernel'],
                           'usable' if ok else 'absent (%s)' % why,
                           info['kernel'], info['kvm'],
                           '' if ok else ' = L1 under QEMU TCG '
                           '(-cpu max,+svm,+npt, 2 GiB, round-robin TCG), '
                           'one boot per group of rows: %s' % (
                               '; '.join(l1_text)),
                           time.monotonic() - t0, info['inner_s']))
    md = table(raw, machine)
    sys.stdout.write(md)
    dest = os.path.join(work, 'quick.md') if a.quick else \
        os.path.join(HERE, 'results', 'latest.md')
    with open(dest, 'w') as f:
        f.write(md)
    log('wrote %s' % os.path.relpath(dest, REPO))
    if a.quick:
        missing = check_quick(raw)
        if missing:
            log('quick: no figures for %s' % ', '.join(missing))
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
