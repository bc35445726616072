/* SPDX-License-Identifier: MIT */
/*
 * Disk images: raw image files and host block devices, and asynchronous
 * I/O on them through io_uring.
 *
 * A struct disk_image is the opened, locked image (no I/O state).  A struct
 * disk_ring is one io_uring instance doing I/O on one image; it is used by
 * one thread at a time (a device's I/O thread, or a test).  The caller owns
 * the requests (struct disk_req, embedded in its own request objects, so
 * nothing is allocated per request): it fills in the operation, queues
 * them with disk_submit(), hands the batch to the kernel with one
 * disk_ring_submit() and gets them back from disk_ring_reap() through the
 * ring's completion callback.
 *
 * The ring may carry the caller's own io_uring operations too (polls on
 * eventfds): their user_data must be below DISK_USER_DATA_MIN, and their
 * completions go to the ring's event callback.
 */
#ifndef KEEL_BLOCK_IMAGE_H
#define KEEL_BLOCK_IMAGE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config/objects.h"
#include "core/error.h"

#define DISK_SECTOR_SIZE 512

struct disk_image {
	char *path;
	int fd;
	bool read_only;
	bool direct;            /* opened with O_DIRECT (cache=direct) */
	bool blkdev;            /* a block device, not a regular file */
	keel_sync_mode sync;
	uint64_t size;          /* bytes, a multiple of DISK_SECTOR_SIZE */
	uint32_t block_size;    /* logical block size (what the guest should use) */
	uint32_t phys_block_size;
	/* O_DIRECT constraints: buffers and lengths of each iovec are aligned to
	 * mem_align, offsets and total lengths to offset_align. */
	uint32_t mem_align;
	uint32_t offset_align;
	/* Learned at run time: the host refused these fallocate() modes. */
	bool no_zero_range;
	bool no_punch_hole;
};

/*
 * What can be known of `att` without opening it: known sync and cache
 * modes, an existing regular file or block device with the access it
 * needs, whole sectors and not empty.  Configuration validation and
 * disk_image_open() both call it.
 */
int disk_image_check(const struct keel_storage_attachment *att, keel_error **err);

/*
 * Opens and locks the image of `att` (shared lock if read-only, exclusive
 * otherwise, as an OFD lock over the whole file).  Errors name the path and
 * the reason: missing file, not a file or block device, a size that is not
 * a multiple of 512 bytes, an empty image, the lock held elsewhere
 * (KEEL_ERR_STATE), O_DIRECT not supported.
 */
int disk_image_open(struct disk_image *img, const struct keel_storage_attachment *att,
		    keel_error **err);
/* Closes (and so unlocks) the image; idempotent. */
void disk_image_close(struct disk_image *img);

/* Capacity in 512-byte sectors. */
static inline uint64_t disk_image_sector_count(const struct disk_image *img)
{
	return img->size / DISK_SECTOR_SIZE;
}

static inline uint32_t disk_image_block_size(const struct disk_image *img)
{
	return img->block_size;
}

static inline bool disk_image_read_only(const struct disk_image *img)
{
	return img->read_only;
}

enum disk_op {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH,             /* per the image's sync mode */
	DISK_DISCARD,           /* a hint: succeeds where the host cannot discard */
	DISK_WRITE_ZEROES,
};

/* Values of user_data at or above this are disk requests. */
#define DISK_USER_DATA_MIN 4096

struct disk_req {
	/* Set by the caller before disk_submit(). */
	enum disk_op op;
	uint64_t offset;        /* bytes */
	uint64_t len;           /* bytes; for READ/WRITE the sum of the iovecs */
	struct iovec *iov;      /* READ/WRITE: the data; the array may be modified */
	unsigned int iovcnt;
	bool unmap;             /* WRITE_ZEROES: the range may be deallocated */

	/* On completion: 0 or a positive errno value. */
	int error;

	/* Private to the ring. */
	uint64_t done;          /* bytes transferred so far */
	uint8_t zmode;          /* WRITE_ZEROES: how it is being done */
	void *bounce;           /* O_DIRECT: aligned copy of misaligned data */
	struct iovec biov;      /* the bounce buffer, or a piece of zeros */
	struct disk_req *next_local;
};

struct disk_ring;
typedef void (*disk_complete_cb)(void *opaque, struct disk_req *req);
/* A completion of the caller's own operation (user_data < DISK_USER_DATA_MIN). */
typedef void (*disk_event_cb)(void *opaque, uint64_t user_data, int res, uint32_t flags);

struct disk_ring {
	struct io_uring uring;
	bool initialised;
	bool restricted;                /* the kernel refuses operations keel does not use */
	struct disk_image *img;
	disk_complete_cb complete;
	disk_event_cb event;
	void *opaque;
	unsigned int queued;            /* SQEs prepared, not yet submitted */
	unsigned int inflight;          /* disk requests not yet completed */
	struct disk_req *local_head;    /* completed without the kernel, to report */
	struct disk_req **local_tail;
	void *zeros;                    /* DISK_ZERO_CHUNK bytes of zeros, aligned */
	struct iovec zero_iov[16];
};

/*
 * Sets up an io_uring for up to `max_inflight` disk requests plus `extra`
 * operations of the caller's own, on the calling thread (it becomes the
 * ring's only submitter).  The ring is restricted to the operations keel
 * uses (reads, writes, fsync, fallocate, polls) where the kernel can
 * (Linux 5.10); with `need_restrictions` (the sandbox) a kernel that
 * cannot is an error, KEEL_ERR_UNSUPPORTED.
 */
int disk_ring_init(struct disk_ring *r, struct disk_image *img, unsigned int max_inflight,
		   unsigned int extra, bool need_restrictions, disk_complete_cb complete,
		   disk_event_cb event, void *opaque, keel_error **err);
/* Frees the ring: requests still in flight must have been reaped. */
void disk_ring_fini(struct disk_ring *r);

/*
 * Queues a request (does not enter the kernel unless the submission queue
 * is full).  Never fails: problems come back as a completion with `error`.
 */
void disk_submit(struct disk_ring *r, struct disk_req *req);
/* An SQE for the caller's own operation, or NULL (then nothing is queued). */
struct io_uring_sqe *disk_ring_get_sqe(struct disk_ring *r);
/*
 * Submits everything queued and, if `wait`, blocks until at least one
 * completion is available (returns at once if local completions are
 * pending).  Returns 0 or a negative errno value (not EINTR).
 */
int disk_ring_submit(struct disk_ring *r, bool wait);
/*
 * Calls the completion and event callbacks for everything that completed;
 * continuations (short transfers, fallbacks) are queued, not submitted.
 * Returns the number of callbacks made.
 */
unsigned int disk_ring_reap(struct disk_ring *r);

#endif
