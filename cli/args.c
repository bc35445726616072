// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		"  -i, --initrd PATH        initial RAM disk\n"
		"  -a, --cmdline STRING     kernel command line\n"
		"  -s, --serial SPEC        next serial port (COM1..COM4): stdio, file:PATH, none\n"
		"                           (default: COM1 on stdio)\n"
		"      --on-reset ACTION    when the guest resets: stop (default) or restart\n"
		"      --hugepages          back guest RAM with 2 MiB huge pages\n"
		"  -h, --help               this text\n"
		"\n"
		"exit status: 0 guest powered off, 1 keel error, 2 usage error,\n"
		"             3 guest reset, 4 triple fault, 5 internal error, 6 stopped by signal\n");
}

uint64_t cli_parse_size(const char *s)
{
	unsigned long long v;
	char *end;
	uint64_t mul = 1ULL << 20;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'K': case 'k': mul = 1ULL << 10; end++; break;
	case 'M': case 'm': mul = 1ULL << 20; end++; break;
	case 'G': case 'g': mul = 1ULL << 30; end++; break;
	case 'T': case 't': mul = 1ULL << 40; end++; break;
	case '\0': break;
	default: return 0;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')    /* accept MiB, MB */
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v > UINT64_MAX / mul)
		return 0;
	return v * mul;
}

enum { OPT_ON_RESET = 256, OPT_HUGEPAGES };

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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(run, 0, sizeof(*run));
	run->cpus = 1;
	run->memory = 128ULL << 20;
	run->cmdline = "";
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:m:k:i:a:s:h", opts, NULL)) != -1) {
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
			run->memory = cli_parse_size(optarg);
			if (!run->memory) {
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
			if (strcmp(optarg, "stdio") && strcmp(optarg, "none") &&
			    strncmp(optarg, "file:", 5)) {
				fprintf(stderr, "keel: --serial '%s': expected stdio, file:PATH or none\n",
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
	if (!run->kernel) {
		fprintf(stderr, "keel: --kernel is required\n");
		return -1;
	}
	if (!run->nr_serial)
		run->serial[run->nr_serial++] = "stdio";
	return 0;
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
	bl = keel_linux_boot_loader_new(run->kernel, err);
	if (!bl)
		goto fail;
	keel_linux_boot_loader_set_initrd(bl, run->initrd);
	keel_linux_boot_loader_set_cmdline(bl, run->cmdline);
	keel_config_set_boot_loader(cfg, bl);
	for (int i = 0; i < run->nr_serial; i++) {
		const char *spec = run->serial[i];
		keel_serial_attachment *att;

		if (!strcmp(spec, "stdio"))
			att = keel_serial_attachment_new_stdio(err);
		else if (!strcmp(spec, "none"))
			att = keel_serial_attachment_new_fds(-1, -1, err);
		else
			att = keel_serial_attachment_new_file(spec + 5, err);
		if (!att)
			goto fail;
		keel_config_add_serial_port(cfg, att);
	}
	return cfg;
fail:
	keel_config_free(cfg);
	return NULL;
}
