/*
 * Transport-independent virtio layer: device discovery, status/feature
 * negotiation, split virtqueues (free list, optional indirect tables and
 * VIRTIO_F_EVENT_IDX notification suppression), polled completion.
 */
#include <keel/kit.h>
#include <keel/virtio.h>

static struct virtio_dev devs[VIRTIO_MAX_DEVS];
static int ndevs = -1;

static bool is_virtio_pci(const struct pci_dev *p)
{
	return p->vendor == 0x1af4 && p->device >= 0x1000 && p->device <= 0x107f;
}

int virtio_probe(void)
{
	int i, n;

	if (ndevs >= 0)
		return ndevs;
	ndevs = 0;
	n = pci_count() ? pci_count() : pci_scan();
	for (i = 0; i < n && ndevs < VIRTIO_MAX_DEVS; i++) {
		struct pci_dev *p = pci_get(i);

		if (is_virtio_pci(p) && virtio_pci_attach(&devs[ndevs], p))
			ndevs++;
	}
	ndevs += virtio_mmio_probe(devs + ndevs, VIRTIO_MAX_DEVS - ndevs);
	for (i = 0; i < ndevs; i++)
		printf("virtio: %s: type %u\n", devs[i].name, devs[i].id);
	return ndevs;
}

int virtio_count(void)
{
	return virtio_probe();
}

struct virtio_dev *virtio_get(int i)
{
	return i >= 0 && i < virtio_probe() ? &devs[i] : NULL;
}

struct virtio_dev *virtio_find(u32 id, int nth)
{
	int i;

	for (i = 0; i < virtio_probe(); i++)
		if (devs[i].id == id && nth-- == 0)
			return &devs[i];
	return NULL;
}

const char *virtio_transport_name(const struct virtio_dev *d)
{
	return d->transport == VIRTIO_PCI ? "pci" : "mmio";
}

static u64 timeout_us(u64 us)
{
	return us ? us : cmdline_u64_or("virtio_timeout", 10) * 1000000ULL;
}

bool virtio_reset(struct virtio_dev *d)
{
	u64 end;
	int i;

	d->ops->set_status(d, 0);
	end = tsc_deadline(timeout_us(0));
	while (d->ops->get_status(d) != 0) {
		if (tsc_expired(end)) {
			fail("%s: reset: status stays %#x", d->name,
			     d->ops->get_status(d));
			return false;
		}
		cpu_relax();
	}
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->vq[i].ready = false;
	d->features = 0;
	d->event_idx = d->indirect = false;
	return true;
}

bool virtio_start(struct virtio_dev *d, u64 want)
{
	u8 st;

	if (!virtio_reset(d))
		return false;
	d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->dev_features = d->ops->get_features(d);
	if (!(d->dev_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		fail("%s: VIRTIO_F_VERSION_1 not offered (features %#llx)",
		     d->name, d->dev_features);
		d->ops->set_status(d, VIRTIO_STATUS_FAILED);
		return false;
	}
	d->features = (d->dev_features & want) | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	d->ops->set_features(d, d->features);
	d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			   VIRTIO_STATUS_FEATURES_OK);
	st = d->ops->get_status(d);
	if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
		fail("%s: FEATURES_OK did not stick (status %#x, features %#llx)",
		     d->name, st, d->features);
		d->ops->set_status(d, VIRTIO_STATUS_FAILED);
		return false;
	}
	d->event_idx = d->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	d->indirect = d->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	printf("%s: features offered %#llx, negotiated %#llx\n", d->name,
	       d->dev_features, d->features);
	return true;
}

bool virtq_setup(struct virtio_dev *d, u16 q, u16 size)
{
	struct virtq *vq;
	u16 max;
	int i;

	if (q >= VIRTIO_MAX_QUEUES) {
		fail("%s: queue %u beyond the kit's limit", d->name, q);
		return false;
	}
	vq = &d->vq[q];
	max = d->ops->queue_max(d, q);
	if (!max) {
		fail("%s: queue %u does not exist", d->name, q);
		return false;
	}
	if (!size || size > max)
		size = max;
	if (size > VIRTQ_MAX_SIZE)
		size = VIRTQ_MAX_SIZE;
	if (size & (size - 1)) {
		fail("%s: queue %u size %u is not a power of 2", d->name, q, size);
		return false;
	}
	memset(vq, 0, sizeof(*vq));
	vq->dev = d;
	vq->index = q;
	vq->size = size;
	vq->desc = dma_alloc(16 * size, 4096);
	vq->avail = dma_alloc(6 + 2 * size, 4096);
	vq->used = dma_alloc(6 + 8 * size, 4096);
	for (i = 0; i < size; i++)
		vq->desc[i].next = (i + 1) & (size - 1);
	vq->free_head = 0;
	vq->num_free = size;
	if (!d->ops->queue_setup(d, vq))
		return false;
	vq->ready = true;
	return true;
}

bool virtio_driver_ok(struct virtio_dev *d)
{
	u8 st;

	d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	st = d->ops->get_status(d);
	if ((st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) ||
	    !(st & VIRTIO_STATUS_DRIVER_OK)) {
		fail("%s: DRIVER_OK: status %#x", d->name, st);
		return false;
	}
	return true;
}

u8 virtio_cfg8(struct virtio_dev *d, u32 off)
{
	return d->ops->cfg_read(d, off, 1);
}

u16 virtio_cfg16(struct virtio_dev *d, u32 off)
{
	return d->ops->cfg_read(d, off, 2);
}

u32 virtio_cfg32(struct virtio_dev *d, u32 off)
{
	return d->ops->cfg_read(d, off, 4);
}

u64 virtio_cfg64(struct virtio_dev *d, u32 off)
{
	u32 g, lo, hi;
	int tries = 100;

	do {
		g = d->ops->cfg_generation(d);
		lo = d->ops->cfg_read(d, off, 4);
		hi = d->ops->cfg_read(d, off + 4, 4);
	} while (g != d->ops->cfg_generation(d) && --tries);
	return (u64)hi << 32 | lo;
}

int virtq_add(struct virtq *vq, const struct vbuf *b, int n, bool indirect)
{
	u16 head, i;
	int k;

	if (n <= 0 || !vq->ready)
		return -1;
	if (indirect) {
		struct vring_desc *t;

		if (!vq->dev->indirect || n > VIRTQ_MAX_INDIRECT || !vq->num_free)
			return -1;
		head = vq->free_head;
		if (!vq->indirect[head])
			vq->indirect[head] = dma_alloc(16 * VIRTQ_MAX_INDIRECT, 16);
		t = vq->indirect[head];
		for (k = 0; k < n; k++) {
			t[k].addr = (u64)(uintptr_t)b[k].addr;
			t[k].len = b[k].len;
			t[k].flags = (b[k].dev_writes ? VRING_DESC_F_WRITE : 0) |
				     (k + 1 < n ? VRING_DESC_F_NEXT : 0);
			t[k].next = k + 1 < n ? k + 1 : 0;
		}
		vq->desc[head].addr = (u64)(uintptr_t)t;
		vq->desc[head].len = 16 * n;
		vq->desc[head].flags = VRING_DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
		vq->num_free--;
		vq->chain[head] = 1;
	} else {
		if (n > vq->num_free)
			return -1;
		head = i = vq->free_head;
		for (k = 0; k < n; k++) {
			vq->desc[i].addr = (u64)(uintptr_t)b[k].addr;
			vq->desc[i].len = b[k].len;
			vq->desc[i].flags = (b[k].dev_writes ? VRING_DESC_F_WRITE : 0) |
					    (k + 1 < n ? VRING_DESC_F_NEXT : 0);
			i = vq->desc[i].next;
		}
		vq->free_head = i;
		vq->num_free -= n;
		vq->chain[head] = n;
	}
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	virtio_wmb();
	vq->avail->idx = ++vq->avail_idx;
	return head;
}

void virtq_kick(struct virtq *vq)
{
	u16 old = vq->kicked_idx, new = vq->avail_idx;
	bool need;

	virtio_mb();	/* avail->idx visible before we look at the device's hint */
	if (vq->dev->event_idx) {
		u16 ev = *(volatile u16 *)((volatile u8 *)vq->used + 4 +
					     8 * vq->size);	/* avail_event */

		need = (u16)(new - ev - 1) < (u16)(new - old);
	} else {
		need = !(vq->used->flags & VRING_USED_F_NO_NOTIFY);
	}
	vq->kicked_idx = new;
	if (need) {
		vq->dev->ops->notify(vq);
		vq->notifies++;
	} else {
		vq->suppressed++;
	}
}

bool virtq_get(struct virtq *vq, u32 *id, u32 *len)
{
	u16 i, n, head;
	u32 got_id, got_len;

	if (vq->used->idx == vq->last_used)
		return false;
	asm volatile("" ::: "memory");	/* read the entry after idx */
	got_id = vq->used->ring[vq->last_used & (vq->size - 1)].id;
	got_len = vq->used->ring[vq->last_used & (vq->size - 1)].len;
	vq->last_used++;
	if (vq->dev->event_idx)
		*(volatile u16 *)&vq->avail->ring[vq->size] = vq->last_used;
	if (got_id >= vq->size || !vq->chain[got_id]) {
		fail("%s q%u: used ring returned bad id %u", vq->dev->name,
		     vq->index, got_id);
		return false;
	}
	head = got_id;
	n = vq->chain[head];	/* ring descriptors used: 1 if indirect */
	vq->chain[head] = 0;
	vq->num_free += n;
	for (i = head; --n; )
		i = vq->desc[i].next;
	/* Splice the chain back onto the free list. */
	vq->desc[i].next = vq->free_head;
	vq->free_head = head;
	if (id)
		*id = got_id;
	if (len)
		*len = got_len;
	return true;
}

bool virtq_wait(struct virtq *vq, u32 *id, u32 *len, u64 us)
{
	u64 end = tsc_deadline(timeout_us(us));

	while (!virtq_get(vq, id, len)) {
		if (tsc_expired(end))
			return false;
		cpu_relax();
	}
	return true;
}

bool virtq_run(struct virtq *vq, const struct vbuf *b, int n, bool indirect,
	       u32 *len, const char *what)
{
	int head = virtq_add(vq, b, n, indirect);
	u32 id;

	if (head < 0) {
		fail("%s: %s: cannot queue %d buffers on q%u (%u free)",
		     vq->dev->name, what, n, vq->index, vq->num_free);
		return false;
	}
	virtq_kick(vq);
	if (!virtq_wait(vq, &id, len, 0)) {
		fail("%s: %s: no completion on q%u (avail %u, used %u)",
		     vq->dev->name, what, vq->index, vq->avail_idx,
		     vq->used->idx);
		return false;
	}
	if (id != (u32)head) {
		fail("%s: %s: completion for head %u, expected %d",
		     vq->dev->name, what, id, head);
		return false;
	}
	return true;
}
