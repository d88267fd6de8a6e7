/* catalog_db.c - the catalog: the toys in memory under a rwlock, durable in a journal and a file */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/toystore.h"

#define RECENT_BUYS 8192         /* request ids remembered */
#define JOURNAL_MAX (1u << 20)   /* default journal bytes before the table goes to the file */
#define SLACK       (256u << 10) /* preallocated beyond journal_max */

/*
 * Buys change the table under the write lock, take a version number and queue their journal
 * line (the toy's new stock and the request id) in version order; readers see the change at
 * once. A buyer then waits until the journal holds its line (durable >= its version). Whoever
 * finds no write going on becomes the writer: it takes every line queued so far, writes them
 * at the journal's end with one fdatasync, and wakes every waiter they covered. Buys that
 * arrive during a write wait for the next one, which covers them all.
 *
 * When the journal passes journal_max (and at open and at a clean stop) the writer compacts:
 * under the write lock it formats the table and takes the lines queued (so the table is
 * exactly the journal's end), writes those lines to the journal, then the table to the file
 * (temp + fsync + rename + directory fsync), then a new journal holding only the recent
 * request ids. A crash between leaves the old file and a whole journal, or the new file and
 * the old journal, whose lines (absolute stock, not differences) then replay to the same table.
 */
struct catalog_db {
    pthread_rwlock_t lock; /* the table, applied, recent */
    struct catalog_toy *toys;
    int n;
    uint64_t applied; /* version of the table: one more for each change */
    struct ts_reqids *recent;
    char *path, *jpath;
    int dirfd;
    size_t journal_max;
    struct catalog_journal *journal; /* the writer's */
    pthread_mutex_t commit_mu;       /* what follows */
    pthread_cond_t commit_cv;
    char *pending; /* journal lines queued, not yet written */
    size_t plen, pcap;
    uint64_t queued;  /* the version of the last line queued */
    uint64_t durable; /* the version in the journal */
    bool writing, broken;
};

/* Replaying a journal over a table: each change sets a toy's stock, each id is remembered. */
struct replay {
    struct catalog_toy *toys;
    int n;
    struct ts_reqids *recent; /* NULL: only checking */
    long changes;
};

static int replay_one(void *ud, const struct catalog_change *c, char *err, size_t errlen)
{
    struct replay *r = ud;
    int i = 0;

    if (c->kind != 'i') {
        while (i < r->n && strcmp(r->toys[i].name, c->name) != 0)
            i++;
        if (i == r->n)
            return dst_errf(DST_EINVAL, err, errlen, "%s is not a toy of the file", c->name);
        r->toys[i].quantity = c->quantity;
        r->changes++;
    }
    if (r->recent && c->request_id[0] && !ts_reqids_get(r->recent, c->request_id))
        ts_reqids_put(r->recent, c->request_id); /* value 0: on disk */
    return 0;
}

/* Reads the file at path (and replays its journal) into *toys, *n. DST_ENOTFOUND: neither. */
static int read_table(const char *path, const char *jpath, struct replay *r, char *err,
                      size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = catalog_file_read(path, &text, &len, err, errlen);

    if (rc)
        return rc; /* DST_ENOTFOUND: a journal left without its file is not replayed */
    rc = catalog_file_parse(text, len, path, &r->toys, &r->n, err, errlen);
    free(text);
    if (rc == 0)
        rc = catalog_journal_replay(jpath, replay_one, r, err, errlen);
    if (rc == DST_ENOTFOUND)
        rc = 0; /* no journal yet */
    if (rc) {
        free(r->toys);
        r->toys = NULL;
    }
    return rc;
}

int catalog_db_check(const char *path, char *err, size_t errlen)
{
    struct replay r = {0};
    char *jpath = dst_xasprintf("%s.journal", path);
    int rc = read_table(path, jpath, &r, err, errlen);

    free(jpath);
    free(r.toys);
    return rc == DST_ENOTFOUND ? 0 : rc;
}

static void id_line(void *ud, const struct ts_reqid *e)
{
    struct dst_buf *b = ud;
    struct catalog_change c = {.kind = 'i'};
    char line[TS_REQID_MAX + 8];

    memcpy(c.request_id, e->id, sizeof(c.request_id));
    int n = catalog_journal_format(&c, line, sizeof(line));
    if (n > 0)
        dst_buf_append(b, line, (size_t)n);
}

/*
 * The writer's (or open's): lines buf[0..len) to the journal, then text to the file, then a new
 * journal holding ids. See the crash analysis above struct catalog_db.
 */
static int compact_write(struct catalog_db *db, const char *buf, size_t len, const char *text,
                         size_t tlen, const struct dst_buf *ids)
{
    struct catalog_journal *j = NULL;
    int rc = 0;

    if (len && db->journal)
        rc = catalog_journal_append(db->journal, buf, len);
    rc = rc ? rc : catalog_file_write(db->path, db->dirfd, text, tlen);
    rc = rc ? rc
            : catalog_journal_create(db->jpath, db->dirfd, ids->data, ids->len,
                                     ids->len + db->journal_max + SLACK, &j);
    if (rc == 0) {
        catalog_journal_free(db->journal);
        db->journal = j;
    }
    return rc;
}

/*
 * Compacts (the writer only, or open's and close's callers): takes the table and the queued
 * lines under the write lock; *upto the version they cover.
 */
static int compact(struct catalog_db *db, uint64_t *upto)
{
    struct dst_buf ids;
    size_t len = 0, tlen = 0;

    dst_buf_init(&ids, 0);
    pthread_rwlock_wrlock(&db->lock);
    char *text = catalog_file_format(db->toys, db->n, &tlen);
    ts_reqids_each(db->recent, id_line, &ids);
    pthread_mutex_lock(&db->commit_mu);
    char *buf = db->pending;
    len = db->plen;
    *upto = db->queued;
    db->pending = NULL;
    db->plen = db->pcap = 0;
    pthread_mutex_unlock(&db->commit_mu);
    pthread_rwlock_unlock(&db->lock);
    int rc = compact_write(db, buf, len, text, tlen, &ids);
    free(buf);
    free(text);
    dst_buf_release(&ids);
    return rc;
}

/* db's table from its file and journal, or the defaults written to a new file; a new journal. */
static int load(struct catalog_db *db, bool lab2_only, char *err, size_t errlen)
{
    struct replay r = {.recent = db->recent};
    int rc = read_table(db->path, db->jpath, &r, err, errlen);
    uint64_t upto = 0;
    bool created = rc == DST_ENOTFOUND;

    if (rc && !created)
        return rc;
    if (created && access(db->jpath, F_OK) == 0) {
        char *old = dst_xasprintf("%s.old", db->jpath);
        dst_warn("%s is missing: its journal is kept as %s and a new catalog made", db->path, old);
        rc = rename(db->jpath, old) == 0 ? 0 : DST_EIO;
        free(old);
        if (rc)
            return dst_errf(rc, err, errlen, "cannot move %s aside: %s", db->jpath,
                            strerror(errno));
    }
    if (created)
        catalog_file_defaults(lab2_only, &r.toys, &r.n);
    db->toys = r.toys;
    db->n = r.n;
    rc = compact(db, &upto);
    if (rc)
        return dst_errf(rc, err, errlen, "cannot write %s (see the error above)", db->path);
    if (created)
        dst_info("created %s with the %s catalog (%d toys)", db->path,
                 lab2_only ? "Lab 2" : "Lab 3", db->n);
    else
        dst_info("%d toys from %s, %ld changes from its journal", db->n, db->path, r.changes);
    return 0;
}

int catalog_db_open(const char *path, bool lab2_only, size_t journal_max, struct catalog_db **out,
                    char *err, size_t errlen)
{
    struct catalog_db *db = dst_xnew(struct catalog_db);
    char *dir = dst_xstrdup(path);
    int rc = 0;

    db->dirfd = -1;
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->commit_mu, NULL);
    pthread_cond_init(&db->commit_cv, NULL);
    db->path = dst_xstrdup(path);
    db->jpath = dst_xasprintf("%s.journal", path);
    db->journal_max = journal_max ? journal_max : JOURNAL_MAX;
    db->recent = ts_reqids_new(RECENT_BUYS);
    db->dirfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (db->dirfd < 0) {
        rc = dst_errf(DST_EIO, err, errlen, "cannot open the directory of %s: %s", path,
                      strerror(errno));
        goto out;
    }
    rc = load(db, lab2_only, err, errlen);
out:
    free(dir);
    if (rc) {
        catalog_db_free(db);
        return rc;
    }
    *out = db;
    return 0;
}

int catalog_db_close(struct catalog_db *db)
{
    uint64_t upto = 0;

    if (!db)
        return 0;
    pthread_mutex_lock(&db->commit_mu);
    while (db->writing)
        pthread_cond_wait(&db->commit_cv, &db->commit_mu);
    bool broken = db->broken;
    db->writing = !broken;
    pthread_mutex_unlock(&db->commit_mu);
    if (broken)
        return DST_EIO;
    int rc = compact(db, &upto);
    pthread_mutex_lock(&db->commit_mu);
    db->writing = false;
    if (rc == 0 && upto > db->durable)
        db->durable = upto;
    db->broken = db->broken || rc != 0;
    pthread_cond_broadcast(&db->commit_cv);
    pthread_mutex_unlock(&db->commit_mu);
    if (rc == 0)
        dst_info("wrote %s", db->path);
    return rc;
}

void catalog_db_free(struct catalog_db *db)
{
    if (!db)
        return;
    if (db->dirfd >= 0)
        close(db->dirfd);
    ts_reqids_free(db->recent);
    catalog_journal_free(db->journal);
    free(db->pending);
    free(db->toys);
    free(db->path);
    free(db->jpath);
    pthread_rwlock_destroy(&db->lock);
    pthread_mutex_destroy(&db->commit_mu);
    pthread_cond_destroy(&db->commit_cv);
    free(db);
}

/* ---- reads and changes ---- */

static struct catalog_toy *find(struct catalog_db *db, const char *name)
{
    for (int i = 0; i < db->n; i++)
        if (strcmp(db->toys[i].name, name) == 0)
            return &db->toys[i];
    return NULL;
}

int catalog_db_get(struct catalog_db *db, const char *name, struct catalog_toy *out)
{
    pthread_rwlock_rdlock(&db->lock);
    const struct catalog_toy *t = find(db, name);
    if (t)
        *out = *t;
    pthread_rwlock_unlock(&db->lock);
    return t ? 0 : DST_ENOTFOUND;
}

json_t *catalog_db_list(struct catalog_db *db)
{
    json_t *a = json_array();

    pthread_rwlock_rdlock(&db->lock);
    for (int i = 0; i < db->n; i++)
        json_array_append_new(a, json_pack("{s:s,s:f,s:I}", "name", db->toys[i].name, "price",
                                           db->toys[i].price, "quantity",
                                           (json_int_t)db->toys[i].quantity));
    pthread_rwlock_unlock(&db->lock);
    return a;
}

/* Queues c's journal line as version v's; under the write lock (so in version order). */
static void queue(struct catalog_db *db, const struct catalog_change *c, uint64_t v)
{
    char line[256];
    int len = catalog_journal_format(c, line, sizeof(line));

    if (len < 0)
        abort(); /* a name and an id that passed their checks always fit */
    pthread_mutex_lock(&db->commit_mu);
    if (db->plen + (size_t)len > db->pcap) {
        db->pcap = (db->plen + (size_t)len) * 2;
        db->pending = dst_xrealloc(db->pending, db->pcap);
    }
    memcpy(db->pending + db->plen, line, (size_t)len);
    db->plen += (size_t)len;
    db->queued = v;
    pthread_mutex_unlock(&db->commit_mu);
}

/* The writer, under commit_mu (released meanwhile): the queued lines to the journal. */
static void write_queue(struct catalog_db *db)
{
    char *buf = db->pending;
    size_t len = db->plen;
    uint64_t upto = db->queued;

    db->pending = NULL;
    db->plen = db->pcap = 0;
    db->writing = true;
    pthread_mutex_unlock(&db->commit_mu);
    int rc = catalog_journal_append(db->journal, buf, len);
    free(buf);
    bool full = rc == 0 && catalog_journal_used(db->journal) > db->journal_max;
    pthread_mutex_lock(&db->commit_mu);
    if (rc == 0 && upto > db->durable)
        db->durable = upto;
    pthread_cond_broadcast(&db->commit_cv); /* its buyers need not wait for the compaction */
    if (full) {
        pthread_mutex_unlock(&db->commit_mu);
        rc = compact(db, &upto);
        pthread_mutex_lock(&db->commit_mu);
        if (rc == 0 && upto > db->durable)
            db->durable = upto;
    }
    db->writing = false;
    if (rc) {
        db->broken = true; /* memory is ahead of the disk now: no more buys */
        dst_error("catalog: buys are refused from now on: the journal or the file cannot be "
                  "written");
    }
    pthread_cond_broadcast(&db->commit_cv);
}

/* Returns once version v is on disk (writing it, or waiting for the writer); DST_EIO. */
static int durable(struct catalog_db *db, uint64_t v)
{
    pthread_mutex_lock(&db->commit_mu);
    while (db->durable < v && !db->broken) {
        if (db->writing)
            pthread_cond_wait(&db->commit_cv, &db->commit_mu);
        else
            write_queue(db);
    }
    int rc = db->durable >= v ? 0 : DST_EIO;
    pthread_mutex_unlock(&db->commit_mu);
    return rc;
}

static bool broken(struct catalog_db *db)
{
    pthread_mutex_lock(&db->commit_mu);
    bool b = db->broken;
    pthread_mutex_unlock(&db->commit_mu);
    return b;
}

/*
 * Under the write lock: one buy (request_id NULL: none); *v the version that makes it durable
 * (0: nothing to wait for). 0, DST_ENOTFOUND, DST_ECONFLICT.
 */
static int buy_locked(struct catalog_db *db, const char *name, long qty, const char *request_id,
                      struct catalog_toy *after, bool *dup, uint64_t *v)
{
    struct catalog_toy *t = find(db, name);
    struct ts_reqid *seen = request_id ? ts_reqids_get(db->recent, request_id) : NULL;
    int rc = 0;

    *dup = false;
    *v = 0;
    if (!t) {
        rc = DST_ENOTFOUND;
    } else if (seen) {
        *dup = true;
        *v = (uint64_t)seen->value;
    } else if (t->quantity < qty) {
        rc = DST_ECONFLICT;
    } else {
        struct catalog_change c = {.kind = 'b'};
        t->quantity -= qty;
        *v = ++db->applied;
        if (request_id)
            ts_reqids_put(db->recent, request_id)->value = (int64_t)*v;
        memcpy(c.name, t->name, sizeof(c.name));
        c.quantity = t->quantity;
        snprintf(c.request_id, sizeof(c.request_id), "%s", request_id ? request_id : "");
        queue(db, &c, *v);
    }
    if (t)
        *after = *t;
    return rc;
}

int catalog_db_buy(struct catalog_db *db, const char *name, long qty, const char *request_id,
                   struct catalog_toy *after, bool *dup)
{
    uint64_t v = 0;

    *dup = false;
    if (qty < 1 || qty > TS_QTY_MAX)
        return DST_EINVAL;
    if (broken(db))
        return DST_EIO;
    pthread_rwlock_wrlock(&db->lock);
    int rc = buy_locked(db, name, qty, request_id, after, dup, &v);
    pthread_rwlock_unlock(&db->lock);
    return rc ? rc : durable(db, v);
}

int catalog_db_buy_many(struct catalog_db *db, struct catalog_buy *buys, int n)
{
    uint64_t last = 0;

    if (broken(db))
        return DST_EIO;
    pthread_rwlock_wrlock(&db->lock);
    for (int i = 0; i < n; i++) {
        const struct ts_buy *b = buys[i].in;
        uint64_t v = 0;
        memset(&buys[i].after, 0, sizeof(buys[i].after));
        buys[i].dup = false;
        if (b->unknown || b->quantity < 1 || b->quantity > TS_QTY_MAX)
            buys[i].rc = b->unknown ? DST_ENOTFOUND : DST_EINVAL;
        else
            buys[i].rc =
                buy_locked(db, b->name, b->quantity, b->request_id[0] ? b->request_id : NULL,
                           &buys[i].after, &buys[i].dup, &v);
        if (v > last)
            last = v;
    }
    pthread_rwlock_unlock(&db->lock);
    return durable(db, last);
}

int catalog_db_restock(struct catalog_db *db, void (*fn)(void *ud, const char *name), void *ud)
{
    char(*names)[TS_NAME_MAX + 1] = NULL;
    int k = 0;
    uint64_t v = 0;

    pthread_rwlock_wrlock(&db->lock);
    for (int i = 0; i < db->n; i++) {
        struct catalog_change c = {.kind = 'r', .quantity = TS_RESTOCK};
        if (db->toys[i].quantity > 0)
            continue;
        if (!names)
            names = dst_xcalloc((size_t)db->n, sizeof(*names));
        if (!k)
            v = ++db->applied;
        db->toys[i].quantity = TS_RESTOCK;
        memcpy(names[k++], db->toys[i].name, sizeof(names[0]));
        memcpy(c.name, db->toys[i].name, sizeof(c.name));
        queue(db, &c, v);
    }
    pthread_rwlock_unlock(&db->lock);
    int rc = k ? durable(db, v) : 0;
    for (int i = 0; rc == 0 && i < k; i++) {
        dst_info("restocked %s to %d", names[i], TS_RESTOCK);
        if (fn)
            fn(ud, names[i]);
    }
    free(names);
    return rc;
}
