/* test_net.c - unit tests of TCP sockets with deadlines (src/core/net.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/net.h"
#include "sys_test.h"

/* A name whose 70-byte label no resolver accepts: fails in getaddrinfo, no packet sent. */
#define BAD_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.invalid"

/* A connected pair: *a wrapped in a dst_net_conn, the other end a plain socket. */
static int pair(struct dst_net_conn *a)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    dst_net_conn_init(a, sv[0]);
    return sv[1];
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void listen_connect_and_peer(void **state)
{
    struct dst_net_conn c;
    char err[256] = "", peer[64];
    int lfd = -1, port = 0;

    (void)state;
    assert_int_equal(dst_net_listen("127.0.0.1", 0, 8, &lfd, &port, err, sizeof(err)), 0);
    assert_true(port > 0);
    assert_int_equal(dst_net_connect("127.0.0.1", port, 1000, &c, err, sizeof(err)), 0);
    assert_true(c.fd >= 0);
    dst_net_peer(&c, peer, sizeof(peer));
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    assert_string_equal(peer, want);
    int sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);
    assert_int_equal(dst_net_write_all(&c, "hi\n", 3, dst_monotonic_ms() + 1000), 0);
    char buf[8] = "";
    assert_int_equal(read(sfd, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "hi\n", 3);
    dst_net_close(&c);
    dst_net_close(&c); /* twice is fine */
    assert_int_equal(c.fd, -1);
    close(sfd);
    close(lfd);
}

static void listen_conflict(void **state)
{
    char err[256] = "";
    int a = -1, b = -1, port = 0, port2 = 0;

    (void)state;
    assert_int_equal(dst_net_listen("127.0.0.1", 0, 8, &a, &port, err, sizeof(err)), 0);
    assert_int_equal(dst_net_listen("127.0.0.1", port, 8, &b, &port2, err, sizeof(err)),
                     DST_ECONFLICT);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(dst_net_listen(BAD_NAME, 0, 8, &b, &port2, err, sizeof(err)), DST_EDEP);
    assert_non_null(strstr(err, "DNS: cannot resolve"));
    close(a);
}

static void ipv6_loopback(void **state)
{
    struct dst_net_conn c;
    char err[256] = "", peer[64];
    int lfd = -1, port = 0;

    (void)state;
    if (dst_net_listen("::1", 0, 8, &lfd, &port, err, sizeof(err)) != 0)
        skip(); /* no IPv6 on this machine */
    assert_int_equal(dst_net_connect("::1", port, 1000, &c, err, sizeof(err)), 0);
    dst_net_peer(&c, peer, sizeof(peer));
    assert_true(strncmp(peer, "[::1]:", 6) == 0);
    dst_net_close(&c);
    close(lfd);
}

static void connect_refused(void **state)
{
    struct dst_net_conn c;
    char err[256] = "", want[64];
    int lfd = -1, port = 0;

    (void)state;
    assert_int_equal(dst_net_listen("127.0.0.1", 0, 8, &lfd, &port, err, sizeof(err)), 0);
    close(lfd); /* nobody listens there now */
    assert_int_equal(dst_net_connect("127.0.0.1", port, 1000, &c, err, sizeof(err)), DST_EDEP);
    snprintf(want, sizeof(want), "refused: 127.0.0.1:%d", port);
    assert_string_equal(err, want);
    assert_int_equal(c.fd, -1);
}

static void connect_dns_failure(void **state)
{
    struct dst_net_conn c;
    char err[256] = "";

    (void)state;
    assert_int_equal(dst_net_connect(BAD_NAME, 80, 1000, &c, err, sizeof(err)), DST_EDEP);
    assert_true(strncmp(err, "DNS: cannot resolve '" BAD_NAME "'", 22 + strlen(BAD_NAME)) == 0);
}

static void connect_timeout(void **state)
{
    struct dst_net_conn c;
    char err[256] = "";
    int lfd = -1, port = 0, filler[2] = {-1, -1};

    (void)state;
    /* a backlog of 0 holds one connection nobody accepts; SYNs beyond it are dropped */
    assert_int_equal(dst_net_listen("127.0.0.1", 0, 0, &lfd, &port, err, sizeof(err)), 0);
    for (int i = 0; i < 2; i++) {
        struct dst_net_conn f;
        if (dst_net_connect("127.0.0.1", port, 200, &f, err, sizeof(err)) == 0)
            filler[i] = f.fd;
    }
    int64_t t0 = dst_monotonic_ms();
    int rc = dst_net_connect("127.0.0.1", port, 200, &c, err, sizeof(err));
    int64_t took = dst_monotonic_ms() - t0;
    assert_int_equal(rc, DST_ETIMEDOUT);
    assert_true(took >= 190 &&
                took < ST_WAIT_MS); /* the kernel alone would retry SYNs for minutes */
    char want[64];
    snprintf(want, sizeof(want), "timeout: connecting to 127.0.0.1:%d after 200 ms", port);
    assert_string_equal(err, want);
    for (int i = 0; i < 2; i++) {
        if (filler[i] >= 0)
            close(filler[i]);
    }
    close(lfd);
}

static void lines_across_writes(void **state)
{
    struct dst_net_conn c;
    char line[32];
    size_t raw = 0;
    int peer = pair(&c);
    int64_t soon = dst_monotonic_ms() + 1000;

    (void)state;
    send_str(peer, "HI\nPI");
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, &raw), 0);
    assert_string_equal(line, "HI");
    assert_int_equal(raw, 3);
    /* a partial line stays buffered when the deadline passes */
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), dst_monotonic_ms(), &raw),
                     DST_ETIMEDOUT);
    send_str(peer, "NG 1\r\n\n");
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, &raw), 0);
    assert_string_equal(line, "PING 1");
    assert_int_equal(raw, 8); /* "PING 1\r\n" */
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, &raw), 0);
    assert_string_equal(line, "");
    assert_int_equal(raw, 1);
    dst_net_close(&c);
    close(peer);
}

static void line_with_nul_is_taken_and_refused(void **state)
{
    struct dst_net_conn c;
    char line[32];
    size_t raw = 0;
    int peer = pair(&c);
    int64_t soon = dst_monotonic_ms() + 1000;

    (void)state;
    assert_int_equal(write(peer, "\0\xff\x01x\nHI\n", 8), 8);
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, &raw), DST_EINVAL);
    assert_int_equal(raw, 5);
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, &raw), 0);
    assert_string_equal(line, "HI");
    dst_net_close(&c);
    close(peer);
}

static void abort_resets(void **state)
{
    struct dst_net_conn c, s;
    char err[256] = "", buf[8];
    int lfd = -1, port = 0;

    (void)state;
    assert_int_equal(dst_net_listen("127.0.0.1", 0, 8, &lfd, &port, err, sizeof(err)), 0);
    assert_int_equal(dst_net_connect("127.0.0.1", port, 1000, &c, err, sizeof(err)), 0);
    dst_net_conn_init(&s, accept(lfd, NULL, NULL));
    assert_true(s.fd >= 0);
    dst_net_abort(&s);
    assert_int_equal(s.fd, -1);
    size_t got = 0;
    assert_int_equal(dst_net_read(&c, buf, sizeof(buf), dst_monotonic_ms() + 1000, &got), DST_EIO);
    assert_int_equal(c.sys_errno, ECONNRESET);
    dst_net_abort(&c);
    dst_net_abort(&c); /* closed already: fine */
    close(lfd);
}

static void line_too_long(void **state)
{
    struct dst_net_conn c;
    char line[8], big[DST_NET_BUF + 16];
    int peer = pair(&c);
    int64_t soon = dst_monotonic_ms() + 1000;

    (void)state;
    send_str(peer, "12345678\n");
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, NULL), DST_ETOOBIG);
    dst_net_close(&c);
    close(peer);

    /* no "\n" at all: the read-ahead fills up and that is the end of it */
    char huge[DST_NET_BUF * 2];
    peer = pair(&c);
    memset(big, 'x', sizeof(big));
    assert_int_equal(write(peer, big, sizeof(big)), (ssize_t)sizeof(big));
    assert_int_equal(dst_net_read_line(&c, huge, sizeof(huge), soon, NULL), DST_ETOOBIG);
    dst_net_close(&c);
    close(peer);
}

static void read_after_line_gets_read_ahead_first(void **state)
{
    struct dst_net_conn c;
    char line[32], data[16] = "";
    size_t got = 0;
    int peer = pair(&c);
    int64_t soon = dst_monotonic_ms() + 1000;

    (void)state;
    send_str(peer, "UPLOAD 20 0\n0123456");
    assert_int_equal(dst_net_read_line(&c, line, sizeof(line), soon, NULL), 0);
    assert_string_equal(line, "UPLOAD 20 0");
    send_str(peer, "789");
    assert_int_equal(dst_net_read_exact(&c, data, 10, soon, &got), 0);
    assert_int_equal(got, 10);
    assert_memory_equal(data, "0123456789", 10);
    dst_net_close(&c);
    close(peer);
}

static void short_read_on_close(void **state)
{
    struct dst_net_conn c;
    char data[16];
    size_t got = 99;
    int peer = pair(&c);

    (void)state;
    send_str(peer, "12345");
    close(peer);
    assert_int_equal(dst_net_read_exact(&c, data, 10, dst_monotonic_ms() + 1000, &got), DST_EIO);
    assert_int_equal(got, 5);
    assert_int_equal(c.sys_errno, 0); /* the peer closed: no socket error */
    assert_int_equal(dst_net_read(&c, data, 1, -1, &got), DST_EIO);
    assert_int_equal(got, 0);
    dst_net_close(&c);
}

static void deadline_and_idle(void **state)
{
    struct dst_net_conn c;
    char data[4];
    size_t got = 0;
    int peer = pair(&c);

    (void)state;
    /* the peer never writes: only the deadline or the idle limit ends a read */
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_net_read(&c, data, 4, t0 + 80, &got), DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 75 && took < ST_WAIT_MS);

    c.idle_ms = 60; /* no deadline, but 60 ms of silence is too much */
    t0 = dst_monotonic_ms();
    assert_int_equal(dst_net_read(&c, data, 4, -1, &got), DST_ETIMEDOUT);
    took = dst_monotonic_ms() - t0;
    assert_true(took >= 55 && took < ST_WAIT_MS);

    /* the nearer of the two wins: the idle limit, long before the deadline */
    t0 = dst_monotonic_ms();
    assert_int_equal(dst_net_read(&c, data, 4, t0 + 4 * ST_WAIT_MS, &got), DST_ETIMEDOUT);
    assert_true(dst_monotonic_ms() - t0 < 2 * ST_WAIT_MS);
    dst_net_close(&c);
    close(peer);
}

static void *reader(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    return (void *)(uintptr_t)total;
}

static void write_all_big_and_stalled(void **state)
{
    struct dst_net_conn c;
    size_t big = 4u << 20;
    char *data = calloc(1, big);
    pthread_t t;
    void *total = NULL;
    int peer = pair(&c);

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, reader, &peer), 0);
    assert_int_equal(dst_net_write_all(&c, data, big, dst_monotonic_ms() + ST_WAIT_MS), 0);
    dst_net_close(&c);
    pthread_join(t, &total);
    assert_int_equal((uintptr_t)total, big);
    close(peer);

    /* a peer that reads nothing: the buffers fill and the deadline passes */
    peer = pair(&c);
    assert_int_equal(dst_net_write_all(&c, data, big, dst_monotonic_ms() + 100), DST_ETIMEDOUT);
    size_t put = 0;
    assert_int_equal(dst_net_write(&c, data, big, dst_monotonic_ms(), &put), DST_ETIMEDOUT);
    assert_int_equal(put, 0);
    dst_net_close(&c);
    close(peer);
    free(data);
}

static void write_to_closed_peer(void **state)
{
    struct dst_net_conn c;
    int peer = pair(&c);

    (void)state;
    close(peer);
    /* no SIGPIPE: a plain error */
    assert_int_equal(dst_net_write_all(&c, "x", 1, dst_monotonic_ms() + 1000), DST_EIO);
    assert_int_equal(c.sys_errno, EPIPE);
    dst_net_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listen_connect_and_peer),
        cmocka_unit_test(listen_conflict),
        cmocka_unit_test(ipv6_loopback),
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(connect_dns_failure),
        cmocka_unit_test(connect_timeout),
        cmocka_unit_test(lines_across_writes),
        cmocka_unit_test(line_with_nul_is_taken_and_refused),
        cmocka_unit_test(abort_resets),
        cmocka_unit_test(line_too_long),
        cmocka_unit_test(read_after_line_gets_read_ahead_first),
        cmocka_unit_test(short_read_on_close),
        cmocka_unit_test(deadline_and_idle),
        cmocka_unit_test(write_all_big_and_stalled),
        cmocka_unit_test(write_to_closed_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
