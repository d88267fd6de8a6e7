/* store_sqlite_feed.c - SQLite store: the feed's follower, polling the file for changes */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_sqlite_priv.h"

/*
 * SQLite has no NOTIFY: every POLL_MS the follower asks its own connection for PRAGMA
 * data_version (which moves when any other connection, in any process, committed), and only
 * then reads the results past the last seq it saw and the changes log past the last row, in
 * one read transaction. A change through this handle pokes it, so it looks at once.
 */
#define POLL_MS 200
#define BATCH   1000 /* rows read per look; more are read at once after */

struct change_row {
    char kind;
    char *id;
    int64_t n, count, max_seq;
};

struct sqlite_feed {
    struct sqlite_store *s;
    struct dst_store_feed *f;
    struct sqlite_store_conn *conn; /* a file's: the follower's own; NULL for ":memory:" */
    pthread_t th;
    pthread_mutex_t lock; /* stop, poked */
    pthread_cond_t cond;
    bool stop, poked;
    int64_t data_version, last_seq, last_n;
    /* one look's finds */
    struct change_row ch[BATCH];
    int64_t seqs[BATCH];
    int nch, nseq;
};

/* Runs sql on c with args and calls row for each row until it returns non-zero. */
static int each(struct sqlite_store_conn *c, const char *sql, const struct dst_store_sql_val *args,
                int nargs, int (*row)(sqlite3_stmt *, void *), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_stmt_get(c, sql, &st), step = SQLITE_DONE;

    if (rc == 0)
        sqlite_store_bind(st, args, nargs);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = row(st, arg);
    if (rc == 0 && step != SQLITE_DONE)
        rc = sqlite_store_fail(c, "feed");
    sqlite_store_stmt_put(c, st);
    return rc;
}

static int int_row(sqlite3_stmt *st, void *arg)
{
    *(int64_t *)arg = sqlite3_column_int64(st, 0);
    return 0;
}

static int change_row(sqlite3_stmt *st, void *arg)
{
    struct sqlite_feed *fd = arg;
    struct change_row *r = &fd->ch[fd->nch++];
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    const char *id = (const char *)sqlite3_column_text(st, 2);

    r->n = sqlite3_column_int64(st, 0);
    r->kind = kind ? kind[0] : '?';
    r->id = id ? dst_xstrdup(id) : NULL;
    r->count = sqlite3_column_int64(st, 3);
    r->max_seq = sqlite3_column_int64(st, 4);
    return 0;
}

static int seq_row(sqlite3_stmt *st, void *arg)
{
    struct sqlite_feed *fd = arg;
    fd->seqs[fd->nseq++] = sqlite3_column_int64(st, 0);
    return 0;
}

#define SQL_CHANGES \
    "SELECT n, kind, id, count, max_seq FROM changes WHERE n > ? ORDER BY n LIMIT 1000"
#define SQL_SEQS "SELECT seq FROM results WHERE seq > ? ORDER BY seq LIMIT 1000"

/*
 * Reads what changed since the last look, in one read transaction: the changes log first, so
 * that a delete that took the newest row back moves last_seq down to the newest seq it left
 * (the next insert takes the deleted seq again).
 */
static int read_news(struct sqlite_feed *fd, struct sqlite_store_conn *c, bool *gap)
{
    struct dst_store_sql_val arg = {.type = DST_SQL_INT, .i = fd->last_n};
    int rc = sqlite_store_exec_cached(c, "BEGIN");

    rc = rc ? rc : each(c, SQL_CHANGES, &arg, 1, change_row, fd);
    *gap = fd->nch > 0 && fd->ch[0].n > fd->last_n + 1; /* trimmed past us */
    for (int i = 0; i < fd->nch; i++) {
        if (fd->ch[i].kind == 'd' && fd->ch[i].max_seq < fd->last_seq)
            fd->last_seq = fd->ch[i].max_seq;
        fd->last_n = fd->ch[i].n;
    }
    arg.i = fd->last_seq;
    rc = rc ? rc : each(c, SQL_SEQS, &arg, 1, seq_row, fd);
    if (fd->nseq > 0)
        fd->last_seq = fd->seqs[fd->nseq - 1];
    sqlite_store_rollback(c); /* ends the read transaction */
    return rc;
}

/* Tells the subscriber what read_news found, and forgets it. */
static void tell(struct sqlite_feed *fd, bool gap)
{
    if (gap)
        dst_store_feed_emit(fd->f, &(struct dst_store_change){.kind = DST_STORE_CH_RESYNC});
    for (int i = 0; i < fd->nch; i++) {
        struct change_row *r = &fd->ch[i];
        struct dst_store_change c = {.id = r->id, .count = r->count};
        if (r->kind == 'd')
            c.kind = DST_STORE_CH_DELETED;
        else if (r->kind == 'x')
            c.kind = DST_STORE_CH_EXCLUDED;
        else
            c = (struct dst_store_change){DST_STORE_CH_SETTING, .id = r->id, .version = r->count};
        dst_store_feed_emit(fd->f, &c);
        free(r->id);
    }
    for (int i = 0; i < fd->nseq; i++)
        dst_store_feed_emit(fd->f,
                            &(struct dst_store_change){DST_STORE_CH_RESULT, .seq = fd->seqs[i]});
    fd->nch = fd->nseq = 0;
}

/* One look: nothing when data_version says no other connection committed; *full: read more. */
static void look(struct sqlite_feed *fd, bool poked, bool *full)
{
    struct sqlite_store_conn *c = fd->conn;
    int64_t dv = fd->data_version;
    bool gap = false;
    int rc = 0;

    *full = false;
    if (c && each(c, "PRAGMA data_version", NULL, 0, int_row, &dv) == 0 && dv == fd->data_version &&
        !poked)
        return;
    fd->data_version = dv;
    rc = c ? 0 : sqlite_store_reader_get(fd->s, &c); /* ":memory:": the locked writer */
    rc = rc ? rc : read_news(fd, c, &gap);
    if (!fd->conn)
        sqlite_store_reader_put(fd->s, c);
    if (rc)
        dst_debug("store: sqlite feed: look failed (%s), again in %d ms", dst_strerror(rc),
                  POLL_MS);
    *full = fd->nch == BATCH || fd->nseq == BATCH;
    tell(fd, gap);
}

static void *follow(void *arg)
{
    struct sqlite_feed *fd = arg;
    bool full = false;

    pthread_mutex_lock(&fd->lock);
    while (!fd->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!fd->stop && !fd->poked && !full &&
               pthread_cond_timedwait(&fd->cond, &fd->lock, &until) != ETIMEDOUT)
            ;
        bool poked = fd->poked;
        fd->poked = false;
        if (fd->stop)
            break;
        pthread_mutex_unlock(&fd->lock);
        look(fd, poked || full, &full);
        pthread_mutex_lock(&fd->lock);
    }
    pthread_mutex_unlock(&fd->lock);
    return NULL;
}

/* Where the feed starts: the newest seq, the newest changes row, the data version. */
static int feed_begin(struct sqlite_feed *fd)
{
    struct sqlite_store_conn *c = fd->conn;
    int rc = c ? 0 : sqlite_store_reader_get(fd->s, &c);

    rc = rc ? rc
            : each(c, "SELECT coalesce(max(seq), 0) FROM results", NULL, 0, int_row, &fd->last_seq);
    rc =
        rc ? rc : each(c, "SELECT coalesce(max(n), 0) FROM changes", NULL, 0, int_row, &fd->last_n);
    rc = rc ? rc : each(c, "PRAGMA data_version", NULL, 0, int_row, &fd->data_version);
    if (!fd->conn)
        sqlite_store_reader_put(fd->s, c);
    return rc;
}

static void feed_free(struct sqlite_feed *fd)
{
    sqlite_store_conn_close(fd->conn);
    pthread_mutex_destroy(&fd->lock);
    pthread_cond_destroy(&fd->cond);
    free(fd);
}

int sqlite_feed_start(struct dst_store *base, struct dst_store_feed *f)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct sqlite_feed *fd = dst_xnew(struct sqlite_feed);

    fd->s = s;
    fd->f = f;
    pthread_mutex_init(&fd->lock, NULL);
    pthread_cond_init(&fd->cond, NULL);
    int rc = s->memory ? 0 : sqlite_store_conn_open(s->path, false, &fd->conn);
    rc = rc ? rc : feed_begin(fd);
    if (rc == 0 && pthread_create(&fd->th, NULL, follow, fd) != 0)
        rc = DST_ENOMEM;
    if (rc) {
        feed_free(fd);
        return rc;
    }
    pthread_mutex_lock(&s->plock);
    s->feed = fd;
    pthread_mutex_unlock(&s->plock);
    return 0;
}

void sqlite_feed_stop(struct dst_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    pthread_mutex_lock(&s->plock);
    struct sqlite_feed *fd = s->feed;
    s->feed = NULL;
    pthread_mutex_unlock(&s->plock);
    if (!fd)
        return;
    pthread_mutex_lock(&fd->lock);
    fd->stop = true;
    pthread_cond_signal(&fd->cond);
    pthread_mutex_unlock(&fd->lock);
    pthread_join(fd->th, NULL);
    feed_free(fd);
}

void sqlite_feed_poke(struct sqlite_store *s)
{
    pthread_mutex_lock(&s->plock);
    struct sqlite_feed *fd = s->feed;
    if (fd) {
        pthread_mutex_lock(&fd->lock);
        fd->poked = true;
        pthread_cond_signal(&fd->cond);
        pthread_mutex_unlock(&fd->lock);
    }
    pthread_mutex_unlock(&s->plock);
}
