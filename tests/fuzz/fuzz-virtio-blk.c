// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for virtio-blk's request handling: random guest RAM
 * holds the rings, descriptors, request headers, segments and buffers; the
 * device (over a 32 KiB temporary image, real io_uring I/O) takes every
 * request, runs it and returns it.  Input:
 *
 *   byte 0     queue size: 1 << (b % 9) (1..256)
 *   byte 1     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 read-only device
 *   byte 2     kicks (1..4): the avail index may move between them
 *   byte 3     avail index bump before each further kick
 *   16..       guest RAM from gpa 0 (two 32 KiB regions, a hole between)
 *
 * Layout: avail ring at 0, used ring after it, descriptor table after
 * that (so short inputs reach all three).  Invariants: nothing crashes
 * under ASan/UBSan, every request taken is completed (nothing in flight
 * after the last poll), the used index moves by at most what was taken.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/devctx.h"
#include "kvm/mem.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define RAM_BYTES   0x10000
#define REGION_SIZE 0x8000
#define HIGH_GPA    0x10000
#define IMG_BYTES   (64 * 512)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The device context the machine builder would give: guest RAM, one vCPU. */
static struct devctx *ctx;
static struct mem mem;
static uint8_t *ram_buf;
static struct virtio_blk *blk_rw, *blk_ro;

static struct virtio_blk *make_dev(const char *path, bool ro)
{
	struct keel_storage_attachment att = { .path = (char *)path, .read_only = ro,
					       .sync = KEEL_SYNC_NONE, .serial = (char *)"fuzz" };
	struct keel_storage_device dev = { .kind = STORAGE_VIRTIO_BLK, .att = &att, .queues = 1 };
	keel_error *err = NULL;
	struct virtio_blk *blk = virtio_blk_new(ctx, 0, &dev, &err);

	if (!blk) {
		fprintf(stderr, "fuzz-virtio-blk: %s\n", err ? keel_error_get_message(err) : "?");
		abort();
	}
	return blk;
}

static void setup(void)
{
	char dir[] = "/tmp/keel-fuzz-vblk.XXXXXX", rw[64], ro[64];
	uint8_t img[IMG_BYTES];
	int fd;

	if (ctx)
		return;
	ctx = calloc(1, sizeof(*ctx));
	ram_buf = malloc(RAM_BYTES);
	if (!ctx || !ram_buf || !mkdtemp(dir))
		abort();
	ctx->nr_cpus = 1;
	ctx->mem = &mem;
	mem = (struct mem){ .fd = -1, .host = ram_buf, .size = RAM_BYTES, .nr_regions = 2 };
	mem.region[0] = (struct mem_region){ .gpa = 0, .size = REGION_SIZE, .host = ram_buf };
	mem.region[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = REGION_SIZE,
					     .host = ram_buf + REGION_SIZE };
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)i;
	snprintf(rw, sizeof(rw), "%s/rw.img", dir);
	snprintf(ro, sizeof(ro), "%s/ro.img", dir);
	for (int k = 0; k < 2; k++) {
		fd = open(k ? ro : rw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (fd < 0 || write(fd, img, sizeof(img)) != (ssize_t)sizeof(img))
			abort();
		close(fd);
	}
	blk_rw = make_dev(rw, false);
	blk_ro = make_dev(ro, true);
	/* The open descriptors keep the files; the names can go now. */
	unlink(rw);
	unlink(ro);
	rmdir(dir);
}

static uint16_t used_idx(const struct virtq *vq)
{
	return vq->used_idx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[16] = { 0 };
	struct virtio_blk *blk;
	struct virtio_dev *vdev;
	struct virtq *vq;
	keel_error *err = NULL;
	unsigned int kicks;
	uint64_t n;

	setup();
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	memset(ram_buf, 0, RAM_BYTES);
	if (size > sizeof(hdr))
		memcpy(ram_buf, data + sizeof(hdr),
		       size - sizeof(hdr) < RAM_BYTES ? size - sizeof(hdr) : RAM_BYTES);

	blk = hdr[1] & 4 ? blk_ro : blk_rw;
	vdev = virtio_blk_vdev(blk);
	vq = &vdev->vqs[0];
	virtq_reset(vq);
	n = 1u << (hdr[0] % 9);
	vq->cfg.size = (uint16_t)n;
	vq->cfg.avail_gpa = 0;
	vq->cfg.used_gpa = (6 + 2 * n + 3) & ~3ULL;
	vq->cfg.desc_gpa = (vq->cfg.used_gpa + 6 + 8 * n + 15) & ~15ULL;
	vq->event_idx = hdr[1] & 1;
	vq->indirect = hdr[1] & 2;
	if (virtq_enable(vq, &mem, &err) < 0) {
		keel_error_free(err);
		return 0;
	}
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	vdev->started = true;
	if (virtio_blk_io_begin(blk, &err) < 0) {
		fprintf(stderr, "fuzz-virtio-blk: %s\n", keel_error_get_message(err));
		abort();
	}

	kicks = 1 + hdr[2] % 4;
	for (unsigned int k = 0; k < kicks; k++) {
		uint16_t before = used_idx(vq), last_avail = vq->last_avail;

		if (k) {
			/* The "driver" publishes more between kicks. */
			uint16_t *avail = (uint16_t *)ram_buf;

			avail[1] = (uint16_t)(avail[1] + hdr[3]);
		}
		virtio_blk_io_kick(blk, 0);
		while (virtio_blk_io_inflight(blk))
			virtio_blk_io_poll(blk, true);
		/* At most one used entry per request taken. */
		if ((uint16_t)(used_idx(vq) - before) > (uint16_t)(vq->last_avail - last_avail) &&
		    !vq->broken)
			abort();
		if (vq->broken)
			break;
	}
	virtio_blk_io_end(blk);
	if (virtio_blk_io_inflight(blk))
		abort();
	return 0;
}
