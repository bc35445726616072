/* SPDX-License-Identifier: MIT */
/*
 * PCI: a host bridge with configuration mechanism 1 (ports 0xcf8/0xcfc) and
 * an ECAM window, devices on bus 0 with keel-assigned BARs, capability
 * lists, and INTx.  A device embeds struct pci_dev and gives each BAR its
 * bus_dev_ops; config space is emulated here from `cfg` and `wmask`.
 */
#ifndef KEEL_PCI_PCI_H
#define KEEL_PCI_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "core/error.h"

struct devctx;
struct pci_dev;
struct pci_host;
struct msix;

#define PCI_CFG_SIZE   4096
#define PCI_NR_BARS    6
#define PCI_MAX_SLOTS  32
#define PCI_MAX_FNS    256      /* devfn: slot << 3 | function */

/* Config space offsets. */
#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_REVISION        0x08
#define PCI_CLASS_PROG      0x09
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_SUBSYS_VENDOR   0x2c
#define PCI_SUBSYS_ID       0x2e
#define PCI_CAP_PTR         0x34
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d

#define PCI_COMMAND_IO      0x1
#define PCI_COMMAND_MEMORY  0x2
#define PCI_COMMAND_MASTER  0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x8
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_VNDR     0x09
#define PCI_CAP_ID_MSIX     0x11

enum pci_bar_kind {
	PCI_BAR_NONE = 0,
	PCI_BAR_IO,
	PCI_BAR_MEM32,
	PCI_BAR_MEM64,          /* takes two BAR slots */
};

struct pci_bar {
	enum pci_bar_kind kind;
	uint64_t size;          /* power of two */
	uint64_t addr;          /* where the guest put it (keel assigns it first) */
	bool mapped;            /* claimed on the bus now */
	struct bus_dev region;  /* the device's handler; offsets are BAR-relative */
	struct pci_dev *dev;    /* handlers find their device: pci_bar_dev() */
};

struct pci_dev_ops {
	/* After a BAR was mapped at a new address or unmapped (ioeventfds). */
	void (*bar_remapped)(struct pci_dev *dev, int bar);
	/* After a config write that touched [off, off+len) (capabilities). */
	void (*config_written)(struct pci_dev *dev, uint32_t off, unsigned int len);
	/* Guest or VM reset of the function. */
	void (*reset)(struct pci_dev *dev);
};

struct pci_dev {
	struct devctx *ctx;
	struct pci_host *host;          /* set by pci_register() */
	const char *name;
	const struct pci_dev_ops *ops;
	uint8_t devfn;                  /* slot << 3 | function, on bus 0 */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];    /* guest-writable bits */
	uint8_t cfg_power_on[64];       /* header as created, for resets */
	struct pci_bar bar[PCI_NR_BARS];
	uint8_t last_cap;               /* offset of the last capability, 0: none */
	uint8_t next_cap;               /* where the next capability goes */
	unsigned int intx_gsi;          /* IOAPIC pin of INTA# */
	bool intx_level;
	struct msix *msix;
};

/* Identity and class; the device then adds BARs and capabilities. */
void pci_dev_init(struct pci_dev *dev, struct devctx *ctx, const char *name,
		  const struct pci_dev_ops *ops, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declares BAR `i` (size: power of two, at least 16 bytes / 4 for I/O). */
void pci_dev_set_bar(struct pci_dev *dev, int i, enum pci_bar_kind kind, uint64_t size,
		     const struct bus_dev_ops *ops);
/*
 * Appends a capability (`cap`, `len` bytes, starting with id and a next
 * byte that is filled in); `wmask` (may be NULL) gives writable bits.
 * Returns its offset, or 0 when config space is full.
 */
uint8_t pci_dev_add_cap(struct pci_dev *dev, const void *cap, const uint8_t *wmask, unsigned int len);
/*
 * Puts the device on bus 0: picks a free slot (function 0), assigns BARs
 * from keel's windows, routes INTA# and maps the BARs (decoding starts
 * disabled, as at power-on: the guest enables it through the command
 * register).
 */
int pci_register(struct pci_host *host, struct pci_dev *dev, keel_error **err);
/*
 * The same at a fixed `devfn`, without INTx (the board's own functions:
 * host bridge, chipset).  A multi-function device sets bit 7 of its
 * function 0's header type.
 */
int pci_register_fn(struct pci_host *host, struct pci_dev *dev, uint8_t devfn, keel_error **err);
void pci_unregister(struct pci_dev *dev);
/* Drives INTA# (level); ignored while the command register disables INTx. */
void pci_set_intx(struct pci_dev *dev, int level);
/* The device whose BAR `bd` (a BAR handler's argument) belongs to. */
struct pci_dev *pci_bar_dev(struct bus_dev *bd);
/* Guest address of BAR `i` while mapped, else 0. */
uint64_t pci_bar_addr(struct pci_dev *dev, int i);

/* Where keel puts BARs, and the ECAM window (size 0: none). */
struct pci_windows {
	uint64_t io_base, io_size;
	uint64_t mem_base, mem_size;
	uint64_t ecam_base, ecam_size;
};

/*
 * Config access (0xcf8/0xcfc with the reset control register 0xcf9, the
 * ECAM window) and BAR assignment for bus 0; it is one of the VM's devices
 * from then on (devctx_add).  The host bridge function itself (00:00.0) is
 * the board's, registered with pci_register_fn().
 */
struct pci_host *pci_host_create(struct devctx *ctx, const struct pci_windows *win,
				 keel_error **err);
/* A slot's INTx pin (0 = INTA#) and the IOAPIC pin (GSI) it drives. */
struct pci_intx_route {
	uint8_t slot;
	uint8_t pin;
	uint8_t gsi;
};
/* INTx routing of every function that has INTx; returns the count. */
int pci_intx_routes(struct pci_host *host, struct pci_intx_route *out, int max);
/* Config space access as the guest sees it (tests use it too). */
void pci_config_access(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t off,
		       void *data, unsigned int len, bool is_write);

#endif
