// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.x, 5.2) over a disk image (block/image.c).
 *
 * Threading: each device has one I/O thread (keel-blkN), from its creation
 * to its destruction, which serves all its request queues with one
 * io_uring, set up on that thread before its sandbox filter (which forbids
 * io_uring_setup) and kept for the device's life.  ops->start (the driver
 * set DRIVER_OK, on a vCPU thread) and ops->stop (reset, on a vCPU or the
 * event thread) do not start or end a thread, which a filtered thread
 * could not do: they ask the I/O thread through a control channel (a
 * request under ctl_lock, an eventfd the ring polls, an answer through
 * ctl_cond) to start or stop serving the queues.  The thread blocks in one
 * place only, io_uring_submit_and_wait(): the kick eventfds of the queues
 * are watched by multishot IORING_OP_POLL_ADD operations on that same ring
 * (re-armed if the kernel ends them), next to the disk I/O and the control
 * eventfd; between a stop and the next start kicks are reaped and ignored.
 * Each turn of the loop while the queues are served:
 *   1. submits everything queued since the last turn and waits;
 *   2. reaps completions: kicks mark their queue, finished I/O writes the
 *      status byte and goes to the used ring;
 *   3. for every kicked queue: with kicks disabled, pops every available
 *      chain, validates it and queues its I/O (one SQE, no system call),
 *      re-enables kicks and goes again if more arrived meanwhile;
 *   4. notifies each queue that had buffers used, once (virtq_should_notify:
 *      with EVENT_IDX most of these raise nothing).
 *   5. if that was the last request in flight, busy-polls the queues for
 *      poll_ns with kicks suppressed (poll_queues): the next request of a
 *      guest waiting on the last one costs no exit and no wake-up.
 * The thread never takes vdev->lock (ops->start/stop run with it held and
 * stop waits for the thread): it signals interrupts with virtio_dev_notify()
 * (lock-free) and hands a broken ring to the VM's event loop,
 * which calls virtio_dev_fail() (blk_fail).
 * So a batch of requests costs one io_uring_enter() and an interrupt at most
 * per queue.  vCPU threads never do I/O: a kick is an ioeventfd write.
 * One thread per device rather than per queue: I/O is asynchronous, so the
 * thread only validates and moves descriptors; queues are still separate
 * rings to the guest (no lock between its CPUs).
 *
 * Requests are preallocated: VIRTIO_BLK_QUEUE_SIZE per queue, which is as
 * many as the guest can have in flight; the guest's buffers are handed to
 * the kernel as they are (iovecs into guest RAM), no copies.  A queue whose
 * requests are all in flight (only a misbehaving guest gets there) is left
 * alone until some complete.
 *
 * Errors: a malformed request (short header, bad sector range, length not a
 * multiple of 512, too many segments) fails with VIRTIO_BLK_S_IOERR and a
 * warning in the log; writes to a read-only disk fail the same way, logged
 * at debug level only.  A chain without a writable byte for the status is
 * returned unused (length 0) with a warning.  Only a broken ring (what
 * virtq_pop() refuses) fails the device: NEEDS_RESET via virtio_dev_fail().
 *
 * Stop (reset): the thread stops taking requests, waits for the I/O in
 * flight to finish (so nothing is written into guest memory afterwards),
 * pushes nothing more to the rings, and answers; it then waits for the
 * next start, or for the device's destruction, which ends it.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/image.h"
#include "core/loop.h"
#include "core/thread.h"
#include "core/util.h"
#include "core/devctx.h"
#include "core/le.h"
#include "virtio/blk.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define BLK_HDR_SIZE 16
#define BLK_CTL_UD   (VIRTIO_MAX_QUEUES + 1)    /* user_data of the control poll */

struct blk_segment {            /* virtio_blk_discard_write_zeroes */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk_req {
	struct disk_req io;             /* first: the ring hands it back */
	uint8_t *status;                /* in guest RAM */
	uint32_t used_len;              /* on success, incl. the status byte */
	uint16_t head;
	uint16_t queue;
	uint32_t type;
	uint16_t nseg, seg;             /* DISCARD / WRITE_ZEROES */
	union {
		struct iovec iov[VIRTIO_BLK_SEG_MAX];
		struct blk_segment segs[VIRTIO_BLK_MAX_DISCARD_SEG];
	};
};

struct blk_queue {
	struct blk_req *reqs;           /* VIRTIO_BLK_QUEUE_SIZE */
	uint16_t *free;                 /* stack of free request indices */
	unsigned int nr_free;
	bool throttled;                 /* all requests in flight: pop later */
};

struct virtio_blk {
	struct virtio_dev vdev;
	char name[64];
	struct disk_image img;
	uint64_t capacity;              /* 512-byte sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct log_ratelimit warn_rl;   /* guest-triggered warnings (I/O thread) */
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
	unsigned int nr_queues;
	struct blk_queue queues[VIRTIO_BLK_MAX_QUEUES];
	struct virtq_chain *chain;      /* scratch for virtq_pop() */
	struct disk_ring ring;

	/* I/O state, owned by the thread doing the I/O. */
	uint64_t kick_pending;          /* queues to look at */
	uint64_t notify_pending;        /* queues with buffers used */
	uint64_t poll_armed;            /* queues whose kick poll is live */
	bool multishot;                 /* kick polls are multishot */
	bool ctl_armed;                 /* the control poll is in the ring */
	bool ctl_pending;               /* ... and fired */
	bool stopping;                  /* no new requests; drain */
	bool failed;                    /* the guest broke a ring */
	bool running;                   /* the thread serves the queues (start..stop) */
	bool broken;                    /* the ring failed: the thread serves nothing */
	bool exit;                      /* the thread ends */
	bool io_active;
	uint64_t poll_ns;               /* busy-poll window, 0: off */

	/* The thread and its control channel. */
	int index;
	int ctl_fd;                     /* eventfd: a request waits */
	pthread_t thread;
	bool threaded;                  /* the I/O runs on `thread` (set before it starts) */
	bool thread_live;
	bool started;                   /* ops->start succeeded, no stop since (vdev->lock) */
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_cond;
	int ctl_req;                    /* BLK_CTL_*; NONE: the thread takes the next */
	unsigned int ctl_seq;           /* requests answered */
	int ctl_rc;
};

enum { BLK_CTL_NONE, BLK_CTL_START, BLK_CTL_STOP, BLK_CTL_EXIT };

static inline struct virtio_blk *to_blk(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_blk, vdev);
}

struct virtio_dev *virtio_blk_vdev(struct virtio_blk *blk)
{
	return &blk->vdev;
}

/* -------------------------------------------------------------- config space */

/* struct virtio_blk_config (5.2.4), little-endian. */
static void build_config(struct virtio_blk *blk)
{
	uint8_t *c = blk->config;
	uint32_t bs = disk_image_block_size(&blk->img);
	unsigned int exp = 0;

	while ((bs << exp) < blk->img.phys_block_size && exp < 15)
		exp++;
	memset(c, 0, sizeof(blk->config));
	put_le64(c + 0, blk->capacity);                 /* capacity */
	put_le32(c + 8, 0);                             /* size_max (not offered) */
	put_le32(c + 12, VIRTIO_BLK_SEG_MAX);           /* seg_max */
	/* 16: geometry (not offered) */
	put_le32(c + 20, bs);                           /* blk_size */
	c[24] = (uint8_t)exp;                           /* topology.physical_block_exp */
	c[25] = 0;                                      /* alignment_offset */
	put_le16(c + 26, 1);                            /* min_io_size (blocks) */
	put_le32(c + 28, 0);                            /* opt_io_size */
	c[32] = 1;                                      /* writeback: a write cache, flushed */
	put_le16(c + 34, (uint16_t)blk->nr_queues);     /* num_queues */
	put_le32(c + 36, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(c + 40, VIRTIO_BLK_MAX_DISCARD_SEG);
	put_le32(c + 44, bs / DISK_SECTOR_SIZE);        /* discard_sector_alignment */
	put_le32(c + 48, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(c + 52, VIRTIO_BLK_MAX_DISCARD_SEG);
	c[56] = 1;                                      /* write_zeroes_may_unmap */
}

static void blk_config_read(struct virtio_dev *vdev, uint32_t offset, void *data,
			    unsigned int len)
{
	struct virtio_blk *blk = to_blk(vdev);

	memset(data, 0, len);
	if (offset < sizeof(blk->config))
		memcpy(data, blk->config + offset,
		       len < sizeof(blk->config) - offset ? len : sizeof(blk->config) - offset);
}

static void blk_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned int len)
{
	/* writeback is writable only with CONFIG_WCE, which is not offered. */
	log_msg(&vdev->ctx->log, KEEL_LOG_DEBUG, "%s: ignored write of %u byte(s) at config offset %u",
	       vdev->name, len, offset);
}

/* --------------------------------------------------------------- requests */

static struct blk_req *req_get(struct blk_queue *bq)
{
	if (!bq->nr_free)
		return NULL;
	return &bq->reqs[bq->free[--bq->nr_free]];
}

static void req_put(struct blk_queue *bq, struct blk_req *req)
{
	bq->free[bq->nr_free++] = (uint16_t)(req - bq->reqs);
}

/* Writes the status, returns the chain to the guest, recycles the request. */
static void req_done(struct virtio_blk *blk, struct blk_req *req, uint8_t status)
{
	struct blk_queue *bq = &blk->queues[req->queue];

	if (!blk->stopping) {
		*(volatile uint8_t *)req->status = status;
		virtq_push(&blk->vdev.vqs[req->queue], req->head,
			   status == VIRTIO_BLK_S_OK ? req->used_len : 1);
		blk->notify_pending |= 1ULL << req->queue;
	}
	req_put(bq, req);
	if (bq->throttled) {
		bq->throttled = false;
		blk->kick_pending |= 1ULL << req->queue;
	}
}

/* The guest can send bad requests at will: at most BLK_WARN_BURST warnings a second. */
#define BLK_WARN_BURST 50
#define guest_warn(blk, req, fmt, ...) \
	log_limited(&(blk)->vdev.ctx->log, &(blk)->warn_rl, KEEL_LOG_WARNING, \
		       "%s: queue %u, request %u: " fmt, (blk)->name, (req)->queue, \
		       (req)->head, ##__VA_ARGS__)

static const char *type_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN: return "read";
	case VIRTIO_BLK_T_OUT: return "write";
	case VIRTIO_BLK_T_FLUSH: return "flush";
	case VIRTIO_BLK_T_DISCARD: return "discard";
	case VIRTIO_BLK_T_WRITE_ZEROES: return "write-zeroes";
	default: return "request";
	}
}

/* Overflow-safe: [sector, sector + count) inside the disk. */
static bool range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t count)
{
	return sector <= blk->capacity && count <= blk->capacity - sector;
}

/* Called by the ring when the I/O of a request finished. */
static void io_complete(void *opaque, struct disk_req *io)
{
	struct virtio_blk *blk = opaque;
	struct blk_req *req = container_of(io, struct blk_req, io);

	if (io->error) {
		if (io->error == EROFS)
			log_msg(&blk->vdev.ctx->log, KEEL_LOG_DEBUG, "%s: %s on a read-only disk refused",
			       blk->name, type_name(req->type));
		else
			log_msg(&blk->vdev.ctx->log, KEEL_LOG_WARNING,
			       "%s: %s of %llu bytes at byte %llu of '%s' failed: %s", blk->name,
			       type_name(req->type), (unsigned long long)io->len,
			       (unsigned long long)io->offset, blk->img.path, strerror(io->error));
		req_done(blk, req, VIRTIO_BLK_S_IOERR);
		return;
	}
	if ((req->type == VIRTIO_BLK_T_DISCARD || req->type == VIRTIO_BLK_T_WRITE_ZEROES) &&
	    ++req->seg < req->nseg && !blk->stopping) {
		const struct blk_segment *s = &req->segs[req->seg];

		io->offset = s->sector * DISK_SECTOR_SIZE;
		io->len = (uint64_t)s->num_sectors * DISK_SECTOR_SIZE;
		io->unmap = s->flags & VIRTIO_BLK_WZ_F_UNMAP;
		disk_submit(&blk->ring, io);
		return;
	}
	req_done(blk, req, VIRTIO_BLK_S_OK);
}

/*
 * The data buffers of a chain as iovecs: the readable part after the header
 * (OUT) or the writable part before the status byte (IN).  Returns the
 * number of iovecs or -1 if there are more than `max`.
 */
static int data_iov(const struct virtq_chain *chain, bool in, struct iovec *iov,
		    unsigned int max, uint64_t *len)
{
	const struct iovec *src = in ? chain->iov + chain->nr_out : chain->iov;
	unsigned int n = in ? chain->nr_in : chain->nr_out;
	uint64_t skip = in ? 0 : BLK_HDR_SIZE;
	uint64_t total = in ? chain->in_len - 1 : chain->out_len - BLK_HDR_SIZE;
	uint64_t left = total;
	unsigned int cnt = 0;

	for (unsigned int i = 0; i < n && left; i++) {
		size_t l = src[i].iov_len;
		uint8_t *base = src[i].iov_base;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		base += skip;
		l -= skip;
		skip = 0;
		if (l > left)
			l = left;
		if (cnt == max)
			return -1;
		iov[cnt].iov_base = base;
		iov[cnt].iov_len = l;
		cnt++;
		left -= l;
	}
	*len = total;
	return (int)cnt;
}

/* Validates one request and starts its I/O (or completes it at once). */
static void handle_chain(struct virtio_blk *blk, unsigned int q, struct blk_req *req,
			 const struct virtq_chain *chain)
{
	const struct iovec *last;
	struct {
		uint32_t type;
		uint32_t reserved;
		uint64_t sector;
	} hdr;
	uint64_t sector, len;
	int n;

	req->head = chain->head;
	req->queue = (uint16_t)q;
	req->type = UINT32_MAX;

	/* The status byte: the last byte of the writable part. */
	if (!chain->nr_in || !chain->in_len) {
		guest_warn(blk, req, "no writable byte for the status: request dropped");
		virtq_push(&blk->vdev.vqs[q], chain->head, 0);
		blk->notify_pending |= 1ULL << q;
		req_put(&blk->queues[q], req);
		return;
	}
	last = &chain->iov[chain->nr_out + chain->nr_in - 1];
	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	req->used_len = 1;

	if (chain->out_len < BLK_HDR_SIZE) {
		guest_warn(blk, req, "readable part of %llu bytes is shorter than the %d-byte header",
			   (unsigned long long)chain->out_len, BLK_HDR_SIZE);
		req_done(blk, req, VIRTIO_BLK_S_IOERR);
		return;
	}
	virtq_chain_read(chain, 0, &hdr, sizeof(hdr));
	req->type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = req->type == VIRTIO_BLK_T_IN;

		if (!in && blk->img.read_only) {
			log_msg(&blk->vdev.ctx->log, KEEL_LOG_DEBUG,
			       "%s: write to sector %llu of a read-only disk refused", blk->name,
			       (unsigned long long)sector);
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		n = data_iov(chain, in, req->iov, VIRTIO_BLK_SEG_MAX, &len);
		if (n < 0) {
			guest_warn(blk, req, "%s has more than %d data buffers (seg_max)",
				   type_name(req->type), VIRTIO_BLK_SEG_MAX);
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (len % DISK_SECTOR_SIZE) {
			guest_warn(blk, req, "%s of %llu bytes: not a multiple of %d",
				   type_name(req->type), (unsigned long long)len, DISK_SECTOR_SIZE);
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (!range_ok(blk, sector, len / DISK_SECTOR_SIZE)) {
			guest_warn(blk, req, "%s of %llu sector(s) at sector %llu: beyond the disk's %llu sectors",
				   type_name(req->type), (unsigned long long)(len / DISK_SECTOR_SIZE),
				   (unsigned long long)sector, (unsigned long long)blk->capacity);
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		req->used_len = in ? (uint32_t)len + 1 : 1;
		req->io = (struct disk_req){
			.op = in ? DISK_READ : DISK_WRITE,
			.offset = sector * DISK_SECTOR_SIZE,
			.len = len,
			.iov = req->iov,
			.iovcnt = (unsigned int)n,
		};
		disk_submit(&blk->ring, &req->io);
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		req->io = (struct disk_req){ .op = DISK_FLUSH };
		disk_submit(&blk->ring, &req->io);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		size_t room = chain->in_len - 1;

		if (room > VIRTIO_BLK_ID_BYTES)
			room = VIRTIO_BLK_ID_BYTES;
		virtq_chain_write(chain, 0, blk->serial, room);
		req->used_len = (uint32_t)room + 1;
		req_done(blk, req, VIRTIO_BLK_S_OK);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool discard = req->type == VIRTIO_BLK_T_DISCARD;
		uint64_t bytes = chain->out_len - BLK_HDR_SIZE;

		if (blk->img.read_only) {
			log_msg(&blk->vdev.ctx->log, KEEL_LOG_DEBUG, "%s: %s on a read-only disk refused",
			       blk->name, type_name(req->type));
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (!bytes || bytes % sizeof(struct blk_segment) ||
		    bytes / sizeof(struct blk_segment) > VIRTIO_BLK_MAX_DISCARD_SEG) {
			guest_warn(blk, req, "%s with %llu bytes of segments: not 1..%d segments of %zu bytes",
				   type_name(req->type), (unsigned long long)bytes,
				   VIRTIO_BLK_MAX_DISCARD_SEG, sizeof(struct blk_segment));
			req_done(blk, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		req->nseg = (uint16_t)(bytes / sizeof(struct blk_segment));
		req->seg = 0;
		virtq_chain_read(chain, BLK_HDR_SIZE, req->segs, bytes);
		for (unsigned int i = 0; i < req->nseg; i++) {
			struct blk_segment *s = &req->segs[i];

			s->sector = le64toh(s->sector);
			s->num_sectors = le32toh(s->num_sectors);
			s->flags = le32toh(s->flags);
			if (s->flags & ~(uint32_t)(discard ? 0 : VIRTIO_BLK_WZ_F_UNMAP)) {
				guest_warn(blk, req, "%s segment %u has unsupported flags 0x%x",
					   type_name(req->type), i, s->flags);
				req_done(blk, req, VIRTIO_BLK_S_UNSUPP);
				return;
			}
			if (s->num_sectors > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
			    !range_ok(blk, s->sector, s->num_sectors)) {
				guest_warn(blk, req, "%s segment %u: %u sector(s) at sector %llu: beyond the disk's %llu sectors or the limit of %u",
					   type_name(req->type), i, s->num_sectors,
					   (unsigned long long)s->sector,
					   (unsigned long long)blk->capacity,
					   VIRTIO_BLK_MAX_DISCARD_SECTORS);
				req_done(blk, req, VIRTIO_BLK_S_IOERR);
				return;
			}
		}
		req->io = (struct disk_req){
			.op = discard ? DISK_DISCARD : DISK_WRITE_ZEROES,
			.offset = req->segs[0].sector * DISK_SECTOR_SIZE,
			.len = (uint64_t)req->segs[0].num_sectors * DISK_SECTOR_SIZE,
			.unmap = req->segs[0].flags & VIRTIO_BLK_WZ_F_UNMAP,
		};
		disk_submit(&blk->ring, &req->io);
		return;
	}
	default:
		log_msg(&blk->vdev.ctx->log, KEEL_LOG_DEBUG, "%s: unsupported request type %u",
		       blk->name, req->type);
		req_done(blk, req, VIRTIO_BLK_S_UNSUPP);
		return;
	}
}

/*
 * The guest broke a ring: stop taking requests and put the device in
 * NEEDS_RESET; from the I/O thread through the event thread (ops->stop
 * joins the I/O thread), without one (tests) directly.
 */
static void blk_fail(struct virtio_blk *blk, keel_error *err)
{
	blk->failed = true;
	if (blk->threaded)
		virtio_dev_fail_async(&blk->vdev, err);
	else
		virtio_dev_fail(&blk->vdev, err);
}

/* Takes every available request of queue `q`. */
static void process_queue(struct virtio_blk *blk, unsigned int q)
{
	struct virtq *vq = &blk->vdev.vqs[q];
	struct blk_queue *bq = &blk->queues[q];

	if (!vq->enabled || vq->broken)
		return;
	for (;;) {
		virtq_disable_kicks(vq);
		for (;;) {
			keel_error *err = NULL;
			struct blk_req *req = req_get(bq);
			int rc;

			if (!req) {
				/* Only a guest reusing heads in flight gets here. */
				bq->throttled = true;
				return;
			}
			rc = virtq_pop(vq, blk->chain, &err);
			if (rc <= 0) {
				req_put(bq, req);
				if (rc < 0) {
					err_prefix(&err, "queue %u", q);
					blk_fail(blk, err);
					return;
				}
				break;
			}
			handle_chain(blk, q, req, blk->chain);
		}
		if (!virtq_enable_kicks(vq))
			return;
	}
}

static void notify_queues(struct virtio_blk *blk)
{
	uint64_t pending = blk->notify_pending;

	blk->notify_pending = 0;
	while (pending) {
		unsigned int q = (unsigned int)__builtin_ctzll(pending);

		pending &= pending - 1;
		virtio_dev_notify(&blk->vdev, q);
	}
}

static void process_kicked(struct virtio_blk *blk)
{
	while (blk->kick_pending && !blk->stopping && !blk->failed) {
		uint64_t pending = blk->kick_pending;

		blk->kick_pending = 0;
		while (pending) {
			unsigned int q = (unsigned int)__builtin_ctzll(pending);

			pending &= pending - 1;
			if (q < blk->nr_queues)
				process_queue(blk, q);
		}
	}
}

/* -------------------------------------------------------------- I/O loop */

static void arm_kick_poll(struct virtio_blk *blk, unsigned int q)
{
	struct io_uring_sqe *sqe = disk_ring_get_sqe(&blk->ring);

	if (!sqe)
		return;         /* retried on the next turn */
	if (blk->multishot)
		io_uring_prep_poll_multishot(sqe, blk->vdev.kick_fd[q], POLLIN);
	else
		io_uring_prep_poll_add(sqe, blk->vdev.kick_fd[q], POLLIN);
	io_uring_sqe_set_data64(sqe, q + 1);
	blk->poll_armed |= 1ULL << q;
}

static void arm_polls(struct virtio_blk *blk)
{
	if (!blk->ctl_armed) {
		struct io_uring_sqe *sqe = disk_ring_get_sqe(&blk->ring);

		if (sqe) {
			io_uring_prep_poll_add(sqe, blk->ctl_fd, POLLIN);
			io_uring_sqe_set_data64(sqe, BLK_CTL_UD);
			blk->ctl_armed = true;
		}
	}
	for (unsigned int q = 0; q < blk->nr_queues; q++)
		if (!(blk->poll_armed & (1ULL << q)) && blk->vdev.kick_fd[q] >= 0)
			arm_kick_poll(blk, q);
}

static void io_event(void *opaque, uint64_t ud, int res, uint32_t flags)
{
	struct virtio_blk *blk = opaque;
	unsigned int q;

	if (ud == BLK_CTL_UD) {
		blk->ctl_armed = false;
		if (res >= 0)
			blk->ctl_pending = true;
		return;
	}
	if (!ud || ud > blk->nr_queues)
		return;
	q = (unsigned int)ud - 1;
	if (!(flags & IORING_CQE_F_MORE)) {
		blk->poll_armed &= ~(1ULL << q);
		if (res == -EINVAL && blk->multishot) {
			/* A kernel without multishot poll (before 5.13). */
			blk->multishot = false;
			return;
		}
		if (!blk->multishot) {
			uint64_t v;

			/* Oneshot polls are level-triggered: consume the kicks. */
			if (read(blk->vdev.kick_fd[q], &v, sizeof(v)) < 0 && errno != EAGAIN)
				return;
		}
	}
	if (res >= 0)
		blk->kick_pending |= 1ULL << q;
}

/* The kernel's polls on the ring: none yet (a new ring). */
static void reset_polls(struct virtio_blk *blk)
{
	blk->poll_armed = 0;
	blk->ctl_armed = false;
	blk->ctl_pending = false;
	blk->multishot = true;
}

/* Every request free, nothing pending: a new start. */
static void reset_queues(struct virtio_blk *blk)
{
	for (unsigned int q = 0; q < blk->nr_queues; q++) {
		struct blk_queue *bq = &blk->queues[q];

		bq->nr_free = VIRTIO_BLK_QUEUE_SIZE;
		for (unsigned int i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
			bq->free[i] = (uint16_t)(VIRTIO_BLK_QUEUE_SIZE - 1 - i);
		bq->throttled = false;
	}
	blk->kick_pending = 0;
	blk->notify_pending = 0;
	blk->stopping = false;
	blk->failed = false;
}

int virtio_blk_io_begin(struct virtio_blk *blk, keel_error **err)
{
	if (disk_ring_init(&blk->ring, &blk->img, blk->nr_queues * VIRTIO_BLK_QUEUE_SIZE,
			   blk->nr_queues + 1, blk->vdev.ctx->sandbox != KEEL_SANDBOX_OFF,
			   io_complete, io_event, blk, err) < 0) {
		err_prefix(err, "%s", blk->name);
		return -1;
	}
	reset_polls(blk);
	reset_queues(blk);
	blk->io_active = true;
	return 0;
}

void virtio_blk_io_kick(struct virtio_blk *blk, unsigned int q)
{
	blk->kick_pending |= 1ULL << q;
	process_kicked(blk);
	notify_queues(blk);
}

unsigned int virtio_blk_io_inflight(const struct virtio_blk *blk)
{
	return blk->ring.inflight;
}

/* One turn of the I/O loop. */
void virtio_blk_io_poll(struct virtio_blk *blk, bool wait)
{
	int ret = disk_ring_submit(&blk->ring, wait);

	if (ret < 0)
		log_msg(&blk->vdev.ctx->log, KEEL_LOG_ERROR, "%s: io_uring submission failed: %s",
		       blk->name, strerror(-ret));
	disk_ring_reap(&blk->ring);
	process_kicked(blk);
	notify_queues(blk);
}

void virtio_blk_io_end(struct virtio_blk *blk)
{
	if (!blk->io_active)
		return;
	blk->stopping = true;
	while (blk->ring.inflight) {
		if (disk_ring_submit(&blk->ring, true) < 0)
			break;
		disk_ring_reap(&blk->ring);
	}
	disk_ring_fini(&blk->ring);
	blk->io_active = false;
}

/*
 * Called when the last request in flight has completed: watches the queues
 * for up to poll_ns with kicks suppressed, so that a guest sending its next
 * request within the window costs neither a VM exit nor a wake-up of this
 * thread (vhost's busyloop, QEMU's iothread polling).  Marks in
 * kick_pending the queues that have requests and re-enables kicks on the
 * others (taking what arrived meanwhile).  Stop requests wait for the
 * window's end (at most KEEL_BLK_POLL_MAX_US).
 */
static void poll_queues(struct virtio_blk *blk)
{
	int64_t end = mono_ns() + (int64_t)blk->poll_ns;
	unsigned int q;

	for (q = 0; q < blk->nr_queues; q++)
		virtq_suppress_kicks(&blk->vdev.vqs[q]);
	do {
		for (q = 0; q < blk->nr_queues; q++)
			if (virtq_has_avail(&blk->vdev.vqs[q]))
				blk->kick_pending |= 1ULL << q;
		if (blk->kick_pending)
			break;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} while (mono_ns() < end);
	/* The queues taken now re-enable kicks once drained (process_queue). */
	for (q = 0; q < blk->nr_queues; q++)
		if (!(blk->kick_pending & (1ULL << q)) &&
		    virtq_enable_kicks(&blk->vdev.vqs[q]))
			blk->kick_pending |= 1ULL << q;
}

/* Waits for the I/O in flight: nothing is written to guest memory afterwards. */
static void drain(struct virtio_blk *blk)
{
	blk->stopping = true;
	while (blk->ring.inflight && !blk->broken) {
		if (disk_ring_submit(&blk->ring, true) < 0) {
			blk->broken = true;
			break;
		}
		disk_ring_reap(&blk->ring);
	}
	blk->running = false;
}

/* On the I/O thread: answers the request waiting in the control channel. */
static void ctl_run(struct virtio_blk *blk)
{
	int req, rc = 0;

	blk->ctl_pending = false;
	efd_drain(blk->ctl_fd);
	pthread_mutex_lock(&blk->ctl_lock);
	req = blk->ctl_req;
	pthread_mutex_unlock(&blk->ctl_lock);
	switch (req) {
	case BLK_CTL_NONE:
		return;
	case BLK_CTL_START:
		if (blk->broken) {
			rc = -1;
			break;
		}
		reset_queues(blk);
		/* Anything made available before DRIVER_OK is looked at once. */
		blk->kick_pending = (1ULL << blk->nr_queues) - 1;
		blk->running = true;
		break;
	case BLK_CTL_STOP:
		drain(blk);
		break;
	case BLK_CTL_EXIT:
		drain(blk);
		blk->exit = true;
		break;
	}
	pthread_mutex_lock(&blk->ctl_lock);
	blk->ctl_req = BLK_CTL_NONE;
	blk->ctl_rc = rc;
	blk->ctl_seq++;
	pthread_cond_broadcast(&blk->ctl_cond);
	pthread_mutex_unlock(&blk->ctl_lock);
}

/* Asks the I/O thread to start, stop or end, and waits for its answer. */
static int ctl_call(struct virtio_blk *blk, int req)
{
	unsigned int seq;
	int rc;

	pthread_mutex_lock(&blk->ctl_lock);
	while (blk->ctl_req != BLK_CTL_NONE)
		pthread_cond_wait(&blk->ctl_cond, &blk->ctl_lock);
	blk->ctl_req = req;
	seq = blk->ctl_seq;
	pthread_cond_broadcast(&blk->ctl_cond);         /* a thread whose ring broke */
	pthread_mutex_unlock(&blk->ctl_lock);
	efd_signal(blk->ctl_fd);
	pthread_mutex_lock(&blk->ctl_lock);
	while (blk->ctl_seq == seq)
		pthread_cond_wait(&blk->ctl_cond, &blk->ctl_lock);
	rc = blk->ctl_rc;
	pthread_mutex_unlock(&blk->ctl_lock);
	return rc;
}

/* The ring failed: the thread serves nothing more, but still answers. */
static void serve_broken(struct virtio_blk *blk)
{
	log_msg(&blk->vdev.ctx->log, KEEL_LOG_ERROR,
		"%s: io_uring failed; the device stops processing", blk->name);
	blk->running = false;
	while (!blk->exit) {
		pthread_mutex_lock(&blk->ctl_lock);
		while (blk->ctl_req == BLK_CTL_NONE)
			pthread_cond_wait(&blk->ctl_cond, &blk->ctl_lock);
		pthread_mutex_unlock(&blk->ctl_lock);
		ctl_run(blk);
	}
}

/* On the new I/O thread, before its sandbox filter: the ring. */
static int io_setup(void *opaque, keel_error **err)
{
	return virtio_blk_io_begin(opaque, err);
}

static void io_undo(void *opaque)
{
	struct virtio_blk *blk = opaque;

	disk_ring_fini(&blk->ring);
	blk->io_active = false;
}

static void *io_thread(void *opaque)
{
	struct virtio_blk *blk = opaque;

	while (!blk->exit) {
		if (blk->running && !blk->stopping) {
			bool completed;

			process_kicked(blk);
			completed = blk->notify_pending != 0;
			notify_queues(blk);
			if (completed && blk->poll_ns && !blk->ring.inflight && !blk->failed) {
				poll_queues(blk);
				if (blk->kick_pending)
					continue;
			}
		}
		arm_polls(blk);
		if (disk_ring_submit(&blk->ring, true) < 0) {
			blk->broken = true;
			serve_broken(blk);
			break;
		}
		disk_ring_reap(&blk->ring);
		if (blk->ctl_pending)
			ctl_run(blk);
	}
	virtio_blk_io_end(blk);
	return NULL;
}

int virtio_blk_start_thread(struct virtio_blk *blk, keel_error **err)
{
	char name[16];
	const struct thread_spec spec = {
		.name = name, .sandbox = blk->vdev.ctx->sandbox, .cls = SANDBOX_BLK,
		.setup = io_setup, .undo = io_undo,
	};

	snprintf(name, sizeof(name), "keel-blk%d", blk->index);
	blk->threaded = true;
	if (thread_spawn(&blk->thread, &spec, io_thread, blk, err) < 0) {
		blk->threaded = false;
		err_prefix(err, "%s: cannot start its I/O thread", blk->name);
		return -1;
	}
	blk->thread_live = true;
	return 0;
}

/* ---------------------------------------------------------------- device ops */

static int blk_start(struct virtio_dev *vdev, keel_error **err)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (blk->started)
		return 0;
	if (!blk->thread_live)
		return err_set(err, KEEL_ERR_STATE, "%s: no I/O thread", blk->name);
	if (ctl_call(blk, BLK_CTL_START) < 0)
		return err_set(err, KEEL_ERR_IO, "%s: its io_uring failed", blk->name);
	blk->started = true;
	return 0;
}

static void blk_stop(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (!blk->started)
		return;
	ctl_call(blk, BLK_CTL_STOP);
	blk->started = false;
}

static void blk_free(struct virtio_blk *blk)
{
	for (unsigned int q = 0; q < VIRTIO_BLK_MAX_QUEUES; q++) {
		free(blk->queues[q].reqs);
		free(blk->queues[q].free);
	}
	free(blk->chain);
	if (blk->ctl_fd >= 0)
		close(blk->ctl_fd);
	pthread_mutex_destroy(&blk->ctl_lock);
	pthread_cond_destroy(&blk->ctl_cond);
	disk_image_close(&blk->img);
	free(blk);
}

static void blk_destroy(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	virtio_dev_quiesce(vdev);
	blk_stop(vdev);
	if (blk->thread_live) {
		ctl_call(blk, BLK_CTL_EXIT);
		pthread_join(blk->thread, NULL);
		blk->thread_live = false;
	}
	virtio_blk_io_end(blk);         /* I/O run on the caller's thread (tests) */
	virtio_dev_fini(vdev);
	blk_free(blk);
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.start = blk_start,
	.stop = blk_stop,
	.destroy = blk_destroy,
};

struct virtio_blk *virtio_blk_new(struct devctx *ctx, int index,
				  const struct keel_storage_device *cfg, keel_error **err)
{
	const struct keel_storage_attachment *att = cfg ? cfg->att : NULL;
	struct virtio_blk *blk;
	uint64_t features;
	unsigned int queues;
	const char *base;

	if (!att)
		return err_set(err, KEEL_ERR_INVALID, "virtio-blk: no storage attachment given"),
		       NULL;
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating virtio-blk for '%s'",
			       att->path), NULL;
	blk->ctl_fd = -1;
	blk->index = index;
	pthread_mutex_init(&blk->ctl_lock, NULL);
	pthread_cond_init(&blk->ctl_cond, NULL);
	base = strrchr(att->path, '/');
	snprintf(blk->name, sizeof(blk->name), "virtio-blk%d (%s)", index, base ? base + 1 : att->path);
	blk->warn_rl.burst = BLK_WARN_BURST;

	queues = cfg->queues ? cfg->queues : ctx->nr_cpus;
	if (queues < 1)
		queues = 1;
	if (queues > VIRTIO_BLK_MAX_QUEUES)
		queues = VIRTIO_BLK_MAX_QUEUES;
	blk->nr_queues = queues;
	blk->poll_ns = (uint64_t)cfg->poll_us * 1000;

	if (disk_image_open(&blk->img, att, err) < 0)
		goto fail;
	blk->capacity = disk_image_sector_count(&blk->img);
	if (att->serial) {
		size_t l = strlen(att->serial);

		/* Zero padded; exactly 20 bytes means no terminator (5.2.6). */
		memcpy(blk->serial, att->serial, l < sizeof(blk->serial) ? l : sizeof(blk->serial));
	}
	build_config(blk);

	blk->chain = malloc(sizeof(*blk->chain));
	blk->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!blk->chain || blk->ctl_fd < 0) {
		err_set(err, KEEL_ERR_NOMEM, "%s: out of memory", blk->name);
		goto fail;
	}
	for (unsigned int q = 0; q < queues; q++) {
		/* calloc: pages of requests the guest never uses stay untouched. */
		blk->queues[q].reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(struct blk_req));
		blk->queues[q].free = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(uint16_t));
		if (!blk->queues[q].reqs || !blk->queues[q].free) {
			err_set(err, KEEL_ERR_NOMEM, "%s: out of memory for %u queues", blk->name,
				queues);
			goto fail;
		}
	}
	reset_polls(blk);
	reset_queues(blk);

	features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) |
		   (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		   (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		   (1ULL << VIRTIO_BLK_F_TOPOLOGY);
	if (blk->img.read_only)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	if (queues > 1)
		features |= 1ULL << VIRTIO_BLK_F_MQ;
	if (virtio_dev_init(&blk->vdev, ctx, blk->name, VIRTIO_ID_BLOCK, &blk_ops, features,
			    VIRTIO_BLK_CONFIG_SIZE, queues, VIRTIO_BLK_QUEUE_SIZE, err) < 0)
		goto fail;
	log_msg(&ctx->log, KEEL_LOG_DEBUG, "%s: %llu sectors, block size %u, %u queue(s)%s%s",
	       blk->name, (unsigned long long)blk->capacity, blk->img.block_size, queues,
	       blk->img.read_only ? ", read-only" : "", blk->img.direct ? ", O_DIRECT" : "");
	return blk;
fail:
	blk_free(blk);
	return NULL;
}

void virtio_blk_free(struct virtio_blk *blk)
{
	if (blk)
		blk_destroy(&blk->vdev);
}

struct virtio_dev *virtio_blk_create(struct devctx *ctx, int index,
				     const struct keel_storage_device *cfg, keel_error **err)
{
	struct virtio_blk *blk = virtio_blk_new(ctx, index, cfg, err);

	if (blk && virtio_blk_start_thread(blk, err) < 0) {
		virtio_blk_free(blk);
		return NULL;
	}
	return blk ? &blk->vdev : NULL;
}
