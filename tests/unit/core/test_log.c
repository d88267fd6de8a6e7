/* test_log.c - unit tests of leveled logging to stderr (src/core/log.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"

/* stderr goes into a pipe while capturing; a thread drains it so no write ever blocks. */
static struct {
    int saved;
    int rd;
    pthread_t reader;
    struct dst_buf text;
} cap;

static void *drain(void *arg)
{
    char chunk[4096];
    ssize_t n;

    (void)arg;
    while ((n = read(cap.rd, chunk, sizeof(chunk))) > 0)
        dst_buf_append(&cap.text, chunk, (size_t)n);
    return NULL;
}

static void capture_start(void)
{
    int p[2];

    assert_int_equal(pipe(p), 0);
    dst_buf_init(&cap.text, 0);
    cap.saved = dup(STDERR_FILENO);
    cap.rd = p[0];
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    assert_int_equal(pthread_create(&cap.reader, NULL, drain, NULL), 0);
}

/* Restores stderr and returns what was written to it (caller frees). */
static char *capture_stop(void)
{
    dup2(cap.saved, STDERR_FILENO); /* closes the last write end: the reader sees EOF */
    close(cap.saved);
    pthread_join(cap.reader, NULL);
    close(cap.rd);
    return dst_buf_detach(&cap.text, NULL);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void line_format(void **state)
{
    char ts[DST_DATETIME_LEN];
    int64_t t, before = dst_datetime_now_ms();

    (void)state;
    dst_log_init("api", DST_LOG_DEBUG);
    capture_start();
    dst_info("stored %d results in %s", 3, "sqlite");
    char *out = capture_stop();
    int64_t after = dst_datetime_now_ms();
    /* "2026-11-21T10:00:00.123Z info  api: stored 3 results in sqlite\n" */
    assert_int_equal(strlen(out), 24 + strlen(" info  api: stored 3 results in sqlite\n"));
    assert_string_equal(out + 24, " info  api: stored 3 results in sqlite\n");
    memcpy(ts, out, 24);
    ts[24] = '\0';
    assert_int_equal(ts[23], 'Z');
    assert_int_equal(dst_datetime_parse(ts, &t), 0);
    assert_in_range(t, before, after);
    free(out);
}

static void level_names_padded(void **state)
{
    (void)state;
    dst_log_init(NULL, DST_LOG_DEBUG); /* NULL: "dstmc" */
    capture_start();
    dst_debug("d");
    dst_info("i");
    dst_warn("w");
    dst_error("e");
    char *out = capture_stop();
    const char *want[] = {" debug dstmc: d\n", " info  dstmc: i\n", " warn  dstmc: w\n",
                          " error dstmc: e\n"};
    const char *line = out;
    for (int i = 0; i < 4; i++) {
        assert_true(strncmp(line + 24, want[i], strlen(want[i])) == 0);
        line = strchr(line, '\n') + 1;
    }
    assert_string_equal(line, "");
    free(out);
}

static void level_filtering(void **state)
{
    (void)state;
    dst_log_init("api", DST_LOG_WARN);
    assert_int_equal(dst_log_get_level(), DST_LOG_WARN);
    capture_start();
    dst_debug("no");
    dst_info("no");
    dst_warn("yes 1");
    dst_error("yes 2");
    dst_log_set_level(DST_LOG_ERROR);
    dst_warn("no");
    dst_error("yes 3");
    dst_log_set_level(DST_LOG_DEBUG);
    dst_debug("yes 4");
    char *out = capture_stop();
    assert_int_equal(count_lines(out), 4);
    assert_null(strstr(out, "no"));
    assert_non_null(strstr(out, "warn  api: yes 1\n"));
    assert_non_null(strstr(out, "error api: yes 2\n"));
    assert_non_null(strstr(out, "error api: yes 3\n"));
    assert_non_null(strstr(out, "debug api: yes 4\n"));
    assert_int_equal(dst_log_get_level(), DST_LOG_DEBUG);
    free(out);
}

static void level_parse(void **state)
{
    enum dst_log_level l = DST_LOG_ERROR;

    (void)state;
    assert_int_equal(dst_log_level_parse("debug", &l), 0);
    assert_int_equal(l, DST_LOG_DEBUG);
    assert_int_equal(dst_log_level_parse("info", &l), 0);
    assert_int_equal(l, DST_LOG_INFO);
    assert_int_equal(dst_log_level_parse("warn", &l), 0);
    assert_int_equal(l, DST_LOG_WARN);
    assert_int_equal(dst_log_level_parse("error", &l), 0);
    assert_int_equal(l, DST_LOG_ERROR);
    assert_int_equal(dst_log_level_parse("verbose", &l), DST_EINVAL);
    assert_int_equal(dst_log_level_parse("INFO", &l), DST_EINVAL);
    assert_int_equal(dst_log_level_parse("", &l), DST_EINVAL);
    assert_int_equal(dst_log_level_parse(NULL, &l), DST_EINVAL);
    assert_int_equal(l, DST_LOG_ERROR); /* untouched on failure */
}

static void one_line_per_call_even_when_long(void **state)
{
    char *big = malloc(5000);

    (void)state;
    memset(big, 'z', 4999);
    big[4999] = '\0';
    dst_log_init("api", DST_LOG_INFO);
    capture_start();
    dst_info("%s", big);
    dst_info("after");
    char *out = capture_stop();
    assert_int_equal(count_lines(out), 2);
    char *second = strchr(out, '\n') + 1;
    assert_int_equal(second - out, 2047); /* cut to the line buffer, newline kept */
    assert_int_equal(out[2045], 'z');
    assert_string_equal(second + 24, " info  api: after\n");
    free(out);
    free(big);
}

/* A component name longer than the line buffer: the line is cut, nothing is overrun. */
static void long_component(void **state)
{
    /* 2020: the prefix ends just past the 2048-byte buffer, in its sanitizer redzone. */
    static const size_t lens[] = {2020, 2999};
    char *name = malloc(3000);

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        memset(name, 'c', lens[i]);
        name[lens[i]] = '\0';
        dst_log_init(name, DST_LOG_INFO);
        capture_start();
        dst_info("message");
        char *out = capture_stop();
        assert_int_equal(count_lines(out), 1);
        assert_int_equal(strlen(out), 2047);
        assert_int_equal(out[2046], '\n');
        free(out);
    }
    dst_log_init("api", DST_LOG_INFO);
    free(name);
}

#define THREADS 4
#define LINES   500

static void *chatter(void *arg)
{
    char msg[300];
    int id = (int)(intptr_t)arg;

    memset(msg, 'a' + id, sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        dst_info("%s", msg);
    return NULL;
}

static void threads_never_interleave(void **state)
{
    pthread_t t[THREADS];

    (void)state;
    dst_log_init("api", DST_LOG_INFO);
    capture_start();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, chatter, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *out = capture_stop();
    assert_int_equal(count_lines(out), THREADS * LINES);
    for (char *line = out; *line; line = strchr(line, '\n') + 1) {
        const char *msg = line + 24 + strlen(" info  api: ");
        assert_int_equal(strcspn(msg, "\n"), 299);
        assert_int_equal(strspn(msg, (char[]){msg[0], '\0'}), 299); /* one thread's line */
    }
    free(out);
}

static void listening_line(void **state)
{
    (void)state;
    dst_log_init("api", DST_LOG_ERROR); /* printed whatever the level */
    capture_start();
    dst_log_listening("http", "127.0.0.1", 8080);
    dst_log_listening("http", "::1", 43210);
    dst_log_listening("tcp", "0.0.0.0", 0);
    dst_log_listening("http", "fe80::1%eth0", 1);
    char *out = capture_stop();
    assert_string_equal(out, "listening on http://127.0.0.1:8080\n"
                             "listening on http://[::1]:43210\n"
                             "listening on tcp://0.0.0.0:0\n"
                             "listening on http://[fe80::1%eth0]:1\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_format),
        cmocka_unit_test(level_names_padded),
        cmocka_unit_test(level_filtering),
        cmocka_unit_test(level_parse),
        cmocka_unit_test(one_line_per_call_even_when_long),
        cmocka_unit_test(long_component),
        cmocka_unit_test(threads_never_interleave),
        cmocka_unit_test(listening_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
