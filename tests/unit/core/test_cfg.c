/* test_cfg.c - unit tests of the configuration table (src/core/cfg.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"

/* The option table every test parses, and where it writes. */
static const char *db;
static const char *token;
static const char *api_url;
static long port;
static long offset;
static double ratio;
static bool web;
static bool verbose;
static struct dst_cfg_list targets;

static int check_no_space(const char *value, char *err, size_t errlen)
{
    if (strchr(value, ' ')) {
        snprintf(err, errlen, "'%s' contains a space", value);
        return -1;
    }
    return 0;
}

static int check_silent(const char *value, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return strcmp(value, "bad") == 0 ? -1 : 0;
}

static struct dst_cfg_opt opts[] = {
    {.name = "db",
     .type = DST_CFG_STR,
     .dest = &db,
     .def = "sqlite:dstmc.db",
     .help = "where results are stored",
     .metavar = "URL"},
    {.name = "token",
     .type = DST_CFG_STR,
     .dest = &token,
     .help = "bearer token",
     .check = check_no_space},
    {.name = "api-url",
     .type = DST_CFG_STR,
     .dest = &api_url,
     .def = "http://127.0.0.1:8080",
     .help = "the API",
     .env_alias = "speedTestApiUrl",
     .check = check_silent},
    {.name = "port",
     .type = DST_CFG_INT,
     .dest = &port,
     .def = "8080",
     .help = "TCP port",
     .min = 1,
     .max = 65535},
    {.name = "offset", .type = DST_CFG_INT, .dest = &offset, .def = "0", .help = "unchecked"},
    {.name = "ratio",
     .type = DST_CFG_DOUBLE,
     .dest = &ratio,
     .def = "0.5",
     .help = "a share",
     .min = 0,
     .max = 1},
    {.name = "web",
     .type = DST_CFG_BOOL,
     .dest = &web,
     .def = "true",
     .help = "serve the UI",
     .env_alias = "WEB_ALIAS"},
    {.name = "verbose", .type = DST_CFG_BOOL, .dest = &verbose, .def = "false", .help = "chatty"},
    {.name = "target", .type = DST_CFG_LIST, .dest = &targets, .help = "a test target"},
};

static struct dst_cfg cfg = {
    .service = "api",
    .summary = "stores and serves results",
    .opts = opts,
    .nopts = (int)(sizeof(opts) / sizeof(opts[0])),
};

static const char *const env_names[] = {
    "DSTMC_DB",   "DSTMC_TOKEN",   "DSTMC_API_URL", "speedTestApiUrl",
    "DSTMC_PORT", "DSTMC_OFFSET",  "DSTMC_RATIO",   "DSTMC_WEB",
    "WEB_ALIAS",  "DSTMC_VERBOSE", "DSTMC_TARGET",
};

/* What one parse printed. */
static char *out_text;
static char *err_text;

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
    db = token = api_url = "untouched";
    port = offset = -99;
    ratio = -99;
    web = verbose = false;
    memset(&targets, 0, sizeof(targets));
    cfg.check_only = false;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    return 0;
}

/* Parses the NULL-terminated arguments after argv[0] = "api", capturing both streams. */
static int parse(const char *first, ...)
{
    char *argv[64] = {"api"};
    int argc = 1;
    size_t olen = 0, elen = 0;
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    free(out_text);
    free(err_text);
    FILE *out = open_memstream(&out_text, &olen);
    FILE *err = open_memstream(&err_text, &elen);
    int rc = dst_cfg_parse(&cfg, argc, argv, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

static void defaults_apply(void **state)
{
    (void)state;
    assert_int_equal(parse(NULL), 0);
    assert_string_equal(db, "sqlite:dstmc.db");
    assert_null(token); /* STR without default: NULL */
    assert_string_equal(api_url, "http://127.0.0.1:8080");
    assert_int_equal(port, 8080);
    assert_int_equal(offset, 0);
    assert_true(ratio == 0.5);
    assert_true(web);
    assert_false(verbose);
    assert_int_equal(targets.n, 0);
    assert_false(cfg.check_only);
    assert_string_equal(err_text, "");
    assert_string_equal(out_text, "");
}

static void flag_forms(void **state)
{
    (void)state;
    assert_int_equal(parse("--db", "sqlite:/tmp/x.db", "--port=9090", "--no-web", "--verbose",
                           "--ratio", "0.25", "--offset=-5", "--token=", NULL),
                     0);
    assert_string_equal(db, "sqlite:/tmp/x.db");
    assert_int_equal(port, 9090);
    assert_false(web);
    assert_true(verbose);
    assert_true(ratio == 0.25);
    assert_int_equal(offset, -5); /* min == max == 0: unchecked */
    assert_string_equal(token, "");
    assert_string_equal(err_text, "");
}

static void bool_values(void **state)
{
    static const char *const yes[] = {"--web=true", "--web=1", "--web=YES", "--web=on"};
    static const char *const no[] = {"--web=false", "--web=0", "--web=no", "--web=Off"};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        web = false;
        assert_int_equal(parse(yes[i], NULL), 0);
        assert_true(web);
        assert_int_equal(parse(no[i], NULL), 0);
        assert_false(web);
    }
    /* The last occurrence wins. */
    assert_int_equal(parse("--no-web", "--web", NULL), 0);
    assert_true(web);
}

static void precedence(void **state)
{
    (void)state;
    setenv("speedTestApiUrl", "http://alias", 1);
    assert_int_equal(parse(NULL), 0);
    assert_string_equal(api_url, "http://alias");

    setenv("DSTMC_API_URL", "http://twin", 1);
    assert_int_equal(parse(NULL), 0);
    assert_string_equal(api_url, "http://twin");

    assert_int_equal(parse("--api-url", "http://flag", NULL), 0);
    assert_string_equal(api_url, "http://flag");

    setenv("DSTMC_PORT", "81", 1);
    setenv("DSTMC_WEB", "off", 1);
    setenv("WEB_ALIAS", "on", 1);
    assert_int_equal(parse(NULL), 0);
    assert_int_equal(port, 81);
    assert_false(web); /* DSTMC_WEB beats the alias */
    assert_int_equal(parse("--port=82", "--web", NULL), 0);
    assert_int_equal(port, 82);
    assert_true(web);
}

static void env_empty_string(void **state)
{
    (void)state;
    setenv("DSTMC_DB", "", 1);
    assert_int_equal(parse(NULL), 0);
    assert_string_equal(db, "");
}

static void lists(void **state)
{
    (void)state;
    setenv("DSTMC_TARGET", "dummy:", 1);
    assert_int_equal(parse(NULL), 0);
    assert_int_equal(targets.n, 1);
    assert_string_equal(targets.v[0], "dummy:");

    assert_int_equal(parse("--target", "iperf3://a", "--target=speedtest://auto", NULL), 0);
    assert_int_equal(targets.n, 2); /* flags replace the environment, and append */
    assert_string_equal(targets.v[0], "iperf3://a");
    assert_string_equal(targets.v[1], "speedtest://auto");
}

static void list_lines_from_env(void **state)
{
    (void)state;
    /* One value per line: how Compose or Kubernetes give a monitor its two backends. */
    setenv("DSTMC_TARGET", "iperf3://a\r\n\nspeedtest://auto\n", 1);
    assert_int_equal(parse(NULL), 0);
    assert_int_equal(targets.n, 2);
    assert_string_equal(targets.v[0], "iperf3://a");
    assert_string_equal(targets.v[1], "speedtest://auto");
    assert_string_equal(getenv("DSTMC_TARGET"), "iperf3://a\r\n\nspeedtest://auto\n");

    setenv("DSTMC_TARGET", "\n\n", 1);
    assert_int_equal(parse(NULL), 0);
    assert_int_equal(targets.n, 0);
}

static void list_lines_overflow(void **state)
{
    char text[(DST_CFG_LIST_MAX + 1) * 8] = "";
    size_t elen = 0;

    (void)state;
    for (int i = 0; i <= DST_CFG_LIST_MAX; i++)
        strcat(text, "dummy:\n");
    setenv("DSTMC_TARGET", text, 1);
    char *argv[] = {"api", NULL};
    FILE *err = open_memstream(&err_text, &elen);
    assert_int_equal(dst_cfg_parse(&cfg, 1, argv, NULL, err), DST_EINVAL);
    fclose(err);
    assert_non_null(strstr(err_text, "--target (from DSTMC_TARGET): more than 16 values"));
}

static void list_overflow(void **state)
{
    char *argv[2 + 2 * (DST_CFG_LIST_MAX + 1)];
    int argc = 0;
    size_t elen = 0;

    (void)state;
    argv[argc++] = "api";
    for (int i = 0; i <= DST_CFG_LIST_MAX; i++) {
        argv[argc++] = "--target";
        argv[argc++] = "dummy:";
    }
    argv[argc] = NULL;
    FILE *err = open_memstream(&err_text, &elen);
    assert_int_equal(dst_cfg_parse(&cfg, argc, argv, NULL, err), DST_EINVAL);
    fclose(err);
    assert_string_equal(err_text, "dstmc api: --target: more than 16 values\n");
}

static void int_errors(void **state)
{
    (void)state;
    setenv("DSTMC_PORT", "abc", 1);
    assert_int_equal(parse(NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --port (from DSTMC_PORT): 'abc' is not an integer\n");

    assert_int_equal(parse("--port", "70000", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --port: '70000' must be from 1 to 65535\n");
    assert_int_equal(parse("--port=0", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --port: '0' must be from 1 to 65535\n");

    static const char *const bad[] = {"--port=", "--port=12x", "--port= 12", "--port=1.5",
                                      "--port=99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "dstmc api: --port: '%s' is not an integer\n", bad[i] + 7);
        assert_int_equal(parse(bad[i], NULL), DST_EINVAL);
        assert_string_equal(err_text, want);
    }
}

static void double_errors(void **state)
{
    (void)state;
    setenv("DSTMC_RATIO", "1.5", 1);
    assert_int_equal(parse(NULL), DST_EINVAL);
    assert_string_equal(err_text,
                        "dstmc api: --ratio (from DSTMC_RATIO): '1.5' must be from 0 to 1\n");
    assert_int_equal(parse("--ratio=nan", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --ratio: 'nan' is not a number\n");
    assert_int_equal(parse("--ratio=1e999", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --ratio: '1e999' is not a number\n");
    assert_int_equal(parse("--ratio=0.5x", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --ratio: '0.5x' is not a number\n");
}

static void bool_errors(void **state)
{
    (void)state;
    setenv("WEB_ALIAS", "maybe", 1);
    assert_int_equal(parse(NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --web (from WEB_ALIAS): 'maybe' is not a boolean "
                                  "(true/false, yes/no, on/off, 1/0)\n");
    assert_int_equal(parse("--no-web=1", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --no-web takes no value\n");
    /* A boolean never takes the next word as its value. */
    assert_int_equal(parse("--verbose", "false", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unexpected argument 'false'\n");
}

static void argv_errors(void **state)
{
    (void)state;
    assert_int_equal(parse("--foo", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unknown option '--foo'\n");
    assert_int_equal(parse("--foo=bar", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unknown option '--foo'\n");
    assert_int_equal(parse("--no-port", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unknown option '--no-port'\n");
    assert_int_equal(parse("--no-such", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unknown option '--no-such'\n");
    assert_int_equal(parse("-x", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unknown option '-x'\n");
    assert_int_equal(parse("stray", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unexpected argument 'stray'\n");
    assert_int_equal(parse("--", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: unexpected argument '--'\n");
    assert_int_equal(parse("--db", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --db needs a value\n");
    assert_int_equal(parse("--db", "--port", "1", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --db needs a value\n");
}

static void checks(void **state)
{
    (void)state;
    assert_int_equal(parse("--token", "a b", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --token: 'a b' contains a space\n");
    setenv("speedTestApiUrl", "bad", 1);
    assert_int_equal(parse(NULL), DST_EINVAL);
    assert_string_equal(err_text,
                        "dstmc api: --api-url (from speedTestApiUrl): 'bad' is not valid\n");
    unsetenv("speedTestApiUrl");
    assert_int_equal(parse("--token=ok", NULL), 0);
    assert_string_equal(token, "ok");
}

static void every_bad_value_reported(void **state)
{
    (void)state;
    setenv("DSTMC_PORT", "x", 1);
    setenv("DSTMC_RATIO", "y", 1);
    assert_int_equal(parse(NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc api: --port (from DSTMC_PORT): 'x' is not an integer\n"
                                  "dstmc api: --ratio (from DSTMC_RATIO): 'y' is not a number\n");
}

static void bad_default(void **state)
{
    long n = 0;
    struct dst_cfg_opt o[] = {{.name = "n", .type = DST_CFG_INT, .dest = &n, .def = "ten"}};
    struct dst_cfg c = {.service = "run", .opts = o, .nopts = 1};
    char *argv[] = {"run", NULL};
    size_t elen = 0;

    (void)state;
    FILE *err = open_memstream(&err_text, &elen);
    assert_int_equal(dst_cfg_parse(&c, 1, argv, NULL, err), DST_EINVAL);
    fclose(err);
    assert_string_equal(err_text, "dstmc run: --n (from the default): 'ten' is not an integer\n");
}

static void no_default_leaves_dest(void **state)
{
    long n = 42;
    bool b = true;
    struct dst_cfg_opt o[] = {{.name = "n", .type = DST_CFG_INT, .dest = &n},
                              {.name = "b", .type = DST_CFG_BOOL, .dest = &b}};
    struct dst_cfg c = {.service = "run", .opts = o, .nopts = 2};
    char *argv[] = {"run", NULL};

    (void)state;
    assert_int_equal(dst_cfg_parse(&c, 1, argv, NULL, NULL), 0);
    assert_int_equal(n, 42);
    assert_true(b);
}

static void check_config(void **state)
{
    (void)state;
    assert_int_equal(parse("--check-config", "--port=1", NULL), 0);
    assert_true(cfg.check_only);
    assert_int_equal(port, 1);
    assert_int_equal(parse(NULL), 0);
    assert_false(cfg.check_only);
}

static void help(void **state)
{
    (void)state;
    assert_int_equal(parse("--help", NULL), DST_CFG_EXIT);
    assert_string_equal(
        out_text,
        "usage: dstmc api [options]\n"
        "stores and serves results\n"
        "\n"
        "options:\n"
        "  --db URL        where results are stored [env DSTMC_DB] (default: sqlite:dstmc.db)\n"
        "  --token TEXT    bearer token [env DSTMC_TOKEN]\n"
        "  --api-url TEXT  the API [env DSTMC_API_URL or speedTestApiUrl] "
        "(default: http://127.0.0.1:8080)\n"
        "  --port N        TCP port [env DSTMC_PORT] (default: 8080)\n"
        "  --offset N      unchecked [env DSTMC_OFFSET] (default: 0)\n"
        "  --ratio NUM     a share [env DSTMC_RATIO] (default: 0.5)\n"
        "  --[no-]web      serve the UI [env DSTMC_WEB or WEB_ALIAS] (default: true)\n"
        "  --[no-]verbose  chatty [env DSTMC_VERBOSE] (default: false)\n"
        "  --target TEXT   a test target [env DSTMC_TARGET] (repeatable)\n"
        "  --check-config  check the configuration and exit\n"
        "  -h, --help      show this help and exit\n");
    assert_string_equal(db, "untouched"); /* nothing parsed */

    /* -h is --help, and help wins over errors elsewhere on the line. */
    char *first = strdup(out_text);
    assert_int_equal(parse("--bogus", "-h", NULL), DST_CFG_EXIT);
    assert_string_equal(out_text, first);
    assert_string_equal(err_text, "");
    free(first);
}

static void help_column_capped(void **state)
{
    const char *v = NULL;
    struct dst_cfg_opt o[] = {{.name = "a-rather-long-option-name",
                               .type = DST_CFG_STR,
                               .dest = &v,
                               .help = "long",
                               .metavar = "URL"}};
    struct dst_cfg c = {.service = "web", .opts = o, .nopts = 1};
    size_t olen = 0;

    (void)state;
    FILE *out = open_memstream(&out_text, &olen);
    dst_cfg_help(&c, out);
    fclose(out);
    assert_string_equal(out_text,
                        "usage: dstmc web [options]\n"
                        "\n"
                        "options:\n"
                        "  --a-rather-long-option-name URL  long [env "
                        "DSTMC_A_RATHER_LONG_OPTION_NAME]\n"
                        "  --check-config                check the configuration and exit\n"
                        "  -h, --help                    show this help and exit\n");
}

static void ok_and_fail(void **state)
{
    char *text = NULL;
    size_t len = 0;

    (void)state;
    FILE *f = open_memstream(&text, &len);
    dst_cfg_ok(&cfg, f);
    assert_int_equal(dst_cfg_fail(&cfg, f, "db", "cannot open '%s': %s", "x.db", "no such file"),
                     DST_EINVAL);
    assert_int_equal(dst_cfg_fail(&cfg, f, NULL, "%d problems", 2), DST_EINVAL);
    fclose(f);
    assert_string_equal(text, "dstmc api: configuration OK\n"
                              "dstmc api: --db: cannot open 'x.db': no such file\n"
                              "dstmc api: 2 problems\n");
    free(text);
}

/* A service's own check reports like the parser: the environment twin when the value came from it. */
static void fail_names_the_source(void **state)
{
    char key[96];
    char *text = NULL;
    size_t len = 0;

    (void)state;
    setenv("DSTMC_DB", "sqlite:/env.db", 1);
    setenv("speedTestApiUrl", "http://alias", 1);
    assert_int_equal(parse("--port", "1", NULL), 0);
    assert_int_equal(opts[0].from, DST_CFG_FROM_ENV);
    assert_int_equal(opts[1].from, DST_CFG_FROM_NONE); /* token: no value, no default */
    assert_int_equal(opts[2].from, DST_CFG_FROM_ALIAS);
    assert_int_equal(opts[3].from, DST_CFG_FROM_FLAG);
    assert_int_equal(opts[4].from, DST_CFG_FROM_DEFAULT);
    FILE *f = open_memstream(&text, &len);
    dst_cfg_fail(&cfg, f, "db", "cannot open it");
    dst_cfg_fail(&cfg, f, "api-url", "no");
    dst_cfg_fail(&cfg, f, "port", "in use");
    dst_cfg_fail(&cfg, f, "offset", "odd");
    dst_cfg_fail(&cfg, f, "not-an-option", "still reported");
    fclose(f);
    assert_string_equal(text, "dstmc api: --db (from DSTMC_DB): cannot open it\n"
                              "dstmc api: --api-url (from speedTestApiUrl): no\n"
                              "dstmc api: --port: in use\n"
                              "dstmc api: --offset: odd\n"
                              "dstmc api: --not-an-option: still reported\n");
    free(text);
    assert_string_equal(dst_cfg_key(&cfg, "db", key, sizeof(key)), "--db (from DSTMC_DB)");
    assert_string_equal(dst_cfg_key(&cfg, "port", key, sizeof(key)), "--port");
    /* a flag given later wins, and so does its source */
    assert_int_equal(parse("--db", "sqlite:x", NULL), 0);
    assert_string_equal(dst_cfg_key(&cfg, "db", key, sizeof(key)), "--db");
}

static void hostport_or_off(void **state)
{
    char why[128] = "";

    (void)state;
    assert_true(dst_cfg_is_off("off"));
    assert_true(dst_cfg_is_off(""));
    assert_true(dst_cfg_is_off(NULL));
    assert_false(dst_cfg_is_off("OFF")); /* only the documented word */
    assert_false(dst_cfg_is_off(":0"));
    assert_int_equal(dst_cfg_check_hostport_or_off("off", why, sizeof(why)), 0);
    assert_int_equal(dst_cfg_check_hostport_or_off("", why, sizeof(why)), 0);
    assert_int_equal(dst_cfg_check_hostport_or_off("127.0.0.1:5201", why, sizeof(why)), 0);
    assert_int_equal(dst_cfg_check_hostport_or_off("of", why, sizeof(why)), DST_EINVAL);
    assert_string_equal(why, "'of' is not HOST:PORT (the port is missing)");
}

static void hostport_good(void **state)
{
    char host[64];
    int port_ = -1;

    (void)state;
    assert_int_equal(dst_cfg_split_hostport("127.0.0.1:8080", host, sizeof(host), &port_, NULL, 0),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port_, 8080);
    assert_int_equal(dst_cfg_split_hostport("[::1]:0", host, sizeof(host), &port_, NULL, 0), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port_, 0);
    assert_int_equal(dst_cfg_split_hostport(":65535", host, sizeof(host), &port_, NULL, 0), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port_, 65535);
    assert_int_equal(dst_cfg_split_hostport("localhost:80", host, sizeof(host), &port_, NULL, 0),
                     0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port_, 80);
    /* the same verdict as an option's check */
    char why[128] = "";
    assert_int_equal(dst_cfg_check_hostport("127.0.0.1:0", why, sizeof(why)), 0);
    assert_int_equal(dst_cfg_check_hostport("127.0.0.1:99999", why, sizeof(why)), DST_EINVAL);
    assert_string_equal(why, "'127.0.0.1:99999': the port must be a number from 0 to 65535");
}

static void hostport_bad(void **state)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"", "'' is not HOST:PORT"},
        {"localhost", "'localhost' is not HOST:PORT (the port is missing)"},
        {"::1:80", "'::1:80' is not HOST:PORT (put IPv6 in brackets)"},
        {"[::1]80", "'[::1]80' is not [IPV6]:PORT"},
        {"[::1", "'[::1' is not [IPV6]:PORT"},
        {"[]:80", "'[]:80' is not [IPV6]:PORT"},
        {"host:", "'host:': the port must be a number from 0 to 65535"},
        {"host:65536", "'host:65536': the port must be a number from 0 to 65535"},
        {"host:-1", "'host:-1': the port must be a number from 0 to 65535"},
        {"host:8o", "'host:8o': the port must be a number from 0 to 65535"},
        {"host:000080", "'host:000080': the port must be a number from 0 to 65535"},
        {"a-very-long-host-name:1", "'a-very-long-host-name:1': the host is too long"},
    };
    char host[8];
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int p = 4242;
        err[0] = '\0';
        assert_int_equal(
            dst_cfg_split_hostport(cases[i].in, host, sizeof(host), &p, err, sizeof(err)),
            DST_EINVAL);
        assert_string_equal(err, cases[i].why);
        assert_int_equal(p, 4242); /* untouched on failure */
    }
    assert_int_equal(dst_cfg_split_hostport(NULL, host, sizeof(host), NULL, err, sizeof(err)),
                     DST_EINVAL);
}

/* Under systemd (StateDirectory=), an option with a state_def defaults into the state directory. */
static void state_directory_default(void **state)
{
    static const char *sdb, *plain;
    struct dst_cfg_opt sopts[] = {
        {.name = "db",
         .type = DST_CFG_STR,
         .dest = &sdb,
         .def = "sqlite:./dstmc.db",
         .help = "results store",
         .state_def = "sqlite:%s/dstmc.db"},
        {.name = "port", .type = DST_CFG_STR, .dest = &plain, .def = "8080", .help = "port"},
    };
    struct dst_cfg scfg = {"api", NULL, sopts, 2};
    char *argv[] = {"api", "--db", "sqlite:/flag.db", NULL};
    char *text = NULL, dir[64];
    size_t len = 0;
    FILE *null = fopen("/dev/null", "w");

    (void)state;
    unsetenv("STATE_DIRECTORY");
    assert_null(dst_cfg_state_dir(dir, sizeof(dir)));
    assert_int_equal(dst_cfg_parse(&scfg, 1, argv, null, null), 0);
    assert_string_equal(sdb, "sqlite:./dstmc.db");
    assert_int_equal(sopts[0].from, DST_CFG_FROM_DEFAULT);

    /* systemd lists several directories with ':'; the first is the service's own */
    setenv("STATE_DIRECTORY", "/var/lib/dstmc:/var/lib/other", 1);
    assert_string_equal(dst_cfg_state_dir(dir, sizeof(dir)), "/var/lib/dstmc");
    assert_int_equal(dst_cfg_parse(&scfg, 1, argv, null, null), 0);
    assert_string_equal(sdb, "sqlite:/var/lib/dstmc/dstmc.db");
    assert_int_equal(sopts[0].from, DST_CFG_FROM_STATE);
    assert_string_equal(plain, "8080"); /* no state_def: the default as ever */
    assert_string_equal(dst_cfg_key(&scfg, "db", dir, sizeof(dir)), "--db (from STATE_DIRECTORY)");

    /* the environment twin and the flag still win */
    setenv("DSTMC_DB", "sqlite:/env.db", 1);
    assert_int_equal(dst_cfg_parse(&scfg, 1, argv, null, null), 0);
    assert_string_equal(sdb, "sqlite:/env.db");
    assert_int_equal(dst_cfg_parse(&scfg, 3, argv, null, null), 0);
    assert_string_equal(sdb, "sqlite:/flag.db");
    unsetenv("DSTMC_DB");

    /* an empty STATE_DIRECTORY is none */
    setenv("STATE_DIRECTORY", "", 1);
    assert_int_equal(dst_cfg_parse(&scfg, 1, argv, null, null), 0);
    assert_string_equal(sdb, "sqlite:./dstmc.db");

    /* --help shows both defaults */
    FILE *f = open_memstream(&text, &len);
    dst_cfg_help(&scfg, f);
    fclose(f);
    assert_non_null(strstr(text, "(default: sqlite:./dstmc.db) (under systemd: "
                                 "sqlite:$STATE_DIRECTORY/dstmc.db)"));
    free(text);
    fclose(null);
    unsetenv("STATE_DIRECTORY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(flag_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(bool_values, setup, teardown),
        cmocka_unit_test_setup_teardown(precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(env_empty_string, setup, teardown),
        cmocka_unit_test_setup_teardown(lists, setup, teardown),
        cmocka_unit_test_setup_teardown(list_lines_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(list_lines_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(list_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(int_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(double_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(bool_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(argv_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(checks, setup, teardown),
        cmocka_unit_test_setup_teardown(every_bad_value_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_default, setup, teardown),
        cmocka_unit_test_setup_teardown(no_default_leaves_dest, setup, teardown),
        cmocka_unit_test_setup_teardown(check_config, setup, teardown),
        cmocka_unit_test_setup_teardown(help, setup, teardown),
        cmocka_unit_test_setup_teardown(help_column_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(ok_and_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(hostport_good, setup, teardown),
        cmocka_unit_test_setup_teardown(hostport_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(fail_names_the_source, setup, teardown),
        cmocka_unit_test_setup_teardown(hostport_or_off, setup, teardown),
        cmocka_unit_test_setup_teardown(state_directory_default, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
