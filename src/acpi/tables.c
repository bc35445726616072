// SPDX-License-Identifier: MIT
/*
 * The fixed-layout tables: FACS, FADT, MADT, MCFG, RSDT, XSDT and RSDP
 * (ACPI 6.4, chapter 5.2; MCFG: PCI Firmware Specification 3.2, 4.1.2).
 */
#include <string.h>

#include "acpi/build.h"
#include "core/le.h"

/* FADT revision 6 (ACPI 6.0 layout): 276 bytes. */
#define FADT_REV        6
#define FADT_MINOR      0
#define FADT_LEN        276
#define MADT_REV        3
#define FACS_LEN        64

/* FADT flags (ACPI 6.4, table 5.10). */
#define FADT_WBINVD             (1u << 0)
#define FADT_PROC_C1            (1u << 2)
#define FADT_SLP_BUTTON         (1u << 5)   /* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP      (1u << 10)
#define FADT_APIC_CLUSTER       (1u << 18)
/* IA-PC boot architecture flags (table 5.11). */
#define BOOT_LEGACY_DEVICES     (1u << 0)
#define BOOT_8042               (1u << 1)
#define BOOT_NO_CMOS_RTC        (1u << 5)

/* Generic Address Structure (5.2.3.2). */
enum { GAS_SYSTEM_IO = 1 };
enum { GAS_BYTE = 1, GAS_WORD = 2, GAS_DWORD = 3 };

static void put_gas(uint8_t *p, uint8_t space, uint8_t bits, uint8_t access, uint64_t addr)
{
	p[0] = space;
	p[1] = bits;
	p[2] = 0;               /* bit offset */
	p[3] = access;
	put_le64(p + 4, addr);
}

/* Grows the tables file to hold a table of `len` bytes that starts at off. */
static uint8_t *table_room(struct acpi_builder *ab, size_t off, size_t len)
{
	struct aml *a = &ab->file[ACPI_FILE_TABLES];

	if (aml_grow(a, len - (a->len - off)) < 0)
		return NULL;
	return a->buf + off;
}

size_t acpi_write_facs(struct acpi_builder *ab)
{
	struct aml *a = &ab->file[ACPI_FILE_TABLES];
	long off;

	/* No header, no checksum; hardware signature, waking vectors, lock all 0. */
	acpi_align(ab, 64);
	off = aml_grow(a, FACS_LEN);
	if (off < 0)
		return 0;
	memcpy(a->buf + off, "FACS", 4);
	put_le32(a->buf + off + 4, FACS_LEN);
	a->buf[off + 32] = 2;   /* version: ACPI 4.0 and later */
	return (size_t)off;
}

size_t acpi_write_fadt(struct acpi_builder *ab, size_t facs, size_t dsdt)
{
	const struct acpi_board *b = ab->board;
	size_t off = acpi_table_begin(ab, "FACP", FADT_REV);
	uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	uint16_t boot = 0;
	uint8_t *p = table_room(ab, off, FADT_LEN);

	if (!p)
		return 0;
	/*
	 * FIRMWARE_CTRL only: X_FIRMWARE_CTRL must be zero when it is set
	 * (5.2.9), and acpi_place() keeps the tables below 4 GiB.  DSDT and
	 * X_DSDT both, equal, as ACPICA accepts and older OSes need.
	 */
	acpi_add_pointer(ab, ACPI_FILE_TABLES, off + 36, 4, ACPI_FILE_TABLES, facs);
	acpi_add_pointer(ab, ACPI_FILE_TABLES, off + 40, 4, ACPI_FILE_TABLES, dsdt);
	put_le16(p + 46, b->sci_irq);
	/* SMI_CMD, ACPI_ENABLE, ACPI_DISABLE 0: no SMM, always in ACPI mode. */
	put_le32(p + 56, b->pm_base);                           /* PM1a_EVT_BLK */
	put_le32(p + 64, b->pm_base + ACPI_PM1_CNT_OFF);        /* PM1a_CNT_BLK */
	put_le32(p + 76, b->pm_base + ACPI_PM_TMR_OFF);         /* PM_TMR_BLK */
	p[88] = ACPI_PM1_EVT_LEN;
	p[89] = ACPI_PM1_CNT_LEN;
	p[91] = ACPI_PM_TMR_LEN;
	/* No GPE blocks.  C2/C3 latencies above 100/1000 us: not supported. */
	put_le16(p + 96, 0x0fff);
	put_le16(p + 98, 0x0fff);
	if (b->rtc)
		p[108] = ACPI_RTC_CENTURY;
	if (b->com_mask || b->i8042 || b->rtc)
		boot |= BOOT_LEGACY_DEVICES;
	if (b->i8042)
		boot |= BOOT_8042;
	if (!b->rtc)
		boot |= BOOT_NO_CMOS_RTC;
	put_le16(p + 109, boot);
	/*
	 * Flat logical APIC mode addresses 8 CPUs at most: like QEMU, ask for
	 * the cluster model beyond.  TMR_VAL_EXT clear: the PM timer is 24 bits.
	 * PWR_BUTTON clear: the power button is the fixed-feature one.
	 */
	if (b->nr_cpus > 8)
		flags |= FADT_APIC_CLUSTER;
	put_le32(p + 112, flags);
	put_gas(p + 116, GAS_SYSTEM_IO, 8, GAS_BYTE, ACPI_RESET_PORT);
	p[128] = ACPI_RESET_VALUE;
	p[131] = FADT_MINOR;
	acpi_add_pointer(ab, ACPI_FILE_TABLES, off + 140, 8, ACPI_FILE_TABLES, dsdt);
	put_gas(p + 148, GAS_SYSTEM_IO, ACPI_PM1_EVT_LEN * 8, GAS_WORD, b->pm_base);
	put_gas(p + 172, GAS_SYSTEM_IO, ACPI_PM1_CNT_LEN * 8, GAS_WORD,
		b->pm_base + ACPI_PM1_CNT_OFF);
	put_gas(p + 208, GAS_SYSTEM_IO, ACPI_PM_TMR_LEN * 8, GAS_DWORD,
		b->pm_base + ACPI_PM_TMR_OFF);
	acpi_table_end(ab, off);
	return off;
}

size_t acpi_write_madt(struct acpi_builder *ab)
{
	const struct acpi_board *b = ab->board;
	size_t off = acpi_table_begin(ab, "APIC", MADT_REV);
	size_t len = 44 + 8 * b->nr_cpus + 12 + 10 + 6;
	uint8_t *p = table_room(ab, off, len), *e;

	if (!p)
		return 0;
	put_le32(p + 36, (uint32_t)b->lapic_addr);
	put_le32(p + 40, 1);            /* PCAT_COMPAT: there are 8259s to mask */
	e = p + 44;
	for (unsigned int i = 0; i < b->nr_cpus; i++, e += 8) {
		/* Processor Local APIC: UID = APIC ID = index, enabled. */
		e[0] = 0;
		e[1] = 8;
		e[2] = (uint8_t)i;
		e[3] = (uint8_t)i;
		put_le32(e + 4, 1);
	}
	e[0] = 1;                       /* I/O APIC, GSI base 0 */
	e[1] = 12;
	e[2] = b->ioapic_id;
	put_le32(e + 4, (uint32_t)b->ioapic_addr);
	put_le32(e + 8, 0);
	e += 12;
	/*
	 * ISA IRQ n is IOAPIC pin n (KVM's default routing, as in the MP
	 * table): no override but for the SCI, which is level, active high.
	 */
	e[0] = 2;
	e[1] = 10;
	e[2] = 0;                       /* bus: ISA */
	e[3] = b->sci_irq;
	put_le32(e + 4, b->sci_irq);
	put_le16(e + 8, 0x000d);        /* polarity 01 high, trigger 11 level */
	e += 10;
	e[0] = 4;                       /* Local APIC NMI: all CPUs, LINT1 */
	e[1] = 6;
	e[2] = 0xff;
	put_le16(e + 3, 0);
	e[5] = 1;
	acpi_table_end(ab, off);
	return off;
}

size_t acpi_write_mcfg(struct acpi_builder *ab)
{
	const struct acpi_board *b = ab->board;
	size_t off = acpi_table_begin(ab, "MCFG", 1);
	uint8_t *p = table_room(ab, off, 44 + 16);

	if (!p)
		return 0;
	/* 8 reserved bytes, then one allocation: segment 0, buses 0..n-1. */
	put_le64(p + 44, b->ecam_base);
	put_le16(p + 52, 0);
	p[54] = 0;
	p[55] = (uint8_t)((b->ecam_size >> 20) - 1);
	acpi_table_end(ab, off);
	return off;
}

static size_t write_sdt(struct acpi_builder *ab, const char *sig, uint8_t size,
			const size_t *tables, int n)
{
	size_t off = acpi_table_begin(ab, sig, 1);

	if (!table_room(ab, off, 36 + (size_t)size * n))
		return 0;
	for (int i = 0; i < n; i++)
		acpi_add_pointer(ab, ACPI_FILE_TABLES, off + 36 + (size_t)size * i, size,
				 ACPI_FILE_TABLES, tables[i]);
	acpi_table_end(ab, off);
	return off;
}

size_t acpi_write_rsdt(struct acpi_builder *ab, const size_t *tables, int n)
{
	return write_sdt(ab, "RSDT", 4, tables, n);
}

size_t acpi_write_xsdt(struct acpi_builder *ab, const size_t *tables, int n)
{
	return write_sdt(ab, "XSDT", 8, tables, n);
}

void acpi_write_rsdp(struct acpi_builder *ab, size_t rsdt, size_t xsdt)
{
	struct aml *a = &ab->file[ACPI_FILE_RSDP];
	long off = aml_grow(a, 36);

	if (off < 0)
		return;
	memcpy(a->buf, "RSD PTR ", 8);
	memcpy(a->buf + 9, ab->oem_id, 6);
	a->buf[15] = 2;                 /* revision: ACPI 2.0+, has the XSDT */
	put_le32(a->buf + 20, 36);
	acpi_add_pointer(ab, ACPI_FILE_RSDP, 16, 4, ACPI_FILE_TABLES, rsdt);
	acpi_add_pointer(ab, ACPI_FILE_RSDP, 24, 8, ACPI_FILE_TABLES, xsdt);
	/* The first 20 bytes (ACPI 1.0) first: the extended sum covers that byte. */
	acpi_add_checksum(ab, ACPI_FILE_RSDP, 0, 20, 8);
	acpi_add_checksum(ab, ACPI_FILE_RSDP, 0, 36, 32);
}
