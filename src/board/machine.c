// SPDX-License-Identifier: MIT
/*
 * The machine builder (machine.h).  Order matters and is kept here only:
 * memory, buses and MSI routing, the PCI host bridge, the legacy devices at
 * their fixed ports, then the virtio devices on the configured transport;
 * at load time the boot tables, the kernel command line (with what the
 * devices need the guest to be told) and the boot images.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "board/firmware.h"
#include "board/machine.h"
#include "boot/boot.h"
#include "bus/bus.h"
#include "core/util.h"
#include "dev/i8042.h"
#include "dev/piix.h"
#include "dev/port80.h"
#include "dev/rtc.h"
#include "dev/uart.h"
#include "kvm/irq.h"
#include "kvm/kvm.h"
#include "kvm/mem.h"
#include "pci/pci.h"
#include "virtio/devices.h"
#include "virtio/net.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"
#include "x86/layout.h"
#include "x86/vcpu.h"
#include "x86/x86.h"

/* The PIIX4 PM function: its I/O block where OVMF puts it, the SCI on IRQ 9. */
#define PM_BASE         0xb000
#define SCI_IRQ         9
#define S5_SLP_TYP      0       /* QEMU's PIIX4 DSDT: soft-off is SLP_TYP 0 */

/* virtio-mmio: one window and one free ISA line each (not the UARTs', i8042's, RTC's or SCI's). */
static const uint8_t mmio_irqs[] = { 5, 6, 7, 10, 11, 14, 15 };
#define MMIO_MAX_DEVICES ((int)ARRAY_SIZE(mmio_irqs))
_Static_assert(ARRAY_SIZE(mmio_irqs) == CFG_MAX_VIRTIO_MMIO, "validation counts these lines");

struct machine {
	const struct vm_config *cfg;
	struct kvm *kvm;
	struct mem mem;
	struct irq_routing irq;
	struct devctx ctx;
	struct pci_host *pci;
	struct piix *chipset;                   /* host bridge, ISA bridge, ACPI PM */
	int nr_mmio;                            /* virtio-mmio windows handed out */
	struct virtio_net *nics[CFG_MAX_NICS];  /* by index, for the runtime API */
	int nr_nics;
	struct x86_platform_state *power_on;    /* irqchip and PIT, restored on reset */
	struct boot_files boot;                 /* read again at every reboot */
	struct firmware *firmware;              /* UEFI boots: flash and fw_cfg */
};

static bool is_efi(const struct machine *m)
{
	return m->cfg->boot->kind == BOOT_EFI;
}

static int create_firmware(struct machine *m, keel_error **err);

static int create_memory(struct machine *m, keel_error **err)
{
	if (mem_init(&m->mem, m->cfg->mem_size, m->cfg->hugepages, err) < 0)
		return -1;
	for (int i = 0; i < m->mem.nr_regions; i++) {
		struct mem_region *r = &m->mem.region[i];

		if (kvm_set_memory(m->kvm, (uint32_t)i, r->gpa, r->size, r->host, false, err) < 0)
			return -1;
	}
	return 0;
}

/* Hands `vdev` to the VM's transport; on failure the device is released. */
static int attach_virtio(struct machine *m, struct virtio_dev *vdev, keel_error **err)
{
	int ret;

	if (!vdev)
		return -1;
	if (m->cfg->transport == KEEL_VIRTIO_MMIO) {
		if (m->nr_mmio >= MMIO_MAX_DEVICES) {
			err_set(err, KEEL_ERR_TOO_LARGE,
				"%s: no interrupt line left for another virtio-mmio device (%d at most)",
				vdev->name, MMIO_MAX_DEVICES);
			ret = -1;
		} else {
			ret = virtio_mmio_attach(vdev, LAYOUT_VIRTIO_MMIO +
						 (uint64_t)m->nr_mmio * VIRTIO_MMIO_STRIDE,
						 mmio_irqs[m->nr_mmio], err);
			if (ret == 0)
				m->nr_mmio++;
		}
	} else {
		ret = virtio_pci_attach(m->pci, vdev, err);
	}
	if (ret < 0)
		vdev->ops->destroy(vdev);
	return ret;
}

static int create_nic(struct machine *m, int index, keel_error **err)
{
	const struct keel_network_device *cfg = m->cfg->nics.items[index];
	struct virtio_net *n;
	uint8_t mac[6];

	if (cfg->has_mac)
		memcpy(mac, cfg->mac, 6);
	else
		machine_default_mac(m->cfg, index, mac);
	n = virtio_net_new(&m->ctx, index, cfg, mac, true, err);
	if (!n || attach_virtio(m, virtio_net_vdev(n), err) < 0)
		return -1;
	m->nics[index] = n;
	m->nr_nics = index + 1;
	return 0;
}

static int create_devices(struct machine *m, keel_error **err)
{
	const struct vm_config *c = m->cfg;
	/* Firmware assigns BARs itself, where an ECAM window would be in the way. */
	const struct pci_windows win = {
		.io_base = LAYOUT_PCI_IO, .io_size = LAYOUT_PCI_IO_SIZE,
		.mem_base = LAYOUT_PCI_MMIO32, .mem_size = LAYOUT_PCI_MMIO32_SIZE,
		.ecam_base = is_efi(m) ? 0 : LAYOUT_PCI_ECAM,
		.ecam_size = is_efi(m) ? 0 : LAYOUT_PCI_ECAM_SIZE,
	};

	const struct piix_config chipset = {
		.pm_base = PM_BASE, .sci_irq = SCI_IRQ, .s5_slp_typ = S5_SLP_TYP,
	};

	if (!(m->pci = pci_host_create(&m->ctx, &win, err)))
		return -1;
	if (!(m->chipset = piix_create(&m->ctx, m->pci, &chipset, err)))
		return -1;
	for (int i = 0; i < c->nr_serial; i++)
		if (uart_create(&m->ctx, i, c->serial[i], err) < 0)
			return -1;
	if (i8042_create(&m->ctx, err) < 0 || rtc_create(&m->ctx, err) < 0 ||
	    port80_create(&m->ctx, err) < 0)
		return -1;
	for (int i = 0; i < c->disks.nr; i++)
		if (attach_virtio(m, virtio_blk_create(&m->ctx, i, c->disks.items[i], err), err) < 0)
			return -1;
	for (int i = 0; i < c->rngs.nr; i++)
		if (attach_virtio(m, virtio_rng_create(&m->ctx, i, c->rngs.items[i], err), err) < 0)
			return -1;
	for (int i = 0; i < c->consoles.nr; i++)
		if (attach_virtio(m, virtio_console_create(&m->ctx, i, c->consoles.items[i], err),
				  err) < 0)
			return -1;
	for (int i = 0; i < c->nics.nr; i++)
		if (create_nic(m, i, err) < 0)
			return -1;
	return 0;
}

struct machine *machine_new(const struct vm_config *cfg, struct kvm *kvm, struct loop *loop,
			    const struct devctx_ops *ops, void *owner, keel_error **err)
{
	struct machine *m = calloc(1, sizeof(*m));

	if (!m)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating the machine"), NULL;
	m->cfg = cfg;
	m->kvm = kvm;
	m->mem.fd = -1;
	m->boot.kernel_fd = m->boot.initrd_fd = -1;
	m->ctx = (struct devctx){
		.log = { .cb = cfg->log_cb, .level = cfg->log_level, .opaque = cfg->log_opaque },
		.mem = &m->mem, .loop = loop, .kvm = kvm, .irq = &m->irq, .nr_cpus = cfg->cpus,
		.sandbox = cfg->sandbox, .ops = ops, .owner = owner,
	};
	if (cfg->boot->kind == BOOT_LINUX &&
	    boot_files_open(&m->boot, cfg->boot->kernel, cfg->boot->initrd, err) < 0)
		goto fail;
	if (create_memory(m, err) < 0)
		goto fail;
	if (!(m->ctx.pio = bus_new("port I/O", err)) || !(m->ctx.mmio = bus_new("MMIO", err)))
		goto fail;
	if (irq_routing_init(&m->irq, kvm, err) < 0)
		goto fail;
	if (create_devices(m, err) < 0)
		goto fail;
	if (is_efi(m) && create_firmware(m, err) < 0)
		goto fail;
	if (!(m->power_on = x86_platform_save(kvm, err)))
		goto fail;
	return m;
fail:
	machine_free(m);
	return NULL;
}

void machine_free(struct machine *m)
{
	if (!m)
		return;
	devctx_destroy_devices(&m->ctx);
	firmware_free(m->firmware);
	x86_platform_state_free(m->power_on);
	irq_routing_fini(&m->irq);
	bus_free(m->ctx.pio);
	bus_free(m->ctx.mmio);
	mem_fini(&m->mem);
	boot_files_close(&m->boot);
	free(m);
}

struct devctx *machine_devctx(struct machine *m)
{
	return &m->ctx;
}

int machine_power_button(struct machine *m, keel_error **err)
{
	return piix_power_button(m->chipset, err);
}

struct virtio_net *machine_nic(struct machine *m, unsigned int index, keel_error **err)
{
	if (index >= (unsigned int)m->nr_nics || !m->nics[index])
		return err_set(err, KEEL_ERR_INVALID, "no network device %u (the VM has %d)", index,
			       m->nr_nics), NULL;
	return m->nics[index];
}

/*
 * FNV-1a 64 of what identifies the machine (its identifier, else the path
 * of what it boots: the kernel, or the firmware's variable store) and of
 * `salt`: stable across boots, different per purpose.
 */
static uint64_t identity_hash(const struct vm_config *cfg, uint32_t salt)
{
	const struct keel_boot_loader *bl = cfg->boot;
	uint64_t h = 0xcbf29ce484222325ULL;
	uint32_t le = htole32(salt);
	const uint8_t *p;
	size_t len;

	if (cfg->has_machine_id) {
		p = cfg->machine_id;
		len = sizeof(cfg->machine_id);
	} else {
		const char *k = !bl ? "" : bl->kernel ? bl->kernel : bl->vars ? bl->vars :
				bl->firmware ? bl->firmware : "";

		p = (const uint8_t *)k;
		len = strlen(k);
	}
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	for (size_t i = 0; i < sizeof(le); i++) {
		h ^= ((const uint8_t *)&le)[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void machine_default_mac(const struct vm_config *cfg, int index, uint8_t mac[6])
{
	uint64_t h = identity_hash(cfg, (uint32_t)index);

	mac[0] = 0x02;                          /* locally administered, unicast */
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

/* The SMBIOS system UUID: the machine identifier, or a version 4 UUID derived as above. */
static void machine_uuid(const struct vm_config *cfg, uint8_t uuid[16])
{
	if (cfg->has_machine_id) {
		memcpy(uuid, cfg->machine_id, 16);
		return;
	}
	for (int half = 0; half < 2; half++) {
		uint64_t h = identity_hash(cfg, 0x55554944u + (uint32_t)half);

		for (int i = 0; i < 8; i++)
			uuid[half * 8 + i] = (uint8_t)(h >> (8 * i));
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

int machine_cmdline(const char *cmdline, int nr_mmio, char *buf, size_t len)
{
	size_t pos = (size_t)snprintf(buf, len, "%s", cmdline);

	for (int n = 0; n < nr_mmio && n < MMIO_MAX_DEVICES && pos < len; n++)
		pos += (size_t)snprintf(buf + pos, len - pos, " virtio_mmio.device=0x%x@0x%llx:%u",
					VIRTIO_MMIO_SIZE,
					(unsigned long long)(LAYOUT_VIRTIO_MMIO +
							     (uint64_t)n * VIRTIO_MMIO_STRIDE),
					mmio_irqs[n]);
	return pos < len ? 0 : -1;
}

/* The MP table: CPUs, the IOAPIC, ISA IRQs and every PCI slot's INTA#. */
static int write_mptable(struct machine *m, keel_error **err)
{
	struct pci_intx_route routes[PCI_MAX_SLOTS];
	struct mp_pci_irq irqs[PCI_MAX_SLOTS];
	int n = pci_intx_routes(m->pci, routes, PCI_MAX_SLOTS);

	for (int i = 0; i < n; i++)
		irqs[i] = (struct mp_pci_irq){ .slot = routes[i].slot, .gsi = routes[i].gsi };
	return mptable_write(&m->mem, m->cfg->cpus, irqs, n, err);
}

/*
 * The board as ACPI describes it: the same facts the devices were built
 * with (layout, chipset, INTx wiring, legacy devices, virtio-mmio windows).
 */
static int build_acpi(void *opaque, struct acpi_tables *t, keel_error **err)
{
	struct machine *m = opaque;
	struct pci_intx_route intx[PCI_MAX_SLOTS];
	struct acpi_pci_route routes[PCI_MAX_SLOTS];
	struct acpi_mmio_dev mmio[MMIO_MAX_DEVICES];
	int nr_routes = pci_intx_routes(m->pci, intx, PCI_MAX_SLOTS);
	uint64_t low_end = m->mem.region[0].gpa + m->mem.region[0].size;
	struct acpi_board board = {
		.nr_cpus = m->cfg->cpus,
		.lapic_addr = LAYOUT_LAPIC, .ioapic_addr = LAYOUT_IOAPIC,
		.ioapic_id = (uint8_t)m->cfg->cpus,     /* as the MP table says */
		.ecam_base = LAYOUT_PCI_ECAM, .ecam_size = LAYOUT_PCI_ECAM_SIZE,
		.pci_io_base = LAYOUT_PCI_IO, .pci_io_size = LAYOUT_PCI_IO_SIZE,
		.pci_mem32_base = LAYOUT_PCI_MMIO32, .pci_mem32_size = LAYOUT_PCI_MMIO32_SIZE,
		.routes = routes, .nr_routes = nr_routes,
		.pm_base = PM_BASE, .sci_irq = SCI_IRQ, .s5_slp_typ = S5_SLP_TYP,
		.com_mask = (1u << m->cfg->nr_serial) - 1,
		.rtc = true, .i8042 = true,
		.mmio = mmio, .nr_mmio = m->nr_mmio,
	};

	/*
	 * Firmware assigns BARs itself, anywhere from the top of low RAM up to
	 * the IOAPIC (as OVMF does on QEMU's pc machine, whose _CRS this is);
	 * keel's devices have 32-bit BARs only, so there is no 64-bit window.
	 */
	if (is_efi(m)) {
		board.ecam_base = board.ecam_size = 0;
		board.pci_mem32_base = low_end;
		board.pci_mem32_size = LAYOUT_IOAPIC - low_end;
	}
	for (int i = 0; i < nr_routes; i++)
		routes[i] = (struct acpi_pci_route){ .slot = intx[i].slot, .pin = intx[i].pin,
						     .gsi = intx[i].gsi };
	for (int n = 0; n < m->nr_mmio; n++)
		mmio[n] = (struct acpi_mmio_dev){
			.base = LAYOUT_VIRTIO_MMIO + (uint64_t)n * VIRTIO_MMIO_STRIDE,
			.size = VIRTIO_MMIO_SIZE, .gsi = mmio_irqs[n],
		};
	return acpi_build(&board, t, err);
}

/* The ACPI tables in guest memory for a direct kernel boot; returns the RSDP's address. */
static uint64_t place_acpi(struct machine *m, keel_error **err)
{
	const uint64_t rsdp = LAYOUT_ACPI, tables = LAYOUT_ACPI + 64;
	struct acpi_placement at[ACPI_NR_FILES] = {
		[ACPI_FILE_RSDP] = { .gpa = rsdp, .room = tables - rsdp },
		[ACPI_FILE_TABLES] = { .gpa = tables, .room = LAYOUT_ACPI + LAYOUT_ACPI_SIZE - tables },
	};
	struct acpi_tables t;
	int ret;

	for (int f = 0; f < ACPI_NR_FILES; f++)
		at[f].host = mem_ptr(&m->mem, at[f].gpa, at[f].room);
	if (!at[ACPI_FILE_RSDP].host || !at[ACPI_FILE_TABLES].host)
		return err_set(err, KEEL_ERR_INVALID, "guest RAM does not hold the ACPI area"), 0;
	if (build_acpi(m, &t, err) < 0)
		return 0;
	ret = acpi_place(&t, at, err);
	acpi_tables_free(&t);
	return ret < 0 ? 0 : rsdp;
}

static int create_firmware(struct machine *m, keel_error **err)
{
	struct firmware_config fc = {
		.bl = m->cfg->boot, .nr_cpus = m->cfg->cpus, .mem_size = m->cfg->mem_size,
		.version = KEEL_VERSION, .build_acpi = build_acpi, .opaque = m,
	};

	machine_uuid(m->cfg, fc.uuid);
	m->firmware = firmware_new(&m->ctx, &fc, err);
	return m->firmware ? 0 : -1;
}

/* The vCPUs as after RESET: the boot vCPU at the reset vector, the others waiting for a SIPI. */
static int load_firmware(struct machine *m, struct vcpu *vcpus, keel_error **err)
{
	firmware_reset(m->firmware);
	if (x86_vcpu_set_reset(vcpus[0].fd, err) < 0)
		return -1;
	for (unsigned int i = 1; i < m->cfg->cpus; i++)
		if (x86_vcpu_set_waiting(vcpus[i].fd, i, err) < 0)
			return -1;
	return 0;
}

int machine_load(struct machine *m, struct vcpu *vcpus, bool reload, keel_error **err)
{
	const struct keel_boot_loader *bl = m->cfg->boot;
	struct boot_entry entry;
	uint64_t rsdp;
	char *cmdline;
	int ret;

	if (reload) {
		mem_clear(&m->mem);
		if (x86_platform_restore(m->kvm, m->power_on, err) < 0)
			return -1;
		devctx_reset_devices(&m->ctx);
		for (unsigned int i = 0; i < m->cfg->cpus; i++)
			if (x86_vcpu_setup(m->kvm, vcpus[i].fd, i, m->cfg->cpus, err) < 0)
				return -1;
	}
	if (is_efi(m))
		return load_firmware(m, vcpus, err);
	x86_write_boot_tables(&m->mem);
	if (write_mptable(m, err) < 0 || !(rsdp = place_acpi(m, err)))
		return -1;
	cmdline = malloc(LAYOUT_CMDLINE_MAX);
	if (!cmdline)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory building the command line");
	ret = machine_cmdline(bl->cmdline, m->nr_mmio, cmdline, LAYOUT_CMDLINE_MAX);
	if (ret < 0)
		err_set(err, KEEL_ERR_TOO_LARGE,
			"kernel command line with the virtio-mmio devices exceeds %llu bytes",
			LAYOUT_CMDLINE_MAX - 1);
	else
		ret = boot_files_load(&m->mem, &m->boot, cmdline, rsdp, &entry, err);
	free(cmdline);
	if (ret < 0)
		return -1;
	if (x86_vcpu_set_entry(vcpus[0].fd, &entry, err) < 0)
		return -1;
	for (unsigned int i = 1; i < m->cfg->cpus; i++)
		if (x86_vcpu_set_waiting(vcpus[i].fd, i, err) < 0)
			return -1;
	return 0;
}
