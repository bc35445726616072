#!/bin/bash
# tests/nested/smoke.sh: build kvm-smoke on the host, run it inside L1 via
# run-in-l1, and print timings. Exit status: kvm-smoke's (77: no /dev/kvm).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KEEL_NESTED_CACHE:-$(cd "$here/../.." && pwd)/build/nested-cache}
"$here/setup.sh" "$cache"
gcc -O2 -Wall -Wextra -o "$cache/kvm-smoke" "$here/kvm-smoke.c"
cd "$cache"   # writable share = cwd; /tmp inside L1 is a private tmpfs
KEEL_NESTED_TIMING=1 exec "$here/run-in-l1" --cache "$cache" --timeout 300 -- ./kvm-smoke "$@"
