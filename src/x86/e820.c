// SPDX-License-Identifier: MIT
/* The guest's e820 memory map, derived from guest RAM's regions. */
#include "x86/e820.h"
#include "x86/layout.h"

static int e820_add(struct e820_entry *tab, int max, int *n, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end <= addr)
		return 0;
	if (*n >= max)
		return -1;
	tab[*n].addr = addr;
	tab[*n].size = end - addr;
	tab[*n].type = type;
	(*n)++;
	return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int e820_build(const struct mem *mem, struct e820_entry *tab, int max)
{
	uint64_t low_end;
	int n = 0, i;

	if (!mem || !tab || max < 0 || mem->nr_regions < 1)
		return -1;
	/* Region 0 starts at guest-physical 0 and ends below the MMIO hole. */
	low_end = mem->region[0].gpa + mem->region[0].size;

	/* Base memory; the EBDA at its top holds the MP table. */
	if (e820_add(tab, max, &n, 0, min_u64(low_end, LAYOUT_EBDA), E820_RAM) ||
	    e820_add(tab, max, &n, LAYOUT_EBDA, LAYOUT_BASE_MEM_END, E820_RESERVED) ||
	    /* The ACPI tables and the BIOS area, where guests look for the
	     * RSDP and the MP floating pointer. */
	    e820_add(tab, max, &n, LAYOUT_ACPI, LAYOUT_HIGH_RAM, E820_RESERVED) ||
	    e820_add(tab, max, &n, LAYOUT_HIGH_RAM, low_end, E820_RAM))
		return -1;

	/* RAM moved above 4 GiB to make room for the MMIO hole. */
	for (i = 1; i < mem->nr_regions && i < MEM_MAX_REGIONS; i++) {
		const struct mem_region *r = &mem->region[i];

		if (e820_add(tab, max, &n, r->gpa, r->gpa + r->size, E820_RAM))
			return -1;
	}
	return n;
}
