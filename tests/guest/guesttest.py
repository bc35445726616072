#!/usr/bin/env python3
"""Boot one keel test guest under QEMU or keel and judge its serial output.

The guest reports on COM1: "PASS <what>" / "FAIL <what>: <why>" lines and
finally "KEEL-TEST-END pass=N fail=M", then resets the VM (which ends the
VMM: QEMU runs with -no-reboot). Exit status: 0 pass, 1 fail, 77 skip.

Virtio devices (--blk-image, --rng, --console, --transport) put QEMU on
q35 (PCI, SeaBIOS assigns the BARs) or microvm (virtio-mmio, which appends
virtio_mmio.device= words to the command line itself); keel gets --disk,
--rng, --console socket:PATH and --virtio-transport. The disk image is
patterned (sector s holds u64 words s << 32 | w) and checked afterwards
against the guest's BLK-WRITTEN/BLK-ZEROED/BLK-DISCARDED lines.

Networking (--net, guest virtio_net.elf, see NetSetup): nat (QEMU -netdev
user / keel --net nat, DHCP; --hostfwd forwards a host UDP port to the
guest's echo server; --net-peer udp|tcp|sink puts a peer on 127.0.0.1,
reached from the guest as 10.0.2.2), tap / bridge (a fresh network
namespace keelt-* with tap0 or br0 at 192.168.77.1/24, the peer and the VMM
run inside it; the guest uses ip=192.168.77.2), unix (a Unix stream socket
served by netpeer.py's Ethernet peer, QEMU -netdev stream framing), fd /
fd-dgram (an inherited socketpair end). The namespace is always deleted.

Crash tests: --kill-after REGEX SIGKILLs the VMM as soon as a serial line
matches (e.g. BLK-FLUSHED, with blk_hold_after_flush=1 so the guest does
nothing more); the run then passes if the VMM died of that SIGKILL, no
check failed before it, and the image holds what the guest reported.
"""
import argparse
import codecs
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from kvmhost import hardware_kvm  # noqa: E402

SKIP = 77
END_RE = re.compile(r'KEEL-TEST-END pass=(\d+) fail=(\d+)')
CHECK_RE = re.compile(r'^(PASS|FAIL) ')
BLK_RE = re.compile(r'^BLK-(WRITTEN|ZEROED|DISCARDED) (\d+) (\d+)\s*$', re.M)
SECTOR = 512
GUEST_XOR = 0xa5a5a5a5a5a5a5a5
# Ranges the virtio_blk guest modifies (cmdline blk_*_sector/count).
BLK_WRITE = (64, 40)
BLK_ZERO = (128, 16)
BLK_DISCARD = (192, 16)
QEMU_ECAM = 0xb0000000		# q35 MMCONFIG as SeaBIOS programs it
KEEL_ECAM = 0xe0000000		# keel's LAYOUT_PCI_ECAM (bus 0 only)


def make_initrd(size):
    """Initrd whose byte i is (i*7+3)&0xff, as the bootparams guest checks."""
    period = bytes((i * 7 + 3) & 0xff for i in range(256))
    full, rest = divmod(size, 256)
    with tempfile.NamedTemporaryFile(prefix='keel-initrd-',
                                     delete=False) as f:
        f.write(period * full + period[:rest])
    return f.name


def parse_size(text):
    m = re.fullmatch(r'(\d+)([KMG]?)', text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError('bad size: %s' % text)
    return int(m.group(1)) << {'': 0, 'K': 10, 'M': 20, 'G': 30}[m.group(2)]


def sector_bytes(s, guest=False):
    x = GUEST_XOR if guest else 0
    return struct.pack('<64Q', *[((s << 32) | w) ^ x for w in range(64)])


def make_disk(path, size):
    with open(path, 'wb') as f:
        for s in range(size // SECTOR):
            f.write(sector_bytes(s))


def check_disk(path, size, text, ro, no_write):
    """Compare the image with what the guest said it did. (ok, why)"""
    marks = {'WRITTEN': [], 'ZEROED': [], 'DISCARDED': []}
    for m in BLK_RE.finditer(text.replace('\r', '')):
        marks[m.group(1)].append((int(m.group(2)), int(m.group(3))))
    if (ro or no_write) and any(marks.values()):
        return False, 'disk must stay unchanged, yet the guest reported %s' % (
            marks)
    if not ro and not no_write and marks['WRITTEN'] != [BLK_WRITE]:
        return False, 'guest reported writes %s, expected [%s]' % (
            marks['WRITTEN'], BLK_WRITE)
    expect = {}
    for kind, ranges in marks.items():
        for s, c in ranges:
            for i in range(s, s + c):
                expect[i] = kind
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) != size:
        return False, 'image size %d, expected %d' % (len(data), size)
    zero = bytes(SECTOR)
    for i in range(size // SECTOR):
        got = data[i * SECTOR:(i + 1) * SECTOR]
        kind = expect.get(i)
        if kind == 'WRITTEN':
            ok = got == sector_bytes(i, guest=True)
        elif kind == 'ZEROED':
            ok = got == zero
        elif kind == 'DISCARDED':
            ok = got == zero or got == sector_bytes(i)
        else:
            ok = got == sector_bytes(i)
        if not ok:
            return False, 'image sector %d wrong (%s): %s...' % (
                i, kind or 'unchanged', got[:16].hex())
    n = {k: sum(c for _, c in v) for k, v in marks.items()}
    return True, 'image ok: %d written, %d zeroed, %d discarded sectors' % (
        n['WRITTEN'], n['ZEROED'], n['DISCARDED'])


def n_virtio(a):
    return bool(a.blk_image) + bool(a.rng) + bool(a.console) + bool(a.net)


def build_cmdline(a):
    words = [a.cmdline] if a.cmdline else []
    words.append('expect_mem_mib=%d' % a.mem)
    words.append('cpus=%d' % a.cpus)
    if a.initrd_size:
        words.append('initrd_size=%d' % a.initrd_size)
    if a.hosttime:
        words.append('hosttime=%d' % int(time.time()))
    if n_virtio(a):
        words.append('transport=%s' % a.transport)
        words.append('virtio_devices=%d' % n_virtio(a))
    if a.blk_image:
        words.append('blk_sectors=%d' % (a.blk_image // SECTOR))
        words.append('blk_write_sector=%d blk_write_count=%d' % BLK_WRITE)
        words.append('blk_zero_sector=%d blk_zero_count=%d' % BLK_ZERO)
        words.append('blk_discard_sector=%d blk_discard_count=%d' %
                     BLK_DISCARD)
        if a.blk_ro:
            words.append('blk_ro=1')
        if a.blk_serial:
            words.append('blk_serial=%s' % a.blk_serial)
        if a.blk_queues and a.vmm == 'qemu':
            words.append('blk_queues=%d' % a.blk_queues)
    if a.console_expect:
        words.append('console_expect=%s' % a.console_expect)
    words += getattr(a, 'net_words', [])
    ecam = QEMU_ECAM if a.vmm == 'qemu' else KEEL_ECAM
    if a.ecam and a.transport == 'pci' and ecam is not None:
        words.append('ecam=%#x' % ecam)
    return ' '.join(words)


def odirect_ok(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


def qemu_virtio(a, disk, sock):
    """QEMU machine and device arguments for the virtio options."""
    mmio = a.transport == 'mmio'
    sfx = '-device' if mmio else '-pci'
    leg = '' if mmio else ',disable-legacy=on'
    args = []
    if disk:
        cache = 'none' if odirect_ok(disk) else 'writeback'
        args += ['-drive', 'file=%s,if=none,id=d0,format=raw,cache=%s,'
                 'aio=threads%s' % (disk, cache,
                                    ',readonly=on' if a.blk_ro else '')]
        dev = 'virtio-blk%s,drive=d0%s' % (sfx, leg)
        if a.blk_serial:
            dev += ',serial=' + a.blk_serial
        if a.blk_queues:
            dev += ',num-queues=%d' % a.blk_queues
        args += ['-device', dev]
    if a.rng:
        args += ['-device', 'virtio-rng%s%s' % (sfx, leg)]
    if sock:
        args += ['-chardev', 'socket,id=c0,path=%s,server=on,wait=off' % sock,
                 '-device', 'virtio-serial%s%s' % (sfx, leg),
                 '-device', 'virtconsole,chardev=c0']
    if a.net:
        args += ['-netdev', a.net_qemu]
        dev = 'virtio-net%s,netdev=n0%s' % (sfx, leg)
        if not mmio:
            dev += ',romfile='	# no iPXE option ROM
        if a.net_mac:
            dev += ',mac=' + a.net_mac
        args += ['-device', dev]
    if mmio:
        # microvm has no i8042: add one for the reset; modern virtio-mmio.
        return ['microvm,acpi=off'], ['-device', 'i8042', '-global',
                                     'virtio-mmio.force-legacy=false'] + args
    return ['q35'], args


def vmm_command(a, cmdline, initrd, disk=None, sock=None):
    if a.vmm == 'keel':
        cmd = [a.keel, 'run', '--cpus', str(a.cpus), '--memory',
               '%dM' % a.mem, '--kernel', a.guest, '--cmdline', cmdline]
        if initrd:
            cmd += ['--initrd', initrd]
        if n_virtio(a) or a.ecam:
            cmd += ['--virtio-transport', a.transport]
        if disk:
            spec = disk + (',ro' if a.blk_ro else '')
            if a.blk_serial:
                spec += ',serial=' + a.blk_serial
            if a.blk_sync:
                spec += ',sync=' + a.blk_sync
            cmd += ['--disk', spec]
        if a.rng:
            cmd += ['--rng']
        if a.hugepages:
            cmd += ['--hugepages']
        if sock:
            cmd += ['--console', 'socket:' + sock]
        if a.net:
            cmd += ['--net', a.net_keel]
        return getattr(a, 'net_prefix', []) + cmd + ['--serial', 'stdio']
    kvm, _ = hardware_kvm()
    machine, extra = ['pc'], []
    if n_virtio(a) or a.ecam:
        machine, extra = qemu_virtio(a, disk, sock)
    cmd = [a.qemu, '-M'] + machine
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
    return getattr(a, 'net_prefix', []) + cmd + extra


class ConsoleHost(threading.Thread):
    """Host side of the virtio console: connect to the VMM's unix socket,
    send WORD once the guest printed READY on COM1, collect its output."""

    def __init__(self, path, word, ready, timeout):
        super().__init__(daemon=True)
        self.path, self.word, self.ready = path, word, ready
        self.deadline = time.time() + timeout
        self.got = bytearray()
        self.error = None

    def run(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            while True:
                try:
                    s.connect(self.path)
                    break
                except OSError as e:
                    if time.time() > self.deadline:
                        self.error = 'console socket %s: %s' % (self.path, e)
                        return
                    time.sleep(0.05)
            if not self.word:
                while s.recv(4096):
                    pass
                return
            if not self.ready.wait(max(0, self.deadline - time.time())):
                self.error = 'guest never printed READY'
                return
            s.sendall(self.word.encode() + b'\n')
            want = b'ECHO ' + self.word.encode() + b'\n'
            while want not in self.got:
                s.settimeout(max(0.1, self.deadline - time.time()))
                data = s.recv(4096)
                if not data:
                    break
                self.got.extend(data)
        except OSError as e:
            self.error = 'console: %s' % e
        finally:
            s.close()

    def verdict(self):
        if self.error:
            return False, self.error
        lines = self.got.decode('utf-8', 'replace').replace('\r', '')
        lines = lines.split('\n')
        if 'CONSOLE-HELLO' not in lines:
            return False, 'console host side got no CONSOLE-HELLO: %r' % (
                bytes(self.got))
        if 'ECHO ' + self.word not in lines:
            return False, 'console host side got no echo: %r' % bytes(self.got)
        return True, 'console host side ok'


def run_vm(cmd, stdin_data, timeout, ready_event=None, kill_re=None,
           pass_fds=()):
    """Run the VMM; return (output text, exit code or None on time-out,
    whether it was killed because a line matched kill_re)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            pass_fds=pass_fds)
    out = bytearray()
    fed = [stdin_data is None]
    killed = [False]
    kill_rx = re.compile(kill_re.encode(), re.M) if kill_re else None

    def reader():
        while True:
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:
                return
            out.extend(data)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            if kill_rx and not killed[0]:
                # Whole lines only: the match must have been printed in full.
                done = out[:out.rfind(b'\n') + 1].replace(b'\r', b'')
                if kill_rx.search(done):
                    killed[0] = True
                    try:
                        os.kill(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    sys.stdout.write('\n[guesttest: SIGKILL sent to the VMM '
                                     '(pid %d)]\n' % proc.pid)
                    sys.stdout.flush()
            if ready_event and re.search(rb'(^|\n)READY\r?\n', out):
                ready_event.set()
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
    return out.decode('utf-8', 'replace'), rc, killed[0]


# How each VMM reports that the guest reset the machine (the end of every
# guest test): QEMU -no-reboot exits 0, keel exits 3 ("guest reset").
RESET_STATUS = {'qemu': 0, 'keel': 3}


def judge(text, rc, expect_pass, reset_status=0):
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
    if rc != reset_status:
        return False, 'VMM exited with status %d, expected %d (guest reset)' % (
            rc, reset_status)
    return True, '%d checks passed' % npass


def judge_killed(text, rc, killed, kill_re):
    """Verdict of a --kill-after run: the VMM died of our SIGKILL."""
    lines = [l.strip('\r') for l in text.split('\n')]
    fails = [l for l in lines if CHECK_RE.match(l) and l.startswith('FAIL')]
    if rc is None:
        return False, 'timed out before a line matched %r' % kill_re
    if not killed:
        return False, 'no line matched %r (VMM exit status %d)' % (kill_re,
                                                                  rc)
    if fails:
        return False, 'failed check before the kill: %s' % fails[0]
    if rc != -signal.SIGKILL:
        return False, 'VMM exit status %d, expected death by SIGKILL' % rc
    return True, 'VMM killed by SIGKILL after %r' % kill_re


# ---- networking (--net) ----------------------------------------------------
NET_SUBNET_HOST = '192.168.77.1'	# tap/bridge/unix/fd peer address
NET_SUBNET_GUEST = '192.168.77.2'
NAT_HOST = '10.0.2.2'			# the host's loopback as seen by a NAT guest
NETPEER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'netpeer.py')


class NetSkip(Exception):
    pass


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class NetSetup:
    """Back end, host peer and guest cmdline words for one --net run.

    Sets a.net_words (guest cmdline), a.net_qemu (-netdev value),
    a.net_keel (--net value), a.net_prefix (ip netns exec NS) and
    self.pass_fds; start() launches the peers, after_ready() drives the
    host side of --hostfwd, verdict() judges it, stop() cleans up."""

    def __init__(self, a, tmp):
        sys.path.insert(0, os.path.dirname(NETPEER))
        import netpeer
        self.np = netpeer
        self.a, self.tmp = a, tmp
        self.stop_ev = threading.Event()
        self.threads, self.procs, self.socks = [], [], []
        self.ns = None
        self.pass_fds = ()
        self.stats = {}
        self.fwd_ok, self.fwd_why = None, ''
        self.fwd_port = None

    # helpers
    def thread(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def sh(self, *cmd):
        r = subprocess.run(list(cmd), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            raise RuntimeError('%s: %s' % (' '.join(cmd), r.stdout.strip()))
        return r.stdout

    def ns_peer(self, kind, addr):
        """netpeer.py inside the namespace; waits for its READY line."""
        p = subprocess.Popen(['ip', 'netns', 'exec', self.ns, sys.executable,
                              NETPEER, kind, addr], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        if 'NETPEER READY' not in line:
            raise RuntimeError('netpeer in %s: %r' % (self.ns, line))
        print('[guesttest: %s' % line.strip() + ' in netns %s]' % self.ns)

    def local_peer(self, kind, host='127.0.0.1'):
        st = socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, st)
        if kind == 'tcp':
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        if kind == 'tcp':
            s.listen(4)
        self.socks.append(s)
        fn = {'udp': self.np.serve_udp_echo, 'tcp': self.np.serve_tcp_echo,
              'sink': self.np.serve_udp_sink}[kind]
        self.thread(fn, s, self.stop_ev, self.stats)
        return s.getsockname()[1]

    def netns_check(self):
        if os.geteuid() != 0:
            raise NetSkip('--net %s needs root (network namespace)' %
                          self.a.net)
        if not os.path.exists('/dev/net/tun'):
            raise NetSkip('/dev/net/tun missing')
        if not shutil.which('ip'):
            raise NetSkip('ip (iproute2) not found')
        self.ns = 'keelt-%d-%s' % (os.getpid(), os.urandom(3).hex())
        r = subprocess.run(['ip', 'netns', 'add', self.ns],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode:
            self.ns = None
            raise NetSkip('ip netns add failed: %s' % r.stdout.strip())

    def start(self):
        a = self.a
        words = ['net_test=%s' % a.net_test]
        peer_kind = a.net_peer
        if a.net_test in ('udp_client', 'malformed') and a.net != 'nat':
            peer_kind = peer_kind or 'udp'
        if a.net == 'nat':
            fwd = ''
            if a.hostfwd:
                self.fwd_port = free_port()
                fwd = ',hostfwd=udp:127.0.0.1:%d-:7' % self.fwd_port
                words += ['port=7', 'count=%d' % a.net_count]
            a.net_qemu = 'user,id=n0' + fwd
            a.net_keel = 'nat' + (',mac=' + a.net_mac if a.net_mac else '') + fwd
            if peer_kind:
                port = self.local_peer(peer_kind)
                words.append('peer=%s:%d' % (NAT_HOST, port))
            elif a.net_test == 'ping':
                words.append('peer=%s' % NAT_HOST)
        elif a.net in ('tap', 'bridge'):
            self.netns_check()
            ns = self.ns
            self.sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            dev = 'tap0' if a.net == 'tap' else 'br0'
            if a.net == 'bridge':
                self.sh('ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge')
            if a.net == 'tap' or a.vmm == 'qemu':
                self.sh('ip', '-n', ns, 'tuntap', 'add', 'dev', 'tap0',
                        'mode', 'tap')
                if a.net == 'bridge':
                    self.sh('ip', '-n', ns, 'link', 'set', 'tap0', 'master',
                            'br0')
                self.sh('ip', '-n', ns, 'link', 'set', 'tap0', 'up')
            self.sh('ip', '-n', ns, 'addr', 'add', NET_SUBNET_HOST + '/24',
                    'dev', dev)
            self.sh('ip', '-n', ns, 'link', 'set', dev, 'up')
            a.net_qemu = 'tap,id=n0,ifname=tap0,script=no,downscript=no'
            a.net_keel = 'tap=tap0' if a.net == 'tap' else 'bridge=br0'
            a.net_prefix = ['ip', 'netns', 'exec', ns]
            words += ['ip=' + NET_SUBNET_GUEST, 'gw=' + NET_SUBNET_HOST]
            if peer_kind:
                port = 7777
                self.ns_peer({'udp': 'udp-echo', 'tcp': 'tcp-echo',
                              'sink': 'udp-sink'}[peer_kind],
                             '%s:%d' % (NET_SUBNET_HOST, port))
                words.append('peer=%s:%d' % (NET_SUBNET_HOST, port))
            elif a.net_test == 'ping':
                words.append('peer=' + NET_SUBNET_HOST)
        else:	# unix, fd, fd-dgram: netpeer's Ethernet peer
            peer = self.np.EthPeer(NET_SUBNET_HOST)
            self.eth = peer
            if a.net == 'unix':
                path = os.path.join(self.tmp, 'net.sock')
                ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                ls.bind(path)
                ls.listen(1)
                self.socks.append(ls)
                self.thread(self.np.serve_eth_unix_listener, ls, self.stop_ev,
                            peer)
                a.net_qemu = ('stream,id=n0,server=off,addr.type=unix,'
                              'addr.path=%s' % path)
                a.net_keel = 'unix=' + path
            else:
                dgram = a.net == 'fd-dgram'
                ours, theirs = socket.socketpair(
                    socket.AF_UNIX,
                    socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM)
                self.socks += [ours, theirs]
                fd = theirs.fileno()
                os.set_inheritable(fd, True)
                self.pass_fds = (fd,)
                self.thread(self.np.serve_eth_dgram if dgram else
                            self.np.serve_eth_stream, ours, self.stop_ev, peer)
                a.net_qemu = ('dgram,id=n0,local.type=fd,local.str=%d' % fd
                              if dgram else 'socket,id=n0,fd=%d' % fd)
                a.net_keel = 'fd=%d,%s' % (fd, 'dgram' if dgram else 'stream')
            words += ['ip=' + NET_SUBNET_GUEST, 'gw=' + NET_SUBNET_HOST]
            if a.net_test == 'ping':
                words.append('peer=' + NET_SUBNET_HOST)
            else:
                words.append('peer=%s:7' % NET_SUBNET_HOST)
        a.net_words = words

    def after_ready(self, ready):
        """--hostfwd: once the guest printed READY, send --net-count
        datagrams to 127.0.0.1:PORT and expect each echoed."""
        if not self.fwd_port:
            return

        def client():
            if not ready.wait(self.a.timeout):
                self.fwd_ok, self.fwd_why = False, 'guest never printed READY'
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            try:
                for i in range(self.a.net_count):
                    msg = b'keel-hostfwd-%d' % i
                    for _ in range(5):
                        s.sendto(msg, ('127.0.0.1', self.fwd_port))
                        try:
                            data, _ = s.recvfrom(2048)
                        except socket.timeout:
                            continue
                        if data == msg:
                            break
                    else:
                        self.fwd_ok = False
                        self.fwd_why = 'hostfwd: no echo for %r' % msg
                        return
                self.fwd_ok = True
                self.fwd_why = 'hostfwd: %d datagrams echoed via ' \
                    '127.0.0.1:%d' % (self.a.net_count, self.fwd_port)
            finally:
                s.close()
        self.thread(client)

    def verdict(self):
        if self.fwd_port:
            for t in self.threads:
                t.join(5)
            if self.fwd_ok is None:
                return False, 'hostfwd client did not finish'
            return self.fwd_ok, self.fwd_why
        return True, None

    def stop(self):
        self.stop_ev.set()
        for p in self.procs:
            try:
                p.terminate()
                out, _ = p.communicate(timeout=5)
                if out.strip():
                    print('[guesttest: netpeer: %s]' % out.strip())
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()
        if getattr(self, 'eth', None):
            print('[guesttest: ethernet peer: %s]' % self.eth.stats)
        if self.stats:
            print('[guesttest: host peer: %s]' % self.stats)
        if self.ns:
            subprocess.run(['ip', 'netns', 'del', self.ns],
                           stderr=subprocess.DEVNULL)
            self.ns = None


def free_hugepages_mib():
    """MiB of free huge pages of the default (2 MiB) size."""
    info = {}
    with open('/proc/meminfo') as f:
        for line in f:
            k, v = line.split(':', 1)
            info[k] = int(v.split()[0])
    return info.get('HugePages_Free', 0) * info.get('Hugepagesize', 0) // 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmm', choices=['qemu', 'keel'], required=True)
    ap.add_argument('--keel', help='path to the keel binary')
    ap.add_argument('--qemu', default='qemu-system-x86_64')
    ap.add_argument('--guest', required=True, help='guest image')
    ap.add_argument('--cpus', type=int, default=1)
    ap.add_argument('--hugepages', action='store_true',
                    help='keel only: guest RAM on 2 MiB huge pages (skips '
                         'unless enough are free: the test never reserves any)')
    ap.add_argument('--mem', type=int, default=128, help='MiB')
    ap.add_argument('--cmdline', default='')
    ap.add_argument('--initrd-size', type=int, default=0)
    ap.add_argument('--hosttime', action='store_true',
                    help='pass hosttime=<now> for the RTC check')
    ap.add_argument('--stdin-data', help='sent after READY; \\n escapes '
                    'work, a final newline is added if missing')
    ap.add_argument('--module', help='qemu only: file passed as -initrd '
                    '(the PVH module), e.g. the bzImage for bzload.elf')
    ap.add_argument('--blk-loop', action='store_true',
                    help='attach the image through a loop block device (root)')
    ap.add_argument('--blk-image', type=parse_size, metavar='SIZE',
                    help='virtio-blk disk: a patterned image of SIZE bytes '
                    '(K/M/G), checked after the run')
    ap.add_argument('--blk-ro', action='store_true',
                    help='attach the disk read-only')
    ap.add_argument('--blk-no-write', action='store_true',
                    help='the guest must leave the disk unchanged')
    ap.add_argument('--blk-serial', help='disk serial (GET_ID)')
    ap.add_argument('--blk-sync', choices=['full', 'data', 'fsync', 'none'],
                    help='keel only: --disk ...,sync=MODE')
    ap.add_argument('--kill-after', metavar='REGEX',
                    help='SIGKILL the VMM once a serial line matches, then '
                    'check the disk image (no KEEL-TEST-END needed)')
    ap.add_argument('--blk-queues', type=int, default=0,
                    help='qemu only: virtio-blk num-queues')
    ap.add_argument('--rng', action='store_true', help='virtio-rng device')
    ap.add_argument('--console', action='store_true',
                    help='virtio console on a unix socket held by the runner')
    ap.add_argument('--console-expect', metavar='WORD',
                    help='with --console: send WORD after READY and expect '
                    'CONSOLE-HELLO and "ECHO WORD" back')
    ap.add_argument('--transport', choices=['pci', 'mmio'], default='pci',
                    help='virtio transport (qemu: q35 or microvm)')
    ap.add_argument('--ecam', action='store_true',
                    help='pass ecam=ADDR (q35: %#x) and use q35' % QEMU_ECAM)
    ap.add_argument('--net', choices=['nat', 'tap', 'bridge', 'unix', 'fd',
                                      'fd-dgram'],
                    help='virtio-net device and back end (see NetSetup)')
    ap.add_argument('--net-test', default='dhcp',
                    help='guest net_test= mode (dhcp, udp_echo_server, '
                    'udp_client, tcp_client, ping, malformed, link, perf)')
    ap.add_argument('--net-peer', choices=['udp', 'tcp', 'sink'],
                    help='host peer: UDP echo, TCP line echo or UDP sink '
                    '(nat: on 127.0.0.1; tap/bridge: in the namespace)')
    ap.add_argument('--hostfwd', action='store_true',
                    help='nat: forward a free host UDP port to the guest\'s '
                    'echo server on port 7 and check --net-count echoes')
    ap.add_argument('--net-count', type=int, default=3)
    ap.add_argument('--net-mac', help='MAC address (qemu device, keel nat)')
    ap.add_argument('--timeout', type=float, default=120)
    ap.add_argument('--expect-pass', type=int, default=1)
    a = ap.parse_args()
    name = os.path.basename(a.guest)

    if a.vmm == 'keel':
        ok, why = hardware_kvm()
        if not ok:
            print('SKIP %s under keel: %s' % (name, why))
            return SKIP
        if not a.keel or not os.access(a.keel, os.X_OK):
            print('FAIL %s: keel binary not found: %s' % (name, a.keel))
            return 1
    if a.module and (a.vmm != 'qemu' or a.initrd_size):
        print('FAIL %s: --module is for qemu without --initrd-size' % name)
        return 1
    if a.console_expect:
        a.console = True
    if a.blk_sync and a.vmm != 'keel':
        print('FAIL %s: --blk-sync is for keel' % name)
        return 1
    if a.blk_image and (a.blk_image % SECTOR or a.blk_image < 1 << 20):
        print('FAIL %s: --blk-image must be a multiple of 512, >= 1M' % name)
        return 1
    if a.vmm == 'qemu' and not shutil.which(a.qemu):
        print('SKIP %s under qemu: %s not found' % (name, a.qemu))
        return SKIP

    stdin_data = None
    if a.stdin_data is not None:
        stdin_data = codecs.decode(a.stdin_data, 'unicode_escape')
        if not stdin_data.endswith('\n'):
            stdin_data += '\n'

    if a.hostfwd and a.net != 'nat':
        print('FAIL %s: --hostfwd is for --net nat' % name)
        return 1
    if a.hostfwd:
        a.net_test = 'udp_echo_server'

    if a.hugepages:
        free = free_hugepages_mib()
        if a.vmm != 'keel' or free < a.mem:
            print('SKIP %s under %s: --hugepages needs keel and %d MiB of free '
                  '2 MiB huge pages (%d MiB free; reserving them is the '
                  'machine owner\'s choice)' % (name, a.vmm, a.mem, free))
            return SKIP
    initrd = make_initrd(a.initrd_size) if a.initrd_size else None
    tmp = tempfile.mkdtemp(prefix='keel-guest-') if n_virtio(a) else None
    disk = os.path.join(tmp, 'disk.img') if a.blk_image else None
    sock = os.path.join(tmp, 'console.sock') if a.console else None
    con = None
    net = None
    loopdev = None
    start = time.time()
    try:
        if disk:
            make_disk(disk, a.blk_image)
        if disk and a.blk_loop:
            # The same image as a host block device (BLKGETSIZE64, O_DIRECT).
            r = subprocess.run(['losetup', '--find', '--show', disk],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print('SKIP %s under %s: losetup: %s' % (name, a.vmm,
                                                         r.stderr.strip()))
                return SKIP
            loopdev = r.stdout.strip()
        if a.net:
            net = NetSetup(a, tmp)
            try:
                net.start()
            except NetSkip as e:
                print('SKIP %s under %s: %s' % (name, a.vmm, e))
                return SKIP
        cmd = vmm_command(a, build_cmdline(a), initrd, loopdev or disk, sock)
        print('+ ' + ' '.join(cmd))
        sys.stdout.flush()
        ready = threading.Event() if sock or a.hostfwd else None
        if sock:
            con = ConsoleHost(sock, a.console_expect, ready, a.timeout)
            con.start()
        if net:
            net.after_ready(ready)
        start = time.time()
        text, rc, killed = run_vm(cmd, stdin_data, a.timeout, ready,
                                  a.kill_after,
                                  net.pass_fds if net else ())
        if loopdev:
            subprocess.run(['losetup', '--detach', loopdev])
            loopdev = None
        if a.kill_after:
            ok, why = judge_killed(text, rc, killed, a.kill_after)
        else:
            ok, why = judge(text, rc, a.expect_pass, RESET_STATUS[a.vmm])
        extra = []
        if ok and disk:
            ok, w = check_disk(disk, a.blk_image, text, a.blk_ro,
                               a.blk_no_write)
            extra.append(w)
        if con:
            con.join(5)
            if ok and a.console_expect:
                ok, w = con.verdict()
                extra.append(w)
        if net and ok:
            ok, w = net.verdict()
            if w:
                extra.append(w)
        if extra:
            why = '; '.join([why] + extra)
    finally:
        if loopdev:
            subprocess.run(['losetup', '--detach', loopdev])
        if net:
            net.stop()
        if initrd:
            os.unlink(initrd)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print('\n%s: %s under %s: %s (%.1f s)' % ('PASS' if ok else 'FAIL', name,
                                             a.vmm, why, time.time() - start))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
