// SPDX-License-Identifier: MIT
/*
 * The AML builder: encodings against bytes written by hand from the ACPI
 * 6.4 grammar (and checked once against iasl's output).
 */
#include <errno.h>
#include <stdlib.h>

#include "acpi/aml.h"
#include "check.h"
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

int main(void)
{
	RUN(test_pkglen);
	RUN(test_pkglen_blocks);
	RUN(test_integers);
	RUN(test_names);
	RUN(test_blocks);
	RUN(test_resources);
	return test_exit();
}
