/* xml.c - reading XML documents (expat): each element's name and attributes, in order */
#include "core/xml.h"

#include <expat.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

/* One parse: the caller's callback, the nesting depth and why it stopped, if it did. */
struct parse {
    XML_Parser p;
    dst_xml_element_fn fn;
    void *ud;
    int depth;
    int rc;          /* set when a handler stopped the parser */
    const char *why; /* the reason, when this file stopped it */
};

static void stop(struct parse *ps, int rc, const char *why)
{
    if (ps->rc == 0) {
        ps->rc = rc;
        ps->why = why;
        XML_StopParser(ps->p, XML_FALSE);
    }
}

static void on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
    struct parse *ps = arg;

    if (ps->rc)
        return;
    if (++ps->depth > DST_XML_MAX_DEPTH) {
        stop(ps, DST_ETOOBIG, "elements nested too deep");
        return;
    }
    int rc = ps->fn(ps->ud, name, attrs, ps->depth);
    if (rc)
        stop(ps, rc, NULL);
}

static void on_end(void *arg, const XML_Char *name)
{
    struct parse *ps = arg;

    (void)name;
    ps->depth--;
}

/* A document type declaration: refused, and with it every entity it could declare. */
static void on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                       const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    stop(arg, DST_EINVAL, "DTDs are not accepted");
}

/* Writes "line L, column C: reason" for the parser's position. */
static void explain(const struct parse *ps, const char *reason, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "line %lu, column %lu: %s",
             (unsigned long)XML_GetCurrentLineNumber(ps->p),
             (unsigned long)XML_GetCurrentColumnNumber(ps->p) + 1, reason);
}

int dst_xml_parse(const char *buf, size_t len, dst_xml_element_fn fn, void *ud, char *err,
                  size_t errlen)
{
    struct parse ps = {.fn = fn, .ud = ud};
    int rc = 0;

    if (len > DST_XML_MAX_INPUT) {
        snprintf(err, errlen, "document of %zu bytes is over the %u-byte limit", len,
                 DST_XML_MAX_INPUT);
        return DST_ETOOBIG;
    }
    ps.p = XML_ParserCreate("UTF-8");
    if (!ps.p) {
        snprintf(err, errlen, "expat: cannot create a parser");
        return DST_ENOMEM;
    }
    XML_SetUserData(ps.p, &ps);
    XML_SetElementHandler(ps.p, on_start, on_end);
    XML_SetStartDoctypeDeclHandler(ps.p, on_doctype);
    enum XML_Status st = XML_Parse(ps.p, buf, (int)len, XML_TRUE);
    if (ps.rc) {
        rc = ps.rc;
        if (ps.why)
            explain(&ps, ps.why, err, errlen);
    } else if (st != XML_STATUS_OK) {
        rc = DST_EINVAL;
        explain(&ps, XML_ErrorString(XML_GetErrorCode(ps.p)), err, errlen);
    }
    XML_ParserFree(ps.p);
    return rc;
}

const char *dst_xml_attr(const char **attrs, const char *name)
{
    for (int i = 0; attrs && attrs[i] && attrs[i + 1]; i += 2) {
        if (strcmp(attrs[i], name) == 0)
            return attrs[i + 1];
    }
    return NULL;
}
