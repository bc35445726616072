/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk internals exposed for tests and fuzzers: a device can be made
 * without attaching it to a transport, and its I/O run on the caller's
 * thread instead of its own I/O thread.  The machine builder uses
 * virtio_blk_create() (virtio/devices.h) only.
 */
#ifndef KEEL_VIRTIO_BLK_H
#define KEEL_VIRTIO_BLK_H

#include <stdbool.h>

#include "config/objects.h"
#include "core/error.h"

struct devctx;
struct virtio_blk;
struct virtio_dev;

#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define VIRTIO_BLK_WZ_F_UNMAP     1     /* discard/write-zeroes segment flag */
#define VIRTIO_BLK_ID_BYTES       20

/* keel's limits, as the device offers them. */
#define VIRTIO_BLK_MAX_QUEUES     16
#define VIRTIO_BLK_QUEUE_SIZE     256
#define VIRTIO_BLK_SEG_MAX        254   /* data buffers per request */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 0x3fffffU
#define VIRTIO_BLK_MAX_DISCARD_SEG 32
#define VIRTIO_BLK_CONFIG_SIZE    60    /* up to write_zeroes_may_unmap + unused1 */

/* Disk number `index`, unattached (its lifetime is the caller's). */
struct virtio_blk *virtio_blk_new(struct devctx *ctx, int index,
				  const struct keel_storage_device *cfg, keel_error **err);
struct virtio_dev *virtio_blk_vdev(struct virtio_blk *blk);
/*
 * Starts its I/O thread (keel-blkN, sandboxed per ctx->sandbox), which
 * ops->start and ops->stop then drive; virtio_blk_create() does it.
 */
int virtio_blk_start_thread(struct virtio_blk *blk, keel_error **err);
/* Stops it if started, ends its thread, closes the image, frees it. */
void virtio_blk_free(struct virtio_blk *blk);

/*
 * I/O on the calling thread (a device without an I/O thread): begin sets up
 * the io_uring and treats every enabled queue as empty of requests in
 * flight; kick takes all available requests of queue `q` and queues their
 * I/O; poll submits what is queued, reaps completions (blocking for one if
 * `wait` and any request is in flight), pushes them to the used rings and
 * notifies; end drains and tears down.
 */
int virtio_blk_io_begin(struct virtio_blk *blk, keel_error **err);
void virtio_blk_io_kick(struct virtio_blk *blk, unsigned int q);
void virtio_blk_io_poll(struct virtio_blk *blk, bool wait);
unsigned int virtio_blk_io_inflight(const struct virtio_blk *blk);
void virtio_blk_io_end(struct virtio_blk *blk);

#endif
