/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for keel's PC board (i440FX + PIIX4 PM, full fixed hardware):
 * RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT and MCFG, generated from a
 * description of the board.  Pure code: no VM, no guest memory, no iasl.
 *
 * The output is laid out like QEMU's fw_cfg files so that one generator
 * serves both boots: two files (`etc/acpi/rsdp`, `etc/acpi/tables`) whose
 * pointer fields hold offsets into their target file, plus the pointer
 * fix-ups and checksum ranges.  acpi_place() resolves them for a direct
 * kernel boot; acpi_table_loader() writes them as QEMU's `etc/table-loader`
 * script for firmware (OVMF, SeaBIOS) to resolve.
 */
#ifndef KEEL_ACPI_ACPI_H
#define KEEL_ACPI_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* A PCI slot's interrupt pin and the IOAPIC input (GSI 16-23) it drives. */
struct acpi_pci_route {
	uint8_t slot;
	uint8_t pin;            /* 0 = INTA# ... 3 = INTD# */
	uint32_t gsi;
};

/* A virtio-mmio device: register window and its edge-triggered GSI. */
struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
};

/* The board the tables describe. */
struct acpi_board {
	unsigned int nr_cpus;                   /* 1-254, APIC ID = ACPI UID = index */
	uint64_t lapic_addr, ioapic_addr;
	uint8_t ioapic_id;                      /* its 24 pins are GSI 0-23 */
	uint64_t ecam_base, ecam_size;          /* size 0: no ECAM, no MCFG */
	uint16_t pci_io_base, pci_io_size;      /* PCI I/O BAR window, in 0x0d00-0xffff */
	uint64_t pci_mem32_base, pci_mem32_size;
	uint64_t pci_mem64_base, pci_mem64_size;        /* size 0: none */
	const struct acpi_pci_route *routes;
	int nr_routes;
	uint16_t pm_base;               /* PIIX4 PMBA: 64 bytes, EVT +0, CNT +4, TMR +8 */
	uint8_t sci_irq;                /* ISA IRQ of the SCI, level/high (PIIX4: 9) */
	uint8_t s5_slp_typ;             /* PM1a_CNT.SLP_TYP for soft-off (PIIX4: 0) */
	unsigned int com_mask;          /* bit i: COM(i+1): 0x3f8/0x2f8/0x3e8/0x2e8, IRQ 4/3/4/3 */
	bool rtc;                       /* CMOS RTC at 0x70, IRQ 8, century at 0x32 */
	bool i8042;                     /* keyboard 0x60/0x64 IRQ 1, mouse IRQ 12 */
	const struct acpi_mmio_dev *mmio;
	int nr_mmio;
	const char *oem_id;             /* up to 6 characters; NULL: "KEEL" */
	const char *oem_table_id;       /* up to 8 characters; NULL: "KEELPC" */
};

/* The two files, named as QEMU's fw_cfg names them. */
enum acpi_file {
	ACPI_FILE_RSDP,                 /* "etc/acpi/rsdp": the RSDP alone */
	ACPI_FILE_TABLES,               /* "etc/acpi/tables": everything else */
	ACPI_NR_FILES,
};

/* file[offset, offset + size) holds an offset into `target`; add its address. */
struct acpi_pointer {
	enum acpi_file file;
	uint32_t offset;
	uint8_t size;                   /* 4 or 8 */
	enum acpi_file target;
};

/* file[at] is set so that file[start, start + length) sums to zero. */
struct acpi_checksum {
	enum acpi_file file;
	uint32_t start, length, at;
};

#define ACPI_MAX_POINTERS  16
#define ACPI_MAX_CHECKSUMS 16

/*
 * What acpi_build() produces.  Checksum bytes are left 0 (firmware computes
 * each over a range that includes that byte); they must be computed after
 * every pointer is patched, in list order (the RSDP's 20-byte checksum
 * before its extended one).
 */
struct acpi_tables {
	uint8_t *data[ACPI_NR_FILES];
	size_t size[ACPI_NR_FILES];
	struct acpi_pointer pointers[ACPI_MAX_POINTERS];
	int nr_pointers;
	struct acpi_checksum checksums[ACPI_MAX_CHECKSUMS];
	int nr_checksums;
};

const char *acpi_file_name(enum acpi_file f);
/* Alignment each file needs in guest memory (the FACS is first and needs 64). */
uint32_t acpi_file_align(enum acpi_file f);

/* Fills *t (free with acpi_tables_free()); -1 with *err on bad input. */
int acpi_build(const struct acpi_board *board, struct acpi_tables *t, keel_error **err);
void acpi_tables_free(struct acpi_tables *t);

/* Where a file goes: its guest-physical address and a host view of `room` bytes. */
struct acpi_placement {
	uint64_t gpa;
	uint8_t *host;
	size_t room;
};

/*
 * Direct kernel boot: copies each file to at[f].host, adds each target's
 * gpa to the pointers and fills in every checksum.  Tables are reached
 * through 32-bit pointers too (RSDT, FADT), so every file must lie below
 * 4 GiB.
 */
int acpi_place(const struct acpi_tables *t, const struct acpi_placement at[ACPI_NR_FILES],
	       keel_error **err);

/*
 * Firmware boot: QEMU's `etc/table-loader` (hw/acpi/bios-linker-loader.c):
 * 128-byte ALLOCATE, ADD_POINTER and ADD_CHECKSUM commands.  *blob is
 * malloc()ed; the files themselves are served unchanged.
 */
#define ACPI_LOADER_NAME        "etc/table-loader"
#define ACPI_LOADER_ENTRY_SIZE  128
#define ACPI_LOADER_FNAME_SIZE  56
enum {
	ACPI_LOADER_ALLOCATE = 1,
	ACPI_LOADER_ADD_POINTER = 2,
	ACPI_LOADER_ADD_CHECKSUM = 3,
	ACPI_LOADER_ZONE_HIGH = 1,
	ACPI_LOADER_ZONE_FSEG = 2,
};
int acpi_table_loader(const struct acpi_tables *t, uint8_t **blob, size_t *size,
		      keel_error **err);

#endif
