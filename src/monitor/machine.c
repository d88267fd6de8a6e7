/* machine.c - `dstmc machine`: the demo service the monitor watches (the original Machine1/2) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/http_server.h"
#include "core/json.h"
#include "monitor/services.h"

/*
 * GET /ping → "pong". GET /?first=a&second=b → {"sum":a+b,"random":r,"err":false}, r a whole
 * number in [random-min, random-max] (Machine1: 1..40, Machine2: 70..100); a missing or
 * non-numeric argument → {"err":true} (the original let Number("x") through as NaN, which
 * JSON.stringify printed as null). Sums print as JavaScript would: whole ones without ".0".
 */
struct machine {
    long lo, hi;
};

/* a as a finite decimal number, the whole text; false otherwise. */
static bool number(const char *a, double *out)
{
    char *end = NULL;
    if (!a || !*a)
        return false;
    *out = strtod(a, &end);
    return *end == '\0' && isfinite(*out);
}

static long pick(const struct machine *m)
{
    unsigned long r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (unsigned long)random();
    return m->lo + (long)(r % (unsigned long)(m->hi - m->lo + 1));
}

static void get_sum(struct dst_http_req *req, void *ud)
{
    const struct machine *m = ud;
    double a, b;

    if (!number(dst_http_req_query(req, "first"), &a) ||
        !number(dst_http_req_query(req, "second"), &b)) {
        json_t *j = json_pack("{s:b}", "err", 1);
        dst_http_reply_json(req, 200, j);
        json_decref(j);
        return;
    }
    double sum = a + b;
    json_t *s = sum == floor(sum) && fabs(sum) < 9007199254740992.0 ? json_integer((json_int_t)sum)
                                                                    : json_real(sum);
    json_t *j = json_pack("{s:o, s:I, s:b}", "sum", s, "random", (json_int_t)pick(m), "err", 0);
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

static void get_ping(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain; charset=utf-8", "pong", 4);
}

static int mount(struct dst_http_server *srv, void *ud)
{
    int rc = dst_http_server_route(srv, "GET", "/ping", get_ping, ud, 0, 0);
    return rc ? rc : dst_http_server_route(srv, "GET", "/", get_sum, ud, 0, 0);
}

int machine_main(int argc, char **argv)
{
    struct machine m = {0};
    const char *listen = NULL;
    bool access_log = false;
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &listen, "0.0.0.0:3001",
         "address to listen on (the monitor has the original's 3000)", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"random-min", DST_CFG_INT, &m.lo, "1", "smallest random number (Machine2: 70)", "N", 0,
         1000000000},
        {"random-max", DST_CFG_INT, &m.hi, "40", "largest random number (Machine2: 100)", "N", 0,
         1000000000},
        {"access-log", DST_CFG_BOOL, &access_log, "false", "log one line per request"},
    };
    struct dst_cfg cfg = {"machine", "the demo service the monitor watches: /ping and sums", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls[] = {{"listen", NULL, false}};
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (m.lo > m.hi)
        return dst_cfg_fail(&cfg, stderr, "random-max", "%ld is below --random-min %ld", m.hi,
                            m.lo),
               2;
    ls[0].value = listen;
    if (dst_cfg_check_listeners(&cfg, stderr, ls, 1))
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    struct dst_http_server_opts so = {
        .listen = listen, .name = "machine", .access_log = access_log};
    rc = dst_http_serve(&so, mount, &m);
    return rc ? 1 : 0;
}
