# shellcheck shell=sh
# /lib/keel.sh of the Debian guest kit: helpers for test scripts (/keel/test).
# Source it with `. /lib/keel.sh`.  Every check prints one line that the
# runner (debguest.py) collects:
#     KEEL-CHECK <name> ok|fail <detail>
# and end the script with `keel_done`, which exits with the number of failed
# checks.  Other lines the runner understands:
#     KEEL-NOTE <name> <value>       a measurement or fact, shown in the report
#     KEEL-WAIT <tag>                the guest waits for the host (the runner's
#                                    case code watches for it)

KEEL_FAILS=0

_keel_detail() { # text -> one line, at most 300 characters
    printf '%s' "$*" | tr '\n\r\t' '   ' | cut -c1-300
}

# ok NAME [DETAIL...] / fail NAME [DETAIL...]
ok() { n=$1; shift; echo "KEEL-CHECK $n ok $(_keel_detail "$*")"; }
fail() {
    n=$1; shift
    echo "KEEL-CHECK $n fail $(_keel_detail "$*")"
    KEEL_FAILS=$((KEEL_FAILS + 1))
}

# check NAME CMD [ARGS...]: ok when CMD exits 0; CMD's output is the detail.
check() {
    n=$1; shift
    if _out=$("$@" 2>&1); then ok "$n" "$_out"
    else _rc=$?; fail "$n" "exit $_rc: $_out"; fi
}

# expect_eq NAME GOT WANT: ok when the two strings are equal.
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1" "$2"
    else fail "$1" "got '$2', want '$3'"; fi
}

note() { n=$1; shift; echo "KEEL-NOTE $n $(_keel_detail "$*")"; }

# keel_wait_host TAG: tell the runner we are ready for its part (KEEL-WAIT).
keel_wait_host() { echo "KEEL-WAIT $1"; }

# wait_for SECONDS CMD [ARGS...]: retries CMD every 0.1 s until it succeeds
# or SECONDS pass; exit status of the last try.
wait_for() {
    _t=$(($1 * 10)); shift
    while ! "$@" >/dev/null 2>&1; do
        _t=$((_t - 1)); [ $_t -gt 0 ] || { "$@" >/dev/null 2>&1; return; }
        sleep 0.1
    done
}

# disk_by_serial SERIAL: prints /dev/vdX of the virtio disk with that serial
# (the runner gives every disk one: --disk PATH,serial=NAME).
disk_by_serial() {
    for _s in /sys/block/*/serial; do
        [ "$(cat "$_s" 2>/dev/null)" = "$1" ] || continue
        _d=${_s%/serial}; echo "/dev/${_d##*/}"; return 0
    done
    return 1
}

# net_iface [N]: the name of the Nth (0-based) Ethernet interface.
net_iface() {
    _i=0
    for _n in /sys/class/net/*; do
        [ "$(cat "$_n/type" 2>/dev/null)" = 1 ] || continue
        [ -e "$_n/device" ] || continue
        [ "$_i" = "${1:-0}" ] && { echo "${_n##*/}"; return 0; }
        _i=$((_i + 1))
    done
    return 1
}

# dhcp IFACE: brings IFACE up, runs udhcpc until it has a lease (applied by
# /etc/udhcpc/default.script), or fails after about 15 s; log in /tmp/udhcpc.log.
dhcp() {
    ip link set "$1" up
    timeout 20 udhcpc -i "$1" -n -q -t 5 -T 3 -f >/tmp/udhcpc.log 2>&1
}

# kmsg_clean NAME: fail when the kernel log has oopses, BUGs or WARNINGs.
kmsg_clean() {
    _bad=$(dmesg | grep -E 'Call Trace|BUG:|WARNING:|Oops|Kernel panic' | head -n 5)
    if [ -z "$_bad" ]; then ok "$1" "no Call Trace/BUG:/WARNING: in $(dmesg | wc -l) lines"
    else fail "$1" "$_bad"; fi
}

# keel_done: exit with the number of failed checks.
keel_done() { exit "$KEEL_FAILS"; }
