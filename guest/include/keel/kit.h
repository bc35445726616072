/* Ring-3 runtime for keel test guests. */
#ifndef KEEL_KIT_H
#define KEEL_KIT_H

#include <keel/types.h>
#include <keel/x86.h>
#include <keel/boot.h>

/* Each guest defines this; the kit runs it in ring 3 and then ends the test. */
void test_main(void);

/* uart.c: polled 16550 on COM1 */
#define COM1 0x3f8
void serial_init(void);
void putc(int c);
void puts(const char *s);
int getc_timeout(u64 timeout_us);	/* -1 on timeout */
int getc(void);				/* waits up to 60 s */

/* printf.c */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);

/* string.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strstr(const char *h, const char *n);
u64 strtou64(const char *s, const char **end);

/* bootinfo.c: command line and memory map, copied at start-up */
struct mem_region {
	u64 addr;
	u64 size;
	u32 type;
};
const char *cmdline(void);
bool cmdline_str(const char *key, char *buf, size_t n);
bool cmdline_u64(const char *key, u64 *val);
u64 cmdline_u64_or(const char *key, u64 def);
int memmap_count(void);
const struct mem_region *memmap_get(int i);
u64 memmap_ram_total(void);
const char *boot_kind_name(void);

/* time.c: TSC calibrated against the PIT (fallbacks documented there) */
u64 tsc_hz(void);
void udelay(u64 us);
u64 tsc_deadline(u64 us);
bool tsc_expired(u64 deadline);

/* test.c: reporting protocol */
void check(bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __attribute__((noreturn)) test_end(void);
void __attribute__((noreturn)) machine_reset(void);
extern unsigned int test_passes, test_fails;

/* mem.c: DMA memory (bump allocator over RAM from cmdline dma_base=,
 * default 16 MiB; zeroed, identity-mapped so pointer == physical address)
 * and page-table entries for MMIO above 4 GiB. */
void *dma_alloc(size_t size, size_t align);
bool map_phys_range(u64 pa, u64 size);

/* mptable.c */
int mptable_cpus(u32 *apic_ids, int max);	/* -1 if no table found */

#endif
