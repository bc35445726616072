/* SPDX-License-Identifier: MIT */
/* Internal error helpers: every failure path builds a keel_error here. */
#ifndef KEEL_CORE_ERROR_H
#define KEEL_CORE_ERROR_H

#include <keel/keel.h>

/*
 * Stores a new error in *err (if err is not NULL and *err is empty) and
 * returns -1, so failure paths read `return err_set(err, ...);`.
 */
int err_set(keel_error **err, keel_error_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like err_set() and appends ": strerror(errnum)". */
int err_errno(keel_error **err, keel_error_code code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefixes the message of an existing error with "prefix: ". */
void err_prefix(keel_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps errno values to the closest error code (ENOENT -> NOT_FOUND, ...). */
keel_error_code err_code_from_errno(int errnum);
/* A copy of `src` (for errors that are kept and handed out again). */
keel_error *err_dup(const keel_error *src);

#endif
