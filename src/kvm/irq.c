// SPDX-License-Identifier: MIT
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/irq.h"
#include "kvm/kvm.h"

#define IOAPIC_PINS 24
#define PIC_IRQS    16

static struct kvm_irq_routing_entry *route_add(struct irq_routing *r)
{
	if (r->nr == r->cap) {
		unsigned int cap = r->cap ? r->cap * 2 : 64;
		struct kvm_irq_routing_entry *n = realloc(r->entries, cap * sizeof(*n));

		if (!n)
			return NULL;
		r->entries = n;
		r->cap = cap;
	}
	memset(&r->entries[r->nr], 0, sizeof(r->entries[0]));
	return &r->entries[r->nr++];
}

static int route_commit(struct irq_routing *r, keel_error **err)
{
	struct kvm_irq_routing *tab;
	int ret;

	tab = calloc(1, sizeof(*tab) + r->nr * sizeof(r->entries[0]));
	if (!tab)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory updating interrupt routes");
	tab->nr = r->nr;
	memcpy(tab->entries, r->entries, r->nr * sizeof(r->entries[0]));
	ret = ioctl(r->kvm->vm_fd, KVM_SET_GSI_ROUTING, tab);
	free(tab);
	if (ret < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_GSI_ROUTING (%u routes) failed",
				 r->nr);
	return 0;
}

int irq_routing_init(struct irq_routing *r, struct kvm *kvm, keel_error **err)
{
	int max;

	memset(r, 0, sizeof(*r));
	r->kvm = kvm;
	pthread_mutex_init(&r->lock, NULL);
	r->next_gsi = IRQ_FIRST_MSI_GSI;
	max = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
	r->max_gsi = max > 0 ? (uint32_t)max : 1024;
	/* The routes KVM installs by default: replacing the table drops them. */
	for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		struct kvm_irq_routing_entry *e;

		if (gsi < PIC_IRQS) {
			e = route_add(r);
			if (!e)
				goto oom;
			e->gsi = gsi;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = gsi % 8;
		}
		e = route_add(r);
		if (!e)
			goto oom;
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi;
	}
	return 0;
oom:
	return err_set(err, KEEL_ERR_NOMEM, "out of memory building interrupt routes");
}

void irq_routing_fini(struct irq_routing *r)
{
	free(r->entries);
	r->entries = NULL;
	if (r->kvm)
		pthread_mutex_destroy(&r->lock);
	r->kvm = NULL;
}

int irq_alloc_gsi(struct irq_routing *r, keel_error **err)
{
	int gsi = -1;

	pthread_mutex_lock(&r->lock);
	if (r->next_gsi < r->max_gsi)
		gsi = (int)r->next_gsi++;
	pthread_mutex_unlock(&r->lock);
	if (gsi < 0)
		err_set(err, KEEL_ERR_TOO_LARGE, "no interrupt (GSI) left: KVM allows %u",
			r->max_gsi);
	return gsi;
}

static struct kvm_irq_routing_entry *route_find(struct irq_routing *r, uint32_t gsi)
{
	for (unsigned int i = 0; i < r->nr; i++)
		if (r->entries[i].gsi == gsi && r->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return &r->entries[i];
	return NULL;
}

int irq_route_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data,
		  keel_error **err)
{
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&r->lock);
	e = route_find(r, gsi);
	if (!e)
		e = route_add(r);
	if (!e) {
		pthread_mutex_unlock(&r->lock);
		return err_set(err, KEEL_ERR_NOMEM, "out of memory routing GSI %u", gsi);
	}
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	ret = route_commit(r, err);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_unroute(struct irq_routing *r, uint32_t gsi, keel_error **err)
{
	struct kvm_irq_routing_entry *e;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	e = route_find(r, gsi);
	if (e) {
		*e = r->entries[--r->nr];
		ret = route_commit(r, err);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irqfd_assign(struct kvm *kvm, int fd, uint32_t gsi, keel_error **err)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

	if (ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_IRQFD for GSI %u failed", gsi);
	return 0;
}

void irqfd_deassign(struct kvm *kvm, int fd, uint32_t gsi)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };

	ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd);
}

static int ioeventfd(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
		     bool deassign)
{
	struct kvm_ioeventfd io = {
		.addr = addr, .len = len, .fd = fd,
		.flags = (is_pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &io);
}

int ioeventfd_assign(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
		     keel_error **err)
{
	if (ioeventfd(kvm, fd, addr, len, is_pio, false) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_IOEVENTFD at %s 0x%llx failed",
				 is_pio ? "port" : "address", (unsigned long long)addr);
	return 0;
}

void ioeventfd_deassign(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio)
{
	ioeventfd(kvm, fd, addr, len, is_pio, true);
}

static int ioeventfd_match(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
			   uint64_t value, bool deassign)
{
	struct kvm_ioeventfd io = {
		.datamatch = value, .addr = addr, .len = len, .fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (is_pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &io);
}

int ioeventfd_assign_match(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
			   uint64_t value, keel_error **err)
{
	if (ioeventfd_match(kvm, fd, addr, len, is_pio, value, false) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno,
				 "KVM_IOEVENTFD at %s 0x%llx for value %llu failed",
				 is_pio ? "port" : "address", (unsigned long long)addr,
				 (unsigned long long)value);
	return 0;
}

void ioeventfd_deassign_match(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
			      uint64_t value)
{
	ioeventfd_match(kvm, fd, addr, len, is_pio, value, true);
}
