/* SPDX-License-Identifier: MIT */
/*
 * The configuration objects' internals (the public API hides them).  The
 * devices and back ends a configuration describes read these; only
 * config/ writes them.
 */
#ifndef KEEL_CONFIG_OBJECTS_H
#define KEEL_CONFIG_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/keel.h>

#define CFG_MAX_SERIAL 4
#define CFG_MAX_NICS 16
#define CFG_MAX_VIRTIO_MMIO 7  /* one free ISA interrupt line each */

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
	BOOT_EFI,
};

struct keel_boot_loader {
	enum boot_kind kind;
	char *kernel;           /* BOOT_LINUX */
	char *initrd;           /* NULL: none */
	char *cmdline;          /* never NULL */
	char *firmware;         /* BOOT_EFI: the code image (OVMF_CODE) */
	char *vars;             /* BOOT_EFI: the variable store; NULL: in RAM, from the template */
	char *vars_template;    /* BOOT_EFI without a store */
};

struct keel_efi_variable_store {
	char *path;
};

struct keel_storage_attachment {
	char *path;
	bool read_only;
	keel_sync_mode sync;
	keel_cache_mode cache;
	char *serial;           /* NULL: none */
};

enum storage_kind {
	STORAGE_VIRTIO_BLK,
};

struct keel_storage_device {
	enum storage_kind kind;
	struct keel_storage_attachment *att;
	unsigned int queues;    /* 0: one per vCPU */
	unsigned int poll_us;   /* busy-poll window, <= KEEL_BLK_POLL_MAX_US */
};

struct keel_entropy_device {
	uint64_t rate_limit;    /* bytes per second, 0: unlimited */
};

struct keel_console_device {
	struct keel_serial_attachment *att;
};

enum net_kind {
	NET_NAT,
	NET_TAP,
	NET_BRIDGED,
	NET_SOCKET,
	NET_UNIX,
};

struct net_forward {
	keel_net_protocol proto;
	char host_addr[16];     /* dotted quad */
	uint16_t host_port;
	uint16_t guest_port;
};

struct keel_network_attachment {
	enum net_kind kind;
	char *subnet;           /* NAT: "A.B.C.D/N", NULL: default */
	struct net_forward *forwards;   /* NAT */
	int nr_forwards;
	bool bad_forward;       /* a forward could not be recorded: validation says so */
	char *name;             /* TAP: interface; BRIDGED: bridge; UNIX: path */
	int fd;                 /* SOCKET: duplicated descriptor */
	keel_net_framing framing;
};

struct keel_network_device {
	struct keel_network_attachment *att;
	uint8_t mac[6];
	bool has_mac;
};

/* A growable array of device configurations. */
struct dev_list {
	void **items;
	int nr;
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
	struct dev_list disks;          /* struct keel_storage_device * */
	struct dev_list rngs;           /* struct keel_entropy_device * */
	struct dev_list consoles;       /* struct keel_console_device * */
	struct dev_list nics;           /* struct keel_network_device * */
	uint8_t machine_id[16];
	bool has_machine_id;
	keel_virtio_transport transport;
	bool alloc_failed;      /* a setter could not allocate: reported by validation */
	keel_log_cb log_cb;
	keel_log_level log_level;
	void *log_opaque;
	keel_sandbox_mode sandbox;
};

struct keel_config {
	struct vm_config c;
};

#endif
