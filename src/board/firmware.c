// SPDX-License-Identifier: MIT
/*
 * The firmware side of the board (firmware.h).  OVMF's 4 MiB flash is code
 * and variable store together, ending at 4 GiB: the store first, then the
 * code, whose last 16 bytes hold the reset vector.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "board/firmware.h"
#include "board/smbios.h"
#include "core/file_lock.h"
#include "core/le.h"
#include "dev/fw_cfg.h"
#include "dev/pflash.h"
#include "kvm/kvm.h"
#include "kvm/mem.h"
#include "x86/e820.h"
#include "x86/layout.h"

#define FLASH_END       LAYOUT_4G
#define FLASH_BLOCK     4096            /* OVMF's erase block */

struct firmware {
	struct devctx *ctx;
	struct firmware_config cfg;
	struct fw_cfg *fw_cfg;
	uint8_t *code;                  /* read-only mapping of the code image */
	size_t code_size;
	uint8_t *vars;                  /* the store's mapping, or a RAM copy of the template */
	size_t vars_size;
	int vars_fd;                    /* the store, locked; -1: in RAM */
	pthread_mutex_t lock;
	bool acpi_fresh;                /* built since the last reset */
};

static void *map_file(const char *path, size_t *size, int prot, int flags, int *fd_out,
		      keel_error **err)
{
	/* A private mapping may be written without the file being writable. */
	bool rw = (prot & PROT_WRITE) && (flags & MAP_SHARED);
	int fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	void *p;
	off_t len;

	if (fd < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "cannot open '%s'", path),
		       NULL;
	len = lseek(fd, 0, SEEK_END);
	p = len > 0 ? mmap(NULL, (size_t)len, prot, flags, fd, 0) : MAP_FAILED;
	if (p == MAP_FAILED) {
		err_errno(err, KEEL_ERR_IO, len > 0 ? errno : EINVAL, "cannot map '%s'", path);
		close(fd);
		return NULL;
	}
	*size = (size_t)len;
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return p;
}

/* The store for this run: the file (shared, locked) or a private copy of the template. */
static int map_vars(struct firmware *fw, keel_error **err)
{
	const struct keel_boot_loader *bl = fw->cfg.bl;

	if (!bl->vars) {
		fw->vars = map_file(bl->vars_template, &fw->vars_size, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE, NULL, err);
		return fw->vars ? 0 : -1;
	}
	fw->vars = map_file(bl->vars, &fw->vars_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    &fw->vars_fd, err);
	if (!fw->vars)
		return -1;
	return file_lock(fw->vars_fd, true, "EFI variable store", bl->vars, err);
}

/* etc/e820: guest RAM as OVMF finds it (20-byte entries, type 1). */
static int add_e820(struct firmware *fw, keel_error **err)
{
	const struct mem *mem = fw->ctx->mem;
	struct e820_entry e[MEM_MAX_REGIONS];

	for (int i = 0; i < mem->nr_regions; i++)
		e[i] = (struct e820_entry){ .addr = mem->region[i].gpa, .size = mem->region[i].size,
					    .type = E820_RAM };
	return fw_cfg_add_file(fw->fw_cfg, "etc/e820", e, sizeof(e[0]) * (size_t)mem->nr_regions,
			       NULL, NULL, err);
}

/* The three ACPI files from one build (the table loader refers to the other two). */
struct acpi_files {
	struct acpi_tables t;
	uint8_t *loader;
	size_t loader_len;
};

static int build_acpi_files(struct firmware *fw, struct acpi_files *f, keel_error **err)
{
	memset(f, 0, sizeof(*f));
	if (fw->cfg.build_acpi(fw->cfg.opaque, &f->t, err) < 0)
		return -1;
	if (acpi_table_loader(&f->t, &f->loader, &f->loader_len, err) < 0) {
		acpi_tables_free(&f->t);
		return -1;
	}
	return 0;
}

static void free_acpi_files(struct acpi_files *f)
{
	acpi_tables_free(&f->t);
	free(f->loader);
}

/* fw_cfg select callback of the ACPI files: built again after each reset. */
static void acpi_selected(void *opaque)
{
	struct firmware *fw = opaque;
	struct acpi_files f;
	keel_error *err = NULL;

	pthread_mutex_lock(&fw->lock);
	if (!fw->acpi_fresh) {
		if (build_acpi_files(fw, &f, &err) == 0) {
			if (fw_cfg_update_file(fw->fw_cfg, ACPI_LOADER_NAME, f.loader, f.loader_len,
					       &err) == 0 &&
			    fw_cfg_update_file(fw->fw_cfg, acpi_file_name(ACPI_FILE_TABLES),
					       f.t.data[ACPI_FILE_TABLES], f.t.size[ACPI_FILE_TABLES],
					       &err) == 0)
				fw_cfg_update_file(fw->fw_cfg, acpi_file_name(ACPI_FILE_RSDP),
						   f.t.data[ACPI_FILE_RSDP], f.t.size[ACPI_FILE_RSDP],
						   &err);
			free_acpi_files(&f);
		}
		if (err) {
			/* The first build's tables stay: the firmware still gets valid ones. */
			log_msg(&fw->ctx->log, KEEL_LOG_ERROR, "ACPI tables not rebuilt: %s",
				keel_error_get_message(err));
			keel_error_free(err);
		}
		fw->acpi_fresh = true;
	}
	pthread_mutex_unlock(&fw->lock);
}

static int add_items(struct firmware *fw, keel_error **err)
{
	uint8_t le16[2], le64[8], zero[2] = { 0 };
	struct acpi_files f;
	struct smbios sm;
	int ret;

	put_le16(le16, (uint16_t)fw->cfg.nr_cpus);
	put_le64(le64, fw->cfg.mem_size);
	if (fw_cfg_set(fw->fw_cfg, FW_CFG_NB_CPUS, le16, 2, err) < 0 ||
	    fw_cfg_set(fw->fw_cfg, FW_CFG_MAX_CPUS, le16, 2, err) < 0 ||
	    fw_cfg_set(fw->fw_cfg, FW_CFG_RAM_SIZE, le64, 8, err) < 0 ||
	    fw_cfg_set(fw->fw_cfg, FW_CFG_BOOT_MENU, zero, 2, err) < 0 || add_e820(fw, err) < 0)
		return -1;
	/* The directory needs the sizes now; the contents are built again when read. */
	if (build_acpi_files(fw, &f, err) < 0)
		return -1;
	ret = fw_cfg_add_file(fw->fw_cfg, acpi_file_name(ACPI_FILE_RSDP), f.t.data[ACPI_FILE_RSDP],
			      f.t.size[ACPI_FILE_RSDP], acpi_selected, fw, err);
	if (ret == 0)
		ret = fw_cfg_add_file(fw->fw_cfg, acpi_file_name(ACPI_FILE_TABLES),
				      f.t.data[ACPI_FILE_TABLES], f.t.size[ACPI_FILE_TABLES],
				      acpi_selected, fw, err);
	if (ret == 0)
		ret = fw_cfg_add_file(fw->fw_cfg, ACPI_LOADER_NAME, f.loader, f.loader_len,
				      acpi_selected, fw, err);
	free_acpi_files(&f);
	if (ret < 0 || smbios_build(fw->cfg.uuid, fw->cfg.version, &sm, err) < 0)
		return -1;
	ret = fw_cfg_add_file(fw->fw_cfg, "etc/smbios/smbios-anchor", sm.anchor,
			      sizeof(sm.anchor), NULL, NULL, err);
	if (ret == 0)
		ret = fw_cfg_add_file(fw->fw_cfg, "etc/smbios/smbios-tables", sm.tables, sm.len,
				      NULL, NULL, err);
	smbios_free(&sm);
	/* No "bootorder": the firmware's own variables decide what boots. */
	return ret;
}

struct firmware *firmware_new(struct devctx *ctx, const struct firmware_config *cfg,
			      keel_error **err)
{
	struct firmware *fw = calloc(1, sizeof(*fw));
	struct pflash_config flash;
	uint64_t code_base, vars_base;

	if (!fw)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory setting up the firmware"), NULL;
	fw->ctx = ctx;
	fw->cfg = *cfg;
	fw->vars_fd = -1;
	pthread_mutex_init(&fw->lock, NULL);
	if (ioctl(ctx->kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) {
		err_set(err, KEEL_ERR_KVM,
			"KVM lacks KVM_CAP_READONLY_MEM, which keel needs for UEFI firmware's flash");
		goto fail;
	}
	fw->code = map_file(cfg->bl->firmware, &fw->code_size, PROT_READ, MAP_PRIVATE, NULL, err);
	if (!fw->code || map_vars(fw, err) < 0)
		goto fail;
	code_base = FLASH_END - fw->code_size;
	vars_base = code_base - fw->vars_size;
	if (kvm_set_memory(ctx->kvm, FIRMWARE_SLOT_CODE, code_base, fw->code_size, fw->code, true,
			   err) < 0)
		goto fail;
	flash = (struct pflash_config){
		.name = "efi-vars-flash", .base = vars_base, .mem = fw->vars,
		.size = fw->vars_size, .block_size = FLASH_BLOCK, .slot = FIRMWARE_SLOT_VARS,
		.file_fd = fw->vars_fd,
	};
	if (!pflash_create(ctx, &flash, err))
		goto fail;
	if (!(fw->fw_cfg = fw_cfg_create(ctx, err)) || add_items(fw, err) < 0)
		goto fail;
	return fw;
fail:
	firmware_free(fw);      /* devices made so far go with the VM's */
	return NULL;
}

void firmware_free(struct firmware *fw)
{
	if (!fw)
		return;
	if (fw->code) {
		kvm_set_memory(fw->ctx->kvm, FIRMWARE_SLOT_CODE, FLASH_END - fw->code_size, 0,
			       fw->code, true, NULL);
		munmap(fw->code, fw->code_size);
	}
	if (fw->vars)
		munmap(fw->vars, fw->vars_size);
	if (fw->vars_fd >= 0)
		close(fw->vars_fd);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

void firmware_reset(struct firmware *fw)
{
	pthread_mutex_lock(&fw->lock);
	fw->acpi_fresh = false;
	pthread_mutex_unlock(&fw->lock);
}
