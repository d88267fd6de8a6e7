/* test_order_log.c - unit tests of the order log (src/toystore/order_log.c) */
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

#include "core/err.h"
#include "toystore/toystore.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_order_log.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/orders.txt", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void put_file(const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

static char *slurp(void)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void lines(void **state)
{
    struct order_rec r;
    char err[200], buf[300];

    (void)state;
    assert_int_equal(order_log_parse_line("7,Tux,3", 7, &r, err, sizeof(err)), 0);
    assert_int_equal(r.number, 7);
    assert_string_equal(r.name, "Tux");
    assert_int_equal(r.quantity, 3);
    assert_string_equal(r.request_id, ""); /* the original's three columns */
    assert_int_equal(order_log_parse_line("0,Whale,1,abc-1\r", 16, &r, err, sizeof(err)), 0);
    assert_string_equal(r.request_id, "abc-1");
    assert_int_equal(order_log_format(&r, buf, sizeof(buf)), 16);
    assert_string_equal(buf, "0,Whale,1,abc-1\n");
    static const char *bad[] = {"",
                                "1,Tux",
                                "x,Tux,1",
                                "-1,Tux,1",
                                "1,,1",
                                "1,Tux,0",
                                "1,Tux,1x",
                                "1,Tux,1,a b",
                                "1,Tux,1,a,b",
                                "1,T ux,1",
                                "99999999999999999999,Tux,1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (order_log_parse_line(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != DST_EINVAL)
            fail_msg("'%s' parsed", bad[i]);
    assert_int_equal(order_log_format(&r, buf, 10), -1);
}

static int seen;

static void count(void *ud, const struct order_rec *r)
{
    (void)ud;
    assert_int_equal(r->number, seen);
    seen++;
}

static void appends_and_reads_back(void **state)
{
    struct order_log *log = NULL;
    struct order_rec r;
    char err[256];
    int64_t n = -1;

    (void)state;
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    assert_int_equal(order_log_next(log), 0);
    assert_int_equal(order_log_append(log, "Tux", 2, "r0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(order_log_append(log, "Whale", 5, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(slurp(), "0,Tux,2,r0\n1,Whale,5\n");
    assert_int_equal(order_log_get(log, 1, &r), 0);
    assert_string_equal(r.name, "Whale");
    assert_int_equal(r.quantity, 5);
    assert_int_equal(order_log_get(log, 2, &r), DST_ENOTFOUND);
    assert_int_equal(order_log_get(log, -1, &r), DST_ENOTFOUND);
    order_log_free(log);
    /* numbers go on after a restart */
    seen = 0;
    assert_int_equal(order_log_open(path, count, NULL, &log, err, sizeof(err)), 0);
    assert_int_equal(seen, 2);
    assert_int_equal(order_log_append(log, "Bird", 1, "r2", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(order_log_get(log, 0, &r), 0);
    assert_string_equal(r.request_id, "r0");
    order_log_free(log);
}

static void torn_last_line_is_dropped(void **state)
{
    struct order_log *log = NULL;
    struct order_rec r;
    char err[256];
    int64_t n = -1;

    (void)state;
    put_file("0,Tux,1\n1,Whale,2,x\n2,Bi", 23);
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    assert_int_equal(order_log_next(log), 2);
    assert_string_equal(slurp(), "0,Tux,1\n1,Whale,2,x\n"); /* cut back to the last whole line */
    assert_int_equal(order_log_append(log, "Uno", 3, "y", &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(slurp(), "0,Tux,1\n1,Whale,2,x\n2,Uno,3,y\n");
    assert_int_equal(order_log_get(log, 2, &r), 0);
    assert_string_equal(r.name, "Uno");
    order_log_free(log);
    /* zeros a crash left past the end are a torn line too */
    put_file("0,Tux,1\n\0\0\0\0", 12);
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    assert_int_equal(order_log_next(log), 1);
    order_log_free(log);
}

static void bad_lines_stop_the_start(void **state)
{
    struct order_log *log = NULL;
    char err[256];

    (void)state;
    const char *text = "0,Tux,1\n2,Tux,1\n";
    put_file(text, strlen(text));
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), DST_EINVAL);
    assert_null(log);
    assert_non_null(strstr(err, "orders.txt:2: order number 2, expected 1"));
    assert_string_equal(slurp(), text); /* untouched */
    text = "0,Tux,1\n1,Tux\n2,Tux,1\n";
    put_file(text, strlen(text));
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "orders.txt:2: expected NUMBER,NAME,QUANTITY"));
}

static struct order_log *shared;

static void *appender(void *arg)
{
    int64_t n = 0;
    (void)arg;
    for (int i = 0; i < 100; i++)
        assert_int_equal(order_log_append(shared, "Tux", 1, NULL, &n), 0);
    return NULL;
}

/* Concurrent appends (group commit): every number once, the file in number order. */
static void concurrent_appends(void **state)
{
    pthread_t th[8];
    char err[256];

    (void)state;
    assert_int_equal(order_log_open(path, NULL, NULL, &shared, err, sizeof(err)), 0);
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, appender, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    order_log_free(shared);
    seen = 0;
    assert_int_equal(order_log_open(path, count, NULL, &shared, err, sizeof(err)), 0);
    assert_int_equal(seen, 800);
    order_log_free(shared);
}

static int added, dropped;
static char dropped_ids[256];

static void on_added(void *ud, const struct order_rec *r)
{
    (void)ud;
    (void)r;
    added++;
}

static void on_dropped(void *ud, const struct order_rec *r)
{
    (void)ud;
    strcat(dropped_ids, r->request_id);
    strcat(dropped_ids, " ");
    dropped++;
}

static struct order_rec rec(int64_t n, const char *name, long q, const char *id)
{
    struct order_rec r = {.number = n, .quantity = q};
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.request_id, sizeof(r.request_id), "%s", id);
    return r;
}

/* A follower's log made the leader's: same lines kept, a differing tail replaced, a gap refused. */
static void sync_keeps_replaces_and_cuts(void **state)
{
    struct order_log *log = NULL;
    char err[256], *text = NULL;
    size_t len = 0;
    int64_t next = 0;

    (void)state;
    const char *text0 = "0,Tux,1,a\n1,Tux,2,ghost\n2,Tux,3,ghost2\n";
    put_file(text0, strlen(text0));
    added = dropped = 0;
    dropped_ids[0] = '\0';
    assert_int_equal(order_log_open(path, on_added, NULL, &log, err, sizeof(err)), 0);
    order_log_set_hooks(log, NULL, on_dropped);
    added = 0;
    struct order_rec leader[] = {rec(0, "Tux", 1, "a"), rec(1, "Uno", 4, "b")};
    /* a gap: the follower has 3 orders, a batch from 4 on cannot apply */
    struct order_rec far = rec(4, "Uno", 1, "z");
    assert_int_equal(order_log_sync(log, 4, &far, 1, 5), DST_ECONFLICT);
    /* 0 is the same and kept; 1 differs: 1 and 2 (never acknowledged) give way to the leader's */
    assert_int_equal(order_log_sync(log, 0, leader, 2, 2), 0);
    assert_string_equal(slurp(), "0,Tux,1,a\n1,Uno,4,b\n");
    assert_int_equal(order_log_next(log), 2);
    assert_int_equal(added, 1);
    assert_int_equal(dropped, 2);
    assert_string_equal(dropped_ids, "ghost ghost2 ");
    /* the same batch again changes nothing; a longer log is cut back to the leader's end */
    assert_int_equal(order_log_sync(log, 1, &leader[1], 1, 2), 0);
    assert_int_equal(added, 1);
    struct order_rec more = rec(2, "Bird", 1, "c");
    assert_int_equal(order_log_sync(log, 2, &more, 1, 3), 0);
    assert_int_equal(order_log_sync(log, 2, NULL, 0, 2), 0);
    assert_string_equal(slurp(), "0,Tux,1,a\n1,Uno,4,b\n");
    /* numbers out of order, or an end before the batch's: refused, nothing changed */
    struct order_rec wrong = rec(5, "Bird", 1, "d");
    assert_int_equal(order_log_sync(log, 2, &wrong, 1, 3), DST_EINVAL);
    assert_int_equal(order_log_sync(log, 2, &more, 1, 2), DST_EINVAL);
    /* read back from a number on, as a peer's catch-up does */
    assert_int_equal(order_log_read(log, 1, 10, &text, &len, &next), 0);
    assert_string_equal(text, "1,Uno,4,b\n");
    assert_int_equal(next, 2);
    free(text);
    assert_int_equal(order_log_read(log, 0, 1, &text, &len, &next), 0);
    assert_string_equal(text, "0,Tux,1,a\n");
    free(text);
    assert_int_equal(order_log_read(log, 3, 10, &text, &len, &next), DST_EINVAL);
    assert_int_equal(next, 2);
    order_log_free(log);
    assert_string_equal(slurp(), "0,Tux,1,a\n1,Uno,4,b\n");
}

static int hook_calls;
static int hook_rc;

static int hook(void *ud, int64_t first, const char *buf, size_t len, int64_t upto)
{
    (void)ud;
    hook_calls++;
    if (len)
        assert_int_equal(upto - first, 1);
    assert_true(len == 0 || buf[len - 1] == '\n');
    return hook_rc;
}

/* The hook sees each batch; a batch it fails fails its appends, the line staying on disk. */
static void hook_fails_a_batch(void **state)
{
    struct order_log *log = NULL;
    char err[256];
    int64_t n = -1;

    (void)state;
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    order_log_set_hooks(log, hook, NULL);
    hook_calls = hook_rc = 0;
    assert_int_equal(order_log_append(log, "Tux", 1, "a", &n), 0);
    hook_rc = DST_ECONFLICT;
    assert_int_equal(order_log_append(log, "Tux", 2, "b", &n), DST_ECONFLICT);
    assert_int_equal(n, 1);
    hook_rc = 0;
    assert_int_equal(order_log_append(log, "Tux", 3, "c", &n), 0);
    assert_int_equal(n, 2);
    order_log_nudge(log); /* an empty batch at the end */
    assert_int_equal(hook_calls, 4);
    assert_string_equal(slurp(), "0,Tux,1,a\n1,Tux,2,b\n2,Tux,3,c\n");
    order_log_free(log);
}

static struct order_log *seen_log;
static int64_t seen_next = -1;

/* What the hook sees of its own batch: not yet counted as on disk (it is being written). */
static int peek_hook(void *ud, int64_t first, const char *buf, size_t len, int64_t upto)
{
    char *text = NULL;
    size_t tlen = 0;

    (void)ud;
    (void)buf;
    (void)len;
    (void)upto;
    assert_int_equal(order_log_read(seen_log, first, 10, &text, &tlen, &seen_next), 0);
    free(text);
    return 0;
}

/* The hook runs while the batch is written (the leader's push beside its own fdatasync). */
static void hook_runs_beside_the_write(void **state)
{
    struct order_log *log = NULL;
    char err[256], *text = NULL;
    size_t tlen = 0;
    int64_t n = -1, next = -1;

    (void)state;
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    seen_log = log;
    order_log_set_hooks(log, peek_hook, NULL);
    assert_int_equal(order_log_append(log, "Tux", 1, "a", &n), 0);
    assert_int_equal(seen_next, 0); /* in the hook: order 0 not yet on disk */
    assert_int_equal(order_log_read(log, 0, 10, &text, &tlen, &next), 0);
    assert_int_equal(next, 1); /* once the append returned: on disk */
    assert_string_equal(text, "0,Tux,1,a\n");
    free(text);
    order_log_free(log);
}

static int64_t batch_first = -1, batch_upto = -1;

static int batch_hook(void *ud, int64_t first, const char *buf, size_t len, int64_t upto)
{
    (void)ud;
    (void)buf;
    (void)len;
    hook_calls++;
    batch_first = first;
    batch_upto = upto;
    return 0;
}

/* Lines queued together go in one batch (one write, one call of the hook), in number order. */
static void queued_lines_share_a_batch(void **state)
{
    struct order_log *log = NULL;
    char err[256];
    int64_t n[3] = {-1, -1, -1};
    uint64_t b[3] = {0, 0, 0};

    (void)state;
    assert_int_equal(order_log_open(path, NULL, NULL, &log, err, sizeof(err)), 0);
    order_log_set_hooks(log, batch_hook, NULL);
    hook_calls = 0;
    assert_int_equal(order_log_queue(log, "Tux", 1, "a", &n[0], &b[0]), 0);
    assert_int_equal(order_log_queue(log, "Uno", 2, NULL, &n[1], &b[1]), 0);
    assert_int_equal(order_log_queue(log, "Tux", 3, "c", &n[2], &b[2]), 0);
    assert_int_equal(n[0], 0);
    assert_int_equal(n[2], 2);
    assert_true(b[0] == b[1] && b[1] == b[2]);
    assert_string_equal(slurp(), ""); /* nothing written before a wait */
    for (int i = 2; i >= 0; i--)
        assert_int_equal(order_log_wait(log, b[i]), 0);
    assert_int_equal(hook_calls, 1);
    assert_int_equal(batch_first, 0);
    assert_int_equal(batch_upto, 3);
    assert_string_equal(slurp(), "0,Tux,1,a\n1,Uno,2\n2,Tux,3,c\n");
    order_log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines),
        cmocka_unit_test_setup_teardown(appends_and_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_last_line_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_lines_stop_the_start, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(queued_lines_share_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(sync_keeps_replaces_and_cuts, setup, teardown),
        cmocka_unit_test_setup_teardown(hook_fails_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(hook_runs_beside_the_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
