/* store.c - `dstmc store copy|export|import|backup`: the store moved, saved and restored */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/sig.h"
#include "core/store.h"
#include "core/store_copy.h"
#include "speedtest/services.h"

#define POS_MAX 2 /* positional arguments: FROM TO, FILE, DEST */

struct store_cfg {
    const char *db;
    long batch;
    bool no_bulk;
    const char *pos[POS_MAX];
    int npos;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dstmc store copy FROM_URL TO_URL [--batch N] [--no-bulk]\n"
            "       dstmc store export [--db URL] [FILE|-]\n"
            "       dstmc store import [--db URL] FILE|-\n"
            "       dstmc store backup [--db sqlite:PATH] DEST\n"
            "  copy: everything (settings and schedules, tokens and sessions, results, rollups\n"
            "    and how far raw results were pruned) from one store to another, SQLite or\n"
            "    PostgreSQL either way; TO's schema is migrated\n"
            "    first. What TO holds already is skipped, so a killed copy goes on where it\n"
            "    stopped when run again, and a repeated one copies nothing.\n"
            "  export: the store as JSON lines (one object with a \"kind\" per line) to FILE or\n"
            "    stdout; import: such lines into the store, idempotently (a bad line stops it,\n"
            "    named by its number: what came before is stored, nothing of it or after).\n"
            "  backup: an online copy of a SQLite store into the new file DEST while the API\n"
            "    keeps running (PostgreSQL: use pg_dump).\n"
            "  --db URL is the API's store (default sqlite:./dstmc.db, or DSTMC_DB).\n");
}

/* ---- progress and the summary ---- */

struct progress {
    const char *cmd;
    struct timespec t0, last;
    const char *last_kind;
    int64_t last_done;
};

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A line per second at most, and one when a kind is through; stops on SIGINT/SIGTERM. */
static int on_progress(const struct dst_store_tally *t, void *ud)
{
    struct progress *p = ud;
    bool end = t->done >= t->total;
    bool same = p->last_kind == t->kind && p->last_done == t->done;

    if (!same && (end || p->last_kind != t->kind || since(&p->last) >= 1.0)) {
        fprintf(stderr, "dstmc store %s: %s %lld/%lld (%lld new) %.1f s\n", p->cmd, t->kind,
                (long long)t->done, (long long)t->total, (long long)t->copied, since(&p->t0));
        clock_gettime(CLOCK_MONOTONIC, &p->last);
        p->last_kind = t->kind;
        p->last_done = t->done;
    }
    return dst_sig_stopping() ? 1 : 0;
}

static void summary(const struct progress *p, const struct dst_store_report *rep, const char *verb)
{
    int64_t copied = 0;

    for (int i = 0; i < rep->nkinds; i++)
        copied += rep->kinds[i].copied;
    printf("%s in %.1f s%s\n", verb, since(&p->t0),
           copied ? "" : ": nothing new, the target holds all of it already");
    for (int i = 0; i < rep->nkinds; i++) {
        const struct dst_store_tally *t = &rep->kinds[i];
        printf("  %-10s %10lld %s, %lld already there\n", t->kind, (long long)t->copied, verb,
               (long long)t->existing);
    }
}

/* ---- the commands ---- */

/* The name of a store for the copy's resume point: a SQLite file by its real path. */
static void store_name(const char *url, char *out, size_t len)
{
    char real[PATH_MAX];

    if (strncmp(url, "sqlite:", 7) == 0 && realpath(url + 7, real))
        snprintf(out, len, "sqlite:%s", real);
    else
        snprintf(out, len, "%s", url);
}

static int cmd_copy(const struct store_cfg *c, struct progress *p)
{
    struct dst_store *from = NULL, *to = NULL;
    struct dst_store_report rep;
    char name[PATH_MAX + 16];
    const char *why = NULL;
    bool same = strcmp(c->pos[0], c->pos[1]) == 0;
    int rc = 1;

    if (same)
        why = "FROM and TO are the same store: nothing to do";
    else if (dst_store_open(c->pos[0], &from) != 0)
        why = "cannot open FROM (see above)";
    else if (dst_store_open(c->pos[1], &to) != 0)
        why = "cannot open TO (see above)";
    else if (dst_store_same(from, to, &same) != 0)
        why = "cannot write to TO (see above)";
    else if (same)
        why = "FROM and TO are one store under two names: nothing to do";
    if (why) {
        fprintf(stderr, "dstmc store copy: %s\n", why);
        goto out;
    }
    store_name(c->pos[0], name, sizeof(name));
    struct dst_store_copy_opts o = {name, (size_t)c->batch, on_progress, p, c->no_bulk};
    rc = dst_store_copy(from, to, &o, &rep);
    if (rc == 0) {
        summary(p, &rep, "copied");
    } else {
        fprintf(stderr, "dstmc store copy: %s; run it again to go on from there\n",
                rc > 0 ? "stopped" : dst_strerror(rc));
        rc = 1;
    }
out:
    dst_store_free(from);
    dst_store_free(to);
    return rc;
}

/* FILE, or stdin/stdout for "-" or none. */
static FILE *open_file(const char *path, bool out, bool *own)
{
    *own = path && strcmp(path, "-") != 0;
    if (!*own)
        return out ? stdout : stdin;
    FILE *f = fopen(path, out ? "wx" : "r"); /* an export never overwrites a file */
    if (!f)
        perror(path);
    return f;
}

static int cmd_export(struct dst_store *s, const struct store_cfg *c, struct progress *p)
{
    struct dst_store_report rep;
    struct dst_store_copy_opts o = {NULL, (size_t)c->batch, on_progress, p, c->no_bulk};
    bool own;
    FILE *f = open_file(c->npos ? c->pos[0] : NULL, true, &own);

    if (!f)
        return 1;
    int rc = dst_store_export(s, f, &o, &rep);
    if (own && fclose(f) != 0 && rc == 0)
        rc = DST_EIO;
    if (rc) {
        fprintf(stderr, "dstmc store export: %s\n", rc > 0 ? "stopped" : dst_strerror(rc));
        return 1;
    }
    fprintf(stderr, "dstmc store export: ");
    for (int i = 0; i < rep.nkinds; i++)
        fprintf(stderr, "%s%lld %ss", i ? ", " : "", (long long)rep.kinds[i].done,
                rep.kinds[i].kind);
    fprintf(stderr, " in %.1f s\n", since(&p->t0));
    return 0;
}

static int cmd_import(struct dst_store *s, const struct store_cfg *c, struct progress *p)
{
    struct dst_store_report rep;
    struct dst_store_copy_opts o = {NULL, (size_t)c->batch, on_progress, p, c->no_bulk};
    char err[300];
    int64_t line = 0;
    bool own;
    FILE *f = open_file(c->pos[0], false, &own);

    if (!f)
        return 1;
    int rc = dst_store_import(s, f, &o, &rep, &line, err, sizeof(err));
    if (own)
        fclose(f);
    if (rc == 0) {
        summary(p, &rep, "imported");
        return 0;
    }
    if (line)
        fprintf(stderr,
                "dstmc store import: %s:%lld: %s; the lines before it are imported, "
                "none from it on (fix it and import again: what is there is skipped)\n",
                c->pos[0], (long long)line, err);
    else
        fprintf(stderr, "dstmc store import: %s\n", rc > 0 ? "stopped" : dst_strerror(rc));
    return 1;
}

static int cmd_backup(struct dst_store *s, const struct store_cfg *c, struct progress *p)
{
    int rc = dst_store_backup(s, c->pos[0]);

    if (rc == 0) {
        fprintf(stderr, "dstmc store backup: %s written in %.1f s\n", c->pos[0], since(&p->t0));
        return 0;
    }
    fprintf(stderr, "dstmc store backup: %s\n",
            rc == DST_ECONFLICT ? "DEST exists: give a new file"
            : rc == DST_EINVAL  ? "only a SQLite file store has an online backup here; "
                                  "back up PostgreSQL with pg_dump (README, Backups)"
                                : "failed (see above); nothing was left at DEST");
    return 1;
}

/* ---- arguments ---- */

/*
 * Moves the positional arguments out of argv (argv[0], the command, stays) into c->pos; the
 * options stay for dst_cfg_parse. An option that takes a value is followed by it unless
 * written "--name=value". Returns false on too many.
 */
static bool take_positional(struct store_cfg *c, const struct dst_cfg *cfg, int *argc, char **argv)
{
    int k = 1;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        bool takes = false;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (c->npos == POS_MAX)
                return false;
            c->pos[c->npos++] = a;
            continue;
        }
        for (int j = 0; j < cfg->nopts && !strchr(a, '='); j++)
            takes |= strcmp(a + 2, cfg->opts[j].name) == 0 && cfg->opts[j].type != DST_CFG_BOOL;
        argv[k++] = argv[i];
        if (takes && i + 1 < *argc)
            argv[k++] = argv[++i];
    }
    *argc = k;
    return true;
}

static int want_positional(const struct store_cfg *c, struct dst_cfg *cfg, const char *cmd)
{
    int need = strcmp(cmd, "copy") == 0 ? 2 : strcmp(cmd, "export") == 0 ? -1 : 1;

    if (need == -1 ? c->npos > 1 : c->npos != need)
        return dst_cfg_fail(cfg, stderr, NULL, "%s",
                            need == 2   ? "copy FROM_URL TO_URL: two store URLs"
                            : need == 1 ? "which file? (import FILE|-, backup DEST)"
                                        : "export [FILE|-]: one file at most");
    if (need == 2) {
        char err[300];
        for (int i = 0; i < 2; i++)
            if (dst_store_url_check(c->pos[i], err, sizeof(err)) != 0)
                return dst_cfg_fail(cfg, stderr, NULL, "%s: %s", i ? "TO" : "FROM", err);
    }
    return 0;
}

int store_main(int argc, char **argv)
{
    static const char *const cmds[] = {"copy", "export", "import", "backup"};
    struct store_cfg c = {0};
    const char *cmd = argc > 1 ? argv[1] : "";
    char service[32], err[300];
    struct dst_cfg_opt opts[] = {
        {"db", DST_CFG_STR, &c.db, "sqlite:./dstmc.db", "export, import, backup: the store", "URL"},
        {"batch", DST_CFG_INT, &c.batch, "5000", "results per read and write", "N", 1, 100000},
        {"no-bulk", DST_CFG_BOOL, &c.no_bulk, "false",
         "copy, import: results with the API's batch insert, not the bulk path (to compare)"},
    };
    struct dst_cfg cfg = {service, "copies, exports, imports and backs up the store", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    struct progress p = {cmd};
    struct dst_store *s = NULL;
    size_t k = 0;

    while (k < 4 && strcmp(cmd, cmds[k]) != 0)
        k++;
    if (k == 4) {
        bool help = strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0;
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    snprintf(service, sizeof(service), "store %s", cmd);
    argc--, argv++; /* argv[0] is now the command */
    if (!take_positional(&c, &cfg, &argc, argv))
        return dst_cfg_fail(&cfg, stderr, NULL, "too many arguments"), 2;
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc || want_positional(&c, &cfg, cmd))
        return 2;
    if (k > 0 && dst_store_url_check(c.db, err, sizeof(err)))
        return dst_cfg_fail(&cfg, stderr, "db", "%s", err), 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &p.t0);
    if (k == 0)
        return cmd_copy(&c, &p);
    if (dst_store_open(c.db, &s) != 0) {
        fprintf(stderr, "dstmc store %s: cannot open the store %s\n", cmd, c.db);
        return 1;
    }
    rc = k == 1 ? cmd_export(s, &c, &p) : k == 2 ? cmd_import(s, &c, &p) : cmd_backup(s, &c, &p);
    dst_store_free(s);
    return rc;
}
