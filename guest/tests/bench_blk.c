/*
 * Benchmark guest (bench/): virtio-blk throughput, polled, ring 3.
 *
 * Drives the first virtio-blk device (PCI or MMIO) with no EVENT_IDX and
 * no interrupts: requests of header + one data buffer + status, kept
 * `qd` deep on queue 0. Command line:
 *   blk_tests=rr1,rw1,rr32,rw32,sr,sw   which tests, in this order
 *                  rrQ/rwQ: 4 KiB random read/write at queue depth Q
 *                  sr/sw:   1 MiB sequential read/write (seq_qd=, default 4)
 *   blk_ms=1000    time per test (guest TSC), blk_max_ops= cap (0: none)
 * Reports per test:
 *   BENCH blk NAME bs=B qd=Q ops=N cycles=C ns=T
 * (C: TSC cycles; T: the same in ns by this guest's own TSC calibration).
 */
#include <keel/kit.h>
#include <keel/virtio.h>

#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define MAX_QD			64
#define SEQ_BS			(1u << 20)
#define RND_BS			4096u

struct blk_hdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

struct slot {
	struct blk_hdr *hdr;
	u8 *status;
	void *buf;
};

static struct virtio_dev *dev;
static struct virtq *vq;
static u64 capacity;		/* sectors */
static struct slot slots[MAX_QD];
static void *bufs4k, *bufs1m;
static int head_slot[VIRTQ_MAX_SIZE];
static u64 rng = 0x9e3779b97f4a7c15ULL;

static u64 xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static u64 to_ns(u64 cycles)
{
	u64 khz = tsc_hz() / 1000;

	return khz ? cycles * 1000000ULL / khz : 0;
}

static bool submit(int s, u32 type, u32 bs, u64 sector)
{
	struct slot *sl = &slots[s];
	struct vbuf b[3];
	int head;

	sl->hdr->type = type;
	sl->hdr->reserved = 0;
	sl->hdr->sector = sector;
	*sl->status = 0xee;
	b[0] = (struct vbuf){ sl->hdr, sizeof(*sl->hdr), false };
	b[1] = (struct vbuf){ sl->buf, bs, type == VIRTIO_BLK_T_IN };
	b[2] = (struct vbuf){ sl->status, 1, true };
	head = virtq_add(vq, b, 3, false);
	if (head < 0) {
		fail("virtq_add: no room (%u free)", vq->num_free);
		return false;
	}
	head_slot[head] = s;
	return true;
}

static void run_test(const char *name, u32 type, u32 bs, int qd, bool rnd,
		     u64 ms, u64 max_ops)
{
	u64 nblk = capacity * 512 / bs, seq = 0, done = 0, t0, t1, end, guard;
	int inflight = 0, s;
	bool stop = false;

	if (qd > MAX_QD)
		qd = MAX_QD;
	for (s = 0; s < qd; s++)
		slots[s].buf = (u8 *)(bs == SEQ_BS ? bufs1m : bufs4k) +
			       (u64)s * bs;
	t0 = rdtsc();
	end = t0 + ms * (tsc_hz() / 1000);
	guard = tsc_deadline((ms + 30000) * 1000);
	for (s = 0; s < qd; s++) {
		u64 blk = rnd ? xorshift() % nblk : seq++ % nblk;

		if (!submit(s, type, bs, blk * (bs / 512)))
			return;
		inflight++;
	}
	virtq_kick(vq);
	while (inflight) {
		u32 id, len;
		bool again = false;

		while (virtq_get(vq, &id, &len)) {
			s = head_slot[id];
			inflight--;
			if (*slots[s].status != 0) {
				fail("%s: request status %u", name,
				     *slots[s].status);
				stop = true;
			}
			done++;
			if (!stop && (rdtsc() >= end ||
				      (max_ops && done + inflight >= max_ops)))
				stop = true;
			if (!stop) {
				u64 blk = rnd ? xorshift() % nblk : seq++ % nblk;

				if (!submit(s, type, bs, blk * (bs / 512)))
					return;
				inflight++;
				again = true;
			}
		}
		if (again)
			virtq_kick(vq);
		else if (tsc_expired(guard)) {
			fail("%s: %d requests never completed", name, inflight);
			return;
		} else
			cpu_relax();
	}
	t1 = rdtsc();
	printf("BENCH blk %s bs=%u qd=%d ops=%llu cycles=%llu ns=%llu\n", name,
	       bs, qd, done, t1 - t0, to_ns(t1 - t0));
}

void test_main(void)
{
	char tests[128], *p, *e;
	u64 ms = cmdline_u64_or("blk_ms", 1000);
	u64 max_ops = cmdline_u64_or("blk_max_ops", 0);
	int seq_qd = cmdline_u64_or("seq_qd", 4), i;

	if (!cmdline_str("blk_tests", tests, sizeof(tests)))
		memcpy(tests, "rr1,rw1,rr32,rw32,sr,sw", 24);
	dev = virtio_find(VIRTIO_ID_BLOCK, 0);
	if (!dev) {
		fail("no virtio-blk device found");
		return;
	}
	if (!virtio_start(dev, VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
			       VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE)))
		return;
	capacity = virtio_cfg64(dev, 0);
	if (!virtq_setup(dev, 0, 0) || !virtio_driver_ok(dev))
		return;
	vq = &dev->vq[0];
	printf("BENCH blk device %s capacity=%llu queue=%u\n", dev->name,
	       capacity, vq->size);
	for (i = 0; i < MAX_QD; i++) {
		slots[i].hdr = dma_alloc(sizeof(struct blk_hdr), 16);
		slots[i].status = dma_alloc(1, 16);
	}
	bufs4k = dma_alloc((u64)MAX_QD * RND_BS, 4096);
	if (seq_qd > 8)
		seq_qd = 8;
	bufs1m = dma_alloc((u64)seq_qd * SEQ_BS, 4096);
	for (p = tests; *p; p = e) {
		char name[16];
		int n = 0;

		for (e = p; *e && *e != ','; e++)
			if (n < 15)
				name[n++] = *e;
		name[n] = 0;
		if (*e)
			e++;
		if (!strncmp(name, "rr", 2) || !strncmp(name, "rw", 2)) {
			int qd = strtou64(name + 2, NULL);

			run_test(name, name[1] == 'r' ? VIRTIO_BLK_T_IN :
				 VIRTIO_BLK_T_OUT, RND_BS, qd ? qd : 1, true,
				 ms, max_ops);
		} else if (!strcmp(name, "sr") || !strcmp(name, "sw")) {
			run_test(name, name[1] == 'r' ? VIRTIO_BLK_T_IN :
				 VIRTIO_BLK_T_OUT, SEQ_BS, seq_qd, false, ms,
				 max_ops);
		} else {
			fail("unknown test %s", name);
		}
		if (test_fails)
			return;
	}
	virtio_reset(dev);
	pass("virtio-blk benchmark");
}
