# basic: CPUs, memory, clock, virtio-blk (read, O_DIRECT write, read-only),
# virtio-rng, virtio console, every virtio device bound, clean kernel log.
# Environment (cases.py): KEEL_CPUS KEEL_MEM_MIB HOST_EPOCH DATA_SERIAL
# DATA_SECTORS A_BLOCKS A_MD5 B_SEEK B_BLOCKS B_MD5 (64 KiB blocks; the B
# pattern is /keel/pattern-b.bin) RO_SERIAL RO_MD5 HVC_TOKEN VIRTIO_DEVICES
. /lib/keel.sh

# --- CPUs, memory, clock -----------------------------------------------------
expect_eq cpus "$(grep -c '^processor' /proc/cpuinfo)" "$KEEL_CPUS"
expect_eq cpus-online "$(cat /sys/devices/system/cpu/online)" "0-$((KEEL_CPUS - 1))"
mt=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
if [ "$mt" -le "$KEEL_MEM_MIB" ] && [ "$mt" -ge $((KEEL_MEM_MIB * 7 / 10)) ]; then
    ok mem "MemTotal $mt MiB of $KEEL_MEM_MIB"
else
    fail mem "MemTotal $mt MiB, configured $KEEL_MEM_MIB MiB"
fi
d=$(($(date +%s) - HOST_EPOCH))
if [ $d -ge -5 ] && [ $d -le 600 ]; then
    ok clock "guest clock $d s after the runner wrote the test ($(cat /sys/devices/system/clocksource/clocksource0/current_clocksource))"
else
    fail clock "guest $(date -u), $d s from the host's clock at start"
fi

# --- virtio devices: each has its driver -------------------------------------
n=0 unbound=
for v in /sys/bus/virtio/devices/virtio*; do
    [ -e "$v" ] || continue
    n=$((n + 1))
    [ -e "$v/driver" ] || unbound="$unbound ${v##*/}(device $(cat "$v/device"))"
done
if [ "$n" = "$VIRTIO_DEVICES" ] && [ -z "$unbound" ]; then
    ok virtio-bound "$n devices: $(for v in /sys/bus/virtio/devices/virtio*; do basename "$(readlink "$v/driver")"; done | tr '\n' ' ')"
else
    fail virtio-bound "$n devices (want $VIRTIO_DEVICES); without a driver:${unbound:- none}"
fi
# On PCI each virtio device has MSI-X vectors, config change first.
if [ -e /sys/bus/pci/drivers/virtio-pci ]; then
    cfgv=$(grep -cE 'PCI-MSI.* virtio[0-9]+-config$' /proc/interrupts)
    if [ "$cfgv" = "$VIRTIO_DEVICES" ]; then
        ok virtio-msix "$(grep -c 'PCI-MSI.* virtio' /proc/interrupts) vectors, $cfgv config vectors"
    else
        fail virtio-msix "$cfgv virtio config vectors, want $VIRTIO_DEVICES: $(grep virtio /proc/interrupts)"
    fi
fi

# --- virtio-blk ---------------------------------------------------------------
md5() { md5sum | cut -d' ' -f1; }
if data=$(disk_by_serial "$DATA_SERIAL"); then
    ok disk-found "$data serial $DATA_SERIAL"
    expect_eq disk-size "$(cat "/sys/block/${data#/dev/}/size")" "$DATA_SECTORS"
    expect_eq disk-read "$(dd if="$data" bs=64k count="$A_BLOCKS" iflag=direct 2>/dev/null | md5)" "$A_MD5"
    if dd if=/keel/pattern-b.bin of="$data" bs=64k seek="$B_SEEK" oflag=direct conv=fsync 2>/tmp/dd.err && sync; then
        ok disk-write "$(tail -n 1 /tmp/dd.err)"
    else
        fail disk-write "$(cat /tmp/dd.err)"
    fi
    echo 3 >/proc/sys/vm/drop_caches
    expect_eq disk-readback "$(dd if="$data" bs=64k skip="$B_SEEK" count="$B_BLOCKS" iflag=direct 2>/dev/null | md5)" "$B_MD5"
else
    fail disk-found "no disk with serial $DATA_SERIAL: $(ls /sys/block)"
fi
if ro=$(disk_by_serial "$RO_SERIAL"); then
    expect_eq disk-ro-flag "$(cat "/sys/block/${ro#/dev/}/ro")" 1
    expect_eq disk-ro-read "$(dd if="$ro" bs=64k iflag=direct 2>/dev/null | md5)" "$RO_MD5"
    if dd if=/dev/zero of="$ro" bs=4096 count=1 oflag=direct conv=fsync 2>/tmp/dd.err; then
        fail disk-ro-write "a write to the read-only disk $ro succeeded"
    else
        ok disk-ro-write "refused: $(head -n 1 /tmp/dd.err)"
    fi
else
    fail disk-ro-flag "no disk with serial $RO_SERIAL: $(ls /sys/block)"
fi

# --- virtio-rng ---------------------------------------------------------------
cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
case $cur in
virtio_rng.*) ok rng-current "$cur" ;;
*) fail rng-current "rng_current is '$cur' (available: $(cat /sys/class/misc/hw_random/rng_available 2>/dev/null))" ;;
esac
timeout 30 dd if=/dev/hwrng of=/tmp/rng bs=64 count=4 iflag=fullblock 2>/dev/null
got=$(wc -c </tmp/rng)
zeros=$(od -An -v -tx1 /tmp/rng | tr -d ' \n' | tr -d 0 | wc -c)
if [ "$got" = 256 ] && [ "$zeros" -gt 0 ]; then
    ok rng-read "256 bytes from /dev/hwrng: $(od -An -tx1 -N8 /tmp/rng)"
else
    fail rng-read "$got bytes from /dev/hwrng (want 256, not all zero)"
fi

# --- virtio console -------------------------------------------------------------
if [ -c /dev/hvc0 ]; then
    echo "KEEL-HVC0 $HVC_TOKEN" >/dev/hvc0 && ok hvc0-write "wrote KEEL-HVC0 $HVC_TOKEN to /dev/hvc0"
else
    fail hvc0-write "no /dev/hvc0: $(ls /dev | grep -e hvc -e vport | tr '\n' ' ')"
fi

# --- kernel log -------------------------------------------------------------------
kmsg_clean kmsg-clean
keel_done
