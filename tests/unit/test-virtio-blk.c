// SPDX-License-Identifier: MIT
/*
 * virtio-blk without KVM: the test plays the driver (descriptor table and
 * rings in a struct mem guest RAM) and runs the device's request handling,
 * first on its own thread (virtio_blk_io_*), then on the device's I/O
 * thread woken through the kick eventfd, as a transport would.
 */
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "check.h"
#include "fakevm.h"

#define RAM_SIZE   (16ULL << 20)
#define QSIZE      16
#define DESC_GPA   0x10000ULL
#define AVAIL_GPA  0x11000ULL
#define USED_GPA   0x12000ULL
#define HDR_GPA    0x20000ULL     /* request headers, 32 bytes apart */
#define STATUS_GPA 0x30000ULL     /* status bytes, 32 bytes apart */
#define DATA_GPA   0x100000ULL
#define SECTORS    2048           /* 1 MiB image */

static struct fake_vm *vm;
static char dir[64], img_path[128], ro_path[128];
static int img_fd;
static int notified, config_notified;
static int warnings, debugs;
static char last_warning[1024];

static void test_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	__atomic_fetch_add(&notified, 1, __ATOMIC_SEQ_CST);
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
	if (level == KEEL_LOG_WARNING || level == KEEL_LOG_ERROR) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	} else if (level == KEEL_LOG_DEBUG) {
		debugs++;
	}
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(&vm->mem, gpa, len);

	if (!p) {
		fprintf(stderr, "test bug: 0x%llx outside RAM\n", (unsigned long long)gpa);
		abort();
	}
	return p;
}

/* ---- the driver's side of queue 0 ---- */

struct drv {
	uint16_t avail_idx;
	uint16_t used_seen;
	uint16_t next_desc;
};

static struct drv drv;

static void desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = htole64(addr), .len = htole32(len),
				.flags = htole16(flags), .next = htole16(next) };

	memcpy(gp(DESC_GPA + 16ULL * i, 16), &d, 16);
}

static void publish(uint16_t head)
{
	uint16_t *a = gp(AVAIL_GPA, 4 + 2 * QSIZE);

	a[2 + (drv.avail_idx % QSIZE)] = htole16(head);
	drv.avail_idx++;
	__atomic_store_n(&a[1], htole16(drv.avail_idx), __ATOMIC_RELEASE);
}

static uint16_t used_idx(void)
{
	uint16_t *u = gp(USED_GPA, 4);

	return le16toh(__atomic_load_n(&u[1], __ATOMIC_ACQUIRE));
}

static void used_elem(uint16_t i, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gp(USED_GPA + 4 + 8ULL * (i % QSIZE), 8);

	*id = le32toh(e[0]);
	*len = le32toh(e[1]);
}

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;     /* device-writable */
};

/* Writes a chain of `n` buffers starting at a fresh descriptor; returns the head. */
static uint16_t chain(const struct buf *b, int n)
{
	uint16_t head = drv.next_desc;

	for (int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);

		desc(idx, b[i].gpa, b[i].len, (uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
			  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)), (uint16_t)((idx + 1) % QSIZE));
	}
	drv.next_desc = (uint16_t)((head + n) % QSIZE);
	return head;
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint8_t *h = gp(gpa, 16);
	uint32_t t = htole32(type), z = 0;
	uint64_t s = htole64(sector);

	memcpy(h, &t, 4);
	memcpy(h + 4, &z, 4);
	memcpy(h + 8, &s, 8);
}

struct blk_env {
	struct virtio_blk *blk;
	struct virtio_dev *vdev;
	bool threaded;
};

static void setup_queue(struct virtio_dev *vdev, bool event_idx)
{
	keel_error *err = NULL;
	struct virtq *vq = &vdev->vqs[0];

	memset(gp(DESC_GPA, 0x3000), 0, 0x3000);
	memset(&drv, 0, sizeof(drv));
	virtq_reset(vq);
	vq->cfg = (struct virtq_config){ .size = QSIZE, .desc_gpa = DESC_GPA,
					 .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA };
	vq->event_idx = event_idx;
	CHECK(virtq_enable(vq, &vm->mem, &err) == 0);
	CHECK(err == NULL);
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	vdev->started = true;
}

/* Runs everything published so far; returns once `count` more are used. */
static bool run(struct blk_env *env, int count)
{
	uint16_t want = (uint16_t)(drv.used_seen + count);
	uint16_t *used_event = gp(AVAIL_GPA + 4 + 2 * QSIZE, 2);

	*used_event = htole16(drv.used_seen);   /* EVENT_IDX: notify on the next one */

	if (!env->threaded) {
		virtio_blk_io_kick(env->blk, 0);
		while (virtio_blk_io_inflight(env->blk))
			virtio_blk_io_poll(env->blk, true);
	} else {
		uint64_t one = 1;
		struct timespec ts = { 0, 1000000 };

		CHECK(write(env->vdev->kick_fd[0], &one, 8) == 8);
		for (int i = 0; i < 5000 && used_idx() != want; i++)
			nanosleep(&ts, NULL);
	}
	if (used_idx() != want) {
		fprintf(stderr, "used idx %u, expected %u\n", used_idx(), want);
		return false;
	}
	drv.used_seen = want;
	return true;
}

/* One request: header, data buffers, status; returns the status byte. */
static int request(struct blk_env *env, uint32_t type, uint64_t sector, const struct buf *data,
		   int ndata, uint32_t *used_len)
{
	static int slot;
	uint64_t hdr = HDR_GPA + 32 * (slot % 64), st = STATUS_GPA + 32 * (slot % 64);
	struct buf b[8];
	uint32_t id, len;
	int n = 0;

	slot++;
	put_hdr(hdr, type, sector);
	*(uint8_t *)gp(st, 1) = 0xee;
	b[n++] = (struct buf){ hdr, 16, false };
	for (int i = 0; i < ndata; i++)
		b[n++] = data[i];
	b[n++] = (struct buf){ st, 1, true };
	uint16_t head = chain(b, n);

	publish(head);
	if (!run(env, 1))
		return -1;
	used_elem((uint16_t)(drv.used_seen - 1), &id, &len);
	CHECK(id == head);
	if (used_len)
		*used_len = len;
	return *(uint8_t *)gp(st, 1);
}

static bool image_matches(uint64_t off, const void *want, size_t len)
{
	uint8_t *got = malloc(len);
	bool ok = pread(img_fd, got, len, off) == (ssize_t)len && !memcmp(got, want, len);

	free(got);
	return ok;
}

static bool image_is_pattern(uint64_t off, size_t len)
{
	bool ok = true;
	uint8_t *got = malloc(len);

	ok = pread(img_fd, got, len, off) == (ssize_t)len;
	for (size_t i = 0; ok && i < len; i++)
		ok = got[i] == pattern(off + i);
	free(got);
	return ok;
}

static void make_image(const char *path)
{
	uint8_t *buf = malloc(SECTORS * 512);
	int fd;

	for (uint64_t i = 0; i < SECTORS * 512; i++)
		buf[i] = pattern(i);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, SECTORS * 512) == SECTORS * 512);
	close(fd);
	free(buf);
}

static struct virtio_blk *new_blk(const char *path, bool ro, unsigned int queues,
				  const char *serial)
{
	struct keel_storage_attachment att = {
		.path = (char *)path, .read_only = ro, .sync = KEEL_SYNC_DATA,
		.cache = KEEL_CACHE_HOST, .serial = (char *)serial,
	};
	struct keel_storage_device dev = { .kind = STORAGE_VIRTIO_BLK, .att = &att,
					   .queues = queues };
	keel_error *err = NULL;
	struct virtio_blk *blk = virtio_blk_new(&vm->ctx, 0, &dev, &err);

	if (!blk) {
		fprintf(stderr, "virtio_blk_new: %s\n", err ? keel_error_get_message(err) : "?");
		keel_error_free(err);
		CHECK(blk != NULL);
		return NULL;
	}
	virtio_blk_vdev(blk)->transport = &test_transport;
	return blk;
}

static uint32_t cfg32(struct virtio_dev *vdev, uint32_t off)
{
	uint32_t v = 0;

	vdev->ops->config_read(vdev, off, &v, 4);
	return le32toh(v);
}

static void test_config(void)
{
	struct virtio_blk *blk = new_blk(img_path, false, 0, NULL);
	struct virtio_dev *vdev;
	uint64_t cap = 0;
	uint16_t nq = 0;
	uint8_t wz = 0;

	if (!blk)
		return;
	vdev = virtio_blk_vdev(blk);
	CHECK(vdev->device_id == VIRTIO_ID_BLOCK);
	CHECK(vdev->config_size == VIRTIO_BLK_CONFIG_SIZE);
	CHECK(vdev->nr_queues == 2);            /* one per vCPU */
	CHECK(vdev->host_features & (1ULL << VIRTIO_BLK_F_MQ));
	CHECK(vdev->host_features & (1ULL << VIRTIO_F_EVENT_IDX));
	CHECK(vdev->host_features & (1ULL << VIRTIO_F_INDIRECT_DESC));
	CHECK(vdev->host_features & (1ULL << VIRTIO_BLK_F_FLUSH));
	CHECK(vdev->host_features & (1ULL << VIRTIO_BLK_F_DISCARD));
	CHECK(vdev->host_features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(!(vdev->host_features & (1ULL << VIRTIO_BLK_F_RO)));
	vdev->ops->config_read(vdev, 0, &cap, 8);
	CHECK(le64toh(cap) == SECTORS);
	CHECK(cfg32(vdev, 12) == VIRTIO_BLK_SEG_MAX);
	CHECK(cfg32(vdev, 20) == 512);
	vdev->ops->config_read(vdev, 34, &nq, 2);
	CHECK(le16toh(nq) == 2);
	CHECK(cfg32(vdev, 36) == VIRTIO_BLK_MAX_DISCARD_SECTORS);
	CHECK(cfg32(vdev, 40) == VIRTIO_BLK_MAX_DISCARD_SEG);
	CHECK(cfg32(vdev, 44) == 1);
	CHECK(cfg32(vdev, 48) == VIRTIO_BLK_MAX_DISCARD_SECTORS);
	CHECK(cfg32(vdev, 52) == VIRTIO_BLK_MAX_DISCARD_SEG);
	vdev->ops->config_read(vdev, 56, &wz, 1);
	CHECK(wz == 1);
	CHECK(cfg32(vdev, 58) == 0);            /* past the end reads as zeros */
	virtio_blk_free(blk);

	/* 40 queues asked: capped at 16; the image is free again after free. */
	blk = new_blk(img_path, false, 40, NULL);
	if (blk) {
		CHECK(virtio_blk_vdev(blk)->nr_queues == VIRTIO_BLK_MAX_QUEUES);
		virtio_blk_free(blk);
	}
	blk = new_blk(img_path, false, 1, NULL);
	if (blk) {
		CHECK(!(virtio_blk_vdev(blk)->host_features & (1ULL << VIRTIO_BLK_F_MQ)));
		virtio_blk_free(blk);
	}
}

static void test_requests(struct blk_env *env)
{
	uint8_t *d = gp(DATA_GPA, 1 << 20);
	uint32_t ulen = 0;
	struct buf b[3];
	int w;

	/* Read 8 sectors at sector 3 into two buffers. */
	memset(d, 0xcc, 8192);
	b[0] = (struct buf){ DATA_GPA, 1536, true };
	b[1] = (struct buf){ DATA_GPA + 4096, 2560, true };
	CHECK(request(env, VIRTIO_BLK_T_IN, 3, b, 2, &ulen) == VIRTIO_BLK_S_OK);
	CHECK(ulen == 4097);
	w = 0;
	for (int i = 0; i < 1536; i++)
		w += d[i] != pattern(3 * 512 + i);
	for (int i = 0; i < 2560; i++)
		w += d[4096 + i] != pattern(3 * 512 + 1536 + i);
	CHECK(w == 0);

	/* Write 3 sectors at 100, split 512 + 1024. */
	memset(d, 0x5a, 512);
	memset(d + 8192, 0xa5, 1024);
	b[0] = (struct buf){ DATA_GPA, 512, false };
	b[1] = (struct buf){ DATA_GPA + 8192, 1024, false };
	CHECK(request(env, VIRTIO_BLK_T_OUT, 100, b, 2, &ulen) == VIRTIO_BLK_S_OK);
	CHECK(ulen == 1);
	CHECK(image_matches(100 * 512, d, 512));
	CHECK(image_matches(101 * 512, d + 8192, 1024));
	CHECK(image_is_pattern(99 * 512, 512) && image_is_pattern(103 * 512, 512));

	/* The last sector, and the status byte sharing the data's descriptor. */
	{
		uint64_t hdr = HDR_GPA + 32 * 63;
		uint16_t head;
		uint32_t id;

		put_hdr(hdr, VIRTIO_BLK_T_IN, SECTORS - 1);
		b[0] = (struct buf){ hdr, 16, false };
		b[1] = (struct buf){ DATA_GPA, 513, true };
		d[512] = 0xee;
		head = chain(b, 2);
		publish(head);
		CHECK(run(env, 1));
		used_elem((uint16_t)(drv.used_seen - 1), &id, &ulen);
		CHECK(id == head && ulen == 513);
		CHECK(d[512] == VIRTIO_BLK_S_OK);
		CHECK(d[0] == pattern((SECTORS - 1) * 512ULL) && d[511] == pattern(SECTORS * 512ULL - 1));
	}

	/* GET_ID: the serial, zero padded to 20 bytes. */
	memset(d, 0xff, 32);
	b[0] = (struct buf){ DATA_GPA, 32, true };
	CHECK(request(env, VIRTIO_BLK_T_GET_ID, 0, b, 1, &ulen) == VIRTIO_BLK_S_OK);
	CHECK(ulen == 21);
	CHECK(!memcmp(d, "SERIAL-123\0\0\0\0\0\0\0\0\0\0", 20));
	CHECK(d[20] == 0xff);

	/* FLUSH. */
	CHECK(request(env, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &ulen) == VIRTIO_BLK_S_OK);
	CHECK(ulen == 1);

	/* WRITE_ZEROES (two segments, one with unmap) and DISCARD. */
	{
		struct seg { uint64_t sector; uint32_t n, flags; } seg[2] = {
			{ htole64(200), htole32(4), 0 },
			{ htole64(300), htole32(8), htole32(VIRTIO_BLK_WZ_F_UNMAP) },
		};

		memcpy(d, seg, sizeof(seg));
		b[0] = (struct buf){ DATA_GPA, sizeof(seg), false };
		CHECK(request(env, VIRTIO_BLK_T_WRITE_ZEROES, 0, b, 1, NULL) == VIRTIO_BLK_S_OK);
		memset(d + 4096, 0, 4096);
		CHECK(image_matches(200 * 512, d + 4096, 4 * 512));
		CHECK(image_matches(300 * 512, d + 4096, 8 * 512));
		CHECK(image_is_pattern(204 * 512, 512) && image_is_pattern(199 * 512, 512));
		CHECK(image_is_pattern(308 * 512, 512));

		seg[0] = (struct seg){ htole64(400), htole32(16), 0 };
		memcpy(d, seg, 16);
		b[0] = (struct buf){ DATA_GPA, 16, false };
		CHECK(request(env, VIRTIO_BLK_T_DISCARD, 0, b, 1, NULL) == VIRTIO_BLK_S_OK);
		CHECK(image_is_pattern(416 * 512, 512));

		/* DISCARD with the unmap flag: unsupported. */
		seg[0].flags = htole32(VIRTIO_BLK_WZ_F_UNMAP);
		memcpy(d, seg, 16);
		CHECK(request(env, VIRTIO_BLK_T_DISCARD, 0, b, 1, NULL) == VIRTIO_BLK_S_UNSUPP);
		/* A segment beyond the disk; a length that is not whole segments. */
		seg[0] = (struct seg){ htole64(SECTORS - 2), htole32(4), 0 };
		memcpy(d, seg, 16);
		warnings = 0;
		CHECK(request(env, VIRTIO_BLK_T_WRITE_ZEROES, 0, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
		CHECK(warnings == 1 && strstr(last_warning, "beyond the disk"));
		b[0].len = 20;
		CHECK(request(env, VIRTIO_BLK_T_DISCARD, 0, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
		CHECK(image_is_pattern((SECTORS - 2) * 512ULL, 1024));
	}

	/* Range errors: at capacity, across the end, huge (wrapping) sectors. */
	warnings = 0;
	b[0] = (struct buf){ DATA_GPA, 512, true };
	CHECK(request(env, VIRTIO_BLK_T_IN, SECTORS, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(strstr(last_warning, "beyond the disk's 2048 sectors") != NULL);
	b[0] = (struct buf){ DATA_GPA, 1024, true };
	CHECK(request(env, VIRTIO_BLK_T_IN, SECTORS - 1, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	b[0] = (struct buf){ DATA_GPA, 1024, false };
	CHECK(request(env, VIRTIO_BLK_T_OUT, UINT64_MAX, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(request(env, VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, b, 1, NULL) ==
	      VIRTIO_BLK_S_IOERR);
	/* Not a multiple of 512. */
	b[0] = (struct buf){ DATA_GPA, 500, true };
	CHECK(request(env, VIRTIO_BLK_T_IN, 0, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(strstr(last_warning, "not a multiple of 512") != NULL);
	CHECK(warnings == 5);
	/* Unknown type. */
	CHECK(request(env, 0x7f, 0, NULL, 0, NULL) == VIRTIO_BLK_S_UNSUPP);

	/* Header too short: 8 readable bytes. */
	{
		uint64_t st = STATUS_GPA + 32 * 63;
		uint32_t id;
		uint16_t head;

		put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 0);
		*(uint8_t *)gp(st, 1) = 0xee;
		b[0] = (struct buf){ HDR_GPA, 8, false };
		b[1] = (struct buf){ st, 1, true };
		head = chain(b, 2);
		publish(head);
		CHECK(run(env, 1));
		CHECK(*(uint8_t *)gp(st, 1) == VIRTIO_BLK_S_IOERR);
		CHECK(strstr(last_warning, "shorter than the 16-byte header") != NULL);

		/* No writable byte at all: returned unused, with a warning. */
		b[0] = (struct buf){ HDR_GPA, 16, false };
		b[1] = (struct buf){ DATA_GPA, 512, false };
		head = chain(b, 2);
		publish(head);
		CHECK(run(env, 1));
		used_elem((uint16_t)(drv.used_seen - 1), &id, &ulen);
		CHECK(id == head && ulen == 0);
		CHECK(strstr(last_warning, "no writable byte for the status") != NULL);
	}

	/* A batch of 8 reads published together, one kick. */
	{
		uint16_t heads[5];
		int before = __atomic_load_n(&notified, __ATOMIC_SEQ_CST);
		bool seen[5] = { false };

		/* 15 descriptors: all fit in the 16 of the queue. */
		for (int i = 0; i < 5; i++) {
			uint64_t hdr = HDR_GPA + 32 * i, st = STATUS_GPA + 32 * i;

			put_hdr(hdr, VIRTIO_BLK_T_IN, 8 * i);
			*(uint8_t *)gp(st, 1) = 0xee;
			b[0] = (struct buf){ hdr, 16, false };
			b[1] = (struct buf){ DATA_GPA + 4096 * i, 4096, true };
			b[2] = (struct buf){ st, 1, true };
			heads[i] = chain(b, 2 + 1);
		}
		for (int i = 0; i < 5; i++)
			publish(heads[i]);
		CHECK(run(env, 5));
		for (int i = 0; i < 5; i++) {
			uint32_t id;

			used_elem((uint16_t)(drv.used_seen - 5 + i), &id, &ulen);
			for (int k = 0; k < 5; k++)
				if (heads[k] == id)
					seen[k] = true;
			CHECK(ulen == 4097);
			CHECK(*(uint8_t *)gp(STATUS_GPA + 32 * i, 1) == VIRTIO_BLK_S_OK);
			CHECK(d[4096 * i] == pattern(8 * 512ULL * i) &&
			      d[4096 * i + 4095] == pattern(8 * 512ULL * i + 4095));
		}
		for (int k = 0; k < 5; k++)
			CHECK(seen[k]);
		CHECK(__atomic_load_n(&notified, __ATOMIC_SEQ_CST) > before);
	}
}

static void test_read_only(void)
{
	struct virtio_blk *blk = new_blk(ro_path, true, 1, NULL);
	struct blk_env env = { blk, NULL, false };
	uint8_t *d = gp(DATA_GPA, 4096);
	struct buf b[1];
	keel_error *err = NULL;

	if (!blk)
		return;
	env.vdev = virtio_blk_vdev(blk);
	CHECK(env.vdev->host_features & (1ULL << VIRTIO_BLK_F_RO));
	CHECK(!(env.vdev->host_features & (1ULL << VIRTIO_BLK_F_DISCARD)));
	setup_queue(env.vdev, false);
	CHECK(virtio_blk_io_begin(blk, &err) == 0);
	warnings = debugs = 0;
	memset(d, 0x77, 512);
	b[0] = (struct buf){ DATA_GPA, 512, false };
	CHECK(request(&env, VIRTIO_BLK_T_OUT, 0, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(request(&env, VIRTIO_BLK_T_DISCARD, 0, b, 1, NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(warnings == 0 && debugs == 2);
	b[0] = (struct buf){ DATA_GPA, 512, true };
	CHECK(request(&env, VIRTIO_BLK_T_IN, 0, b, 1, NULL) == VIRTIO_BLK_S_OK);
	CHECK(d[0] == pattern(0) && d[511] == pattern(511));
	CHECK(request(&env, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL) == VIRTIO_BLK_S_OK);
	virtio_blk_io_end(blk);
	virtio_blk_free(blk);
}

/* A broken ring puts the device in NEEDS_RESET; it stays out of the ring. */
static void break_ring(struct blk_env *env)
{
	uint16_t *a = gp(AVAIL_GPA, 4 + 2 * QSIZE);
	struct timespec ts = { 0, 1000000 };
	int cfg_before = __atomic_load_n(&config_notified, __ATOMIC_SEQ_CST);

	a[2 + (drv.avail_idx % QSIZE)] = htole16(QSIZE + 3);     /* head beyond the queue */
	drv.avail_idx++;
	__atomic_store_n(&a[1], htole16(drv.avail_idx), __ATOMIC_RELEASE);
	if (env->threaded) {
		uint64_t one = 1;

		CHECK(write(env->vdev->kick_fd[0], &one, 8) == 8);
		for (int i = 0; i < 5000; i++) {
			bool done;

			/* The configuration interrupt comes last, after the unlock. */
			done = __atomic_load_n(&config_notified, __ATOMIC_SEQ_CST) != cfg_before;
			if (done)
				break;
			nanosleep(&ts, NULL);
		}
	} else {
		virtio_blk_io_kick(env->blk, 0);
	}
	pthread_mutex_lock(&env->vdev->lock);
	CHECK(env->vdev->status & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!env->vdev->started);
	pthread_mutex_unlock(&env->vdev->lock);
	CHECK(__atomic_load_n(&config_notified, __ATOMIC_SEQ_CST) == cfg_before + 1);
	CHECK(strstr(last_warning, "beyond the queue size") != NULL);
	CHECK(used_idx() == drv.used_seen);
}

static void test_device(bool threaded)
{
	struct virtio_blk *blk = new_blk(img_path, false, 1, "SERIAL-123");
	struct blk_env env = { blk, NULL, threaded };
	keel_error *err = NULL;

	if (!blk)
		return;
	env.vdev = virtio_blk_vdev(blk);
	setup_queue(env.vdev, false);
	if (threaded) {
		CHECK(virtio_blk_start_thread(blk, &err) == 0);
		CHECK(env.vdev->ops->start(env.vdev, &err) == 0);
	} else {
		CHECK(virtio_blk_io_begin(blk, &err) == 0);
	}
	CHECK(err == NULL);
	test_requests(&env);

	if (threaded) {
		/* Stop with requests in flight, restart, go on. */
		uint16_t head;

		put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 0);
		head = chain((struct buf[]){ { HDR_GPA, 16, false }, { DATA_GPA, 65536, true },
					     { STATUS_GPA, 1, true } }, 3);
		publish(head);
		env.vdev->ops->stop(env.vdev);
		env.vdev->ops->stop(env.vdev);          /* idempotent */
		/* Again with EVENT_IDX: the driver wants an event at every used entry. */
		setup_queue(env.vdev, true);
		CHECK(env.vdev->ops->start(env.vdev, &err) == 0);
		test_requests(&env);
		break_ring(&env);
		env.vdev->ops->stop(env.vdev);
	} else {
		break_ring(&env);
		virtio_blk_io_end(blk);
	}
	virtio_blk_free(blk);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/keel-test-vblk.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(img_path, sizeof(img_path), "%s/disk.img", dir);
	snprintf(ro_path, sizeof(ro_path), "%s/ro.img", dir);
	make_image(img_path);
	make_image(ro_path);
	img_fd = open(img_path, O_RDONLY);

	vm = fake_vm_new(&(struct fake_vm_opts){ .mem_size = RAM_SIZE, .cpus = 2,
						 .log_cb = log_cb });

	test_config();
	test_read_only();
	test_device(false);
	/* The I/O thread reports broken rings through the VM's event loop. */
	fake_vm_start_loop(vm);
	CHECK(vm->ctx.loop);
	test_device(true);
	fake_vm_free(vm);
	close(img_fd);
	unlink(img_path);
	unlink(ro_path);
	rmdir(dir);
	return test_exit();
}
