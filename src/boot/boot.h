/* SPDX-License-Identifier: MIT */
/*
 * Boot loaders: recognise a kernel image, load it with its initrd and
 * command line into guest RAM, and say how the boot vCPU enters it.
 * Parsers work on in-memory buffers so they can be unit-tested and fuzzed.
 */
#ifndef KEEL_BOOT_BOOT_H
#define KEEL_BOOT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "kvm/mem.h"
#include "x86/e820.h"

enum boot_format {
	BOOT_FMT_BZIMAGE,
	BOOT_FMT_PVH,           /* ELF with XEN_ELFNOTE_PHYS32_ENTRY */
};

enum boot_mode {
	BOOT_MODE_LONG64,       /* 64-bit, identity paging; RSI = boot_params */
	BOOT_MODE_PVH32,        /* 32-bit protected, paging off; EBX = start_info */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rsi;
	uint64_t rbx;
};

/* What to load; buffers are whole files. */
struct boot_spec {
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd;  /* NULL: none */
	size_t initrd_size;
	const char *cmdline;    /* never NULL */
	const struct e820_entry *e820;
	int nr_e820;
	uint64_t rsdp;          /* the ACPI RSDP's guest address; 0: none */
};

/* Identifies the image format; checks only what can be checked without RAM. */
int boot_probe(const uint8_t *buf, size_t len, enum boot_format *fmt, keel_error **err);
/* Reads `path` and probes it (config validation), naming the file in errors. */
int boot_probe_file(const char *path, enum boot_format *fmt, keel_error **err);
/*
 * A boot loader's files, opened once when the VM is created and read again
 * at every (re)boot through the same descriptors: a guest reboot runs on
 * the sandboxed event thread, which may not open files.  A file replaced
 * on disk (a new inode) is not seen by the VM; one rewritten in place is.
 */
struct boot_files {
	int kernel_fd;
	int initrd_fd;          /* -1: none */
	const char *kernel;     /* paths for messages (the caller keeps them) */
	const char *initrd;
};

int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd,
		    keel_error **err);
void boot_files_close(struct boot_files *f);
/* Reads the files and loads them, telling the kernel where the ACPI RSDP is (0: none). */
int boot_files_load(struct mem *mem, const struct boot_files *f, const char *cmdline,
		    uint64_t rsdp, struct boot_entry *entry, keel_error **err);
/* Opens, loads and closes the files (tests). */
int boot_load_files(struct mem *mem, const char *kernel, const char *initrd,
		    const char *cmdline, uint64_t rsdp, struct boot_entry *entry,
		    keel_error **err);
/* Loads into guest RAM; nothing is written to RAM if the spec is invalid. */
int boot_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
	      keel_error **err);

/* Format back ends (boot.c dispatches). */
int bzimage_probe(const uint8_t *buf, size_t len, keel_error **err);
int bzimage_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
		 keel_error **err);
int pvh_probe(const uint8_t *buf, size_t len, keel_error **err);
int pvh_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
	     keel_error **err);

/*
 * Shared placement helpers: copy the command line to LAYOUT_CMDLINE; place
 * the initrd as high as possible, page aligned, ending at or below
 * min(max_addr, end of low RAM) (`max_addr` is the last usable byte, like
 * initrd_addr_max) and starting at or above `kernel_end`.  With data == NULL
 * it only computes and checks the address, so loaders validate before their
 * first write.
 */
int boot_place_cmdline(struct mem *mem, const char *cmdline, size_t max_len, keel_error **err);
int boot_place_initrd(struct mem *mem, const uint8_t *data, size_t size, uint64_t kernel_end,
		      uint64_t max_addr, uint64_t *gpa, keel_error **err);

#endif
