// SPDX-License-Identifier: MIT
/* A VM's messages to the application's log callback (log.h). */
#include <stdarg.h>
#include <stdio.h>

#include "core/log.h"
#include "core/util.h"

void log_msg(const struct logger *lg, keel_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!lg || !lg->cb || level > lg->level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lg->cb(level, msg, lg->opaque);
}

void log_limited(const struct logger *lg, struct log_ratelimit *rl, keel_log_level level,
		 const char *fmt, ...)
{
	uint64_t now;
	char msg[1024];
	va_list ap;

	if (!lg || !lg->cb || level > lg->level)
		return;
	now = (uint64_t)mono_ns();
	if (!rl->window_ns || now - rl->window_ns >= 1000000000ULL) {
		rl->window_ns = now;
		rl->count = 0;
	}
	if (rl->count >= (rl->burst ? rl->burst : 1)) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		log_msg(lg, level, "%s (%u similar message(s) suppressed)", msg, rl->suppressed);
	else
		log_msg(lg, level, "%s", msg);
	rl->suppressed = 0;
}
