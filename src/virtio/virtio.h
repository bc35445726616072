/* SPDX-License-Identifier: MIT */
/*
 * virtio devices, independent of their transport (PCI or MMIO).  A device
 * embeds struct virtio_dev and provides virtio_dev_ops; a transport
 * (virtio/transport_pci.c, virtio/transport_mmio.c) exposes it to the
 * guest: feature negotiation, status, queue set-up, kicks (ioeventfd) and
 * interrupts (MSI-X through irqfd, or INTx / the MMIO interrupt line).
 *
 * Threads: the transport handles register accesses on vCPU threads; a
 * device processes its queues on its own thread(s) or on the VM's event
 * loop, woken by the kick eventfds.  `lock` serialises status/feature/queue
 * configuration against the device's start and reset.
 */
#ifndef KEEL_VIRTIO_VIRTIO_H
#define KEEL_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "virtio/virtq.h"

struct devctx;
struct virtio_dev;

/* Device IDs (virtio 1.x, 5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Transport-independent feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VIRTIO_MAX_QUEUES 64

struct virtio_dev_ops {
	/* Reads/writes of the device-specific configuration space. */
	void (*config_read)(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned int len);
	void (*config_write)(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned int len);
	/*
	 * The driver set DRIVER_OK: every enabled queue is mapped (virtq_enable
	 * done) and the kick eventfds are live.  Start processing.  Returning
	 * -1 puts the device in NEEDS_RESET with the error logged.
	 */
	int (*start)(struct virtio_dev *vdev, keel_error **err);
	/* Device reset (status 0) or VM reset: stop processing, drop state.
	 * Must be idempotent and may be called when not started. */
	void (*stop)(struct virtio_dev *vdev);
	/* Releases the device (after stop). */
	void (*destroy)(struct virtio_dev *vdev);
};

struct virtio_transport_ops {
	/* Raises the interrupt for used buffers on queue `q`. */
	void (*notify_queue)(struct virtio_dev *vdev, unsigned int q);
	/* Raises the configuration-change interrupt. */
	void (*notify_config)(struct virtio_dev *vdev);
	/*
	 * Device reset (status 0): the transport drops its own per-device
	 * state (interrupt status, vectors, selectors).  Called with
	 * vdev->lock held; must not take locks of the PCI core (the transport
	 * lowers INTx itself after virtio_dev_set_status() returns).  May be NULL.
	 */
	void (*reset)(struct virtio_dev *vdev);
};

struct virtio_dev {
	struct devctx *ctx;
	const char *name;               /* for messages, e.g. "virtio-blk0" */
	const struct virtio_dev_ops *ops;
	const struct virtio_transport_ops *transport;
	void *transport_priv;

	uint32_t device_id;
	uint64_t host_features;         /* offered (VIRTIO_F_VERSION_1 always) */
	uint64_t driver_features;       /* accepted, valid from FEATURES_OK */
	uint32_t config_size;           /* bytes of device-specific config */
	unsigned int nr_queues;
	uint16_t queue_max_size;        /* per queue */

	/*
	 * Covers status, features, queue configuration and `started`; taken by
	 * the transport around register accesses and by devices around queue
	 * processing.  Not recursive.  ops->start/stop run with it held (so
	 * ops->stop must not wait for a thread that takes it).  Lock order:
	 * PCI host lock -> vdev->lock; so virtio_dev_fail() and
	 * virtio_dev_set_status() are called WITHOUT it (they take it).
	 */
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t config_generation;
	bool started;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES]; /* eventfd per queue: the guest's kicks */
	/* The driver enabled the queue (queue_enable / QueueReady); transports set it. */
	bool queue_ready[VIRTIO_MAX_QUEUES];

	/* A failure found on the device's own thread (virtio_dev_fail_async). */
	int fail_fd;                    /* eventfd on the VM's event loop */
	bool fail_watched;
	pthread_mutex_t fail_lock;
	keel_error *fail_err;
};

/*
 * Fills the common fields; kick eventfds are created here, and the failure
 * hand-off is watched on ctx->loop (when there is one).
 */
int virtio_dev_init(struct virtio_dev *vdev, struct devctx *ctx, const char *name,
		    uint32_t device_id, const struct virtio_dev_ops *ops, uint64_t features,
		    uint32_t config_size, unsigned int nr_queues, uint16_t queue_max_size,
		    keel_error **err);
/*
 * Before a device is destroyed: no failure reaches it from the event
 * thread any more (one in progress is waited for).  Idempotent.
 */
void virtio_dev_quiesce(struct virtio_dev *vdev);
void virtio_dev_fini(struct virtio_dev *vdev);
static inline bool virtio_has_feature(const struct virtio_dev *vdev, unsigned int bit)
{
	return (vdev->driver_features >> bit) & 1;
}
/*
 * Called by transports on status writes: FEATURES_OK checks the accepted
 * features, DRIVER_OK maps queues and calls ops->start, 0 resets.  Takes
 * vdev->lock.
 */
void virtio_dev_set_status(struct virtio_dev *vdev, uint8_t status);
/*
 * After pushing used buffers on queue `q`: interrupt the driver if it wants
 * one.  Called from the queue's processing context only (the thread or
 * callback that pops and pushes it); takes no lock.
 */
void virtio_dev_notify(struct virtio_dev *vdev, unsigned int q);
/*
 * The guest broke the rules on this device: log `err` (freed here), set
 * NEEDS_RESET and raise a configuration interrupt.  The device stops using
 * its queues until the driver resets it; the VM and other devices go on.
 * Takes vdev->lock (call without it).
 */
void virtio_dev_fail(struct virtio_dev *vdev, keel_error *err);
/*
 * virtio_dev_fail() for a device's own I/O thread, which must not call it
 * (ops->stop, run under vdev->lock, joins that thread): the VM's event
 * thread calls it instead.  The first failure is kept until then; a device
 * reset drops it.  Without an event loop (unit tests) it is logged only.
 */
void virtio_dev_fail_async(struct virtio_dev *vdev, keel_error *err);

#endif
