// SPDX-License-Identifier: MIT
/*
 * The i440FX/PIIX chipset functions (piix.h).  The host and ISA bridges are
 * identity and a few registers firmware writes (PAM, SMRAM, PIRQ routing);
 * nothing behind them changes, since keel's RAM is always RAM and its PCI
 * INTx lines go straight to IOAPIC pins.  The power management function
 * decodes PMBA (config 0x40, enabled by PMREGMISC bit 0 at 0x80, as QEMU's
 * PIIX4) and holds the ACPI PM1 registers and the PM timer.
 *
 * The PM registers are touched by vCPU threads (I/O exits), the event
 * thread (timer overflow) and the application (the power button), all
 * under p->lock.  The SCI is a level: high while an enabled status bit is
 * set and SCI_EN is on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/le.h"
#include "core/loop.h"
#include "core/util.h"
#include "dev/piix.h"
#include "kvm/kvm.h"
#include "pci/pci.h"

#define PMBA            0x40    /* PM base address: bits 15:6, bit 0 reads 1 */
#define PMREGMISC       0x80    /* bit 0: PM I/O space enabled */
#define PIRQ_ROUTE      0x60    /* ISA bridge: PIRQA-D routing (firmware writes) */
#define PAM0            0x59    /* host bridge: PAM0-6, then SMRAM at 0x72 */
#define SMRAM           0x72

/* Status bits that raise the SCI (with their enable bit). */
#define PM1_EVENTS      (PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_RTC)
#define PM1_STS_W1C     (PM1_EVENTS | PM1_WAK_STS)
#define PM1_CNT_RW      (PM1_SCI_EN | (7u << PM1_SLP_TYP_SHIFT))
#define TMR_BITS        24      /* FADT TMR_VAL_EXT clear */

struct piix {
	struct vdev vdev;
	struct devctx *ctx;
	struct piix_config cfg;
	struct pci_dev host_bridge, isa, pm;

	pthread_mutex_t lock;
	struct bus_dev io;              /* the PM I/O block */
	bool io_mapped;
	uint16_t io_base;
	uint16_t sts, en, cnt;          /* PM1_STS (TMR_STS apart), PM1_EN, PM1_CNT */
	int64_t tmr_origin_ns;          /* the PM timer counts from here */
	uint64_t tmr_seen;              /* bit-23 periods counted when TMR_STS was cleared */
	bool sci;                       /* the SCI line's level */
	int timer_fd;                   /* next TMR_STS edge, while TMR_EN; -1: none */
	bool timer_watched;
};

/* ---- PM timer ---- */

static uint64_t tmr_ticks(const struct piix *p)
{
	uint64_t ns = (uint64_t)(mono_ns() - p->tmr_origin_ns);

	/* 128-bit free: ns * 3579545 overflows 64 bits after ~80 minutes. */
	return (uint64_t)((unsigned __int128)ns * PIIX_PM_HZ / 1000000000u);
}

/* TMR_STS: the counter's top bit toggled since the guest last cleared it. */
static bool tmr_sts(const struct piix *p)
{
	return (tmr_ticks(p) >> (TMR_BITS - 1)) != p->tmr_seen;
}

/* With p->lock held: the SCI follows the enabled status bits. */
static void sci_update(struct piix *p)
{
	uint16_t sts = p->sts | (tmr_sts(p) ? PM1_TMR : 0);
	bool level = (p->cnt & PM1_SCI_EN) && (sts & p->en & PM1_EVENTS);

	if (level != p->sci) {
		p->sci = level;
		kvm_irq_line(p->ctx->kvm, p->cfg.sci_irq, level);
	}
}

/* With p->lock held: a timer for the next TMR_STS edge while TMR_EN is set. */
static void tmr_arm(struct piix *p)
{
	struct itimerspec its = { 0 };

	if (p->timer_fd < 0)
		return;
	if ((p->en & PM1_TMR) && !tmr_sts(p)) {
		uint64_t period = 1ULL << (TMR_BITS - 1);
		uint64_t left = (p->tmr_seen + 1) * period - tmr_ticks(p);
		uint64_t ns = (uint64_t)((unsigned __int128)left * 1000000000u / PIIX_PM_HZ) + 1;

		its.it_value.tv_sec = (time_t)(ns / 1000000000u);
		its.it_value.tv_nsec = (long)(ns % 1000000000u);
	}
	timerfd_settime(p->timer_fd, 0, &its, NULL);
}

static void tmr_fired(void *opaque, uint32_t events)
{
	struct piix *p = opaque;

	efd_drain(p->timer_fd);         /* a timerfd reads like an eventfd */
	pthread_mutex_lock(&p->lock);
	sci_update(p);
	tmr_arm(p);
	pthread_mutex_unlock(&p->lock);
}

/* ---- the PM I/O block ---- */

/* The bytes of [off, off + len) that fall on the register at `reg`, `width` bytes wide. */
static bool overlap(uint64_t off, unsigned int len, const uint8_t *data, unsigned int reg,
		    unsigned int width, uint32_t *val, uint32_t *mask)
{
	bool hit = false;

	*val = *mask = 0;
	for (unsigned int i = 0; i < len; i++) {
		uint64_t b = off + i;

		if (b >= reg && b < reg + width) {
			*val |= (uint32_t)data[i] << (8 * (b - reg));
			*mask |= 0xffu << (8 * (b - reg));
			hit = true;
		}
	}
	return hit;
}

static void pm_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct piix *p = container_of(bd, struct piix, io);
	uint8_t regs[PIIX_PM_SIZE] = { 0 };

	pthread_mutex_lock(&p->lock);
	put_le16(regs + PIIX_PM_EVT, (uint16_t)(p->sts | (tmr_sts(p) ? PM1_TMR : 0)));
	put_le16(regs + PIIX_PM_EVT + 2, p->en);
	put_le16(regs + PIIX_PM_CNT, p->cnt);
	put_le32(regs + PIIX_PM_TMR, (uint32_t)(tmr_ticks(p) & ((1u << TMR_BITS) - 1)));
	pthread_mutex_unlock(&p->lock);
	memset(data, 0, len);
	if (off < sizeof(regs))
		memcpy(data, regs + off, len < sizeof(regs) - off ? len : sizeof(regs) - off);
}

static void pm_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct piix *p = container_of(bd, struct piix, io);
	bool power_off = false;
	uint32_t v, m;

	pthread_mutex_lock(&p->lock);
	if (overlap(off, len, data, PIIX_PM_EVT, 2, &v, &m)) {
		uint16_t clear = (uint16_t)(v & m & PM1_STS_W1C);

		if ((clear & PM1_TMR) && tmr_sts(p))
			p->tmr_seen = tmr_ticks(p) >> (TMR_BITS - 1);
		p->sts &= (uint16_t)~clear;
	}
	if (overlap(off, len, data, PIIX_PM_EVT + 2, 2, &v, &m))
		p->en = (uint16_t)((p->en & ~m) | (v & m & PM1_EVENTS));
	if (overlap(off, len, data, PIIX_PM_CNT, 2, &v, &m)) {
		p->cnt = (uint16_t)((p->cnt & ~(m & PM1_CNT_RW)) | (v & m & PM1_CNT_RW));
		/* SLP_EN is write-only: it starts the sleep of type SLP_TYP. */
		if (v & m & PM1_SLP_EN)
			power_off = ((p->cnt >> PM1_SLP_TYP_SHIFT) & 7) == p->cfg.s5_slp_typ;
	}
	sci_update(p);
	tmr_arm(p);
	pthread_mutex_unlock(&p->lock);
	/* Other sleep states (S1-S4) are not in the DSDT: a request for one does nothing. */
	if (power_off)
		devctx_request_stop(p->ctx, KEEL_STOP_POWEROFF, NULL);
}

static const struct bus_dev_ops pm_ops = { .read = pm_read, .write = pm_write };

/* With p->lock held: the I/O block where PMBA and PMREGMISC say. */
static void io_update(struct piix *p)
{
	uint16_t base = get_le16(p->pm.cfg + PMBA) & 0xffc0;
	bool on = (p->pm.cfg[PMREGMISC] & 1) && base;
	keel_error *err = NULL;

	if (p->io_mapped && on && base == p->io_base)
		return;
	if (p->io_mapped)
		bus_del(p->ctx->pio, &p->io);
	p->io_mapped = false;
	if (!on)
		return;
	if (bus_add(p->ctx->pio, &p->io, base, PIIX_PM_SIZE, &err) < 0) {
		/* The guest may park PMBA on another claim; it just won't decode. */
		log_msg(&p->ctx->log, KEEL_LOG_WARNING, "piix4-pm: PM block at 0x%x not mapped: %s",
			base, keel_error_get_message(err));
		keel_error_free(err);
		return;
	}
	p->io_mapped = true;
	p->io_base = base;
}

static void pm_config_written(struct pci_dev *dev, uint32_t off, unsigned int len)
{
	struct piix *p = container_of(dev, struct piix, pm);

	if ((off < PMBA + 4 && off + len > PMBA) || (off <= PMREGMISC && off + len > PMREGMISC)) {
		pthread_mutex_lock(&p->lock);
		io_update(p);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Power-on state of the PM registers (PCI reset covers only the header). */
static void pm_power_on(struct piix *p)
{
	put_le32(p->pm.cfg + PMBA, (uint32_t)p->cfg.pm_base | 1);
	p->pm.cfg[PMREGMISC] = 1;
	p->sts = p->en = 0;
	/* ACPI-only: no SMI_CMD to switch modes, so SCI_EN is on from reset. */
	p->cnt = PM1_SCI_EN;
	p->tmr_origin_ns = mono_ns();
	p->tmr_seen = 0;
	io_update(p);
	sci_update(p);
	tmr_arm(p);
}

static void pm_reset(struct pci_dev *dev)
{
	struct piix *p = container_of(dev, struct piix, pm);

	pthread_mutex_lock(&p->lock);
	pm_power_on(p);
	pthread_mutex_unlock(&p->lock);
}

static const struct pci_dev_ops pm_pci_ops = {
	.config_written = pm_config_written,
	.reset = pm_reset,
};

int piix_power_button(struct piix *p, keel_error **err)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (!(p->cnt & PM1_SCI_EN) || !(p->en & PM1_PWRBTN) || !p->io_mapped)
		ret = err_set(err, KEEL_ERR_STATE,
			      "the guest does not listen to the ACPI power button (no ACPI, acpi=off, or no button driver)");
	else
		p->sts |= PM1_PWRBTN;
	sci_update(p);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* ---- the chip ---- */

static void piix_destroy(struct vdev *vd)
{
	struct piix *p = container_of(vd, struct piix, vdev);

	if (p->timer_watched)
		loop_del(p->ctx->loop, p->timer_fd);
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	pci_unregister(&p->pm);
	pci_unregister(&p->isa);
	pci_unregister(&p->host_bridge);
	if (p->io_mapped)
		bus_del(p->ctx->pio, &p->io);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int register_functions(struct piix *p, struct pci_host *host, keel_error **err)
{
	struct pci_dev *hb = &p->host_bridge, *isa = &p->isa, *pm = &p->pm;

	/* 00:00.0 i440FX PMC: OVMF's PlatformPei checks this ID (82441FX). */
	pci_dev_init(hb, p->ctx, "i440fx", NULL, 0x8086, 0x1237, 0x060000, 0x02, 0x1af4, 0x1100);
	memset(hb->wmask + PAM0, 0xff, 7);
	hb->wmask[SMRAM] = 0xff;
	hb->cfg[SMRAM] = 0x02;
	/* 00:01.0 PIIX3 ISA bridge, function 0 of a multi-function device. */
	pci_dev_init(isa, p->ctx, "piix3-isa", NULL, 0x8086, 0x7000, 0x060100, 0x00, 0x1af4, 0x1100);
	isa->cfg[PCI_HEADER_TYPE] = 0x80;
	memset(isa->cfg + PIRQ_ROUTE, 0x80, 4);         /* PIRQA-D not routed */
	memset(isa->wmask + PIRQ_ROUTE, 0x8f, 4);
	/* 00:01.3 PIIX4 power management. */
	pci_dev_init(pm, p->ctx, "piix4-pm", &pm_pci_ops, 0x8086, 0x7113, 0x068000, 0x03,
		     0x1af4, 0x1100);
	put_le16(pm->wmask + PMBA, 0xffc0);
	pm->wmask[PMREGMISC] = 0x01;
	if (pci_register_fn(host, hb, 0x00, err) < 0)
		return -1;
	if (pci_register_fn(host, isa, 0x08, err) < 0) {
		pci_unregister(hb);
		return -1;
	}
	if (pci_register_fn(host, pm, 0x0b, err) < 0) {
		pci_unregister(isa);
		pci_unregister(hb);
		return -1;
	}
	return 0;
}

struct piix *piix_create(struct devctx *ctx, struct pci_host *host,
			 const struct piix_config *cfg, keel_error **err)
{
	struct piix *p;

	if (cfg->pm_base & 0x3f || !cfg->pm_base || cfg->sci_irq > 15 || cfg->s5_slp_typ > 7)
		return err_set(err, KEEL_ERR_INVALID,
			       "piix4-pm: PM base 0x%x (64-byte aligned, not 0), SCI IRQ %u (ISA), S5 type %u (0-7)",
			       cfg->pm_base, cfg->sci_irq, cfg->s5_slp_typ), NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating the PC chipset"), NULL;
	p->ctx = ctx;
	p->cfg = *cfg;
	p->timer_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	p->io = (struct bus_dev){ .ops = &pm_ops, .name = "piix4-pm" };
	p->vdev = (struct vdev){ .name = "piix", .destroy = piix_destroy };
	if (ctx->loop) {
		p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (p->timer_fd < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "piix4-pm: cannot create a timer");
			goto fail;
		}
		if (loop_add(ctx->loop, p->timer_fd, EPOLLIN, tmr_fired, p, err) < 0)
			goto fail;
		p->timer_watched = true;
	}
	if (register_functions(p, host, err) < 0)
		goto fail;
	pthread_mutex_lock(&p->lock);
	pm_power_on(p);
	pthread_mutex_unlock(&p->lock);
	/* The PCI core keeps the header (first 64 bytes) for resets; PMBA lies beyond. */
	memcpy(p->pm.cfg_power_on, p->pm.cfg, sizeof(p->pm.cfg_power_on));
	devctx_add(ctx, &p->vdev);
	return p;
fail:
	piix_destroy(&p->vdev);
	return NULL;
}
