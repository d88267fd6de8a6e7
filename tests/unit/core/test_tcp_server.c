/* test_tcp_server.c - unit tests of the raw TCP listener (src/core/tcp_server.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/net.h"
#include "core/tcp_server.h"
#include "sys_test.h"

/* What the echo handler saw. */
static atomic_int handled, last_rc, rejected_calls, bad_peers;

/* Echoes lines back until the client goes, stays silent too long, or says "bye". */
static void echo(void *ud, struct dst_net_conn *c, const char *peer)
{
    char line[64], out[80];
    int rc;

    (void)ud;
    if (strncmp(peer, "127.0.0.1:", 10) != 0) /* checked on the test's thread */
        atomic_fetch_add(&bad_peers, 1);
    atomic_fetch_add(&handled, 1);
    while ((rc = dst_net_read_line(c, line, sizeof(line), -1, NULL)) == 0 &&
           strcmp(line, "bye") != 0) {
        int n = snprintf(out, sizeof(out), "%s\n", line);
        if (dst_net_write_all(c, out, (size_t)n, -1) != 0)
            break;
    }
    atomic_store(&last_rc, rc);
}

static void count_reject(void *ud)
{
    (void)ud;
    atomic_fetch_add(&rejected_calls, 1);
}

static struct dst_tcp_server *start(unsigned max_conns, int idle_ms)
{
    struct dst_tcp_server_opts o = {.listen = "127.0.0.1:0",
                                    .name = "test",
                                    .max_conns = max_conns,
                                    .idle_ms = idle_ms,
                                    .handler = echo,
                                    .on_reject = count_reject,
                                    .quiet = true};
    struct dst_tcp_server *s = NULL;

    atomic_store(&handled, 0);
    atomic_store(&last_rc, 1);
    atomic_store(&rejected_calls, 0);
    assert_int_equal(dst_tcp_server_new(&o, &s), 0);
    assert_int_equal(dst_tcp_server_start(s), 0);
    assert_true(dst_tcp_server_port(s) > 0);
    return s;
}

static void dial(struct dst_tcp_server *s, struct dst_net_conn *c)
{
    char err[256];
    assert_int_equal(
        dst_net_connect("127.0.0.1", dst_tcp_server_port(s), ST_WAIT_MS, c, err, sizeof(err)), 0);
}

/* Waits (ST_WAIT_MS at most) for the server to serve n connections. */
static void wait_active(struct dst_tcp_server *s, unsigned n)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
    while (dst_tcp_server_active(s) != n && dst_monotonic_ms() < end)
        poll(NULL, 0, 5);
    assert_int_equal(dst_tcp_server_active(s), n);
}

/* True if the server closed c within ms (reading nothing else). */
static bool closed_within(struct dst_net_conn *c, int ms)
{
    char b[16];
    size_t got = 0;
    return dst_net_read(c, b, sizeof(b), dst_monotonic_ms() + ms, &got) == DST_EIO && got == 0;
}

static void serves_lines(void **state)
{
    struct dst_tcp_server *s = start(4, 0);
    struct dst_net_conn a, b;
    char line[64];
    int64_t soon = dst_monotonic_ms() + ST_WAIT_MS;

    (void)state;
    dial(s, &a);
    dial(s, &b);
    assert_int_equal(dst_net_write_all(&a, "one\n", 4, soon), 0);
    assert_int_equal(dst_net_write_all(&b, "two\n", 4, soon), 0);
    assert_int_equal(dst_net_read_line(&b, line, sizeof(line), soon, NULL), 0);
    assert_string_equal(line, "two");
    assert_int_equal(dst_net_read_line(&a, line, sizeof(line), soon, NULL), 0);
    assert_string_equal(line, "one");
    wait_active(s, 2);
    assert_int_equal(dst_net_write_all(&a, "bye\n", 4, soon), 0);
    assert_true(closed_within(&a, ST_WAIT_MS)); /* the handler returned: the server closed it */
    wait_active(s, 1);
    assert_int_equal(atomic_load(&handled), 2);
    assert_int_equal(atomic_load(&bad_peers), 0);
    dst_net_close(&a);
    dst_net_close(&b);
    dst_tcp_server_free(s);
}

static void over_the_cap_is_closed_and_counted(void **state)
{
    struct dst_tcp_server *s = start(2, 0);
    struct dst_net_conn c[3];

    (void)state;
    dial(s, &c[0]);
    dial(s, &c[1]);
    wait_active(s, 2);
    dial(s, &c[2]);
    assert_true(closed_within(&c[2], ST_WAIT_MS));
    assert_int_equal(dst_tcp_server_rejected(s), 1);
    assert_int_equal(atomic_load(&rejected_calls), 1);
    /* the first two are still served */
    char line[16];
    assert_int_equal(dst_net_write_all(&c[1], "ok\n", 3, dst_monotonic_ms() + ST_WAIT_MS), 0);
    assert_int_equal(
        dst_net_read_line(&c[1], line, sizeof(line), dst_monotonic_ms() + ST_WAIT_MS, NULL), 0);
    assert_string_equal(line, "ok");
    /* one goes: there is room again */
    dst_net_close(&c[0]);
    wait_active(s, 1);
    dst_net_close(&c[2]);
    dial(s, &c[2]);
    wait_active(s, 2);
    assert_int_equal(dst_tcp_server_rejected(s), 1);
    for (int i = 1; i < 3; i++)
        dst_net_close(&c[i]);
    dst_tcp_server_free(s);
}

static void idle_connection_is_closed(void **state)
{
    struct dst_tcp_server *s = start(4, 150);
    struct dst_net_conn c;

    (void)state;
    dial(s, &c);
    int64_t t0 = dst_monotonic_ms();
    assert_true(closed_within(&c, ST_WAIT_MS)); /* by the idle limit: the client never writes */
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 100);
    wait_active(s, 0);
    assert_int_equal(atomic_load(&last_rc), DST_ETIMEDOUT);
    dst_net_close(&c);
    dst_tcp_server_free(s);
}

static void stop_ends_live_connections(void **state)
{
    struct dst_tcp_server *s = start(8, 60000);
    struct dst_net_conn c[3];

    (void)state;
    for (int i = 0; i < 3; i++)
        dial(s, &c[i]);
    wait_active(s, 3);
    int port = dst_tcp_server_port(s);
    int64_t t0 = dst_monotonic_ms();
    dst_tcp_server_stop(s); /* handlers blocked in a read with a minute to go */
    assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS);
    assert_int_equal(dst_tcp_server_active(s), 0);
    assert_int_equal(atomic_load(&last_rc), DST_EIO);
    for (int i = 0; i < 3; i++) {
        assert_true(closed_within(&c[i], ST_WAIT_MS));
        dst_net_close(&c[i]);
    }
    /* nobody listens any more */
    char err[256];
    assert_int_equal(dst_net_connect("127.0.0.1", port, 1000, &c[0], err, sizeof(err)), DST_EDEP);
    dst_tcp_server_stop(s); /* twice is fine */
    dst_tcp_server_free(s);
}

static void bad_options_and_busy_port(void **state)
{
    struct dst_tcp_server_opts o = {.listen = "nonsense", .handler = echo, .quiet = true};
    struct dst_tcp_server *s = NULL, *t = NULL;
    char listen[32];

    (void)state;
    assert_int_equal(dst_tcp_server_new(&o, &s), DST_EINVAL);
    assert_null(s);
    o.listen = "127.0.0.1:0";
    o.handler = NULL;
    assert_int_equal(dst_tcp_server_new(&o, &s), DST_EINVAL);
    assert_null(s);

    s = start(4, 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", dst_tcp_server_port(s));
    o.listen = listen;
    o.handler = echo;
    assert_int_equal(dst_tcp_server_new(&o, &t), 0);
    assert_int_equal(dst_tcp_server_start(t), DST_ECONFLICT);
    dst_tcp_server_free(t);
    dst_tcp_server_free(s);
    dst_tcp_server_free(NULL);

    assert_int_equal(dst_tcp_server_new(&o, &t), 0);
    dst_tcp_server_stop(t); /* before start */
    dst_tcp_server_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves_lines),
        cmocka_unit_test(over_the_cap_is_closed_and_counted),
        cmocka_unit_test(idle_connection_is_closed),
        cmocka_unit_test(stop_ends_live_connections),
        cmocka_unit_test(bad_options_and_busy_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
