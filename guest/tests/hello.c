/* Demo guest: who am I running on, what memory and command line I got. */
#include <keel/kit.h>

static void print_cpu(void)
{
	u32 a, b, c, d, max;
	char vendor[13], hv[13];

	cpuid(0, 0, &max, &b, &c, &d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = 0;
	printf("cpu vendor: %s (max leaf %#x)\n", vendor, max);

	cpuid(1, 0, &a, &b, &c, &d);
	if (c & (1u << 31)) {
		cpuid(0x40000000, 0, &a, &b, &c, &d);
		memcpy(hv, &b, 4);
		memcpy(hv + 4, &c, 4);
		memcpy(hv + 8, &d, 4);
		hv[12] = 0;
		printf("hypervisor: \"%s\" (max leaf %#x)\n", hv, a);
	} else {
		printf("hypervisor: none reported\n");
	}
	cpuid(1, 0, &a, &b, &c, &d);
	printf("cpuid.1: family/model/stepping %#x, logical cpus/package %u, "
	       "initial APIC ID %u\n", a, (b >> 16) & 0xff, b >> 24);
}

static void check_memory(void)
{
	const char *names[] = { "?", "RAM", "reserved", "ACPI", "NVS",
				"unusable" };
	u64 total = memmap_ram_total(), want_mib, tol;
	bool ram0 = false;
	int i;

	printf("memory map (%d entries, from %s boot):\n", memmap_count(),
	       boot_kind_name());
	for (i = 0; i < memmap_count(); i++) {
		const struct mem_region *r = memmap_get(i);

		printf("  %#014llx-%#014llx %s\n", r->addr, r->addr + r->size - 1,
		       r->type < 6 ? names[r->type] : "other");
		if (r->type == E820_RAM && r->addr == 0 && r->size)
			ram0 = true;
	}
	printf("total RAM: %llu KiB (%llu MiB)\n", total >> 10, total >> 20);
	check(ram0, "memory map has RAM at 0", "%d entries", memmap_count());

	if (cmdline_u64("expect_mem_mib", &want_mib)) {
		u64 want = want_mib << 20;

		/* Firmware/VMM keep a little for themselves (EBDA, ACPI, BIOS). */
		tol = cmdline_u64_or("mem_tol_mib", 4) << 20;
		check(total <= want + (1 << 20) && total + tol >= want,
		      "total RAM matches expect_mem_mib",
		      "%llu KiB, expected %llu MiB", total >> 10, want_mib);
	}
}

void test_main(void)
{
	int ncpu;

	printf("keel hello\n");
	print_cpu();
	ncpu = mptable_cpus(NULL, 0);
	if (ncpu >= 0)
		printf("MP table: %d CPUs\n", ncpu);
	else
		printf("MP table: not found\n");
	check_memory();
	printf("cmdline: \"%s\"\n", cmdline());
	check(cmdline()[0] != 0, "cmdline readable", "%zu bytes",
	      strlen(cmdline()));
}
