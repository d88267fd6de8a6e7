/* catalog_db.c - the catalog: the toys in memory under a rwlock, and their durable file */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
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

#define MAX_TOYS    10000
#define MAX_FILE    (4u << 20)
#define RECENT_BUYS 8192 /* request ids remembered */
#define FIELD_MAX   72   /* bytes of a field kept (a name's 64 fit); longer ones are errors */

/*
 * Buys change the table under the write lock and take a version number; readers see the
 * change at once. A buyer then waits until a write of the file that includes its version is
 * on disk (durable >= its version). Whoever finds no write going on becomes the writer: it
 * snapshots the whole table under the read lock (every change applied so far), writes it to a
 * temporary file, fsyncs it, renames it over the file and fsyncs the directory, then wakes
 * every waiter whose version the snapshot covered. Buys that arrive during a write wait for
 * the next one, which covers them all: one fsync pair for a whole group.
 */
struct catalog_db {
    pthread_rwlock_t lock; /* the table, applied, recent */
    struct catalog_toy *toys;
    int n;
    uint64_t applied; /* version of the table: one more for each change */
    struct ts_reqids *recent;
    char *path, *tmp;
    int dirfd;
    pthread_mutex_t commit_mu; /* what follows */
    pthread_cond_t commit_cv;
    uint64_t durable; /* the version on disk */
    bool writing, broken;
};

/* ---- the file format ---- */

static const struct catalog_toy lab3[] = {
    {"Tux", "25.99", 25.99, 100},      {"Whale", "34.99", 34.99, 100},
    {"Elephant", "29.99", 29.99, 100}, {"Bird", "39.99", 39.99, 100},
    {"Risk", "19.99", 19.99, 100},     {"Sand", "9.99", 9.99, 100},
    {"Jenga", "14.99", 14.99, 100},    {"Uno", "7.99", 7.99, 100},
    {"Pinball", "49.99", 49.99, 100},  {"Clue", "21.99", 21.99, 100},
};

static const struct catalog_toy lab2[] = {
    {"Tux", "25.99", 25.99, 80},
    {"Whale", "34.99", 34.99, 94},
    {"Elephant", "29.99", 29.99, 87},
    {"Bird", "39.99", 39.99, 98},
};

int catalog_db_defaults(bool lab2_only, struct catalog_toy **toys, int *n)
{
    const struct catalog_toy *src = lab2_only ? lab2 : lab3;
    int count =
        lab2_only ? (int)(sizeof(lab2) / sizeof(lab2[0])) : (int)(sizeof(lab3) / sizeof(lab3[0]));

    *toys = dst_xmalloc((size_t)count * sizeof(**toys));
    memcpy(*toys, src, (size_t)count * sizeof(**toys));
    *n = count;
    return 0;
}

/* The next blank-separated field of s[*pos..len) as a NUL-terminated copy in out; false: none. */
static bool field(const char *s, size_t len, size_t *pos, char *out, size_t outlen, bool *cut)
{
    size_t i = *pos, k = 0;

    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == len)
        return false;
    *cut = false;
    for (; i < len && s[i] != ' ' && s[i] != '\t'; i++) {
        if (k + 1 < outlen)
            out[k++] = s[i];
        else
            *cut = true;
    }
    out[k] = '\0';
    *pos = i;
    return true;
}

/* One line into t; the reason into err (without the "PATH:LINE: " prefix). */
static int parse_line(const char *s, size_t len, struct catalog_toy *t, char *err, size_t errlen)
{
    char f[3][FIELD_MAX + 1], extra[2];
    bool cut[3] = {false, false, false}, xcut = false;
    size_t pos = 0;
    int k = 0;
    char *end = NULL;

    if (memchr(s, '\0', len))
        return dst_errf(DST_EINVAL, err, errlen, "a NUL byte in the line");
    while (k < 3 && field(s, len, &pos, f[k], sizeof(f[k]), &cut[k]))
        k++;
    if (k < 3 || field(s, len, &pos, extra, sizeof(extra), &xcut))
        return dst_errf(DST_EINVAL, err, errlen, "expected 'NAME PRICE QUANTITY' (3 fields)");
    if (cut[0] || !ts_name_valid(f[0]))
        return dst_errf(DST_EINVAL, err, errlen,
                        "name '%.40s%s' is not 1..%d letters, digits, '.', '_' or '-'", f[0],
                        cut[0] ? "..." : "", TS_NAME_MAX);
    errno = 0;
    double price = strtod(f[1], &end);
    if (cut[1] || end == f[1] || *end || !isfinite(price) || price < 0 || errno)
        return dst_errf(DST_EINVAL, err, errlen, "price '%.40s%s' is not a number", f[1],
                        cut[1] ? "..." : "");
    errno = 0;
    long q = strtol(f[2], &end, 10);
    if (cut[2] || end == f[2] || *end || errno || q < 0 || q > TS_QTY_MAX || f[2][0] == '+' ||
        f[2][0] == '-')
        return dst_errf(DST_EINVAL, err, errlen, "quantity '%.40s%s' is not a whole number 0..%d",
                        f[2], cut[2] ? "..." : "", TS_QTY_MAX);
    size_t plen = strlen(f[1]);
    if (plen >= sizeof(t->price_text))
        return dst_errf(DST_EINVAL, err, errlen, "price '%.40s' is longer than %zu characters",
                        f[1], sizeof(t->price_text) - 1);
    memcpy(t->price_text, f[1], plen + 1);
    memcpy(t->name, f[0], strlen(f[0]) + 1); /* ts_name_valid: at most TS_NAME_MAX */
    t->price = price;
    t->quantity = q;
    return 0;
}

/* Whether s[0..len) is only spaces and tabs (the text need not end in a NUL). */
static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

int catalog_db_parse(const char *text, size_t len, const char *path, struct catalog_toy **toys,
                     int *n, char *err, size_t errlen)
{
    struct catalog_toy *v = NULL;
    int count = 0, cap = 0, line = 0;
    char why[200];

    for (size_t at = 0; at < len; line++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - at;
        const char *s = text + at;
        at = end + 1;
        if (l > 0 && s[l - 1] == '\r')
            l--;
        if (blank(s, l))
            continue; /* an empty line */
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            v = dst_xrealloc(v, (size_t)cap * sizeof(*v));
        }
        int rc = count >= MAX_TOYS
                     ? dst_errf(DST_EINVAL, why, sizeof(why), "more than %d toys", MAX_TOYS)
                     : parse_line(s, l, &v[count], why, sizeof(why));
        for (int i = 0; rc == 0 && i < count; i++)
            if (strcmp(v[i].name, v[count].name) == 0)
                rc = dst_errf(DST_EINVAL, why, sizeof(why), "%s is listed twice", v[i].name);
        if (rc) {
            free(v);
            return dst_errf(rc, err, errlen, "%s:%d: %s", path, line + 1, why);
        }
        count++;
    }
    if (count == 0) {
        free(v);
        return dst_errf(DST_EINVAL, err, errlen, "%s: no toys in the file", path);
    }
    *toys = v;
    *n = count;
    return 0;
}

char *catalog_db_format(const struct catalog_toy *toys, int n, size_t *len)
{
    size_t cap = (size_t)n * (TS_NAME_MAX + 32 + 16) + 1, at = 0;
    char *s = dst_xmalloc(cap);

    s[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s %s %ld\n", toys[i].name, toys[i].price_text,
                               toys[i].quantity);
    *len = at;
    return s;
}

/* ---- the file ---- */

/* Writes text to db->tmp, fsyncs it, renames it over db->path, fsyncs the directory. */
static int write_file(struct catalog_db *db, const char *text, size_t len)
{
    int fd = open(db->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;
    int rc = 0;

    if (fd < 0) {
        dst_error("catalog: cannot create %s: %s", db->tmp, strerror(errno));
        return DST_EIO;
    }
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            dst_error("catalog: cannot write %s: %s", db->tmp, strerror(errno));
            rc = DST_EIO;
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || rename(db->tmp, db->path) != 0 || fsync(db->dirfd) != 0) {
        dst_error("catalog: cannot make %s durable: %s", db->path, strerror(errno));
        rc = DST_EIO;
    }
out:
    close(fd);
    return rc;
}

/* Reads the whole file into *text; DST_ENOTFOUND when it does not exist. */
static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (!f)
        return errno == ENOENT
                   ? DST_ENOTFOUND
                   : dst_errf(DST_EIO, err, errlen, "cannot read %s: %s", path, strerror(errno));
    buf = dst_xmalloc(MAX_FILE + 1);
    n = fread(buf, 1, MAX_FILE + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE) {
        free(buf);
        return dst_errf(DST_EIO, err, errlen, bad ? "cannot read %s" : "%s is over 4 MiB", path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int catalog_db_check(const char *path, char *err, size_t errlen)
{
    struct catalog_toy *toys = NULL;
    char *text = NULL;
    size_t len = 0;
    int n = 0;
    int rc = read_file(path, &text, &len, err, errlen);

    if (rc == DST_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = catalog_db_parse(text, len, path, &toys, &n, err, errlen);
    free(text);
    free(toys);
    return rc;
}

/* db's table from its file, or the defaults written to a new file. */
static int load(struct catalog_db *db, bool lab2_only, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(db->path, &text, &len, err, errlen);

    if (rc == 0) {
        rc = catalog_db_parse(text, len, db->path, &db->toys, &db->n, err, errlen);
        free(text);
        if (rc == 0)
            dst_info("%d toys from %s", db->n, db->path);
        return rc;
    }
    if (rc != DST_ENOTFOUND)
        return rc;
    catalog_db_defaults(lab2_only, &db->toys, &db->n);
    text = catalog_db_format(db->toys, db->n, &len);
    rc = write_file(db, text, len);
    free(text);
    if (rc)
        return dst_errf(rc, err, errlen, "cannot create %s (see the error above)", db->path);
    dst_info("created %s with the %s catalog (%d toys)", db->path, lab2_only ? "Lab 2" : "Lab 3",
             db->n);
    return 0;
}

int catalog_db_open(const char *path, bool lab2_only, struct catalog_db **out, char *err,
                    size_t errlen)
{
    struct catalog_db *db = dst_xnew(struct catalog_db);
    char *dir = dst_xstrdup(path);
    int rc = 0;

    db->dirfd = -1;
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->commit_mu, NULL);
    pthread_cond_init(&db->commit_cv, NULL);
    db->path = dst_xstrdup(path);
    db->tmp = dst_xasprintf("%s.tmp", path);
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

void catalog_db_free(struct catalog_db *db)
{
    if (!db)
        return;
    if (db->dirfd >= 0)
        close(db->dirfd);
    ts_reqids_free(db->recent);
    free(db->toys);
    free(db->path);
    free(db->tmp);
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

/* Writes the table as it is now; *version is the version written. The commit lock is not held. */
static int commit(struct catalog_db *db, uint64_t *version)
{
    size_t len = 0;

    pthread_rwlock_rdlock(&db->lock);
    char *text = catalog_db_format(db->toys, db->n, &len);
    *version = db->applied;
    pthread_rwlock_unlock(&db->lock);
    int rc = write_file(db, text, len);
    free(text);
    return rc;
}

/* Returns once version v is on disk (writing it, or waiting for the writer); DST_EIO. */
static int durable(struct catalog_db *db, uint64_t v)
{
    pthread_mutex_lock(&db->commit_mu);
    while (db->durable < v && !db->broken) {
        if (db->writing) {
            pthread_cond_wait(&db->commit_cv, &db->commit_mu);
            continue;
        }
        uint64_t written = 0;
        db->writing = true;
        pthread_mutex_unlock(&db->commit_mu);
        int rc = commit(db, &written);
        pthread_mutex_lock(&db->commit_mu);
        db->writing = false;
        if (rc) {
            db->broken = true; /* memory is ahead of the file now: no more buys */
            dst_error("catalog: buys are refused from now on: the file cannot be written");
        } else if (written > db->durable) {
            db->durable = written;
        }
        pthread_cond_broadcast(&db->commit_cv);
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

int catalog_db_buy(struct catalog_db *db, const char *name, long qty, const char *request_id,
                   struct catalog_toy *after, bool *dup)
{
    struct ts_reqid *seen = NULL;
    uint64_t v = 0;
    int rc = 0;

    *dup = false;
    if (qty < 1 || qty > TS_QTY_MAX)
        return DST_EINVAL;
    if (broken(db))
        return DST_EIO;
    pthread_rwlock_wrlock(&db->lock);
    struct catalog_toy *t = find(db, name);
    seen = request_id ? ts_reqids_get(db->recent, request_id) : NULL;
    if (!t) {
        rc = DST_ENOTFOUND;
    } else if (seen) {
        *dup = true;
        v = (uint64_t)seen->value;
    } else if (t->quantity < qty) {
        rc = DST_ECONFLICT;
    } else {
        t->quantity -= qty;
        v = ++db->applied;
        if (request_id)
            ts_reqids_put(db->recent, request_id)->value = (int64_t)v;
    }
    if (t)
        *after = *t;
    pthread_rwlock_unlock(&db->lock);
    return rc ? rc : durable(db, v);
}

int catalog_db_restock(struct catalog_db *db, void (*fn)(void *ud, const char *name), void *ud)
{
    char(*names)[TS_NAME_MAX + 1] = NULL;
    int k = 0;
    uint64_t v = 0;

    pthread_rwlock_wrlock(&db->lock);
    for (int i = 0; i < db->n; i++) {
        if (db->toys[i].quantity > 0)
            continue;
        if (!names)
            names = dst_xcalloc((size_t)db->n, sizeof(*names));
        db->toys[i].quantity = TS_RESTOCK;
        memcpy(names[k++], db->toys[i].name, sizeof(names[0]));
    }
    if (k)
        v = ++db->applied;
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
