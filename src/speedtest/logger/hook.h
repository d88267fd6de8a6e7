/* hook.h - the probe's --before and --after commands: a shell command with a time limit */
#ifndef DST_LOGGER_HOOK_H
#define DST_LOGGER_HOOK_H

#include <stddef.h>

/*
 * Runs cmd with /bin/sh -c (posix_spawn, in a process group of its own, its stdout going to
 * our stderr so the console lines stay clean) and waits at most timeout_s seconds; on timeout
 * the whole group is killed. Logs the outcome under the name what ("--before"). Returns 0 if
 * the command exited 0; otherwise writes the reason into err ("exit status 3", "killed by
 * signal 9", "timed out after 5 s", "cannot start /bin/sh: REASON") and returns DST_EDEP,
 * DST_ETIMEDOUT or DST_EIO. Blocks the calling thread.
 */
int logger_hook_run(const char *what, const char *cmd, int timeout_s, char *err, size_t errlen);

#endif
