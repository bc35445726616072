// SPDX-License-Identifier: MIT
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"

/* Sorted by base; few devices per bus, so a sorted array beats a tree. */
struct bus {
	const char *name;
	pthread_rwlock_t lock;
	struct bus_dev **devs;
	int nr, cap;
};

struct bus *bus_new(const char *name, keel_error **err)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (!bus) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating the %s bus", name);
		return NULL;
	}
	bus->name = name;
	pthread_rwlock_init(&bus->lock, NULL);
	return bus;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->devs);
	free(bus);
}

int bus_add(struct bus *bus, struct bus_dev *dev, uint64_t base, uint64_t len, keel_error **err)
{
	int i, ret = -1;

	if (!len || base + len - 1 < base)
		return err_set(err, KEEL_ERR_INVALID, "%s: %s: invalid range 0x%llx+0x%llx",
			       bus->name, dev->name, (unsigned long long)base,
			       (unsigned long long)len);
	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->nr; i++) {
		struct bus_dev *d = bus->devs[i];

		if (base <= d->base + d->len - 1 && d->base <= base + len - 1) {
			err_set(err, KEEL_ERR_INVALID,
				"%s: %s at 0x%llx+0x%llx overlaps %s at 0x%llx+0x%llx", bus->name,
				dev->name, (unsigned long long)base, (unsigned long long)len,
				d->name, (unsigned long long)d->base, (unsigned long long)d->len);
			goto out;
		}
		if (d->base > base)
			break;
	}
	if (bus->nr == bus->cap) {
		int cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_dev **n = realloc(bus->devs, cap * sizeof(*n));

		if (!n) {
			err_set(err, KEEL_ERR_NOMEM, "out of memory adding %s", dev->name);
			goto out;
		}
		bus->devs = n;
		bus->cap = cap;
	}
	memmove(&bus->devs[i + 1], &bus->devs[i], (bus->nr - i) * sizeof(*bus->devs));
	bus->devs[i] = dev;
	bus->nr++;
	dev->base = base;
	dev->len = len;
	ret = 0;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

void bus_del(struct bus *bus, struct bus_dev *dev)
{
	pthread_rwlock_wrlock(&bus->lock);
	for (int i = 0; i < bus->nr; i++) {
		if (bus->devs[i] == dev) {
			memmove(&bus->devs[i], &bus->devs[i + 1],
				(bus->nr - i - 1) * sizeof(*bus->devs));
			bus->nr--;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
}

static struct bus_dev *bus_find(struct bus *bus, uint64_t addr)
{
	int lo = 0, hi = bus->nr - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		struct bus_dev *d = bus->devs[mid];

		if (addr < d->base)
			hi = mid - 1;
		else if (addr - d->base >= d->len)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write)
{
	struct bus_dev *d;
	uint64_t off = 0;

	/*
	 * The handler runs without the lock: it may remap ranges on this bus
	 * (a BAR moved through config space).  Devices outlive their claims:
	 * they are freed only after every vCPU has stopped.
	 */
	pthread_rwlock_rdlock(&bus->lock);
	d = bus_find(bus, addr);
	if (d)
		off = addr - d->base;
	/* An access running past the end of its claim reaches no handler. */
	if (d && len > d->len - off)
		d = NULL;
	pthread_rwlock_unlock(&bus->lock);
	if (d) {
		if (is_write)
			d->ops->write(d, off, data, len);
		else
			d->ops->read(d, off, data, len);
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	return d != NULL;
}
