/*
 * virtio-pci modern transport (virtio 1.x section 4.1): vendor-specific
 * capabilities locate the common, notify, ISR and device configuration
 * structures in memory BARs (identity-mapped; BARs above 4 GiB get
 * page-table entries from map_phys_range()).
 */
#include <keel/kit.h>
#include <keel/virtio.h>

/* struct virtio_pci_common_cfg */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX		0x10
#define CC_NUMQ		0x12
#define CC_STATUS	0x14
#define CC_CFGGEN	0x15
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOFF	0x1e
#define CC_Q_DESCLO	0x20
#define CC_Q_DESCHI	0x24
#define CC_Q_AVAILLO	0x28
#define CC_Q_AVAILHI	0x2c
#define CC_Q_USEDLO	0x30
#define CC_Q_USEDHI	0x34

static u8 rd8(u64 a) { return *(volatile u8 *)phys_ptr(a); }
static u16 rd16(u64 a) { return *(volatile u16 *)phys_ptr(a); }
static u32 rd32(u64 a) { return *(volatile u32 *)phys_ptr(a); }
static void wr8(u64 a, u8 v) { *(volatile u8 *)phys_ptr(a) = v; }
static void wr16(u64 a, u16 v) { *(volatile u16 *)phys_ptr(a) = v; }
static void wr32(u64 a, u32 v) { *(volatile u32 *)phys_ptr(a) = v; }

static u8 p_get_status(struct virtio_dev *d)
{
	return rd8(d->common + CC_STATUS);
}

static void p_set_status(struct virtio_dev *d, u8 s)
{
	wr8(d->common + CC_STATUS, s);
}

static u64 p_get_features(struct virtio_dev *d)
{
	u32 lo, hi;

	wr32(d->common + CC_DFSELECT, 0);
	lo = rd32(d->common + CC_DF);
	wr32(d->common + CC_DFSELECT, 1);
	hi = rd32(d->common + CC_DF);
	return (u64)hi << 32 | lo;
}

static void p_set_features(struct virtio_dev *d, u64 f)
{
	wr32(d->common + CC_GFSELECT, 0);
	wr32(d->common + CC_GF, f);
	wr32(d->common + CC_GFSELECT, 1);
	wr32(d->common + CC_GF, f >> 32);
}

static u16 p_queue_max(struct virtio_dev *d, u16 q)
{
	if (q >= rd16(d->common + CC_NUMQ))
		return 0;
	wr16(d->common + CC_Q_SELECT, q);
	return rd16(d->common + CC_Q_SIZE);
}

static bool p_queue_setup(struct virtio_dev *d, struct virtq *vq)
{
	u64 c = d->common, noff;

	wr16(c + CC_Q_SELECT, vq->index);
	if (rd16(c + CC_Q_ENABLE)) {
		fail("%s: queue %u enabled before set-up", d->name, vq->index);
		return false;
	}
	wr16(c + CC_Q_SIZE, vq->size);
	if (rd16(c + CC_Q_SIZE) != vq->size) {
		fail("%s: queue %u: size %u not taken (reads %u)", d->name,
		     vq->index, vq->size, rd16(c + CC_Q_SIZE));
		return false;
	}
	wr16(c + CC_Q_MSIX, 0xffff);	/* VIRTIO_MSI_NO_VECTOR: polled */
	wr32(c + CC_Q_DESCLO, (u64)(uintptr_t)vq->desc);
	wr32(c + CC_Q_DESCHI, (u64)(uintptr_t)vq->desc >> 32);
	wr32(c + CC_Q_AVAILLO, (u64)(uintptr_t)vq->avail);
	wr32(c + CC_Q_AVAILHI, (u64)(uintptr_t)vq->avail >> 32);
	wr32(c + CC_Q_USEDLO, (u64)(uintptr_t)vq->used);
	wr32(c + CC_Q_USEDHI, (u64)(uintptr_t)vq->used >> 32);
	noff = (u64)rd16(c + CC_Q_NOFF) * d->notify_mult;
	if (noff + 2 > d->notify_len) {
		fail("%s: queue %u notify offset %#llx beyond the notify "
		     "region (%#x bytes)", d->name, vq->index, noff,
		     d->notify_len);
		return false;
	}
	vq->notify_addr = d->notify_base + noff;
	vq->notify_io = d->notify_io;
	wr16(c + CC_Q_ENABLE, 1);
	if (rd16(c + CC_Q_ENABLE) != 1) {
		fail("%s: queue %u: queue_enable does not read back 1",
		     d->name, vq->index);
		return false;
	}
	return true;
}

static void p_notify(struct virtq *vq)
{
	if (vq->notify_io)
		outw(vq->notify_addr, vq->index);
	else
		wr16(vq->notify_addr, vq->index);
}

static u32 p_cfg_read(struct virtio_dev *d, u32 off, int size)
{
	if (off + size > d->devcfg_len)
		return 0;
	switch (size) {
	case 1: return rd8(d->devcfg + off);
	case 2: return rd16(d->devcfg + off);
	default: return rd32(d->devcfg + off);
	}
}

static void p_cfg_write(struct virtio_dev *d, u32 off, int size, u32 v)
{
	if (off + size > d->devcfg_len)
		return;
	switch (size) {
	case 1: wr8(d->devcfg + off, v); break;
	case 2: wr16(d->devcfg + off, v); break;
	default: wr32(d->devcfg + off, v); break;
	}
}

static u32 p_cfg_generation(struct virtio_dev *d)
{
	return rd8(d->common + CC_CFGGEN);
}

static u8 p_isr(struct virtio_dev *d)
{
	return rd8(d->isr_addr);
}

static const struct virtio_ops pci_ops = {
	.get_status = p_get_status,
	.set_status = p_set_status,
	.get_features = p_get_features,
	.set_features = p_set_features,
	.queue_max = p_queue_max,
	.queue_setup = p_queue_setup,
	.notify = p_notify,
	.cfg_read = p_cfg_read,
	.cfg_write = p_cfg_write,
	.cfg_generation = p_cfg_generation,
	.isr = p_isr,
};

/* Map one capability's region; 0 (after a FAIL line) on error. */
static u64 cap_region(struct virtio_dev *d, u8 pos, const char *what,
		      u64 min_len, u32 *len_out, bool *io)
{
	u32 bdf = pci_bdf(d->pci);
	u8 bar = pci_read8(bdf, pos + 4);
	u32 off = pci_read32(bdf, pos + 8), len = pci_read32(bdf, pos + 12);

	if (len < min_len) {
		fail("%s: %s capability length %#x < %#llx", d->name, what,
		     len, min_len);
		return 0;
	}
	if (len_out)
		*len_out = len;
	if (io)
		*io = bar < 6 && d->pci->bar[bar].type == PCI_BAR_IO;
	return pci_bar_region(d->pci, bar, off, len, what);
}

bool virtio_pci_attach(struct virtio_dev *d, struct pci_dev *p)
{
	static const char *const names[] = {
		"", "common", "notify", "ISR", "device", "pci-cfg",
	};
	u32 bdf = pci_bdf(p);
	u8 pos = 0;
	int t;

	memset(d, 0, sizeof(*d));
	d->ops = &pci_ops;
	d->transport = VIRTIO_PCI;
	d->pci = p;
	d->id = p->device >= 0x1040 ? p->device - 0x1040 : p->subsys_id;
	snprintf(d->name, sizeof(d->name), "virtio-pci %s", pci_name(p));
	while ((pos = pci_find_cap(p, PCI_CAP_ID_VNDR, pos))) {
		u8 type = pci_read8(bdf, pos + 3);

		if (type >= 1 && type <= 5 && !d->cap_off[type])
			d->cap_off[type] = pos;
	}
	for (t = 1; t <= 4; t++) {
		if (!d->cap_off[t]) {
			fail("%s: no %s configuration capability (modern "
			     "virtio-pci needs it)", d->name, names[t]);
			return false;
		}
	}
	pci_enable(p);
	d->common = cap_region(d, d->cap_off[1], "common cfg", 0x38, NULL, NULL);
	d->notify_base = cap_region(d, d->cap_off[2], "notify cfg", 2,
				    &d->notify_len, &d->notify_io);
	d->notify_mult = pci_read32(bdf, d->cap_off[2] + 16);
	d->isr_addr = cap_region(d, d->cap_off[3], "ISR cfg", 1, NULL, NULL);
	d->devcfg = cap_region(d, d->cap_off[4], "device cfg", 0, &d->devcfg_len,
			       NULL);
	if (!d->common || !d->notify_base || !d->isr_addr || !d->devcfg)
		return false;
	d->pci_num_queues = rd16(d->common + CC_NUMQ);
	return true;
}
