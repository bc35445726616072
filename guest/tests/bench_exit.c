/*
 * Benchmark guest (bench/): exit round-trip cost.
 *
 * From ring 3, `exits=N` (default 10000) port-I/O writes to a port that
 * no device claims (bench_port=, default 0x2f0) and N 32-bit MMIO writes
 * to an address that is neither RAM nor a device (bench_mmio=, default
 * 0xf0000000); each one exits to the VMM's user space. Timed with rdtsc,
 * the TSC calibrated by the kit against the PIT. Reports
 *   BENCH exit pio n=N cycles=C ns=T
 *   BENCH exit mmio n=N cycles=C ns=T
 * (T: total nanoseconds for the N exits).
 */
#include <keel/kit.h>

static u64 to_ns(u64 cycles)
{
	u64 khz = tsc_hz() / 1000;

	return khz ? cycles * 1000000ULL / khz : 0;
}

void test_main(void)
{
	u64 n = cmdline_u64_or("exits", 10000);
	u16 port = cmdline_u64_or("bench_port", 0x2f0);
	u64 addr = cmdline_u64_or("bench_mmio", 0xf0000000ULL);
	volatile u32 *mmio = (volatile u32 *)addr;
	u64 i, t0, t1;

	printf("BENCH tsc_hz %llu\n", tsc_hz());
	for (i = 0; i < 100; i++)		/* warm-up */
		outb(port, i);
	t0 = rdtsc();
	for (i = 0; i < n; i++)
		outb(port, i);
	t1 = rdtsc();
	printf("BENCH exit pio n=%llu cycles=%llu ns=%llu\n", n, t1 - t0,
	       to_ns(t1 - t0));
	for (i = 0; i < 100; i++)
		*mmio = i;
	t0 = rdtsc();
	for (i = 0; i < n; i++)
		*mmio = i;
	t1 = rdtsc();
	printf("BENCH exit mmio n=%llu cycles=%llu ns=%llu\n", n, t1 - t0,
	       to_ns(t1 - t0));
	pass("exit loops (%llu each)", n);
}
