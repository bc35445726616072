# net: virtio-net on NAT: a DHCP lease, HTTP from a host server (10.0.2.2),
# a host port forward to a listener in the guest, clean kernel log.
# Environment (cases.py): HTTP_PORT BLOB_MD5 BLOB_SIZE FWD_PORT FWD_TOKEN;
# /keel/fwd.sh answers one line on the forwarded connection.
. /lib/keel.sh

if ! ifc=$(net_iface); then
    fail net-iface "no Ethernet interface: $(ls /sys/class/net | tr '\n' ' ')"
    keel_done
fi
ok net-iface "$ifc $(cat "/sys/class/net/$ifc/address") driver $(basename "$(readlink "/sys/class/net/$ifc/device/driver")")"

# --- DHCP from the NAT ------------------------------------------------------------
if dhcp "$ifc"; then
    ok dhcp "$(grep -i -e lease -e obtained /tmp/udhcpc.log | tail -n 1)"
else
    fail dhcp "udhcpc: $(cat /tmp/udhcpc.log)"
fi
expect_eq dhcp-address "$(ip -4 -o addr show dev "$ifc" | awk '{print $4}')" 10.0.2.15/24
expect_eq dhcp-router "$(ip route | awk '/^default/ {print $3}')" 10.0.2.2
expect_eq dhcp-dns "$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)" 10.0.2.3

# --- HTTP: a host server on 127.0.0.1, the guest's 10.0.2.2 -----------------------
t0=$(cut -d' ' -f1 /proc/uptime)
if timeout 60 wget -q -O /tmp/blob "http://10.0.2.2:$HTTP_PORT/blob" 2>/tmp/wget.err; then
    t1=$(cut -d' ' -f1 /proc/uptime)
    expect_eq wget-md5 "$(md5sum </tmp/blob | cut -d' ' -f1)" "$BLOB_MD5"
    note wget "$(wc -c </tmp/blob) bytes in $(awk "BEGIN {print $t1 - $t0}") s"
else
    fail wget-md5 "wget http://10.0.2.2:$HTTP_PORT/blob: $(cat /tmp/wget.err)"
fi

# --- host forward: tcp::HOSTPORT-:FWD_PORT, the runner connects ----------------------
nc -ll -p "$FWD_PORT" -e /keel/fwd.sh &
ncpid=$!
if wait_for 10 sh -c "netstat -ltn | grep -q ':$FWD_PORT '"; then
    keel_wait_host hostfwd
    wait_for 60 test -s /tmp/fwd-got
    expect_eq hostfwd-guest "$(cat /tmp/fwd-got 2>/dev/null)" "$FWD_TOKEN"
else
    fail hostfwd-guest "nc is not listening on port $FWD_PORT: $(netstat -ltn)"
fi
kill $ncpid 2>/dev/null

kmsg_clean kmsg-clean
keel_done
