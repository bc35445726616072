/* SPDX-License-Identifier: MIT */
/* Internal to src/acpi: the state the table writers share while building. */
#ifndef KEEL_ACPI_BUILD_H
#define KEEL_ACPI_BUILD_H

#include "acpi/acpi.h"
#include "acpi/aml.h"

/* Fixed legacy resources of the PC board (the values OSes expect there). */
#define ACPI_NR_COM             4
#define ACPI_IOAPIC_PINS        24
#define ACPI_PM_BLOCK_LEN       0x40    /* PIIX4 PMBA decodes 64 bytes */
#define ACPI_PM1_EVT_LEN        4
#define ACPI_PM1_CNT_OFF        4
#define ACPI_PM1_CNT_LEN        2
#define ACPI_PM_TMR_OFF         8
#define ACPI_PM_TMR_LEN         4
#define ACPI_RESET_PORT         0xcf9   /* PIIX4 reset control register */
#define ACPI_RESET_VALUE        0x06    /* full reset: SYS_RST | RST_CPU */
#define ACPI_PCI_CONF_PORT      0xcf8   /* config mechanism 1: 0xcf8-0xcff */
#define ACPI_RTC_CENTURY        0x32    /* CMOS index of the century byte */

extern const uint16_t acpi_com_port[ACPI_NR_COM];
extern const uint8_t acpi_com_irq[ACPI_NR_COM];

struct acpi_builder {
	const struct acpi_board *board;
	struct acpi_tables *t;
	struct aml file[ACPI_NR_FILES];
	char oem_id[6];
	char oem_table_id[8];
	int overflow;           /* more pointers or checksums than acpi_tables holds */
};

/* Checks every board value; -1 with *err (KEEL_ERR_INVALID) saying which and why. */
int acpi_board_check(const struct acpi_board *b, keel_error **err);

/* Starts a table with a standard header in the tables file; returns its offset. */
size_t acpi_table_begin(struct acpi_builder *ab, const char *sig, uint8_t rev);
/* Sets the table's length and records its checksum. */
void acpi_table_end(struct acpi_builder *ab, size_t off);
/* Stores `value` (an offset into target) at file[offset] and records the fix-up. */
void acpi_add_pointer(struct acpi_builder *ab, enum acpi_file file, size_t offset,
		      uint8_t size, enum acpi_file target, uint64_t value);
void acpi_add_checksum(struct acpi_builder *ab, enum acpi_file file, size_t start,
		       size_t length, size_t at);
/* Pads the tables file to a multiple of `align` with zero bytes. */
void acpi_align(struct acpi_builder *ab, size_t align);

/* The writers: each appends one table to the tables file; return its offset. */
size_t acpi_write_facs(struct acpi_builder *ab);
size_t acpi_write_dsdt(struct acpi_builder *ab);
size_t acpi_write_fadt(struct acpi_builder *ab, size_t facs, size_t dsdt);
size_t acpi_write_madt(struct acpi_builder *ab);
size_t acpi_write_mcfg(struct acpi_builder *ab);
size_t acpi_write_rsdt(struct acpi_builder *ab, const size_t *tables, int n);
size_t acpi_write_xsdt(struct acpi_builder *ab, const size_t *tables, int n);
void acpi_write_rsdp(struct acpi_builder *ab, size_t rsdt, size_t xsdt);

#endif
