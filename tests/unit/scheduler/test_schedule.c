/* test_schedule.c - the scheduler's schedules, planning and firing (src/speedtest/scheduler) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/queue.h"
#include "core/uuid.h"
#include "speedtest/scheduler/schedule.h"

#define GROUP "probe"

/* 2026-11-21T10:07:30Z, a Saturday. */
#define T_1007 1795255650LL
#define T_1015 1795256100LL

struct fixture {
    struct dst_queue *q;
    char enable[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct dst_queue_msg m;

    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(dst_queue_open("mem:", &f->q), 0);
    /* the probes' group exists before anything is published (it starts at the end) */
    assert_int_equal(dst_queue_consume(f->q, SCHED_TOPIC, GROUP, "c", 0, 0, &m), DST_ETIMEDOUT);
    snprintf(f->enable, sizeof(f->enable), "/tmp/dstmc-test-enable-%ld", (long)getpid());
    unlink(f->enable);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dst_queue_free(f->q);
    unlink(f->enable);
    free(f);
    return 0;
}

/* Takes the next published request (fails the test if none), or NULL if none expected. */
static json_t *take(struct fixture *f, bool expect)
{
    struct dst_queue_msg m;
    int rc = dst_queue_consume(f->q, SCHED_TOPIC, GROUP, "c", 0, 0, &m);
    if (!expect) {
        assert_int_equal(rc, DST_ETIMEDOUT);
        return NULL;
    }
    assert_int_equal(rc, 0);
    json_t *body = json_incref(m.body);
    assert_int_equal(dst_queue_ack(f->q, SCHED_TOPIC, GROUP, m.id), 0);
    dst_queue_msg_release(&m);
    return body;
}

static struct sched *with(const char *spec, long jitter, const char *enable_file)
{
    struct sched_opts o = {.jitter_s = jitter, .enable_file = enable_file};
    struct sched *s = sched_new(&o);
    char err[512] = "";
    if (sched_add(s, spec, err, sizeof(err)) != 0)
        fail_msg("'%s': %s", spec, err);
    return s;
}

static void test_add_parses_specs(void **state)
{
    (void)state;
    struct sched_opts o = {0};
    struct sched *s = sched_new(&o);
    char err[512];

    assert_int_equal(sched_add(s, "0 * * * *", err, sizeof(err)), 0);
    assert_int_equal(sched_add(s, "*/15  * * * *\tspeedtest://auto", err, sizeof(err)), 0);
    assert_int_equal(sched_add(s, "@hourly iperf3://127.0.0.1 den-1", err, sizeof(err)), 0);
    assert_int_equal(sched_count(s), 3);
    const struct sched_entry *e = sched_entry(s, 0);
    assert_string_equal(e->spec, "0 * * * *");
    assert_null(e->target);
    assert_null(e->probe);
    e = sched_entry(s, 1);
    assert_string_equal(e->target, "speedtest://auto");
    assert_null(e->probe);
    assert_true(e->cron.minute == (1ULL | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
    e = sched_entry(s, 2);
    assert_string_equal(e->target, "iperf3://127.0.0.1");
    assert_string_equal(e->probe, "den-1");
    assert_true(e->cron.minute == 1);
    assert_null(sched_entry(s, 3));
    sched_free(s);
    sched_free(NULL);
}

static void test_add_errors_name_the_schedule(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"61 * * * *", "'61 * * * *': minute: '61' is out of 0-59"},
        {"* * * JUNE * dummy:", "'* * * JUNE * dummy:': month: 'JUNE' is not a number or a month "
                                "name (JAN-DEC)"},
        {"* * *", "'* * *': expected 5 fields (minute hour day-of-month month day-of-week) or a "
                  "macro such as @hourly, got 3"},
        {"", "'': expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
             "such as @hourly, got 0"},
        {"@often dummy:", "'@often dummy:': '@often' is not a macro (@yearly, @annually, "
                          "@monthly, @weekly, @daily, @midnight, @hourly)"},
        {"@daily dummy: den more", "'@daily dummy: den more': too many words (expected CRON "
                                   "[TARGET [PROBE]])"},
        {"0 0 30 2 *", "'0 0 30 2 *': never fires (no such date in the next 8 years)"},
        {"@daily dummy: a/b", "'@daily dummy: a/b': probe 'a/b': 1 to 64 letters, digits, '.', "
                              "'_' or '-'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sched_opts o = {0};
        struct sched *s = sched_new(&o);
        char err[512] = "";
        assert_int_equal(sched_add(s, cases[i][0], err, sizeof(err)), DST_EINVAL);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("'%s': got \"%s\", want \"%s\"", cases[i][0], err, cases[i][1]);
        assert_int_equal(sched_count(s), 0);
        sched_free(s);
    }
    /* a bad target: engine_check_target's reason, after the schedule */
    struct sched_opts o = {0};
    struct sched *s = sched_new(&o);
    char err[512] = "";
    assert_int_equal(sched_add(s, "@hourly gopher://x", err, sizeof(err)), DST_EINVAL);
    assert_true(strncmp(err, "'@hourly gopher://x': ", 22) == 0);
    assert_non_null(strstr(err, "gopher://x"));
    sched_free(s);
}

static void test_plan_and_next(void **state)
{
    (void)state;
    struct sched *s = with("*/15 * * * *", 0, NULL);
    char err[256];

    assert_int_equal(sched_next(s), -1); /* not planned yet */
    assert_int_equal(sched_add(s, "@daily dummy:", err, sizeof(err)), 0);
    sched_plan(s, T_1007);
    assert_int_equal(sched_entry(s, 0)->cron_s, T_1015);
    assert_int_equal(sched_entry(s, 0)->due_s, T_1015);
    assert_int_equal(sched_entry(s, 1)->due_s, 1795305600LL); /* 2026-11-22T00:00Z */
    assert_int_equal(sched_next(s), T_1015);
    sched_free(s);
}

static void test_fire_publishes_the_run_now_shape(void **state)
{
    struct fixture *f = *state;
    struct sched *s = with("*/15 * * * * dummy: den", 0, NULL);
    char err[256];

    assert_int_equal(sched_add(s, "@hourly", err, sizeof(err)), 0);
    sched_plan(s, T_1007);
    assert_int_equal(sched_fire(s, f->q, T_1015 - 1), 0); /* nothing due yet */
    take(f, false);
    int64_t before = dst_datetime_now_ms();
    assert_int_equal(sched_fire(s, f->q, T_1015), 1);
    json_t *m = take(f, true);
    take(f, false); /* @hourly is not due until 11:00 */
    assert_true(dst_uuid_valid(json_string_value(json_object_get(m, "request_id"))));
    json_int_t at = json_integer_value(json_object_get(m, "requested_at"));
    assert_true(at >= before && at <= dst_datetime_now_ms());
    assert_string_equal(json_string_value(json_object_get(m, "source")), "scheduler");
    assert_string_equal(json_string_value(json_object_get(m, "target")), "dummy:");
    assert_string_equal(json_string_value(json_object_get(m, "probe")), "den");
    assert_int_equal(json_object_size(m), 5);
    json_decref(m);
    assert_int_equal(sched_entry(s, 0)->due_s, T_1015 + 900); /* planned again */

    assert_int_equal(sched_fire(s, f->q, 1795258800LL), 2); /* 11:00: both */
    m = take(f, true);
    json_decref(m);
    m = take(f, true);
    assert_true(json_is_null(json_object_get(m, "target"))); /* as the API's run-now */
    assert_true(json_is_null(json_object_get(m, "probe")));
    json_decref(m);
    sched_free(s);
}

static void test_late_firing_publishes_once(void **state)
{
    struct fixture *f = *state;
    struct sched *s = with("* * * * *", 0, NULL);
    int64_t late = T_1007 + 5 * 3600 + 7; /* suspended for five hours */

    sched_plan(s, T_1007);
    assert_int_equal(sched_fire(s, f->q, late), 1);
    json_decref(take(f, true));
    take(f, false);
    assert_true(sched_next(s) > late);
    assert_int_equal(sched_fire(s, f->q, late + 1), 0);
    sched_free(s);
}

/* With the queue down (nothing listens on its port) a firing is tried again every 5 s for a
 * minute, then given up until the next cron time. */
static void test_publish_retried_while_the_queue_is_down(void **state)
{
    struct dst_queue *down = NULL;
    struct sched *s = with("0 * * * *", 0, NULL);
    int64_t t = T_1007 + 53 * 60; /* 11:00 */
    (void)state;

    assert_int_equal(dst_queue_open("redis://127.0.0.1:9", &down), 0); /* lazy: opens */
    sched_plan(s, T_1007);
    for (int i = 0; i < 11; i++) {
        assert_true(sched_fire(s, down, t) < 0);
        assert_int_equal(sched_next(s), t + 5); /* the same firing, again in 5 s */
        t += 5;
    }
    assert_true(sched_fire(s, down, t) < 0);                     /* the 12th: given up */
    assert_true(sched_next(s) > t && sched_next(s) % 3600 == 0); /* 12:00 */
    dst_queue_free(down);
    sched_free(s);
}

static void test_enable_file(void **state)
{
    struct fixture *f = *state;
    struct sched *s = with("*/15 * * * *", 0, f->enable);

    assert_false(sched_enabled(s));
    sched_plan(s, T_1007);
    assert_int_equal(sched_fire(s, f->q, T_1015), 0); /* skipped, and planned on */
    take(f, false);
    assert_int_equal(sched_next(s), T_1015 + 900);
    FILE *fp = fopen(f->enable, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_true(sched_enabled(s));
    assert_int_equal(sched_fire(s, f->q, T_1015 + 900), 1);
    json_decref(take(f, true));
    unlink(f->enable);
    assert_false(sched_enabled(s));
    sched_free(s);
}

static void test_jitter_spreads_within_bounds(void **state)
{
    (void)state;
    struct sched *s = with("0 * * * *", 30, NULL);
    int64_t first = -1;
    bool differ = false;

    for (int i = 0; i < 60; i++) {
        sched_plan(s, T_1007);
        const struct sched_entry *e = sched_entry(s, 0);
        assert_int_equal(e->cron_s, 1795258800LL);
        assert_in_range(e->due_s, e->cron_s, e->cron_s + 30);
        differ = differ || (first >= 0 && e->due_s != first);
        first = e->due_s;
    }
    assert_true(differ); /* (1/31)^59 odds of a false failure */
    sched_free(s);
}

static void test_add_parts(void **state)
{
    (void)state;
    struct sched_opts o = {0};
    struct sched *s = sched_new(&o);
    char err[512] = "";

    assert_int_equal(sched_add_parts(s, "*/15 * * * *", NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(sched_add_parts(s, "@daily", "dummy:", "den", err, sizeof(err)), 0);
    assert_int_equal(sched_add_parts(s, "0 9 * * MON", NULL, "den", err, sizeof(err)), 0);
    assert_int_equal(sched_count(s), 3);
    const struct sched_entry *e = sched_entry(s, 0);
    assert_string_equal(e->expr, "*/15 * * * *");
    assert_null(e->target);
    assert_null(e->probe);
    e = sched_entry(s, 1);
    assert_string_equal(e->spec, "@daily dummy: probe=den");
    assert_string_equal(e->target, "dummy:");
    assert_string_equal(e->probe, "den");
    assert_string_equal(sched_entry(s, 2)->spec, "0 9 * * MON probe=den");
    /* each bad part is named, and nothing is added */
    assert_int_equal(sched_add_parts(s, "61 * * * *", NULL, NULL, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "cron: minute: '61' is out of 0-59");
    assert_int_equal(sched_add_parts(s, "0 0 30 2 *", NULL, NULL, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "cron: never fires (no such date in the next 8 years)");
    assert_int_equal(sched_add_parts(s, NULL, NULL, NULL, err, sizeof(err)), DST_EINVAL);
    assert_true(strncmp(err, "cron: ", 6) == 0);
    assert_int_equal(sched_add_parts(s, "@hourly", "gopher://x", NULL, err, sizeof(err)),
                     DST_EINVAL);
    assert_true(strncmp(err, "target: ", 8) == 0);
    assert_int_equal(sched_add_parts(s, "@hourly", NULL, "a/b", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "probe 'a/b'"));
    assert_int_equal(sched_count(s), 3);
    sched_free(s);
}

/* The expression of a spec is kept apart from its target and probe (for the store). */
static void test_add_keeps_the_expression(void **state)
{
    (void)state;
    struct sched *s = with("  */15 * * * *  dummy: den", 0, NULL);
    char err[256];

    assert_int_equal(sched_add(s, "@weekly", err, sizeof(err)), 0);
    assert_string_equal(sched_entry(s, 0)->expr, "*/15 * * * *");
    assert_string_equal(sched_entry(s, 1)->expr, "@weekly");
    sched_free(s);
}

static void test_replace(void **state)
{
    struct fixture *f = *state;
    struct sched *s = with("*/15 * * * * dummy: den", 0, NULL);
    struct sched_opts o = {0};
    struct sched *from = sched_new(&o);
    char err[256];
    int64_t now = dst_datetime_now_ms() / 1000;

    assert_int_equal(sched_add_parts(from, "* * * * *", NULL, "lab", err, sizeof(err)), 0);
    assert_int_equal(sched_add_parts(from, "@daily", NULL, NULL, err, sizeof(err)), 0);
    sched_replace_take(s, from); /* from is freed (ASan would see a leak or a double free) */
    int64_t after = dst_datetime_now_ms() / 1000 + 1;
    assert_int_equal(sched_count(s), 2);
    assert_string_equal(sched_entry(s, 0)->expr, "* * * * *");
    assert_string_equal(sched_entry(s, 0)->probe, "lab");
    /* planned at once, after now */
    int64_t next = sched_next(s);
    assert_true(next > now && next <= after + 60);
    assert_int_equal(sched_fire(s, f->q, next), 1);
    json_t *m = take(f, true);
    assert_string_equal(json_string_value(json_object_get(m, "probe")), "lab");
    json_decref(m);
    /* replaced by nothing: nothing fires */
    sched_replace_take(s, sched_new(&o));
    assert_int_equal(sched_count(s), 0);
    assert_int_equal(sched_next(s), -1);
    sched_free(s);
}

static void test_pause_and_resume(void **state)
{
    struct fixture *f = *state;
    struct sched *s = with("*/15 * * * *", 0, NULL);

    sched_plan(s, T_1007);
    assert_false(sched_paused(s));
    sched_set_paused(s, true);
    assert_true(sched_paused(s));
    assert_int_equal(sched_next(s), -1);
    assert_int_equal(sched_fire(s, f->q, T_1015), 0); /* due, but paused: nothing published */
    take(f, false);
    sched_set_paused(s, true); /* twice is once */
    int64_t before = dst_datetime_now_ms() / 1000;
    sched_set_paused(s, false);
    int64_t after = dst_datetime_now_ms() / 1000 + 1;
    assert_false(sched_paused(s));
    /* resuming plans after the real now, not the missed firings */
    assert_true(sched_next(s) > before && sched_next(s) <= after + 900);
    assert_int_equal(sched_fire(s, f->q, sched_next(s)), 1);
    json_decref(take(f, true));
    sched_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_parses_specs),
        cmocka_unit_test(test_add_errors_name_the_schedule),
        cmocka_unit_test_setup_teardown(test_plan_and_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fire_publishes_the_run_now_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_firing_publishes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_retried_while_the_queue_is_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_enable_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jitter_spreads_within_bounds, setup, teardown),
        cmocka_unit_test(test_add_parts),
        cmocka_unit_test(test_add_keeps_the_expression),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_and_resume, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
