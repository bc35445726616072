/* COM1 16550, polled. Bounded waits so a missing UART cannot hang us. */
#include <keel/kit.h>

#define LSR_DR		0x01
#define LSR_THRE	0x20

void serial_init(void)
{
	outb(COM1 + 1, 0x00);	/* IER: no interrupts */
	outb(COM1 + 3, 0x03);	/* LCR: 8N1, DLAB off */
	outb(COM1 + 4, 0x03);	/* MCR: DTR | RTS */
}

void putc(int c)
{
	int spins = 1000000;

	if (c == '\n')
		putc('\r');
	while (!(inb(COM1 + 5) & LSR_THRE) && --spins)
		cpu_relax();
	outb(COM1, c);
}

void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

int getc_timeout(u64 timeout_us)
{
	u64 end = tsc_deadline(timeout_us);

	while (!(inb(COM1 + 5) & LSR_DR)) {
		if (tsc_expired(end))
			return -1;
		cpu_relax();
	}
	return inb(COM1);
}

int getc(void)
{
	return getc_timeout(60 * 1000000ULL);
}
