/* Intel MP table: find "_MP_" and count enabled processor entries. */
#include <keel/kit.h>

static u8 sum(const u8 *p, u32 n)
{
	u8 s = 0;

	while (n--)
		s += *p++;
	return s;
}

static const u8 *scan(u64 start, u64 len)
{
	const u8 *p = (const u8 *)(uintptr_t)start;
	u64 i;

	for (i = 0; i + 16 <= len; i += 16)
		if (!memcmp(p + i, "_MP_", 4) && !sum(p + i, 16))
			return p + i;
	return NULL;
}

static const u8 *find_mpf(void)
{
	u64 ebda = (u64)*(volatile u16 *)phys_ptr(0x40e) << 4;
	u64 base_kib = *(volatile u16 *)phys_ptr(0x413);
	const u8 *f = NULL;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		f = scan(ebda, 1024);
	if (!f && base_kib >= 512 && base_kib <= 640)
		f = scan(base_kib * 1024 - 1024, 1024);
	if (!f)
		f = scan(0x9fc00, 1024);
	if (!f)
		f = scan(0xf0000, 0x10000);
	return f;
}

int mptable_cpus(u32 *apic_ids, int max)
{
	const u8 *mpf = find_mpf(), *cfg, *e;
	u32 cfg_pa;
	u16 count, i;
	int n = 0;

	if (!mpf)
		return -1;
	cfg_pa = *(const u32 *)(mpf + 4);
	if (!cfg_pa)
		return -1;	/* default configuration: not used by VMMs */
	cfg = (const u8 *)(uintptr_t)cfg_pa;
	if (memcmp(cfg, "PCMP", 4))
		return -1;
	count = *(const u16 *)(cfg + 34);
	e = cfg + 44;
	for (i = 0; i < count; i++) {
		if (e[0] == 0) {		/* processor, 20 bytes */
			if ((e[3] & 1) && n < max)
				apic_ids[n] = e[1];
			if (e[3] & 1)
				n++;
			e += 20;
		} else {
			e += 8;
		}
	}
	return n;
}
