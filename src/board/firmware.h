/* SPDX-License-Identifier: MIT */
/*
 * The firmware side of the board (UEFI boots): the flash below 4 GiB (the
 * code image as a read-only memory slot, the variable store as CFI flash
 * over the store's file or a RAM copy of the template) and fw_cfg with
 * what OVMF reads: CPU count, RAM size, etc/e820, the ACPI tables through
 * the table loader, SMBIOS.  Used by the machine builder only.
 */
#ifndef KEEL_BOARD_FIRMWARE_H
#define KEEL_BOARD_FIRMWARE_H

#include <stdint.h>

#include "acpi/acpi.h"
#include "config/objects.h"
#include "core/devctx.h"

struct firmware;

/* KVM memory slots above guest RAM's (0 and 1). */
#define FIRMWARE_SLOT_CODE 2
#define FIRMWARE_SLOT_VARS 3

struct firmware_config {
	const struct keel_boot_loader *bl;      /* BOOT_EFI, validated */
	unsigned int nr_cpus;
	uint64_t mem_size;
	uint8_t uuid[16];                       /* SMBIOS system UUID */
	const char *version;                    /* keel's, for SMBIOS */
	/*
	 * Builds the ACPI tables when the firmware first asks for them after
	 * a reset, so they describe the machine as the firmware set it up.
	 */
	int (*build_acpi)(void *opaque, struct acpi_tables *t, keel_error **err);
	void *opaque;
};

/* Maps the flash and creates the flash and fw_cfg devices (the VM's from then on). */
struct firmware *firmware_new(struct devctx *ctx, const struct firmware_config *cfg,
			      keel_error **err);
/* After the devices are destroyed: unmaps the flash files. */
void firmware_free(struct firmware *fw);
/* Guest reset: the ACPI tables are built again at the firmware's next request. */
void firmware_reset(struct firmware *fw);

#endif
