/*
 * persist.h — vnet-switchd's state file: the configuration (config.h) as
 * JSON, written atomically on each change and read back on start.
 *
 * Save: a temp file in the same directory (mode 0600), write, fsync,
 * rename over the state file, fsync the directory. A crash at any point
 * leaves either the old or the new file, never a mix.
 *
 * Load: a missing or empty (whitespace only) file is an empty config. A file
 * that does not parse or validate is refused as a whole — never half-loaded
 * — and renamed aside to "<path>.corrupt-<YYYYmmddTHHMMSS>" so the operator
 * can inspect it; the message says so:
 *   state file /var/lib/vnet/state.json is corrupt (line 3: ...); moved aside
 *   to /var/lib/vnet/state.json.corrupt-20240501T101500
 * Stale temp files from an interrupted save are removed.
 */
#ifndef VNET_SWITCH_PERSIST_H
#define VNET_SWITCH_PERSIST_H

#include <stddef.h>

#include "switch/config.h"

#define SW_STATE_FILE_MAX (64u << 20) /* refuse larger state files */

enum sw_persist_result {
	SW_PERSIST_OK = 0,
	SW_PERSIST_ERROR = -1,   /* I/O error (permissions, disk full...): err says */
	SW_PERSIST_CORRUPT = -2, /* refused and moved aside: err says where */
};

/* Writes c to path atomically. 0 or SW_PERSIST_ERROR. */
int sw_persist_save(const char *path, const struct sw_config *c, char *err, size_t errlen);

/* Reads path into a new config (*out). SW_PERSIST_OK (also for a missing or
 * empty file: *out is empty), SW_PERSIST_ERROR (cannot read: *out NULL, the
 * file is left alone), or SW_PERSIST_CORRUPT (*out NULL; the file was
 * renamed aside — or, if even that failed, err says so). */
int sw_persist_load(const char *path, struct sw_config **out, char *err, size_t errlen);

#endif
