"""The Debian guest kit's test cases (debguest.py --case NAME; meson runs
keel-debian-NAME and qemu-debian-NAME).  A case builds a Config, prepares
what the host side needs (images, servers), boots once with its guest script
(cases/NAME.sh), does the host's part while the guest runs, checks what is
left on the host afterwards, and returns the Result.  Every check name a
case expects is listed, so a check that never reports fails the case.

To add one: write cases/NAME.sh (source /lib/keel.sh, print checks, end
with keel_done), add a function here, register it in CASES, and add NAME to
the list in meson.build."""
import contextlib
import hashlib
import os
import socket
import tempfile
import time

import debguest as dg

HERE = os.path.dirname(os.path.abspath(__file__))


def script(name):
    with open(os.path.join(HERE, 'cases', name + '.sh')) as f:
        return f.read()


@contextlib.contextmanager
def workdir(a):
    """a.keep (kept) or a temporary directory for images and logs."""
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        yield os.path.abspath(a.keep)
    else:
        with tempfile.TemporaryDirectory(prefix='keel-debian-') as d:
            yield d


def config(a, name, **kw):
    return dg.Config(vmm=a.vmm, keel=a.keel, name=name, kernel=a.kernel or 'vmlinux',
                     timeout=a.timeout or 300, script=script(name),
                     cmdline=a.cmdline, **kw)


def md5(data):
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- basic

BLK = 65536                     # dd bs=64k in the guest
DATA_SIZE = 8 << 20
A_SIZE = 1 << 20                # pattern A at offset 0, written here
B_OFF, B_SIZE = 4 << 20, 512 << 10   # pattern B, written by the guest
RO_SIZE = 1 << 20


def case_basic(a):
    cpus, mem = 2, 256
    with workdir(a) as wd:
        data_img, ro_img = os.path.join(wd, 'data.img'), os.path.join(wd, 'ro.img')
        pa, pb, pr = (dg.pattern('keel-a', A_SIZE), dg.pattern('keel-b', B_SIZE),
                      dg.pattern('keel-ro', RO_SIZE))
        with open(data_img, 'wb') as f:
            f.truncate(DATA_SIZE)
            f.write(pa)
        with open(ro_img, 'wb') as f:
            f.write(pr)
        token = 'hvc-%d' % os.getpid()
        cfg = config(a, 'basic', cpus=cpus, mem=mem, rng=True, console=True,
                     disks=[dg.Disk(data_img, serial='keel-data'),
                            dg.Disk(ro_img, ro=True, serial='keel-ro')],
                     files={'/keel/pattern-b.bin': pb},
                     env={'KEEL_CPUS': cpus, 'KEEL_MEM_MIB': mem,
                          'HOST_EPOCH': int(time.time()),
                          'DATA_SERIAL': 'keel-data', 'DATA_SECTORS': DATA_SIZE // 512,
                          'A_BLOCKS': A_SIZE // BLK, 'A_MD5': md5(pa),
                          'B_SEEK': B_OFF // BLK, 'B_BLOCKS': B_SIZE // BLK, 'B_MD5': md5(pb),
                          'RO_SERIAL': 'keel-ro', 'RO_MD5': md5(pr),
                          'HVC_TOKEN': token, 'VIRTIO_DEVICES': 4})
        res = dg.run(cfg, keep=a.keep and os.path.join(wd, 'logs-' + a.vmm), verbose=a.verbose)
        res.expect('cpus', 'cpus-online', 'mem', 'clock', 'virtio-bound', 'disk-found',
                   'disk-size', 'disk-read', 'disk-write', 'disk-readback', 'disk-ro-flag',
                   'disk-ro-read', 'disk-ro-write', 'virtio-msix', 'rng-current', 'rng-read', 'hvc0-write',
                   'kmsg-clean', 'image-b', 'image-rest', 'image-ro', 'hvc0-log')

        # The host image after the VMM has gone: B where the guest wrote it,
        # A and the zeros untouched, the read-only image unchanged.
        with open(data_img, 'rb') as f:
            img = f.read()
        got_b = img[B_OFF:B_OFF + B_SIZE]
        if got_b == pb:
            res.check('image-b', True, 'the %d bytes the guest wrote are in the image at %#x'
                      % (B_SIZE, B_OFF))
        else:
            bad = next(i for i in range(B_SIZE) if got_b[i] != pb[i])
            res.check('image-b', False, 'first difference at image offset %#x: %#04x, want %#04x'
                      % (B_OFF + bad, got_b[bad], pb[bad]))
        want = bytearray(DATA_SIZE)
        want[:A_SIZE] = pa
        want[B_OFF:B_OFF + B_SIZE] = pb
        if img == bytes(want):
            res.check('image-rest', True, 'pattern A and the zeros elsewhere are unchanged')
        else:
            bad = next(i for i in range(DATA_SIZE) if img[i] != want[i])
            res.check('image-rest', False, 'image differs at %#x: %#04x, want %#04x'
                      % (bad, img[bad], want[bad]))
        with open(ro_img, 'rb') as f:
            res.check('image-ro', f.read() == pr, 'the read-only image is unchanged')
        line = 'KEEL-HVC0 ' + token
        res.check('hvc0-log', line in res.console.splitlines(),
                  'console.log has "%s"' % line if line in res.console
                  else 'console.log (%d bytes) lacks "%s"' % (len(res.console), line))
        return res


# ------------------------------------------------------------------ net

FWD_SCRIPT = b'''#!/bin/sh
read -r line
echo "$line" >/tmp/fwd-got
echo "guest-reply $line"
'''


def case_net(a):
    blob = dg.pattern('keel-blob', 256 << 10)
    hport, gport = dg.free_port(), 5555
    token = 'fwd-%d' % os.getpid()
    with workdir(a) as wd, dg.HttpServer({'/blob': blob}) as srv:
        cfg = config(a, 'net', cpus=1, mem=256,
                     nets=[dg.Net('nat', hostfwd=[('tcp', hport, gport)])],
                     files={'/keel/fwd.sh': (FWD_SCRIPT, 0o755)},
                     env={'HTTP_PORT': srv.port, 'BLOB_MD5': md5(blob),
                          'BLOB_SIZE': len(blob), 'FWD_PORT': gport, 'FWD_TOKEN': token})
        reply = []

        def host(b):
            """The guest listens (KEEL-WAIT hostfwd): connect to the
            forwarded port, send the token, read the guest's answer.  A
            connection the NAT accepts before the guest's listener is ready
            closes without data: try again."""
            b.wait_for(r'^KEEL-WAIT hostfwd$')
            err = None
            for _ in range(10):
                try:
                    with socket.create_connection(('127.0.0.1', hport), timeout=30) as s:
                        s.sendall(token.encode() + b'\n')
                        data = b''
                        while not data.endswith(b'\n'):
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    if data:
                        reply.append(data)
                        return
                    err = 'connection closed without data'
                except OSError as e:
                    err = str(e)
                time.sleep(0.5)
            reply.append(('no answer: %s' % err).encode())

        res = dg.run(cfg, keep=a.keep and os.path.join(wd, 'logs-' + a.vmm),
                     verbose=a.verbose, host=host)
        res.expect('net-iface', 'dhcp', 'dhcp-address', 'dhcp-router', 'dhcp-dns',
                   'wget-md5', 'hostfwd-guest', 'kmsg-clean', 'http-served', 'hostfwd-host')
        res.check('http-served', '/blob' in srv.requests,
                  'the host server got GET %s' % ' '.join(srv.requests))
        want = ('guest-reply %s\n' % token).encode()
        got = reply[0] if reply else b'(the runner never connected)'
        res.check('hostfwd-host', got == want,
                  '127.0.0.1:%d -> guest:%d answered %r' % (hport, gport, got))
        return res


CASES = {'basic': case_basic, 'net': case_net}
