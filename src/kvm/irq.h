/* SPDX-License-Identifier: MIT */
/*
 * Interrupt plumbing in the kernel: GSI routing (KVM_SET_GSI_ROUTING
 * replaces the whole table, so keel keeps its own copy), irqfds (an eventfd
 * write injects an interrupt without leaving the kernel) and ioeventfds (a
 * guest write to an address signals an eventfd without a VMM exit).
 */
#ifndef KEEL_KVM_IRQ_H
#define KEEL_KVM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

struct kvm;
struct kvm_irq_routing_entry;

/* GSIs 0-23 are the IOAPIC pins (0-15 also the PICs); MSIs get 24 and up. */
#define IRQ_FIRST_MSI_GSI 24

struct irq_routing {
	struct kvm *kvm;
	pthread_mutex_t lock;
	struct kvm_irq_routing_entry *entries;
	unsigned int nr, cap;
	uint32_t next_gsi;
	uint32_t max_gsi;
};

int irq_routing_init(struct irq_routing *r, struct kvm *kvm, keel_error **err);
void irq_routing_fini(struct irq_routing *r);
/* A new GSI for MSI routing; -1 (and err) when KVM has none left. */
int irq_alloc_gsi(struct irq_routing *r, keel_error **err);
/* Routes `gsi` to the MSI message (addr, data) and commits the table. */
int irq_route_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data,
		  keel_error **err);
/* Removes the route of `gsi` (an MSI GSI) and commits. */
int irq_unroute(struct irq_routing *r, uint32_t gsi, keel_error **err);

int irqfd_assign(struct kvm *kvm, int fd, uint32_t gsi, keel_error **err);
void irqfd_deassign(struct kvm *kvm, int fd, uint32_t gsi);
/* `len` 0 matches any access size; is_pio for port I/O. */
int ioeventfd_assign(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
		     keel_error **err);
void ioeventfd_deassign(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio);
/* Only writes of `len` bytes (1, 2, 4 or 8) whose value is `value` signal `fd`. */
int ioeventfd_assign_match(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
			   uint64_t value, keel_error **err);
void ioeventfd_deassign_match(struct kvm *kvm, int fd, uint64_t addr, uint32_t len, bool is_pio,
			      uint64_t value);

#endif
