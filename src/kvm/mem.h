/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: one mapping in the VMM (private anonymous memory with THP, or a
 * hugetlbfs memfd), split into KVM memory slots around the 32-bit MMIO hole.  Every guest-physical access from device code
 * goes through mem_ptr(), which bounds-checks it.
 */
#ifndef KEEL_KVM_MEM_H
#define KEEL_KVM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct mem {
	int fd;                 /* hugetlbfs memfd, or -1 (anonymous) */
	uint8_t *host;          /* whole mapping, `size` bytes */
	uint64_t size;
	bool hugepages;
	int nr_regions;
	struct mem_region region[MEM_MAX_REGIONS];
};

/* Allocates `size` bytes (multiple of 1 MiB) and lays out the regions. */
int mem_init(struct mem *mem, uint64_t size, bool hugepages, keel_error **err);
void mem_fini(struct mem *mem);
/*
 * Host pointer for guest-physical [gpa, gpa+len) or NULL when any byte of it
 * is outside guest RAM (or the range wraps).
 */
void *mem_ptr(const struct mem *mem, uint64_t gpa, uint64_t len);
/* Zeroes all guest RAM (used on reset), returning pages to the host. */
void mem_clear(struct mem *mem);

#endif
