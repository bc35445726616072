#!/usr/bin/env python3
"""Network devices of a running VM through the public API (keel.h, "devices
of a running VM"), driven over ctypes against libkeel.so.

usage: test_net_runtime.py LIBKEEL.so VIRTIO_NET_GUEST.elf

The guest (guest/tests/virtio_net.c) runs as a UDP echo server forever
(net_test=udp_echo_server count=0). Part 1: a static address behind a
socketpair whose other end this script drives as a tiny Ethernet host
(answers ARP for 192.168.77.1, sends UDP to 192.168.77.2:7): echo over A,
keel_vm_set_network_attachment to socketpair B (echo over B, nothing more on
A), keel_vm_set_network_link down/up, keel_vm_get_network_stats, errors.
Then to NAT and back to socketpair C: with the sandbox on, each of those
changes replaces the NIC's I/O thread (NAT's filter differs), and the echo
goes on over C.
Part 2: a second VM on NAT with DHCP: keel_vm_add_port_forward while it
runs, echo from a host UDP socket, keel_vm_remove_port_forward, no echo.

Both VMs run with the sandbox on, or in the mode $KEEL_SANDBOX names.

Prints TAP; exits 0 (all passed), 1 (a failure) or 77 (no usable KVM).
"""
import ctypes
import os
import select
import socket
import struct
import sys
import threading
import time

KEEL_ERR_INVALID = 1
KEEL_ERR_KVM = 6
KEEL_ERR_UNSUPPORTED = 10
KEEL_NET_TCP, KEEL_NET_UDP = 0, 1
KEEL_NET_DGRAM = 0
KEEL_VM_RUNNING = 2
SANDBOX_MODES = {'off': 0, 'on': 1, 'log': 2}
SANDBOX = SANDBOX_MODES.get(os.environ.get('KEEL_SANDBOX') or 'on', 1)

GUEST_MAC = bytes.fromhex('525400123456')
PEER_MAC = bytes.fromhex('02004b45454c')
GUEST_IP = socket.inet_aton('192.168.77.2')
PEER_IP = socket.inet_aton('192.168.77.1')
ECHO_PORT = 7
BOOT_TIMEOUT = 120

P = ctypes.c_void_p
ERRP = ctypes.POINTER(ctypes.c_void_p)


def load(path):
    lib = ctypes.CDLL(path)
    sigs = {
        'keel_error_get_code': (ctypes.c_int, [P]),
        'keel_error_get_message': (ctypes.c_char_p, [P]),
        'keel_error_free': (None, [P]),
        'keel_serial_attachment_new_fds': (P, [ctypes.c_int, ctypes.c_int, ERRP]),
        'keel_linux_boot_loader_new': (P, [ctypes.c_char_p, ERRP]),
        'keel_linux_boot_loader_set_cmdline': (None, [P, ctypes.c_char_p]),
        'keel_nat_attachment_new': (P, [ERRP]),
        'keel_socket_attachment_new': (P, [ctypes.c_int, ctypes.c_int, ERRP]),
        'keel_network_attachment_free': (None, [P]),
        'keel_virtio_network_device_new': (P, [P, ERRP]),
        'keel_virtio_network_device_set_mac': (None, [P, ctypes.c_char_p]),
        'keel_config_new': (P, [ERRP]),
        'keel_config_free': (None, [P]),
        'keel_config_set_cpu_count': (None, [P, ctypes.c_uint]),
        'keel_config_set_memory_size': (None, [P, ctypes.c_uint64]),
        'keel_config_set_boot_loader': (None, [P, P]),
        'keel_config_add_serial_port': (None, [P, P]),
        'keel_config_add_network_device': (None, [P, P]),
        'keel_config_set_sandbox': (None, [P, ctypes.c_int]),
        'keel_vm_new': (P, [P, ERRP]),
        'keel_vm_free': (None, [P]),
        'keel_vm_start': (ctypes.c_int, [P, ERRP]),
        'keel_vm_stop': (ctypes.c_int, [P, ERRP]),
        'keel_vm_get_state': (ctypes.c_int, [P]),
        'keel_vm_wait': (ctypes.c_int, [P, ctypes.c_int, ERRP]),
        'keel_vm_set_network_attachment': (ctypes.c_int, [P, ctypes.c_uint, P, ERRP]),
        'keel_vm_set_network_link': (ctypes.c_int, [P, ctypes.c_uint, ctypes.c_bool, ERRP]),
        'keel_vm_add_port_forward': (ctypes.c_int, [P, ctypes.c_uint, ctypes.c_int,
                                                    ctypes.c_char_p, ctypes.c_uint16,
                                                    ctypes.c_uint16, ERRP]),
        'keel_vm_remove_port_forward': (ctypes.c_int, [P, ctypes.c_uint, ctypes.c_int,
                                                       ctypes.c_char_p, ctypes.c_uint16,
                                                       ERRP]),
        'keel_vm_get_network_stats': (ctypes.c_int, [P, ctypes.c_uint,
                                                     ctypes.POINTER(ctypes.c_uint64),
                                                     ctypes.POINTER(ctypes.c_uint64),
                                                     ctypes.POINTER(ctypes.c_uint64), ERRP]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


class KeelError(Exception):
    def __init__(self, what, code, msg):
        super().__init__('%s: error %d: %s' % (what, code, msg))
        self.code = code
        self.msg = msg


class Api:
    def __init__(self, lib):
        self.lib = lib

    def call(self, name, *args, fail_value=None):
        """Calls a keel function whose last argument is keel_error **;
        raises KeelError when it fails (NULL or -1)."""
        err = ctypes.c_void_p()
        r = getattr(self.lib, name)(*args, ctypes.byref(err))
        failed = (r is None) if fail_value is None else (r == fail_value)
        if failed:
            code, msg = 0, '(no error object)'
            if err.value:
                code = self.lib.keel_error_get_code(err)
                msg = self.lib.keel_error_get_message(err).decode(errors='replace')
                self.lib.keel_error_free(err)
            raise KeelError(name, code, msg)
        if err.value:
            self.lib.keel_error_free(err)
        return r

    def ptr(self, name, *args):
        return self.call(name, *args)

    def rc(self, name, *args):
        return self.call(name, *args, fail_value=-1)


# ---- TAP ----

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print('%s %d - %s' % ('ok' if cond else 'not ok', self.n, desc), flush=True)
        if not cond:
            self.failed += 1
            if diag:
                for line in str(diag).splitlines():
                    print('#   ' + line, flush=True)
        return cond

    def diag(self, text):
        for line in str(text).splitlines():
            print('# ' + line, flush=True)


# ---- the guest's serial port ----

class Serial:
    def __init__(self):
        self.r, self.w = os.pipe()
        self.buf = b''
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                d = os.read(self.r, 4096)
            except OSError:
                return
            if not d:
                return
            with self.cond:
                self.buf += d
                self.cond.notify_all()

    def wait_for(self, text, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while text.encode() not in self.buf:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def text(self):
        with self.cond:
            return self.buf.decode(errors='replace')

    def tail(self, n=25):
        return '\n'.join('serial: ' + l for l in self.text().splitlines()[-n:])


# ---- a minimal Ethernet/IPv4 host on a socketpair end ----

def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def udp_frame(sport, dport, payload):
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    ph = PEER_IP + GUEST_IP + struct.pack('!BBH', 0, 17, len(udp))
    c = csum(ph + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64,
                     17, 0, PEER_IP, GUEST_IP)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return GUEST_MAC + PEER_MAC + b'\x08\x00' + ip + udp


class EthHost:
    """Frames in and out of one socketpair end (one frame per datagram)."""

    def __init__(self, sock, name):
        self.sock = sock
        self.name = name
        self.sock.setblocking(False)
        self.frames_in = 0
        self.sport = 40000

    def drain(self):
        """Reads and counts whatever is queued now; returns the count."""
        n = 0
        while True:
            try:
                f = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return n
            except OSError:
                return n
            if not f:
                return n
            n += 1
            self.frames_in += 1

    def _handle(self, f, want_sport, payload):
        """Answers ARP; True if `f` is the echo we wait for."""
        if len(f) < 14:
            return False
        etype = struct.unpack('!H', f[12:14])[0]
        p = f[14:]
        if etype == 0x0806 and len(p) >= 28:
            op = struct.unpack('!H', p[6:8])[0]
            if op == 1 and p[24:28] == PEER_IP:
                arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2,
                                  PEER_MAC, PEER_IP, p[8:14], p[14:18])
                try:
                    self.sock.send(p[8:14] + PEER_MAC + b'\x08\x06' + arp)
                except OSError:
                    pass
            return False
        if etype != 0x0800 or len(p) < 28 or p[9] != 17:
            return False
        hl = (p[0] & 15) * 4
        if p[12:16] != GUEST_IP or p[16:20] != PEER_IP:
            return False
        sport, dport, ulen = struct.unpack('!HHH', p[hl:hl + 6])
        data = p[hl + 8:hl + ulen]
        return sport == ECHO_PORT and dport == want_sport and data == payload

    def echo(self, payload, timeout, resend=0.3):
        """Sends `payload` to the guest's echo port (again every `resend`
        s) until the echo comes back or `timeout` s pass."""
        self.sport = 40000 + (self.sport - 39999) % 20000
        sport = self.sport
        frame = udp_frame(sport, ECHO_PORT, payload)
        end = time.monotonic() + timeout
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= end:
                return False
            if now >= next_send:
                try:
                    self.sock.send(frame)
                except OSError:
                    pass
                next_send = now + resend
            r, _, _ = select.select([self.sock], [], [],
                                    max(0.0, min(end, next_send) - now))
            if not r:
                continue
            while True:
                try:
                    f = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    return False
                if not f:
                    break
                self.frames_in += 1
                if self._handle(f, sport, payload):
                    return True


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def host_echo(port, payload, timeout, resend=0.3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    end = time.monotonic() + timeout
    next_send = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= end:
                return False
            if now >= next_send:
                try:
                    s.sendto(payload, ('127.0.0.1', port))
                except OSError:
                    pass    # ECONNREFUSED from an earlier ICMP unreachable
                next_send = now + resend
            r, _, _ = select.select([s], [], [], max(0.0, min(end, next_send) - now))
            if not r:
                continue
            try:
                data, _ = s.recvfrom(65536)
            except OSError:
                continue
            if data == payload:
                return True
    finally:
        s.close()


# ---- VMs ----

class Skip(Exception):
    pass


def make_vm(api, guest, cmdline, att, serial, mac=GUEST_MAC):
    lib = api.lib
    cfg = api.ptr('keel_config_new')
    try:
        lib.keel_config_set_cpu_count(cfg, 1)
        lib.keel_config_set_memory_size(cfg, 128 << 20)
        lib.keel_config_set_sandbox(cfg, SANDBOX)
        bl = api.ptr('keel_linux_boot_loader_new', guest.encode())
        lib.keel_linux_boot_loader_set_cmdline(bl, cmdline.encode())
        lib.keel_config_set_boot_loader(cfg, bl)
        lib.keel_config_add_serial_port(
            cfg, api.ptr('keel_serial_attachment_new_fds', -1, serial.w))
        dev = api.ptr('keel_virtio_network_device_new', att)
        lib.keel_virtio_network_device_set_mac(dev, mac)
        lib.keel_config_add_network_device(cfg, dev)
        try:
            return api.ptr('keel_vm_new', cfg)
        except KeelError as e:
            if e.code == KEEL_ERR_KVM:
                raise Skip(str(e))
            raise
    finally:
        lib.keel_config_free(cfg)


def stats(api, vm):
    tx, rx, dr = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
    api.rc('keel_vm_get_network_stats', vm, 0, ctypes.byref(tx), ctypes.byref(rx),
           ctypes.byref(dr))
    return tx.value, rx.value, dr.value


def finish(api, vm, tap, what):
    try:
        if api.lib.keel_vm_get_state(vm) == KEEL_VM_RUNNING:
            api.rc('keel_vm_stop', vm)
        tap.ok(True, '%s: stopped' % what)
    except KeelError as e:
        tap.ok(False, '%s: stopped' % what, e)
    api.lib.keel_vm_free(vm)


def part_socket(api, guest, tap):
    lib = api.lib
    serial = Serial()
    a_host, a_vm = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    att = api.ptr('keel_socket_attachment_new', a_vm.fileno(), KEEL_NET_DGRAM)
    a_vm.close()        # keel duplicated it
    cmd = ('net_test=udp_echo_server ip=192.168.77.2 port=%d count=0 '
           'net_timeout=5' % ECHO_PORT)
    vm = make_vm(api, guest, cmd, att, serial)
    A = EthHost(a_host, 'A')
    try:
        api.rc('keel_vm_start', vm)
        if not tap.ok(serial.wait_for('READY', BOOT_TIMEOUT),
                      'socket VM: guest echo server READY', serial.tail()):
            return

        # 2. echo over A, then swap to B
        ok = A.echo(b'over-A-1', 20)
        tap.ok(ok, 'echo over socketpair A', serial.tail())
        s0 = stats(api, vm)
        tap.diag('stats after echo over A: tx=%d rx=%d dropped=%d' % s0)
        for i in range(5):
            A.echo(b'over-A-more-%d' % i, 5)

        b_host, b_vm = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        B = EthHost(b_host, 'B')
        att_b = api.ptr('keel_socket_attachment_new', b_vm.fileno(), KEEL_NET_DGRAM)
        b_vm.close()
        A.drain()
        a_before = A.frames_in
        try:
            api.rc('keel_vm_set_network_attachment', vm, 0, att_b)
            tap.ok(True, 'keel_vm_set_network_attachment(socketpair B) on a running VM')
        except KeelError as e:
            tap.ok(False, 'keel_vm_set_network_attachment(socketpair B) on a running VM', e)
        t0 = time.monotonic()
        ok = B.echo(b'over-B-1', 15)
        tap.ok(ok, 'echo over socketpair B after the swap (%.2f s)' %
               (time.monotonic() - t0), serial.tail())
        ok = all(B.echo(b'over-B-more-%d' % i, 5) for i in range(5))
        tap.ok(ok, 'five more echoes over B')
        time.sleep(0.3)
        A.drain()
        tap.ok(A.frames_in == a_before, 'A received nothing after the swap',
               '%d frames arrived on A' % (A.frames_in - a_before))
        s1 = stats(api, vm)
        tap.diag('stats after echoes over B: tx=%d rx=%d dropped=%d' % s1)

        # 3. link down / up
        try:
            api.rc('keel_vm_set_network_link', vm, 0, False)
            tap.ok(True, 'keel_vm_set_network_link(down)')
        except KeelError as e:
            tap.ok(False, 'keel_vm_set_network_link(down)', e)
        s_down = stats(api, vm)
        ok = B.echo(b'link-down', 1.0)
        tap.ok(not ok, 'link down: no echo within 1 s')
        s_down2 = stats(api, vm)
        tap.ok(s_down2[0] == s_down[0] and s_down2[1] == s_down[1],
               'link down: no frames counted through the device',
               'before tx=%d rx=%d, after tx=%d rx=%d' % (s_down[0], s_down[1],
                                                          s_down2[0], s_down2[1]))
        try:
            api.rc('keel_vm_set_network_link', vm, 0, True)
            tap.ok(True, 'keel_vm_set_network_link(up)')
        except KeelError as e:
            tap.ok(False, 'keel_vm_set_network_link(up)', e)
        t0 = time.monotonic()
        ok = B.echo(b'link-up-again', 15)
        tap.ok(ok, 'link up: echo resumes (%.2f s)' % (time.monotonic() - t0),
               serial.tail())

        # 4. statistics
        s2 = stats(api, vm)
        tap.diag('stats at the end: tx=%d rx=%d dropped=%d' % s2)
        tap.ok(s1[0] > s0[0] and s1[1] > s0[1] and s2[0] > s1[0] and s2[1] > s1[1],
               'stats: tx and rx frames grow with traffic',
               's0=%r s1=%r s2=%r' % (s0, s1, s2))
        tap.ok(s0[0] >= 2 and s0[1] >= 2,
               'stats: at least one request and reply counted after the first echo',
               's0=%r' % (s0,))
        tap.ok(s1[2] == s0[2], 'stats: dropped unchanged by normal traffic',
               'dropped %d -> %d' % (s0[2], s1[2]))

        # 5. errors
        try:
            api.rc('keel_vm_set_network_link', vm, 5, True)
            tap.ok(False, 'index 5: KEEL_ERR_INVALID', 'it succeeded')
        except KeelError as e:
            tap.ok(e.code == KEEL_ERR_INVALID and 'no network device 5' in e.msg,
                   'index 5: KEEL_ERR_INVALID "no network device 5"', e)
        for name, args in (('keel_vm_get_network_stats', (None, None, None)),
                           ('keel_vm_add_port_forward',
                            (KEEL_NET_UDP, b'127.0.0.1', 5555, 7))):
            try:
                api.rc(name, vm, 5, *args)
                tap.ok(False, '%s index 5: KEEL_ERR_INVALID' % name, 'it succeeded')
            except KeelError as e:
                tap.ok(e.code == KEEL_ERR_INVALID and 'no network device 5' in e.msg,
                       '%s index 5: KEEL_ERR_INVALID' % name, e)
        nat = api.ptr('keel_nat_attachment_new')
        try:
            api.rc('keel_vm_set_network_attachment', vm, 5, nat)
            tap.ok(False, 'set_network_attachment index 5: KEEL_ERR_INVALID', 'it succeeded')
        except KeelError as e:
            tap.ok(e.code == KEEL_ERR_INVALID and 'no network device 5' in e.msg,
                   'set_network_attachment index 5: KEEL_ERR_INVALID', e)
        try:
            api.rc('keel_vm_add_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1',
                   free_udp_port(), 7)
            tap.ok(False, 'add_port_forward on a socket attachment: KEEL_ERR_UNSUPPORTED',
                   'it succeeded')
        except KeelError as e:
            tap.ok(e.code == KEEL_ERR_UNSUPPORTED,
                   'add_port_forward on a socket attachment: KEEL_ERR_UNSUPPORTED', e)
        ok = B.echo(b'still-alive', 10)
        tap.ok(ok, 'echo over B still works after the failed calls')

        # 6. to NAT and back to a socket: the I/O thread is replaced each time
        try:
            api.rc('keel_vm_set_network_attachment', vm, 0, api.ptr('keel_nat_attachment_new'))
            tap.ok(True, 'keel_vm_set_network_attachment(NAT) on a running VM')
        except KeelError as e:
            tap.ok(False, 'keel_vm_set_network_attachment(NAT) on a running VM', e)
        try:
            s3 = stats(api, vm)
            api.rc('keel_vm_set_network_link', vm, 0, True)
            tap.ok(s3[0] >= s2[0], 'stats and link calls on NAT', 's2=%r s3=%r' % (s2, s3))
        except KeelError as e:
            tap.ok(False, 'stats and link calls on NAT', e)
        # A port forward opens a host socket on the NIC's thread: NAT's filter.
        hp = free_udp_port()
        try:
            api.rc('keel_vm_add_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp,
                   ECHO_PORT)
            api.rc('keel_vm_remove_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp)
            tap.ok(True, 'port forward added and removed on the NAT attachment')
        except KeelError as e:
            tap.ok(False, 'port forward added and removed on the NAT attachment', e)
        c_host, c_vm = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        C = EthHost(c_host, 'C')
        att_c = api.ptr('keel_socket_attachment_new', c_vm.fileno(), KEEL_NET_DGRAM)
        c_vm.close()
        try:
            api.rc('keel_vm_set_network_attachment', vm, 0, att_c)
            tap.ok(True, 'keel_vm_set_network_attachment(socketpair C) after NAT')
        except KeelError as e:
            tap.ok(False, 'keel_vm_set_network_attachment(socketpair C) after NAT', e)
        t0 = time.monotonic()
        ok = C.echo(b'over-C-1', 15)
        tap.ok(ok, 'echo over socketpair C after NAT (%.2f s)' % (time.monotonic() - t0),
               serial.tail())
        tap.ok(lib.keel_vm_get_state(vm) == KEEL_VM_RUNNING, 'socket VM still running')
    finally:
        finish(api, vm, tap, 'socket VM')


def part_nat(api, guest, tap):
    serial = Serial()
    att = api.ptr('keel_nat_attachment_new')
    cmd = 'net_test=udp_echo_server port=%d count=0 net_timeout=30' % ECHO_PORT
    vm = make_vm(api, guest, cmd, att, serial)
    try:
        api.rc('keel_vm_start', vm)
        if not tap.ok(serial.wait_for('READY', BOOT_TIMEOUT),
                      'NAT VM: DHCP lease and echo server READY', serial.tail()):
            return
        hp = free_udp_port()
        try:
            api.rc('keel_vm_add_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp,
                   ECHO_PORT)
            tap.ok(True, 'keel_vm_add_port_forward(udp 127.0.0.1:%d -> 7) while running' % hp)
        except KeelError as e:
            tap.ok(False, 'keel_vm_add_port_forward(udp 127.0.0.1:%d -> 7) while running'
                   % hp, e)
        t0 = time.monotonic()
        ok = host_echo(hp, b'through-the-forward', 20)
        tap.ok(ok, 'host UDP 127.0.0.1:%d echoed by the guest (%.2f s)' %
               (hp, time.monotonic() - t0), serial.tail())
        try:
            api.rc('keel_vm_add_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp,
                   ECHO_PORT)
            tap.ok(False, 'adding the same forward again fails', 'it succeeded')
        except KeelError as e:
            tap.ok(True, 'adding the same forward again fails (%d: %s)' % (e.code, e.msg))
        try:
            api.rc('keel_vm_remove_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp)
            tap.ok(True, 'keel_vm_remove_port_forward while running')
        except KeelError as e:
            tap.ok(False, 'keel_vm_remove_port_forward while running', e)
        ok = host_echo(hp, b'after-removal', 1.0)
        tap.ok(not ok, 'after removal: no echo within 1 s')
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(('127.0.0.1', hp))
            tap.ok(True, 'after removal: host port %d is free again' % hp)
        except OSError as e:
            tap.ok(False, 'after removal: host port %d is free again' % hp, e)
        finally:
            s.close()
        try:
            api.rc('keel_vm_remove_port_forward', vm, 0, KEEL_NET_UDP, b'127.0.0.1', hp)
            tap.ok(False, 'removing it again fails', 'it succeeded')
        except KeelError as e:
            tap.ok(True, 'removing it again fails (%d: %s)' % (e.code, e.msg))
        # and a new forward works again afterwards
        hp2 = free_udp_port()
        try:
            api.rc('keel_vm_add_port_forward', vm, 0, KEEL_NET_UDP, None, hp2, ECHO_PORT)
            ok = host_echo(hp2, b'second-forward', 20)
        except KeelError as e:
            ok = False
            tap.diag(str(e))
        tap.ok(ok, 'a second forward (host_addr NULL, port %d) echoes' % hp2,
               serial.tail())
    finally:
        finish(api, vm, tap, 'NAT VM')


def main():
    if len(sys.argv) != 3:
        print('usage: %s LIBKEEL.so VIRTIO_NET_GUEST' % sys.argv[0], file=sys.stderr)
        return 2
    lib = sys.argv[1]
    if os.path.exists(lib):
        lib = os.path.abspath(lib)
    api = Api(load(lib))
    guest = sys.argv[2]
    tap = Tap()
    try:
        part_socket(api, guest, tap)
        part_nat(api, guest, tap)
    except Skip as e:
        print('# SKIP: %s' % e, flush=True)
        return 77
    except KeelError as e:
        tap.ok(False, 'unexpected keel error', e)
    print('1..%d' % tap.n, flush=True)
    return 1 if tap.failed else 0


if __name__ == '__main__':
    sys.exit(main())
