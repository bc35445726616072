// SPDX-License-Identifier: MIT
/*
 * virtio-net without KVM: the test plays the driver (both queues' rings in
 * a struct mem guest RAM) and the network on the other end of a datagram
 * socketpair, with the device's I/O thread running as in a VM: transmit,
 * receive (one buffer; mergeable buffers across several), a guest without
 * buffers, malformed frames, link down, an attachment change at run time,
 * statistics and the calls behind the keel_vm_* network functions.
 */
#include <endian.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "board/machine.h"
#include "core/loop.h"
#include "net/backend.h"
#include "virtio/net.h"
#include "virtio/virtio.h"
#include "check.h"
#include "fakevm.h"

#define RAM_SIZE  (16ULL << 20)
#define QSIZE     16
#define RING_GPA(q) (0x10000ULL + 0x4000ULL * (q))     /* desc, avail +0x1000, used +0x2000 */
#define BUF_GPA(q)  (0x100000ULL + 0x100000ULL * (q))  /* 64 KiB per descriptor slot */

static struct fake_vm *vm;
static int notified[2], config_notified;
static int warnings;

static void test_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	__atomic_fetch_add(&notified[q & 1], 1, __ATOMIC_SEQ_CST);
}

static void test_notify_config(struct virtio_dev *vdev)
{
	__atomic_fetch_add(&config_notified, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_transport_ops test_transport = {
	.notify_queue = test_notify_queue,
	.notify_config = test_notify_config,
};

static void log_cb(keel_log_level level, const char *msg, void *opaque)
{
	if (level <= KEEL_LOG_WARNING)
		__atomic_fetch_add(&warnings, 1, __ATOMIC_SEQ_CST);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(&vm->mem, gpa, len);

	if (!p)
		abort();
	return p;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- the driver's side ---- */

struct drv {
	uint16_t avail_idx, used_seen, next_desc;
};
static struct drv drv[2];

static void desc(int q, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = htole64(addr), .len = htole32(len),
				.flags = htole16(flags), .next = htole16(next) };

	memcpy(gp(RING_GPA(q) + 16ULL * i, 16), &d, 16);
}

static void publish(int q, uint16_t head)
{
	uint16_t *a = gp(RING_GPA(q) + 0x1000, 4 + 2 * QSIZE);

	a[2 + (drv[q].avail_idx % QSIZE)] = htole16(head);
	drv[q].avail_idx++;
	__atomic_store_n(&a[1], htole16(drv[q].avail_idx), __ATOMIC_RELEASE);
}

static uint16_t used_idx(int q)
{
	uint16_t *u = gp(RING_GPA(q) + 0x2000, 4);

	return le16toh(__atomic_load_n(&u[1], __ATOMIC_ACQUIRE));
}

static void used_elem(int q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gp(RING_GPA(q) + 0x2000 + 4 + 8ULL * (i % QSIZE), 8);

	*id = le32toh(e[0]);
	*len = le32toh(e[1]);
}

static void kick(struct virtio_dev *vdev, int q)
{
	uint64_t one = 1;

	CHECK(write(vdev->kick_fd[q], &one, 8) == 8);
}

/* Waits until queue q's used index reached used_seen + count. */
static bool wait_used(int q, int count)
{
	uint16_t want = (uint16_t)(drv[q].used_seen + count);

	for (int i = 0; i < 3000 && used_idx(q) != want; i++)
		sleep_ms(1);
	if (used_idx(q) != want) {
		fprintf(stderr, "queue %d: used idx %u, expected %u\n", q, used_idx(q), want);
		return false;
	}
	drv[q].used_seen = want;
	return true;
}

/* One receive buffer of `len` bytes per descriptor slot (slot i at BUF_GPA(0) + i*64K). */
static void post_rx(struct virtio_dev *vdev, int count, uint32_t len)
{
	for (int k = 0; k < count; k++) {
		uint16_t d = drv[0].next_desc;

		drv[0].next_desc = (uint16_t)((d + 1) % QSIZE);
		desc(0, d, BUF_GPA(0) + 0x10000ULL * d, len, VIRTQ_DESC_F_WRITE, 0);
		memset(gp(BUF_GPA(0) + 0x10000ULL * d, len), 0xee, len);
		publish(0, d);
	}
	kick(vdev, 0);
}

/* Transmits hdr + frame of `len` bytes in two descriptors. */
static void tx(struct virtio_dev *vdev, const uint8_t *frame, uint32_t len, uint8_t hdr_flags)
{
	uint16_t d = drv[1].next_desc, d2 = (uint16_t)((d + 1) % QSIZE);
	uint8_t *h = gp(BUF_GPA(1) + 0x10000ULL * d, 12);
	uint8_t *p = gp(BUF_GPA(1) + 0x10000ULL * d2 + 0, len ? len : 1);

	drv[1].next_desc = (uint16_t)((d + 2) % QSIZE);
	memset(h, 0, 12);
	h[0] = hdr_flags;
	memcpy(p, frame, len);
	desc(1, d, BUF_GPA(1) + 0x10000ULL * d, 12, VIRTQ_DESC_F_NEXT, d2);
	desc(1, d2, BUF_GPA(1) + 0x10000ULL * d2, len, 0, 0);
	publish(1, d);
	kick(vdev, 1);
}

static void setup_queues(struct virtio_dev *vdev, uint64_t features)
{
	keel_error *err = NULL;

	memset(drv, 0, sizeof(drv));
	vdev->driver_features = features;
	for (int q = 0; q < 2; q++) {
		struct virtq *vq = &vdev->vqs[q];

		memset(gp(RING_GPA(q), 0x3000), 0, 0x3000);
		virtq_reset(vq);
		vq->cfg = (struct virtq_config){ .size = QSIZE, .desc_gpa = RING_GPA(q),
						 .avail_gpa = RING_GPA(q) + 0x1000,
						 .used_gpa = RING_GPA(q) + 0x2000 };
		vq->event_idx = false;
		CHECK(virtq_enable(vq, &vm->mem, &err) == 0);
	}
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	CHECK(vdev->ops->start(vdev, &err) == 0);
	vdev->started = true;
}

static void stop_device(struct virtio_dev *vdev)
{
	vdev->ops->stop(vdev);
	vdev->started = false;
}

static ssize_t peer_recv(int fd, void *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return recv(fd, buf, len, MSG_DONTWAIT);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed);
}

static uint16_t config_status(struct virtio_dev *vdev)
{
	uint16_t st;

	vdev->ops->config_read(vdev, 6, &st, 2);
	return le16toh(st);
}

static void test_device(void)
{
	static uint8_t frame[80000], buf[80000];
	struct keel_network_attachment *att;
	struct keel_network_device dev = { 0 };
	keel_error *err = NULL;
	struct virtio_net *n;
	struct virtio_dev *vdev;
	uint64_t txf, rxf, dropped;
	uint32_t id, len;
	uint8_t mac[6], cmac[6], dmac[6];
	struct vm_config mcfg = { .has_machine_id = true, .machine_id = { 1, 2, 3 } };
	int sv[2], sv2[2];

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	att = keel_socket_attachment_new(sv[0], KEEL_NET_DGRAM, &err);
	close(sv[0]);
	dev.att = att;
	machine_default_mac(&mcfg, 0, dmac);
	n = virtio_net_new(&vm->ctx, 0, &dev, dmac, true, &err);
	CHECK(n && !err);
	keel_network_attachment_free(att);      /* the back end has its own descriptor */
	if (!n)
		return;
	vdev = virtio_net_vdev(n);
	vdev->transport = &test_transport;

	/* Config: the MAC given (the default: locally administered, stable); link up. */
	virtio_net_get_mac(n, mac);
	CHECK(!memcmp(mac, dmac, 6) && mac[0] == 0x02);
	machine_default_mac(&mcfg, 0, cmac);
	CHECK(!memcmp(mac, cmac, 6));
	machine_default_mac(&mcfg, 1, cmac);
	CHECK(memcmp(mac, cmac, 6) != 0);
	vdev->ops->config_read(vdev, 0, cmac, 6);
	CHECK(!memcmp(mac, cmac, 6));
	CHECK(config_status(vdev) == VIRTIO_NET_S_LINK_UP);
	CHECK(vdev->host_features & (1ULL << VIRTIO_NET_F_MRG_RXBUF));
	CHECK(!(vdev->host_features & (1ULL << VIRTIO_NET_F_CSUM)));  /* no offloads on sockets */

	setup_queues(vdev, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MRG_RXBUF));

	/* TX: the frame arrives without the header. */
	fill(frame, 1000, 1);
	tx(vdev, frame, 1000, 0);
	CHECK(peer_recv(sv[1], buf, sizeof(buf), 2000) == 1000 && !memcmp(buf, frame, 1000));
	CHECK(wait_used(1, 1));
	used_elem(1, (uint16_t)(drv[1].used_seen - 1), &id, &len);
	CHECK(len == 0);

	/* RX into one buffer: header with num_buffers 1. */
	post_rx(vdev, 4, 2048);
	fill(frame, 100, 2);
	CHECK(send(sv[1], frame, 100, 0) == 100);
	CHECK(wait_used(0, 1));
	used_elem(0, (uint16_t)(drv[0].used_seen - 1), &id, &len);
	CHECK(id == 0 && len == 112);
	{
		uint8_t *p = gp(BUF_GPA(0), 2048);

		CHECK(p[0] == 0 && p[1] == 0 && p[10] == 1 && p[11] == 0);
		CHECK(!memcmp(p + 12, frame, 100));
	}

	/* A frame bigger than a buffer spans several (3 remain of 2048 bytes). */
	fill(frame, 5000, 3);
	CHECK(send(sv[1], frame, 5000, 0) == 5000);
	CHECK(wait_used(0, 3));
	{
		uint8_t *p1 = gp(BUF_GPA(0) + 0x10000, 2048);
		uint8_t *p2 = gp(BUF_GPA(0) + 0x20000, 2048);
		uint8_t *p3 = gp(BUF_GPA(0) + 0x30000, 2048);
		uint32_t l1, l2, l3;

		used_elem(0, (uint16_t)(drv[0].used_seen - 3), &id, &l1);
		CHECK(id == 1);
		used_elem(0, (uint16_t)(drv[0].used_seen - 2), &id, &l2);
		CHECK(id == 2);
		used_elem(0, (uint16_t)(drv[0].used_seen - 1), &id, &l3);
		CHECK(id == 3);
		CHECK(l1 == 2048 && l2 == 2048 && l3 == 5012 - 4096);
		CHECK(p1[10] == 3 && p1[11] == 0);
		CHECK(!memcmp(p1 + 12, frame, 2036) && !memcmp(p2, frame + 2036, 2048) &&
		      !memcmp(p3, frame + 4084, 916));
	}

	/* No buffers: the frame waits (not lost) until the guest adds some. */
	fill(frame, 300, 4);
	CHECK(send(sv[1], frame, 300, 0) == 300);
	sleep_ms(50);
	CHECK(used_idx(0) == drv[0].used_seen);
	post_rx(vdev, 1, 2048);
	CHECK(wait_used(0, 1));
	used_elem(0, (uint16_t)(drv[0].used_seen - 1), &id, &len);
	CHECK(len == 312 && !memcmp((uint8_t *)gp(BUF_GPA(0) + 0x10000ULL * id, 312) + 12, frame, 300));

	/* Not enough for a big frame: nothing used until enough are there. */
	fill(frame, 3000, 5);
	post_rx(vdev, 1, 2048);
	CHECK(send(sv[1], frame, 3000, 0) == 3000);
	sleep_ms(50);
	CHECK(used_idx(0) == drv[0].used_seen);
	post_rx(vdev, 1, 2048);
	CHECK(wait_used(0, 2));

	/* Malformed TX: dropped, counted, and the device goes on. */
	warnings = 0;
	tx(vdev, frame, 10, 0);
	tx(vdev, frame, NET_MAX_FRAME + 1, 0);
	tx(vdev, frame, 60, VIRTIO_NET_HDR_F_NEEDS_CSUM);   /* offload not offered */
	CHECK(wait_used(1, 3));
	CHECK(virtio_net_get_stats(n, &txf, &rxf, &dropped, &err) == 0);
	CHECK(txf == 1 && rxf == 4 && dropped == 3);
	CHECK(warnings == 1);   /* rate-limited: one a second */
	CHECK(peer_recv(sv[1], buf, sizeof(buf), 50) == -1);
	tx(vdev, frame, 60, 0);
	CHECK(peer_recv(sv[1], buf, sizeof(buf), 2000) == 60);
	CHECK(wait_used(1, 1));

	/* Link down: config interrupt, nothing goes out or comes in. */
	config_notified = 0;
	CHECK(virtio_net_set_link(n, false, &err) == 0);
	CHECK(config_notified == 1 && config_status(vdev) == 0);
	tx(vdev, frame, 60, 0);
	CHECK(wait_used(1, 1));
	CHECK(peer_recv(sv[1], buf, sizeof(buf), 50) == -1);
	post_rx(vdev, 2, 2048);
	CHECK(send(sv[1], frame, 100, 0) == 100);
	sleep_ms(50);
	CHECK(used_idx(0) == drv[0].used_seen);
	CHECK(virtio_net_set_link(n, true, &err) == 0);
	CHECK(config_notified == 2 && config_status(vdev) == VIRTIO_NET_S_LINK_UP);
	CHECK(send(sv[1], frame, 100, 0) == 100);
	CHECK(wait_used(0, 1));
	CHECK(virtio_net_get_stats(n, &txf, &rxf, &dropped, &err) == 0);
	CHECK(txf == 2 && dropped == 3);

	/* Forwards are NAT's. */
	{
		struct net_forward f = { .proto = KEEL_NET_TCP, .host_addr = "127.0.0.1",
					 .host_port = 2222, .guest_port = 22 };

		CHECK(virtio_net_forward(n, true, &f, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_UNSUPPORTED, "network device 0 is not attached to NAT");
	}

	/* Attachment change: link down, then up again; traffic on the new socket. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv2) == 0);
	att = keel_socket_attachment_new(sv2[0], KEEL_NET_DGRAM, &err);
	close(sv2[0]);
	config_notified = 0;
	CHECK(virtio_net_set_attachment(n, att, &err) == 0 && !err);
	keel_network_attachment_free(att);
	CHECK(config_notified == 1 && config_status(vdev) == 0);
	for (int i = 0; i < 3000 && config_notified < 2; i++)
		sleep_ms(1);
	CHECK(config_notified == 2 && config_status(vdev) == VIRTIO_NET_S_LINK_UP);
	fill(frame, 200, 6);
	tx(vdev, frame, 200, 0);
	CHECK(peer_recv(sv2[1], buf, sizeof(buf), 2000) == 200 && !memcmp(buf, frame, 200));
	CHECK(peer_recv(sv[1], buf, sizeof(buf), 10) == -1);
	CHECK(wait_used(1, 1));
	CHECK(send(sv2[1], frame, 200, 0) == 200);
	CHECK(wait_used(0, 1));

	/* A bad attachment leaves the old one in place. */
	{
		struct keel_network_attachment bad = { .kind = NET_UNIX, .fd = -1,
						       .name = (char *)"/nonexistent/keel.sock" };

		CHECK(virtio_net_set_attachment(n, &bad, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "cannot connect to '/nonexistent/keel.sock'");
		tx(vdev, frame, 200, 0);
		CHECK(peer_recv(sv2[1], buf, sizeof(buf), 2000) == 200);
		CHECK(wait_used(1, 1));
	}

	/* The calls behind the public functions (tests/api covers the functions). */
	{
		struct net_forward f = { .proto = KEEL_NET_TCP, .host_addr = "127.0.0.1",
					 .host_port = 2222, .guest_port = 22 };

		CHECK(virtio_net_get_stats(n, &txf, &rxf, &dropped, &err) == 0);
		CHECK(txf == 4);
		CHECK(virtio_net_forward(n, true, &f, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_UNSUPPORTED, "not attached to NAT");
		CHECK(virtio_net_set_link(n, true, &err) == 0);
	}

	/* Stopped: frames from the network are read and dropped. */
	stop_device(vdev);
	CHECK(send(sv2[1], frame, 200, 0) == 200);
	sleep_ms(50);
	{
		char c;

		CHECK(recv(sv2[1], &c, 1, MSG_DONTWAIT) == -1);
	}
	CHECK(used_idx(0) == drv[0].used_seen);

	virtio_net_free(n);
	close(sv[1]);
	close(sv2[1]);
}

int main(void)
{
	vm = fake_vm_new(&(struct fake_vm_opts){ .flags = FAKE_VM_LOOP, .mem_size = RAM_SIZE,
						 .cpus = 1, .log_cb = log_cb });
	CHECK(vm->ctx.loop);
	test_device();
	fake_vm_free(vm);
	return test_exit();
}
