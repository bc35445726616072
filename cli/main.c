// SPDX-License-Identifier: MIT
/* keel: the command-line front end.  Uses only the public API. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <keel/keel.h>

#include "args.h"
#include "console.h"
#include "user.h"

enum {
	EXIT_POWEROFF = 0,
	EXIT_KEEL_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_RESET = 3,
	EXIT_TRIPLE_FAULT = 4,
	EXIT_INTERNAL = 5,
	EXIT_SIGNAL = 6,
	EXIT_HALTED = 7,
};

static int fail(keel_error *err)
{
	fprintf(stderr, "keel: %s\n", keel_error_get_message(err));
	keel_error_free(err);
	return EXIT_KEEL_ERROR;
}

/*
 * Raw terminal for the interactive console: no echo, no line editing, and
 * no signals from keys, so Ctrl-C reaches the guest (keel's own commands
 * come after Ctrl-A: console.h).
 */
static bool tty_raw(struct termios *saved)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	t = *saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN | ISIG);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

static int exit_status(keel_stop_reason reason)
{
	switch (reason) {
	case KEEL_STOP_POWEROFF: return EXIT_POWEROFF;
	case KEEL_STOP_RESET: return EXIT_RESET;
	case KEEL_STOP_TRIPLE_FAULT: return EXIT_TRIPLE_FAULT;
	case KEEL_STOP_REQUESTED: return EXIT_SIGNAL;
	case KEEL_STOP_HALTED: return EXIT_HALTED;
	default: return EXIT_INTERNAL;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Stopping like a PC's power button: the first request presses it (the
 * guest shuts down and powers off), a second one or the timeout holds it
 * down (the VM is stopped).
 */
struct stopper {
	keel_vm *vm;
	int timeout_s;          /* 0: never ask, stop at once */
	bool asked;
	int64_t deadline;       /* now_ms() when the stop is forced */
};

static void force_stop(struct stopper *st, const char *why)
{
	fprintf(stderr, "keel: %s; stopping the VM\r\n", why);
	keel_vm_stop(st->vm, NULL);
}

static void request_stop(struct stopper *st, const char *why, const char *again)
{
	keel_error *err = NULL;
	char msg[512];

	if (st->asked || !st->timeout_s) {
		force_stop(st, why);
		return;
	}
	if (keel_vm_request_stop(st->vm, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", why, keel_error_get_message(err));
		keel_error_free(err);
		force_stop(st, msg);
		return;
	}
	st->asked = true;
	st->deadline = now_ms() + (int64_t)st->timeout_s * 1000;
	fprintf(stderr, "keel: %s: asked the guest to power off (%s, or %d s, stops it)\r\n", why,
		again, st->timeout_s);
}

/* Terminal input for the guest's console, with keel's escape commands taken out. */
static void relay_input(struct stopper *st, struct console_esc *esc, int out_fd, bool *open)
{
	enum console_action action;
	uint8_t buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	size_t len;

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			*open = false;  /* the terminal is gone; the guest keeps running */
		return;
	}
	len = console_filter(esc, buf, (size_t)n, &action);
	/* Typing faster than the guest reads a 64 KiB pipe: the rest is dropped. */
	if (len && write(out_fd, buf, len) < 0 && errno != EAGAIN) {
		/* The guest side is gone: the VM is ending. */
	}
	if (action == CONSOLE_HELP && write(STDERR_FILENO, CONSOLE_HELP_TEXT,
					    sizeof(CONSOLE_HELP_TEXT) - 1) < 0) {
		/* Nowhere to tell. */
	}
	if (action == CONSOLE_STOP)
		request_stop(st, "Ctrl-A x", "Ctrl-A x again");
}

/* Waits for the VM to end; signals and console commands stop it.  Returns the exit status. */
static int run_until_end(struct stopper *st, int sig_fd, int relay_fd)
{
	struct pollfd pfd[3] = {
		{ .fd = keel_vm_get_state_fd(st->vm), .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
		{ .fd = relay_fd >= 0 ? STDIN_FILENO : -1, .events = POLLIN },
	};
	struct console_esc esc = { 0 };
	bool input_open = relay_fd >= 0;
	keel_error *err = NULL;
	keel_stop_reason reason;

	for (;;) {
		int timeout = st->asked ? (int)(st->deadline - now_ms()) : -1;
		keel_vm_state state;

		if (st->asked && timeout <= 0) {
			char why[64];

			snprintf(why, sizeof(why), "the guest did not power off within %d s",
				 st->timeout_s);
			force_stop(st, why);
			st->asked = false;
		}
		pfd[2].fd = input_open ? STDIN_FILENO : -1;
		if (poll(pfd, 3, st->asked ? (timeout > 0 ? timeout : 0) : -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) > 0) {
				const char *name = strsignal((int)si.ssi_signo);

				if (si.ssi_signo == SIGHUP)
					force_stop(st, name);
				else
					request_stop(st, name, "the signal again");
			}
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
			relay_input(st, &esc, relay_fd, &input_open);
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(pfd[0].fd, &v, sizeof(v)) < 0) {
				/* Level state is read below anyway. */
			}
		}
		state = keel_vm_get_state(st->vm);
		if (state == KEEL_VM_STOPPED || state == KEEL_VM_ERROR)
			break;
	}
	reason = keel_vm_wait(st->vm, -1, &err);
	if (err) {
		fprintf(stderr, "keel: guest stopped: %s: %s\n", keel_stop_reason_name(reason),
			keel_error_get_message(err));
		keel_error_free(err);
	} else if (reason != KEEL_STOP_POWEROFF && reason != KEEL_STOP_REQUESTED) {
		fprintf(stderr, "keel: guest stopped: %s\n", keel_stop_reason_name(reason));
	}
	return exit_status(reason);
}

/*
 * With a serial port on a terminal, keel reads the terminal itself and
 * hands the guest its keys through a pipe (console.h); returns the pipe's
 * write end, or -1 (stdin goes to the guest as it is).
 */
static int open_relay(struct cli_run *run, struct termios *saved, bool *raw)
{
	bool stdio = false;
	int p[2];

	for (int i = 0; i < run->nr_serial; i++)
		stdio |= !strcmp(run->serial[i], "stdio");
	for (int i = 0; i < run->nr_consoles; i++)
		stdio |= !strcmp(run->consoles[i], "stdio");
	if (!stdio || !isatty(STDIN_FILENO) || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (!(*raw = tty_raw(saved))) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	run->stdio_in = p[0];
	fprintf(stderr, "keel: console on this terminal; Ctrl-A x asks the guest to power off, Ctrl-A h: help\r\n");
	return p[1];
}

static int cmd_run(int argc, char **argv)
{
	struct termios saved;
	struct cli_user user;
	struct cli_run run;
	struct stopper st = { 0 };
	keel_error *err = NULL;
	keel_config *cfg;
	keel_vm *vm;
	sigset_t sigs;
	bool raw = false;
	int sig_fd, relay_fd, status;

	if (cli_parse_run(argc, argv, &run) < 0)
		return EXIT_USAGE;
	if (run.user && cli_user_lookup(run.user, &user) < 0)
		return EXIT_USAGE;
	/* Blocked before keel starts threads, so only the signalfd sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);

	relay_fd = open_relay(&run, &saved, &raw);
	cfg = cli_build_config(&run, &err);
	if (run.stdio_in >= 0)
		close(run.stdio_in);    /* the attachments hold their own copies */
	vm = cfg ? keel_vm_new(cfg, &err) : NULL;
	keel_config_free(cfg);
	if (!vm) {
		status = err ? fail(err) : EXIT_USAGE;  /* usage errors are already printed */
	} else {
		st = (struct stopper){ .vm = vm, .timeout_s = run.stop_timeout };
		if (run.user && cli_user_drop(run.user, &user) < 0)
			status = EXIT_KEEL_ERROR;
		else if (keel_vm_start(vm, &err) < 0)
			status = fail(err);
		else
			status = run_until_end(&st, sig_fd, relay_fd);
		keel_vm_free(vm);
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (relay_fd >= 0)
		close(relay_fd);
	close(sig_fd);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("keel %s\n", keel_version());
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	fprintf(stderr, "keel: unknown command '%s' (try keel --help)\n", argv[1]);
	return EXIT_USAGE;
}
