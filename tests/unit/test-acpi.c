// SPDX-License-Identifier: MIT
/*
 * The ACPI generator: AML encodings against bytes written by hand from the
 * ACPI 6.4 grammar (and checked once against iasl's output), then whole
 * boards: lengths, checksums and pointers after acpi_place(), the MADT,
 * MCFG, FADT and DSDT contents, the table-loader script decoded and run as
 * firmware runs it, and bad boards refused with a message.
 */
#include <errno.h>
#include <stdlib.h>

#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "check.h"
#include "core/le.h"
#include "core/util.h"

/* ---- AML encodings ---------------------------------------------------- */

static void dump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s:", what);
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

static void expect_bytes(int line, const char *what, const struct aml *a, const uint8_t *want,
			 size_t n)
{
	if (!a->err && a->len == n && !memcmp(a->buf, want, n))
		return;
	fprintf(stderr, "%s:%d: %s: encoding differs (err %d)\n", __FILE__, line, what, a->err);
	dump("want", want, n);
	dump("got ", a->buf ? a->buf : (const uint8_t *)"", a->len);
	check_failures++;
}

/* Runs `code` on a fresh buffer `a` and compares the result with the bytes. */
#define EXPECT_AML(what, code, ...) do { \
	static const uint8_t want_[] = { __VA_ARGS__ }; \
	struct aml a; \
	aml_init(&a); \
	code; \
	expect_bytes(__LINE__, what, &a, want_, sizeof(want_)); \
	aml_free(&a); \
} while (0)

static int test_pkglen(void)
{
	static const struct { size_t body; int n; uint8_t enc[4]; } cases[] = {
		{ 0, 1, { 0x01 } },
		{ 62, 1, { 0x3f } },                            /* 63: the 1-byte limit */
		{ 63, 2, { 0x41, 0x04 } },                      /* 65 */
		{ 4093, 2, { 0x4f, 0xff } },                    /* 4095: the 2-byte limit */
		{ 4094, 3, { 0x81, 0x00, 0x01 } },              /* 4097 */
		{ 0xffffc, 3, { 0x8f, 0xff, 0xff } },           /* 1 MiB - 1: 3-byte limit */
		{ 0xffffd, 4, { 0xc1, 0x00, 0x00, 0x01 } },     /* 1 MiB + 1 */
		{ 0xffffffb, 4, { 0xcf, 0xff, 0xff, 0xff } },   /* 256 MiB - 1 */
	};
	uint8_t enc[4];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(enc, 0xee, sizeof(enc));
		CHECK(aml_pkglen_encode(enc, cases[i].body) == cases[i].n);
		if (memcmp(enc, cases[i].enc, (size_t)cases[i].n)) {
			fprintf(stderr, "PkgLength of a %zu-byte body:\n", cases[i].body);
			dump("want", cases[i].enc, (size_t)cases[i].n);
			dump("got ", enc, (size_t)cases[i].n);
			check_failures++;
		}
	}
	CHECK(aml_pkglen_encode(enc, 0xffffffc) == 0);  /* does not fit 28 bits */
	return 0;
}

/* The same boundaries inside real blocks: Buffer(){...} of n bytes. */
static void check_buffer_header(size_t n, const uint8_t *want, size_t wn)
{
	uint8_t *data = calloc(1, n);
	struct aml a;

	aml_init(&a);
	aml_buffer(&a, data, n);
	CHECK(!a.err);
	if (!a.err && (a.len < wn || memcmp(a.buf, want, wn))) {
		fprintf(stderr, "Buffer of %zu bytes:\n", n);
		dump("want", want, wn);
		dump("got ", a.buf, wn);
		check_failures++;
	}
	aml_free(&a);
	free(data);
}

static int test_pkglen_blocks(void)
{
	/* BufferOp, PkgLength, BufferSize (ByteConst, WordConst, DWordConst). */
	check_buffer_header(60, (const uint8_t[]){ 0x11, 0x3f, 0x0a, 60 }, 4);
	check_buffer_header(61, (const uint8_t[]){ 0x11, 0x41, 0x04, 0x0a, 61 }, 5);
	check_buffer_header(4090, (const uint8_t[]){ 0x11, 0x4f, 0xff, 0x0b, 0xfa, 0x0f }, 6);
	check_buffer_header(4091, (const uint8_t[]){ 0x11, 0x81, 0x00, 0x01, 0x0b, 0xfb, 0x0f },
			    7);
	check_buffer_header(0xffff7, (const uint8_t[]){ 0x11, 0x8f, 0xff, 0xff, 0x0c, 0xf7, 0xff,
							0x0f, 0x00 }, 9);
	check_buffer_header(0xffff8, (const uint8_t[]){ 0x11, 0xc1, 0x00, 0x00, 0x01, 0x0c, 0xf8,
							0xff, 0x0f, 0x00 }, 10);
	return 0;
}

static int test_integers(void)
{
	EXPECT_AML("Zero", aml_int(&a, 0), 0x00);
	EXPECT_AML("One", aml_int(&a, 1), 0x01);
	EXPECT_AML("Ones", aml_ones(&a), 0xff);
	EXPECT_AML("2", aml_int(&a, 2), 0x0a, 0x02);
	EXPECT_AML("0xff", aml_int(&a, 0xff), 0x0a, 0xff);
	EXPECT_AML("0x100", aml_int(&a, 0x100), 0x0b, 0x00, 0x01);
	EXPECT_AML("0xffff", aml_int(&a, 0xffff), 0x0b, 0xff, 0xff);
	EXPECT_AML("0x10000", aml_int(&a, 0x10000), 0x0c, 0x00, 0x00, 0x01, 0x00);
	EXPECT_AML("0xffffffff", aml_int(&a, 0xffffffff), 0x0c, 0xff, 0xff, 0xff, 0xff);
	EXPECT_AML("1 << 32", aml_int(&a, 1ULL << 32),
		   0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
	EXPECT_AML("String", aml_string(&a, "ab"), 0x0d, 'a', 'b', 0x00);
	return 0;
}

static int test_names(void)
{
	EXPECT_AML("NameSeg", aml_name(&a, "PCI0"), 'P', 'C', 'I', '0');
	EXPECT_AML("padded", aml_name(&a, "ISA"), 'I', 'S', 'A', '_');
	EXPECT_AML("root", aml_name(&a, "\\_SB"), 0x5c, '_', 'S', 'B', '_');
	EXPECT_AML("dual", aml_name(&a, "\\_SB.PCI0"),
		   0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	EXPECT_AML("multi", aml_name(&a, "\\_SB.PCI0.ISA"),
		   0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_');
	EXPECT_AML("parent", aml_name(&a, "^ISA"), 0x5e, 'I', 'S', 'A', '_');
	EXPECT_AML("parent x2", aml_name(&a, "^^C000"), 0x5e, 0x5e, 'C', '0', '0', '0');
	EXPECT_AML("NullName", aml_name(&a, "\\"), 0x5c, 0x00);
	EXPECT_AML("EISAID PNP0A03", aml_eisaid(&a, "PNP0A03"), 0x0c, 0x41, 0xd0, 0x0a, 0x03);
	EXPECT_AML("EISAID PNP0501", aml_eisaid(&a, "PNP0501"), 0x0c, 0x41, 0xd0, 0x05, 0x01);

	/* Refused: the error sticks and nothing more is written. */
	static const char *const bad[] = { "pci0", "ABCDE", "0ABC", "A..B", "A.", "\\_SB.",
					   "A-B" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct aml a;

		aml_init(&a);
		aml_name(&a, bad[i]);
		aml_int(&a, 5);
		if (a.err != -EINVAL || a.len != 0 || strcmp(a.bad, bad[i])) {
			fprintf(stderr, "name \"%s\": err %d len %zu bad \"%s\"\n", bad[i], a.err,
				a.len, a.bad);
			check_failures++;
		}
		aml_free(&a);
	}
	{
		struct aml a;

		aml_init(&a);
		aml_eisaid(&a, "pnp0a03");
		CHECK(a.err == -EINVAL && a.len == 0);
		aml_free(&a);
	}
	return 0;
}

static int test_blocks(void)
{
	EXPECT_AML("Device(ABCD){Name(_UID, One)}", {
		size_t m = aml_device_open(&a, "ABCD");
		aml_name_int(&a, "_UID", 1);
		aml_close(&a, m);
	}, 0x5b, 0x82, 0x0b, 'A', 'B', 'C', 'D', 0x08, '_', 'U', 'I', 'D', 0x01);
	EXPECT_AML("Method(_STA){Return(0x0F)}", {
		size_t m = aml_method_open(&a, "_STA", 0, false);
		aml_return(&a);
		aml_int(&a, 0x0f);
		aml_close(&a, m);
	}, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f);
	EXPECT_AML("Method(MTH2, 2, Serialized){Return(Zero)}", {
		size_t m = aml_method_open(&a, "MTH2", 2, true);
		aml_return(&a);
		aml_int(&a, 0);
		aml_close(&a, m);
	}, 0x14, 0x08, 'M', 'T', 'H', '2', 0x0a, 0xa4, 0x00);
	EXPECT_AML("Package(){One, \"x\"}", {
		size_t m = aml_package_open(&a, 2);
		aml_int(&a, 1);
		aml_string(&a, "x");
		aml_close(&a, m);
	}, 0x12, 0x06, 0x02, 0x01, 0x0d, 'x', 0x00);
	EXPECT_AML("Scope(\\_SB.PCI0){}", {
		size_t m = aml_scope_open(&a, "\\_SB.PCI0");
		aml_close(&a, m);
	}, 0x10, 0x0b, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	EXPECT_AML("Name(E0, EisaId(\"PNP0A03\"))", aml_name_eisaid(&a, "E0", "PNP0A03"),
		   0x08, 'E', '0', '_', '_', 0x0c, 0x41, 0xd0, 0x0a, 0x03);
	/* A nested block whose body crosses the 1-byte PkgLength limit. */
	{
		struct aml a;
		size_t outer, inner;

		aml_init(&a);
		outer = aml_scope_open(&a, "\\_SB");
		inner = aml_package_open(&a, 60);
		for (int i = 0; i < 60; i++)
			aml_int(&a, 1);
		aml_close(&a, inner);
		aml_close(&a, outer);
		/* Package: 1 count + 60 = 61 -> 0x3e; scope: 5 + 1 + 1 + 61 = 68 -> 2 bytes. */
		CHECK(!a.err && a.len == 1 + 2 + 5 + 1 + 1 + 1 + 60);
		CHECK(a.buf[0] == 0x10 && a.buf[1] == 0x46 && a.buf[2] == 0x04);     /* 70 */
		CHECK(a.buf[8] == 0x12 && a.buf[9] == 0x3e && a.buf[10] == 60);
		aml_free(&a);
	}
	{
		struct aml a;

		aml_init(&a);
		aml_package_open(&a, 256);
		CHECK(a.err == -EINVAL);
		aml_free(&a);
		aml_init(&a);
		aml_method_open(&a, "M", 8, false);
		CHECK(a.err == -EINVAL);
		aml_free(&a);
	}
	return 0;
}

static int test_resources(void)
{
	/* COM1's _CRS, as iasl compiles ResourceTemplate(){IO(...) IRQNoFlags(){4}}. */
	EXPECT_AML("IO + IRQNoFlags", {
		struct aml r;
		aml_init(&r);
		aml_res_io(&r, 0x3f8, 0x3f8, 1, 8);
		aml_res_irq_noflags(&r, 1 << 4);
		aml_resource_template(&a, &r);
	}, 0x11, 0x10, 0x0a, 0x0d,
	   0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
	   0x22, 0x10, 0x00,
	   0x79, 0x00);
	EXPECT_AML("WordBusNumber(0-0xff)", aml_res_word_bus_number(&a, 0, 0xff),
		   0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00,
		   0x00, 0x00, 0x00, 0x01);
	EXPECT_AML("WordIO(0xd00-0xffff)", aml_res_word_io(&a, 0xd00, 0xffff),
		   0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff,
		   0x00, 0x00, 0x00, 0xf3);
	EXPECT_AML("DWordMemory NonCacheable",
		   aml_res_dword_memory(&a, true, false, 0xc0000000, 0xcfffffff),
		   0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00,
		   0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xcf, 0x00, 0x00, 0x00, 0x00,
		   0x00, 0x00, 0x00, 0x10);
	EXPECT_AML("QWordMemory Cacheable",
		   aml_res_qword_memory(&a, true, true, 0x8000000000ULL, 0xffffffffffULL),
		   0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x03,
		   0, 0, 0, 0, 0, 0, 0, 0,
		   0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
		   0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
		   0, 0, 0, 0, 0, 0, 0, 0,
		   0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00);
	EXPECT_AML("QWordMemory consumer",
		   aml_res_qword_memory(&a, false, false, 0x100000000ULL, 0x1000fffffULL),
		   0x8a, 0x2b, 0x00, 0x00, 0x0d, 0x01,
		   0, 0, 0, 0, 0, 0, 0, 0,
		   0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		   0xff, 0xff, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00,
		   0, 0, 0, 0, 0, 0, 0, 0,
		   0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00);
	EXPECT_AML("Memory32Fixed", aml_res_memory32_fixed(&a, true, 0xd0000000, 0x200),
		   0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x02, 0x00, 0x00);
	EXPECT_AML("Interrupt(Edge, ActiveHigh, Exclusive){5}",
		   aml_res_interrupt(&a, true, false, false, 5),
		   0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00);
	EXPECT_AML("Interrupt(Level, ActiveLow, Shared){16}",
		   aml_res_interrupt(&a, false, true, true, 16),
		   0x89, 0x06, 0x00, 0x0d, 0x01, 0x10, 0x00, 0x00, 0x00);
	return 0;
}

/* ---- boards ------------------------------------------------------------ */

#define TABLES_GPA 0x7ff00000ULL
#define RSDP_GPA   0x000f0000ULL
#define ROOM       0x40000

static const struct acpi_pci_route routes12[12] = {
	{ 1, 0, 16 }, { 1, 1, 17 }, { 1, 2, 18 }, { 1, 3, 19 },
	{ 2, 0, 17 }, { 2, 1, 18 }, { 2, 2, 19 }, { 2, 3, 16 },
	{ 3, 0, 18 }, { 3, 1, 19 }, { 3, 2, 16 }, { 3, 3, 17 },
};

static const struct acpi_mmio_dev mmio3[3] = {
	{ 0xd0000000, 0x200, 5 }, { 0xd0001000, 0x200, 6 }, { 0xd0002000, 0x200, 7 },
};

static const struct acpi_board small = {
	.nr_cpus = 1, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 1,
	.pci_io_base = 0xc000, .pci_io_size = 0x4000,
	.pci_mem32_base = 0xc0000000, .pci_mem32_size = 0x10000000,
	.pm_base = 0x600, .sci_irq = 9, .rtc = true, .i8042 = true,
};

static const struct acpi_board big = {
	.nr_cpus = 4, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 4,
	.ecam_base = 0xe0000000, .ecam_size = 0x100000,
	.pci_io_base = 0xc000, .pci_io_size = 0x4000,
	.pci_mem32_base = 0xc0000000, .pci_mem32_size = 0x10000000,
	.pci_mem64_base = 0x8000000000ULL, .pci_mem64_size = 0x8000000000ULL,
	.routes = routes12, .nr_routes = 12, .pm_base = 0xb000, .sci_irq = 9, .s5_slp_typ = 5,
	.com_mask = 0x3, .rtc = true, .i8042 = true, .mmio = mmio3, .nr_mmio = 3,
	.oem_id = "KEELT", .oem_table_id = "TESTPC",
};

/* Also: the ECAM above 4 GiB (a QWordMemory reservation, not Memory32Fixed). */
static const struct acpi_board many = {
	.nr_cpus = 254, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 254,
	.ecam_base = 0x4000000000ULL, .ecam_size = 0x1000000,
	.pci_io_base = 0x1000, .pci_io_size = 0x1000,
	.pci_mem32_base = 0x80000000, .pci_mem32_size = 0x40000000,
	.routes = routes12, .nr_routes = 4, .pm_base = 0x600, .sci_irq = 10, .com_mask = 0xf,
};

struct placed {
	struct acpi_tables t;
	uint8_t *mem[ACPI_NR_FILES];
	struct acpi_placement at[ACPI_NR_FILES];
};

static int place(const struct acpi_board *b, struct placed *p)
{
	keel_error *err = NULL;

	memset(p, 0, sizeof(*p));
	if (acpi_build(b, &p->t, &err)) {
		fprintf(stderr, "acpi_build: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return -1;
	}
	for (int f = 0; f < ACPI_NR_FILES; f++)
		p->mem[f] = calloc(1, ROOM);
	p->at[ACPI_FILE_RSDP] = (struct acpi_placement){ RSDP_GPA, p->mem[0], ROOM };
	p->at[ACPI_FILE_TABLES] = (struct acpi_placement){ TABLES_GPA, p->mem[1], ROOM };
	if (acpi_place(&p->t, p->at, &err)) {
		fprintf(stderr, "acpi_place: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return -1;
	}
	return 0;
}

static void unplace(struct placed *p)
{
	acpi_tables_free(&p->t);
	for (int f = 0; f < ACPI_NR_FILES; f++)
		free(p->mem[f]);
}

/* The placed bytes at a guest address, if [gpa, gpa + len) was placed. */
static const uint8_t *at_gpa(const struct placed *p, uint64_t gpa, size_t len)
{
	for (int f = 0; f < ACPI_NR_FILES; f++)
		if (gpa >= p->at[f].gpa && gpa + len <= p->at[f].gpa + p->t.size[f])
			return p->mem[f] + (gpa - p->at[f].gpa);
	return NULL;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* A table at gpa with this signature, a length inside the file and a zero sum. */
static const uint8_t *table(const struct placed *p, uint64_t gpa, const char *sig)
{
	const uint8_t *h = at_gpa(p, gpa, 36);

	if (!h || memcmp(h, sig, 4) || !at_gpa(p, gpa, get_le32(h + 4))) {
		fprintf(stderr, "no %s at 0x%llx\n", sig, (unsigned long long)gpa);
		check_failures++;
		return NULL;
	}
	if (sum(h, get_le32(h + 4))) {
		fprintf(stderr, "%s checksum: the bytes sum to 0x%02x\n", sig,
			sum(h, get_le32(h + 4)));
		check_failures++;
	}
	return h;
}

/* Every table's length covers exactly its bytes: back to back, 8-aligned. */
static void check_layout(const struct placed *p)
{
	uint32_t offs[ACPI_MAX_POINTERS];
	int n = 0;
	const uint8_t *f = p->mem[ACPI_FILE_TABLES];
	size_t end = 0;

	for (int i = 0; i < p->t.nr_pointers; i++) {
		const struct acpi_pointer *ptr = &p->t.pointers[i];
		const uint8_t *field = p->t.data[ptr->file] + ptr->offset;
		uint32_t target = (uint32_t)(ptr->size == 8 ? get_le64(field) : get_le32(field));
		bool seen = false;

		CHECK(ptr->target == ACPI_FILE_TABLES);
		for (int j = 0; j < n; j++)
			seen |= offs[j] == target;
		if (!seen)
			offs[n++] = target;
	}
	/* FACS, DSDT, FADT, MADT, [MCFG,] RSDT, XSDT in file order. */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (offs[j] < offs[i]) {
				uint32_t x = offs[i];

				offs[i] = offs[j];
				offs[j] = x;
			}
	CHECK(n >= 6 && offs[0] == 0 && !memcmp(f, "FACS", 4));
	for (int i = 0; i < n; i++) {
		uint32_t len = get_le32(f + offs[i] + 4);

		CHECK(offs[i] >= end && offs[i] - end < 8 && offs[i] % 8 == 0);
		for (size_t k = end; k < offs[i]; k++)
			CHECK(f[k] == 0);       /* padding only */
		end = offs[i] + len;
	}
	CHECK(end == p->t.size[ACPI_FILE_TABLES]);
}

static int count_str(const uint8_t *p, size_t n, const char *s, size_t sn)
{
	int c = 0;

	for (size_t i = 0; i + sn <= n; i++)
		c += !memcmp(p + i, s, sn);
	return c;
}

static const uint8_t *find(const uint8_t *p, size_t n, const void *s, size_t sn)
{
	for (size_t i = 0; i + sn <= n; i++)
		if (!memcmp(p + i, s, sn))
			return p + i;
	return NULL;
}

/* Decodes a PkgLength: its value, and its size in *n. */
static size_t pkglen(const uint8_t *p, int *n)
{
	size_t v = p[0] & 0x0f;

	*n = 1 + (p[0] >> 6);
	if (*n == 1)
		return p[0] & 0x3f;
	for (int i = 1; i < *n; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static void check_dsdt(const struct acpi_board *b, const uint8_t *d)
{
	uint32_t len = get_le32(d + 4);
	const uint8_t *p = d + 36, *q;
	int n;
	size_t l;

	CHECK(d[8] == 2);
	/* Name(\_S5, Package(4){SLP_TYP, 0, 0, 0}) ... */
	CHECK(!memcmp(p, "\x08\\_S5_\x12", 7));
	l = pkglen(p + 7, &n);
	CHECK(p[7 + n] == 4);
	if (b->s5_slp_typ > 1)
		CHECK(p[8 + n] == 0x0a && p[9 + n] == b->s5_slp_typ);
	else
		CHECK(p[8 + n] == b->s5_slp_typ);
	p += 7 + l;
	/* ... then Scope(\_SB), whose length reaches exactly the table's end. */
	CHECK(p[0] == 0x10);
	l = pkglen(p + 1, &n);
	CHECK(p + 1 + l == d + len);
	CHECK(!memcmp(p + 1 + n, "\\_SB_", 5));

	CHECK(count_str(d, len, "ACPI0007", 9) == (int)b->nr_cpus);
	CHECK(count_str(d, len, "LNRO0005", 9) == b->nr_mmio);
	CHECK(count_str(d, len, "\x0c\x41\xd0\x0a\x03", 5) == 1);      /* PNP0A03 */
	CHECK(count_str(d, len, "\x0c\x41\xd0\x05\x01", 5) == __builtin_popcount(b->com_mask));
	for (int i = 0; i < 4; i++) {
		char name[5] = { 'C', 'O', 'M', (char)('1' + i), 0 };

		CHECK(count_str(d, len, name, 4) == !!(b->com_mask & (1u << i)));
	}
	CHECK(count_str(d, len, "\x0c\x41\xd0\x03\x03", 5) == b->i8042);   /* PNP0303 */
	CHECK(count_str(d, len, "\x0c\x41\xd0\x0b\x00", 5) == b->rtc);     /* PNP0B00 */
	/* _PRT: a package of nr_routes entries, or none. */
	q = find(d, len, "\x08_PRT\x12", 6);
	CHECK(!!q == !!b->nr_routes);
	if (q) {
		pkglen(q + 6, &n);
		CHECK(q[6 + n] == b->nr_routes);
	}
	/* PCI0's bus range and 32-bit window, from the board. */
	{
		uint8_t bus[16] = { 0x88, 0x0d, 0x00, 0x02, 0x0c };
		uint8_t mem[26] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };
		uint16_t last = b->ecam_size ? (uint16_t)((b->ecam_size >> 20) - 1) : 0xff;

		put_le16(bus + 10, last);
		put_le16(bus + 14, (uint16_t)(last + 1));
		CHECK(find(d, len, bus, sizeof(bus)));
		put_le32(mem + 10, (uint32_t)b->pci_mem32_base);
		put_le32(mem + 14, (uint32_t)(b->pci_mem32_base + b->pci_mem32_size - 1));
		put_le32(mem + 22, (uint32_t)b->pci_mem32_size);
		CHECK(find(d, len, mem, sizeof(mem)));
		CHECK(!!find(d, len, "\x8a\x2b\x00\x00\x0c\x03", 6) == !!b->pci_mem64_size);
	}
	/* The ECAM is a motherboard resource (Linux wants it reserved). */
	{
		uint8_t m32[12] = { 0x86, 0x09, 0x00, 0x01 };
		uint8_t m64[46] = { 0x8a, 0x2b, 0x00, 0x00, 0x0d, 0x01 };
		bool low = b->ecam_base + b->ecam_size <= 0x100000000ULL;

		put_le32(m32 + 4, (uint32_t)b->ecam_base);
		put_le32(m32 + 8, (uint32_t)b->ecam_size);
		put_le64(m64 + 14, b->ecam_base);
		put_le64(m64 + 22, b->ecam_base + b->ecam_size - 1);
		put_le64(m64 + 38, b->ecam_size);
		CHECK(!!find(d, len, m32, sizeof(m32)) == (b->ecam_size && low));
		CHECK(!!find(d, len, m64, sizeof(m64)) == (b->ecam_size && !low));
	}
}

static void check_fadt(const struct acpi_board *b, const struct placed *p, const uint8_t *f)
{
	uint32_t flags = get_le32(f + 112);
	const uint8_t *facs;

	CHECK(get_le32(f + 4) == 276 && f[8] == 6);
	/* FIRMWARE_CTRL -> FACS (64-byte aligned), X_FIRMWARE_CTRL zero. */
	CHECK(get_le32(f + 36) % 64 == 0);
	facs = at_gpa(p, get_le32(f + 36), 64);
	CHECK(facs && !memcmp(facs, "FACS", 4) && get_le32(facs + 4) == 64);
	CHECK(get_le64(f + 132) == 0);
	/* DSDT and X_DSDT agree. */
	CHECK(get_le64(f + 140) == get_le32(f + 40));
	if (table(p, get_le32(f + 40), "DSDT"))
		check_dsdt(b, at_gpa(p, get_le32(f + 40), 36));
	CHECK(get_le16(f + 46) == b->sci_irq);
	CHECK(get_le32(f + 48) == 0 && f[52] == 0 && f[53] == 0);      /* no SMM */
	CHECK(get_le32(f + 56) == b->pm_base && f[88] == 4);
	CHECK(get_le32(f + 64) == b->pm_base + 4u && f[89] == 2);
	CHECK(get_le32(f + 76) == b->pm_base + 8u && f[91] == 4);
	CHECK(get_le32(f + 80) == 0 && f[92] == 0);                     /* no GPE0 */
	CHECK(!memcmp(f + 148, "\x01\x20\x00\x02", 4) && get_le64(f + 152) == b->pm_base);
	CHECK(!memcmp(f + 172, "\x01\x10\x00\x02", 4) && get_le64(f + 176) == b->pm_base + 4u);
	CHECK(!memcmp(f + 208, "\x01\x20\x00\x03", 4) && get_le64(f + 212) == b->pm_base + 8u);
	/* WBINVD, PROC_C1, SLP_BUTTON, RESET_REG_SUP; not PWR_BUTTON or TMR_VAL_EXT. */
	CHECK((flags & 0x425) == 0x425);
	CHECK(!(flags & (1u << 4)) && !(flags & (1u << 8)) && !(flags & (1u << 20)));
	CHECK(!!(flags & (1u << 18)) == (b->nr_cpus > 8));
	CHECK(!memcmp(f + 116, "\x01\x08\x00\x01", 4) && get_le64(f + 120) == 0xcf9);
	CHECK(f[128] == 0x06);
	CHECK(!!(get_le16(f + 109) & 2) == b->i8042);
	CHECK(!!(get_le16(f + 109) & 0x20) == !b->rtc);
	CHECK(f[108] == (b->rtc ? 0x32 : 0));
}

static void check_madt(const struct acpi_board *b, const uint8_t *m)
{
	uint32_t len = get_le32(m + 4);
	unsigned int cpus = 0, ioapics = 0, overrides = 0, nmis = 0, entries = 0;

	CHECK(get_le32(m + 36) == b->lapic_addr);
	CHECK(get_le32(m + 40) == 1);   /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len; off += m[off + 1], entries++) {
		const uint8_t *e = m + off;

		if (e[1] < 2 || off + e[1] > len) {
			fprintf(stderr, "MADT entry at %u has length %u\n", off, e[1]);
			check_failures++;
			break;
		}
		switch (e[0]) {
		case 0:
			CHECK(e[1] == 8 && e[2] == cpus && e[3] == cpus && get_le32(e + 4) == 1);
			cpus++;
			break;
		case 1:
			CHECK(e[1] == 12 && e[2] == b->ioapic_id);
			CHECK(get_le32(e + 4) == b->ioapic_addr && get_le32(e + 8) == 0);
			ioapics++;
			break;
		case 2:
			/* Only the SCI: ISA IRQ 0 is on pin 0 (no override to pin 2). */
			CHECK(e[1] == 10 && e[2] == 0 && e[3] == b->sci_irq);
			CHECK(get_le32(e + 4) == b->sci_irq && get_le16(e + 8) == 0x0d);
			overrides++;
			break;
		case 4:
			CHECK(e[1] == 6 && e[2] == 0xff && e[5] == 1);
			nmis++;
			break;
		default:
			fprintf(stderr, "MADT entry of type %u\n", e[0]);
			check_failures++;
		}
	}
	CHECK(cpus == b->nr_cpus && ioapics == 1 && overrides == 1 && nmis == 1);
	CHECK(entries == b->nr_cpus + 3);
}

static void check_mcfg(const struct acpi_board *b, const uint8_t *m)
{
	CHECK(get_le32(m + 4) == 60);
	CHECK(get_le64(m + 44) == b->ecam_base && get_le16(m + 52) == 0);
	CHECK(m[54] == 0 && m[55] == (b->ecam_size >> 20) - 1);
}

static void check_placed(const struct acpi_board *b, const char *name)
{
	struct placed p;
	const uint8_t *rsdp, *xsdt, *rsdt;
	int sigs[3] = { 0 };

	printf("board %s\n", name);
	if (place(b, &p)) {
		check_failures++;
		unplace(&p);
		return;
	}
	check_layout(&p);
	/* Checksum bytes are left 0 for firmware, as QEMU leaves them. */
	for (int i = 0; i < p.t.nr_checksums; i++)
		CHECK(p.t.data[p.t.checksums[i].file][p.t.checksums[i].at] == 0);

	rsdp = p.mem[ACPI_FILE_RSDP];
	CHECK(p.t.size[ACPI_FILE_RSDP] == 36 && !memcmp(rsdp, "RSD PTR ", 8));
	CHECK(sum(rsdp, 20) == 0 && sum(rsdp, 36) == 0);
	CHECK(rsdp[15] == 2 && get_le32(rsdp + 20) == 36);
	CHECK(!memcmp(rsdp + 9, b->oem_id ? "KEELT " : "KEEL  ", 6));
	rsdt = table(&p, get_le32(rsdp + 16), "RSDT");
	xsdt = table(&p, get_le64(rsdp + 24), "XSDT");
	if (!rsdt || !xsdt)
		goto out;
	CHECK(get_le32(xsdt + 4) == 36 + 8u * (b->ecam_size ? 3 : 2));
	CHECK(get_le32(rsdt + 4) == 36 + 4u * (b->ecam_size ? 3 : 2));
	for (uint32_t off = 36; off + 8 <= get_le32(xsdt + 4); off += 8) {
		uint64_t gpa = get_le64(xsdt + off);
		const uint8_t *h = at_gpa(&p, gpa, 36);

		/* The RSDT lists the same tables. */
		CHECK(get_le32(rsdt + 36 + (off - 36) / 2) == gpa);
		if (!h) {
			CHECK(h);
			continue;
		}
		if (!memcmp(h, "FACP", 4) && table(&p, gpa, "FACP")) {
			sigs[0]++;
			check_fadt(b, &p, h);
		} else if (!memcmp(h, "APIC", 4) && table(&p, gpa, "APIC")) {
			sigs[1]++;
			check_madt(b, h);
		} else if (!memcmp(h, "MCFG", 4) && table(&p, gpa, "MCFG")) {
			sigs[2]++;
			check_mcfg(b, h);
		} else {
			fprintf(stderr, "XSDT entry at 0x%llx: %.4s\n", (unsigned long long)gpa, h);
			check_failures++;
		}
	}
	CHECK(sigs[0] == 1 && sigs[1] == 1 && sigs[2] == !!b->ecam_size);
	/* OEM IDs as given, padded with spaces. */
	CHECK(!memcmp(xsdt + 10, b->oem_id ? "KEELT " : "KEEL  ", 6));
	CHECK(!memcmp(xsdt + 16, b->oem_table_id ? "TESTPC  " : "KEELPC  ", 8));
out:
	unplace(&p);
}

static int test_boards(void)
{
	check_placed(&small, "small");
	check_placed(&big, "big");
	check_placed(&many, "many");
	return 0;
}

/* ---- etc/table-loader -------------------------------------------------- */

static const char *fname(const uint8_t *p)
{
	/* 56 bytes, NUL-terminated (firmware checks the last byte). */
	return p[ACPI_LOADER_FNAME_SIZE - 1] == 0 ? (const char *)p : "<unterminated>";
}

static int file_of(const char *name)
{
	for (int f = 0; f < ACPI_NR_FILES; f++)
		if (!strcmp(name, acpi_file_name(f)))
			return f;
	return -1;
}

/*
 * Runs the script the way OVMF's QemuFwCfgAcpi.c does (ALLOCATE copies the
 * file, ADD_POINTER adds the pointee's base, ADD_CHECKSUM stores 0 - sum
 * over a range holding the result byte) and compares the outcome with
 * acpi_place() at the same addresses.
 */
static int test_loader(void)
{
	static const uint64_t base[ACPI_NR_FILES] = { RSDP_GPA, TABLES_GPA };
	struct placed p;
	uint8_t *blob = NULL, *fw[ACPI_NR_FILES] = { NULL };
	size_t size = 0;
	keel_error *err = NULL;
	int n, allocs = 0, ptrs = 0, sums = 0;

	REQUIRE(place(&big, &p) == 0);
	REQUIRE(acpi_table_loader(&p.t, &blob, &size, &err) == 0);
	n = (int)(size / ACPI_LOADER_ENTRY_SIZE);
	CHECK(size % ACPI_LOADER_ENTRY_SIZE == 0);
	CHECK(n == ACPI_NR_FILES + p.t.nr_pointers + p.t.nr_checksums);
	for (int i = 0; i < n; i++) {
		const uint8_t *c = blob + (size_t)i * ACPI_LOADER_ENTRY_SIZE, *a = c + 4;
		uint32_t type = get_le32(c);
		int f = file_of(fname(a)), g;

		if (f < 0) {
			fprintf(stderr, "loader command %d names \"%s\"\n", i, fname(a));
			check_failures++;
			continue;
		}
		switch (type) {
		case ACPI_LOADER_ALLOCATE:
			/* Both allocations come first: every later command needs them. */
			CHECK(i == allocs && !fw[f]);
			CHECK(get_le32(a + 56) == acpi_file_align(f));
			CHECK(a[60] == (f == ACPI_FILE_RSDP ? ACPI_LOADER_ZONE_FSEG :
					ACPI_LOADER_ZONE_HIGH));
			CHECK(base[f] % get_le32(a + 56) == 0);
			fw[f] = malloc(p.t.size[f]);
			memcpy(fw[f], p.t.data[f], p.t.size[f]);
			allocs++;
			break;
		case ACPI_LOADER_ADD_POINTER: {
			const struct acpi_pointer *ptr = &p.t.pointers[ptrs];
			uint32_t off = get_le32(a + 112);
			uint8_t sz = a[116];
			uint64_t v;

			g = file_of(fname(a + 56));
			CHECK(ptrs < p.t.nr_pointers && sums == 0);
			CHECK(f == (int)ptr->file && g == (int)ptr->target);
			CHECK(off == ptr->offset && sz == ptr->size);
			if (g < 0 || !fw[f] || !fw[g] || off + sz > p.t.size[f])
				break;
			v = sz == 8 ? get_le64(fw[f] + off) : get_le32(fw[f] + off);
			CHECK(v < p.t.size[g]);
			v += base[g];
			if (sz == 8)
				put_le64(fw[f] + off, v);
			else
				put_le32(fw[f] + off, (uint32_t)v);
			ptrs++;
			break;
		}
		case ACPI_LOADER_ADD_CHECKSUM: {
			const struct acpi_checksum *k = &p.t.checksums[sums];
			uint32_t at = get_le32(a + 56), start = get_le32(a + 60);
			uint32_t len = get_le32(a + 64);

			CHECK(sums < p.t.nr_checksums && f == (int)k->file);
			CHECK(at == k->at && start == k->start && len == k->length);
			if (!fw[f] || start + len > p.t.size[f] || at >= p.t.size[f])
				break;
			fw[f][at] = (uint8_t)-sum(fw[f] + start, len);
			sums++;
			break;
		}
		default:
			fprintf(stderr, "loader command %d has type %u\n", i, type);
			check_failures++;
		}
	}
	CHECK(allocs == ACPI_NR_FILES && ptrs == p.t.nr_pointers && sums == p.t.nr_checksums);
	/* The RSDP's pointers and both its checksums are in the script. */
	CHECK(sums >= 2 && p.t.checksums[sums - 2].file == ACPI_FILE_RSDP &&
	      p.t.checksums[sums - 2].length == 20 && p.t.checksums[sums - 2].at == 8 &&
	      p.t.checksums[sums - 1].length == 36 && p.t.checksums[sums - 1].at == 32);
	for (int f = 0; f < ACPI_NR_FILES; f++)
		CHECK(fw[f] && !memcmp(fw[f], p.mem[f], p.t.size[f]));
	for (int f = 0; f < ACPI_NR_FILES; f++)
		free(fw[f]);
	free(blob);
	unplace(&p);
	return 0;
}

/* ---- errors ------------------------------------------------------------- */

static void expect_refused(const struct acpi_board *b, const char *needle)
{
	struct acpi_tables t;
	keel_error *err = NULL;

	if (acpi_build(b, &t, &err) == 0) {
		fprintf(stderr, "board accepted; expected an error with \"%s\"\n", needle);
		check_failures++;
		acpi_tables_free(&t);
		return;
	}
	CHECK(t.data[0] == NULL && t.data[1] == NULL);
	CHECK_ERR(err, KEEL_ERR_INVALID, needle);
}

static int test_bad_boards(void)
{
	struct acpi_board b;
	struct acpi_pci_route r[2] = { { 1, 0, 16 }, { 1, 0, 17 } };
	struct acpi_mmio_dev m[2] = { { 0xd0000000, 0x200, 5 }, { 0xd0000000, 0x200, 6 } };

	b = big, b.nr_cpus = 0, expect_refused(&b, "0 vCPUs");
	b = big, b.nr_cpus = 255, expect_refused(&b, "255 vCPUs");
	b = big, b.pci_mem32_base = 0xc0000800, expect_refused(&b, "PCI 32-bit window 0xc0000800");
	b = big, b.pci_mem32_size = 0x50000000, expect_refused(&b, "at or below 4 GiB");
	b = big, b.pci_mem64_base = 0x8000000010ULL, expect_refused(&b, "PCI 64-bit window");
	b = big, b.pci_io_base = 0xc002, expect_refused(&b, "PCI I/O window 0xc002");
	b = big, b.pci_io_base = 0x0400, expect_refused(&b, "inside 0xd00-0xffff");
	b = big, b.ecam_base = 0xe0080000, expect_refused(&b, "ECAM 0xe0080000");
	b = big, b.ecam_size = 0x20000000, expect_refused(&b, "at most 256 buses");
	b = big, b.pm_base = 0xb004, expect_refused(&b, "PM I/O base 0xb004");
	b = big, b.pm_base = 0xc040, expect_refused(&b, "overlaps PM block [0xc040-0xc07f]");
	b = big, b.pm_base = 0x3c0, b.com_mask = 1, expect_refused(&b, "COM1");
	b = big, b.sci_irq = 0, expect_refused(&b, "SCI IRQ 0");
	b = big, b.sci_irq = 16, expect_refused(&b, "SCI IRQ 16");
	b = big, b.sci_irq = 4, expect_refused(&b, "GSI 4 is wired to both COM1 and the SCI");
	b = big, b.s5_slp_typ = 8, expect_refused(&b, "SLP_TYP 8");
	b = big, b.com_mask = 0x10, expect_refused(&b, "mask 0x10");
	b = big, b.oem_id = "TOOLONG", expect_refused(&b, "OEM ID \"TOOLONG\"");
	b = big, b.oem_table_id = "NINECHARS", expect_refused(&b, "OEM table ID");
	b = big, b.ioapic_addr = 0x1fec00000ULL, expect_refused(&b, "IOAPIC 0x1fec00000");
	/* Interrupt wiring. */
	b = big, r[0].gsi = 24, b.routes = r, b.nr_routes = 1, expect_refused(&b, "GSI 24");
	b = big, r[0].gsi = 11, b.routes = r, b.nr_routes = 1, expect_refused(&b, "GSI 11");
	b = big, r[0].gsi = 16, b.routes = r, b.nr_routes = 2,
		expect_refused(&b, "slot 1 pin 0 is routed twice");
	b = big, r[1] = (struct acpi_pci_route){ 1, 4, 17 }, b.routes = r, b.nr_routes = 2,
		expect_refused(&b, "pin 4");
	b = big, b.nr_routes = -1, expect_refused(&b, "-1 PCI interrupt routes");
	b = big, m[1].base = 0xd0001000, m[1].gsi = 24, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "virtio-mmio device 1 on GSI 24");
	b = big, m[1].gsi = 9, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "GSI 9 is wired to both the SCI and virtio-mmio device 1");
	b = big, m[1].gsi = 5, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "GSI 5 is wired to both virtio-mmio device 0 and virtio-mmio");
	b = big, m[1].gsi = 17, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "GSI 17 is wired to both PCI INTx and virtio-mmio device 1");
	b = big, m[1].gsi = 12, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "the i8042 mouse and virtio-mmio device 1");
	/* Windows that overlap. */
	b = big, m[1] = (struct acpi_mmio_dev){ 0xd0000100, 0x200, 6 }, b.mmio = m, b.nr_mmio = 2,
		expect_refused(&b, "virtio-mmio device 0 [mem 0xd0000000-0xd00001ff] overlaps "
			       "virtio-mmio device 1");
	b = big, b.ecam_base = 0xc0000000, expect_refused(&b, "overlaps ECAM");
	b = big, m[0].base = 0xfec00000, b.mmio = m, b.nr_mmio = 1,
		expect_refused(&b, "IOAPIC [mem 0xfec00000-0xfec00fff] overlaps virtio-mmio "
			       "device 0");
	b = big, m[0] = (struct acpi_mmio_dev){ 0xd0000000, 0, 6 }, b.mmio = m, b.nr_mmio = 1,
		expect_refused(&b, "must be non-empty");
	/* COM1 and COM3 share IRQ 4 as on PCs; that is not an error. */
	b = big, b.com_mask = 0xf;
	{
		struct acpi_tables t;
		keel_error *err = NULL;

		CHECK(acpi_build(&b, &t, &err) == 0);
		acpi_tables_free(&t);
		keel_error_free(err);
	}
	return 0;
}

static int test_bad_placement(void)
{
	struct acpi_tables t;
	struct acpi_placement at[ACPI_NR_FILES];
	keel_error *err = NULL;
	uint8_t *rsdp = calloc(1, ROOM), *tables = calloc(1, ROOM);

	REQUIRE(acpi_build(&big, &t, &err) == 0);
#define RESET_AT() do { \
	at[ACPI_FILE_RSDP] = (struct acpi_placement){ RSDP_GPA, rsdp, ROOM }; \
	at[ACPI_FILE_TABLES] = (struct acpi_placement){ TABLES_GPA, tables, ROOM }; \
} while (0)
	RESET_AT();
	at[ACPI_FILE_TABLES].room = t.size[ACPI_FILE_TABLES] - 1;
	CHECK(acpi_place(&t, at, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_TOO_LARGE, "etc/acpi/tables needs");
	RESET_AT();
	at[ACPI_FILE_TABLES].gpa = 0x100000000ULL;
	CHECK(acpi_place(&t, at, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "below 4 GiB");
	RESET_AT();
	at[ACPI_FILE_TABLES].gpa = 0xffffff00ULL;      /* starts below, ends above */
	CHECK(acpi_place(&t, at, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "below 4 GiB");
	RESET_AT();
	at[ACPI_FILE_TABLES].gpa = TABLES_GPA + 32;
	CHECK(acpi_place(&t, at, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "64-byte aligned");
	RESET_AT();
	at[ACPI_FILE_RSDP].gpa = TABLES_GPA + 64;
	CHECK(acpi_place(&t, at, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "overlaps");
	RESET_AT();
	CHECK(acpi_place(&t, at, &err) == 0);
#undef RESET_AT
	acpi_tables_free(&t);
	free(rsdp);
	free(tables);
	return 0;
}

int main(void)
{
	RUN(test_pkglen);
	RUN(test_pkglen_blocks);
	RUN(test_integers);
	RUN(test_names);
	RUN(test_blocks);
	RUN(test_resources);
	RUN(test_boards);
	RUN(test_loader);
	RUN(test_bad_boards);
	RUN(test_bad_placement);
	return test_exit();
}
