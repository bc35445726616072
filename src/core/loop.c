// SPDX-License-Identifier: MIT
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/thread.h"

struct watch {
	int fd;
	loop_cb cb;
	void *opaque;
};

struct loop {
	int epfd;
	int wake_fd;            /* written to stop the thread */
	pthread_t thread;
	bool started;
	bool stopping;
	/*
	 * Held while a callback runs, so loop_del() from another thread waits
	 * for it; recursive because callbacks add and remove watches.
	 */
	pthread_mutex_t lock;
	struct watch *watches;
	int nr, cap;
};

struct loop *loop_new(keel_error **err)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	pthread_mutexattr_t attr;
	struct epoll_event ev = { .events = EPOLLIN };

	if (!loop) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating the event loop");
		return NULL;
	}
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->wake_fd < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot create the event loop");
		goto fail;
	}
	ev.data.fd = loop->wake_fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot create the event loop");
		goto fail;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&loop->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return loop;
fail:
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	free(loop);
	return NULL;
}

static struct watch *loop_find(struct loop *loop, int fd)
{
	for (int i = 0; i < loop->nr; i++)
		if (loop->watches[i].fd == fd)
			return &loop->watches[i];
	return NULL;
}

static void *loop_thread(void *arg)
{
	struct loop *loop = arg;
	struct epoll_event evs[16];

	while (!__atomic_load_n(&loop->stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(loop->epfd, evs, 16, -1);

		for (int i = 0; i < n; i++) {
			struct watch *w;

			if (evs[i].data.fd == loop->wake_fd)
				continue;
			pthread_mutex_lock(&loop->lock);
			/* Looked up again: an earlier callback may have removed it. */
			w = loop_find(loop, evs[i].data.fd);
			if (w) {
				struct watch copy = *w;

				copy.cb(copy.opaque, evs[i].events);
			}
			pthread_mutex_unlock(&loop->lock);
		}
	}
	return NULL;
}

int loop_start(struct loop *loop, int sandbox, keel_error **err)
{
	const struct thread_spec spec = {
		.name = "keel-event", .sandbox = sandbox, .cls = SANDBOX_EVENT,
	};

	if (thread_spawn(&loop->thread, &spec, loop_thread, loop, err) < 0) {
		err_prefix(err, "cannot start the event thread");
		return -1;
	}
	loop->started = true;
	return 0;
}

void loop_free(struct loop *loop)
{
	uint64_t one = 1;

	if (!loop)
		return;
	if (loop->started) {
		__atomic_store_n(&loop->stopping, true, __ATOMIC_RELEASE);
		if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
			/* The eventfd cannot be full after one write; nothing to do. */
		}
		pthread_join(loop->thread, NULL);
	}
	close(loop->epfd);
	close(loop->wake_fd);
	pthread_mutex_destroy(&loop->lock);
	free(loop->watches);
	free(loop);
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_cb cb, void *opaque,
	     keel_error **err)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int ret = -1;

	pthread_mutex_lock(&loop->lock);
	if (loop_find(loop, fd)) {
		err_set(err, KEEL_ERR_INVALID, "descriptor %d is already watched", fd);
		goto out;
	}
	if (loop->nr == loop->cap) {
		int cap = loop->cap ? loop->cap * 2 : 8;
		struct watch *n = realloc(loop->watches, cap * sizeof(*n));

		if (!n) {
			err_set(err, KEEL_ERR_NOMEM, "out of memory watching descriptor %d", fd);
			goto out;
		}
		loop->watches = n;
		loop->cap = cap;
	}
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot watch descriptor %d", fd);
		goto out;
	}
	loop->watches[loop->nr++] = (struct watch){ .fd = fd, .cb = cb, .opaque = opaque };
	ret = 0;
out:
	pthread_mutex_unlock(&loop->lock);
	return ret;
}

int loop_modify(struct loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void loop_del(struct loop *loop, int fd)
{
	struct watch *w;

	pthread_mutex_lock(&loop->lock);
	w = loop_find(loop, fd);
	if (w) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		*w = loop->watches[--loop->nr];
	}
	pthread_mutex_unlock(&loop->lock);
}

int loop_on_thread(struct loop *loop)
{
	return loop->started && pthread_equal(pthread_self(), loop->thread);
}
