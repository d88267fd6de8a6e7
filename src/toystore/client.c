/* client.c - `dstmc toystore client`: the toy store's client and load generator (Lab 2/3) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"
#include "toystore/services.h"
#include "toystore/client_api.h"
#include "toystore/client_session.h"

#define SERVICE      "toystore client"
#define MAX_REQUESTS 10000000L /* clients x iterations: every latency sample is kept */

/* The Lab 3 catalog (the original client's list). */
static const char DEFAULT_TOYS[] = "Tux,Whale,Elephant,Bird,Risk,Sand,Jenga,Uno,Pinball,Clue";
static const char *const MODES[] = {"session", "query", "buy"};

static int check_mode(const char *v, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(MODES) / sizeof(MODES[0]); i++)
        if (strcmp(v, MODES[i]) == 0)
            return 0;
    return dst_errf(DST_EINVAL, err, errlen, "'%s' is not session, query or buy", v);
}

/* A toy name as it goes into a URL and a JSON body: 1..127 bytes, no control characters. */
static int check_name(const char *v, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len >= TOYCLIENT_NAME_MAX)
        return dst_errf(DST_EINVAL, err, errlen, "a toy name must have 1 to %d characters",
                        TOYCLIENT_NAME_MAX - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return dst_errf(DST_EINVAL, err, errlen, "a toy name has a control character");
    return 0;
}

static int check_toy(const char *v, char *err, size_t errlen)
{
    return check_name(v, strlen(v), err, errlen);
}

static int check_toys(const char *v, char *err, size_t errlen)
{
    int n = 0;

    for (const char *p = v;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = check_name(p, len, err, errlen);
        if (rc)
            return rc;
        if (n + 1 > TOYCLIENT_MAX_TOYS)
            return dst_errf(DST_EINVAL, err, errlen, "more than %d toys", TOYCLIENT_MAX_TOYS);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* "N" or "A-B" (1 <= A <= B <= 1000000) into [*lo, *hi]. */
static int parse_quantity(const char *v, long long *lo, long long *hi, char *err, size_t errlen)
{
    char *end = NULL;
    long long a = strtoll(v, &end, 10), b = a;

    if (end != v && *end == '-') {
        const char *rest = end + 1;
        b = strtoll(rest, &end, 10);
        if (end == rest)
            end = (char *)v;
    }
    if (end == v || *end || a < 1 || b < a || b > 1000000)
        return dst_errf(DST_EINVAL, err, errlen,
                        "'%s' is not a quantity N or a range A-B (1 <= A <= B <= 1000000)", v);
    *lo = a;
    *hi = b;
    return 0;
}

static int check_quantity(const char *v, char *err, size_t errlen)
{
    long long lo, hi;
    return parse_quantity(v, &lo, &hi, err, errlen);
}

/* Splits the checked --toys text into run->toys (the copy stays for the run: *buf). */
static void split_toys(struct toyclient_run *run, const char *toys, char **buf)
{
    char *save = NULL;

    *buf = dst_xstrdup(toys);
    for (char *t = strtok_r(*buf, ",", &save); t && run->ntoys < TOYCLIENT_MAX_TOYS;
         t = strtok_r(NULL, ",", &save))
        run->toys[run->ntoys++] = t;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
        s = (uint64_t)dst_monotonic_us();
    return s & ((1ull << 53) - 1); /* a seed --seed takes back */
}

/* The merged outcome of a run. */
struct totals {
    struct toyclient_tally query, buy, check;
    uint64_t made, unchecked;
    long long bad[TOYCLIENT_MAX_LISTED];
    size_t nbad;
    double elapsed_s; /* from the first session's start to the last one's end */
    double load_s;    /* to the end of the last session's iterations (before the checks) */
    bool stopped;
};

static void merge(struct totals *t, struct toyclient_session *s, int n)
{
    toyclient_tally_init(&t->query, "query");
    toyclient_tally_init(&t->buy, "buy");
    toyclient_tally_init(&t->check, "check");
    for (int i = 0; i < n; i++) {
        toyclient_tally_merge(&t->query, &s[i].query);
        toyclient_tally_merge(&t->buy, &s[i].buy);
        toyclient_tally_merge(&t->check, &s[i].check);
        t->made += s[i].norders;
        t->unchecked += s[i].unchecked;
        for (size_t k = 0; k < s[i].nbad && t->nbad < TOYCLIENT_MAX_LISTED; k++)
            t->bad[t->nbad++] = s[i].bad[k];
    }
}

static uint64_t requests(const struct totals *t)
{
    return toyclient_tally_count(&t->query) + toyclient_tally_count(&t->buy) +
           toyclient_tally_count(&t->check);
}

/* The load phase's requests: queries and buys, not the checks after it. */
static uint64_t load_requests(const struct totals *t)
{
    return toyclient_tally_count(&t->query) + toyclient_tally_count(&t->buy);
}

static double rate(uint64_t n, double seconds)
{
    return seconds > 0 ? (double)n / seconds : 0;
}

/* Failures the API does not document: the run's exit status is 1 when there is any. */
static uint64_t failures(const struct toyclient_tally *t)
{
    return t->n[TOYCLIENT_MISMATCH] + t->n[TOYCLIENT_REJECTED] + t->n[TOYCLIENT_BAD_REPLY] +
           t->n[TOYCLIENT_TRANSPORT];
}

static void print_json(const struct toyclient_run *r, const char *quantity, long clients,
                       struct totals *t, FILE *out)
{
    json_t *j = json_object(), *orders = json_object(), *bad = json_array();
    uint64_t n = requests(t), load = load_requests(t);

    dst_json_set_str(j, "mode", MODES[r->mode]);
    dst_json_set_str(j, "frontend", r->base);
    dst_json_set_int(j, "clients", clients);
    dst_json_set_int(j, "iterations", r->iterations);
    dst_json_set_num(j, "p", r->p);
    dst_json_set_str(j, "buy_quantity", quantity);
    if (r->mode == TOYCLIENT_SESSION) {
        json_t *toys = json_array();
        for (int i = 0; i < r->ntoys; i++)
            json_array_append_new(toys, json_string(r->toys[i]));
        json_object_set_new(j, "toys", toys);
    } else {
        dst_json_set_str(j, "toy", r->toy);
    }
    dst_json_set_int(j, "seed", (int64_t)r->seed);
    json_object_set_new(j, "stopped", json_boolean(t->stopped));
    dst_json_set_num(j, "elapsed_s", t->elapsed_s);
    dst_json_set_int(j, "requests", (int64_t)n);
    dst_json_set_num(j, "rate", rate(n, t->elapsed_s));
    dst_json_set_num(j, "load_s", t->load_s);
    dst_json_set_num(j, "load_rate", rate(load, t->load_s));
    json_object_set_new(j, "query", toyclient_tally_json(&t->query));
    json_object_set_new(j, "buy", toyclient_tally_json(&t->buy));
    json_object_set_new(j, "check", toyclient_tally_json(&t->check));
    dst_json_set_int(orders, "made", (int64_t)t->made);
    dst_json_set_int(orders, "checked", (int64_t)toyclient_tally_count(&t->check));
    dst_json_set_int(orders, "mismatched", (int64_t)t->check.n[TOYCLIENT_MISMATCH]);
    dst_json_set_int(orders, "unchecked", (int64_t)t->unchecked);
    for (size_t i = 0; i < t->nbad; i++)
        json_array_append_new(bad, json_integer(t->bad[i]));
    json_object_set_new(orders, "mismatched_numbers", bad);
    json_object_set_new(j, "orders", orders);
    char *text = dst_json_dumps(j, NULL);
    fprintf(out, "%s\n", text);
    free(text);
    json_decref(j);
}

static void print_text(const struct toyclient_run *r, const char *quantity, long clients,
                       struct totals *t, FILE *out)
{
    uint64_t n = requests(t);

    fprintf(out, "%s mode, %ld client%s x %ld iterations, ", MODES[r->mode], clients,
            clients == 1 ? "" : "s", r->iterations);
    if (r->mode == TOYCLIENT_SESSION)
        fprintf(out, "%d toys, p %g, ", r->ntoys, r->p);
    else
        fprintf(out, "toy %s, ", r->toy);
    fprintf(out, "buy quantity %s, seed %llu%s\n", quantity, (unsigned long long)r->seed,
            t->stopped ? " (stopped early)" : "");
    toyclient_tally_print_header(out);
    toyclient_tally_print(&t->query, out);
    toyclient_tally_print(&t->buy, out);
    toyclient_tally_print(&t->check, out);
    fprintf(out, "rate: %llu requests in %.3f s = %.1f requests/s", (unsigned long long)n,
            t->elapsed_s, rate(n, t->elapsed_s));
    fprintf(out, " (queries and buys: %llu in %.3f s = %.1f requests/s)\n",
            (unsigned long long)load_requests(t), t->load_s, rate(load_requests(t), t->load_s));
    fprintf(out, "orders: %llu made, %llu checked, %llu mismatched, %llu unchecked\n",
            (unsigned long long)t->made, (unsigned long long)toyclient_tally_count(&t->check),
            (unsigned long long)t->check.n[TOYCLIENT_MISMATCH], (unsigned long long)t->unchecked);
    if (t->nbad) {
        fprintf(out, "mismatched orders:");
        for (size_t i = 0; i < t->nbad; i++)
            fprintf(out, " %lld", t->bad[i]);
        fprintf(out, "%s\n", t->nbad < t->check.n[TOYCLIENT_MISMATCH] ? " ..." : "");
    }
    if (toyclient_tally_errors(&t->query) + toyclient_tally_errors(&t->buy) +
        toyclient_tally_errors(&t->check))
        fprintf(out, "errors:\n");
    toyclient_tally_print_errors(&t->query, out);
    toyclient_tally_print_errors(&t->buy, out);
    toyclient_tally_print_errors(&t->check, out);
}

/* Runs clients sessions to the end (or a stop) and merges them into *t. 0, or 1 if one failed. */
static int run_sessions(const struct toyclient_run *run, long clients, struct totals *t)
{
    struct toyclient_session *s = dst_xcalloc((size_t)clients, sizeof(*s));
    long started = 0;
    int rc = 0;

    int64_t t0 = dst_monotonic_us();
    for (; started < clients; started++) {
        toyclient_session_init(&s[started], run, (int)started);
        if (pthread_create(&s[started].th, NULL, toyclient_session_run, &s[started]) != 0) {
            dst_error("cannot start session %ld of %ld: stopping", started + 1, clients);
            toyclient_session_release(&s[started]);
            dst_sig_request_stop();
            rc = 1;
            break;
        }
    }
    for (long i = 0; i < started; i++) {
        pthread_join(s[i].th, NULL);
        rc |= s[i].failed;
    }
    t->elapsed_s = (double)(dst_monotonic_us() - t0) / 1e6;
    for (long i = 0; i < started; i++) {
        double load = (double)(s[i].load_end_us - t0) / 1e6;
        if (load > t->load_s)
            t->load_s = load;
    }
    t->stopped = dst_sig_stopping();
    merge(t, s, (int)started);
    for (long i = 0; i < started; i++)
        toyclient_session_release(&s[i]);
    free(s);
    return rc;
}

int client_main(int argc, char **argv)
{
    struct toyclient_run run = {0};
    const char *frontend = NULL, *mode = NULL, *toys = NULL, *quantity = NULL;
    long clients = 1, seed = -1;
    bool json = false;
    char *toys_buf = NULL;
    struct totals t = {0};
    struct dst_cfg_opt opts[] = {
        {"frontend", DST_CFG_STR, &frontend, NULL, "the front end's URL (required)", "URL",
         .check = dst_cfg_check_url},
        {"mode", DST_CFG_STR, &mode, "session",
         "session: query a random toy, buy it with probability --p if in stock; query: N "
         "queries of --toy; buy: N buys of --toy",
         "MODE", .check = check_mode},
        {"iterations", DST_CFG_INT, &run.iterations, "100",
         "iterations per client (session mode: a query, then maybe a buy)", "N", 0, MAX_REQUESTS},
        {"clients", DST_CFG_INT, &clients, "1",
         "concurrent sessions, each on its own kept-alive connection", "K", 1, 1024},
        {"toys", DST_CFG_STR, &toys, DEFAULT_TOYS, "session mode: the toys to pick from", "A,B,...",
         .check = check_toys},
        {"toy", DST_CFG_STR, &run.toy, "Tux", "query and buy modes: the toy", "NAME",
         .check = check_toy},
        {"p", DST_CFG_DOUBLE, &run.p, "0.5",
         "session mode: probability of a buy after a query "
         "that found the toy in stock",
         "0..1", 0, 1},
        {"buy-quantity", DST_CFG_STR, &quantity, "1",
         "each buy's quantity: N, or A-B for one drawn at random (the original: 1-10)", "N|A-B",
         .check = check_quantity},
        {"check", DST_CFG_BOOL, &run.check, "true",
         "at the end, GET /orders/<n> of every order made and compare it with the record"},
        {"seed", DST_CFG_INT, &seed, NULL, "random seed (default: a random one, printed)", "N", 0,
         9007199254740991.0},
        {"timeout-ms", DST_CFG_INT, &run.timeout_ms, "10000", "deadline of each request", "MS", 1,
         600000},
        {"json", DST_CFG_BOOL, &json, "false", "print the summary as one JSON object"},
    };
    struct dst_cfg cfg = {SERVICE, "the toy store's client and load generator", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (!frontend)
        return dst_cfg_fail(&cfg, stderr, "frontend", "required (or DSTMC_FRONTEND)"), 2;
    if (strlen(frontend) > 512)
        return dst_cfg_fail(&cfg, stderr, "frontend", "longer than 512 characters"), 2;
    if (clients * run.iterations > MAX_REQUESTS)
        return dst_cfg_fail(&cfg, stderr, "iterations",
                            "%ld clients x %ld iterations is over %ld requests", clients,
                            run.iterations, MAX_REQUESTS),
               2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    snprintf(run.base, sizeof(run.base), "%s", frontend);
    for (size_t n = strlen(run.base); n > 0 && run.base[n - 1] == '/'; n--)
        run.base[n - 1] = '\0';
    for (size_t i = 0; i < sizeof(MODES) / sizeof(MODES[0]); i++)
        if (strcmp(mode, MODES[i]) == 0)
            run.mode = (enum toyclient_mode)i;
    parse_quantity(quantity, &run.qlo, &run.qhi, NULL, 0);
    split_toys(&run, toys, &toys_buf);
    run.seed = seed >= 0 ? (uint64_t)seed : random_seed();

    rc = run_sessions(&run, clients, &t);
    if (json)
        print_json(&run, quantity, clients, &t, stdout);
    else
        print_text(&run, quantity, clients, &t, stdout);
    fflush(stdout);
    if (failures(&t.query) + failures(&t.buy) + failures(&t.check))
        rc = 1;
    toyclient_tally_release(&t.query);
    toyclient_tally_release(&t.buy);
    toyclient_tally_release(&t.check);
    free(toys_buf);
    return rc;
}
