/* SPDX-License-Identifier: MIT */
/*
 * A serial attachment as the devices on it (the 16550A, virtio-console) use
 * it.  Output never blocks the guest for long, never kills the application
 * with SIGPIPE, and gives up cleanly when the reader is gone.
 */
#ifndef KEEL_CORE_SERIAL_IO_H
#define KEEL_CORE_SERIAL_IO_H

#include <stdbool.h>
#include <stddef.h>

struct serial_out {
	int fd;                 /* -1: output discarded */
	bool stalled;           /* a non-blocking reader stopped reading: drop */
	bool broken;            /* writing failed for good: drop from now on */
};

static inline void serial_out_init(struct serial_out *o, int fd)
{
	*o = (struct serial_out){ .fd = fd };
}

/*
 * Writes `len` bytes.  A full non-blocking descriptor is waited on for 1 s
 * once, then output is dropped until it drains.  Returns -1 (errno set) the
 * one time the output breaks for good, so the caller can log it; else 0.
 */
int serial_out_write(struct serial_out *o, const void *buf, size_t len);

/*
 * Whether input from `fd` can be waited for: epoll refuses regular files and
 * some devices (/dev/null), whose input is then treated as no input at all.
 */
bool serial_in_pollable(int fd);

#endif
