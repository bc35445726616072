// SPDX-License-Identifier: MIT
/* i8042 controller, keyboard replies and reset line, without KVM. */
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "dev/i8042.h"
#include "check.h"
#include "fakevm.h"

#define DATA 0x60
#define CMD 0x64
#define STATUS 0x64

#define STR_OBF 0x01
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_AUX 0x20
#define STR_TIMEOUT 0x40

static struct fake_vm *fake_vm(void)
{
	return fake_vm_new(&(struct fake_vm_opts){ .flags = FAKE_VM_PIO | FAKE_VM_LOOP,
						   .create = i8042_create });
}

static struct fake_vm *vm;

#define inb(port) fake_vm_inb(vm, port)
#define outb(port, v) fake_vm_outb(vm, port, v)

/* Next byte of the output buffer, or -1 when it is empty. */
static int next_byte(uint8_t *status)
{
	uint8_t st = inb(STATUS);

	if (status)
		*status = st;
	if (!(st & STR_OBF))
		return -1;
	return inb(DATA);
}

static int test_controller(void)
{
	uint8_t st;

	vm = fake_vm();
	st = inb(STATUS);
	REQUIRE(!(st & STR_OBF));
	REQUIRE(st & STR_SYS);
	REQUIRE(!(st & 0x02));    /* IBF never set */

	outb(CMD, 0xaa);
	REQUIRE(inb(STATUS) & STR_CMD);
	REQUIRE(next_byte(&st) == 0x55);
	REQUIRE(!(st & STR_AUX));
	REQUIRE(next_byte(NULL) == -1);

	outb(CMD, 0x20);
	REQUIRE(next_byte(NULL) == 0x05);
	outb(CMD, 0x60);
	outb(DATA, 0x70);
	REQUIRE(!(inb(STATUS) & STR_CMD));
	REQUIRE(next_byte(NULL) == -1);   /* the CTR byte went to the controller */
	outb(CMD, 0x20);
	REQUIRE(next_byte(NULL) == 0x70);
	REQUIRE(!(inb(STATUS) & STR_SYS));
	outb(CMD, 0xa8);
	outb(CMD, 0xae);
	outb(CMD, 0x20);
	REQUIRE(next_byte(NULL) == 0x40);
	outb(CMD, 0xa7);
	outb(CMD, 0xad);
	outb(CMD, 0x20);
	REQUIRE(next_byte(NULL) == 0x70);

	outb(CMD, 0xa9);
	REQUIRE(next_byte(NULL) == 0x00);
	outb(CMD, 0xab);
	REQUIRE(next_byte(NULL) == 0x00);
	outb(CMD, 0xd0);
	REQUIRE(next_byte(NULL) == 0x03);

	/* Write to the keyboard output buffer. */
	outb(CMD, 0xd2);
	outb(DATA, 0x1c);
	REQUIRE(next_byte(&st) == 0x1c);
	REQUIRE(!(st & STR_AUX));

	/* Aux loopback (Linux's i8042_check_aux / mux probe). */
	outb(CMD, 0xd3);
	outb(DATA, 0x5a);
	REQUIRE(next_byte(&st) == 0x5a);
	REQUIRE(st & STR_AUX);
	outb(CMD, 0xd3);
	outb(DATA, 0xa4);
	REQUIRE(next_byte(NULL) == 0xa4);         /* echoed: not an active mux */

	/* No mouse: a byte sent to it times out with 0xfe. */
	outb(CMD, 0xd4);
	outb(DATA, 0xf2);
	REQUIRE(next_byte(&st) == 0xfe);
	REQUIRE((st & (STR_AUX | STR_TIMEOUT)) == (STR_AUX | STR_TIMEOUT));
	REQUIRE(!(inb(STATUS) & (STR_AUX | STR_TIMEOUT)));

	/* Pulsing lines other than reset does nothing. */
	outb(CMD, 0xff);
	outb(CMD, 0xfd);
	REQUIRE(vm->reason == KEEL_STOP_NONE);

	/* Reset puts the power-on state back. */
	outb(CMD, 0xaa);
	vm->ctx.devs->reset(vm->ctx.devs);
	REQUIRE(next_byte(NULL) == -1);
	outb(CMD, 0x20);
	REQUIRE(next_byte(NULL) == 0x05);
	fake_vm_free(vm);
	return 0;
}

static int test_keyboard(void)
{
	vm = fake_vm();
	outb(DATA, 0xff);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xaa);
	REQUIRE(next_byte(NULL) == -1);

	outb(DATA, 0xf2);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xab);
	REQUIRE(next_byte(NULL) == 0x83);

	outb(DATA, 0xed);
	REQUIRE(next_byte(NULL) == 0xfa);
	outb(DATA, 0x07);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == -1);

	outb(DATA, 0xf5);
	REQUIRE(next_byte(NULL) == 0xfa);
	outb(DATA, 0xf4);
	REQUIRE(next_byte(NULL) == 0xfa);

	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0x02);
	outb(DATA, 0xf0);
	outb(DATA, 0x03);
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0x03);

	outb(DATA, 0xee);
	REQUIRE(next_byte(NULL) == 0xee);

	/* A command instead of an argument is a new command. */
	outb(DATA, 0xed);
	outb(DATA, 0xf2);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xab);
	REQUIRE(next_byte(NULL) == 0x83);

	/* With translation on, the id is translated. */
	outb(CMD, 0x60);
	outb(DATA, 0x45);
	outb(DATA, 0xf2);
	REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == 0xab);
	REQUIRE(next_byte(NULL) == 0x41);

	/* The output buffer holds at most 16 bytes. */
	for (int i = 0; i < 20; i++)
		outb(DATA, 0xf4);
	for (int i = 0; i < 16; i++)
		REQUIRE(next_byte(NULL) == 0xfa);
	REQUIRE(next_byte(NULL) == -1);
	fake_vm_free(vm);
	return 0;
}

static int test_reset_line(void)
{
	vm = fake_vm();
	outb(CMD, 0xfe);
	REQUIRE(vm->reason == KEEL_STOP_RESET);
	REQUIRE(vm->stop_requested);
	fake_vm_free(vm);

	vm = fake_vm();
	outb(CMD, 0xf0);
	REQUIRE(vm->reason == KEEL_STOP_RESET);
	fake_vm_free(vm);

	vm = fake_vm();
	outb(CMD, 0xd1);
	outb(DATA, 0x03);
	REQUIRE(vm->reason == KEEL_STOP_NONE);
	outb(CMD, 0xd0);
	REQUIRE(next_byte(NULL) == 0x03);
	outb(CMD, 0xd1);
	outb(DATA, 0x02);
	REQUIRE(vm->reason == KEEL_STOP_RESET);
	fake_vm_free(vm);
	return 0;
}

int main(void)
{
	RUN(test_controller);
	RUN(test_keyboard);
	RUN(test_reset_line);
	return 0;
}
