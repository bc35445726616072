// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the split virtqueue (device side).  The input is a
 * 16-byte header followed by the contents of a 64 KiB guest RAM in two
 * regions with a hole between them (gpa 0-0x8000 and 0x10000-0x18000, one
 * heap buffer on the host so ASan sees any access beyond it):
 *
 *   byte 0     queue size: 1 << (b & 7), or with bit 7 the raw u16 at 2..3
 *   byte 1     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 ring addresses
 *              from bytes 4..9 (u16 * 2 each) instead of the packed layout,
 *              bit 3 start the indices at the u16 in bytes 10..11 (wrap)
 *   byte 12    how many pops to try (up to 255)
 *   byte 13    offset for chain_read / chain_write
 *   16..       guest RAM from gpa 0 (region 0 then region 1)
 *
 * The packed layout puts the avail ring at 0, then the used ring, then the
 * descriptor table, so short inputs reach all three.
 *
 * Invariants: a pop returns -1, 0 or 1; on 1 every iovec is non-empty and
 * inside one RAM region, the counts and byte totals add up and stay within
 * VIRTQ_MAX_CHAIN; on -1 there is an error message and the queue is broken
 * for good; nothing crashes under ASan/UBSan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"

#define RAM_BYTES   0x10000
#define REGION_SIZE 0x8000
#define HIGH_GPA    0x10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram_buf;
static struct mem ram;
static struct virtq_chain chain;
static uint8_t scratch[4096];

static void setup(void)
{
	if (ram_buf)
		return;
	ram_buf = malloc(RAM_BYTES);
	if (!ram_buf)
		abort();
	ram = (struct mem){ .fd = -1, .host = ram_buf, .size = RAM_BYTES, .nr_regions = 2 };
	ram.region[0] = (struct mem_region){ .gpa = 0, .size = REGION_SIZE, .host = ram_buf };
	ram.region[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = REGION_SIZE,
					     .host = ram_buf + REGION_SIZE };
	memset(scratch, 0xa5, sizeof(scratch));
}

static bool in_one_region(const void *base, size_t len)
{
	const uint8_t *p = base;

	for (int i = 0; i < ram.nr_regions; i++) {
		const uint8_t *lo = ram.region[i].host, *hi = lo + ram.region[i].size;

		if (p >= lo && p < hi && len <= (size_t)(hi - p))
			return true;
	}
	return false;
}

static void check_chain(const struct virtq *vq, size_t offset)
{
	uint64_t out = 0, in = 0;
	unsigned int n = chain.nr_out + chain.nr_in;

	if (chain.head >= vq->cfg.size)
		abort();
	if (n > VIRTQ_MAX_CHAIN)
		abort();
	for (unsigned int k = 0; k < n; k++) {
		if (!chain.iov[k].iov_len || !in_one_region(chain.iov[k].iov_base, chain.iov[k].iov_len))
			abort();
		if (k < chain.nr_out)
			out += chain.iov[k].iov_len;
		else
			in += chain.iov[k].iov_len;
	}
	if (out != chain.out_len || in != chain.in_len)
		abort();
	{
		size_t want = chain.out_len > offset ? chain.out_len - offset : 0;
		size_t got = virtq_chain_read(&chain, offset, scratch, sizeof(scratch));

		if (got != (want < sizeof(scratch) ? want : sizeof(scratch)))
			abort();
		want = chain.in_len > offset ? chain.in_len - offset : 0;
		got = virtq_chain_write(&chain, offset, scratch, 64);
		if (got != (want < 64 ? want : 64))
			abort();
	}
}

static void check_error(int ret, keel_error *err, const struct virtq *vq)
{
	if (ret != -1 || !err || !vq->broken)
		abort();
	if (!keel_error_get_message(err)[0])
		abort();
	keel_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	keel_error *err = NULL;
	uint8_t hdr[16] = { 0 };
	unsigned int pops;
	size_t offset;
	int ret;

	setup();
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	memset(ram_buf, 0, RAM_BYTES);
	if (size > sizeof(hdr))
		memcpy(ram_buf, data + sizeof(hdr),
		       size - sizeof(hdr) < RAM_BYTES ? size - sizeof(hdr) : RAM_BYTES);

	virtq_reset(&vq);
	if (hdr[0] & 0x80)
		vq.cfg.size = (uint16_t)(hdr[2] | hdr[3] << 8);
	else
		vq.cfg.size = (uint16_t)(1u << (hdr[0] & 7));
	vq.event_idx = hdr[1] & 1;
	vq.indirect = hdr[1] & 2;
	if (hdr[1] & 4) {
		vq.cfg.avail_gpa = 2ULL * (uint16_t)(hdr[4] | hdr[5] << 8);
		vq.cfg.used_gpa = 2ULL * (uint16_t)(hdr[6] | hdr[7] << 8);
		vq.cfg.desc_gpa = 2ULL * (uint16_t)(hdr[8] | hdr[9] << 8);
	} else {
		uint64_t n = vq.cfg.size;

		vq.cfg.avail_gpa = 0;
		vq.cfg.used_gpa = (6 + 2 * n + 3) & ~3ULL;
		vq.cfg.desc_gpa = (vq.cfg.used_gpa + 6 + 8 * n + 15) & ~15ULL;
	}
	pops = hdr[12];
	offset = hdr[13];

	ret = virtq_enable(&vq, &ram, &err);
	if (ret) {
		check_error(ret, err, &vq);
		err = NULL;
		if (virtq_pop(&vq, &chain, &err) != -1 || !err)
			abort();
		keel_error_free(err);
		return 0;
	}
	if (err || !vq.enabled || vq.broken)
		abort();
	if (hdr[1] & 8) {
		uint16_t start = (uint16_t)(hdr[10] | hdr[11] << 8);

		vq.last_avail = vq.used_idx = start;
	}

	for (unsigned int k = 0; k < pops; k++) {
		ret = virtq_pop(&vq, &chain, &err);
		if (ret == 1) {
			check_chain(&vq, offset);
			virtq_push(&vq, chain.head, (uint32_t)chain.in_len);
			(void)virtq_should_notify(&vq);
			if (k & 1)
				virtq_disable_kicks(&vq);
		} else if (ret == 0) {
			if (err)
				abort();
			if (!virtq_enable_kicks(&vq))
				break;
		} else {
			check_error(ret, err, &vq);
			err = NULL;
			if (virtq_pop(&vq, &chain, &err) != -1 || !err)
				abort();
			keel_error_free(err);
			break;
		}
	}
	(void)virtq_enable_kicks(&vq);
	return 0;
}
