/* compat.h - the compatible face's parsing and formatting (compat.c, compat_dto.c) */
#ifndef DST_API_COMPAT_H
#define DST_API_COMPAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/datetime.h"
#include "core/result.h"

struct dst_http_qarg;
struct dst_store_query;

/* Model binders of ASP.NET Core 3.1 (invariant culture), as the original's queries use them. */
bool compat_parse_int(const char *s, int64_t *out);
bool compat_parse_double(const char *s, double *out);
bool compat_parse_date(const char *s, int64_t *ms_out);

/* Paginate.cs: skip and take from the optional From/To. */
void compat_paginate(bool has_from, int64_t from, bool has_to, int64_t to, int64_t *skip,
                     int64_t *take);

/*
 * Reads the original's query parameters (Filter.cs's filters, SortOn and SortOrder, From and
 * To) from the n decoded query args into q (initialised here; its text values point into
 * args). A value that does not parse adds the model binder's message to errors, an array per
 * key ({"From": ["The value 'x' is not valid for From."]}): the answer is then a 400.
 */
void compat_build_query(const struct dst_http_qarg *args, int n, json_t *errors,
                        struct dst_store_query *q);

/* The original's DateTime text: local time with offset, fraction trimmed. */
void compat_format_date(int64_t ms, char out[DST_DATETIME_LEN]);

/* A stored result as the original's camelCase TestResult; never NULL. */
json_t *compat_result_to_json(const struct dst_result *r);

/* Adds a message to errors[key], an array per key as ASP.NET's ModelState keeps them. */
void compat_error_add(json_t *errors, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Reads a POSTed TestResult (property names in any case, unknown ones ignored) and applies the
 * original's DataAnnotations. On success fills r (initialised by the caller) and returns 0; on
 * failure adds ModelState-style entries to errors ({"Data.Client.Country": ["..."]}) and returns
 * DST_EINVAL.
 */
int compat_parse_test_result(const char *body, size_t len, json_t *errors, struct dst_result *r);

#endif
