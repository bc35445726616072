/* SPDX-License-Identifier: MIT */
#ifndef KEEL_CORE_UTIL_H
#define KEEL_CORE_UTIL_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
