// SPDX-License-Identifier: MIT
/*
 * acpi_build(): lays the tables out in QEMU's two fw_cfg files and records
 * the pointer fix-ups and checksums that turn them into live tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/build.h"
#include "core/le.h"

#define ACPI_HEADER_LEN   36
/* Tables are 8-byte aligned in the file: 64-bit fields stay naturally aligned. */
#define ACPI_TABLE_ALIGN  8

static const char *const file_names[ACPI_NR_FILES] = {
	[ACPI_FILE_RSDP] = "etc/acpi/rsdp",
	[ACPI_FILE_TABLES] = "etc/acpi/tables",
};

const char *acpi_file_name(enum acpi_file f)
{
	return f < ACPI_NR_FILES ? file_names[f] : NULL;
}

uint32_t acpi_file_align(enum acpi_file f)
{
	/* RSDP: 16 (ACPI 6.4, 5.2.5.1); tables: 64 for the FACS at offset 0. */
	return f == ACPI_FILE_RSDP ? 16 : 64;
}

void acpi_align(struct acpi_builder *ab, size_t align)
{
	struct aml *a = &ab->file[ACPI_FILE_TABLES];

	aml_grow(a, (align - a->len % align) % align);
}

static void pad_copy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, len < n ? len : n);
}

size_t acpi_table_begin(struct acpi_builder *ab, const char *sig, uint8_t rev)
{
	struct aml *a = &ab->file[ACPI_FILE_TABLES];
	long off;
	uint8_t *h;

	acpi_align(ab, ACPI_TABLE_ALIGN);
	off = aml_grow(a, ACPI_HEADER_LEN);
	if (off < 0)
		return 0;
	h = a->buf + off;
	memcpy(h, sig, 4);
	/* Length at 4 and checksum at 9 are filled in by acpi_table_end(). */
	h[8] = rev;
	memcpy(h + 10, ab->oem_id, 6);
	memcpy(h + 16, ab->oem_table_id, 8);
	put_le32(h + 24, 1);                    /* OEM revision */
	memcpy(h + 28, "KEEL", 4);              /* creator ID */
	put_le32(h + 32, 1);                    /* creator revision */
	return (size_t)off;
}

void acpi_table_end(struct acpi_builder *ab, size_t off)
{
	struct aml *a = &ab->file[ACPI_FILE_TABLES];

	if (aml_error(a))
		return;
	put_le32(a->buf + off + 4, (uint32_t)(a->len - off));
	acpi_add_checksum(ab, ACPI_FILE_TABLES, off, a->len - off, off + 9);
}

void acpi_add_pointer(struct acpi_builder *ab, enum acpi_file file, size_t offset,
		      uint8_t size, enum acpi_file target, uint64_t value)
{
	struct acpi_tables *t = ab->t;
	struct aml *a = &ab->file[file];

	if (aml_error(a))
		return;
	if (t->nr_pointers == ACPI_MAX_POINTERS) {
		ab->overflow = 1;
		return;
	}
	if (size == 8)
		put_le64(a->buf + offset, value);
	else
		put_le32(a->buf + offset, (uint32_t)value);
	t->pointers[t->nr_pointers++] = (struct acpi_pointer){
		.file = file, .offset = (uint32_t)offset, .size = size, .target = target,
	};
}

void acpi_add_checksum(struct acpi_builder *ab, enum acpi_file file, size_t start,
		       size_t length, size_t at)
{
	struct acpi_tables *t = ab->t;

	if (t->nr_checksums == ACPI_MAX_CHECKSUMS) {
		ab->overflow = 1;
		return;
	}
	t->checksums[t->nr_checksums++] = (struct acpi_checksum){
		.file = file, .start = (uint32_t)start, .length = (uint32_t)length,
		.at = (uint32_t)at,
	};
}

void acpi_tables_free(struct acpi_tables *t)
{
	for (int f = 0; f < ACPI_NR_FILES; f++)
		free(t->data[f]);
	memset(t, 0, sizeof(*t));
}

static int build_error(struct acpi_builder *ab, keel_error **err)
{
	for (int f = 0; f < ACPI_NR_FILES; f++) {
		const struct aml *a = &ab->file[f];

		switch (aml_error(a)) {
		case 0:
			break;
		case -ENOMEM:
			return err_set(err, KEEL_ERR_NOMEM, "ACPI: out of memory building %s",
				       file_names[f]);
		case -E2BIG:
			return err_set(err, KEEL_ERR_TOO_LARGE,
				       "ACPI: %s grew past the 256 MiB AML can describe",
				       file_names[f]);
		default:
			/* Names and strings are ours: this is a bug in src/acpi. */
			return err_set(err, KEEL_ERR_INVALID,
				       "ACPI: internal error building %s: bad AML input \"%s\"",
				       file_names[f], a->bad);
		}
	}
	if (ab->overflow)
		return err_set(err, KEEL_ERR_INVALID,
			       "ACPI: internal error: more than %d pointers or %d checksums",
			       ACPI_MAX_POINTERS, ACPI_MAX_CHECKSUMS);
	return 0;
}

int acpi_build(const struct acpi_board *board, struct acpi_tables *t, keel_error **err)
{
	struct acpi_builder ab = { .board = board, .t = t };
	size_t facs, dsdt, rsdt, xsdt, listed[3];
	int n = 0;

	memset(t, 0, sizeof(*t));
	if (acpi_board_check(board, err))
		return -1;
	pad_copy(ab.oem_id, board->oem_id ? board->oem_id : "KEEL", sizeof(ab.oem_id));
	pad_copy(ab.oem_table_id, board->oem_table_id ? board->oem_table_id : "KEELPC",
		 sizeof(ab.oem_table_id));
	for (int f = 0; f < ACPI_NR_FILES; f++)
		aml_init(&ab.file[f]);

	/*
	 * FACS first: the file is allocated 64-byte aligned, and so is it.
	 * The XSDT lists FADT, MADT and MCFG; the FACS and DSDT are reached
	 * through the FADT only (ACPI 6.4, 5.2.8).
	 */
	facs = acpi_write_facs(&ab);
	dsdt = acpi_write_dsdt(&ab);
	listed[n++] = acpi_write_fadt(&ab, facs, dsdt);
	listed[n++] = acpi_write_madt(&ab);
	if (board->ecam_size)
		listed[n++] = acpi_write_mcfg(&ab);
	rsdt = acpi_write_rsdt(&ab, listed, n);
	xsdt = acpi_write_xsdt(&ab, listed, n);
	acpi_write_rsdp(&ab, rsdt, xsdt);

	if (build_error(&ab, err)) {
		for (int f = 0; f < ACPI_NR_FILES; f++)
			aml_free(&ab.file[f]);
		memset(t, 0, sizeof(*t));
		return -1;
	}
	for (int f = 0; f < ACPI_NR_FILES; f++) {
		t->data[f] = ab.file[f].buf;
		t->size[f] = ab.file[f].len;
	}
	return 0;
}
