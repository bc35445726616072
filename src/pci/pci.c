// SPDX-License-Identifier: MIT
/* PCI bus 0: host bridge, config mechanism 1 and ECAM, BAR decoding, INTx. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/devctx.h"
#include "core/le.h"
#include "core/util.h"
#include "kvm/kvm.h"
#include "pci/msix.h"
#include "pci/pci.h"

#define CF8_ENABLE      0x80000000U
#define RST_CNT_RESET   0x04    /* port 0xcf9: reset CPU */
#define INTX_FIRST_GSI  16      /* IOAPIC pins 16-23 take the PCI INTx lines */

struct pci_host {
	struct vdev vdev;
	struct devctx *ctx;
	pthread_mutex_t lock;           /* config space of every device */
	uint32_t cf8;
	struct pci_dev *fn[PCI_MAX_FNS];        /* bus 0, by devfn */
	struct pci_windows win;
	uint64_t mmio_next, io_next;    /* BAR allocation cursors */
	struct bus_dev cf8_dev, cfc_dev, ecam_dev;
};


void pci_dev_init(struct pci_dev *dev, struct devctx *ctx, const char *name,
		  const struct pci_dev_ops *ops, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(dev, 0, sizeof(*dev));
	dev->ctx = ctx;
	dev->name = name;
	dev->ops = ops;
	put_le16(dev->cfg + PCI_VENDOR_ID, vendor);
	put_le16(dev->cfg + PCI_DEVICE_ID, device);
	dev->cfg[PCI_REVISION] = revision;
	dev->cfg[PCI_CLASS_PROG] = class_code & 0xff;
	put_le16(dev->cfg + PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	put_le16(dev->cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	put_le16(dev->cfg + PCI_SUBSYS_ID, subsys_id);
	put_le16(dev->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
					 PCI_COMMAND_INTX_DISABLE);
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->next_cap = 0x40;
}

void pci_dev_set_bar(struct pci_dev *dev, int i, enum pci_bar_kind kind, uint64_t size,
		     const struct bus_dev_ops *ops)
{
	struct pci_bar *bar = &dev->bar[i];
	uint64_t mask = ~(size - 1);
	uint8_t *w = dev->wmask + PCI_BAR0 + 4 * i;

	bar->kind = kind;
	bar->size = size;
	bar->dev = dev;
	bar->region.ops = ops;
	bar->region.name = dev->name;
	switch (kind) {
	case PCI_BAR_IO:
		dev->cfg[PCI_BAR0 + 4 * i] = 0x1;
		put_le32(w, (uint32_t)mask & 0xfffffffc);
		break;
	case PCI_BAR_MEM32:
		put_le32(w, (uint32_t)mask & 0xfffffff0);
		break;
	case PCI_BAR_MEM64:
		dev->cfg[PCI_BAR0 + 4 * i] = 0x4;
		put_le32(w, (uint32_t)mask & 0xfffffff0);
		put_le32(w + 4, (uint32_t)(mask >> 32));
		break;
	case PCI_BAR_NONE:
		break;
	}
}

uint8_t pci_dev_add_cap(struct pci_dev *dev, const void *cap, const uint8_t *wmask, unsigned int len)
{
	uint8_t off = dev->next_cap;

	if (len < 2 || off + len > 0x100)
		return 0;
	memcpy(dev->cfg + off, cap, len);
	dev->cfg[off + 1] = 0;
	if (wmask)
		memcpy(dev->wmask + off, wmask, len);
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = off;
	else
		dev->cfg[PCI_CAP_PTR] = off;
	put_le16(dev->cfg + PCI_STATUS, get_le16(dev->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->last_cap = off;
	dev->next_cap = (uint8_t)((off + len + 3) & ~3);
	return off;
}

static uint64_t bar_cfg_addr(const struct pci_dev *dev, int i)
{
	uint32_t lo = get_le32(dev->cfg + PCI_BAR0 + 4 * i);

	switch (dev->bar[i].kind) {
	case PCI_BAR_IO:
		return lo & ~0x3U;
	case PCI_BAR_MEM32:
		return lo & ~0xfU;
	case PCI_BAR_MEM64:
		return (lo & ~0xfULL) | ((uint64_t)get_le32(dev->cfg + PCI_BAR0 + 4 * i + 4) << 32);
	default:
		return 0;
	}
}

/* Claims or releases BAR `i` on its bus to match the command register and BAR value. */
static void bar_update(struct pci_dev *dev, int i)
{
	struct pci_bar *bar = &dev->bar[i];
	bool io = bar->kind == PCI_BAR_IO;
	uint16_t cmd = get_le16(dev->cfg + PCI_COMMAND);
	bool decode = cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
	uint64_t addr = bar_cfg_addr(dev, i);
	struct bus *bus = io ? dev->ctx->pio : dev->ctx->mmio;
	bool valid = addr && addr + bar->size > addr && (!io || addr + bar->size <= 0x10000);

	if (bar->mapped && decode && valid && addr == bar->addr)
		return;
	if (!bar->mapped && !(decode && valid))
		return;
	if (bar->mapped) {
		bus_del(bus, &bar->region);
		bar->mapped = false;
	}
	if (decode && valid) {
		keel_error *err = NULL;

		if (bus_add(bus, &bar->region, addr, bar->size, &err) == 0) {
			bar->mapped = true;
			bar->addr = addr;
		} else {
			/* The guest may park a BAR on another claim; it just won't decode. */
			log_msg(&dev->ctx->log, KEEL_LOG_WARNING, "%s: BAR%d not mapped: %s", dev->name, i,
			       keel_error_get_message(err));
			keel_error_free(err);
		}
	}
	if (dev->ops && dev->ops->bar_remapped)
		dev->ops->bar_remapped(dev, i);
}

static void bars_update(struct pci_dev *dev)
{
	for (int i = 0; i < PCI_NR_BARS; i++)
		if (dev->bar[i].kind != PCI_BAR_NONE)
			bar_update(dev, i);
}

struct pci_dev *pci_bar_dev(struct bus_dev *bd)
{
	return container_of(bd, struct pci_bar, region)->dev;
}

uint64_t pci_bar_addr(struct pci_dev *dev, int i)
{
	return dev->bar[i].mapped ? dev->bar[i].addr : 0;
}

static void intx_apply(struct pci_dev *dev)
{
	bool disabled = get_le16(dev->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	uint16_t status = get_le16(dev->cfg + PCI_STATUS) & ~PCI_STATUS_INTERRUPT;

	if (dev->intx_level)
		status |= PCI_STATUS_INTERRUPT;
	put_le16(dev->cfg + PCI_STATUS, status);
	if (dev->intx_gsi)
		kvm_irq_line(dev->ctx->kvm, dev->intx_gsi, dev->intx_level && !disabled);
}

void pci_set_intx(struct pci_dev *dev, int level)
{
	struct pci_host *host = dev->host;

	pthread_mutex_lock(&host->lock);
	if (dev->intx_level != !!level) {
		dev->intx_level = !!level;
		intx_apply(dev);
	}
	pthread_mutex_unlock(&host->lock);
}

static void dev_config_write(struct pci_dev *dev, uint32_t off, const uint8_t *data,
			     unsigned int len)
{
	for (unsigned int i = 0; i < len; i++) {
		uint8_t m = dev->wmask[off + i];

		dev->cfg[off + i] = (dev->cfg[off + i] & ~m) | (data[i] & m);
	}
	if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND) {
		bars_update(dev);
		intx_apply(dev);
	}
	for (int i = 0; i < PCI_NR_BARS; i++) {
		uint32_t b = PCI_BAR0 + 4 * i;
		uint32_t end = b + (dev->bar[i].kind == PCI_BAR_MEM64 ? 8 : 4);

		if (dev->bar[i].kind != PCI_BAR_NONE && off < end && off + len > b)
			bar_update(dev, i);
	}
	if (off + len > 0x40) {
		if (dev->msix)
			msix_config_written(dev, off, len);
		if (dev->ops && dev->ops->config_written)
			dev->ops->config_written(dev, off, len);
	}
}

void pci_config_access(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t off,
		       void *data, unsigned int len, bool is_write)
{
	struct pci_dev *dev;

	/* Naturally aligned accesses of 1, 2 or 4 bytes; anything else is dropped. */
	if ((len != 1 && len != 2 && len != 4) || (off & (len - 1)) || off + len > PCI_CFG_SIZE) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&host->lock);
	dev = bus == 0 ? host->fn[devfn] : NULL;
	if (!dev) {
		if (!is_write)
			memset(data, 0xff, len);
	} else if (is_write) {
		dev_config_write(dev, off, data, len);
	} else {
		memcpy(data, dev->cfg + off, len);
	}
	pthread_mutex_unlock(&host->lock);
}

/* ---- config mechanism 1 (0xcf8/0xcfc) and the reset control register (0xcf9) ---- */

static void cf8_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct pci_host *host = container_of(bd, struct pci_host, cf8_dev);
	uint32_t v;

	pthread_mutex_lock(&host->lock);
	v = host->cf8;
	pthread_mutex_unlock(&host->lock);
	if (len == 4 && off == 0)
		memcpy(data, &v, 4);
	else
		memset(data, off == 1 && len == 1 ? 0 : 0xff, len);
}

static void cf8_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct pci_host *host = container_of(bd, struct pci_host, cf8_dev);

	if (len == 4 && off == 0) {
		pthread_mutex_lock(&host->lock);
		memcpy(&host->cf8, data, 4);
		pthread_mutex_unlock(&host->lock);
	} else if (len == 1 && off == 1 && (*(const uint8_t *)data & RST_CNT_RESET)) {
		devctx_request_stop(host->ctx, KEEL_STOP_RESET, NULL);
	}
}

static void cfc_access(struct bus_dev *bd, uint64_t off, void *data, unsigned int len,
		       bool is_write)
{
	struct pci_host *host = container_of(bd, struct pci_host, cfc_dev);
	uint32_t cf8;

	pthread_mutex_lock(&host->lock);
	cf8 = host->cf8;
	pthread_mutex_unlock(&host->lock);
	if (!(cf8 & CF8_ENABLE)) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_config_access(host, (cf8 >> 16) & 0xff, (cf8 >> 8) & 0xff,
			  (cf8 & 0xfc) + (uint32_t)off, data, len, is_write);
}

static void cfc_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	cfc_access(bd, off, data, len, false);
}

static void cfc_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	cfc_access(bd, off, (void *)data, len, true);
}

static void ecam_access(struct bus_dev *bd, uint64_t off, void *data, unsigned int len,
			bool is_write)
{
	struct pci_host *host = container_of(bd, struct pci_host, ecam_dev);

	pci_config_access(host, (uint8_t)(off >> 20), (uint8_t)(off >> 12), off & 0xfff, data,
			  len, is_write);
}

static void ecam_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	ecam_access(bd, off, data, len, false);
}

static void ecam_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	ecam_access(bd, off, (void *)data, len, true);
}

static const struct bus_dev_ops cf8_ops = { .read = cf8_read, .write = cf8_write };
static const struct bus_dev_ops cfc_ops = { .read = cfc_read, .write = cfc_write };
static const struct bus_dev_ops ecam_ops = { .read = ecam_read, .write = ecam_write };

/* ---- device registration ---- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int assign_bars(struct pci_host *host, struct pci_dev *dev, keel_error **err)
{
	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *bar = &dev->bar[i];
		uint64_t addr, *next, end;
		uint8_t *reg = dev->cfg + PCI_BAR0 + 4 * i;

		if (bar->kind == PCI_BAR_NONE)
			continue;
		if (bar->kind == PCI_BAR_IO) {
			next = &host->io_next;
			end = host->win.io_base + host->win.io_size;
			addr = align_up(*next, bar->size);
		} else {
			next = &host->mmio_next;
			end = host->win.mem_base + host->win.mem_size;
			/* Page-aligned at least, so BARs never share a page. */
			addr = align_up(*next, bar->size > 4096 ? bar->size : 4096);
		}
		if (addr + bar->size > end)
			return err_set(err, KEEL_ERR_TOO_LARGE,
				       "%s: no room for BAR%d (%llu bytes) in the PCI %s window",
				       dev->name, i, (unsigned long long)bar->size,
				       bar->kind == PCI_BAR_IO ? "I/O" : "MMIO");
		*next = addr + bar->size;
		put_le32(reg, (get_le32(reg) & (bar->kind == PCI_BAR_IO ? 0x3 : 0xf)) | (uint32_t)addr);
		if (bar->kind == PCI_BAR_MEM64)
			put_le32(reg + 4, (uint32_t)(addr >> 32));
		bar->addr = addr;
	}
	return 0;
}

/* With host->lock held: puts `dev` at `devfn` with BARs from the windows. */
static int place(struct pci_host *host, struct pci_dev *dev, uint8_t devfn, keel_error **err)
{
	if (assign_bars(host, dev, err) < 0)
		return -1;
	dev->devfn = devfn;
	dev->host = host;
	memcpy(dev->cfg_power_on, dev->cfg, sizeof(dev->cfg_power_on));
	host->fn[devfn] = dev;
	return 0;
}

int pci_register(struct pci_host *host, struct pci_dev *dev, keel_error **err)
{
	int slot = -1, ret;

	pthread_mutex_lock(&host->lock);
	for (int i = 0; i < PCI_MAX_SLOTS && slot < 0; i++) {
		slot = i;
		for (int f = 0; f < 8; f++)
			if (host->fn[i << 3 | f])
				slot = -1;
	}
	if (slot < 0) {
		pthread_mutex_unlock(&host->lock);
		return err_set(err, KEEL_ERR_TOO_LARGE, "%s: PCI bus 0 is full (%d slots)", dev->name,
			       PCI_MAX_SLOTS);
	}
	if (slot) {
		dev->intx_gsi = INTX_FIRST_GSI + slot % 8;
		dev->cfg[PCI_INTERRUPT_PIN] = 1;        /* INTA# */
		dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)dev->intx_gsi;
	}
	ret = place(host, dev, (uint8_t)(slot << 3), err);
	pthread_mutex_unlock(&host->lock);
	return ret;
}

int pci_register_fn(struct pci_host *host, struct pci_dev *dev, uint8_t devfn, keel_error **err)
{
	int ret;

	pthread_mutex_lock(&host->lock);
	if (host->fn[devfn]) {
		pthread_mutex_unlock(&host->lock);
		return err_set(err, KEEL_ERR_INVALID, "%s: PCI 00:%02x.%u is taken by %s", dev->name,
			       devfn >> 3, devfn & 7, host->fn[devfn]->name);
	}
	ret = place(host, dev, devfn, err);
	pthread_mutex_unlock(&host->lock);
	return ret;
}

void pci_unregister(struct pci_dev *dev)
{
	struct pci_host *host = dev->host;

	if (!host)
		return;
	pthread_mutex_lock(&host->lock);
	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *bar = &dev->bar[i];

		if (bar->mapped)
			bus_del(bar->kind == PCI_BAR_IO ? dev->ctx->pio : dev->ctx->mmio, &bar->region);
		bar->mapped = false;
	}
	if (host->fn[dev->devfn] == dev)
		host->fn[dev->devfn] = NULL;
	pthread_mutex_unlock(&host->lock);
	dev->host = NULL;
}

/* Back to the header as created, decoding off: what a PCI reset does. */
static void pci_dev_reset(struct pci_dev *dev)
{
	memcpy(dev->cfg, dev->cfg_power_on, sizeof(dev->cfg_power_on));
	bars_update(dev);
	dev->intx_level = false;
	intx_apply(dev);
	if (dev->msix)
		msix_reset(dev);
	if (dev->ops && dev->ops->reset)
		dev->ops->reset(dev);
}

static void pci_host_reset(struct vdev *vd)
{
	struct pci_host *host = container_of(vd, struct pci_host, vdev);

	pthread_mutex_lock(&host->lock);
	host->cf8 = 0;
	for (int i = 0; i < PCI_MAX_FNS; i++)
		if (host->fn[i])
			pci_dev_reset(host->fn[i]);
	pthread_mutex_unlock(&host->lock);
}

/* Devices are destroyed newest first, so every PCI device is gone by now. */
static void pci_host_free(struct vdev *vd)
{
	struct pci_host *host = container_of(vd, struct pci_host, vdev);
	struct devctx *ctx = host->ctx;

	bus_del(ctx->pio, &host->cf8_dev);
	bus_del(ctx->pio, &host->cfc_dev);
	if (host->win.ecam_size)
		bus_del(ctx->mmio, &host->ecam_dev);
	pthread_mutex_destroy(&host->lock);
	free(host);
}

struct pci_host *pci_host_create(struct devctx *ctx, const struct pci_windows *win,
				 keel_error **err)
{
	struct pci_host *host = calloc(1, sizeof(*host));

	if (!host)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating the PCI host bridge"),
		       NULL;
	host->ctx = ctx;
	pthread_mutex_init(&host->lock, NULL);
	host->win = *win;
	host->mmio_next = win->mem_base;
	host->io_next = win->io_base;
	host->cf8_dev = (struct bus_dev){ .ops = &cf8_ops, .name = "pci-cf8" };
	host->cfc_dev = (struct bus_dev){ .ops = &cfc_ops, .name = "pci-cfc" };
	host->ecam_dev = (struct bus_dev){ .ops = &ecam_ops, .name = "pci-ecam" };
	host->vdev = (struct vdev){ .name = "pci-host", .reset = pci_host_reset,
				    .destroy = pci_host_free };
	if (bus_add(ctx->pio, &host->cf8_dev, 0xcf8, 4, err) < 0)
		goto fail;
	if (bus_add(ctx->pio, &host->cfc_dev, 0xcfc, 4, err) < 0) {
		bus_del(ctx->pio, &host->cf8_dev);
		goto fail;
	}
	if (win->ecam_size &&
	    bus_add(ctx->mmio, &host->ecam_dev, win->ecam_base, win->ecam_size, err) < 0) {
		bus_del(ctx->pio, &host->cf8_dev);
		bus_del(ctx->pio, &host->cfc_dev);
		goto fail;
	}
	devctx_add(ctx, &host->vdev);
	return host;
fail:
	pthread_mutex_destroy(&host->lock);
	free(host);
	return NULL;
}

int pci_intx_routes(struct pci_host *host, struct pci_intx_route *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&host->lock);
	for (int i = 0; i < PCI_MAX_FNS && n < max; i++) {
		struct pci_dev *d = host->fn[i];

		if (d && d->intx_gsi) {
			out[n].slot = (uint8_t)(i >> 3);
			out[n].pin = (uint8_t)(d->cfg[PCI_INTERRUPT_PIN] - 1);
			out[n].gsi = (uint8_t)d->intx_gsi;
			n++;
		}
	}
	pthread_mutex_unlock(&host->lock);
	return n;
}
