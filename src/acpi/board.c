// SPDX-License-Identifier: MIT
/*
 * Checks a board description before any table is written: every value the
 * tables encode must fit its field and describe a machine an OS can use
 * (no overlapping windows, no interrupt line claimed with two triggers).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "acpi/build.h"

#define KiB 0x400ULL
#define MiB 0x100000ULL
#define GiB4 0x100000000ULL

/* Every refusal here is bad input: KEEL_ERR_INVALID, and "ACPI: " first. */
#define INVALID(err, fmt, ...) err_set(err, KEEL_ERR_INVALID, "ACPI: " fmt, __VA_ARGS__)

const uint16_t acpi_com_port[ACPI_NR_COM] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
const uint8_t acpi_com_irq[ACPI_NR_COM] = { 4, 3, 4, 3 };

/* Lowest port of the PCI I/O window QEMU gives PCI0 above the config ports. */
#define PCI_IO_FLOOR 0x0d00

struct range {
	const char *what;
	unsigned int index;     /* appended to `what`: "COM" 1; ~0u: none */
	uint64_t base, size;
};

static void range_name(char *buf, size_t n, const struct range *r)
{
	if (r->index == ~0u)
		snprintf(buf, n, "%s", r->what);
	else
		snprintf(buf, n, "%s%u", r->what, r->index);
}

/* Any two of the ranges overlapping is an error naming both. */
static int check_overlaps(const struct range *r, int n, const char *space, keel_error **err)
{
	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			char a[48], b[48];

			if (!r[i].size || !r[j].size || r[i].base >= r[j].base + r[j].size ||
			    r[j].base >= r[i].base + r[i].size)
				continue;
			range_name(a, sizeof(a), &r[i]);
			range_name(b, sizeof(b), &r[j]);
			return INVALID(err, "%s [%s 0x%" PRIx64 "-0x%" PRIx64 "] overlaps "
				       "%s [0x%" PRIx64 "-0x%" PRIx64 "]", a, space, r[i].base,
				       r[i].base + r[i].size - 1, b, r[j].base,
				       r[j].base + r[j].size - 1);
		}
	}
	return 0;
}

static int check_string(const char *s, size_t max, const char *what, keel_error **err)
{
	if (!s)
		return 0;
	if (strlen(s) > max)
		return INVALID(err, "%s \"%s\" is longer than %zu characters", what, s, max);
	for (const char *c = s; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return INVALID(err, "%s \"%s\" has a character that is not "
				       "printable ASCII", what, s);
	return 0;
}

static int check_memory(const struct acpi_board *b, keel_error **err)
{
	struct range r[8 + ACPI_IOAPIC_PINS];
	int n = 0;

	if (b->lapic_addr >= GiB4 || b->lapic_addr % (4 * KiB) ||
	    b->ioapic_addr >= GiB4 || b->ioapic_addr % (4 * KiB))
		return INVALID(err, "LAPIC 0x%" PRIx64 " or IOAPIC 0x%" PRIx64 " is not a "
			       "4 KiB-aligned address below 4 GiB (the MADT holds 32-bit "
			       "addresses)", b->lapic_addr, b->ioapic_addr);
	if (!b->pci_mem32_size || b->pci_mem32_base % (4 * KiB) || b->pci_mem32_size % (4 * KiB) ||
	    b->pci_mem32_base + b->pci_mem32_size > GiB4)
		return INVALID(err, "PCI 32-bit window 0x%" PRIx64 " size 0x%" PRIx64 " must "
			       "be non-empty, 4 KiB-aligned in base and size, and end at or "
			       "below 4 GiB", b->pci_mem32_base, b->pci_mem32_size);
	if (b->pci_mem64_size && (b->pci_mem64_base % (4 * KiB) || b->pci_mem64_size % (4 * KiB) ||
				  b->pci_mem64_base + b->pci_mem64_size < b->pci_mem64_base))
		return INVALID(err, "PCI 64-bit window 0x%" PRIx64 " size 0x%" PRIx64 " must be "
			       "4 KiB-aligned in base and size and not wrap around",
			       b->pci_mem64_base, b->pci_mem64_size);
	if (b->ecam_size && (b->ecam_base % MiB || b->ecam_size % MiB ||
			     b->ecam_size > 256 * MiB ||
			     b->ecam_base + b->ecam_size < b->ecam_base))
		return INVALID(err, "ECAM 0x%" PRIx64 " size 0x%" PRIx64 " must be 1 MiB-aligned "
			       "in base and size (1 MiB per bus) and cover at most 256 buses",
			       b->ecam_base, b->ecam_size);
	if (b->nr_mmio < 0 || (b->nr_mmio && !b->mmio) || b->nr_mmio > ACPI_IOAPIC_PINS)
		return INVALID(err, "%d virtio-mmio devices (0-%d: each needs a GSI of its own)",
			       b->nr_mmio, ACPI_IOAPIC_PINS);

	r[n++] = (struct range){ "legacy VGA window", ~0u, 0xa0000, 0x20000 };
	r[n++] = (struct range){ "LAPIC", ~0u, b->lapic_addr, 4 * KiB };
	r[n++] = (struct range){ "IOAPIC", ~0u, b->ioapic_addr, 4 * KiB };
	r[n++] = (struct range){ "PCI 32-bit window", ~0u, b->pci_mem32_base, b->pci_mem32_size };
	r[n++] = (struct range){ "PCI 64-bit window", ~0u, b->pci_mem64_base, b->pci_mem64_size };
	r[n++] = (struct range){ "ECAM", ~0u, b->ecam_base, b->ecam_size };
	for (int i = 0; i < b->nr_mmio; i++) {
		const struct acpi_mmio_dev *d = &b->mmio[i];

		if (!d->size || d->base + d->size > GiB4 || d->base + d->size < d->base)
			return INVALID(err, "virtio-mmio device %d at 0x%" PRIx64 " size 0x%"
				       PRIx32 " must be non-empty and below 4 GiB "
				       "(Memory32Fixed)", i, d->base, d->size);
		r[n++] = (struct range){ "virtio-mmio device ", (unsigned int)i, d->base, d->size };
	}
	return check_overlaps(r, n, "mem", err);
}

static int check_io(const struct acpi_board *b, keel_error **err)
{
	struct range r[8 + ACPI_NR_COM];
	uint32_t end = (uint32_t)b->pci_io_base + b->pci_io_size;
	int n = 0;

	if (!b->pci_io_size || b->pci_io_base % 4 || b->pci_io_size % 4 ||
	    b->pci_io_base < PCI_IO_FLOOR || end > 0x10000)
		return INVALID(err, "PCI I/O window 0x%x size 0x%x must be non-empty, "
			       "4-aligned and inside 0x%x-0xffff (PCI0's I/O range above the "
			       "config ports)", b->pci_io_base, b->pci_io_size, PCI_IO_FLOOR);
	if (!b->pm_base || b->pm_base % ACPI_PM_BLOCK_LEN)
		return INVALID(err, "PM I/O base 0x%x must be a non-zero multiple of 0x%x "
			       "(the PIIX4 PMBA decodes a 64-byte block)",
			       b->pm_base, ACPI_PM_BLOCK_LEN);
	if (b->com_mask & ~0xfu)
		return INVALID(err, "serial port mask 0x%x names ports beyond COM4", b->com_mask);

	r[n++] = (struct range){ "PCI I/O window", ~0u, b->pci_io_base, b->pci_io_size };
	r[n++] = (struct range){ "PCI config ports", ~0u, ACPI_PCI_CONF_PORT, 8 };
	r[n++] = (struct range){ "PM block", ~0u, b->pm_base, ACPI_PM_BLOCK_LEN };
	if (b->rtc)
		r[n++] = (struct range){ "RTC", ~0u, 0x70, 2 };
	if (b->i8042) {
		r[n++] = (struct range){ "i8042 data port", ~0u, 0x60, 1 };
		r[n++] = (struct range){ "i8042 command port", ~0u, 0x64, 1 };
	}
	for (unsigned int i = 0; i < ACPI_NR_COM; i++)
		if (b->com_mask & (1u << i))
			r[n++] = (struct range){ "COM", i + 1, acpi_com_port[i], 8 };
	return check_overlaps(r, n, "io", err);
}

/*
 * Who drives each IOAPIC input.  PCI INTx lines share (level, active low),
 * and so may COM1/COM3 and COM2/COM4 (ISA edge lines, as on PCs); anything
 * else on one GSI would need two trigger modes or is not shareable.
 */
enum gsi_user { GSI_FREE, GSI_TIMER, GSI_ISA, GSI_COM, GSI_SCI, GSI_PCI, GSI_MMIO };

struct gsi_owner {
	enum gsi_user user;
	const char *what;
	int index;              /* appended to `what` when >= 0: "COM" 1 */
};

static void owner_name(char *buf, size_t n, const char *what, int index)
{
	if (index < 0)
		snprintf(buf, n, "%s", what);
	else
		snprintf(buf, n, "%s%d", what, index);
}

static int claim(struct gsi_owner *tab, uint32_t gsi, enum gsi_user user, const char *what,
		 int index, keel_error **err)
{
	struct gsi_owner *o = &tab[gsi];
	char a[48], b[48];

	if (o->user == GSI_FREE || (o->user == user && (user == GSI_PCI || user == GSI_COM))) {
		*o = (struct gsi_owner){ user, what, index };
		return 0;
	}
	owner_name(a, sizeof(a), o->what, o->index);
	owner_name(b, sizeof(b), what, index);
	return INVALID(err, "GSI %" PRIu32 " is wired to both %s and %s: they cannot share it "
		       "(different trigger modes, or not shareable)", gsi, a, b);
}

static int check_irqs(const struct acpi_board *b, keel_error **err)
{
	struct gsi_owner tab[ACPI_IOAPIC_PINS] = { { 0 } };

	if (b->sci_irq < 1 || b->sci_irq > 15 || b->sci_irq == 2)
		return INVALID(err, "SCI IRQ %u must be an ISA IRQ 1-15 other than the "
			       "cascade (2)", b->sci_irq);
	if (b->nr_routes < 0 || (b->nr_routes && !b->routes) || b->nr_routes > 32 * 4)
		return INVALID(err, "%d PCI interrupt routes (0-128: 32 slots, 4 pins)",
			       b->nr_routes);

	/*
	 * Fixed legacy lines first (distinct, or COMs that may share: these
	 * cannot fail), so that a message names the newcomer second.
	 */
	claim(tab, 0, GSI_TIMER, "the PIT (IRQ 0)", -1, err);
	if (b->i8042) {
		claim(tab, 1, GSI_ISA, "the i8042 keyboard", -1, err);
		claim(tab, 12, GSI_ISA, "the i8042 mouse", -1, err);
	}
	if (b->rtc)
		claim(tab, 8, GSI_ISA, "the RTC", -1, err);
	for (int i = 0; i < ACPI_NR_COM; i++)
		if (b->com_mask & (1u << i))
			claim(tab, acpi_com_irq[i], GSI_COM, "COM", i + 1, err);
	if (claim(tab, b->sci_irq, GSI_SCI, "the SCI", -1, err))
		return -1;

	for (int i = 0; i < b->nr_routes; i++) {
		const struct acpi_pci_route *r = &b->routes[i];

		if (r->slot > 31 || r->pin > 3)
			return INVALID(err, "PCI route %d: slot %u pin %u (slots 0-31, pins 0-3 "
				       "for INTA#-INTD#)", i, r->slot, r->pin);
		if (r->gsi < 16 || r->gsi >= ACPI_IOAPIC_PINS)
			return INVALID(err, "PCI route %d (slot %u pin %u) to GSI %" PRIu32 ": "
				       "PCI INTx goes to IOAPIC pins 16-23 (0-15 are ISA lines, "
				       "edge-triggered; the IOAPIC has 24 pins)", i, r->slot,
				       r->pin, r->gsi);
		for (int j = 0; j < i; j++)
			if (b->routes[j].slot == r->slot && b->routes[j].pin == r->pin)
				return INVALID(err, "PCI slot %u pin %u is routed twice (routes "
					       "%d and %d)", r->slot, r->pin, j, i);
		if (claim(tab, r->gsi, GSI_PCI, "PCI INTx", -1, err))
			return -1;
	}
	for (int i = 0; i < b->nr_mmio; i++) {
		uint32_t gsi = b->mmio[i].gsi;

		if (gsi >= ACPI_IOAPIC_PINS)
			return INVALID(err, "virtio-mmio device %d on GSI %" PRIu32 ": the "
				       "IOAPIC has %d pins", i, gsi, ACPI_IOAPIC_PINS);
		if (claim(tab, gsi, GSI_MMIO, "virtio-mmio device ", i, err))
			return -1;
	}
	return 0;
}

int acpi_board_check(const struct acpi_board *b, keel_error **err)
{
	/* 8-bit xAPIC IDs, 255 being the broadcast ID: as X86_MAX_CPUS. */
	if (b->nr_cpus < 1 || b->nr_cpus > 254)
		return INVALID(err, "%u vCPUs: 1-254 are supported (8-bit APIC IDs, 255 is "
			       "broadcast)", b->nr_cpus);
	if (b->s5_slp_typ > 7)
		return INVALID(err, "S5 SLP_TYP %u does not fit the 3-bit PM1_CNT field",
			       b->s5_slp_typ);
	if (check_string(b->oem_id, 6, "OEM ID", err) ||
	    check_string(b->oem_table_id, 8, "OEM table ID", err))
		return -1;
	if (check_memory(b, err) || check_io(b, err) || check_irqs(b, err))
		return -1;
	return 0;
}
