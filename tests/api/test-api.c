/* SPDX-License-Identifier: MIT */
/*
 * End-to-end test of keel's public API (include/keel/keel.h only).
 *
 *   test-api HELLO_ELF SPIN_ELF
 *
 * Every VM runs with the sandbox on (keel_config_set_sandbox), or in the
 * mode $KEEL_SANDBOX names (on, log, off).  test_sandbox() checks that a
 * forbidden call from a keel thread (the state callback, on the event
 * thread) kills the process with the line that names it, and in log mode
 * fails with ENOSYS while the VM goes on.
 *
 * HELLO_ELF (guest/tests/hello.c) prints "keel hello", its checks and
 * "KEEL-TEST-END", then resets the machine.  SPIN_ELF (guest/tests/spin.c)
 * prints "SPIN" and then "TICK n" about every 100 ms forever.
 *
 * Prints "ok N - what" / "not ok N - what: why" lines and exits 0 (all
 * passed), 1 (a check failed) or 77 (keel_vm_new() reports KEEL_ERR_KVM:
 * no usable /dev/kvm).
 */
#include <keel/keel.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 120000		/* nested KVM under TCG is slow */

static int n_tests, n_fail;
static const char *hello_path, *spin_path;
static keel_sandbox_mode sandbox_mode = KEEL_SANDBOX_ON;

static void check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	n_tests++;
	if (ok) {
		printf("ok %d - %s\n", n_tests, what);
	} else {
		n_fail++;
		printf("not ok %d - %s: ", n_tests, what);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *msg(keel_error *err)
{
	return err ? keel_error_get_message(err) : "(no error object)";
}

static void clear_err(keel_error **err)
{
	keel_error_free(*err);
	*err = NULL;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- serial pipe */

struct serial {
	int rfd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *buf;
	size_t len, cap;
	int eof, quit;
};

static void *serial_reader(void *arg)
{
	struct serial *s = arg;
	char tmp[4096];

	for (;;) {
		struct pollfd p = { .fd = s->rfd, .events = POLLIN };
		ssize_t n;
		int quit;

		pthread_mutex_lock(&s->lock);
		quit = s->quit;
		pthread_mutex_unlock(&s->lock);
		if (quit)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(s->rfd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		pthread_mutex_lock(&s->lock);
		if (n <= 0) {
			s->eof = 1;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			break;
		}
		if (s->len + n + 1 > s->cap) {
			s->cap = (s->len + n + 1) * 2;
			s->buf = realloc(s->buf, s->cap);
			if (!s->buf)
				abort();
		}
		memcpy(s->buf + s->len, tmp, n);
		s->len += n;
		s->buf[s->len] = 0;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* Creates the pipe and its reader; returns the attachment (or NULL). */
static keel_serial_attachment *serial_open(struct serial *s)
{
	keel_serial_attachment *att;
	keel_error *err = NULL;
	int fds[2];

	memset(s, 0, sizeof(*s));
	s->rfd = -1;
	if (pipe2(fds, O_CLOEXEC)) {
		perror("pipe2");
		return NULL;
	}
	att = keel_serial_attachment_new_fds(-1, fds[1], &err);
	close(fds[1]);		/* keel duplicated it */
	if (!att) {
		printf("# keel_serial_attachment_new_fds: %s\n", msg(err));
		keel_error_free(err);
		close(fds[0]);
		return NULL;
	}
	s->rfd = fds[0];
	s->cap = 65536;
	s->buf = calloc(1, s->cap);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (!s->buf || pthread_create(&s->thread, NULL, serial_reader, s))
		abort();
	return att;
}

/* Occurrences of `needle` on complete lines (a newline follows). */
static int count_locked(struct serial *s, const char *needle)
{
	const char *p = s->buf;
	int n = 0;

	while ((p = strstr(p, needle))) {
		p += strlen(needle);
		if (strchr(p, '\n'))
			n++;
	}
	return n;
}

static int serial_count(struct serial *s, const char *needle)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = count_locked(s, needle);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static size_t serial_len(struct serial *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->len;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Waits until `needle` occurred at least `times` times; returns the count. */
static int serial_wait(struct serial *s, const char *needle, int times,
		       int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int n;

	pthread_mutex_lock(&s->lock);
	while ((n = count_locked(s, needle)) < times && !s->eof) {
		struct timespec ts;
		long long left = end - now_ms();

		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* After keel_vm_free(): keel must have closed its copies of the pipe. */
static int serial_close(struct serial *s, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int eof;

	pthread_mutex_lock(&s->lock);
	while (!s->eof && now_ms() < end) {
		pthread_mutex_unlock(&s->lock);
		usleep(20000);
		pthread_mutex_lock(&s->lock);
	}
	eof = s->eof;
	s->quit = 1;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	close(s->rfd);
	free(s->buf);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	return eof;
}

/* Last `n` bytes of the output, for failure messages. */
static const char *serial_tail(struct serial *s, size_t n)
{
	static char out[512];
	size_t off;

	if (n >= sizeof(out))
		n = sizeof(out) - 1;
	pthread_mutex_lock(&s->lock);
	off = s->len > n ? s->len - n : 0;
	snprintf(out, sizeof(out), "%s", s->buf + off);
	pthread_mutex_unlock(&s->lock);
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '|';
	return out;
}

/* ---------------------------------------------------------- state records */

struct states {
	pthread_mutex_t lock;
	keel_vm_state seq[256];
	int n;
	int wrong_vm;
	int mismatch;	/* keel_vm_get_state() in the callback differed */
	keel_vm *vm;
};

static void state_cb(keel_vm *vm, keel_vm_state state, void *opaque)
{
	struct states *st = opaque;
	keel_vm_state now;

	/* Documented as allowed: any keel call but keel_vm_free(). */
	now = keel_vm_get_state(vm);
	(void)keel_vm_wait(vm, 0, NULL);
	pthread_mutex_lock(&st->lock);
	if (now != state)
		st->mismatch++;
	if (vm != st->vm)
		st->wrong_vm++;
	if (st->n < (int)(sizeof(st->seq) / sizeof(st->seq[0])))
		st->seq[st->n++] = state;
	pthread_mutex_unlock(&st->lock);
}

static void states_init(struct states *st, keel_vm *vm)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	st->vm = vm;
}

static void states_reset(struct states *st)
{
	pthread_mutex_lock(&st->lock);
	st->n = 0;
	pthread_mutex_unlock(&st->lock);
}

static void states_fmt(struct states *st, char *buf, size_t size)
{
	size_t off = 0;
	int i;

	buf[0] = 0;
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < st->n && off + 1 < size; i++)
		off += snprintf(buf + off, size - off, "%s%s", i ? "," : "",
				keel_vm_state_name(st->seq[i]));
	pthread_mutex_unlock(&st->lock);
	if (!buf[0])
		snprintf(buf, size, "(none)");
}

static keel_vm_state states_last(struct states *st)
{
	keel_vm_state s;

	pthread_mutex_lock(&st->lock);
	s = st->n ? st->seq[st->n - 1] : (keel_vm_state)-1;
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* Waits (up to timeout) until the last recorded state is `want`. */
static int states_wait_last(struct states *st, keel_vm_state want,
			    int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (states_last(st) != want) {
		if (now_ms() >= end)
			return 0;
		usleep(10000);
	}
	return 1;
}

/* Is `want` (n states) a subsequence of the recorded states? */
static int states_has_subseq(struct states *st, const keel_vm_state *want,
			     int n)
{
	int i, j = 0;

	pthread_mutex_lock(&st->lock);
	for (i = 0; i < st->n && j < n; i++)
		if (st->seq[i] == want[j])
			j++;
	pthread_mutex_unlock(&st->lock);
	return j == n;
}

/* -------------------------------------------------------------- state fd */

static int fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Reads the 8 bytes that clear it, if readable; returns whether it was. */
static int fd_drain(int fd)
{
	unsigned long long v;

	if (!fd_readable(fd, 0))
		return 0;
	return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
}

/* ------------------------------------------------------------------ helpers */

static keel_config *make_config(const char *kernel, const char *cmdline,
				keel_serial_attachment *att,
				keel_reset_action reset)
{
	keel_error *err = NULL;
	keel_config *cfg = keel_config_new(&err);
	keel_boot_loader *bl;

	if (!cfg) {
		printf("# keel_config_new: %s\n", msg(err));
		keel_error_free(err);
		keel_serial_attachment_free(att);
		return NULL;
	}
	keel_config_set_cpu_count(cfg, 1);
	keel_config_set_memory_size(cfg, 64ULL << 20);
	keel_config_set_sandbox(cfg, sandbox_mode);
	bl = keel_linux_boot_loader_new(kernel, &err);
	if (!bl) {
		printf("# keel_linux_boot_loader_new(%s): %s\n", kernel, msg(err));
		keel_error_free(err);
		keel_serial_attachment_free(att);
		keel_config_free(cfg);
		return NULL;
	}
	if (cmdline)
		keel_linux_boot_loader_set_cmdline(bl, cmdline);
	keel_config_set_boot_loader(cfg, bl);
	keel_config_add_serial_port(cfg, att);
	keel_config_set_reset_action(cfg, reset);
	return cfg;
}

/*
 * A VM over `kernel` with its serial port on *s.  Exits 77 if KVM is
 * missing; returns NULL (after a failed check) on other errors.
 */
static keel_vm *make_vm(const char *kernel, const char *cmdline,
			struct serial *s, keel_reset_action reset,
			const char *what)
{
	keel_serial_attachment *att = serial_open(s);
	keel_error *err = NULL;
	keel_config *cfg;
	keel_vm *vm;

	if (!att) {
		check(0, what, "cannot set up the serial pipe");
		return NULL;
	}
	cfg = make_config(kernel, cmdline, att, reset);
	if (!cfg) {
		check(0, what, "cannot build the configuration");
		serial_close(s, 0);
		return NULL;
	}
	vm = keel_vm_new(cfg, &err);
	keel_config_free(cfg);		/* the VM has its own copy */
	if (!vm && err && keel_error_get_code(err) == KEEL_ERR_KVM) {
		printf("# SKIP: keel_vm_new: %s\n", msg(err));
		printf("1..%d\n", n_tests);
		exit(77);
	}
	check(vm != NULL, what, "keel_vm_new: %s", msg(err));
	keel_error_free(err);
	if (!vm)
		serial_close(s, 0);
	return vm;
}

static int is_state_err(keel_error *err, keel_vm_state state, char *why,
			size_t n)
{
	const char *name = keel_vm_state_name(state);

	if (!err) {
		snprintf(why, n, "no error object");
		return 0;
	}
	if (keel_error_get_code(err) != KEEL_ERR_STATE) {
		snprintf(why, n, "code %d, expected KEEL_ERR_STATE (%d): %s",
			 keel_error_get_code(err), KEEL_ERR_STATE, msg(err));
		return 0;
	}
	if (!name || !strcasestr(msg(err), name)) {
		snprintf(why, n, "message does not name state %s: \"%s\"",
			 name ? name : "(null)", msg(err));
		return 0;
	}
	snprintf(why, n, "%s", msg(err));
	return 1;
}

/* ------------------------------------------------------------------ tests */

static void test_lifecycle(void)
{
	static const keel_vm_state seq[] = { KEEL_VM_STARTING,
		KEEL_VM_RUNNING, KEEL_VM_STOPPED };
	struct serial s;
	struct states st;
	keel_error *err = NULL;
	keel_stop_reason why;
	char buf[512], ebuf[512];
	keel_vm *vm;
	int fd, rc, n;

	vm = make_vm(hello_path, "keel-api-test", &s, KEEL_RESET_STOP,
		     "hello: keel_vm_new");
	if (!vm)
		return;
	check(keel_vm_get_state(vm) == KEEL_VM_STOPPED, "new VM is STOPPED",
	      "state %s", keel_vm_state_name(keel_vm_get_state(vm)));
	states_init(&st, vm);
	keel_vm_set_state_callback(vm, state_cb, &st);
	fd = keel_vm_get_state_fd(vm);
	check(fd >= 0, "keel_vm_get_state_fd", "fd %d", fd);
	if (fd >= 0)
		fd_drain(fd);

	rc = keel_vm_pause(vm, &err);
	check(rc < 0 && is_state_err(err, KEEL_VM_STOPPED, ebuf, sizeof(ebuf)),
	      "keel_vm_pause on a stopped VM fails with KEEL_ERR_STATE naming "
	      "the state", "rc %d: %s", rc, rc < 0 ? ebuf : "succeeded");
	if (rc == 0)
		note("pause succeeded: %s", ebuf);
	else
		note("pause on stopped VM: %s", msg(err));
	clear_err(&err);
	rc = keel_vm_resume(vm, &err);
	check(rc < 0 && err && keel_error_get_code(err) == KEEL_ERR_STATE,
	      "keel_vm_resume on a stopped VM fails with KEEL_ERR_STATE",
	      "rc %d: %s", rc, msg(err));
	clear_err(&err);

	rc = keel_vm_start(vm, &err);
	check(rc == 0, "keel_vm_start", "%s", msg(err));
	clear_err(&err);
	if (rc) {
		keel_vm_free(vm);
		serial_close(&s, 1000);
		return;
	}
	/* The guest resets on its own, so RUNNING or already ended. */
	keel_vm_state now = keel_vm_get_state(vm);
	check(now == KEEL_VM_RUNNING || now == KEEL_VM_STOPPED,
	      "state RUNNING after keel_vm_start", "state %s",
	      keel_vm_state_name(now));
	if (fd >= 0) {
		check(fd_readable(fd, 5000), "state fd readable after start",
		      "not readable within 5 s");
		fd_drain(fd);
	}
	rc = keel_vm_start(vm, &err);
	check(rc < 0 && err && keel_error_get_code(err) == KEEL_ERR_STATE,
	      "keel_vm_start on a started VM fails with KEEL_ERR_STATE",
	      "rc %d: %s", rc, msg(err));
	clear_err(&err);

	n = serial_wait(&s, "KEEL-TEST-END", 1, WAIT_MS);
	check(n == 1, "hello guest prints KEEL-TEST-END", "count %d; tail: %s",
	      n, serial_tail(&s, 200));
	check(serial_count(&s, " fail=0") == 1 &&
	      serial_count(&s, "FAIL") == 0, "hello guest checks pass",
	      "tail: %s", serial_tail(&s, 300));
	why = keel_vm_wait(vm, WAIT_MS, &err);
	check(why == KEEL_STOP_RESET, "keel_vm_wait -> KEEL_STOP_RESET",
	      "%s (%s)", keel_stop_reason_name(why), msg(err));
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_STOPPED,
	      "state STOPPED after the reset", "state %s",
	      keel_vm_state_name(keel_vm_get_state(vm)));
	why = keel_vm_wait(vm, 0, &err);
	check(why == KEEL_STOP_RESET, "keel_vm_wait again keeps the reason",
	      "%s", keel_stop_reason_name(why));
	clear_err(&err);
	if (!states_wait_last(&st, KEEL_VM_STOPPED, 5000))
		note("callback had not reported STOPPED within 5 s of "
		     "keel_vm_wait returning");
	states_fmt(&st, buf, sizeof(buf));
	note("states seen by the callback: %s", buf);
	check(states_has_subseq(&st, seq, 3) && st.seq[0] == KEEL_VM_STARTING &&
	      states_last(&st) == KEEL_VM_STOPPED,
	      "state callback saw STARTING, RUNNING, STOPPED in order",
	      "saw %s", buf);
	check(st.wrong_vm == 0, "state callback gets its VM", "%d calls with "
	      "another pointer", st.wrong_vm);
	if (st.mismatch)
		note("in %d callback(s) keel_vm_get_state() already differed "
		     "from the reported state", st.mismatch);
	if (fd >= 0) {
		check(fd_readable(fd, 5000), "state fd readable after the end",
		      "not readable within 5 s");
		fd_drain(fd);
		check(!fd_readable(fd, 0), "reading 8 bytes clears the state fd",
		      "still readable");
	}

	rc = keel_vm_pause(vm, &err);
	check(rc < 0 && is_state_err(err, KEEL_VM_STOPPED, ebuf, sizeof(ebuf)),
	      "keel_vm_pause on an ended VM fails with KEEL_ERR_STATE naming "
	      "the state", "rc %d: %s", rc, rc < 0 ? ebuf : "succeeded");
	clear_err(&err);

	/* Again: a VM that ended can be started again and boots again. */
	states_reset(&st);
	rc = keel_vm_start(vm, &err);
	check(rc == 0, "keel_vm_start after the VM ended", "%s", msg(err));
	clear_err(&err);
	if (rc == 0) {
		n = serial_wait(&s, "KEEL-TEST-END", 2, WAIT_MS);
		check(n == 2 && serial_count(&s, "keel hello") == 2,
		      "restarted VM boots again (keel hello twice)",
		      "KEEL-TEST-END x%d, keel hello x%d; tail: %s", n,
		      serial_count(&s, "keel hello"), serial_tail(&s, 200));
		why = keel_vm_wait(vm, WAIT_MS, &err);
		check(why == KEEL_STOP_RESET, "second run ends with "
		      "KEEL_STOP_RESET", "%s (%s)", keel_stop_reason_name(why),
		      msg(err));
		clear_err(&err);
		states_wait_last(&st, KEEL_VM_STOPPED, 5000);
		states_fmt(&st, buf, sizeof(buf));
		check(states_has_subseq(&st, seq, 3),
		      "second run: callback saw STARTING, RUNNING, STOPPED",
		      "saw %s", buf);
	}

	/* keel_vm_stop on an ended VM: not specified; report what it does. */
	rc = keel_vm_stop(vm, &err);
	note("keel_vm_stop on a stopped VM: rc %d%s%s", rc, rc ? ": " : "",
	     rc ? msg(err) : "");
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_STOPPED,
	      "state still STOPPED after keel_vm_stop on a stopped VM",
	      "state %s", keel_vm_state_name(keel_vm_get_state(vm)));

	keel_vm_set_state_callback(vm, NULL, NULL);
	keel_vm_free(vm);
	check(serial_close(&s, 5000), "keel_vm_free closes the serial pipe",
	      "write end still open 5 s later");
}

static void test_pause_resume(void)
{
	static const keel_vm_state seq[] = { KEEL_VM_STARTING,
		KEEL_VM_RUNNING, KEEL_VM_PAUSED, KEEL_VM_RUNNING,
		KEEL_VM_STOPPED };
	struct serial s;
	struct states st;
	keel_error *err = NULL;
	keel_stop_reason why;
	char buf[512], ebuf[512];
	keel_vm *vm;
	int fd, rc, n, ticks;
	size_t len;

	vm = make_vm(spin_path, "tick_ms=100", &s, KEEL_RESET_STOP,
		     "spin: keel_vm_new");
	if (!vm)
		return;
	states_init(&st, vm);
	keel_vm_set_state_callback(vm, state_cb, &st);
	fd = keel_vm_get_state_fd(vm);
	if (fd >= 0)
		fd_drain(fd);
	rc = keel_vm_start(vm, &err);
	check(rc == 0, "spin: keel_vm_start", "%s", msg(err));
	clear_err(&err);
	if (rc) {
		keel_vm_free(vm);
		serial_close(&s, 1000);
		return;
	}
	check(keel_vm_get_state(vm) == KEEL_VM_RUNNING, "spin: state RUNNING",
	      "state %s", keel_vm_state_name(keel_vm_get_state(vm)));
	n = serial_wait(&s, "SPIN", 1, WAIT_MS);
	check(n == 1, "spin guest prints SPIN", "tail: %s",
	      serial_tail(&s, 200));
	n = serial_wait(&s, "TICK ", 3, WAIT_MS);
	check(n >= 3, "spin guest ticks", "%d ticks; tail: %s", n,
	      serial_tail(&s, 200));

	rc = keel_vm_resume(vm, &err);
	check(rc < 0 && is_state_err(err, KEEL_VM_RUNNING, ebuf, sizeof(ebuf)),
	      "keel_vm_resume on a running VM fails with KEEL_ERR_STATE",
	      "rc %d: %s", rc, rc < 0 ? ebuf : "succeeded");
	clear_err(&err);
	/* The spin guest has no ACPI: it cannot be asked to stop, and says so. */
	rc = keel_vm_request_stop(vm, &err);
	check(rc < 0 && err && keel_error_get_code(err) == KEEL_ERR_STATE &&
	      strstr(msg(err), "does not listen to the ACPI power button"),
	      "keel_vm_request_stop on a guest without ACPI fails with KEEL_ERR_STATE",
	      "rc %d: %s", rc, msg(err));
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_RUNNING, "spin: still RUNNING after the request",
	      "state %s", keel_vm_state_name(keel_vm_get_state(vm)));
	why = keel_vm_wait(vm, 0, &err);
	check(why == KEEL_STOP_NONE, "keel_vm_wait(0) on a running VM -> "
	      "KEEL_STOP_NONE", "%s", keel_stop_reason_name(why));
	clear_err(&err);
	long long t0 = now_ms();
	why = keel_vm_wait(vm, 300, &err);
	long long dt = now_ms() - t0;
	check(why == KEEL_STOP_NONE && dt >= 250 && dt < 5000,
	      "keel_vm_wait(300) on a running VM times out after ~300 ms",
	      "%s after %lld ms", keel_stop_reason_name(why), dt);
	clear_err(&err);

	if (fd >= 0)
		fd_drain(fd);
	rc = keel_vm_pause(vm, &err);
	check(rc == 0, "keel_vm_pause", "%s", msg(err));
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_PAUSED, "state PAUSED",
	      "state %s", keel_vm_state_name(keel_vm_get_state(vm)));
	if (fd >= 0)
		check(fd_readable(fd, 5000), "state fd readable after pause",
		      "not readable within 5 s");
	rc = keel_vm_pause(vm, &err);
	check(rc < 0 && is_state_err(err, KEEL_VM_PAUSED, ebuf, sizeof(ebuf)),
	      "keel_vm_pause on a paused VM fails with KEEL_ERR_STATE",
	      "rc %d: %s", rc, rc < 0 ? ebuf : "succeeded");
	clear_err(&err);
	why = keel_vm_wait(vm, 0, &err);
	check(why == KEEL_STOP_NONE, "keel_vm_wait(0) on a paused VM -> "
	      "KEEL_STOP_NONE", "%s", keel_stop_reason_name(why));
	clear_err(&err);
	usleep(300000);		/* output already in flight */
	len = serial_len(&s);
	ticks = serial_count(&s, "TICK ");
	usleep(1500000);	/* ~15 ticks if it were running */
	check(serial_len(&s) == len, "no serial output while paused",
	      "%zu new bytes (%d new ticks) in 1.5 s", serial_len(&s) - len,
	      serial_count(&s, "TICK ") - ticks);

	if (fd >= 0)
		fd_drain(fd);
	rc = keel_vm_resume(vm, &err);
	check(rc == 0, "keel_vm_resume", "%s", msg(err));
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_RUNNING,
	      "state RUNNING after resume", "state %s",
	      keel_vm_state_name(keel_vm_get_state(vm)));
	if (fd >= 0)
		check(fd_readable(fd, 5000), "state fd readable after resume",
		      "not readable within 5 s");
	n = serial_wait(&s, "TICK ", ticks + 3, WAIT_MS);
	check(n >= ticks + 3, "ticks again after resume", "%d ticks, had %d",
	      n, ticks);

	rc = keel_vm_stop(vm, &err);
	check(rc == 0, "keel_vm_stop on a running VM", "%s", msg(err));
	clear_err(&err);
	why = keel_vm_wait(vm, 10000, &err);
	check(why == KEEL_STOP_REQUESTED, "keel_vm_wait -> KEEL_STOP_REQUESTED",
	      "%s (%s)", keel_stop_reason_name(why), msg(err));
	clear_err(&err);
	check(keel_vm_get_state(vm) == KEEL_VM_STOPPED,
	      "state STOPPED after keel_vm_stop", "state %s",
	      keel_vm_state_name(keel_vm_get_state(vm)));
	usleep(300000);
	len = serial_len(&s);
	usleep(700000);
	check(serial_len(&s) == len, "no serial output after keel_vm_stop",
	      "%zu new bytes", serial_len(&s) - len);
	states_wait_last(&st, KEEL_VM_STOPPED, 5000);
	states_fmt(&st, buf, sizeof(buf));
	note("states seen by the callback: %s", buf);
	check(states_has_subseq(&st, seq, 5),
	      "callback saw STARTING, RUNNING, PAUSED, RUNNING, STOPPED",
	      "saw %s", buf);

	/* Pause, then stop while paused. */
	states_reset(&st);
	rc = keel_vm_start(vm, &err);
	check(rc == 0, "spin: start again after keel_vm_stop", "%s", msg(err));
	clear_err(&err);
	if (rc == 0) {
		n = serial_wait(&s, "SPIN", 2, WAIT_MS);
		check(n == 2, "spin guest boots again", "SPIN x%d", n);
		rc = keel_vm_pause(vm, &err);
		check(rc == 0, "pause the second run", "%s", msg(err));
		clear_err(&err);
		rc = keel_vm_stop(vm, &err);
		check(rc == 0, "keel_vm_stop on a paused VM", "%s", msg(err));
		clear_err(&err);
		why = keel_vm_wait(vm, 10000, &err);
		check(why == KEEL_STOP_REQUESTED && keel_vm_get_state(vm) ==
		      KEEL_VM_STOPPED, "stopped while paused: "
		      "KEEL_STOP_REQUESTED, STOPPED", "%s, state %s",
		      keel_stop_reason_name(why),
		      keel_vm_state_name(keel_vm_get_state(vm)));
		clear_err(&err);
	}

	/* Third run, freed while running. */
	rc = keel_vm_start(vm, &err);
	check(rc == 0, "spin: third start", "%s", msg(err));
	clear_err(&err);
	if (rc == 0)
		serial_wait(&s, "SPIN", 3, WAIT_MS);
	keel_vm_set_state_callback(vm, NULL, NULL);
	t0 = now_ms();
	keel_vm_free(vm);
	note("keel_vm_free of a running VM took %lld ms", now_ms() - t0);
	check(serial_close(&s, 5000), "keel_vm_free of a running VM closes "
	      "the serial pipe", "write end still open 5 s later");
}

static void test_restart(void)
{
	struct serial s;
	keel_error *err = NULL;
	keel_stop_reason why;
	keel_vm *vm;
	int rc, n;

	vm = make_vm(hello_path, NULL, &s, KEEL_RESET_RESTART,
		     "restart: keel_vm_new");
	if (!vm)
		return;
	rc = keel_vm_start(vm, &err);
	check(rc == 0, "restart: keel_vm_start", "%s", msg(err));
	clear_err(&err);
	if (rc == 0) {
		n = serial_wait(&s, "keel hello", 2, WAIT_MS);
		check(n >= 2, "KEEL_RESET_RESTART: the guest boots again after "
		      "its reset", "keel hello x%d; tail: %s", n,
		      serial_tail(&s, 200));
		why = keel_vm_wait(vm, 0, &err);
		check(why == KEEL_STOP_NONE && keel_vm_get_state(vm) ==
		      KEEL_VM_RUNNING, "restarting VM still RUNNING",
		      "%s, state %s", keel_stop_reason_name(why),
		      keel_vm_state_name(keel_vm_get_state(vm)));
		clear_err(&err);
		rc = keel_vm_stop(vm, &err);
		check(rc == 0, "restart: keel_vm_stop", "%s", msg(err));
		clear_err(&err);
		why = keel_vm_wait(vm, 10000, &err);
		check(why == KEEL_STOP_REQUESTED, "restart: keel_vm_wait -> "
		      "KEEL_STOP_REQUESTED", "%s (%s)",
		      keel_stop_reason_name(why), msg(err));
		clear_err(&err);
		note("restart: %d boots seen", serial_count(&s, "keel hello"));
	}
	keel_vm_free(vm);
	serial_close(&s, 5000);
}

static void test_two_vms(void)
{
	struct serial s[2];
	keel_vm *vm[2];
	keel_error *err = NULL;
	keel_stop_reason why;
	int i, rc, started[2] = { 0, 0 };

	for (i = 0; i < 2; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "keel-api-vm%d", i);
		vm[i] = make_vm(hello_path, cmd, &s[i], KEEL_RESET_STOP,
				i ? "two VMs: second keel_vm_new" :
				"two VMs: first keel_vm_new");
		if (!vm[i]) {
			if (i) {
				keel_vm_free(vm[0]);
				serial_close(&s[0], 1000);
			}
			return;
		}
	}
	for (i = 0; i < 2; i++) {
		rc = keel_vm_start(vm[i], &err);
		check(rc == 0, i ? "two VMs: start second" :
		      "two VMs: start first", "%s", msg(err));
		clear_err(&err);
		started[i] = rc == 0;
	}
	/* Both must be alive at once: the second started before the first ended. */
	for (i = 0; i < 2; i++) {
		char what[64], want[32];

		if (!started[i])
			continue;
		why = keel_vm_wait(vm[i], WAIT_MS, &err);
		snprintf(what, sizeof(what), "two VMs: VM %d ends with "
			 "KEEL_STOP_RESET", i);
		check(why == KEEL_STOP_RESET, what, "%s (%s)",
		      keel_stop_reason_name(why), msg(err));
		clear_err(&err);
		snprintf(what, sizeof(what), "two VMs: VM %d's own serial output",
			 i);
		snprintf(want, sizeof(want), "keel-api-vm%d", i);
		check(serial_count(&s[i], "keel hello") == 1 &&
		      serial_count(&s[i], "KEEL-TEST-END") == 1 &&
		      serial_count(&s[i], want) >= 1 &&
		      serial_count(&s[i], i ? "keel-api-vm0" : "keel-api-vm1") == 0,
		      what, "keel hello x%d, KEEL-TEST-END x%d; tail: %s",
		      serial_count(&s[i], "keel hello"),
		      serial_count(&s[i], "KEEL-TEST-END"),
		      serial_tail(&s[i], 200));
	}
	for (i = 0; i < 2; i++) {
		keel_vm_free(vm[i]);
		serial_close(&s[i], 5000);
	}
}

/* ------------------------------------------------------------------ sandbox */

/* What the state callback of a sandboxed VM tries, and saw. */
static int cb_socket_errno = -1;

static void forbidden_cb(keel_vm *vm, keel_vm_state state, void *opaque)
{
	int fd;

	if (state != KEEL_VM_RUNNING || cb_socket_errno >= 0)
		return;
	/* The event thread's filter has no socket(): killed, or ENOSYS in log mode. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cb_socket_errno = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
}

/*
 * In a child process: a VM over HELLO_ELF in `mode` whose state callback
 * calls socket() once the VM runs.  The child exits 0 when the VM ended
 * with the guest's reset and the callback saw ENOSYS, 1 otherwise (if it
 * is still alive).  Returns the child's wait status; its stderr in `out`.
 */
static int run_forbidden(keel_sandbox_mode mode, char *out, size_t out_len)
{
	int p[2], status = 0;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		keel_serial_attachment *att = keel_serial_attachment_new_fds(-1, -1, NULL);
		keel_config *cfg = make_config(hello_path, NULL, att, KEEL_RESET_STOP);
		keel_error *err = NULL;
		keel_stop_reason why;
		keel_vm *vm;

		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		if (!cfg)
			_exit(2);
		keel_config_set_sandbox(cfg, mode);
		vm = keel_vm_new(cfg, &err);
		keel_config_free(cfg);
		if (!vm) {
			fprintf(stderr, "keel_vm_new: %s\n", msg(err));
			_exit(keel_error_get_code(err) == KEEL_ERR_KVM ? 77 : 2);
		}
		keel_vm_set_state_callback(vm, forbidden_cb, NULL);
		if (keel_vm_start(vm, &err) < 0) {
			fprintf(stderr, "keel_vm_start: %s\n", msg(err));
			_exit(2);
		}
		why = keel_vm_wait(vm, WAIT_MS, NULL);
		fprintf(stderr, "child: VM ended: %s; socket() in the callback: %s\n",
			keel_stop_reason_name(why), strerror(cb_socket_errno));
		keel_vm_free(vm);
		_exit(why == KEEL_STOP_RESET && cb_socket_errno == ENOSYS ? 0 : 1);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	while ((r = read(p[0], out + n, out_len - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void test_sandbox(void)
{
	static const char line[] = "keel: sandbox: keel-event called socket (41), which its filter forbids; ";
	char out[4096];
	int st;

	st = run_forbidden(KEEL_SANDBOX_ON, out, sizeof(out));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		note("sandbox: skipped (no usable KVM): %s", out);
		return;
	}
	check(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGSYS,
	      "sandbox on: a forbidden call from the state callback ends the process with status 128+SIGSYS",
	      "wait status 0x%x, stderr: %s", st, out);
	check(strstr(out, line) && strstr(out, "killing the process\n") &&
	      !strstr(out, "child: VM ended"),
	      "sandbox on: one line names the thread and the call",
	      "stderr: %s", out);

	st = run_forbidden(KEEL_SANDBOX_LOG, out, sizeof(out));
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "sandbox log mode: the call fails with ENOSYS and the VM goes on to the guest's reset",
	      "wait status 0x%x, stderr: %s", st, out);
	check(strstr(out, line) && strstr(out, "it fails with ENOSYS (log mode)\n"),
	      "sandbox log mode: the line says the call failed", "stderr: %s", out);
}

/* Limits only the host knows: checked by validation, before anything is allocated. */
static void test_host_limits(void)
{
	keel_serial_attachment *att = keel_serial_attachment_new_fds(-1, -1, NULL);
	keel_config *cfg = make_config(hello_path, NULL, att, KEEL_RESET_STOP);
	keel_error *err = NULL;
	int rc;

	if (!cfg)
		return;
	/* 512 GiB: more than the nested machine's RAM and swap, within KVM's address bits. */
	keel_config_set_memory_size(cfg, 512ULL << 30);
	rc = keel_config_validate(cfg, &err);
	check(rc < 0 && err && keel_error_get_code(err) == KEEL_ERR_TOO_LARGE &&
	      (strstr(msg(err), "exceeds this host's RAM and swap") ||
	       strstr(msg(err), "address bits KVM offers")),
	      "a memory size the host cannot hold fails validation with KEEL_ERR_TOO_LARGE",
	      "rc %d: %s", rc, msg(err));
	clear_err(&err);
	keel_config_free(cfg);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s HELLO_ELF SPIN_ELF\n", argv[0]);
		return 2;
	}
	hello_path = argv[1];
	spin_path = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KEEL_SANDBOX") && !strcmp(getenv("KEEL_SANDBOX"), "log"))
		sandbox_mode = KEEL_SANDBOX_LOG;
	else if (getenv("KEEL_SANDBOX") && !strcmp(getenv("KEEL_SANDBOX"), "off"))
		sandbox_mode = KEEL_SANDBOX_OFF;
	check(keel_version() && keel_version()[0], "keel_version", "empty");
	note("keel %s, sandbox %s", keel_version(), sandbox_mode == KEEL_SANDBOX_ON ? "on" :
	     sandbox_mode == KEEL_SANDBOX_LOG ? "log" : "off");

	/* First, while this process has no thread of its own to fork with. */
	test_sandbox();

	test_lifecycle();
	test_pause_resume();
	test_restart();
	test_two_vms();
	test_host_limits();

	printf("1..%d\n", n_tests);
	printf("# %d of %d failed\n", n_fail, n_tests);
	return n_fail ? 1 : 0;
}
