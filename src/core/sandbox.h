/* SPDX-License-Identifier: MIT */
/*
 * The sandbox: a seccomp filter per kind of keel thread (docs/security.md).
 *
 * Every keel thread is started by an application thread, which runs no
 * filter (keel never starts a thread from a filtered one), and installs
 * its own filter once its set-up is done (thread_start(), core/thread.h).
 * Filters are hand-written classic BPF, built on the thread's stack from
 * the lists in sandbox.c (the one place they are kept): the architecture
 * must be x86-64 (the x32 ABI and i386 calls are refused), then each
 * allowed call, some with a check of one 32-bit argument (ioctl request
 * numbers, no PROT_EXEC, read-only opens, socket families).  Anything else
 * returns SECCOMP_RET_TRAP: keel's SIGSYS handler writes one line naming
 * the thread and the call and ends the process (KEEL_SANDBOX_ON) or makes
 * the call fail with ENOSYS (KEEL_SANDBOX_LOG).
 */
#ifndef KEEL_CORE_SANDBOX_H
#define KEEL_CORE_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

enum sandbox_class {
	SANDBOX_VCPU,           /* keel-vcpuN: KVM_RUN and device emulation */
	SANDBOX_EVENT,          /* keel-event: timers, input, resets, state callbacks */
	SANDBOX_BLK,            /* keel-blkN: a disk's io_uring */
	SANDBOX_NET,            /* keel-netN: a NIC on a TAP or a socket */
	SANDBOX_NAT,            /* keel-natN: a NIC on NAT (libslirp) */
	SANDBOX_NR_CLASSES,
};

/* "vcpu", "event", ... */
const char *sandbox_class_name(enum sandbox_class cls);

/* A known mode, and (unless off) a kernel with seccomp filters: validation. */
int sandbox_check(int mode, keel_error **err);

/*
 * Checks that this kernel can filter threads (seccomp filters,
 * PR_SET_NO_NEW_PRIVS) and installs the process's SIGSYS handler (once).
 * Called on an application thread before the first filtered thread starts;
 * `mode` KEEL_SANDBOX_OFF does nothing.
 */
int sandbox_prepare(int mode, keel_error **err);

/*
 * Installs the filter of `cls` on the calling thread, which is called
 * `name` in violation messages (at most 15 characters are kept); SIGSYS
 * is unblocked on it.  KEEL_SANDBOX_OFF does nothing.  Irreversible: the
 * thread and anything it starts keep the filter.
 */
int sandbox_enter(int mode, enum sandbox_class cls, const char *name, keel_error **err);

/* The calling thread's class, or -1 when it runs without a keel filter. */
int sandbox_current(void);

/*
 * KEEL_ERR_STATE (naming `what`) when the calling thread is a filtered
 * keel thread (an application callback): for calls that open files,
 * sockets or start threads.  0 elsewhere.
 */
int sandbox_refuse_filtered(const char *what, keel_error **err);

/*
 * The BPF program of `cls` (mode ON or LOG) for process `pid` into `prog`;
 * its length, or -1 if it does not fit.
 */
struct sock_filter;
int sandbox_build(enum sandbox_class cls, struct sock_filter *prog, size_t max, uint32_t pid);

/*
 * Writes the allowed calls of `cls` as docs/security.md shows them: one
 * line of system calls, then the checked arguments and ioctl requests.
 */
void sandbox_describe(enum sandbox_class cls, FILE *out);

/* The x86-64 name of system call `nr`, or NULL. */
const char *sandbox_syscall_name(long nr);

#endif
