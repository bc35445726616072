// SPDX-License-Identifier: MIT
/* Serial attachments: where a serial port's bytes go and come from. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/serial_io.h"

static keel_serial_attachment *att_alloc(enum serial_kind kind, keel_error **err)
{
	keel_serial_attachment *att = calloc(1, sizeof(*att));

	if (!att) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a serial attachment");
		return NULL;
	}
	att->kind = kind;
	att->in_fd = -1;
	att->out_fd = -1;
	return att;
}

static int dup_fd(int fd, const char *what, int *out, keel_error **err)
{
	*out = -1;
	if (fd < 0)
		return 0;
	*out = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (*out < 0)
		return err_errno(err, errno == EBADF ? KEEL_ERR_INVALID : KEEL_ERR_IO, errno,
				 "serial attachment: %s descriptor %d is not usable", what, fd);
	return 0;
}

keel_serial_attachment *keel_serial_attachment_new_stdio(keel_error **err)
{
	keel_serial_attachment *att = att_alloc(SERIAL_STDIO, err);

	if (att && (dup_fd(0, "input", &att->in_fd, err) ||
		    dup_fd(1, "output", &att->out_fd, err))) {
		keel_serial_attachment_free(att);
		return NULL;
	}
	return att;
}

keel_serial_attachment *keel_serial_attachment_new_file(const char *path, keel_error **err)
{
	keel_serial_attachment *att;

	if (!path || !*path) {
		err_set(err, KEEL_ERR_INVALID, "serial attachment: empty file path");
		return NULL;
	}
	att = att_alloc(SERIAL_FILE, err);
	if (!att)
		return NULL;
	att->path = strdup(path);
	att->out_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (!att->path || att->out_fd < 0) {
		err_errno(err, err_code_from_errno(errno), errno,
			  "serial attachment: cannot open '%s' for appending", path);
		keel_serial_attachment_free(att);
		return NULL;
	}
	return att;
}

keel_serial_attachment *keel_serial_attachment_new_fds(int in_fd, int out_fd, keel_error **err)
{
	keel_serial_attachment *att = att_alloc(SERIAL_FDS, err);

	if (att && (dup_fd(in_fd, "input", &att->in_fd, err) ||
		    dup_fd(out_fd, "output", &att->out_fd, err))) {
		keel_serial_attachment_free(att);
		return NULL;
	}
	return att;
}

keel_serial_attachment *serial_attachment_dup(const keel_serial_attachment *src,
					      keel_error **err)
{
	keel_serial_attachment *att = att_alloc(src->kind, err);

	if (!att)
		return NULL;
	if (src->path && !(att->path = strdup(src->path))) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory copying a serial attachment");
		goto fail;
	}
	if (dup_fd(src->in_fd, "input", &att->in_fd, err) ||
	    dup_fd(src->out_fd, "output", &att->out_fd, err))
		goto fail;
	return att;
fail:
	keel_serial_attachment_free(att);
	return NULL;
}

void keel_serial_attachment_free(keel_serial_attachment *att)
{
	if (!att)
		return;
	if (att->in_fd >= 0)
		close(att->in_fd);
	if (att->out_fd >= 0)
		close(att->out_fd);
	free(att->path);
	free(att);
}

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
