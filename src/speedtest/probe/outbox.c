/* outbox.c - the probe's on-disk outbox: results the API has not taken yet, retried with back-off */
#include "speedtest/probe/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/uuid.h"

#define FILE_MAX  (1024 * 1024) /* a result file is a few KiB; anything bigger is not one */
#define ROUND_MAX 64
#define SUFFIX    ".json"

struct probe_outbox {
    char *dir;
    int64_t due_ms;     /* monotonic; 0 = at once */
    int64_t backoff_ms; /* the wait after the next failure */
};

/* mkdir that is fine when the directory is there already. */
static int mkdir_once(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0)
        return 0;
    int e = errno;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    dst_error("outbox %s: cannot create the directory: %s", path,
              e == EEXIST ? "a file of that name is in the way" : strerror(e));
    return DST_EIO;
}

int probe_outbox_open(const char *dir, struct probe_outbox **out)
{
    char *bad = dst_xasprintf("%s/bad", dir);
    int rc = mkdir_once(dir);

    rc = rc ? rc : mkdir_once(bad);
    free(bad);
    if (rc)
        return rc;
    struct probe_outbox *ob = dst_xnew(struct probe_outbox);
    ob->dir = dst_xstrdup(dir);
    ob->backoff_ms = PROBE_OUTBOX_FIRST_MS;
    *out = ob;
    return 0;
}

void probe_outbox_free(struct probe_outbox *ob)
{
    if (!ob)
        return;
    free(ob->dir);
    free(ob);
}

/* Flushes the directory entry of a file just renamed or removed in dir. */
static int dir_sync(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : DST_EIO;

    if (rc)
        snprintf(err, errlen, "%s: fsync of the directory: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Writes all of text to a new file at path and fsyncs it; DST_EIO with the reason in err. */
static int write_synced(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    const char *what = "open";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;

    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            what = "write";
            break;
        }
        done += (size_t)n;
    }
    if (fd >= 0 && done == len && fsync(fd) != 0)
        what = "fsync";
    else if (fd >= 0 && done == len)
        what = NULL;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (!what)
        return 0;
    snprintf(err, errlen, "%s: %s: %s", path, what, e ? strerror(e) : "short write");
    return DST_EIO;
}

int probe_outbox_put(struct probe_outbox *ob, const struct dst_result *r, char *err, size_t errlen)
{
    if (!dst_uuid_valid(r->id)) {
        snprintf(err, errlen, "result id '%s' is not a UUID", r->id);
        return DST_EINVAL;
    }
    char *path = dst_xasprintf("%s/%s" SUFFIX, ob->dir, r->id);
    char *tmp = dst_xasprintf("%s/.%s" SUFFIX ".tmp", ob->dir, r->id);
    json_t *j = dst_result_to_json(r);
    size_t len = 0;
    char *text = dst_json_dumps(j, &len);
    int rc = write_synced(tmp, text, len, err, errlen);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename from %s: %s", path, tmp, strerror(errno));
        rc = DST_EIO;
    }
    rc = rc ? rc : dir_sync(ob->dir, err, errlen);
    if (rc)
        unlink(tmp); /* a failed write leaves nothing half-done behind */
    free(text);
    json_decref(j);
    free(tmp);
    free(path);
    return rc;
}

/* True if name is one of ours: "<uuid>.json" (the temporary ".<uuid>.json.tmp" is not). */
static bool is_result_name(const char *name)
{
    return name[0] != '.' && strcmp(name, "bad") != 0;
}

int probe_outbox_count(const struct probe_outbox *ob)
{
    DIR *d = opendir(ob->dir);
    int n = 0;

    if (!d)
        return -1;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += is_result_name(e->d_name);
    closedir(d);
    return n;
}

/* Moves DIR/name to DIR/bad/name, saying why. */
static void move_bad(struct probe_outbox *ob, const char *name, const char *why)
{
    char *from = dst_xasprintf("%s/%s", ob->dir, name);
    char *to = dst_xasprintf("%s/bad/%s", ob->dir, name);
    char err[512];

    if (rename(from, to) != 0)
        dst_error("outbox: %s is %s, and cannot be moved to %s: %s", from, why, to,
                  strerror(errno));
    else if (dir_sync(ob->dir, err, sizeof(err)) == 0)
        dst_warn("outbox: %s is %s; moved to %s", from, why, to);
    else
        dst_warn("outbox: %s is %s; moved to %s (%s)", from, why, to, err);
    free(to);
    free(from);
}

/* Reads the whole file at path (at most FILE_MAX bytes); NULL with the reason in err. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;

    if (!f) {
        snprintf(err, errlen, "unreadable (%s)", strerror(errno));
        return NULL;
    }
    buf = dst_xmalloc(FILE_MAX + 1);
    *len = fread(buf, 1, FILE_MAX + 1, f);
    if (ferror(f) || *len > FILE_MAX) {
        snprintf(err, errlen, "%s", ferror(f) ? "unreadable" : "too big to be a result");
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int probe_outbox_read(const char *name, const char *text, size_t len, struct dst_result *r,
                      char *err, size_t errlen)
{
    size_t n = strlen(name);
    json_t *j = dst_json_parse(text, len, err, errlen);
    int rc = j ? dst_result_from_json(j, r, err, errlen) : DST_EINVAL;

    if (rc == 0 && (n != DST_UUID_LEN + strlen(SUFFIX) || strncmp(name, r->id, DST_UUID_LEN) ||
                    strcmp(name + DST_UUID_LEN, SUFFIX))) {
        snprintf(err, errlen, "not named after its id %s", r->id);
        rc = DST_EINVAL;
    }
    json_decref(j);
    return rc;
}

/* Loads DIR/name into r; DST_EINVAL with the reason in err if it is not a valid result. */
static int load(struct probe_outbox *ob, const char *name, struct dst_result *r, char *err,
                size_t errlen)
{
    char *path = dst_xasprintf("%s/%s", ob->dir, name);
    size_t len = 0;
    char *text = slurp(path, &len, err, errlen);
    int rc = text ? probe_outbox_read(name, text, len, r, err, errlen) : DST_EINVAL;

    free(text);
    free(path);
    return rc;
}

/* Sends DIR/name: 1 stored (file removed), 0 dropped to bad/, a DST_E* code to retry later. */
static int send_one(struct probe_outbox *ob, const char *name, probe_outbox_send_fn send, void *ud)
{
    struct dst_result r;
    char err[1024] = "", why[1100];
    int rc;

    dst_result_init(&r);
    if (load(ob, name, &r, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "not a valid result (%s)", err);
        move_bad(ob, name, why);
        rc = 0;
    } else if ((rc = send(ud, &r, err, sizeof(err))) == DST_EINVAL) {
        snprintf(why, sizeof(why), "rejected by the API (%s)", err);
        move_bad(ob, name, why);
        rc = 0;
    } else if (rc) {
        dst_warn("outbox: result %s not sent yet: %s", r.id, *err ? err : dst_strerror(rc));
    } else {
        char *path = dst_xasprintf("%s/%s", ob->dir, name);
        if (unlink(path) != 0 && errno != ENOENT)
            dst_error("outbox: %s was stored, but cannot be removed: %s", path, strerror(errno));
        dst_info("outbox: result %s stored", r.id);
        free(path);
        rc = 1;
    }
    dst_result_release(&r);
    return rc;
}

int probe_outbox_flush(struct probe_outbox *ob, int64_t now_ms, probe_outbox_send_fn send, void *ud)
{
    int stored = 0, tried = 0, rc = 0;

    if (now_ms < ob->due_ms)
        return 0;
    DIR *d = opendir(ob->dir);
    if (!d) {
        dst_error("outbox %s: cannot read the directory: %s", ob->dir, strerror(errno));
        rc = DST_EIO;
    }
    for (struct dirent *e = d ? readdir(d) : NULL; e && rc >= 0 && tried < ROUND_MAX;
         e = readdir(d)) {
        if (!is_result_name(e->d_name))
            continue;
        tried++;
        rc = send_one(ob, e->d_name, send, ud);
        stored += rc == 1;
    }
    if (d)
        closedir(d);
    if (rc < 0) {
        ob->due_ms = now_ms + ob->backoff_ms;
        dst_info("outbox: next try in %lld s", (long long)(ob->backoff_ms / 1000));
        ob->backoff_ms =
            ob->backoff_ms * 2 < PROBE_OUTBOX_MAX_MS ? ob->backoff_ms * 2 : PROBE_OUTBOX_MAX_MS;
    } else {
        ob->due_ms = 0;
        ob->backoff_ms = PROBE_OUTBOX_FIRST_MS;
    }
    return stored;
}

void probe_outbox_kick(struct probe_outbox *ob)
{
    ob->due_ms = 0;
}

int64_t probe_outbox_due_ms(const struct probe_outbox *ob)
{
    return ob->due_ms;
}

int64_t probe_outbox_backoff_ms(const struct probe_outbox *ob)
{
    return ob->backoff_ms;
}
