/* SPDX-License-Identifier: MIT */
/* The i8042 keyboard controller (ports 0x60/0x64, IRQs 1 and 12). */
#ifndef KEEL_DEV_I8042_H
#define KEEL_DEV_I8042_H

#include "core/devctx.h"

/* Its reset line (command 0xfe) resets the VM. */
int i8042_create(struct devctx *ctx, keel_error **err);

#endif
