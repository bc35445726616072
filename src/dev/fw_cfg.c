// SPDX-License-Identifier: MIT
/*
 * fw_cfg (fw_cfg.h).  Every guest-given value is checked: the selector picks
 * an item or nothing, reads past an item's end give zeros, a DMA descriptor
 * or buffer outside guest RAM is refused (the error bit, or nothing when
 * the descriptor itself cannot be reached).
 *
 * Locking: fc->lock covers the selection, the offset and the items; a
 * select callback runs without it (it may update its file).
 */
#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "core/le.h"
#include "core/util.h"
#include "dev/fw_cfg.h"
#include "kvm/mem.h"

#define NR_ITEMS        (FW_CFG_FILE_FIRST + FW_CFG_FILE_MAX)
#define DMA_SIGNATURE   0x51454d5520434647ULL    /* "QEMU CFG", read from the DMA port */
#define ID_TRADITIONAL  0x01
#define ID_DMA          0x02

struct item {
	uint8_t *data;
	size_t len;
	char name[FW_CFG_NAME_MAX];     /* files only */
	fw_cfg_select_fn select;
	void *opaque;
};

struct fw_cfg {
	struct vdev vdev;
	struct bus_dev io_dev, dma_dev;         /* 0x510 selector, 0x511 data; 0x514 DMA */
	struct devctx *ctx;
	pthread_mutex_t lock;
	struct item items[NR_ITEMS];
	int nr_files;
	uint16_t key;                   /* selected item */
	uint32_t off;                   /* read position in it */
	uint32_t dma_hi;                /* high half of the DMA address */
};

/* With fc->lock held. */
static const struct item *cur_item(struct fw_cfg *fc)
{
	return fc->key < NR_ITEMS ? &fc->items[fc->key] : NULL;
}

/* Selects `key` (the owner's callback first, without the lock). */
static void do_select(struct fw_cfg *fc, uint16_t key)
{
	fw_cfg_select_fn fn = NULL;
	void *opaque = NULL;

	pthread_mutex_lock(&fc->lock);
	if (key < NR_ITEMS) {
		fn = fc->items[key].select;
		opaque = fc->items[key].opaque;
	}
	pthread_mutex_unlock(&fc->lock);
	if (fn)
		fn(opaque);
	pthread_mutex_lock(&fc->lock);
	fc->key = key;
	fc->off = 0;
	pthread_mutex_unlock(&fc->lock);
}

static int set_item(struct item *it, const void *data, size_t len, keel_error **err)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return err_set(err, KEEL_ERR_NOMEM, "fw_cfg: out of memory for %zu bytes", len);
	memcpy(copy, data, len);
	free(it->data);
	it->data = copy;
	it->len = len;
	return 0;
}

/* With fc->lock held: key 0x19, the big-endian file directory. */
static int rebuild_dir(struct fw_cfg *fc, keel_error **err)
{
	size_t len = 4 + (size_t)fc->nr_files * 64;
	uint8_t *dir = calloc(1, len);
	int ret;

	if (!dir)
		return err_set(err, KEEL_ERR_NOMEM, "fw_cfg: out of memory for the file directory");
	*(uint32_t *)dir = htobe32((uint32_t)fc->nr_files);
	for (int i = 0; i < fc->nr_files; i++) {
		const struct item *f = &fc->items[FW_CFG_FILE_FIRST + i];
		uint8_t *e = dir + 4 + (size_t)i * 64;
		uint32_t size = htobe32((uint32_t)f->len);
		uint16_t select = htobe16((uint16_t)(FW_CFG_FILE_FIRST + i));

		memcpy(e, &size, 4);
		memcpy(e + 4, &select, 2);
		memcpy(e + 8, f->name, FW_CFG_NAME_MAX);
	}
	ret = set_item(&fc->items[FW_CFG_FILE_DIR], dir, len, err);
	free(dir);
	return ret;
}

int fw_cfg_set(struct fw_cfg *fc, uint16_t key, const void *data, size_t len, keel_error **err)
{
	int ret;

	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		return err_set(err, KEEL_ERR_INVALID, "fw_cfg: key 0x%x is not a numbered item", key);
	pthread_mutex_lock(&fc->lock);
	ret = set_item(&fc->items[key], data, len, err);
	pthread_mutex_unlock(&fc->lock);
	return ret;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len,
		    fw_cfg_select_fn select, void *opaque, keel_error **err)
{
	struct item *f;
	int ret = -1;

	if (strlen(name) >= FW_CFG_NAME_MAX || len > UINT32_MAX)
		return err_set(err, KEEL_ERR_INVALID, "fw_cfg: file '%s' (%zu bytes) does not fit",
			       name, len);
	pthread_mutex_lock(&fc->lock);
	if (fc->nr_files == FW_CFG_FILE_MAX) {
		err_set(err, KEEL_ERR_TOO_LARGE, "fw_cfg: more than %d files", FW_CFG_FILE_MAX);
		goto out;
	}
	for (int i = 0; i < fc->nr_files; i++) {
		if (!strcmp(fc->items[FW_CFG_FILE_FIRST + i].name, name)) {
			err_set(err, KEEL_ERR_INVALID, "fw_cfg: file '%s' added twice", name);
			goto out;
		}
	}
	f = &fc->items[FW_CFG_FILE_FIRST + fc->nr_files];
	if (set_item(f, data, len, err) < 0)
		goto out;
	strcpy(f->name, name);
	f->select = select;
	f->opaque = opaque;
	fc->nr_files++;
	ret = rebuild_dir(fc, err);
	if (ret < 0)
		fc->nr_files--;
out:
	pthread_mutex_unlock(&fc->lock);
	return ret;
}

int fw_cfg_update_file(struct fw_cfg *fc, const char *name, const void *data, size_t len,
		       keel_error **err)
{
	bool done = false;

	pthread_mutex_lock(&fc->lock);
	for (int i = 0; i < fc->nr_files && !done; i++) {
		struct item *f = &fc->items[FW_CFG_FILE_FIRST + i];

		/* The directory has told the firmware its size already. */
		if (!strcmp(f->name, name) && f->len == len) {
			memcpy(f->data, data, len);
			done = true;
		}
	}
	pthread_mutex_unlock(&fc->lock);
	return done ? 0 : err_set(err, KEEL_ERR_INVALID, "fw_cfg: no file '%s' of %zu bytes",
				  name, len);
}

/* ---- the I/O ports ---- */

/* Offset 0: the 16-bit selector (written); offset 1: the data port (read byte by byte). */
static void io_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct fw_cfg *fc = container_of(bd, struct fw_cfg, io_dev);
	const uint8_t *p = data;

	/* Data writes are ignored: every item is read-only. */
	if (off == 0)
		do_select(fc, len >= 2 ? get_le16(p) : p[0]);
}

static void io_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct fw_cfg *fc = container_of(bd, struct fw_cfg, io_dev);
	uint8_t *out = data;
	const struct item *it;

	memset(data, 0, len);
	if (off != 1)
		return;
	pthread_mutex_lock(&fc->lock);
	it = cur_item(fc);
	if (it && fc->off < it->len)
		out[0] = it->data[fc->off++];
	pthread_mutex_unlock(&fc->lock);
}

/* Guest RAM for [gpa, gpa+len), or NULL. */
static void *guest(struct fw_cfg *fc, uint64_t gpa, uint64_t len)
{
	return fc->ctx->mem ? mem_ptr(fc->ctx->mem, gpa, len) : NULL;
}

/* Runs the FWCfgDmaAccess at `addr`. */
static void dma_run(struct fw_cfg *fc, uint64_t addr)
{
	uint8_t *desc = guest(fc, addr, 16);
	uint32_t control, len, result = 0;
	uint64_t buf;

	if (!desc)
		return;         /* nowhere to report to */
	control = be32toh(*(uint32_t *)desc);
	len = be32toh(*(uint32_t *)(desc + 4));
	buf = be64toh(*(uint64_t *)(desc + 8));
	if (control & FW_CFG_DMA_SELECT)
		do_select(fc, (uint16_t)(control >> 16));
	pthread_mutex_lock(&fc->lock);
	if (control & FW_CFG_DMA_READ) {
		const struct item *it = cur_item(fc);
		uint8_t *dst = guest(fc, buf, len);
		size_t have = it && fc->off < it->len ? it->len - fc->off : 0;
		size_t n = have < len ? have : len;

		if (!dst) {
			result = FW_CFG_DMA_ERROR;
		} else {
			if (n)
				memcpy(dst, it->data + fc->off, n);
			memset(dst + n, 0, len - n);
			fc->off += (uint32_t)n;
		}
	} else if (control & FW_CFG_DMA_WRITE) {
		result = FW_CFG_DMA_ERROR;      /* read-only items */
	} else if (control & FW_CFG_DMA_SKIP) {
		const struct item *it = cur_item(fc);
		size_t have = it && fc->off < it->len ? it->len - fc->off : 0;

		fc->off += (uint32_t)(have < len ? have : len);
	}
	pthread_mutex_unlock(&fc->lock);
	/* The data is in place before the firmware sees the control word change. */
	__atomic_store_n((uint32_t *)desc, htobe32(result), __ATOMIC_RELEASE);
}

static void dma_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct fw_cfg *fc = container_of(bd, struct fw_cfg, dma_dev);
	uint64_t addr;

	if (off == 0 && len == 8) {
		addr = be64toh(*(const uint64_t *)data);
	} else if (off == 0 && len == 4) {
		pthread_mutex_lock(&fc->lock);
		fc->dma_hi = be32toh(*(const uint32_t *)data);
		pthread_mutex_unlock(&fc->lock);
		return;
	} else if (off == 4 && len == 4) {
		pthread_mutex_lock(&fc->lock);
		addr = (uint64_t)fc->dma_hi << 32 | be32toh(*(const uint32_t *)data);
		fc->dma_hi = 0;
		pthread_mutex_unlock(&fc->lock);
	} else {
		return;         /* other widths do nothing, as in QEMU */
	}
	dma_run(fc, addr);
}

static void dma_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	uint64_t sig = htobe64(DMA_SIGNATURE);

	memcpy(data, (uint8_t *)&sig + off, len);
}

static const struct bus_dev_ops io_ops = { .read = io_read, .write = io_write };
static const struct bus_dev_ops dma_ops = { .read = dma_read, .write = dma_write };

static void fw_cfg_reset(struct vdev *vd)
{
	struct fw_cfg *fc = container_of(vd, struct fw_cfg, vdev);

	pthread_mutex_lock(&fc->lock);
	fc->key = 0;
	fc->off = 0;
	fc->dma_hi = 0;
	pthread_mutex_unlock(&fc->lock);
}

static void fw_cfg_destroy(struct vdev *vd)
{
	struct fw_cfg *fc = container_of(vd, struct fw_cfg, vdev);

	bus_del(fc->ctx->pio, &fc->io_dev);
	bus_del(fc->ctx->pio, &fc->dma_dev);
	for (int i = 0; i < NR_ITEMS; i++)
		free(fc->items[i].data);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

struct fw_cfg *fw_cfg_create(struct devctx *ctx, keel_error **err)
{
	struct fw_cfg *fc = calloc(1, sizeof(*fc));
	const uint32_t id = htole32(ID_TRADITIONAL | ID_DMA);

	if (!fc)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating fw_cfg"), NULL;
	fc->ctx = ctx;
	pthread_mutex_init(&fc->lock, NULL);
	fc->io_dev = (struct bus_dev){ .ops = &io_ops, .name = "fw_cfg" };
	fc->dma_dev = (struct bus_dev){ .ops = &dma_ops, .name = "fw_cfg-dma" };
	fc->vdev = (struct vdev){ .name = "fw_cfg", .reset = fw_cfg_reset,
				  .destroy = fw_cfg_destroy };
	if (set_item(&fc->items[FW_CFG_SIGNATURE], "QEMU", 4, err) < 0 ||
	    set_item(&fc->items[FW_CFG_ID], &id, 4, err) < 0 || rebuild_dir(fc, err) < 0)
		goto fail;
	if (bus_add(ctx->pio, &fc->io_dev, FW_CFG_PORT_SEL, 2, err) < 0)
		goto fail;
	if (bus_add(ctx->pio, &fc->dma_dev, FW_CFG_PORT_DMA, 8, err) < 0) {
		bus_del(ctx->pio, &fc->io_dev);
		goto fail;
	}
	devctx_add(ctx, &fc->vdev);
	return fc;
fail:
	for (int i = 0; i < NR_ITEMS; i++)
		free(fc->items[i].data);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
	return NULL;
}
