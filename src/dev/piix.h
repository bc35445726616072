/* SPDX-License-Identifier: MIT */
/*
 * The PC chipset that stock firmware and operating systems know (QEMU's
 * `-M pc`): the i440FX host bridge at 00:00.0, the PIIX3 ISA bridge at
 * 00:01.0 and the PIIX4-compatible power management function at 00:01.3,
 * whose I/O block (PMBA) holds the ACPI fixed hardware: PM1a event and
 * control registers and the 3.579545 MHz PM timer, with the SCI on an ISA
 * line (level, active high).
 */
#ifndef KEEL_DEV_PIIX_H
#define KEEL_DEV_PIIX_H

#include <stdint.h>

#include "core/devctx.h"

struct pci_host;
struct piix;

/* Where the PM registers sit relative to PMBA (ACPI FADT: PM1a_EVT, PM1a_CNT, PM_TMR). */
#define PIIX_PM_EVT     0x00    /* PM1_STS (2 bytes), PM1_EN (2 bytes) */
#define PIIX_PM_CNT     0x04    /* PM1_CNT (2 bytes) */
#define PIIX_PM_TMR     0x08    /* PM_TMR (4 bytes, 24 bits count) */
#define PIIX_PM_SIZE    64      /* the I/O block PMBA decodes */
#define PIIX_PM_HZ      3579545

/* PM1 status and enable bits (ACPI 6.5, 4.8.3.1). */
#define PM1_TMR         (1u << 0)
#define PM1_GBL         (1u << 5)
#define PM1_PWRBTN      (1u << 8)
#define PM1_RTC         (1u << 10)
#define PM1_WAK_STS     (1u << 15)
/* PM1 control bits. */
#define PM1_SCI_EN      (1u << 0)
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN      (1u << 13)

struct piix_config {
	uint16_t pm_base;       /* PMBA at power-on (decoding on), as firmware leaves it */
	uint8_t sci_irq;        /* ISA line of the SCI (PIIX4: 9) */
	uint8_t s5_slp_typ;     /* SLP_TYP that means soft-off (the DSDT's _S5) */
};

/*
 * The three functions on `host`; guest power-off (SLP_EN with SLP_TYP = S5)
 * becomes a KEEL_STOP_POWEROFF stop request.  One of the VM's devices.
 */
struct piix *piix_create(struct devctx *ctx, struct pci_host *host,
			 const struct piix_config *cfg, keel_error **err);
/*
 * Presses the power button: PWRBTN_STS and an SCI.  -1 (KEEL_ERR_STATE)
 * when the guest does not listen: its ACPI has not enabled the SCI and the
 * power button event (no ACPI, acpi=off, no button driver).
 */
int piix_power_button(struct piix *p, keel_error **err);

#endif
