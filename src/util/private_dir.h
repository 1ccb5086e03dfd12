/*
 * private_dir.h — checks on a directory a daemon keeps its sockets or state
 * in, so that nobody else can plant a symbolic link or a socket there and
 * have the daemon unlink, create or read something elsewhere; plus a group
 * name lookup for group-shared sockets. Header-only: any program can use it
 * without a build change.
 *
 * vnet_private_dir(path, mode) creates path with `mode` when it is missing,
 * then refuses it (0 / -errno, the reason in err) when it is
 *   - a symbolic link (the final component: where it points is not checked
 *     by anyone, so say which real directory to use instead),
 *   - not a directory,
 *   - owned by a user other than root or the caller's effective user,
 *   - writable by every user (even with the sticky bit: another user could
 *     still take a socket's name first).
 * A group-writable directory is accepted: sharing it with a group is a
 * decision its owner made.
 *
 * Thread-safety: stateless; safe from any thread.
 */
#ifndef VNET_UTIL_PRIVATE_DIR_H
#define VNET_UTIL_PRIVATE_DIR_H

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static inline int vnet_private_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (lstat(path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(e));
		return -e;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s is a symbolic link: refusing to keep sockets or state behind "
			 "it (name the real directory instead)", path);
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s belongs to uid %u: only root or this daemon's user (uid %u) "
			 "may own it", path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen, "%s is writable by every user (mode %04o): anyone could plant a "
			 "socket or a symbolic link in it (chmod o-w %s)", path,
			 (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/* Group `name` (or a number) to *gid: 0, or -ENOENT when there is none. */
static inline int vnet_group_id(const char *name, gid_t *gid)
{
	char *end;
	unsigned long n = strtoul(name, &end, 10);
	if (*name && !*end) {
		*gid = (gid_t)n;
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	*gid = res->gr_gid;
	return 0;
}

#endif
