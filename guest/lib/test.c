/* Test reporting protocol on COM1 and VM shutdown through the i8042 reset. */
#include <keel/kit.h>

unsigned int test_passes, test_fails;

void check(bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		test_passes++;
		printf("PASS %s", what);
		if (fmt && *fmt) {
			puts(" (");
			va_start(ap, fmt);
			vprintf(fmt, ap);
			va_end(ap);
			putc(')');
		}
	} else {
		test_fails++;
		printf("FAIL %s: ", what);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putc('\n');
}

void pass(const char *fmt, ...)
{
	va_list ap;

	test_passes++;
	puts("PASS ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putc('\n');
}

void fail(const char *fmt, ...)
{
	va_list ap;

	test_fails++;
	puts("FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putc('\n');
}

void machine_reset(void)
{
	int i;

	/* The VMM runs with "stop on reset", so this ends the process. */
	outb(0x64, 0xfe);
	for (i = 0; i < 10000000; i++)
		cpu_relax();
	outb(0xcf9, 0x06);	/* PIIX reset control, as a fallback */
	for (;;)
		cpu_relax();	/* hlt is privileged; ring 3 spins */
}

void test_end(void)
{
	printf("KEEL-TEST-END pass=%u fail=%u\n", test_passes, test_fails);
	machine_reset();
}
