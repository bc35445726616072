// SPDX-License-Identifier: MIT
/* AML encoder: ACPI 6.4, chapter 20 (grammar) and 6.4 (resource descriptors). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/aml.h"
#include "core/le.h"

enum {
	AML_ZERO = 0x00, AML_ONE = 0x01, AML_ONES = 0xff,
	AML_NAME_OP = 0x08, AML_BYTE_PREFIX = 0x0a, AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c, AML_STRING_PREFIX = 0x0d, AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10, AML_BUFFER_OP = 0x11, AML_PACKAGE_OP = 0x12,
	AML_METHOD_OP = 0x14, AML_RETURN_OP = 0xa4,
	AML_EXT_PREFIX = 0x5b, AML_DEVICE_OP = 0x82,
	AML_ROOT_CHAR = 0x5c, AML_PARENT_CHAR = 0x5e,
	AML_DUAL_NAME = 0x2e, AML_MULTI_NAME = 0x2f, AML_NULL_NAME = 0x00,
};

/* Room left for a PkgLength until the block is closed: the longest encoding. */
#define PKGLEN_SLOT 4
/* Longest name path accepted (ours are short; this bounds the scratch buffer). */
#define NAME_MAX_SEGS 16

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

static void fail(struct aml *a, int err, const char *what)
{
	size_t n;

	if (a->err)
		return;
	a->err = err;
	/* Kept short on purpose: enough to find the culprit in a message. */
	n = what ? strnlen(what, sizeof(a->bad) - 1) : 0;
	memcpy(a->bad, what ? what : "", n);
	a->bad[n] = '\0';
}

long aml_grow(struct aml *a, size_t n)
{
	size_t off = a->len;

	if (a->err)
		return -1;
	if (!n)
		return (long)off;
	if (n > AML_PKGLEN_MAX || a->len > AML_PKGLEN_MAX - n) {
		fail(a, -E2BIG, "AML buffer");
		return -1;
	}
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		uint8_t *p;

		while (cap < a->len + n)
			cap *= 2;
		p = realloc(a->buf, cap);
		if (!p) {
			fail(a, -ENOMEM, NULL);
			return -1;
		}
		a->buf = p;
		a->cap = cap;
	}
	memset(a->buf + off, 0, n);
	a->len += n;
	return (long)off;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	long off = aml_grow(a, n);

	if (off >= 0 && n)
		memcpy(a->buf + off, p, n);
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

int aml_pkglen_encode(uint8_t out[4], size_t body)
{
	/* The largest total each encoding size can express, itself included. */
	static const size_t max[4] = { 0x3f, 0xfff, 0xfffff, AML_PKGLEN_MAX };
	size_t total;
	int n;

	for (n = 1; n <= 4; n++)
		if (body <= max[n - 1] - n)
			break;
	if (n > 4)
		return 0;
	total = body + n;
	if (n == 1) {
		out[0] = (uint8_t)total;
		return 1;
	}
	/* Lead byte: count of following bytes in bits 7-6, low nibble in 3-0. */
	out[0] = (uint8_t)((n - 1) << 6 | (total & 0x0f));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

static bool lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return lead_char(c) || (c >= '0' && c <= '9');
}

void aml_name(struct aml *a, const char *path)
{
	uint8_t out[NAME_MAX_SEGS * 4 + NAME_MAX_SEGS + 3];
	const char *p = path;
	size_t n = 0, prefix;
	int segs = 0;

	if (a->err)
		return;
	if (*p == '\\')
		out[n++] = AML_ROOT_CHAR, p++;
	else
		while (*p == '^' && n < NAME_MAX_SEGS)
			out[n++] = AML_PARENT_CHAR, p++;
	prefix = n;
	n += 2;         /* room for DualNamePrefix or MultiNamePrefix + count */
	while (*p) {
		int len = 0;

		if (segs == NAME_MAX_SEGS)
			goto bad;
		while (p[len] && p[len] != '.')
			len++;
		if (len < 1 || len > 4 || !lead_char(p[0]))
			goto bad;
		for (int i = 0; i < 4; i++) {
			if (i < len && !name_char(p[i]))
				goto bad;
			out[n++] = i < len ? (uint8_t)p[i] : '_';
		}
		segs++;
		p += len;
		if (*p == '.' && !*++p)
			goto bad;
	}
	if (segs == 0) {
		out[prefix] = AML_NULL_NAME;
		aml_bytes(a, out, prefix + 1);
		return;
	}
	if (segs == 1) {
		memmove(out + prefix, out + prefix + 2, 4);
		aml_bytes(a, out, prefix + 4);
	} else if (segs == 2) {
		memmove(out + prefix + 1, out + prefix + 2, 8);
		out[prefix] = AML_DUAL_NAME;
		aml_bytes(a, out, prefix + 9);
	} else {
		out[prefix] = AML_MULTI_NAME;
		out[prefix + 1] = (uint8_t)segs;
		aml_bytes(a, out, n);
	}
	return;
bad:
	fail(a, -EINVAL, path);
}

void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xff) {
		b[0] = AML_BYTE_PREFIX;
		b[1] = (uint8_t)v;
		aml_bytes(a, b, 2);
	} else if (v <= 0xffff) {
		b[0] = AML_WORD_PREFIX;
		put_le16(b + 1, (uint16_t)v);
		aml_bytes(a, b, 3);
	} else if (v <= 0xffffffff) {
		b[0] = AML_DWORD_PREFIX;
		put_le32(b + 1, (uint32_t)v);
		aml_bytes(a, b, 5);
	} else {
		b[0] = AML_QWORD_PREFIX;
		put_le64(b + 1, v);
		aml_bytes(a, b, 9);
	}
}

void aml_ones(struct aml *a)
{
	aml_byte(a, AML_ONES);
}

void aml_string(struct aml *a, const char *s)
{
	/* AsciiCharList: 0x01-0x7f, then NullChar. */
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			fail(a, -EINVAL, s);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static size_t block_open(struct aml *a, const uint8_t *op, size_t oplen)
{
	long off;

	aml_bytes(a, op, oplen);
	off = aml_grow(a, PKGLEN_SLOT);
	return off < 0 ? 0 : (size_t)off;
}

void aml_close(struct aml *a, size_t mark)
{
	uint8_t enc[4];
	size_t body;
	int n;

	if (a->err)
		return;
	if (mark + PKGLEN_SLOT > a->len) {
		fail(a, -EINVAL, "unbalanced aml_close()");
		return;
	}
	body = a->len - mark - PKGLEN_SLOT;
	n = aml_pkglen_encode(enc, body);
	if (!n) {
		fail(a, -E2BIG, "AML block");
		return;
	}
	memmove(a->buf + mark + n, a->buf + mark + PKGLEN_SLOT, body);
	memcpy(a->buf + mark, enc, (size_t)n);
	a->len -= (size_t)(PKGLEN_SLOT - n);
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
	static const uint8_t op = AML_BUFFER_OP;
	size_t m = block_open(a, &op, 1);

	aml_int(a, n);          /* BufferSize */
	aml_bytes(a, data, n);
	aml_close(a, m);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	/* Three letters, 5 bits each (A = 1), then four hex digits; big-endian. */
	if (strlen(id) != 7)
		goto bad;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			goto bad;
		v = v << 5 | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (uint32_t)(c - 'A' + 10);
		else
			goto bad;
	}
	/* The 31-bit value, stored most significant byte first as a DWord. */
	v = (v >> 24 & 0xff) | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | (v << 24);
	{
		uint8_t b[5] = { AML_DWORD_PREFIX };

		put_le32(b + 1, v);
		aml_bytes(a, b, 5);     /* always DWord, even if it would fit smaller */
	}
	return;
bad:
	fail(a, -EINVAL, id);
}

void aml_name_decl(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name(a, path);
}

void aml_name_int(struct aml *a, const char *path, uint64_t v)
{
	aml_name_decl(a, path);
	aml_int(a, v);
}

void aml_name_string(struct aml *a, const char *path, const char *s)
{
	aml_name_decl(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name_decl(a, path);
	aml_eisaid(a, id);
}

size_t aml_scope_open(struct aml *a, const char *path)
{
	static const uint8_t op = AML_SCOPE_OP;
	size_t m = block_open(a, &op, 1);

	aml_name(a, path);
	return m;
}

size_t aml_device_open(struct aml *a, const char *path)
{
	static const uint8_t op[2] = { AML_EXT_PREFIX, AML_DEVICE_OP };
	size_t m = block_open(a, op, 2);

	aml_name(a, path);
	return m;
}

size_t aml_method_open(struct aml *a, const char *path, unsigned int nargs, bool serialized)
{
	static const uint8_t op = AML_METHOD_OP;
	size_t m = block_open(a, &op, 1);

	if (nargs > 7)
		fail(a, -EINVAL, "Method with more than 7 arguments");
	aml_name(a, path);
	/* MethodFlags: ArgCount in bits 0-2, SerializeFlag in bit 3, SyncLevel 0. */
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
	return m;
}

size_t aml_package_open(struct aml *a, unsigned int count)
{
	static const uint8_t op = AML_PACKAGE_OP;
	size_t m = block_open(a, &op, 1);

	/* NumElements is a byte; VarPackageOp is not needed by our tables. */
	if (count > 0xff)
		fail(a, -EINVAL, "Package of over 255 elements");
	aml_byte(a, (uint8_t)count);
	return m;
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = { 0x47, 0x01 /* Decode16 */ };

	put_le16(d + 2, min);
	put_le16(d + 4, max);
	d[6] = align;
	d[7] = len;
	aml_bytes(r, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *r, uint16_t mask)
{
	uint8_t d[3] = { 0x22 };

	put_le16(d + 1, mask);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_interrupt(struct aml *r, bool edge, bool active_low, bool shared, uint32_t gsi)
{
	/* Extended Interrupt: ResourceConsumer, one interrupt number. */
	uint8_t d[9] = { 0x89, 6, 0 };

	d[3] = (uint8_t)(0x01 | (edge ? 0x02 : 0) | (active_low ? 0x04 : 0) | (shared ? 0x08 : 0));
	d[4] = 1;
	put_le32(d + 5, gsi);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_memory32_fixed(struct aml *r, bool writable, uint32_t base, uint32_t len)
{
	uint8_t d[12] = { 0x86, 9, 0 };

	d[3] = writable ? 1 : 0;
	put_le32(d + 4, base);
	put_le32(d + 8, len);
	aml_bytes(r, d, sizeof(d));
}

/* Resource types and flags of the address space descriptors. */
enum { RES_MEMORY = 0, RES_IO = 1, RES_BUS = 2 };
#define RES_FIXED       0x0c    /* _MAF | _MIF, _DEC = positive decode */
#define RES_CONSUMER    0x01
#define RES_RW          0x01
#define RES_CACHEABLE   0x02
#define RES_ENTIRE      0x03    /* I/O _RNG: ISA and non-ISA ranges */

void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 13, 0, RES_BUS, RES_FIXED, 0 };

	put_le16(d + 8, min);
	put_le16(d + 10, max);
	put_le16(d + 14, (uint16_t)(max - min + 1));
	aml_bytes(r, d, sizeof(d));
}

void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 13, 0, RES_IO, RES_FIXED, RES_ENTIRE };

	put_le16(d + 8, min);
	put_le16(d + 10, max);
	put_le16(d + 14, (uint16_t)(max - min + 1));
	aml_bytes(r, d, sizeof(d));
}

void aml_res_dword_memory(struct aml *r, bool producer, bool cacheable, uint32_t min,
			  uint32_t max)
{
	uint8_t d[26] = { 0x87, 23, 0, RES_MEMORY };

	d[4] = RES_FIXED | (producer ? 0 : RES_CONSUMER);
	d[5] = RES_RW | (cacheable ? RES_CACHEABLE : 0);
	put_le32(d + 10, min);
	put_le32(d + 14, max);
	put_le32(d + 22, max - min + 1);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_qword_memory(struct aml *r, bool producer, bool cacheable, uint64_t min,
			  uint64_t max)
{
	uint8_t d[46] = { 0x8a, 43, 0, RES_MEMORY };

	d[4] = RES_FIXED | (producer ? 0 : RES_CONSUMER);
	d[5] = RES_RW | (cacheable ? RES_CACHEABLE : 0);
	put_le64(d + 14, min);
	put_le64(d + 22, max);
	put_le64(d + 38, max - min + 1);
	aml_bytes(r, d, sizeof(d));
}

void aml_resource_template(struct aml *a, struct aml *r)
{
	static const uint8_t end[2] = { 0x79, 0x00 };

	aml_bytes(r, end, sizeof(end));
	if (r->err && !a->err) {
		a->err = r->err;
		memcpy(a->bad, r->bad, sizeof(a->bad));
	}
	if (!r->err)
		aml_buffer(a, r->buf, r->len);
	aml_free(r);
}
