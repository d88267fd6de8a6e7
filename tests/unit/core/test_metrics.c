/* test_metrics.c - unit tests of the Prometheus registry (src/core/metrics.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/metrics.h"

static int setup(void **state)
{
    *state = dst_metrics_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    dst_metrics_free(*state);
    return 0;
}

/* Renders m into a fresh string (caller frees). */
static char *render(struct dst_metrics *m)
{
    struct dst_buf b;
    dst_buf_init(&b, 0);
    assert_int_equal(dst_metrics_render(m, &b), 0);
    return dst_buf_detach(&b, NULL);
}

static void exposition_format(void **state)
{
    struct dst_metrics *m = *state;

    dst_metrics_declare(m, "dstmc_http_requests_total", DST_METRIC_COUNTER, "HTTP requests.");
    dst_metrics_declare(m, "dstmc_probes", DST_METRIC_GAUGE, "Probes seen.");
    dst_metrics_declare(m, "dstmc_idle", DST_METRIC_GAUGE, "No series yet.");
    dst_metrics_add(m, "dstmc_http_requests_total", "route=\"/a\",code=\"200\"", 1);
    dst_metrics_add(m, "dstmc_http_requests_total", "route=\"/b\",code=\"404\"", 1);
    dst_metrics_add(m, "dstmc_http_requests_total", "route=\"/a\",code=\"200\"", 2);
    dst_metrics_set(m, "dstmc_probes", "", 3);
    dst_metrics_set(m, "dstmc_probes", NULL, 2); /* NULL labels are "" */
    char *text = render(m);
    assert_string_equal(text, "# HELP dstmc_http_requests_total HTTP requests.\n"
                              "# TYPE dstmc_http_requests_total counter\n"
                              "dstmc_http_requests_total{route=\"/a\",code=\"200\"} 3\n"
                              "dstmc_http_requests_total{route=\"/b\",code=\"404\"} 1\n"
                              "# HELP dstmc_probes Probes seen.\n"
                              "# TYPE dstmc_probes gauge\n"
                              "dstmc_probes 2\n"
                              "# HELP dstmc_idle No series yet.\n"
                              "# TYPE dstmc_idle gauge\n");
    free(text);
}

static void values(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {42, "42"},
        {-7, "-7"},
        {2.5, "2.5"},
        {0.1, "0.10000000000000001"},
        {1e15, "1000000000000000"},
        {1e20, "1e+20"},
        {123456789.25, "123456789.25"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    struct dst_metrics *m = *state;
    char want[128];

    dst_metrics_declare(m, "g", DST_METRIC_GAUGE, "h");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dst_metrics_set(m, "g", "", cases[i].v);
        char *text = render(m);
        snprintf(want, sizeof(want), "# HELP g h\n# TYPE g gauge\ng %s\n", cases[i].text);
        assert_string_equal(text, want);
        free(text);
    }
}

static void get_and_set(void **state)
{
    struct dst_metrics *m = *state;

    dst_metrics_declare(m, "c", DST_METRIC_COUNTER, "c");
    assert_true(dst_metrics_get(m, "c", "") == 0); /* absent */
    assert_true(dst_metrics_get(m, "nope", "") == 0);
    dst_metrics_add(m, "c", "a=\"1\"", 0.5);
    dst_metrics_add(m, "c", "a=\"1\"", 0.25);
    assert_true(dst_metrics_get(m, "c", "a=\"1\"") == 0.75);
    assert_true(dst_metrics_get(m, "c", "a=\"2\"") == 0);
    dst_metrics_set(m, "c", "a=\"1\"", 10);
    assert_true(dst_metrics_get(m, "c", "a=\"1\"") == 10);
    dst_metrics_add(m, "c", NULL, 0); /* created at 0 */
    char *text = render(m);
    assert_non_null(strstr(text, "\nc 0\n"));
    free(text);
}

static void help_escaped(void **state)
{
    struct dst_metrics *m = *state;

    dst_metrics_declare(m, "x", DST_METRIC_GAUGE, "a \\ b\nc \"q\"");
    dst_metrics_declare(m, "y", DST_METRIC_GAUGE, NULL);
    char *text = render(m);
    assert_string_equal(text, "# HELP x a \\\\ b\\nc \"q\"\n# TYPE x gauge\n"
                              "# HELP y \n# TYPE y gauge\n");
    free(text);
}

static void render_capped(void **state)
{
    struct dst_metrics *m = *state;
    struct dst_buf b;

    dst_metrics_declare(m, "x", DST_METRIC_GAUGE, "a help text longer than the cap");
    dst_buf_init(&b, 16);
    assert_int_equal(dst_metrics_render(m, &b), DST_ETOOBIG);
    dst_buf_release(&b);
}

static void escape(void **state)
{
    char out[64];

    (void)state;
    dst_metrics_escape("plain /x", out, sizeof(out));
    assert_string_equal(out, "plain /x");
    dst_metrics_escape("a\\b\"c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\\b\\\"c\\nd");
    dst_metrics_escape(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    /* Truncation keeps escapes whole and always terminates. */
    dst_metrics_escape("ab\"", out, 4);
    assert_string_equal(out, "ab");
    dst_metrics_escape("abcdef", out, 4);
    assert_string_equal(out, "abc");
    dst_metrics_escape("abc", out, 1);
    assert_string_equal(out, "");
    out[0] = 'z';
    dst_metrics_escape("abc", out, 0); /* writes nothing */
    assert_int_equal(out[0], 'z');
}

#define THREADS 4
#define ADDS    20000

static void *adder(void *arg)
{
    struct dst_metrics *m = arg;
    for (int i = 0; i < ADDS; i++) {
        dst_metrics_add(m, "n", "", 1);
        dst_metrics_add(m, "n", i % 2 ? "odd=\"1\"" : "odd=\"0\"", 1);
    }
    return NULL;
}

static void concurrent_adds(void **state)
{
    struct dst_metrics *m = *state;
    pthread_t t[THREADS];

    dst_metrics_declare(m, "n", DST_METRIC_COUNTER, "n");
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(dst_metrics_get(m, "n", "") == THREADS * ADDS);
    assert_true(dst_metrics_get(m, "n", "odd=\"1\"") == THREADS * ADDS / 2);
}

#ifndef NDEBUG
/* Runs fn in a child and reports whether it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        close(STDERR_FILENO); /* the assertion message is expected */
        fn();
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void declare_twice(void)
{
    struct dst_metrics *m = dst_metrics_new();
    dst_metrics_declare(m, "x", DST_METRIC_GAUGE, "x");
    dst_metrics_declare(m, "x", DST_METRIC_GAUGE, "x");
}

static void add_undeclared(void)
{
    struct dst_metrics *m = dst_metrics_new();
    dst_metrics_add(m, "x", "", 1);
}

static void declared_once(void)
{
    struct dst_metrics *m = dst_metrics_new();
    dst_metrics_declare(m, "x", DST_METRIC_GAUGE, "x");
    dst_metrics_add(m, "x", "", 1);
    dst_metrics_free(m);
}

static void programmer_errors(void **state)
{
    (void)state;
    assert_true(aborts(declare_twice));
    assert_true(aborts(add_undeclared));
    assert_false(aborts(declared_once));
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exposition_format, setup, teardown),
        cmocka_unit_test_setup_teardown(values, setup, teardown),
        cmocka_unit_test_setup_teardown(get_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(help_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(render_capped, setup, teardown),
        cmocka_unit_test(escape),
        cmocka_unit_test_setup_teardown(concurrent_adds, setup, teardown),
#ifndef NDEBUG
        cmocka_unit_test(programmer_errors),
#endif
    };
    dst_metrics_free(NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
