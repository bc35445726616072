// SPDX-License-Identifier: MIT
/*
 * acpi_place(): the direct-boot linker.  Does what firmware does with the
 * table-loader script: copy each file to its place, turn every stored
 * offset into an address, then compute every checksum.
 */
#include <inttypes.h>
#include <string.h>

#include "acpi/acpi.h"
#include "core/le.h"

#define GiB4 0x100000000ULL

static int check_placement(const struct acpi_tables *t, const struct acpi_placement *at,
			   keel_error **err)
{
	for (int f = 0; f < ACPI_NR_FILES; f++) {
		const struct acpi_placement *p = &at[f];

		if (!p->host || p->room < t->size[f])
			return err_set(err, KEEL_ERR_TOO_LARGE,
				       "ACPI: %s needs %zu bytes, its place has %zu",
				       acpi_file_name(f), t->size[f], p->host ? p->room : 0);
		if (p->gpa % acpi_file_align(f) || p->gpa >= GiB4 || t->size[f] > GiB4 - p->gpa)
			return err_set(err, KEEL_ERR_INVALID,
				       "ACPI: %s at 0x%" PRIx64 " must be %" PRIu32 "-byte "
				       "aligned and below 4 GiB (32-bit pointers reach it)",
				       acpi_file_name(f), p->gpa, acpi_file_align(f));
		for (int g = 0; g < f; g++)
			if (p->gpa < at[g].gpa + t->size[g] && at[g].gpa < p->gpa + t->size[f])
				return err_set(err, KEEL_ERR_INVALID, "ACPI: %s at 0x%" PRIx64
					       " overlaps %s at 0x%" PRIx64, acpi_file_name(f),
					       p->gpa, acpi_file_name(g), at[g].gpa);
	}
	return 0;
}

static int patch_pointer(const struct acpi_tables *t, const struct acpi_pointer *ptr,
			 const struct acpi_placement *at, keel_error **err)
{
	uint8_t *field;
	uint64_t v;

	if ((ptr->size != 4 && ptr->size != 8) ||
	    (uint64_t)ptr->offset + ptr->size > t->size[ptr->file])
		return err_set(err, KEEL_ERR_INVALID, "ACPI: bad pointer at %s+0x%" PRIx32,
			       acpi_file_name(ptr->file), ptr->offset);
	field = at[ptr->file].host + ptr->offset;
	v = ptr->size == 8 ? get_le64(field) : get_le32(field);
	if (v >= t->size[ptr->target])
		return err_set(err, KEEL_ERR_INVALID,
			       "ACPI: pointer at %s+0x%" PRIx32 " holds 0x%" PRIx64 ", past %s",
			       acpi_file_name(ptr->file), ptr->offset, v,
			       acpi_file_name(ptr->target));
	v += at[ptr->target].gpa;
	if (ptr->size == 8)
		put_le64(field, v);
	else
		put_le32(field, (uint32_t)v);   /* below 4 GiB: checked above */
	return 0;
}

int acpi_place(const struct acpi_tables *t, const struct acpi_placement at[ACPI_NR_FILES],
	       keel_error **err)
{
	if (check_placement(t, at, err))
		return -1;
	for (int f = 0; f < ACPI_NR_FILES; f++)
		memcpy(at[f].host, t->data[f], t->size[f]);
	for (int i = 0; i < t->nr_pointers; i++)
		if (patch_pointer(t, &t->pointers[i], at, err))
			return -1;
	for (int i = 0; i < t->nr_checksums; i++) {
		const struct acpi_checksum *c = &t->checksums[i];
		uint8_t *p = at[c->file].host, sum = 0;

		if (c->start + (uint64_t)c->length > t->size[c->file] || c->at < c->start ||
		    c->at >= c->start + c->length)
			return err_set(err, KEEL_ERR_INVALID, "ACPI: bad checksum range in %s",
				       acpi_file_name(c->file));
		/* The byte is in its own range: clear it, then make the sum zero. */
		p[c->at] = 0;
		for (uint32_t j = 0; j < c->length; j++)
			sum += p[c->start + j];
		p[c->at] = (uint8_t)-sum;
	}
	return 0;
}
