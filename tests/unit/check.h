/* SPDX-License-Identifier: MIT */
/*
 * A minimal test harness: CHECK() records failures and goes on, test_exit()
 * reports; REQUIRE() ends the test function at the first failure.
 */
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

/*
 * For tests written as `static int test_x(void)` run by RUN(): a failed
 * REQUIRE() reports and returns 1 from the test, which RUN() reports as
 * FAIL and ends the program with 1.
 */
#define REQUIRE(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
		return 1; \
	} \
} while (0)

#define RUN(test) do { \
	if (test()) { \
		fprintf(stderr, "FAIL %s\n", #test); \
		return 1; \
	} \
	printf("ok %s\n", #test); \
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
