// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the boot loaders: the input is a kernel image, fed
 * to boot_probe() and boot_load() with a 16 MiB guest.  The last input byte
 * also picks an initrd size, so placement is exercised too.
 *
 * Invariants checked: every failure carries an error with a message; a
 * success hands back a sane entry point; nothing reads or writes outside
 * the buffers (ASan) or guest RAM (mem_ptr).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "x86/e820.h"
#include "x86/layout.h"

#define FUZZ_RAM (16ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mem ram;
static struct e820_entry e820[E820_MAX];
static int nr_e820 = -1;
static uint8_t initrd[2 << 20];

static void setup(void)
{
	if (nr_e820 >= 0)
		return;
	if (mem_init(&ram, FUZZ_RAM, false, NULL))
		abort();
	nr_e820 = e820_build(&ram, e820, E820_MAX);
	if (nr_e820 <= 0)
		abort();
	memset(initrd, 0x5a, sizeof(initrd));
}

static void check_error(int ret, keel_error *err)
{
	if (ret != -1 || !err)
		abort();
	if (!keel_error_get_message(err)[0])
		abort();
	keel_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t initrd_sizes[4] = { 0, 1, 4096 + 17, sizeof(initrd) };
	enum boot_format fmt;
	struct boot_entry entry;
	struct boot_spec spec;
	keel_error *err = NULL;
	size_t isize;
	int ret;

	setup();

	ret = boot_probe(data, size, &fmt, &err);
	if (ret)
		check_error(ret, err);
	else if (fmt != BOOT_FMT_BZIMAGE && fmt != BOOT_FMT_PVH)
		abort();
	err = NULL;

	isize = size ? initrd_sizes[data[size - 1] & 3] : 0;
	spec = (struct boot_spec){
		.kernel = data,
		.kernel_size = size,
		.initrd = isize ? initrd : NULL,
		.initrd_size = isize,
		.cmdline = "console=ttyS0 panic=-1",
		.e820 = e820,
		.nr_e820 = nr_e820,
	};
	ret = boot_load(&ram, &spec, &entry, &err);
	if (ret) {
		check_error(ret, err);
		return 0;
	}
	switch (entry.mode) {
	case BOOT_MODE_LONG64:
		if (entry.rsi != LAYOUT_ZERO_PAGE || entry.rip < LAYOUT_HIGH_RAM ||
		    !mem_ptr(&ram, entry.rip, 1))
			abort();
		break;
	case BOOT_MODE_PVH32:
		if (entry.rbx != LAYOUT_PVH_INFO || entry.rip < LAYOUT_HIGH_RAM ||
		    !mem_ptr(&ram, entry.rip, 1))
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
