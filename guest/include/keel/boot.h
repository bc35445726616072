/* Boot protocol structures: Xen PVH start info and Linux boot_params. */
#ifndef KEEL_BOOT_H
#define KEEL_BOOT_H

#include <keel/types.h>

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	u32 magic;
	u32 version;
	u32 flags;
	u32 nr_modules;
	u64 modlist_paddr;
	u64 cmdline_paddr;
	u64 rsdp_paddr;
	u64 memmap_paddr;	/* version >= 1 */
	u32 memmap_entries;	/* version >= 1 */
	u32 reserved;
};

struct hvm_modlist_entry {
	u64 paddr;
	u64 size;
	u64 cmdline_paddr;
	u64 reserved;
};

struct hvm_memmap_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 reserved;
};

/* Offsets into the Linux "zero page" (struct boot_params), protocol 2.15. */
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_SETUP_SECTS		0x1f1
#define BP_BOOT_FLAG		0x1fe
#define BP_HEADER		0x202
#define BP_VERSION		0x206
#define BP_TYPE_OF_LOADER	0x210
#define BP_LOADFLAGS		0x211
#define BP_CODE32_START		0x214
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_CMD_LINE_PTR		0x228
#define BP_INITRD_ADDR_MAX	0x22c
#define BP_KERNEL_ALIGNMENT	0x230
#define BP_RELOCATABLE		0x234
#define BP_XLOADFLAGS		0x236
#define BP_CMDLINE_SIZE		0x238
#define BP_PREF_ADDRESS		0x258
#define BP_INIT_SIZE		0x260
#define BP_E820_TABLE		0x2d0
#define BP_E820_MAX		128

struct e820_entry {
	u64 addr;
	u64 size;
	u32 type;
} __attribute__((packed));

#define E820_RAM 1

/* Which entry point the image was started through (set by head code). */
enum boot_kind {
	BOOT_PVH = 1,		/* ELF PVH note, 32-bit, EBX = start info */
	BOOT_BZ32 = 2,		/* bzImage code32_start, ESI = boot_params */
	BOOT_BZ64 = 3,		/* bzImage 64-bit entry, RSI = boot_params */
};

/* Written by the ring-0 head code, read by ring 3. */
extern u32 boot_kind;
extern u64 boot_info;		/* start info / boot_params physical address */
extern u64 boot_load;		/* physical address the image runs from */

#endif
