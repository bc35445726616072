// SPDX-License-Identifier: MIT
/* The interactive console's escape sequences (console.h). */
#include "console.h"

size_t console_filter(struct console_esc *e, uint8_t *buf, size_t len,
		      enum console_action *action)
{
	size_t out = 0;

	*action = CONSOLE_NONE;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (!e->prefix) {
			if (c == CONSOLE_ESCAPE)
				e->prefix = true;
			else
				buf[out++] = c;
			continue;
		}
		e->prefix = false;
		switch (c) {
		case CONSOLE_ESCAPE:
		case 'a':
			buf[out++] = CONSOLE_ESCAPE;
			break;
		case 'x':
		case 'X':
			*action = CONSOLE_STOP;
			break;
		case 'h':
		case 'H':
		case '?':
			if (*action == CONSOLE_NONE)
				*action = CONSOLE_HELP;
			break;
		default:
			break;          /* an unknown command does nothing */
		}
	}
	return out;
}
