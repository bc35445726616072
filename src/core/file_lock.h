/* SPDX-License-Identifier: MIT */
/* Whole-file OFD locks, so two VMs never write one file (disk images, EFI variable stores). */
#ifndef KEEL_CORE_FILE_LOCK_H
#define KEEL_CORE_FILE_LOCK_H

#include <stdbool.h>

#include "core/error.h"

/*
 * Locks all of `fd`'s file (shared, or exclusive for writers) for as long as
 * the descriptor is open.  A lock held elsewhere is KEEL_ERR_STATE naming
 * `what` ("disk image") and `path`, and the holder's pid when known.
 */
int file_lock(int fd, bool exclusive, const char *what, const char *path, keel_error **err);

#endif
