// SPDX-License-Identifier: MIT
/* Configuration validation: each rule reports a precise error. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <keel/keel.h>

#include "check.h"

static char dir[] = "/tmp/keel-test-config-XXXXXX";

static char *path_in_dir(const char *name)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);

	sprintf(p, "%s/%s", dir, name);
	return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* A config that is valid apart from what each test changes. */
static keel_config *base_config(const char *kernel)
{
	keel_config *cfg = keel_config_new(NULL);
	keel_boot_loader *bl = keel_linux_boot_loader_new(kernel, NULL);

	keel_config_set_boot_loader(cfg, bl);
	return cfg;
}

static void expect(keel_config *cfg, keel_error_code code, const char *needle)
{
	keel_error *err = NULL;

	CHECK(keel_config_validate(cfg, &err) == -1);
	CHECK_ERR(err, code, needle);
	/* Creating a VM from it fails with the same error. */
	CHECK(keel_vm_new(cfg, &err) == NULL);
	CHECK_ERR(err, code, needle);
	keel_config_free(cfg);
}

int main(void)
{
	keel_config *cfg;
	keel_error *err = NULL;
	char *notkernel, *missing, *big;
	char junk[4096];

	if (!mkdtemp(dir))
		return 1;
	notkernel = path_in_dir("notkernel");
	missing = path_in_dir("missing");
	big = path_in_dir("cmdline");
	memset(junk, 'x', sizeof(junk));
	write_file(notkernel, junk, sizeof(junk));

	/* Defaults reported by validation when no boot loader is set. */
	cfg = keel_config_new(&err);
	CHECK(cfg && !err);
	expect(cfg, KEEL_ERR_INVALID, "no boot loader");

	cfg = base_config(notkernel);
	keel_config_set_cpu_count(cfg, 0);
	expect(cfg, KEEL_ERR_INVALID, "CPU count is 0");

	cfg = base_config(notkernel);
	keel_config_set_cpu_count(cfg, 255);
	expect(cfg, KEEL_ERR_TOO_LARGE, "limit of 254");

	cfg = base_config(notkernel);
	keel_config_set_memory_size(cfg, 8ULL << 20);
	expect(cfg, KEEL_ERR_INVALID, "at least 16 MiB");

	cfg = base_config(notkernel);
	keel_config_set_memory_size(cfg, (128ULL << 20) + 4096);
	expect(cfg, KEEL_ERR_INVALID, "multiple of 1 MiB");

	cfg = base_config(notkernel);
	keel_config_set_memory_size(cfg, 1ULL << 50);
	expect(cfg, KEEL_ERR_TOO_LARGE, "exceeds keel's limit");

	cfg = base_config(notkernel);
	keel_config_set_hugepages(cfg, true);
	keel_config_set_memory_size(cfg, 129ULL << 20);
	expect(cfg, KEEL_ERR_INVALID, "2 MiB huge page");

	cfg = base_config(missing);
	expect(cfg, KEEL_ERR_NOT_FOUND, missing);

	cfg = base_config(dir);
	expect(cfg, KEEL_ERR_INVALID, "is a directory");

	cfg = base_config(notkernel);
	expect(cfg, KEEL_ERR_FORMAT, "not a kernel");

	cfg = base_config(notkernel);
	for (int i = 0; i < 5; i++)
		keel_config_add_serial_port(cfg, keel_serial_attachment_new_fds(-1, -1, NULL));
	expect(cfg, KEEL_ERR_TOO_LARGE, "more than 4 serial ports");

	/* Serial attachments check their descriptors at once. */
	CHECK(keel_serial_attachment_new_fds(999, -1, &err) == NULL);
	CHECK_ERR(err, KEEL_ERR_INVALID, "descriptor 999");
	CHECK(keel_serial_attachment_new_file("/nonexistent-dir/x", &err) == NULL);
	CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "/nonexistent-dir/x");
	CHECK(keel_linux_boot_loader_new("", &err) == NULL);
	CHECK_ERR(err, KEEL_ERR_INVALID, "no kernel path");

	unlink(notkernel);
	unlink(big);
	rmdir(dir);
	free(notkernel);
	free(missing);
	free(big);
	return test_exit();
}
