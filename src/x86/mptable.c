// SPDX-License-Identifier: MIT
/*
 * Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
 * finds its CPUs, the IOAPIC and the routing of ISA interrupts.
 */
#include <string.h>

#include "x86/layout.h"
#include "x86/x86.h"

#define MPC_APIC_VERSION   0x14
#define MPC_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS        16

struct mpf {
	char signature[4];      /* "_MP_" */
	uint32_t physptr;
	uint8_t length;         /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_header {
	char signature[4];      /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t count;
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;           /* 0 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;           /* 1 */
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;           /* 2 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;           /* 3: I/O interrupt, 4: local interrupt */
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

#define CPU_ENABLED 1
#define CPU_BSP     2

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

#define MP_BUS_ISA 0
#define MP_BUS_PCI 1
#define MP_IRQ_LEVEL_LOW 0x0f   /* active low, level triggered: PCI INTx */

int mptable_write(struct mem *mem, unsigned int nr_cpus, const struct mp_pci_irq *pci,
		  int nr_pci, keel_error **err)
{
	size_t size = sizeof(struct mpf) + sizeof(struct mpc_header) +
		      nr_cpus * sizeof(struct mpc_cpu) + 2 * sizeof(struct mpc_bus) +
		      sizeof(struct mpc_ioapic) +
		      (MP_ISA_IRQS + nr_pci + 2) * sizeof(struct mpc_intsrc);
	uint8_t *base = mem_ptr(mem, LAYOUT_BIOS_START, size);
	struct mpf *mpf = (struct mpf *)base;
	struct mpc_header *mpc = (struct mpc_header *)(mpf + 1);
	uint8_t *p = (uint8_t *)(mpc + 1);
	uint8_t ioapic_id = (uint8_t)nr_cpus;
	uint16_t count = 0;

	if (nr_cpus < 1 || nr_cpus > X86_MAX_CPUS)
		return err_set(err, KEEL_ERR_INVALID, "MP table: %u CPUs (1-%d supported)",
			       nr_cpus, X86_MAX_CPUS);
	if (!base)
		return err_set(err, KEEL_ERR_TOO_LARGE, "MP table does not fit in guest RAM");
	memset(base, 0, size);

	for (unsigned int i = 0; i < nr_cpus; i++, count++) {
		struct mpc_cpu cpu = {
			.type = 0, .apicid = (uint8_t)i, .apicver = MPC_APIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
			.cpufeature = 0x600,    /* family 6: the guest reads CPUID anyway */
			.featureflag = 0x201,   /* FPU, APIC */
		};
		memcpy(p, &cpu, sizeof(cpu));
		p += sizeof(cpu);
	}
	{
		struct mpc_bus bus[2] = {
			{ .type = 1, .busid = MP_BUS_ISA, .bustype = "ISA   " },
			{ .type = 1, .busid = MP_BUS_PCI, .bustype = "PCI   " },
		};

		memcpy(p, bus, sizeof(bus));
		p += sizeof(bus);
		count += 2;
	}
	{
		struct mpc_ioapic io = { .type = 2, .apicid = ioapic_id, .apicver = MPC_IOAPIC_VERSION,
					 .flags = 1, .apicaddr = (uint32_t)LAYOUT_IOAPIC };

		memcpy(p, &io, sizeof(io));
		p += sizeof(io);
		count++;
	}
	/* ISA IRQ n on IOAPIC pin n: KVM's default GSI routing. */
	for (int irq = 0; irq < MP_ISA_IRQS; irq++, count++) {
		struct mpc_intsrc src = { .type = 3, .irqtype = MP_INT, .srcbus = MP_BUS_ISA,
					  .srcbusirq = (uint8_t)irq, .dstapic = ioapic_id,
					  .dstirq = (uint8_t)irq };
		memcpy(p, &src, sizeof(src));
		p += sizeof(src);
	}
	for (int i = 0; i < nr_pci; i++, count++) {
		struct mpc_intsrc src = { .type = 3, .irqtype = MP_INT, .irqflag = MP_IRQ_LEVEL_LOW,
					  .srcbus = MP_BUS_PCI,
					  .srcbusirq = (uint8_t)(pci[i].slot << 2), /* INTA# */
					  .dstapic = ioapic_id, .dstirq = pci[i].gsi };
		memcpy(p, &src, sizeof(src));
		p += sizeof(src);
	}
	{
		struct mpc_intsrc lint[2] = {
			{ .type = 4, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0 },
			{ .type = 4, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1 },
		};

		memcpy(p, lint, sizeof(lint));
		p += sizeof(lint);
		count += 2;
	}

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(p - (uint8_t *)mpc);
	mpc->spec = 4;
	memcpy(mpc->oem, "KEEL    ", 8);
	memcpy(mpc->product, "KEEL-VM     ", 12);
	mpc->count = count;
	mpc->lapic = (uint32_t)LAYOUT_LAPIC;
	mpc->checksum = checksum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(LAYOUT_BIOS_START + sizeof(*mpf));
	mpf->length = 1;
	mpf->spec_rev = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return 0;
}
