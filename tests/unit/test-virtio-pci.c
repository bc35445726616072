// SPDX-License-Identifier: MIT
/*
 * virtio transports (modern PCI and MMIO) and the rng/console devices,
 * against a VM without KVM: real buses, PCI host, event loop and guest RAM;
 * the KVM ioctls on the (fake) VM descriptor are answered and recorded here
 * (this program's ioctl() takes the library's calls).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "board/machine.h"
#include "bus/bus.h"
#include "core/loop.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/devices.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"
#include "x86/layout.h"
#include "check.h"
#include "fakevm.h"

/* ---- fake KVM ---- */

static int fake_fd = -1;

struct ioev { uint64_t addr, datamatch; uint32_t len, flags; int fd; bool live; };
static struct ioev ioevs[256];
static int nr_ioevs;
static int irq_level[32];
struct irqfd_rec { int fd; uint32_t gsi; };
static struct irqfd_rec irqfds[512];
static int nr_irqfds;

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != fake_fd || fake_fd < 0)
		return (int)syscall(SYS_ioctl, fd, req, arg);
	if (req == KVM_IOEVENTFD) {
		struct kvm_ioeventfd *io = arg;

		if (io->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
			for (int i = 0; i < nr_ioevs; i++)
				if (ioevs[i].live && ioevs[i].addr == io->addr && ioevs[i].fd == io->fd &&
				    ioevs[i].len == io->len &&
				    ioevs[i].datamatch == io->datamatch) {
					ioevs[i].live = false;
					return 0;
				}
			errno = ENOENT;
			return -1;
		}
		if (nr_ioevs == 256) {
			errno = ENOSPC;
			return -1;
		}
		ioevs[nr_ioevs++] = (struct ioev){ .addr = io->addr, .len = io->len, .fd = io->fd,
						   .flags = io->flags, .datamatch = io->datamatch,
						   .live = true };
		return 0;
	}
	if (req == KVM_IRQ_LINE) {
		struct kvm_irq_level *l = arg;

		if (l->irq < 32)
			irq_level[l->irq] = l->level;
		return 0;
	}
	if (req == KVM_IRQFD) {
		struct kvm_irqfd *f = arg;

		if (!(f->flags & KVM_IRQFD_FLAG_DEASSIGN) && nr_irqfds < 512)
			irqfds[nr_irqfds++] = (struct irqfd_rec){ .fd = (int)f->fd, .gsi = f->gsi };
		return 0;
	}
	return 0;       /* KVM_SET_GSI_ROUTING, KVM_CHECK_EXTENSION, ... */
}

static const struct ioev *ioev_find(uint64_t addr)
{
	for (int i = 0; i < nr_ioevs; i++)
		if (ioevs[i].live && ioevs[i].addr == addr)
			return &ioevs[i];
	return NULL;
}

static int ioev_live(void)
{
	int n = 0;

	for (int i = 0; i < nr_ioevs; i++)
		n += ioevs[i].live;
	return n;
}

/* ---- fake VM ---- */

static char last_log[1024];

static void log_cb(keel_log_level level, const char *msg, void *opaque)
{
	snprintf(last_log, sizeof(last_log), "%s", msg);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

static keel_virtio_transport transport;
static int nr_mmio;

static struct fake_vm *fake_vm(keel_virtio_transport t)
{
	transport = t;
	nr_mmio = 0;
	return fake_vm_new(&(struct fake_vm_opts){
		.flags = FAKE_VM_PIO | FAKE_VM_MMIO | FAKE_VM_LOOP | FAKE_VM_IRQ | FAKE_VM_PCI,
		.mem_size = 16 << 20, .kvm_fd = fake_fd, .log_cb = log_cb });
}

/* As the machine builder attaches devices: PCI, or the next virtio-mmio window and line. */
static int attach(struct fake_vm *v, struct virtio_dev *vdev, keel_error **err)
{
	static const uint8_t irqs[] = { 5, 6, 7, 10, 11, 14, 15 };

	if (!vdev)
		return -1;
	if (transport == KEEL_VIRTIO_PCI)
		return virtio_pci_attach(v->pci, vdev, err);
	if (virtio_mmio_attach(vdev, LAYOUT_VIRTIO_MMIO + (uint64_t)nr_mmio * VIRTIO_MMIO_STRIDE,
			       irqs[nr_mmio], err) < 0)
		return -1;
	nr_mmio++;
	return 0;
}

/* ---- a test device ---- */

struct tdev {
	struct virtio_dev vdev;
	uint8_t config[8];
	int starts, stops, destroyed;
	uint32_t last_write_off;
	uint8_t last_write;
};

static void t_config_read(struct virtio_dev *vdev, uint32_t off, void *data, unsigned int len)
{
	memcpy(data, ((struct tdev *)vdev)->config + off, len);
}

static void t_config_write(struct virtio_dev *vdev, uint32_t off, const void *data,
			   unsigned int len)
{
	struct tdev *t = (struct tdev *)vdev;

	t->last_write_off = off;
	t->last_write = *(const uint8_t *)data;
}

static int t_start(struct virtio_dev *vdev, keel_error **err)
{
	((struct tdev *)vdev)->starts++;
	return 0;
}

static void t_stop(struct virtio_dev *vdev)
{
	((struct tdev *)vdev)->stops++;
}

static int destroyed_count;

static void t_destroy(struct virtio_dev *vdev)
{
	destroyed_count++;
	virtio_dev_fini(vdev);
	free(vdev);
}

static const struct virtio_dev_ops t_ops = {
	.config_read = t_config_read, .config_write = t_config_write,
	.start = t_start, .stop = t_stop, .destroy = t_destroy,
};

static struct tdev *tdev_new(struct fake_vm *vm, unsigned int nr_queues)
{
	struct tdev *t = calloc(1, sizeof(*t));
	keel_error *err = NULL;

	if (!t || virtio_dev_init(&t->vdev, &vm->ctx, "virtio-test", 9, &t_ops,
				  1ULL << VIRTIO_F_EVENT_IDX, sizeof(t->config), nr_queues, 256,
				  &err)) {
		fprintf(stderr, "virtio_dev_init: %s\n", err ? keel_error_get_message(err) : "?");
		exit(1);
	}
	for (unsigned int i = 0; i < sizeof(t->config); i++)
		t->config[i] = (uint8_t)(0xa0 + i);
	if (attach(vm, &t->vdev, &err)) {
		fprintf(stderr, "attach: %s\n", keel_error_get_message(err));
		exit(1);
	}
	return t;
}

/* ---- PCI helpers ---- */

static struct fake_vm *vm;
static uint8_t devfn;

static uint32_t cfg_rd(uint32_t off, unsigned int len)
{
	uint32_t v = 0;

	pci_config_access(vm->pci, 0, devfn, off, &v, len, false);
	return v;
}

static void cfg_wr(uint32_t off, uint32_t v, unsigned int len)
{
	pci_config_access(vm->pci, 0, devfn, off, &v, len, true);
}

static uint64_t bar4;

static uint64_t rd(uint64_t off, unsigned int len)
{
	uint64_t v = 0;

	bus_access(vm->ctx.mmio, bar4 + off, &v, len, false);
	return v;
}

static void wr(uint64_t off, uint64_t v, unsigned int len)
{
	bus_access(vm->ctx.mmio, bar4 + off, &v, len, true);
}

/* Finds the vendor capability of `type`; returns its offset or 0. */
static uint8_t find_vcap(uint8_t type)
{
	for (uint8_t p = (uint8_t)cfg_rd(PCI_CAP_PTR, 1); p; p = (uint8_t)cfg_rd(p + 1u, 1))
		if (cfg_rd(p, 1) == PCI_CAP_ID_VNDR && cfg_rd(p + 3u, 1) == type)
			return p;
	return 0;
}

static uint8_t find_cap(uint8_t id)
{
	for (uint8_t p = (uint8_t)cfg_rd(PCI_CAP_PTR, 1); p; p = (uint8_t)cfg_rd(p + 1u, 1))
		if (cfg_rd(p, 1) == id)
			return p;
	return 0;
}

#define CC_DFSELECT 0x00
#define CC_DF       0x04
#define CC_GFSELECT 0x08
#define CC_GF       0x0c
#define CC_MSIX     0x10
#define CC_NUMQ     0x12
#define CC_STATUS   0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE   0x18
#define CC_Q_MSIX   0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF   0x1e
#define CC_Q_DESC   0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

static void set_features(uint64_t f)
{
	wr(CC_GFSELECT, 0, 4);
	wr(CC_GF, (uint32_t)f, 4);
	wr(CC_GFSELECT, 1, 4);
	wr(CC_GF, f >> 32, 4);
}

static void setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(CC_Q_SELECT, q, 2);
	wr(CC_Q_SIZE, size, 2);
	wr(CC_Q_DESC, (uint32_t)desc, 4);
	wr(CC_Q_DESC + 4, desc >> 32, 4);
	wr(CC_Q_DRIVER, avail, 8);
	wr(CC_Q_DEVICE, (uint32_t)used, 4);
	wr(CC_Q_DEVICE + 4, used >> 32, 4);
	wr(CC_Q_ENABLE, 1, 2);
}

static int enable_pci(struct fake_vm *v, uint8_t slot)
{
	vm = v;
	devfn = (uint8_t)(slot << 3);
	cfg_wr(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	bar4 = cfg_rd(PCI_BAR0 + 16, 4) & ~0xfULL;
	return bar4 ? 0 : -1;
}

/* ---- tests ---- */

static int test_pci_header(void)
{
	keel_error *err = NULL;
	struct keel_entropy_device rcfg = { 0 };
	uint8_t c;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	REQUIRE(attach(vm, virtio_rng_create(&vm->ctx, 0, &rcfg, &err), &err) == 0);
	devfn = 1 << 3;                 /* slot 0 is the host bridge */
	REQUIRE(cfg_rd(PCI_VENDOR_ID, 2) == 0x1af4);
	REQUIRE(cfg_rd(PCI_DEVICE_ID, 2) == 0x1044);
	REQUIRE(cfg_rd(PCI_REVISION, 1) == 1);
	REQUIRE(cfg_rd(PCI_REVISION, 4) >> 8 == 0x00ff00);
	REQUIRE(cfg_rd(PCI_SUBSYS_VENDOR, 2) == 0x1af4);
	REQUIRE(cfg_rd(PCI_SUBSYS_ID, 2) >= 0x40);
	REQUIRE(cfg_rd(PCI_HEADER_TYPE, 1) == 0);
	REQUIRE(cfg_rd(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	REQUIRE(cfg_rd(PCI_INTERRUPT_PIN, 1) == 1);

	c = find_vcap(1);               /* common */
	REQUIRE(c && cfg_rd(c + 4u, 1) == 4 && cfg_rd(c + 8u, 4) == 0 && cfg_rd(c + 12u, 4) >= 0x38);
	REQUIRE(cfg_rd(c + 2u, 1) == 16);
	c = find_vcap(2);               /* notify */
	REQUIRE(c && cfg_rd(c + 4u, 1) == 4 && cfg_rd(c + 8u, 4) == 0x3000 &&
	      cfg_rd(c + 12u, 4) >= 2 && cfg_rd(c + 16u, 4) == 4 && cfg_rd(c + 2u, 1) == 20);
	c = find_vcap(3);               /* ISR */
	REQUIRE(c && cfg_rd(c + 4u, 1) == 4 && cfg_rd(c + 8u, 4) == 0x1000 && cfg_rd(c + 12u, 4) >= 1);
	c = find_vcap(4);               /* device (rng: none, still a non-empty window) */
	REQUIRE(c && cfg_rd(c + 4u, 1) == 4 && cfg_rd(c + 8u, 4) == 0x2000 && cfg_rd(c + 12u, 4) > 0);
	c = find_vcap(5);               /* PCI config access */
	REQUIRE(c && cfg_rd(c + 2u, 1) == 20);
	c = find_cap(PCI_CAP_ID_MSIX);
	REQUIRE(c && (cfg_rd(c + 2u, 2) & 0x7ff) == 1);   /* 2 vectors: 1 queue + config */
	REQUIRE((cfg_rd(c + 4u, 4) & 7) == 1);            /* table in BAR 1 */

	/* BAR sizing. */
	{
		uint32_t orig = cfg_rd(PCI_BAR0 + 16, 4);

		REQUIRE(orig && !(orig & 0xf));
		cfg_wr(PCI_BAR0 + 16, 0xffffffff, 4);
		REQUIRE(cfg_rd(PCI_BAR0 + 16, 4) == 0xffffc000);
		cfg_wr(PCI_BAR0 + 16, orig, 4);
		REQUIRE(cfg_rd(PCI_BAR0 + 16, 4) == orig);
		orig = cfg_rd(PCI_BAR0 + 4, 4);
		cfg_wr(PCI_BAR0 + 4, 0xffffffff, 4);
		REQUIRE(cfg_rd(PCI_BAR0 + 4, 4) == 0xfffff000);
		cfg_wr(PCI_BAR0 + 4, orig, 4);
		REQUIRE(cfg_rd(PCI_BAR0 + 0, 4) == 0);    /* unused BARs read 0 */
	}
	fake_vm_free(vm);
	return 0;
}

static int test_pci_decode_and_ioeventfd(void)
{
	struct tdev *t;
	uint64_t v = 0, moved;
	uint32_t bar;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	nr_ioevs = 0;
	t = tdev_new(vm, 3);
	devfn = 1 << 3;
	bar = cfg_rd(PCI_BAR0 + 16, 4);
	/* Decoding is off at power-on: nothing claims the BAR, no ioeventfds. */
	REQUIRE(!bus_access(vm->ctx.mmio, bar, &v, 2, false));
	REQUIRE(ioev_live() == 0);
	REQUIRE(enable_pci(vm, 1) == 0);
	REQUIRE(bar4 == bar);
	REQUIRE(rd(CC_NUMQ, 2) == 3);
	REQUIRE(ioev_live() == 3);
	for (unsigned int q = 0; q < 3; q++) {
		const struct ioev *e = ioev_find(bar4 + 0x3000 + 4 * q);

		REQUIRE(e && e->fd == t->vdev.kick_fd[q] && !(e->flags & KVM_IOEVENTFD_FLAG_PIO));
		wr(CC_Q_SELECT, q, 2);
		REQUIRE(rd(CC_Q_NOFF, 2) == q);
	}
	/* Moving the BAR moves the ioeventfds. */
	moved = bar4 + 0x100000;
	cfg_wr(PCI_BAR0 + 16, (uint32_t)moved, 4);
	REQUIRE(ioev_live() == 3);
	REQUIRE(ioev_find(moved + 0x3000) && !ioev_find(bar4 + 0x3000));
	bar4 = moved;
	REQUIRE(rd(CC_NUMQ, 2) == 3);
	/* Disabling decode drops them. */
	cfg_wr(PCI_COMMAND, 0, 2);
	REQUIRE(ioev_live() == 0);
	cfg_wr(PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	REQUIRE(ioev_live() == 3);
	/* A kick that reaches the BAR handler signals the kick eventfd. */
	wr(0x3000 + 4 * 2, 2, 2);
	REQUIRE(read(t->vdev.kick_fd[2], &v, 8) == 8 && v == 1);
	wr(0x3000 + 4 * 7, 7, 2);       /* no such queue: ignored */
	wr(0x3001, 0, 1);               /* misaligned: ignored */
	destroyed_count = 0;
	fake_vm_free(vm);
	REQUIRE(destroyed_count == 1);
	REQUIRE(ioev_live() == 0);
	return 0;
}

static int test_pci_features(void)
{
	struct tdev *t;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	t = tdev_new(vm, 1);
	REQUIRE(enable_pci(vm, 1) == 0);
	wr(CC_DFSELECT, 0, 4);
	REQUIRE(rd(CC_DFSELECT, 4) == 0);
	REQUIRE(rd(CC_DF, 4) & (1u << VIRTIO_F_EVENT_IDX));
	wr(CC_DFSELECT, 1, 4);
	REQUIRE(rd(CC_DF, 4) == 1);        /* VERSION_1 is bit 32 */
	wr(CC_DFSELECT, 2, 4);
	REQUIRE(rd(CC_DF, 4) == 0);
	REQUIRE(rd(CC_DF, 2) == 0);        /* wrong width: 0 */

	/* Without VERSION_1: FEATURES_OK refused. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features(1ULL << VIRTIO_F_EVENT_IDX);
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	REQUIRE(!(rd(CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK));
	REQUIRE(strstr(last_log, "VERSION_1"));
	wr(CC_STATUS, 0, 1);
	REQUIRE(rd(CC_STATUS, 1) == 0);
	/* A feature not offered: refused. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features((1ULL << VIRTIO_F_VERSION_1) | (1ULL << 5));
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	REQUIRE(!(rd(CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK));
	REQUIRE(strstr(last_log, "not offered"));
	wr(CC_STATUS, 0, 1);
	/* Good features. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX));
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	REQUIRE(rd(CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	REQUIRE(t->vdev.vqs[0].event_idx && !t->vdev.vqs[0].indirect);
	/* Features are frozen now. */
	wr(CC_GFSELECT, 0, 4);
	wr(CC_GF, 0, 4);
	REQUIRE(rd(CC_GF, 4) == 1u << VIRTIO_F_EVENT_IDX);
	/* Clearing status bits without a reset is ignored. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	REQUIRE(rd(CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK is refused (after a reset). */
	wr(CC_STATUS, 0, 1);
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK, 1);
	REQUIRE(!(rd(CC_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK));
	REQUIRE(t->starts == 0);
	fake_vm_free(vm);
	return 0;
}

static int test_pci_queues_and_reset(void)
{
	struct tdev *t;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	t = tdev_new(vm, 2);
	REQUIRE(enable_pci(vm, 1) == 0);
	wr(CC_Q_SELECT, 0, 2);
	REQUIRE(rd(CC_Q_SIZE, 2) == 256);
	wr(CC_Q_SIZE, 100, 2);          /* not a power of two */
	REQUIRE(rd(CC_Q_SIZE, 2) == 256);
	wr(CC_Q_SIZE, 512, 2);          /* above the maximum */
	REQUIRE(rd(CC_Q_SIZE, 2) == 256);
	wr(CC_Q_SIZE, 0, 2);
	REQUIRE(rd(CC_Q_SIZE, 2) == 256);
	wr(CC_Q_SIZE, 64, 2);
	REQUIRE(rd(CC_Q_SIZE, 2) == 64);
	wr(CC_Q_DESC, 0x12340, 4);
	wr(CC_Q_DESC + 4, 0x1, 4);
	REQUIRE(rd(CC_Q_DESC, 4) == 0x12340 && rd(CC_Q_DESC + 4, 4) == 1);
	REQUIRE(rd(CC_Q_DESC, 8) == 0x100012340ULL);
	wr(CC_Q_DRIVER, 0xabcdef00ULL, 8);
	REQUIRE(rd(CC_Q_DRIVER, 4) == 0xabcdef00 && rd(CC_Q_DRIVER + 4, 4) == 0);
	wr(CC_Q_MSIX, 1, 2);
	REQUIRE(rd(CC_Q_MSIX, 2) == 1);
	wr(CC_Q_MSIX, 3, 2);            /* vectors 0-2 exist: 2 queues + config */
	REQUIRE(rd(CC_Q_MSIX, 2) == 2 || rd(CC_Q_MSIX, 2) == 0xffff);
	wr(CC_Q_MSIX, 99, 2);
	REQUIRE(rd(CC_Q_MSIX, 2) == 0xffff);
	wr(CC_MSIX, 0, 2);
	REQUIRE(rd(CC_MSIX, 2) == 0);
	wr(CC_MSIX, 1000, 2);
	REQUIRE(rd(CC_MSIX, 2) == 0xffff);
	wr(CC_Q_SELECT, 2, 2);          /* no such queue */
	REQUIRE(rd(CC_Q_SIZE, 2) == 0 && rd(CC_Q_ENABLE, 2) == 0 && rd(CC_Q_MSIX, 2) == 0xffff);
	wr(CC_Q_SIZE, 16, 2);
	wr(CC_Q_ENABLE, 1, 2);
	REQUIRE(rd(CC_Q_SIZE, 2) == 0);

	/* Bring the device up with queue 0 in guest RAM and queue 1 unused. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features(1ULL << VIRTIO_F_VERSION_1);
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
	REQUIRE(rd(CC_Q_ENABLE, 2) == 1);
	wr(CC_Q_SIZE, 32, 2);           /* enabled: frozen */
	REQUIRE(rd(CC_Q_SIZE, 2) == 64);
	wr(CC_Q_DESC, 0x20000, 4);
	REQUIRE(rd(CC_Q_DESC, 4) == 0x10000);
	wr(CC_STATUS, 0xf, 1);
	REQUIRE(rd(CC_STATUS, 1) == 0xf);
	REQUIRE(t->starts == 1);
	REQUIRE(t->vdev.vqs[0].enabled && !t->vdev.vqs[1].enabled);

	/* Device configuration goes to the device. */
	REQUIRE(rd(0x2000, 1) == 0xa0);
	REQUIRE(rd(0x2004, 4) == 0xa7a6a5a4);
	REQUIRE(rd(0x2006, 4) == 0);      /* past its end */
	wr(0x2003, 0x5a, 1);
	REQUIRE(t->last_write_off == 3 && t->last_write == 0x5a);

	/* Reset clears everything. */
	wr(CC_STATUS, 0, 1);
	REQUIRE(rd(CC_STATUS, 1) == 0);
	REQUIRE(t->stops >= 1);
	REQUIRE(!t->vdev.vqs[0].enabled && !t->vdev.started && t->vdev.driver_features == 0);
	REQUIRE(rd(CC_Q_SELECT, 2) == 0);
	REQUIRE(rd(CC_Q_ENABLE, 2) == 0 && rd(CC_Q_SIZE, 2) == 256 && rd(CC_Q_DESC, 8) == 0);
	REQUIRE(rd(CC_Q_MSIX, 2) == 0xffff && rd(CC_MSIX, 2) == 0xffff);

	/* A queue outside guest RAM: DRIVER_OK ends in NEEDS_RESET, not a crash. */
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features(1ULL << VIRTIO_F_VERSION_1);
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	setup_queue(0, 64, 0x7fff0000000ULL, 0x11000, 0x12000);
	wr(CC_STATUS, 0xf, 1);
	REQUIRE(rd(CC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	REQUIRE(strstr(last_log, "needs reset"));
	REQUIRE(rd(0x1000, 1) == 2);      /* configuration interrupt */
	wr(CC_STATUS, 0, 1);
	REQUIRE(rd(CC_STATUS, 1) == 0);

	/* Odd accesses are harmless. */
	wr(0x3f, 0xff, 1);
	wr(0x1000, 0xff, 4);
	REQUIRE(rd(0x0fff, 1) == 0);
	REQUIRE(rd(0x3ffc, 4) == 0);
	fake_vm_free(vm);
	return 0;
}

static int test_pci_interrupts(void)
{
	struct tdev *t;
	unsigned int gsi;
	uint8_t mcap, wcap;
	int first_irqfd;
	uint64_t v;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	first_irqfd = nr_irqfds;
	t = tdev_new(vm, 1);
	REQUIRE(enable_pci(vm, 1) == 0);
	REQUIRE(nr_irqfds - first_irqfd == 2);
	gsi = cfg_rd(PCI_INTERRUPT_LINE, 1);
	REQUIRE(gsi >= 16 && gsi < 24);

	/* INTx: ISR bit 0, line high until the ISR is read. */
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(irq_level[gsi] == 1);
	REQUIRE(cfg_rd(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	REQUIRE(rd(0x1000, 1) == 1);
	REQUIRE(irq_level[gsi] == 0);
	REQUIRE(rd(0x1000, 1) == 0);
	t->vdev.transport->notify_config(&t->vdev);
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(irq_level[gsi] == 1);
	REQUIRE(rd(0x1000, 1) == 3);
	REQUIRE(irq_level[gsi] == 0);
	/* INTx disabled in the command register: the line stays low. */
	cfg_wr(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE, 2);
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(irq_level[gsi] == 0);
	REQUIRE(rd(0x1000, 1) == 1);
	cfg_wr(PCI_COMMAND, PCI_COMMAND_MEMORY, 2);

	/* The config access window: read num_queues, write queue_select, read ISR. */
	wcap = find_vcap(5);
	cfg_wr(wcap + 4u, 4, 1);
	cfg_wr(wcap + 8u, CC_NUMQ, 4);
	cfg_wr(wcap + 12u, 2, 4);
	REQUIRE(cfg_rd(wcap + 16u, 2) == 1);
	cfg_wr(wcap + 8u, CC_Q_SELECT, 4);
	cfg_wr(wcap + 12u, 2, 4);
	cfg_wr(wcap + 16u, 5, 2);
	REQUIRE(rd(CC_Q_SELECT, 2) == 5);
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(irq_level[gsi] == 1);
	cfg_wr(wcap + 8u, 0x1000, 4);
	cfg_wr(wcap + 12u, 1, 4);
	REQUIRE(cfg_rd(wcap + 16u, 1) == 1);
	REQUIRE(irq_level[gsi] == 0);     /* no deadlock, and the read cleared it */
	cfg_wr(wcap + 8u, 0x3000, 4);   /* a kick through the window */
	cfg_wr(wcap + 12u, 2, 4);
	cfg_wr(wcap + 16u, 0, 2);
	REQUIRE(read(t->vdev.kick_fd[0], &v, 8) == 8);

	/* MSI-X: enable it, unmask vector 1, route the queue to it. */
	mcap = find_cap(PCI_CAP_ID_MSIX);
	cfg_wr(mcap + 2u, 0x8000, 2);
	{
		uint64_t msix_bar = cfg_rd(PCI_BAR0 + 4, 4) & ~0xfULL;
		uint32_t ctrl = 0;

		bus_access(vm->ctx.mmio, msix_bar + 16 + 12, &ctrl, 4, true);       /* unmask 1 */
	}
	wr(CC_Q_SELECT, 0, 2);
	wr(CC_Q_MSIX, 1, 2);
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(irq_level[gsi] == 0);     /* no INTx with MSI-X */
	REQUIRE(read(irqfds[first_irqfd + 1].fd, &v, 8) == 8 && v == 1);
	REQUIRE(read(irqfds[first_irqfd].fd, &v, 8) < 0);  /* vector 0 masked, nothing sent */
	wr(CC_Q_MSIX, 0xffff, 2);
	t->vdev.transport->notify_queue(&t->vdev, 0);
	REQUIRE(read(irqfds[first_irqfd + 1].fd, &v, 8) < 0);
	REQUIRE(rd(0x1000, 1) == 0);

	/* A VM reset resets the device through its vdev. */
	for (struct vdev *d = vm->ctx.devs; d; d = d->next)
		if (d->reset)
			d->reset(d);
	REQUIRE(t->vdev.status == 0);
	fake_vm_free(vm);
	return 0;
}

/* ---- guest-side virtqueue helpers (split ring in fake guest RAM) ---- */

#define DESC  0x10000
#define AVAIL 0x11000
#define USED  0x12000
#define BUF   0x20000

static void *gpa(uint64_t a)
{
	return mem_ptr(&vm->mem, a, 1);
}

static uint16_t avail_idx;

static void guest_add(uint16_t size, uint16_t d, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct virtq_desc *desc = gpa(DESC);
	uint16_t *avail = gpa(AVAIL);

	desc[d] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags };
	avail[2 + avail_idx % size] = d;
	__atomic_store_n(&avail[1], (uint16_t)(avail_idx + 1), __ATOMIC_RELEASE);
	avail_idx++;
}

static int wait_used(uint16_t n)
{
	volatile uint16_t *used = gpa(USED);

	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) >= n)
			return 0;
		usleep(1000);
	}
	return -1;
}

static uint32_t used_len(uint16_t i)
{
	uint32_t *u = gpa(USED + 4 + 8ULL * i);

	return u[1];
}

static void driver_up(uint16_t nq)
{
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_features(1ULL << VIRTIO_F_VERSION_1);
	wr(CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	for (uint16_t q = 0; q < nq; q++)
		setup_queue(q, 16, DESC + q * 0x4000ULL, AVAIL + q * 0x4000ULL, USED + q * 0x4000ULL);
	wr(CC_STATUS, 0xf, 1);
}

static int test_rng(void)
{
	struct keel_entropy_device rcfg = { .rate_limit = 16 };
	keel_error *err = NULL;
	uint8_t *buf;
	int nonzero = 0;

	vm = fake_vm(KEEL_VIRTIO_PCI);
	REQUIRE(attach(vm, virtio_rng_create(&vm->ctx, 0, &rcfg, &err), &err) == 0);
	REQUIRE(enable_pci(vm, 1) == 0);
	avail_idx = 0;
	driver_up(1);
	REQUIRE(rd(CC_STATUS, 1) == 0xf);
	buf = gpa(BUF);
	memset(buf, 0, 256);
	guest_add(16, 0, BUF, 64, VIRTQ_DESC_F_WRITE);
	wr(0x3000, 0, 2);               /* kick */
	REQUIRE(wait_used(1) == 0);
	/* The bucket holds one second's worth: 16 bytes. */
	REQUIRE(used_len(0) == 16);
	for (int i = 0; i < 16; i++)
		nonzero += buf[i] != 0;
	REQUIRE(nonzero > 0);
	REQUIRE(buf[16] == 0 && buf[63] == 0);
	REQUIRE(rd(0x1000, 1) == 1);      /* INTx interrupt for the used buffer */
	/* The next request waits for tokens (about 1/4 s for 4 bytes... at least 1 ms). */
	guest_add(16, 1, BUF + 64, 4, VIRTQ_DESC_F_WRITE);
	wr(0x3000, 0, 2);
	REQUIRE(wait_used(2) == 0);
	REQUIRE(used_len(1) >= 1 && used_len(1) <= 4);
	/* A broken chain (address outside RAM) puts the device in NEEDS_RESET. */
	guest_add(16, 2, 0x7f000000000ULL, 4, VIRTQ_DESC_F_WRITE);
	wr(0x3000, 0, 2);
	for (int i = 0; i < 2000 && !(rd(CC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	REQUIRE(rd(CC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	wr(CC_STATUS, 0, 1);
	REQUIRE(rd(CC_STATUS, 1) == 0);
	fake_vm_free(vm);
	return 0;
}

static int test_console(void)
{
	struct keel_serial_attachment att = { .kind = SERIAL_FDS };
	struct keel_console_device ccfg = { .att = &att };
	keel_error *err = NULL;
	int in[2], out[2];
	char got[16] = { 0 };
	struct pollfd p;

	REQUIRE(pipe(in) == 0 && pipe(out) == 0);
	att.in_fd = in[0];
	att.out_fd = out[1];
	vm = fake_vm(KEEL_VIRTIO_PCI);
	REQUIRE(attach(vm, virtio_console_create(&vm->ctx, 0, &ccfg, &err), &err) == 0);
	REQUIRE(enable_pci(vm, 1) == 0);
	REQUIRE(cfg_rd(PCI_DEVICE_ID, 2) == 0x1043 && cfg_rd(PCI_REVISION, 4) >> 8 == 0x078000);
	avail_idx = 0;
	driver_up(2);
	REQUIRE(rd(CC_STATUS, 1) == 0xf);

	/* Transmit: queue 1 lives at DESC + 0x4000. */
	memcpy(gpa(BUF + 0x100), "hello", 5);
	{
		struct virtq_desc *desc = gpa(DESC + 0x4000);
		uint16_t *avail = gpa(AVAIL + 0x4000);

		desc[0] = (struct virtq_desc){ .addr = BUF + 0x100, .len = 5 };
		avail[2] = 0;
		__atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
	}
	wr(0x3004, 1, 2);
	p = (struct pollfd){ .fd = out[0], .events = POLLIN };
	REQUIRE(poll(&p, 1, 2000) == 1);
	REQUIRE(read(out[0], got, sizeof(got)) == 5 && memcmp(got, "hello", 5) == 0);

	/* Receive: input waits for a buffer, then lands in it. */
	REQUIRE(write(in[1], "abc", 3) == 3);
	usleep(20000);
	guest_add(16, 0, BUF, 64, VIRTQ_DESC_F_WRITE);
	wr(0x3000, 0, 2);
	REQUIRE(wait_used(1) == 0);
	REQUIRE(used_len(0) == 3 && memcmp(gpa(BUF), "abc", 3) == 0);
	/* End of input: the watch goes away, the buffer comes back empty. */
	guest_add(16, 1, BUF + 64, 64, VIRTQ_DESC_F_WRITE);
	wr(0x3000, 0, 2);
	close(in[1]);
	REQUIRE(wait_used(2) == 0);
	REQUIRE(used_len(1) == 0);
	fake_vm_free(vm);
	close(in[0]);
	close(out[0]);
	close(out[1]);
	return 0;
}

/* ---- MMIO ---- */

static uint32_t mrd(uint64_t base, uint64_t off)
{
	uint32_t v = 0;

	bus_access(vm->ctx.mmio, base + off, &v, 4, false);
	return v;
}

static void mwr(uint64_t base, uint64_t off, uint32_t v)
{
	bus_access(vm->ctx.mmio, base + off, &v, 4, true);
}

static int test_mmio(void)
{
	struct tdev *t, *t2;
	uint64_t base = LAYOUT_VIRTIO_MMIO, base2 = LAYOUT_VIRTIO_MMIO + 0x1000, v;
	char cmd[256] = "console=ttyS0";
	char tiny[20] = "console=ttyS0";
	uint8_t b = 0;

	vm = fake_vm(KEEL_VIRTIO_MMIO);
	nr_ioevs = 0;
	t = tdev_new(vm, 2);
	t2 = tdev_new(vm, 1);
	REQUIRE(mrd(base, 0x000) == 0x74726976);
	REQUIRE(mrd(base, 0x004) == 2);
	REQUIRE(mrd(base, 0x008) == 9);
	REQUIRE(mrd(base2, 0x008) == 9);
	REQUIRE(mrd(base, 0x00c) == 0x1af4);
	/* One datamatch ioeventfd per queue on QueueNotify. */
	REQUIRE(ioev_live() == 3);
	for (int i = 0; i < nr_ioevs; i++)
		REQUIRE(ioevs[i].flags & KVM_IOEVENTFD_FLAG_DATAMATCH && ioevs[i].len == 4);
	REQUIRE(ioev_find(base + 0x50) && ioev_find(base2 + 0x50));

	/* The machine builder's command line names the same windows and lines. */
	REQUIRE(machine_cmdline("console=ttyS0", nr_mmio, cmd, sizeof(cmd)) == 0);
	REQUIRE(strcmp(cmd, "console=ttyS0 virtio_mmio.device=0x200@0xd0000000:5"
			  " virtio_mmio.device=0x200@0xd0001000:6") == 0);
	REQUIRE(machine_cmdline("console=ttyS0", nr_mmio, tiny, sizeof(tiny)) == -1);

	mwr(base, 0x014, 1);
	REQUIRE(mrd(base, 0x010) == 1);
	mwr(base, 0x014, 0);
	REQUIRE(mrd(base, 0x010) & (1u << VIRTIO_F_EVENT_IDX));
	mwr(base, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	mwr(base, 0x024, 0);
	mwr(base, 0x020, 0);
	mwr(base, 0x024, 1);
	mwr(base, 0x020, 1);
	mwr(base, 0x070, 0xb);
	REQUIRE(mrd(base, 0x070) == 0xb);
	mwr(base, 0x030, 1);
	REQUIRE(mrd(base, 0x034) == 256);
	mwr(base, 0x038, 3);            /* not a power of two */
	mwr(base, 0x038, 16);
	REQUIRE(t->vdev.vqs[1].cfg.size == 16);
	mwr(base, 0x080, 0x10000);
	mwr(base, 0x084, 0);
	mwr(base, 0x090, 0x11000);
	mwr(base, 0x0a0, 0x12000);
	REQUIRE(mrd(base, 0x080) == 0x10000 && mrd(base, 0x0a0) == 0x12000);
	mwr(base, 0x044, 1);
	REQUIRE(mrd(base, 0x044) == 1);
	mwr(base, 0x030, 5);
	REQUIRE(mrd(base, 0x034) == 0 && mrd(base, 0x044) == 0);
	mwr(base, 0x070, 0xf);
	REQUIRE(mrd(base, 0x070) == 0xf && t->starts == 1);
	REQUIRE(t->vdev.vqs[1].enabled && !t->vdev.vqs[0].enabled);
	/* Config space. */
	bus_access(vm->ctx.mmio, base + 0x101, &b, 1, false);
	REQUIRE(b == 0xa1);
	REQUIRE(mrd(base, 0x104) == 0xa7a6a5a4);
	/* Kicks by hand. */
	mwr(base, 0x050, 1);
	REQUIRE(read(t->vdev.kick_fd[1], &v, 8) == 8);
	mwr(base, 0x050, 9);            /* no such queue */
	/* Interrupts: the line follows InterruptStatus. */
	t->vdev.transport->notify_queue(&t->vdev, 1);
	REQUIRE(irq_level[5] == 1 && mrd(base, 0x060) == 1);
	t->vdev.transport->notify_config(&t->vdev);
	REQUIRE(mrd(base, 0x060) == 3);
	mwr(base, 0x064, 1);
	REQUIRE(irq_level[5] == 1 && mrd(base, 0x060) == 2);
	mwr(base, 0x064, 2);
	REQUIRE(irq_level[5] == 0 && mrd(base, 0x060) == 0);
	t2->vdev.transport->notify_queue(&t2->vdev, 0);
	REQUIRE(irq_level[6] == 1);
	/* Reset. */
	t->vdev.transport->notify_queue(&t->vdev, 1);
	mwr(base, 0x070, 0);
	REQUIRE(mrd(base, 0x070) == 0 && irq_level[5] == 0 && !t->vdev.vqs[1].enabled);
	REQUIRE(t->vdev.vqs[1].cfg.size == 256);
	/* Odd widths are ignored. */
	bus_access(vm->ctx.mmio, base + 0x70, &b, 1, true);
	REQUIRE(mrd(base, 0x070) == 0);
	fake_vm_free(vm);
	REQUIRE(ioev_live() == 0);
	return 0;
}

int main(void)
{
	fake_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fake_fd < 0)
		return 1;
	RUN(test_pci_header);
	RUN(test_pci_decode_and_ioeventfd);
	RUN(test_pci_features);
	RUN(test_pci_queues_and_reset);
	RUN(test_pci_interrupts);
	RUN(test_rng);
	RUN(test_console);
	RUN(test_mmio);
	return 0;
}
