#!/usr/bin/env python3
"""Compile and link one freestanding keel test guest.

usage: build.py --out OUT --objdir DIR --ldscript LD --include DIR [--objcopy OC]
                [--binary] --srcs SRC... --cc CC [CCARGS...]

Kept outside meson's executable() so project-wide options (sanitizers,
coverage, PIE, LTO) never leak into guest code.
"""
import argparse
import os
import subprocess
import sys

CFLAGS = [
    '-std=gnu11', '-O2', '-g0', '-Wall', '-Wextra', '-Werror',
    '-ffreestanding', '-fno-builtin', '-fno-pic', '-fno-pie',
    '-mno-red-zone', '-mgeneral-regs-only', '-mno-sse', '-mno-mmx',
    '-fno-stack-protector', '-fno-asynchronous-unwind-tables',
    '-fno-unwind-tables', '-fcf-protection=none', '-fno-common',
]
LDFLAGS = [
    '-nostdlib', '-static', '-no-pie', '-Wl,--build-id=none',
    '-Wl,-z,max-page-size=4096', '-Wl,-z,noexecstack',
]


def run(cmd):
    r = subprocess.run(cmd)
    if r.returncode:
        sys.exit('build.py: failed: ' + ' '.join(cmd))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--objdir', help='where objects go (default OUT.p)')
    ap.add_argument('--ldscript', required=True)
    ap.add_argument('--include', action='append', default=[])
    ap.add_argument('--objcopy')
    ap.add_argument('--binary', action='store_true',
                    help='OUT is a flat binary (objcopy -O binary of the ELF)')
    ap.add_argument('--srcs', nargs='+', required=True)
    ap.add_argument('--cc', nargs=argparse.REMAINDER, required=True)
    a = ap.parse_args()

    objdir = a.objdir or a.out + '.p'
    os.makedirs(objdir, exist_ok=True)
    incs = ['-I' + d for d in a.include]
    objs = []
    for i, src in enumerate(a.srcs):
        base = os.path.basename(src)
        obj = os.path.join(objdir, '%02d-%s.o' % (i, base))
        run(a.cc + CFLAGS + incs + ['-c', src, '-o', obj])
        objs.append(obj)

    elf = a.out
    if a.binary:
        elf = os.path.join(objdir, os.path.basename(a.out) + '.elf')
    link = a.cc + LDFLAGS + ['-T', a.ldscript, '-o', elf] + objs
    quiet = ['-Wl,--no-warn-rwx-segments']
    if subprocess.run(link + quiet, stderr=subprocess.DEVNULL).returncode:
        run(link)	# older linkers lack the option; show real errors
    if a.binary:
        run([a.objcopy, '-O', 'binary', elf, a.out])


if __name__ == '__main__':
    main()
