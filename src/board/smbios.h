/* SPDX-License-Identifier: MIT */
/*
 * SMBIOS tables for firmware boots, as QEMU hands them to OVMF through
 * fw_cfg: `etc/smbios/smbios-anchor` (an SMBIOS 3.0 entry point, from which
 * OVMF takes the version) and `etc/smbios/smbios-tables` (the structures,
 * which OVMF installs).  Types 0 (firmware), 1 (system, with the machine's
 * UUID), 32 (boot status) and 127 (end).
 */
#ifndef KEEL_BOARD_SMBIOS_H
#define KEEL_BOARD_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SMBIOS_ANCHOR_SIZE 24

struct smbios {
	uint8_t anchor[SMBIOS_ANCHOR_SIZE];
	uint8_t *tables;
	size_t len;
};

/* `uuid` in RFC 4122 (big-endian) order; SMBIOS stores its first three fields little-endian. */
int smbios_build(const uint8_t uuid[16], const char *version, struct smbios *out,
		 keel_error **err);
void smbios_free(struct smbios *s);

#endif
