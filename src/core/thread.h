/* SPDX-License-Identifier: MIT */
/*
 * keel's threads (event loop, vCPUs, device I/O) start here, with a
 * THREAD_STACK-byte stack instead of the process default (often 8 MiB):
 * smaller than a 2 MiB huge page, so a host with transparent huge pages
 * set to "always" never backs a thread's stack with one (2 MiB of RSS per
 * thread; it happened next to the 2 MiB-aligned guest RAM).
 *
 * thread_spawn() is how keel starts its own threads: named, with every
 * signal blocked (process signals go to the application's threads), and
 * sandboxed (core/sandbox.h) once their set-up is done.  Only application
 * threads start keel threads: a thread started by a filtered one would
 * inherit its filter.
 */
#ifndef KEEL_CORE_THREAD_H
#define KEEL_CORE_THREAD_H

#include <pthread.h>

#include "core/error.h"
#include "core/sandbox.h"

/* Ample for keel's deepest call chains (~40 KiB) and for callbacks. */
#define THREAD_STACK (1024 * 1024)

/* pthread_create() with that stack size; returns 0 or an errno value. */
int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

struct thread_spec {
	const char *name;               /* "keel-vcpu0": at most 15 characters */
	int sandbox;                    /* keel_sandbox_mode of its VM */
	enum sandbox_class cls;         /* its filter */
	/*
	 * Optional, on the new thread before its filter (what the filter
	 * forbids: setting up an io_uring); 0 or -1 with err.  `undo` (also
	 * optional) releases it when the filter then cannot be installed.
	 */
	int (*setup)(void *arg, keel_error **err);
	void (*undo)(void *arg);
};

/*
 * Starts fn(arg) on a new keel thread and returns once it is named, its
 * set-up done and its filter installed: 0, or -1 with err (the thread has
 * then ended and fn never ran).
 */
int thread_spawn(pthread_t *thread, const struct thread_spec *spec, void *(*fn)(void *),
		 void *arg, keel_error **err);

#endif
