/* outbox.h - the probe's on-disk outbox: results the API has not taken yet, retried with back-off */
#ifndef DST_PROBE_OUTBOX_H
#define DST_PROBE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/result.h"

#define PROBE_OUTBOX_FIRST_MS 1000   /* first retry after a failed send */
#define PROBE_OUTBOX_MAX_MS   300000 /* the back-off doubles up to this */

struct probe_outbox;

/*
 * Sends one result: 0 when the API stored it (or had it already), DST_EINVAL when the API
 * rejected it for good (reason in err), any other code for a failure worth retrying.
 */
typedef int (*probe_outbox_send_fn)(void *ud, struct dst_result *r, char *err, size_t errlen);

/*
 * Opens the outbox directory dir (borrowed), creating it and dir/bad (mode 0700) if missing.
 * DST_EIO, logged with the path and the system's reason, if it cannot.
 */
int probe_outbox_open(const char *dir, struct probe_outbox **out);
void probe_outbox_free(struct probe_outbox *ob); /* NULL is fine */

/*
 * Writes r (its id must be a UUID, else DST_EINVAL) as DIR/<id>.json atomically: a temporary
 * file, fsync, rename, fsync of the directory. Once this returns 0 the result survives a crash
 * or power loss. DST_EIO with "PATH: what: reason" (errno's text) in err otherwise; nothing is
 * left behind then. Rewriting an id already there replaces it.
 */
int probe_outbox_put(struct probe_outbox *ob, const struct dst_result *r, char *err, size_t errlen);

/*
 * Reads back the outbox file called name (no directory) whose bytes are text[0..len), as a
 * flush does before it sends it, into r (initialised by the caller; release it either way).
 * DST_EINVAL with the reason in err if it is not a valid result named "<its id>.json": a
 * flush moves such a file to DIR/bad/.
 */
int probe_outbox_read(const char *name, const char *text, size_t len, struct dst_result *r,
                      char *err, size_t errlen);

/* Number of results waiting (DIR/<id>.json files); -1 if the directory cannot be read. */
int probe_outbox_count(const struct probe_outbox *ob);

/*
 * When a retry is due (now_ms, monotonic, at or after the back-off time), sends waiting results
 * with send: a stored one's file is removed; a rejected one, and any file that is not a valid
 * result named after its id, is moved to DIR/bad/ with a warning; the first failure stops the
 * round and doubles the back-off (1 s up to 5 min), a round without failure resets it. At most
 * 64 results per call. Returns how many were stored.
 */
int probe_outbox_flush(struct probe_outbox *ob, int64_t now_ms, probe_outbox_send_fn send,
                       void *ud);

/* Makes the next flush try at once (e.g. the API just took a result again). */
void probe_outbox_kick(struct probe_outbox *ob);

/* When the next retry is due (monotonic ms; 0 = at once) and the current back-off step. */
int64_t probe_outbox_due_ms(const struct probe_outbox *ob);
int64_t probe_outbox_backoff_ms(const struct probe_outbox *ob);

#endif
