/* order_log.c - the order log: numbered lines appended and fsync'd in groups, read back by number */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/toystore.h"

#define LINE_MAX_LEN 256
#define RESULTS      256 /* batch outcomes remembered for their appends to see */

/*
 * One line per order, "NUMBER,NAME,QUANTITY,REQUEST_ID\n", numbers 0, 1, 2… in file order.
 * An append takes the next number and queues its line under the lock, so lines reach the file
 * in number order. Then, as in catalog_db.c, whoever finds no write going on writes every
 * queued line at once and fdatasyncs; everyone whose line that covered returns. An order is
 * acknowledged only after its fdatasync, so a line a crash cut short (no newline yet) belongs
 * to an order nobody was told of: opening drops it. With a hook (the leader's propagation) the
 * batch is written and fdatasync'd by the syncer thread while the writer runs the hook, and
 * the batch's appends return once both are done.
 */
struct order_log {
    int fd;
    char *path;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    int64_t next;           /* the next number */
    int64_t durable;        /* orders [0, durable) are on disk */
    uint64_t seq;           /* batches started; the queued lines go with batch seq + 1 */
    uint64_t finished;      /* batches [1, finished] are through the hook */
    int result[RESULTS];    /* result[b % RESULTS]: batch b's (0 or the hook's error) */
    order_log_hook_fn hook; /* after each batch is on disk: the leader's propagation */
    void (*added)(void *ud, const struct order_rec *r);
    void (*dropped)(void *ud, const struct order_rec *r);
    void *ud;
    uint64_t *off; /* off[n]: where order n's line starts; off[next]: the end */
    size_t off_cap;
    char *pending; /* lines queued, not yet written */
    size_t plen, pcap;
    bool writing, broken;
    /* with a hook: the thread that writes a batch while the writer runs the hook (smu) */
    pthread_t syncer;
    pthread_mutex_t smu;
    pthread_cond_t scv;
    const char *sbuf;
    size_t slen;
    uint64_t sreq, sdone; /* batches handed to the syncer, and written by it */
    int src;              /* the last one's outcome */
    bool syncing, sstop;
};

int order_log_parse_line(const char *line, size_t len, struct order_rec *out, char *err,
                         size_t errlen)
{
    char buf[LINE_MAX_LEN + 1], *f[5] = {NULL};
    int k = 0;
    char *end = NULL;

    if (len > LINE_MAX_LEN)
        return dst_errf(DST_EINVAL, err, errlen, "the line is over %d bytes", LINE_MAX_LEN);
    if (memchr(line, '\0', len))
        return dst_errf(DST_EINVAL, err, errlen, "a NUL byte in the line");
    memcpy(buf, line, len);
    buf[len] = '\0';
    if (len > 0 && buf[len - 1] == '\r')
        buf[len - 1] = '\0';
    for (char *p = buf; p && k < 5; k++) {
        f[k] = p;
        p = strchr(p, ',');
        if (p)
            *p++ = '\0';
    }
    if (k < 3 || k > 4)
        return dst_errf(DST_EINVAL, err, errlen,
                        "expected NUMBER,NAME,QUANTITY[,REQUEST_ID], found %d fields", k);
    memset(out, 0, sizeof(*out));
    errno = 0;
    out->number = strtoll(f[0], &end, 10);
    if (f[0][0] < '0' || f[0][0] > '9' || *end || errno)
        return dst_errf(DST_EINVAL, err, errlen, "order number '%.40s' is not a number", f[0]);
    if (!ts_name_valid(f[1]))
        return dst_errf(DST_EINVAL, err, errlen, "name '%.70s' is not a toy's name", f[1]);
    snprintf(out->name, sizeof(out->name), "%s", f[1]);
    errno = 0;
    out->quantity = strtol(f[2], &end, 10);
    if (f[2][0] < '0' || f[2][0] > '9' || *end || errno || out->quantity < 1 ||
        out->quantity > TS_QTY_MAX)
        return dst_errf(DST_EINVAL, err, errlen, "quantity '%.40s' is not a number 1..%d", f[2],
                        TS_QTY_MAX);
    if (k == 4 && !ts_reqid_valid(f[3]))
        return dst_errf(DST_EINVAL, err, errlen, "request id '%.70s' is not valid", f[3]);
    if (k == 4)
        snprintf(out->request_id, sizeof(out->request_id), "%s", f[3]);
    return 0;
}

int order_log_format(const struct order_rec *r, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%" PRId64 ",%s,%ld%s%s\n", r->number, r->name, r->quantity,
                     r->request_id[0] ? "," : "", r->request_id);
    return n > 0 && (size_t)n < len ? n : -1;
}

/* Notes where order log->next starts (at) and that the end is now end. */
static void note_offset(struct order_log *log, uint64_t at, uint64_t end)
{
    if ((size_t)log->next + 2 > log->off_cap) {
        log->off_cap = log->off_cap ? log->off_cap * 2 : 1024;
        log->off = dst_xrealloc(log->off, log->off_cap * sizeof(*log->off));
    }
    log->off[log->next] = at;
    log->off[log->next + 1] = end;
}

/* Reads the whole log: offsets, checks, the torn tail (cut off unless log->fd is -1). */
static int scan(struct order_log *log, void (*fn)(void *, const struct order_rec *), void *ud,
                char *err, size_t errlen)
{
    FILE *f = fopen(log->path, "rb");
    char *line = NULL, why[200];
    size_t cap = 0;
    ssize_t n = 0;
    uint64_t at = 0;
    int rc = 0;

    if (!f)
        return dst_errf(DST_EIO, err, errlen, "cannot read %s: %s", log->path, strerror(errno));
    note_offset(log, 0, 0);
    while ((n = getline(&line, &cap, f)) > 0) {
        struct order_rec r;
        if (line[n - 1] != '\n') {
            dst_warn("%s: dropping a last line a crash cut short (%zd bytes after order %" PRId64
                     "): that order was never acknowledged",
                     log->path, n, log->next - 1);
            if (log->fd >= 0 && (ftruncate(log->fd, (off_t)at) != 0 || fsync(log->fd) != 0))
                rc = dst_errf(DST_EIO, err, errlen, "cannot cut %s back: %s", log->path,
                              strerror(errno));
            break;
        }
        if (order_log_parse_line(line, (size_t)n - 1, &r, why, sizeof(why)) != 0 ||
            (r.number != log->next &&
             snprintf(why, sizeof(why), "order number %" PRId64 ", expected %" PRId64, r.number,
                      log->next) > 0)) {
            rc = dst_errf(DST_EINVAL, err, errlen, "%s:%" PRId64 ": %s", log->path, log->next + 1,
                          why);
            break;
        }
        if (fn)
            fn(ud, &r);
        note_offset(log, at, at + (uint64_t)n);
        at += (uint64_t)n;
        log->next++;
    }
    free(line);
    fclose(f);
    log->durable = log->next;
    return rc;
}

int order_log_open(const char *path, void (*fn)(void *ud, const struct order_rec *r), void *ud,
                   struct order_log **out, char *err, size_t errlen)
{
    struct order_log *log = dst_xnew(struct order_log);
    char *dir = dst_xstrdup(path);
    int dfd = -1, rc = 0;

    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    pthread_mutex_init(&log->smu, NULL);
    pthread_cond_init(&log->scv, NULL);
    log->path = dst_xstrdup(path);
    log->added = fn;
    log->ud = ud;
    log->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->fd < 0 || dfd < 0 || fsync(dfd) != 0) {
        rc = dst_errf(DST_EIO, err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    rc = scan(log, fn, ud, err, errlen);
out:
    if (dfd >= 0)
        close(dfd);
    free(dir);
    if (rc) {
        order_log_free(log);
        return rc;
    }
    *out = log;
    return 0;
}

int order_log_check(const char *path, char *err, size_t errlen)
{
    struct order_log *log = dst_xnew(struct order_log);
    int rc = 0;

    log->fd = -1;
    log->path = dst_xstrdup(path);
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    pthread_mutex_init(&log->smu, NULL);
    pthread_cond_init(&log->scv, NULL);
    if (access(path, F_OK) == 0)
        rc = scan(log, NULL, NULL, err, errlen);
    order_log_free(log);
    return rc;
}

void order_log_free(struct order_log *log)
{
    if (!log)
        return;
    if (log->syncing) { /* before the file is closed: the syncer writes it */
        pthread_mutex_lock(&log->smu);
        log->sstop = true;
        pthread_cond_broadcast(&log->scv);
        pthread_mutex_unlock(&log->smu);
        pthread_join(log->syncer, NULL);
    }
    if (log->fd >= 0)
        close(log->fd);
    free(log->off);
    free(log->pending);
    free(log->path);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->smu);
    pthread_cond_destroy(&log->scv);
    free(log);
}

/* Writes buf[0..len) at the end and fdatasyncs. */
static int write_all(struct order_log *log, const char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t w = write(log->fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            dst_error("cannot write %s: %s", log->path, strerror(errno));
            return DST_EIO;
        }
        done += (size_t)w;
    }
    if (fdatasync(log->fd) != 0) {
        dst_error("cannot sync %s: %s", log->path, strerror(errno));
        return DST_EIO;
    }
    return 0;
}

/* The syncer: writes each batch handed to it (write_all), one at a time. */
static void *syncer(void *arg)
{
    struct order_log *log = arg;

    pthread_mutex_lock(&log->smu);
    for (;;) {
        while (log->sdone == log->sreq && !log->sstop)
            pthread_cond_wait(&log->scv, &log->smu);
        if (log->sdone == log->sreq)
            break; /* stopping, nothing handed over */
        const char *buf = log->sbuf;
        size_t len = log->slen;
        pthread_mutex_unlock(&log->smu);
        int rc = write_all(log, buf, len);
        pthread_mutex_lock(&log->smu);
        log->src = rc;
        log->sdone = log->sreq;
        pthread_cond_broadcast(&log->scv);
    }
    pthread_mutex_unlock(&log->smu);
    return NULL;
}

/*
 * The writer's batch: buf to the file and through the hook, at the same time when there is a
 * syncer. *hrc: the hook's outcome; returns the write's.
 */
static int write_batch(struct order_log *log, int64_t from, const char *buf, size_t len,
                       int64_t upto, int *hrc)
{
    *hrc = 0;
    if (!log->hook || !log->syncing) {
        int rc = write_all(log, buf, len);
        if (rc == 0 && log->hook)
            *hrc = log->hook(log->ud, from, buf, len, upto);
        return rc;
    }
    pthread_mutex_lock(&log->smu);
    log->sbuf = buf;
    log->slen = len;
    uint64_t me = ++log->sreq;
    pthread_cond_broadcast(&log->scv);
    pthread_mutex_unlock(&log->smu);
    *hrc = log->hook(log->ud, from, buf, len, upto);
    pthread_mutex_lock(&log->smu);
    while (log->sdone < me)
        pthread_cond_wait(&log->scv, &log->smu);
    int rc = log->src;
    pthread_mutex_unlock(&log->smu);
    return rc;
}

/*
 * Under log->mu: returns once batch b (the one that takes a line queued now: seq + 1) is on disk
 * and through the hook, writing the queue or waiting. DST_EIO when the file cannot be written,
 * the hook's error when it failed that batch.
 */
static int wait_batch(struct order_log *log, uint64_t b)
{
    while (log->finished < b && !log->broken) {
        if (log->writing) {
            pthread_cond_wait(&log->cv, &log->mu);
            continue;
        }
        char *buf = log->pending;
        size_t len = log->plen;
        int64_t from = log->durable, upto = log->next;
        uint64_t me = ++log->seq;
        log->pending = NULL;
        log->plen = log->pcap = 0;
        log->writing = true;
        pthread_mutex_unlock(&log->mu);
        int hrc = 0;
        int rc = write_batch(log, from, buf, len, upto, &hrc);
        free(buf);
        pthread_mutex_lock(&log->mu);
        if (rc == 0)
            log->durable = upto;
        log->writing = false;
        if (rc) {
            log->broken = true;
            dst_error("orders are refused from now on: %s cannot be written", log->path);
        }
        log->result[me % RESULTS] = rc ? rc : hrc;
        log->finished = me;
        pthread_cond_broadcast(&log->cv);
    }
    if (log->finished < b)
        return DST_EIO;
    if (log->finished - b >= RESULTS)
        return DST_ECONFLICT; /* too long ago to know: not acknowledged (the line may stay) */
    return log->result[b % RESULTS];
}

int order_log_queue(struct order_log *log, const char *name, long qty, const char *request_id,
                    int64_t *number, uint64_t *batch)
{
    struct order_rec r = {.quantity = qty};
    char line[LINE_MAX_LEN + 2];
    int rc = 0;

    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.request_id, sizeof(r.request_id), "%s", request_id ? request_id : "");
    pthread_mutex_lock(&log->mu);
    r.number = log->next;
    int len = order_log_format(&r, line, sizeof(line));
    if (log->broken || len < 0) {
        rc = log->broken ? DST_EIO : DST_EINVAL;
        goto out;
    }
    if (log->plen + (size_t)len > log->pcap) {
        log->pcap = (log->plen + (size_t)len) * 2;
        log->pending = dst_xrealloc(log->pending, log->pcap);
    }
    memcpy(log->pending + log->plen, line, (size_t)len);
    log->plen += (size_t)len;
    note_offset(log, log->off[log->next], log->off[log->next] + (uint64_t)len);
    log->next++;
    *number = r.number;
    *batch = log->seq + 1;
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int order_log_wait(struct order_log *log, uint64_t batch)
{
    pthread_mutex_lock(&log->mu);
    int rc = wait_batch(log, batch);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int order_log_append(struct order_log *log, const char *name, long qty, const char *request_id,
                     int64_t *number)
{
    uint64_t batch = 0;
    int64_t n = 0;
    int rc = order_log_queue(log, name, qty, request_id, &n, &batch);

    rc = rc ? rc : order_log_wait(log, batch);
    if (rc == 0 || rc == DST_ECONFLICT)
        *number = n;
    return rc;
}

int order_log_get(struct order_log *log, int64_t n, struct order_rec *out)
{
    char buf[LINE_MAX_LEN + 2];
    uint64_t at = 0, end = 0;

    pthread_mutex_lock(&log->mu);
    bool there = n >= 0 && n < log->durable;
    if (there) {
        at = log->off[n];
        end = log->off[n + 1];
    }
    pthread_mutex_unlock(&log->mu);
    if (!there || end <= at || end - at > sizeof(buf))
        return DST_ENOTFOUND;
    ssize_t r = pread(log->fd, buf, (size_t)(end - at), (off_t)at);
    if (r != (ssize_t)(end - at) || buf[r - 1] != '\n')
        return DST_EIO;
    return order_log_parse_line(buf, (size_t)r - 1, out, NULL, 0) == 0 ? 0 : DST_EIO;
}

int64_t order_log_next(struct order_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t n = log->next;
    pthread_mutex_unlock(&log->mu);
    return n;
}

void order_log_set_hooks(struct order_log *log, order_log_hook_fn hook,
                         void (*dropped)(void *ud, const struct order_rec *r))
{
    pthread_mutex_lock(&log->mu);
    log->hook = hook;
    log->dropped = dropped;
    if (hook && !log->syncing && log->fd >= 0)
        log->syncing = pthread_create(&log->syncer, NULL, syncer, log) == 0;
    pthread_mutex_unlock(&log->mu);
}

/* Under log->mu: order n's line as it is in the file (newline included) into buf; its length. */
static int read_line(struct order_log *log, int64_t n, char *buf, size_t len)
{
    uint64_t at = log->off[n], end = log->off[n + 1];

    if (end <= at || end - at > len)
        return DST_EIO;
    ssize_t r = pread(log->fd, buf, (size_t)(end - at), (off_t)at);
    if (r != (ssize_t)(end - at) || buf[r - 1] != '\n')
        return DST_EIO;
    return (int)r;
}

int order_log_read(struct order_log *log, int64_t from, int max, char **text, size_t *len,
                   int64_t *next)
{
    int rc = 0;

    *text = NULL;
    *len = 0;
    pthread_mutex_lock(&log->mu);
    *next = log->durable;
    if (from < 0 || from > log->durable) {
        rc = DST_EINVAL;
        goto out;
    }
    int64_t to = log->durable - from > max ? from + max : log->durable;
    size_t n = (size_t)(log->off[to] - log->off[from]);
    *text = dst_xmalloc(n + 1);
    if (n && pread(log->fd, *text, n, (off_t)log->off[from]) != (ssize_t)n) {
        free(*text);
        *text = NULL;
        rc = DST_EIO;
        goto out;
    }
    (*text)[n] = '\0';
    *len = n;
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Under log->mu: cuts the log back to its first n orders (each dropped one reported). */
static int cut(struct order_log *log, int64_t n)
{
    char buf[LINE_MAX_LEN + 2];

    for (int64_t k = n; k < log->durable; k++) {
        struct order_rec r;
        int len = read_line(log, k, buf, sizeof(buf));
        if (len > 0 && order_log_parse_line(buf, (size_t)len - 1, &r, NULL, 0) == 0 && log->dropped)
            log->dropped(log->ud, &r);
    }
    dst_warn("%s: replacing orders %" PRId64 "..%" PRId64 " (never acknowledged) by the leader's",
             log->path, n, log->durable - 1);
    if (ftruncate(log->fd, (off_t)log->off[n]) != 0 || fsync(log->fd) != 0) {
        dst_error("cannot cut %s back: %s", log->path, strerror(errno));
        log->broken = true;
        return DST_EIO;
    }
    log->next = log->durable = n;
    return 0;
}

int order_log_sync(struct order_log *log, int64_t first, const struct order_rec *recs, int n,
                   int64_t end)
{
    char have[LINE_MAX_LEN + 2], want[LINE_MAX_LEN + 2];
    char *buf = NULL;
    size_t blen = 0;
    int64_t k = first;
    int i = 0, rc = 0;

    pthread_mutex_lock(&log->mu);
    while ((log->writing || log->plen) && !log->broken) /* a deposed leader's last batch */
        pthread_cond_wait(&log->cv, &log->mu);
    if (log->broken) {
        rc = DST_EIO;
        goto out;
    }
    if (first < 0 || first > log->next || (end >= 0 && end < first + n)) {
        rc = first > log->next ? DST_ECONFLICT : DST_EINVAL;
        goto out;
    }
    for (int j = 0; j < n; j++)
        if (recs[j].number != first + j) {
            rc = DST_EINVAL;
            goto out;
        }
    for (; i < n && k < log->next; i++, k++) {
        int wl = order_log_format(&recs[i], want, sizeof(want));
        int hl = read_line(log, k, have, sizeof(have));
        if (wl < 0 || hl != wl || memcmp(have, want, (size_t)wl) != 0)
            break;
    }
    if ((i < n && k < log->next) || (i == n && end >= 0 && log->next > end)) {
        rc = cut(log, i < n ? k : end);
        if (rc)
            goto out;
    }
    if (i < n) {
        buf = dst_xmalloc((size_t)(n - i) * sizeof(want));
        for (int j = i; j < n; j++) {
            int wl = order_log_format(&recs[j], buf + blen, sizeof(want));
            if (wl < 0) {
                rc = DST_EINVAL;
                goto out;
            }
            blen += (size_t)wl;
        }
        rc = write_all(log, buf, blen);
        if (rc) {
            log->broken = true;
            goto out;
        }
        uint64_t at = log->off[log->next];
        for (int j = i; j < n; j++) {
            int wl = order_log_format(&recs[j], want, sizeof(want));
            note_offset(log, at, at + (uint64_t)wl);
            at += (uint64_t)wl;
            log->next++;
            if (log->added)
                log->added(log->ud, &recs[j]);
        }
        log->durable = log->next;
    }
out:
    pthread_mutex_unlock(&log->mu);
    free(buf);
    return rc;
}

void order_log_nudge(struct order_log *log)
{
    pthread_mutex_lock(&log->mu);
    if (log->writing || log->plen || log->broken || !log->hook) {
        pthread_mutex_unlock(&log->mu); /* a batch is under way or coming: it will do */
        return;
    }
    log->writing = true;
    int64_t at = log->durable;
    pthread_mutex_unlock(&log->mu);
    log->hook(log->ud, at, "", 0, at);
    pthread_mutex_lock(&log->mu);
    log->writing = false;
    pthread_cond_broadcast(&log->cv);
    pthread_mutex_unlock(&log->mu);
}
