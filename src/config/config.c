// SPDX-License-Identifier: MIT
/* Configuration objects and their validation against the host. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "boot/boot.h"
#include "config/config.h"
#include "core/error.h"
#include "core/sandbox.h"
#include "kvm/kvm.h"
#include "x86/layout.h"
#include "x86/x86.h"

#define MIB (1ULL << 20)
#define MEM_MIN (16 * MIB)
#define MEM_MAX (1ULL << 40)    /* 1 TiB: beyond what keel's page tables map */
#define HUGE_PAGE (2 * MIB)

keel_config *keel_config_new(keel_error **err)
{
	keel_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a configuration");
		return NULL;
	}
	cfg->c.cpus = 1;
	cfg->c.mem_size = 128 * MIB;
	cfg->c.reset_action = KEEL_RESET_STOP;
	return cfg;
}

void vm_config_fini(struct vm_config *c)
{
	devices_fini(c);
	keel_boot_loader_free(c->boot);
	for (int i = 0; i < c->nr_serial; i++)
		keel_serial_attachment_free(c->serial[i]);
	memset(c, 0, sizeof(*c));
}

void keel_config_free(keel_config *cfg)
{
	if (!cfg)
		return;
	vm_config_fini(&cfg->c);
	free(cfg);
}

void keel_config_set_cpu_count(keel_config *cfg, unsigned int count)
{
	cfg->c.cpus = count;
}

void keel_config_set_memory_size(keel_config *cfg, uint64_t bytes)
{
	cfg->c.mem_size = bytes;
}

void keel_config_set_hugepages(keel_config *cfg, bool enable)
{
	cfg->c.hugepages = enable;
}

void keel_config_set_boot_loader(keel_config *cfg, keel_boot_loader *bl)
{
	if (cfg->c.boot != bl)
		keel_boot_loader_free(cfg->c.boot);
	cfg->c.boot = bl;
}

void keel_config_add_serial_port(keel_config *cfg, keel_serial_attachment *att)
{
	if (!att)
		return;
	if (cfg->c.nr_serial == CFG_MAX_SERIAL) {
		/* The setter cannot fail: validation reports it. */
		cfg->c.too_many_serial = true;
		keel_serial_attachment_free(att);
		return;
	}
	cfg->c.serial[cfg->c.nr_serial++] = att;
}

void keel_config_set_reset_action(keel_config *cfg, keel_reset_action action)
{
	cfg->c.reset_action = action;
}

void keel_config_set_sandbox(keel_config *cfg, keel_sandbox_mode mode)
{
	cfg->c.sandbox = mode;
}

void keel_config_set_log_callback(keel_config *cfg, keel_log_cb cb, keel_log_level max_level,
				  void *opaque)
{
	cfg->c.log_cb = cb;
	cfg->c.log_level = max_level;
	cfg->c.log_opaque = opaque;
}

static void add_dev(keel_config *cfg, struct dev_list *l, void *dev, void (*free_fn)(void *))
{
	if (!dev)
		return;
	if (dev_list_add(l, dev) < 0) {
		/* Setters cannot fail: validation reports it. */
		cfg->c.alloc_failed = true;
		free_fn(dev);
	}
}

void keel_config_add_storage_device(keel_config *cfg, keel_storage_device *dev)
{
	add_dev(cfg, &cfg->c.disks, dev, (void (*)(void *))keel_storage_device_free);
}

void keel_config_add_entropy_device(keel_config *cfg, keel_entropy_device *dev)
{
	add_dev(cfg, &cfg->c.rngs, dev, (void (*)(void *))keel_entropy_device_free);
}

void keel_config_add_console_device(keel_config *cfg, keel_console_device *dev)
{
	add_dev(cfg, &cfg->c.consoles, dev, (void (*)(void *))keel_console_device_free);
}

void keel_config_add_network_device(keel_config *cfg, keel_network_device *dev)
{
	add_dev(cfg, &cfg->c.nics, dev, (void (*)(void *))keel_network_device_free);
}

void keel_config_set_machine_identifier(keel_config *cfg, const uint8_t id[16])
{
	memcpy(cfg->c.machine_id, id, 16);
	cfg->c.has_machine_id = true;
}

void keel_config_set_virtio_transport(keel_config *cfg, keel_virtio_transport t)
{
	cfg->c.transport = t;
}

/* ---- boot loaders ---- */

keel_boot_loader *keel_linux_boot_loader_new(const char *kernel_path, keel_error **err)
{
	keel_boot_loader *bl;

	if (!kernel_path || !*kernel_path) {
		err_set(err, KEEL_ERR_INVALID, "Linux boot loader: no kernel path given");
		return NULL;
	}
	bl = calloc(1, sizeof(*bl));
	if (bl) {
		bl->kind = BOOT_LINUX;
		bl->kernel = strdup(kernel_path);
		bl->cmdline = strdup("");
	}
	if (!bl || !bl->kernel || !bl->cmdline) {
		keel_boot_loader_free(bl);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a boot loader");
		return NULL;
	}
	return bl;
}

/* Setters cannot fail; on allocation failure the old value stays. */
static void replace_str(char **dst, const char *src)
{
	char *n = src ? strdup(src) : NULL;

	if (src && !n)
		return;
	free(*dst);
	*dst = n;
}

void keel_linux_boot_loader_set_initrd(keel_boot_loader *bl, const char *initrd_path)
{
	replace_str(&bl->initrd, initrd_path && *initrd_path ? initrd_path : NULL);
}

void keel_linux_boot_loader_set_cmdline(keel_boot_loader *bl, const char *cmdline)
{
	replace_str(&bl->cmdline, cmdline ? cmdline : "");
}

void keel_boot_loader_free(keel_boot_loader *bl)
{
	if (!bl)
		return;
	free(bl->kernel);
	free(bl->initrd);
	free(bl->cmdline);
	free(bl->firmware);
	free(bl->vars);
	free(bl->vars_template);
	free(bl);
}

/* A copy of an optional string; false when it could not be made. */
static bool dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

static keel_boot_loader *boot_loader_dup(const keel_boot_loader *src, keel_error **err)
{
	keel_boot_loader *bl = calloc(1, sizeof(*bl));

	if (bl) {
		bl->kind = src->kind;
		if (dup_opt(&bl->kernel, src->kernel) && dup_opt(&bl->initrd, src->initrd) &&
		    dup_opt(&bl->cmdline, src->cmdline) && dup_opt(&bl->firmware, src->firmware) &&
		    dup_opt(&bl->vars, src->vars) && dup_opt(&bl->vars_template, src->vars_template))
			return bl;
	}
	keel_boot_loader_free(bl);
	err_set(err, KEEL_ERR_NOMEM, "out of memory copying the boot loader");
	return NULL;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src, keel_error **err)
{
	*dst = *src;
	dst->boot = NULL;
	dst->nr_serial = 0;
	if (devices_copy(dst, src, err) < 0)
		goto fail;
	if (src->boot && !(dst->boot = boot_loader_dup(src->boot, err)))
		goto fail;
	for (int i = 0; i < src->nr_serial; i++) {
		dst->serial[i] = serial_attachment_dup(src->serial[i], err);
		if (!dst->serial[i])
			goto fail;
		dst->nr_serial++;
	}
	return 0;
fail:
	vm_config_fini(dst);
	return -1;
}

/* ---- validation ---- */

static int check_readable_file(const char *what, const char *path, keel_error **err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "%s '%s'", what, path);
	if (S_ISDIR(st.st_mode))
		return err_set(err, KEEL_ERR_INVALID, "%s '%s' is a directory, not a file", what,
			       path);
	if (access(path, R_OK) < 0)
		return err_errno(err, err_code_from_errno(errno), errno, "%s '%s' is not readable",
				 what, path);
	return 0;
}

static int validate_boot(const keel_boot_loader *bl, keel_error **err)
{
	enum boot_format fmt;
	size_t len;

	if (!bl)
		return err_set(err, KEEL_ERR_INVALID,
			       "no boot loader configured: set one with keel_config_set_boot_loader()");
	if (bl->kind == BOOT_EFI)
		return efi_validate(bl, err);
	if (check_readable_file("kernel", bl->kernel, err) < 0)
		return -1;
	if (boot_probe_file(bl->kernel, &fmt, err) < 0)
		return -1;
	if (bl->initrd && check_readable_file("initrd", bl->initrd, err) < 0)
		return -1;
	len = strlen(bl->cmdline);
	if (len + 1 > LAYOUT_CMDLINE_MAX)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "kernel command line is %zu bytes, keel accepts at most %llu", len,
			       LAYOUT_CMDLINE_MAX - 1);
	return 0;
}

int vm_config_validate(const struct vm_config *c, keel_error **err)
{
	struct sysinfo si;
	struct kvm kvm;
	unsigned int bits;
	uint64_t top;

	if (c->cpus < 1)
		return err_set(err, KEEL_ERR_INVALID, "CPU count is 0: a VM needs at least one");
	if (c->cpus > X86_MAX_CPUS)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "CPU count %u exceeds keel's limit of %d (8-bit x86 APIC IDs)", c->cpus,
			       X86_MAX_CPUS);
	if (c->mem_size < MEM_MIN || c->mem_size % MIB)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory size %llu bytes: must be a multiple of 1 MiB and at least %llu MiB",
			       (unsigned long long)c->mem_size, MEM_MIN / MIB);
	if (c->mem_size > MEM_MAX)
		return err_set(err, KEEL_ERR_TOO_LARGE, "memory size %llu MiB exceeds keel's limit of %llu MiB",
			       (unsigned long long)(c->mem_size / MIB), MEM_MAX / MIB);
	if (c->hugepages && c->mem_size % HUGE_PAGE)
		return err_set(err, KEEL_ERR_INVALID,
			       "memory size %llu MiB is not a multiple of the 2 MiB huge page size",
			       (unsigned long long)(c->mem_size / MIB));
	if (c->reset_action != KEEL_RESET_STOP && c->reset_action != KEEL_RESET_RESTART)
		return err_set(err, KEEL_ERR_INVALID, "unknown reset action %d", c->reset_action);
	if (c->too_many_serial)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "more than %d serial ports configured (COM1-COM4 exist)", CFG_MAX_SERIAL);
	if (c->alloc_failed)
		return err_set(err, KEEL_ERR_NOMEM, "the configuration is incomplete: out of memory adding a device");
	if (validate_boot(c->boot, err) < 0)
		return -1;
	if (devices_validate(c, err) < 0)
		return -1;
	/* The firmware assigns PCI resources where a virtio-mmio window would be. */
	if (c->boot->kind == BOOT_EFI && c->transport == KEEL_VIRTIO_MMIO)
		return err_set(err, KEEL_ERR_UNSUPPORTED,
			       "the virtio-mmio transport is for direct kernel boots: UEFI firmware takes virtio devices over PCI");
	if (sandbox_check(c->sandbox, err) < 0)
		return -1;

	/* The host last: everything above is checkable without KVM. */
	if (kvm_open(&kvm, err) < 0)
		return -1;
	if (c->cpus > kvm.max_vcpus) {
		kvm_close(&kvm);
		return err_set(err, KEEL_ERR_TOO_LARGE, "CPU count %u exceeds KVM's limit of %u",
			       c->cpus, kvm.max_vcpus);
	}
	bits = kvm_phys_bits(&kvm);
	kvm_close(&kvm);
	/* RAM above the 32-bit hole continues at 4 GiB. */
	top = c->mem_size <= LAYOUT_MMIO_HOLE ? c->mem_size :
	      LAYOUT_4G + (c->mem_size - LAYOUT_MMIO_HOLE);
	if (bits < 64 && top > 1ULL << bits)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "memory size %llu MiB ends at guest address 0x%llx, beyond the %u address bits KVM offers",
			       (unsigned long long)(c->mem_size / MIB), (unsigned long long)top, bits);
	if (sysinfo(&si) == 0 &&
	    c->mem_size / si.mem_unit > (uint64_t)si.totalram + si.totalswap)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "memory size %llu MiB exceeds this host's RAM and swap (%llu MiB)",
			       (unsigned long long)(c->mem_size / MIB),
			       (unsigned long long)(((uint64_t)si.totalram + si.totalswap) *
						    si.mem_unit / MIB));
	return 0;
}

int keel_config_validate(const keel_config *cfg, keel_error **err)
{
	/* It opens /dev/kvm and the boot files. */
	if (sandbox_refuse_filtered("keel_config_validate()", err) < 0)
		return -1;
	return vm_config_validate(&cfg->c, err);
}
