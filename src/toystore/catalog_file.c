/* catalog_file.c - the catalog's file: the database.txt format, read, and written atomically */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/toystore.h"

#define MAX_TOYS  10000
#define MAX_FILE  (4u << 20)
#define FIELD_MAX 72 /* bytes of a field kept (a name's 64 fit); longer ones are errors */

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

int catalog_file_defaults(bool lab2_only, struct catalog_toy **toys, int *n)
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

int catalog_file_parse(const char *text, size_t len, const char *path, struct catalog_toy **toys,
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

char *catalog_file_format(const struct catalog_toy *toys, int n, size_t *len)
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

int catalog_file_write(const char *path, int dirfd, const char *text, size_t len)
{
    char *tmp = dst_xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;
    int rc = 0;

    if (fd < 0) {
        dst_error("catalog: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return DST_EIO;
    }
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            dst_error("catalog: cannot write %s: %s", tmp, strerror(errno));
            rc = DST_EIO;
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || rename(tmp, path) != 0 || fsync(dirfd) != 0) {
        dst_error("catalog: cannot make %s durable: %s", path, strerror(errno));
        rc = DST_EIO;
    }
out:
    close(fd);
    free(tmp);
    return rc;
}

int catalog_file_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
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
