/* SPDX-License-Identifier: MIT */
#ifndef KEEL_CORE_UTIL_H
#define KEEL_CORE_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Signals an eventfd; a counter that would overflow is signalled already. */
static inline void efd_signal(int fd)
{
	uint64_t one = 1;

	while (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Clears a non-blocking eventfd; returns its count (0: nothing was pending). */
static inline uint64_t efd_drain(int fd)
{
	uint64_t v = 0;

	while (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		if (errno != EINTR)
			return 0;
	}
	return v;
}

#endif
