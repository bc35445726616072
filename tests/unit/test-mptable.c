// SPDX-License-Identifier: MIT
/* The MP table a guest without ACPI reads: structure and checksums. */
#include <stdint.h>

#include "check.h"
#include "kvm/mem.h"
#include "x86/layout.h"
#include "x86/x86.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static const struct mp_pci_irq pci[2] = { { 1, 17 }, { 2, 18 } };

static void check_table(struct mem *mem, unsigned int cpus)
{
	keel_error *err = NULL;
	const uint8_t *mpf, *mpc, *e;
	uint32_t physptr;
	uint16_t len, count;
	unsigned int ncpu = 0, nioapic = 0, nirq = 0, nbsp = 0, npci = 0;

	CHECK(mptable_write(mem, cpus, pci, 2, &err) == 0);
	mpf = mem_ptr(mem, LAYOUT_BIOS_START, 16);
	CHECK(!memcmp(mpf, "_MP_", 4));
	CHECK(sum(mpf, 16) == 0);
	memcpy(&physptr, mpf + 4, 4);
	mpc = mem_ptr(mem, physptr, 44);
	CHECK(mpc && !memcmp(mpc, "PCMP", 4));
	memcpy(&len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	CHECK(sum(mpc, len) == 0);
	e = mpc + 44;
	for (unsigned int i = 0; i < count; i++) {
		switch (e[0]) {
		case 0:
			CHECK(e[1] == ncpu);
			nbsp += (e[3] & 2) != 0;
			ncpu++;
			e += 20;
			break;
		case 2:
			nioapic++;
			CHECK(e[1] == cpus);    /* IOAPIC ID follows the CPUs' */
			e += 8;
			break;
		case 3:
			if (e[4] == 1) {        /* PCI bus: INTA# of slots 1 and 2, level low */
				CHECK(e[5] == (pci[npci].slot << 2) && e[7] == pci[npci].gsi);
				CHECK(e[2] == 0x0f);
				npci++;
			} else {
				nirq++;
			}
			e += 8;
			break;
		default:
			e += 8;
		}
	}
	CHECK(e == mpc + len);
	CHECK(ncpu == cpus && nbsp == 1 && nioapic == 1 && nirq == 16 && npci == 2);
}

int main(void)
{
	struct mem mem;
	keel_error *err = NULL;

	CHECK(mem_init(&mem, 64ULL << 20, false, &err) == 0);
	check_table(&mem, 1);
	check_table(&mem, 4);
	check_table(&mem, X86_MAX_CPUS);
	CHECK(mptable_write(&mem, X86_MAX_CPUS + 1, NULL, 0, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "255 CPUs");
	mem_fini(&mem);
	return test_exit();
}
