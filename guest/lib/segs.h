/* GDT selectors shared by assembly and C. */
#ifndef KEEL_SEGS_H
#define KEEL_SEGS_H

#define KCODE		0x08	/* 64-bit ring 0 code */
#define KDATA		0x10
#define UDATA		0x18	/* ring 3 data, DPL 3 */
#define UCODE		0x20	/* 64-bit ring 3 code, DPL 3 */
#define TSS_SEL		0x28	/* 16-byte system descriptor */
#define KCODE32		0x38	/* 32-bit ring 0 code, used by AP start-up */
#define GDT_ENTRIES	8

#define BOOT_PVH	1
#define BOOT_BZ32	2
#define BOOT_BZ64	3

#define AP_TRAMPOLINE	0x8000	/* SIPI vector 0x08 */
#define MAX_CPUS	64

#endif
