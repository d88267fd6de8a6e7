/* fuzz_cfg.c - option values: every type, HOST:PORT, store, queue, backend and schedule specs */
#include <string.h>

#include "core/cfg.h"
#include "core/queue.h"
#include "core/store.h"
#include "fuzz.h"
#include "monitor/monitor.h"
#include "speedtest/engines/engine.h"
#include "speedtest/logger/logger.h"
#include "speedtest/scheduler/schedule.h"

#define MAX_WORDS 32

struct values {
    const char *str, *listen, *db, *queue, *target, *agent;
    long n, any;
    double d;
    bool b;
    struct dst_cfg_list backends, schedules;
};

static int check_db(const char *v, char *err, size_t errlen)
{
    return dst_store_url_check(v, err, errlen);
}

static int check_queue(const char *v, char *err, size_t errlen)
{
    return dst_queue_url_check(v, err, errlen);
}

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

/* What the services do with the list values once the table is read. */
static void use_lists(const struct values *v)
{
    struct sched_opts so = {0};
    struct sched *s = sched_new(&so);
    char err[512];

    for (int i = 0; i < v->backends.n; i++) {
        struct monitor_backend b;
        if (monitor_backend_init(&b, i, v->backends.v[i], err, sizeof(err)) == 0)
            FUZZ_CHECK(b.host[0] && b.port >= 1 && b.port <= 65535);
    }
    for (int i = 0; i < v->schedules.n; i++) {
        int n = sched_count(s);
        if (sched_add(s, v->schedules.v[i], err, sizeof(err)) == 0)
            FUZZ_CHECK(sched_count(s) == n + 1);
    }
    sched_free(s);
}

/*
 * The input is a command line, one word per line ("--listen\n[::1]:80\n--int=5"), parsed over
 * a table with an option of every type and the services' checks. Whatever is accepted holds
 * values the checks accept; then the list values go where the services send them.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct values v = {0};
    struct dst_cfg_opt opts[] = {
        {"str", DST_CFG_STR, &v.str, "", "a string"},
        {"listen", DST_CFG_STR, &v.listen, "127.0.0.1:0", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"db", DST_CFG_STR, &v.db, "sqlite::memory:", "store", .check = check_db},
        {"queue", DST_CFG_STR, &v.queue, "mem:", "queue", .check = check_queue},
        {"target", DST_CFG_STR, &v.target, "dummy:", "target", .check = check_target},
        {"agent", DST_CFG_STR, &v.agent, "probe", "agent", .check = logger_check_agent},
        {"int", DST_CFG_INT, &v.n, "60", "ranged", NULL, 1, 3600, "intAlias"},
        {"any", DST_CFG_INT, &v.any, "0", "unranged"},
        {"num", DST_CFG_DOUBLE, &v.d, "0.5", "ranged", NULL, -90, 90},
        {"flag", DST_CFG_BOOL, &v.b, "false", "a boolean", NULL, 0, 0, "flagAlias"},
        {"backend", DST_CFG_LIST, &v.backends, NULL, "monitor backends"},
        {"schedule", DST_CFG_LIST, &v.schedules, NULL, "schedules"},
    };
    struct dst_cfg cfg = {"fuzz", "fuzzing", opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    char *argv[MAX_WORDS + 1] = {"fuzz"};
    int argc = 1;
    char *buf = fuzz_cstr(data, size), *p = buf, host[256], err[512];
    int port = 0;

    fuzz_init();
    while (p && argc < MAX_WORDS) {
        argv[argc++] = p;
        p = fuzz_cut(p, '\n');
    }
    argv[argc] = NULL;
    static FILE *null;
    null = null ? null : fopen("/dev/null", "w");
    int rc = dst_cfg_parse(&cfg, argc, argv, null, null);
    if (rc == 0) {
        FUZZ_CHECK(dst_cfg_split_hostport(v.listen, host, sizeof(host), &port, err, sizeof(err)) ==
                   0);
        FUZZ_CHECK(port >= 0 && port <= 65535);
        FUZZ_CHECK(dst_store_url_check(v.db, err, sizeof(err)) == 0);
        FUZZ_CHECK(dst_queue_url_check(v.queue, err, sizeof(err)) == 0);
        FUZZ_CHECK(engine_check_target(v.target, err, sizeof(err)) == 0);
        FUZZ_CHECK(v.n >= 1 && v.n <= 3600 && v.d >= -90 && v.d <= 90);
        use_lists(&v);
    }
    for (int i = 1; i < argc; i++) /* each word as a bare value too */
        dst_cfg_split_hostport(argv[i], host, sizeof(host), &port, err, sizeof(err));
    free(buf);
    return 0;
}
