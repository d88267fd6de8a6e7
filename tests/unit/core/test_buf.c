/* test_buf.c - unit tests of the capped growable buffer (src/core/buf.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

static void init_is_empty(void **state)
{
    struct dst_buf b;

    (void)state;
    dst_buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    dst_buf_release(&b);
    dst_buf_release(&b); /* twice is fine */
}

static void append_terminates(void **state)
{
    struct dst_buf b;

    (void)state;
    dst_buf_init(&b, 0);
    assert_int_equal(dst_buf_append(&b, "", 0), 0);
    assert_non_null(b.data); /* even empty text is text */
    assert_string_equal(b.data, "");
    assert_int_equal(dst_buf_append(&b, "abcXYZ", 3), 0);
    assert_int_equal(dst_buf_puts(&b, "def"), 0);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_int_equal(dst_buf_append(&b, "g\0h", 3), 0); /* binary: len counts the NUL */
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abcdefg\0h", 10);
    dst_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void growth(void **state)
{
    struct dst_buf b;
    char chunk[1000];

    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    dst_buf_init(&b, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(dst_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(strlen(b.data), 100000);
    dst_buf_release(&b);
}

static void cap_leaves_buffer_unchanged(void **state)
{
    struct dst_buf b;

    (void)state;
    dst_buf_init(&b, 10);
    assert_int_equal(dst_buf_puts(&b, "12345678"), 0);
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(dst_buf_puts(&b, "abc"), DST_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(dst_buf_printf(&b, "%d", 123), DST_ETOOBIG); /* small printf path */
    assert_string_equal(b.data, "12345678");
    assert_int_equal(dst_buf_puts(&b, "ab"), 0); /* exactly at the cap */
    assert_string_equal(b.data, "12345678ab");
    assert_int_equal(dst_buf_append(&b, "c", 1), DST_ETOOBIG);
    assert_int_equal(dst_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 10);
    dst_buf_release(&b);

    /* One request over the cap on an empty buffer, and a huge length that must not wrap. */
    dst_buf_init(&b, 10);
    assert_int_equal(dst_buf_append(&b, "0123456789a", 11), DST_ETOOBIG);
    assert_int_equal(dst_buf_append(&b, "x", SIZE_MAX), DST_ETOOBIG);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    dst_buf_release(&b);

    /* Without a cap, a length that would wrap size_t is refused all the same. */
    dst_buf_init(&b, 0);
    assert_int_equal(dst_buf_puts(&b, "abcde"), 0);
    assert_int_equal(dst_buf_append(&b, "x", SIZE_MAX - 5), DST_ETOOBIG);
    assert_int_equal(dst_buf_append(&b, "x", SIZE_MAX), DST_ETOOBIG);
    assert_string_equal(b.data, "abcde");
    dst_buf_release(&b);
}

static void printf_grows(void **state)
{
    struct dst_buf b;
    char big[5000];

    (void)state;
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dst_buf_init(&b, 0);
    assert_int_equal(dst_buf_printf(&b, "%s=%d;", "a", 1), 0);
    assert_int_equal(dst_buf_printf(&b, "[%s]", big), 0); /* beyond the 256-byte fast path */
    assert_int_equal(b.len, 4 + 1 + 4999 + 1);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "a=1;[yyy", 8);
    assert_int_equal(b.data[b.len - 1], ']');
    dst_buf_release(&b);

    /* The large path respects the cap too. */
    dst_buf_init(&b, 1000);
    assert_int_equal(dst_buf_puts(&b, "keep"), 0);
    assert_int_equal(dst_buf_printf(&b, "%s", big), DST_ETOOBIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    dst_buf_release(&b);
}

static void reset_keeps_memory(void **state)
{
    struct dst_buf b;

    (void)state;
    dst_buf_init(&b, 0);
    dst_buf_reset(&b); /* on an empty buffer */
    assert_int_equal(dst_buf_puts(&b, "hello"), 0);
    char *data = b.data;
    dst_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    assert_int_equal(dst_buf_puts(&b, "hi"), 0);
    assert_string_equal(b.data, "hi");
    dst_buf_release(&b);
}

static void detach(void **state)
{
    struct dst_buf b;
    size_t len = 99;

    (void)state;
    dst_buf_init(&b, 0);
    assert_int_equal(dst_buf_puts(&b, "owned"), 0);
    char *p = dst_buf_detach(&b, &len);
    assert_string_equal(p, "owned");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);

    /* Empty: "" (never NULL), and the buffer stays usable. */
    p = dst_buf_detach(&b, NULL);
    assert_non_null(p);
    assert_string_equal(p, "");
    free(p);
    assert_int_equal(dst_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    dst_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_is_empty), cmocka_unit_test(append_terminates),
        cmocka_unit_test(growth),        cmocka_unit_test(cap_leaves_buffer_unchanged),
        cmocka_unit_test(printf_grows),  cmocka_unit_test(reset_keeps_memory),
        cmocka_unit_test(detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
