// SPDX-License-Identifier: MIT
/*
 * Out of memory at every allocation acpi_build() and acpi_table_loader()
 * make: each must fail with KEEL_ERR_NOMEM, leave nothing behind (ASan's
 * leak check) and succeed once memory is back.  realloc() and calloc() are
 * wrapped at link time (-Wl,--wrap) to fail after a budget of calls.
 */
#include <stdlib.h>

#include "acpi/acpi.h"
#include "check.h"

static int budget = -1;         /* calls left before failing; < 0: no limit */

void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t n, size_t size);

static int spend(void)
{
	if (budget == 0)
		return -1;
	if (budget > 0)
		budget--;
	return 0;
}

void *__wrap_realloc(void *p, size_t n)
{
	return spend() ? NULL : __real_realloc(p, n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return spend() ? NULL : __real_calloc(n, size);
}

static const struct acpi_pci_route routes[2] = { { 1, 0, 16 }, { 2, 0, 17 } };
static const struct acpi_mmio_dev mmio[1] = { { 0xd0000000, 0x200, 5 } };

/* Large enough that the tables file is reallocated several times. */
static const struct acpi_board board = {
	.nr_cpus = 200, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 200,
	.ecam_base = 0xe0000000, .ecam_size = 0x100000,
	.pci_io_base = 0xc000, .pci_io_size = 0x4000,
	.pci_mem32_base = 0xc0000000, .pci_mem32_size = 0x10000000,
	.routes = routes, .nr_routes = 2, .pm_base = 0x600, .sci_irq = 9,
	.com_mask = 1, .rtc = true, .i8042 = true, .mmio = mmio, .nr_mmio = 1,
};

int main(void)
{
	struct acpi_tables t;
	keel_error *err = NULL;
	uint8_t *blob = NULL;
	size_t size;
	int limit, failures = 0;

	for (limit = 0; limit < 1000; limit++) {
		budget = limit;
		if (acpi_build(&board, &t, &err) == 0)
			break;
		failures++;
		CHECK(t.data[0] == NULL && t.data[1] == NULL);
		CHECK_ERR(err, KEEL_ERR_NOMEM, "ACPI: out of memory building etc/acpi/");
	}
	budget = -1;
	printf("acpi_build: %d allocation failures handled, succeeded with %d allocations\n",
	       failures, limit);
	CHECK(limit < 1000 && failures >= 4);
	if (limit >= 1000)
		return test_exit();

	budget = 0;
	CHECK(acpi_table_loader(&t, &blob, &size, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_NOMEM, "etc/table-loader");
	budget = -1;
	CHECK(acpi_table_loader(&t, &blob, &size, &err) == 0 && blob && size);
	free(blob);
	acpi_tables_free(&t);
	return test_exit();
}
