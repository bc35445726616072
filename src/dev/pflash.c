// SPDX-License-Identifier: MIT
/*
 * CFI flash (pflash.h).  The command state machine follows QEMU's
 * pflash_cfi01, which is what OVMF's flash detection and variable driver
 * were written against: a program writes the data as given, an erase fills
 * its block with 0xFF, and both leave the status register (0x80: ready)
 * readable until the firmware asks for read-array mode again.
 *
 * Locking: p->lock covers the mode, the status and the array; accesses come
 * from vCPU threads (writes always, reads while the slot is removed) and
 * from the event thread (VM reset).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/util.h"
#include "dev/pflash.h"
#include "kvm/kvm.h"

#define CMD_PROGRAM       0x10
#define CMD_PROGRAM_ALT   0x40
#define CMD_ERASE         0x20
#define CMD_CLEAR_STATUS  0x50
#define CMD_READ_STATUS   0x70
#define CMD_READ_ID       0x90
#define CMD_CFI_QUERY     0x98
#define CMD_ERASE_CONFIRM 0xd0
#define CMD_READ_ARRAY    0xff

#define STATUS_READY      0x80
#define STATUS_ERASE_ERR  0x20
#define STATUS_PROG_ERR   0x10

enum mode {
	MODE_ARRAY,             /* reads see the array (the slot is mapped) */
	MODE_STATUS,            /* reads see the status register */
	MODE_PROGRAM,           /* the next write is the data */
	MODE_ERASE,             /* the next write must confirm the erase */
	MODE_QUERY,             /* identifier or CFI query: reads see 0 */
};

struct pflash {
	struct vdev vdev;
	struct bus_dev bdev;
	struct devctx *ctx;
	struct pflash_config cfg;
	pthread_mutex_t lock;
	enum mode mode;
	uint8_t status;
	bool mapped;                    /* the read-only slot is in place */
	uint64_t dirty_lo, dirty_hi;    /* written since the last sync, [lo, hi) */
};

/* With p->lock held: the slot follows the mode (mapped exactly in read-array mode). */
static void set_mode(struct pflash *p, enum mode mode)
{
	bool want = mode == MODE_ARRAY;
	keel_error *err = NULL;

	p->mode = mode;
	if (want == p->mapped)
		return;
	if (kvm_set_memory(p->ctx->kvm, p->cfg.slot, p->cfg.base, want ? p->cfg.size : 0,
			   p->cfg.mem, true, &err) < 0) {
		/* Reads keep trapping (and are served from the array): slower, not wrong. */
		log_msg(&p->ctx->log, KEEL_LOG_WARNING, "%s: %s", p->cfg.name,
			keel_error_get_message(err));
		keel_error_free(err);
		return;
	}
	p->mapped = want;
	if (want && p->cfg.file_fd >= 0 && p->dirty_hi > p->dirty_lo) {
		long page = sysconf(_SC_PAGESIZE);
		uint64_t lo = p->dirty_lo & ~(uint64_t)(page - 1);

		if (msync(p->cfg.mem + lo, p->dirty_hi - lo, MS_SYNC) < 0)
			log_msg(&p->ctx->log, KEEL_LOG_ERROR, "%s: cannot sync the variable store",
				p->cfg.name);
		p->dirty_lo = p->dirty_hi = 0;
	}
}

static void mark_dirty(struct pflash *p, uint64_t lo, uint64_t hi)
{
	if (p->dirty_hi <= p->dirty_lo) {
		p->dirty_lo = lo;
		p->dirty_hi = hi;
		return;
	}
	if (lo < p->dirty_lo)
		p->dirty_lo = lo;
	if (hi > p->dirty_hi)
		p->dirty_hi = hi;
}

static void pflash_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct pflash *p = container_of(bd, struct pflash, bdev);

	pthread_mutex_lock(&p->lock);
	switch (p->mode) {
	case MODE_ARRAY:        /* between a failed remap and the next command */
		memcpy(data, p->cfg.mem + off, len);
		break;
	case MODE_QUERY:
		memset(data, 0, len);
		break;
	default:
		memset(data, p->status, len);
		break;
	}
	pthread_mutex_unlock(&p->lock);
}

static void pflash_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct pflash *p = container_of(bd, struct pflash, bdev);
	uint8_t cmd = *(const uint8_t *)data;

	pthread_mutex_lock(&p->lock);
	switch (p->mode) {
	case MODE_PROGRAM:
		/* Written as given, as QEMU does (real flash would only clear bits). */
		memcpy(p->cfg.mem + off, data, len);
		mark_dirty(p, off, off + len);
		p->status |= STATUS_READY;
		set_mode(p, MODE_STATUS);
		break;
	case MODE_ERASE:
		if (cmd == CMD_ERASE_CONFIRM) {
			uint64_t block = off & ~(uint64_t)(p->cfg.block_size - 1);

			memset(p->cfg.mem + block, 0xff, p->cfg.block_size);
			mark_dirty(p, block, block + p->cfg.block_size);
			p->status |= STATUS_READY;
		} else {
			p->status |= STATUS_ERASE_ERR | STATUS_PROG_ERR;  /* command sequence error */
		}
		set_mode(p, MODE_STATUS);
		break;
	default:
		switch (cmd) {
		case CMD_PROGRAM:
		case CMD_PROGRAM_ALT:
			set_mode(p, MODE_PROGRAM);
			break;
		case CMD_ERASE:
			set_mode(p, MODE_ERASE);
			break;
		case CMD_CLEAR_STATUS:
			p->status = 0;
			set_mode(p, MODE_ARRAY);
			break;
		case CMD_READ_STATUS:
			set_mode(p, MODE_STATUS);
			break;
		case CMD_READ_ID:
		case CMD_CFI_QUERY:
			set_mode(p, MODE_QUERY);
			break;
		default:        /* read array, and what is not implemented */
			set_mode(p, MODE_ARRAY);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

static const struct bus_dev_ops pflash_ops = { .read = pflash_read, .write = pflash_write };

static void pflash_reset(struct vdev *vd)
{
	struct pflash *p = container_of(vd, struct pflash, vdev);

	pthread_mutex_lock(&p->lock);
	p->status = STATUS_READY;
	set_mode(p, MODE_ARRAY);
	pthread_mutex_unlock(&p->lock);
}

static void pflash_destroy(struct vdev *vd)
{
	struct pflash *p = container_of(vd, struct pflash, vdev);

	pthread_mutex_lock(&p->lock);
	set_mode(p, MODE_ARRAY);        /* syncs what is pending */
	if (p->mapped)
		kvm_set_memory(p->ctx->kvm, p->cfg.slot, p->cfg.base, 0, p->cfg.mem, true, NULL);
	pthread_mutex_unlock(&p->lock);
	bus_del(p->ctx->mmio, &p->bdev);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct pflash *pflash_create(struct devctx *ctx, const struct pflash_config *cfg,
			     keel_error **err)
{
	struct pflash *p;

	if (!cfg->size || !cfg->block_size || (cfg->block_size & (cfg->block_size - 1)) ||
	    cfg->size % cfg->block_size)
		return err_set(err, KEEL_ERR_INVALID, "%s: %llu bytes in blocks of %u", cfg->name,
			       (unsigned long long)cfg->size, cfg->block_size), NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating %s", cfg->name), NULL;
	p->ctx = ctx;
	p->cfg = *cfg;
	p->status = STATUS_READY;
	p->mode = MODE_STATUS;          /* so that set_mode() maps the slot */
	pthread_mutex_init(&p->lock, NULL);
	p->bdev = (struct bus_dev){ .ops = &pflash_ops, .name = cfg->name };
	p->vdev = (struct vdev){ .name = cfg->name, .reset = pflash_reset,
				 .destroy = pflash_destroy };
	if (bus_add(ctx->mmio, &p->bdev, cfg->base, cfg->size, err) < 0) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	if (kvm_set_memory(ctx->kvm, cfg->slot, cfg->base, cfg->size, cfg->mem, true, err) < 0) {
		bus_del(ctx->mmio, &p->bdev);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	p->mapped = true;
	p->mode = MODE_ARRAY;
	devctx_add(ctx, &p->vdev);
	return p;
}
