/* SPDX-License-Identifier: MIT */
/*
 * The virtio devices the machine builder creates, one constructor each.
 * `index` numbers the devices of one kind from 0 (their names say it).  A
 * device comes back unattached and owned by the caller, who attaches it to
 * a transport (virtio/transport.h) or releases it with ops->destroy.
 * virtio-net (virtio/net.h) is made with virtio_net_new().
 */
#ifndef KEEL_VIRTIO_DEVICES_H
#define KEEL_VIRTIO_DEVICES_H

#include "config/objects.h"
#include "core/error.h"

struct devctx;
struct virtio_dev;

/* virtio-blk over cfg->att (virtio/blk.c). */
struct virtio_dev *virtio_blk_create(struct devctx *ctx, int index,
				     const struct keel_storage_device *cfg, keel_error **err);
/* virtio-rng from getrandom(), honouring cfg->rate_limit (bytes per second). */
struct virtio_dev *virtio_rng_create(struct devctx *ctx, int index,
				     const struct keel_entropy_device *cfg, keel_error **err);
/* virtio-console with one port over cfg->att (in_fd / out_fd). */
struct virtio_dev *virtio_console_create(struct devctx *ctx, int index,
					 const struct keel_console_device *cfg, keel_error **err);

#endif
