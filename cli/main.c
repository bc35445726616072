// SPDX-License-Identifier: MIT
/* keel: the command-line front end.  Uses only the public API. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <keel/keel.h>

#include "args.h"

enum {
	EXIT_POWEROFF = 0,
	EXIT_KEEL_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_RESET = 3,
	EXIT_TRIPLE_FAULT = 4,
	EXIT_INTERNAL = 5,
	EXIT_SIGNAL = 6,
};

static int fail(keel_error *err)
{
	fprintf(stderr, "keel: %s\n", keel_error_get_message(err));
	keel_error_free(err);
	return EXIT_KEEL_ERROR;
}

/* Raw terminal for an interactive console; Ctrl-C still stops keel. */
static bool tty_raw(struct termios *saved)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	t = *saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
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
	default: return EXIT_INTERNAL;
	}
}

/* Waits for the VM to end or a signal to arrive; returns the exit status. */
static int run_until_end(keel_vm *vm, int sig_fd)
{
	struct pollfd pfd[2] = {
		{ .fd = keel_vm_get_state_fd(vm), .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};
	keel_error *err = NULL;
	keel_stop_reason reason;

	for (;;) {
		keel_vm_state st;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) > 0)
				fprintf(stderr, "keel: %s, stopping the VM\n", strsignal((int)si.ssi_signo));
			keel_vm_stop(vm, NULL);
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(pfd[0].fd, &v, sizeof(v)) < 0) {
				/* Level state is read below anyway. */
			}
		}
		st = keel_vm_get_state(vm);
		if (st == KEEL_VM_STOPPED || st == KEEL_VM_ERROR)
			break;
	}
	reason = keel_vm_wait(vm, -1, &err);
	if (err) {
		fprintf(stderr, "keel: guest stopped: %s: %s\n", keel_stop_reason_name(reason),
			keel_error_get_message(err));
		keel_error_free(err);
	} else if (reason != KEEL_STOP_POWEROFF && reason != KEEL_STOP_REQUESTED) {
		fprintf(stderr, "keel: guest stopped: %s\n", keel_stop_reason_name(reason));
	}
	return exit_status(reason);
}

static int cmd_run(int argc, char **argv)
{
	struct termios saved;
	struct cli_run run;
	keel_error *err = NULL;
	keel_config *cfg;
	keel_vm *vm;
	sigset_t sigs;
	bool raw = false;
	int sig_fd, status;

	if (cli_parse_run(argc, argv, &run) < 0)
		return EXIT_USAGE;
	cfg = cli_build_config(&run, &err);
	if (!cfg)
		return err ? fail(err) : EXIT_USAGE;    /* usage errors are already printed */

	/* Blocked before keel starts threads, so only the signalfd sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);

	vm = keel_vm_new(cfg, &err);
	keel_config_free(cfg);
	if (!vm)
		return fail(err);
	for (int i = 0; i < run.nr_serial; i++)
		if (!strcmp(run.serial[i], "stdio"))
			raw = tty_raw(&saved);
	if (keel_vm_start(vm, &err) < 0) {
		status = fail(err);
	} else {
		status = run_until_end(vm, sig_fd);
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	keel_vm_free(vm);
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
