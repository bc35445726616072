/*
 * bzImage guest: checks what the loader put in boot_params (the zero
 * page) against the Linux x86 boot protocol 2.15.
 */
#include <keel/kit.h>

static u64 bp;

static u8 bp8(u32 off) { return *(u8 *)phys_ptr(bp + off); }
static u16 bp16(u32 off) { return *(u16 *)phys_ptr(bp + off); }
static u32 bp32(u32 off) { return *(u32 *)phys_ptr(bp + off); }

/* Half-open ranges [a, a+an) and [b, b+bn) intersect? */
static bool overlap(u64 a, u64 an, u64 b, u64 bn)
{
	return a < b + bn && b < a + an;
}

/*
 * The kernel occupies init_size bytes at its load address and, when the
 * 64-bit entry relocated it, also at its link address.
 */
extern char __image_start[];

static bool overlaps_kernel(u64 a, u64 n)
{
	u64 size = bp32(BP_INIT_SIZE);

	return overlap(a, n, boot_load, size) ||
	       overlap(a, n, (u64)__image_start, size);
}

static void check_header(void)
{
	check(bp16(BP_BOOT_FLAG) == 0xaa55 && !memcmp(phys_ptr(bp + BP_HEADER), "HdrS", 4),
	      "boot_flag and HdrS magic", "boot_flag=%#x version=%#x",
	      bp16(BP_BOOT_FLAG), bp16(BP_VERSION));
	check(bp8(BP_TYPE_OF_LOADER) != 0, "type_of_loader set",
	      "type_of_loader=%#x", bp8(BP_TYPE_OF_LOADER));
}

static void check_e820(void)
{
	int i, n = bp8(BP_E820_ENTRIES), ram = 0;
	u64 want_mib, total = memmap_ram_total();

	for (i = 0; i < memmap_count(); i++) {
		const struct mem_region *r = memmap_get(i);

		printf("  e820 %#014llx-%#014llx type %u\n", r->addr,
		       r->addr + r->size - 1, r->type);
		ram += r->type == E820_RAM;
	}
	check(n > 0 && n <= BP_E820_MAX && ram > 0, "e820 has RAM",
	      "%d entries, %d RAM, %llu KiB RAM", n, ram, total >> 10);
	if (cmdline_u64("expect_mem_mib", &want_mib)) {
		u64 want = want_mib << 20;
		u64 tol = cmdline_u64_or("mem_tol_mib", 4) << 20;

		check(total <= want + (1 << 20) && total + tol >= want,
		      "e820 RAM matches expect_mem_mib",
		      "%llu KiB, expected %llu MiB", total >> 10, want_mib);
	}
}

static void check_cmdline(u64 *ptr, u64 *len)
{
	u32 max = bp32(BP_CMDLINE_SIZE);

	*ptr = bp32(BP_CMD_LINE_PTR) | (u64)bp32(BP_EXT_CMD_LINE_PTR) << 32;
	*len = 0;
	if (!*ptr || *ptr >= 0x100000000ULL) {
		fail("cmdline pointer: %#llx not usable", *ptr);
		return;
	}
	*len = strlen(phys_ptr(*ptr));
	printf("cmdline at %#llx (%llu bytes): \"%s\"\n", *ptr, *len, cmdline());
	check(strstr(cmdline(), "bootparams-marker") != NULL && *len <= max,
	      "cmdline pointer valid", "marker %s, %llu of max %u bytes",
	      strstr(cmdline(), "bootparams-marker") ? "found" : "missing",
	      *len, max);
}

static void check_load(void)
{
	u32 align = bp32(BP_KERNEL_ALIGNMENT);

	printf("entered via %s at %#llx, boot_params at %#llx\n",
	       boot_kind_name(), boot_load, bp);
	check(align && !(boot_load & (align - 1)), "kernel load address aligned",
	      "%#llx, kernel_alignment %#x", boot_load, align);
}

static void check_initrd(u64 cmd, u64 cmdlen)
{
	u64 img = bp32(BP_RAMDISK_IMAGE) | (u64)bp32(BP_EXT_RAMDISK_IMAGE) << 32;
	u64 size = bp32(BP_RAMDISK_SIZE) | (u64)bp32(BP_EXT_RAMDISK_SIZE) << 32;
	u64 max = bp32(BP_INITRD_ADDR_MAX), want, i, bad = 0;
	const u8 *p = phys_ptr(img);

	if (!cmdline_u64("initrd_size", &want)) {
		printf("no initrd_size= on the command line: initrd not checked\n");
		return;
	}
	printf("initrd at %#llx, %llu bytes (initrd_addr_max %#llx)\n", img, size, max);
	if (!img || !size) {
		fail("initrd present: ramdisk_image=%#llx ramdisk_size=%llu", img, size);
		return;
	}
	check(img + size - 1 <= max, "initrd below initrd_addr_max",
	      "end %#llx, max %#llx", img + size - 1, max);
	check(size == want, "initrd size", "%llu, expected %llu", size, want);
	check(!overlaps_kernel(img, size) &&
	      !overlap(img, size, bp, 4096) && !overlap(img, size, cmd, cmdlen + 1),
	      "initrd does not overlap kernel/boot_params/cmdline",
	      "initrd %#llx+%#llx kernel %#llx+%#x bp %#llx cmdline %#llx",
	      img, size, boot_load, bp32(BP_INIT_SIZE), bp, cmd);
	if (img + size > 0x100000000ULL) {
		fail("initrd contents: above 4 GiB, not mapped");
		return;
	}
	for (i = 0; i < size && i < want; i++) {
		if (p[i] != (u8)(i * 7 + 3)) {
			if (!bad)
				printf("first mismatch at %llu: %#x\n", i, p[i]);
			bad++;
		}
	}
	check(!bad, "initrd contents", "%llu bytes checked, %llu bad",
	      i, bad);
}

void test_main(void)
{
	u64 cmd, cmdlen;

	bp = boot_info;
	printf("keel bootparams\n");
	if (boot_kind == BOOT_PVH || !bp) {
		fail("boot protocol: not entered through a bzImage entry");
		return;
	}
	check_header();
	check_load();
	check_e820();
	check_cmdline(&cmd, &cmdlen);
	check_initrd(cmd, cmdlen);
	check(bp32(BP_INIT_SIZE) != 0 && !overlaps_kernel(bp, 4096),
	      "boot_params outside kernel", "boot_params %#llx", bp);
}
