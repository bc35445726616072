// SPDX-License-Identifier: MIT
/*
 * Boot loader front end: recognises the kernel format, reads the files of a
 * boot loader, and places the pieces every format shares (command line,
 * initrd).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)
#define PAGE_SIZE 4096ULL

/* bzImage: boot sector signature and setup header magic ("HdrS"). */
#define BZ_BOOT_FLAG_OFF 0x1fe
#define BZ_HEADER_OFF    0x202

static int is_bzimage(const uint8_t *buf, size_t len)
{
	return len >= BZ_HEADER_OFF + 4 &&
	       buf[BZ_BOOT_FLAG_OFF] == 0x55 && buf[BZ_BOOT_FLAG_OFF + 1] == 0xaa &&
	       memcmp(buf + BZ_HEADER_OFF, "HdrS", 4) == 0;
}

static int is_elf(const uint8_t *buf, size_t len)
{
	return len >= 4 && memcmp(buf, "\x7f" "ELF", 4) == 0;
}

int boot_probe(const uint8_t *buf, size_t len, enum boot_format *fmt, keel_error **err)
{
	if (!buf || len == 0)
		return err_set(err, KEEL_ERR_FORMAT, "not a kernel image: it is empty");
	if (is_bzimage(buf, len)) {
		if (bzimage_probe(buf, len, err))
			return -1;
		if (fmt)
			*fmt = BOOT_FMT_BZIMAGE;
		return 0;
	}
	if (is_elf(buf, len)) {
		if (pvh_probe(buf, len, err))
			return -1;
		if (fmt)
			*fmt = BOOT_FMT_PVH;
		return 0;
	}
	return err_set(err, KEEL_ERR_FORMAT,
		       "not a kernel image: no bzImage header and no ELF magic");
}

/*
 * Opens a boot file for reading: `what` names its role ("kernel",
 * "initrd") in error messages, together with the path.  It must be a
 * regular file.
 */
static int open_boot_file(const char *what, const char *path, int *out, keel_error **err)
{
	struct stat st;
	int fd;

	*out = -1;
	if (!path || !*path)
		return err_set(err, KEEL_ERR_INVALID, "%s: no file name given", what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "%s '%s'", what, path);
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return err_errno(err, err_code_from_errno(e), e, "%s '%s': cannot stat it", what,
				 path);
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return err_set(err, KEEL_ERR_INVALID, "%s '%s' is a directory, not a file", what,
			       path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, KEEL_ERR_INVALID,
			       "%s '%s' is not a regular file (device, pipe or socket)", what,
			       path);
	}
	*out = fd;
	return 0;
}

/*
 * Reads the whole of an opened boot file into a new buffer, from its start,
 * with lseek() and pread() only: at a guest reboot this runs on the event
 * thread, whose sandbox filter allows no open() or stat().  read() rather
 * than mmap(): a file truncated while mapped would kill the process with
 * SIGBUS.
 */
static int read_boot_file(const char *what, const char *path, int fd, uint8_t **out,
			  size_t *out_len, keel_error **err)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *buf;
	size_t size, done = 0;

	*out = NULL;
	*out_len = 0;
	if (end < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "%s '%s': cannot find its size", what,
				 path);
	if (end == 0)
		return err_set(err, KEEL_ERR_FORMAT, "%s '%s': the file is empty", what, path);
	/* Nothing larger can be placed below the 32-bit MMIO hole. */
	if ((uint64_t)end > LAYOUT_MMIO_HOLE)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "%s '%s' is %llu bytes: larger than all guest RAM below 0x%llx",
			       what, path, (unsigned long long)end,
			       (unsigned long long)LAYOUT_MMIO_HOLE);
	size = (size_t)end;
	buf = malloc(size);
	if (!buf)
		return err_set(err, KEEL_ERR_NOMEM, "%s '%s': cannot allocate %zu bytes to read it",
			       what, path, size);
	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return err_errno(err, KEEL_ERR_IO, e,
					 "%s '%s': reading failed after %zu of %zu bytes", what,
					 path, done, size);
		}
		if (n == 0) {
			free(buf);
			return err_set(err, KEEL_ERR_IO,
				       "%s '%s': the file shrank while being read (%zu of %zu bytes)",
				       what, path, done, size);
		}
		done += (size_t)n;
	}
	*out = buf;
	*out_len = size;
	return 0;
}

/* Opens and reads a whole regular file (validation, tests). */
static int read_whole_file(const char *what, const char *path, uint8_t **out, size_t *out_len,
			   keel_error **err)
{
	int fd, ret;

	*out = NULL;
	*out_len = 0;
	if (open_boot_file(what, path, &fd, err) < 0)
		return -1;
	ret = read_boot_file(what, path, fd, out, out_len, err);
	close(fd);
	return ret;
}

int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd,
		    keel_error **err)
{
	f->kernel_fd = f->initrd_fd = -1;
	f->kernel = kernel;
	f->initrd = initrd;
	if (open_boot_file("kernel", kernel, &f->kernel_fd, err) < 0)
		return -1;
	if (initrd && open_boot_file("initrd", initrd, &f->initrd_fd, err) < 0) {
		boot_files_close(f);
		return -1;
	}
	return 0;
}

void boot_files_close(struct boot_files *f)
{
	if (f->kernel_fd >= 0)
		close(f->kernel_fd);
	if (f->initrd_fd >= 0)
		close(f->initrd_fd);
	f->kernel_fd = f->initrd_fd = -1;
}

int boot_probe_file(const char *path, enum boot_format *fmt, keel_error **err)
{
	uint8_t *buf;
	size_t len;
	int ret;

	if (read_whole_file("kernel", path, &buf, &len, err))
		return -1;
	ret = boot_probe(buf, len, fmt, err);
	if (ret)
		err_prefix(err, "kernel '%s'", path);
	free(buf);
	return ret;
}

int boot_files_load(struct mem *mem, const struct boot_files *f, const char *cmdline,
		    uint64_t rsdp, struct boot_entry *entry, keel_error **err)
{
	struct e820_entry e820[E820_MAX];
	struct boot_spec spec;
	uint8_t *kbuf = NULL, *ibuf = NULL;
	size_t klen = 0, ilen = 0;
	int nr, ret = -1;

	nr = e820_build(mem, e820, E820_MAX);
	if (nr < 0)
		return err_set(err, KEEL_ERR_INVALID,
			       "guest memory map needs more than %d e820 entries", E820_MAX);
	if (read_boot_file("kernel", f->kernel, f->kernel_fd, &kbuf, &klen, err))
		goto out;
	if (f->initrd_fd >= 0 &&
	    read_boot_file("initrd", f->initrd, f->initrd_fd, &ibuf, &ilen, err))
		goto out;

	spec = (struct boot_spec){
		.kernel = kbuf,
		.kernel_size = klen,
		.initrd = ibuf,
		.initrd_size = ilen,
		.cmdline = cmdline ? cmdline : "",
		.e820 = e820,
		.nr_e820 = nr,
		.rsdp = rsdp,
	};
	ret = boot_load(mem, &spec, entry, err);
	if (ret) {
		if (f->initrd_fd >= 0)
			err_prefix(err, "kernel '%s' with initrd '%s'", f->kernel, f->initrd);
		else
			err_prefix(err, "kernel '%s'", f->kernel);
	}
out:
	free(kbuf);
	free(ibuf);
	return ret;
}

int boot_load_files(struct mem *mem, const char *kernel, const char *initrd,
		    const char *cmdline, uint64_t rsdp, struct boot_entry *entry,
		    keel_error **err)
{
	struct boot_files f;
	int ret;

	if (boot_files_open(&f, kernel, initrd, err) < 0)
		return -1;
	ret = boot_files_load(mem, &f, cmdline, rsdp, entry, err);
	boot_files_close(&f);
	return ret;
}

int boot_load(struct mem *mem, const struct boot_spec *spec, struct boot_entry *entry,
	      keel_error **err)
{
	enum boot_format fmt;
	struct boot_entry e = { 0 };
	size_t cmdline_len;

	if (!mem || !spec || !entry)
		return err_set(err, KEEL_ERR_INVALID, "boot_load: missing guest memory, spec or entry");
	if (!spec->cmdline)
		return err_set(err, KEEL_ERR_INVALID, "boot_load: no command line (use \"\")");
	if (!spec->initrd && spec->initrd_size)
		return err_set(err, KEEL_ERR_INVALID, "boot_load: initrd size %zu without data",
			       spec->initrd_size);
	if (!spec->e820 || spec->nr_e820 <= 0)
		return err_set(err, KEEL_ERR_INVALID, "boot_load: empty guest memory map");
	cmdline_len = strlen(spec->cmdline);
	if (cmdline_len + 1 > LAYOUT_CMDLINE_MAX)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, keel accepts at most %llu", cmdline_len,
			       (unsigned long long)(LAYOUT_CMDLINE_MAX - 1));
	if (boot_probe(spec->kernel, spec->kernel_size, &fmt, err))
		return -1;

	switch (fmt) {
	case BOOT_FMT_BZIMAGE:
		if (bzimage_load(mem, spec, &e, err))
			return -1;
		break;
	case BOOT_FMT_PVH:
		if (pvh_load(mem, spec, &e, err))
			return -1;
		break;
	default:
		return err_set(err, KEEL_ERR_UNSUPPORTED, "boot format %d has no loader", fmt);
	}
	*entry = e;
	return 0;
}

/*
 * `max_len` is the longest command line (without its NUL) the kernel
 * accepts; LAYOUT_CMDLINE_MAX bounds it too.
 */
int boot_place_cmdline(struct mem *mem, const char *cmdline, size_t max_len, keel_error **err)
{
	size_t len = strlen(cmdline);
	size_t keel_max = LAYOUT_CMDLINE_MAX - 1;
	uint8_t *p;

	if (len > max_len && max_len <= keel_max)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, kernel accepts at most %zu", len, max_len);
	if (len > keel_max)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line is %zu bytes, keel accepts at most %zu", len, keel_max);
	p = mem_ptr(mem, LAYOUT_CMDLINE, len + 1);
	if (!p)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "command line (%zu bytes at 0x%llx) lies outside guest RAM", len + 1,
			       (unsigned long long)LAYOUT_CMDLINE);
	memcpy(p, cmdline, len + 1);
	return 0;
}

/*
 * With `data` NULL, only computes and checks the address (loaders validate
 * everything before they write anything).
 */
int boot_place_initrd(struct mem *mem, const uint8_t *data, size_t size, uint64_t kernel_end,
		      uint64_t max_addr, uint64_t *gpa, keel_error **err)
{
	uint64_t low_end = mem->region[0].gpa + mem->region[0].size;
	uint64_t limit = max_addr == UINT64_MAX ? UINT64_MAX : max_addr + 1;
	uint64_t floor = kernel_end > LAYOUT_HIGH_RAM ? kernel_end : LAYOUT_HIGH_RAM;
	uint64_t start;
	uint8_t *p;

	*gpa = 0;
	if (size == 0)
		return 0;
	if (limit > low_end)
		limit = low_end;
	if ((uint64_t)size > limit || ((limit - size) & ~(PAGE_SIZE - 1)) < floor)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "initrd (%zu bytes) does not fit in guest memory below 0x%llx: "
			       "kernel ends at 0x%llx, %llu MiB of RAM",
			       size, (unsigned long long)limit, (unsigned long long)kernel_end,
			       (unsigned long long)(mem->size / MiB));
	start = (limit - size) & ~(PAGE_SIZE - 1);
	p = mem_ptr(mem, start, size);
	if (!p)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "initrd (%zu bytes at 0x%llx) lies outside guest RAM", size,
			       (unsigned long long)start);
	if (data)
		memcpy(p, data, size);
	*gpa = start;
	return 0;
}
