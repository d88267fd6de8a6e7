/* cfg.c - the configuration table: flags, DSTMC_* environment twins, --help, --check-config */
#include "core/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/mem.h"

#define ENV_NAME_MAX 128
#define HELP_COL_MAX 28

/*
 * What the command line said about one option. Strings point into argv, so nothing here is
 * ever freed.
 */
struct seen {
    const char *flag[DST_CFG_LIST_MAX]; /* values in order; one for all but lists */
    int n;
};

/* The environment twin of name: "db-url" → "DSTMC_DB_URL". */
static void env_name(const char *name, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "DSTMC_");
    for (const char *p = name; *p && n + 1 < outlen; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static void errorf(const struct dst_cfg *cfg, FILE *errf, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "dstmc SERVICE: " and the message as one line. */
static void errorf(const struct dst_cfg *cfg, FILE *errf, const char *fmt, ...)
{
    va_list ap;

    if (!errf)
        return;
    fprintf(errf, "dstmc %s: ", cfg->service);
    va_start(ap, fmt);
    vfprintf(errf, fmt, ap);
    va_end(ap);
    fputc('\n', errf);
}

static struct dst_cfg_opt *find_opt(const struct dst_cfg *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->nopts; i++) {
        if (strlen(cfg->opts[i].name) == len && strncmp(cfg->opts[i].name, name, len) == 0)
            return &cfg->opts[i];
    }
    return NULL;
}

/* Records one value given on the command line; lists append, the others keep the last. */
static int see(struct dst_cfg *cfg, FILE *errf, struct seen *s, const struct dst_cfg_opt *o,
               const char *value)
{
    if (o->type != DST_CFG_LIST) {
        s->n = 0;
    } else if (s->n == DST_CFG_LIST_MAX) {
        errorf(cfg, errf, "--%s: more than %d values", o->name, DST_CFG_LIST_MAX);
        return DST_EINVAL;
    }
    s->flag[s->n++] = value;
    return 0;
}

/* Reads one "--name[=value]" at argv[*i] (advancing *i past a separate value). */
static int scan_flag(struct dst_cfg *cfg, FILE *errf, struct seen *seen, int argc, char **argv,
                     int *i)
{
    const char *arg = argv[*i];
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    struct dst_cfg_opt *o = find_opt(cfg, name, len);

    if (!o && len > 3 && strncmp(name, "no-", 3) == 0) {
        o = find_opt(cfg, name + 3, len - 3);
        if (!o || o->type != DST_CFG_BOOL) {
            errorf(cfg, errf, "unknown option '%.*s'", (int)len + 2, arg);
            return DST_EINVAL;
        }
        if (eq) {
            errorf(cfg, errf, "--no-%s takes no value", o->name);
            return DST_EINVAL;
        }
        return see(cfg, errf, &seen[o - cfg->opts], o, "false");
    }
    if (!o) {
        errorf(cfg, errf, "unknown option '%.*s'", (int)len + 2, arg);
        return DST_EINVAL;
    }
    if (o->env_only) {
        char env[ENV_NAME_MAX], file[ENV_NAME_MAX];
        env_name(o->name, env, sizeof(env));
        snprintf(file, sizeof(file), "%s-file", o->name);
        bool has_file = find_opt(cfg, file, strlen(file)) != NULL;
        errorf(cfg, errf,
               "--%s: a secret is not taken on the command line, where others can read it; set "
               "%s in the environment%s%s",
               o->name, env, has_file ? " or use --" : "", has_file ? file : "");
        return DST_EINVAL;
    }
    if (eq)
        return see(cfg, errf, &seen[o - cfg->opts], o, eq + 1);
    if (o->type == DST_CFG_BOOL)
        return see(cfg, errf, &seen[o - cfg->opts], o, "true");
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        errorf(cfg, errf, "--%s needs a value", o->name);
        return DST_EINVAL;
    }
    (*i)++;
    return see(cfg, errf, &seen[o - cfg->opts], o, argv[*i]);
}

/* Walks argv[1..]: options into seen, --check-config into cfg; stray words are errors. */
static int scan_argv(struct dst_cfg *cfg, FILE *errf, struct seen *seen, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc;

        if (strcmp(arg, "--check-config") == 0) {
            cfg->check_only = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (arg[0] == '-' && arg[1] != '\0' && strcmp(arg, "--") != 0)
                errorf(cfg, errf, "unknown option '%s'", arg);
            else
                errorf(cfg, errf, "unexpected argument '%s'", arg);
            return DST_EINVAL;
        }
        rc = scan_flag(cfg, errf, seen, argc, argv, &i);
        if (rc)
            return rc;
    }
    return 0;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

static bool ranged(const struct dst_cfg_opt *o, double v)
{
    return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max);
}

/* Converts one text value into o->dest (lists append); a reason goes into why on failure. */
static int store(const struct dst_cfg_opt *o, const char *v, char *why, size_t whylen)
{
    char *end = NULL;

    switch (o->type) {
    case DST_CFG_STR:
        *(const char **)o->dest = v;
        return 0;
    case DST_CFG_LIST: {
        struct dst_cfg_list *l = o->dest;
        l->v[l->n++] = v;
        return 0;
    }
    case DST_CFG_BOOL:
        if (!parse_bool(v, o->dest)) {
            snprintf(why, whylen, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", v);
            return DST_EINVAL;
        }
        return 0;
    case DST_CFG_INT: {
        errno = 0;
        long n = strtol(v, &end, 10);
        if (end == v || *end || errno || isspace((unsigned char)*v)) {
            snprintf(why, whylen, "'%s' is not an integer", v);
            return DST_EINVAL;
        }
        if (!ranged(o, (double)n)) {
            snprintf(why, whylen, "'%s' must be from %.0f to %.0f", v, o->min, o->max);
            return DST_EINVAL;
        }
        *(long *)o->dest = n;
        return 0;
    }
    case DST_CFG_DOUBLE: {
        double d = strtod(v, &end);
        if (end == v || *end || !isfinite(d) || isspace((unsigned char)*v)) {
            snprintf(why, whylen, "'%s' is not a number", v);
            return DST_EINVAL;
        }
        if (!ranged(o, d)) {
            snprintf(why, whylen, "'%s' must be from %g to %g", v, o->min, o->max);
            return DST_EINVAL;
        }
        *(double *)o->dest = d;
        return 0;
    }
    }
    return DST_EINVAL;
}

/* Checks and stores one value, reporting "--name (from SOURCE): reason" on failure. */
static int apply(const struct dst_cfg *cfg, FILE *errf, const struct dst_cfg_opt *o,
                 const char *from, const char *v)
{
    char why[256] = "";
    int rc = store(o, v, why, sizeof(why));

    if (rc == 0 && o->check && o->check(v, why, sizeof(why)) != 0) {
        if (!why[0])
            snprintf(why, sizeof(why), "'%s' is not valid", v);
        rc = DST_EINVAL;
    }
    if (rc) {
        if (from)
            errorf(cfg, errf, "--%s (from %s): %s", o->name, from, why);
        else
            errorf(cfg, errf, "--%s: %s", o->name, why);
    }
    return rc;
}

const char *dst_cfg_state_dir(char *buf, size_t len)
{
    const char *v = getenv("STATE_DIRECTORY");
    size_t n = v ? strcspn(v, ":") : 0;

    if (n == 0 || n + 1 > len)
        return NULL;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

/*
 * The text of o->state_def under the state directory, or NULL. Kept for the life of the
 * process (dests point into it), once per distinct text.
 */
static const char *state_value(const struct dst_cfg_opt *o)
{
    static struct kept {
        char *text;
        struct kept *next;
    } * kept;
    char dir[4096];
    const char *d = o->state_def ? dst_cfg_state_dir(dir, sizeof(dir)) : NULL;

    if (!d)
        return NULL;
    char *text = dst_xasprintf(o->state_def, d);
    for (struct kept *k = kept; k; k = k->next) {
        if (strcmp(k->text, text) == 0) {
            free(text);
            return k->text;
        }
    }
    struct kept *k = dst_xnew(struct kept);
    k->text = text;
    k->next = kept;
    kept = k;
    return text;
}

/*
 * Copies of the environment values that lists split into lines. They live as long as the
 * process (a STR or LIST dest points into them, like into environ); the table keeps them
 * reachable. Parsing happens at start-up, on one thread.
 */
static char **line_copies;
static size_t nline_copies;

/* A list's text from the environment or a default: one value per line, blank lines skipped. */
static int apply_lines(const struct dst_cfg *cfg, FILE *errf, const struct dst_cfg_opt *o,
                       const char *from, const char *v)
{
    int rc = 0;

    if (!strchr(v, '\n'))
        return apply(cfg, errf, o, from, v);
    char *copy = dst_xstrdup(v);
    line_copies = dst_xrealloc(line_copies, (nline_copies + 1) * sizeof(*line_copies));
    line_copies[nline_copies++] = copy;
    for (char *line = copy, *next = NULL; line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (((struct dst_cfg_list *)o->dest)->n == DST_CFG_LIST_MAX) {
            errorf(cfg, errf, "--%s (from %s): more than %d values", o->name, from,
                   DST_CFG_LIST_MAX);
            return DST_EINVAL;
        }
        rc = apply(cfg, errf, o, from, line);
    }
    return rc;
}

/*
 * Resolves one option: flag > DSTMC_* > env_alias > state_def (under systemd) > default; dest
 * untouched when none.
 */
static int resolve(const struct dst_cfg *cfg, FILE *errf, struct dst_cfg_opt *o,
                   const struct seen *s)
{
    char env[ENV_NAME_MAX];
    const char *v = NULL;
    const char *from = NULL;
    int rc = 0;

    if (o->type == DST_CFG_LIST)
        ((struct dst_cfg_list *)o->dest)->n = 0;
    if (o->type == DST_CFG_STR)
        *(const char **)o->dest = NULL;
    if (s->n > 0) {
        o->from = DST_CFG_FROM_FLAG;
        for (int i = 0; i < s->n && rc == 0; i++)
            rc = apply(cfg, errf, o, NULL, s->flag[i]);
        return rc;
    }
    env_name(o->name, env, sizeof(env));
    v = getenv(env);
    from = env;
    o->from = DST_CFG_FROM_ENV;
    if (!v && o->env_alias) {
        v = getenv(o->env_alias);
        from = o->env_alias;
        o->from = DST_CFG_FROM_ALIAS;
    }
    if (!v && (v = state_value(o)) != NULL) {
        from = "STATE_DIRECTORY";
        o->from = DST_CFG_FROM_STATE;
    }
    if (!v) {
        v = o->def;
        from = "the default";
        o->from = v ? DST_CFG_FROM_DEFAULT : DST_CFG_FROM_NONE;
    }
    if (!v)
        return 0;
    return o->type == DST_CFG_LIST ? apply_lines(cfg, errf, o, from, v)
                                   : apply(cfg, errf, o, from, v);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int dst_cfg_parse(struct dst_cfg *cfg, int argc, char **argv, FILE *out, FILE *errf)
{
    struct seen *seen = NULL;
    int rc = 0;

    cfg->check_only = false;
    if (wants_help(argc, argv)) {
        dst_cfg_help(cfg, out);
        return DST_CFG_EXIT;
    }
    seen = dst_xcalloc(cfg->nopts > 0 ? (size_t)cfg->nopts : 1, sizeof(*seen));
    rc = scan_argv(cfg, errf, seen, argc, argv);
    if (rc)
        goto out;
    /* Every option is resolved so that one run reports every bad value. */
    for (int i = 0; i < cfg->nopts; i++) {
        if (resolve(cfg, errf, &cfg->opts[i], &seen[i]) != 0)
            rc = DST_EINVAL;
    }
out:
    free(seen);
    return rc;
}

static const char *metavar(const struct dst_cfg_opt *o)
{
    if (o->metavar)
        return o->metavar;
    switch (o->type) {
    case DST_CFG_INT:
        return "N";
    case DST_CFG_DOUBLE:
        return "NUM";
    case DST_CFG_BOOL:
        return "";
    default:
        return "TEXT";
    }
}

/* "--name METAVAR", "--[no-]name" for booleans. */
static void flag_text(const struct dst_cfg_opt *o, char *out, size_t outlen)
{
    if (o->type == DST_CFG_BOOL)
        snprintf(out, outlen, "--[no-]%s", o->name);
    else
        snprintf(out, outlen, "--%s %s", o->name, metavar(o));
}

void dst_cfg_help(const struct dst_cfg *cfg, FILE *out)
{
    char flag[160];
    char env[ENV_NAME_MAX];
    int col = (int)strlen("--check-config");

    for (int i = 0; i < cfg->nopts; i++) {
        flag_text(&cfg->opts[i], flag, sizeof(flag));
        if ((int)strlen(flag) > col)
            col = (int)strlen(flag);
    }
    if (col > HELP_COL_MAX)
        col = HELP_COL_MAX;
    fprintf(out, "usage: dstmc %s [options]\n", cfg->service);
    if (cfg->summary)
        fprintf(out, "%s\n", cfg->summary);
    fprintf(out, "\noptions:\n");
    for (int i = 0; i < cfg->nopts; i++) {
        const struct dst_cfg_opt *o = &cfg->opts[i];
        flag_text(o, flag, sizeof(flag));
        env_name(o->name, env, sizeof(env));
        if (o->env_only) {
            fprintf(out, "  %-*s  %s [environment only]\n", col, env, o->help ? o->help : "");
            continue;
        }
        fprintf(out, "  %-*s  %s [env %s", col, flag, o->help ? o->help : "", env);
        if (o->env_alias)
            fprintf(out, " or %s", o->env_alias);
        fputc(']', out);
        if (o->type == DST_CFG_LIST)
            fprintf(out, " (repeatable)");
        if (o->def && o->def[0])
            fprintf(out, " (default: %s)", o->def);
        if (o->state_def) {
            fputs(" (under systemd: ", out);
            fprintf(out, o->state_def, "$STATE_DIRECTORY");
            fputc(')', out);
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-*s  %s\n", col, "--check-config", "check the configuration and exit");
    fprintf(out, "  %-*s  %s\n", col, "-h, --help", "show this help and exit");
}

void dst_cfg_ok(const struct dst_cfg *cfg, FILE *out)
{
    fprintf(out, "dstmc %s: configuration OK\n", cfg->service);
}

const char *dst_cfg_key(const struct dst_cfg *cfg, const char *name, char *buf, size_t len)
{
    const struct dst_cfg_opt *o = find_opt(cfg, name, strlen(name));
    char env[ENV_NAME_MAX];

    if (o && o->from == DST_CFG_FROM_ENV) {
        env_name(o->name, env, sizeof(env));
        snprintf(buf, len, "--%s (from %s)", name, env);
    } else if (o && o->from == DST_CFG_FROM_ALIAS) {
        snprintf(buf, len, "--%s (from %s)", name, o->env_alias);
    } else if (o && o->from == DST_CFG_FROM_STATE) {
        snprintf(buf, len, "--%s (from STATE_DIRECTORY)", name);
    } else {
        snprintf(buf, len, "--%s", name);
    }
    return buf;
}

int dst_cfg_fail(const struct dst_cfg *cfg, FILE *errf, const char *name, const char *fmt, ...)
{
    char key[ENV_NAME_MAX + 64];
    va_list ap;

    if (name)
        fprintf(errf, "dstmc %s: %s: ", cfg->service, dst_cfg_key(cfg, name, key, sizeof(key)));
    else
        fprintf(errf, "dstmc %s: ", cfg->service);
    va_start(ap, fmt);
    vfprintf(errf, fmt, ap);
    va_end(ap);
    fputc('\n', errf);
    return DST_EINVAL;
}

static int split_fail(char *err, size_t errlen, const char *fmt, const char *s)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, s);
    return DST_EINVAL;
}

/* Port text: 1 to 5 digits, 0..65535. */
static bool parse_port(const char *p, int *port)
{
    size_t n = strlen(p);
    long v = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (int)v;
    return true;
}

int dst_cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen)
{
    const char *h = s;
    const char *colon = NULL;
    size_t hlen = 0;
    int p = 0;

    if (!s || !*s)
        return split_fail(err, errlen, "'%s' is not HOST:PORT", s ? s : "");
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':')
            return split_fail(err, errlen, "'%s' is not [IPV6]:PORT", s);
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return split_fail(err, errlen, "'%s' is not HOST:PORT (the port is missing)", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return split_fail(err, errlen, "'%s' is not HOST:PORT (put IPv6 in brackets)", s);
        hlen = (size_t)(colon - s);
    }
    if (!parse_port(colon + 1, &p))
        return split_fail(err, errlen, "'%s': the port must be a number from 0 to 65535", s);
    if (hlen == 0) {
        h = "0.0.0.0";
        hlen = strlen(h);
    }
    if (hlen + 1 > hostlen)
        return split_fail(err, errlen, "'%s': the host is too long", s);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = p;
    return 0;
}

int dst_cfg_check_hostport(const char *value, char *err, size_t errlen)
{
    char host[256];
    int port = 0;

    return dst_cfg_split_hostport(value, host, sizeof(host), &port, err, errlen);
}

bool dst_cfg_is_off(const char *value)
{
    return !value || !*value || strcmp(value, "off") == 0;
}

int dst_cfg_check_hostport_or_off(const char *value, char *err, size_t errlen)
{
    return dst_cfg_is_off(value) ? 0 : dst_cfg_check_hostport(value, err, errlen);
}
