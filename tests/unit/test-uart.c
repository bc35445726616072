// SPDX-License-Identifier: MIT
/* 16550A register model, output and input, against a VM without KVM. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "dev/uart.h"
#include "check.h"
#include "fakevm.h"

#define COM1 0x3f8
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct fake_vm *fake_vm(void)
{
	return fake_vm_new(&(struct fake_vm_opts){ .flags = FAKE_VM_PIO | FAKE_VM_LOOP });
}

static struct fake_vm *vm;

#define inb(port) fake_vm_inb(vm, port)
#define outb(port, v) fake_vm_outb(vm, port, v)

static uint8_t rd(int reg)
{
	return inb(COM1 + reg);
}

static void wr(int reg, uint8_t v)
{
	outb(COM1 + reg, v);
}

static int new_uart(int in_fd, int out_fd)
{
	struct keel_serial_attachment att = { .kind = SERIAL_FDS, .in_fd = in_fd, .out_fd = out_fd };
	keel_error *err = NULL;

	vm = fake_vm();
	if (uart_create(&vm->ctx, 0, &att, &err)) {
		fprintf(stderr, "uart_create: %s\n", keel_error_get_message(err));
		keel_error_free(err);
		return -1;
	}
	return 0;
}

static int test_create_errors(void)
{
	struct keel_serial_attachment att = { .kind = SERIAL_FDS, .in_fd = -1, .out_fd = -1 };
	keel_error *err = NULL;

	vm = fake_vm();
	REQUIRE(uart_create(&vm->ctx, 4, &att, &err) == -1);
	REQUIRE(err && keel_error_get_code(err) == KEEL_ERR_INVALID);
	keel_error_free(err);
	err = NULL;
	REQUIRE(uart_create(&vm->ctx, 1, &att, &err) == 0);
	REQUIRE(uart_create(&vm->ctx, 1, &att, &err) == -1);      /* ports taken */
	REQUIRE(err != NULL);
	keel_error_free(err);
	/* COM2 is at 0x2f8. */
	outb(0x2f8 + SCR, 0x3c);
	REQUIRE(inb(0x2f8 + SCR) == 0x3c);
	REQUIRE(inb(0x3f8 + SCR) == 0xff);                  /* unclaimed */
	fake_vm_free(vm);
	return 0;
}

static int test_power_on(void)
{
	REQUIRE(new_uart(-1, -1) == 0);
	REQUIRE(rd(IER) == 0);
	REQUIRE(rd(IIR) == 0x01);
	REQUIRE(rd(LCR) == 0);
	REQUIRE(rd(MCR) == 0);
	REQUIRE(rd(LSR) == 0x60);
	REQUIRE(rd(MSR) == 0xb0);
	REQUIRE(rd(SCR) == 0);
	fake_vm_free(vm);
	return 0;
}

static int test_scratch_dlab(void)
{
	REQUIRE(new_uart(-1, -1) == 0);
	wr(SCR, 0x5a);
	REQUIRE(rd(SCR) == 0x5a);
	wr(SCR, 0xa5);
	REQUIRE(rd(SCR) == 0xa5);
	/* IER: only the low nibble exists (Linux's XScale UUE test). */
	wr(IER, 0xff);
	REQUIRE(rd(IER) == 0x0f);
	wr(IER, 0);
	REQUIRE(rd(IER) == 0);
	/* Divisor latch behind DLAB. */
	wr(LCR, 0x80);
	wr(DLL, 0x01);
	wr(DLM, 0x02);
	REQUIRE(rd(DLL) == 0x01);
	REQUIRE(rd(DLM) == 0x02);
	REQUIRE(rd(LCR) == 0x80);
	wr(LCR, 0x03);
	REQUIRE(rd(LCR) == 0x03);
	REQUIRE(rd(IER) == 0);
	wr(LCR, 0x83);
	REQUIRE(rd(DLL) == 0x01 && rd(DLM) == 0x02);
	/* Linux's divisor id probe reads 0 back after writing 0. */
	wr(DLL, 0);
	wr(DLM, 0);
	REQUIRE(rd(DLL) == 0 && rd(DLM) == 0);
	wr(LCR, 0x03);
	fake_vm_free(vm);
	return 0;
}

/* The register accesses of Linux's 8250 autoconfig(), in order. */
static int test_linux_autoconfig(void)
{
	uint8_t scratch, scratch2, scratch3, save_lcr, save_mcr, status1, status2;

	REQUIRE(new_uart(-1, -1) == 0);
	scratch = rd(IER);
	wr(IER, 0);
	scratch2 = rd(IER) & 0x0f;
	wr(IER, 0x0f);
	scratch3 = rd(IER) & 0x0f;
	wr(IER, scratch);
	REQUIRE(scratch2 == 0 && scratch3 == 0x0f);

	save_mcr = rd(MCR);
	save_lcr = rd(LCR);
	wr(MCR, 0x10 | 0x0a);
	status1 = rd(MSR) & 0xf0;
	wr(MCR, save_mcr);
	REQUIRE(status1 == 0x90);

	wr(LCR, 0xbf);          /* UART_LCR_CONF_MODE_B */
	wr(IIR, 0);             /* EFR on a 16650: FCR here */
	wr(LCR, 0);
	wr(FCR, 0x01);
	scratch = rd(IIR) >> 6;
	REQUIRE(scratch == 3);    /* 16550A */

	/* autoconfig_16550a(): no EFR (offset 2 reads IIR, nonzero). */
	wr(LCR, 0x80);
	REQUIRE(rd(IIR) != 0);
	wr(LCR, 0xbf);
	REQUIRE(rd(IIR) != 0);
	/* Not a TI16750: IIR bit 5 never set. */
	wr(LCR, 0);
	wr(FCR, 0x01 | 0x20);
	status1 = rd(IIR) & (0x20 | 0xc0);
	wr(FCR, 0x01);
	wr(LCR, 0x80);
	wr(FCR, 0x01 | 0x20);
	status2 = rd(IIR) & (0x20 | 0xc0);
	wr(FCR, 0x01);
	wr(LCR, 0);
	REQUIRE(status1 == 0xc0 && status2 == 0xc0);
	/* Not XScale: IER bit 6 does not stick. */
	wr(IER, 0x40);
	REQUIRE(!(rd(IER) & 0x40));
	wr(IER, 0);

	wr(LCR, save_lcr);
	/* Loopback with every modem line: MSR 0xf0. */
	wr(MCR, 0x1f);
	REQUIRE((rd(MSR) & 0xf0) == 0xf0);
	wr(MCR, 0);
	REQUIRE((rd(MSR) & 0xf0) == 0xb0);
	fake_vm_free(vm);
	return 0;
}

static int test_fifo_iir(void)
{
	REQUIRE(new_uart(-1, -1) == 0);
	REQUIRE((rd(IIR) & 0xc0) == 0);
	wr(FCR, 0x01);
	REQUIRE(rd(IIR) == 0xc1);
	wr(FCR, 0x00);
	REQUIRE(rd(IIR) == 0x01);

	/* THR empty interrupt: raised by enabling it, acked by reading IIR. */
	wr(IER, 0x02);
	REQUIRE(rd(IIR) == 0x02);
	REQUIRE(rd(IIR) == 0x01);
	wr(MCR, 0x10);          /* loopback: THR goes to RBR */
	wr(THR, 'a');
	REQUIRE(rd(IIR) == 0x02); /* THR emptied again */
	REQUIRE(rd(IIR) == 0x01);
	/* Re-enabling THRI re-raises it (Linux's UART_BUG_THRE test). */
	wr(IER, 0);
	wr(IER, 0x02);
	REQUIRE(rd(IIR) == 0x02);
	wr(IER, 0);
	REQUIRE(rd(RBR) == 'a');

	/* Received data: RDI without FIFO. */
	wr(IER, 0x01);
	REQUIRE(rd(IIR) == 0x01);
	wr(THR, 'b');
	REQUIRE(rd(LSR) & 0x01);
	REQUIRE(rd(IIR) == 0x04);
	REQUIRE(rd(RBR) == 'b');
	REQUIRE(rd(IIR) == 0x01);
	REQUIRE(!(rd(LSR) & 0x01));

	/* With the FIFO, below the trigger level it is a timeout (0x0c). */
	wr(FCR, 0x81);          /* trigger 8 */
	wr(THR, 'c');
	REQUIRE(rd(IIR) == 0xcc);
	for (int i = 0; i < 7; i++)
		wr(THR, 'd');
	REQUIRE(rd(IIR) == 0xc4);
	wr(FCR, 0x83);          /* clear RX */
	REQUIRE(rd(IIR) == 0xc1);
	REQUIRE(!(rd(LSR) & 0x01));

	/* Receiver line status has the highest priority. */
	wr(IER, 0x05);
	wr(FCR, 0x01);          /* trigger 1 */
	for (int i = 0; i < 17; i++)
		wr(THR, (uint8_t)i);
	REQUIRE(rd(IIR) == 0xc6);
	REQUIRE(rd(LSR) == 0x63); /* DR | OE | THRE | TEMT */
	REQUIRE(rd(LSR) == 0x61); /* OE cleared by reading */
	REQUIRE(rd(IIR) == 0xc4);

	/* Modem status interrupt, lowest priority. */
	wr(FCR, 0x03);
	wr(IER, 0x08);
	REQUIRE(rd(MSR) & 0x0f);  /* deltas of entering loopback */
	REQUIRE(rd(IIR) == 0xc1);
	wr(MCR, 0x10 | 0x01);   /* DTR -> DSR */
	REQUIRE(rd(IIR) == 0xc0);
	REQUIRE(rd(MSR) == (0x20 | 0x02));
	REQUIRE(rd(IIR) == 0xc1);
	wr(MCR, 0x10 | 0x04);   /* OUT1 -> RI ... */
	REQUIRE(rd(MSR) == (0x40 | 0x02));
	wr(MCR, 0x10);          /* ... trailing edge of RI: TERI */
	REQUIRE(rd(MSR) == 0x04);
	fake_vm_free(vm);
	return 0;
}

static int test_loopback_fifo(void)
{
	REQUIRE(new_uart(-1, -1) == 0);
	wr(FCR, 0x07);
	wr(MCR, 0x10);
	for (int i = 0; i < 20; i++)
		wr(THR, (uint8_t)(i + 1));
	REQUIRE(rd(LSR) == 0x63);
	for (int i = 0; i < 16; i++) {
		REQUIRE(rd(LSR) & 0x01);
		REQUIRE(rd(RBR) == i + 1);
	}
	REQUIRE(rd(LSR) == 0x60);
	/* Without FIFO one byte is held; a second one overruns. */
	wr(FCR, 0);
	wr(THR, 'x');
	wr(THR, 'y');
	REQUIRE(rd(LSR) == 0x63);
	REQUIRE(rd(RBR) == 'x');
	REQUIRE(rd(LSR) == 0x60);
	fake_vm_free(vm);
	return 0;
}

static int test_reset(void)
{
	REQUIRE(new_uart(-1, -1) == 0);
	wr(IER, 0x0f);
	wr(FCR, 0xc1);
	wr(LCR, 0x1b);
	wr(MCR, 0x1f);
	wr(SCR, 0x77);
	wr(THR, 'z');
	vm->ctx.devs->reset(vm->ctx.devs);
	REQUIRE(rd(IER) == 0);
	REQUIRE(rd(IIR) == 0x01);
	REQUIRE(rd(LCR) == 0);
	REQUIRE(rd(MCR) == 0);
	REQUIRE(rd(LSR) == 0x60);
	REQUIRE((rd(MSR) & 0xf0) == 0xb0);
	REQUIRE(rd(SCR) == 0);
	fake_vm_free(vm);
	return 0;
}

static int test_output(void)
{
	int p[2];
	char buf[16] = { 0 };
	const char *msg = "hello\n";

	REQUIRE(pipe(p) == 0);
	REQUIRE(new_uart(-1, p[1]) == 0);
	wr(LCR, 0x03);
	for (const char *c = msg; *c; c++)
		wr(THR, (uint8_t)*c);
	REQUIRE(read(p[0], buf, sizeof(buf)) == (ssize_t)strlen(msg));
	REQUIRE(strcmp(buf, msg) == 0);
	/* Loopback does not send. */
	wr(MCR, 0x10);
	wr(THR, 'q');
	wr(MCR, 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	REQUIRE(read(p[0], buf, sizeof(buf)) == -1 && errno == EAGAIN);
	/* A reader that went away: no SIGPIPE, output dropped. */
	close(p[0]);
	wr(THR, 'r');
	wr(THR, 's');
	fake_vm_free(vm);
	close(p[1]);
	return 0;
}

/* Polls LSR.DR for up to 2 seconds and returns the byte, or -1. */
static int rx_byte(void)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (rd(LSR) & 0x01)
			return rd(RBR);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
		    2000)
			return -1;
		usleep(200);
	}
}

static int test_input(void)
{
	int p[2];
	char data[100];

	REQUIRE(pipe(p) == 0);
	REQUIRE(new_uart(p[0], -1) == 0);
	REQUIRE(write(p[1], "abc", 3) == 3);
	REQUIRE(rx_byte() == 'a');
	REQUIRE(rx_byte() == 'b');
	REQUIRE(rx_byte() == 'c');

	/* Without FIFO one byte is held at a time: nothing is lost. */
	for (int i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(' ' + i % 90);
	REQUIRE(write(p[1], data, 20) == 20);
	for (int i = 0; i < 20; i++)
		REQUIRE(rx_byte() == data[i]);
	usleep(20000);
	REQUIRE(!(rd(LSR) & 0x01));

	/* More than the FIFO holds: the watch pauses and resumes. */
	wr(FCR, 0x01);
	REQUIRE(write(p[1], data, sizeof(data)) == sizeof(data));
	usleep(50000);
	REQUIRE(rd(LSR) == 0x61);         /* full, but no overrun */
	REQUIRE(rd(IIR) == 0xc1);         /* RDI not enabled */
	wr(IER, 0x01);
	REQUIRE(rd(IIR) == 0xc4);
	wr(IER, 0);
	for (int i = 0; i < (int)sizeof(data); i++)
		REQUIRE(rx_byte() == data[i]);
	usleep(20000);
	REQUIRE(!(rd(LSR) & 0x01));

	/* Loopback disconnects input. */
	wr(MCR, 0x10);
	REQUIRE(write(p[1], "L", 1) == 1);
	usleep(50000);
	REQUIRE(!(rd(LSR) & 0x01));
	wr(MCR, 0);
	REQUIRE(rx_byte() == 'L');

	/*
	 * End of input while the FIFO is full: the bytes left in the pipe are
	 * still delivered, then the watch stops and the device keeps working.
	 */
	REQUIRE(write(p[1], data, 40) == 40);
	close(p[1]);
	usleep(20000);
	{
		/* The paused watch does not spin on the hang-up. */
		struct timespec c0, c1;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		usleep(100000);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		REQUIRE((c1.tv_sec - c0.tv_sec) * 1000000000L + (c1.tv_nsec - c0.tv_nsec) < 50000000L);
	}
	REQUIRE(rd(LSR) == 0x61);
	for (int i = 0; i < 40; i++)
		REQUIRE(rx_byte() == data[i]);
	usleep(50000);
	REQUIRE(!(rd(LSR) & 0x01));
	wr(SCR, 1);
	REQUIRE(rd(SCR) == 1);
	fake_vm_free(vm);
	close(p[0]);
	return 0;
}

static int test_unpollable_input(void)
{
	int fd = open("/dev/null", O_RDONLY);

	REQUIRE(fd >= 0);
	REQUIRE(new_uart(fd, -1) == 0);
	REQUIRE(rd(LSR) == 0x60);
	fake_vm_free(vm);
	close(fd);
	return 0;
}

int main(void)
{
	RUN(test_create_errors);
	RUN(test_power_on);
	RUN(test_scratch_dlab);
	RUN(test_linux_autoconfig);
	RUN(test_fifo_iir);
	RUN(test_loopback_fifo);
	RUN(test_reset);
	RUN(test_output);
	RUN(test_input);
	RUN(test_unpollable_input);
	return 0;
}
