/*
 * Long-running guest for the API tests (tests/api): prints "keel spin",
 * "SPIN", then "TICK n" about every 100 ms (tick_ms= on the command line)
 * forever, in ring 3.  It never reports KEEL-TEST-END: the host ends it with
 * keel_vm_stop().  A paused VM prints no ticks, so the host can see that
 * pause stops the vCPUs and resume restarts them.
 */
#include <keel/kit.h>

void test_main(void)
{
	u64 ms = cmdline_u64_or("tick_ms", 100), n = 0;

	printf("keel spin\n");
	printf("SPIN\n");
	for (;;) {
		udelay(ms * 1000);
		printf("TICK %llu\n", ++n);
	}
}
