// SPDX-License-Identifier: MIT
/* The CLI console's escape sequences (cli/console.c): what reaches the guest, what keel does. */
#include <string.h>

#include "console.h"
#include "check.h"

static size_t feed(struct console_esc *e, const char *in, char *out, enum console_action *a)
{
	size_t n = strlen(in);

	memcpy(out, in, n);
	return console_filter(e, (uint8_t *)out, n, a);
}

int main(void)
{
	struct console_esc e = { 0 };
	enum console_action a;
	char buf[64];
	size_t n;

	/* Plain keys, Ctrl-C (0x03) included, go to the guest. */
	n = feed(&e, "ls\x03\r", buf, &a);
	CHECK(n == 4 && !memcmp(buf, "ls\x03\r", 4) && a == CONSOLE_NONE);
	/* Ctrl-A x: a stop request, nothing for the guest. */
	n = feed(&e, "a\x01xb", buf, &a);
	CHECK(n == 2 && !memcmp(buf, "ab", 2) && a == CONSOLE_STOP);
	/* The escape split across two reads. */
	n = feed(&e, "q\x01", buf, &a);
	CHECK(n == 1 && buf[0] == 'q' && a == CONSOLE_NONE && e.prefix);
	n = feed(&e, "x", buf, &a);
	CHECK(n == 0 && a == CONSOLE_STOP && !e.prefix);
	/* Ctrl-A Ctrl-A and Ctrl-A a send one Ctrl-A. */
	n = feed(&e, "\x01\x01\x01" "a", buf, &a);
	CHECK(n == 2 && buf[0] == 0x01 && buf[1] == 0x01 && a == CONSOLE_NONE);
	/* Help; an unknown command is swallowed; stop wins over help. */
	n = feed(&e, "\x01h\x01z", buf, &a);
	CHECK(n == 0 && a == CONSOLE_HELP);
	n = feed(&e, "\x01x\x01h", buf, &a);
	CHECK(n == 0 && a == CONSOLE_STOP);
	return test_exit();
}
