// SPDX-License-Identifier: MIT
/* Configuration objects for storage, entropy and console devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/image.h"
#include "config/config.h"
#include "core/error.h"

#define SERIAL_MAX 20   /* VIRTIO_BLK_ID_BYTES */

int dev_list_add(struct dev_list *l, void *item)
{
	void **n = realloc(l->items, (l->nr + 1) * sizeof(*n));

	if (!n)
		return -1;
	l->items = n;
	l->items[l->nr++] = item;
	return 0;
}

/* ---- storage ---- */

keel_storage_attachment *keel_disk_image_attachment_new(const char *path, keel_error **err)
{
	keel_storage_attachment *att;

	if (!path || !*path) {
		err_set(err, KEEL_ERR_INVALID, "disk image: no path given");
		return NULL;
	}
	att = calloc(1, sizeof(*att));
	if (att)
		att->path = strdup(path);
	if (!att || !att->path) {
		free(att);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a disk attachment");
		return NULL;
	}
	return att;
}

void keel_storage_attachment_set_read_only(keel_storage_attachment *att, bool ro)
{
	att->read_only = ro;
}

void keel_storage_attachment_set_sync_mode(keel_storage_attachment *att, keel_sync_mode mode)
{
	att->sync = mode;
}

void keel_storage_attachment_set_cache_mode(keel_storage_attachment *att, keel_cache_mode mode)
{
	att->cache = mode;
}

void keel_storage_attachment_set_serial(keel_storage_attachment *att, const char *serial)
{
	char *n = serial ? strdup(serial) : NULL;

	if (serial && !n)
		return;
	free(att->serial);
	att->serial = n;
}

void keel_storage_attachment_free(keel_storage_attachment *att)
{
	if (!att)
		return;
	free(att->path);
	free(att->serial);
	free(att);
}

keel_storage_device *keel_virtio_block_device_new(keel_storage_attachment *att, keel_error **err)
{
	keel_storage_device *dev;

	if (!att) {
		err_set(err, KEEL_ERR_INVALID, "virtio-blk: no storage attachment given");
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		keel_storage_attachment_free(att);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-blk device");
		return NULL;
	}
	dev->kind = STORAGE_VIRTIO_BLK;
	dev->att = att;
	dev->poll_us = KEEL_BLK_POLL_DEFAULT_US;
	return dev;
}

void keel_virtio_block_device_set_queues(keel_storage_device *dev, unsigned int queues)
{
	dev->queues = queues;
}

void keel_virtio_block_device_set_poll_us(keel_storage_device *dev, unsigned int us)
{
	dev->poll_us = us < KEEL_BLK_POLL_MAX_US ? us : KEEL_BLK_POLL_MAX_US;
}

void keel_storage_device_free(keel_storage_device *dev)
{
	if (!dev)
		return;
	keel_storage_attachment_free(dev->att);
	free(dev);
}

/* ---- entropy and console ---- */

keel_entropy_device *keel_virtio_entropy_device_new(keel_error **err)
{
	keel_entropy_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-rng device");
	return dev;
}

void keel_virtio_entropy_device_set_rate_limit(keel_entropy_device *dev, uint64_t bytes_per_second)
{
	dev->rate_limit = bytes_per_second;
}

void keel_entropy_device_free(keel_entropy_device *dev)
{
	free(dev);
}

keel_console_device *keel_virtio_console_device_new(keel_serial_attachment *att, keel_error **err)
{
	keel_console_device *dev;

	if (!att) {
		err_set(err, KEEL_ERR_INVALID, "virtio-console: no serial attachment given");
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		keel_serial_attachment_free(att);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-console device");
		return NULL;
	}
	dev->att = att;
	return dev;
}

void keel_console_device_free(keel_console_device *dev)
{
	if (!dev)
		return;
	keel_serial_attachment_free(dev->att);
	free(dev);
}

/* ---- copies, release, validation ---- */

static keel_storage_device *storage_dup(const keel_storage_device *src, keel_error **err)
{
	keel_storage_attachment *att = keel_disk_image_attachment_new(src->att->path, err);
	keel_storage_device *dev;

	if (!att)
		return NULL;
	*att = (keel_storage_attachment){ .path = att->path, .read_only = src->att->read_only,
					  .sync = src->att->sync, .cache = src->att->cache };
	keel_storage_attachment_set_serial(att, src->att->serial);
	if (src->att->serial && !att->serial) {
		keel_storage_attachment_free(att);
		err_set(err, KEEL_ERR_NOMEM, "out of memory copying a disk attachment");
		return NULL;
	}
	dev = keel_virtio_block_device_new(att, err);
	if (dev) {
		dev->queues = src->queues;
		dev->poll_us = src->poll_us;
	}
	return dev;
}

static keel_console_device *console_dup(const keel_console_device *src, keel_error **err)
{
	keel_serial_attachment *att = serial_attachment_dup(src->att, err);

	return att ? keel_virtio_console_device_new(att, err) : NULL;
}

static void *rng_dup(const keel_entropy_device *src, keel_error **err)
{
	keel_entropy_device *dev = keel_virtio_entropy_device_new(err);

	if (dev)
		*dev = *src;
	return dev;
}

int devices_copy(struct vm_config *dst, const struct vm_config *src, keel_error **err)
{
	memset(&dst->disks, 0, sizeof(dst->disks));
	memset(&dst->rngs, 0, sizeof(dst->rngs));
	memset(&dst->consoles, 0, sizeof(dst->consoles));
	memset(&dst->nics, 0, sizeof(dst->nics));
	for (int i = 0; i < src->nics.nr; i++) {
		void *d = net_device_dup(src->nics.items[i], err);

		if (!d || dev_list_add(&dst->nics, d) < 0) {
			keel_network_device_free(d);
			goto fail;
		}
	}
	for (int i = 0; i < src->disks.nr; i++) {
		void *d = storage_dup(src->disks.items[i], err);

		if (!d || dev_list_add(&dst->disks, d) < 0) {
			keel_storage_device_free(d);
			goto fail;
		}
	}
	for (int i = 0; i < src->rngs.nr; i++) {
		void *d = rng_dup(src->rngs.items[i], err);

		if (!d || dev_list_add(&dst->rngs, d) < 0) {
			keel_entropy_device_free(d);
			goto fail;
		}
	}
	for (int i = 0; i < src->consoles.nr; i++) {
		void *d = console_dup(src->consoles.items[i], err);

		if (!d || dev_list_add(&dst->consoles, d) < 0) {
			keel_console_device_free(d);
			goto fail;
		}
	}
	return 0;
fail:
	err_set(err, KEEL_ERR_NOMEM, "out of memory copying the device configuration");
	return -1;
}

void devices_fini(struct vm_config *c)
{
	for (int i = 0; i < c->disks.nr; i++)
		keel_storage_device_free(c->disks.items[i]);
	for (int i = 0; i < c->rngs.nr; i++)
		keel_entropy_device_free(c->rngs.items[i]);
	for (int i = 0; i < c->consoles.nr; i++)
		keel_console_device_free(c->consoles.items[i]);
	for (int i = 0; i < c->nics.nr; i++)
		keel_network_device_free(c->nics.items[i]);
	free(c->nics.items);
	free(c->disks.items);
	free(c->rngs.items);
	free(c->consoles.items);
	memset(&c->disks, 0, sizeof(c->disks));
	memset(&c->rngs, 0, sizeof(c->rngs));
	memset(&c->consoles, 0, sizeof(c->consoles));
	memset(&c->nics, 0, sizeof(c->nics));
}

static int validate_disk(int index, const keel_storage_device *dev, keel_error **err)
{
	const keel_storage_attachment *att = dev->att;

	if (disk_image_check(att, err) < 0) {
		err_prefix(err, "disk %d", index);
		return -1;
	}
	if (att->serial && strlen(att->serial) > SERIAL_MAX)
		return err_set(err, KEEL_ERR_INVALID,
			       "disk %d: serial '%s' is longer than %d bytes", index, att->serial,
			       SERIAL_MAX);
	return 0;
}

int devices_validate(const struct vm_config *c, keel_error **err)
{
	for (int i = 0; i < c->disks.nr; i++)
		if (validate_disk(i, c->disks.items[i], err) < 0)
			return -1;
	for (int i = 0; i < c->consoles.nr; i++) {
		const keel_console_device *con = c->consoles.items[i];

		if (!con->att)
			return err_set(err, KEEL_ERR_INVALID, "console %d has no attachment", i);
	}
	if (c->nics.nr > CFG_MAX_NICS)
		return err_set(err, KEEL_ERR_TOO_LARGE, "%d network devices configured, at most %d",
			       c->nics.nr, CFG_MAX_NICS);
	for (int i = 0; i < c->nics.nr; i++) {
		const keel_network_device *nic = c->nics.items[i];
		char what[32];

		snprintf(what, sizeof(what), "network device %d", i);
		if (nic->has_mac && (nic->mac[0] & 1))
			return err_set(err, KEEL_ERR_INVALID,
				       "%s: MAC address %02x:%02x:%02x:%02x:%02x:%02x is a multicast address",
				       what, nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3],
				       nic->mac[4], nic->mac[5]);
		if (net_attachment_validate(nic->att, what, err) < 0)
			return -1;
	}
	if (c->transport != KEEL_VIRTIO_PCI && c->transport != KEEL_VIRTIO_MMIO)
		return err_set(err, KEEL_ERR_INVALID, "unknown virtio transport %d", c->transport);
	if (c->transport == KEEL_VIRTIO_MMIO &&
	    c->disks.nr + c->rngs.nr + c->consoles.nr + c->nics.nr > CFG_MAX_VIRTIO_MMIO)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "%d virtio devices configured, virtio-mmio has interrupt lines for at most %d",
			       c->disks.nr + c->rngs.nr + c->consoles.nr + c->nics.nr,
			       CFG_MAX_VIRTIO_MMIO);
	return 0;
}
