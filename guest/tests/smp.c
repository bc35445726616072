/*
 * SMP guest: the BSP (ring 3, via user-accessible LAPIC MMIO) starts all
 * APs with INIT-SIPI-SIPI; each AP reaches long mode through lib/ap.S,
 * records its APIC ID and halts. Expected count: cmdline cpus=N.
 */
#include <keel/kit.h>
#include "../lib/segs.h"

#define LAPIC		0xfee00000ULL
#define LAPIC_ID	0x020
#define LAPIC_SVR	0x0f0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define ICR_PENDING	(1u << 12)
#define ICR_ALL_BUT_SELF (3u << 18)

extern const char ap_tramp[], ap_tramp_end[];
extern volatile u32 ap_count;
extern volatile u32 ap_ids[MAX_CPUS];

static void icr_send(u32 lo)
{
	u64 end = tsc_deadline(100000);

	mmio_write32(LAPIC + LAPIC_ICR_HI, 0);
	mmio_write32(LAPIC + LAPIC_ICR_LO, lo);
	while ((mmio_read32(LAPIC + LAPIC_ICR_LO) & ICR_PENDING) && !tsc_expired(end))
		cpu_relax();
}

static u32 bsp_apic_id(void)
{
	u32 a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	return b >> 24;
}

static void start_aps(void)
{
	memcpy(phys_ptr(AP_TRAMPOLINE), ap_tramp, ap_tramp_end - ap_tramp);
	/* Software-enable the LAPIC, spurious vector 0xff (IF stays 0). */
	mmio_write32(LAPIC + LAPIC_SVR, 0x1ff);
	icr_send(ICR_ALL_BUT_SELF | 0x4500);			/* INIT, assert */
	udelay(10000);
	icr_send(ICR_ALL_BUT_SELF | 0x4600 | (AP_TRAMPOLINE >> 12));	/* SIPI */
	udelay(200);
	icr_send(ICR_ALL_BUT_SELF | 0x4600 | (AP_TRAMPOLINE >> 12));
}

void test_main(void)
{
	u64 want = cmdline_u64_or("cpus", 0), timeout_s, end;
	u32 ids[MAX_CPUS], mp_ids[MAX_CPUS], me = bsp_apic_id(), n, i, j;
	int mp;
	bool distinct = true;

	printf("keel smp: BSP APIC ID %u (LAPIC ID reg %#x), TSC %llu kHz\n",
	       me, mmio_read32(LAPIC + LAPIC_ID), tsc_hz() / 1000);

	mp = mptable_cpus(mp_ids, MAX_CPUS);
	if (mp < 0)
		fail("MP table: no _MP_ floating pointer / PCMP table found");
	else
		check(!want || (u64)mp == want, "MP table processor entries",
		      "%d entries, expected %llu", mp, want);

	if (want > 1 || !want) {
		start_aps();
		/* Wait for all APs (or, with no cpus=, a fixed second). */
		timeout_s = cmdline_u64_or("smp_timeout", 5);
		end = tsc_deadline(want ? timeout_s * 1000000 : 1000000);
		while (!tsc_expired(end) && (!want || ap_count + 1 < want))
			cpu_relax();
		udelay(20000);	/* let late or extra APs show up too */
	}

	n = ap_count + 1;
	if (n > MAX_CPUS)
		n = MAX_CPUS;
	ids[0] = me;
	for (i = 1; i < n; i++)
		ids[i] = ap_ids[i - 1];
	for (i = 0; i < n; i++) {
		printf("cpu %u: APIC ID %u%s\n", i, ids[i], i ? "" : " (BSP)");
		for (j = 0; j < i; j++)
			if (ids[i] == ids[j])
				distinct = false;
	}
	if (want)
		check(n == want, "all vCPUs checked in", "%u of %llu", n, want);
	else
		check(n >= 1, "vCPUs checked in", "%u, no cpus= given", n);
	check(distinct, "APIC IDs distinct", "%u CPUs", n);
	if (mp > 0) {
		bool match = true;

		for (i = 0; i < (u32)mp && i < MAX_CPUS; i++) {
			for (j = 0; j < n && ids[j] != mp_ids[i]; j++)
				;
			match &= j < n;
		}
		check(match, "MP table APIC IDs checked in", "%d listed", mp);
	}
}
