/* sig.h - process-wide stop requests from SIGTERM/SIGINT, observable from any thread */
#ifndef DST_SIG_H
#define DST_SIG_H

#include <stdbool.h>

/*
 * Call once from main before any thread starts: blocks SIGTERM, SIGINT and SIGHUP in every
 * thread, ignores SIGPIPE, and starts a watcher thread that turns those signals into a stop
 * request.
 */
int dst_sig_init(void);

/* True once a stop was requested (signal or dst_sig_request_stop). */
bool dst_sig_stopping(void);

/* Requests a stop from code (e.g. a --once run that finished). */
void dst_sig_request_stop(void);

/* Sleeps up to timeout_ms (<0: forever) or until a stop is requested; true if stopping. */
bool dst_sig_wait(int timeout_ms);

/* Which signal asked to stop (0 if none or requested from code). */
int dst_sig_last(void);

#endif
