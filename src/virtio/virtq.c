// SPDX-License-Identifier: MIT
/*
 * Split virtqueues, device side (virtio 1.x, 2.7).
 *
 * Everything in the rings belongs to the guest and can change under us at
 * any time, so every value is read exactly once into a local and validated
 * there: ring indices with single 16-bit loads, descriptors by copying their
 * 16 bytes out before looking at them (then a compiler barrier, so the
 * compiler cannot go back to guest memory for a field).  Every guest
 * address goes through mem_ptr(), each ring once at enable time (whole
 * extent) and each buffer and indirect table at pop time.
 *
 * Memory ordering, as in Linux (vhost) and QEMU:
 *  - pop: avail->idx is loaded with acquire semantics, so the ring entries
 *    and descriptors the driver wrote before publishing it are seen;
 *  - push / fill+flush: the used elements are written, then used->idx is
 *    release-stored (once for all the elements flushed together);
 *  - should_notify / enable_kicks: a full fence separates our store (used
 *    idx, used flags or avail_event) from the load of the driver's field
 *    (used_event / avail flags, avail idx), pairing with the driver's own
 *    full barrier between its store and load.
 *
 * Choices the spec leaves to the device:
 *  - Zero-length descriptors are accepted and produce no iovec; their
 *    address is not checked, as nothing is ever accessed through it.  They
 *    still count toward the chain limits and the readable-before-writable
 *    rule.
 *  - Indirect descriptors (2.7.5.3.2): "zero or more normal chained
 *    descriptors followed by a single descriptor with INDIRECT" is accepted,
 *    as the spec requires of devices; since INDIRECT together with NEXT is
 *    rejected, an indirect descriptor is always the last of the direct part.
 *    Its WRITE flag is ignored (as the spec requires).  The table has no
 *    alignment requirement.
 *  - The readable-before-writable rule spans the whole chain, direct part
 *    and indirect table together.
 *  - Limits: the direct part may not walk more than `size` descriptors and
 *    an indirect table no more than its number of entries (either means a
 *    loop); buffers in the whole chain are limited to VIRTQ_MAX_CHAIN.
 *  - Once broken, push, should_notify and the kick calls do nothing (and
 *    pop fails), so a broken queue is never touched again until reset or
 *    re-enabled.
 *
 * virtio 1.x rings are little-endian; the le*toh() conversions are free on
 * x86 and keep the code honest elsewhere.
 */
#include <endian.h>
#include <string.h>

#include "virtio/virtq.h"

/* Byte offsets inside the rings. */
#define AVAIL_IDX        1      /* in u16 units: flags, idx, ring[] */
#define AVAIL_RING       2
#define USED_FLAGS       0
#define USED_IDX         1
#define USED_RING_BYTES  4      /* elements start after flags and idx */

#define compiler_barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* Marks the queue broken and reports a guest error. */
#define guest_err(vq, err, ...) \
	((vq)->broken = true, err_set((err), KEEL_ERR_GUEST, __VA_ARGS__))

static inline uint16_t load_avail_idx(const struct virtq *vq, int order)
{
	return le16toh(__atomic_load_n(&vq->avail[AVAIL_IDX], order));
}

/* used_event sits after the avail ring, avail_event after the used ring. */
static inline volatile uint16_t *used_event_ptr(const struct virtq *vq)
{
	return &vq->avail[AVAIL_RING + vq->cfg.size];
}

static inline volatile uint16_t *avail_event_ptr(const struct virtq *vq)
{
	return &vq->used[(USED_RING_BYTES + 8 * (size_t)vq->cfg.size) / 2];
}

/* The one read of a descriptor: 16 bytes copied out, any alignment. */
static inline void desc_read(const uint8_t *src, struct virtq_desc *d)
{
	memcpy(d, src, sizeof(*d));
	compiler_barrier();
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

int virtq_enable(struct virtq *vq, const struct mem *mem, keel_error **err)
{
	const struct virtq_config *c = &vq->cfg;
	uint64_t desc_len, avail_len, used_len;
	void *desc, *avail, *used;

	vq->enabled = false;
	vq->broken = false;
	vq->mem = NULL;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;

	if (!c->size || c->size > VIRTQ_MAX_SIZE || (c->size & (c->size - 1)))
		return guest_err(vq, err, "queue size %u is not a power of two in 1..%u",
				 c->size, VIRTQ_MAX_SIZE);
	if (c->desc_gpa % 16)
		return guest_err(vq, err, "descriptor table at 0x%llx is not 16-byte aligned",
				 (unsigned long long)c->desc_gpa);
	if (c->avail_gpa % 2)
		return guest_err(vq, err, "available ring at 0x%llx is not 2-byte aligned",
				 (unsigned long long)c->avail_gpa);
	if (c->used_gpa % 4)
		return guest_err(vq, err, "used ring at 0x%llx is not 4-byte aligned",
				 (unsigned long long)c->used_gpa);

	desc_len = 16ULL * c->size;
	avail_len = 6 + 2ULL * c->size;         /* flags, idx, ring, used_event */
	used_len = 6 + 8ULL * c->size;          /* flags, idx, ring, avail_event */
	desc = mem_ptr(mem, c->desc_gpa, desc_len);
	if (!desc)
		return guest_err(vq, err, "descriptor table at 0x%llx (+0x%llx) is outside guest RAM",
				 (unsigned long long)c->desc_gpa, (unsigned long long)desc_len);
	avail = mem_ptr(mem, c->avail_gpa, avail_len);
	if (!avail)
		return guest_err(vq, err, "available ring at 0x%llx (+0x%llx) is outside guest RAM",
				 (unsigned long long)c->avail_gpa, (unsigned long long)avail_len);
	used = mem_ptr(mem, c->used_gpa, used_len);
	if (!used)
		return guest_err(vq, err, "used ring at 0x%llx (+0x%llx) is outside guest RAM",
				 (unsigned long long)c->used_gpa, (unsigned long long)used_len);

	vq->mem = mem;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->enabled = true;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain, keel_error **err)
{
	const uint16_t size = vq->cfg.size;
	const uint8_t *table;
	unsigned int entries, walked, i, nr = 0, nr_out = 0, nr_in = 0;
	uint64_t out_len = 0, in_len = 0;
	uint64_t table_gpa = 0;
	bool indirect = false, seen_write = false;
	uint16_t avail_idx, head;
	struct virtq_desc d;

	if (vq->broken)
		return err_set(err, KEEL_ERR_GUEST,
			       "queue is broken (the guest misprogrammed it); it needs a reset");
	if (!vq->enabled)
		return err_set(err, KEEL_ERR_STATE, "queue is not enabled");

	avail_idx = load_avail_idx(vq, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > size)
		return guest_err(vq, err, "avail index jumped from %u to %u, more than the queue size %u",
				 vq->last_avail, avail_idx, size);

	head = le16toh(vq->avail[AVAIL_RING + (vq->last_avail & (size - 1))]);
	if (head >= size)
		return guest_err(vq, err, "avail ring entry %u holds head %u, beyond the queue size %u",
				 vq->last_avail, head, size);

	table = (const uint8_t *)vq->desc;
	entries = size;
	walked = 0;
	i = head;
	for (;;) {
		desc_read(table + 16 * (size_t)i, &d);
		if (++walked > entries) {
			if (indirect)
				return guest_err(vq, err,
						 "chain at head %u: indirect table at 0x%llx chains more than its %u entries: a loop?",
						 head, (unsigned long long)table_gpa, entries);
			return guest_err(vq, err,
					 "chain at head %u is longer than the queue size %u: a loop?",
					 head, size);
		}

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (indirect)
				return guest_err(vq, err,
						 "chain at head %u: indirect descriptor %u of the table at 0x%llx is itself indirect (nested)",
						 head, i, (unsigned long long)table_gpa);
			if (!vq->indirect)
				return guest_err(vq, err,
						 "chain at head %u: descriptor %u is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated",
						 head, i);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return guest_err(vq, err,
						 "chain at head %u: descriptor %u has both INDIRECT and NEXT set",
						 head, i);
			if (!d.len || d.len % 16 || d.len > 16U * VIRTQ_MAX_SIZE)
				return guest_err(vq, err,
						 "chain at head %u: descriptor %u has an indirect table length of %u bytes, not a multiple of 16 in 16..%u",
						 head, i, d.len, 16U * VIRTQ_MAX_SIZE);
			table = mem_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return guest_err(vq, err,
						 "chain at head %u: descriptor %u has an indirect table at 0x%llx (+0x%x) outside guest RAM",
						 head, i, (unsigned long long)d.addr, d.len);
			table_gpa = d.addr;
			entries = d.len / 16;
			indirect = true;
			walked = 0;
			i = 0;
			continue;
		}

		if (d.flags & VIRTQ_DESC_F_WRITE) {
			seen_write = true;
		} else if (seen_write) {
			return guest_err(vq, err,
					 "chain at head %u: %sdescriptor %u is readable but follows a writable one",
					 head, indirect ? "indirect " : "", i);
		}
		if (nr >= VIRTQ_MAX_CHAIN)
			return guest_err(vq, err,
					 "chain at head %u has more than %u buffers (keel's limit): a loop?",
					 head, VIRTQ_MAX_CHAIN);
		nr++;
		if (d.len) {
			void *p = mem_ptr(vq->mem, d.addr, d.len);

			if (!p)
				return guest_err(vq, err,
						 "chain at head %u: %sdescriptor %u has a buffer at 0x%llx (+0x%x) outside guest RAM",
						 head, indirect ? "indirect " : "", i,
						 (unsigned long long)d.addr, d.len);
			chain->iov[nr_out + nr_in].iov_base = p;
			chain->iov[nr_out + nr_in].iov_len = d.len;
			if (d.flags & VIRTQ_DESC_F_WRITE) {
				nr_in++;
				in_len += d.len;
			} else {
				nr_out++;
				out_len += d.len;
			}
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= entries) {
			if (indirect)
				return guest_err(vq, err,
						 "chain at head %u: indirect descriptor %u has next %u, beyond the table's %u entries",
						 head, i, d.next, entries);
			return guest_err(vq, err,
					 "chain at head %u: descriptor %u has next %u, beyond the queue size %u",
					 head, i, d.next, size);
		}
		i = d.next;
	}

	chain->head = head;
	chain->nr_out = nr_out;
	chain->nr_in = nr_in;
	chain->out_len = out_len;
	chain->in_len = in_len;
	vq->last_avail++;
	return 1;
}

/* The used ring element `offset` slots past the device's used index. */
static inline volatile uint32_t *used_elem(const struct virtq *vq, uint16_t offset)
{
	uint16_t slot = (uint16_t)(vq->used_idx + offset) & (vq->cfg.size - 1);

	return (volatile uint32_t *)((volatile uint8_t *)vq->used + USED_RING_BYTES +
				     8 * (size_t)slot);
}

void virtq_fill(struct virtq *vq, uint16_t head, uint32_t len, uint16_t offset)
{
	volatile uint32_t *elem;

	if (!vq->enabled || vq->broken)
		return;
	elem = used_elem(vq, offset);
	elem[0] = htole32(head);
	elem[1] = htole32(len);
}

void virtq_flush(struct virtq *vq, uint16_t count)
{
	if (!vq->enabled || vq->broken)
		return;
	vq->used_idx = (uint16_t)(vq->used_idx + count);
	/* The elements must be visible before the index that publishes them. */
	__atomic_store_n(&vq->used[USED_IDX], htole16(vq->used_idx), __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	virtq_fill(vq, head, len, 0);
	virtq_flush(vq, 1);
}

void virtq_unpop(struct virtq *vq, uint16_t n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

/* The driver wants an event when it crosses `event` going from old to new. */
static inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old, event;
	bool valid;

	if (!vq->enabled || vq->broken)
		return false;
	/* Our used->idx store before the driver's flags/used_event load. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(le16toh(vq->avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	old = vq->signalled_used;
	valid = vq->signalled_valid;
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = le16toh(*used_event_ptr(vq));
	return need_event(event, vq->used_idx, old);
}

void virtq_disable_kicks(struct virtq *vq)
{
	if (!vq->enabled || vq->broken)
		return;
	/*
	 * With EVENT_IDX nothing is written: avail_event stays where
	 * virtq_enable_kicks() put it, so the driver kicks at most once more
	 * (as vhost and QEMU do).
	 */
	if (!vq->event_idx)
		vq->used[USED_FLAGS] = htole16(VIRTQ_USED_F_NO_NOTIFY);
}

void virtq_suppress_kicks(struct virtq *vq)
{
	if (!vq->enabled || vq->broken)
		return;
	/* One behind what we have taken: need_event() stays false (2.7.10). */
	if (vq->event_idx)
		*avail_event_ptr(vq) = htole16((uint16_t)(vq->last_avail - 1));
	else
		vq->used[USED_FLAGS] = htole16(VIRTQ_USED_F_NO_NOTIFY);
}

bool virtq_has_avail(const struct virtq *vq)
{
	return vq->enabled && !vq->broken &&
	       load_avail_idx(vq, __ATOMIC_ACQUIRE) != vq->last_avail;
}

bool virtq_enable_kicks(struct virtq *vq)
{
	return virtq_enable_kicks_ahead(vq, 0);
}

bool virtq_enable_kicks_ahead(struct virtq *vq, uint16_t ahead)
{
	uint16_t seen = (uint16_t)(vq->last_avail + ahead);

	if (!vq->enabled || vq->broken)
		return false;
	if (vq->event_idx)
		*avail_event_ptr(vq) = htole16(seen);
	else
		vq->used[USED_FLAGS] = 0;
	/* Our store before the load of avail->idx: no kick can be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load_avail_idx(vq, __ATOMIC_RELAXED) != seen;
}

static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t offset, void *buf,
		       size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned int k = 0; k < n && done < len; k++) {
		size_t chunk;

		if (offset >= iov[k].iov_len) {
			offset -= iov[k].iov_len;
			continue;
		}
		chunk = iov[k].iov_len - offset;
		if (chunk > len - done)
			chunk = len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[k].iov_base + offset, (uint8_t *)buf + done, chunk);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[k].iov_base + offset, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

size_t virtq_chain_read(const struct virtq_chain *chain, size_t offset, void *buf, size_t len)
{
	return iov_copy(chain->iov, chain->nr_out, offset, buf, len, false);
}

size_t virtq_chain_write(const struct virtq_chain *chain, size_t offset, const void *buf,
			 size_t len)
{
	return iov_copy(chain->iov + chain->nr_out, chain->nr_in, offset, (void *)buf, len, true);
}
