/* SPDX-License-Identifier: MIT */
/*
 * The virtio devices keel offers; each is created on the transport the VM
 * is configured for (vm->cfg.transport) and owned by the VM from then on.
 */
#ifndef KEEL_VIRTIO_DEVICES_H
#define KEEL_VIRTIO_DEVICES_H

#include "core/config.h"
#include "core/error.h"
#include "virtio/transport.h"

struct keel_vm;

int virtio_attach(struct keel_vm *vm, struct virtio_dev *vdev, keel_error **err);
int virtio_mmio_cmdline(struct keel_vm *vm, char *buf, size_t len);

/* virtio-rng from getrandom(), honouring cfg->rate_limit (bytes per second). */
int virtio_rng_create(struct keel_vm *vm, const struct keel_entropy_device *cfg,
		      keel_error **err);
/* virtio-console with one port over cfg->att (in_fd / out_fd). */
int virtio_console_create(struct keel_vm *vm, const struct keel_console_device *cfg,
			  keel_error **err);
/* virtio-blk (virtio/blk.c). */
int virtio_blk_create(struct keel_vm *vm, const struct keel_storage_device *cfg,
		      keel_error **err);

/* virtio-net over cfg->att (virtio/net.c); `index` numbers the VM's NICs from 0. */
int virtio_net_create(struct keel_vm *vm, int index, const struct keel_network_device *cfg,
		      keel_error **err);

#endif
