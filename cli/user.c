// SPDX-License-Identifier: MIT
/* --user: the lookup before the VM exists, the drop after (user.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "user.h"

/* A decimal id (no sign, no junk); false for anything else. */
static bool parse_id(const char *s, unsigned long *id)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*id = strtoul(s, &end, 10);
	return !errno && !*end && *id < (unsigned long)(uid_t)-1;
}

int cli_user_lookup(const char *spec, struct cli_user *u)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw;
	unsigned long id;

	memset(u, 0, sizeof(*u));
	if (!len || len >= sizeof(name) || (colon && !colon[1])) {
		fprintf(stderr, "keel: --user '%s': expected USER or USER:GROUP\n", spec);
		return -1;
	}
	memcpy(name, spec, len);
	name[len] = '\0';
	errno = 0;
	pw = getpwnam(name);
	if (pw) {
		int n = CLI_MAX_GROUPS;

		u->uid = pw->pw_uid;
		u->gid = pw->pw_gid;
		if (getgrouplist(name, pw->pw_gid, u->groups, &n) < 0) {
			fprintf(stderr, "keel: --user '%s': user %s is in more than %d groups\n", spec,
				name, CLI_MAX_GROUPS);
			return -1;
		}
		u->ngroups = n;
	} else if (parse_id(name, &id)) {
		u->uid = (uid_t)id;
		u->gid = (gid_t)id;
		u->groups[0] = u->gid;
		u->ngroups = 1;
	} else {
		fprintf(stderr, "keel: --user '%s': no user %s%s%s\n", spec, name,
			errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (colon) {
		struct group *gr = getgrnam(colon + 1);

		if (gr) {
			u->gid = gr->gr_gid;
		} else if (parse_id(colon + 1, &id)) {
			u->gid = (gid_t)id;
		} else {
			fprintf(stderr, "keel: --user '%s': no group %s\n", spec, colon + 1);
			return -1;
		}
		u->groups[0] = u->gid;
		u->ngroups = 1;
	}
	return 0;
}

int cli_user_drop(const char *spec, const struct cli_user *u)
{
	const char *what;

	/* Every thread of the process changes (glibc's setxid broadcast). */
	if (setgroups((size_t)u->ngroups, u->groups) < 0) {
		what = "setgroups";
		goto fail;
	}
	if (setgid(u->gid) < 0) {
		what = "setgid";
		goto fail;
	}
	if (setuid(u->uid) < 0) {
		what = "setuid";
		goto fail;
	}
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
	    getegid() != u->gid) {
		fprintf(stderr, "keel: --user '%s': the process still runs as uid %u/%u, gid %u/%u\n",
			spec, (unsigned int)getuid(), (unsigned int)geteuid(),
			(unsigned int)getgid(), (unsigned int)getegid());
		return -1;
	}
	if (u->uid != 0 && setuid(0) == 0) {
		fprintf(stderr, "keel: --user '%s': root could be regained; refusing to run\n", spec);
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "keel: --user '%s': cannot drop privileges to uid %u, gid %u: %s failed: %s\n",
		spec, (unsigned int)u->uid, (unsigned int)u->gid, what, strerror(errno));
	return -1;
}
