/* SPDX-License-Identifier: MIT */
/*
 * An address space (port I/O or MMIO) with devices claiming ranges.  vCPU
 * exits are dispatched here; the lookup takes a read lock only, so vCPUs do
 * not serialise on each other, and handlers run unlocked.
 */
#ifndef KEEL_BUS_BUS_H
#define KEEL_BUS_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

struct bus_dev;

struct bus_dev_ops {
	/* `offset` is relative to the start of the claimed range. */
	void (*read)(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len);
	void (*write)(struct bus_dev *dev, uint64_t offset, const void *data, unsigned int len);
};

/* Embedded in each device; `base`/`len` are filled in by bus_add(). */
struct bus_dev {
	const struct bus_dev_ops *ops;
	const char *name;
	uint64_t base, len;
};

struct bus;

struct bus *bus_new(const char *name, keel_error **err);
void bus_free(struct bus *bus);
/* Claims [base, base+len); overlapping an existing claim is an error. */
int bus_add(struct bus *bus, struct bus_dev *dev, uint64_t base, uint64_t len,
	    keel_error **err);
void bus_del(struct bus *bus, struct bus_dev *dev);
/*
 * Performs an access.  Returns false when no device claims all of
 * [addr, addr+len) (an access may not straddle the end of a claim, so a
 * handler never sees an offset past its range): reads then return
 * all-ones, writes are dropped.
 */
bool bus_access(struct bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write);

#endif
