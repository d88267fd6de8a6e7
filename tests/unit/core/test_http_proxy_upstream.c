/* test_http_proxy_upstream.c - unit tests of the proxy's header callback (http_proxy_upstream.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_proxy_priv.h"

static struct dst_http_proxy proxy = {.opts.idle_timeout_ms = 60000};
static struct xfer x;

static int setup(void **state)
{
    (void)state;
    proxy.next_deadline = INT64_MAX;
    proxy.ready = NULL;
    memset(&x, 0, sizeof(x));
    x.p = &proxy;
    x.clen = -1;
    dst_buf_init(&x.rhdr, MAX_RESP_HEADERS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dst_buf_release(&x.rhdr);
    return 0;
}

/* Hands the first len bytes of buf to the callback, as curl hands it a line. */
static size_t feed(const char *buf, size_t len)
{
    char *line = malloc(strlen(buf) + 1);
    memcpy(line, buf, strlen(buf) + 1); /* bytes after the line, as curl's buffer may hold */
    size_t took = proxy_on_header(line, 1, len, &x);
    free(line);
    return took;
}

static size_t line(const char *s)
{
    return feed(s, strlen(s));
}

/*
 * A Content-Length with no digits fails the attempt, as curl fails such an answer: the bytes
 * after the line are not read for digits.
 */
static void test_content_length_within_the_line(void **state)
{
    (void)state;
    assert_int_equal(line("HTTP/1.1 200 OK\r\n"), 17);
    assert_int_equal(feed("Content-Length: \r\n7", 18), 0);
    assert_int_equal(x.clen, -1);
    assert_int_equal(feed("Content-Length:\r\n\r\n42", 17), 0);
    assert_int_equal(x.clen, -1);
}

/* Digits within int64, blanks around them; anything else fails the attempt. */
static void test_content_length(void **state)
{
    (void)state;
    line("HTTP/1.1 200 OK\r\n");
    assert_int_equal(line("Content-Length: 12 \r\n"), 21);
    assert_int_equal(x.clen, 12);
    assert_int_equal(line("Content-Length: 1099511627776\r\n"), 31);
    assert_int_equal(x.clen, 1099511627776LL);
    assert_int_equal(line("Content-Length: 12abc\r\n"), 0);
    assert_int_equal(line("content-length:\t99999999999999999999\r\n"), 0);
    assert_int_equal(line("Content-Length: -1\r\n"), 0);
}

/* The status line is read within its bytes: "HTTP/1.1 20" and a digit after it are no 200 but
   an answer that fails the attempt. */
static void test_status_within_the_line(void **state)
{
    (void)state;
    assert_int_equal(feed("HTTP/1.1 20\r\n0 OK", 13), 0);
    assert_int_equal(x.status, 0);
    assert_int_equal(line("HTTP/1.1 404 Not Found\r\n"), 24);
    assert_int_equal(x.status, 404);
}

/* An event stream is told by its Content-Type, read within the line too. */
static void test_event_stream(void **state)
{
    (void)state;
    line("HTTP/1.1 200 OK\r\n");
    assert_int_equal(feed("Content-Type: text/ev\r\nent-stream", 23), 23);
    assert_false(x.event_stream);
    line("Content-Type: text/event-stream; charset=utf-8\r\n");
    assert_true(x.event_stream);
}

/* The headers are kept for the client as "name\0value\0", hop-by-hop ones left out. */
static void test_headers_kept(void **state)
{
    (void)state;
    line("HTTP/1.1 201 Created\r\n");
    line("Location: /x\r\n");
    line("Connection: keep-alive\r\n");
    line("\r\n");
    assert_int_equal(x.status, 201);
    assert_true(x.headers_done);
    assert_int_equal(x.rhdr.len, sizeof("Location\0/x"));
    assert_memory_equal(x.rhdr.data, "Location\0/x", sizeof("Location\0/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_length_within_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_within_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
