// SPDX-License-Identifier: MIT
/*
 * NAT back end (libslirp) driven like the NIC's I/O thread, without KVM:
 * DHCP, ARP, UDP to a host server on 127.0.0.1 through the gateway address,
 * port forwards added and removed, and the errors.  Traffic stays on
 * 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "net/backend.h"
#include "check.h"
#include "fakevm.h"

#define MAX_FRAMES 64

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t gw_mac[6] = { 0x52, 0x55, 10, 0, 2, 2 };  /* slirp's */

struct frame {
	size_t len;
	uint8_t data[2048];
};

static struct frame frames[MAX_FRAMES];
static int nr_frames;
static bool rx_full;            /* the guest has no receive buffer */
static struct fake_vm *vm;

static bool rx(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct frame *f;

	if (rx_full || nr_frames == MAX_FRAMES)
		return false;
	f = &frames[nr_frames++];
	f->len = 0;
	for (int i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len;

		if (n > sizeof(f->data) - f->len)
			n = sizeof(f->data) - f->len;
		memcpy(f->data + f->len, iov[i].iov_base, n);
		f->len += n;
	}
	return true;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One round of the I/O thread: wait (at most max_ms) and process. */
static void io_round(struct net_backend *be, int max_ms)
{
	struct epoll_event ev;
	int t = be->ops->timeout_ms(be);

	if (t < 0 || t > max_ms)
		t = max_ms;
	epoll_wait(be->ops->poll_fd(be), &ev, 1, t);
	be->ops->process(be);
}

typedef bool (*match_fn)(const struct frame *f, void *arg);

/* Runs the I/O loop until a frame matches (returns it) or `ms` pass. */
static const struct frame *wait_frame(struct net_backend *be, match_fn match, void *arg, int ms)
{
	int64_t end = now_ms() + ms;
	int seen = 0;

	for (;;) {
		for (; seen < nr_frames; seen++)
			if (match(&frames[seen], arg))
				return &frames[seen];
		if (now_ms() >= end)
			return NULL;
		io_round(be, (int)(end - now_ms()) > 0 ? (int)(end - now_ms()) : 0);
	}
}

static void reset_frames(void)
{
	nr_frames = 0;
	rx_full = false;
}

/* ---- frame building ---- */

static uint16_t csum(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (p[0] << 8) | p[1];
}

static size_t eth_hdr(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, type);
	return 14;
}

/* Ethernet + IPv4 + UDP around `payload`; returns the frame's length. */
static size_t udp_frame(uint8_t *f, const uint8_t dst_mac[6], const char *src, const char *dst,
			uint16_t sport, uint16_t dport, const void *payload, size_t len)
{
	uint8_t *ip = f + eth_hdr(f, dst_mac, 0x0800);
	uint8_t *udp = ip + 20;
	struct in_addr a;

	memset(ip, 0, 28);
	ip[0] = 0x45;
	put16(ip + 2, 28 + len);
	put16(ip + 4, 0x1234);
	ip[8] = 64;
	ip[9] = 17;
	inet_pton(AF_INET, src, &a);
	memcpy(ip + 12, &a, 4);
	inet_pton(AF_INET, dst, &a);
	memcpy(ip + 16, &a, 4);
	put16(ip + 10, csum(ip, 20));
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, 8 + len);
	put16(udp + 6, 0);      /* no checksum (IPv4) */
	memcpy(udp + 8, payload, len);
	return 14 + 28 + len;
}

/* Ethernet + IPv4 + a bare TCP segment (no options, no data). */
static size_t tcp_frame(uint8_t *f, const char *src, const char *dst, uint16_t sport,
			uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
			const char *data)
{
	uint8_t *ip = f + eth_hdr(f, gw_mac, 0x0800);
	uint8_t *tcp = ip + 20, pseudo[12 + 20 + 64];
	size_t dlen = data ? strlen(data) : 0;
	struct in_addr a;

	memset(ip, 0, 40);
	ip[0] = 0x45;
	put16(ip + 2, 40 + dlen);
	ip[8] = 64;
	ip[9] = 6;
	inet_pton(AF_INET, src, &a);
	memcpy(ip + 12, &a, 4);
	inet_pton(AF_INET, dst, &a);
	memcpy(ip + 16, &a, 4);
	put16(ip + 10, csum(ip, 20));
	put16(tcp, sport);
	put16(tcp + 2, dport);
	put16(tcp + 4, seq >> 16);
	put16(tcp + 6, seq & 0xffff);
	put16(tcp + 8, ack >> 16);
	put16(tcp + 10, ack & 0xffff);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, 65535);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	memcpy(tcp + 20, data, dlen);
	put16(pseudo + 10, 20 + dlen);
	memcpy(pseudo + 12, tcp, 20 + dlen);
	put16(tcp + 16, csum(pseudo, 12 + 20 + dlen));
	return 14 + 40 + dlen;
}

static int send_frame(struct net_backend *be, const void *buf, size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)buf, .iov_len = 10 },     /* split: send() flattens */
		{ .iov_base = (uint8_t *)buf + 10, .iov_len = len - 10 },
	};

	return be->ops->send(be, iov, 2);
}

static size_t arp_request(uint8_t *f, const char *sender, const char *target)
{
	uint8_t *a = f + eth_hdr(f, bcast_mac, 0x0806);
	struct in_addr ip;

	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);
	memcpy(a + 8, guest_mac, 6);
	inet_pton(AF_INET, sender, &ip);
	memcpy(a + 14, &ip, 4);
	memset(a + 18, 0, 6);
	inet_pton(AF_INET, target, &ip);
	memcpy(a + 24, &ip, 4);
	return 14 + 28;
}

/* Frame predicates. */
struct udp_match {
	const char *dst;
	uint16_t dport;
	const uint8_t *payload;         /* NULL: any */
	size_t len;
};

static bool is_udp_to(const struct frame *f, void *arg)
{
	const struct udp_match *m = arg;
	const uint8_t *ip = f->data + 14;
	struct in_addr a;
	size_t ihl;

	if (f->len < 14 + 28 || get16(f->data + 12) != 0x0800 || ip[9] != 17)
		return false;
	ihl = (ip[0] & 15) * 4;
	inet_pton(AF_INET, m->dst, &a);
	if (memcmp(ip + 16, &a, 4) || get16(ip + ihl + 2) != m->dport)
		return false;
	if (memcmp(f->data, guest_mac, 6) && memcmp(f->data, bcast_mac, 6))
		return false;
	if (!m->payload)
		return true;
	return get16(ip + ihl + 4) == 8 + m->len && f->len >= 14 + ihl + 8 + m->len &&
	       !memcmp(ip + ihl + 8, m->payload, m->len);
}

struct tcp_match {
	const char *dst;
	uint16_t dport;
	uint8_t flags;          /* all of these set */
};

static bool is_tcp_to(const struct frame *f, void *arg)
{
	const struct tcp_match *m = arg;
	const uint8_t *ip = f->data + 14;
	struct in_addr a;
	size_t ihl;

	if (f->len < 14 + 40 || get16(f->data + 12) != 0x0800 || ip[9] != 6 ||
	    memcmp(f->data, guest_mac, 6))
		return false;
	ihl = (ip[0] & 15) * 4;
	inet_pton(AF_INET, m->dst, &a);
	return !memcmp(ip + 16, &a, 4) && get16(ip + ihl + 2) == m->dport &&
	       (ip[ihl + 13] & m->flags) == m->flags;
}

static bool is_arp_reply(const struct frame *f, void *arg)
{
	return f->len >= 42 && get16(f->data + 12) == 0x0806 && get16(f->data + 20) == 2;
}

/* ---- set-up ---- */

static struct keel_network_attachment att_default;

static struct net_backend *nat_new(const struct keel_network_attachment *att)
{
	keel_error *err = NULL;
	struct net_backend *be = net_slirp_create(&vm->ctx.log, "virtio-net0", att ? att : &att_default,
						  guest_mac, &err);

	if (!be) {
		fprintf(stderr, "net_slirp_create: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return NULL;
	}
	be->rx = rx;
	be->rx_opaque = NULL;
	reset_frames();
	return be;
}

/* The guest announces itself (slirp learns its MAC from ARP). */
static int guest_arp(struct net_backend *be)
{
	uint8_t f[64];
	size_t len = arp_request(f, "10.0.2.15", "10.0.2.2");
	const struct frame *r;

	REQUIRE(!send_frame(be, f, len));
	REQUIRE((r = wait_frame(be, is_arp_reply, NULL, 2000)));
	return 0;
}

static int udp_socket(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) < 0) {
		perror("udp socket");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return s;
}

/* A port free right now (for forwards: slirp binds it). */
static uint16_t free_udp_port(void)
{
	uint16_t port;

	close(udp_socket(&port));
	return port;
}

static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) < 0) {
		perror("tcp socket");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return s;
}

/* ---- tests ---- */

static bool find_dhcp_option(const uint8_t *opt, size_t len, uint8_t code, const uint8_t **val,
			     uint8_t *vlen)
{
	size_t i = 0;

	while (i < len && opt[i] != 255) {
		if (opt[i] == 0) {
			i++;
			continue;
		}
		if (i + 1 >= len || i + 2 + opt[i + 1] > len)
			return false;
		if (opt[i] == code) {
			*val = opt + i + 2;
			*vlen = opt[i + 1];
			return true;
		}
		i += 2 + opt[i + 1];
	}
	return false;
}

/* DHCPDISCOVER from guest_mac; checks the OFFER for guest/server addresses. */
static int dhcp_exchange(struct net_backend *be, const char *want_yiaddr, const char *want_server)
{
	uint8_t bootp[548] = { 0 }, f[700];
	struct udp_match m = { .dst = "255.255.255.255", .dport = 68 };
	const struct frame *r;
	const uint8_t *bp, *val;
	uint8_t vlen;
	struct in_addr a;
	size_t len, ihl;

	bootp[0] = 1;           /* BOOTREQUEST */
	bootp[1] = 1;           /* Ethernet */
	bootp[2] = 6;
	memcpy(bootp + 4, "\x12\x34\x56\x78", 4);       /* xid */
	put16(bootp + 10, 0x8000);                      /* broadcast */
	memcpy(bootp + 28, guest_mac, 6);
	memcpy(bootp + 236, "\x63\x82\x53\x63", 4);     /* magic cookie */
	bootp[240] = 53;
	bootp[241] = 1;
	bootp[242] = 1;         /* DHCPDISCOVER */
	bootp[243] = 255;
	len = udp_frame(f, bcast_mac, "0.0.0.0", "255.255.255.255", 68, 67, bootp, sizeof(bootp));
	REQUIRE(!send_frame(be, f, len));
	r = wait_frame(be, is_udp_to, &m, 2000);
	if (!r) {
		/* Some libslirp versions address the offer to the new lease. */
		m.dst = want_yiaddr;
		r = wait_frame(be, is_udp_to, &m, 10);
	}
	REQUIRE(r);
	ihl = (r->data[14] & 15) * 4;
	bp = r->data + 14 + ihl + 8;
	REQUIRE(r->len >= 14 + ihl + 8 + 240);
	REQUIRE(bp[0] == 2);                              /* BOOTREPLY */
	REQUIRE(!memcmp(bp + 4, "\x12\x34\x56\x78", 4));
	inet_pton(AF_INET, want_yiaddr, &a);
	REQUIRE(!memcmp(bp + 16, &a, 4));                 /* yiaddr */
	REQUIRE(!memcmp(bp + 236, "\x63\x82\x53\x63", 4));
	len = r->len - (14 + ihl + 8 + 240);
	REQUIRE(find_dhcp_option(bp + 240, len, 53, &val, &vlen) && vlen == 1 && val[0] == 2);
	REQUIRE(find_dhcp_option(bp + 240, len, 54, &val, &vlen) && vlen == 4);
	inet_pton(AF_INET, want_server, &a);
	REQUIRE(!memcmp(val, &a, 4));                     /* server identifier */
	return 0;
}

static int test_dhcp(void)
{
	struct net_backend *be = nat_new(NULL);

	REQUIRE(be);
	REQUIRE(!dhcp_exchange(be, "10.0.2.15", "10.0.2.2"));
	be->ops->destroy(be);
	return 0;
}

static int test_dhcp_other_subnet(void)
{
	struct keel_network_attachment att = { .kind = NET_NAT, .subnet = "192.168.77.0/24",
					       .fd = -1 };
	struct net_backend *be = nat_new(&att);

	REQUIRE(be);
	REQUIRE(!dhcp_exchange(be, "192.168.77.15", "192.168.77.2"));
	be->ops->destroy(be);
	return 0;
}

static int test_arp(void)
{
	struct net_backend *be = nat_new(NULL);
	const struct frame *r;
	uint8_t f[64];
	size_t len;

	REQUIRE(be);
	len = arp_request(f, "10.0.2.15", "10.0.2.2");
	REQUIRE(!send_frame(be, f, len));
	/* Replies made during send() arrive through process(), not inside send(). */
	REQUIRE(nr_frames == 0);
	r = wait_frame(be, is_arp_reply, NULL, 2000);
	REQUIRE(r);
	REQUIRE(!memcmp(r->data, guest_mac, 6));
	REQUIRE(!memcmp(r->data + 22, gw_mac, 6));        /* sender MAC */
	REQUIRE(!memcmp(r->data + 28, "\x0a\x00\x02\x02", 4));    /* sender IP */
	REQUIRE(!memcmp(r->data + 32, guest_mac, 6));     /* target MAC */

	/* The guest has no receive buffer: the reply is dropped and counted. */
	reset_frames();
	rx_full = true;
	REQUIRE(!send_frame(be, f, len));
	REQUIRE(!wait_frame(be, is_arp_reply, NULL, 200));
	REQUIRE(be->dropped == 1);
	be->ops->destroy(be);
	return 0;
}

static int test_runt(void)
{
	struct net_backend *be = nat_new(NULL);
	uint8_t f[64] = { 0 };

	REQUIRE(be);
	REQUIRE(send_frame(be, f, 12) == -1);
	REQUIRE(be->dropped == 1);
	be->ops->destroy(be);
	return 0;
}

/* The guest reaches a server on the host's 127.0.0.1 through 10.0.2.2. */
static int test_udp_to_host(void)
{
	struct net_backend *be = nat_new(NULL);
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	struct udp_match m = { .dst = "10.0.2.15", .dport = 5555, .payload = (const uint8_t *)"pong",
			       .len = 4 };
	uint8_t f[128], buf[64];
	uint16_t port;
	int s = udp_socket(&port);
	ssize_t n = -1;
	size_t len;

	REQUIRE(be);
	REQUIRE(!guest_arp(be));
	len = udp_frame(f, gw_mac, "10.0.2.15", "10.0.2.2", 5555, port, "ping", 4);
	REQUIRE(!send_frame(be, f, len));
	/* slirp sends from its own socket right away; no loop round needed. */
	for (int i = 0; i < 100 && n < 0; i++) {
		n = recvfrom(s, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			io_round(be, 10);
	}
	REQUIRE(n == 4 && !memcmp(buf, "ping", 4));
	REQUIRE(from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	REQUIRE(sendto(s, "pong", 4, 0, (struct sockaddr *)&from, flen) == 4);
	REQUIRE(wait_frame(be, is_udp_to, &m, 2000));
	be->ops->destroy(be);
	close(s);
	return 0;
}

/* A TCP connection to a host server through the gateway (slirp connects). */
static int test_tcp_to_host(void)
{
	struct net_backend *be = nat_new(NULL);
	struct tcp_match m = { .dst = "10.0.2.15", .dport = 40000, .flags = 0x12 };  /* SYN|ACK */
	const struct frame *r;
	uint8_t f[128];
	uint16_t port;
	int l = tcp_listener(&port), c = -1;
	const uint8_t *tcp;
	size_t len, ihl;
	uint32_t isn;

	REQUIRE(be);
	REQUIRE(!guest_arp(be));
	len = tcp_frame(f, "10.0.2.15", "10.0.2.2", 40000, port, 1000, 0, 0x02, NULL);
	REQUIRE(!send_frame(be, f, len));
	/* The SYN|ACK comes once the host accepted (slirp waits for EPOLLOUT). */
	REQUIRE((r = wait_frame(be, is_tcp_to, &m, 2000)));
	c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	REQUIRE(c >= 0);
	ihl = (r->data[14] & 15) * 4;
	tcp = r->data + 14 + ihl;
	isn = (uint32_t)get16(tcp + 4) << 16 | get16(tcp + 6);
	len = tcp_frame(f, "10.0.2.15", "10.0.2.2", 40000, port, 1001, isn + 1, 0x10, NULL);
	REQUIRE(!send_frame(be, f, len));

	/*
	 * The host closes; before slirp notices, the guest sends twice: the
	 * first write draws a reset, the second fails with EPIPE, which must
	 * not raise SIGPIPE in the application.
	 */
	close(c);
	c = -1;
	usleep(20000);
	len = tcp_frame(f, "10.0.2.15", "10.0.2.2", 40000, port, 1001, isn + 1, 0x18, "a");
	REQUIRE(!send_frame(be, f, len));
	usleep(20000);
	len = tcp_frame(f, "10.0.2.15", "10.0.2.2", 40000, port, 1002, isn + 1, 0x18, "b");
	REQUIRE(!send_frame(be, f, len));
	for (int i = 0; i < 5; i++)
		io_round(be, 10);
	be->ops->destroy(be);
	close(l);
	return 0;
}

/* A TCP forward: a host connection becomes a SYN to the guest's port. */
static int test_tcp_forward(void)
{
	struct net_backend *be = nat_new(NULL);
	struct net_forward fw = { .proto = KEEL_NET_TCP, .host_addr = "127.0.0.1",
				  .guest_port = 22 };
	struct tcp_match m = { .dst = "10.0.2.15", .dport = 22, .flags = 0x02 };
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	keel_error *err = NULL;
	uint16_t port;
	int c;

	REQUIRE(be);
	REQUIRE(!guest_arp(be));
	close(tcp_listener(&port));
	fw.host_port = port;
	REQUIRE(!be->ops->add_forward(be, &fw, &err));
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	REQUIRE(c >= 0);
	to.sin_port = htons(port);
	REQUIRE(!connect(c, (struct sockaddr *)&to, sizeof(to)) || errno == EINPROGRESS);
	REQUIRE(wait_frame(be, is_tcp_to, &m, 2000));
	close(c);
	be->ops->destroy(be);
	return 0;
}

static int test_forward(void)
{
	struct net_backend *be = nat_new(NULL);
	struct net_forward fw = { .proto = KEEL_NET_UDP, .host_addr = "127.0.0.1",
				  .guest_port = 7 };
	struct udp_match m = { .dst = "10.0.2.15", .dport = 7, .payload = (const uint8_t *)"hello",
			       .len = 5 };
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	keel_error *err = NULL;
	uint16_t port;
	int s = udp_socket(&port);

	REQUIRE(be);
	REQUIRE(!guest_arp(be));
	fw.host_port = free_udp_port();
	REQUIRE(!be->ops->add_forward(be, &fw, &err));
	to.sin_port = htons(fw.host_port);
	REQUIRE(sendto(s, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)) == 5);
	REQUIRE(wait_frame(be, is_udp_to, &m, 2000));

	REQUIRE(!be->ops->remove_forward(be, &fw, &err));
	reset_frames();
	m.payload = (const uint8_t *)"again";
	sendto(s, "again", 5, 0, (struct sockaddr *)&to, sizeof(to));  /* may succeed */
	REQUIRE(!wait_frame(be, is_udp_to, &m, 300));

	/* Removing it twice names it. */
	REQUIRE(be->ops->remove_forward(be, &fw, &err) == -1);
	REQUIRE(keel_error_get_code(err) == KEEL_ERR_NOT_FOUND);
	REQUIRE(strstr(keel_error_get_message(err), "udp 127.0.0.1"));
	keel_error_free(err);
	be->ops->destroy(be);
	close(s);
	return 0;
}

static int test_forward_in_use(void)
{
	struct net_forward fw = { .proto = KEEL_NET_TCP, .host_addr = "127.0.0.1",
				  .guest_port = 22 };
	struct keel_network_attachment att = { .kind = NET_NAT, .forwards = &fw,
					       .nr_forwards = 1, .fd = -1 };
	keel_error *err = NULL;
	struct net_backend *be;
	char want[64];
	uint16_t port;
	int s = tcp_listener(&port);

	fw.host_port = port;
	snprintf(want, sizeof(want), "tcp 127.0.0.1:%u to guest port 22", port);

	/* At creation. */
	be = net_slirp_create(&vm->ctx.log, "virtio-net0", &att, guest_mac, &err);
	REQUIRE(!be);
	REQUIRE(err);
	REQUIRE(strstr(keel_error_get_message(err), want));
	REQUIRE(strstr(keel_error_get_message(err), "in use"));
	keel_error_free(err);
	err = NULL;

	/* While running. */
	be = nat_new(NULL);
	REQUIRE(be);
	REQUIRE(be->ops->add_forward(be, &fw, &err) == -1);
	REQUIRE(strstr(keel_error_get_message(err), want));
	keel_error_free(err);
	be->ops->destroy(be);
	close(s);
	return 0;
}

static int test_small_subnet(void)
{
	struct keel_network_attachment att = { .kind = NET_NAT, .subnet = "10.9.0.0/28",
					       .fd = -1 };
	keel_error *err = NULL;

	REQUIRE(!net_slirp_create(&vm->ctx.log, "virtio-net0", &att, guest_mac, &err));
	REQUIRE(keel_error_get_code(err) == KEEL_ERR_INVALID);
	REQUIRE(strstr(keel_error_get_message(err), "10.9.0.0/28"));
	keel_error_free(err);
	return 0;
}

int main(void)
{
	vm = fake_vm_new(&(struct fake_vm_opts){ 0 });
	att_default.kind = NET_NAT;
	att_default.fd = -1;

	RUN(test_dhcp);
	RUN(test_dhcp_other_subnet);
	RUN(test_arp);
	RUN(test_runt);
	RUN(test_udp_to_host);
	RUN(test_tcp_to_host);
	RUN(test_forward);
	RUN(test_tcp_forward);
	RUN(test_forward_in_use);
	RUN(test_small_subnet);
	fake_vm_free(vm);
	return 0;
}
