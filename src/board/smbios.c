// SPDX-License-Identifier: MIT
/* SMBIOS 3.0 tables (smbios.h), per DMTF DSP0134. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "board/smbios.h"
#include "core/le.h"

struct buf {
	uint8_t *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n) {
			b->failed = true;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

/* One structure: its formatted area, then its strings (numbered from 1), then two NULs. */
static void structure(struct buf *b, const uint8_t *formatted, size_t len, const char *const *strings,
		      int nr_strings)
{
	put(b, formatted, len);
	for (int i = 0; i < nr_strings; i++)
		put(b, strings[i], strlen(strings[i]) + 1);
	put(b, "\0\0", nr_strings ? 1 : 2);
}

int smbios_build(const uint8_t uuid[16], const char *version, struct smbios *out,
		 keel_error **err)
{
	struct buf b = { 0 };
	uint8_t t0[24] = { 0 }, t1[27] = { 0 }, t32[11] = { 0 }, t127[4] = { 127, 4 };
	const char *s0[] = { "keel", version, "12/01/2026" };
	const char *s1[] = { "keel", "keel virtual machine", version, "keel" };
	uint8_t sum = 0;

	memset(out, 0, sizeof(*out));
	/* Type 0: vendor, version, release date; no BIOS ROM; UEFI and a VM. */
	t0[0] = 0;
	t0[1] = sizeof(t0);
	put_le16(t0 + 2, 0);
	t0[4] = 1;                      /* vendor */
	t0[5] = 2;                      /* version */
	put_le16(t0 + 6, 0xe800);       /* starting segment, as QEMU */
	t0[8] = 3;                      /* release date */
	put_le64(t0 + 10, 1ULL << 3);   /* characteristics not supported */
	t0[19] = (1 << 3) | (1 << 4);   /* extension byte 2: UEFI, virtual machine */
	t0[20] = t0[21] = 0;            /* system BIOS release */
	t0[22] = t0[23] = 0xff;         /* no embedded controller */
	structure(&b, t0, sizeof(t0), s0, 3);   /* the 2.4 layout */
	/* Type 1: manufacturer, product, version, UUID, wake-up by power switch, family. */
	t1[0] = 1;
	t1[1] = sizeof(t1);
	put_le16(t1 + 2, 0x100);
	t1[4] = 1;
	t1[5] = 2;
	t1[6] = 3;
	t1[7] = 0;                      /* no serial number */
	/* SMBIOS 2.6+: time_low, time_mid and time_hi_and_version little-endian. */
	t1[8] = uuid[3], t1[9] = uuid[2], t1[10] = uuid[1], t1[11] = uuid[0];
	t1[12] = uuid[5], t1[13] = uuid[4];
	t1[14] = uuid[7], t1[15] = uuid[6];
	memcpy(t1 + 16, uuid + 8, 8);
	t1[24] = 6;                     /* wake-up: power switch */
	t1[25] = 0;                     /* no SKU */
	t1[26] = 4;                     /* family */
	structure(&b, t1, sizeof(t1), s1, 4);
	/* Type 32: boot status "no errors". */
	t32[0] = 32;
	t32[1] = sizeof(t32);
	put_le16(t32 + 2, 0x2000);
	structure(&b, t32, sizeof(t32), NULL, 0);
	put_le16(t127 + 2, 0x7f00);
	structure(&b, t127, sizeof(t127), NULL, 0);
	if (b.failed) {
		free(b.p);
		return err_set(err, KEEL_ERR_NOMEM, "out of memory building the SMBIOS tables");
	}
	out->tables = b.p;
	out->len = b.len;
	/* The 3.0 entry point: where the tables are is the firmware's business. */
	memcpy(out->anchor, "_SM3_", 5);
	out->anchor[6] = SMBIOS_ANCHOR_SIZE;
	out->anchor[7] = 3;             /* version 3.0 */
	out->anchor[8] = 0;
	out->anchor[9] = 0;             /* docrev */
	out->anchor[10] = 1;            /* entry point revision */
	put_le32(out->anchor + 12, (uint32_t)b.len);
	for (int i = 0; i < SMBIOS_ANCHOR_SIZE; i++)
		sum += out->anchor[i];
	out->anchor[5] = (uint8_t)-sum;
	return 0;
}

void smbios_free(struct smbios *s)
{
	free(s->tables);
	s->tables = NULL;
	s->len = 0;
}
