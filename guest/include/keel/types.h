#ifndef KEEL_TYPES_H
#define KEEL_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef unsigned long long u64;	/* so %llx matches */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
