// SPDX-License-Identifier: MIT
/*
 * The DSDT: \_S5, the processors, the PCI root bridge with its windows,
 * interrupt routing and legacy ISA devices, and the virtio-mmio devices.
 * Only Name objects: nothing for the OS to execute, nothing to get wrong
 * at run time.
 */
#include <stdio.h>

#include "acpi/build.h"

#define DSDT_REV 2      /* 64-bit integers (QWordMemory windows) */

/* Legacy PCI I/O ranges QEMU's PC gives PCI0, either side of 0xcf8-0xcff. */
#define PCI_IO_LOW_END  0x0cf7
#define PCI_IO_HIGH     0x0d00

static void write_s5(struct aml *a, const struct acpi_board *b)
{
	size_t pkg;

	/* SLP_TYP for PM1a and PM1b (absent), then two reserved. */
	aml_name_decl(a, "\\_S5");
	pkg = aml_package_open(a, 4);
	aml_int(a, b->s5_slp_typ);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_close(a, pkg);
}

/* ACPI 6 processor devices (8.4), in a processor container like QEMU's. */
static void write_cpus(struct aml *a, const struct acpi_board *b)
{
	size_t cpus = aml_device_open(a, "CPUS");

	aml_name_string(a, "_HID", "ACPI0010");
	aml_name_eisaid(a, "_CID", "PNP0A05");
	for (unsigned int i = 0; i < b->nr_cpus; i++) {
		char name[16];
		size_t dev;

		snprintf(name, sizeof(name), "C%03X", i);
		dev = aml_device_open(a, name);
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_int(a, "_UID", i);     /* = the MADT's ACPI processor UID */
		aml_close(a, dev);
	}
	aml_close(a, cpus);
}

/*
 * PCI0's windows, as QEMU's pc machine declares them (hw/i386/acpi-build.c):
 * the bus range, the config ports it consumes, all I/O but those ports
 * (legacy devices below, the PCI I/O window above), the VGA hole, and the
 * board's 32-bit and 64-bit memory windows exactly.
 */
static void write_pci0_crs(struct aml *a, const struct acpi_board *b)
{
	struct aml r;
	uint16_t last_bus = b->ecam_size ? (uint16_t)((b->ecam_size >> 20) - 1) : 0xff;

	aml_init(&r);
	aml_res_word_bus_number(&r, 0, last_bus);
	aml_res_io(&r, ACPI_PCI_CONF_PORT, ACPI_PCI_CONF_PORT, 1, 8);
	aml_res_word_io(&r, 0, PCI_IO_LOW_END);
	aml_res_word_io(&r, PCI_IO_HIGH, 0xffff);
	aml_res_dword_memory(&r, true, true, 0xa0000, 0xbffff);
	aml_res_dword_memory(&r, true, false, (uint32_t)b->pci_mem32_base,
			     (uint32_t)(b->pci_mem32_base + b->pci_mem32_size - 1));
	if (b->pci_mem64_size)
		aml_res_qword_memory(&r, true, true, b->pci_mem64_base,
				     b->pci_mem64_base + b->pci_mem64_size - 1);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
}

/*
 * Direct GSI routing: Package(){0xSSSSFFFF, pin, Zero, gsi} per slot pin.
 * None without routes: an empty package is legal, but iasl remarks on it.
 */
static void write_prt(struct aml *a, const struct acpi_board *b)
{
	size_t prt;

	if (!b->nr_routes)
		return;
	aml_name_decl(a, "_PRT");
	prt = aml_package_open(a, (unsigned int)b->nr_routes);
	for (int i = 0; i < b->nr_routes; i++) {
		const struct acpi_pci_route *r = &b->routes[i];
		size_t e = aml_package_open(a, 4);

		aml_int(a, (uint32_t)r->slot << 16 | 0xffff);
		aml_int(a, r->pin);
		aml_int(a, 0);          /* no link device: the next field is a GSI */
		aml_int(a, r->gsi);
		aml_close(a, e);
	}
	aml_close(a, prt);
}

/* Motherboard resources: the PM block and the ECAM, kept from PCI BARs. */
static void write_sysr(struct aml *a, const struct acpi_board *b)
{
	size_t dev = aml_device_open(a, "SYSR");
	struct aml r;

	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name_int(a, "_UID", 1);
	aml_init(&r);
	aml_res_io(&r, b->pm_base, b->pm_base, 1, ACPI_PM_BLOCK_LEN);
	/* Linux uses the MCFG region only if it is reserved here (or in e820). */
	if (b->ecam_size && b->ecam_base + b->ecam_size <= 0x100000000ULL)
		aml_res_memory32_fixed(&r, true, (uint32_t)b->ecam_base, (uint32_t)b->ecam_size);
	else if (b->ecam_size)
		aml_res_qword_memory(&r, false, false, b->ecam_base,
				     b->ecam_base + b->ecam_size - 1);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_close(a, dev);
}

static void write_isa_device(struct aml *a, const char *name, const char *hid,
			     const uint16_t *ports, const uint8_t *lens, int nr_ports,
			     unsigned int irq)
{
	size_t dev = aml_device_open(a, name);
	struct aml r;

	aml_name_eisaid(a, "_HID", hid);
	aml_init(&r);
	for (int i = 0; i < nr_ports; i++)
		aml_res_io(&r, ports[i], ports[i], 1, lens[i]);
	aml_res_irq_noflags(&r, (uint16_t)(1u << irq));
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_close(a, dev);
}

static void write_com(struct aml *a, unsigned int i)
{
	size_t dev;
	char name[16];
	struct aml r;

	snprintf(name, sizeof(name), "COM%u", i + 1);
	dev = aml_device_open(a, name);
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_int(a, "_UID", i + 1);
	aml_name_int(a, "_STA", 0x0f);
	aml_init(&r);
	aml_res_io(&r, acpi_com_port[i], acpi_com_port[i], 1, 8);
	aml_res_irq_noflags(&r, (uint16_t)(1u << acpi_com_irq[i]));
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_close(a, dev);
}

/* The PIIX ISA bridge, function 00:01.0, and what sits behind it. */
static void write_isa(struct aml *a, const struct acpi_board *b)
{
	size_t isa = aml_device_open(a, "ISA");

	aml_name_int(a, "_ADR", 0x00010000);
	if (b->i8042) {
		static const uint16_t ports[2] = { 0x60, 0x64 };
		static const uint8_t lens[2] = { 1, 1 };

		write_isa_device(a, "KBD", "PNP0303", ports, lens, 2, 1);
		write_isa_device(a, "MOU", "PNP0F13", NULL, NULL, 0, 12);
	}
	if (b->rtc) {
		static const uint16_t port = 0x70;
		static const uint8_t len = 2;

		write_isa_device(a, "RTC", "PNP0B00", &port, &len, 1, 8);
	}
	for (unsigned int i = 0; i < ACPI_NR_COM; i++)
		if (b->com_mask & (1u << i))
			write_com(a, i);
	aml_close(a, isa);
}

static void write_pci0(struct aml *a, const struct acpi_board *b)
{
	size_t dev = aml_device_open(a, "PCI0");

	/* No _ADR: a device has _HID or _ADR, not both (6.1); iasl warns. */
	aml_name_eisaid(a, "_HID", "PNP0A03");
	aml_name_int(a, "_UID", 0);
	aml_name_int(a, "_BBN", 0);
	write_pci0_crs(a, b);
	write_prt(a, b);
	write_sysr(a, b);
	write_isa(a, b);
	aml_close(a, dev);
}

/* virtio-mmio, as Linux's virtio_mmio driver matches it on ACPI systems. */
static void write_mmio(struct aml *a, const struct acpi_board *b)
{
	for (int i = 0; i < b->nr_mmio; i++) {
		const struct acpi_mmio_dev *m = &b->mmio[i];
		char name[16];
		size_t dev;
		struct aml r;

		snprintf(name, sizeof(name), "VR%02X", (unsigned int)i);
		dev = aml_device_open(a, name);
		aml_name_string(a, "_HID", "LNRO0005");
		aml_name_int(a, "_UID", (uint64_t)i);
		aml_init(&r);
		aml_res_memory32_fixed(&r, true, (uint32_t)m->base, m->size);
		/* An ISA-style line: the device raises an edge per event. */
		aml_res_interrupt(&r, true, false, false, m->gsi);
		aml_name_decl(a, "_CRS");
		aml_resource_template(a, &r);
		aml_close(a, dev);
	}
}

size_t acpi_write_dsdt(struct acpi_builder *ab)
{
	const struct acpi_board *b = ab->board;
	struct aml *a = &ab->file[ACPI_FILE_TABLES];
	size_t off = acpi_table_begin(ab, "DSDT", DSDT_REV);
	size_t sb;

	write_s5(a, b);
	sb = aml_scope_open(a, "\\_SB");
	write_cpus(a, b);
	write_pci0(a, b);
	write_mmio(a, b);
	aml_close(a, sb);
	acpi_table_end(ab, off);
	return off;
}
