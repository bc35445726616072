/*
 * PCI enumeration for test guests: mechanism 1 and ECAM configuration
 * access, bus scan (bus 0 and bridges' secondary buses), BAR sizing and
 * the capability list. Ring 3 with IOPL=3; polled, no interrupts.
 */
#include <keel/kit.h>
#include <keel/pci.h>

static struct pci_dev devs[PCI_MAX_DEVS];
static int ndevs;
static int ecam_state;		/* 0 unknown, 1 on, 2 off */
static u64 ecam_base;

static void ecam_probe(void)
{
	if (ecam_state)
		return;
	ecam_state = 2;
	if (!cmdline_u64("ecam", &ecam_base) ||
	    !map_phys_range(ecam_base, 256ULL << 20))
		ecam_base = 0;
	if (ecam_base)
		ecam_state = 1;
}

bool pci_ecam_enabled(void)
{
	ecam_probe();
	return ecam_state == 1;
}

u64 pci_ecam_base(void)
{
	ecam_probe();
	return ecam_base;
}

void pci_use_ecam(bool on)
{
	ecam_probe();
	if (ecam_base)
		ecam_state = on ? 1 : 2;
}

u32 pci_bdf(const struct pci_dev *d)
{
	return (u32)d->bus << 8 | d->dev << 3 | d->fn;
}

static u32 cf8_addr(u32 bdf, u16 off)
{
	return 0x80000000u | bdf << 8 | (off & 0xfc);
}

static u64 ecam_addr(u32 bdf, u16 off)
{
	return ecam_base + ((u64)bdf << 12) + (off & 0xfff);
}

u32 pci_cf8_read32(u32 bdf, u16 off)
{
	outl(0xcf8, cf8_addr(bdf, off));
	return inl(0xcfc);
}

u32 pci_ecam_read32(u32 bdf, u16 off)
{
	ecam_probe();
	if (!ecam_base)
		return 0xffffffff;
	return *(volatile u32 *)phys_ptr(ecam_addr(bdf, off & ~3));
}

/* Sized accesses as Linux does them: 0xcfc + (off & 3), or ECAM. */
u8 pci_read8(u32 bdf, u16 off)
{
	if (pci_ecam_enabled())
		return *(volatile u8 *)phys_ptr(ecam_addr(bdf, off));
	if (off >= 256)
		return 0xff;
	outl(0xcf8, cf8_addr(bdf, off));
	return inb(0xcfc + (off & 3));
}

u16 pci_read16(u32 bdf, u16 off)
{
	if (pci_ecam_enabled())
		return *(volatile u16 *)phys_ptr(ecam_addr(bdf, off));
	if (off >= 256)
		return 0xffff;
	outl(0xcf8, cf8_addr(bdf, off));
	return inw(0xcfc + (off & 2));
}

u32 pci_read32(u32 bdf, u16 off)
{
	if (pci_ecam_enabled())
		return pci_ecam_read32(bdf, off);
	if (off >= 256)
		return 0xffffffff;
	return pci_cf8_read32(bdf, off);
}

void pci_write8(u32 bdf, u16 off, u8 v)
{
	if (pci_ecam_enabled()) {
		*(volatile u8 *)phys_ptr(ecam_addr(bdf, off)) = v;
		return;
	}
	outl(0xcf8, cf8_addr(bdf, off));
	outb(0xcfc + (off & 3), v);
}

void pci_write16(u32 bdf, u16 off, u16 v)
{
	if (pci_ecam_enabled()) {
		*(volatile u16 *)phys_ptr(ecam_addr(bdf, off)) = v;
		return;
	}
	outl(0xcf8, cf8_addr(bdf, off));
	outw(0xcfc + (off & 2), v);
}

void pci_write32(u32 bdf, u16 off, u32 v)
{
	if (pci_ecam_enabled()) {
		*(volatile u32 *)phys_ptr(ecam_addr(bdf, off & ~3)) = v;
		return;
	}
	outl(0xcf8, cf8_addr(bdf, off));
	outl(0xcfc, v);
}

static void size_bars(struct pci_dev *d)
{
	u32 bdf = pci_bdf(d);
	int nbars = d->header_type == 0 ? 6 : d->header_type == 1 ? 2 : 0;
	u16 cmd = pci_read16(bdf, PCI_COMMAND);
	int i;

	/* No decoding while a BAR holds all-ones. */
	pci_write16(bdf, PCI_COMMAND,
		    cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	for (i = 0; i < nbars; i++) {
		u16 off = PCI_BAR0 + 4 * i;
		struct pci_bar *b = &d->bar[i];
		u32 lo = pci_read32(bdf, off), szlo, hi = 0, szhi = 0;
		u64 mask;

		pci_write32(bdf, off, 0xffffffff);
		szlo = pci_read32(bdf, off);
		pci_write32(bdf, off, lo);
		if (lo & 1) {
			b->type = PCI_BAR_IO;
			b->addr = lo & ~3u;
			mask = szlo & ~3u;
			if (mask)
				mask |= 0xffff0000u;	/* 16-bit decoders */
			b->size = mask ? (u32)(~mask + 1) : 0;
			if (!mask)
				b->type = PCI_BAR_NONE;
			continue;
		}
		b->prefetch = lo & 8;
		if ((lo & 6) == 4 && i + 1 < nbars) {
			hi = pci_read32(bdf, off + 4);
			pci_write32(bdf, off + 4, 0xffffffff);
			szhi = pci_read32(bdf, off + 4);
			pci_write32(bdf, off + 4, hi);
			b->type = PCI_BAR_MEM64;
			b->addr = ((u64)hi << 32) | (lo & ~0xfu);
			mask = ((u64)szhi << 32) | (szlo & ~0xfu);
			b->size = mask ? ~mask + 1 : 0;
			if (!mask)
				b->type = PCI_BAR_NONE;
			i++;	/* upper half */
			continue;
		}
		b->addr = lo & ~0xfu;
		mask = szlo & ~0xfu;
		b->type = mask ? PCI_BAR_MEM32 : PCI_BAR_NONE;
		b->size = mask ? (u32)(~(u32)mask + 1) : 0;
	}
	pci_write16(bdf, PCI_COMMAND, cmd);
}

static void scan_bus(u8 bus, int depth)
{
	int dev, fn;

	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			u32 bdf = (u32)bus << 8 | dev << 3 | fn;
			u32 id = pci_read32(bdf, PCI_VENDOR_ID);
			u8 ht;
			struct pci_dev *d;

			if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
				if (fn == 0)
					break;
				continue;
			}
			ht = pci_read8(bdf, PCI_HEADER_TYPE);
			if (ndevs < PCI_MAX_DEVS) {
				d = &devs[ndevs++];
				memset(d, 0, sizeof(*d));
				d->bus = bus;
				d->dev = dev;
				d->fn = fn;
				d->vendor = id;
				d->device = id >> 16;
				d->header_type = ht & 0x7f;
				d->class_rev = pci_read32(bdf, PCI_CLASS_REVISION);
				if (d->header_type == 0) {
					d->subsys_vendor = pci_read16(bdf, PCI_SUBSYSTEM_VENDOR_ID);
					d->subsys_id = pci_read16(bdf, PCI_SUBSYSTEM_ID);
				}
				size_bars(d);
			}
			if ((ht & 0x7f) == 1 && depth < 8) {
				u8 sec = pci_read8(bdf, PCI_SECONDARY_BUS);

				if (sec > bus)
					scan_bus(sec, depth + 1);
			}
			if (fn == 0 && !(ht & 0x80))
				break;	/* single-function device */
		}
	}
}

int pci_scan(void)
{
	ndevs = 0;
	scan_bus(0, 0);
	return ndevs;
}

int pci_count(void)
{
	return ndevs;
}

struct pci_dev *pci_get(int i)
{
	return i >= 0 && i < ndevs ? &devs[i] : NULL;
}

struct pci_dev *pci_find(u16 vendor, u16 device, int nth)
{
	int i;

	for (i = 0; i < ndevs; i++)
		if (devs[i].vendor == vendor && devs[i].device == device &&
		    nth-- == 0)
			return &devs[i];
	return NULL;
}

const char *pci_name(const struct pci_dev *d)
{
	static char buf[4][16];
	static int n;
	char *b = buf[n++ & 3];

	snprintf(b, 16, "%02x:%02x.%x", d->bus, d->dev, d->fn);
	return b;
}

u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 after)
{
	u32 bdf = pci_bdf(d);
	u8 pos;
	int guard = 48;

	if (!(pci_read16(bdf, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	pos = after ? pci_read8(bdf, after + 1) : pci_read8(bdf, PCI_CAPABILITY_LIST);
	while ((pos &= ~3) && pos >= 0x40 && guard--) {
		if (pci_read8(bdf, pos) == id)
			return pos;
		pos = pci_read8(bdf, pos + 1);
	}
	return 0;
}

void pci_enable(const struct pci_dev *d)
{
	u32 bdf = pci_bdf(d);
	u16 cmd = pci_read16(bdf, PCI_COMMAND);
	int i;

	for (i = 0; i < 6; i++) {
		if (d->bar[i].type == PCI_BAR_IO)
			cmd |= PCI_COMMAND_IO;
		else if (d->bar[i].type != PCI_BAR_NONE)
			cmd |= PCI_COMMAND_MEMORY;
	}
	pci_write16(bdf, PCI_COMMAND, cmd | PCI_COMMAND_MASTER);
}

u64 pci_bar_region(const struct pci_dev *d, int bar, u64 off, u64 len,
		   const char *what)
{
	const struct pci_bar *b;

	if (bar < 0 || bar > 5) {
		fail("%s %s: bad BAR index %d", pci_name(d), what, bar);
		return 0;
	}
	b = &d->bar[bar];
	if (b->type == PCI_BAR_NONE || !b->size) {
		fail("%s %s: BAR%d not implemented", pci_name(d), what, bar);
		return 0;
	}
	if (!b->addr) {
		fail("%s %s: BAR%d unassigned (the VMM must assign BARs)",
		     pci_name(d), what, bar);
		return 0;
	}
	if (off + len > b->size || off + len < off) {
		fail("%s %s: %#llx+%#llx beyond BAR%d size %#llx", pci_name(d),
		     what, off, len, bar, b->size);
		return 0;
	}
	if (b->type != PCI_BAR_IO && !map_phys_range(b->addr + off, len)) {
		fail("%s %s: cannot map BAR%d at %#llx", pci_name(d), what, bar,
		     b->addr);
		return 0;
	}
	return b->addr + off;
}
