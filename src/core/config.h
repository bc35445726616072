/* SPDX-License-Identifier: MIT */
/* Configuration objects' internals (the public API hides them). */
#ifndef KEEL_CORE_CONFIG_H
#define KEEL_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/keel.h>

#define CFG_MAX_SERIAL 4

enum serial_kind {
	SERIAL_STDIO,
	SERIAL_FILE,
	SERIAL_FDS,
};

struct keel_serial_attachment {
	enum serial_kind kind;
	char *path;             /* SERIAL_FILE */
	int in_fd;              /* -1: no input */
	int out_fd;             /* -1: output discarded */
};

enum boot_kind {
	BOOT_LINUX,
};

struct keel_boot_loader {
	enum boot_kind kind;
	char *kernel;
	char *initrd;           /* NULL: none */
	char *cmdline;          /* never NULL */
};

struct vm_config {
	unsigned int cpus;
	uint64_t mem_size;
	bool hugepages;
	keel_reset_action reset_action;
	struct keel_boot_loader *boot;
	int nr_serial;
	struct keel_serial_attachment *serial[CFG_MAX_SERIAL];
	bool too_many_serial;   /* reported by validation */
	keel_log_cb log_cb;
	keel_log_level log_level;
	void *log_opaque;
};

struct keel_config {
	struct vm_config c;
};

/* Deep copy (descriptors are duplicated); on failure `dst` is left empty. */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src, keel_error **err);
void vm_config_fini(struct vm_config *cfg);
int vm_config_validate(const struct vm_config *cfg, keel_error **err);

struct keel_serial_attachment *serial_attachment_dup(const struct keel_serial_attachment *src,
						     keel_error **err);

#endif
