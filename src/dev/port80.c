// SPDX-License-Identifier: MIT
/*
 * Port 0x80, the POST code / I/O delay port: writes are ignored, reads
 * return 0.  Claiming it keeps Linux's outb_p() delays off the path for
 * unclaimed ports.
 */
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "dev/port80.h"

struct port80 {
	struct vdev vdev;
	struct bus_dev bdev;
	struct devctx *ctx;
};

static void port80_read(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len)
{
	memset(data, 0, len);
}

static void port80_write(struct bus_dev *dev, uint64_t offset, const void *data,
			 unsigned int len)
{
}

static const struct bus_dev_ops port80_ops = {
	.read = port80_read,
	.write = port80_write,
};

static void port80_destroy(struct vdev *vdev)
{
	struct port80 *p = (struct port80 *)vdev;

	bus_del(p->ctx->pio, &p->bdev);
	free(p);
}

int port80_create(struct devctx *ctx, keel_error **err)
{
	struct port80 *p = calloc(1, sizeof(*p));

	if (!p)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating port 0x80");
	p->ctx = ctx;
	p->vdev.name = "port80";
	p->vdev.destroy = port80_destroy;
	p->bdev.ops = &port80_ops;
	p->bdev.name = "port80";
	if (bus_add(ctx->pio, &p->bdev, 0x80, 1, err)) {
		free(p);
		return -1;
	}
	devctx_add(ctx, &p->vdev);
	return 0;
}
