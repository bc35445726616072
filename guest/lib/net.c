/*
 * Minimal IPv4 stack for test guests over vnet_send()/vnet_recv():
 * Ethernet II, ARP (request/reply, 8-entry cache), IPv4 (header checksum
 * checked, no fragments), ICMP echo (answers pings, sends pings), UDP
 * (checksummed; an 8-datagram receive queue), a DHCP client, and a tiny
 * TCP client (one connection: active open with SYN resends, in-order
 * receive, a simple resend of unacknowledged data, FIN close).
 */
#include <keel/kit.h>
#include <keel/net.h>

struct net_cfg net_cfg;
u32 net_pings_answered;

static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static u8 rxf[64 * 1024];
static u8 txf[ETH_FRAME_MAX + 64];
static u16 ip_id = 1;

static u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 get32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}
static void put16(u8 *p, u16 v) { p[0] = v >> 8; p[1] = (u8)v; }
static void put32(u8 *p, u32 v)
{
	p[0] = v >> 24; p[1] = (u8)(v >> 16); p[2] = (u8)(v >> 8); p[3] = (u8)v;
}

bool net_parse_ip(const char *s, u32 *ip, const char **end)
{
	u32 v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		const char *e;
		u64 x;

		if (*s < '0' || *s > '9')
			return false;
		x = strtou64(s, &e);
		if (x > 255 || e == s)
			return false;
		v = v << 8 | (u32)x;
		s = e;
		if (i < 3) {
			if (*s != '.')
				return false;
			s++;
		}
	}
	*ip = v;
	if (end)
		*end = s;
	return true;
}

char *net_fmt_ip(u32 ip, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 0xff,
		 ip >> 8 & 0xff, ip & 0xff);
	return buf;
}

static u32 csum_add(u32 sum, const void *p, u32 len)
{
	const u8 *b = p;

	while (len > 1) {
		sum += get16(b);
		b += 2;
		len -= 2;
	}
	if (len)
		sum += (u32)b[0] << 8;
	return sum;
}

static u16 csum_fold(u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

u16 net_csum(const void *p, u32 len, u32 sum)
{
	return csum_fold(csum_add(sum, p, len));
}

static u32 pseudo_sum(u32 src, u32 dst, u8 proto, u32 len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	       proto + len;
}

/* ---- ARP ---- */

#define ARP_N	8
static struct { u32 ip; u8 mac[6]; bool ok; } arp_cache[ARP_N];
static int arp_next;

static bool arp_lookup(u32 ip, u8 mac[6])
{
	int i;

	for (i = 0; i < ARP_N; i++)
		if (arp_cache[i].ok && arp_cache[i].ip == ip) {
			memcpy(mac, arp_cache[i].mac, 6);
			return true;
		}
	return false;
}

static void arp_learn(u32 ip, const u8 mac[6])
{
	int i;

	if (!ip)
		return;
	for (i = 0; i < ARP_N; i++)
		if (arp_cache[i].ok && arp_cache[i].ip == ip)
			break;
	if (i == ARP_N)
		i = arp_next++ % ARP_N;
	arp_cache[i].ip = ip;
	memcpy(arp_cache[i].mac, mac, 6);
	arp_cache[i].ok = true;
}

static bool arp_send(u16 op, const u8 dmac[6], const u8 tmac[6], u32 tip)
{
	u8 f[60];

	memset(f, 0, sizeof(f));
	memcpy(f, dmac, 6);
	memcpy(f + 6, vnet.mac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, op);
	memcpy(f + 22, vnet.mac, 6);
	put32(f + 28, net_cfg.ip);
	memcpy(f + 32, tmac, 6);
	put32(f + 38, tip);
	return vnet_send(f, sizeof(f));
}

static void arp_input(const u8 *p, u32 len)
{
	u32 sip, tip;
	u16 op;

	if (len < 28 || get16(p) != 1 || get16(p + 2) != 0x0800 || p[4] != 6 ||
	    p[5] != 4)
		return;
	op = get16(p + 6);
	sip = get32(p + 14);
	tip = get32(p + 24);
	arp_learn(sip, p + 8);
	if (op == 1 && net_cfg.ip && tip == net_cfg.ip)
		arp_send(2, p + 8, p + 8, sip);
}

bool net_arp_resolve(u32 ip, u8 mac[6], u64 timeout_us)
{
	static const u8 zero[6];
	u64 end = tsc_deadline(timeout_us), resend = 0;

	if (ip == 0xffffffff) {
		memcpy(mac, bcast, 6);
		return true;
	}
	while (!arp_lookup(ip, mac)) {
		if (tsc_expired(end))
			return false;
		if (!resend || tsc_expired(resend)) {
			arp_send(1, bcast, zero, ip);
			resend = tsc_deadline(500000);
		}
		if (!net_poll())
			cpu_relax();
	}
	return true;
}

bool net_route(u32 ip, u8 mac[6], u64 timeout_us)
{
	u32 hop = ip;

	if (ip != 0xffffffff && net_cfg.mask &&
	    (ip & net_cfg.mask) != (net_cfg.ip & net_cfg.mask) && net_cfg.gw)
		hop = net_cfg.gw;
	return net_arp_resolve(hop, mac, timeout_us);
}

/* ---- IPv4 ---- */

static u32 ip_header(u8 *f, const u8 dmac[6], u32 dst, u8 proto, u32 len)
{
	u8 *ip = f + ETH_HLEN;

	memcpy(f, dmac, 6);
	memcpy(f + 6, vnet.mac, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (u16)(20 + len));
	put16(ip + 4, ip_id++);
	put16(ip + 6, 0x4000);	/* DF */
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	put32(ip + 12, net_cfg.ip);
	put32(ip + 16, dst);
	put16(ip + 10, net_csum(ip, 20, 0));
	return ETH_HLEN + 20;
}

bool net_send_ip(const u8 dmac[6], u32 dst, u8 proto, const void *payload,
		 u32 len)
{
	u32 off;

	if (20 + len > ETH_MTU)
		return false;
	off = ip_header(txf, dmac, dst, proto, len);
	memcpy(txf + off, payload, len);
	return vnet_send(txf, off + len);
}

u32 net_udp_frame(void *buf, const u8 dmac[6], u32 dst, u16 sport, u16 dport,
		  const void *data, u32 len, bool udp_csum)
{
	u8 *f = buf, *u;
	u32 off = ip_header(f, dmac, dst, 17, 8 + len);
	u16 c;

	u = f + off;
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (u16)(8 + len));
	put16(u + 6, 0);
	memcpy(u + 8, data, len);
	if (udp_csum) {
		c = net_csum(u, 8 + len,
			     pseudo_sum(net_cfg.ip, dst, 17, 8 + len));
		put16(u + 6, c ? c : 0xffff);
	}
	return off + 8 + len;
}

bool net_udp_send(u32 dst, u16 sport, u16 dport, const void *data, u32 len)
{
	u8 mac[6];

	if (28 + len > ETH_MTU)
		return false;
	if (!net_route(dst, mac, 3000000))
		return false;
	return vnet_send(txf, net_udp_frame(txf, mac, dst, sport, dport, data,
					   len, true));
}

/* UDP receive queue */
#define UDPQ_N		8
#define UDPQ_LEN	1600
static struct {
	bool used;
	u16 dport, sport, len;
	u32 src;
	u8 data[UDPQ_LEN];
} udpq[UDPQ_N];
static unsigned int udpq_seq;

static void udp_input(u32 src, u32 dst, const u8 *p, u32 len)
{
	u16 ulen;
	int i, slot = -1;

	if (len < 8)
		return;
	ulen = get16(p + 4);
	if (ulen < 8 || ulen > len)
		return;
	if (get16(p + 6) &&
	    csum_fold(csum_add(pseudo_sum(src, dst, 17, ulen), p, ulen)) != 0)
		return;		/* bad checksum */
	for (i = 0; i < UDPQ_N; i++)
		if (!udpq[i].used) {
			slot = i;
			break;
		}
	if (slot < 0)
		slot = udpq_seq++ % UDPQ_N;	/* full: overwrite one */
	udpq[slot].used = true;
	udpq[slot].dport = get16(p + 2);
	udpq[slot].sport = get16(p);
	udpq[slot].src = src;
	udpq[slot].len = ulen - 8 > UDPQ_LEN ? UDPQ_LEN : ulen - 8;
	memcpy(udpq[slot].data, p + 8, udpq[slot].len);
}

int net_udp_recv(u16 port, void *buf, u32 max, u32 *src, u16 *sport,
		 u64 timeout_us)
{
	u64 end = tsc_deadline(timeout_us);
	int i;
	u32 n;

	for (;;) {
		for (i = 0; i < UDPQ_N; i++)
			if (udpq[i].used && udpq[i].dport == port) {
				n = udpq[i].len < max ? udpq[i].len : max;
				memcpy(buf, udpq[i].data, n);
				if (src)
					*src = udpq[i].src;
				if (sport)
					*sport = udpq[i].sport;
				udpq[i].used = false;
				return (int)n;
			}
		if (tsc_expired(end))
			return -1;
		if (!net_poll())
			cpu_relax();
	}
}

/* ICMP */
#define PING_ID	0x4b45
static int ping_got = -1;

static void icmp_input(const u8 *eth, u32 src, const u8 *p, u32 len)
{
	static u8 reply[ETH_MTU];

	if (len < 8 || net_csum(p, len, 0) != 0)
		return;
	if (p[0] == 8 && len <= sizeof(reply)) {
		memcpy(reply, p, len);
		reply[0] = 0;
		put16(reply + 2, 0);
		put16(reply + 2, net_csum(reply, len, 0));
		arp_learn(src, eth + 6);
		if (net_send_ip(eth + 6, src, 1, reply, len))
			net_pings_answered++;
	} else if (p[0] == 0 && get16(p + 4) == PING_ID) {
		ping_got = get16(p + 6);
	}
}

bool net_ping(u32 ip, u16 seq, u64 timeout_us)
{
	u8 pkt[8 + 32], mac[6];
	u64 end = tsc_deadline(timeout_us);
	int i;

	if (!net_route(ip, mac, timeout_us))
		return false;
	pkt[0] = 8;
	pkt[1] = 0;
	put16(pkt + 2, 0);
	put16(pkt + 4, PING_ID);
	put16(pkt + 6, seq);
	for (i = 0; i < 32; i++)
		pkt[8 + i] = (u8)('a' + i % 26);
	put16(pkt + 2, net_csum(pkt, sizeof(pkt), 0));
	ping_got = -1;
	if (!net_send_ip(mac, ip, 1, pkt, sizeof(pkt)))
		return false;
	while (ping_got != seq) {
		if (tsc_expired(end))
			return false;
		if (!net_poll())
			cpu_relax();
	}
	return true;
}

/* ---- TCP (client) ---- */

enum { T_CLOSED, T_SYN_SENT, T_EST, T_FIN_WAIT, T_DONE };
#define TF_FIN	0x01
#define TF_SYN	0x02
#define TF_RST	0x04
#define TF_PSH	0x08
#define TF_ACK	0x10
#define TCP_RXBUF	4096

static struct {
	int state;
	u32 ip;
	u16 lport, rport;
	u32 iss, snd_una, snd_nxt, rcv_nxt;
	bool peer_fin, reset;
	u8 mac[6];
	u8 rx[TCP_RXBUF];
	u32 rxlen;
	u8 last[1460];		/* last data segment, for the resend */
	u32 last_len, last_seq;
} tcb;

static bool tcp_out(u8 flags, u32 seq, const void *data, u32 len)
{
	u8 seg[24 + 1460];
	u32 hl = (flags & TF_SYN) ? 24 : 20;

	if (len > 1460)
		return false;
	memset(seg, 0, hl);
	put16(seg, tcb.lport);
	put16(seg + 2, tcb.rport);
	put32(seg + 4, seq);
	put32(seg + 8, (flags & TF_ACK) ? tcb.rcv_nxt : 0);
	seg[12] = (u8)(hl / 4) << 4;
	seg[13] = flags;
	put16(seg + 14, TCP_RXBUF - tcb.rxlen);
	if (flags & TF_SYN) {	/* MSS 1460 */
		seg[20] = 2;
		seg[21] = 4;
		put16(seg + 22, 1460);
	}
	memcpy(seg + hl, data, len);
	put16(seg + 16, net_csum(seg, hl + len,
				 pseudo_sum(net_cfg.ip, tcb.ip, 6, hl + len)));
	return net_send_ip(tcb.mac, tcb.ip, 6, seg, hl + len);
}

static void tcp_input(u32 src, u32 dst, const u8 *p, u32 len)
{
	u32 hl, seq, ack, dlen;
	u8 flags;

	if (len < 20 || tcb.state == T_CLOSED || src != tcb.ip ||
	    get16(p) != tcb.rport || get16(p + 2) != tcb.lport)
		return;
	if (csum_fold(csum_add(pseudo_sum(src, dst, 6, len), p, len)) != 0)
		return;
	hl = (p[12] >> 4) * 4u;
	if (hl < 20 || hl > len)
		return;
	seq = get32(p + 4);
	ack = get32(p + 8);
	flags = p[13];
	dlen = len - hl;
	if (flags & TF_RST) {
		tcb.reset = true;
		tcb.state = T_DONE;
		return;
	}
	if (tcb.state == T_SYN_SENT) {
		if ((flags & (TF_SYN | TF_ACK)) == (TF_SYN | TF_ACK) &&
		    ack == tcb.iss + 1) {
			tcb.rcv_nxt = seq + 1;
			tcb.snd_una = ack;
			tcb.state = T_EST;
			tcp_out(TF_ACK, tcb.snd_nxt, NULL, 0);
		}
		return;
	}
	if ((flags & TF_ACK) && (int32_t)(ack - tcb.snd_una) > 0 &&
	    (int32_t)(ack - tcb.snd_nxt) <= 0)
		tcb.snd_una = ack;
	if (dlen || (flags & TF_FIN)) {
		if (seq == tcb.rcv_nxt) {
			if (dlen > TCP_RXBUF - tcb.rxlen)
				dlen = TCP_RXBUF - tcb.rxlen;
			memcpy(tcb.rx + tcb.rxlen, p + hl, dlen);
			tcb.rxlen += dlen;
			tcb.rcv_nxt += dlen;
			if ((flags & TF_FIN) && dlen == len - hl) {
				tcb.rcv_nxt++;
				tcb.peer_fin = true;
			}
		}
		tcp_out(TF_ACK, tcb.snd_nxt, NULL, 0);	/* (dup) ACK */
	}
}

static bool tcp_wait(bool (*done)(void), u64 timeout_us, u64 resend_us,
		     void (*resend)(void))
{
	u64 end = tsc_deadline(timeout_us), next = tsc_deadline(resend_us);

	while (!done()) {
		if (tcb.reset || tsc_expired(end))
			return false;
		if (resend && tsc_expired(next)) {
			resend();
			next = tsc_deadline(resend_us);
		}
		if (!net_poll())
			cpu_relax();
	}
	return true;
}

static bool tcp_is_est(void) { return tcb.state == T_EST; }
static bool tcp_all_acked(void) { return tcb.snd_una == tcb.snd_nxt; }
static void tcp_resend_syn(void) { tcp_out(TF_SYN, tcb.iss, NULL, 0); }
static void tcp_resend_data(void)
{
	if (tcb.last_len)
		tcp_out(TF_ACK | TF_PSH, tcb.last_seq, tcb.last, tcb.last_len);
	else if (tcb.state == T_FIN_WAIT)
		tcp_out(TF_FIN | TF_ACK, tcb.snd_nxt - 1, NULL, 0);
}

bool tcp_connect(u32 ip, u16 port, u64 timeout_us)
{
	memset(&tcb, 0, sizeof(tcb));
	if (!net_route(ip, tcb.mac, timeout_us))
		return false;
	tcb.ip = ip;
	tcb.rport = port;
	tcb.lport = (u16)(40000 + (rdtsc() >> 4) % 20000);
	tcb.iss = (u32)(rdtsc() >> 3);
	tcb.snd_una = tcb.iss;
	tcb.snd_nxt = tcb.iss + 1;
	tcb.state = T_SYN_SENT;
	tcp_resend_syn();
	return tcp_wait(tcp_is_est, timeout_us, 1000000, tcp_resend_syn);
}

bool tcp_send(const void *data, u32 len)
{
	if (tcb.state != T_EST || len > sizeof(tcb.last))
		return false;
	memcpy(tcb.last, data, len);
	tcb.last_len = len;
	tcb.last_seq = tcb.snd_nxt;
	tcb.snd_nxt += len;
	if (!tcp_out(TF_ACK | TF_PSH, tcb.last_seq, data, len))
		return false;
	if (!tcp_wait(tcp_all_acked, 10000000, 1000000, tcp_resend_data))
		return false;
	tcb.last_len = 0;
	return true;
}

int tcp_recv_line(char *buf, u32 max, u64 timeout_us)
{
	u64 end = tsc_deadline(timeout_us);
	u32 i, n;

	for (;;) {
		for (i = 0; i < tcb.rxlen; i++)
			if (tcb.rx[i] == '\n')
				break;
		if (i < tcb.rxlen || tcb.rxlen >= max ||
		    (tcb.peer_fin && tcb.rxlen)) {
			n = i < tcb.rxlen ? i + 1 : tcb.rxlen;
			if (n > max)
				n = max;
			memcpy(buf, tcb.rx, n);
			memmove(tcb.rx, tcb.rx + n, tcb.rxlen - n);
			tcb.rxlen -= n;
			return (int)n;
		}
		if (tcb.reset || tcb.peer_fin || tsc_expired(end))
			return -1;
		if (!net_poll())
			cpu_relax();
	}
}

static bool tcp_closed(void) { return tcp_all_acked() && tcb.peer_fin; }

bool tcp_close(u64 timeout_us)
{
	bool ok;

	if (tcb.state != T_EST)
		return false;
	tcb.state = T_FIN_WAIT;
	tcb.last_len = 0;
	tcb.snd_nxt++;
	tcp_out(TF_FIN | TF_ACK, tcb.snd_nxt - 1, NULL, 0);
	ok = tcp_wait(tcp_closed, timeout_us, 1000000, tcp_resend_data);
	tcb.state = T_DONE;
	return ok;
}

/* ---- frame dispatch ---- */

static void ip_input(const u8 *eth, const u8 *p, u32 len)
{
	u32 hl, tot, src, dst;

	if (len < 20 || (p[0] >> 4) != 4)
		return;
	hl = (p[0] & 15) * 4u;
	tot = get16(p + 2);
	if (hl < 20 || tot < hl || tot > len || net_csum(p, hl, 0) != 0)
		return;
	if (get16(p + 6) & 0x3fff)
		return;		/* fragment */
	src = get32(p + 12);
	dst = get32(p + 16);
	if (net_cfg.ip && dst != net_cfg.ip && dst != 0xffffffff &&
	    dst != (net_cfg.ip | ~net_cfg.mask))
		return;
	switch (p[9]) {
	case 1:
		icmp_input(eth, src, p + hl, tot - hl);
		break;
	case 6:
		tcp_input(src, dst, p + hl, tot - hl);
		break;
	case 17:
		udp_input(src, dst, p + hl, tot - hl);
		break;
	}
}

bool net_poll(void)
{
	u32 n = vnet_recv(rxf, sizeof(rxf));

	if (!n)
		return false;
	if (n < ETH_HLEN)
		return true;
	if (memcmp(rxf, vnet.mac, 6) && memcmp(rxf, bcast, 6) && !(rxf[0] & 1))
		return true;	/* not for us */
	switch (get16(rxf + 12)) {
	case 0x0806:
		arp_input(rxf + ETH_HLEN, n - ETH_HLEN);
		break;
	case 0x0800:
		ip_input(rxf, rxf + ETH_HLEN, n - ETH_HLEN);
		break;
	}
	return true;
}

/* ---- DHCP ---- */

#define DHCP_MAGIC	0x63825363

static u32 dhcp_build(u8 *m, u32 xid, u8 type, u32 req_ip, u32 server)
{
	u8 *o;

	memset(m, 0, 300);
	m[0] = 1;		/* BOOTREQUEST */
	m[1] = 1;
	m[2] = 6;
	put32(m + 4, xid);
	put16(m + 10, 0x8000);	/* broadcast replies */
	memcpy(m + 28, vnet.mac, 6);
	put32(m + 236, DHCP_MAGIC);
	o = m + 240;
	*o++ = 53; *o++ = 1; *o++ = type;
	*o++ = 61; *o++ = 7; *o++ = 1; memcpy(o, vnet.mac, 6); o += 6;
	*o++ = 55; *o++ = 5; *o++ = 1; *o++ = 3; *o++ = 6; *o++ = 51; *o++ = 54;
	if (req_ip) {
		*o++ = 50; *o++ = 4; put32(o, req_ip); o += 4;
	}
	if (server) {
		*o++ = 54; *o++ = 4; put32(o, server); o += 4;
	}
	*o++ = 255;
	return 300;		/* BOOTP minimum */
}

/* Parse a reply; its DHCP message type, or 0 if not ours. */
static int dhcp_parse(const u8 *m, int len, u32 xid, struct net_cfg *c)
{
	const u8 *o, *end = m + len;
	int type = 0;

	if (len < 240 || m[0] != 2 || get32(m + 4) != xid ||
	    memcmp(m + 28, vnet.mac, 6) || get32(m + 236) != DHCP_MAGIC)
		return 0;
	memset(c, 0, sizeof(*c));
	c->ip = get32(m + 16);
	for (o = m + 240; o < end && *o != 255;) {
		u8 code = *o, l;

		if (code == 0) {
			o++;
			continue;
		}
		if (o + 2 > end || o + 2 + o[1] > end)
			break;
		l = o[1];
		if (code == 53 && l >= 1)
			type = o[2];
		else if (code == 1 && l >= 4)
			c->mask = get32(o + 2);
		else if (code == 3 && l >= 4)
			c->gw = get32(o + 2);
		else if (code == 6 && l >= 4)
			c->dns = get32(o + 2);
		else if (code == 51 && l >= 4)
			c->lease = get32(o + 2);
		else if (code == 54 && l >= 4)
			c->server = get32(o + 2);
		o += 2 + l;
	}
	return type;
}

static int dhcp_exchange(u32 xid, u8 type, u32 req_ip, u32 server, int want,
			 struct net_cfg *c, u64 timeout_us)
{
	static u8 m[600];
	u64 end = tsc_deadline(timeout_us);
	int tries, n, t;

	for (tries = 0; !tsc_expired(end); tries++) {
		u64 wait = tsc_deadline(1000000ULL << (tries < 2 ? tries : 2));

		n = (int)dhcp_build(m, xid, type, req_ip, server);
		if (!net_udp_send(0xffffffff, 68, 67, m, (u32)n))
			return -1;
		while (!tsc_expired(wait) && !tsc_expired(end)) {
			n = net_udp_recv(68, m, sizeof(m), NULL, NULL, 200000);
			if (n < 0)
				continue;
			t = dhcp_parse(m, n, xid, c);
			if (t == want || (want == 5 && t == 6))
				return t;
		}
	}
	return -1;
}

bool net_dhcp(u64 timeout_us)
{
	struct net_cfg offer, ack;
	u32 xid = (u32)rdtsc() ^ 0x4b45454c;
	int t;

	net_cfg.ip = 0;
	net_cfg.mask = 0;
	if (dhcp_exchange(xid, 1, 0, 0, 2, &offer, timeout_us) != 2)
		return false;
	t = dhcp_exchange(xid, 3, offer.ip, offer.server, 5, &ack, timeout_us);
	if (t != 5)
		return false;
	if (!ack.server)
		ack.server = offer.server;
	if (!ack.mask)
		ack.mask = 0xffffff00;
	net_cfg = ack;
	return true;
}
