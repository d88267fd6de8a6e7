/* catalog_journal.c - the catalog's journal: one line per change, pre-zeroed, fdatasync'd */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/toystore.h"

#define HEADER      "dstmc catalog journal 1\n"
#define MAX_JOURNAL (64u << 20) /* a journal longer than this is not ours */
#define JLINE_MAX   160

/*
 * The file is written once with its header (and the request ids carried over from the last
 * snapshot) and zeros up to its preallocated size, fsync'd and renamed into place. Changes are
 * then written over the zeros and fdatasync'd: the blocks and the size are already on disk, so
 * the sync commits data only. The journal's text ends at its first NUL byte; a last line
 * without its newline is a write a crash cut short.
 */
struct catalog_journal {
    int fd;
    size_t used; /* bytes of text: the next write goes here */
    char *path;
};

int catalog_journal_format(const struct catalog_change *c, char *buf, size_t len)
{
    int n = 0;

    if (c->kind == 'i')
        n = snprintf(buf, len, "i %s\n", c->request_id);
    else
        n = snprintf(buf, len, "%c %s %ld%s%s\n", c->kind, c->name, c->quantity,
                     c->request_id[0] ? " " : "", c->request_id);
    return n > 0 && (size_t)n < len ? n : -1;
}

int catalog_journal_parse_line(const char *line, size_t len, struct catalog_change *c, char *err,
                               size_t errlen)
{
    char buf[JLINE_MAX + 1], *f[5] = {NULL}, *save = NULL, *end = NULL;
    int k = 0;

    if (len > JLINE_MAX)
        return dst_errf(DST_EINVAL, err, errlen, "the line is over %d bytes", JLINE_MAX);
    memcpy(buf, line, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, " ", &save); t && k < 5; t = strtok_r(NULL, " ", &save))
        f[k++] = t;
    memset(c, 0, sizeof(*c));
    if (k == 2 && strcmp(f[0], "i") == 0 && ts_reqid_valid(f[1])) {
        c->kind = 'i';
        memcpy(c->request_id, f[1], strlen(f[1]) + 1);
        return 0;
    }
    if (k < 3 || k > 4 || (strcmp(f[0], "b") != 0 && strcmp(f[0], "r") != 0))
        return dst_errf(DST_EINVAL, err, errlen,
                        "expected 'b NAME QUANTITY [ID]', 'r NAME QUANTITY' or 'i ID'");
    c->kind = f[0][0];
    if (!ts_name_valid(f[1]))
        return dst_errf(DST_EINVAL, err, errlen, "name '%.40s' is not a toy's name", f[1]);
    memcpy(c->name, f[1], strlen(f[1]) + 1);
    errno = 0;
    c->quantity = strtol(f[2], &end, 10);
    if (f[2][0] < '0' || f[2][0] > '9' || *end || errno || c->quantity > TS_QTY_MAX)
        return dst_errf(DST_EINVAL, err, errlen, "quantity '%.40s' is not a whole number 0..%d",
                        f[2], TS_QTY_MAX);
    if (k == 4 && !ts_reqid_valid(f[3]))
        return dst_errf(DST_EINVAL, err, errlen, "request id '%.70s' is not valid", f[3]);
    if (k == 4)
        memcpy(c->request_id, f[3], strlen(f[3]) + 1);
    return 0;
}

/* Reads the whole file into *text (NUL-terminated); DST_ENOTFOUND when it does not exist. */
static int slurp(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t done = 0;

    if (fd < 0)
        return errno == ENOENT
                   ? DST_ENOTFOUND
                   : dst_errf(DST_EIO, err, errlen, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || (size_t)st.st_size > MAX_JOURNAL) {
        close(fd);
        return dst_errf(DST_EIO, err, errlen, "%s: cannot read it, or it is over %u MiB", path,
                        MAX_JOURNAL >> 20);
    }
    *text = dst_xmalloc((size_t)st.st_size + 1);
    while (done < (size_t)st.st_size) {
        ssize_t r = read(fd, *text + done, (size_t)st.st_size - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    close(fd);
    (*text)[done] = '\0';
    *len = done;
    return 0;
}

/* Whether text[from..len) holds anything but NUL bytes. */
static bool trailing_text(const char *text, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (text[i])
            return true;
    return false;
}

/* The lines of text[0..len) after the header to fn; the torn tail dropped with a warning. */
static int replay_text(const char *path, const char *text, size_t len, catalog_journal_fn fn,
                       void *ud, char *err, size_t errlen)
{
    const char *nul = memchr(text, '\0', len);
    size_t end = nul ? (size_t)(nul - text) : len, at = strlen(HEADER);
    char why[200];
    int line = 2;

    if (len == 0)
        return 0; /* an empty file: no changes */
    if (end < at || memcmp(text, HEADER, at) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "%s:1: not a catalog journal (no '%.23s')", path,
                        HEADER);
    for (; at < end; line++) {
        const char *nl = memchr(text + at, '\n', end - at);
        struct catalog_change c;
        if (!nl) {
            dst_warn("%s:%d: dropping a last line a crash cut short (%zu bytes): that change was "
                     "never acknowledged",
                     path, line, end - at);
            break;
        }
        size_t l = (size_t)(nl - text) - at;
        int rc = catalog_journal_parse_line(text + at, l, &c, why, sizeof(why));
        if (rc == 0 && fn)
            rc = fn(ud, &c, why, sizeof(why));
        if (rc)
            return dst_errf(DST_EINVAL, err, errlen, "%s:%d: %s", path, line, why);
        at += l + 1;
    }
    if (trailing_text(text, end, len))
        dst_warn("%s: ignoring bytes after the end of the journal: a write a crash cut short",
                 path);
    return 0;
}

int catalog_journal_replay(const char *path, catalog_journal_fn fn, void *ud, char *err,
                           size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = slurp(path, &text, &len, err, errlen);

    if (rc == 0)
        rc = replay_text(path, text, len, fn, ud, err, errlen);
    free(text);
    return rc;
}

/* Writes buf[0..len) at off (all of it, or DST_EIO). */
static int write_at(int fd, const char *buf, size_t len, size_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t w = pwrite(fd, buf + done, len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return DST_EIO;
        done += (size_t)w;
    }
    return 0;
}

/* The header, head and zeros up to size into fd. */
static int fill(int fd, const char *head, size_t hlen, size_t size)
{
    static const char zeros[64 * 1024];
    size_t at = strlen(HEADER) + hlen;
    int rc = write_at(fd, HEADER, strlen(HEADER), 0);

    rc = rc ? rc : write_at(fd, head, hlen, strlen(HEADER));
    while (rc == 0 && at < size) {
        size_t n = size - at < sizeof(zeros) ? size - at : sizeof(zeros);
        rc = write_at(fd, zeros, n, at);
        at += n;
    }
    return rc;
}

int catalog_journal_create(const char *path, int dirfd, const char *head, size_t hlen,
                           size_t prealloc, struct catalog_journal **out)
{
    char *tmp = dst_xasprintf("%s.tmp", path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;

    if (fd < 0 || fill(fd, head, hlen, prealloc) != 0 || fsync(fd) != 0 || rename(tmp, path) != 0 ||
        fsync(dirfd) != 0) {
        dst_error("catalog: cannot write the journal %s: %s", path, strerror(errno));
        rc = DST_EIO;
        goto out;
    }
    struct catalog_journal *j = dst_xnew(struct catalog_journal);
    j->fd = fd; /* the file renamed into place */
    fd = -1;
    j->used = strlen(HEADER) + hlen;
    j->path = dst_xstrdup(path);
    *out = j;
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    return rc;
}

int catalog_journal_append(struct catalog_journal *j, const char *buf, size_t len)
{
    if (write_at(j->fd, buf, len, j->used) != 0 || fdatasync(j->fd) != 0) {
        dst_error("catalog: cannot write the journal %s: %s", j->path, strerror(errno));
        return DST_EIO;
    }
    j->used += len;
    return 0;
}

size_t catalog_journal_used(const struct catalog_journal *j)
{
    return j->used;
}

void catalog_journal_free(struct catalog_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    free(j->path);
    free(j);
}
