/*
 * DMA memory and extra mappings for device tests (ring 3).
 *
 * dma_alloc(): bump allocator over guest RAM, by default from 16 MiB
 * (cmdline dma_base=ADDR, dma_size=BYTES), checked against the memory
 * map. Memory is identity-mapped, so pointers are physical addresses.
 *
 * map_phys_range(): the static page tables (head.S) map 0-4 GiB only.
 * Ring 3 can write them (they are user pages), so ranges above 4 GiB
 * (64-bit BARs) are added here with uncached 2 MiB pages. Entries only
 * go from not-present to present, which needs no TLB flush.
 */
#include <keel/kit.h>

#define DMA_DEFAULT_BASE	0x1000000ULL	/* 16 MiB */
#define DMA_DEFAULT_SIZE	0x3000000ULL	/* 48 MiB */
#define PT_POOL_PAGES		16

static u64 dma_next, dma_end;

static bool dma_setup(void)
{
	u64 base = cmdline_u64_or("dma_base", DMA_DEFAULT_BASE);
	u64 size = cmdline_u64_or("dma_size", DMA_DEFAULT_SIZE);
	int i;

	for (i = 0; i < memmap_count(); i++) {
		const struct mem_region *r = memmap_get(i);

		if (r->type != 1 || base < r->addr || base >= r->addr + r->size)
			continue;
		if (base + size > r->addr + r->size)
			size = r->addr + r->size - base;
		dma_next = base;
		dma_end = base + size;
		return true;
	}
	if (!memmap_count()) {		/* no map: trust the defaults */
		dma_next = base;
		dma_end = base + size;
		return true;
	}
	return false;
}

void *dma_alloc(size_t size, size_t align)
{
	u64 p;

	if (!dma_end && !dma_setup()) {
		fail("dma_alloc: no RAM at dma_base=%#llx",
		     cmdline_u64_or("dma_base", DMA_DEFAULT_BASE));
		test_end();
	}
	if (align < 16)
		align = 16;
	p = (dma_next + align - 1) & ~(u64)(align - 1);
	if (p + size > dma_end) {
		fail("dma_alloc: out of DMA memory (%zu bytes wanted, %#llx-%#llx)",
		     size, dma_next, dma_end);
		test_end();
	}
	dma_next = p + size;
	memset(phys_ptr(p), 0, size);
	return phys_ptr(p);
}

extern u64 pml4[512];
static u64 pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static int pt_used;

static u64 *pt_table(u64 *entry)
{
	u64 *t;

	if (*entry & 1)
		return phys_ptr(*entry & 0x000ffffffffff000ULL);
	if (pt_used == PT_POOL_PAGES)
		return NULL;
	t = pt_pool[pt_used++];
	memset(t, 0, 4096);
	asm volatile("" ::: "memory");
	*entry = (u64)(uintptr_t)t | 0x7;	/* P | RW | U */
	return t;
}

bool map_phys_range(u64 pa, u64 size)
{
	u64 a, end = pa + size;

	if (!size || end < pa || end > (1ULL << 46))
		return size == 0;
	for (a = pa & ~0x1fffffULL; a < end; a += 0x200000) {
		u64 *pdpt, *pd;

		if (a < 0x100000000ULL)
			continue;	/* head.S maps 0-4 GiB */
		pdpt = pt_table(&pml4[a >> 39 & 511]);
		if (!pdpt)
			return false;
		pd = pt_table(&pdpt[a >> 30 & 511]);
		if (!pd)
			return false;
		if (!(pd[a >> 21 & 511] & 1))	/* PS|PCD|PWT|U|RW|P: UC */
			pd[a >> 21 & 511] = a | 0x9f;
	}
	asm volatile("" ::: "memory");
	return true;
}
