// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm/mem.h"
#include "x86/layout.h"

#define MIB (1ULL << 20)
#define HUGE_2M (2ULL << 20)

/*
 * Default: private anonymous memory with transparent huge pages asked for
 * (MADV_HUGEPAGE) above 2 MiB, so that the guest runs on 2 MiB host pages
 * where the host has them free (fewer nested page-table misses, fewer pages
 * per O_DIRECT request).  The mapping is 2 MiB-aligned for that.  --hugepages:
 * a hugetlbfs memfd (reserved pages, never split or swapped).  Neither is
 * inherited across fork(): an application that forks must not get a
 * copy-on-write view of guest RAM.
 */
static uint8_t *map_anon(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + HUGE_2M, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t head, tail;

	if (p == MAP_FAILED)
		return NULL;
	head = (HUGE_2M - ((uintptr_t)p & (HUGE_2M - 1))) & (HUGE_2M - 1);
	tail = HUGE_2M - head;
	if (head)
		munmap(p, head);
	munmap(p + head + size, tail);
	p += head;
	/*
	 * Not the first 2 MiB: it holds the boot data, the legacy hole and,
	 * for small guests, all they touch; a huge page there would cost 2 MiB
	 * of zeroing and RSS for a few KiB (and THP=always would do it).
	 */
	madvise(p, size < HUGE_2M ? size : HUGE_2M, MADV_NOHUGEPAGE);
	if (size > HUGE_2M)
		madvise(p + HUGE_2M, size - HUGE_2M, MADV_HUGEPAGE);
	return p;
}

static uint8_t *map_hugetlb(struct mem *mem, uint64_t size, keel_error **err)
{
	uint8_t *p;

	mem->fd = memfd_create("keel-ram", MFD_CLOEXEC | MFD_HUGETLB);
	if (mem->fd < 0) {
		err_errno(err, err_code_from_errno(errno), errno,
			  "cannot create guest RAM (memfd, hugetlb)");
		return NULL;
	}
	if (ftruncate(mem->fd, (off_t)size) < 0) {
		err_errno(err, KEEL_ERR_NOMEM, errno, "cannot size guest RAM to %llu MiB",
			  (unsigned long long)(size / MIB));
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mem->fd, 0);
	if (p == MAP_FAILED) {
		err_errno(err, KEEL_ERR_NOMEM, errno, "cannot map %llu MiB of guest RAM (hugetlb)",
			  (unsigned long long)(size / MIB));
		return NULL;
	}
	return p;
}

int mem_init(struct mem *mem, uint64_t size, bool hugepages, keel_error **err)
{
	uint64_t low;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (!size || size % MIB)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory size %llu bytes is not a positive multiple of 1 MiB",
			       (unsigned long long)size);
	/* NORESERVE: only pages the guest touches cost host memory. */
	if (hugepages) {
		mem->host = map_hugetlb(mem, size, err);
	} else {
		mem->host = map_anon(size);
		if (!mem->host)
			err_errno(err, KEEL_ERR_NOMEM, errno, "cannot map %llu MiB of guest RAM",
				  (unsigned long long)(size / MIB));
	}
	if (!mem->host) {
		if (mem->fd >= 0)
			close(mem->fd);
		mem->fd = -1;
		return -1;
	}
	madvise(mem->host, size, MADV_DONTFORK);
	madvise(mem->host, size, MADV_MERGEABLE);
	mem->size = size;
	mem->hugepages = hugepages;

	low = size < LAYOUT_MMIO_HOLE ? size : LAYOUT_MMIO_HOLE;
	mem->region[0] = (struct mem_region){ .gpa = 0, .size = low, .host = mem->host };
	mem->nr_regions = 1;
	if (size > low) {
		mem->region[1] = (struct mem_region){
			.gpa = LAYOUT_4G, .size = size - low, .host = mem->host + low };
		mem->nr_regions = 2;
	}
	return 0;
}

void mem_fini(struct mem *mem)
{
	if (mem->host)
		munmap(mem->host, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

void *mem_ptr(const struct mem *mem, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->region[i];

		/* Written so that no sum can overflow. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void mem_clear(struct mem *mem)
{
	/*
	 * Both free the pages, which then read back as zeroes: private
	 * anonymous memory after MADV_DONTNEED, the memfd after a punched hole.
	 */
	int rc = mem->fd < 0 ? madvise(mem->host, mem->size, MADV_DONTNEED) :
		 fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			   (off_t)mem->size);

	if (rc < 0)
		memset(mem->host, 0, mem->size);
}
