/* SPDX-License-Identifier: MIT */
/* MC146818 CMOS RTC with the host's time, IRQ 8, and the memory size in NVRAM. */
#ifndef KEEL_DEV_RTC_H
#define KEEL_DEV_RTC_H

#include "core/devctx.h"

int rtc_create(struct devctx *ctx, keel_error **err);

#endif
