/*
 * Benchmark guest (bench/): start-up and VMM memory overhead.
 *
 * Prints one line as early as the kit allows, then resets the VM. With
 * hold=1 on the command line it first prints "READY" and waits for one
 * byte on COM1, so that the runner can read the VMM's /proc/PID/smaps
 * while the guest is alive. Touches no RAM beyond its image, stack and
 * the kit's page tables.
 */
#include <keel/kit.h>

void test_main(void)
{
	puts("keel-bench boot\n");
	if (cmdline_u64_or("hold", 0)) {
		puts("READY\n");
		getc();
	}
	pass("boot");
}
