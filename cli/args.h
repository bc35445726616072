/* SPDX-License-Identifier: MIT */
/* Command-line parsing for `keel`: flags to a keel_config. */
#ifndef KEEL_CLI_ARGS_H
#define KEEL_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <keel/keel.h>

#define CLI_MAX_SERIAL 4
#define CLI_MAX_DEVS 16

struct cli_run {
	unsigned int cpus;
	uint64_t memory;
	const char *kernel;
	bool efi;               /* --efi: UEFI firmware instead of a kernel */
	const char *firmware;   /* --firmware (NULL: Debian's OVMF) */
	const char *efi_vars;   /* --efi-vars: the variable store */
	bool efi_vars_create;   /* --efi-vars-create: make the store if it is missing */
	const char *initrd;
	const char *cmdline;
	const char *serial[CLI_MAX_SERIAL];
	int nr_serial;
	keel_reset_action on_reset;
	bool hugepages;
	const char *disks[CLI_MAX_DEVS];        /* --disk specs */
	int nr_disks;
	const char *consoles[CLI_MAX_DEVS];     /* --console specs */
	int nr_consoles;
	const char *nets[CLI_MAX_DEVS];         /* --net specs */
	int nr_nets;
	int nr_rngs;
	uint64_t rng_rate;
	keel_virtio_transport transport;
	int stop_timeout;       /* --stop-timeout: seconds after a stop request; 0: stop at once */
	keel_sandbox_mode sandbox;      /* --sandbox, --no-sandbox (default on) */
	const char *user;       /* --user: drop to this user once the VM is created */
	int stdio_in;           /* "stdio" reads this descriptor instead of stdin; -1: stdin */
};

/* Parses `keel run` flags (argv[0] is "run"); on error prints to stderr. */
int cli_parse_run(int argc, char **argv, struct cli_run *run);
/* Parses "512M", "2G", "1048576K" or plain MiB ("512") into *size; false if it is none. */
bool cli_parse_size(const char *s, uint64_t *size);
/*
 * A serial attachment from "stdio" (input from `stdio_in` when it is not
 * -1), "file:PATH", "socket:PATH" (waits for one client), "fd:N" (one
 * descriptor for both directions, inherited from the caller) or "none";
 * NULL and `msg` on error.
 */
keel_serial_attachment *cli_serial_attachment(const char *spec, int stdio_in, char *msg,
					      size_t msg_len);
/* A virtio-blk device from "PATH[,ro][,sync=...][,cache=...][,serial=...][,queues=N]". */
keel_storage_device *cli_disk(const char *spec, char *msg, size_t msg_len);
/*
 * A virtio-net device from "nat[,subnet=CIDR][,hostfwd=PROTO:[ADDR]:PORT-:PORT]...",
 * "tap=IFNAME", "bridge=BRIDGE", "unix=PATH" or "fd=N[,stream|dgram]", each
 * with an optional ",mac=XX:XX:XX:XX:XX:XX".  NULL and `msg` on error.
 */
keel_network_device *cli_net(const char *spec, char *msg, size_t msg_len);
/* Builds the configuration; errors come from the library. */
keel_config *cli_build_config(const struct cli_run *run, keel_error **err);
void cli_usage(FILE *stream);

#endif
