/*
 * TSC frequency: measured against PIT channel 2 (ports 0x42/0x43/0x61);
 * if the PIT does not behave, CPUID 0x15/0x16 or the hypervisor leaf
 * 0x40000010, else a 2 GHz guess. Only used for delays and time-outs.
 */
#include <keel/kit.h>

static u64 hz;

static u64 pit_calibrate(void)
{
	const u32 latch = 11932;	/* 10 ms at 1.193182 MHz */
	u64 t0, t1;
	long spins = 0;

	outb(0x61, (inb(0x61) & ~0x02) | 0x01);	/* gate on, speaker off */
	outb(0x43, 0xb0);			/* ch2, lo/hi, mode 0 */
	outb(0x42, latch & 0xff);
	outb(0x42, latch >> 8);
	t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		if (++spins > 50000000)
			return 0;
	t1 = rdtsc();
	if (spins < 2)
		return 0;	/* OUT2 already high: no working PIT */
	return (t1 - t0) * 100;
}

static u64 cpuid_hz(void)
{
	u32 a, b, c, d, max;

	cpuid(0, 0, &max, &b, &c, &d);
	if (max >= 0x15) {
		cpuid(0x15, 0, &a, &b, &c, &d);
		if (a && b && c)
			return (u64)c * b / a;
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, &a, &b, &c, &d);
		if (a)
			return (u64)a * 1000000;
	}
	cpuid(0x40000000, 0, &max, &b, &c, &d);
	if (max >= 0x40000010 && max < 0x40000100) {
		cpuid(0x40000010, 0, &a, &b, &c, &d);
		if (a)
			return (u64)a * 1000;
	}
	return 0;
}

u64 tsc_hz(void)
{
	if (!hz) {
		hz = pit_calibrate();
		if (hz < 10000000)
			hz = cpuid_hz();
		if (hz < 10000000)
			hz = 2000000000ULL;
	}
	return hz;
}

u64 tsc_deadline(u64 us)
{
	return rdtsc() + us * (tsc_hz() / 1000000);
}

bool tsc_expired(u64 deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

void udelay(u64 us)
{
	u64 end = tsc_deadline(us);

	while (!tsc_expired(end))
		cpu_relax();
}
