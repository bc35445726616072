// SPDX-License-Identifier: MIT
/* UEFI boot loaders and variable stores (keel.h, "boot loaders"). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"

#define FV_SIGNATURE_OFF 0x28           /* EFI_FIRMWARE_VOLUME_HEADER.Signature */
#define FLASH_MAX        (16u << 20)    /* below 4 GiB, above the LAPIC and IOAPIC */

int efi_volume_check(const char *what, const char *path, bool writable, uint64_t *size,
		     keel_error **err)
{
	char sig[4];
	struct stat st;
	int fd, e;

	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT && !strcmp(path, KEEL_EFI_FIRMWARE))
			return err_set(err, KEEL_ERR_NOT_FOUND,
				       "%s '%s' not found: install Debian's ovmf package (apt-get install ovmf)",
				       what, path);
		return err_errno(err, err_code_from_errno(e), e, "%s '%s'%s", what, path,
				 writable ? " (opened for writing)" : "");
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, KEEL_ERR_INVALID, "%s '%s' is not a regular file", what, path);
	}
	if (!st.st_size || st.st_size % 4096 || st.st_size > FLASH_MAX) {
		close(fd);
		return err_set(err, KEEL_ERR_FORMAT,
			       "%s '%s' is %lld bytes: a flash image is whole 4 KiB blocks, at most %u MiB",
			       what, path, (long long)st.st_size, FLASH_MAX >> 20);
	}
	if (pread(fd, sig, sizeof(sig), FV_SIGNATURE_OFF) != (ssize_t)sizeof(sig) ||
	    memcmp(sig, "_FVH", 4)) {
		close(fd);
		return err_set(err, KEEL_ERR_FORMAT,
			       "%s '%s' is not a UEFI firmware volume (no _FVH signature at 0x%x)",
			       what, path, FV_SIGNATURE_OFF);
	}
	close(fd);
	*size = (uint64_t)st.st_size;
	return 0;
}

keel_boot_loader *keel_efi_boot_loader_new(const char *firmware_path, keel_error **err)
{
	keel_boot_loader *bl = calloc(1, sizeof(*bl));

	if (bl) {
		bl->kind = BOOT_EFI;
		bl->firmware = strdup(firmware_path && *firmware_path ? firmware_path :
				      KEEL_EFI_FIRMWARE);
		bl->cmdline = strdup("");
		/* Debian's template only fits Debian's firmware: others need a store. */
		if (!firmware_path || !*firmware_path || !strcmp(firmware_path, KEEL_EFI_FIRMWARE))
			bl->vars_template = strdup(KEEL_EFI_VARS_TEMPLATE);
	}
	if (!bl || !bl->firmware || !bl->cmdline) {
		keel_boot_loader_free(bl);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a boot loader");
		return NULL;
	}
	return bl;
}

static keel_efi_variable_store *store_new(const char *path, keel_error **err)
{
	keel_efi_variable_store *st = calloc(1, sizeof(*st));

	if (st)
		st->path = strdup(path);
	if (!st || !st->path) {
		free(st);
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating a variable store"), NULL;
	}
	return st;
}

keel_efi_variable_store *keel_efi_variable_store_open(const char *path, keel_error **err)
{
	uint64_t size;

	if (!path || !*path)
		return err_set(err, KEEL_ERR_INVALID, "EFI variable store: no path given"), NULL;
	if (efi_volume_check("EFI variable store", path, true, &size, err) < 0)
		return NULL;
	return store_new(path, err);
}

keel_efi_variable_store *keel_efi_variable_store_create(const char *path,
							 const char *template_path,
							 bool allow_overwrite, keel_error **err)
{
	const char *tpl = template_path ? template_path : KEEL_EFI_VARS_TEMPLATE;
	int in = -1, out = -1, ret = -1;
	uint64_t size, done = 0;
	char buf[65536];

	if (!path || !*path)
		return err_set(err, KEEL_ERR_INVALID, "EFI variable store: no path given"), NULL;
	if (efi_volume_check("EFI variable template", tpl, false, &size, err) < 0)
		return NULL;
	in = open(tpl, O_RDONLY | O_CLOEXEC);
	out = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (allow_overwrite ? O_TRUNC : O_EXCL), 0600);
	if (out < 0) {
		if (errno == EEXIST)
			err_set(err, KEEL_ERR_STATE,
				"EFI variable store '%s' exists (allow overwriting it, or open it)", path);
		else
			err_errno(err, err_code_from_errno(errno), errno,
				  "cannot create EFI variable store '%s'", path);
		goto out;
	}
	while (done < size) {
		ssize_t n = pread(in, buf, sizeof(buf), (off_t)done);

		if (n <= 0 || write(out, buf, (size_t)n) != n) {
			err_errno(err, KEEL_ERR_IO, n < 0 ? errno : EIO,
				  "cannot copy '%s' to EFI variable store '%s'", tpl, path);
			goto out;
		}
		done += (uint64_t)n;
	}
	if (fsync(out) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot sync EFI variable store '%s'", path);
		goto out;
	}
	ret = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret < 0 && out >= 0)
		unlink(path);
	return ret < 0 ? NULL : store_new(path, err);
}

void keel_efi_variable_store_free(keel_efi_variable_store *store)
{
	if (!store)
		return;
	free(store->path);
	free(store);
}

void keel_efi_boot_loader_set_variable_store(keel_boot_loader *bl, keel_efi_variable_store *store)
{
	if (bl->kind == BOOT_EFI && store) {
		free(bl->vars);
		bl->vars = store->path;
		store->path = NULL;
	}
	keel_efi_variable_store_free(store);
}

int efi_validate(const keel_boot_loader *bl, keel_error **err)
{
	uint64_t code, vars;
	const char *store = bl->vars ? bl->vars : bl->vars_template;

	if (efi_volume_check("UEFI firmware", bl->firmware, false, &code, err) < 0)
		return -1;
	if (!store)
		return err_set(err, KEEL_ERR_INVALID,
			       "UEFI firmware '%s' is not Debian's OVMF: give it a variable store made from its own VARS template",
			       bl->firmware);
	if (efi_volume_check(bl->vars ? "EFI variable store" : "EFI variable template", store,
			     bl->vars != NULL, &vars, err) < 0)
		return -1;
	/* OVMF's flash is code and store together, a power of two ending at 4 GiB. */
	if ((code + vars) & (code + vars - 1) || code + vars > FLASH_MAX)
		return err_set(err, KEEL_ERR_INVALID,
			       "EFI variable store '%s' (%llu bytes) does not fit UEFI firmware '%s' (%llu bytes): make the store from that firmware's VARS template",
			       store, (unsigned long long)vars, bl->firmware,
			       (unsigned long long)code);
	return 0;
}
