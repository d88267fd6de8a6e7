/* test_progress.c - unit tests of the live progress sender (src/speedtest/logger/progress.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "speedtest/logger/progress.h"

#define WAIT_S 30 /* generous: a loaded 2-vCPU box; a pass never waits this long */

/* A sink whose heartbeat blocks until released: an API that does not answer. */
struct slow_api {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool released;
    int beats;
    double bps[8];
    char phase[8][16];
};

static void slow_heartbeat(void *ud, const char *agent, const json_t *state)
{
    struct slow_api *a = ud;
    struct timespec until;

    (void)agent;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_S;
    pthread_mutex_lock(&a->m);
    if (a->beats < 8) {
        a->bps[a->beats] = json_real_value(json_object_get(state, "bps"));
        const char *ph = json_string_value(json_object_get(state, "phase"));
        strncpy(a->phase[a->beats], ph ? ph : "", sizeof(a->phase[0]) - 1);
    }
    a->beats++;
    pthread_cond_broadcast(&a->c);
    while (!a->released && pthread_cond_timedwait(&a->c, &a->m, &until) == 0)
        ;
    pthread_mutex_unlock(&a->m);
}

static int no_post(void *ud, struct dst_result *r, char *err, size_t errlen)
{
    (void)ud, (void)r, (void)err, (void)errlen;
    return 0;
}

/* Waits (bounded) until the API has seen n beats. */
static bool wait_beats(struct slow_api *a, int n)
{
    struct timespec until;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_S;
    pthread_mutex_lock(&a->m);
    while (!(ok = a->beats >= n) && pthread_cond_timedwait(&a->c, &a->m, &until) == 0)
        ;
    pthread_mutex_unlock(&a->m);
    return ok;
}

/*
 * The engine's loop posts beats while the API hangs on the first: every post returns at once
 * (it used to be the heartbeat's HTTP call itself, on the measuring thread), and when the API
 * answers it gets the newest beat, not a backlog.
 */
static void posts_never_wait_for_the_api(void **state)
{
    struct slow_api a = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
    struct probe_sink sink = {no_post, slow_heartbeat, &a};
    struct probe_opts o = {.agent = "box", .sink = &sink};
    struct logger_progress *p = NULL;
    struct probe_beat b = {.state = "running", .request_id = "r1", .phase = "download"};

    (void)state;
    assert_int_equal(logger_progress_start(&o, &p), 0);
    b.bps = 1;
    logger_progress_post(p, &b);
    assert_true(wait_beats(&a, 1));   /* the API now hangs on it */
    for (int i = 2; i <= 1000; i++) { /* returns at once, or this test would hang */
        b.bps = i;
        b.phase = i < 1000 ? "download" : "upload";
        logger_progress_post(p, &b);
    }
    pthread_mutex_lock(&a.m);
    assert_int_equal(a.beats, 1); /* still on the first */
    a.released = true;
    pthread_cond_broadcast(&a.c);
    pthread_mutex_unlock(&a.m);
    assert_true(wait_beats(&a, 2));
    logger_progress_stop(p);
    assert_int_equal(a.beats, 2); /* the newest only */
    assert_true(a.bps[0] == 1 && a.bps[1] == 1000);
    assert_string_equal(a.phase[0], "download");
    assert_string_equal(a.phase[1], "upload");
}

/* Stopping with a beat still waiting drops it and frees everything (ASan: no leak). */
static void stop_with_a_beat_waiting(void **state)
{
    struct slow_api a = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
    struct probe_sink sink = {no_post, slow_heartbeat, &a};
    struct probe_opts o = {.agent = "box", .sink = &sink};
    struct logger_progress *p = NULL;
    struct probe_beat b = {.state = "running", .request_id = "r1", .phase = "latency", .bps = 1};

    (void)state;
    a.released = true; /* answers at once */
    assert_int_equal(logger_progress_start(&o, &p), 0);
    logger_progress_post(p, &b);
    logger_progress_post(p, &b);
    logger_progress_stop(p);
    assert_in_range(a.beats, 0, 2);
    logger_progress_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(posts_never_wait_for_the_api),
        cmocka_unit_test(stop_with_a_beat_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
