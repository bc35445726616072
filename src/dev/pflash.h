/* SPDX-License-Identifier: MIT */
/*
 * A CFI flash device in the style of Intel's (QEMU's pflash_cfi01), as OVMF's
 * variable driver programs it (QemuFlashFvbServicesRuntimeDxe): byte
 * program (0x10/0x40, data), block erase (0x20, 0xD0), clear status (0x50),
 * read status (0x70), read array (0xFF).  In read-array mode the array is a
 * read-only KVM memory slot, so the firmware reads it at memory speed and
 * only writes exit; in any other mode the slot is removed and reads trap to
 * return the status.
 */
#ifndef KEEL_DEV_PFLASH_H
#define KEEL_DEV_PFLASH_H

#include <stdint.h>

#include "core/devctx.h"

struct pflash;

struct pflash_config {
	const char *name;       /* for messages */
	uint64_t base;          /* guest address of the array */
	uint8_t *mem;           /* the array, `size` bytes (the device writes it) */
	uint64_t size;
	uint32_t block_size;    /* erase block: a power of two dividing size */
	uint32_t slot;          /* KVM memory slot for read-array mode */
	/*
	 * >= 0: `mem` is a MAP_SHARED mapping of this file: each program or
	 * erase is in the file when the guest sees it complete, and is synced
	 * to the disk (msync) when the firmware returns to read-array mode.
	 */
	int file_fd;
};

/* The flash, in read-array mode; one of the VM's devices. */
struct pflash *pflash_create(struct devctx *ctx, const struct pflash_config *cfg,
			     keel_error **err);

#endif
