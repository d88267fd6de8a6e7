/* test_json.c - unit tests of the jansson helpers (src/core/json.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* Parses s (its strlen) and returns the value; err gets the message. */
static json_t *parse(const char *s, char *err, size_t errlen)
{
    err[0] = '\0';
    return dst_json_parse(s, strlen(s), err, errlen);
}

static void parses_any_value(void **state)
{
    char err[256];
    json_t *j;

    (void)state;
    j = parse("{\"a\":[1,2.5,\"x\",null,true]}\n", err, sizeof(err));
    assert_non_null(j);
    assert_true(json_is_object(j));
    assert_string_equal(err, "");
    json_decref(j);
    j = parse("42", err, sizeof(err));
    assert_true(json_is_integer(j));
    json_decref(j);
    j = parse("\"s\"", err, sizeof(err));
    assert_string_equal(json_string_value(j), "s");
    json_decref(j);
    j = parse("9223372036854775807", err, sizeof(err)); /* INT64_MAX fits */
    assert_int_equal(json_integer_value(j), INT64_MAX);
    json_decref(j);
}

static void bounded_by_len(void **state)
{
    char err[256];

    (void)state;
    json_t *j = dst_json_parse("[1]garbage", 3, err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
}

static void rejects(void **state)
{
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"{\"a\":1", "invalid JSON at line 1, column 6: '}' expected near end of file"},
        {"{\"a\":1,\"a\":2}",
         "invalid JSON at line 1, column 10: duplicate object key near '\"a\"'"},
        {"{} x", "invalid JSON at line 1, column 4: end of file expected near 'x'"},
        {"[1] [2]", "invalid JSON at line 1, column 5: end of file expected near '['"},
        {"12345678901234567890",
         "invalid JSON at line 1, column 20: too big integer near '12345678901234567890'"},
        {"-12345678901234567890", "invalid JSON at line 1, column 21: too big negative integer"},
        {"1e999", "invalid JSON at line 1, column 5: real number overflow near '1e999'"},
        {"", "invalid JSON at line 1, column 0: unexpected token near end of file"},
        {"{\n\"a\": }", "invalid JSON at line 2, column 6: unexpected token near '}'"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_null(parse(cases[i].in, err, sizeof(err)));
        assert_string_equal(err, cases[i].err);
    }
    /* Nested duplicates too; and err may be NULL or short. */
    assert_null(parse("{\"o\":{\"k\":1,\"k\":1}}", err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate object key"));
    assert_null(dst_json_parse("{", 1, NULL, 0));
    assert_null(dst_json_parse("{", 1, err, 8));
    assert_string_equal(err, "invalid");
}

static void dumps_compact(void **state)
{
    size_t len = 0;

    (void)state;
    json_t *j = json_pack("{s[ii]sfsfsns{}}", "a", 1, 2, "r", 0.1, "third", 1.0 / 3, "n", "o");
    char *s = dst_json_dumps(j, &len);
    assert_string_equal(s,
                        "{\"a\":[1,2],\"r\":0.1,\"third\":0.333333333333333,\"n\":null,\"o\":{}}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(j);
    j = json_string("scalar");
    s = dst_json_dumps(j, NULL); /* any value, len_out optional */
    assert_string_equal(s, "\"scalar\"");
    free(s);
    json_decref(j);
}

static void iget(void **state)
{
    (void)state;
    json_t *o = json_pack("{sisisi}", "DownloadSpeed", 1, "upload", 2, "UPLOAD", 3);
    assert_int_equal(json_integer_value(dst_json_iget(o, "downloadspeed")), 1);
    assert_int_equal(json_integer_value(dst_json_iget(o, "DOWNLOADSPEED")), 1);
    assert_int_equal(json_integer_value(dst_json_iget(o, "DownloadSpeed")), 1);
    assert_null(dst_json_iget(o, "download"));
    /* First match in insertion order, even when a later key matches exactly. */
    assert_int_equal(json_integer_value(dst_json_iget(o, "Upload")), 2);
    assert_int_equal(json_integer_value(dst_json_iget(o, "UPLOAD")), 2);
    json_t *a = json_array();
    assert_null(dst_json_iget(a, "x"));
    assert_null(dst_json_iget(NULL, "x"));
    json_decref(a);
    json_decref(o);
}

static void number(void **state)
{
    double d = -1;

    (void)state;
    json_t *i = json_integer(-7), *r = json_real(2.5), *s = json_string("3"), *n = json_null();
    assert_true(dst_json_number(i, &d));
    assert_true(d == -7);
    assert_true(dst_json_number(r, &d));
    assert_true(d == 2.5);
    assert_false(dst_json_number(s, &d));
    assert_false(dst_json_number(n, &d));
    assert_false(dst_json_number(NULL, &d));
    assert_true(d == 2.5); /* untouched when false */
    json_decref(i);
    json_decref(r);
    json_decref(s);
    json_decref(n);
}

static void setters(void **state)
{
    (void)state;
    json_t *o = json_object();
    dst_json_set_num(o, "a", 1.5);
    dst_json_set_num(o, "nan", NAN);
    dst_json_set_num(o, "inf", INFINITY);
    dst_json_set_str(o, "s", "text");
    dst_json_set_str(o, "null", NULL);
    dst_json_set_int(o, "i", INT64_MIN);
    assert_true(json_real_value(json_object_get(o, "a")) == 1.5);
    assert_true(json_is_null(json_object_get(o, "nan")));
    assert_true(json_is_null(json_object_get(o, "inf")));
    assert_string_equal(json_string_value(json_object_get(o, "s")), "text");
    assert_true(json_is_null(json_object_get(o, "null")));
    assert_int_equal(json_integer_value(json_object_get(o, "i")), INT64_MIN);
    dst_json_set_num(o, "a", NAN); /* replacing works the same */
    assert_true(json_is_null(json_object_get(o, "a")));
    json_decref(o);
}

/* Texts become valid UTF-8, and only the bytes that were not are replaced. */
static void text_fix(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"cut \xc3", "cut ?"},           /* half a character at the end */
        {"cut \xf0\x9f\x98", "cut ???"}, /* three quarters of one */
        {"\x80lone", "?lone"},           /* a continuation byte alone */
        {"\xc0\x80", "??"},              /* overlong NUL */
        {"\xe0\x80\xaf", "???"},         /* overlong '/' */
        {"\xed\xa0\x80", "???"},         /* a surrogate */
        {"\xf4\x90\x80\x80", "????"},    /* past U+10FFFF */
        {"\xff\xfe", "??"},
        {"", ""},
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        dst_json_text_fix(buf);
        assert_string_equal(buf, cases[i].out);
        json_t *j = json_string(buf); /* jansson takes it now */
        assert_non_null(j);
        json_decref(j);
    }
    dst_json_text_fix(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_any_value),
        cmocka_unit_test(bounded_by_len),
        cmocka_unit_test(rejects),
        cmocka_unit_test(dumps_compact),
        cmocka_unit_test(iget),
        cmocka_unit_test(number),
        cmocka_unit_test(setters),
        cmocka_unit_test(text_fix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
