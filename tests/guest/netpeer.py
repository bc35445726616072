#!/usr/bin/env python3
"""Host-side network peers for the virtio-net guest tests.

Socket peers (bind ADDR:PORT, print "NETPEER READY ..." once listening):
  udp-echo ADDR:PORT    echo every datagram back to its sender
  tcp-echo ADDR:PORT    echo every line back on each connection
  udp-sink ADDR:PORT    count datagrams; "NETPEER SINK n=N bytes=B" on exit

Ethernet peer (a tiny IPv4 host on a raw frame channel):
  eth --unix PATH       listen on a Unix stream socket, serve one VMM
                        connection with QEMU -netdev stream framing
                        (4-byte big-endian length, then the frame)
  eth --fd N [--dgram]  an inherited socket: stream framing, or one frame
                        per datagram
It answers ARP for --ip (default 192.168.77.1), ICMP echo, and echoes UDP
datagrams to any port. guesttest.py imports this module and runs the same
peers in threads (serve_* functions); only loopback, the test's own
namespaces and socket pairs are ever used.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading

PEER_MAC = bytes.fromhex('02004b45454c')
DEFAULT_IP = '192.168.77.1'


def split_addr(text):
    host, _, port = text.rpartition(':')
    return host, int(port)


def serve_udp_echo(sock, stop, stats=None):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        sock.sendto(data, addr)
        if stats is not None:
            stats['udp'] = stats.get('udp', 0) + 1


def serve_udp_sink(sock, stop, stats):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        stats['n'] = stats.get('n', 0) + 1
        stats['bytes'] = stats.get('bytes', 0) + len(data)


def _tcp_conn(conn, stats):
    buf = b''
    conn.settimeout(60)
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            buf += data
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                conn.sendall(line + b'\n')
                if stats is not None:
                    stats['tcp'] = stats.get('tcp', 0) + 1
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp_echo(sock, stop, stats=None):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        threading.Thread(target=_tcp_conn, args=(conn, stats),
                         daemon=True).start()


# ---- Ethernet peer ----

def _csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def _ip_packet(src, dst, proto, payload, ident=0):
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), ident,
                      0x4000, 64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack('!H', _csum(hdr)) + hdr[12:]
    return hdr + payload


class EthPeer:
    """Answers ARP/ICMP echo and echoes UDP; frames in, frames out."""

    def __init__(self, ip=DEFAULT_IP, mac=PEER_MAC):
        self.ip = socket.inet_aton(ip)
        self.mac = mac
        self.stats = {'frames': 0, 'arp': 0, 'icmp': 0, 'udp': 0, 'bad': 0}

    def handle(self, f):
        """Reply frames for one received frame."""
        self.stats['frames'] += 1
        if len(f) < 14:
            self.stats['bad'] += 1
            return []
        dst, src, etype = f[:6], f[6:12], struct.unpack('!H', f[12:14])[0]
        if dst not in (self.mac, b'\xff' * 6):
            return []
        p = f[14:]
        if etype == 0x0806 and len(p) >= 28:
            op = struct.unpack('!H', p[6:8])[0]
            if op == 1 and p[24:28] == self.ip:
                self.stats['arp'] += 1
                arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2,
                                  self.mac, self.ip, p[8:14], p[14:18])
                return [src + self.mac + b'\x08\x06' + arp]
            return []
        if etype != 0x0800 or len(p) < 20 or p[0] >> 4 != 4:
            return []
        hl = (p[0] & 15) * 4
        tot = struct.unpack('!H', p[2:4])[0]
        if tot > len(p) or hl < 20 or _csum(p[:hl]) != 0:
            self.stats['bad'] += 1
            return []
        if p[16:20] != self.ip:
            return []
        sip, proto, body = p[12:16], p[9], p[hl:tot]
        if proto == 1 and len(body) >= 8 and body[0] == 8:
            self.stats['icmp'] += 1
            rep = b'\0\0\0\0' + body[4:]
            rep = rep[:2] + struct.pack('!H', _csum(rep)) + rep[4:]
            return [src + self.mac + b'\x08\x00' +
                    _ip_packet(self.ip, sip, 1, rep)]
        if proto == 17 and len(body) >= 8:
            sport, dport, ulen = struct.unpack('!HHH', body[:6])
            if ulen < 8 or ulen > len(body):
                self.stats['bad'] += 1
                return []
            data = body[8:ulen]
            self.stats['udp'] += 1
            udp = struct.pack('!HHHH', dport, sport, 8 + len(data), 0) + data
            ph = self.ip + sip + struct.pack('!BBH', 0, 17, len(udp))
            c = _csum(ph + udp) or 0xffff
            udp = udp[:6] + struct.pack('!H', c) + udp[8:]
            return [src + self.mac + b'\x08\x00' +
                    _ip_packet(self.ip, sip, 17, udp)]
        return []


def _recv_exact(sock, n, stop):
    buf = b''
    while len(buf) < n:
        try:
            d = sock.recv(n - len(buf))
        except socket.timeout:
            if stop.is_set():
                return None
            continue
        if not d:
            return None
        buf += d
    return buf


def serve_eth_stream(sock, stop, peer):
    """QEMU -netdev stream framing on a connected stream socket."""
    sock.settimeout(0.2)
    while not stop.is_set():
        hdr = _recv_exact(sock, 4, stop)
        if hdr is None:
            return
        n = struct.unpack('!I', hdr)[0]
        f = _recv_exact(sock, n, stop) if n else b''
        if f is None:
            return
        for r in peer.handle(f):
            sock.sendall(struct.pack('!I', len(r)) + r)


def serve_eth_dgram(sock, stop, peer):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            f = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        for r in peer.handle(f):
            try:
                sock.send(r)
            except OSError:
                pass


def serve_eth_unix_listener(lsock, stop, peer):
    lsock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        serve_eth_stream(conn, stop, peer)
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('kind', choices=['udp-echo', 'tcp-echo', 'udp-sink',
                                     'eth'])
    ap.add_argument('addr', nargs='?', help='ADDR:PORT to bind')
    ap.add_argument('--unix', help='eth: listen on this Unix socket path')
    ap.add_argument('--fd', type=int, help='eth: inherited socket fd')
    ap.add_argument('--dgram', action='store_true')
    ap.add_argument('--ip', default=DEFAULT_IP, help='eth: our address')
    a = ap.parse_args()
    stop = threading.Event()
    stats = {}

    def on_term(*_):
        stop.set()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    if a.kind == 'eth':
        peer = EthPeer(a.ip)
        if a.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(a.unix)
            s.listen(1)
            print('NETPEER READY eth unix %s' % a.unix, flush=True)
            serve_eth_unix_listener(s, stop, peer)
        elif a.fd is not None:
            s = socket.socket(fileno=a.fd)
            print('NETPEER READY eth fd %d' % a.fd, flush=True)
            (serve_eth_dgram if a.dgram else serve_eth_stream)(s, stop, peer)
        else:
            ap.error('eth needs --unix or --fd')
        print('NETPEER ETH %s' % peer.stats, flush=True)
        return 0
    if not a.addr:
        ap.error('%s needs ADDR:PORT' % a.kind)
    host, port = split_addr(a.addr)
    if a.kind == 'tcp-echo':
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(4)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, port))
    print('NETPEER READY %s %s:%d' % (a.kind, host, s.getsockname()[1]),
          flush=True)
    {'udp-echo': serve_udp_echo, 'tcp-echo': serve_tcp_echo,
     'udp-sink': serve_udp_sink}[a.kind](s, stop, stats)
    if a.kind == 'udp-sink':
        print('NETPEER SINK n=%d bytes=%d' % (stats.get('n', 0),
                                              stats.get('bytes', 0)),
              flush=True)
    else:
        print('NETPEER STATS %s' % stats, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
