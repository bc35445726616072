/*
 * Serial guest: 16550A register checks, then polled echo of input until
 * the line given by cmdline expect=WORD arrives.
 */
#include <keel/kit.h>

#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define LSR 5
#define SCR 7

static void check_registers(void)
{
	u8 lsr, iir, dll, dlm, s1, s2;

	lsr = inb(COM1 + LSR);
	check(lsr != 0xff && (lsr & 0x60) == 0x60, "LSR idle (THRE, TEMT)",
	      "LSR=%#x", lsr);

	outb(COM1 + SCR, 0x5a);
	s1 = inb(COM1 + SCR);
	outb(COM1 + SCR, 0xa5);
	s2 = inb(COM1 + SCR);
	check(s1 == 0x5a && s2 == 0xa5, "scratch register",
	      "read %#x/%#x for 0x5a/0xa5", s1, s2);

	outb(COM1 + LCR, 0x83);		/* DLAB on, 8N1 */
	outb(COM1 + DLL, 0x0c);		/* 9600 baud */
	outb(COM1 + DLM, 0x00);
	dll = inb(COM1 + DLL);
	dlm = inb(COM1 + DLM);
	outb(COM1 + DLL, 0x01);		/* back to 115200 */
	outb(COM1 + DLM, 0x00);
	outb(COM1 + LCR, 0x03);
	check(dll == 0x0c && dlm == 0, "divisor latch read-back",
	      "DLL=%#x DLM=%#x", dll, dlm);

	outb(COM1 + IER, 0x00);
	iir = inb(COM1 + IIR);
	check(iir & 0x01, "IIR no interrupt pending", "IIR=%#x", iir);

	outb(COM1 + FCR, 0x07);		/* enable + clear FIFOs */
	iir = inb(COM1 + IIR);
	check((iir & 0xc0) == 0xc0, "FIFO enabled in IIR (16550A)", "IIR=%#x", iir);
	outb(COM1 + FCR, 0x00);
	iir = inb(COM1 + IIR);
	check(!(iir & 0xc0), "FIFO disabled in IIR", "IIR=%#x", iir);
	outb(COM1 + FCR, 0x07);
}

void test_main(void)
{
	char want[128], got[128];
	u32 n = 0;
	int c;

	printf("keel serial\n");
	check_registers();
	if (!cmdline_str("expect", want, sizeof(want))) {
		fail("expect= missing from the command line: %s", cmdline());
		return;
	}
	/* Drain anything that arrived before we were ready. */
	while (inb(COM1 + LSR) & 0x01)
		inb(COM1 + RBR);
	printf("READY\n");
	for (;;) {
		c = getc_timeout(cmdline_u64_or("serial_timeout", 60) * 1000000);
		if (c < 0) {
			got[n] = 0;
			fail("echo: timed out after \"%s\"", got);
			return;
		}
		putc(c == '\n' ? '\n' : c);
		if (c == '\r')
			continue;
		if (c == '\n')
			break;
		if (n + 1 < sizeof(got))
			got[n++] = c;
	}
	got[n] = 0;
	check(!strcmp(got, want), "serial input line", "got \"%s\", expected \"%s\"",
	      got, want);
}
