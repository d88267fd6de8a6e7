/* toystore.h - the toy store's parts: the catalog table, the order log, what the tiers share */
#ifndef DST_TOYSTORE_H
#define DST_TOYSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dst_http_client;
struct dst_http_req;

#define TS_NAME_MAX  64         /* bytes in a toy's name */
#define TS_QTY_MAX   1000000000 /* largest quantity a buy may ask for, and a stock may hold */
#define TS_REQID_MAX 64         /* bytes in a request id */
#define TS_RESTOCK   100        /* what an out-of-stock toy is restocked to */
#define TS_BATCH_MAX 1024       /* buys in one of the catalog's POST /buys */

/* ---- toystore.c: what the services share ---- */

/* A toy's name: 1..TS_NAME_MAX bytes of letters, digits, '.', '_', '-' (so it fits a path). */
bool ts_name_valid(const char *s);
/* A request id: 1..TS_REQID_MAX bytes of the same characters. */
bool ts_reqid_valid(const char *s);
/* {"error":{"code":status,"message":msg}} with that status (servers made with error_key "code"). */
void ts_reply_error(struct dst_http_req *req, int status, const char *msg);

/*
 * The checks every write passes first, so that no page of another site can change the store:
 * a request a browser says came from a foreign page gets 403, a body not declared
 * application/json 415 (a foreign page can send text/plain or a form without asking). False
 * when it answered.
 */
bool ts_write_ok(struct dst_http_req *req);
/* {"data":data} with status 200; data is taken (decref'd). */
void ts_reply_data(struct dst_http_req *req, json_t *data);
/*
 * This thread's HTTP client (kept-alive connections to the back end), made on first use and
 * freed when the thread exits; NULL if libcurl cannot be loaded.
 */
struct dst_http_client *ts_client(void);
/* An order replica as the front end and its peers know it: --order / --peer ID=URL. */
struct ts_replica {
    long id;
    char url[256];
};
/* A buy's JSON body: {"name","quantity","request_id"}; which members are wanted is the caller's. */
struct ts_buy {
    char name[TS_NAME_MAX + 1]; /* "" when absent; a name ts_name_valid refuses: unknown = true */
    bool unknown;               /* a name no toy can have (not a 400: "product not found") */
    long quantity;
    char request_id[TS_REQID_MAX + 1]; /* "" when absent */
};
/*
 * Reads body into b. want_name: "name" must be a non-empty string of at most TS_NAME_MAX bytes.
 * "quantity" must be an integer 1..TS_QTY_MAX; "request_id", when present (or want_reqid),
 * ts_reqid_valid. DST_EINVAL with a message naming the field in err.
 */
int ts_buy_parse(const char *body, size_t len, bool want_name, bool want_reqid, struct ts_buy *b,
                 char *err, size_t errlen);
/*
 * Reads the catalog's batch body {"buys":[{"name","quantity","request_id"},…]} (1 to
 * TS_BATCH_MAX buys, each as ts_buy_parse with want_name) into *out (malloc'd, the caller's) and
 * *n. DST_EINVAL with a message naming the buy and the field ("buys[2]: quantity must be…").
 */
int ts_buys_parse(const char *body, size_t len, struct ts_buy **out, int *n, char *err,
                  size_t errlen);
/* Parses "ID=URL" (ID 0..1000000, URL http[s]://…); err says why not. */
int ts_peer_parse(const char *s, long *id, char *url, size_t urllen, char *err, size_t errlen);

/* ---- reqids.c: the recent request ids (not thread-safe: the owner locks) ---- */

struct ts_reqids;
struct ts_reqid {
    char id[TS_REQID_MAX + 1];
    int state;     /* the owner's */
    int64_t value; /* the owner's */
    int next;      /* the bucket chain (reqids.c's) */
};
/* A table of the last cap ids seen (the oldest is forgotten first). */
struct ts_reqids *ts_reqids_new(int cap);
void ts_reqids_free(struct ts_reqids *r);
/* The entry of id, or NULL. Valid until the next ts_reqids_put. */
struct ts_reqid *ts_reqids_get(struct ts_reqids *r, const char *id);
/* A new entry for id (state and value 0), forgetting the oldest when full. id must be new. */
struct ts_reqid *ts_reqids_put(struct ts_reqids *r, const char *id);
/* Calls fn for each id remembered, the oldest first. */
void ts_reqids_each(struct ts_reqids *r, void (*fn)(void *ud, const struct ts_reqid *e), void *ud);

/* ---- catalog_file.c: the catalog's file ---- */

struct catalog_toy {
    char name[TS_NAME_MAX + 1];
    char price_text[32]; /* as read, written back as is */
    double price;
    long quantity;
};

/*
 * Parses the database.txt format: one toy per line, "NAME PRICE QUANTITY" separated by blanks
 * (spaces or tabs), empty lines ignored, the last newline optional. A bad line is DST_EINVAL
 * with "PATH:LINE: reason" in err. *toys (malloc'd, the caller's) and *n are written only on
 * success. No file access (unit-tested).
 */
int catalog_file_parse(const char *text, size_t len, const char *path, struct catalog_toy **toys,
                       int *n, char *err, size_t errlen);
/* The file's text for toys (malloc'd, NUL-terminated; *len its length). */
char *catalog_file_format(const struct catalog_toy *toys, int n, size_t *len);
/* The starting catalogs: Lab 3's ten toys at 100, or (lab2) the original four. */
int catalog_file_defaults(bool lab2, struct catalog_toy **toys, int *n);

/* Reads the whole file into *text (malloc'd, NUL-terminated); DST_ENOTFOUND when missing. */
int catalog_file_read(const char *path, char **text, size_t *len, char *err, size_t errlen);
/*
 * Writes text to path.tmp, fsyncs it, renames it over path and fsyncs the directory (dirfd): a
 * crash leaves the old file or the new one. DST_EIO (logged).
 */
int catalog_file_write(const char *path, int dirfd, const char *text, size_t len);

/* ---- catalog_db.c: the catalog, in memory, in its journal and its file ---- */

struct catalog_db;
/*
 * Reads path, or creates it with the default catalog when it does not exist, then replays its
 * journal (path.journal, see catalog_journal.c) when there is one; then makes the file the
 * table (when the journal changed it) and starts a new journal. A file or a journal that does
 * not parse is an error (err names the line) and both are left as they are; so is a journal
 * whose file is missing. journal_max: the journal's bytes past which the table is written to
 * the file and the journal started again (0: the default, 1 MiB). DST_EIO when it cannot be
 * read or written.
 */
int catalog_db_open(const char *path, bool lab2, size_t journal_max, struct catalog_db **out,
                    char *err, size_t errlen);
/*
 * A clean stop: writes the table to the file and starts an empty journal (unless a write
 * failed before: then the file and journal stay as they are). No buy may be under way.
 */
int catalog_db_close(struct catalog_db *db);
void catalog_db_free(struct catalog_db *db);
/*
 * What --check-config says of path and its journal: 0 when the file is missing (and has no
 * journal) or both read; err names a bad line.
 */
int catalog_db_check(const char *path, char *err, size_t errlen);
/* A copy of the toy called name; DST_ENOTFOUND. Takes the read lock. */
int catalog_db_get(struct catalog_db *db, const char *name, struct catalog_toy *out);
/* Every toy, as a JSON array of {"name","price","quantity"}. */
json_t *catalog_db_list(struct catalog_db *db);
/*
 * Takes qty (1..TS_QTY_MAX) of name off the stock when there is that much, and returns once
 * the change is on disk (group commit: concurrent buys share one write and fsync). A request
 * id (may be NULL) seen before among the recent ones is not taken twice: it answers as the
 * first time did. *after is the toy after the buy. 0, DST_ENOTFOUND, DST_ECONFLICT (not
 * enough stock), DST_EIO (the file could not be written: the catalog then refuses all buys).
 * *dup is set when the request id had been seen.
 */
int catalog_db_buy(struct catalog_db *db, const char *name, long qty, const char *request_id,
                   struct catalog_toy *after, bool *dup);
/* One buy of a batch and its outcome (catalog_db_buy_many). */
struct catalog_buy {
    const struct ts_buy *in; /* name, quantity, request_id ("" none), unknown */
    int rc;                  /* 0, DST_ENOTFOUND, DST_ECONFLICT */
    bool dup;                /* its request id had been seen: nothing taken */
    struct catalog_toy after;
};
/*
 * catalog_db_buy for each of buys[0..n), in order, under one hold of the write lock, made
 * durable together by one journal write (one fdatasync). Each buy's outcome in its rc, dup and
 * after. Returns 0 once they are on disk, or DST_EIO (nothing acknowledged).
 */
int catalog_db_buy_many(struct catalog_db *db, struct catalog_buy *buys, int n);
/*
 * Sets every toy at 0 back to TS_RESTOCK, on disk before it returns. Calls fn(ud, name) for
 * each toy restocked, after that. 0 or DST_EIO.
 */
int catalog_db_restock(struct catalog_db *db, void (*fn)(void *ud, const char *name), void *ud);

/* ---- catalog_journal.c: the catalog's journal of changes since its file was written ---- */

/* One line of the journal: a toy's stock after a buy or a restock, or a request id alone. */
struct catalog_change {
    char kind;                         /* 'b' a buy, 'r' a restock, 'i' a request id alone */
    char name[TS_NAME_MAX + 1];        /* "" for 'i' */
    long quantity;                     /* the stock after the change */
    char request_id[TS_REQID_MAX + 1]; /* "" when none */
};
/* "b NAME QUANTITY [ID]\n", "r NAME QUANTITY\n" or "i ID\n" into buf; its length, or -1. */
int catalog_journal_format(const struct catalog_change *c, char *buf, size_t len);
/* One line (without its newline) into c; DST_EINVAL with the reason in err. */
int catalog_journal_parse_line(const char *line, size_t len, struct catalog_change *c, char *err,
                               size_t errlen);
/* Called for each line replayed; non-zero (and a reason in err) stops the replay. */
typedef int (*catalog_journal_fn)(void *ud, const struct catalog_change *c, char *err,
                                  size_t errlen);
/*
 * Reads the journal at path and hands each line to fn in order. Its text ends at the first
 * NUL byte (the zeros of its preallocation); a last line without its newline is a write a
 * crash cut short and is dropped with a warning. DST_ENOTFOUND when there is no file,
 * DST_EINVAL "PATH:LINE: reason" for a line that does not parse or that fn refuses, DST_EIO.
 * Read only.
 */
int catalog_journal_replay(const char *path, catalog_journal_fn fn, void *ud, char *err,
                           size_t errlen);

struct catalog_journal;
/*
 * A new journal at path holding head[0..hlen) (whole lines), zeros up to prealloc bytes:
 * written to path.tmp, fsync'd, renamed over path, the directory (dirfd) fsync'd. DST_EIO.
 */
int catalog_journal_create(const char *path, int dirfd, const char *head, size_t hlen,
                           size_t prealloc, struct catalog_journal **out);
/* Writes buf[0..len) (whole lines) after the journal's text and fdatasyncs; DST_EIO. */
int catalog_journal_append(struct catalog_journal *j, const char *buf, size_t len);
/* The bytes of text in the journal. */
size_t catalog_journal_used(const struct catalog_journal *j);
void catalog_journal_free(struct catalog_journal *j);

/* ---- order_log.c: the order log, in memory and in its file ---- */

struct order_rec {
    int64_t number;
    char name[TS_NAME_MAX + 1];
    long quantity;
    char request_id[TS_REQID_MAX + 1]; /* "" in the original's three-column lines */
};

/*
 * Parses one line of the log (without its newline): "NUMBER,NAME,QUANTITY[,REQUEST_ID]".
 * DST_EINVAL with the reason in err. No file access (unit-tested).
 */
int order_log_parse_line(const char *line, size_t len, struct order_rec *out, char *err,
                         size_t errlen);
/* The line for r, newline included, into buf; its length, or -1 if it does not fit. */
int order_log_format(const struct order_rec *r, char *buf, size_t len);

struct order_log;
/*
 * Opens path (created when missing) and reads it: numbers must run 0, 1, 2…; a bad complete
 * line is an error naming it (err: "PATH:LINE: reason"); a last line without its newline is a
 * write a crash cut short (never acknowledged): it is dropped with a warning and the file cut
 * back to the last whole line. For each order read, fn(ud, rec) is called (NULL: none).
 */
int order_log_open(const char *path, void (*fn)(void *ud, const struct order_rec *r), void *ud,
                   struct order_log **out, char *err, size_t errlen);
void order_log_free(struct order_log *log);
/* What --check-config says of path: 0 when it is missing or reads; err names a bad line. */
int order_log_check(const char *path, char *err, size_t errlen);
/*
 * Appends an order for name × qty with the next number (written to *number), and returns once
 * it is on disk (group commit) and through the hook. 0, DST_EIO (then every later append fails
 * too), or the hook's failure of its batch: DST_ECONFLICT, *number set, the line on disk.
 */
int order_log_append(struct order_log *log, const char *name, long qty, const char *request_id,
                     int64_t *number);
/*
 * order_log_append in two halves: queue takes the number (*number) and queues the line for
 * the batch *batch (0, DST_EIO, DST_EINVAL); wait returns once that batch is on disk and
 * through the hook (as append). Lines queued together go in one batch: the order leader
 * queues a whole catalog batch's orders before its buyers wait.
 */
int order_log_queue(struct order_log *log, const char *name, long qty, const char *request_id,
                    int64_t *number, uint64_t *batch);
int order_log_wait(struct order_log *log, uint64_t batch);
/*
 * Called by the writer for each batch while the batch is being written (by the log's syncer
 * thread) and before the batch's appends return (one batch at a time, in order): orders
 * [first, upto) are the lines buf[0..len), on disk only once the appends return (order_log_read
 * sees them only then). Non-zero fails those appends (DST_ECONFLICT), though the lines stay in
 * the file: the leader's propagation.
 */
typedef int (*order_log_hook_fn)(void *ud, int64_t first, const char *buf, size_t len,
                                 int64_t upto);
/* Sets the hook, and dropped: called for each order order_log_sync cuts off (ud: open's). */
void order_log_set_hooks(struct order_log *log, order_log_hook_fn hook,
                         void (*dropped)(void *ud, const struct order_rec *r));
/*
 * The lines of orders from, from + 1, … (at most max, only those on disk) as the file has them
 * (*text malloc'd, NUL-terminated, *len bytes); *next: the number after the last on disk.
 * DST_EINVAL when from is beyond it.
 */
int order_log_read(struct order_log *log, int64_t from, int max, char **text, size_t *len,
                   int64_t *next);
/*
 * Makes orders first..first+n-1 those of recs (a leader's): lines already there and the same
 * are kept; from the first that differs, the log is cut and recs written (fdatasync'd). Then,
 * when end >= 0 (the number after the leader's last order) and the log goes beyond it, it is cut
 * back to end. Each order cut off goes to the dropped hook, each written to open's fn.
 * It waits for this log's own queued appends to be written first. DST_ECONFLICT when first is
 * beyond the log's end (a gap: send from order_log_next), DST_EINVAL, DST_EIO.
 */
int order_log_sync(struct order_log *log, int64_t first, const struct order_rec *recs, int n,
                   int64_t end);
/* Calls the hook with an empty batch at the end, unless a batch is under way (one at a time). */
void order_log_nudge(struct order_log *log);
/* The order numbered n, once it is on disk; DST_ENOTFOUND. */
int order_log_get(struct order_log *log, int64_t n, struct order_rec *out);
/* The number the next order will get (the count of orders). */
int64_t order_log_next(struct order_log *log);

/* ---- frontend_cache.c: the front end's query cache, kept true by the catalog's push ---- */

struct fe_cache;
/* What a miss hands to fe_cache_put: the cache's generation when the fetch began. */
struct fe_cache_token {
    uint64_t epoch, gen;
};
/*
 * A cache of GET /products/NAME answers. With on, a thread follows the catalog's GET /events
 * (catalog_url's) and drops each toy it names; the cache is only used while that stream is up
 * (it is emptied when it starts, and when it is lost). Without on, every get misses.
 */
int fe_cache_new(const char *catalog_url, bool on, struct fe_cache **out);
/* Stops the event thread (within about a second) and frees; NULL is fine. */
void fe_cache_free(struct fe_cache *c);
/* name's cached body (malloc'd copy; *len) or NULL on a miss: then *t is the token to put with. */
char *fe_cache_get(struct fe_cache *c, const char *name, size_t *len, struct fe_cache_token *t);
/* Keeps body for name, unless name was dropped (or the cache emptied) since t was taken. */
void fe_cache_put(struct fe_cache *c, const char *name, const char *body, size_t len,
                  const struct fe_cache_token *t);
/* Forgets name: a buy of it, or the catalog's push. */
void fe_cache_drop(struct fe_cache *c, const char *name);
/* For /ping: whether the stream is up, hits, misses, drops. */
json_t *fe_cache_stats(struct fe_cache *c);

/* ---- frontend_leader.c: which order replica leads, as the front end decides it ---- */

#define FE_REPLICAS_MAX 16

struct fe_leader;
/*
 * Health-checks the replicas (rep: highest id first) every interval_ms from a thread of its own,
 * and chooses and announces the leader (PUT /leader, within call_timeout_ms).
 */
int fe_leader_new(const struct ts_replica *rep, int n, long interval_ms, long ping_timeout_ms,
                  long call_timeout_ms, struct fe_leader **out);
/* Stops the thread (after its current round) and frees; NULL is fine. */
void fe_leader_free(struct fe_leader *l);
/*
 * The leader's URL and the epoch of that choice, waiting for one until deadline_ms (monotonic)
 * when there is none; DST_ETIMEDOUT.
 */
int fe_leader_get(struct fe_leader *l, int64_t deadline_ms, char *url, size_t len, int64_t *epoch);
/*
 * A call to the leader of epoch failed (no answer, "not the leader", 503): asks for a round now
 * and waits until the choice changes or a round found nothing to change (at most an interval,
 * never past deadline_ms).
 */
void fe_leader_failed(struct fe_leader *l, int64_t epoch, int64_t deadline_ms);
/* For /ping: {"leader","epoch","elections","replicas":[{"id","url","live","ready"}]}. */
json_t *fe_leader_stats(struct fe_leader *l);
/*
 * Waits until the leader's id (-1: none) or the epoch differs from *leader and *epoch, or until
 * deadline_ms (monotonic); writes the current ones there. True when they changed.
 */
bool fe_leader_wait(struct fe_leader *l, long *leader, int64_t *epoch, int64_t deadline_ms);

/* ---- frontend_status.c: the live page at /status/ and what it shows ---- */

struct fe_status;
struct dst_http_server;
/*
 * The status page's state: orders counted per second, and a thread that pushes the status to
 * the page's event streams about once a second while any is open, and at once when the
 * leader changes. catalog_url, leader and cache are borrowed and must outlive it.
 */
int fe_status_new(const char *catalog_url, struct fe_leader *leader, struct fe_cache *cache,
                  struct fe_status **out);
/* GET /status (301), /status/, /status/{file}, /status/data, /status/events. */
int fe_status_mount(struct fe_status *s, struct dst_http_server *srv);
/* An order the front end acknowledged. */
void fe_status_order(struct fe_status *s);
/* Stops the thread and ends the event streams: before the HTTP server drains. */
void fe_status_close(struct fe_status *s);
/* Frees, once the HTTP server is freed (its handlers may still use it); NULL is fine. */
void fe_status_free(struct fe_status *s);

#endif
