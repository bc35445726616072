// SPDX-License-Identifier: MIT
/* MC146818 RTC: time formats, setting the time, flags, NVRAM memory sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "dev/rtc.h"
#include "check.h"
#include "fakevm.h"

#define MIB (1ULL << 20)

static struct fake_vm *fake_vm(uint64_t mem_size)
{
	return fake_vm_new(&(struct fake_vm_opts){ .flags = FAKE_VM_PIO | FAKE_VM_LOOP,
						   .mem_size = mem_size, .create = rtc_create });
}

static struct fake_vm *vm;

static uint8_t cmos_read(uint8_t idx)
{
	uint8_t v = 0;

	bus_access(vm->ctx.pio, 0x70, &idx, 1, true);
	bus_access(vm->ctx.pio, 0x71, &v, 1, false);
	return v;
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	bus_access(vm->ctx.pio, 0x70, &idx, 1, true);
	bus_access(vm->ctx.pio, 0x71, &v, 1, true);
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0x0f);
}

/* Reads the clock as Linux's mc146818_get_time() does; -1 on failure. */
static time_t rtc_time(void)
{
	for (int tries = 0; tries < 10000; tries++) {
		uint8_t sec, min, hour, mday, mon, year, cent, b;
		int h;
		struct tm tm = { 0 };

		if (cmos_read(0x0a) & 0x80) {
			usleep(10);
			continue;
		}
		sec = cmos_read(0x00);
		min = cmos_read(0x02);
		hour = cmos_read(0x04);
		mday = cmos_read(0x07);
		mon = cmos_read(0x08);
		year = cmos_read(0x09);
		cent = cmos_read(0x32);
		b = cmos_read(0x0b);
		if ((cmos_read(0x0a) & 0x80) || sec != cmos_read(0x00))
			continue;
		if (!(b & 0x04)) {
			sec = bcd(sec);
			min = bcd(min);
			mday = bcd(mday);
			mon = bcd(mon);
			year = bcd(year);
			cent = bcd(cent);
			h = bcd(hour & 0x7f);
		} else {
			h = hour & 0x7f;
		}
		if (!(b & 0x02)) {
			if (h < 1 || h > 12)
				return -1;
			h %= 12;
			if (hour & 0x80)
				h += 12;
		}
		tm.tm_sec = sec;
		tm.tm_min = min;
		tm.tm_hour = h;
		tm.tm_mday = mday;
		tm.tm_mon = mon - 1;
		tm.tm_year = cent * 100 + year - 1900;
		return timegm(&tm);
	}
	return -1;
}

static int close_to(time_t a, time_t b)
{
	return a - b <= 2 && b - a <= 2;
}

static int test_registers(void)
{
	vm = fake_vm(128 * MIB);
	REQUIRE((cmos_read(0x0a) & 0x7f) == 0x26);
	REQUIRE(cmos_read(0x0b) == 0x02);         /* 24h (Linux needs it), BCD */
	REQUIRE(cmos_read(0x0d) == 0x80);
	REQUIRE(!(cmos_read(0x0d) & 0x40));       /* rtc_cmos "not accessible" test */
	cmos_write(0x0d, 0);
	REQUIRE(cmos_read(0x0d) == 0x80);
	cmos_write(0x0a, 0xa6);                 /* UIP is read-only */
	REQUIRE((cmos_read(0x0a) & 0x7f) == 0x26);
	/* The index port is write-only; NVRAM bytes keep what is written. */
	{
		uint8_t v = 0;

		bus_access(vm->ctx.pio, 0x70, &v, 1, false);
		REQUIRE(v == 0xff);
	}
	cmos_write(0x40, 0x5a);
	cmos_write(0x7f, 0xa5);
	REQUIRE(cmos_read(0x40) == 0x5a);
	REQUIRE(cmos_read(0x7f) == 0xa5);
	cmos_write(0x80 | 0x41, 0x33);          /* bit 7: NMI mask, not index */
	REQUIRE(cmos_read(0x41) == 0x33);
	fake_vm_free(vm);
	return 0;
}

static int test_time_formats(void)
{
	time_t t;

	vm = fake_vm(128 * MIB);
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, time(NULL)));
	/* Day of week agrees (BCD, Sunday = 1). */
	{
		struct tm tm;
		time_t now = time(NULL);

		gmtime_r(&now, &tm);
		REQUIRE(bcd(cmos_read(0x06)) == tm.tm_wday + 1 || tm.tm_hour == 0);
	}
	cmos_write(0x0b, 0x06);                 /* binary, 24h */
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, time(NULL)));
	REQUIRE(cmos_read(0x32) == 20 || cmos_read(0x32) == 21);
	cmos_write(0x0b, 0x04);                 /* binary, 12h */
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, time(NULL)));
	cmos_write(0x0b, 0x00);                 /* BCD, 12h */
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, time(NULL)));
	fake_vm_free(vm);
	return 0;
}

static int test_set_time(void)
{
	time_t t, want = 978400800;             /* 2001-01-02 02:00:00 UTC */

	vm = fake_vm(128 * MIB);
	/* As Linux's mc146818_set_time(): SET on, write BCD fields, SET off. */
	cmos_write(0x0b, 0x02 | 0x80);
	cmos_write(0x09, 0x01);
	cmos_write(0x08, 0x01);
	cmos_write(0x07, 0x02);
	cmos_write(0x04, 0x02);
	cmos_write(0x02, 0x00);
	cmos_write(0x00, 0x00);
	cmos_write(0x32, 0x20);
	REQUIRE(!(cmos_read(0x0a) & 0x80));       /* no UIP while SET */
	REQUIRE(cmos_read(0x09) == 0x01);         /* frozen */
	cmos_write(0x0b, 0x02);
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, want));
	/* The offset keeps running with the host clock. */
	sleep(1);
	t = rtc_time();
	REQUIRE(t > want && close_to(t, want + 1));

	/* Changing the format while frozen converts the frozen time. */
	cmos_write(0x0b, 0x82);
	cmos_write(0x0b, 0x86);
	REQUIRE(cmos_read(0x09) == 1 && cmos_read(0x08) == 1 && cmos_read(0x32) == 20);
	cmos_write(0x0b, 0x06);
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, want + 1));

	/* Writing one field of the running clock moves it. */
	cmos_write(0x09, 11);                   /* binary: year 2011 */
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, want + 1 + 315532800));

	/* The offset survives a reset; the control registers do not. */
	cmos_write(0x0b, 0x06 | 0x40);
	vm->ctx.devs->reset(vm->ctx.devs);
	REQUIRE(cmos_read(0x0b) == 0x02);
	t = rtc_time();
	REQUIRE(t != -1 && close_to(t, want + 1 + 315532800));
	fake_vm_free(vm);
	return 0;
}

static int test_flags(void)
{
	uint8_t c;

	vm = fake_vm(128 * MIB);
	/* Register C: read clears. Periodic at 2 Hz, no interrupt enabled. */
	cmos_write(0x0a, 0x2f);
	cmos_read(0x0c);
	REQUIRE((cmos_read(0x0c) & 0xc0) == 0);
	usleep(600000);
	c = cmos_read(0x0c);
	REQUIRE(c & 0x40);                        /* PF */
	REQUIRE(!(c & 0x80));                     /* no IRQF: PIE off */
	REQUIRE(!(cmos_read(0x0c) & 0x40));

	/* Periodic interrupt enabled: PF and IRQF from the timer. */
	cmos_write(0x0a, 0x26);                 /* 1024 Hz */
	cmos_write(0x0b, 0x02 | 0x40);
	usleep(20000);
	c = cmos_read(0x0c);
	REQUIRE((c & 0xc0) == 0xc0);
	cmos_write(0x0b, 0x02);

	/* Update-ended interrupt. */
	cmos_read(0x0c);
	cmos_write(0x0b, 0x02 | 0x10);
	usleep(1100000);
	c = cmos_read(0x0c);
	REQUIRE((c & 0x90) == 0x90);
	/* SET clears UIE. */
	cmos_write(0x0b, 0x02 | 0x10 | 0x80);
	REQUIRE(cmos_read(0x0b) == 0x82);
	cmos_write(0x0b, 0x02);

	/* Alarm: any second/minute/hour matches at the next update. */
	cmos_write(0x01, 0xff);
	cmos_write(0x03, 0xff);
	cmos_write(0x05, 0xff);
	cmos_read(0x0c);
	cmos_write(0x0b, 0x02 | 0x20);
	usleep(1100000);
	c = cmos_read(0x0c);
	REQUIRE((c & 0xa0) == 0xa0);
	REQUIRE(!(cmos_read(0x0c) & 0x80));
	cmos_write(0x0b, 0x02);
	fake_vm_free(vm);
	return 0;
}

static unsigned int rd16(uint8_t idx)
{
	return cmos_read(idx) | (unsigned int)cmos_read(idx + 1) << 8;
}

static int test_nvram_memory(void)
{
	vm = fake_vm(128 * MIB);
	REQUIRE(rd16(0x15) == 640);
	REQUIRE(rd16(0x17) == 0xffff);            /* 127 MiB in KiB, capped */
	REQUIRE(rd16(0x30) == 0xffff);
	REQUIRE(rd16(0x34) == (128 - 16) * 16);   /* 64 KiB units */
	REQUIRE(cmos_read(0x5b) == 0 && cmos_read(0x5c) == 0 && cmos_read(0x5d) == 0);
	fake_vm_free(vm);

	vm = fake_vm(20 * MIB);
	REQUIRE(rd16(0x17) == 19 * 1024);
	REQUIRE(rd16(0x30) == 19 * 1024);
	REQUIRE(rd16(0x34) == 4 * 16);
	fake_vm_free(vm);

	vm = fake_vm(5ULL << 30);               /* 3 GiB below the hole, 2 GiB above 4 GiB */
	REQUIRE(rd16(0x15) == 640);
	REQUIRE(rd16(0x17) == 0xffff);
	REQUIRE(rd16(0x34) == (3 * 1024 - 16) * 16);
	REQUIRE(cmos_read(0x5b) == 0x00);
	REQUIRE(cmos_read(0x5c) == 0x80);         /* 2 GiB = 0x8000 * 64 KiB */
	REQUIRE(cmos_read(0x5d) == 0x00);
	fake_vm_free(vm);
	return 0;
}

int main(void)
{
	RUN(test_registers);
	RUN(test_time_formats);
	RUN(test_set_time);
	RUN(test_flags);
	RUN(test_nvram_memory);
	return 0;
}
