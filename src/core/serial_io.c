// SPDX-License-Identifier: MIT
/* Serial output and input as the devices on an attachment use them (serial_io.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/serial_io.h"

int serial_out_write(struct serial_out *o, const void *buf, size_t len)
{
	static const struct timespec zero;
	const uint8_t *p = buf;
	sigset_t pipe_set, old_set;
	int ret = 0, saved = 0;

	if (o->fd < 0 || o->broken || !len)
		return 0;
	/* A SIGPIPE the write raises is blocked and consumed below. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	while (len) {
		ssize_t n = write(o->fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			o->stalled = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = o->fd, .events = POLLOUT };

			if (!o->stalled && poll(&pfd, 1, 1000) > 0)
				continue;
			o->stalled = true;
			break;
		}
		saved = n < 0 ? errno : EIO;
		if (saved == EPIPE) {
			sigset_t pending;

			sigpending(&pending);
			if (sigismember(&pending, SIGPIPE) && !sigismember(&old_set, SIGPIPE))
				sigtimedwait(&pipe_set, NULL, &zero);
		}
		o->broken = true;
		ret = -1;
		break;
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	errno = saved;
	return ret;
}

bool serial_in_pollable(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool ok;

	if (ep < 0)
		return true;    /* let loop_add() report the real problem */
	ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 || errno != EPERM;
	close(ep);
	return ok;
}
