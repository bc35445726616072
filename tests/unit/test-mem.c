// SPDX-License-Identifier: MIT
/*
 * Guest RAM (kvm/mem.c): the default mapping is 2 MiB-aligned (so THP can
 * back it), bounds-checked by mem_ptr(), zeroed by mem_clear() (reset), and
 * not inherited by a forked child.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kvm/mem.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)

static int test_layout(void)
{
	keel_error *err = NULL;
	struct mem mem;
	uint8_t *p;

	REQUIRE(mem_init(&mem, 64 * MiB, false, &err) == 0);
	CHECK(mem.fd == -1);
	CHECK(((uintptr_t)mem.host & (2 * MiB - 1)) == 0);
	CHECK(mem.nr_regions == 1 && mem.region[0].size == 64 * MiB);
	p = mem_ptr(&mem, 64 * MiB - 4, 4);
	CHECK(p == mem.host + 64 * MiB - 4);
	CHECK(mem_ptr(&mem, 64 * MiB - 4, 5) == NULL);
	CHECK(mem_ptr(&mem, UINT64_MAX, 2) == NULL);
	mem_fini(&mem);
	return 0;
}

static int test_clear(void)
{
	keel_error *err = NULL;
	struct mem mem;
	size_t nonzero = 0;

	REQUIRE(mem_init(&mem, 16 * MiB, false, &err) == 0);
	memset(mem.host, 0xa5, 16 * MiB);
	mem_clear(&mem);
	for (size_t i = 0; i < 16 * MiB; i++)
		nonzero += mem.host[i] != 0;
	CHECK(nonzero == 0);
	mem.host[4096] = 1;             /* still usable after the reset */
	CHECK(mem.host[4096] == 1);
	mem_fini(&mem);
	return 0;
}

static int test_not_inherited(void)
{
	keel_error *err = NULL;
	struct mem mem;
	int status;
	pid_t pid;

	REQUIRE(mem_init(&mem, 16 * MiB, false, &err) == 0);
	mem.host[0] = 7;
	pid = fork();
	REQUIRE(pid >= 0);
	if (!pid) {
		unsigned char vec[1];

		/* MADV_DONTFORK: nothing is mapped there in the child (ENOMEM). */
		_exit(mincore(mem.host, 4096, vec) < 0 && errno == ENOMEM ? 0 : 1);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(mem.host[0] == 7);
	mem_fini(&mem);
	return 0;
}

static int test_bad_size(void)
{
	keel_error *err = NULL;
	struct mem mem;

	CHECK(mem_init(&mem, MiB + 1, false, &err) < 0);
	CHECK_ERR(err, KEEL_ERR_INVALID, "multiple of 1 MiB");
	CHECK(mem_init(&mem, 0, false, &err) < 0);
	CHECK_ERR(err, KEEL_ERR_INVALID, "multiple of 1 MiB");
	return 0;
}

int main(void)
{
	RUN(test_layout);
	RUN(test_clear);
	RUN(test_not_inherited);
	RUN(test_bad_size);
	return test_exit();
}
