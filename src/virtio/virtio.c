// SPDX-License-Identifier: MIT
/*
 * The transport-independent part of a virtio device: status and feature
 * negotiation (virtio 1.x, 2.1 and 3.1), queue enabling at DRIVER_OK, reset,
 * and the NEEDS_RESET state a device enters when the guest breaks the rules.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/devctx.h"
#include "core/loop.h"
#include "core/util.h"
#include "kvm/mem.h"
#include "virtio/virtio.h"

/* Status bits the driver may set; NEEDS_RESET is the device's. */
#define STATUS_DRIVER_BITS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |          \
			    VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |         \
			    VIRTIO_STATUS_FAILED)

static void fail_cb(void *opaque, uint32_t events);

int virtio_dev_init(struct virtio_dev *vdev, struct devctx *ctx, const char *name,
		    uint32_t device_id, const struct virtio_dev_ops *ops, uint64_t features,
		    uint32_t config_size, unsigned int nr_queues, uint16_t queue_max_size,
		    keel_error **err)
{
	if (nr_queues < 1 || nr_queues > VIRTIO_MAX_QUEUES)
		return err_set(err, KEEL_ERR_INVALID, "%s: %u queues (1-%d supported)", name,
			       nr_queues, VIRTIO_MAX_QUEUES);
	if (!queue_max_size || (queue_max_size & (queue_max_size - 1)) ||
	    queue_max_size > VIRTQ_MAX_SIZE)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: queue size %u is not a power of two in 1..%u", name,
			       queue_max_size, VIRTQ_MAX_SIZE);
	memset(vdev, 0, sizeof(*vdev));
	vdev->ctx = ctx;
	vdev->name = name;
	vdev->ops = ops;
	vdev->device_id = device_id;
	vdev->host_features = features | (1ULL << VIRTIO_F_VERSION_1);
	vdev->config_size = config_size;
	vdev->nr_queues = nr_queues;
	vdev->queue_max_size = queue_max_size;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vdev->kick_fd[q] = -1;
	pthread_mutex_init(&vdev->lock, NULL);
	pthread_mutex_init(&vdev->fail_lock, NULL);
	vdev->fail_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vdev->fail_fd < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "%s: cannot create an eventfd", name);
		goto fail;
	}
	for (unsigned int q = 0; q < nr_queues; q++) {
		vdev->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vdev->kick_fd[q] < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "%s: cannot create a kick eventfd", name);
			goto fail;
		}
		virtq_reset(&vdev->vqs[q]);
		vdev->vqs[q].cfg.size = queue_max_size;
	}
	if (ctx->loop) {
		if (loop_add(ctx->loop, vdev->fail_fd, EPOLLIN, fail_cb, vdev, err) < 0)
			goto fail;
		vdev->fail_watched = true;
	}
	return 0;
fail:
	virtio_dev_fini(vdev);
	return -1;
}

void virtio_dev_quiesce(struct virtio_dev *vdev)
{
	if (vdev->fail_watched)
		loop_del(vdev->ctx->loop, vdev->fail_fd);      /* waits for a running fail_cb */
	vdev->fail_watched = false;
}

void virtio_dev_fini(struct virtio_dev *vdev)
{
	virtio_dev_quiesce(vdev);
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (vdev->kick_fd[q] >= 0)
			close(vdev->kick_fd[q]);
		vdev->kick_fd[q] = -1;
	}
	if (vdev->fail_fd >= 0)
		close(vdev->fail_fd);
	vdev->fail_fd = -1;
	keel_error_free(vdev->fail_err);
	vdev->fail_err = NULL;
	pthread_mutex_destroy(&vdev->fail_lock);
	pthread_mutex_destroy(&vdev->lock);
}

/* A failure the device's thread handed over and a reset made moot. */
static void drop_async_failure(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->fail_lock);
	keel_error_free(vdev->fail_err);
	vdev->fail_err = NULL;
	pthread_mutex_unlock(&vdev->fail_lock);
}

/* With vdev->lock held. */
static void stop_locked(struct virtio_dev *vdev)
{
	if (vdev->ops->stop)
		vdev->ops->stop(vdev);
	vdev->started = false;
	drop_async_failure(vdev);
}

static void reset_locked(struct virtio_dev *vdev)
{
	stop_locked(vdev);
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		virtq_reset(&vdev->vqs[q]);
		vdev->vqs[q].cfg.size = vdev->queue_max_size;
		vdev->queue_ready[q] = false;
		efd_drain(vdev->kick_fd[q]);
	}
	vdev->driver_features = 0;
	vdev->status = 0;
	if (vdev->transport && vdev->transport->reset)
		vdev->transport->reset(vdev);
}

/* FEATURES_OK: whether the accepted features can be used (spec 3.1.1). */
static bool features_ok(struct virtio_dev *vdev)
{
	uint64_t extra = vdev->driver_features & ~vdev->host_features;

	if (extra) {
		log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
		       "%s: driver accepted features 0x%llx that were not offered; FEATURES_OK refused",
		       vdev->name, (unsigned long long)extra);
		return false;
	}
	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1)) {
		log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
		       "%s: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported); FEATURES_OK refused",
		       vdev->name);
		return false;
	}
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		vdev->vqs[q].event_idx = virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX);
		vdev->vqs[q].indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
	}
	return true;
}

/* DRIVER_OK: maps the enabled queues and starts the device; -1 and err on failure. */
static int driver_ok(struct virtio_dev *vdev, keel_error **err)
{
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];

		if (!vdev->queue_ready[q])
			continue;
		vq->event_idx = virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX);
		vq->indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
		if (virtq_enable(vq, vdev->ctx->mem, err) < 0) {
			err_prefix(err, "queue %u", q);
			return -1;
		}
	}
	if (vdev->ops->start && vdev->ops->start(vdev, err) < 0)
		return -1;
	vdev->started = true;
	return 0;
}

/* With vdev->lock held; the caller raises the config interrupt after unlocking. */
static void fail_locked(struct virtio_dev *vdev, keel_error *err)
{
	log_msg(&vdev->ctx->log, KEEL_LOG_WARNING, "%s: %s; device needs reset", vdev->name,
	       err ? keel_error_get_message(err) : "device error");
	keel_error_free(err);
	vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
	stop_locked(vdev);
}

void virtio_dev_set_status(struct virtio_dev *vdev, uint8_t status)
{
	uint8_t old, val, added;
	bool notify = false;

	pthread_mutex_lock(&vdev->lock);
	if (status == 0) {
		reset_locked(vdev);
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	old = vdev->status;
	val = (uint8_t)((status & STATUS_DRIVER_BITS) | (old & VIRTIO_STATUS_NEEDS_RESET));
	if (old & ~val & STATUS_DRIVER_BITS) {
		/* Only a reset clears bits (spec 2.1.1). */
		log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
		       "%s: driver wrote status 0x%02x clearing bits of 0x%02x without a reset; ignored",
		       vdev->name, status, old);
		goto out;
	}
	added = val & ~old;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_ok(vdev))
		val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK)) {
		log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
		       "%s: driver set DRIVER_OK without FEATURES_OK; ignored", vdev->name);
		val &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
		added &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	vdev->status = val;
	if (added & VIRTIO_STATUS_FAILED) {
		/* The driver gave up on the device. */
		stop_locked(vdev);
	} else if ((added & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_NEEDS_RESET)) {
		keel_error *err = NULL;

		if (driver_ok(vdev, &err) < 0) {
			fail_locked(vdev, err);
			notify = true;
		}
	}
out:
	pthread_mutex_unlock(&vdev->lock);
	if (notify && vdev->transport)
		vdev->transport->notify_config(vdev);
}

void virtio_dev_notify(struct virtio_dev *vdev, unsigned int q)
{
	bool want;

	if (q >= vdev->nr_queues)
		return;
	/* No lock: only the queue's processing context calls this, and
	 * ops->stop quiesces that context before any queue is reset. */
	want = virtq_should_notify(&vdev->vqs[q]);
	if (want && vdev->transport)
		vdev->transport->notify_queue(vdev, q);
}

void virtio_dev_fail(struct virtio_dev *vdev, keel_error *err)
{
	bool notify;

	pthread_mutex_lock(&vdev->lock);
	notify = !(vdev->status & VIRTIO_STATUS_NEEDS_RESET) && vdev->status != 0;
	fail_locked(vdev, err);
	pthread_mutex_unlock(&vdev->lock);
	if (notify && vdev->transport)
		vdev->transport->notify_config(vdev);
}

void virtio_dev_fail_async(struct virtio_dev *vdev, keel_error *err)
{
	pthread_mutex_lock(&vdev->fail_lock);
	if (!vdev->fail_err) {
		vdev->fail_err = err;
		err = NULL;
	}
	pthread_mutex_unlock(&vdev->fail_lock);
	keel_error_free(err);
	if (vdev->fail_watched) {
		efd_signal(vdev->fail_fd);
		return;
	}
	pthread_mutex_lock(&vdev->fail_lock);
	log_msg(&vdev->ctx->log, KEEL_LOG_ERROR, "%s: %s; the device stops processing its queues",
		vdev->name, vdev->fail_err ? keel_error_get_message(vdev->fail_err) : "device error");
	pthread_mutex_unlock(&vdev->fail_lock);
}

/* On the VM's event thread. */
static void fail_cb(void *opaque, uint32_t events)
{
	struct virtio_dev *vdev = opaque;
	keel_error *err;

	efd_drain(vdev->fail_fd);
	pthread_mutex_lock(&vdev->fail_lock);
	err = vdev->fail_err;
	vdev->fail_err = NULL;
	pthread_mutex_unlock(&vdev->fail_lock);
	if (err)
		virtio_dev_fail(vdev, err);
}
