/*
 * persist.c — atomic save and careful load of the state file (persist.h).
 * The file is never reached through a symbolic link: the temp file is made
 * with O_CREAT|O_EXCL (mkostemp, mode 0600), the rename replaces whatever
 * name was there, and load opens with O_NOFOLLOW and refuses anything but a
 * regular file (O_NONBLOCK so that a planted FIFO cannot hang the start).
 *
 * Thread-safety: no shared state; callers serialise saves of one path.
 */
#include "switch/persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return SW_PERSIST_ERROR;
}

/* dir and base name of path into the buffers. */
static int split_path(const char *path, char *dir, char *base, size_t len)
{
	if (strlen(path) >= len || !*path)
		return -1;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(dir, len, "%s", dirname(tmp));
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(base, len, "%s", basename(tmp));
	return 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	/* some file systems cannot fsync a directory; the rename still stands */
	return r < 0 && errno != EINVAL && errno != EROFS ? -1 : 0;
}

int sw_persist_save(const char *path, const struct sw_config *c, char *err, size_t errlen)
{
	char dir[4096], base[4096], tmp[8300];
	if (split_path(path, dir, base, sizeof dir))
		return fail(err, errlen, "invalid state file path");
	char *text = sw_config_to_string(c);
	if (!text)
		return fail(err, errlen, "cannot save %s: out of memory", path);
	int tn = snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, base);
	if (tn < 0 || (size_t)tn >= sizeof tmp) {
		free(text);
		return fail(err, errlen, "invalid state file path");
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(text);
		return fail(err, errlen, "cannot save %s: cannot create a temp file in %s: %s", path,
			    dir, strerror(e));
	}
	const char *what = "write";
	if (fchmod(fd, 0600) < 0) {
		what = "chmod";
		goto bad;
	}
	if (write_all(fd, text, strlen(text)) < 0)
		goto bad;
	what = "fsync";
	if (fsync(fd) < 0)
		goto bad;
	what = "close";
	int cfd = fd;
	fd = -1;
	if (close(cfd) < 0)
		goto bad;
	what = "rename";
	if (rename(tmp, path) < 0)
		goto bad;
	free(text);
	if (fsync_dir(dir) < 0)
		return fail(err, errlen, "saved %s, but cannot fsync %s: %s", path, dir,
			    strerror(errno));
	return SW_PERSIST_OK;
bad:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(text);
	return fail(err, errlen, "cannot save %s: %s: %s", path, what, strerror(e));
}

/* Removes ".<base>.tmp-*" left by a save that was interrupted. */
static void remove_stale_temps(const char *dir, const char *base)
{
	char prefix[4200];
	if (strlen(base) + 7 >= sizeof prefix)
		return;
	snprintf(prefix, sizeof prefix, ".%s.tmp-", base);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* Renames path aside; aside gets the new name. */
static int move_aside(const char *path, char *aside, size_t len)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	struct stat st;
	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(aside, len, "%s.corrupt-%s", path, stamp);
		else
			snprintf(aside, len, "%s.corrupt-%s-%d", path, stamp, i);
		if (lstat(aside, &st) < 0 && errno == ENOENT)
			return rename(path, aside);
	}
	errno = EEXIST;
	return -1;
}

static int corrupt(const char *path, const char *why, char *err, size_t errlen)
{
	char aside[4200];
	if (move_aside(path, aside, sizeof aside) < 0)
		fail(err, errlen,
		     "state file %s is corrupt (%s); could not move it aside: %s", path, why,
		     strerror(errno));
	else
		fail(err, errlen, "state file %s is corrupt (%s); moved aside to %s", path, why, aside);
	return SW_PERSIST_CORRUPT;
}

int sw_persist_load(const char *path, struct sw_config **out, char *err, size_t errlen)
{
	char dir[4096], base[4096], why[512];
	*out = NULL;
	if (split_path(path, dir, base, sizeof dir))
		return fail(err, errlen, "invalid state file path");
	remove_stale_temps(dir, base);

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			*out = sw_config_new();
			return *out ? SW_PERSIST_OK : fail(err, errlen, "out of memory");
		}
		if (errno == ELOOP)
			return fail(err, errlen, "state file %s is a symbolic link: refusing to follow "
				    "it (remove it; the daemon writes a regular file there)", path);
		return fail(err, errlen, "cannot open state file %s: %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot stat state file %s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, "state file %s is not a regular file", path);
	}
	if ((unsigned long long)st.st_size > SW_STATE_FILE_MAX) {
		close(fd);
		snprintf(why, sizeof why, "%lld bytes, more than the %u limit", (long long)st.st_size,
			 SW_STATE_FILE_MAX);
		return corrupt(path, why, err, errlen);
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return fail(err, errlen, "out of memory");
	}
	for (;;) {
		if (n == cap) {
			/* grew since fstat */
			if (cap > SW_STATE_FILE_MAX) {
				free(buf);
				close(fd);
				return corrupt(path, "file too large", err, errlen);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return fail(err, errlen, "out of memory");
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return fail(err, errlen, "cannot read state file %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);

	size_t i = 0;
	while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
		i++;
	if (i == n) {
		free(buf);
		*out = sw_config_new();
		return *out ? SW_PERSIST_OK : fail(err, errlen, "out of memory");
	}
	struct sw_config *c = NULL;
	int r = sw_config_from_string(buf, n, &c, why, sizeof why);
	free(buf);
	if (r < 0)
		return corrupt(path, why, err, errlen);
	*out = c;
	return SW_PERSIST_OK;
}
