// SPDX-License-Identifier: MIT
/*
 * The sandbox (sandbox.h, docs/security.md): the allowed calls of each
 * kind of keel thread, their BPF programs, and the SIGSYS handler.
 *
 * Why hand-written BPF and not libseccomp: keel needs exact system call
 * numbers and checks of one 32-bit argument (every argument it checks is
 * an int or an unsigned int to the kernel, which ignores the upper half),
 * nothing libseccomp would add; the program is built in a few dozen lines,
 * on the calling thread's stack, with no allocation and no dependency, and
 * the unit test runs every filter on the host (tests/unit/test-sandbox.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <keel/keel.h>

#include "core/sandbox.h"
#include "core/util.h"
#include "syscall_names.h"

#define X32_SYSCALL_BIT 0x40000000U
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1           /* si_code of a seccomp SIGSYS (asm-generic/siginfo.h) */
#endif
#define MAX_INSNS 1024

/* ------------------------------------------------------------- the lists */

enum rule_kind {
	R_ANY,          /* allowed whatever the arguments */
	R_IN,           /* argument `arg` (low 32 bits) is one of `vals` */
	R_CLEAR,        /* argument `arg` (low 32 bits) has no bit of `mask` set */
	R_ERRNO,        /* not allowed; fails with `err` (no SIGSYS) when `arg` is one of `vals` */
	R_SELF,         /* argument `arg` is this process's pid (at sandbox_enter()) */
};

struct sb_val {
	uint32_t v;
	const char *name;
};

struct sb_rule {
	int nr;
	const char *name;
	uint8_t kind;
	uint8_t arg;
	uint32_t mask;                  /* R_CLEAR */
	const char *mask_name;
	const struct sb_val *vals;      /* R_IN, R_ERRNO */
	unsigned int nvals;
	int err;                        /* R_ERRNO */
	const char *err_name;
};

struct sb_group {
	const struct sb_rule *rules;
	unsigned int n;
};

#define ANY(sys) { .nr = __NR_##sys, .name = #sys, .kind = R_ANY }
#define IN(sys, a, list) { .nr = __NR_##sys, .name = #sys, .kind = R_IN, .arg = (a), \
			   .vals = (list), .nvals = ARRAY_SIZE(list) }
#define CLEAR(sys, a, m) { .nr = __NR_##sys, .name = #sys, .kind = R_CLEAR, .arg = (a), \
			   .mask = (m), .mask_name = #m }
#define ERRNO_IF(sys, a, list, e) { .nr = __NR_##sys, .name = #sys, .kind = R_ERRNO, \
				     .arg = (a), .vals = (list), .nvals = ARRAY_SIZE(list), \
				     .err = (e), .err_name = #e }
#define SELF(sys, a) { .nr = __NR_##sys, .name = #sys, .kind = R_SELF, .arg = (a) }
#define V(x) { (uint32_t)(x), #x }
#define GROUP(r) { (r), ARRAY_SIZE(r) }

/*
 * Every thread: memory (never executable), locks, its own exit, time,
 * eventfd signalling, the kick and SIGSYS handlers' return, and the
 * credential calls glibc makes on every thread of the process when one
 * thread changes them (setuid() and friends: its SIGSETXID handler) -- the
 * CLI's --user; they can only lower privileges once keel runs unprivileged.
 */
static const struct sb_rule common_rules[] = {
	ANY(futex),
	ANY(read),
	ANY(write),
	ANY(clock_gettime),
	ANY(clock_nanosleep),
	ANY(nanosleep),
	ANY(gettimeofday),
	ANY(sched_yield),
	CLEAR(mmap, 2, PROT_EXEC),
	CLEAR(mprotect, 2, PROT_EXEC),
	ANY(munmap),
	ANY(mremap),
	ANY(madvise),
	ANY(brk),
	ANY(rt_sigreturn),
	ANY(rt_sigprocmask),
	ANY(restart_syscall),
	ANY(getpid),
	ANY(gettid),
	SELF(tgkill, 0),                /* pthread_kill(), abort(): this process only */
	ANY(exit),
	ANY(exit_group),
	ANY(setuid),
	ANY(setgid),
	ANY(setreuid),
	ANY(setregid),
	ANY(setresuid),
	ANY(setresgid),
	ANY(setgroups),
};

/*
 * glibc reads a few files for itself, from whichever thread needs them:
 * free() may open /proc/sys/vm/overcommit_memory (once per process, when a
 * thread's heap shrinks), the first arenas /sys/devices/system/cpu/online.
 * Such opens (read-only, close-on-exec) fail with EACCES, which glibc
 * handles (it then keeps the memory, or guesses); every other open is a
 * violation.  Not for NAT threads, which may open files read-only.
 */
static const struct sb_val quiet_open_flags[] = {
	V(O_RDONLY | O_CLOEXEC),
};

static const struct sb_rule quiet_open_rules[] = {
	ERRNO_IF(openat, 2, quiet_open_flags, EACCES),
};

/* Serial and console output that may block (core/serial_io.c). */
static const struct sb_rule serial_out_rules[] = {
	ANY(poll),
	ANY(rt_sigpending),
	ANY(rt_sigtimedwait),
};

/* What a vCPU thread asks of KVM while it runs and handles exits. */
static const struct sb_val vcpu_ioctls[] = {
	V(KVM_RUN),
	V(KVM_IRQ_LINE),                /* legacy devices' interrupt lines */
	V(KVM_SET_GSI_ROUTING),         /* MSI-X vectors the guest programs */
	V(KVM_IRQFD),
	V(KVM_IOEVENTFD),               /* BARs the guest moves */
	V(KVM_GET_MP_STATE),            /* is the guest stuck (vcpu_query_stuck) */
	V(KVM_GET_REGS),                /* ... and error reports */
	V(KVM_GET_SREGS),
	V(KVM_TRANSLATE),
	V(KVM_SET_USER_MEMORY_REGION),  /* UEFI flash: its array leaves and returns */
};

static const struct sb_rule vcpu_rules[] = {
	IN(ioctl, 1, vcpu_ioctls),
	ANY(timerfd_settime),           /* RTC and PM timer registers */
	ANY(epoll_ctl),                 /* input flow control */
	ANY(msync),                     /* UEFI variable store written */
};

/*
 * The event thread resets the machine for a guest reboot: the irqchip, the
 * PIT and every vCPU's registers, guest RAM cleared, the boot files read
 * again through the descriptors kept since VM creation.
 */
static const struct sb_val event_ioctls[] = {
	V(KVM_IRQ_LINE),
	V(KVM_SET_GSI_ROUTING),
	V(KVM_IRQFD),
	V(KVM_IOEVENTFD),
	V(KVM_SET_IRQCHIP),
	V(KVM_SET_PIT2),
	V(KVM_SET_CPUID2),
	V(KVM_SET_MSRS),
	V(KVM_SET_FPU),
	V(KVM_GET_LAPIC),
	V(KVM_SET_LAPIC),
	V(KVM_GET_SREGS),
	V(KVM_SET_SREGS),
	V(KVM_SET_REGS),
	V(KVM_GET_MP_STATE),
	V(KVM_SET_MP_STATE),
	V(KVM_SET_USER_MEMORY_REGION),  /* UEFI flash back in read-array mode */
};

static const struct sb_rule event_rules[] = {
	ANY(msync),
	ANY(epoll_wait),
	ANY(epoll_ctl),
	ANY(timerfd_settime),
	ANY(getrandom),                 /* virtio-rng */
	IN(ioctl, 1, event_ioctls),
	ANY(readv),                     /* virtio-console input */
	ANY(pread64),                   /* the boot files, at a reset */
	ANY(lseek),
	ANY(fallocate),                 /* hugetlbfs RAM cleared at a reset */
};

/*
 * Device I/O threads raise their interrupts through irqfds (MSI-X: an
 * eventfd write) or, on a line (INTx without MSI-X, virtio-mmio), here.
 */
static const struct sb_val irq_ioctls[] = {
	V(KVM_IRQ_LINE),
};

static const struct sb_rule irq_rules[] = {
	IN(ioctl, 1, irq_ioctls),
};

/* A disk: one io_uring (restricted to keel's operations: block/image.c). */
static const struct sb_val blk_ioctls[] = {
	V(BLKDISCARD),                  /* DISCARD on a host block device */
};

static const struct sb_rule blk_rules[] = {
	ANY(io_uring_enter),
	IN(ioctl, 1, blk_ioctls),
	ANY(close),                     /* the ring, when the disk goes */
};

/* A NIC on a TAP or a socket: frames in and out, the TAP's offloads. */
static const struct sb_val net_ioctls[] = {
	V(TUNSETOFFLOAD),
};

static const struct sb_rule net_rules[] = {
	ANY(epoll_wait),
	ANY(epoll_ctl),
	ANY(readv),
	ANY(writev),
	ANY(sendto),
	ANY(recvfrom),
	ANY(sendmsg),
	ANY(recvmsg),
	IN(ioctl, 1, net_ioctls),
};

/*
 * NAT: libslirp opens host sockets for the guest's connections and port
 * forwards (IPv4 and IPv6 families only), and reads /etc/resolv.conf for
 * DNS forwarding (stat() it about once a second while the guest sends DNS
 * queries, open it read-only when it changed): seccomp cannot check a
 * path, so this thread may open any file read-only.
 */
static const struct sb_val nat_families[] = {
	V(AF_INET),
	V(AF_INET6),
};

static const struct sb_val nat_ioctls[] = {
	V(FIONREAD),
	V(FIONBIO),
};

static const struct sb_rule nat_rules[] = {
	IN(socket, 0, nat_families),
	ANY(connect),
	ANY(bind),
	ANY(listen),
	ANY(accept),
	ANY(accept4),
	ANY(setsockopt),
	ANY(getsockopt),
	ANY(getsockname),
	ANY(getpeername),
	ANY(shutdown),
	ANY(close),
	ANY(fcntl),
	IN(ioctl, 1, nat_ioctls),
	CLEAR(openat, 2, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE | O_PATH),
	ANY(newfstatat),
	ANY(fstat),
};

static const struct sb_group g_common = GROUP(common_rules);
static const struct sb_group g_serial = GROUP(serial_out_rules);
static const struct sb_group g_vcpu = GROUP(vcpu_rules);
static const struct sb_group g_event = GROUP(event_rules);
static const struct sb_group g_blk = GROUP(blk_rules);
static const struct sb_group g_net = GROUP(net_rules);
static const struct sb_group g_nat = GROUP(nat_rules);
static const struct sb_group g_irq = GROUP(irq_rules);
static const struct sb_group g_quiet_open = GROUP(quiet_open_rules);

/* Each class's groups, the hottest calls first: the filter tests in this order. */
static const struct sb_group *const class_groups[SANDBOX_NR_CLASSES][6] = {
	[SANDBOX_VCPU] = { &g_vcpu, &g_common, &g_serial, &g_quiet_open },
	[SANDBOX_EVENT] = { &g_event, &g_common, &g_serial, &g_quiet_open },
	[SANDBOX_BLK] = { &g_blk, &g_irq, &g_common, &g_quiet_open },
	[SANDBOX_NET] = { &g_net, &g_irq, &g_common, &g_quiet_open },
	[SANDBOX_NAT] = { &g_net, &g_nat, &g_irq, &g_common },
};

static const char *const class_names[SANDBOX_NR_CLASSES] = {
	[SANDBOX_VCPU] = "vcpu", [SANDBOX_EVENT] = "event", [SANDBOX_BLK] = "blk",
	[SANDBOX_NET] = "net", [SANDBOX_NAT] = "nat",
};

const char *sandbox_class_name(enum sandbox_class cls)
{
	return (unsigned int)cls < SANDBOX_NR_CLASSES ? class_names[cls] : "?";
}

const char *sandbox_syscall_name(long nr)
{
	if (nr < 0 || (unsigned long)nr >= ARRAY_SIZE(syscall_names))
		return NULL;
	return syscall_names[nr];
}

/* ------------------------------------------------------- merging the lists */

/*
 * The merged rule for each system call of a class, in order of first
 * appearance: an R_ANY anywhere wins; R_IN lists are joined.
 */
#define MAX_SYSCALLS 160
#define MAX_VALS 64

struct merged {
	int nr;
	const struct sb_rule *first;
	uint8_t kind;
	uint8_t arg;
	uint32_t mask;
	int err;
	const struct sb_val *vals[MAX_VALS];
	unsigned int nvals;
};

static int merge(enum sandbox_class cls, struct merged *m, unsigned int max)
{
	unsigned int n = 0;

	if ((unsigned int)cls >= SANDBOX_NR_CLASSES)
		return -1;
	for (unsigned int g = 0; g < ARRAY_SIZE(class_groups[cls]) && class_groups[cls][g]; g++) {
		const struct sb_group *grp = class_groups[cls][g];

		for (unsigned int i = 0; i < grp->n; i++) {
			const struct sb_rule *r = &grp->rules[i];
			struct merged *e = NULL;

			for (unsigned int k = 0; k < n; k++)
				if (m[k].nr == r->nr)
					e = &m[k];
			if (!e) {
				if (n == max)
					return -1;
				e = &m[n++];
				memset(e, 0, sizeof(*e));
				e->nr = r->nr;
				e->first = r;
				e->kind = r->kind;
				e->arg = r->arg;
				e->mask = r->mask;
				e->err = r->err;
			} else if (e->kind == R_ERRNO || r->kind == R_ERRNO) {
				return -1;      /* a call both allowed and refused: a mistake */
			} else if (e->kind == R_ANY || r->kind == R_ANY) {
				e->kind = R_ANY;
				continue;
			} else if (e->kind != r->kind || e->arg != r->arg || r->kind == R_SELF ||
				   (r->kind == R_CLEAR && e->mask != r->mask)) {
				return -1;      /* not expressible: a mistake in the lists */
			}
			if (r->kind != R_IN && r->kind != R_ERRNO)
				continue;
			for (unsigned int v = 0; v < r->nvals; v++) {
				bool dup = false;

				for (unsigned int k = 0; k < e->nvals; k++)
					dup |= e->vals[k]->v == r->vals[v].v;
				if (dup)
					continue;
				if (e->nvals == MAX_VALS)
					return -1;
				e->vals[e->nvals++] = &r->vals[v];
			}
		}
	}
	return (int)n;
}

/* ------------------------------------------------------------------- BPF */

#define DATA_NR         offsetof(struct seccomp_data, nr)
#define DATA_ARCH       offsetof(struct seccomp_data, arch)
/* The low half of argument i (x86-64 is little-endian). */
#define DATA_ARG_LO(i)  (offsetof(struct seccomp_data, args) + 8 * (i))

#define RET_TRAP        (SECCOMP_RET_TRAP | 0)

struct bpf_out {
	struct sock_filter *p;
	size_t n, max;
	bool overflow;
};

static void emit(struct bpf_out *o, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (o->n == o->max) {
		o->overflow = true;
		return;
	}
	o->p[o->n++] = (struct sock_filter){ code, jt, jf, k };
}

int sandbox_build(enum sandbox_class cls, struct sock_filter *prog, size_t max, uint32_t pid)
{
	struct merged m[MAX_SYSCALLS];
	struct bpf_out o = { .p = prog, .max = max };
	int n = merge(cls, m, MAX_SYSCALLS);

	if (n < 0)
		return -1;
	/* x86-64 only: i386 calls (int 0x80) have another table. */
	emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, DATA_ARCH);
	emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
	/* The x32 ABI shares the architecture, with bit 30 in the number. */
	emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, DATA_NR);
	emit(&o, BPF_JMP | BPF_JGE | BPF_K, 0, 1, X32_SYSCALL_BIT);
	emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);

	for (int i = 0; i < n; i++) {
		const struct merged *e = &m[i];

		switch (e->kind) {
		case R_ANY:
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)e->nr);
			emit(&o, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
			break;
		case R_IN:
			/* [ld arg][jeq v0]..[jeq vk-1][ret trap][ret allow] */
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(e->nvals + 3), (uint32_t)e->nr);
			emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)DATA_ARG_LO(e->arg));
			for (unsigned int v = 0; v < e->nvals; v++)
				emit(&o, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(e->nvals - v), 0,
				     e->vals[v]->v);
			emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
			emit(&o, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
			break;
		case R_ERRNO:
			/* [ld arg][jeq v0]..[jeq vk-1][ret trap][ret errno] */
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(e->nvals + 3), (uint32_t)e->nr);
			emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)DATA_ARG_LO(e->arg));
			for (unsigned int v = 0; v < e->nvals; v++)
				emit(&o, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(e->nvals - v), 0,
				     e->vals[v]->v);
			emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
			emit(&o, BPF_RET | BPF_K, 0, 0,
			     SECCOMP_RET_ERRNO | ((uint32_t)e->err & SECCOMP_RET_DATA));
			break;
		case R_SELF:
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)e->nr);
			emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)DATA_ARG_LO(e->arg));
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, pid);
			emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
			emit(&o, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
			break;
		case R_CLEAR:
			emit(&o, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)e->nr);
			emit(&o, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)DATA_ARG_LO(e->arg));
			emit(&o, BPF_JMP | BPF_JSET | BPF_K, 0, 1, e->mask);
			emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
			emit(&o, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
			break;
		}
	}
	emit(&o, BPF_RET | BPF_K, 0, 0, RET_TRAP);
	return o.overflow ? -1 : (int)o.n;
}

/* Words on lines of at most 78 columns; continuation lines indented by 2. */
static void word(FILE *out, size_t *col, const char *w)
{
	size_t len = strlen(w);

	if (*col > 2 && *col + 1 + len > 78) {
		fprintf(out, "\n  ");
		*col = 2;
	} else if (*col && *col != 2) {
		fprintf(out, " ");
		(*col)++;
	}
	fprintf(out, "%s", w);
	*col += len;
}

void sandbox_describe(enum sandbox_class cls, FILE *out)
{
	struct merged m[MAX_SYSCALLS];
	int n = merge(cls, m, MAX_SYSCALLS);
	size_t col = 0;
	char buf[96];

	if (n < 0) {
		fprintf(out, "(the lists of class %s do not merge)\n", sandbox_class_name(cls));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (m[i].kind == R_ERRNO)
			continue;       /* not allowed: listed below */
		if (col > 2 && col + 1 + strlen(m[i].first->name) > 78) {
			fprintf(out, "\n");
			col = 0;
		}
		fprintf(out, "%s%s", col ? " " : "", m[i].first->name);
		col += (col ? 1 : 0) + strlen(m[i].first->name);
	}
	fprintf(out, "\n");
	for (int i = 0; i < n; i++) {
		if (m[i].kind == R_ANY)
			continue;
		col = 0;
		snprintf(buf, sizeof(buf), "- %s: argument %u", m[i].first->name, m[i].arg);
		word(out, &col, buf);
		if (m[i].kind == R_SELF) {
			word(out, &col, "is keel's own pid");
		} else if (m[i].kind == R_CLEAR) {
			word(out, &col, "without");
			word(out, &col, m[i].first->mask_name);
		} else if (m[i].kind == R_ERRNO) {
			for (unsigned int v = 0; v < m[i].nvals; v++)
				word(out, &col, m[i].vals[v]->name);
			word(out, &col, "fails with");
			word(out, &col, m[i].first->err_name);
			word(out, &col, "(not allowed)");
		} else {
			word(out, &col, "one of");
			for (unsigned int v = 0; v < m[i].nvals; v++)
				word(out, &col, m[i].vals[v]->name);
		}
		fprintf(out, "\n");
	}
}

/* ------------------------------------------------------- threads and SIGSYS */

/*
 * What the SIGSYS handler knows of the thread it runs on.  Written by
 * sandbox_enter() before the filter is installed, so that its thread-local
 * storage exists before any handler needs it (the handler then only reads
 * it: no allocation in a signal handler).
 */
static __thread struct {
	int cls;                /* -1: no filter; set once the filter is in */
	int mode;
	char name[16];
} self = { .cls = -1 };

int sandbox_current(void)
{
	return self.cls;
}

int sandbox_refuse_filtered(const char *what, keel_error **err)
{
	if (self.cls < 0)
		return 0;
	return err_set(err, KEEL_ERR_STATE,
		       "%s cannot run on keel's sandboxed thread %s (from a callback): it opens files or starts threads, which the thread's filter forbids",
		       what, self.name);
}

/* Async-signal-safe formatting for the handler's one line. */
struct line {
	char buf[256];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void put_num(struct line *l, unsigned long v, unsigned int base)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i < (int)sizeof(tmp));
	if (base == 16)
		put(l, "0x");
	while (i && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = tmp[--i];
}

static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int saved = errno;
	bool log_only = self.mode == KEEL_SANDBOX_LOG;
	unsigned int nr = (unsigned int)si->si_syscall;
	const char *name = NULL;
	struct line l = { .len = 0 };

	(void)sig;
	if (si->si_code != SYS_SECCOMP) {
		/* Not a filter's: what SIGSYS does by default. */
		signal(SIGSYS, SIG_DFL);
		raise(SIGSYS);
		return;
	}
	put(&l, "keel: sandbox: ");
	put(&l, self.name[0] ? self.name : "a keel thread");
	if (si->si_arch != AUDIT_ARCH_X86_64) {
		put(&l, " called system call ");
		put_num(&l, nr, 10);
		put(&l, " of another architecture (");
		put_num(&l, si->si_arch, 16);
		put(&l, ")");
	} else if (nr & X32_SYSCALL_BIT) {
		put(&l, " called x32 system call ");
		put_num(&l, nr & ~X32_SYSCALL_BIT, 10);
	} else {
		name = sandbox_syscall_name((long)nr);
		put(&l, " called ");
		put(&l, name ? name : "system call");
		put(&l, " (");
		put_num(&l, nr, 10);
		put(&l, ")");
	}
	put(&l, ", which its filter forbids; ");
	put(&l, log_only ? "it fails with ENOSYS (log mode)\n" : "killing the process\n");
	if (write(STDERR_FILENO, l.buf, l.len) < 0) {
		/* Nowhere else to say it. */
	}
	/* exit_group itself: _exit() may be intercepted (sanitizers' exit checks). */
	if (!log_only)
		syscall(SYS_exit_group, 128 + SIGSYS);
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
	errno = saved;
}

static void install_handler(void)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
}

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

int sandbox_check(int mode, keel_error **err)
{
	if (mode == KEEL_SANDBOX_OFF)
		return 0;
	if (mode != KEEL_SANDBOX_ON && mode != KEEL_SANDBOX_LOG)
		return err_set(err, KEEL_ERR_INVALID, "unknown sandbox mode %d", mode);
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
		return err_errno(err, KEEL_ERR_UNSUPPORTED, errno,
				 "the sandbox needs seccomp filters, which this kernel lacks (CONFIG_SECCOMP_FILTER)");
	return 0;
}

int sandbox_prepare(int mode, keel_error **err)
{
	if (sandbox_check(mode, err) < 0)
		return -1;
	if (mode != KEEL_SANDBOX_OFF)
		pthread_once(&handler_once, install_handler);
	return 0;
}

int sandbox_enter(int mode, enum sandbox_class cls, const char *name, keel_error **err)
{
	struct sock_filter prog[MAX_INSNS];
	struct sock_fprog fprog;
	sigset_t set;
	int n;

	if (mode == KEEL_SANDBOX_OFF)
		return 0;
	if (self.cls >= 0)
		return err_set(err, KEEL_ERR_STATE, "%s: already sandboxed as %s", name, self.name);
	n = sandbox_build(cls, prog, ARRAY_SIZE(prog), (uint32_t)getpid());
	if (n < 0)
		return err_set(err, KEEL_ERR_INVALID, "sandbox: no filter for thread class %d",
			       (int)cls);
	snprintf(self.name, sizeof(self.name), "%s", name);
	self.mode = mode;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_errno(err, KEEL_ERR_UNSUPPORTED, errno,
				 "%s: cannot set PR_SET_NO_NEW_PRIVS for the sandbox", name);
	fprog = (struct sock_fprog){ .len = (unsigned short)n, .filter = prog };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		return err_errno(err, errno == EINVAL ? KEEL_ERR_UNSUPPORTED :
				 err_code_from_errno(errno), errno,
				 "%s: cannot install its sandbox filter (%s)", name,
				 sandbox_class_name(cls));
	self.cls = (int)cls;
	return 0;
}
