// SPDX-License-Identifier: MIT
/* The address-space bus: claims, overlaps, dispatch and unclaimed access. */
#include <stdint.h>

#include "bus/bus.h"
#include "check.h"

struct reg_dev {
	struct bus_dev bus;
	uint64_t last_off;
	uint32_t value;
};

static void reg_read(struct bus_dev *dev, uint64_t off, void *data, unsigned int len)
{
	struct reg_dev *r = (struct reg_dev *)dev;

	r->last_off = off;
	memcpy(data, &r->value, len);
}

static void reg_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned int len)
{
	struct reg_dev *r = (struct reg_dev *)dev;

	r->last_off = off;
	r->value = 0;
	memcpy(&r->value, data, len);
}

static const struct bus_dev_ops reg_ops = { .read = reg_read, .write = reg_write };

int main(void)
{
	struct reg_dev a = { .bus = { .ops = &reg_ops, .name = "a" } };
	struct reg_dev b = { .bus = { .ops = &reg_ops, .name = "b" } };
	struct reg_dev c = { .bus = { .ops = &reg_ops, .name = "c" } };
	keel_error *err = NULL;
	struct bus *bus = bus_new("test", &err);
	uint32_t v = 0x12345678, out = 0;

	CHECK(bus);
	CHECK(bus_add(bus, &a.bus, 0x100, 8, &err) == 0);
	CHECK(bus_add(bus, &b.bus, 0x10, 4, &err) == 0);
	CHECK(bus_add(bus, &c.bus, 0x104, 8, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "overlaps a");
	CHECK(bus_add(bus, &c.bus, 0, 0, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "invalid range");
	CHECK(bus_add(bus, &c.bus, UINT64_MAX - 1, 4, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_INVALID, "invalid range");

	CHECK(bus_access(bus, 0x103, &v, 4, true));
	CHECK(a.last_off == 3 && a.value == 0x12345678);
	CHECK(bus_access(bus, 0x13, &out, 1, false));
	CHECK(b.last_off == 3);
	/* Straddling the end of a claim: no handler sees it (b ends at 0x14). */
	b.last_off = 99;
	out = 0;
	CHECK(!bus_access(bus, 0x12, &out, 4, false));
	CHECK(out == 0xffffffff && b.last_off == 99);
	CHECK(!bus_access(bus, 0x13, &v, 2, true));
	CHECK(b.last_off == 99);
	/* Unclaimed: reads all-ones, writes dropped, reported as unclaimed. */
	CHECK(!bus_access(bus, 0x108, &out, 4, false));
	CHECK(out == 0xffffffff);
	CHECK(!bus_access(bus, 0x0f, &v, 1, true));
	/* Adjacent claims are fine; removal frees the range. */
	CHECK(bus_add(bus, &c.bus, 0x108, 8, &err) == 0);
	bus_del(bus, &a.bus);
	CHECK(!bus_access(bus, 0x100, &out, 4, false));
	CHECK(bus_add(bus, &a.bus, 0x100, 8, &err) == 0);
	bus_free(bus);
	return test_exit();
}
