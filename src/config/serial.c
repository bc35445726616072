// SPDX-License-Identifier: MIT
/* Serial attachments: where a serial port's bytes go and come from. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"
#include "core/sandbox.h"

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
	if (sandbox_refuse_filtered("keel_serial_attachment_new_file()", err) < 0)
		return NULL;
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
