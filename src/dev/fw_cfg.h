/* SPDX-License-Identifier: MIT */
/*
 * QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU), the
 * way OVMF learns about the machine: a selector (port 0x510, 16 bits), a
 * data port (0x511, byte reads that advance through the selected item) and
 * the DMA interface (a big-endian guest address of a FWCfgDmaAccess written
 * to 0x514 and 0x518; the low half starts it).  Items are numbered keys and
 * named files (listed by key 0x19, from key 0x20 on).  Unknown keys read as
 * nothing (zeros); every item is read-only here.
 */
#ifndef KEEL_DEV_FW_CFG_H
#define KEEL_DEV_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "core/devctx.h"

#define FW_CFG_PORT_SEL    0x510
#define FW_CFG_PORT_DATA   0x511
#define FW_CFG_PORT_DMA    0x514

/* Keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
#define FW_CFG_SIGNATURE   0x00
#define FW_CFG_ID          0x01
#define FW_CFG_RAM_SIZE    0x03
#define FW_CFG_NB_CPUS     0x05
#define FW_CFG_BOOT_MENU   0x0e
#define FW_CFG_MAX_CPUS    0x0f
#define FW_CFG_FILE_DIR    0x19
#define FW_CFG_FILE_FIRST  0x20
#define FW_CFG_FILE_MAX    64       /* files keel offers */
#define FW_CFG_NAME_MAX    56       /* with the NUL */

/* FWCfgDmaAccess.control */
#define FW_CFG_DMA_ERROR   0x01
#define FW_CFG_DMA_READ    0x02
#define FW_CFG_DMA_SKIP    0x04
#define FW_CFG_DMA_SELECT  0x08
#define FW_CFG_DMA_WRITE   0x10

struct fw_cfg;

/*
 * Called when the guest selects the file, before it reads: the owner may
 * refresh the contents (e.g. ACPI tables after the firmware assigned PCI
 * resources), keeping their size.
 */
typedef void (*fw_cfg_select_fn)(void *opaque);

/* The device with the signature, ID (DMA offered) and file directory; one of the VM's devices. */
struct fw_cfg *fw_cfg_create(struct devctx *ctx, keel_error **err);
/* Sets numbered item `key` (below FW_CFG_FILE_FIRST) to a copy of `data`. */
int fw_cfg_set(struct fw_cfg *fc, uint16_t key, const void *data, size_t len, keel_error **err);
/* Adds the file `name`, a copy of `data`; `select` (may be NULL) is called on each selection. */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len,
		    fw_cfg_select_fn select, void *opaque, keel_error **err);
/* Replaces a file's contents with data of the same size (from a select callback). */
int fw_cfg_update_file(struct fw_cfg *fc, const char *name, const void *data, size_t len,
		       keel_error **err);

#endif
