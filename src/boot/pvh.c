// SPDX-License-Identifier: MIT
/*
 * ELF kernels with a PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY), such as an
 * uncompressed vmlinux: segments are loaded at their physical addresses and
 * the kernel is entered in 32-bit protected mode, paging off, with EBX
 * pointing at a struct hvm_start_info (Xen public header
 * arch-x86/hvm/start_info.h, version 1).
 *
 * Every offset and size read from the file is checked against the file's
 * length with arithmetic that cannot overflow.
 */
#include <stdbool.h>
#include <string.h>

#include "boot/boot.h"
#include "core/le.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)

#define EI_NIDENT      16
#define EI_CLASS       4
#define EI_DATA        5
#define ELFCLASS32     1
#define ELFCLASS64     2
#define ELFDATA2LSB    1
#define EM_386         3
#define EM_X86_64      62
#define PN_XNUM        0xffff
#define PT_LOAD        1
#define PT_NOTE        4

#define EHDR32_SIZE    52
#define EHDR64_SIZE    64
#define PHDR32_SIZE    32
#define PHDR64_SIZE    56
#define NHDR_SIZE      12

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* hvm_start_info and what follows it in the LAYOUT_PVH_INFO page. */
#define XEN_HVM_START_MAGIC 0x336ec578
#define SI_MAGIC           0
#define SI_VERSION         4
#define SI_FLAGS           8
#define SI_NR_MODULES      12
#define SI_MODLIST_PADDR   16
#define SI_CMDLINE_PADDR   24
#define SI_RSDP_PADDR      32
#define SI_MEMMAP_PADDR    40
#define SI_MEMMAP_ENTRIES  48
#define SI_SIZE            56
#define MODLIST_OFF        0x40    /* one hvm_modlist_entry (32 bytes) */
#define MOD_SIZE           32
#define MEMMAP_OFF         0x60    /* hvm_memmap_table_entry array */
#define MEMMAP_ENTRY_SIZE  24
#define MEMMAP_MAX         ((int)((LAYOUT_PVH_INFO_SIZE - MEMMAP_OFF) / MEMMAP_ENTRY_SIZE))

struct elf_info {
	bool is64;
	uint64_t phoff;
	unsigned int phentsize;
	unsigned int phnum;
	uint32_t entry;         /* from the PVH note */
};

struct elf_phdr {
	uint32_t type;
	uint64_t offset;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint64_t align;
};

/* [off, off+size) lies within a buffer of `len` bytes. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

static void elf_phdr(const uint8_t *buf, const struct elf_info *info, unsigned int i,
		     struct elf_phdr *ph)
{
	const uint8_t *p = buf + info->phoff + (uint64_t)i * info->phentsize;

	if (info->is64) {
		ph->type = get_le32(p);
		ph->offset = get_le64(p + 8);
		ph->paddr = get_le64(p + 24);
		ph->filesz = get_le64(p + 32);
		ph->memsz = get_le64(p + 40);
		ph->align = get_le64(p + 48);
	} else {
		ph->type = get_le32(p);
		ph->offset = get_le32(p + 4);
		ph->paddr = get_le32(p + 12);
		ph->filesz = get_le32(p + 16);
		ph->memsz = get_le32(p + 20);
		ph->align = get_le32(p + 28);
	}
}

static int elf_header(const uint8_t *buf, size_t len, struct elf_info *info, keel_error **err)
{
	unsigned int machine, min_phent;
	size_t ehsize;

	if (!buf || len < EI_NIDENT)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated ELF header: %zu bytes, the identification needs %d",
			       buf ? len : 0, EI_NIDENT);
	if (memcmp(buf, "\x7f" "ELF", 4) != 0)
		return err_set(err, KEEL_ERR_FORMAT, "not an ELF file: no \\x7fELF magic");
	if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF class %u is neither ELFCLASS32 (1) nor ELFCLASS64 (2)",
			       buf[EI_CLASS]);
	if (buf[EI_DATA] != ELFDATA2LSB)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF data encoding %u is not little-endian (ELFDATA2LSB, 1): not an "
			       "x86 kernel", buf[EI_DATA]);
	info->is64 = buf[EI_CLASS] == ELFCLASS64;
	ehsize = info->is64 ? EHDR64_SIZE : EHDR32_SIZE;
	if (len < ehsize)
		return err_set(err, KEEL_ERR_FORMAT,
			       "truncated ELF header: %zu bytes, an %s header needs %zu", len,
			       info->is64 ? "ELF64" : "ELF32", ehsize);
	machine = get_le16(buf + 18);
	if (machine != EM_X86_64 && machine != EM_386)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF machine %u is not x86 (EM_X86_64 62 or EM_386 3)", machine);
	if (info->is64) {
		info->phoff = get_le64(buf + 32);
		info->phentsize = get_le16(buf + 54);
		info->phnum = get_le16(buf + 56);
	} else {
		info->phoff = get_le32(buf + 28);
		info->phentsize = get_le16(buf + 42);
		info->phnum = get_le16(buf + 44);
	}
	if (info->phnum == 0)
		return err_set(err, KEEL_ERR_FORMAT, "ELF file has no program headers");
	if (info->phnum == PN_XNUM)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF file uses extended program header numbering (e_phnum 0xffff), "
			       "which keel does not support");
	min_phent = info->is64 ? PHDR64_SIZE : PHDR32_SIZE;
	if (info->phentsize < min_phent)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF program header size %u is smaller than %s's %u bytes",
			       info->phentsize, info->is64 ? "ELF64" : "ELF32", min_phent);
	if (!in_file(info->phoff, (uint64_t)info->phentsize * info->phnum, len))
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF program headers (offset 0x%llx, %u x %u bytes) lie outside the "
			       "file (%zu bytes)", (unsigned long long)info->phoff, info->phnum,
			       info->phentsize, len);
	return 0;
}

/* Looks for the Xen PHYS32_ENTRY note in one PT_NOTE segment. */
static int scan_notes(const uint8_t *buf, const struct elf_phdr *ph, unsigned int idx,
		      bool *found, uint32_t *entry, keel_error **err)
{
	const uint8_t *p = buf + ph->offset;
	uint64_t size = ph->filesz, pos = 0;
	uint64_t align = ph->align == 8 ? 8 : 4;

	while (size - pos >= NHDR_SIZE) {
		uint64_t note_off = ph->offset + pos;
		uint32_t namesz = get_le32(p + pos);
		uint32_t descsz = get_le32(p + pos + 4);
		uint32_t type = get_le32(p + pos + 8);
		uint64_t name_al = ((uint64_t)namesz + align - 1) & ~(align - 1);
		uint64_t desc_al = ((uint64_t)descsz + align - 1) & ~(align - 1);
		const uint8_t *name, *desc;

		pos += NHDR_SIZE;
		if (name_al > size - pos)
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF note at file offset 0x%llx: name size %u runs past its "
				       "PT_NOTE segment %u (%llu bytes left)",
				       (unsigned long long)note_off, namesz, idx,
				       (unsigned long long)(size - pos));
		name = p + pos;
		pos += name_al;
		if (desc_al > size - pos)
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF note at file offset 0x%llx: descriptor size %u runs past "
				       "its PT_NOTE segment %u (%llu bytes left)",
				       (unsigned long long)note_off, descsz, idx,
				       (unsigned long long)(size - pos));
		desc = p + pos;
		pos += desc_al;

		if (*found || type != XEN_ELFNOTE_PHYS32_ENTRY)
			continue;
		if (!((namesz == 4 && memcmp(name, "Xen", 4) == 0) ||
		      (namesz == 3 && memcmp(name, "Xen", 3) == 0)))
			continue;
		if (descsz != 4 && descsz != 8)
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF note at file offset 0x%llx: XEN_ELFNOTE_PHYS32_ENTRY has a "
				       "%u-byte descriptor, expected 4 or 8",
				       (unsigned long long)note_off, descsz);
		*entry = get_le32(desc);
		*found = true;
	}
	return 0;
}

static int pvh_parse(const uint8_t *buf, size_t len, struct elf_info *info, keel_error **err)
{
	bool found = false;
	unsigned int i;

	if (elf_header(buf, len, info, err))
		return -1;
	for (i = 0; i < info->phnum; i++) {
		struct elf_phdr ph;

		elf_phdr(buf, info, i, &ph);
		if (ph.type != PT_NOTE)
			continue;
		if (!in_file(ph.offset, ph.filesz, len))
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF PT_NOTE segment %u (offset 0x%llx, %llu bytes) lies "
				       "outside the file (%zu bytes)", i,
				       (unsigned long long)ph.offset, (unsigned long long)ph.filesz,
				       len);
		if (scan_notes(buf, &ph, i, &found, &info->entry, err))
			return -1;
	}
	if (!found)
		return err_set(err, KEEL_ERR_FORMAT,
			       "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): not a "
			       "PVH-capable vmlinux");
	return 0;
}

int pvh_probe(const uint8_t *buf, size_t len, keel_error **err)
{
	struct elf_info info;

	return pvh_parse(buf, len, &info, err);
}

int pvh_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
	     keel_error **err)
{
	const uint8_t *buf = spec->kernel;
	size_t len = spec->kernel_size, cmdline_len;
	struct elf_info info;
	uint64_t kernel_end = 0, initrd_gpa = 0;
	unsigned int i, nr_load = 0;
	bool entry_ok = false;
	uint8_t *si;
	int n;

	/* Validate everything first: nothing is written before this ends. */
	if (pvh_parse(buf, len, &info, err))
		return -1;
	for (i = 0; i < info.phnum; i++) {
		struct elf_phdr ph;

		elf_phdr(buf, &info, i, &ph);
		if (ph.type != PT_LOAD)
			continue;
		if (ph.filesz > ph.memsz)
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF PT_LOAD segment %u: file size 0x%llx exceeds its memory "
				       "size 0x%llx", i, (unsigned long long)ph.filesz,
				       (unsigned long long)ph.memsz);
		if (!in_file(ph.offset, ph.filesz, len))
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF PT_LOAD segment %u (offset 0x%llx, 0x%llx bytes) lies "
				       "outside the file (%zu bytes)", i,
				       (unsigned long long)ph.offset, (unsigned long long)ph.filesz,
				       len);
		if (ph.memsz == 0)
			continue;
		if (ph.paddr < LAYOUT_HIGH_RAM)
			return err_set(err, KEEL_ERR_FORMAT,
				       "ELF PT_LOAD segment %u at physical address 0x%llx is below "
				       "1 MiB (0x%llx), where keel keeps boot data", i,
				       (unsigned long long)ph.paddr,
				       (unsigned long long)LAYOUT_HIGH_RAM);
		if (!mem_ptr(mem, ph.paddr, ph.memsz))
			return err_set(err, KEEL_ERR_TOO_LARGE,
				       "ELF PT_LOAD segment %u (0x%llx bytes at physical address "
				       "0x%llx) lies outside guest RAM (%llu MiB)", i,
				       (unsigned long long)ph.memsz, (unsigned long long)ph.paddr,
				       (unsigned long long)(mem->size / MiB));
		nr_load++;
		if (ph.paddr + ph.memsz > kernel_end)
			kernel_end = ph.paddr + ph.memsz;
		if (info.entry >= ph.paddr && info.entry - ph.paddr < ph.memsz)
			entry_ok = true;
	}
	if (!nr_load)
		return err_set(err, KEEL_ERR_FORMAT, "ELF kernel has no PT_LOAD segment to load");
	if (!entry_ok)
		return err_set(err, KEEL_ERR_FORMAT,
			       "PVH entry point 0x%x lies in no PT_LOAD segment", info.entry);
	if (spec->nr_e820 <= 0 || spec->nr_e820 > MEMMAP_MAX)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory map has %d entries, the PVH start info page holds 1 to %d",
			       spec->nr_e820, MEMMAP_MAX);
	cmdline_len = strlen(spec->cmdline);
	if (cmdline_len + 1 > LAYOUT_CMDLINE_MAX)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, keel accepts at most %llu", cmdline_len,
			       (unsigned long long)(LAYOUT_CMDLINE_MAX - 1));
	if (spec->initrd && spec->initrd_size &&
	    boot_place_initrd(mem, NULL, spec->initrd_size, kernel_end, UINT64_MAX, &initrd_gpa,
			      err))
		return -1;
	si = mem_ptr(mem, LAYOUT_PVH_INFO, LAYOUT_PVH_INFO_SIZE);
	if (!si)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "PVH start info at 0x%llx lies outside guest RAM",
			       (unsigned long long)LAYOUT_PVH_INFO);

	/* The segments. */
	for (i = 0; i < info.phnum; i++) {
		struct elf_phdr ph;
		uint8_t *dst;

		elf_phdr(buf, &info, i, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		dst = mem_ptr(mem, ph.paddr, ph.memsz);
		memcpy(dst, buf + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
	}

	/* hvm_start_info, its module list and memory map. */
	memset(si, 0, LAYOUT_PVH_INFO_SIZE);
	put_le32(si + SI_MAGIC, XEN_HVM_START_MAGIC);
	put_le32(si + SI_VERSION, 1);
	put_le32(si + SI_FLAGS, 0);
	put_le64(si + SI_CMDLINE_PADDR, LAYOUT_CMDLINE);
	put_le64(si + SI_RSDP_PADDR, spec->rsdp);
	if (initrd_gpa) {
		uint8_t *mod = si + MODLIST_OFF;

		put_le32(si + SI_NR_MODULES, 1);
		put_le64(si + SI_MODLIST_PADDR, LAYOUT_PVH_INFO + MODLIST_OFF);
		put_le64(mod, initrd_gpa);
		put_le64(mod + 8, spec->initrd_size);
	}
	put_le64(si + SI_MEMMAP_PADDR, LAYOUT_PVH_INFO + MEMMAP_OFF);
	put_le32(si + SI_MEMMAP_ENTRIES, (uint32_t)spec->nr_e820);
	for (n = 0; n < spec->nr_e820; n++) {
		uint8_t *e = si + MEMMAP_OFF + (size_t)n * MEMMAP_ENTRY_SIZE;

		put_le64(e, spec->e820[n].addr);
		put_le64(e + 8, spec->e820[n].size);
		put_le32(e + 16, spec->e820[n].type);
	}

	if (boot_place_cmdline(mem, spec->cmdline, LAYOUT_CMDLINE_MAX - 1, err))
		return -1;
	if (initrd_gpa && boot_place_initrd(mem, spec->initrd, spec->initrd_size, kernel_end,
					    UINT64_MAX, &initrd_gpa, err))
		return -1;

	*entry = (struct boot_entry){
		.mode = BOOT_MODE_PVH32,
		.rip = info.entry,
		.rbx = LAYOUT_PVH_INFO,
	};
	return 0;
}
