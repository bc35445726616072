#!/usr/bin/env python3
"""The keel CLI: usage errors, library errors and help, without a guest."""
import os
import subprocess
import sys
import tempfile

keel = sys.argv[1]
failures = 0


def run(*args, env=None):
    p = subprocess.run([keel, *args], capture_output=True, text=True, timeout=30, env=env)
    return p.returncode, p.stdout + p.stderr


def expect(args, code, needle):
    global failures
    rc, out = run(*args)
    if rc != code or needle not in out:
        failures += 1
        print(f"FAIL keel {' '.join(args)}: exit {rc} (want {code}), output {out!r} "
              f"(want {needle!r})")
    else:
        print(f"ok   keel {' '.join(args)} -> {rc}: {out.strip().splitlines()[0]}")


with tempfile.TemporaryDirectory() as d:
    junk = os.path.join(d, "junk")
    with open(junk, "wb") as f:
        f.write(b"\0" * 8192)
    expect(["--help"], 0, "usage: keel run")
    expect(["run", "--help"], 0, "--kernel PATH")
    expect(["--version"], 0, "keel 0.")
    expect([], 2, "usage")
    expect(["frobnicate"], 2, "unknown command 'frobnicate'")
    expect(["run"], 2, "--kernel (or --efi) is required")
    expect(["run", "--kernel", junk, "--cpus", "two"], 2, "--cpus 'two': not a number")
    expect(["run", "--kernel", junk, "--memory", "12X"], 2, "--memory '12X': not a size")
    expect(["run", "--kernel", junk, "--serial", "tcp:1"], 2, "expected stdio, file:PATH, socket:PATH, fd:N or none")
    expect(["run", "--kernel", junk, "--console", "tcp:1"], 2, "expected stdio, file:PATH, socket:PATH, fd:N or none")
    expect(["run", "--kernel", junk, "--disk", junk + ",bogus"], 2, "unknown option 'bogus'")
    expect(["run", "--kernel", junk, "--disk", junk + ",queues=x"], 2, "queues=x: not a number")
    # sync=data (fdatasync) and its old name sync=fsync parse (the next option is the error).
    expect(["run", "--kernel", junk, "--disk", junk + ",sync=data,bogus"], 2, "unknown option 'bogus'")
    expect(["run", "--kernel", junk, "--disk", junk + ",sync=fsync,bogus"], 2, "unknown option 'bogus'")
    expect(["run", "--kernel", junk, "--disk", junk + ",sync=fdatasync"], 2,
           "unknown option 'sync=fdatasync' (expected ro, sync=full|data|none,")
    expect(["run", "--kernel", junk, "--disk", junk + ",poll=1001"], 2,
           "poll=1001: not a number of microseconds from 0 to 1000")
    expect(["run", "--kernel", junk, "--disk", junk + ",poll=-1"], 2, "poll=-1: not a number")
    expect(["run", "--kernel", junk, "--stop-timeout", "-1"], 2,
           "--stop-timeout '-1': not a number of seconds")
    expect(["run", "--kernel", junk, "--stop-timeout", "soon"], 2,
           "--stop-timeout 'soon': not a number of seconds")
    expect(["run", "--kernel", junk, "--rng=fast"], 2, "not a rate in bytes per second")
    expect(["run", "--kernel", junk, "--virtio-transport", "usb"], 2, "expected pci or mmio")
    expect(["run", "--kernel", junk, "--net", "wifi"], 2, "expected nat, tap=IFNAME")
    expect(["run", "--kernel", junk, "--net", "nat,hostfwd=tcp::80"], 2,
           "expected tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT")
    expect(["run", "--kernel", junk, "--net", "nat,mac=zz"], 2, "unknown or malformed option 'mac=zz'")
    expect(["run", "--kernel", junk, "--net", "fd=x"], 2, "fd=x: not a descriptor number")
    expect(["run", "--kernel", junk, "--serial", "fd:77"], 2,
           "--serial 'fd:77': serial attachment: input descriptor 77 is not usable")
    expect(["run", "--kernel", junk, "--console", "fd:x"], 2, "--console 'fd:x': not a descriptor number")
    expect(["run", "--kernel", junk, "--serial", "socket:/nonexistent-dir/s"], 2,
           "--serial 'socket:/nonexistent-dir/s': cannot listen on '/nonexistent-dir/s'")
    expect(["run", "--kernel", junk, "--on-reset", "explode"], 2, "expected stop or restart")
    expect(["run", "--kernel", junk, "extra"], 2, "unexpected argument 'extra'")
    expect(["run", "--kernel", junk, "--sandbox=maybe"], 2, "--sandbox=maybe: expected on, log or off")
    expect(["run", "--kernel", junk, "--user", "no-such-user-here"], 2,
           "--user 'no-such-user-here': no user no-such-user-here")
    expect(["run", "--kernel", junk, "--user", "65534:no-such-group-here"], 2,
           "no group no-such-group-here")
    expect(["run", "--kernel", junk, "--user", "65534:"], 2, "expected USER or USER:GROUP")
    expect(["run", "--help"], 0, "--no-sandbox")
    # The sandbox is checked by validation, after the kernel: these reach it.
    for opt in ("--sandbox", "--sandbox=log", "--sandbox=off", "--no-sandbox"):
        expect(["run", "--kernel", junk, opt], 1, "not a kernel image")
    # Errors from the library's validation, printed as they are.
    expect(["run", "--kernel", os.path.join(d, "nope")], 1, "No such file or directory")
    expect(["run", "--kernel", junk], 1, "not a kernel image")
    expect(["run", "--kernel", junk, "--cpus", "0"], 1, "CPU count is 0")
    expect(["run", "--kernel", junk, "--memory", "8M"], 1, "at least 16 MiB")
    expect(["run", "--kernel", junk, "--memory", "0"], 1, "at least 16 MiB")
    expect(["run", "--kernel", junk, "--memory", "-5"], 2, "--memory '-5': not a size")
    expect(["run", "--kernel", junk, "--serial", "file:/nonexistent-dir/log"], 2,
           "--serial 'file:/nonexistent-dir/log': serial attachment: cannot open '/nonexistent-dir/log'")
    # Disk images are checked by validation (the kernel check comes first).
    odd = os.path.join(d, "odd.img")
    with open(odd, "wb") as f:
        f.write(b"\0" * 1000)
    kernel = os.environ.get("KEEL_TEST_KERNEL")
    if kernel:
        expect(["run", "--kernel", kernel, "--disk", os.path.join(d, "nodisk")], 1,
               "disk 0: disk image")
        expect(["run", "--kernel", kernel, "--disk", odd], 1, "not a multiple of 512")
        expect(["run", "--kernel", kernel, "--virtio-transport", "mmio", "--rng"] +
               ["--console", "none"] * 7, 1, "virtio-mmio has interrupt lines for at most 7")
        expect(["run", "--kernel", kernel, "--net", "nat,subnet=10.0.0.0/31"], 1,
               "8 <= N <= 27")
        expect(["run", "--kernel", kernel, "--net",
                "nat,hostfwd=tcp::8022-:22,hostfwd=tcp::8022-:23"], 1, "forwarded twice")
        expect(["run", "--kernel", kernel, "--net", "nat,mac=01:00:00:00:00:01"], 1,
               "is a multicast address")

    rc, out = run("run", "--kernel", junk, env=dict(os.environ, KEEL_SANDBOX="sometimes"))
    if rc != 2 or "KEEL_SANDBOX='sometimes': expected on, log or off" not in out:
        failures += 1
        print(f"FAIL KEEL_SANDBOX=sometimes: exit {rc}, output {out!r}")
    else:
        print("ok   KEEL_SANDBOX=sometimes -> 2")

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
