// SPDX-License-Identifier: MIT
/*
 * Disk images (raw files and host block devices) and their I/O through
 * io_uring.
 *
 * Opening: O_RDWR, or O_RDONLY for a read-only attachment; O_DIRECT for
 * cache=direct.  The whole image is locked with an OFD lock (shared for
 * read-only, exclusive otherwise), so a second VM (or a QEMU, which uses the
 * same locks) cannot write it behind our back; the lock goes with the
 * descriptor.
 *
 * I/O: a request is one io_uring operation (READV/WRITEV straight on the
 * guest's buffers, FSYNC, FALLOCATE), except where the host makes it
 * otherwise:
 *  - O_DIRECT with buffers or lengths the host cannot take: the data goes
 *    through an aligned bounce buffer (allocated for that request only:
 *    guests that honour blk_size never get there);
 *  - a short read or write is continued where it stopped;
 *  - WRITE_ZEROES is a FALLOC_FL_PUNCH_HOLE (when the guest allows unmap)
 *    or a FALLOC_FL_ZERO_RANGE, falling back to the other and then to
 *    writing zeros when the host does not support them (remembered per
 *    image);
 *  - DISCARD on a block device is the BLKDISCARD ioctl, run synchronously
 *    (io_uring has no portable asynchronous form of it); on a file it is a
 *    hole punched.  A host that cannot discard makes DISCARD a successful
 *    no-op: it is a hint.
 *  - FLUSH follows the sync mode: fsync() (full), fdatasync() (data) or
 *    nothing (none).
 * Requests that complete without the kernel (no-op flushes, errors found
 * at submission, BLKDISCARD) are reported by the next disk_ring_reap().
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "block/image.h"
#include "core/file_lock.h"

#define DISK_ZERO_CHUNK (64 * 1024)
#define DISK_BOUNCE_MAX (64ULL << 20)   /* largest misaligned O_DIRECT request */

/* WRITE_ZEROES methods, tried in this order. */
enum {
	ZM_NONE,
	ZM_PUNCH,
	ZM_ZERO_RANGE,
	ZM_WRITE,
};

/* O_DIRECT: learns the alignment and checks that a read works. */
static int setup_direct(struct disk_image *img, keel_error **err)
{
	struct statx stx;
	void *buf;
	ssize_t n;
	uint32_t len;

	img->mem_align = img->block_size;
	img->offset_align = img->block_size;
	memset(&stx, 0, sizeof(stx));
	if (statx(img->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (!stx.stx_dio_offset_align)
			return err_set(err, KEEL_ERR_UNSUPPORTED,
				       "disk image '%s': cache=direct: its file system does not support O_DIRECT",
				       img->path);
		if (stx.stx_dio_mem_align > img->mem_align)
			img->mem_align = stx.stx_dio_mem_align;
		if (stx.stx_dio_offset_align > img->offset_align)
			img->offset_align = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align && stx.stx_dio_mem_align < img->mem_align &&
		    !img->blkdev)
			img->mem_align = stx.stx_dio_mem_align;
	}
	if (img->offset_align > 65536 || (img->offset_align & (img->offset_align - 1)))
		return err_set(err, KEEL_ERR_UNSUPPORTED,
			       "disk image '%s': cache=direct: O_DIRECT alignment of %u bytes is not supported",
			       img->path, img->offset_align);
	if (img->offset_align > img->block_size)
		img->block_size = img->offset_align;
	if (img->size % img->block_size)
		return err_set(err, KEEL_ERR_INVALID,
			       "disk image '%s' is %llu bytes, not a multiple of its O_DIRECT block size %u",
			       img->path, (unsigned long long)img->size, img->block_size);

	/* A probe: some file systems accept O_DIRECT at open and fail reads. */
	len = img->block_size;
	if (posix_memalign(&buf, 4096, len < 4096 ? 4096 : len))
		return err_set(err, KEEL_ERR_NOMEM, "out of memory probing disk image '%s'",
			       img->path);
	n = pread(img->fd, buf, len, 0);
	free(buf);
	if (n < 0 && errno == EINVAL)
		return err_set(err, KEEL_ERR_UNSUPPORTED,
			       "disk image '%s': cache=direct: an O_DIRECT read of %u bytes fails with EINVAL (the file system needs another alignment or does not support O_DIRECT)",
			       img->path, len);
	if (n < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "disk image '%s': cannot read", img->path);
	return 0;
}

/* A size the guest can use: whole sectors, not empty. */
static int check_size(const char *path, uint64_t size, keel_error **err)
{
	if (size % DISK_SECTOR_SIZE)
		return err_set(err, KEEL_ERR_INVALID, "disk image '%s' is %llu bytes, not a multiple of %d",
			       path, (unsigned long long)size, DISK_SECTOR_SIZE);
	if (!size)
		return err_set(err, KEEL_ERR_INVALID, "disk image '%s' is empty", path);
	return 0;
}

int disk_image_check(const struct keel_storage_attachment *att, keel_error **err)
{
	struct stat st;

	if (!att || !att->path || !*att->path)
		return err_set(err, KEEL_ERR_INVALID, "disk image: no path given");
	if (att->sync != KEEL_SYNC_FULL && att->sync != KEEL_SYNC_DATA &&
	    att->sync != KEEL_SYNC_NONE)
		return err_set(err, KEEL_ERR_INVALID, "disk image '%s': unknown sync mode %d",
			       att->path, (int)att->sync);
	if (att->cache != KEEL_CACHE_HOST && att->cache != KEEL_CACHE_DIRECT)
		return err_set(err, KEEL_ERR_INVALID, "disk image '%s': unknown cache mode %d",
			       att->path, (int)att->cache);
	if (stat(att->path, &st) < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "disk image '%s'", att->path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return err_set(err, KEEL_ERR_INVALID,
			       "disk image '%s' is neither a regular file nor a block device", att->path);
	if (access(att->path, att->read_only ? R_OK : R_OK | W_OK) < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "disk image '%s' is not %s",
				 att->path, att->read_only ? "readable" : "readable and writable");
	/* A block device's size needs it opened: disk_image_open() checks it. */
	return S_ISREG(st.st_mode) ? check_size(att->path, (uint64_t)st.st_size, err) : 0;
}

int disk_image_open(struct disk_image *img, const struct keel_storage_attachment *att,
		    keel_error **err)
{
	int flags = O_CLOEXEC;
	struct stat st;
	int e;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	if (disk_image_check(att, err) < 0)
		return -1;
	img->path = strdup(att->path);
	if (!img->path)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory opening disk image '%s'",
			       att->path);
	img->read_only = att->read_only;
	img->direct = att->cache == KEEL_CACHE_DIRECT;
	img->sync = att->sync;

	flags |= img->read_only ? O_RDONLY : O_RDWR;
	if (img->direct)
		flags |= O_DIRECT;
	img->fd = open(img->path, flags);
	if (img->fd < 0) {
		e = errno;
		if (e == EINVAL && img->direct)
			err_set(err, KEEL_ERR_UNSUPPORTED,
				"disk image '%s': cache=direct: its file system does not support O_DIRECT",
				img->path);
		else
			err_errno(err, err_code_from_errno(e), e, "cannot open disk image '%s'%s",
				  img->path, img->read_only ? " read-only" : " for reading and writing");
		goto fail;
	}
	if (fstat(img->fd, &st) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot stat disk image '%s'", img->path);
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
		img->block_size = DISK_SECTOR_SIZE;
		img->phys_block_size = DISK_SECTOR_SIZE;
	} else if (S_ISBLK(st.st_mode)) {
		int lbs = 0;
		unsigned int pbs = 0;

		img->blkdev = true;
		if (ioctl(img->fd, BLKGETSIZE64, &img->size) < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "cannot get the size of block device '%s'",
				  img->path);
			goto fail;
		}
		if (ioctl(img->fd, BLKSSZGET, &lbs) < 0 || lbs < DISK_SECTOR_SIZE ||
		    lbs > 65536 || (lbs & (lbs - 1)))
			lbs = DISK_SECTOR_SIZE;
		if (ioctl(img->fd, BLKPBSZGET, &pbs) < 0 || pbs < (unsigned int)lbs ||
		    pbs > 65536 || (pbs & (pbs - 1)))
			pbs = lbs;
		img->block_size = lbs;
		img->phys_block_size = pbs;
	} else {
		err_set(err, KEEL_ERR_INVALID,
			"disk image '%s' is neither a regular file nor a block device", img->path);
		goto fail;
	}
	if (file_lock(img->fd, !img->read_only, "disk image", img->path, err) < 0)
		goto fail;
	if (check_size(img->path, img->size, err) < 0)
		goto fail;
	if (img->size % img->block_size) {
		err_set(err, KEEL_ERR_INVALID,
			"disk image '%s' is %llu bytes, not a multiple of its block size %u",
			img->path, (unsigned long long)img->size, img->block_size);
		goto fail;
	}
	if (img->direct && setup_direct(img, err) < 0)
		goto fail;
	if (img->phys_block_size < img->block_size)
		img->phys_block_size = img->block_size;
	return 0;
fail:
	disk_image_close(img);
	return -1;
}

void disk_image_close(struct disk_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
	free(img->path);
	img->path = NULL;
}

/* ------------------------------------------------------------------ rings */

static unsigned int pow2_at_least(unsigned int n)
{
	unsigned int p = 1;

	while (p < n && p < (1U << 30))
		p <<= 1;
	return p;
}

/*
 * The only operations a disk ring may carry: the kernel refuses any other
 * (IORING_OP_OPENAT, _CONNECT, ...), which the sandbox's filters could not
 * see (io_uring operations are not system calls).  No SQE flags either.
 */
static const uint8_t ring_ops[] = {
	IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV, IORING_OP_WRITEV,
	IORING_OP_FSYNC, IORING_OP_FALLOCATE, IORING_OP_POLL_ADD,
};

/*
 * io_uring_register(2) itself: liburing 2.3 (Debian 12) declares
 * io_uring_register_restrictions() and io_uring_enable_rings() but does
 * not export them.  Returns 0 or a negative errno value.
 */
static int ring_register(struct io_uring *ring, unsigned int op, const void *arg,
			 unsigned int nr)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, nr) < 0 ? -errno : 0;
}

static int enable_ring(struct io_uring *ring)
{
	return ring_register(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

/* Registers the restrictions on a ring created disabled, then enables it. */
static int restrict_ring(struct io_uring *ring)
{
	struct io_uring_restriction res[sizeof(ring_ops)];
	int ret;

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ring_ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ring_ops[i];
	}
	ret = ring_register(ring, IORING_REGISTER_RESTRICTIONS, res, sizeof(ring_ops));
	if (ret < 0)
		return ret;
	return enable_ring(ring);
}

static int ring_setup(struct disk_ring *r, unsigned int sq, unsigned int cq, unsigned int extra_flags)
{
	static const unsigned int try_flags[] = {
#if defined(IORING_SETUP_DEFER_TASKRUN) && defined(IORING_SETUP_SINGLE_ISSUER)
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
		IORING_SETUP_COOP_TASKRUN,
#endif
		0,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(try_flags) / sizeof(try_flags[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | try_flags[i] | extra_flags;
		p.cq_entries = cq;
		ret = io_uring_queue_init_params(sq, &r->uring, &p);
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

int disk_ring_init(struct disk_ring *r, struct disk_image *img, unsigned int max_inflight,
		   unsigned int extra, bool need_restrictions, disk_complete_cb complete,
		   disk_event_cb event, void *opaque, keel_error **err)
{
	unsigned int total = max_inflight + extra, sq, cq;
	int ret;

	memset(r, 0, sizeof(*r));
	r->img = img;
	r->complete = complete;
	r->event = event;
	r->opaque = opaque;
	r->local_tail = &r->local_head;

	/* The SQ holds one batch; the CQ every possible completion at once. */
	sq = pow2_at_least(total < 1024 ? total : 1024);
	if (sq < 8)
		sq = 8;
	cq = pow2_at_least(2 * total);
	if (cq < 2 * sq)
		cq = 2 * sq;
	/*
	 * Created disabled (IORING_SETUP_R_DISABLED, Linux 5.10) to register
	 * its restrictions first; the thread that enables it is its submitter
	 * (SINGLE_ISSUER).  Older kernels refuse the flag: the ring is then
	 * unrestricted, which the sandbox does not accept.
	 */
	r->restricted = true;
	ret = ring_setup(r, sq, cq, IORING_SETUP_R_DISABLED);
	if (ret == -EINVAL) {
		if (need_restrictions)
			return err_set(err, KEEL_ERR_UNSUPPORTED,
				       "disk image '%s': the sandbox needs io_uring restrictions (IORING_SETUP_R_DISABLED, Linux 5.10), which this kernel lacks",
				       img->path);
		r->restricted = false;
		ret = ring_setup(r, sq, cq, 0);
	}
	if (ret < 0)
		return err_errno(err, ret == -EPERM || ret == -EACCES ? KEEL_ERR_PERMISSION
				 : ret == -ENOSYS ? KEEL_ERR_UNSUPPORTED : err_code_from_errno(-ret),
				 -ret, "disk image '%s': cannot set up an io_uring of %u entries",
				 img->path, sq);
	if (r->restricted) {
		ret = restrict_ring(&r->uring);
		if (ret < 0 && need_restrictions) {
			io_uring_queue_exit(&r->uring);
			return err_errno(err, KEEL_ERR_UNSUPPORTED, -ret,
					 "disk image '%s': cannot restrict its io_uring to keel's operations",
					 img->path);
		}
		if (ret < 0) {
			r->restricted = false;
			ret = enable_ring(&r->uring);
			if (ret < 0) {
				io_uring_queue_exit(&r->uring);
				return err_errno(err, err_code_from_errno(-ret), -ret,
						 "disk image '%s': cannot enable its io_uring",
						 img->path);
			}
		}
	}
	if (posix_memalign(&r->zeros, 4096, DISK_ZERO_CHUNK)) {
		io_uring_queue_exit(&r->uring);
		return err_set(err, KEEL_ERR_NOMEM, "out of memory setting up I/O for '%s'",
			       img->path);
	}
	memset(r->zeros, 0, DISK_ZERO_CHUNK);
	for (size_t i = 0; i < sizeof(r->zero_iov) / sizeof(r->zero_iov[0]); i++)
		r->zero_iov[i] = (struct iovec){ r->zeros, DISK_ZERO_CHUNK };
	r->initialised = true;
	return 0;
}

void disk_ring_fini(struct disk_ring *r)
{
	if (!r->initialised)
		return;
	io_uring_queue_exit(&r->uring);
	free(r->zeros);
	r->zeros = NULL;
	r->initialised = false;
}

struct io_uring_sqe *disk_ring_get_sqe(struct disk_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	if (!sqe) {
		/* The SQ is full: hand this part of the batch over now. */
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
	}
	if (sqe)
		r->queued++;
	return sqe;
}

static void complete_local(struct disk_ring *r, struct disk_req *req, int error)
{
	req->error = error;
	req->next_local = NULL;
	*r->local_tail = req;
	r->local_tail = &req->next_local;
}

static void finish(struct disk_ring *r, struct disk_req *req, int error)
{
	free(req->bounce);
	req->bounce = NULL;
	req->error = error;
	r->inflight--;
	r->complete(r->opaque, req);
}

static bool dio_aligned(const struct disk_image *img, const struct disk_req *req)
{
	uint64_t omask = img->offset_align - 1;
	uintptr_t mmask = img->mem_align - 1;

	if ((req->offset | req->len) & omask)
		return false;
	for (unsigned int i = 0; i < req->iovcnt; i++)
		if (((uintptr_t)req->iov[i].iov_base & mmask) || (req->iov[i].iov_len & omask))
			return false;
	return true;
}

/* Queues the next (or only) READ/WRITE operation of `req`. */
static void prep_rw(struct disk_ring *r, struct disk_req *req, bool write)
{
	struct io_uring_sqe *sqe = disk_ring_get_sqe(r);
	const struct iovec *iov = req->bounce ? &req->biov : req->iov;
	unsigned int cnt = req->bounce ? 1 : req->iovcnt;
	uint64_t off = req->offset + req->done;

	if (!sqe) {
		complete_local(r, req, EAGAIN);
		return;
	}
	if (cnt == 1 && write)
		io_uring_prep_write(sqe, r->img->fd, iov->iov_base, iov->iov_len, off);
	else if (cnt == 1)
		io_uring_prep_read(sqe, r->img->fd, iov->iov_base, iov->iov_len, off);
	else if (write)
		io_uring_prep_writev(sqe, r->img->fd, iov, cnt, off);
	else
		io_uring_prep_readv(sqe, r->img->fd, iov, cnt, off);
	io_uring_sqe_set_data(sqe, req);
}

static void prep_fallocate(struct disk_ring *r, struct disk_req *req, int mode)
{
	struct io_uring_sqe *sqe = disk_ring_get_sqe(r);

	if (!sqe) {
		complete_local(r, req, EAGAIN);
		return;
	}
	io_uring_prep_fallocate(sqe, r->img->fd, mode, req->offset, req->len);
	io_uring_sqe_set_data(sqe, req);
}

/* Writes zeros: up to 16 chunks of the shared zero buffer per operation. */
static void prep_zero_write(struct disk_ring *r, struct disk_req *req)
{
	uint64_t left = req->len - req->done;
	struct io_uring_sqe *sqe = disk_ring_get_sqe(r);
	uint64_t off = req->offset + req->done;

	if (!sqe) {
		complete_local(r, req, EAGAIN);
		return;
	}
	if (left >= DISK_ZERO_CHUNK) {
		uint64_t n = left / DISK_ZERO_CHUNK;

		if (n > sizeof(r->zero_iov) / sizeof(r->zero_iov[0]))
			n = sizeof(r->zero_iov) / sizeof(r->zero_iov[0]);
		io_uring_prep_writev(sqe, r->img->fd, r->zero_iov, (unsigned int)n, off);
	} else {
		io_uring_prep_write(sqe, r->img->fd, r->zeros, (unsigned int)left, off);
	}
	io_uring_sqe_set_data(sqe, req);
}

/* Starts (or continues with the next method) a WRITE_ZEROES. */
static void prep_zeroes(struct disk_ring *r, struct disk_req *req)
{
	struct disk_image *img = r->img;

	for (;;) {
		req->zmode++;
		if (req->zmode == ZM_PUNCH && req->unmap && !img->no_punch_hole) {
			prep_fallocate(r, req, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
			return;
		}
		if (req->zmode == ZM_ZERO_RANGE && !img->no_zero_range) {
			prep_fallocate(r, req, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
			return;
		}
		if (req->zmode >= ZM_WRITE) {
			req->zmode = ZM_WRITE;
			req->done = 0;
			prep_zero_write(r, req);
			return;
		}
	}
}

static void discard_blkdev(struct disk_ring *r, struct disk_req *req)
{
	uint64_t range[2] = { req->offset, req->len };

	if (ioctl(r->img->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP)
		complete_local(r, req, errno);
	else
		complete_local(r, req, 0);
}

void disk_submit(struct disk_ring *r, struct disk_req *req)
{
	struct disk_image *img = r->img;

	req->error = 0;
	req->done = 0;
	req->zmode = ZM_NONE;
	req->bounce = NULL;
	r->inflight++;

	if (req->op != DISK_READ && req->op != DISK_FLUSH && img->read_only) {
		complete_local(r, req, EROFS);
		return;
	}
	if (req->op != DISK_FLUSH &&
	    (req->offset > img->size || req->len > img->size - req->offset)) {
		complete_local(r, req, EINVAL);
		return;
	}

	switch (req->op) {
	case DISK_READ:
	case DISK_WRITE:
		if (!req->len) {
			complete_local(r, req, 0);
			return;
		}
		if (img->direct && !dio_aligned(img, req)) {
			uint64_t blen = req->len;

			if (blen > DISK_BOUNCE_MAX || (req->offset | blen) & (img->offset_align - 1)) {
				complete_local(r, req, EINVAL);
				return;
			}
			if (posix_memalign(&req->bounce, img->mem_align < 4096 ? 4096 : img->mem_align,
					   blen)) {
				req->bounce = NULL;
				complete_local(r, req, ENOMEM);
				return;
			}
			req->biov = (struct iovec){ req->bounce, blen };
			if (req->op == DISK_WRITE) {
				uint8_t *p = req->bounce;

				for (unsigned int i = 0; i < req->iovcnt; i++) {
					memcpy(p, req->iov[i].iov_base, req->iov[i].iov_len);
					p += req->iov[i].iov_len;
				}
			}
		}
		prep_rw(r, req, req->op == DISK_WRITE);
		return;
	case DISK_FLUSH: {
		struct io_uring_sqe *sqe;

		if (img->sync == KEEL_SYNC_NONE || img->read_only) {
			complete_local(r, req, 0);
			return;
		}
		sqe = disk_ring_get_sqe(r);
		if (!sqe) {
			complete_local(r, req, EAGAIN);
			return;
		}
		io_uring_prep_fsync(sqe, img->fd,
				    img->sync == KEEL_SYNC_DATA ? IORING_FSYNC_DATASYNC : 0);
		io_uring_sqe_set_data(sqe, req);
		return;
	}
	case DISK_DISCARD:
		if (!req->len) {
			complete_local(r, req, 0);
		} else if (img->blkdev) {
			discard_blkdev(r, req);
		} else if (img->no_punch_hole) {
			complete_local(r, req, 0);
		} else {
			prep_fallocate(r, req, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
		}
		return;
	case DISK_WRITE_ZEROES:
		if (!req->len) {
			complete_local(r, req, 0);
			return;
		}
		prep_zeroes(r, req);
		return;
	}
	complete_local(r, req, EINVAL);
}

/* Advances an iovec array past `n` bytes. */
static void iov_advance(struct iovec **iov, unsigned int *cnt, uint64_t n)
{
	while (*cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt && n) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

static void copy_out(struct disk_req *req)
{
	const uint8_t *p = req->bounce;

	for (unsigned int i = 0; i < req->iovcnt; i++) {
		memcpy(req->iov[i].iov_base, p, req->iov[i].iov_len);
		p += req->iov[i].iov_len;
	}
}

static void handle_cqe(struct disk_ring *r, struct disk_req *req, int res)
{
	struct disk_image *img = r->img;

	switch (req->op) {
	case DISK_READ:
	case DISK_WRITE:
		if (res < 0) {
			finish(r, req, -res);
			return;
		}
		if (res == 0) {         /* the image shrank under us */
			finish(r, req, EIO);
			return;
		}
		req->done += (unsigned int)res;
		if (req->done < req->len) {
			if (req->bounce) {
				req->biov.iov_base = (uint8_t *)req->bounce + req->done;
				req->biov.iov_len = req->len - req->done;
			} else {
				iov_advance(&req->iov, &req->iovcnt, (unsigned int)res);
			}
			prep_rw(r, req, req->op == DISK_WRITE);
			return;
		}
		if (req->bounce && req->op == DISK_READ)
			copy_out(req);
		finish(r, req, 0);
		return;
	case DISK_FLUSH:
		finish(r, req, res < 0 ? -res : 0);
		return;
	case DISK_DISCARD:
		if (res == -EOPNOTSUPP) {
			img->no_punch_hole = true;
			res = 0;
		}
		finish(r, req, res < 0 ? -res : 0);
		return;
	case DISK_WRITE_ZEROES:
		if (req->zmode == ZM_WRITE) {
			if (res <= 0) {
				finish(r, req, res < 0 ? -res : EIO);
				return;
			}
			req->done += (unsigned int)res;
			if (req->done < req->len)
				prep_zero_write(r, req);
			else
				finish(r, req, 0);
			return;
		}
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			if (res == -EOPNOTSUPP) {
				if (req->zmode == ZM_PUNCH)
					img->no_punch_hole = true;
				else
					img->no_zero_range = true;
			}
			prep_zeroes(r, req);
			return;
		}
		finish(r, req, res < 0 ? -res : 0);
		return;
	}
	finish(r, req, EINVAL);
}

unsigned int disk_ring_reap(struct disk_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;

	for (;;) {
		while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
			uint64_t ud = cqe->user_data;
			int res = cqe->res;
			uint32_t flags = cqe->flags;

			io_uring_cqe_seen(&r->uring, cqe);
			n++;
			if (ud >= DISK_USER_DATA_MIN)
				handle_cqe(r, (struct disk_req *)(uintptr_t)ud, res);
			else if (r->event)
				r->event(r->opaque, ud, res, flags);
		}
		if (!r->local_head)
			break;
		while (r->local_head) {
			struct disk_req *req = r->local_head;

			r->local_head = req->next_local;
			if (!r->local_head)
				r->local_tail = &r->local_head;
			n++;
			finish(r, req, req->error);
		}
	}
	return n;
}

int disk_ring_submit(struct disk_ring *r, bool wait)
{
	int ret;

	if (r->local_head)
		wait = false;
	do {
		if (wait)
			ret = io_uring_submit_and_wait(&r->uring, 1);
		else
			ret = io_uring_submit_and_get_events(&r->uring);
	} while (ret == -EINTR);
	if (ret >= 0) {
		r->queued = 0;
		return 0;
	}
	/* Completions must be reaped before more can be submitted: not an error. */
	if (ret == -EBUSY || ret == -EAGAIN)
		return 0;
	return ret;
}
