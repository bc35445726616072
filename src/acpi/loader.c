// SPDX-License-Identifier: MIT
/*
 * acpi_table_loader(): the `etc/table-loader` script that firmware runs to
 * link the fw_cfg files into live tables, in the format of QEMU's
 * hw/acpi/bios-linker-loader.c (edk2 OvmfPkg/Include/IndustryStandard/
 * QemuLoader.h).  Each command is 128
 * bytes: a little-endian u32 type, then its arguments, zero-padded:
 *
 *   ALLOCATE      file[56], u32 alignment, u8 zone (1 high, 2 FSEG)
 *   ADD_POINTER   pointer file[56], pointee file[56], u32 offset, u8 size
 *   ADD_CHECKSUM  file[56], u32 result offset, u32 start, u32 length
 *
 * Firmware runs them in order.  ADD_CHECKSUM stores 0 - sum(range) with
 * the result byte inside the range, which is why acpi_build() leaves every
 * checksum byte 0, as QEMU does.
 */
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "core/le.h"

static uint8_t *command(uint8_t *blob, int *n, uint32_t type)
{
	uint8_t *c = blob + (size_t)(*n)++ * ACPI_LOADER_ENTRY_SIZE;

	put_le32(c, type);
	return c + 4;
}

static void put_name(uint8_t *p, enum acpi_file f)
{
	/* Our names are far shorter than 56: the rest stays NUL. */
	memcpy(p, acpi_file_name(f), strlen(acpi_file_name(f)));
}

int acpi_table_loader(const struct acpi_tables *t, uint8_t **blob, size_t *size,
		      keel_error **err)
{
	int count = ACPI_NR_FILES + t->nr_pointers + t->nr_checksums, n = 0;
	uint8_t *b = calloc((size_t)count, ACPI_LOADER_ENTRY_SIZE), *c;

	if (!b)
		return err_set(err, KEEL_ERR_NOMEM, "ACPI: out of memory for %s",
			       ACPI_LOADER_NAME);
	/*
	 * The tables in "high" memory (OVMF allocates it below 4 GiB), the
	 * RSDP in the F segment where legacy OSes scan for it.  All pointers
	 * before any checksum: a table's checksum covers its patched pointers.
	 */
	c = command(b, &n, ACPI_LOADER_ALLOCATE);
	put_name(c, ACPI_FILE_TABLES);
	put_le32(c + ACPI_LOADER_FNAME_SIZE, acpi_file_align(ACPI_FILE_TABLES));
	c[ACPI_LOADER_FNAME_SIZE + 4] = ACPI_LOADER_ZONE_HIGH;
	c = command(b, &n, ACPI_LOADER_ALLOCATE);
	put_name(c, ACPI_FILE_RSDP);
	put_le32(c + ACPI_LOADER_FNAME_SIZE, acpi_file_align(ACPI_FILE_RSDP));
	c[ACPI_LOADER_FNAME_SIZE + 4] = ACPI_LOADER_ZONE_FSEG;
	for (int i = 0; i < t->nr_pointers; i++) {
		const struct acpi_pointer *p = &t->pointers[i];

		c = command(b, &n, ACPI_LOADER_ADD_POINTER);
		put_name(c, p->file);
		put_name(c + ACPI_LOADER_FNAME_SIZE, p->target);
		put_le32(c + 2 * ACPI_LOADER_FNAME_SIZE, p->offset);
		c[2 * ACPI_LOADER_FNAME_SIZE + 4] = p->size;
	}
	for (int i = 0; i < t->nr_checksums; i++) {
		const struct acpi_checksum *k = &t->checksums[i];

		c = command(b, &n, ACPI_LOADER_ADD_CHECKSUM);
		put_name(c, k->file);
		put_le32(c + ACPI_LOADER_FNAME_SIZE, k->at);
		put_le32(c + ACPI_LOADER_FNAME_SIZE + 4, k->start);
		put_le32(c + ACPI_LOADER_FNAME_SIZE + 8, k->length);
	}
	*blob = b;
	*size = (size_t)n * ACPI_LOADER_ENTRY_SIZE;
	return 0;
}
