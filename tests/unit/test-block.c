// SPDX-License-Identifier: MIT
/*
 * Disk images: opening and locking errors, and I/O through io_uring on a
 * temporary file (page cache and O_DIRECT), contents checked byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/image.h"
#include "check.h"

#define IMG_SIZE (2 * 1024 * 1024)

/* The old name of sync=data stays the same mode (API compatibility). */
_Static_assert(KEEL_SYNC_FSYNC == KEEL_SYNC_DATA && KEEL_SYNC_DATA == 1 &&
	       KEEL_SYNC_FULL == 0 && KEEL_SYNC_NONE == 2, "keel_sync_mode values");

static char dir[64];

static char *tmp_path(const char *name)
{
	static char buf[4][128];
	static int n;
	char *p = buf[n++ % 4];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static void make_file(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd;

	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, size) == (ssize_t)size);
	close(fd);
	free(buf);
}

static struct keel_storage_attachment att_for(const char *path, bool ro, keel_sync_mode sync,
					      keel_cache_mode cache)
{
	return (struct keel_storage_attachment){ .path = (char *)path, .read_only = ro,
						 .sync = sync, .cache = cache };
}

static void test_open_errors(void)
{
	struct keel_storage_attachment att;
	struct disk_image img, img2, img3;
	keel_error *err = NULL;

	att = att_for(tmp_path("missing.img"), false, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "missing.img");

	make_file(tmp_path("odd.img"), 1000);
	att = att_for(tmp_path("odd.img"), false, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "1000 bytes, not a multiple of 512");

	make_file(tmp_path("empty.img"), 0);
	att = att_for(tmp_path("empty.img"), true, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "is empty");

	att = att_for(dir, true, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "neither a regular file nor a block device");

	/* Exclusive against exclusive, shared against exclusive. */
	make_file(tmp_path("lock.img"), 8192);
	att = att_for(tmp_path("lock.img"), false, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == 0);
	CHECK(err == NULL);
	CHECK(disk_image_sector_count(&img) == 16);
	CHECK(disk_image_block_size(&img) == 512);
	CHECK(!disk_image_read_only(&img));
	CHECK(disk_image_open(&img2, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_STATE,
		  "is locked by another open file description (possibly another keel VM) for writing");
	att.read_only = true;
	CHECK(disk_image_open(&img2, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_STATE, "lock.img' is locked by another");
	disk_image_close(&img);
	disk_image_close(&img);         /* idempotent */

	/* Two readers share; a writer is refused while they hold it. */
	CHECK(disk_image_open(&img, &att, &err) == 0);
	CHECK(disk_image_open(&img2, &att, &err) == 0);
	CHECK(err == NULL);
	CHECK(disk_image_read_only(&img2));
	att.read_only = false;
	CHECK(disk_image_open(&img3, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_STATE, "for reading");
	disk_image_close(&img);
	disk_image_close(&img2);
	CHECK(disk_image_open(&img3, &att, &err) == 0);
	disk_image_close(&img3);

	/* A classic POSIX lock in another process: its pid is named. */
	{
		int to_child[2], to_parent[2];
		pid_t pid;
		char c;

		CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
		pid = fork();
		if (pid == 0) {
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
			int fd = open(tmp_path("lock.img"), O_RDWR);

			if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
				_exit(1);
			if (write(to_parent[1], "l", 1) != 1 || read(to_child[0], &c, 1) != 1)
				_exit(1);
			_exit(0);
		}
		CHECK(read(to_parent[0], &c, 1) == 1);
		CHECK(disk_image_open(&img, &att, &err) == -1);
		if (err) {
			char want[64];

			snprintf(want, sizeof(want), "locked by another process (pid %d) for writing",
				 (int)pid);
			CHECK_ERR(err, KEEL_ERR_STATE, want);
		}
		CHECK(write(to_child[1], "x", 1) == 1);
		waitpid(pid, NULL, 0);
		close(to_child[0]);
		close(to_child[1]);
		close(to_parent[0]);
		close(to_parent[1]);
	}

	att = att_for(tmp_path("lock.img"), false, (keel_sync_mode)7, KEEL_CACHE_HOST);
	CHECK(disk_image_open(&img, &att, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "unknown sync mode 7");
}

/* ------------------------------------------------------------------- I/O */

struct done_log {
	int n;
	struct disk_req *last;
};

static void on_complete(void *opaque, struct disk_req *req)
{
	struct done_log *log = opaque;

	log->n++;
	log->last = req;
}

/* Submits one request and waits for it; returns its error. */
static int run1(struct disk_ring *r, struct done_log *log, struct disk_req *req)
{
	int before = log->n;

	disk_submit(r, req);
	while (log->n == before) {
		CHECK(disk_ring_submit(r, true) == 0);
		disk_ring_reap(r);
	}
	CHECK(log->last == req);
	return req->error;
}

static int fd_for_check;

static bool file_matches(uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	bool ok = pread(fd_for_check, got, len, off) == (ssize_t)len && !memcmp(got, want, len);

	free(got);
	return ok;
}

static bool file_is_zero(uint64_t off, size_t len)
{
	uint8_t *z = calloc(1, len);
	bool ok = file_matches(off, z, len);

	free(z);
	return ok;
}

static bool file_is_pattern(uint64_t off, size_t len)
{
	uint8_t *p = malloc(len);
	bool ok;

	for (size_t i = 0; i < len; i++)
		p[i] = pattern(off + i);
	ok = file_matches(off, p, len);
	free(p);
	return ok;
}

static void test_io(keel_cache_mode cache, keel_sync_mode sync)
{
	const char *path = tmp_path("io.img");
	struct keel_storage_attachment att = att_for(path, false, sync, cache);
	struct disk_image img;
	struct disk_ring ring;
	struct done_log log = { 0 };
	keel_error *err = NULL;
	uint8_t *mem, *a, *b, *c;
	struct iovec iov[3];
	struct disk_req req;
	struct stat st;

	make_file(path, IMG_SIZE);
	if (disk_image_open(&img, &att, &err) < 0) {
		if (cache == KEEL_CACHE_DIRECT && err &&
		    keel_error_get_code(err) == KEEL_ERR_UNSUPPORTED) {
			printf("skipping O_DIRECT I/O: %s\n", keel_error_get_message(err));
			keel_error_free(err);
			return;
		}
		CHECK(!"open failed");
		if (err)
			fprintf(stderr, "%s\n", keel_error_get_message(err));
		keel_error_free(err);
		return;
	}
	fd_for_check = open(path, O_RDONLY);
	CHECK(fd_for_check >= 0);
	CHECK(disk_ring_init(&ring, &img, 128, 0, true, on_complete, NULL, &log, &err) == 0);
	CHECK(err == NULL);

	CHECK(posix_memalign((void **)&mem, 4096, 64 * 1024) == 0);
	a = mem;
	b = mem + 8192;
	c = mem + 16384;

	/* Read into three aligned buffers. */
	memset(mem, 0xee, 64 * 1024);
	iov[0] = (struct iovec){ a, 512 };
	iov[1] = (struct iovec){ b, 4096 };
	iov[2] = (struct iovec){ c, 1024 };
	req = (struct disk_req){ .op = DISK_READ, .offset = 8192, .len = 5632, .iov = iov,
				 .iovcnt = 3 };
	CHECK(run1(&ring, &log, &req) == 0);
	for (int i = 0; i < 512; i++)
		CHECK(a[i] == pattern(8192 + i));
	for (int i = 0; i < 4096; i++)
		if (b[i] != pattern(8192 + 512 + i)) {
			CHECK(b[i] == pattern(8192 + 512 + i));
			break;
		}
	for (int i = 0; i < 1024; i++)
		if (c[i] != pattern(8192 + 4608 + i)) {
			CHECK(c[i] == pattern(8192 + 4608 + i));
			break;
		}

	/* Write two buffers, check the file. */
	memset(a, 0x11, 4096);
	memset(b, 0x22, 4096);
	iov[0] = (struct iovec){ a, 4096 };
	iov[1] = (struct iovec){ b, 4096 };
	req = (struct disk_req){ .op = DISK_WRITE, .offset = 65536, .len = 8192, .iov = iov,
				 .iovcnt = 2 };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(file_matches(65536, a, 4096));
	CHECK(file_matches(65536 + 4096, b, 4096));
	CHECK(file_is_pattern(65536 - 512, 512));
	CHECK(file_is_pattern(65536 + 8192, 512));

	/* Misaligned buffers: with O_DIRECT they go through a bounce buffer. */
	memset(mem, 0x33, 8192);
	iov[0] = (struct iovec){ mem + 1, 1024 };
	iov[1] = (struct iovec){ mem + 2048 + 3, 1024 };
	req = (struct disk_req){ .op = DISK_WRITE, .offset = 131072, .len = 2048, .iov = iov,
				 .iovcnt = 2 };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(file_matches(131072, mem + 1, 1024));
	CHECK(file_is_pattern(131072 + 2048, 512));
	memset(mem, 0, 8192);
	iov[0] = (struct iovec){ mem + 5, 1536 };
	iov[1] = (struct iovec){ mem + 4096 + 7, 512 };
	req = (struct disk_req){ .op = DISK_READ, .offset = 131072 + 1024, .len = 2048,
				 .iov = iov, .iovcnt = 2 };
	CHECK(run1(&ring, &log, &req) == 0);
	for (int i = 0; i < 1024; i++)
		CHECK(mem[5 + i] == 0x33);
	for (int i = 0; i < 512; i++)
		CHECK(mem[5 + 1024 + i] == pattern(131072 + 2048 + i));
	for (int i = 0; i < 512; i++)
		CHECK(mem[4096 + 7 + i] == pattern(131072 + 2560 + i));

	/* Flush, whatever the sync mode does. */
	req = (struct disk_req){ .op = DISK_FLUSH };
	CHECK(run1(&ring, &log, &req) == 0);

	/* Discard: a hole, or nothing, but never an error; the size stays. */
	req = (struct disk_req){ .op = DISK_DISCARD, .offset = 4096, .len = 8192 };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(fstat(fd_for_check, &st) == 0 && st.st_size == IMG_SIZE);

	/* Write-zeroes without and with unmap, then forced to write zeros. */
	req = (struct disk_req){ .op = DISK_WRITE_ZEROES, .offset = 196608, .len = 4096 };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(file_is_zero(196608, 4096));
	CHECK(file_is_pattern(196608 - 512, 512) && file_is_pattern(196608 + 4096, 512));
	req = (struct disk_req){ .op = DISK_WRITE_ZEROES, .offset = 262144, .len = 8192,
				 .unmap = true };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(file_is_zero(262144, 8192));
	CHECK(file_is_pattern(262144 + 8192, 512));
	img.no_punch_hole = img.no_zero_range = true;
	req = (struct disk_req){ .op = DISK_WRITE_ZEROES, .offset = 327680,
				 .len = 17 * 65536 + 1536, .unmap = true };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(file_is_zero(327680, 17 * 65536 + 1536));
	CHECK(file_is_pattern(327680 + 17 * 65536 + 1536, 512));
	CHECK(file_is_pattern(327680 - 512, 512));
	img.no_punch_hole = img.no_zero_range = false;
	CHECK(fstat(fd_for_check, &st) == 0 && st.st_size == IMG_SIZE);

	/* Beyond the end: refused without I/O. */
	iov[0] = (struct iovec){ a, 1024 };
	req = (struct disk_req){ .op = DISK_READ, .offset = IMG_SIZE - 512, .len = 1024,
				 .iov = iov, .iovcnt = 1 };
	CHECK(run1(&ring, &log, &req) == EINVAL);
	req = (struct disk_req){ .op = DISK_WRITE_ZEROES, .offset = UINT64_MAX - 511, .len = 1024 };
	CHECK(run1(&ring, &log, &req) == EINVAL);

	/* A batch: 64 reads of 4 KiB, one submission. */
	{
		static struct disk_req reqs[64];
		static struct iovec iovs[64];
		uint8_t *big;
		int before = log.n;
		bool ok = true;

		CHECK(posix_memalign((void **)&big, 4096, 64 * 4096) == 0);
		for (int i = 0; i < 64; i++) {
			iovs[i] = (struct iovec){ big + 4096 * i, 4096 };
			reqs[i] = (struct disk_req){ .op = DISK_READ, .offset = 1572864 + 4096ULL * i,
						     .len = 4096, .iov = &iovs[i], .iovcnt = 1 };
			disk_submit(&ring, &reqs[i]);
		}
		CHECK(ring.inflight == 64);
		while (log.n < before + 64) {
			CHECK(disk_ring_submit(&ring, true) == 0);
			disk_ring_reap(&ring);
		}
		CHECK(ring.inflight == 0);
		for (int i = 0; i < 64; i++)
			ok &= reqs[i].error == 0;
		CHECK(ok);
		for (int i = 0; i < 64 * 4096 && ok; i++)
			if (big[i] != pattern(1572864 + (uint64_t)i)) {
				CHECK(big[i] == pattern(1572864 + (uint64_t)i));
				ok = false;
			}
		free(big);
	}

	disk_ring_fini(&ring);
	disk_image_close(&img);
	close(fd_for_check);

	/* Read-only: writes of every kind are refused, reads and flushes work. */
	att.read_only = true;
	CHECK(disk_image_open(&img, &att, &err) == 0);
	CHECK(disk_ring_init(&ring, &img, 8, 0, true, on_complete, NULL, &log, &err) == 0);
	iov[0] = (struct iovec){ a, 512 };
	req = (struct disk_req){ .op = DISK_WRITE, .offset = 0, .len = 512, .iov = iov,
				 .iovcnt = 1 };
	CHECK(run1(&ring, &log, &req) == EROFS);
	req = (struct disk_req){ .op = DISK_DISCARD, .offset = 0, .len = 512 };
	CHECK(run1(&ring, &log, &req) == EROFS);
	req = (struct disk_req){ .op = DISK_WRITE_ZEROES, .offset = 0, .len = 512 };
	CHECK(run1(&ring, &log, &req) == EROFS);
	req = (struct disk_req){ .op = DISK_FLUSH };
	CHECK(run1(&ring, &log, &req) == 0);
	req = (struct disk_req){ .op = DISK_READ, .offset = 0, .len = 512, .iov = iov,
				 .iovcnt = 1 };
	CHECK(run1(&ring, &log, &req) == 0);
	CHECK(a[0] == pattern(0) && a[511] == pattern(511));
	disk_ring_fini(&ring);
	disk_image_close(&img);
	free(mem);
}

/* The ring's own operations (user_data below DISK_USER_DATA_MIN): results by user_data. */
static int ev_res[8];
static bool ev_seen[8];

static void on_event(void *opaque, uint64_t ud, int res, uint32_t flags)
{
	if (ud < 8) {
		ev_res[ud] = res;
		ev_seen[ud] = true;
	}
}

static void wait_event(struct disk_ring *r, unsigned int ud)
{
	for (int i = 0; i < 100 && !ev_seen[ud]; i++) {
		CHECK(disk_ring_submit(r, true) == 0);
		disk_ring_reap(r);
	}
	CHECK(ev_seen[ud]);
}

/*
 * The kernel refuses what keel's rings are not for: operations the
 * sandbox's filters could not see (IORING_OP_OPENAT) and any other, while
 * keel's own (a poll here) go through.
 */
static void test_restrictions(void)
{
	const char *path = tmp_path("io.img");
	struct keel_storage_attachment att = att_for(path, false, KEEL_SYNC_FULL, KEEL_CACHE_HOST);
	struct disk_image img;
	struct disk_ring ring;
	struct done_log log = { 0 };
	struct io_uring_sqe *sqe;
	keel_error *err = NULL;
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	CHECK(disk_image_open(&img, &att, &err) == 0);
	CHECK(disk_ring_init(&ring, &img, 8, 3, true, on_complete, on_event, &log, &err) == 0);
	CHECK(err == NULL);
	CHECK(ring.restricted);
	sqe = disk_ring_get_sqe(&ring);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	io_uring_sqe_set_data64(sqe, 1);
	wait_event(&ring, 1);
	CHECK(ev_res[1] == -EACCES);
	sqe = disk_ring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, 2);
	wait_event(&ring, 2);
	CHECK(ev_res[2] == -EACCES);
	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	sqe = disk_ring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, efd, POLLIN);
	io_uring_sqe_set_data64(sqe, 3);
	wait_event(&ring, 3);
	CHECK(ev_res[3] > 0);
	/* No register operation either, once enabled. */
	CHECK(io_uring_register_eventfd(&ring.uring, efd) == -EACCES);
	disk_ring_fini(&ring);
	disk_image_close(&img);
	close(efd);
	printf("ok io_uring restrictions\n");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/keel-test-block.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_open_errors();
	test_io(KEEL_CACHE_HOST, KEEL_SYNC_FULL);
	test_io(KEEL_CACHE_HOST, KEEL_SYNC_DATA);
	test_io(KEEL_CACHE_HOST, KEEL_SYNC_NONE);
	test_io(KEEL_CACHE_DIRECT, KEEL_SYNC_FULL);
	test_restrictions();

	unlink(tmp_path("odd.img"));
	unlink(tmp_path("empty.img"));
	unlink(tmp_path("lock.img"));
	unlink(tmp_path("io.img"));
	rmdir(dir);
	return test_exit();
}
