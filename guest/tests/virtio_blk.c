/*
 * virtio-blk guest (PCI or MMIO transport, polled). The runner's disk
 * image has every 512-byte sector s filled with u64 words (s << 32 | w).
 *
 * cmdline: blk_sectors=N (capacity, required), transport=pci|mmio,
 * blk_write_sector=S blk_write_count=C (guest pattern written there),
 * blk_zero_sector=/blk_zero_count= (WRITE_ZEROES range),
 * blk_discard_sector=/blk_discard_count= (DISCARD range), blk_serial=STR,
 * blk_ro=1 (read-only disk), blk_queues=N (expected num_queues),
 * blk_hold_after_flush=1 (spin forever after the FLUSH: crash tests).
 * After each successful modification the guest prints
 * "BLK-WRITTEN S C", "BLK-ZEROED S C" or "BLK-DISCARDED S C" for the
 * runner, which checks the image file after the VM has exited.
 * "BLK-WRITTEN" comes before the FLUSH; "BLK-FLUSHED" is printed once
 * the FLUSH request completed with status OK (the runner's --kill-after).
 */
#include <keel/kit.h>
#include <keel/virtio.h>

#define VIRTIO_BLK_F_SIZE_MAX	1
#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_GEOMETRY	4
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9
#define VIRTIO_BLK_F_TOPOLOGY	10
#define VIRTIO_BLK_F_CONFIG_WCE	11
#define VIRTIO_BLK_F_MQ		12
#define VIRTIO_BLK_F_DISCARD	13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8
#define VIRTIO_BLK_T_DISCARD	11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK		0
#define VIRTIO_BLK_S_IOERR	1
#define VIRTIO_BLK_S_UNSUPP	2

#define GUEST_XOR		0xa5a5a5a5a5a5a5a5ULL

struct blk_hdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

struct blk_range {
	u64 sector;
	u32 num_sectors;
	u32 flags;
};

static struct virtio_dev *dev;
static u64 capacity;
static int nqueues = 1;
static bool ro;

static u64 host_word(u64 s, u64 w) { return s << 32 | w; }
static u64 guest_word(u64 s, u64 w) { return (s << 32 | w) ^ GUEST_XOR; }

static void fill(void *buf, u64 sector, u32 n, u64 (*f)(u64, u64))
{
	u64 *p = buf;
	u32 i;

	for (i = 0; i < n * 64; i++)
		p[i] = f(sector + i / 64, i % 64);
}

/* Index of the first wrong word, or -1. */
static long verify(const void *buf, u64 sector, u32 n, u64 (*f)(u64, u64))
{
	const u64 *p = buf;
	u32 i;

	for (i = 0; i < n * 64; i++)
		if (p[i] != (f ? f(sector + i / 64, i % 64) : 0))
			return i;
	return -1;
}

static void report_mismatch(const char *what, const void *buf, u64 sector,
			    long i, u64 (*f)(u64, u64))
{
	const u64 *p = buf;

	fail("%s: sector %llu word %ld: %#llx, expected %#llx", what,
	     sector + i / 64, i % 64, p[i], f ? f(sector + i / 64, i % 64) : 0);
}

/*
 * One request: header, data segments (each 'seglen' bytes from 'data'
 * split into nseg pieces, in separate buffers if split), status.
 * Returns the status byte, or -1 after a FAIL line.
 */
static int blk_req(struct virtq *vq, u32 type, u64 sector, void *data,
		   u32 len, int nseg, bool indirect, bool dev_writes,
		   const char *what, u32 *used_len)
{
	struct blk_hdr *h = dma_alloc(sizeof(*h), 16);
	u8 *st = dma_alloc(1, 16);
	struct vbuf b[8];
	u32 ulen = 0, off = 0;
	int n = 0, i;

	h->type = type;
	h->sector = sector;
	*st = 0xee;
	b[n++] = (struct vbuf){ h, sizeof(*h), false };
	for (i = 0; i < nseg && len; i++) {
		u32 piece = i + 1 == nseg ? len - off : len / nseg;

		b[n++] = (struct vbuf){ (u8 *)data + off, piece, dev_writes };
		off += piece;
	}
	b[n++] = (struct vbuf){ st, 1, true };
	if (!virtq_run(vq, b, n, indirect, &ulen, what))
		return -1;
	if (used_len)
		*used_len = ulen;
	if (*st == 0xee) {
		fail("%s: status byte not written (used len %u)", what, ulen);
		return -1;
	}
	return *st;
}

static bool blk_read(struct virtq *vq, u64 sector, u32 n, void *buf, int nseg,
		     bool indirect, const char *what)
{
	u32 ulen;
	int st = blk_req(vq, VIRTIO_BLK_T_IN, sector, buf, n * 512, nseg,
			 indirect, true, what, &ulen);

	if (st < 0)
		return false;
	if (st != VIRTIO_BLK_S_OK) {
		fail("%s: status %d", what, st);
		return false;
	}
	if (ulen != n * 512 + 1) {
		fail("%s: used len %u, expected %u", what, ulen, n * 512 + 1);
		return false;
	}
	return true;
}

static void check_read(struct virtq *vq, u64 sector, u32 n, int nseg,
		       bool indirect, const char *what)
{
	void *buf = dma_alloc(n * 512, 4096);
	long bad;

	memset(buf, 0x5c, n * 512);
	if (!blk_read(vq, sector, n, buf, nseg, indirect, what))
		return;
	bad = verify(buf, sector, n, host_word);
	if (bad >= 0)
		report_mismatch(what, buf, sector, bad, host_word);
	else
		pass("%s (q%u, sectors %llu+%u, %d segment(s)%s)", what,
		     vq->index, sector, n, nseg, indirect ? ", indirect" : "");
}

static void read_config(void)
{
	u64 want;
	u32 blk_size = 512, seg_max = 0, size_max = 0;

	capacity = virtio_cfg64(dev, 0);
	if (dev->features & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX))
		size_max = virtio_cfg32(dev, 8);
	if (dev->features & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX))
		seg_max = virtio_cfg32(dev, 12);
	if (dev->features & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE))
		blk_size = virtio_cfg32(dev, 20);
	if (dev->features & VIRTIO_BIT(VIRTIO_BLK_F_MQ))
		nqueues = virtio_cfg16(dev, 34);
	printf("virtio-blk: capacity %llu sectors, blk_size %u, seg_max %u, "
	       "size_max %u, num_queues %d\n", capacity, blk_size, seg_max,
	       size_max, nqueues);
	if (cmdline_u64("blk_sectors", &want))
		check(capacity == want, "capacity matches the image",
		      "%llu sectors, expected %llu", capacity, want);
	else
		fail("blk_sectors= missing from the command line");
	check(blk_size >= 512 && !(blk_size & (blk_size - 1)), "blk_size sane",
	      "%u", blk_size);
	if (seg_max)
		check(seg_max >= 3, "seg_max allows 3 data segments", "%u",
		      seg_max);
	if (nqueues < 1 || nqueues > VIRTIO_MAX_QUEUES) {
		fail("num_queues %d out of range 1..%d", nqueues,
		     VIRTIO_MAX_QUEUES);
		nqueues = 1;
	}
	if (cmdline_u64("blk_queues", &want))
		check((u64)nqueues == want, "num_queues as configured",
		      "%d, expected %llu", nqueues, want);
}

static void test_errors(struct virtq *vq)
{
	void *buf = dma_alloc(1024, 512);
	int st;

	st = blk_req(vq, VIRTIO_BLK_T_IN, capacity, buf, 512, 1, false, true,
		     "read at capacity", NULL);
	if (st >= 0)
		check(st == VIRTIO_BLK_S_IOERR, "read beyond capacity: IOERR",
		      "status %d", st);
	st = blk_req(vq, VIRTIO_BLK_T_IN, capacity - 1, buf, 1024, 1, false,
		     true, "read across the end", NULL);
	if (st >= 0)
		check(st == VIRTIO_BLK_S_IOERR, "read across the end: IOERR",
		      "status %d", st);
	st = blk_req(vq, 0x7f, 0, NULL, 0, 0, false, false,
		     "unknown request type", NULL);
	if (st >= 0)
		check(st == VIRTIO_BLK_S_UNSUPP, "unknown request type: UNSUPP",
		      "status %d", st);
}

static void test_get_id(struct virtq *vq)
{
	char *id = dma_alloc(20, 16), want[64], got[21];
	int st = blk_req(vq, VIRTIO_BLK_T_GET_ID, 0, id, 20, 1, false, true,
			 "GET_ID", NULL);

	if (st < 0)
		return;
	memcpy(got, id, 20);
	got[20] = 0;
	if (!cmdline_str("blk_serial", want, sizeof(want))) {
		check(st == VIRTIO_BLK_S_OK || st == VIRTIO_BLK_S_UNSUPP,
		      "GET_ID", "status %d, id \"%s\"", st, got);
		return;
	}
	want[20] = 0;
	check(st == VIRTIO_BLK_S_OK && !strcmp(got, want), "GET_ID serial",
	      "status %d, got \"%s\", expected \"%s\"", st, got, want);
}

static void test_write(struct virtq *vq)
{
	u64 s, c, done;
	void *buf;
	long bad;
	int st;

	if (!cmdline_u64("blk_write_sector", &s) ||
	    !cmdline_u64("blk_write_count", &c) || !c)
		return;
	buf = dma_alloc(c * 512, 4096);
	if (ro) {
		fill(buf, s, 1, guest_word);
		st = blk_req(vq, VIRTIO_BLK_T_OUT, s, buf, 512, 1, false, false,
			     "write to a read-only disk", NULL);
		if (st >= 0)
			check(st == VIRTIO_BLK_S_IOERR,
			      "write to a read-only disk: IOERR", "status %d", st);
		check_read(vq, s, 1, 1, false, "read-only sector unchanged");
		return;
	}
	for (done = 0; done < c; ) {
		u32 n = c - done > 32 ? 32 : c - done;
		void *p = (u8 *)buf + done * 512;

		fill(p, s + done, n, guest_word);
		/* Alternate single- and multi-segment writes. */
		st = blk_req(vq, VIRTIO_BLK_T_OUT, s + done, p, n * 512,
			     (done / 32) % 2 ? 3 : 1, false, false, "write", NULL);
		if (st != VIRTIO_BLK_S_OK) {
			if (st >= 0)
				fail("write sectors %llu+%u: status %d", s + done,
				     n, st);
			return;
		}
		done += n;
	}
	memset(buf, 0, c * 512);
	for (done = 0; done < c; done += 32) {
		u32 n = c - done > 32 ? 32 : c - done;

		if (!blk_read(vq, s + done, n, (u8 *)buf + done * 512, 1, false,
			      "read back written sectors"))
			return;
	}
	bad = verify(buf, s, c, guest_word);
	if (bad >= 0) {
		report_mismatch("write + read back", buf, s, bad, guest_word);
		return;
	}
	pass("write + read back (sectors %llu+%llu)", s, c);
	printf("BLK-WRITTEN %llu %llu\n", s, c);
}

static void test_flush(struct virtq *vq)
{
	int st;

	if (!(dev->features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH))) {
		printf("note: VIRTIO_BLK_F_FLUSH not offered\n");
		return;
	}
	st = blk_req(vq, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0, false, false,
		     "FLUSH", NULL);
	if (st >= 0)
		check(st == VIRTIO_BLK_S_OK, "FLUSH", "status %d", st);
	if (st != VIRTIO_BLK_S_OK)
		return;
	/* The writes reported so far are on stable storage now. */
	printf("BLK-FLUSHED\n");
	if (cmdline_u64_or("blk_hold_after_flush", 0)) {
		/* Crash tests: stay here until the runner kills the VMM. */
		printf("holding after flush\n");
		for (;;)
			udelay(1000000);
	}
}

static void test_range_op(struct virtq *vq, u32 type, int feature,
			  const char *key, const char *what, const char *tag)
{
	char ks[40], kc[40];
	struct blk_range *r;
	u64 s, c;
	void *buf;
	long bad;
	int st;

	snprintf(ks, sizeof(ks), "%s_sector", key);
	snprintf(kc, sizeof(kc), "%s_count", key);
	if (!cmdline_u64(ks, &s) || !cmdline_u64(kc, &c) || !c || ro)
		return;
	if (!(dev->features & VIRTIO_BIT(feature))) {
		printf("note: %s not offered\n", what);
		return;
	}
	r = dma_alloc(sizeof(*r), 16);
	r->sector = s;
	r->num_sectors = c;
	r->flags = 0;
	st = blk_req(vq, type, 0, r, sizeof(*r), 1, false, false, what, NULL);
	if (st < 0)
		return;
	if (st != VIRTIO_BLK_S_OK) {
		fail("%s sectors %llu+%llu: status %d", what, s, c, st);
		return;
	}
	if (type == VIRTIO_BLK_T_DISCARD) {
		pass("%s (sectors %llu+%llu)", what, s, c);
		printf("%s %llu %llu\n", tag, s, c);
		return;
	}
	buf = dma_alloc(c * 512, 4096);
	memset(buf, 0x5c, c * 512);
	if (!blk_read(vq, s, c, buf, 1, false, "read back zeroed sectors"))
		return;
	bad = verify(buf, s, c, NULL);
	if (bad >= 0) {
		report_mismatch(what, buf, s, bad, NULL);
		return;
	}
	pass("%s + read back zeros (sectors %llu+%llu)", what, s, c);
	printf("%s %llu %llu\n", tag, s, c);
}

/* Several requests in flight on one queue, completed in any order. */
static void test_batch(struct virtq *vq, int n, bool indirect, u64 base,
		       bool kick_each)
{
	struct blk_hdr *h[8];
	u8 *st[8];
	void *buf[8];
	bool done[8] = { false };
	int head[8], i, got = 0;
	char what[64];

	snprintf(what, sizeof(what), "batch of %d reads on q%u%s", n, vq->index,
		 indirect ? " (indirect)" : "");
	for (i = 0; i < n; i++) {
		struct vbuf b[3];

		h[i] = dma_alloc(sizeof(*h[i]), 16);
		st[i] = dma_alloc(1, 16);
		buf[i] = dma_alloc(4096, 4096);
		h[i]->type = VIRTIO_BLK_T_IN;
		h[i]->sector = (base + 8 * i) % (capacity - 8);
		*st[i] = 0xee;
		b[0] = (struct vbuf){ h[i], sizeof(*h[i]), false };
		b[1] = (struct vbuf){ buf[i], 4096, true };
		b[2] = (struct vbuf){ st[i], 1, true };
		head[i] = virtq_add(vq, b, 3, indirect && (i & 1));
		if (head[i] < 0) {	/* ring full: run what fits */
			if (!i)
				fail("%s: cannot queue a request", what);
			n = i;
			break;
		}
		if (kick_each)
			virtq_kick(vq);
	}
	virtq_kick(vq);
	while (got < n) {
		u32 id, len;

		if (!virtq_wait(vq, &id, &len, 0)) {
			fail("%s: only %d of %d completed", what, got, n);
			return;
		}
		for (i = 0; i < n; i++)
			if (head[i] == (int)id && !done[i])
				break;
		if (i == n) {
			fail("%s: unexpected used id %u", what, id);
			return;
		}
		done[i] = true;
		got++;
		if (*st[i] != VIRTIO_BLK_S_OK || len != 4097) {
			fail("%s: request %d: status %u, len %u", what, i, *st[i],
			     len);
			return;
		}
		if (verify(buf[i], h[i]->sector, 8, host_word) >= 0) {
			report_mismatch(what, buf[i], h[i]->sector,
					verify(buf[i], h[i]->sector, 8, host_word),
					host_word);
			return;
		}
	}
	pass("%s", what);
}

static u64 base_features(void)
{
	return VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
	       VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
	       VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
	       VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
	       VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
}

static bool bring_up(u64 want, u16 qsize)
{
	int q;

	if (!virtio_start(dev, want))
		return false;
	read_config();
	for (q = 0; q < nqueues; q++)
		if (!virtq_setup(dev, q, qsize))
			return false;
	return virtio_driver_ok(dev);
}

/* Phase 1: plain rings (no EVENT_IDX), the functional checks. */
static void phase1(void)
{
	struct virtq *vq = &dev->vq[0];
	int q;

	if (!bring_up(base_features() | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 0))
		return;
	check(!!(dev->features & VIRTIO_BIT(VIRTIO_BLK_F_RO)) == ro,
	      "VIRTIO_BLK_F_RO matches the disk", "offered: %s, blk_ro=%d",
	      dev->features & VIRTIO_BIT(VIRTIO_BLK_F_RO) ? "yes" : "no", ro);
	pass("device ready: %s, %d queue(s) of %u", dev->name, nqueues,
	     vq->size);
	check_read(vq, 0, 8, 1, false, "read first 4 KiB");
	check_read(vq, capacity - 1, 1, 1, false, "read last sector");
	check_read(vq, 10, 4, 3, false, "multi-segment read");
	if (dev->indirect)
		check_read(vq, 20, 6, 3, true, "indirect-descriptor read");
	else
		printf("note: VIRTIO_F_INDIRECT_DESC not offered\n");
	test_errors(vq);
	test_get_id(vq);
	test_write(vq);
	test_flush(vq);
	test_range_op(vq, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_F_WRITE_ZEROES,
		      "blk_zero", "WRITE_ZEROES", "BLK-ZEROED");
	test_range_op(vq, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_F_DISCARD,
		      "blk_discard", "DISCARD", "BLK-DISCARDED");
	for (q = 0; q < nqueues; q++) {
		char what[40];

		snprintf(what, sizeof(what), "read on queue %d", q);
		check_read(&dev->vq[q], 40 + 8 * q, 8, 1, false, what);
		test_batch(&dev->vq[q], 6, dev->indirect, 1024 + 64 * q, false);
	}
}

/* Phase 2: reset, renegotiate with EVENT_IDX, small rings that wrap. */
static void phase2(void)
{
	struct virtq *vq = &dev->vq[0];
	int i, q;

	if (!bring_up(base_features() | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
		      VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 16))
		return;
	if (!dev->event_idx)
		printf("note: VIRTIO_F_EVENT_IDX not offered\n");
	pass("re-initialised after reset (event_idx %s, queue size %u)",
	     dev->event_idx ? "on" : "off", vq->size);
	for (i = 0; i < 12; i++)
		test_batch(vq, 3 + i % 4, dev->indirect, 2048 + 64 * i, i & 1);
	check_read(vq, 1, 3, 3, false, "multi-segment read after wrap");
	for (q = 1; q < nqueues; q++)
		test_batch(&dev->vq[q], 5, false, 4096 + 64 * q, true);
	printf("q0: %u notifies, %u suppressed\n", vq->notifies, vq->suppressed);
	if (dev->event_idx)
		check(vq->notifies > 0, "EVENT_IDX: avail_event honoured",
		      "%u notifies, %u suppressed", vq->notifies,
		      vq->suppressed);
}

void test_main(void)
{
	char want[16];

	printf("keel virtio-blk\n");
	ro = cmdline_u64_or("blk_ro", 0);
	dev = virtio_find(VIRTIO_ID_BLOCK, 0);
	if (!dev) {
		fail("no virtio-blk device found");
		return;
	}
	if (cmdline_str("transport", want, sizeof(want)))
		check(!strcmp(want, virtio_transport_name(dev)),
		      "device on the expected transport", "%s, expected %s",
		      dev->name, want);
	phase1();
	if (test_fails)
		return;
	phase2();
	virtio_reset(dev);
}
