// SPDX-License-Identifier: MIT
/* Whole-file OFD locks (file_lock.h). */
#include <errno.h>
#include <fcntl.h>

#include "core/file_lock.h"

int file_lock(int fd, bool exclusive, const char *what, const char *path, keel_error **err)
{
	struct flock fl = {
		.l_type = exclusive ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};
	struct flock holder;
	int e;

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	e = errno;
	if (e != EAGAIN && e != EACCES)
		return err_errno(err, err_code_from_errno(e), e, "cannot lock %s '%s'", what, path);
	holder = fl;
	if (fcntl(fd, F_OFD_GETLK, &holder) < 0 || holder.l_type == F_UNLCK)
		return err_set(err, KEEL_ERR_STATE, "%s '%s' is locked by another process or VM", what,
			       path);
	if (holder.l_pid > 0)
		return err_set(err, KEEL_ERR_STATE, "%s '%s' is locked by another process (pid %d) for %s",
			       what, path, (int)holder.l_pid,
			       holder.l_type == F_WRLCK ? "writing" : "reading");
	return err_set(err, KEEL_ERR_STATE,
		       "%s '%s' is locked by another open file description (possibly another keel VM) for %s",
		       what, path, holder.l_type == F_WRLCK ? "writing" : "reading");
}
