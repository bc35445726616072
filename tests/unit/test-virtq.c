// SPDX-License-Identifier: MIT
/*
 * Split virtqueue, device side: the test plays the driver, writing rings
 * and descriptors into guest RAM, and checks what virtq_* make of them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"
#include "check.h"

#define RAM_SIZE   (16ULL << 20)
#define DESC_GPA   0x10000ULL
#define AVAIL_GPA  0x90000ULL     /* room for 32768 descriptors before it */
#define USED_GPA   0xa0000ULL
#define IND_GPA    0x200000ULL    /* indirect tables */
#define DATA_GPA   0x400000ULL    /* buffers */

static struct mem ram;
static struct virtq_chain chain;

/* The driver's side of one queue. */
struct drv {
	uint16_t size;
	uint16_t avail_idx;
};

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(&ram, gpa, len);

	if (!p) {
		fprintf(stderr, "test bug: 0x%llx outside RAM\n", (unsigned long long)gpa);
		abort();
	}
	return p;
}

static uint16_t *avail_ring(void)
{
	return gp(AVAIL_GPA, 4);
}

static uint16_t *used_ring(void)
{
	return gp(USED_GPA, 4);
}

static void put_desc(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(gp(table + 16ULL * i, 16), &d, 16);
}

static void desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(DESC_GPA, i, addr, len, flags, next);
}

/* Puts `head` in the avail ring and publishes it. */
static void publish(struct drv *drv, uint16_t head)
{
	uint16_t *a = avail_ring();

	a[2 + (drv->avail_idx & (drv->size - 1))] = head;
	drv->avail_idx++;
	__atomic_store_n(&a[1], drv->avail_idx, __ATOMIC_RELEASE);
}

static void set_used_event(struct drv *drv, uint16_t v)
{
	avail_ring()[2 + drv->size] = v;
}

static uint16_t avail_event(struct drv *drv)
{
	uint16_t v;

	memcpy(&v, (uint8_t *)gp(USED_GPA, 6 + 8ULL * drv->size) + 4 + 8ULL * drv->size, 2);
	return v;
}

static void used_elem(uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gp(USED_GPA + 4 + 8ULL * slot, 8);

	*id = e[0];
	*len = e[1];
}

/* Fresh RAM rings and an enabled queue of `size`. */
static void setup(struct virtq *vq, struct drv *drv, uint16_t size, bool event_idx,
		  bool indirect)
{
	keel_error *err = NULL;

	memset(gp(DESC_GPA, 16ULL * VIRTQ_MAX_SIZE), 0, 16ULL * VIRTQ_MAX_SIZE);
	memset(gp(AVAIL_GPA, 0x10000), 0, 0x10000);
	memset(gp(USED_GPA, 0x50000), 0, 0x50000);
	virtq_reset(vq);
	vq->cfg = (struct virtq_config){ .size = size, .desc_gpa = DESC_GPA,
					 .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA };
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	*drv = (struct drv){ .size = size };
	CHECK(virtq_enable(vq, &ram, &err) == 0);
	CHECK(!err);
	CHECK(vq->enabled && !vq->broken);
}

/* Pop must fail as a guest error containing `needle` and break the queue. */
static void expect_broken(struct virtq *vq, const char *needle, int line)
{
	keel_error *err = NULL;
	int ret = virtq_pop(vq, &chain, &err);

	if (ret != -1)
		fprintf(stderr, "line %d: pop returned %d, expected -1\n", line, ret);
	CHECK(ret == -1);
	CHECK_ERR(err, KEEL_ERR_GUEST, needle);
	CHECK(vq->broken);
	/* Broken: fails again without touching guest memory. */
	{
		struct virtq copy = *vq;

		copy.avail = NULL;
		copy.desc = NULL;
		copy.used = NULL;
		copy.mem = NULL;
		CHECK(virtq_pop(&copy, &chain, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_GUEST, "broken");
		virtq_push(&copy, 0, 0);
		virtq_fill(&copy, 0, 0, 1);
		virtq_flush(&copy, 2);
		CHECK(copy.used_idx == vq->used_idx);
		CHECK(!virtq_should_notify(&copy));
		virtq_disable_kicks(&copy);
		CHECK(!virtq_enable_kicks(&copy));
		CHECK(!virtq_enable_kicks_ahead(&copy, 1));
	}
}
#define EXPECT_BROKEN(vq, needle) expect_broken((vq), (needle), __LINE__)

static void test_enable_errors(void)
{
	struct virtq vq;
	keel_error *err = NULL;
	static const struct {
		struct virtq_config cfg;
		const char *needle;
	} bad[] = {
		{ { 0, DESC_GPA, AVAIL_GPA, USED_GPA }, "queue size 0 is not a power of two" },
		{ { 3, DESC_GPA, AVAIL_GPA, USED_GPA }, "queue size 3 is not a power of two" },
		{ { 65535, DESC_GPA, AVAIL_GPA, USED_GPA }, "queue size 65535" },
		{ { 49152, DESC_GPA, AVAIL_GPA, USED_GPA }, "queue size 49152" },
		{ { 256, DESC_GPA + 8, AVAIL_GPA, USED_GPA },
		  "descriptor table at 0x10008 is not 16-byte aligned" },
		{ { 256, DESC_GPA, AVAIL_GPA + 1, USED_GPA },
		  "available ring at 0x90001 is not 2-byte aligned" },
		{ { 256, DESC_GPA, AVAIL_GPA, USED_GPA + 2 },
		  "used ring at 0xa0002 is not 4-byte aligned" },
		/* Each ring's whole extent must be inside RAM. */
		{ { 256, RAM_SIZE - 16 * 256 + 16, AVAIL_GPA, USED_GPA },
		  "descriptor table at 0xfff010 (+0x1000) is outside guest RAM" },
		{ { 256, DESC_GPA, RAM_SIZE - 6 - 2 * 256 + 2, USED_GPA },
		  "available ring at 0xfffdfc (+0x206) is outside guest RAM" },
		{ { 256, DESC_GPA, AVAIL_GPA, RAM_SIZE - 6 - 8 * 256 + 2 },
		  "used ring at 0xfff7fc (+0x806) is outside guest RAM" },
		{ { 256, DESC_GPA, AVAIL_GPA, 0xfffffffffffffffcULL },
		  "used ring at 0xfffffffffffffffc (+0x806) is outside guest RAM" },
		{ { 256, 0xfffffffffffff000ULL, AVAIL_GPA, USED_GPA },
		  "descriptor table at 0xfffffffffffff000" },
	};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		virtq_reset(&vq);
		vq.cfg = bad[k].cfg;
		CHECK(virtq_enable(&vq, &ram, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_GUEST, bad[k].needle);
		CHECK(vq.broken && !vq.enabled);
		CHECK(virtq_pop(&vq, &chain, &err) == -1);
		CHECK_ERR(err, KEEL_ERR_GUEST, "broken");
	}

	/* Exactly at the end of RAM is fine; the biggest size is fine. */
	virtq_reset(&vq);
	vq.cfg = (struct virtq_config){ 256, RAM_SIZE - 16 * 256, RAM_SIZE - 0x2000 - 6 - 2 * 256,
					RAM_SIZE - 0x1000 - 6 - 8 * 256 - 2 };
	CHECK(virtq_enable(&vq, &ram, &err) == 0);
	CHECK(!err && vq.enabled && !vq.broken);
	virtq_reset(&vq);
	vq.cfg = (struct virtq_config){ VIRTQ_MAX_SIZE, DESC_GPA, AVAIL_GPA, 0x100000 };
	CHECK(virtq_enable(&vq, &ram, &err) == 0);
	CHECK(!err);
	virtq_reset(&vq);
	vq.cfg = (struct virtq_config){ 1, DESC_GPA, AVAIL_GPA, USED_GPA };
	CHECK(virtq_enable(&vq, &ram, &err) == 0);
	CHECK(!err);

	/* A re-enable after a failure starts clean. */
	vq.cfg.size = 5;
	CHECK(virtq_enable(&vq, &ram, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_GUEST, "queue size 5");
	vq.cfg.size = 8;
	CHECK(virtq_enable(&vq, &ram, &err) == 0);
	CHECK(!vq.broken && vq.enabled);

	/* Not enabled is a host error, and does not break the queue. */
	virtq_reset(&vq);
	CHECK(virtq_pop(&vq, &chain, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_STATE, "not enabled");
	CHECK(!vq.broken);
	virtq_push(&vq, 0, 0);
	CHECK(!virtq_should_notify(&vq));
}

/* A ring across two RAM regions is rejected even if contiguous on the host. */
static void test_enable_split_regions(void)
{
	static uint8_t buf[0x20000] __attribute__((aligned(16)));
	struct mem m = { .fd = -1, .host = buf, .size = sizeof(buf), .nr_regions = 2 };
	struct virtq vq;
	keel_error *err = NULL;

	m.region[0] = (struct mem_region){ .gpa = 0, .size = 0x10000, .host = buf };
	m.region[1] = (struct mem_region){ .gpa = 0x10000, .size = 0x10000, .host = buf + 0x10000 };
	virtq_reset(&vq);
	vq.cfg = (struct virtq_config){ 16, 0x10000 - 0x80, 0x1000, 0x2000 };
	CHECK(virtq_enable(&vq, &m, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_GUEST, "descriptor table at 0xff80 (+0x100) is outside guest RAM");
	vq.cfg = (struct virtq_config){ 16, 0x0, 0x10000 - 0x10, 0x2000 };
	CHECK(virtq_enable(&vq, &m, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_GUEST, "available ring at 0xfff0 (+0x26)");
	vq.cfg = (struct virtq_config){ 16, 0x0, 0x1000, 0x10000 - 0x40 };
	CHECK(virtq_enable(&vq, &m, &err) == -1);
	CHECK_ERR(err, KEEL_ERR_GUEST, "used ring at 0xffc0 (+0x86) is outside guest RAM");
	vq.cfg = (struct virtq_config){ 16, 0x10000, 0x1000, 0x10000 - 0x86 - 2 };
	CHECK(virtq_enable(&vq, &m, &err) == 0);
	CHECK(!err);
}

static void test_single(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint32_t id, len;
	char buf[16];

	setup(&vq, &drv, 8, false, false);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	memcpy(gp(DATA_GPA, 5), "hello", 5);
	desc(3, DATA_GPA, 5, 0, 0);
	publish(&drv, 3);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!err);
	CHECK(chain.head == 3 && chain.nr_out == 1 && chain.nr_in == 0);
	CHECK(chain.out_len == 5 && chain.in_len == 0);
	CHECK(chain.iov[0].iov_base == gp(DATA_GPA, 5) && chain.iov[0].iov_len == 5);
	CHECK(virtq_chain_read(&chain, 0, buf, sizeof(buf)) == 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK(virtq_chain_write(&chain, 0, "x", 1) == 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);

	virtq_push(&vq, 3, 0);
	used_elem(0, &id, &len);
	CHECK(id == 3 && len == 0);
	CHECK(used_ring()[1] == 1);
	CHECK(virtq_should_notify(&vq));

	/* A single writable descriptor. */
	desc(0, DATA_GPA + 0x1000, 8, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.head == 0 && chain.nr_out == 0 && chain.nr_in == 1 && chain.in_len == 8);
	CHECK(virtq_chain_write(&chain, 0, "0123456789", 10) == 8);
	CHECK(!memcmp(gp(DATA_GPA + 0x1000, 8), "01234567", 8));
	CHECK(virtq_chain_read(&chain, 0, buf, 4) == 0);
	virtq_push(&vq, 0, 8);
	used_elem(1, &id, &len);
	CHECK(id == 0 && len == 8);
	CHECK(used_ring()[1] == 2);
}

static void test_multi(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	char buf[32];
	uint8_t *d = gp(DATA_GPA, 0x10000);

	setup(&vq, &drv, 16, false, false);
	memcpy(d + 0x000, "abc", 3);
	memcpy(d + 0x100, "defgh", 5);
	memset(d + 0x200, 0, 0x300);
	/* 5 -> 9 -> 2 (zero-length, skipped) -> 15 -> 0: 2 readable then 3 writable. */
	desc(5, DATA_GPA + 0x000, 3, VIRTQ_DESC_F_NEXT, 9);
	desc(9, DATA_GPA + 0x100, 5, VIRTQ_DESC_F_NEXT, 2);
	desc(2, 0xdeadbeef000ULL, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 15);
	desc(15, DATA_GPA + 0x200, 2, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	desc(0, DATA_GPA + 0x300, 4, VIRTQ_DESC_F_WRITE, 7);
	publish(&drv, 5);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!err);
	CHECK(chain.head == 5 && chain.nr_out == 2 && chain.nr_in == 2);
	CHECK(chain.out_len == 8 && chain.in_len == 6);
	CHECK(chain.iov[0].iov_base == d && chain.iov[1].iov_base == d + 0x100);
	CHECK(chain.iov[2].iov_base == d + 0x200 && chain.iov[2].iov_len == 2);
	CHECK(chain.iov[3].iov_base == d + 0x300 && chain.iov[3].iov_len == 4);

	/* Reads and writes across buffer boundaries, from an offset. */
	memset(buf, 0, sizeof(buf));
	CHECK(virtq_chain_read(&chain, 0, buf, sizeof(buf)) == 8);
	CHECK(!memcmp(buf, "abcdefgh", 8));
	CHECK(virtq_chain_read(&chain, 2, buf, 3) == 3);
	CHECK(!memcmp(buf, "cde", 3));
	CHECK(virtq_chain_read(&chain, 3, buf, 100) == 5);
	CHECK(!memcmp(buf, "defgh", 5));
	CHECK(virtq_chain_read(&chain, 8, buf, 1) == 0);
	CHECK(virtq_chain_read(&chain, 1000, buf, 1) == 0);
	CHECK(virtq_chain_write(&chain, 1, "XYZ", 3) == 3);
	CHECK(!memcmp(d + 0x200, "\0X", 2) && !memcmp(d + 0x300, "YZ\0\0", 4));
	CHECK(virtq_chain_write(&chain, 0, "0123456789", 10) == 6);
	CHECK(!memcmp(d + 0x200, "01", 2) && !memcmp(d + 0x300, "2345", 4));
	CHECK(virtq_chain_write(&chain, 6, "x", 1) == 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);

	/* Two chains in the ring at once, pushed out of order. */
	desc(1, DATA_GPA, 1, 0, 0);
	desc(4, DATA_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 1);
	publish(&drv, 4);
	CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.head == 1 && chain.nr_out == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1 && chain.head == 4 && chain.nr_in == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	CHECK(!err);

	/* All-zero-length chain: no iovecs at all. */
	desc(6, 0, 0, 0, 0);
	publish(&drv, 6);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.head == 6 && chain.nr_out == 0 && chain.nr_in == 0 && !chain.out_len);

	/* A chain using every descriptor of the queue is fine. */
	for (unsigned int i = 0; i < 16; i++)
		desc(i, DATA_GPA + i, 1, (i < 15 ? VIRTQ_DESC_F_NEXT : 0) |
		     (i >= 8 ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(i + 1));
	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.nr_out == 8 && chain.nr_in == 8 && chain.out_len == 8 && chain.in_len == 8);
	CHECK(!err);
}

static void test_indirect(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint8_t *d = gp(DATA_GPA, 0x10000);
	char buf[8];

	setup(&vq, &drv, 4, false, true);
	memcpy(d, "req", 3);
	/* Head indirect, WRITE set on it (ignored): table of 3, 1 out, 2 in. */
	put_desc(IND_GPA, 0, DATA_GPA, 3, VIRTQ_DESC_F_NEXT, 2);
	put_desc(IND_GPA, 2, DATA_GPA + 0x100, 0x10, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(IND_GPA, 1, DATA_GPA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
	desc(2, IND_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 2);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!err);
	CHECK(chain.head == 2 && chain.nr_out == 1 && chain.nr_in == 2);
	CHECK(chain.out_len == 3 && chain.in_len == 0x11);
	CHECK(chain.iov[0].iov_base == d && chain.iov[1].iov_base == d + 0x100);
	CHECK(chain.iov[2].iov_base == d + 0x200);
	CHECK(virtq_chain_read(&chain, 0, buf, 8) == 3 && !memcmp(buf, "req", 3));

	/* Direct descriptors followed by an indirect one (spec 2.7.5.3.2). */
	desc(0, DATA_GPA + 0x300, 7, VIRTQ_DESC_F_NEXT, 3);
	desc(3, IND_GPA + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(IND_GPA + 0x1000, 0, DATA_GPA + 0x400, 9, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.head == 0 && chain.nr_out == 1 && chain.nr_in == 1);
	CHECK(chain.out_len == 7 && chain.in_len == 9);
	CHECK(chain.iov[1].iov_base == d + 0x400);

	/* An indirect table larger than the queue is fine (limit: its entries). */
	for (unsigned int i = 0; i < 100; i++)
		put_desc(IND_GPA + 0x2000, i, DATA_GPA + i, 1,
			 i < 99 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(1, IND_GPA + 0x2000, 100 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.nr_out == 100 && chain.out_len == 100);

	/* An unaligned indirect table is accepted. */
	put_desc(IND_GPA + 0x5003, 0, DATA_GPA, 2, 0, 0);
	desc(1, IND_GPA + 0x5003, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.nr_out == 1 && chain.out_len == 2);
	CHECK(!err);
}

static void test_no_interrupt(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;

	setup(&vq, &drv, 4, false, false);
	desc(0, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 0, 0);
	CHECK(virtq_should_notify(&vq));
	avail_ring()[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	CHECK(!virtq_should_notify(&vq));
	avail_ring()[0] = 0;
	CHECK(virtq_should_notify(&vq));

	/* Kick suppression with the used flags. */
	virtq_disable_kicks(&vq);
	CHECK(used_ring()[0] == VIRTQ_USED_F_NO_NOTIFY);
	CHECK(!virtq_enable_kicks(&vq));
	CHECK(used_ring()[0] == 0);
	virtq_disable_kicks(&vq);
	publish(&drv, 0);
	CHECK(virtq_enable_kicks(&vq));  /* arrived while kicks were off */
	CHECK(used_ring()[0] == 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!virtq_enable_kicks(&vq));
	CHECK(!err);
}

static void test_event_idx(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;

	setup(&vq, &drv, 8, true, false);
	for (unsigned int i = 0; i < 8; i++)
		desc(i, DATA_GPA, 1, 0, 0);
	/* The flag is ignored with EVENT_IDX. */
	avail_ring()[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	set_used_event(&drv, 100);

	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 0, 0);
	CHECK(virtq_should_notify(&vq));        /* first time: always */
	CHECK(!virtq_should_notify(&vq));       /* nothing new */

	/* used_event = 1: interrupt when used idx goes past 1, i.e. 1 -> 2. */
	set_used_event(&drv, 1);
	publish(&drv, 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 1, 0);
	CHECK(virtq_should_notify(&vq));
	/* used_event still 1: 2 -> 3 does not cross it. */
	publish(&drv, 2);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 2, 0);
	CHECK(!virtq_should_notify(&vq));
	/* used_event = 5 with two pushes 3 -> 5: not crossed (needs idx 6). */
	set_used_event(&drv, 5);
	publish(&drv, 3);
	publish(&drv, 4);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 3, 0);
	virtq_push(&vq, 4, 0);
	CHECK(!virtq_should_notify(&vq));
	/* 5 -> 7 crosses 5 (5 -> 6 is the event). */
	publish(&drv, 5);
	publish(&drv, 6);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, 5, 0);
	virtq_push(&vq, 6, 0);
	CHECK(virtq_should_notify(&vq));
	CHECK(vq.signalled_used == 7);

	/* Kick suppression writes avail_event; the used flags stay 0. */
	virtq_disable_kicks(&vq);
	CHECK(used_ring()[0] == 0);
	CHECK(!virtq_enable_kicks(&vq));
	CHECK(avail_event(&drv) == 7);
	CHECK(used_ring()[0] == 0);
	publish(&drv, 7);
	CHECK(virtq_enable_kicks(&vq));
	CHECK(avail_event(&drv) == 7);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!virtq_enable_kicks(&vq));
	CHECK(avail_event(&drv) == 8);
	CHECK(!err);
}

/* The driver's side of 2.7.10: does adding old -> new_idx kick? */
static bool driver_kicks(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Polling devices: virtq_suppress_kicks() and virtq_has_avail(). */
static void test_suppress(void)
{
	keel_error *err = NULL;
	struct virtq vq;
	struct drv drv;

	/* EVENT_IDX: avail_event one behind, so no add kicks, even at 0. */
	setup(&vq, &drv, 8, true, false);
	for (unsigned int i = 0; i < 8; i++)
		desc(i, DATA_GPA, 1, 0, 0);
	CHECK(!virtq_has_avail(&vq));
	virtq_suppress_kicks(&vq);
	CHECK(avail_event(&drv) == 0xffff);
	CHECK(!driver_kicks(avail_event(&drv), 1, 0));
	publish(&drv, 0);
	CHECK(virtq_has_avail(&vq));
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!virtq_has_avail(&vq));
	virtq_suppress_kicks(&vq);
	CHECK(avail_event(&drv) == 0);
	for (uint16_t old = 1; old < 5; old++)          /* a burst, none kicks */
		CHECK(!driver_kicks(avail_event(&drv), (uint16_t)(old + 1), old));
	/* Re-enabled: the next add kicks again. */
	CHECK(!virtq_enable_kicks(&vq));
	CHECK(driver_kicks(avail_event(&drv), 2, 1));
	CHECK(used_ring()[0] == 0);

	/* Without EVENT_IDX: the used flags. */
	setup(&vq, &drv, 4, false, false);
	desc(0, DATA_GPA, 1, 0, 0);
	virtq_suppress_kicks(&vq);
	CHECK(used_ring()[0] == VIRTQ_USED_F_NO_NOTIFY);
	publish(&drv, 0);
	CHECK(virtq_has_avail(&vq));
	CHECK(virtq_enable_kicks(&vq));         /* arrived while suppressed */
	CHECK(used_ring()[0] == 0);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);

	/* A broken queue answers nothing. */
	vq.broken = true;
	publish(&drv, 0);
	CHECK(!virtq_has_avail(&vq));
	CHECK(!err);
}

/*
 * A queue of 4 with EVENT_IDX, as if it had run for a while: avail and used
 * indices at `idx`; descriptor i is one byte at DATA_GPA + i with `flags`.
 */
static void setup_at(struct virtq *vq, struct drv *drv, uint16_t idx, uint16_t flags)
{
	setup(vq, drv, 4, true, false);
	for (unsigned int i = 0; i < 4; i++)
		desc(i, DATA_GPA + i, 1, flags, 0);
	drv->avail_idx = idx;
	avail_ring()[1] = idx;
	used_ring()[1] = idx;
	vq->last_avail = idx;
	vq->used_idx = idx;
}

/* 16-bit indices wrapping through 65535 -> 0, for avail, used and events. */
static void test_wrap(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint32_t id, len;

	setup_at(&vq, &drv, 65533, 0);
	vq.signalled_used = 65533;
	vq.signalled_valid = true;
	set_used_event(&drv, 65535);

	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	for (uint16_t i = 0; i < 4; i++)
		publish(&drv, i);
	CHECK(avail_ring()[1] == 1);
	for (uint16_t i = 0; i < 4; i++) {
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
		CHECK(chain.head == i);
		CHECK(chain.iov[0].iov_base == gp(DATA_GPA + i, 1));
	}
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	CHECK(vq.last_avail == 1);

	virtq_push(&vq, 0, 10);         /* used idx 65534 */
	CHECK(!virtq_should_notify(&vq));
	virtq_push(&vq, 1, 11);         /* 65535 */
	CHECK(!virtq_should_notify(&vq));
	virtq_push(&vq, 2, 12);         /* 0: crossed 65535 */
	CHECK(virtq_should_notify(&vq));
	set_used_event(&drv, 0);
	virtq_push(&vq, 3, 13);         /* 1: crossed 0 */
	CHECK(virtq_should_notify(&vq));
	CHECK(used_ring()[1] == 1);
	used_elem(65533 % 4, &id, &len);
	CHECK(id == 0 && len == 10);
	used_elem(0, &id, &len);
	CHECK(id == 3 && len == 13);

	/* A full ring across the wrap (1 -> 5) is not a jump. */
	for (uint16_t i = 0; i < 4; i++)
		publish(&drv, i);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(!err);
}

/* fill writes elements without publishing; flush publishes them in one go. */
static void test_fill_flush(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint32_t id, len;

	setup(&vq, &drv, 8, false, false);
	for (uint16_t i = 0; i < 8; i++) {
		desc(i, DATA_GPA + 0x100 * i, 0x100, VIRTQ_DESC_F_WRITE, 0);
		publish(&drv, i);
	}
	/* One pushed alone first, so the fills start past a published one. */
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, chain.head, 1);
	CHECK(used_ring()[1] == 1);

	/* Three chains filled out of order (offsets 2, 0, 1): nothing published. */
	for (unsigned int i = 0; i < 3; i++)
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_fill(&vq, 3, 30, 2);
	virtq_fill(&vq, 1, 10, 0);
	virtq_fill(&vq, 2, 20, 1);
	CHECK(used_ring()[1] == 1);
	CHECK(vq.used_idx == 1);
	used_elem(2, &id, &len);
	CHECK(id == 2 && len == 20);    /* written, not yet visible by idx */

	/* One flush: used idx goes 1 -> 4 in a single update, in ring order. */
	virtq_flush(&vq, 3);
	CHECK(used_ring()[1] == 4);
	CHECK(vq.used_idx == 4);
	used_elem(1, &id, &len);
	CHECK(id == 1 && len == 10);
	used_elem(2, &id, &len);
	CHECK(id == 2 && len == 20);
	used_elem(3, &id, &len);
	CHECK(id == 3 && len == 30);
	used_elem(0, &id, &len);
	CHECK(id == 0 && len == 1);     /* the earlier push untouched */
	CHECK(virtq_should_notify(&vq));

	/* push is fill at offset 0 plus flush(1). */
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	virtq_push(&vq, chain.head, 40);
	CHECK(used_ring()[1] == 5);
	used_elem(4, &id, &len);
	CHECK(id == 4 && len == 40);

	/* flush(0) publishes nothing. */
	virtq_flush(&vq, 0);
	CHECK(used_ring()[1] == 5 && vq.used_idx == 5);

	/* Not enabled: fill and flush do nothing. */
	{
		struct virtq off = vq;

		off.enabled = false;
		virtq_fill(&off, 7, 70, 0);
		virtq_flush(&off, 1);
		CHECK(off.used_idx == 5);
		CHECK(used_ring()[1] == 5);
		used_elem(5, &id, &len);
		CHECK(id == 0 && len == 0);
	}
	CHECK(!err);
}

/* unpop gives chains back: the next pops return the same ones. */
static void test_unpop(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint16_t heads[3];

	setup(&vq, &drv, 8, false, false);
	for (uint16_t i = 0; i < 8; i++)
		desc(i, DATA_GPA + 0x100 * i, 0x10 + i, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 5);
	publish(&drv, 2);
	publish(&drv, 7);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
		heads[i] = chain.head;
	}
	CHECK(heads[0] == 5 && heads[1] == 2 && heads[2] == 7);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	CHECK(vq.last_avail == 3);

	/* The last two back: popped again, same chains, same buffers. */
	virtq_unpop(&vq, 2);
	CHECK(vq.last_avail == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.head == 2 && chain.in_len == 0x12);
	CHECK(chain.iov[0].iov_base == gp(DATA_GPA + 0x200, 0x12));
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(chain.head == 7 && chain.in_len == 0x17);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);

	/* All three back; unpop(0) changes nothing. */
	virtq_unpop(&vq, 3);
	virtq_unpop(&vq, 0);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
		CHECK(chain.head == heads[i]);
	}
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	CHECK(used_ring()[1] == 0);     /* nothing was published */

	/* Kicks after giving back: without EVENT_IDX the flags are cleared. */
	virtq_disable_kicks(&vq);
	CHECK(used_ring()[0] == VIRTQ_USED_F_NO_NOTIFY);
	virtq_unpop(&vq, 3);
	CHECK(!virtq_enable_kicks_ahead(&vq, 3));
	CHECK(used_ring()[0] == 0);
	publish(&drv, 0);
	CHECK(virtq_enable_kicks_ahead(&vq, 3));
	CHECK(!err);
}

/* With EVENT_IDX, kicks after unpop are wanted past the chains given back. */
static void test_unpop_event_idx(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;

	setup(&vq, &drv, 8, true, false);
	for (uint16_t i = 0; i < 8; i++)
		desc(i, DATA_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 0);
	publish(&drv, 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 1);
	CHECK(virtq_pop(&vq, &chain, &err) == 0);
	virtq_unpop(&vq, 2);
	CHECK(vq.last_avail == 0);
	/* Both known already: a kick only for the third. */
	CHECK(!virtq_enable_kicks_ahead(&vq, 2));
	CHECK(avail_event(&drv) == 2);
	publish(&drv, 2);
	CHECK(virtq_enable_kicks_ahead(&vq, 2));
	CHECK(avail_event(&drv) == 2);
	/* ahead 0 is virtq_enable_kicks(). */
	CHECK(virtq_enable_kicks_ahead(&vq, 0));
	CHECK(avail_event(&drv) == 0);
	CHECK(virtq_enable_kicks(&vq));
	CHECK(avail_event(&drv) == 0);
	CHECK(!err);
}

/* fill/flush/unpop across the 16-bit wrap and the ring's end. */
static void test_fill_unpop_wrap(void)
{
	struct virtq vq;
	struct drv drv;
	keel_error *err = NULL;
	uint32_t id, len;

	setup_at(&vq, &drv, 65534, VIRTQ_DESC_F_WRITE);

	for (uint16_t i = 0; i < 4; i++)
		publish(&drv, i);
	CHECK(avail_ring()[1] == 2);
	for (uint16_t i = 0; i < 4; i++) {
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
		CHECK(chain.head == i);
	}
	CHECK(vq.last_avail == 2);

	/* Unpop across 0 -> 65535: the last three again. */
	virtq_unpop(&vq, 3);
	CHECK(vq.last_avail == 65535);
	CHECK(!virtq_enable_kicks_ahead(&vq, 3));
	CHECK(avail_event(&drv) == 2);
	for (uint16_t i = 1; i < 4; i++) {
		CHECK(virtq_pop(&vq, &chain, &err) == 1);
		CHECK(chain.head == i);
	}
	CHECK(virtq_pop(&vq, &chain, &err) == 0);

	/* Four filled from slot 2 (65534 % 4) around the ring's end. */
	for (uint16_t i = 0; i < 4; i++)
		virtq_fill(&vq, i, 100 + i, i);
	CHECK(used_ring()[1] == 65534);
	virtq_flush(&vq, 4);
	CHECK(used_ring()[1] == 2);
	CHECK(vq.used_idx == 2);
	for (uint16_t i = 0; i < 4; i++) {
		used_elem((uint16_t)(65534 + i) % 4, &id, &len);
		CHECK(id == i && len == 100U + i);
	}
	CHECK(!err);
}

static void test_errors(void)
{
	struct virtq vq;
	struct drv drv;

	/* avail index jump */
	setup(&vq, &drv, 8, false, false);
	avail_ring()[1] = 9;
	EXPECT_BROKEN(&vq, "avail index jumped from 0 to 9, more than the queue size 8");
	setup(&vq, &drv, 8, false, false);
	vq.last_avail = 65530;
	avail_ring()[1] = 3;
	EXPECT_BROKEN(&vq, "avail index jumped from 65530 to 3, more than the queue size 8");

	/* head out of range */
	setup(&vq, &drv, 8, false, false);
	publish(&drv, 8);
	EXPECT_BROKEN(&vq, "holds head 8, beyond the queue size 8");

	/* next out of range */
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 8);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "descriptor 1 has next 8, beyond the queue size 8");

	/* loop 0 -> 1 -> 0 */
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "chain at head 0 is longer than the queue size 8: a loop?");
	/* self loop, with zero-length descriptors */
	setup(&vq, &drv, 4, false, false);
	desc(2, 0, 0, VIRTQ_DESC_F_NEXT, 2);
	publish(&drv, 2);
	EXPECT_BROKEN(&vq, "longer than the queue size 4");

	/* chain longer than the queue: 0 -> 1 -> 2 -> 3 -> 0 */
	setup(&vq, &drv, 4, false, false);
	for (unsigned int i = 0; i < 4; i++)
		desc(i, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, (i + 1) % 4);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "chain at head 0 is longer than the queue size 4");

	/* more than VIRTQ_MAX_CHAIN buffers in a long direct chain; exactly is fine */
	setup(&vq, &drv, 2048, false, false);
	for (unsigned int i = 0; i < VIRTQ_MAX_CHAIN + 1; i++)
		desc(i, DATA_GPA + i, 1, i < VIRTQ_MAX_CHAIN - 1 ? VIRTQ_DESC_F_NEXT : 0,
		     (uint16_t)(i + 1));
	publish(&drv, 0);
	CHECK(virtq_pop(&vq, &chain, NULL) == 1);
	CHECK(chain.nr_out == VIRTQ_MAX_CHAIN && chain.out_len == VIRTQ_MAX_CHAIN);
	CHECK(chain.iov[VIRTQ_MAX_CHAIN - 1].iov_base == gp(DATA_GPA + VIRTQ_MAX_CHAIN - 1, 1));
	desc(VIRTQ_MAX_CHAIN - 1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, VIRTQ_MAX_CHAIN);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "chain at head 0 has more than 1024 buffers");

	/* buffer outside RAM: beyond the end, straddling it, wrapping 2^64 */
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(1, RAM_SIZE, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "descriptor 1 has a buffer at 0x1000000 (+0x1) outside guest RAM");
	setup(&vq, &drv, 8, false, false);
	desc(4, RAM_SIZE - 0x10, 0x11, VIRTQ_DESC_F_WRITE, 0);
	publish(&drv, 4);
	EXPECT_BROKEN(&vq, "descriptor 4 has a buffer at 0xfffff0 (+0x11) outside guest RAM");
	setup(&vq, &drv, 8, false, false);
	desc(0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "buffer at 0xfffffffffffff000 (+0x2000) outside guest RAM");
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 0xffffffff, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "buffer at 0x400000 (+0xffffffff) outside guest RAM");

	/* readable after writable (also across a zero-length writable one) */
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "descriptor 1 is readable but follows a writable one");
	setup(&vq, &drv, 8, false, false);
	desc(0, DATA_GPA, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "readable but follows a writable one");

	/* indirect not negotiated */
	setup(&vq, &drv, 8, false, false);
	put_desc(IND_GPA, 0, DATA_GPA, 1, 0, 0);
	desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "descriptor 0 is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated");

	/* indirect + next */
	setup(&vq, &drv, 8, false, true);
	desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "descriptor 0 has both INDIRECT and NEXT set");

	/* indirect table lengths: 0, not a multiple of 16, too large */
	static const uint32_t bad_len[] = { 0, 17, 8, 16 * VIRTQ_MAX_SIZE + 16 };
	for (size_t k = 0; k < sizeof(bad_len) / sizeof(bad_len[0]); k++) {
		char needle[64];

		setup(&vq, &drv, 8, false, true);
		desc(0, IND_GPA, bad_len[k], VIRTQ_DESC_F_INDIRECT, 0);
		publish(&drv, 0);
		snprintf(needle, sizeof(needle), "indirect table length of %u bytes", bad_len[k]);
		EXPECT_BROKEN(&vq, needle);
	}

	/* indirect table outside RAM, straddling the end, wrapping */
	setup(&vq, &drv, 8, false, true);
	desc(0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect table at 0xfffff0 (+0x20) outside guest RAM");
	setup(&vq, &drv, 8, false, true);
	desc(0, 0xfffffffffffffff0ULL, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect table at 0xfffffffffffffff0 (+0x20) outside guest RAM");

	/* a buffer in an indirect table outside RAM */
	setup(&vq, &drv, 8, false, true);
	put_desc(IND_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	put_desc(IND_GPA, 1, RAM_SIZE + 0x1000, 8, 0, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect descriptor 1 has a buffer at 0x1001000 (+0x8) outside guest RAM");

	/* nested indirect */
	setup(&vq, &drv, 8, false, true);
	put_desc(IND_GPA, 0, IND_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(IND_GPA + 0x100, 0, DATA_GPA, 1, 0, 0);
	desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "is itself indirect (nested)");

	/* indirect loop: 0 -> 1 -> 0 inside the table */
	setup(&vq, &drv, 8, false, true);
	put_desc(IND_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	put_desc(IND_GPA, 1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect table at 0x200000 chains more than its 2 entries: a loop?");

	/* indirect next beyond the table */
	setup(&vq, &drv, 8, false, true);
	put_desc(IND_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 2);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect descriptor 0 has next 2, beyond the table's 2 entries");

	/* readable in the indirect table after a writable direct one */
	setup(&vq, &drv, 8, false, true);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(1, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(IND_GPA, 0, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "indirect descriptor 0 is readable but follows a writable one");

	/* more than VIRTQ_MAX_CHAIN buffers through an indirect table */
	setup(&vq, &drv, 8, false, true);
	for (unsigned int i = 0; i < VIRTQ_MAX_CHAIN + 1; i++)
		put_desc(IND_GPA, i, DATA_GPA, 1, i < VIRTQ_MAX_CHAIN ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	desc(0, IND_GPA, 16 * (VIRTQ_MAX_CHAIN + 1), VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "has more than 1024 buffers");
	/* ...counting the direct ones before it */
	setup(&vq, &drv, 8, false, true);
	desc(0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(1, IND_GPA, 16 * VIRTQ_MAX_CHAIN, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(IND_GPA, VIRTQ_MAX_CHAIN - 1, DATA_GPA, 1, 0, 0);
	publish(&drv, 0);
	EXPECT_BROKEN(&vq, "has more than 1024 buffers");
	/* exactly VIRTQ_MAX_CHAIN through the table is fine */
	setup(&vq, &drv, 8, false, true);
	desc(1, IND_GPA, 16 * VIRTQ_MAX_CHAIN, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&drv, 1);
	CHECK(virtq_pop(&vq, &chain, NULL) == 1);
	CHECK(chain.nr_out == VIRTQ_MAX_CHAIN);

	/* An error reported with err == NULL still breaks the queue. */
	setup(&vq, &drv, 8, false, false);
	publish(&drv, 9);
	CHECK(virtq_pop(&vq, &chain, NULL) == -1);
	CHECK(vq.broken);
	/* ...until it is enabled again. */
	CHECK(virtq_enable(&vq, &ram, NULL) == 0);
	CHECK(!vq.broken && vq.last_avail == 0);
}

int main(void)
{
	keel_error *err = NULL;

	if (mem_init(&ram, RAM_SIZE, false, &err)) {
		fprintf(stderr, "skip: cannot create guest RAM: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return 77;
	}
	test_enable_errors();
	test_enable_split_regions();
	test_single();
	test_multi();
	test_indirect();
	test_no_interrupt();
	test_event_idx();
	test_suppress();
	test_wrap();
	test_fill_flush();
	test_unpop();
	test_unpop_event_idx();
	test_fill_unpop_wrap();
	test_errors();
	mem_fini(&ram);
	return test_exit();
}
