/* SPDX-License-Identifier: MIT */
/*
 * A VM's event thread: an epoll loop on which devices watch descriptors
 * (console input, back-end completions) and the VM runs its control work.
 * Callbacks run on that thread only.
 */
#ifndef KEEL_CORE_LOOP_H
#define KEEL_CORE_LOOP_H

#include <stdint.h>

#include "core/error.h"

struct loop;

/* `events` is the EPOLL* mask that fired. */
typedef void (*loop_cb)(void *opaque, uint32_t events);

struct loop *loop_new(keel_error **err);
/* Stops the thread (if running) and frees the loop. */
void loop_free(struct loop *loop);
/* Starts the thread (keel-event), sandboxed per `sandbox` (keel_sandbox_mode). */
int loop_start(struct loop *loop, int sandbox, keel_error **err);
/* Watches `fd` for `events` (EPOLLIN, ...). One watch per descriptor. */
int loop_add(struct loop *loop, int fd, uint32_t events, loop_cb cb, void *opaque,
	     keel_error **err);
/* Changes the watched events; 0 pauses the watch. */
int loop_modify(struct loop *loop, int fd, uint32_t events);
/*
 * Removes a watch.  When called from another thread it returns after any
 * running callback for it has finished.
 */
void loop_del(struct loop *loop, int fd);
/* True when called from the loop's own thread. */
int loop_on_thread(struct loop *loop);

#endif
