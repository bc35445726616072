#!/usr/bin/env python3
"""Is this machine's /dev/kvm hardware KVM?  The one answer every harness uses.

keel's suites, `make run`, `make check-nested` and the benchmarks run keel
(and QEMU with -accel kvm) directly only where /dev/kvm is backed by
kvm_intel or kvm_amd.  Anything else (no /dev/kvm, no access, or a
paravirtual KVM such as kvm_pvm, which emulates guest ring 0 and breaks the
test guests) sends them into the nested L1 machine (tests/nested), where
kvm_amd is real.

    tests/kvmhost.py                 exit 0 (hardware KVM) or 77, reason on stdout
    tests/kvmhost.py --exec CMD...   run CMD where hardware KVM is, else exit 77
"""
import fcntl
import os
import sys

KVM_GET_API_VERSION = 0xae00


def hardware_kvm():
    """(True, 'kvm_intel'|'kvm_amd') or (False, why not)."""
    try:
        fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, '/dev/kvm: ' + e.strerror
    try:
        ver = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        return False, '/dev/kvm: KVM_GET_API_VERSION: ' + e.strerror
    finally:
        os.close(fd)
    if ver != 12:
        return False, '/dev/kvm: unexpected KVM API version %d' % ver
    for mod in ('kvm_intel', 'kvm_amd'):
        if os.path.isdir('/sys/module/' + mod):
            return True, mod
    others = sorted(m for m in os.listdir('/sys/module')
                    if m.startswith('kvm_')) if os.path.isdir('/sys/module') else []
    return False, ('/dev/kvm is not hardware KVM (kvm_intel and kvm_amd are not loaded%s)'
                   % ('; loaded: ' + ', '.join(others) if others else ''))


def main(argv):
    ok, why = hardware_kvm()
    if argv[:1] == ['--exec'] and len(argv) > 1:
        if ok:
            os.execvp(argv[1], argv[1:])
        print('SKIP: %s (the nested run covers it: tests/nested)' % why, flush=True)
        return 77
    print(why)
    return 0 if ok else 77


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
