// SPDX-License-Identifier: MIT
/*
 * virtio-pci, modern (virtio 1.x, 4.1) and nothing else: no legacy I/O BAR.
 *
 * BAR 4 (32-bit memory, 16 KiB) holds the four structures the vendor
 * capabilities point at:
 *   0x0000 common configuration    0x2000 device configuration
 *   0x1000 ISR status              0x3000 notifications, queue q at 0x3000 + 4q
 * BAR 1 holds the MSI-X table and PBA (nr_queues + 1 vectors).  The fifth
 * capability (VIRTIO_PCI_CAP_PCI_CFG) is a window into BAR 4 through
 * config space: a write to its data field is performed at once, and the
 * data field is loaded (a BAR read, side effects included) when the driver
 * writes the window's length field.
 *
 * Kicks: each queue's notification address is an ioeventfd on the queue's
 * kick eventfd while BAR 4 is mapped; a write that still reaches us (no
 * ioeventfd, or through the config window) signals the eventfd by hand.
 *
 * Interrupts: MSI-X through msix_notify() (irqfds) when the driver enabled
 * it, else INTx following the ISR status: high while a bit is set, lowered
 * when the driver reads (and so clears) the ISR.
 *
 * Locks: register state is under vdev->lock; the ISR and the vectors the
 * notify paths read are atomics; INTx is driven without holding vdev->lock
 * (the PCI core holds its lock around config accesses and calls us, so the
 * order is PCI host lock -> vdev->lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/devctx.h"
#include "core/le.h"
#include "core/util.h"
#include "kvm/irq.h"
#include "kvm/kvm.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"

#define VPCI_VENDOR        0x1af4
#define VPCI_DEVICE_BASE   0x1040
#define VPCI_SUBSYS_BASE   0x40
#define VPCI_MSIX_BAR      1
#define VPCI_BAR           4
#define VPCI_BAR_SIZE      0x4000
#define VPCI_COMMON_OFF    0x0000
#define VPCI_COMMON_LEN    0x3c
#define VPCI_ISR_OFF       0x1000
#define VPCI_ISR_LEN       1
#define VPCI_DEVCFG_OFF    0x2000
#define VPCI_DEVCFG_MAX    0x1000
#define VPCI_NOTIFY_OFF    0x3000
#define VPCI_NOTIFY_MULT   4

/* Capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* Common configuration fields (4.1.4.3). */
#define CC_DFSELECT   0x00
#define CC_DF         0x04
#define CC_GFSELECT   0x08
#define CC_GF         0x0c
#define CC_MSIX       0x10
#define CC_NUMQ       0x12
#define CC_STATUS     0x14
#define CC_CFGGEN     0x15
#define CC_Q_SELECT   0x16
#define CC_Q_SIZE     0x18
#define CC_Q_MSIX     0x1a
#define CC_Q_ENABLE   0x1c
#define CC_Q_NOFF     0x1e
#define CC_Q_DESC     0x20
#define CC_Q_DRIVER   0x28
#define CC_Q_DEVICE   0x30
#define CC_Q_NDATA    0x38
#define CC_Q_RESET    0x3a

#define ISR_QUEUE  1
#define ISR_CONFIG 2

struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type;
	uint8_t bar, id, padding[2];
	uint32_t offset, length;
} __attribute__((packed));

struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
} __attribute__((packed));

struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap;
	uint8_t pci_cfg_data[4];
} __attribute__((packed));

struct virtio_pci {
	struct pci_dev pci;
	struct vdev node;
	struct virtio_dev *vdev;
	unsigned int nr_vectors;
	uint8_t cfg_cap;                /* offset of the PCI_CFG capability */

	/* Under vdev->lock (vectors: atomics, the notify paths read them). */
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];

	/* Atomics: ISR bits, and a count of their changes (see intx_sync()). */
	uint8_t isr;
	uint32_t isr_seq;
	/* A config-window access in progress on this thread holds the PCI host lock. */
	bool window_active;
	pthread_t window_thread;

	pthread_mutex_t notify_lock;    /* the ioeventfds */
	uint64_t ioev_base;             /* BAR 4 address they are assigned at, 0: none */
	bool ioev[VIRTIO_MAX_QUEUES];
	bool ioev_warned;
};

static struct virtio_pci *to_vpci(struct virtio_dev *vdev)
{
	return vdev->transport_priv;
}


/* ---- interrupts ---- */

static bool in_window(struct virtio_pci *vp)
{
	return __atomic_load_n(&vp->window_active, __ATOMIC_ACQUIRE) &&
	       pthread_equal(vp->window_thread, pthread_self());
}

/*
 * INTx while the PCI host lock is held by this thread (a config-window
 * access): what pci_set_intx() does, without taking the lock again.
 */
static void intx_apply_held(struct pci_dev *dev, bool level)
{
	bool disabled = get_le16(dev->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	uint16_t status = get_le16(dev->cfg + PCI_STATUS) & ~PCI_STATUS_INTERRUPT;

	if (dev->intx_level == level)
		return;
	dev->intx_level = level;
	if (level)
		status |= PCI_STATUS_INTERRUPT;
	put_le16(dev->cfg + PCI_STATUS, status);
	if (dev->intx_gsi)
		kvm_irq_line(dev->ctx->kvm, dev->intx_gsi, level && !disabled);
}

/*
 * Makes INTA# follow the ISR.  Lock-free: whoever changes the ISR bumps
 * isr_seq after the change and then calls this; a caller that sees the
 * count move while it applied a level applies again, so the last level
 * applied always reflects the last change.
 */
static void intx_sync(struct virtio_pci *vp)
{
	uint32_t seq;
	bool level;

	if (in_window(vp)) {
		intx_apply_held(&vp->pci, __atomic_load_n(&vp->isr, __ATOMIC_SEQ_CST) != 0);
		return;
	}
	do {
		seq = __atomic_load_n(&vp->isr_seq, __ATOMIC_SEQ_CST);
		level = __atomic_load_n(&vp->isr, __ATOMIC_SEQ_CST) != 0;
		pci_set_intx(&vp->pci, level);
	} while (__atomic_load_n(&vp->isr_seq, __ATOMIC_SEQ_CST) != seq);
}

static void isr_raise(struct virtio_pci *vp, uint8_t bit)
{
	__atomic_fetch_or(&vp->isr, bit, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&vp->isr_seq, 1, __ATOMIC_SEQ_CST);
	intx_sync(vp);
}

static uint8_t isr_take(struct virtio_pci *vp)
{
	uint8_t v = __atomic_exchange_n(&vp->isr, 0, __ATOMIC_SEQ_CST);

	__atomic_fetch_add(&vp->isr_seq, 1, __ATOMIC_SEQ_CST);
	intx_sync(vp);
	return v;
}

static void vpci_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_pci *vp = to_vpci(vdev);

	if (msix_enabled(&vp->pci)) {
		uint16_t v = __atomic_load_n(&vp->queue_vector[q], __ATOMIC_RELAXED);

		if (v != MSIX_NO_VECTOR)
			msix_notify(&vp->pci, v);
		return;
	}
	isr_raise(vp, ISR_QUEUE);
}

static void vpci_notify_config(struct virtio_dev *vdev)
{
	struct virtio_pci *vp = to_vpci(vdev);

	if (msix_enabled(&vp->pci)) {
		uint16_t v = __atomic_load_n(&vp->config_vector, __ATOMIC_RELAXED);

		if (v != MSIX_NO_VECTOR)
			msix_notify(&vp->pci, v);
		return;
	}
	isr_raise(vp, ISR_CONFIG);
}

/* Status 0, with vdev->lock held: INTx is lowered by the caller afterwards. */
static void vpci_reset(struct virtio_dev *vdev)
{
	struct virtio_pci *vp = to_vpci(vdev);

	vp->dfselect = 0;
	vp->gfselect = 0;
	vp->queue_select = 0;
	__atomic_store_n(&vp->config_vector, MSIX_NO_VECTOR, __ATOMIC_RELAXED);
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		__atomic_store_n(&vp->queue_vector[q], MSIX_NO_VECTOR, __ATOMIC_RELAXED);
	__atomic_store_n(&vp->isr, 0, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&vp->isr_seq, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_transport_ops vpci_transport = {
	.notify_queue = vpci_notify_queue,
	.notify_config = vpci_notify_config,
	.reset = vpci_reset,
};

/* ---- common configuration ---- */

static uint16_t valid_vector(struct virtio_pci *vp, uint32_t v)
{
	return v < vp->nr_vectors ? (uint16_t)v : MSIX_NO_VECTOR;
}

/* The selected queue, or NULL when queue_select is out of range. */
static struct virtq *selected_vq(struct virtio_pci *vp)
{
	return vp->queue_select < vp->vdev->nr_queues ? &vp->vdev->vqs[vp->queue_select] : NULL;
}

static uint64_t *queue_addr_field(struct virtq *vq, uint32_t base)
{
	switch (base) {
	case CC_Q_DESC:
		return &vq->cfg.desc_gpa;
	case CC_Q_DRIVER:
		return &vq->cfg.avail_gpa;
	default:
		return &vq->cfg.used_gpa;
	}
}

static void bad_access(struct virtio_pci *vp, const char *what, uint64_t off, unsigned int len)
{
	log_msg(&vp->pci.ctx->log, KEEL_LOG_DEBUG, "%s: %u-byte %s at common config offset 0x%llx ignored",
	       vp->vdev->name, len, what, (unsigned long long)off);
}

/* Field width at `off`, 0 for a hole; 64-bit fields take 4- or 8-byte accesses. */
static bool common_width_ok(uint32_t off, unsigned int len)
{
	if (off >= CC_Q_DESC && off < CC_Q_NDATA)
		return (len == 8 && !(off & 7)) || (len == 4 && !(off & 3));
	switch (off) {
	case CC_DFSELECT: case CC_DF: case CC_GFSELECT: case CC_GF:
		return len == 4;
	case CC_MSIX: case CC_NUMQ: case CC_Q_SELECT: case CC_Q_SIZE: case CC_Q_MSIX:
	case CC_Q_ENABLE: case CC_Q_NOFF: case CC_Q_NDATA: case CC_Q_RESET:
		return len == 2;
	case CC_STATUS: case CC_CFGGEN:
		return len == 1;
	default:
		return false;
	}
}

static uint64_t common_read(struct virtio_pci *vp, uint32_t off, unsigned int len)
{
	struct virtio_dev *vdev = vp->vdev;
	struct virtq *vq = selected_vq(vp);
	uint64_t v = 0;

	if (off >= CC_Q_DESC && off < CC_Q_NDATA) {
		if (vq) {
			v = *queue_addr_field(vq, off & ~7u);
			if (off & 4)
				v >>= 32;
			else if (len == 4)
				v &= 0xffffffff;
		}
		return v;
	}
	switch (off) {
	case CC_DFSELECT:
		return vp->dfselect;
	case CC_DF:
		return vp->dfselect < 2 ? (uint32_t)(vdev->host_features >> (32 * vp->dfselect)) : 0;
	case CC_GFSELECT:
		return vp->gfselect;
	case CC_GF:
		return vp->gfselect < 2 ? (uint32_t)(vdev->driver_features >> (32 * vp->gfselect)) : 0;
	case CC_MSIX:
		return vp->config_vector;
	case CC_NUMQ:
		return vdev->nr_queues;
	case CC_STATUS:
		return vdev->status;
	case CC_CFGGEN:
		return vdev->config_generation;
	case CC_Q_SELECT:
		return vp->queue_select;
	case CC_Q_SIZE:
		return vq ? vq->cfg.size : 0;
	case CC_Q_MSIX:
		return vq ? vp->queue_vector[vp->queue_select] : MSIX_NO_VECTOR;
	case CC_Q_ENABLE:
		return vq ? vdev->queue_ready[vp->queue_select] : 0;
	case CC_Q_NOFF:
		return vq ? vp->queue_select : 0;
	default:
		return 0;       /* queue_notify_data, queue_reset: not offered */
	}
}

/* With vdev->lock held; returns true when `v` is a status to hand to virtio_dev_set_status(). */
static bool common_write(struct virtio_pci *vp, uint32_t off, unsigned int len, uint64_t v)
{
	struct virtio_dev *vdev = vp->vdev;
	struct virtq *vq = selected_vq(vp);
	unsigned int q = vp->queue_select;
	bool locked_queue = vq && (vdev->queue_ready[q] ||
				   (vdev->status & VIRTIO_STATUS_DRIVER_OK));

	if (off >= CC_Q_DESC && off < CC_Q_NDATA) {
		uint64_t *f;

		if (!vq || locked_queue) {
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: queue %u address written while %s; ignored", vdev->name, q,
			       vq ? "enabled" : "out of range");
			return false;
		}
		f = queue_addr_field(vq, off & ~7u);
		if (len == 8)
			*f = v;
		else if (off & 4)
			*f = (*f & 0xffffffffULL) | (v << 32);
		else
			*f = (*f & ~0xffffffffULL) | (v & 0xffffffffULL);
		return false;
	}
	switch (off) {
	case CC_DFSELECT:
		vp->dfselect = (uint32_t)v;
		break;
	case CC_GFSELECT:
		vp->gfselect = (uint32_t)v;
		break;
	case CC_GF:
		if (vdev->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)) {
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: driver features written after FEATURES_OK; ignored", vdev->name);
		} else if (vp->gfselect < 2) {
			unsigned int shift = 32 * vp->gfselect;

			vdev->driver_features = (vdev->driver_features & ~(0xffffffffULL << shift)) |
						((v & 0xffffffffULL) << shift);
		}
		break;
	case CC_MSIX:
		__atomic_store_n(&vp->config_vector, valid_vector(vp, (uint32_t)v), __ATOMIC_RELAXED);
		break;
	case CC_STATUS:
		return true;
	case CC_Q_SELECT:
		vp->queue_select = (uint16_t)v;
		break;
	case CC_Q_SIZE:
		if (!vq || locked_queue) {
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING, "%s: queue %u size written while %s; ignored",
			       vdev->name, q, vq ? "enabled" : "out of range");
		} else if (!v || (v & (v - 1)) || v > vdev->queue_max_size) {
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: queue %u size %u is not a power of two in 1..%u; ignored",
			       vdev->name, q, (unsigned int)v, vdev->queue_max_size);
		} else {
			vq->cfg.size = (uint16_t)v;
		}
		break;
	case CC_Q_MSIX:
		if (vq)
			__atomic_store_n(&vp->queue_vector[q], valid_vector(vp, (uint32_t)v),
					 __ATOMIC_RELAXED);
		break;
	case CC_Q_ENABLE:
		if (vq && v == 1 && !(vdev->status & VIRTIO_STATUS_DRIVER_OK))
			vdev->queue_ready[q] = true;
		else if (!(vq && v == 1 && vdev->queue_ready[q]))
			log_msg(&vdev->ctx->log, KEEL_LOG_WARNING,
			       "%s: queue_enable %u for queue %u%s; ignored", vdev->name,
			       (unsigned int)v, q, !vq ? " (out of range)" :
			       v != 1 ? " (only 1 is allowed)" : " after DRIVER_OK");
		break;
	default:
		/* Read-only fields (device_feature, num_queues, ...): ignored. */
		break;
	}
	return false;
}

static void common_access(struct virtio_pci *vp, uint32_t off, void *data, unsigned int len,
			  bool is_write)
{
	struct virtio_dev *vdev = vp->vdev;
	uint64_t v = 0;
	bool set_status = false;

	if (!common_width_ok(off, len)) {
		bad_access(vp, is_write ? "write" : "read", off, len);
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write)
		memcpy(&v, data, len);
	pthread_mutex_lock(&vdev->lock);
	if (is_write)
		set_status = common_write(vp, off, len, v);
	else
		v = common_read(vp, off, len);
	pthread_mutex_unlock(&vdev->lock);
	if (!is_write)
		memcpy(data, &v, len);
	if (set_status) {
		virtio_dev_set_status(vdev, (uint8_t)v);
		if (!v)
			intx_sync(vp);  /* the reset cleared the ISR */
	}
}

/* ---- BAR 4 ---- */

static void notify_write(struct virtio_pci *vp, uint32_t off)
{
	uint32_t q = off / VPCI_NOTIFY_MULT;

	if (off % VPCI_NOTIFY_MULT || q >= vp->vdev->nr_queues)
		return;
	efd_signal(vp->vdev->kick_fd[q]);
}

static void devcfg_access(struct virtio_pci *vp, uint32_t off, void *data, unsigned int len,
			  bool is_write)
{
	struct virtio_dev *vdev = vp->vdev;

	if (off + len > vdev->config_size || !(is_write ? (void *)vdev->ops->config_write :
						      (void *)vdev->ops->config_read)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vdev->lock);
	if (is_write)
		vdev->ops->config_write(vdev, off, data, len);
	else
		vdev->ops->config_read(vdev, off, data, len);
	pthread_mutex_unlock(&vdev->lock);
}

static void bar4_access(struct virtio_pci *vp, uint64_t off, void *data, unsigned int len,
			bool is_write)
{
	if (off + len > VPCI_BAR_SIZE) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (off < VPCI_ISR_OFF) {
		common_access(vp, (uint32_t)off, data, len, is_write);
	} else if (off < VPCI_DEVCFG_OFF) {
		if (is_write)
			return;
		memset(data, 0, len);
		if (off == VPCI_ISR_OFF)
			*(uint8_t *)data = isr_take(vp);
	} else if (off < VPCI_NOTIFY_OFF) {
		devcfg_access(vp, (uint32_t)(off - VPCI_DEVCFG_OFF), data, len, is_write);
	} else if (is_write) {
		notify_write(vp, (uint32_t)(off - VPCI_NOTIFY_OFF));
	} else {
		memset(data, 0, len);
	}
}

static void bar4_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	struct pci_dev *dev = pci_bar_dev(bd);

	bar4_access(container_of(dev, struct virtio_pci, pci), off, data, len, false);
}

static void bar4_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	struct pci_dev *dev = pci_bar_dev(bd);

	bar4_access(container_of(dev, struct virtio_pci, pci), off, (void *)data, len, true);
}

static const struct bus_dev_ops bar4_ops = { .read = bar4_read, .write = bar4_write };

/* ---- PCI hooks ---- */

static void ioev_clear(struct virtio_pci *vp)
{
	for (unsigned int q = 0; q < vp->vdev->nr_queues; q++) {
		if (!vp->ioev[q])
			continue;
		ioeventfd_deassign(vp->pci.ctx->kvm, vp->vdev->kick_fd[q],
				   vp->ioev_base + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * q, 0, false);
		vp->ioev[q] = false;
	}
	vp->ioev_base = 0;
}

/* Moves the notification ioeventfds to where BAR 4 is now (or drops them). */
static void ioev_update(struct virtio_pci *vp)
{
	uint64_t base = pci_bar_addr(&vp->pci, VPCI_BAR);

	pthread_mutex_lock(&vp->notify_lock);
	if (base != vp->ioev_base) {
		ioev_clear(vp);
		vp->ioev_base = base;
		for (unsigned int q = 0; base && q < vp->vdev->nr_queues; q++) {
			keel_error *err = NULL;
			uint64_t addr = base + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * q;

			if (ioeventfd_assign(vp->pci.ctx->kvm, vp->vdev->kick_fd[q], addr, 0, false,
					     &err) == 0) {
				vp->ioev[q] = true;
				continue;
			}
			/* Kicks still work, through a VM exit and notify_write(). */
			if (!vp->ioev_warned)
				log_msg(&vp->pci.ctx->log, KEEL_LOG_WARNING, "%s: queue %u kicks take the slow path: %s",
				       vp->vdev->name, q, keel_error_get_message(err));
			vp->ioev_warned = true;
			keel_error_free(err);
		}
	}
	pthread_mutex_unlock(&vp->notify_lock);
}

static void vpci_bar_remapped(struct pci_dev *dev, int bar)
{
	if (bar == VPCI_BAR)
		ioev_update(container_of(dev, struct virtio_pci, pci));
}

/*
 * The PCI_CFG capability (4.1.4.9): runs with the PCI host lock held, so
 * intx_sync() must not take it again: window_active tells it so.
 */
static void vpci_config_written(struct pci_dev *dev, uint32_t off, unsigned int len)
{
	struct virtio_pci *vp = container_of(dev, struct virtio_pci, pci);
	uint32_t c = vp->cfg_cap;
	uint32_t data = c + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t lenf = c + offsetof(struct virtio_pci_cap, length);
	uint8_t bar = dev->cfg[c + offsetof(struct virtio_pci_cap, bar)];
	uint32_t woff = get_le32(dev->cfg + c + offsetof(struct virtio_pci_cap, offset));
	uint32_t wlen = get_le32(dev->cfg + lenf);
	bool is_write;

	if (!c || off >= data + 4 || off + len <= c)
		return;
	if (off < data + 4 && off + len > data)
		is_write = true;
	else if (off < lenf + 4 && off + len > lenf)
		is_write = false;
	else
		return;
	if (bar != VPCI_BAR || (wlen != 1 && wlen != 2 && wlen != 4) || woff % wlen ||
	    woff > VPCI_BAR_SIZE - wlen)
		return;
	vp->window_thread = pthread_self();
	__atomic_store_n(&vp->window_active, true, __ATOMIC_RELEASE);
	bar4_access(vp, woff, dev->cfg + data, wlen, is_write);
	__atomic_store_n(&vp->window_active, false, __ATOMIC_RELEASE);
}

/* Function reset (with the VM): the PCI core lowered INTx and reset MSI-X. */
static void vpci_pci_reset(struct pci_dev *dev)
{
	struct virtio_pci *vp = container_of(dev, struct virtio_pci, pci);

	virtio_dev_set_status(vp->vdev, 0);
}

static const struct pci_dev_ops vpci_ops = {
	.bar_remapped = vpci_bar_remapped,
	.config_written = vpci_config_written,
	.reset = vpci_pci_reset,
};

/* ---- lifetime ---- */

static void vpci_vdev_reset(struct vdev *node)
{
	struct virtio_pci *vp = container_of(node, struct virtio_pci, node);

	virtio_dev_set_status(vp->vdev, 0);
	intx_sync(vp);
}

static void vpci_free(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->notify_lock);
	ioev_clear(vp);
	pthread_mutex_unlock(&vp->notify_lock);
	msix_fini(&vp->pci);
	pthread_mutex_destroy(&vp->notify_lock);
	free(vp);
}

static void vpci_destroy(struct vdev *node)
{
	struct virtio_pci *vp = container_of(node, struct virtio_pci, node);
	struct virtio_dev *vdev = vp->vdev;

	virtio_dev_quiesce(vdev);
	virtio_dev_set_status(vdev, 0);
	pci_unregister(&vp->pci);
	vdev->transport = NULL;
	vdev->transport_priv = NULL;
	vpci_free(vp);
	if (vdev->ops->destroy)
		vdev->ops->destroy(vdev);
}

static uint32_t class_of(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x020000;        /* network controller, Ethernet */
	case VIRTIO_ID_BLOCK:
		return 0x018000;        /* mass storage, other */
	case VIRTIO_ID_CONSOLE:
		return 0x078000;        /* communication controller, other */
	default:
		return 0x00ff00;        /* unclassified */
	}
}

static int add_cap(struct virtio_pci *vp, const void *cap, const uint8_t *wmask, unsigned int len,
		   keel_error **err)
{
	uint8_t off = pci_dev_add_cap(&vp->pci, cap, wmask, len);

	if (!off)
		return err_set(err, KEEL_ERR_TOO_LARGE, "%s: no room for a virtio capability",
			       vp->vdev->name);
	return off;
}

int virtio_pci_attach(struct pci_host *host, struct virtio_dev *vdev, keel_error **err)
{
	struct devctx *ctx = vdev->ctx;
	struct virtio_pci *vp;
	struct virtio_pci_cap cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(cap),
				      .bar = VPCI_BAR };
	struct virtio_pci_notify_cap ncap = {
		.cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(ncap),
			 .cfg_type = VIRTIO_PCI_CAP_NOTIFY_CFG, .bar = VPCI_BAR,
			 .offset = VPCI_NOTIFY_OFF,
			 .length = VPCI_NOTIFY_MULT * vdev->nr_queues },
		.notify_off_multiplier = VPCI_NOTIFY_MULT,
	};
	struct virtio_pci_cfg_cap ccap = {
		.cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(ccap),
			 .cfg_type = VIRTIO_PCI_CAP_PCI_CFG },
	};
	uint8_t cwmask[sizeof(ccap)] = { 0 };
	int off;

	if (vdev->config_size > VPCI_DEVCFG_MAX)
		return err_set(err, KEEL_ERR_INVALID, "%s: %u bytes of device configuration (%d supported)",
			       vdev->name, vdev->config_size, VPCI_DEVCFG_MAX);
	if (vdev->nr_queues + 1 > MSIX_MAX_VECTORS)
		return err_set(err, KEEL_ERR_INVALID, "%s: %u queues need more MSI-X vectors than %d",
			       vdev->name, vdev->nr_queues, MSIX_MAX_VECTORS);
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory attaching %s", vdev->name);
	vp->vdev = vdev;
	vp->nr_vectors = vdev->nr_queues + 1;
	pthread_mutex_init(&vp->notify_lock, NULL);
	vp->config_vector = MSIX_NO_VECTOR;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->queue_vector[q] = MSIX_NO_VECTOR;

	pci_dev_init(&vp->pci, ctx, vdev->name, &vpci_ops, VPCI_VENDOR,
		     (uint16_t)(VPCI_DEVICE_BASE + vdev->device_id), class_of(vdev->device_id), 1,
		     VPCI_VENDOR, (uint16_t)(VPCI_SUBSYS_BASE + vdev->device_id));
	pci_dev_set_bar(&vp->pci, VPCI_BAR, PCI_BAR_MEM32, VPCI_BAR_SIZE, &bar4_ops);

	cap.cfg_type = VIRTIO_PCI_CAP_COMMON_CFG;
	cap.offset = VPCI_COMMON_OFF;
	cap.length = VPCI_COMMON_LEN;
	if (add_cap(vp, &cap, NULL, sizeof(cap), err) < 0 ||
	    add_cap(vp, &ncap, NULL, sizeof(ncap), err) < 0)
		goto fail;
	cap.cfg_type = VIRTIO_PCI_CAP_ISR_CFG;
	cap.offset = VPCI_ISR_OFF;
	cap.length = VPCI_ISR_LEN;
	if (add_cap(vp, &cap, NULL, sizeof(cap), err) < 0)
		goto fail;
	/* Linux rejects a zero-length device capability: devices without config get 4 bytes of 0. */
	cap.cfg_type = VIRTIO_PCI_CAP_DEVICE_CFG;
	cap.offset = VPCI_DEVCFG_OFF;
	cap.length = vdev->config_size ? vdev->config_size : 4;
	if (add_cap(vp, &cap, NULL, sizeof(cap), err) < 0)
		goto fail;
	/* The window: bar, offset, length and data are the driver's. */
	cwmask[offsetof(struct virtio_pci_cap, bar)] = 0xff;
	memset(cwmask + offsetof(struct virtio_pci_cap, offset), 0xff, 8);
	memset(cwmask + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 0xff, 4);
	off = add_cap(vp, &ccap, cwmask, sizeof(ccap), err);
	if (off < 0)
		goto fail;
	vp->cfg_cap = (uint8_t)off;

	if (msix_init(&vp->pci, vp->nr_vectors, VPCI_MSIX_BAR, err) < 0)
		goto fail;
	vdev->transport = &vpci_transport;
	vdev->transport_priv = vp;
	if (pci_register(host, &vp->pci, err) < 0) {
		vdev->transport = NULL;
		vdev->transport_priv = NULL;
		goto fail;
	}
	vp->node = (struct vdev){ .name = vdev->name, .reset = vpci_vdev_reset,
				  .destroy = vpci_destroy };
	devctx_add(ctx, &vp->node);
	return 0;
fail:
	vpci_free(vp);
	return -1;
}
