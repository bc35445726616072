/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.x, 2.7): the device side.  Everything the guest
 * wrote (ring addresses, indices, descriptors, chains) is validated here; a
 * guest error marks the queue broken and is reported once, never trusted.
 * Not thread-safe: one thread at a time processes a queue.
 */
#ifndef KEEL_VIRTIO_VIRTQ_H
#define KEEL_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/error.h"
#include "kvm/mem.h"

#define VIRTQ_MAX_SIZE 32768    /* largest queue size the spec allows */
#define VIRTQ_MAX_CHAIN 1024    /* keel's limit on buffers in one chain */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1    /* avail->flags: driver wants no interrupt */
#define VIRTQ_USED_F_NO_NOTIFY     1    /* used->flags: device wants no kick */

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Programmed by the transport from the driver's writes. */
struct virtq_config {
	uint16_t size;          /* power of two, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
};

struct virtq {
	struct virtq_config cfg;
	bool event_idx;         /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;          /* VIRTIO_F_INDIRECT_DESC negotiated */
	bool enabled;           /* virtq_enable() succeeded */
	bool broken;            /* the guest misprogrammed it; see virtq_enable() */

	/* Host views of the rings, valid while enabled. */
	const struct mem *mem;
	struct virtq_desc *desc;
	volatile uint16_t *avail;       /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;        /* flags, idx, then elements at used + 2 */
	uint16_t last_avail;    /* next avail ring slot the device takes */
	uint16_t used_idx;      /* the device's copy of used->idx */
	uint16_t signalled_used;        /* used_idx at the last interrupt */
	bool signalled_valid;
};

/* A descriptor chain as host iovecs: `nr_out` readable, then `nr_in` writable. */
struct virtq_chain {
	uint16_t head;
	unsigned int nr_out, nr_in;
	uint64_t out_len, in_len;       /* byte totals */
	struct iovec iov[VIRTQ_MAX_CHAIN];
};

/*
 * Checks the configured size and ring addresses (alignment, inside guest
 * RAM) and maps the rings; the queue starts at the driver's current avail
 * index 0 state.  Fails with a message naming the bad value.
 */
int virtq_enable(struct virtq *vq, const struct mem *mem, keel_error **err);
/* Back to the reset state (disabled, indices 0, config cleared). */
void virtq_reset(struct virtq *vq);

/*
 * Takes the next available chain.  Returns 1 and fills `chain`, 0 when none
 * is available, -1 when the guest broke the rules (bad avail index, head or
 * next index out of range, a loop, a chain longer than the queue or than
 * VIRTQ_MAX_CHAIN, an address outside RAM, a writable buffer before a
 * readable one, a bad indirect table): `err` says which and the queue is
 * marked broken (further calls return -1 without touching guest memory).
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain, keel_error **err);
/* Returns a chain taken with virtq_pop() as used, `len` bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/*
 * virtq_push() in two steps, to return several chains with one used index
 * update (the driver sees all of them or none): virtq_fill() writes the used
 * element `offset` slots past the last published one without publishing it
 * (the driver does not read elements past used->idx); virtq_flush() then
 * publishes the `count` elements filled at offsets 0..count-1, in order,
 * with one release store of used->idx.  virtq_push(vq, head, len) is
 * virtq_fill(vq, head, len, 0) then virtq_flush(vq, 1).  `offset` and
 * `count` must not exceed the chains popped and not yet returned.  Both do
 * nothing on a disabled or broken queue.
 */
void virtq_fill(struct virtq *vq, uint16_t head, uint32_t len, uint16_t offset);
void virtq_flush(struct virtq *vq, uint16_t count);
/*
 * Gives back the last `n` chains taken with virtq_pop() and not returned
 * (filled elements for them, never flushed, are simply left unpublished):
 * the avail index is rewound, so the next pops take the same chains again.
 */
void virtq_unpop(struct virtq *vq, uint16_t n);
/*
 * After pushing: whether the driver wants an interrupt now (honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT or, with EVENT_IDX, used_event).
 */
bool virtq_should_notify(struct virtq *vq);
/*
 * Kick suppression while the device is busy processing: disable asks the
 * driver not to kick; enable re-allows kicks and returns true when buffers
 * arrived meanwhile (the caller must then process again).
 */
void virtq_disable_kicks(struct virtq *vq);
bool virtq_enable_kicks(struct virtq *vq);
/*
 * For a device that busy-polls the ring: asks the driver not to kick at all
 * (with EVENT_IDX, avail_event one behind the last buffer taken) until
 * virtq_enable_kicks(); virtq_has_avail() tells whether buffers are waiting.
 */
void virtq_suppress_kicks(struct virtq *vq);
bool virtq_has_avail(const struct virtq *vq);
/*
 * virtq_enable_kicks() after virtq_unpop(vq, ahead) when the chains given
 * back were not enough: the `ahead` chains past the avail index are already
 * known to the device, so (with EVENT_IDX) the driver is asked to kick only
 * when it makes one more available.  Returns true when more than those
 * arrived meanwhile.  virtq_enable_kicks(vq) is virtq_enable_kicks_ahead(vq, 0).
 */
bool virtq_enable_kicks_ahead(struct virtq *vq, uint16_t ahead);

/* Copies between a chain's buffers and flat memory; return bytes copied. */
size_t virtq_chain_read(const struct virtq_chain *chain, size_t offset, void *buf, size_t len);
size_t virtq_chain_write(const struct virtq_chain *chain, size_t offset, const void *buf,
			 size_t len);

#endif
