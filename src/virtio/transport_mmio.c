// SPDX-License-Identifier: MIT
/*
 * virtio-mmio, version 2 register layout (virtio 1.x, 4.2.2).  The machine
 * builder gives each device its window (0x200 bytes decoded) and ISA
 * interrupt line, and tells Linux where they are (virtio_mmio.device= on
 * its command line).
 *
 * Kicks: QueueNotify takes the queue index as its value, so each queue has
 * an ioeventfd matching its own index (a datamatch) on the register; writes
 * that still reach us signal the queue's kick eventfd by hand.
 *
 * Interrupts: the line is high while InterruptStatus has a bit set and is
 * lowered when the driver acknowledges them all, so each event after an
 * acknowledgement is a new rising edge on the (edge-triggered) ISA pin.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/devctx.h"
#include "core/util.h"
#include "kvm/irq.h"
#include "kvm/kvm.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"

#define MMIO_MAGIC              0x000
#define MMIO_VERSION            0x004
#define MMIO_DEVICE_ID          0x008
#define MMIO_VENDOR_ID          0x00c
#define MMIO_DEV_FEATURES       0x010
#define MMIO_DEV_FEATURES_SEL   0x014
#define MMIO_DRV_FEATURES       0x020
#define MMIO_DRV_FEATURES_SEL   0x024
#define MMIO_QUEUE_SEL          0x030
#define MMIO_QUEUE_NUM_MAX      0x034
#define MMIO_QUEUE_NUM          0x038
#define MMIO_QUEUE_READY        0x044
#define MMIO_QUEUE_NOTIFY       0x050
#define MMIO_INT_STATUS         0x060
#define MMIO_INT_ACK            0x064
#define MMIO_STATUS             0x070
#define MMIO_QUEUE_DESC_LO      0x080
#define MMIO_QUEUE_DESC_HI      0x084
#define MMIO_QUEUE_DRIVER_LO    0x090
#define MMIO_QUEUE_DRIVER_HI    0x094
#define MMIO_QUEUE_DEVICE_LO    0x0a0
#define MMIO_QUEUE_DEVICE_HI    0x0a4
#define MMIO_SHM_SEL            0x0ac
#define MMIO_SHM_LEN_LO         0x0b0
#define MMIO_SHM_LEN_HI         0x0b4
#define MMIO_SHM_BASE_LO        0x0b8
#define MMIO_SHM_BASE_HI        0x0bc
#define MMIO_CONFIG_GEN         0x0fc
#define MMIO_CONFIG             0x100

#define MMIO_MAGIC_VALUE        0x74726976      /* "virt" */
#define MMIO_VERSION_MODERN     2
#define MMIO_VENDOR             0x1af4

#define INT_USED_BUFFER 1
#define INT_CONFIG      2

struct virtio_mmio {
	struct bus_dev bdev;
	struct vdev node;
	struct virtio_dev *vdev;
	struct devctx *ctx;
	uint64_t base;
	unsigned int irq;

	/* Under vdev->lock. */
	uint32_t dfsel, gfsel, queue_sel;

	pthread_mutex_t irq_lock;       /* a leaf lock */
	uint32_t isr;
	bool level;

	bool ioev[VIRTIO_MAX_QUEUES];
};

static struct virtio_mmio *to_vmmio(struct virtio_dev *vdev)
{
	return vdev->transport_priv;
}

/* ---- interrupts ---- */

static void irq_update_locked(struct virtio_mmio *m)
{
	bool level = m->isr != 0;

	if (level != m->level) {
		m->level = level;
		kvm_irq_line(m->ctx->kvm, m->irq, level);
	}
}

static void isr_raise(struct virtio_mmio *m, uint32_t bit)
{
	pthread_mutex_lock(&m->irq_lock);
	m->isr |= bit;
	irq_update_locked(m);
	pthread_mutex_unlock(&m->irq_lock);
}

static void isr_ack(struct virtio_mmio *m, uint32_t bits)
{
	pthread_mutex_lock(&m->irq_lock);
	m->isr &= ~bits;
	irq_update_locked(m);
	pthread_mutex_unlock(&m->irq_lock);
}

static void vmmio_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	isr_raise(to_vmmio(vdev), INT_USED_BUFFER);
}

static void vmmio_notify_config(struct virtio_dev *vdev)
{
	isr_raise(to_vmmio(vdev), INT_CONFIG);
}

/* Status 0, with vdev->lock held. */
static void vmmio_reset(struct virtio_dev *vdev)
{
	struct virtio_mmio *m = to_vmmio(vdev);

	m->dfsel = 0;
	m->gfsel = 0;
	m->queue_sel = 0;
	isr_ack(m, ~0u);
}

static const struct virtio_transport_ops vmmio_transport = {
	.notify_queue = vmmio_notify_queue,
	.notify_config = vmmio_notify_config,
	.reset = vmmio_reset,
};

/* ---- registers ---- */

static struct virtq *selected_vq(struct virtio_mmio *m)
{
	return m->queue_sel < m->vdev->nr_queues ? &m->vdev->vqs[m->queue_sel] : NULL;
}

static uint64_t *queue_addr(struct virtq *vq, uint32_t reg)
{
	if (reg < MMIO_QUEUE_DRIVER_LO)
		return &vq->cfg.desc_gpa;
	if (reg < MMIO_QUEUE_DEVICE_LO)
		return &vq->cfg.avail_gpa;
	return &vq->cfg.used_gpa;
}

/* With vdev->lock held. */
static uint32_t reg_read(struct virtio_mmio *m, uint32_t reg)
{
	struct virtio_dev *vdev = m->vdev;
	struct virtq *vq = selected_vq(m);
	uint32_t v;

	switch (reg) {
	case MMIO_MAGIC:
		return MMIO_MAGIC_VALUE;
	case MMIO_VERSION:
		return MMIO_VERSION_MODERN;
	case MMIO_DEVICE_ID:
		return vdev->device_id;
	case MMIO_VENDOR_ID:
		return MMIO_VENDOR;
	case MMIO_DEV_FEATURES:
		return m->dfsel < 2 ? (uint32_t)(vdev->host_features >> (32 * m->dfsel)) : 0;
	case MMIO_QUEUE_NUM_MAX:
		return vq ? vdev->queue_max_size : 0;
	case MMIO_QUEUE_READY:
		return vq ? vdev->queue_ready[m->queue_sel] : 0;
	case MMIO_INT_STATUS:
		pthread_mutex_lock(&m->irq_lock);
		v = m->isr;
		pthread_mutex_unlock(&m->irq_lock);
		return v;
	case MMIO_STATUS:
		return vdev->status;
	case MMIO_QUEUE_DESC_LO: case MMIO_QUEUE_DRIVER_LO: case MMIO_QUEUE_DEVICE_LO:
		return vq ? (uint32_t)*queue_addr(vq, reg) : 0;
	case MMIO_QUEUE_DESC_HI: case MMIO_QUEUE_DRIVER_HI: case MMIO_QUEUE_DEVICE_HI:
		return vq ? (uint32_t)(*queue_addr(vq, reg) >> 32) : 0;
	case MMIO_SHM_LEN_LO: case MMIO_SHM_LEN_HI: case MMIO_SHM_BASE_LO: case MMIO_SHM_BASE_HI:
		return 0xffffffff;      /* no shared memory regions */
	case MMIO_CONFIG_GEN:
		return vdev->config_generation;
	default:
		return 0;
	}
}

/* With vdev->lock held; true when `v` is a status for virtio_dev_set_status(). */
static bool reg_write(struct virtio_mmio *m, uint32_t reg, uint32_t v)
{
	struct virtio_dev *vdev = m->vdev;
	struct virtq *vq = selected_vq(m);
	unsigned int q = m->queue_sel;
	bool locked = vq && (vdev->queue_ready[q] || (vdev->status & VIRTIO_STATUS_DRIVER_OK));

	switch (reg) {
	case MMIO_DEV_FEATURES_SEL:
		m->dfsel = v;
		break;
	case MMIO_DRV_FEATURES:
		if (vdev->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK))
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: driver features written after FEATURES_OK; ignored", vdev->name);
		else if (m->gfsel < 2)
			vdev->driver_features =
				(vdev->driver_features & ~(0xffffffffULL << (32 * m->gfsel))) |
				((uint64_t)v << (32 * m->gfsel));
		break;
	case MMIO_DRV_FEATURES_SEL:
		m->gfsel = v;
		break;
	case MMIO_QUEUE_SEL:
		m->queue_sel = v;
		break;
	case MMIO_QUEUE_NUM:
		if (!vq || locked)
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING, "%s: QueueNum of queue %u written while %s; ignored",
			       vdev->name, q, vq ? "ready" : "out of range");
		else if (!v || (v & (v - 1)) || v > vdev->queue_max_size)
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: queue %u size %u is not a power of two in 1..%u; ignored",
			       vdev->name, q, v, vdev->queue_max_size);
		else
			vq->cfg.size = (uint16_t)v;
		break;
	case MMIO_QUEUE_READY:
		if (!vq || (vdev->status & VIRTIO_STATUS_DRIVER_OK)) {
			if (!(vq && vdev->queue_ready[q] == !!v))
				log_msg(&vdev->ctx->log, KEEL_LOG_WARNING, "%s: QueueReady %u for queue %u%s; ignored",
				       vdev->name, v, q, vq ? " after DRIVER_OK" : " (out of range)");
		} else {
			vdev->queue_ready[q] = v != 0;
		}
		break;
	case MMIO_QUEUE_NOTIFY:
		if (v < vdev->nr_queues)
			efd_signal(vdev->kick_fd[v]);
		break;
	case MMIO_INT_ACK:
		isr_ack(m, v);
		break;
	case MMIO_STATUS:
		return true;
	case MMIO_QUEUE_DESC_LO: case MMIO_QUEUE_DRIVER_LO: case MMIO_QUEUE_DEVICE_LO:
	case MMIO_QUEUE_DESC_HI: case MMIO_QUEUE_DRIVER_HI: case MMIO_QUEUE_DEVICE_HI:
		if (!vq || locked) {
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING, "%s: queue %u address written while %s; ignored",
			       vdev->name, q, vq ? "ready" : "out of range");
		} else {
			uint64_t *f = queue_addr(vq, reg);

			if (reg & 4)
				*f = (*f & 0xffffffffULL) | ((uint64_t)v << 32);
			else
				*f = (*f & ~0xffffffffULL) | v;
		}
		break;
	default:
		break;          /* read-only or reserved */
	}
	return false;
}

static void config_access(struct virtio_mmio *m, uint64_t off, void *data, unsigned int len,
			  bool is_write)
{
	struct virtio_dev *vdev = m->vdev;
	bool have = is_write ? vdev->ops->config_write != NULL : vdev->ops->config_read != NULL;

	if (!have || off + len > vdev->config_size) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vdev->lock);
	if (is_write)
		vdev->ops->config_write(vdev, (uint32_t)off, data, len);
	else
		vdev->ops->config_read(vdev, (uint32_t)off, data, len);
	pthread_mutex_unlock(&vdev->lock);
}

static void vmmio_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct virtio_mmio *m = container_of(bd, struct virtio_mmio, bdev);
	uint32_t v;

	if (off >= MMIO_CONFIG) {
		config_access(m, off - MMIO_CONFIG, data, len, false);
		return;
	}
	if (len != 4 || (off & 3)) {
		memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&m->vdev->lock);
	v = reg_read(m, (uint32_t)off);
	pthread_mutex_unlock(&m->vdev->lock);
	memcpy(data, &v, 4);
}

static void vmmio_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct virtio_mmio *m = container_of(bd, struct virtio_mmio, bdev);
	uint32_t v;
	bool status;

	if (off >= MMIO_CONFIG) {
		config_access(m, off - MMIO_CONFIG, (void *)data, len, true);
		return;
	}
	if (len != 4 || (off & 3)) {
		log_msg(&m->ctx->log, KEEL_LOG_DEBUG, "%s: %u-byte write at register 0x%llx ignored",
		       m->vdev->name, len, (unsigned long long)off);
		return;
	}
	memcpy(&v, data, 4);
	pthread_mutex_lock(&m->vdev->lock);
	status = reg_write(m, (uint32_t)off, v);
	pthread_mutex_unlock(&m->vdev->lock);
	if (status) {
		if (v > 0xff)
			log_msg(&m->ctx->log, KEEL_LOG_WARNING, "%s: status 0x%x has bits above 7; truncated",
			       m->vdev->name, v);
		virtio_dev_set_status(m->vdev, (uint8_t)v);
	}
}

static const struct bus_dev_ops vmmio_ops = { .read = vmmio_read, .write = vmmio_write };

/* ---- lifetime ---- */

static void vmmio_vdev_reset(struct vdev *node)
{
	virtio_dev_set_status(container_of(node, struct virtio_mmio, node)->vdev, 0);
}

static void ioev_clear(struct virtio_mmio *m)
{
	for (unsigned int q = 0; q < m->vdev->nr_queues; q++) {
		if (m->ioev[q])
			ioeventfd_deassign_match(m->ctx->kvm, m->vdev->kick_fd[q],
						 m->base + MMIO_QUEUE_NOTIFY, 4, false, q);
		m->ioev[q] = false;
	}
}

static void vmmio_destroy(struct vdev *node)
{
	struct virtio_mmio *m = container_of(node, struct virtio_mmio, node);
	struct virtio_dev *vdev = m->vdev;

	virtio_dev_quiesce(vdev);
	virtio_dev_set_status(vdev, 0);
	bus_del(m->ctx->mmio, &m->bdev);
	ioev_clear(m);
	vdev->transport = NULL;
	vdev->transport_priv = NULL;
	pthread_mutex_destroy(&m->irq_lock);
	free(m);
	if (vdev->ops->destroy)
		vdev->ops->destroy(vdev);
}

int virtio_mmio_attach(struct virtio_dev *vdev, uint64_t base, unsigned int irq,
		       keel_error **err)
{
	struct devctx *ctx = vdev->ctx;
	struct virtio_mmio *m;

	if (vdev->config_size > VIRTIO_MMIO_SIZE - MMIO_CONFIG)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: %u bytes of device configuration (virtio-mmio has room for %d)",
			       vdev->name, vdev->config_size, VIRTIO_MMIO_SIZE - MMIO_CONFIG);
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory attaching %s", vdev->name);
	m->vdev = vdev;
	m->ctx = ctx;
	m->base = base;
	m->irq = irq;
	m->bdev = (struct bus_dev){ .ops = &vmmio_ops, .name = vdev->name };
	pthread_mutex_init(&m->irq_lock, NULL);
	vdev->transport = &vmmio_transport;
	vdev->transport_priv = m;
	if (bus_add(ctx->mmio, &m->bdev, m->base, VIRTIO_MMIO_SIZE, err) < 0) {
		err_prefix(err, "%s", vdev->name);
		vdev->transport = NULL;
		vdev->transport_priv = NULL;
		pthread_mutex_destroy(&m->irq_lock);
		free(m);
		return -1;
	}
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		keel_error *e = NULL;

		if (ioeventfd_assign_match(ctx->kvm, vdev->kick_fd[q], m->base + MMIO_QUEUE_NOTIFY, 4,
					   false, q, &e) == 0) {
			m->ioev[q] = true;
			continue;
		}
		/* Kicks still work, through a VM exit and reg_write(). */
		if (q == 0)
			log_msg(&ctx->log, KEEL_LOG_WARNING, "%s: kicks take the slow path: %s", vdev->name,
			       keel_error_get_message(e));
		keel_error_free(e);
	}
	m->node = (struct vdev){ .name = vdev->name, .reset = vmmio_vdev_reset,
				 .destroy = vmmio_destroy };
	devctx_add(ctx, &m->node);
	return 0;
}
