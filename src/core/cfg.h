/* cfg.h - the configuration table: flags, DSTMC_* environment twins, --help, --check-config */
#ifndef DST_CFG_H
#define DST_CFG_H

#include <stdbool.h>
#include <stdio.h>

enum dst_cfg_type {
    DST_CFG_STR, /* dest: const char ** (points into argv, environ or the default; never freed) */
    DST_CFG_INT, /* dest: long *, checked against [min, max] */
    DST_CFG_DOUBLE, /* dest: double *, checked against [min, max] */
    DST_CFG_BOOL,   /* dest: bool *; "--x" alone means true; values true/false/1/0/yes/no/on/off */
    DST_CFG_LIST,   /* dest: struct dst_cfg_list *; every occurrence of the flag appends;
                       its DSTMC_* twin holds one value per line (blank lines skipped) */
};

#define DST_CFG_LIST_MAX 16

/* Where an option's value came from; dst_cfg_parse records it in the option. */
enum dst_cfg_from {
    DST_CFG_FROM_NONE,    /* no value (no default either) */
    DST_CFG_FROM_FLAG,    /* the command line */
    DST_CFG_FROM_ENV,     /* its DSTMC_* twin */
    DST_CFG_FROM_ALIAS,   /* its env_alias */
    DST_CFG_FROM_DEFAULT, /* def */
    DST_CFG_FROM_STATE,   /* state_def under $STATE_DIRECTORY */
};

struct dst_cfg_list {
    const char *v[DST_CFG_LIST_MAX];
    int n;
};

/*
 * One option. name "db" gives the flag --db and the environment variable DSTMC_DB ('-' → '_',
 * upper case). env_alias is one more environment name accepted (e.g. the original logger's
 * "speedTestApiUrl"); it loses to DSTMC_* and to the flag. Precedence: flag > DSTMC_* >
 * env_alias > def. def is text parsed like a value; NULL leaves dest untouched (STR: NULL).
 * check, when set, validates the final text value and writes a reason into err. from is
 * written by dst_cfg_parse (leave it out of the table).
 */
struct dst_cfg_opt {
    const char *name;
    enum dst_cfg_type type;
    void *dest;
    const char *def;
    const char *help;
    const char *metavar; /* shown in --help, e.g. "URL"; NULL → derived from type */
    double min, max;     /* INT and DOUBLE only; min == max == 0 means unchecked */
    const char *env_alias;
    int (*check)(const char *value, char *err, size_t errlen);
    /*
     * A secret (a token): taken from the environment only, never from the command line, where
     * every user of the machine can read it (ps); the flag is refused with a pointer to the
     * environment variable. In --help as "[env NAME only]".
     */
    bool env_only;
    /*
     * The default when systemd gave the service a state directory (StateDirectory=, which sets
     * $STATE_DIRECTORY; its first entry when it lists several): this text with its one "%s"
     * replaced by that directory, e.g. "sqlite:%s/dstmc.db". Used instead of def when neither
     * flag nor environment (DSTMC_*, alias) gives a value. NULL: def alone.
     */
    const char *state_def;
    enum dst_cfg_from from;
};

struct dst_cfg {
    const char *service; /* "api" → usage "dstmc api [options]" */
    const char *summary; /* one line shown by --help */
    struct dst_cfg_opt *opts;
    int nopts;
    bool check_only; /* set by dst_cfg_parse when --check-config was given */
};

/* Result of dst_cfg_parse besides errors: go on, or exit 0 now (--help was printed). */
#define DST_CFG_EXIT 1

/*
 * Parses argv (argv[0] is the service name, options follow: "--name value", "--name=value",
 * "--bool", "--no-bool") over the environment and the defaults, and writes every dest.
 * --help prints the generated help to out and returns DST_CFG_EXIT. --check-config sets
 * cfg->check_only (the service checks what only it can check, then prints
 * dst_cfg_ok()'s line and exits 0). Errors name the key and the source, e.g.
 * "dstmc api: --port (from DSTMC_PORT): 'abc' is not an integer", are printed to errf and
 * give DST_EINVAL; nothing is left half-set that a caller would use, since the caller exits.
 * Unknown flags and stray arguments are errors.
 */
int dst_cfg_parse(struct dst_cfg *cfg, int argc, char **argv, FILE *out, FILE *errf);

/*
 * The state directory systemd gave this process: the first entry of $STATE_DIRECTORY (a
 * colon-separated list), written into buf; NULL when there is none (or it does not fit).
 */
const char *dst_cfg_state_dir(char *buf, size_t len);

/* Prints the generated help of cfg to out. */
void dst_cfg_help(const struct dst_cfg *cfg, FILE *out);

/* Prints "dstmc SERVICE: configuration OK" to out. */
void dst_cfg_ok(const struct dst_cfg *cfg, FILE *out);

/*
 * Reports a semantic error found by the service: "dstmc SERVICE: --NAME: REASON" to errf, or
 * "--NAME (from DSTMC_NAME): REASON" when the option's value came from the environment (as
 * dst_cfg_parse's own errors). Returns DST_EINVAL.
 */
int dst_cfg_fail(const struct dst_cfg *cfg, FILE *errf, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Splits "HOST:PORT", "[V6]:PORT" or ":PORT" (host "0.0.0.0") into host (without brackets)
 * and port (0..65535). DST_EINVAL with a reason in err on anything else.
 */
int dst_cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen);

/* A check for an option holding "HOST:PORT" (e.g. --listen): dst_cfg_split_hostport's verdict. */
int dst_cfg_check_hostport(const char *value, char *err, size_t errlen);

/* The same for a listener that may be left out: "off" or "" pass too. */
int dst_cfg_check_hostport_or_off(const char *value, char *err, size_t errlen);

/* True when a listener option's value turns it off ("off" or ""). */
bool dst_cfg_is_off(const char *value);

/*
 * The option key as the messages name it: "--NAME", or "--NAME (from DSTMC_NAME)" when its value
 * came from the environment. Written into buf, which is returned.
 */
const char *dst_cfg_key(const struct dst_cfg *cfg, const char *name, char *buf, size_t len);

#endif
