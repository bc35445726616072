/* SPDX-License-Identifier: MIT */
/* Guest-physical memory layout of keel's x86-64 machine. */
#ifndef KEEL_X86_LAYOUT_H
#define KEEL_X86_LAYOUT_H

/* Below 1 MiB (real-mode IVT and BIOS data area stay untouched at 0-0x4ff). */
#define LAYOUT_GDT              0x500ULL
#define LAYOUT_PVH_INFO         0x6000ULL   /* hvm_start_info, modlist, memmap */
#define LAYOUT_PVH_INFO_SIZE    0x1000ULL
#define LAYOUT_ZERO_PAGE        0x7000ULL   /* Linux boot_params */
#define LAYOUT_BOOT_STACK       0x8ff0ULL   /* initial RSP: top of 0x8000-0x8fff */
#define LAYOUT_PML4             0x9000ULL
#define LAYOUT_PDPT             0xa000ULL
#define LAYOUT_PD               0xb000ULL   /* 4 pages: identity map of 4 GiB */
#define LAYOUT_CMDLINE          0x20000ULL
#define LAYOUT_CMDLINE_MAX      0x10000ULL  /* bytes, NUL included */
#define LAYOUT_EBDA             0x9fc00ULL  /* MP table lives here */
#define LAYOUT_BASE_MEM_END     0xa0000ULL
#define LAYOUT_ACPI             0xe0000ULL  /* ACPI tables, RSDP first (64 KiB) */
#define LAYOUT_ACPI_SIZE        0x10000ULL
#define LAYOUT_BIOS_START       0xf0000ULL
#define LAYOUT_HIGH_RAM         0x100000ULL /* kernels load from here */

/* 32-bit MMIO hole: RAM above this goes to 4 GiB and up. */
#define LAYOUT_MMIO_HOLE        0xc0000000ULL
#define LAYOUT_4G               0x100000000ULL
/* PCI: BARs are assigned by keel from these windows. */
#define LAYOUT_PCI_MMIO32       0xc0000000ULL
#define LAYOUT_PCI_MMIO32_SIZE  0x10000000ULL
#define LAYOUT_VIRTIO_MMIO      0xd0000000ULL   /* virtio-mmio devices, 4 KiB apart */
#define LAYOUT_PCI_ECAM         0xe0000000ULL   /* bus 0 only: 1 MiB */
#define LAYOUT_PCI_ECAM_SIZE    0x100000ULL
#define LAYOUT_PCI_IO           0xc000ULL
#define LAYOUT_PCI_IO_SIZE      0x4000ULL
#define LAYOUT_IOAPIC           0xfec00000ULL
#define LAYOUT_LAPIC            0xfee00000ULL
/* Needed by KVM on Intel (real-mode emulation); kept out of RAM. */
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS          0xfeffd000ULL

#endif
