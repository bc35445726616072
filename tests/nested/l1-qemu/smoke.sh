#!/bin/bash
# tests/nested/l1-qemu/smoke.sh [--stock] [--timeout S] [--keep]
#
# Stock OVMF in the nested machine: in one L1 boot (run-in-l1 --firmware-safe,
# the CR8-patched L1 emulator), Debian's own QEMU (/usr/bin, -accel kvm -M pc,
# no NIC) boots OVMF_CODE_4M.fd + a copy of OVMF_VARS_4M.fd with a small GPT
# ESP on virtio-blk whose startup.nsh echoes a marker and runs `reset -s`.
# Checks the marker on L2's serial port and a guest power-off; prints the time
# from L2 QEMU's start to the UEFI shell, the marker and the exit.
#
#   --stock      the same under Debian's L1 emulator, which is expected to abort
#                (tcg_handle_interrupt assertion); passes if it does, and says
#                how long that took
#   --timeout S  run-in-l1 timeout (default 600); L2 gets S-60
#   --keep       keep the work directory (disk, VARS, serial and trace logs)
# Host packages (installed if missing, as root): ovmf mtools dosfstools gdisk.
# Exit: 0 pass; 1 fail; 77 no /dev/kvm in L1; 78 no patched L1 emulator (SKIP).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
marker=KEEL-UEFI-SMOKE-OK
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd

# ---------------------------------------------------------------- inside L1 --
if [ "${1:-}" = --in-l1 ]; then
    l2_timeout=$2
    # Bash's $EPOCHREALTIME: no fork per sample (L1 has one emulated vCPU,
    # which the watcher would take from L2).
    t0=$EPOCHREALTIME
    since() { local n=$EPOCHREALTIME; n=$(( ${n//[.,]/} - ${t0//[.,]/} )); printf '%d.%01d' $((n / 1000000)) $(( (n / 100000) % 10 )); }
    qemu=/usr/bin/qemu-system-x86_64      # Debian's, the reference peer: by full path
    echo "smoke: L1 PATH finds $(command -v qemu-system-x86_64); L2 runs $qemu ($($qemu --version | head -n 1))"
    rm -f serial.log debugcon.log l2.log events
    : >serial.log
    t0=$EPOCHREALTIME
    timeout -k 5 "$l2_timeout" "$qemu" \
        -accel kvm -machine pc -m 256 -smp 1 \
        -nodefaults -no-user-config -display none -no-reboot \
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
        -drive if=pflash,format=raw,unit=1,file=vars.fd \
        -drive if=none,id=esp,format=raw,file=disk.img \
        -device virtio-blk-pci,drive=esp \
        -serial file:serial.log \
        -debugcon file:debugcon.log -global isa-debugcon.iobase=0x402 \
        -D l2.log -trace qemu_system_shutdown_request </dev/null &
    qpid=$!
    echo "smoke: L2 QEMU started (pid $qpid); OVMF is booting"
    # Follow L2's serial output line by line; note when milestones appear.
    tail -n +1 -F -s 0.1 --pid=$qpid serial.log 2>/dev/null | {
        out=0 shell=0 mark=0
        while IFS= read -r line; do
            [ $out = 0 ] && { out=1; t=$(since); echo "output $t" >>events; echo "smoke: first serial line at ${t}s"; }
            case $line in *"UEFI Interactive Shell"*)
                [ $shell = 0 ] && { shell=1; t=$(since); echo "shell $t" >>events; echo "smoke: UEFI shell at ${t}s"; } ;;
            esac
            case $line in *"$marker"*)
                [ $mark = 0 ] && { mark=1; t=$(since); echo "marker $t" >>events; echo "smoke: marker from startup.nsh at ${t}s"; } ;;
            esac
        done
    } &
    wpid=$!
    wait $qpid
    qrc=$?
    t_exit=$(since)
    wait $wpid
    t_shell=$(awk '$1 == "shell" {print $2}' events 2>/dev/null)
    t_marker=$(awk '$1 == "marker" {print $2}' events 2>/dev/null)
    grep -a -q "$marker" serial.log 2>/dev/null && [ -z "$t_marker" ] && t_marker="<$t_exit"
    reason=$(grep -o 'qemu_system_shutdown_request reason=[0-9]*' l2.log 2>/dev/null | tail -n 1)
    reason=${reason##*=}
    echo "smoke: L2 QEMU exited with status $qrc at ${t_exit}s (shutdown reason ${reason:-none}: 6 = guest power-off)"
    if [ $qrc = 124 ] || [ $qrc = 137 ]; then
        echo "smoke: FAIL: L2 timed out after ${l2_timeout}s; serial tail:"
        tail -c 600 serial.log 2>/dev/null | tr -d '\033' | tail -n 8
        exit 1
    fi
    if [ -z "$t_marker" ]; then
        echo "smoke: FAIL: no marker on L2's serial port; serial tail:"
        tail -c 600 serial.log 2>/dev/null | tr -d '\033' | tail -n 8
        exit 1
    fi
    if [ $qrc != 0 ] || [ "$reason" != 6 ]; then
        echo "smoke: FAIL: L2 did not power off (status $qrc, reason ${reason:-none}); l2.log:"
        tail -n 5 l2.log 2>/dev/null
        exit 1
    fi
    echo "smoke: PASS: OVMF shell ${t_shell:-?}s, marker ${t_marker}s, power-off ${t_exit}s (from L2 QEMU start)"
    exit 0
fi

# ---------------------------------------------------------------- on the host --
mode=patched timeout=600 keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --stock) mode=stock; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 1 ;;
    esac
done
log() { echo "smoke: $*" >&2; }

PATH=$PATH:/usr/sbin:/sbin
need=()
[ -r "$code" ] && [ -r "$vars" ] || need+=(ovmf)
command -v mcopy >/dev/null || need+=(mtools)
command -v mkfs.fat >/dev/null || need+=(dosfstools)
command -v sgdisk >/dev/null || need+=(gdisk)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"; }; } >/dev/null ||
        { log "cannot install ${need[*]}"; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keel-fwsmoke.XXXXXX") || exit 1
[ $keep = 1 ] && log "work directory: $work" || trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# A 34 MiB GPT disk: one EFI system partition from 1 MiB, FAT16, startup.nsh.
cp "$vars" vars.fd
printf '@echo -off\r\necho %s\r\nreset -s\r\n' "$marker" >startup.nsh
truncate -s 34M disk.img
sgdisk -o -n 1:2048:0 -t 1:ef00 -c 1:ESP disk.img >/dev/null || { log "sgdisk failed"; exit 1; }
sectors=$(sgdisk -i 1 disk.img | awk '/^Partition size:/ {print $3}')
truncate -s $((sectors * 512)) esp.img
mkfs.fat -F 16 -n ESP esp.img >/dev/null || { log "mkfs.fat failed"; exit 1; }
mcopy -i esp.img startup.nsh ::/startup.nsh || { log "mcopy failed"; exit 1; }
dd if=esp.img of=disk.img bs=1M seek=1 conv=notrunc status=none && rm -f esp.img

flags=(--firmware-safe)
[ $mode = stock ] && flags=()
log "L1 emulator: $mode; L2: stock OVMF under /usr/bin/qemu-system-x86_64 -accel kvm -M pc"
t0=$(date +%s%N)
KEEL_NESTED_TIMING=1 "$here/../run-in-l1" "${flags[@]}" --timeout "$timeout" --rw "$work" \
    -- /bin/bash "$here/smoke.sh" --in-l1 $((timeout - 60)) 2>"$work/l1.err"
rc=$?
wall=$(( ($(date +%s%N) - t0) / 1000000 ))
cat "$work/l1.err" >&2
if [ $mode = patched ]; then
    log "run-in-l1 status $rc, ${wall} ms wall in all (L1 boot included)"
    case $rc in
    0) log "PASS" ;;
    78) log "SKIP: firmware tests need the patched L1 emulator: $(grep -o 'no patched L1 emulator for firmware tests: .*' "$work/l1.err" | tail -n 1 | cut -d: -f2- | sed 's/^ //')" ;;
    77) log "SKIP: no /dev/kvm in L1" ;;
    *) log "FAIL"; rc=1 ;;
    esac
    exit $rc
fi
if grep -q 'tcg_handle_interrupt: assertion failed' "$work/l1.err"; then
    boot=$(sed -n 's/.*L1 uptime at command start \([0-9]*\) ms.*/\1/p' "$work/l1.err")
    log "stock L1 emulator aborted as expected (tcg_handle_interrupt assertion), ${wall} ms after run-in-l1 started (L1 boot to the command: ${boot:-?} ms)"
    exit 0
fi
log "stock L1 emulator did not abort (run-in-l1 status $rc, ${wall} ms): is the bug fixed in this QEMU?"
exit 1
