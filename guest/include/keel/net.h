/*
 * Polled virtio-net driver (virtio_net.c) and a minimal IPv4 stack (net.c)
 * for test guests: Ethernet, ARP, IPv4, ICMP echo, UDP, a DHCP client and
 * a tiny TCP client (active open, send, receive, close). One interface,
 * ring 3, no interrupts: everything happens inside net_poll().
 * Addresses (u32) are in host byte order: 10.0.2.15 is 0x0a00020f.
 */
#ifndef KEEL_NET_H
#define KEEL_NET_H

#include <keel/types.h>
#include <keel/virtio.h>

/* virtio-net feature bits and config layout */
#define VIRTIO_NET_F_CSUM		0
#define VIRTIO_NET_F_GUEST_CSUM		1
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_S_LINK_UP		1
#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1

struct virtio_net_hdr {
	u8 flags;
	u8 gso_type;
	u16 hdr_len;
	u16 gso_size;
	u16 csum_start;
	u16 csum_offset;
	u16 num_buffers;	/* always present with VERSION_1 */
} __attribute__((packed));

#define VNET_HDR_LEN	12
#define VNET_RXBUF	2048
#define ETH_HLEN	14
#define ETH_MTU		1500
#define ETH_FRAME_MAX	(ETH_HLEN + ETH_MTU)

struct vnet {
	struct virtio_dev *dev;
	u8 mac[6];
	bool mrg_rxbuf, has_status;
	u16 rxq_size, txq_size;
	u64 rx_frames, tx_frames, rx_dropped;
};
extern struct vnet vnet;

/* Find (cmdline transport=pci|mmio checked if given), negotiate VERSION_1 |
 * MAC | STATUS | MRG_RXBUF (net_mrg=0 leaves MRG_RXBUF out), fill the rx
 * ring with 2 KiB buffers. FAIL lines on error. */
bool vnet_init(void);
/* Config status (LINK_UP bit); -1 without VIRTIO_NET_F_STATUS. */
int vnet_link_status(void);
/* Transmit one frame (a zero header is prepended). false when the ring
 * stays full. */
bool vnet_send(const void *frame, u32 len);
/* Transmit with a caller-supplied header (malformed-input tests). */
bool vnet_send_raw(const struct virtio_net_hdr *h, const void *frame, u32 len);
/* Wait until the device returned every tx buffer (up to us). */
bool vnet_tx_drain(u64 us);
/* One received frame (without the virtio header) copied to buf; 0 if none. */
u32 vnet_recv(void *buf, u32 max);

/* ---- stack ---- */
struct net_cfg {
	u32 ip, mask, gw, dns, server, lease;	/* lease in seconds */
};
extern struct net_cfg net_cfg;

static inline u16 net_htons(u16 v) { return (u16)(v << 8 | v >> 8); }
static inline u32 net_htonl(u32 v)
{
	return v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
}
/* "a.b.c.d" -> address; false if malformed. end (optional) gets the rest. */
bool net_parse_ip(const char *s, u32 *ip, const char **end);
/* Writes "a.b.c.d" into buf (>= 16 bytes) and returns buf. */
char *net_fmt_ip(u32 ip, char *buf);

/* Receive and handle at most one frame (ARP, ICMP echo, UDP queue, TCP). */
bool net_poll(void);
/* ARP (cached, resends the request); next hop chosen by the caller. */
bool net_arp_resolve(u32 ip, u8 mac[6], u64 timeout_us);
/* Next hop for ip (itself on-link, else the gateway), resolved. */
bool net_route(u32 ip, u8 mac[6], u64 timeout_us);
/* DHCP DISCOVER/OFFER/REQUEST/ACK; fills net_cfg. */
bool net_dhcp(u64 timeout_us);

u16 net_csum(const void *p, u32 len, u32 sum);
bool net_send_ip(const u8 dmac[6], u32 dst, u8 proto, const void *payload,
		 u32 len);
bool net_udp_send(u32 dst, u16 sport, u16 dport, const void *data, u32 len);
/* Build (without sending) a full Ethernet/IPv4/UDP frame into buf; returns
 * its length. udp_csum=false leaves the UDP checksum 0. */
u32 net_udp_frame(void *buf, const u8 dmac[6], u32 dst, u16 sport, u16 dport,
		  const void *data, u32 len, bool udp_csum);
/* Wait for a datagram to local port; returns length (-1 on timeout). */
int net_udp_recv(u16 port, void *buf, u32 max, u32 *src, u16 *sport,
		 u64 timeout_us);
/* ICMP echo to ip; true when the reply arrived. */
bool net_ping(u32 ip, u16 seq, u64 timeout_us);
extern u32 net_pings_answered;	/* echo requests we replied to */

/* Tiny TCP client: one connection at a time, no retransmission except SYN. */
bool tcp_connect(u32 ip, u16 port, u64 timeout_us);
bool tcp_send(const void *data, u32 len);
/* Receive until '\n' (included) or max; returns length, -1 on timeout. */
int tcp_recv_line(char *buf, u32 max, u64 timeout_us);
bool tcp_close(u64 timeout_us);

#endif
