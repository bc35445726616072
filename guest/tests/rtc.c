/*
 * RTC guest: read the CMOS clock, convert to Unix time and compare with
 * cmdline hosttime=EPOCH (tolerance rtc_tolerance=S, default 120).
 */
#include <keel/kit.h>

static u8 cmos(u8 reg)
{
	outb(0x70, reg);	/* bit 7 clear: NMI stays enabled */
	return inb(0x71);
}

static u32 bcd(u8 v, bool is_bcd)
{
	return is_bcd ? (v >> 4) * 10 + (v & 0xf) : v;
}

/* Days since 1970-01-01 for a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, u32 m, u32 d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct rtc_time {
	u8 sec, min, hour, day, mon, year, cent;
};

static bool read_raw(struct rtc_time *t)
{
	u64 end = tsc_deadline(2000000);

	while (cmos(0x0a) & 0x80)	/* update in progress */
		if (tsc_expired(end))
			return false;
	t->sec = cmos(0x00);
	t->min = cmos(0x02);
	t->hour = cmos(0x04);
	t->day = cmos(0x07);
	t->mon = cmos(0x08);
	t->year = cmos(0x09);
	t->cent = cmos(0x32);
	return true;
}

void test_main(void)
{
	struct rtc_time a, b;
	u8 regb = cmos(0x0b), regd = cmos(0x0d);
	bool is_bcd = !(regb & 0x04), h24 = regb & 0x02, pm;
	u32 sec, min, hour, day, mon, year, cent;
	int64_t epoch;
	u64 host, tol = cmdline_u64_or("rtc_tolerance", 120);
	int tries = 0;

	printf("keel rtc: status B %#x (%s, %s), status D %#x\n", regb,
	       is_bcd ? "BCD" : "binary", h24 ? "24h" : "12h", regd);
	check(regd & 0x80, "RTC status D VRT", "D=%#x", regd);

	/* Read twice until stable so we never mix two different seconds. */
	do {
		if (!read_raw(&a) || !read_raw(&b)) {
			fail("RTC read: update-in-progress never cleared");
			return;
		}
	} while (memcmp(&a, &b, sizeof(a)) && ++tries < 10);

	pm = !h24 && (b.hour & 0x80);
	sec = bcd(b.sec, is_bcd);
	min = bcd(b.min, is_bcd);
	hour = bcd(b.hour & 0x7f, is_bcd);
	if (!h24)
		hour = (hour % 12) + (pm ? 12 : 0);
	day = bcd(b.day, is_bcd);
	mon = bcd(b.mon, is_bcd);
	year = bcd(b.year, is_bcd);
	cent = bcd(b.cent, is_bcd);
	if (cent < 19 || cent > 30)
		cent = year < 70 ? 20 : 19;	/* no usable century register */
	year += cent * 100;
	epoch = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
	printf("RTC: %04u-%02u-%02u %02u:%02u:%02u = %lld\n", year, mon, day,
	       hour, min, sec, (long long)epoch);

	check(mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour < 24 &&
	      min < 60 && sec < 60, "RTC fields in range", "%u-%u-%u %u:%u:%u",
	      year, mon, day, hour, min, sec);
	if (!cmdline_u64("hosttime", &host)) {
		printf("no hosttime= given: not compared\n");
		return;
	}
	check(epoch + (int64_t)tol >= (int64_t)host && epoch <= (int64_t)(host + tol),
	      "RTC matches host time", "rtc %lld host %llu diff %lld s, tolerance %llu",
	      (long long)epoch, host, (long long)(epoch - (int64_t)host), tol);
}
