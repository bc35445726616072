/* SPDX-License-Identifier: MIT */
/*
 * MSI-X for keel's PCI devices: the capability, the vector table and PBA in
 * a BAR of their own, each vector routed to a KVM GSI and injected through
 * an irqfd, so an interrupt never passes through a vCPU's exit path.
 */
#ifndef KEEL_PCI_MSIX_H
#define KEEL_PCI_MSIX_H

#include <stdbool.h>

#include "core/error.h"

struct pci_dev;

#define MSIX_MAX_VECTORS 128
#define MSIX_NO_VECTOR   0xffff

/* Adds the capability and declares BAR `bar` (table at 0, PBA at 2 KiB). */
int msix_init(struct pci_dev *dev, unsigned int nr_vectors, int bar, keel_error **err);
void msix_fini(struct pci_dev *dev);
/* True when the guest enabled MSI-X (the device must not use INTx then). */
bool msix_enabled(struct pci_dev *dev);
/* Signals `vector`, or records it as pending while masked.  Any thread. */
void msix_notify(struct pci_dev *dev, unsigned int vector);
/* Called by the PCI core after config writes (message control). */
void msix_config_written(struct pci_dev *dev, unsigned int off, unsigned int len);
/* Back to power-on: disabled, every vector masked, nothing pending. */
void msix_reset(struct pci_dev *dev);

#endif
