// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm/mem.h"
#include "x86/layout.h"

#define MIB (1ULL << 20)

int mem_init(struct mem *mem, uint64_t size, bool hugepages, keel_error **err)
{
	unsigned int flags = MFD_CLOEXEC;
	uint64_t low;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (!size || size % MIB)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory size %llu bytes is not a positive multiple of 1 MiB",
			       (unsigned long long)size);
	if (hugepages)
		flags |= MFD_HUGETLB;
	mem->fd = memfd_create("keel-ram", flags);
	if (mem->fd < 0)
		return err_errno(err, err_code_from_errno(errno), errno,
				 "cannot create guest RAM (memfd%s)", hugepages ? ", hugetlb" : "");
	if (ftruncate(mem->fd, (off_t)size) < 0) {
		err_errno(err, KEEL_ERR_NOMEM, errno, "cannot size guest RAM to %llu MiB",
			  (unsigned long long)(size / MIB));
		goto fail;
	}
	/* NORESERVE: only pages the guest touches cost host memory. */
	mem->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 mem->fd, 0);
	if (mem->host == MAP_FAILED) {
		mem->host = NULL;
		err_errno(err, KEEL_ERR_NOMEM, errno, "cannot map %llu MiB of guest RAM",
			  (unsigned long long)(size / MIB));
		goto fail;
	}
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
fail:
	close(mem->fd);
	mem->fd = -1;
	return -1;
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
	/* Punching the memfd frees the pages and reads back as zeroes. */
	if (fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)mem->size) < 0)
		memset(mem->host, 0, mem->size);
}
