/* SPDX-License-Identifier: MIT */
/*
 * Where a VM's messages go: the application's log callback (keel_log_cb) at
 * its level.  Devices and back ends hold a pointer to their VM's logger and
 * never see the VM itself.
 */
#ifndef KEEL_CORE_LOG_H
#define KEEL_CORE_LOG_H

#include <stdint.h>

#include <keel/keel.h>

struct logger {
	keel_log_cb cb;         /* NULL: nothing is logged */
	keel_log_level level;   /* messages above it are dropped */
	void *opaque;
};

/* One line to the callback, if any and if `level` passes. */
void log_msg(const struct logger *lg, keel_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * For messages a guest can trigger at will: at most `burst` (0 counts as 1)
 * a second.  One owner thread per limiter.
 */
struct log_ratelimit {
	unsigned int burst;
	uint64_t window_ns;     /* start of the current one-second window */
	unsigned int count;     /* logged in this window */
	unsigned int suppressed;
};

/* log_msg() through a limiter; the next message logged says how many it dropped. */
void log_limited(const struct logger *lg, struct log_ratelimit *rl, keel_log_level level,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
