/*
 * virtio-net guest: one image, behaviour chosen by cmdline net_test=:
 *
 *   dhcp             DHCP lease; prints "IP=a.b.c.d GW=.. DNS=.. LEASE=..";
 *                    checks expect_ip= / expect_gw= / expect_dns= if given,
 *                    then ARP-resolves the gateway (ping_gw=1: pings it).
 *   udp_echo_server  prints READY, echoes count= datagrams on UDP port=
 *                    (count=0: forever, quietly, never failing; for host
 *                    tests that end the VM themselves).
 *   udp_client       sends msg= (count= times, "-i" appended) to
 *                    peer=A.B.C.D:PORT and expects each echoed back.
 *   tcp_client       connects to peer=, sends "msg\n", expects "msg\n" back
 *                    (or expect_reply=), closes.
 *   ping             count= ICMP echo requests to peer= (port ignored).
 *   malformed        transmits a 10-byte frame, (malformed_empty=1) an
 *                    empty frame, headers with
 *                    NEEDS_CSUM (sane and out-of-range offsets) and GSO set
 *                    without negotiation, and a 65550-byte frame; each must
 *                    complete and leave the device usable; then the normal
 *                    address set-up and (with peer=) a UDP echo must work.
 *   link             reports the config status LINK_UP bit ("LINK=1");
 *                    expect_link= (default 1) must match.
 *   perf             blasts count= UDP datagrams of size= payload bytes to
 *                    peer= and prints "PERF-NET ..." with rdtsc timing.
 *
 * Addressing (all modes but link): ip=A.B.C.D [mask=] [gw=] is static,
 * otherwise DHCP. Other keys: transport=pci|mmio, net_mrg=0 (no
 * MRG_RXBUF), net_timeout= seconds per step (default 30). Words may not
 * contain spaces: msg= is one word.
 */
#include <keel/kit.h>
#include <keel/net.h>

static u64 step_us;
static char mode[32];

static bool cmdline_ip(const char *key, u32 *ip, u16 *port)
{
	char buf[32];
	const char *end;

	if (!cmdline_str(key, buf, sizeof(buf)))
		return false;
	if (!net_parse_ip(buf, ip, &end)) {
		fail("cmdline %s=%s: not an address", key, buf);
		return false;
	}
	if (port) {
		*port = 0;
		if (*end == ':')
			*port = (u16)strtou64(end + 1, NULL);
	}
	return true;
}

static void check_expect(const char *key, u32 got)
{
	u32 want;
	char a[16], b[16];

	if (cmdline_ip(key, &want, NULL))
		check(got == want, key, "got %s, expected %s", net_fmt_ip(got, a),
		      net_fmt_ip(want, b));
}

static bool configure(void)
{
	char a[16], b[16], c[16];
	u32 ip;

	if (cmdline_ip("ip", &ip, NULL)) {
		net_cfg.ip = ip;
		if (!cmdline_ip("mask", &net_cfg.mask, NULL))
			net_cfg.mask = 0xffffff00;
		cmdline_ip("gw", &net_cfg.gw, NULL);
		pass("static address %s/%s gw %s", net_fmt_ip(net_cfg.ip, a),
		     net_fmt_ip(net_cfg.mask, b), net_fmt_ip(net_cfg.gw, c));
		return true;
	}
	if (!net_dhcp(step_us)) {
		fail("DHCP: no lease within %llu s", step_us / 1000000);
		return false;
	}
	printf("IP=%s GW=%s DNS=%s LEASE=%u\n", net_fmt_ip(net_cfg.ip, a),
	       net_fmt_ip(net_cfg.gw, b), net_fmt_ip(net_cfg.dns, c),
	       net_cfg.lease);
	pass("DHCP lease %s from %s", a, net_fmt_ip(net_cfg.server, b));
	check_expect("expect_ip", net_cfg.ip);
	check_expect("expect_gw", net_cfg.gw);
	check_expect("expect_dns", net_cfg.dns);
	return true;
}

static bool get_peer(u32 *ip, u16 *port, bool need_port)
{
	if (!cmdline_ip("peer", ip, port)) {
		fail("%s: cmdline peer=A.B.C.D:PORT missing", mode);
		return false;
	}
	if (need_port && !*port) {
		fail("%s: peer= has no :PORT", mode);
		return false;
	}
	return true;
}

static void udp_exchange(void)
{
	char msg[64], out[96], in[128], a[16];
	u64 count = cmdline_u64_or("count", 3), i;
	u32 ip;
	u16 port, sp;
	int n = -1, tries;

	if (!get_peer(&ip, &port, true))
		return;
	if (!cmdline_str("msg", msg, sizeof(msg)))
		memcpy(msg, "keel-net", 9);
	for (i = 0; i < count; i++) {
		u16 lport = (u16)(50000 + i);
		u32 src = 0;

		snprintf(out, sizeof(out), "%s-%llu", msg, i);
		for (tries = 0; tries < 5; tries++) {
			if (!net_udp_send(ip, lport, port, out, strlen(out))) {
				fail("udp %llu: cannot send to %s:%u (ARP?)", i,
				     net_fmt_ip(ip, a), port);
				return;
			}
			n = net_udp_recv(lport, in, sizeof(in) - 1, &src, &sp,
					 2000000);
			if (n >= 0)
				break;
		}
		if (n < 0) {
			fail("udp %llu: no echo from %s:%u after %d tries", i,
			     net_fmt_ip(ip, a), port, tries);
			return;
		}
		in[n] = 0;
		check(n == (int)strlen(out) && !memcmp(in, out, n) &&
		      src == ip && sp == port, "udp echo",
		      "%llu: sent '%s', got '%s' from %s:%u (try %d)", i, out,
		      in, net_fmt_ip(src, a), sp, tries + 1);
	}
}

static void udp_echo_server(void)
{
	u64 count = cmdline_u64_or("count", 3), i;
	u16 port = (u16)cmdline_u64_or("port", 7);
	bool forever = !count;
	char buf[1600], a[16];
	u32 src;
	u16 sp;
	int n;

	puts("READY\n");
	for (i = 0; forever || i < count; i++) {
		n = net_udp_recv(port, buf, sizeof(buf), &src, &sp,
				 step_us * 2);
		if (n < 0) {
			if (forever) {
				i--;
				continue;
			}
			fail("udp server: datagram %llu of %llu did not arrive",
			     i + 1, count);
			return;
		}
		if (!net_udp_send(src, port, sp, buf, (u32)n)) {
			if (forever) {
				/* link down or a peer gone: keep serving */
				printf("udp server: cannot answer %s:%u\n",
				       net_fmt_ip(src, a), sp);
				continue;
			}
			fail("udp server: cannot answer %s:%u", net_fmt_ip(src, a),
			     sp);
			return;
		}
		if (!forever)
			printf("udp server: echoed %d bytes to %s:%u\n", n,
			       net_fmt_ip(src, a), sp);
	}
	vnet_tx_drain(1000000);
	pass("udp server: echoed %llu datagrams on port %u", count, port);
}

static void tcp_client(void)
{
	char msg[64], line[128], want[80], got[128], a[16];
	u32 ip;
	u16 port;
	int n;

	if (!get_peer(&ip, &port, true))
		return;
	if (!cmdline_str("msg", msg, sizeof(msg)))
		memcpy(msg, "keel-tcp", 9);
	if (!cmdline_str("expect_reply", want, sizeof(want)))
		memcpy(want, msg, strlen(msg) + 1);
	if (!tcp_connect(ip, port, step_us)) {
		fail("tcp: connect to %s:%u failed", net_fmt_ip(ip, a), port);
		return;
	}
	pass("tcp: connected to %s:%u", a, port);
	snprintf(line, sizeof(line), "%s\n", msg);
	if (!tcp_send(line, strlen(line))) {
		fail("tcp: send not acknowledged");
		return;
	}
	pass("tcp: sent %u bytes, acknowledged", (u32)strlen(line));
	n = tcp_recv_line(got, sizeof(got) - 1, step_us);
	if (n < 0) {
		fail("tcp: no reply line");
		return;
	}
	got[n] = 0;
	if (n && got[n - 1] == '\n')
		got[--n] = 0;
	check(!strcmp(got, want), "tcp: reply line", "'%s', expected '%s'",
	      got, want);
	check(tcp_close(step_us), "tcp: close", "FIN exchanged");
}

static void ping(void)
{
	u64 count = cmdline_u64_or("count", 3), i;
	char a[16];
	u32 ip;
	u16 port;
	int tries;

	if (!get_peer(&ip, &port, false))
		return;
	for (i = 0; i < count; i++) {
		for (tries = 0; tries < 3; tries++)
			if (net_ping(ip, (u16)(i + 1), 2000000))
				break;
		check(tries < 3, "ping", "%s seq %llu (try %d)",
		      net_fmt_ip(ip, a), i + 1, tries + 1);
	}
}

static void perf(void)
{
	u64 count = cmdline_u64_or("count", 10000), i, t0, t1, cyc, hz, ns;
	u32 size = (u32)cmdline_u64_or("size", 1024), len, ip;
	static u8 frame[ETH_FRAME_MAX];
	static u8 payload[ETH_MTU];
	u8 mac[6];
	u16 port;

	if (!get_peer(&ip, &port, true))
		return;
	if (size < 8 || size > ETH_MTU - 28) {
		fail("perf: size=%u out of range 8..%u", size, ETH_MTU - 28);
		return;
	}
	if (!net_route(ip, mac, step_us)) {
		fail("perf: no ARP answer for the peer");
		return;
	}
	for (i = 0; i < size; i++)
		payload[i] = (u8)i;
	len = net_udp_frame(frame, mac, ip, 50000, port, payload, size, false);
	t0 = rdtsc();
	for (i = 0; i < count; i++) {
		/* Sequence number in the payload (UDP checksum left 0). */
		memcpy(frame + len - size, &i, 8);
		if (!vnet_send(frame, len)) {
			fail("perf: tx ring stuck at datagram %llu", i);
			return;
		}
	}
	if (!vnet_tx_drain(step_us)) {
		fail("perf: tx completions missing");
		return;
	}
	t1 = rdtsc();
	cyc = t1 - t0;
	hz = tsc_hz();
	ns = hz ? cyc * 1000 / (hz / 1000000) : 0;
	printf("PERF-NET count=%llu size=%u frame=%u cycles=%llu tsc_hz=%llu "
	       "ns=%llu ns_per_pkt=%llu kpps=%llu mbit=%llu\n", count, size, len,
	       cyc, hz, ns, count ? ns / count : 0,
	       ns ? count * 1000000 / ns : 0,
	       ns ? count * size * 8 * 1000 / ns : 0);
	pass("perf: %llu datagrams of %u bytes sent", count, size);
}

static bool dev_healthy(const char *what)
{
	u8 st = vnet.dev->ops->get_status(vnet.dev);

	check(!(st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) &&
	      (st & VIRTIO_STATUS_DRIVER_OK), what, "status %#x", st);
	return true;
}

static void malformed(void)
{
	static u8 big[65550];
	u8 f[64], mac[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct virtio_net_hdr h;
	u32 len, i;

	/* 1: a 10-byte "frame" (shorter than an Ethernet header). */
	memset(f, 0xee, sizeof(f));
	check(vnet_send(f, 10) && vnet_tx_drain(5000000),
	      "malformed: 10-byte frame completed", "%s", "tx buffer returned");
	/* 2: header only, no frame at all (malformed_empty=1: QEMU treats
	 * this as a guest error and sets NEEDS_RESET, which the spec allows). */
	if (cmdline_u64_or("malformed_empty", 0))
		check(vnet_send(f, 0) && vnet_tx_drain(5000000),
		      "malformed: empty frame completed", "%s",
		      "tx buffer returned");
	dev_healthy("malformed: device healthy after short frames");
	/* 3: NEEDS_CSUM without VIRTIO_NET_F_CSUM, sane offsets (UDP). */
	len = net_udp_frame(big, mac, 0x0a0a0a0a, 9, 9, "keel-csum", 9, false);
	memset(&h, 0, sizeof(h));
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = ETH_HLEN + 20;
	h.csum_offset = 6;
	check(vnet_send_raw(&h, big, len) && vnet_tx_drain(5000000),
	      "malformed: NEEDS_CSUM (not negotiated) completed", "%s", "tx buffer returned");
	/* 4: NEEDS_CSUM with offsets beyond the frame. */
	h.csum_start = 60000;
	h.csum_offset = 65000;
	check(vnet_send_raw(&h, big, len) && vnet_tx_drain(5000000),
	      "malformed: NEEDS_CSUM out of range completed", "%s", "tx buffer returned");
	/* 5: GSO TCPv4 without negotiation. */
	memset(&h, 0, sizeof(h));
	h.gso_type = 1;
	h.gso_size = 100;
	h.hdr_len = 54;
	check(vnet_send_raw(&h, big, len) && vnet_tx_drain(5000000),
	      "malformed: GSO (not negotiated) completed", "%s", "tx buffer returned");
	/* 6: a 65550-byte frame (beyond any MTU), unused EtherType. */
	memset(big, 0, sizeof(big));
	memcpy(big, mac, 6);
	memcpy(big + 6, vnet.mac, 6);
	big[12] = 0x88;
	big[13] = 0xb5;
	for (i = 14; i < sizeof(big); i++)
		big[i] = (u8)i;
	check(vnet_send(big, sizeof(big)) && vnet_tx_drain(5000000),
	      "malformed: 65550-byte frame completed", "%s", "tx buffer returned");
	dev_healthy("malformed: device healthy after bad headers");
}

void test_main(void)
{
	char a[16];
	int st;

	printf("keel virtio-net\n");
	step_us = cmdline_u64_or("net_timeout", 30) * 1000000ULL;
	if (!cmdline_str("net_test", mode, sizeof(mode)))
		memcpy(mode, "dhcp", 5);
	if (!vnet_init())
		return;
	pass("device ready: %s, mac %02x:%02x:%02x:%02x:%02x:%02x, mrg_rxbuf %d",
	     vnet.dev->name, vnet.mac[0], vnet.mac[1], vnet.mac[2],
	     vnet.mac[3], vnet.mac[4], vnet.mac[5], vnet.mrg_rxbuf);
	st = vnet_link_status();
	printf("LINK=%d\n", st < 0 ? -1 : st & VIRTIO_NET_S_LINK_UP);
	if (!strcmp(mode, "link")) {
		u64 want = cmdline_u64_or("expect_link", 1);

		check(st >= 0 && (u64)(st & VIRTIO_NET_S_LINK_UP) == want,
		      "link status", "status %#x, expected LINK_UP=%llu", st,
		      want);
		return;
	}
	if (st >= 0 && !(st & VIRTIO_NET_S_LINK_UP))
		printf("warning: link is down (status %#x)\n", st);
	if (!strcmp(mode, "malformed"))
		malformed();
	if (!configure())
		return;
	if (!strcmp(mode, "dhcp")) {
		u8 mac[6] = { 0 };

		if (net_cfg.gw) {
			bool ok = net_arp_resolve(net_cfg.gw, mac, step_us);

			check(ok, "gateway answers ARP",
			      "%s is %02x:%02x:%02x:%02x:%02x:%02x",
			      net_fmt_ip(net_cfg.gw, a), mac[0], mac[1], mac[2],
			      mac[3], mac[4], mac[5]);
			if (cmdline_u64_or("ping_gw", 0))
				check(net_ping(net_cfg.gw, 1, step_us),
				      "gateway answers ping", "%s", a);
		}
	} else if (!strcmp(mode, "udp_echo_server")) {
		udp_echo_server();
	} else if (!strcmp(mode, "udp_client")) {
		udp_exchange();
	} else if (!strcmp(mode, "tcp_client")) {
		tcp_client();
	} else if (!strcmp(mode, "ping")) {
		ping();
	} else if (!strcmp(mode, "malformed")) {
		u32 ip;
		u16 port;

		if (cmdline_ip("peer", &ip, &port))
			udp_exchange();
		dev_healthy("malformed: device healthy at the end");
	} else if (!strcmp(mode, "perf")) {
		perf();
	} else {
		fail("unknown net_test=%s", mode);
	}
	printf("virtio-net: rx %llu frames, tx %llu frames, %u pings answered\n",
	       vnet.rx_frames, vnet.tx_frames, net_pings_answered);
	vnet_tx_drain(1000000);
	virtio_reset(vnet.dev);
}
