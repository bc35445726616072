/* SPDX-License-Identifier: MIT */
/* The 16550A UARTs COM1-COM4 on port I/O, with their IRQs. */
#ifndef KEEL_DEV_UART_H
#define KEEL_DEV_UART_H

#include "config/objects.h"
#include "core/devctx.h"

/* UART number `index` (0 = COM1 .. 3 = COM4) over `att` (not owned). */
int uart_create(struct devctx *ctx, int index, const struct keel_serial_attachment *att,
		keel_error **err);

#endif
