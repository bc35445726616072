#!/usr/bin/env python3
"""Adds up the Meson test logs of several build directories and prints the
final 'N passed, N failed, N skipped' line that CI reads.  Exits non-zero when
a test failed or no test ran."""
import json
import os
import sys

passed = failed = skipped = 0
logs = []
for build in sys.argv[1:]:
    log = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"summary: {log} missing: no tests ran in {build}")
        failed += 1
        continue
    logs.append((build, log))
    # keel suites re-run inside the nested KVM machine (make check-nested).
    err = os.path.join(build, "meson-logs", "nested.error")
    if os.path.exists(err):
        print(f"FAILED: {build}: {open(err).read().strip()}")
        failed += 1
    nested = os.path.join(build, "meson-logs", "nested.json")
    if os.path.exists(nested):
        logs.append((build + " (nested KVM)", nested))
for build, log in logs:
    for line in open(log):
        t = json.loads(line)
        res = t["result"]
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
            print(f"skipped: {build}: {t['name']}")
        else:
            failed += 1
            print(f"FAILED: {build}: {t['name']} ({res})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not passed else 0)
