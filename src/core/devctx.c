// SPDX-License-Identifier: MIT
/* The device context (devctx.h). */
#include "core/devctx.h"

void devctx_add(struct devctx *ctx, struct vdev *dev)
{
	dev->next = ctx->devs;
	ctx->devs = dev;
}

void devctx_reset_devices(struct devctx *ctx)
{
	for (struct vdev *d = ctx->devs; d; d = d->next)
		if (d->reset)
			d->reset(d);
}

void devctx_destroy_devices(struct devctx *ctx)
{
	while (ctx->devs) {
		struct vdev *d = ctx->devs;

		ctx->devs = d->next;
		d->destroy(d);
	}
}

void devctx_request_stop(struct devctx *ctx, keel_stop_reason reason, keel_error *detail)
{
	if (ctx->ops && ctx->ops->request_stop)
		ctx->ops->request_stop(ctx->owner, reason, detail);
	else
		keel_error_free(detail);
}
