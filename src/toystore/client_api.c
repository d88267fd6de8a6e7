/* client_api.c - the toy store front end's public API, as the client calls it */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "toystore/client_api.h"

#define MAX_BODY (64 * 1024) /* the API's answers are tens of bytes */

static void say(struct toyclient_answer *a, enum toyclient_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct toyclient_answer *a, enum toyclient_outcome o, const char *fmt, ...)
{
    va_list ap;

    a->outcome = o;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof(a->msg), fmt, ap);
    va_end(ap);
}

/* Appends s percent-encoded (all but RFC 3986's unreserved characters) to url. */
static void url_escape(char *url, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t at = strlen(url);

    for (; *s && at + 4 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch)) {
            url[at++] = (char)ch;
        } else {
            url[at++] = '%';
            url[at++] = hex[ch >> 4];
            url[at++] = hex[ch & 15];
        }
    }
    url[at] = '\0';
}

/* An error answer (status not 2xx): which kind, with its code and message when it has them. */
static void error_answer(struct toyclient_answer *a, const char *what,
                         const struct dst_http_resp *r, json_t *root)
{
    json_t *e = json_is_object(root) ? json_object_get(root, "error") : NULL;
    const char *m = json_string_value(json_object_get(e, "message"));

    if (m && strcasestr(m, "out of stock"))
        say(a, TOYCLIENT_OUT_OF_STOCK, "%s: %ld %s", what, r->status, m);
    else if (r->status == 404)
        say(a, TOYCLIENT_NOT_FOUND, "%s: 404 %s", what, m ? m : "(no error message)");
    else
        say(a, TOYCLIENT_REJECTED, "%s: %ld %s", what, r->status,
            m ? m : "(not the API's error JSON)");
}

/* json's integer member key into *out; false when missing or not an integer. */
static bool int_member(json_t *obj, const char *key, long long *out)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v))
        return false;
    *out = (long long)json_integer_value(v);
    return true;
}

/*
 * Makes the call and sorts out transport failures, error answers and bodies that are not JSON.
 * Returns the "data" object of a 2xx answer (borrowed from *root, which the caller frees), or
 * NULL with *a filled.
 */
static json_t *call(struct dst_http_client *c, const struct dst_http_call *hc, const char *what,
                    struct toyclient_answer *a, json_t **root)
{
    struct dst_http_resp r;
    char err[160] = "";
    json_t *data = NULL;

    int64_t t0 = dst_monotonic_us();
    int rc = dst_http_client_do(c, hc, &r);
    if (rc) {
        /* an answer over the cap came, but is not the API's: its few tens of bytes */
        say(a, rc == DST_ETOOBIG ? TOYCLIENT_BAD_REPLY : TOYCLIENT_TRANSPORT, "%s: %s", what,
            r.err[0] ? r.err : dst_strerror(rc));
        goto out;
    }
    a->ms = (double)(dst_monotonic_us() - t0) / 1000.0;
    *root = dst_json_parse(r.body ? r.body : "", r.len, err, sizeof(err));
    if (r.status < 200 || r.status > 299) {
        error_answer(a, what, &r, *root);
        goto out;
    }
    if (!*root) {
        say(a, TOYCLIENT_BAD_REPLY, "%s: %ld but the body is not JSON: %s", what, r.status, err);
        goto out;
    }
    data = json_object_get(*root, "data");
    if (!json_is_object(data)) {
        say(a, TOYCLIENT_BAD_REPLY, "%s: %ld without a \"data\" object", what, r.status);
        data = NULL;
    }
out:
    dst_http_resp_release(&r);
    return data;
}

static void answer_init(struct toyclient_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->ms = -1;
    a->outcome = TOYCLIENT_OK;
}

void toyclient_query(struct dst_http_client *c, const char *base, const char *toy, long timeout_ms,
                     struct toyclient_answer *a)
{
    char url[1024], what[200];
    json_t *root = NULL;

    answer_init(a);
    snprintf(url, sizeof(url), "%s/products/", base);
    url_escape(url, sizeof(url), toy);
    snprintf(what, sizeof(what), "GET /products/%s", toy);
    struct dst_http_call hc = {.url = url, .timeout_ms = timeout_ms, .max_body = MAX_BODY};
    json_t *data = call(c, &hc, what, a, &root);
    if (data && !int_member(data, "quantity", &a->quantity))
        say(a, TOYCLIENT_BAD_REPLY, "%s: no integer data.quantity", what);
    json_decref(root);
}

void toyclient_buy(struct dst_http_client *c, const char *base, const char *toy, long long quantity,
                   long timeout_ms, struct toyclient_answer *a)
{
    char url[1024], what[200];
    json_t *root = NULL;

    answer_init(a);
    snprintf(url, sizeof(url), "%s/orders", base);
    snprintf(what, sizeof(what), "POST /orders %s x%lld", toy, quantity);
    json_t *req = json_pack("{s:s, s:I}", "name", toy, "quantity", (json_int_t)quantity);
    char *body = dst_json_dumps(req, NULL);
    json_decref(req);
    struct dst_http_call hc = {.method = "POST",
                               .url = url,
                               .body = body,
                               .content_type = "application/json",
                               .timeout_ms = timeout_ms,
                               .max_body = MAX_BODY};
    json_t *data = call(c, &hc, what, a, &root);
    if (data && (!int_member(data, "order_number", &a->number) || a->number < 0))
        say(a, TOYCLIENT_BAD_REPLY, "%s: no order number (data.order_number >= 0)", what);
    json_decref(root);
    free(body);
}

void toyclient_order(struct dst_http_client *c, const char *base, long long number, long timeout_ms,
                     struct toyclient_answer *a)
{
    char url[1024], what[200];
    json_t *root = NULL;

    answer_init(a);
    snprintf(url, sizeof(url), "%s/orders/%lld", base, number);
    snprintf(what, sizeof(what), "GET /orders/%lld", number);
    struct dst_http_call hc = {.url = url, .timeout_ms = timeout_ms, .max_body = MAX_BODY};
    json_t *data = call(c, &hc, what, a, &root);
    const char *name = json_string_value(json_object_get(data, "name"));
    if (data && (!int_member(data, "number", &a->number) ||
                 !int_member(data, "quantity", &a->quantity) || !name))
        say(a, TOYCLIENT_BAD_REPLY, "%s: not {\"data\":{\"number\",\"name\",\"quantity\"}}", what);
    else if (data)
        snprintf(a->name, sizeof(a->name), "%s", name);
    json_decref(root);
}
