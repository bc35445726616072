/* SPDX-License-Identifier: MIT */
/*
 * keel - virtual machines over KVM, embeddable in any application.
 *
 * Conventions used by every function in this header:
 *  - Handles are opaque and created by a *_new() function, released by the
 *    matching *_free() (NULL is accepted by every *_free()).
 *  - Functions that can fail return 0 / a non-NULL pointer on success and
 *    -1 / NULL on failure.  Their last parameter is `keel_error **err`: when
 *    it is not NULL and the call fails, *err receives an error object that
 *    the caller releases with keel_error_free().  Pass NULL to ignore it.
 *  - Setters on a configuration never fail; everything is checked at once by
 *    keel_config_validate() (which keel_vm_new() calls too).
 *  - The library never prints and never exits the process, with one
 *    exception: a keel thread that breaks its sandbox filter (see
 *    keel_config_set_sandbox()) writes one line to stderr and, unless the
 *    sandbox is in log mode, ends the process.
 *  - Objects passed to an *_add_* / *_set_* function that takes ownership
 *    (documented per function) must not be used or freed by the caller
 *    afterwards.
 *
 * See docs/api.md for a guided tour.
 */
#ifndef KEEL_KEEL_H
#define KEEL_KEEL_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KEEL_API __attribute__((visibility("default")))
#else
#define KEEL_API
#endif

/* ------------------------------------------------------------------ errors */

typedef enum keel_error_code {
	KEEL_ERR_INVALID = 1,   /* a value is out of range or malformed */
	KEEL_ERR_NOT_FOUND,     /* a file or device does not exist */
	KEEL_ERR_IO,            /* reading or writing a file failed */
	KEEL_ERR_FORMAT,        /* a file is not in the expected format */
	KEEL_ERR_TOO_LARGE,     /* something does not fit (guest memory, limits) */
	KEEL_ERR_KVM,           /* KVM is missing, unusable or refused a request */
	KEEL_ERR_NOMEM,         /* the host is out of memory */
	KEEL_ERR_STATE,         /* the operation is not allowed in this state */
	KEEL_ERR_PERMISSION,    /* the host denied access */
	KEEL_ERR_UNSUPPORTED,   /* the host or keel lacks the feature */
	KEEL_ERR_GUEST,         /* the guest stopped abnormally (see message) */
} keel_error_code;

typedef struct keel_error keel_error;

KEEL_API keel_error_code keel_error_get_code(const keel_error *err);
/* Human-readable: what failed, which value, and why. */
KEEL_API const char *keel_error_get_message(const keel_error *err);
KEEL_API void keel_error_free(keel_error *err);

/* Library version as "MAJOR.MINOR.PATCH". */
KEEL_API const char *keel_version(void);

/* ----------------------------------------------------------------- logging */

typedef enum keel_log_level {
	KEEL_LOG_ERROR = 0,     /* a device or the VM failed; it may go on degraded */
	KEEL_LOG_WARNING,       /* the guest misprogrammed a device, a request failed */
	KEEL_LOG_INFO,
	KEEL_LOG_DEBUG,
} keel_log_level;

/*
 * Receives a VM's messages (one line, no newline), from any keel thread.
 * Without a callback keel logs nothing.  keel's threads (event, vCPU and
 * device I/O threads) run with 1 MiB stacks: callbacks must fit in that.
 */
typedef void (*keel_log_cb)(keel_log_level level, const char *msg, void *opaque);

/* ------------------------------------------------------- serial attachments */

/*
 * Where a serial port's bytes go and come from.  An attachment is owned by
 * whatever it is added to.
 */
typedef struct keel_serial_attachment keel_serial_attachment;

/* The process's standard input and output. */
KEEL_API keel_serial_attachment *keel_serial_attachment_new_stdio(keel_error **err);
/* Output appended to the file at `path` (created if missing); no input. */
KEEL_API keel_serial_attachment *keel_serial_attachment_new_file(const char *path,
								 keel_error **err);
/*
 * Input read from `in_fd` (-1 for none), output written to `out_fd` (-1 to
 * discard).  keel duplicates both descriptors; the caller keeps its own.
 */
KEEL_API keel_serial_attachment *keel_serial_attachment_new_fds(int in_fd, int out_fd,
								keel_error **err);
KEEL_API void keel_serial_attachment_free(keel_serial_attachment *att);

/* ------------------------------------------------------------ boot loaders */

typedef struct keel_boot_loader keel_boot_loader;

/*
 * Boots a Linux kernel, or anything that follows one of its boot protocols:
 * a bzImage (x86 boot protocol >= 2.12, 64-bit entry) or an ELF image with a
 * PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), such as an uncompressed vmlinux.
 * The format is recognised from the file's contents.
 */
KEEL_API keel_boot_loader *keel_linux_boot_loader_new(const char *kernel_path,
						      keel_error **err);
KEEL_API void keel_linux_boot_loader_set_initrd(keel_boot_loader *bl, const char *initrd_path);
KEEL_API void keel_linux_boot_loader_set_cmdline(keel_boot_loader *bl, const char *cmdline);
KEEL_API void keel_boot_loader_free(keel_boot_loader *bl);

/*
 * UEFI firmware: boots whatever the disks hold (GRUB, systemd-boot, Linux's
 * EFI stub, the UEFI shell) with stock OVMF, unmodified: its code image is
 * mapped read-only below 4 GiB and the vCPUs start from the architectural
 * reset state.  `firmware_path` NULL means Debian's OVMF
 * (KEEL_EFI_FIRMWARE, package `ovmf`); a missing one is reported with the
 * package to install.  Without a variable store the firmware's variables
 * live in RAM for that run, starting from Debian's template (a firmware of
 * your own needs a store).  The firmware's boot choices (BootOrder,
 * BootNext) are its own: keel never rewrites variables.
 */
#define KEEL_EFI_FIRMWARE       "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define KEEL_EFI_VARS_TEMPLATE  "/usr/share/OVMF/OVMF_VARS_4M.fd"
KEEL_API keel_boot_loader *keel_efi_boot_loader_new(const char *firmware_path, keel_error **err);

/*
 * The firmware's non-volatile variables (NVRAM), kept in a file between
 * runs, as Virtualization.framework's VZEFIVariableStore: the firmware sees
 * it as the flash it programs, every program or erase reaches the file
 * before the firmware sees it complete, and the file is locked against a
 * second VM while one runs.
 */
typedef struct keel_efi_variable_store keel_efi_variable_store;
/* An existing store: a firmware volume file made from a VARS template. */
KEEL_API keel_efi_variable_store *keel_efi_variable_store_open(const char *path, keel_error **err);
/*
 * Creates a store at `path` as a copy of `template_path` (NULL:
 * KEEL_EFI_VARS_TEMPLATE).  An existing file is an error
 * (KEEL_ERR_STATE) unless `allow_overwrite`.
 */
KEEL_API keel_efi_variable_store *keel_efi_variable_store_create(const char *path,
								 const char *template_path,
								 bool allow_overwrite,
								 keel_error **err);
KEEL_API void keel_efi_variable_store_free(keel_efi_variable_store *store);
/*
 * The store the firmware uses (takes ownership).  Its size must fit the
 * firmware (a 4 MiB OVMF build has a 528 KiB store: code and store fill the
 * flash); keel_config_validate() checks.
 */
KEEL_API void keel_efi_boot_loader_set_variable_store(keel_boot_loader *bl,
						      keel_efi_variable_store *store);

/* ------------------------------------------------------------------ storage */

/*
 * A storage device is a device type (virtio-blk now) plus an attachment
 * (where the data lives: a disk image file or a host block device now).
 */
typedef struct keel_storage_attachment keel_storage_attachment;
typedef struct keel_storage_device keel_storage_device;

/*
 * What a guest's FLUSH does to the image.  With FULL or DATA, data the guest
 * flushed survives a crash of keel or a power cut of the host; with NONE it
 * survives a crash of keel (it is in the host's page cache) but not the
 * host's (with KEEL_CACHE_HOST).
 */
typedef enum keel_sync_mode {
	KEEL_SYNC_FULL = 0,     /* fsync(): the data and all metadata (times too) on stable storage */
	KEEL_SYNC_DATA = 1,     /* fdatasync(): the data and what is needed to read it back */
	KEEL_SYNC_NONE = 2,     /* a guest flush does nothing (scratch disks) */
	/* The old name of KEEL_SYNC_DATA (it always issued fdatasync()). */
	KEEL_SYNC_FSYNC = KEEL_SYNC_DATA,
} keel_sync_mode;

typedef enum keel_cache_mode {
	KEEL_CACHE_HOST = 0,    /* through the host page cache */
	KEEL_CACHE_DIRECT,      /* O_DIRECT: bypasses the host page cache */
} keel_cache_mode;

/*
 * A raw disk image file or a host block device (/dev/...).  The image is
 * locked when the VM is created (shared lock if read-only, exclusive
 * otherwise), so two VMs cannot write one image.
 */
KEEL_API keel_storage_attachment *keel_disk_image_attachment_new(const char *path,
								 keel_error **err);
/*
 * Read-only: the guest sees a read-only disk (VIRTIO_BLK_F_RO) and its
 * writes fail with an I/O error.  It is not turned into a CD-ROM.
 */
KEEL_API void keel_storage_attachment_set_read_only(keel_storage_attachment *att, bool ro);
KEEL_API void keel_storage_attachment_set_sync_mode(keel_storage_attachment *att,
						    keel_sync_mode mode);
KEEL_API void keel_storage_attachment_set_cache_mode(keel_storage_attachment *att,
						     keel_cache_mode mode);
/* The disk's serial number as the guest reads it (at most 20 bytes). */
KEEL_API void keel_storage_attachment_set_serial(keel_storage_attachment *att,
						 const char *serial);
KEEL_API void keel_storage_attachment_free(keel_storage_attachment *att);

/* A virtio-blk disk over `att` (takes ownership of `att`). */
KEEL_API keel_storage_device *keel_virtio_block_device_new(keel_storage_attachment *att,
							   keel_error **err);
/* Request queues: 0 (default) means one per vCPU. */
KEEL_API void keel_virtio_block_device_set_queues(keel_storage_device *dev, unsigned int queues);
/*
 * Busy-poll window, in microseconds: when the disk's last request has
 * completed, its I/O thread watches the request queues this long, with the
 * guest's kicks suppressed, before it sleeps; a request the guest sends
 * within the window then costs no VM exit and no thread wake-up.  The
 * price is up to that much CPU time per idle period.  0 turns polling off;
 * the default is KEEL_BLK_POLL_DEFAULT_US; values above
 * KEEL_BLK_POLL_MAX_US are treated as that.
 */
#define KEEL_BLK_POLL_DEFAULT_US 50
#define KEEL_BLK_POLL_MAX_US 1000
KEEL_API void keel_virtio_block_device_set_poll_us(keel_storage_device *dev, unsigned int us);
KEEL_API void keel_storage_device_free(keel_storage_device *dev);

/* ------------------------------------------------------------ other devices */

/* virtio-rng: the guest's entropy comes from the host's getrandom(). */
typedef struct keel_entropy_device keel_entropy_device;
KEEL_API keel_entropy_device *keel_virtio_entropy_device_new(keel_error **err);
/* At most `bytes_per_second` (0, the default: unlimited). */
KEEL_API void keel_virtio_entropy_device_set_rate_limit(keel_entropy_device *dev,
							uint64_t bytes_per_second);
KEEL_API void keel_entropy_device_free(keel_entropy_device *dev);

/* virtio-console: one console port (hvc0 in Linux) over a serial attachment. */
typedef struct keel_console_device keel_console_device;
/* Takes ownership of `att`. */
KEEL_API keel_console_device *keel_virtio_console_device_new(keel_serial_attachment *att,
							     keel_error **err);
KEEL_API void keel_console_device_free(keel_console_device *dev);

/* --------------------------------------------------------------- networking */

/*
 * A network device is a device type (virtio-net) plus an attachment (where
 * its frames go): NAT through keel's embedded user-mode stack, a TAP device
 * (bridged networking), or a socket an application provides.
 */
typedef struct keel_network_attachment keel_network_attachment;
typedef struct keel_network_device keel_network_device;

typedef enum keel_net_protocol {
	KEEL_NET_TCP = 0,
	KEEL_NET_UDP,
} keel_net_protocol;

/*
 * NAT (libslirp): DHCP, DNS forwarding, the guest reaches the host's
 * network.  Default subnet 10.0.2.0/24: gateway .2, DNS .3, guest .15.
 */
KEEL_API keel_network_attachment *keel_nat_attachment_new(keel_error **err);
/* An IPv4 subnet as "A.B.C.D/N" (8 <= N <= 27); checked by validation. */
KEEL_API void keel_nat_attachment_set_subnet(keel_network_attachment *att, const char *cidr);
/*
 * Forwards `host_addr`:`host_port` (host_addr NULL: 127.0.0.1) to the
 * guest's `guest_port` (at its DHCP address).  Checked by validation
 * (duplicates, port 0); a host port in use fails at VM creation.
 */
KEEL_API void keel_nat_attachment_add_port_forward(keel_network_attachment *att,
						   keel_net_protocol proto, const char *host_addr,
						   uint16_t host_port, uint16_t guest_port);
/*
 * An existing TAP interface by name (needs CAP_NET_ADMIN to attach); a
 * missing one is an error (KEEL_ERR_NOT_FOUND) when the VM is created, not
 * created on the fly: use keel_bridged_attachment_new() for that.
 */
KEEL_API keel_network_attachment *keel_tap_attachment_new(const char *ifname, keel_error **err);
/*
 * Bridged: keel creates a TAP interface and adds it to the Linux bridge
 * `bridge` (needs CAP_NET_ADMIN; without it VM creation fails naming it).
 */
KEEL_API keel_network_attachment *keel_bridged_attachment_new(const char *bridge,
							      keel_error **err);
typedef enum keel_net_framing {
	KEEL_NET_DGRAM = 0,     /* one frame per datagram (SOCK_DGRAM/SEQPACKET) */
	KEEL_NET_STREAM,        /* 4-byte big-endian length, then the frame (QEMU -netdev stream, passt) */
} keel_net_framing;
/* A connected socket the application provides (keel duplicates `fd`). */
KEEL_API keel_network_attachment *keel_socket_attachment_new(int fd, keel_net_framing framing,
							     keel_error **err);
/* Connects to a Unix stream socket at `path` (e.g. passt) when the VM is created. */
KEEL_API keel_network_attachment *keel_unix_socket_attachment_new(const char *path,
								  keel_error **err);
KEEL_API void keel_network_attachment_free(keel_network_attachment *att);

/* A virtio-net device over `att` (takes ownership of `att`). */
KEEL_API keel_network_device *keel_virtio_network_device_new(keel_network_attachment *att,
							     keel_error **err);
/*
 * The MAC address.  Default: a locally administered address derived from
 * the machine identifier and the device's index, the same at every boot.
 */
KEEL_API void keel_virtio_network_device_set_mac(keel_network_device *dev, const uint8_t mac[6]);
KEEL_API void keel_network_device_free(keel_network_device *dev);

/* How virtio devices are attached to the machine. */
typedef enum keel_virtio_transport {
	KEEL_VIRTIO_PCI = 0,    /* virtio 1.x PCI devices with MSI-X (default) */
	KEEL_VIRTIO_MMIO,       /* virtio-mmio; keel adds virtio_mmio.device= to a Linux command line */
} keel_virtio_transport;

/* ----------------------------------------------------------- configuration */

typedef struct keel_config keel_config;

/* What the VM does when the guest resets itself (i8042 reset line, ...). */
typedef enum keel_reset_action {
	KEEL_RESET_STOP = 0,    /* the VM stops; keel_vm_wait() reports the reset */
	KEEL_RESET_RESTART,     /* the VM reboots from its boot loader */
} keel_reset_action;

/* Defaults: 1 vCPU, 128 MiB, no boot loader, no serial port, reset stops. */
KEEL_API keel_config *keel_config_new(keel_error **err);
KEEL_API void keel_config_free(keel_config *cfg);

KEEL_API void keel_config_set_cpu_count(keel_config *cfg, unsigned int count);
/* Bytes; a multiple of 1 MiB, at least 16 MiB. */
KEEL_API void keel_config_set_memory_size(keel_config *cfg, uint64_t bytes);
/* Back guest RAM with 2 MiB huge pages (memfd MFD_HUGETLB). */
KEEL_API void keel_config_set_hugepages(keel_config *cfg, bool enable);
/* Takes ownership of `bl` (and frees any previous boot loader). */
KEEL_API void keel_config_set_boot_loader(keel_config *cfg, keel_boot_loader *bl);
/*
 * Adds the next legacy serial port: COM1 (0x3f8, IRQ 4), COM2 (0x2f8, IRQ 3),
 * COM3 (0x3e8, IRQ 4), COM4 (0x2e8, IRQ 3).  Takes ownership of `att`.  A
 * fifth port is reported by keel_config_validate().
 */
KEEL_API void keel_config_add_serial_port(keel_config *cfg, keel_serial_attachment *att);
KEEL_API void keel_config_set_reset_action(keel_config *cfg, keel_reset_action action);
/* Each takes ownership of the device.  Devices appear in the order added. */
KEEL_API void keel_config_add_storage_device(keel_config *cfg, keel_storage_device *dev);
KEEL_API void keel_config_add_entropy_device(keel_config *cfg, keel_entropy_device *dev);
KEEL_API void keel_config_add_console_device(keel_config *cfg, keel_console_device *dev);
KEEL_API void keel_config_set_virtio_transport(keel_config *cfg, keel_virtio_transport t);
KEEL_API void keel_config_add_network_device(keel_config *cfg, keel_network_device *dev);
/*
 * 16 bytes identifying the machine across boots (like a DMI UUID); default
 * derived from the kernel path.  Default MAC addresses derive from it.
 */
KEEL_API void keel_config_set_machine_identifier(keel_config *cfg, const uint8_t id[16]);
/* Messages of VMs created from this configuration up to `max_level`. */
KEEL_API void keel_config_set_log_callback(keel_config *cfg, keel_log_cb cb,
					   keel_log_level max_level, void *opaque);

/*
 * The sandbox (docs/security.md): once set up, each of keel's threads runs
 * under a seccomp filter that allows only the system calls its kind of
 * thread needs (vCPU, event loop, block I/O, network, NAT), with
 * PR_SET_NO_NEW_PRIVS.  A thread that makes any other call is caught by
 * keel's SIGSYS handler (installed once per process, when the first VM
 * with the sandbox on is created; the application must not use SIGSYS
 * then), which writes one line naming the thread and the call to stderr:
 *
 *   keel: sandbox: keel-vcpu0 called openat (257), which its filter forbids; killing the process
 *
 * With KEEL_SANDBOX_ON the process then exits with status 128 + SIGSYS
 * (159); with KEEL_SANDBOX_LOG the call fails with ENOSYS and the thread
 * goes on (for finding what a filter lacks, never for production).
 *
 * Filters apply to keel's threads only, never to the application's.  But
 * application callbacks that keel calls on its threads (the log callback
 * on any keel thread, the state callback on the event thread) run under
 * that thread's filter: they may use memory, locks, write to descriptors
 * already open and call keel functions on a VM, but must not open files or
 * sockets or start threads.  From such a thread keel_vm_new(),
 * keel_vm_set_network_attachment(), keel_config_validate() and
 * keel_serial_attachment_new_file() fail with KEEL_ERR_STATE, and
 * keel_vm_start() works only from the event thread (a state callback).
 *
 * Off by default in the library (an application may not want a filter in
 * its own process); the keel command turns it on.  Rings of io_uring (disk
 * I/O) are restricted to the operations keel uses; with the sandbox on,
 * a kernel without io_uring restrictions (before Linux 5.10) makes VM
 * creation with a disk fail with KEEL_ERR_UNSUPPORTED.
 */
typedef enum keel_sandbox_mode {
	KEEL_SANDBOX_OFF = 0,   /* no filters (the library's default) */
	KEEL_SANDBOX_ON,        /* a forbidden call ends the process */
	KEEL_SANDBOX_LOG,       /* a forbidden call is logged and fails with ENOSYS */
} keel_sandbox_mode;

KEEL_API void keel_config_set_sandbox(keel_config *cfg, keel_sandbox_mode mode);

/*
 * Checks the whole configuration against this host: KVM present and usable,
 * CPU count within KVM's limit, memory size bounds and alignment, kernel and
 * initrd present, readable and of a recognised format, command line length,
 * disk images present, readable (and writable unless read-only), of a size
 * that is a multiple of 512 bytes, memory within this host's RAM and swap
 * and within the guest physical address bits KVM offers, a known sandbox
 * mode and (unless it is off) seccomp filters in this kernel.
 * Reports the first problem found.
 */
KEEL_API int keel_config_validate(const keel_config *cfg, keel_error **err);

/* --------------------------------------------------------------------- VMs */

typedef struct keel_vm keel_vm;

typedef enum keel_vm_state {
	KEEL_VM_STOPPED = 0,    /* created and not started, or ended */
	KEEL_VM_STARTING,
	KEEL_VM_RUNNING,
	KEEL_VM_PAUSED,
	KEEL_VM_STOPPING,
	KEEL_VM_ERROR,          /* ended with an error (see keel_vm_wait()) */
} keel_vm_state;

/* Why a VM ended. */
typedef enum keel_stop_reason {
	KEEL_STOP_NONE = 0,     /* has not ended */
	KEEL_STOP_POWEROFF,     /* the guest powered the machine off */
	KEEL_STOP_RESET,        /* the guest reset the machine (reset action: stop) */
	KEEL_STOP_TRIPLE_FAULT, /* a vCPU shut down (triple fault) */
	KEEL_STOP_INTERNAL_ERROR, /* KVM could not run the guest; see the message */
	KEEL_STOP_REQUESTED,    /* keel_vm_stop() was called */
	KEEL_STOP_HALTED,       /* every vCPU halted with interrupts off: nothing can wake it */
} keel_stop_reason;

KEEL_API const char *keel_vm_state_name(keel_vm_state state);
KEEL_API const char *keel_stop_reason_name(keel_stop_reason reason);

/*
 * Creates a VM from a configuration (validated first; the same error is
 * returned if it is invalid).  The configuration is copied: the caller may
 * change or free it afterwards.  The VM is created in KEEL_VM_STOPPED.
 */
KEEL_API keel_vm *keel_vm_new(const keel_config *cfg, keel_error **err);
/* Stops the VM if it is running, then releases everything. */
KEEL_API void keel_vm_free(keel_vm *vm);

/* STOPPED -> STARTING -> RUNNING.  A VM that ended can be started again. */
KEEL_API int keel_vm_start(keel_vm *vm, keel_error **err);
/* RUNNING -> PAUSED: all vCPUs stopped; devices keep their state. */
KEEL_API int keel_vm_pause(keel_vm *vm, keel_error **err);
/* PAUSED -> RUNNING. */
KEEL_API int keel_vm_resume(keel_vm *vm, keel_error **err);
/*
 * Forced stop (like pulling the power cord): STOPPING, then STOPPED with
 * KEEL_STOP_REQUESTED; returns once every vCPU has left the guest.  A VM
 * that already ended (STOPPED or ERROR, e.g. the guest reset it first)
 * fails with KEEL_ERR_STATE.  A guest-initiated end goes straight from
 * RUNNING to STOPPED or ERROR.
 */
KEEL_API int keel_vm_stop(keel_vm *vm, keel_error **err);
/*
 * Asks the guest to shut down, like pressing a PC's power button: sets the
 * ACPI fixed power button event and raises the SCI, then returns at once.
 * A guest that acts on it powers off (keel_vm_wait() reports
 * KEEL_STOP_POWEROFF).  Fails with KEEL_ERR_STATE when the VM is not
 * running or the guest cannot be asked: its ACPI has not enabled the power
 * button event (no ACPI driver, acpi=off, no button driver).  Linux turns
 * the event into a KEY_POWER input event: something in user space (systemd
 * logind, acpid) must act on it.
 */
KEEL_API int keel_vm_request_stop(keel_vm *vm, keel_error **err);

KEEL_API keel_vm_state keel_vm_get_state(keel_vm *vm);

/*
 * Called on every state change, from keel's event thread for this VM (never
 * from the caller's thread, never with keel locks held: the callback may
 * call any keel function except keel_vm_free()).  Replaces a previous one;
 * NULL removes it.
 */
typedef void (*keel_vm_state_cb)(keel_vm *vm, keel_vm_state state, void *opaque);
KEEL_API void keel_vm_set_state_callback(keel_vm *vm, keel_vm_state_cb cb, void *opaque);

/*
 * A descriptor that becomes readable whenever the state changed, for event
 * loops (poll/epoll).  Reading 8 bytes from it clears it.  Owned by the VM.
 */
KEEL_API int keel_vm_get_state_fd(keel_vm *vm);

/*
 * Waits until the VM ends (timeout_ms < 0: forever; 0: just look) and
 * returns its stop reason, or KEEL_STOP_NONE if it has not ended in time.
 * If `err` is not NULL and the VM ended abnormally (triple fault, internal
 * error) *err receives the details: registers and instruction bytes.
 */
KEEL_API keel_stop_reason keel_vm_wait(keel_vm *vm, int timeout_ms, keel_error **err);

/* --------------------------------------------------- devices of a running VM */

/*
 * Network devices are numbered from 0 in the order they were added.  These
 * work in any state; on a running VM the guest sees a link change, not a
 * new device.
 */
/* Replaces device `index`'s attachment (takes ownership of `att`). */
KEEL_API int keel_vm_set_network_attachment(keel_vm *vm, unsigned int index,
					    keel_network_attachment *att, keel_error **err);
/* Link up or down, as the guest sees it (VIRTIO_NET_S_LINK_UP). */
KEEL_API int keel_vm_set_network_link(keel_vm *vm, unsigned int index, bool up,
				      keel_error **err);
/* Port forwards of a NAT attachment, while it is attached. */
KEEL_API int keel_vm_add_port_forward(keel_vm *vm, unsigned int index, keel_net_protocol proto,
				      const char *host_addr, uint16_t host_port,
				      uint16_t guest_port, keel_error **err);
KEEL_API int keel_vm_remove_port_forward(keel_vm *vm, unsigned int index,
					 keel_net_protocol proto, const char *host_addr,
					 uint16_t host_port, keel_error **err);
/* Frames the device dropped because they were malformed (oversized, bad header). */
KEEL_API int keel_vm_get_network_stats(keel_vm *vm, unsigned int index, uint64_t *tx_frames,
				       uint64_t *rx_frames, uint64_t *dropped, keel_error **err);

#ifdef __cplusplus
}
#endif

#endif
