/* token.c - `dstmc token new|list|revoke`: the API's tokens, in the store the API uses */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/store.h"
#include "speedtest/services.h"

#define DAY_MS (24LL * 3600 * 1000)

struct token_cfg {
    const char *db, *name, *scope;
    long expires_days;
    bool json;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dstmc token new --name NAME [--scope read,ingest,admin] [--expires-days N]\n"
            "       dstmc token list [--json]\n"
            "       dstmc token revoke ID\n"
            "  every command takes --db URL (default sqlite:./dstmc.db, under systemd\n"
            "  sqlite:$STATE_DIRECTORY/dstmc.db): the API's store.\n"
            "  scopes: read (reads of a --private API), ingest (post results: a probe), admin\n"
            "  (everything). A token is shown once, when made: keep it.\n");
}

/* "2026-12-07T09:00:00Z", or "-" for 0 (never). */
static const char *when(int64_t ms, char buf[DST_DATETIME_LEN])
{
    if (!ms)
        return "-";
    dst_datetime_format_utc(ms, buf);
    return buf;
}

static int cmd_new(struct dst_store *s, const struct token_cfg *c)
{
    char text[DST_CRED_TEXT_LEN + 1], err[160], scopes[32];
    unsigned bits = 0;
    struct dst_cred made;
    int64_t expires = c->expires_days ? dst_datetime_now_ms() + c->expires_days * DAY_MS : 0;

    if (dst_scopes_parse(c->scope, &bits, err, sizeof(err)) != 0) {
        fprintf(stderr, "dstmc token: --scope: %s\n", err);
        return 2;
    }
    int rc = dst_cred_token_new(s, c->name, bits, expires, text, &made);
    if (rc == DST_EINVAL) {
        fprintf(stderr, "dstmc token: --name: 1 to %d printable characters\n", DST_CRED_NAME_MAX);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "dstmc token: cannot make the token: %s\n", dst_strerror(rc));
        return 1;
    }
    dst_scopes_format(bits, scopes, sizeof(scopes));
    fprintf(stderr, "made token %s \"%s\" (%s); it is shown only this once:\n", made.id, made.name,
            scopes);
    printf("%s\n", text);
    return 0;
}

/* The number of sessions opened with the token id. */
static size_t sessions_of(const struct dst_store_cred *all, size_t n, const char *id)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += all[i].parent && strcmp(all[i].parent, id) == 0;
    return k;
}

static int cmd_list(struct dst_store *s, const struct token_cfg *c)
{
    struct dst_store_cred *all = NULL;
    size_t n = 0;
    char a[DST_DATETIME_LEN], b[DST_DATETIME_LEN], d[DST_DATETIME_LEN];
    json_t *list = json_array();

    int rc = dst_store_cred_list(s, NULL, &all, &n);
    if (rc) {
        fprintf(stderr, "dstmc token: cannot list the tokens: %s\n", dst_strerror(rc));
        json_decref(list);
        return 1;
    }
    if (!c->json)
        printf("%-12s  %-20s  %-17s  %-24s  %-24s  %-24s  %s\n", "ID", "NAME", "SCOPES", "CREATED",
               "EXPIRES", "LAST USED", "SESSIONS");
    for (size_t i = 0; i < n; i++) {
        const struct dst_store_cred *t = &all[i];
        if (strcmp(t->kind, "token") != 0)
            continue;
        size_t k = sessions_of(all, n, t->id);
        if (c->json)
            json_array_append_new(
                list,
                json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:I}", "id", t->id, "name", t->name,
                          "scopes", t->scopes, "created", when(t->created_ms, a), "expires",
                          t->expires_ms ? when(t->expires_ms, b) : NULL, "last_used",
                          t->used_ms ? when(t->used_ms, d) : NULL, "sessions", (json_int_t)k));
        else
            printf("%-12s  %-20s  %-17s  %-24s  %-24s  %-24s  %zu\n", t->id, t->name, t->scopes,
                   when(t->created_ms, a), when(t->expires_ms, b), when(t->used_ms, d), k);
    }
    if (c->json) {
        char *text = dst_json_dumps(list, NULL);
        printf("%s\n", text);
        free(text);
    }
    json_decref(list);
    dst_store_creds_free(all, n);
    return 0;
}

static int cmd_revoke(struct dst_store *s, const char *id)
{
    bool deleted = false;
    int rc = dst_store_cred_delete(s, id, &deleted);

    if (rc) {
        fprintf(stderr, "dstmc token: cannot revoke %s: %s\n", id, dst_strerror(rc));
        return 1;
    }
    if (!deleted) {
        fprintf(stderr, "dstmc token: no token or session %s (dstmc token list)\n", id);
        return 1;
    }
    fprintf(stderr, "revoked %s and the sessions opened with it\n", id);
    return 0;
}

int token_main(int argc, char **argv)
{
    struct token_cfg c = {0};
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *id = NULL;
    char service[32];
    struct dst_cfg_opt opts[] = {
        {"db", DST_CFG_STR, &c.db, "sqlite:./dstmc.db", "the API's store", "URL",
         .state_def = "sqlite:%s/dstmc.db"},
        {"name", DST_CFG_STR, &c.name, "", "new: what the token is for, e.g. \"probe attic\"",
         "NAME"},
        {"scope", DST_CFG_STR, &c.scope, "admin", "new: read, ingest and/or admin", "SCOPES"},
        {"expires-days", DST_CFG_INT, &c.expires_days, "0", "new: valid this many days (0: ever)",
         "N", 0, 36500},
        {"json", DST_CFG_BOOL, &c.json, "false", "list: as JSON"},
    };
    struct dst_store *s = NULL;
    char err[256];
    int rc;

    if (strcmp(cmd, "new") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "revoke") != 0) {
        bool help = strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0;
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    snprintf(service, sizeof(service), "token %s", cmd);
    struct dst_cfg cfg = {service, "manages the API's tokens", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    argc--, argv++; /* argv[0] is now the command */
    if (strcmp(cmd, "revoke") == 0 && argc > 1 && strncmp(argv[1], "--", 2) != 0) {
        id = argv[1];
        argv[1] = argv[0];
        argc--, argv++;
    }
    rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (dst_store_url_check(c.db, err, sizeof(err)))
        return dst_cfg_fail(&cfg, stderr, "db", "%s", err), 2;
    if (strcmp(cmd, "new") == 0 && !*c.name)
        return dst_cfg_fail(&cfg, stderr, "name", "say what the token is for"), 2;
    if (strcmp(cmd, "revoke") == 0 && !id)
        return dst_cfg_fail(&cfg, stderr, NULL, "which one? dstmc token revoke ID"), 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    if (dst_store_open(c.db, &s) != 0) {
        fprintf(stderr, "dstmc token: cannot open the store %s\n", c.db);
        return 1;
    }
    if (strcmp(cmd, "new") == 0)
        rc = cmd_new(s, &c);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(s, &c);
    else
        rc = cmd_revoke(s, id);
    dst_store_free(s);
    return rc;
}
