// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for virtio-net's queue handling: random guest RAM holds
 * both queues' rings, descriptors, transmit headers and frames, and receive
 * buffers; the device (without its thread, driven by virtio_net_poll())
 * sends what the transmit queue holds to a datagram socketpair and fills
 * the receive queue with frames the test's end of the socket sends.  Input:
 *
 *   byte 0     queue sizes: TX 1 << (b % 9), RX 1 << ((b >> 4) % 9)
 *   byte 1     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 MRG_RXBUF
 *   byte 2     frames the network sends (0..3)
 *   bytes 3-8  their lengths (16-bit little-endian, bounded by NET_MAX_FRAME)
 *   byte 9     extra polls (0..3)
 *   16..       guest RAM from gpa 0 (two 32 KiB regions, a hole between)
 *
 * Layout: TX avail ring at 0, used ring and descriptors after it; the RX
 * queue the same from 0x4000.  Invariants: nothing crashes under
 * ASan/UBSan, used indices move by at most what was taken, nothing is
 * written to guest memory once the device is stopped.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/devctx.h"
#include "kvm/mem.h"
#include "net/backend.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define RAM_BYTES   0x10000
#define REGION_SIZE 0x8000
#define HIGH_GPA    0x10000
#define RXQ_BASE    0x4000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The device context the machine builder would give: guest RAM, one vCPU. */
static struct devctx *ctx;
static struct mem mem;
static uint8_t *ram_buf;
static struct virtio_net *net;
static int peer = -1;
static uint8_t frame[NET_MAX_FRAME];

static void setup(void)
{
	struct keel_network_attachment att = { .kind = NET_SOCKET, .framing = KEEL_NET_DGRAM };
	struct keel_network_device dev = { .att = &att };
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	keel_error *err = NULL;
	int sv[2], big = 4 << 20;

	if (ctx)
		return;
	ctx = calloc(1, sizeof(*ctx));
	ram_buf = malloc(RAM_BYTES);
	if (!ctx || !ram_buf || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
		abort();
	ctx->nr_cpus = 1;
	ctx->mem = &mem;
	mem = (struct mem){ .fd = -1, .host = ram_buf, .size = RAM_BYTES, .nr_regions = 2 };
	mem.region[0] = (struct mem_region){ .gpa = 0, .size = REGION_SIZE, .host = ram_buf };
	mem.region[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = REGION_SIZE,
					     .host = ram_buf + REGION_SIZE };
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	att.fd = sv[0];
	net = virtio_net_new(ctx, 0, &dev, mac, false, &err);
	if (!net) {
		fprintf(stderr, "fuzz-virtio-net: %s\n", err ? keel_error_get_message(err) : "?");
		abort();
	}
	close(sv[0]);
	peer = sv[1];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
}

static bool setup_queue(struct virtq *vq, uint64_t base, unsigned int shift, uint8_t flags)
{
	keel_error *err = NULL;
	uint64_t n = 1u << shift;

	virtq_reset(vq);
	vq->cfg.size = (uint16_t)n;
	vq->cfg.avail_gpa = base;
	vq->cfg.used_gpa = (base + 6 + 2 * n + 3) & ~3ULL;
	vq->cfg.desc_gpa = (vq->cfg.used_gpa + 6 + 8 * n + 15) & ~15ULL;
	vq->event_idx = flags & 1;
	vq->indirect = flags & 2;
	if (virtq_enable(vq, &mem, &err) < 0) {
		keel_error_free(err);
		return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[16] = { 0 };
	struct virtio_dev *vdev;
	keel_error *err = NULL;
	uint16_t used_before[2], avail_before[2];
	unsigned int frames, polls;

	setup();
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	memset(ram_buf, 0, RAM_BYTES);
	if (size > sizeof(hdr))
		memcpy(ram_buf, data + sizeof(hdr),
		       size - sizeof(hdr) < RAM_BYTES ? size - sizeof(hdr) : RAM_BYTES);

	vdev = virtio_net_vdev(net);
	vdev->status = 0;
	vdev->driver_features = (1ULL << VIRTIO_F_VERSION_1) |
				((hdr[1] & 1) ? 1ULL << VIRTIO_F_EVENT_IDX : 0) |
				((hdr[1] & 2) ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0) |
				((hdr[1] & 4) ? 1ULL << VIRTIO_NET_F_MRG_RXBUF : 0);
	if (!setup_queue(&vdev->vqs[1], 0, hdr[0] % 9, hdr[1]) ||
	    !setup_queue(&vdev->vqs[0], RXQ_BASE, (hdr[0] >> 4) % 9, hdr[1]))
		return 0;
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	if (vdev->ops->start(vdev, &err) < 0)
		abort();
	vdev->started = true;

	frames = hdr[2] % 4;
	for (unsigned int i = 0; i < frames; i++) {
		size_t len = ((size_t)hdr[3 + 2 * i] | (size_t)hdr[4 + 2 * i] << 8) % NET_MAX_FRAME + 1;

		if (send(peer, frame, len, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			abort();
	}
	for (int q = 0; q < 2; q++) {
		used_before[q] = vdev->vqs[q].used_idx;
		avail_before[q] = vdev->vqs[q].last_avail;
	}
	polls = 1 + hdr[9] % 4;
	for (unsigned int i = 0; i < polls; i++)
		virtio_net_poll(net);
	for (int q = 0; q < 2; q++) {
		struct virtq *vq = &vdev->vqs[q];

		if (!vq->broken &&
		    (uint16_t)(vq->used_idx - used_before[q]) > (uint16_t)(vq->last_avail - avail_before[q]))
			abort();
	}

	/* Stopped: the device must leave guest memory alone from now on. */
	vdev->ops->stop(vdev);
	vdev->started = false;
	{
		uint16_t used0 = vdev->vqs[0].used_idx, used1 = vdev->vqs[1].used_idx;

		if (send(peer, frame, 64, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			abort();
		virtio_net_poll(net);   /* drains the back end; drops the frames */
		if (vdev->vqs[0].used_idx != used0 || vdev->vqs[1].used_idx != used1)
			abort();
	}
	while (recv(peer, frame, sizeof(frame), MSG_DONTWAIT) > 0)
		;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	return 0;
}
