/* SPDX-License-Identifier: MIT */
/* The PC's legacy devices.  Each registers itself on the VM's port bus. */
#ifndef KEEL_DEV_LEGACY_H
#define KEEL_DEV_LEGACY_H

#include "core/vm.h"

/* 16550A UART number `index` (0 = COM1 .. 3 = COM4). Takes no ownership. */
int uart_create(struct keel_vm *vm, int index, const struct keel_serial_attachment *att,
		keel_error **err);
/* i8042 keyboard controller: its reset line resets the VM. */
int i8042_create(struct keel_vm *vm, keel_error **err);
/* MC146818 CMOS RTC with the host's time, IRQ 8, and memory size in NVRAM. */
int rtc_create(struct keel_vm *vm, keel_error **err);
/* Port 0x80 (POST codes / I/O delay) and other ports Linux pokes. */
int port80_create(struct keel_vm *vm, keel_error **err);

#endif
