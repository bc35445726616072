// SPDX-License-Identifier: MIT
/* e820_build(): the guest memory map for small, 3 GiB and >4 GiB guests. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kvm/mem.h"
#include "x86/e820.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void check_map(uint64_t size)
{
	struct e820_entry tab[E820_MAX];
	keel_error *err = NULL;
	struct mem mem;
	uint64_t ram = 0, reserved = 0, low_end;
	int n, i;

	if (mem_init(&mem, size, false, &err)) {
		fprintf(stderr, "%s:%d: mem_init(%llu MiB): %s\n", __FILE__, __LINE__,
			(unsigned long long)(size / MiB), keel_error_get_message(err));
		keel_error_free(err);
		check_failures++;
		return;
	}
	low_end = size < LAYOUT_MMIO_HOLE ? size : LAYOUT_MMIO_HOLE;
	n = e820_build(&mem, tab, E820_MAX);
	printf("%llu MiB: %d entries\n", (unsigned long long)(size / MiB), n);
	CHECK(n == (size > LAYOUT_MMIO_HOLE ? 5 : 4));
	if (n < 4) {
		mem_fini(&mem);
		return;
	}
	for (i = 0; i < n; i++) {
		printf("  [0x%010llx-0x%010llx) %s\n", (unsigned long long)tab[i].addr,
		       (unsigned long long)(tab[i].addr + tab[i].size),
		       tab[i].type == E820_RAM ? "RAM" : "reserved");
		CHECK(tab[i].size > 0);
		CHECK(tab[i].type == E820_RAM || tab[i].type == E820_RESERVED);
		/* Sorted and without overlap. */
		if (i > 0)
			CHECK(tab[i].addr >= tab[i - 1].addr + tab[i - 1].size);
		if (tab[i].type == E820_RAM)
			ram += tab[i].size;
		else
			reserved += tab[i].size;
		/* Nothing in the MMIO hole. */
		CHECK(tab[i].addr + tab[i].size <= LAYOUT_MMIO_HOLE || tab[i].addr >= LAYOUT_4G);
	}
	CHECK(tab[0].addr == 0 && tab[0].size == LAYOUT_EBDA && tab[0].type == E820_RAM);
	CHECK(tab[1].addr == LAYOUT_EBDA && tab[1].size == LAYOUT_BASE_MEM_END - LAYOUT_EBDA &&
	      tab[1].type == E820_RESERVED);
	CHECK(tab[2].addr == LAYOUT_ACPI &&
	      tab[2].size == LAYOUT_HIGH_RAM - LAYOUT_ACPI && tab[2].type == E820_RESERVED);
	CHECK(tab[3].addr == LAYOUT_HIGH_RAM && tab[3].size == low_end - LAYOUT_HIGH_RAM &&
	      tab[3].type == E820_RAM);
	if (size > LAYOUT_MMIO_HOLE)
		CHECK(tab[4].addr == LAYOUT_4G && tab[4].size == size - LAYOUT_MMIO_HOLE &&
		      tab[4].type == E820_RAM);
	/* All RAM but the EBDA and the 0xa0000-0x100000 hole is reported as RAM. */
	CHECK(ram == size - (LAYOUT_HIGH_RAM - LAYOUT_EBDA));
	CHECK(reserved == (LAYOUT_BASE_MEM_END - LAYOUT_EBDA) +
			  (LAYOUT_HIGH_RAM - LAYOUT_ACPI));

	/* A table that is too small is refused, not overrun. */
	CHECK(e820_build(&mem, tab, n - 1) == -1);
	CHECK(e820_build(&mem, tab, 0) == -1);
	CHECK(e820_build(&mem, tab, n) == n);
	mem_fini(&mem);
}

int main(void)
{
	check_map(128 * MiB);
	check_map(3 * GiB);
	check_map(5 * GiB);
	if (!check_failures)
		printf("test-e820: all checks passed\n");
	return test_exit();
}
