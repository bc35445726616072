// SPDX-License-Identifier: MIT
/*
 * Boot loaders on synthetic images built here (a minimal bzImage, minimal
 * ELF64/ELF32 files with a PVH note) and, when present, on the real kernel
 * in ../shared/linux.  Every error path checks the code, a key value in the
 * message, and that guest RAM was left untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "check.h"
#include "x86/e820.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)
#define RAM_SIZE (64 * MiB)

static struct mem ram;
static struct e820_entry e820[E820_MAX];
static int nr_e820;
static char tmpdir[] = "/tmp/keel-test-boot-XXXXXX";

/* ------------------------------------------------------------ helpers */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static uint8_t *gp(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(&ram, gpa, len);

	if (!p) {
		fprintf(stderr, "guest range 0x%llx+0x%llx not in RAM\n", (unsigned long long)gpa,
			(unsigned long long)len);
		exit(1);
	}
	return p;
}

static int ram_is_zero(const struct mem *m)
{
	static const uint8_t zero[4096];
	uint64_t off;

	for (off = 0; off < m->size; off += sizeof(zero))
		if (memcmp(m->host + off, zero, sizeof(zero)) != 0)
			return 0;
	return 1;
}

static void reset_ram(void)
{
	memset(ram.host, 0, ram.size);
}

/*
 * Checks a failed call: return value, error code, a key part of the
 * message, and that guest RAM is still all zero.
 */
#define EXPECT_ERR(ret, err, code, needle)                                       \
	do {                                                                     \
		int ret_ = (ret);                                                \
		expect_err(__FILE__, __LINE__, ret_, (err), code, needle);       \
		(err) = NULL;                                                    \
	} while (0)

static void expect_err(const char *file, int line, int ret, keel_error *err,
		       keel_error_code code, const char *needle)
{
	const char *msg = keel_error_get_message(err);

	if (ret != -1 || !err) {
		fprintf(stderr, "%s:%d: expected failure (%s), got ret %d\n", file, line, needle,
			ret);
		check_failures++;
	} else {
		printf("  ok: [%d] %s\n", keel_error_get_code(err), msg);
		if (keel_error_get_code(err) != code) {
			fprintf(stderr, "%s:%d: error code %d, expected %d (%s)\n", file, line,
				keel_error_get_code(err), code, msg);
			check_failures++;
		}
		if (!strstr(msg, needle)) {
			fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", file, line, msg, needle);
			check_failures++;
		}
	}
	if (!ram_is_zero(&ram)) {
		fprintf(stderr, "%s:%d: guest RAM was written by a failed load (%s)\n", file, line,
			needle);
		check_failures++;
		reset_ram();
	}
	keel_error_free(err);
}

static int load(const uint8_t *k, size_t klen, const uint8_t *initrd, size_t ilen,
		const char *cmdline, struct boot_entry *entry, keel_error **err)
{
	struct boot_spec spec = {
		.kernel = k, .kernel_size = klen, .initrd = initrd, .initrd_size = ilen,
		.cmdline = cmdline, .e820 = e820, .nr_e820 = nr_e820,
	};

	return boot_load(&ram, &spec, entry, err);
}

static char *write_tmp(const char *name, const void *data, size_t len)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		exit(1);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
		perror(path);
		exit(1);
	}
	return path;
}

/* ------------------------------------------------------------ bzImage */

#define BZ_SETUP_SECTS 1
#define BZ_PM_OFF      ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PM_SIZE     0x1000
#define BZ_LEN         (BZ_PM_OFF + BZ_PM_SIZE)
#define BZ_PREF        0x1000000ULL
#define BZ_INIT_SIZE   0x800000U

/* A minimal bzImage: boot sector, setup header (protocol 2.15), PM part. */
static uint8_t *make_bzimage(void)
{
	uint8_t *b = calloc(1, BZ_LEN);
	size_t i;

	b[0x1f1] = BZ_SETUP_SECTS;
	put32(b + 0x1f4, BZ_PM_SIZE / 16);      /* syssize */
	put16(b + 0x1fa, 0xffff);               /* vid_mode: copied as is */
	put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;                        /* jmp to 0x202 + 0x6a = 0x26c */
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020f);
	b[0x211] = 0x01;                        /* LOADED_HIGH */
	put32(b + 0x214, 0x100000);
	put32(b + 0x22c, 0x7fffffff);           /* initrd_addr_max */
	put32(b + 0x230, 0x200000);             /* kernel_alignment */
	b[0x234] = 1;                           /* relocatable */
	b[0x235] = 21;
	put16(b + 0x236, 0x0003);               /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	put32(b + 0x238, 2047);                 /* cmdline_size */
	put64(b + 0x258, BZ_PREF);
	put32(b + 0x260, BZ_INIT_SIZE);
	put32(b + 0x268, 0x1234);               /* kernel_info_offset: last header field */
	b[0x26c] = 0xab;                        /* beyond the header: must not be copied */
	b[0x28f] = 0xcd;
	for (i = 0; i < BZ_PM_SIZE; i++)
		b[BZ_PM_OFF + i] = (uint8_t)(i * 7 + 3);
	return b;
}

static void check_boot_params(uint64_t load_addr, uint64_t initrd_gpa, size_t initrd_len,
			      const char *cmdline)
{
	uint8_t *bp = gp(LAYOUT_ZERO_PAGE, 4096);
	int i;

	/* Header copied from 0x1f1 through 0x26c, nothing after it. */
	CHECK(bp[0x1f1] == BZ_SETUP_SECTS);
	CHECK(get16(bp + 0x1fa) == 0xffff);
	CHECK(get16(bp + 0x1fe) == 0xaa55);
	CHECK(memcmp(bp + 0x202, "HdrS", 4) == 0);
	CHECK(get16(bp + 0x206) == 0x020f);
	CHECK(get32(bp + 0x230) == 0x200000);
	CHECK(get32(bp + 0x260) == BZ_INIT_SIZE);
	CHECK(get32(bp + 0x268) == 0x1234);
	CHECK(bp[0x26c] == 0 && bp[0x28f] == 0);
	CHECK(bp[0x1f0] == 0 && bp[0x1ef] == 0);  /* sentinel stays 0 */
	/* Loader fields. */
	CHECK(bp[0x210] == 0xff);
	CHECK((bp[0x211] & 0x01) == 0x01 && (bp[0x211] & 0x80) == 0);
	CHECK(get16(bp + 0x224) == 0);
	CHECK(get32(bp + 0x214) == load_addr);
	CHECK(get32(bp + 0x228) == LAYOUT_CMDLINE);
	CHECK(get32(bp + 0x0c8) == 0);
	CHECK(get32(bp + 0x218) == initrd_gpa);
	CHECK(get32(bp + 0x21c) == initrd_len);
	CHECK(get32(bp + 0x0c0) == 0 && get32(bp + 0x0c4) == 0);
	CHECK(bp[0x1e8] == nr_e820);
	for (i = 0; i < nr_e820; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;

		CHECK(get64(e) == e820[i].addr);
		CHECK(get64(e + 8) == e820[i].size);
		CHECK(get32(e + 16) == e820[i].type);
	}
	CHECK(get64(bp + 0x2d0 + 20 * nr_e820) == 0);
	CHECK(strcmp((char *)gp(LAYOUT_CMDLINE, strlen(cmdline) + 1), cmdline) == 0);
}

static void test_bzimage_ok(void)
{
	static const char cmdline[] = "console=ttyS0 panic=-1";
	uint8_t *b = make_bzimage();
	uint8_t initrd[3000];
	struct boot_entry entry;
	keel_error *err = NULL;
	enum boot_format fmt = BOOT_FMT_PVH;
	uint64_t initrd_gpa;
	size_t i;

	printf("bzImage: relocatable, at pref_address, with initrd\n");
	CHECK(boot_probe(b, BZ_LEN, &fmt, &err) == 0 && fmt == BOOT_FMT_BZIMAGE);
	for (i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	reset_ram();
	if (load(b, BZ_LEN, initrd, sizeof(initrd), cmdline, &entry, &err)) {
		fprintf(stderr, "bzImage load failed: %s\n", keel_error_get_message(err));
		check_failures++;
		keel_error_free(err);
		free(b);
		return;
	}
	CHECK(entry.mode == BOOT_MODE_LONG64);
	CHECK(entry.rip == BZ_PREF + 0x200);
	CHECK(entry.rsi == LAYOUT_ZERO_PAGE);
	CHECK(memcmp(gp(BZ_PREF, BZ_PM_SIZE), b + BZ_PM_OFF, BZ_PM_SIZE) == 0);
	/* Highest page below the end of RAM (initrd_addr_max is higher). */
	initrd_gpa = (RAM_SIZE - sizeof(initrd)) & ~0xfffULL;
	CHECK(memcmp(gp(initrd_gpa, sizeof(initrd)), initrd, sizeof(initrd)) == 0);
	check_boot_params(BZ_PREF, initrd_gpa, sizeof(initrd), cmdline);

	printf("bzImage: initrd_addr_max below the end of RAM\n");
	put32(b + 0x22c, 0x1ffffff);            /* 32 MiB - 1 */
	reset_ram();
	CHECK(load(b, BZ_LEN, initrd, sizeof(initrd), "", &entry, NULL) == 0);
	initrd_gpa = (0x2000000 - sizeof(initrd)) & ~0xfffULL;
	CHECK(get32(gp(LAYOUT_ZERO_PAGE + 0x218, 4)) == initrd_gpa);
	CHECK(memcmp(gp(initrd_gpa, sizeof(initrd)), initrd, sizeof(initrd)) == 0);
	put32(b + 0x22c, 0x7fffffff);

	printf("bzImage: relocatable, pref_address unaligned: lowest aligned address\n");
	put64(b + 0x258, 0x1080000);
	reset_ram();
	CHECK(load(b, BZ_LEN, NULL, 0, cmdline, &entry, NULL) == 0);
	CHECK(entry.rip == 0x200000 + 0x200);
	CHECK(memcmp(gp(0x200000, BZ_PM_SIZE), b + BZ_PM_OFF, BZ_PM_SIZE) == 0);
	check_boot_params(0x200000, 0, 0, cmdline);
	put64(b + 0x258, BZ_PREF);

	printf("bzImage: not relocatable: at 1 MiB\n");
	b[0x234] = 0;
	reset_ram();
	CHECK(load(b, BZ_LEN, NULL, 0, cmdline, &entry, NULL) == 0);
	CHECK(entry.rip == 0x100000 + 0x200 && entry.mode == BOOT_MODE_LONG64);
	CHECK(memcmp(gp(0x100000, BZ_PM_SIZE), b + BZ_PM_OFF, BZ_PM_SIZE) == 0);
	check_boot_params(0x100000, 0, 0, cmdline);
	b[0x234] = 1;

	printf("bzImage: setup_sects 0 means 4\n");
	{
		size_t len = 5 * 512 + BZ_PM_SIZE;
		uint8_t *b0 = calloc(1, len);

		memcpy(b0, b, BZ_PM_OFF);
		b0[0x1f1] = 0;
		memcpy(b0 + 5 * 512, b + BZ_PM_OFF, BZ_PM_SIZE);
		reset_ram();
		CHECK(load(b0, len, NULL, 0, "", &entry, NULL) == 0);
		CHECK(memcmp(gp(BZ_PREF, BZ_PM_SIZE), b + BZ_PM_OFF, BZ_PM_SIZE) == 0);
		free(b0);
	}
	reset_ram();
	free(b);
}

static void test_bzimage_errors(void)
{
	uint8_t *b = make_bzimage();
	struct boot_entry entry;
	keel_error *err = NULL;
	char *longline;

	printf("bzImage errors\n");
	reset_ram();

	EXPECT_ERR(load(b, 0x240, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "truncated bzImage: 576 bytes");
	err = NULL;

	put16(b + 0x206, 0x0201);
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "2.01 (0x0201)");
	put16(b + 0x206, 0x020f);

	put16(b + 0x236, 0x0002);
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "xloadflags 0x0002 lacks XLF_KERNEL_64");
	put16(b + 0x236, 0x0003);

	b[0x1f1] = 20;
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "setup claims 20 sectors, file has 5120 bytes");
	/* The protected-mode part must not be empty either. */
	b[0x1f1] = 9;
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "setup claims 9 sectors");
	b[0x1f1] = BZ_SETUP_SECTS;
	/* A file cut short of what syssize says (it would boot and fault). */
	EXPECT_ERR(load(b, BZ_LEN - 16, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "protected-mode kernel is 4096 bytes (syssize), the file holds 4080");

	b[0x201] = 0x40;
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "setup header ends at 0x242");
	b[0x201] = 0x6a;

	put32(b + 0x260, 128 * MiB);
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_TOO_LARGE,
		   "kernel needs 128 MiB from 0x1000000, guest has 64 MiB");
	put32(b + 0x260, BZ_INIT_SIZE);

	put32(b + 0x230, 0x300000);
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "kernel_alignment 0x300000");
	put32(b + 0x230, 0x200000);

	put32(b + 0x238, 10);
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, "console=ttyS0 panic=-1", &entry, &err), err,
		   KEEL_ERR_TOO_LARGE, "command line is 22 bytes, kernel accepts at most 10");
	/* Also when bzimage_load is called directly. */
	{
		struct boot_spec spec = { .kernel = b, .kernel_size = BZ_LEN,
					  .cmdline = "console=ttyS0 panic=-1", .e820 = e820,
					  .nr_e820 = nr_e820 };

		EXPECT_ERR(bzimage_load(&ram, &spec, &entry, &err), err, KEEL_ERR_TOO_LARGE,
			   "kernel accepts at most 10");
		}
	put32(b + 0x238, 0x7fffffff);

	longline = malloc(LAYOUT_CMDLINE_MAX + 1);
	memset(longline, 'x', LAYOUT_CMDLINE_MAX);
	longline[LAYOUT_CMDLINE_MAX] = 0;
	EXPECT_ERR(load(b, BZ_LEN, NULL, 0, longline, &entry, &err), err, KEEL_ERR_TOO_LARGE,
		   "command line is 65536 bytes, keel accepts at most 65535");
	/* Exactly the maximum fits. */
	longline[LAYOUT_CMDLINE_MAX - 1] = 0;
	CHECK(load(b, BZ_LEN, NULL, 0, longline, &entry, NULL) == 0);
	CHECK(strlen((char *)gp(LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX)) == LAYOUT_CMDLINE_MAX - 1);
	reset_ram();
	free(longline);
	put32(b + 0x238, 2047);

	{
		size_t big = 60 * MiB;
		uint8_t *initrd = calloc(1, big);

		EXPECT_ERR(load(b, BZ_LEN, initrd, big, "", &entry, &err), err, KEEL_ERR_TOO_LARGE,
			   "initrd (62914560 bytes) does not fit in guest memory below 0x4000000: "
			   "kernel ends at 0x1800000, 64 MiB of RAM");
			/* Below a low initrd_addr_max, even a smaller one does not fit. */
		put32(b + 0x22c, 0x1ffffff);
		EXPECT_ERR(load(b, BZ_LEN, initrd, 9 * MiB, "", &entry, &err), err,
			   KEEL_ERR_TOO_LARGE, "does not fit in guest memory below 0x2000000");
			put32(b + 0x22c, 0x7fffffff);
		free(initrd);
	}
	free(b);
}

/* ---------------------------------------------------------------- ELF */

#define ELF_PADDR   0x1000000ULL
#define ELF_ENTRY   0x1000100U
#define ELF_FILESZ  0x800
#define ELF_MEMSZ   0x1800
#define ELF_SEG_OFF 0x200
#define ELF_NOTE_OFF 0x140
#define ELF_LEN     (ELF_SEG_OFF + ELF_FILESZ)

/*
 * A minimal ELF kernel: ELF64 or ELF32 header, PT_LOAD + PT_NOTE, a GNU
 * note with an unaligned descriptor, then the Xen PHYS32_ENTRY note.
 */
static uint8_t *make_elf(int is64, size_t entry_descsz)
{
	uint8_t *b = calloc(1, ELF_LEN);
	size_t ehsize = is64 ? 64 : 52, phentsize = is64 ? 56 : 32;
	uint8_t *ph = b + ehsize, *n = b + ELF_NOTE_OFF;
	size_t notes_len, i;

	memcpy(b, "\x7f" "ELF", 4);
	b[4] = is64 ? 2 : 1;
	b[5] = 1;
	b[6] = 1;
	put16(b + 16, 2);                       /* ET_EXEC */
	put16(b + 18, is64 ? 62 : 3);
	put32(b + 20, 1);
	/* GNU note: namesz 4, descsz 5 (padded to 8), type 3. */
	put32(n, 4); put32(n + 4, 5); put32(n + 8, 3);
	memcpy(n + 12, "GNU", 4);
	memcpy(n + 16, "\1\2\3\4\5", 5);
	n += 12 + 4 + 8;
	/* Xen PHYS32_ENTRY. */
	put32(n, 4); put32(n + 4, (uint32_t)entry_descsz); put32(n + 8, 18);
	memcpy(n + 12, "Xen", 4);
	put32(n + 16, ELF_ENTRY);
	n += 12 + 4 + ((entry_descsz + 3) & ~(size_t)3);
	notes_len = (size_t)(n - (b + ELF_NOTE_OFF));

	if (is64) {
		put64(b + 24, 0xffffffff81000000ULL);
		put64(b + 32, 64);              /* e_phoff */
		put16(b + 52, 64);
		put16(b + 54, (uint16_t)phentsize);
		put16(b + 56, 2);
		put32(ph, 1); put32(ph + 4, 5);
		put64(ph + 8, ELF_SEG_OFF);
		put64(ph + 16, 0xffffffff81000000ULL);
		put64(ph + 24, ELF_PADDR);
		put64(ph + 32, ELF_FILESZ);
		put64(ph + 40, ELF_MEMSZ);
		put64(ph + 48, 0x200000);
		ph += phentsize;
		put32(ph, 4);
		put64(ph + 8, ELF_NOTE_OFF);
		put64(ph + 24, ELF_PADDR);
		put64(ph + 32, notes_len);
		put64(ph + 40, notes_len);
		put64(ph + 48, 4);
	} else {
		put32(b + 24, ELF_ENTRY);
		put32(b + 28, 52);
		put16(b + 40, 52);
		put16(b + 42, (uint16_t)phentsize);
		put16(b + 44, 2);
		put32(ph, 1);
		put32(ph + 4, ELF_SEG_OFF);
		put32(ph + 8, (uint32_t)ELF_PADDR);
		put32(ph + 12, (uint32_t)ELF_PADDR);
		put32(ph + 16, ELF_FILESZ);
		put32(ph + 20, ELF_MEMSZ);
		put32(ph + 24, 5);
		put32(ph + 28, 0x1000);
		ph += phentsize;
		put32(ph, 4);
		put32(ph + 4, ELF_NOTE_OFF);
		put32(ph + 16, (uint32_t)notes_len);
		put32(ph + 20, (uint32_t)notes_len);
		put32(ph + 28, 4);
	}
	for (i = 0; i < ELF_FILESZ; i++)
		b[ELF_SEG_OFF + i] = (uint8_t)(i * 13 + 1);
	return b;
}

/* Offset of PT_LOAD's fields in the 64-bit image. */
#define PH64 64
#define PH64_NOTE (64 + 56)

static void check_start_info(uint64_t initrd_gpa, size_t initrd_len, const char *cmdline,
			     uint64_t rsdp)
{
	uint8_t *si = gp(LAYOUT_PVH_INFO, LAYOUT_PVH_INFO_SIZE);
	uint64_t memmap, modlist;
	int i;

	CHECK(get32(si) == 0x336ec578);
	CHECK(get32(si + 4) == 1);
	CHECK(get32(si + 8) == 0);
	CHECK(get32(si + 12) == (initrd_len ? 1 : 0));
	CHECK(get64(si + 24) == LAYOUT_CMDLINE);
	CHECK(get64(si + 32) == rsdp);
	CHECK(get32(si + 48) == (uint32_t)nr_e820);
	CHECK(get32(si + 52) == 0);
	memmap = get64(si + 40);
	CHECK(memmap >= LAYOUT_PVH_INFO + 56 &&
	      memmap + 24 * (uint64_t)nr_e820 <= LAYOUT_PVH_INFO + LAYOUT_PVH_INFO_SIZE);
	for (i = 0; i < nr_e820; i++) {
		const uint8_t *e = gp(memmap + 24 * (uint64_t)i, 24);

		CHECK(get64(e) == e820[i].addr);
		CHECK(get64(e + 8) == e820[i].size);
		CHECK(get32(e + 16) == e820[i].type);
		CHECK(get32(e + 20) == 0);
	}
	modlist = get64(si + 16);
	if (initrd_len) {
		const uint8_t *m = gp(modlist, 32);

		CHECK(modlist >= LAYOUT_PVH_INFO + 56 &&
		      modlist + 32 <= LAYOUT_PVH_INFO + LAYOUT_PVH_INFO_SIZE);
		CHECK(modlist + 32 <= memmap || modlist >= memmap + 24 * (uint64_t)nr_e820);
		CHECK(get64(m) == initrd_gpa);
		CHECK(get64(m + 8) == initrd_len);
		CHECK(get64(m + 16) == 0 && get64(m + 24) == 0);
	} else {
		CHECK(modlist == 0);
	}
	CHECK(strcmp((char *)gp(LAYOUT_CMDLINE, strlen(cmdline) + 1), cmdline) == 0);
}

static void test_pvh_ok(void)
{
	static const char cmdline[] = "console=ttyS0 rdinit=/init";
	uint8_t initrd[MiB / 2 + 123];
	struct boot_entry entry;
	keel_error *err = NULL;
	enum boot_format fmt = BOOT_FMT_BZIMAGE;
	uint64_t initrd_gpa;
	int is64;
	size_t i;

	for (i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 31);
	for (is64 = 1; is64 >= 0; is64--) {
		uint8_t *b = make_elf(is64, is64 ? 8 : 4);

		printf("PVH: ELF%d with initrd\n", is64 ? 64 : 32);
		CHECK(boot_probe(b, ELF_LEN, &fmt, &err) == 0 && fmt == BOOT_FMT_PVH);
		reset_ram();
		/* The bss must be cleared even where RAM is not zero. */
		memset(gp(ELF_PADDR + ELF_FILESZ, ELF_MEMSZ - ELF_FILESZ), 0xcc,
		       ELF_MEMSZ - ELF_FILESZ);
		if (load(b, ELF_LEN, initrd, sizeof(initrd), cmdline, &entry, &err)) {
			fprintf(stderr, "PVH load failed: %s\n", keel_error_get_message(err));
			check_failures++;
			keel_error_free(err);
			err = NULL;
			free(b);
			continue;
		}
		CHECK(entry.mode == BOOT_MODE_PVH32);
		CHECK(entry.rip == ELF_ENTRY);
		CHECK(entry.rbx == LAYOUT_PVH_INFO);
		CHECK(memcmp(gp(ELF_PADDR, ELF_FILESZ), b + ELF_SEG_OFF, ELF_FILESZ) == 0);
		{
			const uint8_t *bss = gp(ELF_PADDR + ELF_FILESZ, ELF_MEMSZ - ELF_FILESZ);

			for (i = 0; i < ELF_MEMSZ - ELF_FILESZ; i++)
				if (bss[i]) {
					CHECK(!"bss cleared");
					break;
				}
		}
		initrd_gpa = (RAM_SIZE - sizeof(initrd)) & ~0xfffULL;
		CHECK(memcmp(gp(initrd_gpa, sizeof(initrd)), initrd, sizeof(initrd)) == 0);
		check_start_info(initrd_gpa, sizeof(initrd), cmdline, 0);

		printf("PVH: ELF%d without initrd\n", is64 ? 64 : 32);
		reset_ram();
		CHECK(load(b, ELF_LEN, NULL, 0, "", &entry, NULL) == 0);
		check_start_info(0, 0, "", 0);
		free(b);
	}
	reset_ram();
}

static void test_pvh_errors(void)
{
	uint8_t *b = make_elf(1, 8);
	struct boot_entry entry;
	keel_error *err = NULL;
	char *longline;

	printf("PVH errors\n");
	reset_ram();

	EXPECT_ERR(load(b, 40, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "truncated ELF header: 40 bytes");
	err = NULL;

	put16(b + 18, 40);                      /* EM_ARM */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "ELF machine 40");
	put16(b + 18, 62);

	put64(b + 32, 0x100000);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "program headers (offset 0x100000");
	put64(b + 32, UINT64_MAX - 8);          /* would wrap */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "lie outside the file");
	put64(b + 32, 64);

	put64(b + PH64 + 24, 0x3f00000);        /* 0x3f00000 + 0x1800 fits ... */
	put64(b + PH64 + 40, 0x200000);         /* ... but not 2 MiB */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_TOO_LARGE,
		   "0x200000 bytes at physical address 0x3f00000) lies outside guest RAM");
	put64(b + PH64 + 24, UINT64_MAX - 0xfff);   /* wraps */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_TOO_LARGE,
		   "outside guest RAM");
	put64(b + PH64 + 24, 0x10000);          /* over keel's boot data */
	put64(b + PH64 + 40, ELF_MEMSZ);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "0x10000 is below 1 MiB");
	put64(b + PH64 + 24, ELF_PADDR);

	put64(b + PH64 + 32, ELF_MEMSZ + 1);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "file size 0x1801 exceeds its memory size 0x1800");
	put64(b + PH64 + 32, ELF_FILESZ);

	put64(b + PH64 + 8, ELF_LEN - 0x10);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "PT_LOAD segment 0 (offset 0x9f0, 0x800 bytes) lies outside the file");
	put64(b + PH64 + 8, ELF_SEG_OFF);

	/* The Xen note is the second one: at ELF_NOTE_OFF + 24. */
	put32(b + ELF_NOTE_OFF + 24 + 4, 0x1000);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "descriptor size 4096 runs past");
	put32(b + ELF_NOTE_OFF + 24 + 4, 0xfffffffe);   /* aligning would wrap 32 bits */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "descriptor size 4294967294");
	put32(b + ELF_NOTE_OFF, 0xfffffff0);    /* first note's name */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "name size 4294967280 runs past");
	put32(b + ELF_NOTE_OFF, 4);
	put32(b + ELF_NOTE_OFF + 24 + 4, 2);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "2-byte descriptor");
	put32(b + ELF_NOTE_OFF + 24 + 4, 8);

	put64(b + PH64_NOTE + 32, 0x10000);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "PT_NOTE segment 1 (offset 0x140, 65536 bytes) lies outside the file");
	put64(b + PH64_NOTE + 32, 52);

	put32(b + ELF_NOTE_OFF + 24 + 8, 17);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
	put32(b + ELF_NOTE_OFF + 24 + 8, 18);
	memcpy(b + ELF_NOTE_OFF + 24 + 12, "Xem", 4);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "not a PVH-capable vmlinux");
	memcpy(b + ELF_NOTE_OFF + 24 + 12, "Xen", 4);

	put32(b + PH64, 0);                     /* PT_LOAD -> PT_NULL */
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "no PT_LOAD segment");
	put32(b + PH64, 1);

	put32(b + ELF_NOTE_OFF + 24 + 16, 0x2000000);
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "PVH entry point 0x2000000 lies in no PT_LOAD segment");
	put32(b + ELF_NOTE_OFF + 24 + 16, ELF_ENTRY);

	longline = malloc(LAYOUT_CMDLINE_MAX + 1);
	memset(longline, 'y', LAYOUT_CMDLINE_MAX);
	longline[LAYOUT_CMDLINE_MAX] = 0;
	EXPECT_ERR(load(b, ELF_LEN, NULL, 0, longline, &entry, &err), err, KEEL_ERR_TOO_LARGE,
		   "command line is 65536 bytes, keel accepts at most 65535");
	{
		struct boot_spec spec = { .kernel = b, .kernel_size = ELF_LEN, .cmdline = longline,
					  .e820 = e820, .nr_e820 = nr_e820 };

		EXPECT_ERR(pvh_load(&ram, &spec, &entry, &err), err, KEEL_ERR_TOO_LARGE,
			   "keel accepts at most 65535");
		}
	free(longline);

	{
		size_t big = 63 * MiB;
		uint8_t *initrd = calloc(1, big);

		EXPECT_ERR(load(b, ELF_LEN, initrd, big, "", &entry, &err), err,
			   KEEL_ERR_TOO_LARGE,
			   "initrd (66060288 bytes) does not fit in guest memory below 0x4000000: "
			   "kernel ends at 0x1001800, 64 MiB of RAM");
			free(initrd);
	}

	/* The pristine image still loads (the mutations were all undone). */
	CHECK(load(b, ELF_LEN, NULL, 0, "", &entry, NULL) == 0);
	reset_ram();
	free(b);
}

/* --------------------------------------------------- probing and files */

static void test_probe_and_files(void)
{
	static const uint8_t junk[600] = { 'M', 'Z', 1, 2, 3 };
	uint8_t *elf = make_elf(1, 8);
	uint8_t initrd[5000];
	struct boot_entry entry;
	enum boot_format fmt;
	keel_error *err = NULL;
	char *kpath, *ipath, *empty, *missing;

	printf("probing and files\n");
	reset_ram();
	EXPECT_ERR(boot_probe(junk, sizeof(junk), &fmt, &err), err, KEEL_ERR_FORMAT,
		   "not a kernel image: no bzImage header and no ELF magic");
	EXPECT_ERR(load(junk, sizeof(junk), NULL, 0, "", &entry, &err), err, KEEL_ERR_FORMAT,
		   "not a kernel image");
	EXPECT_ERR(boot_probe(junk, 0, &fmt, &err), err, KEEL_ERR_FORMAT, "not a kernel image");
	err = NULL;

	memset(initrd, 0x77, sizeof(initrd));
	kpath = write_tmp("vmlinux", elf, ELF_LEN);
	ipath = write_tmp("initrd.img", initrd, sizeof(initrd));
	empty = write_tmp("empty", NULL, 0);
	if (asprintf(&missing, "%s/no-such-kernel", tmpdir) < 0)
		exit(1);

	CHECK(boot_probe_file(kpath, &fmt, NULL) == 0 && fmt == BOOT_FMT_PVH);
	EXPECT_ERR(boot_probe_file(missing, &fmt, &err), err, KEEL_ERR_NOT_FOUND, missing);
	EXPECT_ERR(boot_probe_file(missing, &fmt, &err), err, KEEL_ERR_NOT_FOUND,
		   "No such file or directory");
	EXPECT_ERR(boot_probe_file(empty, &fmt, &err), err, KEEL_ERR_FORMAT, "is empty");
	EXPECT_ERR(boot_probe_file(tmpdir, &fmt, &err), err, KEEL_ERR_INVALID, "is a directory");
	{
		char *junkpath = write_tmp("junk", junk, sizeof(junk));

		EXPECT_ERR(boot_probe_file(junkpath, &fmt, &err), err, KEEL_ERR_FORMAT,
			   "junk': not a kernel image");
			unlink(junkpath);
		free(junkpath);
	}
	if (geteuid() != 0) {
		chmod(kpath, 0);
		EXPECT_ERR(boot_probe_file(kpath, &fmt, &err), err, KEEL_ERR_PERMISSION, kpath);
			chmod(kpath, 0644);
	}

	CHECK(boot_load_files(&ram, kpath, ipath, "console=ttyS0", 0xe0000, &entry, &err) == 0);
	if (err) {
		fprintf(stderr, "boot_load_files: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		err = NULL;
	}
	CHECK(entry.mode == BOOT_MODE_PVH32 && entry.rip == ELF_ENTRY);
	check_start_info((RAM_SIZE - sizeof(initrd)) & ~0xfffULL, sizeof(initrd), "console=ttyS0",
			 0xe0000);
	reset_ram();

	EXPECT_ERR(boot_load_files(&ram, kpath, missing, "", 0, &entry, &err), err,
		   KEEL_ERR_NOT_FOUND, "initrd '");
	EXPECT_ERR(boot_load_files(&ram, missing, ipath, "", 0, &entry, &err), err,
		   KEEL_ERR_NOT_FOUND, "kernel '");
	EXPECT_ERR(boot_load_files(&ram, kpath, empty, "", 0, &entry, &err), err, KEEL_ERR_FORMAT,
		   "is empty");
	/* Load errors name the files. */
	put32(elf + ELF_NOTE_OFF + 24 + 8, 17);
	unlink(kpath);
	free(kpath);
	kpath = write_tmp("vmlinux", elf, ELF_LEN);
	EXPECT_ERR(boot_load_files(&ram, kpath, NULL, "", 0, &entry, &err), err, KEEL_ERR_FORMAT,
		   "vmlinux': ELF kernel has no PVH entry note");
	err = NULL;

	unlink(kpath);
	unlink(ipath);
	unlink(empty);
	free(kpath);
	free(ipath);
	free(empty);
	free(missing);
	free(elf);
}

/* --------------------------------------------------------- placement */

static void test_place_initrd(void)
{
	uint64_t gpa = 1;
	keel_error *err = NULL;
	uint8_t data[100] = { 1 };

	printf("initrd placement\n");
	reset_ram();
	/* Compute-only: nothing written. */
	CHECK(boot_place_initrd(&ram, NULL, 8192, 2 * MiB, UINT64_MAX, &gpa, NULL) == 0);
	CHECK(gpa == RAM_SIZE - 8192);
	CHECK(ram_is_zero(&ram));
	CHECK(boot_place_initrd(&ram, NULL, 8193, 2 * MiB, 0x1ffffff, &gpa, NULL) == 0);
	CHECK(gpa == 0x2000000 - 0x3000);
	/* Exactly from kernel_end to the limit. */
	CHECK(boot_place_initrd(&ram, data, sizeof(data), RAM_SIZE - 4096, UINT64_MAX, &gpa,
				NULL) == 0);
	CHECK(gpa == RAM_SIZE - 4096 && gp(gpa, 1)[0] == 1);
	reset_ram();
	EXPECT_ERR(boot_place_initrd(&ram, data, 4097, RAM_SIZE - 4096, UINT64_MAX, &gpa, &err),
		   err, KEEL_ERR_TOO_LARGE, "initrd (4097 bytes)");
	err = NULL;
}

/* -------------------------------------------------------- real kernel */

static char *find_shared(const char *name)
{
	static const char *const prefixes[] = { "", "../", "../../", "../../../" };
	const char *env = getenv("KEEL_SHARED_DIR");
	char *path;
	size_t i;

	if (env) {
		if (asprintf(&path, "%s/linux/%s", env, name) < 0)
			return NULL;
		if (access(path, R_OK) == 0)
			return path;
		free(path);
	}
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (asprintf(&path, "%s../shared/linux/%s", prefixes[i], name) < 0)
			return NULL;
		if (access(path, R_OK) == 0)
			return path;
		free(path);
	}
	return NULL;
}

static void test_real_kernel(void)
{
	char *gz = find_shared("vmlinux-6.1-probe.gz");
	char *initrd = find_shared("initramfs-int80.cpio.gz");
	char *vmlinux = NULL, *cmd = NULL;
	struct e820_entry tab[E820_MAX];
	struct boot_entry entry;
	enum boot_format fmt;
	keel_error *err = NULL;
	struct mem big;
	uint8_t *si;

	if (!gz) {
		printf("real kernel: SKIPPED (../shared/linux/vmlinux-6.1-probe.gz not found)\n");
		free(initrd);
		return;
	}
	if (asprintf(&vmlinux, "%s/vmlinux", tmpdir) < 0 ||
	    asprintf(&cmd, "gzip -dc '%s' > '%s'", gz, vmlinux) < 0)
		exit(1);
	if (system(cmd) != 0) {
		printf("real kernel: SKIPPED (gzip -dc %s failed)\n", gz);
		goto out;
	}
	printf("real kernel: %s\n", gz);
	CHECK(boot_probe_file(vmlinux, &fmt, &err) == 0);
	if (err) {
		fprintf(stderr, "probe: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		err = NULL;
	}
	CHECK(fmt == BOOT_FMT_PVH);
	if (mem_init(&big, 256 * MiB, false, &err)) {
		fprintf(stderr, "mem_init: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		check_failures++;
		goto out;
	}
	CHECK(e820_build(&big, tab, E820_MAX) == 4);
	if (boot_load_files(&big, vmlinux, initrd, "console=ttyS0 panic=-1", 0, &entry, &err)) {
		fprintf(stderr, "load: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		check_failures++;
	} else {
		printf("real kernel: PVH entry 0x%llx, start info at 0x%llx\n",
		       (unsigned long long)entry.rip, (unsigned long long)entry.rbx);
		CHECK(entry.mode == BOOT_MODE_PVH32);
		/* readelf -n: Xen note 0x12, descriptor 00 06 00 01 00 00 00 00 */
		CHECK(entry.rip == 0x1000600);
		CHECK(entry.rbx == LAYOUT_PVH_INFO);
		si = mem_ptr(&big, LAYOUT_PVH_INFO, 64);
		CHECK(si && get32(si) == 0x336ec578 && get32(si + 48) == 4);
		CHECK(si && get32(si + 12) == (initrd ? 1u : 0u));
		/* First PT_LOAD at 16 MiB is not empty. */
		CHECK(get64(mem_ptr(&big, 0x1000000, 8)) != 0);
		if (initrd && si) {
			uint64_t gpa = get64(mem_ptr(&big, get64(si + 16), 8));

			printf("real kernel: initrd at 0x%llx\n", (unsigned long long)gpa);
			CHECK(gpa >= 0x1aec000 + 0x12c000 && gpa % 4096 == 0);
			/* gzip magic */
			CHECK(get16(mem_ptr(&big, gpa, 2)) == 0x8b1f);
		}
	}
	mem_fini(&big);
out:
	unlink(vmlinux);
	free(vmlinux);
	free(cmd);
	free(gz);
	free(initrd);
}

int main(void)
{
	keel_error *err = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	if (mem_init(&ram, RAM_SIZE, false, &err)) {
		fprintf(stderr, "mem_init: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return 1;
	}
	nr_e820 = e820_build(&ram, e820, E820_MAX);
	CHECK(nr_e820 == 4);
	CHECK(ram_is_zero(&ram));

	test_bzimage_ok();
	test_bzimage_errors();
	test_pvh_ok();
	test_pvh_errors();
	test_probe_and_files();
	test_place_initrd();
	test_real_kernel();

	mem_fini(&ram);
	rmdir(tmpdir);
	if (!check_failures)
		printf("test-boot: all checks passed\n");
	return test_exit();
}
