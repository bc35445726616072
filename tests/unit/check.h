/* SPDX-License-Identifier: MIT */
/* A minimal test harness: CHECK() records failures, test_exit() reports. */
#ifndef KEEL_TEST_CHECK_H
#define KEEL_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		check_failures++; \
	} \
} while (0)

/* An error object with `code` whose message contains `needle`; frees it. */
#define CHECK_ERR(err, code, needle) do { \
	keel_error *e_ = (err); \
	CHECK(e_ != NULL); \
	if (e_) { \
		CHECK(keel_error_get_code(e_) == (code)); \
		if (!strstr(keel_error_get_message(e_), (needle))) { \
			fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
				keel_error_get_message(e_), (needle)); \
			check_failures++; \
		} \
		keel_error_free(e_); \
	} \
	(err) = NULL; \
} while (0)

static inline int test_exit(void)
{
	if (check_failures)
		fprintf(stderr, "%d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}

#endif
