/* store_sqlite_backup.c - SQLite store: an online backup into a new file (sqlite3_backup_*) */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_sqlite_priv.h"

/* fsync of path (a file, or a directory for the rename in it). */
static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0) {
        dst_error("store: backup: sync %s: %s", path, strerror(errno));
        rc = DST_EIO;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/*
 * Copies every page of src into the file tmp in one step: one read transaction on src, so the
 * copy is one snapshot; in WAL mode writers go on meanwhile (a step of fewer pages would
 * restart whenever another connection wrote, and might never finish under steady ingest).
 */
static int copy_pages(sqlite3 *src, const char *tmp)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    int rc = 0;

    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        dst_error("store: backup: open %s: %s", tmp, dst ? sqlite3_errmsg(dst) : "no memory");
        rc = DST_EIO;
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        dst_error("store: backup: %s", sqlite3_errmsg(dst));
        rc = DST_EDEP;
        goto out;
    }
    int step = sqlite3_backup_step(b, -1);
    if (step != SQLITE_DONE) {
        dst_error("store: backup: copy into %s: %s", tmp, sqlite3_errstr(step));
        rc = step == SQLITE_IOERR || step == SQLITE_FULL ? DST_EIO : DST_EDEP;
    }
out:
    if (b && sqlite3_backup_finish(b) != SQLITE_OK && rc == 0) {
        dst_error("store: backup: %s", sqlite3_errmsg(dst));
        rc = DST_EDEP;
    }
    if (sqlite3_close(dst) != SQLITE_OK && rc == 0)
        rc = DST_EIO;
    return rc;
}

/*
 * Into "dest.XXXXXX" beside dest (mode 0600: the file holds credentials' hashes), synced, then
 * linked to dest (which fails if dest appeared meanwhile: nothing is overwritten) and the
 * temporary name removed, so dest is either absent or complete.
 */
int sqlite_store_backup(struct dst_store *base, const char *dest)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct sqlite_store_conn *c = NULL;
    size_t n = strlen(dest) + 8;
    char *tmp = dst_xmalloc(n), *dir = dst_xstrdup(dest);
    int fd = -1, rc = 0;

    snprintf(tmp, n, "%s.XXXXXX", dest);
    if (s->memory) {
        rc = DST_EINVAL;
        goto out;
    }
    if (access(dest, F_OK) == 0) {
        rc = DST_ECONFLICT;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        dst_error("store: backup: create %s: %s", tmp, strerror(errno));
        rc = DST_EIO;
        goto out;
    }
    close(fd);
    rc = sqlite_store_reader_get(s, &c);
    rc = rc ? rc : copy_pages(c->db, tmp);
    sqlite_store_reader_put(s, c);
    rc = rc ? rc : sync_path(tmp);
    if (rc == 0 && link(tmp, dest) != 0) {
        dst_error("store: backup: %s: %s", dest, strerror(errno));
        rc = errno == EEXIST ? DST_ECONFLICT : DST_EIO;
    }
    unlink(tmp); /* the temporary name; on success dest names the file */
    rc = rc ? rc : sync_path(dirname(dir));
out:
    free(tmp);
    free(dir);
    return rc;
}
