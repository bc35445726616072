/* SPDX-License-Identifier: MIT */
/*
 * --user: keel runs as another user once the VM is created, with the
 * devices, images and sockets it needs already open (docs/security.md).
 */
#ifndef KEEL_CLI_USER_H
#define KEEL_CLI_USER_H

#include <stdbool.h>
#include <sys/types.h>

#define CLI_MAX_GROUPS 64

struct cli_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[CLI_MAX_GROUPS];   /* supplementary groups */
	int ngroups;
};

/*
 * Looks "USER[:GROUP]" up (names or numbers), while /etc/passwd may still
 * be read: a name's groups are its primary and supplementary groups, a
 * bare number's its own number; an explicit GROUP is the only group.
 * Prints what is wrong and returns -1.
 */
int cli_user_lookup(const char *spec, struct cli_user *u);

/*
 * Becomes `u` for good (setgroups, setgid, setuid) and checks that root
 * cannot be regained; prints what failed and returns -1.
 */
int cli_user_drop(const char *spec, const struct cli_user *u);

#endif
