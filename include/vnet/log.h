/*
 * log.h — one-line log messages to stderr (or a sink a test installs).
 *
 * Thread-safety: every function may be called from any thread; each message
 * is written with a single write(2), so lines from threads never interleave.
 * vnet_log_set_level()/set_sink() are meant for start-up and tests.
 */
#ifndef VNET_LOG_H
#define VNET_LOG_H

#include <stdarg.h>

enum vnet_log_level {
	VNET_LOG_ERROR = 0,
	VNET_LOG_WARN = 1,
	VNET_LOG_INFO = 2,
	VNET_LOG_DEBUG = 3,
};

typedef void (*vnet_log_sink_fn)(enum vnet_log_level level, const char *line, void *arg);

void vnet_log_set_level(enum vnet_log_level level);
enum vnet_log_level vnet_log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int vnet_log_parse_level(const char *name);
/* Installs a sink instead of stderr (NULL restores stderr). */
void vnet_log_set_sink(vnet_log_sink_fn sink, void *arg);

void vnet_log(enum vnet_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vnet_vlog(enum vnet_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Lines a peer can make repeat (a hostile front-end reconnecting with bad
 * messages in a loop): per kind of line (its format string, or the key
 * given), up to `burst` lines a minute pass (0: VNET_LOG_LIMIT_BURST), the
 * rest are counted, and the first line of that kind in a later minute says
 * how many were left out. Kinds are limited apart, so a flood of one cause
 * never hides the first line of another; kinds beyond the table's first
 * VNET_LOG_LIMIT_KINDS - 1 share its last entry, so a peer cycling through
 * many causes still gets at most VNET_LOG_LIMIT_KINDS x burst lines a minute.
 * Normal operation (a few reconnects) is logged whole. A limit is not
 * locked: one thread uses it, or the owner's lock covers it. Zero-initialised
 * is ready; set `burst` before first use for another burst.
 */
#define VNET_LOG_LIMIT_BURST 10
#define VNET_LOG_LIMIT_KINDS 8
struct vnet_log_limit {
	unsigned burst;
	struct vnet_log_limit_kind {
		const void *key;                    /* NULL: free */
		unsigned long long window_start_ms;
		unsigned in_window;
		unsigned long long suppressed;
	} kind[VNET_LOG_LIMIT_KINDS];
};

/* vnet_log through `limit` (NULL: no limit); the kind is fmt. */
void vnet_log_limited(struct vnet_log_limit *limit, enum vnet_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with the kind given (e.g. a caller's format, for a wrapper). */
void vnet_log_limited_as(struct vnet_log_limit *limit, const void *kind, enum vnet_log_level level,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void vnet_vlog_limited(struct vnet_log_limit *limit, const void *kind, enum vnet_log_level level,
		       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

#define vnet_err(...)   vnet_log(VNET_LOG_ERROR, __VA_ARGS__)
#define vnet_warn(...)  vnet_log(VNET_LOG_WARN, __VA_ARGS__)
#define vnet_info(...)  vnet_log(VNET_LOG_INFO, __VA_ARGS__)
#define vnet_debug(...) vnet_log(VNET_LOG_DEBUG, __VA_ARGS__)

#endif
