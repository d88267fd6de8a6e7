/* toystore.c - `dstmc toystore <service>`: the sub-dispatcher, and what the tiers share */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg_check.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/services.h"
#include "toystore/toystore.h"

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} services[] = {
    {"catalog", catalog_main, "the toys and their stock, in memory and in a file"},
    {"order", order_main, "buys through the catalog; the order log and its numbers"},
    {"frontend", frontend_main, "the public face: GET /products/NAME, POST /orders, GET /orders/N"},
    {"client", client_main, "the client and load generator: sessions, queries, buys, checks"},
    {"up", toystore_up_main, "the whole store on one machine: every tier a supervised child"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: dstmc toystore <service> [options]   (--help after it for its options)\n"
                 "\nservices:\n");
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        fprintf(out, "  %-9s %s\n", services[i].name, services[i].summary);
}

int toystore_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        if (strcmp(argv[1], services[i].name) == 0) {
            char component[32];
            snprintf(component, sizeof(component), "toystore %s", services[i].name);
            dst_log_init(component, DST_LOG_INFO);
            /* argv[1] becomes the service's argv[0]: "dstmc toystore catalog" in messages */
            return services[i].main(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "dstmc toystore: unknown service '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* ---- shared ---- */

static bool word(const char *s, size_t max)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= max)
            return false;
    }
    return n > 0;
}

bool ts_write_ok(struct dst_http_req *req)
{
    const char *ct = dst_http_req_header(req, "Content-Type");

    if (dst_http_req_foreign(req)) {
        dst_warn("refused %s %s from a page of another site (%s)", dst_http_req_method(req),
                 dst_http_req_path(req), dst_http_req_client_ip(req));
        ts_reply_error(req, 403, "refused: a write from a page of another site");
        return false;
    }
    if (!dst_http_json_ctype(ct)) {
        ts_reply_error(req, 415, "a write takes a JSON body: Content-Type: application/json");
        return false;
    }
    return true;
}

bool ts_name_valid(const char *s)
{
    return word(s, TS_NAME_MAX);
}

bool ts_reqid_valid(const char *s)
{
    return word(s, TS_REQID_MAX);
}

void ts_reply_error(struct dst_http_req *req, int status, const char *msg)
{
    dst_http_reply_error(req, status, "%s", msg); /* the servers' error_key is "code" */
}

void ts_reply_data(struct dst_http_req *req, json_t *data)
{
    json_t *j = json_pack("{s:o}", "data", data);

    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

static pthread_key_t client_key;
static pthread_once_t client_once = PTHREAD_ONCE_INIT;

static void client_free(void *p)
{
    dst_http_client_free(p);
}

static void client_key_make(void)
{
    pthread_key_create(&client_key, client_free);
}

struct dst_http_client *ts_client(void)
{
    struct dst_http_client *c = NULL;

    pthread_once(&client_once, client_key_make);
    c = pthread_getspecific(client_key);
    if (!c && dst_http_client_new(&c) == 0)
        pthread_setspecific(client_key, c);
    return c;
}

int ts_peer_parse(const char *s, long *id, char *url, size_t urllen, char *err, size_t errlen)
{
    char *end = NULL;
    const char *eq = strchr(s, '=');

    if (!eq || eq == s)
        return dst_errf(DST_EINVAL, err, errlen, "'%s' is not ID=URL", s);
    long v = strtol(s, &end, 10);
    if (end != eq || v < 0 || v > 1000000)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': the id must be a number 0..1000000", s);
    char why[200];
    if (dst_cfg_check_url(eq + 1, why, sizeof(why)) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': %s", s, why);
    if (strlen(eq + 1) >= urllen)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': the URL is too long", s);
    snprintf(url, urllen, "%s", eq + 1);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    *id = v;
    return 0;
}

/* One buy's members from the object j into b (see ts_buy_parse); at: "" or "buys[N]: ". */
static int buy_fields(const json_t *j, bool want_name, bool want_reqid, const char *at,
                      struct ts_buy *b, char *err, size_t errlen)
{
    const json_t *v = NULL;

    memset(b, 0, sizeof(*b));
    if (!json_is_object(j))
        return dst_errf(DST_EINVAL, err, errlen, "%s%s must be a JSON object", at,
                        at[0] ? "the buy" : "the body");
    v = json_object_get(j, "name");
    if (want_name &&
        (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > TS_NAME_MAX))
        return dst_errf(DST_EINVAL, err, errlen,
                        "%sname must be a non-empty string of at most %d characters", at,
                        TS_NAME_MAX);
    if (want_name) {
        snprintf(b->name, sizeof(b->name), "%s", json_string_value(v));
        b->unknown = !ts_name_valid(b->name) || strlen(b->name) != json_string_length(v);
    }
    v = json_object_get(j, "quantity");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > TS_QTY_MAX)
        return dst_errf(DST_EINVAL, err, errlen, "%squantity must be an integer from 1 to %d", at,
                        TS_QTY_MAX);
    b->quantity = (long)json_integer_value(v);
    v = json_object_get(j, "request_id");
    if ((v || want_reqid) && (!json_is_string(v) || !ts_reqid_valid(json_string_value(v))))
        return dst_errf(DST_EINVAL, err, errlen,
                        "%srequest_id must be 1 to %d letters, digits, '.', '_' or '-'", at,
                        TS_REQID_MAX);
    if (v)
        snprintf(b->request_id, sizeof(b->request_id), "%s", json_string_value(v));
    return 0;
}

int ts_buy_parse(const char *body, size_t len, bool want_name, bool want_reqid, struct ts_buy *b,
                 char *err, size_t errlen)
{
    char why[200];
    json_t *j = dst_json_parse(body, len, why, sizeof(why));

    memset(b, 0, sizeof(*b));
    if (!j)
        return dst_errf(DST_EINVAL, err, errlen, "the body is not JSON: %s", why);
    int rc = buy_fields(j, want_name, want_reqid, "", b, err, errlen);
    if (rc)
        memset(b, 0, sizeof(*b));
    json_decref(j);
    return rc;
}

int ts_buys_parse(const char *body, size_t len, struct ts_buy **out, int *n, char *err,
                  size_t errlen)
{
    char why[200], at[32];
    json_t *j = dst_json_parse(body, len, why, sizeof(why));
    const json_t *list = json_object_get(j, "buys");
    struct ts_buy *b = NULL;
    int rc = 0;

    if (!j)
        return dst_errf(DST_EINVAL, err, errlen, "the body is not JSON: %s", why);
    if (!json_is_object(j) || !json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > TS_BATCH_MAX) {
        rc = dst_errf(DST_EINVAL, err, errlen,
                      "the body must be {\"buys\":[{\"name\",\"quantity\",\"request_id\"},...]} "
                      "with 1 to %d buys",
                      TS_BATCH_MAX);
        goto out;
    }
    b = dst_xcalloc(json_array_size(list), sizeof(*b));
    for (size_t i = 0; i < json_array_size(list); i++) {
        snprintf(at, sizeof(at), "buys[%zu]: ", i);
        rc = buy_fields(json_array_get(list, i), true, false, at, &b[i], err, errlen);
        if (rc)
            goto out;
    }
    *out = b;
    *n = (int)json_array_size(list);
    b = NULL;
out:
    free(b);
    json_decref(j);
    return rc;
}
