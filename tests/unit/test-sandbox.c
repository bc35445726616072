// SPDX-License-Identifier: MIT
/*
 * The sandbox's filters on this host's kernel, without KVM: each case runs
 * in a child process, where a keel thread (thread_spawn) with a filter
 * makes allowed and forbidden calls.  Kill mode: the child ends with status
 * 128 + SIGSYS and one line naming the thread and the call; log mode: the
 * call fails with ENOSYS, the line says so, and the thread goes on.  Also:
 * argument checks, the x32 and i386 ABIs, the calls that refuse to run on
 * a filtered thread, and docs/security.md listing exactly the filters.
 *
 *   test-sandbox             the tests (run from the source root)
 *   test-sandbox --describe  the filters as docs/security.md shows them
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <keel/keel.h>

#include "core/sandbox.h"
#include "core/thread.h"
#include "check.h"

/* ------------------------------------------------------------ the harness */

/* Results the child's thread reports: one byte per check, 'y' or 'n'. */
static int report_fd;

static void report(bool ok)
{
	char c = ok ? 'y' : 'n';

	if (write(report_fd, &c, 1) < 0) {
		/* The parent counts what arrives. */
	}
}

static void child_exit(int code)
{
	syscall(SYS_exit_group, code);  /* no thread teardown under the filter */
}

struct child {
	int status;             /* waitpid()'s */
	char err[4096];         /* the child's stderr */
	char checks[256];       /* its reports */
};

/*
 * Runs body() on a keel thread named keel-test with the filter of `cls` in
 * `mode`, in a child process; fills `c`.
 */
static void run_child(int mode, enum sandbox_class cls, void *(*body)(void *), struct child *c)
{
	int errp[2], repp[2];
	pid_t pid;
	size_t n = 0, m = 0;
	ssize_t r;

	memset(c, 0, sizeof(*c));
	if (pipe(errp) < 0 || pipe(repp) < 0) {
		perror("pipe");
		exit(1);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		const struct thread_spec spec = { .name = "keel-test", .sandbox = mode, .cls = cls };
		keel_error *err = NULL;
		pthread_t t;

		dup2(errp[1], STDERR_FILENO);
		close(errp[0]);
		close(repp[0]);
		report_fd = repp[1];
		if (sandbox_prepare(mode, &err) < 0 || thread_spawn(&t, &spec, body, NULL, &err) < 0) {
			fprintf(stderr, "set-up: %s\n", keel_error_get_message(err));
			_exit(99);
		}
		pthread_join(t, NULL);
		_exit(98);              /* bodies end the process themselves */
	}
	close(errp[1]);
	close(repp[1]);
	while ((r = read(errp[0], c->err + n, sizeof(c->err) - 1 - n)) > 0)
		n += (size_t)r;
	while ((r = read(repp[0], c->checks + m, sizeof(c->checks) - 1 - m)) > 0)
		m += (size_t)r;
	close(errp[0]);
	close(repp[0]);
	waitpid(pid, &c->status, 0);
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define CHECK_CHILD_EXIT(c, code) do { \
	CHECK(WIFEXITED((c)->status) && WEXITSTATUS((c)->status) == (code)); \
	if (!WIFEXITED((c)->status) || WEXITSTATUS((c)->status) != (code)) \
		fprintf(stderr, "  status 0x%x, stderr: %s\n", (c)->status, (c)->err); \
} while (0)

#define CHECK_ALL_YES(c) do { \
	CHECK((c)->checks[0] && !strchr((c)->checks, 'n')); \
	if (!(c)->checks[0] || strchr((c)->checks, 'n')) \
		fprintf(stderr, "  checks: \"%s\", stderr: %s\n", (c)->checks, (c)->err); \
} while (0)

/* A forbidden call that fails with ENOSYS (log mode). */
static bool enosys(long ret)
{
	return ret == -1 && errno == ENOSYS;
}

/* ------------------------------------------------------------------ cases */

static void *call_getppid(void *arg)
{
	syscall(SYS_getppid);
	child_exit(0);
	return NULL;
}

/* Kill mode: every class forbids getppid; the line names it and the thread. */
static void test_kill(void)
{
	for (int cls = 0; cls < SANDBOX_NR_CLASSES; cls++) {
		struct child c;

		run_child(KEEL_SANDBOX_ON, cls, call_getppid, &c);
		CHECK_CHILD_EXIT(&c, 128 + SIGSYS);
		CHECK(!strcmp(c.err, "keel: sandbox: keel-test called getppid (110), which its filter forbids; killing the process\n"));
		if (strcmp(c.err, "keel: sandbox: keel-test called getppid (110), which its filter forbids; killing the process\n"))
			fprintf(stderr, "  class %s: stderr \"%s\"\n", sandbox_class_name(cls), c.err);
	}
	printf("ok kill mode (%d classes)\n", SANDBOX_NR_CLASSES);
}

static int parent_pid;

static long getppid_raw(void)
{
	return parent_pid;      /* getppid() itself is forbidden */
}

static void *log_body(void *arg)
{
	uint64_t one = 1;
	int efd[2];

	report(enosys(syscall(SYS_getppid)));
	report(enosys(syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0)));
	/* The thread goes on: allowed calls still work. */
	report(pipe(efd) < 0 && errno == ENOSYS);       /* pipe2 is not allowed either */
	report(write(report_fd, "", 0) == 0);
	report(syscall(SYS_gettid) > 0);
	/* Signals to this process's threads only. */
	report(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0) == 0);
	report(enosys(syscall(SYS_tgkill, getppid_raw(), 1, 0)));
	(void)one;
	child_exit(0);
	return NULL;
}

/* Log mode: the call fails with ENOSYS, one line each, the thread goes on. */
static void test_log(void)
{
	struct child c;

	run_child(KEEL_SANDBOX_LOG, SANDBOX_NET, log_body, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(lines(c.err) == 4);
	CHECK(strstr(c.err, "keel: sandbox: keel-test called getppid (110), which its filter forbids; it fails with ENOSYS (log mode)\n"));
	CHECK(strstr(c.err, "keel-test called tgkill (234)"));
	CHECK(strstr(c.err, "keel-test called socket (41)"));
	CHECK(strstr(c.err, "keel-test called pipe2 (293)"));
	printf("ok log mode\n");
}

static void *nat_args(void *arg)
{
	int fd, s, n = 0;
	void *p;

	/* Read-only opens (resolv.conf) pass, any writing open does not. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
	report(fd >= 0);
	report(enosys(syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY)));
	report(enosys(syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR)));
	report(enosys(syscall(SYS_openat, AT_FDCWD, "/tmp", O_RDONLY | __O_TMPFILE)));
	report(enosys(syscall(SYS_open, "/dev/null", O_RDONLY)));
	/* IPv4 and IPv6 sockets only. */
	s = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	report(s >= 0);
	report(enosys(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0)));
	report(enosys(syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0)));
	/* ioctl by request number. */
	report(syscall(SYS_ioctl, s, FIONREAD, &n) == 0);
	report(enosys(syscall(SYS_ioctl, fd, TCGETS, NULL)));
	report(enosys(syscall(SYS_ioctl, fd, (unsigned long)KVM_RUN, 0)));
	/* Memory, never executable. */
	p = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	report(p != MAP_FAILED);
	report(enosys(syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_EXEC)));
	report(enosys(syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	report(syscall(SYS_close, fd) == 0);
	child_exit(0);
	return NULL;
}

static void test_arguments(void)
{
	struct child c;

	run_child(KEEL_SANDBOX_LOG, SANDBOX_NAT, nat_args, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(strlen(c.checks) == 15);
	CHECK(lines(c.err) == 10);
	CHECK(strstr(c.err, "keel-test called openat (257)"));
	CHECK(strstr(c.err, "keel-test called ioctl (16)"));
	CHECK(strstr(c.err, "keel-test called mmap (9)"));
	printf("ok argument checks\n");
}

/* The ioctl checks on a descriptor opened before the filter. */
static int devnull = -1;

static void *kvm_ioctls_fd(void *arg)
{
	int fd = devnull;

	report(syscall(SYS_ioctl, fd, (unsigned long)KVM_RUN, 0) == -1 && errno == ENOTTY);
	report(syscall(SYS_ioctl, fd, (unsigned long)KVM_GET_REGS, 0) == -1 && errno == ENOTTY);
	report(enosys(syscall(SYS_ioctl, fd, (unsigned long)KVM_SET_REGS, 0)));
	report(enosys(syscall(SYS_ioctl, fd, (unsigned long)KVM_CREATE_VCPU, 0)));
	report(syscall(SYS_ioctl, fd, (1UL << 32) | (unsigned long)KVM_RUN, 0) == -1 &&
	       errno == ENOTTY);
	report(enosys(syscall(SYS_ioctl, fd, (1UL << 32) | (unsigned long)KVM_SET_REGS, 0)));
	child_exit(0);
	return NULL;
}

static void *event_ioctls_fd(void *arg)
{
	int fd = devnull;

	report(enosys(syscall(SYS_ioctl, fd, (unsigned long)KVM_RUN, 0)));
	report(syscall(SYS_ioctl, fd, (unsigned long)KVM_SET_REGS, 0) == -1 && errno == ENOTTY);
	report(enosys(syscall(SYS_ioctl, fd, (unsigned long)TUNSETOFFLOAD, 0)));
	child_exit(0);
	return NULL;
}

static void test_ioctl_requests(void)
{
	struct child c;

	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	run_child(KEEL_SANDBOX_LOG, SANDBOX_VCPU, kvm_ioctls_fd, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(strlen(c.checks) == 6 && lines(c.err) == 3);
	run_child(KEEL_SANDBOX_LOG, SANDBOX_EVENT, event_ioctls_fd, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(strlen(c.checks) == 3 && lines(c.err) == 2);
	close(devnull);
	printf("ok ioctl requests by class\n");
}

static void *quiet_open(void *arg)
{
	/* glibc's own reads (malloc's overcommit check) fail quietly... */
	report(syscall(SYS_openat, AT_FDCWD, "/proc/sys/vm/overcommit_memory",
		       O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES);
	/* ... any other open is a violation. */
	report(enosys(syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY)));
	report(enosys(syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC)));
	child_exit(0);
	return NULL;
}

/* Read-only close-on-exec opens fail with EACCES without a line; others are violations. */
static void test_quiet_open(void)
{
	for (int cls = 0; cls < SANDBOX_NR_CLASSES; cls++) {
		struct child c;

		if (cls == SANDBOX_NAT)
			continue;       /* may open files read-only: test_arguments() */
		run_child(KEEL_SANDBOX_LOG, cls, quiet_open, &c);
		CHECK_CHILD_EXIT(&c, 0);
		CHECK_ALL_YES(&c);
		CHECK(strlen(c.checks) == 3 && lines(c.err) == 2);
	}
	printf("ok glibc's read-only opens fail with EACCES\n");
}

static void *x32_call(void *arg)
{
	/*
	 * getpid through the x32 ABI: same architecture, bit 30 in the number.
	 * (No allowed number has that bit, so the filter's own x32 check is
	 * defence in depth: this passes without it too.)
	 */
	report(enosys(syscall(0x40000000L | SYS_getpid)));
	child_exit(0);
	return NULL;
}

static long int80_getpid(void)
{
	long ret;

	/* i386 getpid (20) through the 32-bit entry of a 64-bit process. */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "rcx", "r11");
	return ret;
}

static void *i386_call(void *arg)
{
	report(int80_getpid() == -ENOSYS);
	child_exit(0);
	return NULL;
}

static void *i386_probe(void *arg)
{
	report(int80_getpid() == getpid());
	child_exit(0);
	return NULL;
}

static void test_other_abis(void)
{
	struct child c;

	run_child(KEEL_SANDBOX_LOG, SANDBOX_EVENT, x32_call, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(!strcmp(c.err, "keel: sandbox: keel-test called x32 system call 39, which its filter forbids; it fails with ENOSYS (log mode)\n"));
	/* int 0x80 needs the kernel's IA-32 emulation: probe without a filter. */
	run_child(KEEL_SANDBOX_OFF, SANDBOX_EVENT, i386_probe, &c);
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) || strcmp(c.checks, "y")) {
		printf("ok other ABIs (x32; i386 skipped: no IA-32 emulation here)\n");
		return;
	}
	/*
	 * In the NIC's filter, which allows writev (x86-64's 20): only the
	 * architecture check keeps i386's getpid (its 20) out.
	 */
	run_child(KEEL_SANDBOX_ON, SANDBOX_NET, i386_call, &c);
	CHECK_CHILD_EXIT(&c, 128 + SIGSYS);
	CHECK(!strcmp(c.err, "keel: sandbox: keel-test called system call 20 of another architecture (0x40000003), which its filter forbids; killing the process\n"));
	if (strcmp(c.err, "keel: sandbox: keel-test called system call 20 of another architecture (0x40000003), which its filter forbids; killing the process\n"))
		fprintf(stderr, "  stderr \"%s\"\n", c.err);
	printf("ok other ABIs (x32, i386)\n");
}

static void *refuse_body(void *arg)
{
	keel_error *err = NULL;
	keel_config *cfg = keel_config_new(NULL);

	report(sandbox_current() == SANDBOX_EVENT);
	report(keel_vm_new(cfg, &err) == NULL && err &&
	       keel_error_get_code(err) == KEEL_ERR_STATE &&
	       strstr(keel_error_get_message(err), "keel_vm_new()") &&
	       strstr(keel_error_get_message(err), "keel-test"));
	keel_error_free(err);
	err = NULL;
	report(keel_config_validate(cfg, &err) < 0 && err &&
	       keel_error_get_code(err) == KEEL_ERR_STATE);
	keel_error_free(err);
	err = NULL;
	report(!keel_serial_attachment_new_file("/tmp/x", &err) &&
	       keel_error_get_code(err) == KEEL_ERR_STATE);
	keel_error_free(err);
	child_exit(0);
	return NULL;
}

/* Calls that open files or start threads refuse to run on a filtered thread. */
static void test_refused(void)
{
	struct child c;

	CHECK(sandbox_current() == -1);
	CHECK(sandbox_refuse_filtered("x", NULL) == 0);
	run_child(KEEL_SANDBOX_ON, SANDBOX_EVENT, refuse_body, &c);
	CHECK_CHILD_EXIT(&c, 0);
	CHECK_ALL_YES(&c);
	CHECK(strlen(c.checks) == 4);
	CHECK(c.err[0] == '\0');
	printf("ok refused on filtered threads\n");
}

static void test_programs(void)
{
	struct sock_filter *prog = calloc(1024, 8);
	keel_error *err = NULL;

	for (int cls = 0; cls < SANDBOX_NR_CLASSES; cls++) {
		int n = sandbox_build(cls, prog, 1024, 1);

		CHECK(n > 10 && n < 1024);
		printf("  %s: %d instructions\n", sandbox_class_name(cls), n);
	}
	CHECK(sandbox_build(SANDBOX_NR_CLASSES, prog, 1024, 1) < 0);
	CHECK(sandbox_build(SANDBOX_VCPU, prog, 20, 1) < 0);
	free(prog);
	CHECK(!strcmp(sandbox_syscall_name(257), "openat"));
	CHECK(!strcmp(sandbox_syscall_name(0), "read"));
	CHECK(sandbox_syscall_name(-1) == NULL && sandbox_syscall_name(100000) == NULL);
	CHECK(sandbox_check(KEEL_SANDBOX_ON, NULL) == 0);
	CHECK(sandbox_check(7, &err) < 0);
	CHECK_ERR(err, KEEL_ERR_INVALID, "unknown sandbox mode 7");
	printf("ok programs\n");
}

/* ------------------------------------------------------------------ docs */

static void describe_all(FILE *out)
{
	for (int cls = 0; cls < SANDBOX_NR_CLASSES; cls++) {
		fprintf(out, "<!-- sandbox-filter %s -->\n```\n", sandbox_class_name(cls));
		sandbox_describe(cls, out);
		fprintf(out, "```\n<!-- /sandbox-filter -->\n");
	}
}

/* docs/security.md shows each filter exactly as sandbox_describe() writes it. */
static void test_docs(void)
{
	FILE *f = fopen("docs/security.md", "r");
	static char doc[1 << 17];
	size_t n;

	CHECK(f != NULL);
	if (!f)
		return;
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
	for (int cls = 0; cls < SANDBOX_NR_CLASSES; cls++) {
		char want[8192], head[64];
		FILE *m = fmemopen(want, sizeof(want), "w");
		const char *at;

		fprintf(m, "<!-- sandbox-filter %s -->\n```\n", sandbox_class_name(cls));
		sandbox_describe(cls, m);
		fprintf(m, "```\n<!-- /sandbox-filter -->\n");
		fclose(m);
		snprintf(head, sizeof(head), "<!-- sandbox-filter %s -->", sandbox_class_name(cls));
		at = strstr(doc, head);
		CHECK(at && !strncmp(at, want, strlen(want)));
		if (!at || strncmp(at, want, strlen(want)))
			fprintf(stderr, "docs/security.md: the %s filter should read:\n%s",
				sandbox_class_name(cls), want);
	}
	printf("ok docs/security.md lists the filters\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--describe")) {
		describe_all(stdout);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent_pid = getpid();
	test_programs();
	test_kill();
	test_log();
	test_arguments();
	test_ioctl_requests();
	test_quiet_open();
	test_other_abis();
	test_refused();
	test_docs();
	return test_exit();
}
