// SPDX-License-Identifier: MIT
/* thread_start(): keel's threads get THREAD_STACK bytes of stack (< 2 MiB). */
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "core/thread.h"

static void *report_stack(void *out)
{
	pthread_attr_t attr;
	size_t size = 0;

	if (!pthread_getattr_np(pthread_self(), &attr)) {
		pthread_attr_getstacksize(&attr, &size);
		pthread_attr_destroy(&attr);
	}
	*(size_t *)out = size;
	return NULL;
}

static int test_stack_size(void)
{
	size_t size = 0;
	pthread_t t;

	REQUIRE(thread_start(&t, report_stack, &size) == 0);
	REQUIRE(pthread_join(t, NULL) == 0);
	printf("stack: %zu bytes\n", size);
	CHECK(size >= THREAD_STACK && size < 2 * 1024 * 1024);
	return 0;
}

int main(void)
{
	RUN(test_stack_size);
	return test_exit();
}
