/* xml.h - reading XML documents (expat): each element's name and attributes, in order */
#ifndef DST_XML_H
#define DST_XML_H

#include <stddef.h>

#define DST_XML_MAX_INPUT (16u * 1024 * 1024) /* bytes; longer documents are refused */
#define DST_XML_MAX_DEPTH 64                  /* element nesting */

/*
 * Called for each element start, in document order. name is the element's name; attrs holds
 * name/value pairs ("lat", "59.9", "lon", "10.7", NULL); depth is 1 for the root. Everything is
 * borrowed for the call only. Return 0 to go on; anything else stops the parse, and
 * dst_xml_parse returns that value.
 */
typedef int (*dst_xml_element_fn)(void *ud, const char *name, const char **attrs, int depth);

/*
 * Parses the document buf[0..len) and calls fn for every element. Text and end tags are not
 * reported. Entities and DTDs are refused (no document this project reads has them, and they
 * are the way to make a small document huge). Returns 0, fn's non-zero value, DST_ETOOBIG past
 * DST_XML_MAX_INPUT or DST_XML_MAX_DEPTH, or DST_EINVAL when the document is not well-formed;
 * err then says why and where, e.g. "line 3, column 7: mismatched tag". Blocks only on the CPU.
 */
int dst_xml_parse(const char *buf, size_t len, dst_xml_element_fn fn, void *ud, char *err,
                  size_t errlen);

/* The value of attribute name in attrs (as passed to a dst_xml_element_fn), or NULL. */
const char *dst_xml_attr(const char **attrs, const char *name);

#endif
