/*
 * Polled virtio 1.x driver layer for test guests (ring 3, no interrupts):
 * split virtqueues with optional VIRTIO_F_EVENT_IDX and indirect
 * descriptors, over two transports: virtio-pci modern (virtio_pci.c) and
 * virtio-mmio version 2 (virtio_mmio.c, devices from the command line's
 * virtio_mmio.device=<size>@<base>:<irq> words).
 */
#ifndef KEEL_VIRTIO_H
#define KEEL_VIRTIO_H

#include <keel/types.h>
#include <keel/pci.h>

#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_CONSOLE	3
#define VIRTIO_ID_RNG		4

#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED	34
#define VIRTIO_BIT(b)		(1ULL << (b))

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4
#define VRING_USED_F_NO_NOTIFY	1
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct vring_avail {
	u16 flags;
	u16 idx;
	u16 ring[];		/* then used_event */
};

struct vring_used_elem {
	u32 id;
	u32 len;
};

struct vring_used {
	u16 flags;
	u16 idx;
	struct vring_used_elem ring[];	/* then avail_event */
};

#define VIRTQ_MAX_SIZE		256
#define VIRTQ_MAX_INDIRECT	16
#define VIRTIO_MAX_QUEUES	8
#define VIRTIO_MAX_DEVS		16

enum virtio_transport { VIRTIO_PCI = 1, VIRTIO_MMIO = 2 };

struct virtio_dev;

struct virtq {
	struct virtio_dev *dev;
	u16 index, size;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	u16 free_head, num_free;
	u16 avail_idx;		/* next avail->idx to publish */
	u16 kicked_idx;		/* avail->idx at the last kick decision */
	u16 last_used;
	u16 chain[VIRTQ_MAX_SIZE];	/* descriptors per head (0: free) */
	struct vring_desc *indirect[VIRTQ_MAX_SIZE];	/* table per head */
	u64 notify_addr;	/* PCI: MMIO address or I/O port; MMIO: reg */
	bool notify_io;
	u32 notifies, suppressed;
	bool ready;
};

/* One buffer of a request; dev_writes: device-writable (VRING_DESC_F_WRITE). */
struct vbuf {
	void *addr;
	u32 len;
	bool dev_writes;
};

struct virtio_ops {
	u8 (*get_status)(struct virtio_dev *d);
	void (*set_status)(struct virtio_dev *d, u8 s);
	u64 (*get_features)(struct virtio_dev *d);
	void (*set_features)(struct virtio_dev *d, u64 f);
	u16 (*queue_max)(struct virtio_dev *d, u16 q);	/* 0: no queue */
	bool (*queue_setup)(struct virtio_dev *d, struct virtq *vq);
	void (*notify)(struct virtq *vq);
	u32 (*cfg_read)(struct virtio_dev *d, u32 off, int size);
	void (*cfg_write)(struct virtio_dev *d, u32 off, int size, u32 v);
	u32 (*cfg_generation)(struct virtio_dev *d);
	u8 (*isr)(struct virtio_dev *d);	/* reads (and acks) it */
};

struct virtio_dev {
	const struct virtio_ops *ops;
	enum virtio_transport transport;
	u32 id;			/* virtio device type */
	char name[40];
	u64 dev_features;	/* offered */
	u64 features;		/* negotiated */
	bool event_idx, indirect;
	/* PCI */
	struct pci_dev *pci;
	u64 common, notify_base, isr_addr, devcfg;
	u32 notify_mult, notify_len, devcfg_len;
	bool notify_io;
	u16 pci_num_queues;
	u8 cap_off[6];		/* config-space offset of each cfg_type cap */
	/* MMIO */
	u64 base, size;
	u32 irq, version, vendor;
	struct virtq vq[VIRTIO_MAX_QUEUES];
};

/* Discover devices on both transports (PCI scan + cmdline MMIO list). */
int virtio_probe(void);
int virtio_count(void);
struct virtio_dev *virtio_get(int i);
/* nth device of this type; NULL if none. */
struct virtio_dev *virtio_find(u32 id, int nth);
const char *virtio_transport_name(const struct virtio_dev *d);

/* Transport probes (called by virtio_probe). */
bool virtio_pci_attach(struct virtio_dev *d, struct pci_dev *p);
int virtio_mmio_probe(struct virtio_dev *devs, int max);

/*
 * Reset, ACKNOWLEDGE, DRIVER, read features, write (offered & want) |
 * VERSION_1, FEATURES_OK and check it sticks. FAIL lines on error.
 */
bool virtio_start(struct virtio_dev *d, u64 want);
bool virtio_reset(struct virtio_dev *d);
/* Allocate rings (size 0: the device maximum, capped), enable the queue. */
bool virtq_setup(struct virtio_dev *d, u16 q, u16 size);
bool virtio_driver_ok(struct virtio_dev *d);

u8 virtio_cfg8(struct virtio_dev *d, u32 off);
u16 virtio_cfg16(struct virtio_dev *d, u32 off);
u32 virtio_cfg32(struct virtio_dev *d, u32 off);
u64 virtio_cfg64(struct virtio_dev *d, u32 off);	/* generation-checked */

/* Queue a request (not yet kicked); head id, or -1 when out of room. */
int virtq_add(struct virtq *vq, const struct vbuf *b, int n, bool indirect);
/* Notify unless the device suppressed it (flags / avail_event). */
void virtq_kick(struct virtq *vq);
/* Pop one used element if there is one. */
bool virtq_get(struct virtq *vq, u32 *id, u32 *len);
/* Poll for one used element, up to timeout_us (0: cmdline virtio_timeout
 * seconds, default 10). */
bool virtq_wait(struct virtq *vq, u32 *id, u32 *len, u64 timeout_us);
/* add + kick + wait for this very request. false (and FAIL) on error. */
bool virtq_run(struct virtq *vq, const struct vbuf *b, int n, bool indirect,
	       u32 *len, const char *what);

static inline void virtio_mb(void) { asm volatile("mfence" ::: "memory"); }
static inline void virtio_wmb(void) { asm volatile("" ::: "memory"); }

#endif
