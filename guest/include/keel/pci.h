/*
 * PCI configuration access and enumeration for test guests (ring 3,
 * polled). Mechanism 1 (0xcf8/0xcfc) by default; ECAM when the command
 * line has ecam=ADDR (QEMU q35: 0xb0000000) or pci_ecam_enable() is called.
 */
#ifndef KEEL_PCI_H
#define KEEL_PCI_H

#include <keel/types.h>

#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_CLASS_REVISION	0x08
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SECONDARY_BUS	0x19
#define PCI_SUBSYSTEM_VENDOR_ID	0x2c
#define PCI_SUBSYSTEM_ID	0x2e
#define PCI_CAPABILITY_LIST	0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_INTERRUPT_PIN	0x3d

#define PCI_COMMAND_IO		0x1
#define PCI_COMMAND_MEMORY	0x2
#define PCI_COMMAND_MASTER	0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST	0x10

#define PCI_CAP_ID_MSI		0x05
#define PCI_CAP_ID_VNDR		0x09
#define PCI_CAP_ID_EXP		0x10
#define PCI_CAP_ID_MSIX		0x11

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	u64 addr;		/* as programmed (0: unassigned) */
	u64 size;		/* from sizing; 0: not implemented */
	u8 type;		/* enum pci_bar_type */
	bool prefetch;
};

struct pci_dev {
	u8 bus, dev, fn;
	u8 header_type;		/* without the multi-function bit */
	u16 vendor, device;
	u16 subsys_vendor, subsys_id;
	u32 class_rev;		/* class << 8 | revision */
	struct pci_bar bar[6];
};

#define PCI_MAX_DEVS 64

/* Configuration access; bdf = bus << 8 | dev << 3 | fn. */
u32 pci_bdf(const struct pci_dev *d);
u8 pci_read8(u32 bdf, u16 off);
u16 pci_read16(u32 bdf, u16 off);
u32 pci_read32(u32 bdf, u16 off);
void pci_write8(u32 bdf, u16 off, u8 v);
void pci_write16(u32 bdf, u16 off, u16 v);
void pci_write32(u32 bdf, u16 off, u32 v);

/* Mechanism-1 and ECAM accessors directly, whatever is selected. */
u32 pci_cf8_read32(u32 bdf, u16 off);
u32 pci_ecam_read32(u32 bdf, u16 off);

/* ECAM: base from cmdline ecam=; true if selected for pci_read*(). */
bool pci_ecam_enabled(void);
u64 pci_ecam_base(void);
void pci_use_ecam(bool on);	/* needs ecam= on the command line */

/*
 * Scan bus 0 and the secondary buses of bridges; BARs are sized (decoding
 * is turned off while sizing and the command register restored).
 * Returns the number of functions found; the table is kept by pci.c.
 */
int pci_scan(void);
int pci_count(void);
struct pci_dev *pci_get(int i);
struct pci_dev *pci_find(u16 vendor, u16 device, int nth);
const char *pci_name(const struct pci_dev *d);	/* "00:03.0" (static) */

/* Capability walk: offset of the next capability with this id after
 * 'after' (0: from the start), 0 if none. */
u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 after);

/* Enable memory and I/O decoding and bus mastering. */
void pci_enable(const struct pci_dev *d);

/* Map [addr, addr+len) of BAR bar: checks it is assigned, memory, large
 * enough, and mapped (above 4 GiB: extends the page tables). 0 + FAIL
 * line on error. I/O BARs return the port number. */
u64 pci_bar_region(const struct pci_dev *d, int bar, u64 off, u64 len,
		   const char *what);

#endif
