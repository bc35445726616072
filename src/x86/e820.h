/* SPDX-License-Identifier: MIT */
/* The machine's physical memory map as reported to the guest. */
#ifndef KEEL_X86_E820_H
#define KEEL_X86_E820_H

#include <stdint.h>

#include "kvm/mem.h"

#define E820_RAM      1
#define E820_RESERVED 2

#define E820_MAX 16

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fills `tab` (room for `max` entries); returns the count or -1 if too small. */
int e820_build(const struct mem *mem, struct e820_entry *tab, int max);

#endif
