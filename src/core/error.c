// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct keel_error {
	keel_error_code code;
	char *msg;
};

/* Used when even the error cannot be allocated: never freed. */
static const char oom_msg[] = "out of memory while reporting an error";

static keel_error *err_new(keel_error_code code, char *msg)
{
	keel_error *e = malloc(sizeof(*e));

	if (!e) {
		free(msg);
		return NULL;
	}
	e->code = code;
	e->msg = msg;
	return e;
}

static int err_vset(keel_error **err, keel_error_code code, int errnum,
		    const char *fmt, va_list ap)
{
	char *msg = NULL, *full = NULL;

	if (!err || *err)
		return -1;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (msg && errnum) {
		if (asprintf(&full, "%s: %s", msg, strerror(errnum)) < 0)
			full = NULL;
		free(msg);
		msg = full;
	}
	*err = err_new(code, msg);
	return -1;
}

int err_set(keel_error **err, keel_error_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int err_errno(keel_error **err, keel_error_code code, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

void err_prefix(keel_error **err, const char *fmt, ...)
{
	char *prefix = NULL, *full = NULL;
	va_list ap;

	if (!err || !*err || !(*err)->msg)
		return;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		prefix = NULL;
	va_end(ap);
	if (!prefix)
		return;
	if (asprintf(&full, "%s: %s", prefix, (*err)->msg) >= 0) {
		free((*err)->msg);
		(*err)->msg = full;
	}
	free(prefix);
}

keel_error_code err_code_from_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return KEEL_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return KEEL_ERR_PERMISSION;
	case ENOMEM:
		return KEEL_ERR_NOMEM;
	case EBUSY:
	case EAGAIN:
		return KEEL_ERR_STATE;
	case EFBIG:
	case ENOSPC:
		return KEEL_ERR_TOO_LARGE;
	case EINVAL:
		return KEEL_ERR_INVALID;
	default:
		return KEEL_ERR_IO;
	}
}

keel_error *err_dup(const keel_error *src)
{
	if (!src)
		return NULL;
	return err_new(src->code, src->msg ? strdup(src->msg) : NULL);
}

keel_error_code keel_error_get_code(const keel_error *err)
{
	return err ? err->code : 0;
}

const char *keel_error_get_message(const keel_error *err)
{
	if (!err)
		return "no error";
	return err->msg ? err->msg : oom_msg;
}

void keel_error_free(keel_error *err)
{
	if (!err)
		return;
	free(err->msg);
	free(err);
}
