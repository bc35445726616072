/* SPDX-License-Identifier: MIT */
/* Port 0x80 (POST codes / I/O delay) and other ports Linux pokes. */
#ifndef KEEL_DEV_PORT80_H
#define KEEL_DEV_PORT80_H

#include "core/devctx.h"

int port80_create(struct devctx *ctx, keel_error **err);

#endif
