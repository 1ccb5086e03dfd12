/* log.c — see vnet/log.h. */
#include "vnet/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = VNET_LOG_INFO;
static vnet_log_sink_fn _Atomic log_sink;
static void *_Atomic log_sink_arg;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void vnet_log_set_level(enum vnet_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum vnet_log_level vnet_log_get_level(void)
{
	return (enum vnet_log_level)atomic_load(&log_level);
}

int vnet_log_parse_level(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (name && strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void vnet_log_set_sink(vnet_log_sink_fn sink, void *arg)
{
	atomic_store(&log_sink_arg, arg);
	atomic_store(&log_sink, sink);
}

void vnet_vlog(enum vnet_log_level level, const char *fmt, va_list ap)
{
	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;

	char line[512];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';

	vnet_log_sink_fn sink = atomic_load(&log_sink);
	if (sink) {
		sink(level, line, atomic_load(&log_sink_arg));
		return;
	}

	char out[600];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int m = snprintf(out, sizeof(out), "%02d:%02d:%02d.%03ld vnet %s: %s\n", tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], line);
	if (m < 0)
		return;
	size_t outlen = (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1;
	/* One write per line so concurrent threads never interleave within a line. */
	ssize_t ignored = write(STDERR_FILENO, out, outlen);
	(void)ignored;
}

void vnet_log(enum vnet_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vnet_vlog(level, fmt, ap);
	va_end(ap);
}

/* The kind's entry: its own, a free one, or (table full) the last one,
 * shared by every kind that found no room. */
static struct vnet_log_limit_kind *limit_kind(struct vnet_log_limit *limit, const void *key)
{
	for (unsigned i = 0; i + 1 < VNET_LOG_LIMIT_KINDS; i++) {
		struct vnet_log_limit_kind *k = &limit->kind[i];
		if (k->key == key)
			return k;
		if (!k->key) {
			k->key = key;
			return k;
		}
	}
	return &limit->kind[VNET_LOG_LIMIT_KINDS - 1];
}

void vnet_vlog_limited(struct vnet_log_limit *limit, const void *kind, enum vnet_log_level level,
		       const char *fmt, va_list ap)
{
	if (!limit) {
		vnet_vlog(level, fmt, ap);
		return;
	}
	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return; /* not counted: it would not have been written anyway */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: 0 means "never used" */
	unsigned long long now =
		(unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000 + 1;
	unsigned burst = limit->burst ? limit->burst : VNET_LOG_LIMIT_BURST;
	struct vnet_log_limit_kind *k = limit_kind(limit, kind ? kind : fmt);
	if (!k->window_start_ms || now - k->window_start_ms >= 60000) {
		k->window_start_ms = now;
		k->in_window = 0;
	}
	if (k->in_window >= burst) {
		k->suppressed++;
		return;
	}
	k->in_window++;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (k->suppressed)
		vnet_log(level, "%s (%llu similar lines left out since the last one logged)", line,
			 k->suppressed);
	else if (k->in_window == burst)
		vnet_log(level, "%s (more such lines this minute are left out)", line);
	else
		vnet_log(level, "%s", line);
	k->suppressed = 0;
}

void vnet_log_limited(struct vnet_log_limit *limit, enum vnet_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vnet_vlog_limited(limit, fmt, level, fmt, ap);
	va_end(ap);
}

void vnet_log_limited_as(struct vnet_log_limit *limit, const void *kind, enum vnet_log_level level,
			 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vnet_vlog_limited(limit, kind, level, fmt, ap);
	va_end(ap);
}
