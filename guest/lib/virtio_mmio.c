/*
 * virtio-mmio transport, version 2 register layout (virtio 1.x section
 * 4.2.2). Devices come from the command line in Linux's syntax:
 * virtio_mmio.device=<size>@<baseaddr>:<irq>[:<id>], any number of them
 * (QEMU microvm appends these itself).
 */
#include <keel/kit.h>
#include <keel/virtio.h>

#define MMIO_MAGIC		0x000
#define MMIO_VERSION		0x004
#define MMIO_DEVICE_ID		0x008
#define MMIO_VENDOR_ID		0x00c
#define MMIO_DEV_FEATURES	0x010
#define MMIO_DEV_FEATURES_SEL	0x014
#define MMIO_DRV_FEATURES	0x020
#define MMIO_DRV_FEATURES_SEL	0x024
#define MMIO_QUEUE_SEL		0x030
#define MMIO_QUEUE_NUM_MAX	0x034
#define MMIO_QUEUE_NUM		0x038
#define MMIO_QUEUE_READY	0x044
#define MMIO_QUEUE_NOTIFY	0x050
#define MMIO_INT_STATUS		0x060
#define MMIO_INT_ACK		0x064
#define MMIO_STATUS		0x070
#define MMIO_QUEUE_DESC_LO	0x080
#define MMIO_QUEUE_DESC_HI	0x084
#define MMIO_QUEUE_DRIVER_LO	0x090
#define MMIO_QUEUE_DRIVER_HI	0x094
#define MMIO_QUEUE_DEVICE_LO	0x0a0
#define MMIO_QUEUE_DEVICE_HI	0x0a4
#define MMIO_CONFIG_GEN		0x0fc
#define MMIO_CONFIG		0x100

#define MAGIC_VIRT		0x74726976

static u32 rd(struct virtio_dev *d, u32 r)
{
	return *(volatile u32 *)phys_ptr(d->base + r);
}

static void wr(struct virtio_dev *d, u32 r, u32 v)
{
	*(volatile u32 *)phys_ptr(d->base + r) = v;
}

static u8 m_get_status(struct virtio_dev *d)
{
	return rd(d, MMIO_STATUS);
}

static void m_set_status(struct virtio_dev *d, u8 s)
{
	wr(d, MMIO_STATUS, s);
}

static u64 m_get_features(struct virtio_dev *d)
{
	u32 lo, hi;

	wr(d, MMIO_DEV_FEATURES_SEL, 0);
	lo = rd(d, MMIO_DEV_FEATURES);
	wr(d, MMIO_DEV_FEATURES_SEL, 1);
	hi = rd(d, MMIO_DEV_FEATURES);
	return (u64)hi << 32 | lo;
}

static void m_set_features(struct virtio_dev *d, u64 f)
{
	wr(d, MMIO_DRV_FEATURES_SEL, 0);
	wr(d, MMIO_DRV_FEATURES, f);
	wr(d, MMIO_DRV_FEATURES_SEL, 1);
	wr(d, MMIO_DRV_FEATURES, f >> 32);
}

static u16 m_queue_max(struct virtio_dev *d, u16 q)
{
	u32 n;

	wr(d, MMIO_QUEUE_SEL, q);
	n = rd(d, MMIO_QUEUE_NUM_MAX);
	return n > 0x8000 ? 0x8000 : n;
}

static bool m_queue_setup(struct virtio_dev *d, struct virtq *vq)
{
	wr(d, MMIO_QUEUE_SEL, vq->index);
	if (rd(d, MMIO_QUEUE_READY)) {
		fail("%s: queue %u ready before set-up", d->name, vq->index);
		return false;
	}
	wr(d, MMIO_QUEUE_NUM, vq->size);
	wr(d, MMIO_QUEUE_DESC_LO, (u64)(uintptr_t)vq->desc);
	wr(d, MMIO_QUEUE_DESC_HI, (u64)(uintptr_t)vq->desc >> 32);
	wr(d, MMIO_QUEUE_DRIVER_LO, (u64)(uintptr_t)vq->avail);
	wr(d, MMIO_QUEUE_DRIVER_HI, (u64)(uintptr_t)vq->avail >> 32);
	wr(d, MMIO_QUEUE_DEVICE_LO, (u64)(uintptr_t)vq->used);
	wr(d, MMIO_QUEUE_DEVICE_HI, (u64)(uintptr_t)vq->used >> 32);
	wr(d, MMIO_QUEUE_READY, 1);
	if (rd(d, MMIO_QUEUE_READY) != 1) {
		fail("%s: queue %u: QueueReady does not read back 1", d->name,
		     vq->index);
		return false;
	}
	vq->notify_addr = d->base + MMIO_QUEUE_NOTIFY;
	return true;
}

static void m_notify(struct virtq *vq)
{
	*(volatile u32 *)phys_ptr(vq->notify_addr) = vq->index;
}

static u32 m_cfg_read(struct virtio_dev *d, u32 off, int size)
{
	u64 a = d->base + MMIO_CONFIG + off;

	switch (size) {
	case 1: return *(volatile u8 *)phys_ptr(a);
	case 2: return *(volatile u16 *)phys_ptr(a);
	default: return *(volatile u32 *)phys_ptr(a);
	}
}

static void m_cfg_write(struct virtio_dev *d, u32 off, int size, u32 v)
{
	u64 a = d->base + MMIO_CONFIG + off;

	switch (size) {
	case 1: *(volatile u8 *)phys_ptr(a) = v; break;
	case 2: *(volatile u16 *)phys_ptr(a) = v; break;
	default: *(volatile u32 *)phys_ptr(a) = v; break;
	}
}

static u32 m_cfg_generation(struct virtio_dev *d)
{
	return rd(d, MMIO_CONFIG_GEN);
}

static u8 m_isr(struct virtio_dev *d)
{
	u32 s = rd(d, MMIO_INT_STATUS);

	wr(d, MMIO_INT_ACK, s);
	return s;
}

static const struct virtio_ops mmio_ops = {
	.get_status = m_get_status,
	.set_status = m_set_status,
	.get_features = m_get_features,
	.set_features = m_set_features,
	.queue_max = m_queue_max,
	.queue_setup = m_queue_setup,
	.notify = m_notify,
	.cfg_read = m_cfg_read,
	.cfg_write = m_cfg_write,
	.cfg_generation = m_cfg_generation,
	.isr = m_isr,
};

/* Parse "<size>@<base>:<irq>[:<id>]"; size may end in K/M/G. */
static bool parse_dev(const char *s, u64 *size, u64 *base, u32 *irq)
{
	const char *e;

	*size = strtou64(s, &e);
	if (e == s)
		return false;
	if (*e == 'k' || *e == 'K')
		*size <<= 10, e++;
	else if (*e == 'm' || *e == 'M')
		*size <<= 20, e++;
	else if (*e == 'g' || *e == 'G')
		*size <<= 30, e++;
	if (*e++ != '@')
		return false;
	s = e;
	*base = strtou64(s, &e);
	if (e == s || *e != ':')
		return false;
	s = e + 1;
	*irq = strtou64(s, &e);
	return e != s;
}

int virtio_mmio_probe(struct virtio_dev *devs, int max)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = cmdline();
	int n = 0;

	while (*p && n < max) {
		struct virtio_dev *d = &devs[n];
		u64 size, base;
		u32 irq, magic;

		while (*p == ' ')
			p++;
		if (strncmp(p, key, sizeof(key) - 1) ||
		    !parse_dev(p + sizeof(key) - 1, &size, &base, &irq)) {
			while (*p && *p != ' ')
				p++;
			continue;
		}
		while (*p && *p != ' ')
			p++;
		memset(d, 0, sizeof(*d));
		d->ops = &mmio_ops;
		d->transport = VIRTIO_MMIO;
		d->base = base;
		d->size = size;
		d->irq = irq;
		snprintf(d->name, sizeof(d->name), "virtio-mmio@%#llx", base);
		if (size < 0x100 || !map_phys_range(base, size)) {
			fail("%s: bad region size %#llx or cannot map it",
			     d->name, size);
			continue;
		}
		magic = rd(d, MMIO_MAGIC);
		d->version = rd(d, MMIO_VERSION);
		d->id = rd(d, MMIO_DEVICE_ID);
		d->vendor = rd(d, MMIO_VENDOR_ID);
		if (magic != MAGIC_VIRT) {
			fail("%s: magic %#x, expected %#x", d->name, magic,
			     MAGIC_VIRT);
			continue;
		}
		if (d->id == 0)
			continue;	/* placeholder transport, no device */
		if (d->version != 2) {
			fail("%s: version %u: only the modern (version 2) "
			     "register layout is supported", d->name,
			     d->version);
			continue;
		}
		n++;
	}
	return n;
}
