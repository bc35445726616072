// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "args.h"

void cli_usage(FILE *stream)
{
	fprintf(stream,
		"usage: keel run [options]\n"
		"       keel --help | --version\n"
		"\n"
		"Boots a virtual machine and runs it until the guest stops.\n"
		"\n"
		"options for run:\n"
		"  -c, --cpus N             virtual CPUs (default 1)\n"
		"  -m, --memory SIZE        guest RAM: 512M, 2G, or a number of MiB (default 128M)\n"
		"  -k, --kernel PATH        kernel: bzImage or PVH ELF (vmlinux)\n"
		"      --efi                boot UEFI firmware (Debian's OVMF) instead: it boots\n"
		"                           what the disks hold\n"
		"      --firmware PATH      with --efi: another UEFI firmware code image\n"
		"      --efi-vars PATH      with --efi: the variable store (NVRAM) file; without\n"
		"                           it, variables last for this run only\n"
		"      --efi-vars-create    make the store from the firmware's template when\n"
		"                           PATH does not exist yet\n"
		"  -i, --initrd PATH        initial RAM disk\n"
		"  -a, --cmdline STRING     kernel command line\n"
		"  -s, --serial SPEC        next serial port (COM1..COM4): stdio, file:PATH, none\n"
		"                           (default: COM1 on stdio)\n"
		"                           socket:PATH (keel listens on a Unix socket and waits\n"
		"                           for one client before starting), fd:N (an inherited\n"
		"                           descriptor for both directions)\n"
		"  -d, --disk SPEC          virtio-blk disk: PATH[,ro][,sync=full|data|none]\n"
		"                           [,cache=host|direct][,serial=STR][,queues=N][,poll=US]\n"
		"      --rng[=BYTES/S]      virtio-rng entropy device, optionally rate-limited\n"
		"      --console SPEC       virtio console (hvc0), SPEC as for --serial\n"
		"  -n, --net SPEC           virtio-net NIC, each SPEC optionally ,mac=XX:XX:XX:XX:XX:XX:\n"
		"                           nat[,subnet=A.B.C.D/N][,hostfwd=tcp|udp:[HOSTADDR]:PORT-:PORT]...\n"
		"                           tap=IFNAME  bridge=BRIDGE  unix=PATH  fd=N[,stream|dgram]\n"
		"      --virtio-transport T pci (default) or mmio (keel adds virtio_mmio.device=\n"
		"                           to the kernel command line)\n"
		"      --on-reset ACTION    when the guest resets: stop (default) or restart\n"
		"      --hugepages          back guest RAM with 2 MiB huge pages\n"
		"      --stop-timeout S     on SIGINT/SIGTERM (or Ctrl-A x on the console) keel\n"
		"                           presses the guest's ACPI power button; it stops the\n"
		"                           VM if the guest has not powered off after S seconds\n"
		"                           (default 30), at a second request, or at once when\n"
		"                           S is 0 or the guest does not listen; SIGHUP stops it\n"
		"      --sandbox[=MODE]     seccomp filters on keel's threads (docs/security.md):\n"
		"                           on (the default), log (a forbidden call is logged\n"
		"                           and fails with ENOSYS) or off; $KEEL_SANDBOX sets\n"
		"                           the default\n"
		"      --no-sandbox         the same as --sandbox=off\n"
		"      --user USER[:GROUP]  once the VM is created (devices open), run as\n"
		"                           USER (a name or a number) with only GROUP (default:\n"
		"                           USER's groups); keel exits if that fails\n"
		"  -h, --help               this text\n"
		"\n"
		"On a terminal, keys go to the guest; Ctrl-A h lists keel's commands.\n"
		"\n"
		"exit status: 0 guest powered off, 1 keel error, 2 usage error,\n"
		"             3 guest reset, 4 triple fault, 5 internal error, 6 stopped by keel\n"
		"             (signal or console), 7 guest halted (every vCPU stopped for good)\n");
}

bool cli_parse_size(const char *s, uint64_t *size)
{
	unsigned long long v;
	char *end;
	uint64_t mul = 1ULL << 20;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	switch (*end) {
	case 'K': case 'k': mul = 1ULL << 10; end++; break;
	case 'M': case 'm': mul = 1ULL << 20; end++; break;
	case 'G': case 'g': mul = 1ULL << 30; end++; break;
	case 'T': case 't': mul = 1ULL << 40; end++; break;
	case '\0': break;
	default: return false;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')    /* accept MiB, MB */
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v > UINT64_MAX / mul)
		return false;
	*size = v * mul;
	return true;
}

enum {
	OPT_ON_RESET = 256, OPT_HUGEPAGES, OPT_RNG, OPT_CONSOLE, OPT_TRANSPORT, OPT_STOP_TIMEOUT,
	OPT_SANDBOX, OPT_NO_SANDBOX, OPT_USER, OPT_EFI, OPT_FIRMWARE, OPT_EFI_VARS,
	OPT_EFI_VARS_CREATE,
};

/* "on", "log" or "off" (NULL: "on"); false for anything else. */
static bool parse_sandbox(const char *s, keel_sandbox_mode *mode)
{
	if (!s || !strcmp(s, "on"))
		*mode = KEEL_SANDBOX_ON;
	else if (!strcmp(s, "log"))
		*mode = KEEL_SANDBOX_LOG;
	else if (!strcmp(s, "off"))
		*mode = KEEL_SANDBOX_OFF;
	else
		return false;
	return true;
}

#define STOP_TIMEOUT_DEFAULT 30
#define STOP_TIMEOUT_MAX 86400

static bool serial_spec_ok(const char *spec)
{
	return !strcmp(spec, "stdio") || !strcmp(spec, "none") || !strncmp(spec, "file:", 5) ||
	       !strncmp(spec, "fd:", 3) || !strncmp(spec, "socket:", 7);
}

int cli_parse_run(int argc, char **argv, struct cli_run *run)
{
	static const struct option opts[] = {
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'a' },
		{ "serial", required_argument, NULL, 's' },
		{ "on-reset", required_argument, NULL, OPT_ON_RESET },
		{ "hugepages", no_argument, NULL, OPT_HUGEPAGES },
		{ "disk", required_argument, NULL, 'd' },
		{ "rng", optional_argument, NULL, OPT_RNG },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "virtio-transport", required_argument, NULL, OPT_TRANSPORT },
		{ "net", required_argument, NULL, 'n' },
		{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
		{ "sandbox", optional_argument, NULL, OPT_SANDBOX },
		{ "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
		{ "user", required_argument, NULL, OPT_USER },
		{ "efi", no_argument, NULL, OPT_EFI },
		{ "firmware", required_argument, NULL, OPT_FIRMWARE },
		{ "efi-vars", required_argument, NULL, OPT_EFI_VARS },
		{ "efi-vars-create", no_argument, NULL, OPT_EFI_VARS_CREATE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(run, 0, sizeof(*run));
	run->cpus = 1;
	run->memory = 128ULL << 20;
	run->cmdline = "";
	run->stop_timeout = STOP_TIMEOUT_DEFAULT;
	run->stdio_in = -1;
	run->sandbox = KEEL_SANDBOX_ON;
	if (getenv("KEEL_SANDBOX") && *getenv("KEEL_SANDBOX") &&
	    !parse_sandbox(getenv("KEEL_SANDBOX"), &run->sandbox)) {
		fprintf(stderr, "keel: KEEL_SANDBOX='%s': expected on, log or off\n",
			getenv("KEEL_SANDBOX"));
		return -1;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:m:k:i:a:s:d:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			errno = 0;
			run->cpus = (unsigned int)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-') {
				fprintf(stderr, "keel: --cpus '%s': not a number\n", optarg);
				return -1;
			}
			break;
		case 'm':
			/* 0 is a size: validation says what the minimum is. */
			if (!cli_parse_size(optarg, &run->memory)) {
				fprintf(stderr, "keel: --memory '%s': not a size (e.g. 512M, 2G)\n", optarg);
				return -1;
			}
			break;
		case 'k': run->kernel = optarg; break;
		case 'i': run->initrd = optarg; break;
		case 'a': run->cmdline = optarg; break;
		case 's':
			if (run->nr_serial == CLI_MAX_SERIAL) {
				fprintf(stderr, "keel: --serial given more than %d times (COM1-COM4)\n",
					CLI_MAX_SERIAL);
				return -1;
			}
			if (!serial_spec_ok(optarg)) {
				fprintf(stderr, "keel: --serial '%s': expected stdio, file:PATH, socket:PATH, fd:N or none\n",
					optarg);
				return -1;
			}
			run->serial[run->nr_serial++] = optarg;
			break;
		case OPT_ON_RESET:
			if (!strcmp(optarg, "stop")) {
				run->on_reset = KEEL_RESET_STOP;
			} else if (!strcmp(optarg, "restart")) {
				run->on_reset = KEEL_RESET_RESTART;
			} else {
				fprintf(stderr, "keel: --on-reset '%s': expected stop or restart\n", optarg);
				return -1;
			}
			break;
		case OPT_HUGEPAGES: run->hugepages = true; break;
		case 'd':
			if (run->nr_disks == CLI_MAX_DEVS) {
				fprintf(stderr, "keel: more than %d --disk options\n", CLI_MAX_DEVS);
				return -1;
			}
			run->disks[run->nr_disks++] = optarg;
			break;
		case OPT_RNG:
			run->nr_rngs = 1;
			if (optarg) {
				errno = 0;
				run->rng_rate = strtoull(optarg, &end, 10);
				if (errno || *end || !*optarg) {
					fprintf(stderr, "keel: --rng=%s: not a rate in bytes per second\n",
						optarg);
					return -1;
				}
			}
			break;
		case OPT_CONSOLE:
			if (!serial_spec_ok(optarg)) {
				fprintf(stderr, "keel: --console '%s': expected stdio, file:PATH, socket:PATH, fd:N or none\n",
					optarg);
				return -1;
			}
			if (run->nr_consoles == CLI_MAX_DEVS) {
				fprintf(stderr, "keel: more than %d --console options\n", CLI_MAX_DEVS);
				return -1;
			}
			run->consoles[run->nr_consoles++] = optarg;
			break;
		case 'n':
			if (run->nr_nets == CLI_MAX_DEVS) {
				fprintf(stderr, "keel: more than %d --net options\n", CLI_MAX_DEVS);
				return -1;
			}
			run->nets[run->nr_nets++] = optarg;
			break;
		case OPT_TRANSPORT:
			if (!strcmp(optarg, "pci")) {
				run->transport = KEEL_VIRTIO_PCI;
			} else if (!strcmp(optarg, "mmio")) {
				run->transport = KEEL_VIRTIO_MMIO;
			} else {
				fprintf(stderr, "keel: --virtio-transport '%s': expected pci or mmio\n",
					optarg);
				return -1;
			}
			break;
		case OPT_STOP_TIMEOUT: {
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 0 || v > STOP_TIMEOUT_MAX) {
				fprintf(stderr, "keel: --stop-timeout '%s': not a number of seconds from 0 to %d\n",
					optarg, STOP_TIMEOUT_MAX);
				return -1;
			}
			run->stop_timeout = (int)v;
			break;
		}
		case OPT_SANDBOX:
			if (!parse_sandbox(optarg, &run->sandbox)) {
				fprintf(stderr, "keel: --sandbox=%s: expected on, log or off\n", optarg);
				return -1;
			}
			break;
		case OPT_NO_SANDBOX:
			run->sandbox = KEEL_SANDBOX_OFF;
			break;
		case OPT_USER:
			run->user = optarg;
			break;
		case OPT_EFI: run->efi = true; break;
		case OPT_FIRMWARE: run->firmware = optarg; break;
		case OPT_EFI_VARS: run->efi_vars = optarg; break;
		case OPT_EFI_VARS_CREATE: run->efi_vars_create = true; break;
		case 'h':
			cli_usage(stdout);
			exit(0);
		default:
			cli_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "keel: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!run->efi && (run->firmware || run->efi_vars || run->efi_vars_create)) {
		fprintf(stderr, "keel: --firmware, --efi-vars and --efi-vars-create go with --efi\n");
		return -1;
	}
	if (run->efi_vars_create && !run->efi_vars) {
		fprintf(stderr, "keel: --efi-vars-create needs --efi-vars PATH\n");
		return -1;
	}
	if (run->efi && (run->kernel || run->initrd || *run->cmdline)) {
		fprintf(stderr, "keel: --efi boots what the disks hold: no --kernel, --initrd or --cmdline\n");
		return -1;
	}
	if (!run->kernel && !run->efi) {
		fprintf(stderr, "keel: --kernel (or --efi) is required\n");
		return -1;
	}
	if (!run->nr_serial)
		run->serial[run->nr_serial++] = "stdio";
	return 0;
}

/* An attachment for `opt`'s value; errors are printed naming the option. */
static keel_serial_attachment *serial_option(const char *opt, const char *spec, int stdio_in)
{
	char msg[512];
	keel_serial_attachment *att = cli_serial_attachment(spec, stdio_in, msg, sizeof(msg));

	if (!att)
		fprintf(stderr, "keel: %s '%s': %s\n", opt, spec, msg);
	return att;
}

/* --efi: the firmware and its variable store (opened, or made from the template on first use). */
static keel_boot_loader *efi_boot_loader(const struct cli_run *run, keel_error **err)
{
	keel_boot_loader *bl = keel_efi_boot_loader_new(run->firmware, err);
	keel_efi_variable_store *store = NULL;

	if (!bl || !run->efi_vars)
		return bl;
	if (run->efi_vars_create && access(run->efi_vars, F_OK) < 0 && errno == ENOENT) {
		/* Another firmware needs its own template: make the store with the API. */
		if (run->firmware && strcmp(run->firmware, KEEL_EFI_FIRMWARE))
			fprintf(stderr, "keel: --efi-vars-create uses Debian's template %s\n",
				KEEL_EFI_VARS_TEMPLATE);
		store = keel_efi_variable_store_create(run->efi_vars, NULL, false, err);
	} else {
		store = keel_efi_variable_store_open(run->efi_vars, err);
	}
	if (!store) {
		keel_boot_loader_free(bl);
		return NULL;
	}
	keel_efi_boot_loader_set_variable_store(bl, store);
	return bl;
}

keel_config *cli_build_config(const struct cli_run *run, keel_error **err)
{
	keel_config *cfg = keel_config_new(err);
	keel_boot_loader *bl;

	if (!cfg)
		return NULL;
	keel_config_set_cpu_count(cfg, run->cpus);
	keel_config_set_memory_size(cfg, run->memory);
	keel_config_set_hugepages(cfg, run->hugepages);
	keel_config_set_reset_action(cfg, run->on_reset);
	keel_config_set_sandbox(cfg, run->sandbox);
	bl = run->efi ? efi_boot_loader(run, err) : keel_linux_boot_loader_new(run->kernel, err);
	if (!bl)
		goto fail;
	keel_linux_boot_loader_set_initrd(bl, run->initrd);
	keel_linux_boot_loader_set_cmdline(bl, run->cmdline);
	keel_config_set_boot_loader(cfg, bl);
	keel_config_set_virtio_transport(cfg, run->transport);
	for (int i = 0; i < run->nr_serial; i++) {
		keel_serial_attachment *att = serial_option("--serial", run->serial[i], run->stdio_in);

		if (!att)
			goto usage;
		keel_config_add_serial_port(cfg, att);
	}
	for (int i = 0; i < run->nr_disks; i++) {
		char msg[256];
		keel_storage_device *dev = cli_disk(run->disks[i], msg, sizeof(msg));

		if (!dev) {
			fprintf(stderr, "keel: --disk '%s': %s\n", run->disks[i], msg);
			keel_config_free(cfg);
			*err = NULL;
			return NULL;
		}
		keel_config_add_storage_device(cfg, dev);
	}
	for (int i = 0; i < run->nr_nets; i++) {
		char msg[256];
		keel_network_device *nic = cli_net(run->nets[i], msg, sizeof(msg));

		if (!nic) {
			fprintf(stderr, "keel: --net '%s': %s\n", run->nets[i], msg);
			keel_config_free(cfg);
			*err = NULL;
			return NULL;
		}
		keel_config_add_network_device(cfg, nic);
	}
	for (int i = 0; i < run->nr_rngs; i++) {
		keel_entropy_device *rng = keel_virtio_entropy_device_new(err);

		if (!rng)
			goto fail;
		keel_virtio_entropy_device_set_rate_limit(rng, run->rng_rate);
		keel_config_add_entropy_device(cfg, rng);
	}
	for (int i = 0; i < run->nr_consoles; i++) {
		keel_serial_attachment *att = serial_option("--console", run->consoles[i],
							    run->stdio_in);
		keel_console_device *con;

		if (!att)
			goto usage;
		con = keel_virtio_console_device_new(att, err);
		if (!con)
			goto fail;
		keel_config_add_console_device(cfg, con);
	}
	return cfg;
usage:
	*err = NULL;            /* printed, naming the option */
fail:
	keel_config_free(cfg);
	return NULL;
}

/* Listens on a Unix stream socket at `path` and returns the first client. */
static int accept_one(const char *path, char *msg, size_t msg_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(msg, msg_len, "socket path '%s' is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
		snprintf(msg, msg_len, "cannot listen on '%s': %s", path, strerror(errno));
	} else {
		fprintf(stderr, "keel: waiting for a client on %s\n", path);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			snprintf(msg, msg_len, "accept on '%s': %s", path, strerror(errno));
	}
	if (lfd >= 0)
		close(lfd);
	unlink(path);
	return fd;
}

keel_serial_attachment *cli_serial_attachment(const char *spec, int stdio_in, char *msg,
					      size_t msg_len)
{
	keel_serial_attachment *att = NULL;
	keel_error *err = NULL;

	if (!strncmp(spec, "socket:", 7)) {
		int fd = accept_one(spec + 7, msg, msg_len);

		if (fd < 0)
			return NULL;
		att = keel_serial_attachment_new_fds(fd, fd, &err);
		close(fd);      /* the attachment holds its own duplicates */
	} else if (!strcmp(spec, "stdio")) {
		att = stdio_in >= 0 ? keel_serial_attachment_new_fds(stdio_in, STDOUT_FILENO, &err) :
				      keel_serial_attachment_new_stdio(&err);
	} else if (!strcmp(spec, "none")) {
		att = keel_serial_attachment_new_fds(-1, -1, &err);
	} else if (!strncmp(spec, "fd:", 3)) {
		char *end;
		long fd;

		errno = 0;
		fd = strtol(spec + 3, &end, 10);
		if (errno || *end || end == spec + 3 || fd < 0 || fd > 65535) {
			snprintf(msg, msg_len, "not a descriptor number");
			return NULL;
		}
		att = keel_serial_attachment_new_fds((int)fd, (int)fd, &err);
	} else {
		att = keel_serial_attachment_new_file(spec + 5, &err);
	}
	if (!att)
		snprintf(msg, msg_len, "%s", err ? keel_error_get_message(err) : "cannot be set up");
	keel_error_free(err);
	return att;
}

keel_storage_device *cli_disk(const char *spec, char *msg, size_t msg_len)
{
	char *copy = strdup(spec), *opt, *save = NULL;
	keel_storage_attachment *att = NULL;
	keel_storage_device *dev = NULL;
	unsigned long queues = 0, poll_us = KEEL_BLK_POLL_DEFAULT_US;
	keel_error *err = NULL;
	char *path;

	if (!copy) {
		snprintf(msg, msg_len, "out of memory");
		return NULL;
	}
	path = strtok_r(copy, ",", &save);
	if (!path) {
		snprintf(msg, msg_len, "no image path");
		goto out;
	}
	att = keel_disk_image_attachment_new(path, &err);
	if (!att) {
		snprintf(msg, msg_len, "%s", keel_error_get_message(err));
		goto out;
	}
	while ((opt = strtok_r(NULL, ",", &save))) {
		char *val = strchr(opt, '=');

		if (val)
			*val++ = '\0';
		if (!strcmp(opt, "ro") && !val) {
			keel_storage_attachment_set_read_only(att, true);
		} else if (!strcmp(opt, "sync") && val && !strcmp(val, "full")) {
			keel_storage_attachment_set_sync_mode(att, KEEL_SYNC_FULL);
		} else if (!strcmp(opt, "sync") && val &&
			   (!strcmp(val, "data") || !strcmp(val, "fsync"))) {
			/* "fsync": the old name of sync=data (fdatasync) */
			keel_storage_attachment_set_sync_mode(att, KEEL_SYNC_DATA);
		} else if (!strcmp(opt, "sync") && val && !strcmp(val, "none")) {
			keel_storage_attachment_set_sync_mode(att, KEEL_SYNC_NONE);
		} else if (!strcmp(opt, "cache") && val && !strcmp(val, "host")) {
			keel_storage_attachment_set_cache_mode(att, KEEL_CACHE_HOST);
		} else if (!strcmp(opt, "cache") && val && !strcmp(val, "direct")) {
			keel_storage_attachment_set_cache_mode(att, KEEL_CACHE_DIRECT);
		} else if (!strcmp(opt, "serial") && val) {
			keel_storage_attachment_set_serial(att, val);
		} else if (!strcmp(opt, "queues") && val) {
			char *end;

			errno = 0;
			queues = strtoul(val, &end, 10);
			if (errno || *end || !*val) {
				snprintf(msg, msg_len, "queues=%s: not a number", val);
				goto out;
			}
		} else if (!strcmp(opt, "poll") && val) {
			char *end;

			errno = 0;
			poll_us = strtoul(val, &end, 10);
			if (errno || *end || !*val || poll_us > KEEL_BLK_POLL_MAX_US) {
				snprintf(msg, msg_len, "poll=%s: not a number of microseconds from 0 to %d",
					 val, KEEL_BLK_POLL_MAX_US);
				goto out;
			}
		} else {
			snprintf(msg, msg_len,
				 "unknown option '%s%s%s' (expected ro, sync=full|data|none, cache=host|direct, serial=STR, queues=N, poll=US)",
				 opt, val ? "=" : "", val ? val : "");
			goto out;
		}
	}
	dev = keel_virtio_block_device_new(att, &err);
	att = NULL;
	if (!dev) {
		snprintf(msg, msg_len, "%s", keel_error_get_message(err));
		goto out;
	}
	keel_virtio_block_device_set_queues(dev, (unsigned int)queues);
	keel_virtio_block_device_set_poll_us(dev, (unsigned int)poll_us);
out:
	keel_storage_attachment_free(att);
	keel_error_free(err);
	free(copy);
	return dev;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return true;
}

static bool parse_port(const char *s, const char *end, uint16_t *port)
{
	unsigned long v = 0;

	if (s == end)
		return false;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return false;
	}
	*port = (uint16_t)v;
	return v != 0;
}

/* "tcp:[ADDR]:PORT-:PORT" (QEMU's hostfwd syntax; an empty ADDR is 127.0.0.1). */
static bool add_hostfwd(keel_network_attachment *att, const char *v)
{
	keel_net_protocol proto;
	const char *addr, *colon, *dash;
	char host[64];
	uint16_t hp, gp;

	if (!strncmp(v, "tcp:", 4))
		proto = KEEL_NET_TCP;
	else if (!strncmp(v, "udp:", 4))
		proto = KEEL_NET_UDP;
	else
		return false;
	addr = v + 4;
	colon = strchr(addr, ':');
	dash = colon ? strchr(colon, '-') : NULL;
	if (!colon || !dash || dash[1] != ':' || (size_t)(colon - addr) >= sizeof(host))
		return false;
	memcpy(host, addr, colon - addr);
	host[colon - addr] = '\0';
	if (!parse_port(colon + 1, dash, &hp) || !parse_port(dash + 2, dash + 2 + strlen(dash + 2), &gp))
		return false;
	keel_nat_attachment_add_port_forward(att, proto, *host ? host : NULL, hp, gp);
	return true;
}

keel_network_device *cli_net(const char *spec, char *msg, size_t msg_len)
{
	char *copy = strdup(spec), *opt, *save = NULL, *kind, *val;
	keel_network_attachment *att = NULL;
	keel_network_device *dev = NULL;
	keel_error *err = NULL;
	keel_net_framing framing = KEEL_NET_STREAM;
	uint8_t mac[6];
	bool has_mac = false;
	long fd = -1;

	if (!copy) {
		snprintf(msg, msg_len, "out of memory");
		return NULL;
	}
	kind = strtok_r(copy, ",", &save);
	val = kind ? strchr(kind, '=') : NULL;
	if (val)
		*val++ = '\0';
	if (!kind) {
		snprintf(msg, msg_len, "empty");
	} else if (!strcmp(kind, "nat") && !val) {
		att = keel_nat_attachment_new(&err);
	} else if (!strcmp(kind, "tap") && val) {
		att = keel_tap_attachment_new(val, &err);
	} else if (!strcmp(kind, "bridge") && val) {
		att = keel_bridged_attachment_new(val, &err);
	} else if (!strcmp(kind, "unix") && val) {
		att = keel_unix_socket_attachment_new(val, &err);
	} else if (!strcmp(kind, "fd") && val) {
		char *end;

		errno = 0;
		fd = strtol(val, &end, 10);
		if (errno || *end || end == val || fd < 0 || fd > 65535) {
			snprintf(msg, msg_len, "fd=%s: not a descriptor number", val);
			fd = -1;
		}
	} else {
		snprintf(msg, msg_len, "expected nat, tap=IFNAME, bridge=BRIDGE, unix=PATH or fd=N");
	}
	if (!att && !(kind && !strcmp(kind, "fd") && fd >= 0)) {
		if (err)
			snprintf(msg, msg_len, "%s", keel_error_get_message(err));
		goto out;
	}
	while ((opt = strtok_r(NULL, ",", &save))) {
		char *v = strchr(opt, '=');

		if (v)
			*v++ = '\0';
		if (!strcmp(opt, "mac") && v && parse_mac(v, mac)) {
			has_mac = true;
		} else if (att && !strcmp(kind, "nat") && !strcmp(opt, "hostfwd") && v) {
			if (!add_hostfwd(att, v)) {
				snprintf(msg, msg_len,
					 "hostfwd=%s: expected tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT", v);
				goto out;
			}
		} else if (att && !strcmp(kind, "nat") && !strcmp(opt, "subnet") && v) {
			keel_nat_attachment_set_subnet(att, v);
		} else if (!strcmp(kind, "fd") && !v && !strcmp(opt, "dgram")) {
			framing = KEEL_NET_DGRAM;
		} else if (!strcmp(kind, "fd") && !v && !strcmp(opt, "stream")) {
			framing = KEEL_NET_STREAM;
		} else {
			snprintf(msg, msg_len, "unknown or malformed option '%s%s%s'", opt,
				 v ? "=" : "", v ? v : "");
			goto out;
		}
	}
	if (!att) {
		att = keel_socket_attachment_new((int)fd, framing, &err);
		if (!att) {
			snprintf(msg, msg_len, "%s", keel_error_get_message(err));
			goto out;
		}
	}
	dev = keel_virtio_network_device_new(att, &err);
	att = NULL;
	if (!dev)
		snprintf(msg, msg_len, "%s", keel_error_get_message(err));
	else if (has_mac)
		keel_virtio_network_device_set_mac(dev, mac);
out:
	keel_network_attachment_free(att);
	keel_error_free(err);
	free(copy);
	return dev;
}
