/* SPDX-License-Identifier: MIT */
/*
 * keel's threads (event loop, vCPUs, device I/O) start here, with a
 * THREAD_STACK-byte stack instead of the process default (often 8 MiB):
 * smaller than a 2 MiB huge page, so a host with transparent huge pages
 * set to "always" never backs a thread's stack with one (2 MiB of RSS per
 * thread; it happened next to the 2 MiB-aligned guest RAM).
 */
#ifndef KEEL_CORE_THREAD_H
#define KEEL_CORE_THREAD_H

#include <pthread.h>

/* Ample for keel's deepest call chains (~40 KiB) and for callbacks. */
#define THREAD_STACK (1024 * 1024)

/* pthread_create() with that stack size; returns 0 or an errno value. */
int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
