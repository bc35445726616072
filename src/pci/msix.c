// SPDX-License-Identifier: MIT
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/devctx.h"
#include "kvm/irq.h"
#include "pci/msix.h"
#include "pci/pci.h"

#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_FMASK    0x4000
#define MSIX_ENTRY_SIZE    16
#define MSIX_PBA_OFFSET    0x800
#define MSIX_BAR_SIZE      0x1000
#define MSIX_VECTOR_MASKED 1

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix {
	struct pci_dev *dev;
	pthread_mutex_t lock;
	unsigned int nr;
	uint8_t cap;                    /* capability offset in config space */
	bool enabled, fmask;
	struct msix_entry table[MSIX_MAX_VECTORS];
	uint64_t pba[MSIX_MAX_VECTORS / 64];
	int gsi[MSIX_MAX_VECTORS];
	int fd[MSIX_MAX_VECTORS];       /* irqfd per vector */
};

static void fire(struct msix *m, unsigned int v)
{
	uint64_t one = 1;

	if (write(m->fd[v], &one, sizeof(one)) < 0) {
		/* eventfd counter overflow: the interrupt is pending anyway. */
	}
}

/* With m->lock held: delivers what became deliverable after an unmask. */
static void deliver_pending(struct msix *m)
{
	if (!m->enabled || m->fmask)
		return;
	for (unsigned int v = 0; v < m->nr; v++) {
		if ((m->pba[v / 64] >> (v % 64)) & 1 && !(m->table[v].ctrl & MSIX_VECTOR_MASKED)) {
			m->pba[v / 64] &= ~(1ULL << (v % 64));
			fire(m, v);
		}
	}
}

static void table_read(struct msix *m, uint64_t off, void *data, unsigned int len)
{
	memset(data, 0, len);
	pthread_mutex_lock(&m->lock);
	if (off >= MSIX_PBA_OFFSET) {
		off -= MSIX_PBA_OFFSET;
		if (off + len <= sizeof(m->pba))
			memcpy(data, (uint8_t *)m->pba + off, len);
	} else if (off + len <= m->nr * MSIX_ENTRY_SIZE && (len == 4 || len == 8) && !(off & 3)) {
		memcpy(data, (uint8_t *)m->table + off, len);
	}
	pthread_mutex_unlock(&m->lock);
}

static void table_write(struct msix *m, uint64_t off, const void *data, unsigned int len)
{
	unsigned int v = (unsigned int)(off / MSIX_ENTRY_SIZE);
	struct msix_entry old;
	keel_error *err = NULL;

	if (off >= MSIX_PBA_OFFSET || off + len > m->nr * MSIX_ENTRY_SIZE ||
	    (len != 4 && len != 8) || (off & 3))
		return;         /* PBA is read-only; odd accesses are dropped */
	pthread_mutex_lock(&m->lock);
	old = m->table[v];
	memcpy((uint8_t *)m->table + off, data, len);
	m->table[v].ctrl &= MSIX_VECTOR_MASKED;         /* other control bits reserved */
	if (old.addr_lo != m->table[v].addr_lo || old.addr_hi != m->table[v].addr_hi ||
	    old.data != m->table[v].data) {
		uint64_t addr = ((uint64_t)m->table[v].addr_hi << 32) | m->table[v].addr_lo;

		if (irq_route_msi(m->dev->ctx->irq, (uint32_t)m->gsi[v], addr, m->table[v].data,
				  &err) < 0) {
			log_msg(&m->dev->ctx->log, KEEL_LOG_ERROR, "%s: MSI-X vector %u: %s", m->dev->name, v,
			       keel_error_get_message(err));
			keel_error_free(err);
		}
	}
	if ((old.ctrl & MSIX_VECTOR_MASKED) && !(m->table[v].ctrl & MSIX_VECTOR_MASKED))
		deliver_pending(m);
	pthread_mutex_unlock(&m->lock);
}

static void msix_bar_read(struct bus_dev *bd, uint64_t off, void *data, unsigned int len)
{
	table_read(pci_bar_dev(bd)->msix, off, data, len);
}

static void msix_bar_write(struct bus_dev *bd, uint64_t off, const void *data, unsigned int len)
{
	table_write(pci_bar_dev(bd)->msix, off, data, len);
}

static const struct bus_dev_ops msix_bar_ops = { .read = msix_bar_read, .write = msix_bar_write };

/* Capability layout (PCI 3.0, 6.8.2). */
struct msix_cap {
	uint8_t id, next;
	uint16_t ctrl;          /* table size - 1, function mask, enable */
	uint32_t table;         /* BIR | offset */
	uint32_t pba;
} __attribute__((packed));

int msix_init(struct pci_dev *dev, unsigned int nr, int bar, keel_error **err)
{
	struct msix_cap cap = {
		.id = PCI_CAP_ID_MSIX,
		.ctrl = (uint16_t)(nr - 1),
		.table = (uint32_t)bar,
		.pba = MSIX_PBA_OFFSET | (uint32_t)bar,
	};
	uint8_t wmask[sizeof(cap)] = { 0 };
	struct msix *m;

	if (nr < 1 || nr > MSIX_MAX_VECTORS)
		return err_set(err, KEEL_ERR_INVALID, "%s: %u MSI-X vectors (1-%d supported)",
			       dev->name, nr, MSIX_MAX_VECTORS);
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory for %s's MSI-X", dev->name);
	m->dev = dev;
	m->nr = nr;
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned int v = 0; v < MSIX_MAX_VECTORS; v++)
		m->fd[v] = -1;
	dev->msix = m;
	for (unsigned int v = 0; v < nr; v++) {
		m->table[v].ctrl = MSIX_VECTOR_MASKED;
		m->gsi[v] = irq_alloc_gsi(dev->ctx->irq, err);
		if (m->gsi[v] < 0)
			goto fail;
		m->fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->fd[v] < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "%s: cannot create an MSI-X eventfd",
				  dev->name);
			goto fail;
		}
		if (irqfd_assign(dev->ctx->kvm, m->fd[v], (uint32_t)m->gsi[v], err) < 0) {
			close(m->fd[v]);
			m->fd[v] = -1;
			goto fail;
		}
	}
	wmask[offsetof(struct msix_cap, ctrl) + 1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	m->cap = pci_dev_add_cap(dev, &cap, wmask, sizeof(cap));
	if (!m->cap) {
		err_set(err, KEEL_ERR_TOO_LARGE, "%s: no room for the MSI-X capability", dev->name);
		goto fail;
	}
	pci_dev_set_bar(dev, bar, PCI_BAR_MEM32, MSIX_BAR_SIZE, &msix_bar_ops);
	return 0;
fail:
	msix_fini(dev);
	return -1;
}

void msix_fini(struct pci_dev *dev)
{
	struct msix *m = dev->msix;

	if (!m)
		return;
	for (unsigned int v = 0; v < m->nr; v++) {
		if (m->fd[v] < 0)
			continue;
		irqfd_deassign(dev->ctx->kvm, m->fd[v], (uint32_t)m->gsi[v]);
		close(m->fd[v]);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
	dev->msix = NULL;
}

bool msix_enabled(struct pci_dev *dev)
{
	struct msix *m = dev->msix;
	bool on;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

void msix_notify(struct pci_dev *dev, unsigned int v)
{
	struct msix *m = dev->msix;

	if (!m || v >= m->nr)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->enabled) {
		if (m->fmask || (m->table[v].ctrl & MSIX_VECTOR_MASKED))
			m->pba[v / 64] |= 1ULL << (v % 64);
		else
			fire(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_config_written(struct pci_dev *dev, unsigned int off, unsigned int len)
{
	struct msix *m = dev->msix;
	uint16_t ctrl;

	if (off > m->cap + 3u || off + len <= m->cap + 2u)
		return;
	memcpy(&ctrl, dev->cfg + m->cap + 2, 2);
	pthread_mutex_lock(&m->lock);
	m->enabled = ctrl & MSIX_CTRL_ENABLE;
	m->fmask = ctrl & MSIX_CTRL_FMASK;
	deliver_pending(m);
	pthread_mutex_unlock(&m->lock);
}

void msix_reset(struct pci_dev *dev)
{
	struct msix *m = dev->msix;
	keel_error *err = NULL;

	pthread_mutex_lock(&m->lock);
	m->enabled = m->fmask = false;
	memset(m->pba, 0, sizeof(m->pba));
	for (unsigned int v = 0; v < m->nr; v++) {
		m->table[v] = (struct msix_entry){ .ctrl = MSIX_VECTOR_MASKED };
		irq_unroute(dev->ctx->irq, (uint32_t)m->gsi[v], &err);
		keel_error_free(err);
		err = NULL;
	}
	pthread_mutex_unlock(&m->lock);
}
