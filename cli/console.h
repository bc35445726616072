/* SPDX-License-Identifier: MIT */
/*
 * The interactive console: when a serial port is on a terminal, every key
 * (Ctrl-C included) goes to the guest, and keel takes its own commands
 * after an escape key, Ctrl-A, as QEMU's -serial mon:stdio does.
 */
#ifndef KEEL_CLI_CONSOLE_H
#define KEEL_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_ESCAPE 0x01     /* Ctrl-A */

enum console_action {
	CONSOLE_NONE,
	CONSOLE_HELP,           /* Ctrl-A h */
	CONSOLE_STOP,           /* Ctrl-A x: ask the guest to power off (again: force) */
};

struct console_esc {
	bool prefix;            /* Ctrl-A seen, the command key is next */
};

/*
 * Takes the escape sequences out of `len` bytes of terminal input, in
 * place (Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A and an unknown key send
 * nothing).  Returns how many bytes are for the guest; *action is the
 * strongest command seen.
 */
size_t console_filter(struct console_esc *e, uint8_t *buf, size_t len,
		      enum console_action *action);

#define CONSOLE_HELP_TEXT \
	"keel console: Ctrl-A x  ask the guest to power off (ACPI power button; twice: stop it)\r\n" \
	"              Ctrl-A a  send Ctrl-A to the guest (Ctrl-A Ctrl-A too)\r\n" \
	"              Ctrl-A h  this help\r\n"

#endif
