/*
 * PCI enumeration guest: scan through mechanism 1 (and ECAM when the
 * command line has ecam=ADDR, comparing both), list the functions, check
 * BARs (assigned, aligned, no overlap with each other or RAM, sizing
 * leaves them unchanged), and for every virtio device: the modern vendor
 * capabilities, revision, MSI-X table/PBA placement, and a read through
 * the VIRTIO_PCI_CAP_PCI_CFG window. Checks only: no interrupts.
 * cmdline: virtio_devices=N (at least N virtio functions expected).
 */
#include <keel/kit.h>
#include <keel/pci.h>
#include <keel/virtio.h>

static const char *bar_kind(u8 t)
{
	switch (t) {
	case PCI_BAR_IO: return "io";
	case PCI_BAR_MEM32: return "mem32";
	case PCI_BAR_MEM64: return "mem64";
	}
	return "-";
}

static void list(void)
{
	int i, b;

	for (i = 0; i < pci_count(); i++) {
		struct pci_dev *d = pci_get(i);

		printf("%s %04x:%04x class %06x rev %u hdr %u\n", pci_name(d),
		       d->vendor, d->device, d->class_rev >> 8,
		       d->class_rev & 0xff, d->header_type);
		for (b = 0; b < 6; b++)
			if (d->bar[b].type != PCI_BAR_NONE)
				printf("    BAR%d %s%s %#llx size %#llx\n", b,
				       bar_kind(d->bar[b].type),
				       d->bar[b].prefetch ? " pf" : "",
				       d->bar[b].addr, d->bar[b].size);
	}
}

static void check_ecam(void)
{
	struct pci_dev copy[PCI_MAX_DEVS];
	int n1 = pci_count(), n2, i, bad = 0;
	u16 off;

	if (!pci_ecam_base()) {
		printf("note: no ecam= on the command line, ECAM not checked\n");
		return;
	}
	memcpy(copy, pci_get(0), n1 * sizeof(copy[0]));
	/* Same dwords through both mechanisms (0x00-0x3f, minus status). */
	for (i = 0; i < n1; i++) {
		u32 bdf = pci_bdf(&copy[i]);

		for (off = 0; off < 0x40; off += 4) {
			u32 a = pci_cf8_read32(bdf, off);
			u32 b = pci_ecam_read32(bdf, off);

			if (off == 4)
				a &= 0xffff, b &= 0xffff;
			if (a != b && !bad++)
				fail("ECAM vs 0xcf8 at %s+%#x: %#x vs %#x",
				     pci_name(&copy[i]), off, b, a);
		}
	}
	if (!bad)
		pass("ECAM at %#llx matches mechanism 1 for %d functions",
		     pci_ecam_base(), n1);
	for (i = 0; i < 32; i++) {	/* an empty slot on bus 0 */
		if ((pci_cf8_read32(i << 3, 0) & 0xffff) != 0xffff)
			continue;
		check(pci_ecam_read32(i << 3, 0) == 0xffffffff,
		      "ECAM: absent device reads all-ones", "00:%02x.0: %#x",
		      i, pci_ecam_read32(i << 3, 0));
		break;
	}
	/* Full rescan through ECAM (extended space reachable too). */
	pci_use_ecam(true);
	n2 = pci_scan();
	bad = n2 != n1;
	for (i = 0; !bad && i < n1; i++)
		bad = memcmp(&copy[i], pci_get(i), sizeof(copy[i])) != 0;
	check(!bad, "scan through ECAM equals scan through 0xcf8",
	      "%d vs %d functions", n2, n1);
	for (i = 0; i < n1; i++) {
		u32 v = pci_read32(pci_bdf(&copy[i]), 0x100);

		if (pci_find_cap(&copy[i], PCI_CAP_ID_EXP, 0))
			printf("%s: extended cap header %#x\n",
			       pci_name(&copy[i]), v);
	}
	pci_use_ecam(false);
}

static bool ram_overlap(u64 a, u64 size)
{
	int i;

	for (i = 0; i < memmap_count(); i++) {
		const struct mem_region *r = memmap_get(i);

		if (r->type == 1 && a < r->addr + r->size && r->addr < a + size)
			return true;
	}
	return false;
}

static void check_bars(void)
{
	int i, j, b, c, nbars = 0, bad = 0;

	for (i = 0; i < pci_count(); i++) {
		struct pci_dev *d = pci_get(i);
		u32 bdf = pci_bdf(d);

		for (b = 0; b < 6; b++) {
			struct pci_bar *x = &d->bar[b];
			u32 raw;

			if (x->type == PCI_BAR_NONE)
				continue;
			nbars++;
			raw = pci_read32(bdf, PCI_BAR0 + 4 * b);
			if ((raw & (x->type == PCI_BAR_IO ? ~3u : ~0xfu)) !=
			    (u32)x->addr) {
				fail("%s BAR%d changed by sizing: %#x, was %#llx",
				     pci_name(d), b, raw, x->addr);
				bad++;
			}
			if (!x->addr) {
				fail("%s BAR%d (%s, %#llx bytes) unassigned",
				     pci_name(d), b, bar_kind(x->type), x->size);
				bad++;
				continue;
			}
			if (x->size & (x->size - 1) || x->addr & (x->size - 1)) {
				fail("%s BAR%d %#llx size %#llx: not a naturally "
				     "aligned power of 2", pci_name(d), b,
				     x->addr, x->size);
				bad++;
			}
			if (x->type != PCI_BAR_IO && ram_overlap(x->addr, x->size)) {
				fail("%s BAR%d %#llx+%#llx overlaps RAM",
				     pci_name(d), b, x->addr, x->size);
				bad++;
			}
			for (j = 0; j <= i; j++) {
				struct pci_dev *e = pci_get(j);

				for (c = 0; c < 6; c++) {
					struct pci_bar *y = &e->bar[c];

					if ((j == i && c >= b) || !y->addr ||
					    (y->type == PCI_BAR_IO) !=
					    (x->type == PCI_BAR_IO))
						continue;
					if (x->addr < y->addr + y->size &&
					    y->addr < x->addr + x->size) {
						fail("%s BAR%d overlaps %s BAR%d",
						     pci_name(d), b, pci_name(e), c);
						bad++;
					}
				}
			}
		}
	}
	if (!bad)
		pass("%d BARs assigned, aligned, disjoint, off RAM, unchanged "
		     "by sizing", nbars);
}

static void check_msix(struct pci_dev *p)
{
	u32 bdf = pci_bdf(p);
	u8 pos = pci_find_cap(p, PCI_CAP_ID_MSIX, 0);
	u16 ctrl;
	u32 table, pba, n;
	const struct pci_bar *tb, *pb;

	if (!pos) {
		fail("%s: no MSI-X capability", pci_name(p));
		return;
	}
	ctrl = pci_read16(bdf, pos + 2);
	table = pci_read32(bdf, pos + 4);
	pba = pci_read32(bdf, pos + 8);
	n = (ctrl & 0x7ff) + 1;
	tb = &p->bar[table & 7];
	pb = &p->bar[pba & 7];
	if ((table & 7) > 5 || (pba & 7) > 5 || tb->type == PCI_BAR_NONE ||
	    tb->type == PCI_BAR_IO || pb->type == PCI_BAR_NONE ||
	    pb->type == PCI_BAR_IO) {
		fail("%s: MSI-X table BIR %u / PBA BIR %u not memory BARs",
		     pci_name(p), table & 7, pba & 7);
		return;
	}
	if ((table & ~7u) + 16 * n > tb->size ||
	    (pba & ~7u) + 8 * ((n + 63) / 64) > pb->size) {
		fail("%s: MSI-X table %#x (%u entries) or PBA %#x beyond BAR",
		     pci_name(p), table & ~7u, n, pba & ~7u);
		return;
	}
	if ((table & 7) == (pba & 7) &&
	    (table & ~7u) < (pba & ~7u) + 8 * ((n + 63) / 64) &&
	    (pba & ~7u) < (table & ~7u) + 16 * n) {
		fail("%s: MSI-X table and PBA overlap", pci_name(p));
		return;
	}
	check(!(ctrl & 0x8000), "MSI-X", "%s: %u vectors, table BAR%u+%#x, "
	      "PBA BAR%u+%#x, disabled", pci_name(p), n, table & 7,
	      table & ~7u, pba & 7, pba & ~7u);
}

/* Read common cfg device_feature (offset 4) through the pci-cfg window. */
static void check_cfg_window(struct virtio_dev *v)
{
	u32 bdf = pci_bdf(v->pci);
	u8 pos = v->cap_off[5];
	u8 bar;
	u32 off, direct, win;

	if (!pos) {
		fail("%s: no VIRTIO_PCI_CAP_PCI_CFG capability", v->name);
		return;
	}
	bar = pci_read8(bdf, v->cap_off[1] + 4);
	off = pci_read32(bdf, v->cap_off[1] + 8);
	*(volatile u32 *)phys_ptr(v->common) = 0;	/* device_feature_select */
	direct = *(volatile u32 *)phys_ptr(v->common + 4);
	pci_write8(bdf, pos + 4, bar);
	pci_write32(bdf, pos + 8, off + 4);
	pci_write32(bdf, pos + 12, 4);
	win = pci_read32(bdf, pos + 16);
	check(win == direct, "pci-cfg window read", "%s: device_feature[0] "
	      "%#x via window, %#x direct", v->name, win, direct);
}

static void check_virtio(struct virtio_dev *v)
{
	static const char *const names[] = {
		"", "common", "notify", "ISR", "device", "pci-cfg",
	};
	struct pci_dev *p = v->pci;
	u32 bdf = pci_bdf(p);
	u16 cmd;
	int t;

	for (t = 1; t <= 4; t++) {
		u8 pos = v->cap_off[t];
		u8 bar = pci_read8(bdf, pos + 4);
		u32 off = pci_read32(bdf, pos + 8), len = pci_read32(bdf, pos + 12);

		printf("%s: %s cap at %#x: BAR%u+%#x len %#x\n", v->name,
		       names[t], pos, bar, off, len);
	}
	pass("%s: modern capabilities present (notify multiplier %u)",
	     v->name, v->notify_mult);
	check(v->notify_mult % 2 == 0, "notify_off_multiplier even", "%u",
	      v->notify_mult);
	if (p->device >= 0x1040)
		check((p->class_rev & 0xff) >= 1, "modern device revision >= 1",
		      "%s: %u", v->name, p->class_rev & 0xff);
	cmd = pci_read16(bdf, PCI_COMMAND);
	check((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) ==
	      (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
	      "command register: memory + bus master enabled", "%s: %#x",
	      v->name, cmd);
	check_msix(p);
	check_cfg_window(v);
}

void test_main(void)
{
	u64 want = 0;
	int n, i, nv = 0;

	printf("keel pci\n");
	pci_use_ecam(false);
	n = pci_scan();
	check(n > 0, "PCI scan through 0xcf8", "%d functions", n);
	if (!n)
		return;
	check(pci_get(0)->bus == 0 && pci_get(0)->dev == 0 &&
	      (pci_get(0)->class_rev >> 8) == 0x060000, "host bridge at 00:00.0",
	      "class %06x", pci_get(0)->class_rev >> 8);
	list();
	check_ecam();
	check_bars();
	virtio_probe();
	for (i = 0; i < virtio_count(); i++) {
		struct virtio_dev *v = virtio_get(i);

		if (v->transport != VIRTIO_PCI)
			continue;
		nv++;
		check_virtio(v);
	}
	cmdline_u64("virtio_devices", &want);
	check((u64)nv >= want && nv > 0, "virtio-pci devices found",
	      "%d, expected at least %llu", nv, want);
}
