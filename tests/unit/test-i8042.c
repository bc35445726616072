// SPDX-License-Identifier: MIT
/* i8042 controller, keyboard replies and reset line, without KVM. */
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "core/vm.h"
#include "dev/legacy.h"

#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
				__LINE__, #cond);                               \
			return 1;                                               \
		}                                                               \
	} while (0)

#define RUN(test)                                                               \
	do {                                                                    \
		if (test()) {                                                   \
			fprintf(stderr, "FAIL %s\n", #test);                    \
			return 1;                                               \
		}                                                               \
		printf("ok %s\n", #test);                                       \
	} while (0)

#define DATA 0x60
#define CMD 0x64
#define STATUS 0x64

#define STR_OBF 0x01
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_AUX 0x20
#define STR_TIMEOUT 0x40

static struct keel_vm *fake_vm(void)
{
	struct keel_vm *vm = calloc(1, sizeof(*vm));
	keel_error *err = NULL;

	if (!vm)
		exit(1);
	vm->kvm.sys_fd = -1;
	vm->kvm.vm_fd = -1;
	vm->control_fd = -1;
	vm->state_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vm->pio = bus_new("pio", NULL);
	vm->loop = loop_new(NULL);
	if (!vm->pio || !vm->loop || loop_start(vm->loop, NULL) || i8042_create(vm, &err)) {
		fprintf(stderr, "cannot build the fake VM: %s\n", keel_error_get_message(err));
		exit(1);
	}
	return vm;
}

static void fake_vm_free(struct keel_vm *vm)
{
	while (vm->devs) {
		struct vdev *d = vm->devs;

		vm->devs = d->next;
		d->destroy(d);
	}
	loop_free(vm->loop);
	bus_free(vm->pio);
	keel_error_free(vm->stop_err);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static struct keel_vm *vm;

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	bus_access(vm->pio, port, &v, 1, false);
	return v;
}

static void outb(uint16_t port, uint8_t v)
{
	bus_access(vm->pio, port, &v, 1, true);
}

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
	CHECK(!(st & STR_OBF));
	CHECK(st & STR_SYS);
	CHECK(!(st & 0x02));    /* IBF never set */

	outb(CMD, 0xaa);
	CHECK(inb(STATUS) & STR_CMD);
	CHECK(next_byte(&st) == 0x55);
	CHECK(!(st & STR_AUX));
	CHECK(next_byte(NULL) == -1);

	outb(CMD, 0x20);
	CHECK(next_byte(NULL) == 0x05);
	outb(CMD, 0x60);
	outb(DATA, 0x70);
	CHECK(!(inb(STATUS) & STR_CMD));
	CHECK(next_byte(NULL) == -1);   /* the CTR byte went to the controller */
	outb(CMD, 0x20);
	CHECK(next_byte(NULL) == 0x70);
	CHECK(!(inb(STATUS) & STR_SYS));
	outb(CMD, 0xa8);
	outb(CMD, 0xae);
	outb(CMD, 0x20);
	CHECK(next_byte(NULL) == 0x40);
	outb(CMD, 0xa7);
	outb(CMD, 0xad);
	outb(CMD, 0x20);
	CHECK(next_byte(NULL) == 0x70);

	outb(CMD, 0xa9);
	CHECK(next_byte(NULL) == 0x00);
	outb(CMD, 0xab);
	CHECK(next_byte(NULL) == 0x00);
	outb(CMD, 0xd0);
	CHECK(next_byte(NULL) == 0x03);

	/* Write to the keyboard output buffer. */
	outb(CMD, 0xd2);
	outb(DATA, 0x1c);
	CHECK(next_byte(&st) == 0x1c);
	CHECK(!(st & STR_AUX));

	/* Aux loopback (Linux's i8042_check_aux / mux probe). */
	outb(CMD, 0xd3);
	outb(DATA, 0x5a);
	CHECK(next_byte(&st) == 0x5a);
	CHECK(st & STR_AUX);
	outb(CMD, 0xd3);
	outb(DATA, 0xa4);
	CHECK(next_byte(NULL) == 0xa4);         /* echoed: not an active mux */

	/* No mouse: a byte sent to it times out with 0xfe. */
	outb(CMD, 0xd4);
	outb(DATA, 0xf2);
	CHECK(next_byte(&st) == 0xfe);
	CHECK((st & (STR_AUX | STR_TIMEOUT)) == (STR_AUX | STR_TIMEOUT));
	CHECK(!(inb(STATUS) & (STR_AUX | STR_TIMEOUT)));

	/* Pulsing lines other than reset does nothing. */
	outb(CMD, 0xff);
	outb(CMD, 0xfd);
	CHECK(vm->reason == KEEL_STOP_NONE);

	/* Reset puts the power-on state back. */
	outb(CMD, 0xaa);
	vm->devs->reset(vm->devs);
	CHECK(next_byte(NULL) == -1);
	outb(CMD, 0x20);
	CHECK(next_byte(NULL) == 0x05);
	fake_vm_free(vm);
	return 0;
}

static int test_keyboard(void)
{
	vm = fake_vm();
	outb(DATA, 0xff);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xaa);
	CHECK(next_byte(NULL) == -1);

	outb(DATA, 0xf2);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xab);
	CHECK(next_byte(NULL) == 0x83);

	outb(DATA, 0xed);
	CHECK(next_byte(NULL) == 0xfa);
	outb(DATA, 0x07);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == -1);

	outb(DATA, 0xf5);
	CHECK(next_byte(NULL) == 0xfa);
	outb(DATA, 0xf4);
	CHECK(next_byte(NULL) == 0xfa);

	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0x02);
	outb(DATA, 0xf0);
	outb(DATA, 0x03);
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0x03);

	outb(DATA, 0xee);
	CHECK(next_byte(NULL) == 0xee);

	/* A command instead of an argument is a new command. */
	outb(DATA, 0xed);
	outb(DATA, 0xf2);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xab);
	CHECK(next_byte(NULL) == 0x83);

	/* With translation on, the id is translated. */
	outb(CMD, 0x60);
	outb(DATA, 0x45);
	outb(DATA, 0xf2);
	CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == 0xab);
	CHECK(next_byte(NULL) == 0x41);

	/* The output buffer holds at most 16 bytes. */
	for (int i = 0; i < 20; i++)
		outb(DATA, 0xf4);
	for (int i = 0; i < 16; i++)
		CHECK(next_byte(NULL) == 0xfa);
	CHECK(next_byte(NULL) == -1);
	fake_vm_free(vm);
	return 0;
}

static int test_reset_line(void)
{
	vm = fake_vm();
	outb(CMD, 0xfe);
	CHECK(vm->reason == KEEL_STOP_RESET);
	CHECK(vm->stop_requested);
	fake_vm_free(vm);

	vm = fake_vm();
	outb(CMD, 0xf0);
	CHECK(vm->reason == KEEL_STOP_RESET);
	fake_vm_free(vm);

	vm = fake_vm();
	outb(CMD, 0xd1);
	outb(DATA, 0x03);
	CHECK(vm->reason == KEEL_STOP_NONE);
	outb(CMD, 0xd0);
	CHECK(next_byte(NULL) == 0x03);
	outb(CMD, 0xd1);
	outb(DATA, 0x02);
	CHECK(vm->reason == KEEL_STOP_RESET);
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
