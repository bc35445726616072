/* Port I/O, MMIO and CPU helpers. Usable in ring 3 (IOPL=3, U/S pages). */
#ifndef KEEL_X86_H
#define KEEL_X86_H

#include <keel/types.h>

static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }

static inline u8 inb(u16 port)
{
	u8 v;
	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u16 inw(u16 port)
{
	u16 v;
	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u32 inl(u16 port)
{
	u32 v;
	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Identity mapping: physical address -> pointer, hidden from GCC's
 * array-bounds analysis which dislikes small constant addresses. */
static inline void *phys_ptr(u64 pa)
{
	void *p;

	asm("" : "=r"(p) : "0"(pa));
	return p;
}

static inline u32 mmio_read32(u64 addr)
{
	return *(volatile u32 *)(uintptr_t)addr;
}

static inline void mmio_write32(u64 addr, u32 v)
{
	*(volatile u32 *)(uintptr_t)addr = v;
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
		     : "a"(leaf), "c"(sub));
}

static inline void cpu_relax(void) { asm volatile("pause" ::: "memory"); }

#endif
