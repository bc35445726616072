// SPDX-License-Identifier: MIT
/*
 * Linux x86 bzImage (boot protocol >= 2.12), entered at its 64-bit entry
 * point (startup_64, 0x200 bytes into the protected-mode part) with a
 * struct boot_params ("zero page") in RSI.  Offsets follow
 * Documentation/arch/x86/boot.rst and zero-page.rst.
 */
#include <string.h>

#include "boot/boot.h"
#include "core/le.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)

/* Setup header fields: offsets in the image and in boot_params alike. */
#define HDR_START            0x1f1   /* setup_sects, first byte of the header */
#define HDR_SETUP_SECTS      0x1f1
#define HDR_SYSSIZE          0x1f4   /* protected-mode size in 16-byte paragraphs */
#define HDR_BOOT_FLAG        0x1fe   /* 0xaa55 */
#define HDR_JUMP             0x200   /* 0xeb, then the header length from 0x202 */
#define HDR_HEADER           0x202   /* "HdrS" */
#define HDR_VERSION          0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS        0x211
#define HDR_CODE32_START     0x214
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_HEAP_END_PTR     0x224
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE      0x234
#define HDR_XLOADFLAGS       0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE        0x260
#define HDR_MIN_END          0x264   /* through init_size: every field used here */

#define LOADED_HIGH          0x01
#define CAN_USE_HEAP         0x80
#define XLF_KERNEL_64        0x0001

#define PROTO_MIN            0x020c  /* 2.12: xloadflags */
#define INITRD_ADDR_MAX_DEF  0x37ffffffULL
#define LOADER_UNDEFINED     0xff

/* boot_params (zero page) fields outside the setup header. */
#define BP_ACPI_RSDP_ADDR    0x070   /* boot protocol 2.14 */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_HDR_MAX_END       0x290   /* edd_mbr_sig_buffer follows the header */
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128
#define BP_E820_ENTRY_SIZE   20
#define BP_SIZE              0x1000

#define SECTOR_SIZE          512
#define ENTRY64_OFFSET       0x200

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t mib_up(uint64_t bytes)
{
	return bytes / MiB + (bytes % MiB != 0);
}

/* Offset of the protected-mode kernel in the file. */
static size_t pm_offset(const uint8_t *buf)
{
	unsigned int sects = buf[HDR_SETUP_SECTS];

	return (size_t)((sects ? sects : 4) + 1) * SECTOR_SIZE;
}

/* End of the setup header: 0x202 + the jump's displacement byte at 0x201. */
static size_t header_end(const uint8_t *buf)
{
	return HDR_HEADER + (size_t)buf[HDR_JUMP + 1];
}

int bzimage_probe(const uint8_t *buf, size_t len, keel_error **err)
{
	unsigned int version, sects;
	uint16_t xlf;
	size_t pm_off;

	if (!buf || len < HDR_VERSION + 2)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated bzImage: %zu bytes, setup header needs 0x%x", buf ? len : 0,
			       HDR_MIN_END);
	if (get_le16(buf + HDR_BOOT_FLAG) != 0xaa55 || memcmp(buf + HDR_HEADER, "HdrS", 4) != 0)
		return err_set(err, KEEL_ERR_FORMAT,
			       "not a bzImage: no boot flag 0xaa55 at 0x1fe and 'HdrS' at 0x202");
	version = get_le16(buf + HDR_VERSION);
	if (version < PROTO_MIN)
		return err_set(err, KEEL_ERR_FORMAT,
			       "bzImage boot protocol %u.%02u (0x%04x) is too old: keel needs 2.12 "
			       "(0x020c) or later for the 64-bit entry point", version >> 8,
			       version & 0xff, version);
	if (len < HDR_MIN_END)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated bzImage: %zu bytes, setup header needs 0x%x", len,
			       HDR_MIN_END);
	if (header_end(buf) < HDR_MIN_END)
		return err_set(err, KEEL_ERR_FORMAT,
			       "bzImage setup header ends at 0x%zx (byte 0x%02x at 0x201), protocol "
			       "%u.%02u needs at least 0x%x", header_end(buf), buf[HDR_JUMP + 1],
			       version >> 8, version & 0xff, HDR_MIN_END);
	xlf = get_le16(buf + HDR_XLOADFLAGS);
	if (!(xlf & XLF_KERNEL_64))
		return err_set(err, KEEL_ERR_FORMAT,
			       "bzImage has no 64-bit entry point (xloadflags 0x%04x lacks "
			       "XLF_KERNEL_64): keel boots x86-64 kernels only", xlf);
	sects = buf[HDR_SETUP_SECTS] ? buf[HDR_SETUP_SECTS] : 4;
	pm_off = pm_offset(buf);
	if (pm_off >= len)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated bzImage: setup claims %u sectors, file has %zu bytes "
			       "(protected-mode kernel would start at 0x%zx)", sects, len, pm_off);
	/* A cut-off image would boot and fault in its decompressor. */
	if ((uint64_t)get_le32(buf + HDR_SYSSIZE) * 16 > len - pm_off)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated bzImage: its header says the protected-mode kernel is %llu "
			       "bytes (syssize), the file holds %zu after the setup",
			       (unsigned long long)get_le32(buf + HDR_SYSSIZE) * 16, len - pm_off);
	return 0;
}

/*
 * Chooses where the protected-mode kernel goes and how far its memory use
 * (init_size from where it runs) reaches.
 */
static int bzimage_place(const struct mem *mem, const uint8_t *buf, size_t pm_size,
			 uint64_t *load_out, uint64_t *end_out, keel_error **err)
{
	uint64_t low_end = mem->region[0].gpa + mem->region[0].size;
	uint32_t align = get_le32(buf + HDR_KERNEL_ALIGNMENT);
	uint64_t pref = get_le64(buf + HDR_PREF_ADDRESS);
	uint64_t init_size = get_le32(buf + HDR_INIT_SIZE);
	uint64_t load, run, end;

	if (buf[HDR_RELOCATABLE]) {
		if (align == 0 || (align & (align - 1)))
			return err_set(err, KEEL_ERR_FORMAT,
				       "bzImage kernel_alignment 0x%x is not a power of two", align);
		if (pref >= LAYOUT_HIGH_RAM && pref % align == 0 && pref < low_end)
			load = pref;
		else
			load = (LAYOUT_HIGH_RAM + align - 1) & ~((uint64_t)align - 1);
	} else {
		/* Loaded at the traditional 1 MiB; it moves itself to pref_address. */
		load = LAYOUT_HIGH_RAM;
	}
	/*
	 * The decompressor runs at LOAD_PHYSICAL_ADDR (pref_address) when
	 * loaded below it, and needs init_size bytes from there.
	 */
	run = pref > load && pref < LAYOUT_4G ? pref : load;
	if (load >= low_end || pm_size > low_end - load ||
	    run >= low_end || init_size > low_end - run)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "kernel needs %llu MiB from 0x%llx, guest has %llu MiB",
			       (unsigned long long)mib_up(max_u64(init_size, pm_size)),
			       (unsigned long long)run, (unsigned long long)(low_end / MiB));
	end = max_u64(load + pm_size, run + init_size);
	*load_out = load;
	*end_out = end;
	return 0;
}

int bzimage_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
		 keel_error **err)
{
	const uint8_t *buf = spec->kernel;
	size_t len = spec->kernel_size;
	size_t pm_off, pm_size, hdr_end, cmdline_len;
	uint32_t cmdline_size;
	uint64_t load = 0, kernel_end = 0, initrd_max, initrd_gpa = 0;
	uint8_t *bp, *dst;
	int i;

	/* Validate everything first: nothing is written before this ends. */
	if (bzimage_probe(buf, len, err))
		return -1;
	if (spec->nr_e820 <= 0 || spec->nr_e820 > BP_E820_MAX)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory map has %d entries, boot_params holds 1 to %d",
			       spec->nr_e820, BP_E820_MAX);
	cmdline_len = strlen(spec->cmdline);
	cmdline_size = get_le32(buf + HDR_CMDLINE_SIZE);
	if (cmdline_len > cmdline_size)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, kernel accepts at most %u", cmdline_len,
			       cmdline_size);
	if (cmdline_len + 1 > LAYOUT_CMDLINE_MAX)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, keel accepts at most %llu", cmdline_len,
			       (unsigned long long)(LAYOUT_CMDLINE_MAX - 1));

	pm_off = pm_offset(buf);
	pm_size = len - pm_off;
	if (bzimage_place(mem, buf, pm_size, &load, &kernel_end, err))
		return -1;

	initrd_max = get_le32(buf + HDR_INITRD_ADDR_MAX);
	if (!initrd_max)
		initrd_max = INITRD_ADDR_MAX_DEF;
	if (spec->initrd && spec->initrd_size) {
		if (spec->initrd_size > UINT32_MAX)
			return err_set(err, KEEL_ERR_TOO_LARGE,
				       "initrd (%zu bytes) is larger than the 4 GiB a bzImage accepts",
				       spec->initrd_size);
		if (boot_place_initrd(mem, NULL, spec->initrd_size, kernel_end, initrd_max,
				      &initrd_gpa, err))
			return -1;
	}
	bp = mem_ptr(mem, LAYOUT_ZERO_PAGE, BP_SIZE);
	dst = mem_ptr(mem, load, pm_size);
	if (!bp || !dst)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "guest RAM too small for boot_params at 0x%llx and the kernel at 0x%llx",
			       (unsigned long long)LAYOUT_ZERO_PAGE, (unsigned long long)load);

	/* The kernel. */
	memcpy(dst, buf + pm_off, pm_size);

	/* boot_params: the image's setup header, then what the loader fills in. */
	memset(bp, 0, BP_SIZE);
	hdr_end = header_end(buf);
	if (hdr_end > BP_HDR_MAX_END)
		hdr_end = BP_HDR_MAX_END;
	if (hdr_end > len)
		hdr_end = len;
	memcpy(bp + HDR_START, buf + HDR_START, hdr_end - HDR_START);

	bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[HDR_LOADFLAGS] = (uint8_t)((bp[HDR_LOADFLAGS] | LOADED_HIGH) & ~CAN_USE_HEAP);
	put_le16(bp + HDR_HEAP_END_PTR, 0);
	put_le32(bp + HDR_CODE32_START, (uint32_t)load);
	put_le32(bp + HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	put_le32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put_le32(bp + HDR_RAMDISK_SIZE, (uint32_t)(initrd_gpa ? spec->initrd_size : 0));
	put_le32(bp + BP_EXT_RAMDISK_SIZE, 0);
	put_le64(bp + BP_ACPI_RSDP_ADDR, spec->rsdp);
	bp[BP_E820_ENTRIES] = (uint8_t)spec->nr_e820;
	for (i = 0; i < spec->nr_e820; i++) {
		uint8_t *e = bp + BP_E820_TABLE + (size_t)i * BP_E820_ENTRY_SIZE;

		put_le64(e, spec->e820[i].addr);
		put_le64(e + 8, spec->e820[i].size);
		put_le32(e + 16, spec->e820[i].type);
	}

	if (boot_place_cmdline(mem, spec->cmdline, cmdline_size, err))
		return -1;
	if (initrd_gpa && boot_place_initrd(mem, spec->initrd, spec->initrd_size, kernel_end,
					    initrd_max, &initrd_gpa, err))
		return -1;

	*entry = (struct boot_entry){
		.mode = BOOT_MODE_LONG64,
		.rip = load + ENTRY64_OFFSET,
		.rsi = LAYOUT_ZERO_PAGE,
	};
	return 0;
}
