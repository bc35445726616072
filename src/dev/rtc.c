// SPDX-License-Identifier: MIT
/*
 * MC146818 CMOS real-time clock and 128 bytes of NVRAM at ports 0x70/0x71.
 *
 * The clock is the host's UTC time (read when the guest reads a time
 * register) plus an offset in whole seconds that changes when the guest
 * sets the time.  While register B's SET bit is on, the time registers are
 * frozen and take the guest's writes; clearing SET computes the new offset.
 *
 * UIP (register A bit 7) is on during the last 244 us of every second, as
 * on the real chip before an update, so readers that wait for it to clear
 * (Linux's mc146818_get_time()) see consistent values.
 *
 * Interrupts (IRQ 8): the periodic interrupt runs on a CLOCK_MONOTONIC
 * timerfd and update-ended / alarm on a CLOCK_REALTIME timerfd aligned to
 * whole seconds, both on the VM's event loop and armed only while the guest
 * enables them.  Without interrupts, UF and PF are still reported when the
 * guest reads register C after a second / a period went by.  The IRQ line
 * follows register C's IRQF bit: raised when a flag that is enabled gets
 * set, lowered when the guest reads C (ISA IRQ 8 is edge-triggered, so
 * every interrupt acknowledged by reading C gives a new edge).
 *
 * NVRAM holds the memory sizes a PC BIOS stores there.  It and the time
 * offset survive a guest reset (they are battery-backed); registers A-D
 * return to their power-on values.
 *
 * Lock order: loop lock (held around callbacks) -> rtc lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "core/util.h"
#include "dev/rtc.h"
#include "kvm/kvm.h"
#include "kvm/mem.h"
#include "x86/layout.h"

#define RTC_PORT                0x70
#define RTC_IRQ                 8
#define RTC_NVRAM_SIZE          128

/* Registers. */
#define RTC_SECONDS             0x00
#define RTC_SECONDS_ALARM       0x01
#define RTC_MINUTES             0x02
#define RTC_MINUTES_ALARM       0x03
#define RTC_HOURS               0x04
#define RTC_HOURS_ALARM         0x05
#define RTC_DAY_OF_WEEK         0x06
#define RTC_DAY_OF_MONTH        0x07
#define RTC_MONTH               0x08
#define RTC_YEAR                0x09
#define RTC_REG_A               0x0a
#define RTC_REG_B               0x0b
#define RTC_REG_C               0x0c
#define RTC_REG_D               0x0d
#define RTC_CENTURY             0x32

#define RTC_A_UIP               0x80
#define RTC_A_DV                0x70
#define RTC_A_RS                0x0f

#define RTC_B_SET               0x80
#define RTC_B_PIE               0x40
#define RTC_B_AIE               0x20
#define RTC_B_UIE               0x10
#define RTC_B_SQWE              0x08
#define RTC_B_DM_BINARY         0x04
#define RTC_B_24H               0x02
#define RTC_B_DSE               0x01

#define RTC_C_IRQF              0x80
#define RTC_C_PF                0x40
#define RTC_C_AF                0x20
#define RTC_C_UF                0x10

#define RTC_D_VRT               0x80

#define RTC_A_POWER_ON          0x26    /* 32.768 kHz time base, 1024 Hz periodic */
#define RTC_B_POWER_ON          RTC_B_24H
#define RTC_UIP_NS              244000  /* UIP lead time before the update */

#define NSEC_PER_SEC            1000000000LL
#define MIB                     (1ULL << 20)

struct rtc {
	struct vdev vdev;
	struct bus_dev bdev;
	struct devctx *ctx;
	int periodic_fd;        /* timerfd, CLOCK_MONOTONIC */
	int update_fd;          /* timerfd, CLOCK_REALTIME, whole seconds */

	pthread_mutex_t lock;
	uint8_t index;
	bool nmi_masked;        /* bit 7 of the index port (NMIs are not routed) */
	uint8_t cmos[RTC_NVRAM_SIZE];
	int64_t offset;         /* guest seconds minus host seconds */
	int64_t flags_sec;      /* guest second of the last register C read */
	int64_t flags_mono_ns;  /* monotonic time of the last register C read */
	uint64_t periodic_ns;   /* armed period, 0: disarmed */
	bool update_armed;
	int irq_level;
};

/* The only source of wall-clock time in the RTC. */
static struct timespec rtc_host_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static bool rtc_binary(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & RTC_B_DM_BINARY;
}

static uint8_t rtc_enc(const struct rtc *r, int v)
{
	return rtc_binary(r) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int rtc_dec(const struct rtc *r, uint8_t v)
{
	return rtc_binary(r) ? v : (v >> 4) * 10 + (v & 0x0f);
}

/* Writes time `t` into the time registers, in the current format. */
static void rtc_time_to_regs(struct rtc *r, time_t t)
{
	struct tm tm;
	int hour;

	if (!gmtime_r(&t, &tm))
		return;
	r->cmos[RTC_SECONDS] = rtc_enc(r, tm.tm_sec);
	r->cmos[RTC_MINUTES] = rtc_enc(r, tm.tm_min);
	if (r->cmos[RTC_REG_B] & RTC_B_24H) {
		r->cmos[RTC_HOURS] = rtc_enc(r, tm.tm_hour);
	} else {
		hour = tm.tm_hour % 12;
		r->cmos[RTC_HOURS] = rtc_enc(r, hour ? hour : 12) | (tm.tm_hour >= 12 ? 0x80 : 0);
	}
	r->cmos[RTC_DAY_OF_WEEK] = rtc_enc(r, tm.tm_wday + 1);
	r->cmos[RTC_DAY_OF_MONTH] = rtc_enc(r, tm.tm_mday);
	r->cmos[RTC_MONTH] = rtc_enc(r, tm.tm_mon + 1);
	r->cmos[RTC_YEAR] = rtc_enc(r, (tm.tm_year + 1900) % 100);
	r->cmos[RTC_CENTURY] = rtc_enc(r, (tm.tm_year + 1900) / 100);
}

/* The time the registers hold, in the current format. */
static time_t rtc_regs_to_time(const struct rtc *r)
{
	struct tm tm = { 0 };
	int century, year, hour;
	uint8_t h = r->cmos[RTC_HOURS];

	tm.tm_sec = rtc_dec(r, r->cmos[RTC_SECONDS]);
	tm.tm_min = rtc_dec(r, r->cmos[RTC_MINUTES]);
	if (r->cmos[RTC_REG_B] & RTC_B_24H) {
		hour = rtc_dec(r, h);
	} else {
		hour = rtc_dec(r, h & 0x7f) % 12;
		if (h & 0x80)
			hour += 12;
	}
	tm.tm_hour = hour;
	tm.tm_mday = rtc_dec(r, r->cmos[RTC_DAY_OF_MONTH]);
	tm.tm_mon = rtc_dec(r, r->cmos[RTC_MONTH]) - 1;
	year = rtc_dec(r, r->cmos[RTC_YEAR]);
	century = rtc_dec(r, r->cmos[RTC_CENTURY]);
	if (century < 19 || century > 99)
		century = year < 70 ? 20 : 19;  /* the usual guess without it */
	tm.tm_year = century * 100 + year - 1900;
	return timegm(&tm);
}

static bool rtc_frozen(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & RTC_B_SET;
}

static int64_t rtc_guest_sec(const struct rtc *r, const struct timespec *host)
{
	return (int64_t)host->tv_sec + r->offset;
}

/* Refreshes the time registers from the clock (unless frozen by SET). */
static void rtc_refresh(struct rtc *r)
{
	struct timespec now;

	if (rtc_frozen(r))
		return;
	now = rtc_host_time();
	rtc_time_to_regs(r, (time_t)rtc_guest_sec(r, &now));
}

static void rtc_set_offset_from_regs(struct rtc *r)
{
	struct timespec now = rtc_host_time();

	r->offset = (int64_t)rtc_regs_to_time(r) - (int64_t)now.tv_sec;
	r->flags_sec = rtc_guest_sec(r, &now);
}

static bool rtc_is_time_reg(uint8_t idx)
{
	switch (idx) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		return true;
	}
	return false;
}

static uint8_t rtc_irqf(const struct rtc *r)
{
	return (r->cmos[RTC_REG_C] & r->cmos[RTC_REG_B] &
		(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE)) ? RTC_C_IRQF : 0;
}

static void rtc_update_irq(struct rtc *r)
{
	int level = rtc_irqf(r) != 0;

	if (level != r->irq_level) {
		r->irq_level = level;
		kvm_irq_line(r->ctx->kvm, RTC_IRQ, level);
	}
}

/* Periodic interrupt period from register A, 0 when off. */
static uint64_t rtc_period_ns(const struct rtc *r)
{
	unsigned int rs = r->cmos[RTC_REG_A] & RTC_A_RS;

	if (!rs || ((r->cmos[RTC_REG_A] & RTC_A_DV) >> 4) != 2)
		return 0;
	if (rs <= 2)
		rs += 7;        /* 256 Hz and 128 Hz with a 32.768 kHz time base */
	return ((1ULL << (rs - 1)) * (uint64_t)NSEC_PER_SEC) >> 15;
}

/* Arms or disarms the timers for what the guest enabled. */
static void rtc_update_timers(struct rtc *r)
{
	uint64_t period = (r->cmos[RTC_REG_B] & RTC_B_PIE) ? rtc_period_ns(r) : 0;
	bool update = !rtc_frozen(r) && (r->cmos[RTC_REG_B] & (RTC_B_UIE | RTC_B_AIE));
	struct itimerspec its;

	if (period != r->periodic_ns && r->periodic_fd >= 0) {
		memset(&its, 0, sizeof(its));
		its.it_interval.tv_sec = period / NSEC_PER_SEC;
		its.it_interval.tv_nsec = period % NSEC_PER_SEC;
		its.it_value = its.it_interval;
		if (timerfd_settime(r->periodic_fd, 0, &its, NULL) == 0)
			r->periodic_ns = period;
	}
	if (update != r->update_armed && r->update_fd >= 0) {
		memset(&its, 0, sizeof(its));
		if (update) {
			struct timespec now = rtc_host_time();

			/* Whole host seconds are whole guest seconds (offset in s). */
			its.it_value.tv_sec = now.tv_sec + 1;
			its.it_interval.tv_sec = 1;
		}
		if (timerfd_settime(r->update_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
			r->update_armed = update;
	}
}

static bool rtc_alarm_field_matches(const struct rtc *r, uint8_t alarm, uint8_t reg)
{
	uint8_t a = r->cmos[alarm];

	return (a & 0xc0) == 0xc0 || a == r->cmos[reg];     /* 0xc0-0xff: any */
}

static bool rtc_alarm_matches(const struct rtc *r)
{
	return rtc_alarm_field_matches(r, RTC_SECONDS_ALARM, RTC_SECONDS) &&
	       rtc_alarm_field_matches(r, RTC_MINUTES_ALARM, RTC_MINUTES) &&
	       rtc_alarm_field_matches(r, RTC_HOURS_ALARM, RTC_HOURS);
}

static void rtc_periodic_tick(void *opaque, uint32_t events)
{
	struct rtc *r = opaque;
	uint64_t expirations;

	if (read(r->periodic_fd, &expirations, sizeof(expirations)) < 0)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->periodic_ns) {
		r->cmos[RTC_REG_C] |= RTC_C_PF;
		rtc_update_irq(r);
	}
	pthread_mutex_unlock(&r->lock);
}

static void rtc_update_tick(void *opaque, uint32_t events)
{
	struct rtc *r = opaque;
	uint64_t expirations;

	if (read(r->update_fd, &expirations, sizeof(expirations)) < 0 && errno != ECANCELED)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->update_armed && !rtc_frozen(r)) {
		rtc_refresh(r);
		r->cmos[RTC_REG_C] |= RTC_C_UF;
		if (rtc_alarm_matches(r))
			r->cmos[RTC_REG_C] |= RTC_C_AF;
		rtc_update_irq(r);
	}
	pthread_mutex_unlock(&r->lock);
}

static uint8_t rtc_read_reg(struct rtc *r, uint8_t idx)
{
	struct timespec now;
	uint8_t val;

	if (rtc_is_time_reg(idx)) {
		rtc_refresh(r);
		return r->cmos[idx];
	}
	switch (idx) {
	case RTC_REG_A:
		val = r->cmos[RTC_REG_A] & ~RTC_A_UIP;
		now = rtc_host_time();
		if (!rtc_frozen(r) && now.tv_nsec >= NSEC_PER_SEC - RTC_UIP_NS)
			val |= RTC_A_UIP;
		return val;
	case RTC_REG_C: {
		int64_t mono = mono_ns();
		uint64_t period = rtc_period_ns(r);

		/* Flags of events nobody asked an interrupt for. */
		now = rtc_host_time();
		if (!rtc_frozen(r) && rtc_guest_sec(r, &now) != r->flags_sec)
			r->cmos[RTC_REG_C] |= RTC_C_UF;
		if (period && (uint64_t)(mono - r->flags_mono_ns) >= period)
			r->cmos[RTC_REG_C] |= RTC_C_PF;
		r->flags_sec = rtc_guest_sec(r, &now);
		r->flags_mono_ns = mono;
		val = r->cmos[RTC_REG_C] | rtc_irqf(r);
		r->cmos[RTC_REG_C] = 0;
		return val;
	}
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void rtc_write_b(struct rtc *r, uint8_t val)
{
	uint8_t old = r->cmos[RTC_REG_B];
	uint8_t fmt = RTC_B_DM_BINARY | RTC_B_24H;
	time_t t = 0;

	if (val & RTC_B_SET)
		val &= ~RTC_B_UIE;      /* the chip clears UIE when SET goes on */
	if (!(old & RTC_B_SET))
		rtc_refresh(r);         /* freeze (or just see) the current time */
	if ((old ^ val) & fmt)
		t = rtc_regs_to_time(r);
	r->cmos[RTC_REG_B] = val;
	if ((old ^ val) & fmt)
		rtc_time_to_regs(r, t); /* same time, new format */
	if ((old & RTC_B_SET) && !(val & RTC_B_SET))
		rtc_set_offset_from_regs(r);
}

static void rtc_write_reg(struct rtc *r, uint8_t idx, uint8_t val)
{
	if (rtc_is_time_reg(idx)) {
		if (rtc_frozen(r)) {
			r->cmos[idx] = val;
		} else {
			/* A running clock takes the new field at once. */
			rtc_refresh(r);
			r->cmos[idx] = val;
			rtc_set_offset_from_regs(r);
		}
		return;
	}
	switch (idx) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = val & ~RTC_A_UIP;
		break;
	case RTC_REG_B:
		rtc_write_b(r, val);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break;          /* read-only */
	default:
		r->cmos[idx] = val;
		break;
	}
}

static struct rtc *bdev_to_rtc(struct bus_dev *dev)
{
	return (struct rtc *)((char *)dev - offsetof(struct rtc, bdev));
}

static void rtc_bus_read(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len)
{
	struct rtc *r = bdev_to_rtc(dev);
	uint8_t *p = data;

	memset(data, 0xff, len);
	if (!len || offset != 1)
		return;         /* the index port is write-only */
	pthread_mutex_lock(&r->lock);
	p[0] = rtc_read_reg(r, r->index);
	rtc_update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

static void rtc_bus_write(struct bus_dev *dev, uint64_t offset, const void *data,
			  unsigned int len)
{
	struct rtc *r = bdev_to_rtc(dev);
	const uint8_t *p = data;

	if (!len)
		return;
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		r->index = p[0] & 0x7f;
		r->nmi_masked = p[0] & 0x80;
		/* outw to 0x70 also writes the data port. */
		if (len > 1)
			rtc_write_reg(r, r->index, p[1]);
	} else {
		rtc_write_reg(r, r->index, p[0]);
	}
	rtc_update_timers(r);
	rtc_update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_dev_ops rtc_ops = {
	.read = rtc_bus_read,
	.write = rtc_bus_write,
};

static void rtc_put16(struct rtc *r, uint8_t idx, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	r->cmos[idx] = v & 0xff;
	r->cmos[idx + 1] = (v >> 8) & 0xff;
}

/* Memory sizes where a PC BIOS leaves them. */
static void rtc_init_nvram(struct rtc *r, const struct mem *mem)
{
	uint64_t low_end = 0, high = 0, ext_kib, above16, high64k;

	for (int i = 0; i < mem->nr_regions; i++) {
		uint64_t start = mem->region[i].gpa;
		uint64_t end = start + mem->region[i].size;

		if (start < LAYOUT_MMIO_HOLE) {
			uint64_t e = end < LAYOUT_MMIO_HOLE ? end : LAYOUT_MMIO_HOLE;

			if (e > low_end)
				low_end = e;
		}
		if (end > LAYOUT_4G)
			high += end - (start > LAYOUT_4G ? start : LAYOUT_4G);
	}
	rtc_put16(r, 0x15, 640);                        /* base memory, KiB */
	ext_kib = low_end > MIB ? (low_end - MIB) / 1024 : 0;
	rtc_put16(r, 0x17, ext_kib);                    /* above 1 MiB, KiB */
	rtc_put16(r, 0x30, ext_kib);
	above16 = low_end > 16 * MIB ? (low_end - 16 * MIB) >> 16 : 0;
	rtc_put16(r, 0x34, above16);                    /* above 16 MiB, 64 KiB */
	high64k = high >> 16;
	if (high64k > 0xffffff)
		high64k = 0xffffff;
	r->cmos[0x5b] = high64k & 0xff;                 /* above 4 GiB, 64 KiB */
	r->cmos[0x5c] = (high64k >> 8) & 0xff;
	r->cmos[0x5d] = (high64k >> 16) & 0xff;
}

static void rtc_power_on_regs(struct rtc *r)
{
	r->index = 0;
	r->nmi_masked = false;
	r->cmos[RTC_REG_A] = RTC_A_POWER_ON;
	r->cmos[RTC_REG_B] = RTC_B_POWER_ON;
	r->cmos[RTC_REG_C] = 0;
	r->cmos[RTC_REG_D] = RTC_D_VRT;
	r->flags_mono_ns = mono_ns();
	{
		struct timespec now = rtc_host_time();

		r->flags_sec = rtc_guest_sec(r, &now);
	}
}

static void rtc_reset(struct vdev *vdev)
{
	struct rtc *r = (struct rtc *)vdev;

	pthread_mutex_lock(&r->lock);
	rtc_power_on_regs(r);
	rtc_update_timers(r);
	rtc_update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

static void rtc_free(struct rtc *r)
{
	if (r->periodic_fd >= 0)
		close(r->periodic_fd);
	if (r->update_fd >= 0)
		close(r->update_fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void rtc_destroy(struct vdev *vdev)
{
	struct rtc *r = (struct rtc *)vdev;

	bus_del(r->ctx->pio, &r->bdev);
	/* Wait for running callbacks; they do not touch the loop themselves. */
	loop_del(r->ctx->loop, r->periodic_fd);
	loop_del(r->ctx->loop, r->update_fd);
	rtc_free(r);
}

int rtc_create(struct devctx *ctx, keel_error **err)
{
	struct rtc *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating the RTC");
	r->periodic_fd = -1;
	r->update_fd = -1;
	ret = pthread_mutex_init(&r->lock, NULL);
	if (ret) {
		free(r);
		return err_errno(err, KEEL_ERR_NOMEM, ret, "cannot create the RTC");
	}
	r->ctx = ctx;
	r->vdev.name = "rtc";
	r->vdev.reset = rtc_reset;
	r->vdev.destroy = rtc_destroy;
	r->bdev.ops = &rtc_ops;
	r->bdev.name = "rtc";
	rtc_power_on_regs(r);
	rtc_init_nvram(r, ctx->mem);

	r->periodic_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	r->update_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->periodic_fd < 0 || r->update_fd < 0) {
		err_errno(err, err_code_from_errno(errno), errno, "cannot create the RTC's timers");
		rtc_free(r);
		return -1;
	}
	if (loop_add(ctx->loop, r->periodic_fd, EPOLLIN, rtc_periodic_tick, r, err))
		goto fail;
	if (loop_add(ctx->loop, r->update_fd, EPOLLIN, rtc_update_tick, r, err)) {
		loop_del(ctx->loop, r->periodic_fd);
		goto fail;
	}
	if (bus_add(ctx->pio, &r->bdev, RTC_PORT, 2, err)) {
		loop_del(ctx->loop, r->periodic_fd);
		loop_del(ctx->loop, r->update_fd);
		goto fail;
	}
	devctx_add(ctx, &r->vdev);
	return 0;
fail:
	err_prefix(err, "rtc");
	rtc_free(r);
	return -1;
}
