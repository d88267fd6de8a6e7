/* test_xml.c - unit tests of the XML reader (src/core/xml.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/xml.h"

/* What the callback saw: element names with depth, and a few attributes. */
struct seen {
    char names[512];
    int count;
    int stop_at; /* return 42 at this element (1-based); 0: never */
    char lat[32];
};

static int record(void *ud, const char *name, const char **attrs, int depth)
{
    struct seen *s = ud;
    size_t n = strlen(s->names);

    snprintf(s->names + n, sizeof(s->names) - n, "%s%s@%d", n ? " " : "", name, depth);
    const char *lat = dst_xml_attr(attrs, "lat");
    if (lat)
        snprintf(s->lat, sizeof(s->lat), "%s", lat);
    return ++s->count == s->stop_at ? 42 : 0;
}

static int parse(const char *doc, struct seen *s, char *err, size_t errlen)
{
    return dst_xml_parse(doc, strlen(doc), record, s, err, errlen);
}

static void elements_and_attributes(void **state)
{
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<settings><client ip=\"10.0.0.1\" lat=\"59.91\" isp=\"A &amp; B\"/>"
                      "<servers><server id=\"1\"/>text<server id=\"2\"></server></servers>"
                      "</settings>";
    struct seen s = {0};
    char err[128] = "";

    (void)state;
    assert_int_equal(parse(doc, &s, err, sizeof(err)), 0);
    assert_string_equal(s.names, "settings@1 client@2 servers@2 server@3 server@3");
    assert_string_equal(s.lat, "59.91");
    assert_string_equal(err, "");
}

static int check_attrs(void *ud, const char *name, const char **attrs, int depth)
{
    (void)ud;
    (void)depth;
    if (strcmp(name, "client") == 0) {
        assert_string_equal(dst_xml_attr(attrs, "isp"), "A & B \xc3\xa6"); /* decoded */
        assert_string_equal(dst_xml_attr(attrs, "empty"), "");
        assert_null(dst_xml_attr(attrs, "missing"));
    }
    return 0;
}

static void attribute_values_are_decoded(void **state)
{
    const char *doc = "<r><client isp=\"A &amp; B &#xe6;\" empty=\"\"/></r>";
    char err[128];

    (void)state;
    assert_int_equal(dst_xml_parse(doc, strlen(doc), check_attrs, NULL, err, sizeof(err)), 0);
    assert_null(dst_xml_attr(NULL, "x"));
}

static void callback_stops_the_parse(void **state)
{
    struct seen s = {.stop_at = 2};
    char err[128] = "";

    (void)state;
    assert_int_equal(parse("<a><b/><c/><d/></a>", &s, err, sizeof(err)), 42);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.names, "a@1 b@2");
}

static void malformed_is_einval_with_position(void **state)
{
    const char *bad[] = {
        "<a><b></a>",       /* mismatched tag */
        "<a>",              /* no end */
        "",                 /* no element */
        "<a x=1/>",         /* unquoted attribute */
        "<a/><b/>",         /* two roots */
        "<a>&nosuch;</a>",  /* undefined entity */
        "<a>\xff\xfe</a>",  /* not UTF-8 */
        "{\"json\": true}", /* not XML at all */
    };
    char err[128];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct seen s = {0};
        err[0] = '\0';
        assert_int_equal(parse(bad[i], &s, err, sizeof(err)), DST_EINVAL);
        assert_non_null(strstr(err, "line 1, column "));
    }
    struct seen s = {0};
    assert_int_equal(parse("<a>\n<b></a>", &s, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "line 2, column 6: mismatched tag");
}

static void dtd_and_entities_are_refused(void **state)
{
    /* "billion laughs": a tiny document whose entities expand to gigabytes */
    const char *doc = "<?xml version=\"1.0\"?>\n"
                      "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
                      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
                      "<lolz>&lol3;</lolz>";
    struct seen s = {0};
    char err[128];

    (void)state;
    assert_int_equal(parse(doc, &s, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "DTDs are not accepted"));
    assert_int_equal(s.count, 0);
    assert_int_equal(parse("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>", &s, err, sizeof(err)),
                     DST_EINVAL);
}

static void deep_nesting_is_bounded(void **state)
{
    size_t depth = 100000;
    char *doc = dst_xmalloc(depth * 7 + 1);
    char *p = doc;
    struct seen s = {0};
    char err[128];

    (void)state;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "<a>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "</a>");
    assert_int_equal(parse(doc, &s, err, sizeof(err)), DST_ETOOBIG);
    assert_int_equal(s.count, DST_XML_MAX_DEPTH);
    assert_non_null(strstr(err, "nested too deep"));
    free(doc);
}

static int count_only(void *ud, const char *name, const char **attrs, int depth)
{
    (void)name;
    (void)attrs;
    (void)depth;
    (*(long *)ud)++;
    return 0;
}

static void huge_input(void **state)
{
    /* just under the cap: parses, every element seen */
    const char *el = "<s lat=\"1.5\" lon=\"2.5\" id=\"12345\"/>\n";
    size_t ellen = strlen(el), n = (DST_XML_MAX_INPUT - 32) / ellen;
    char *doc = dst_xmalloc(DST_XML_MAX_INPUT + 2);
    size_t len = 0;
    long count = 0;
    char err[128] = "";

    (void)state;
    memcpy(doc, "<list>", 6);
    len = 6;
    for (size_t i = 0; i < n; i++, len += ellen)
        memcpy(doc + len, el, ellen);
    memcpy(doc + len, "</list>", 7);
    len += 7;
    assert_true(len <= DST_XML_MAX_INPUT);
    assert_int_equal(dst_xml_parse(doc, len, count_only, &count, err, sizeof(err)), 0);
    assert_int_equal(count, (long)n + 1);
    /* one byte over the cap: refused before parsing */
    memset(doc + len, ' ', DST_XML_MAX_INPUT + 1 - len);
    count = 0;
    assert_int_equal(
        dst_xml_parse(doc, DST_XML_MAX_INPUT + 1, count_only, &count, err, sizeof(err)),
        DST_ETOOBIG);
    assert_int_equal(count, 0);
    assert_non_null(strstr(err, "over the"));
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(elements_and_attributes),
        cmocka_unit_test(attribute_values_are_decoded),
        cmocka_unit_test(callback_stops_the_parse),
        cmocka_unit_test(malformed_is_einval_with_position),
        cmocka_unit_test(dtd_and_entities_are_refused),
        cmocka_unit_test(deep_nesting_is_bounded),
        cmocka_unit_test(huge_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
