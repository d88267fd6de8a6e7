/* http_client.c - HTTP client calls (libcurl) with deadlines and body caps */
#include "core/http_client.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/curl_lib.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_MAX_BODY   (16u * 1024 * 1024)

struct dst_http_client {
    CURL *h; /* kept between calls: its connection cache makes keep-alive work */
    char errbuf[CURL_ERROR_SIZE];
};

/* The body being received, with its cap. */
struct sink {
    struct dst_buf buf;
    bool over;
};

/*
 * libcurl is loaded and initialised on first use, not at start. Most services never call out,
 * and linking libcurl would load its whole dependency tree (OpenSSL, Kerberos, LDAP, libssh2:
 * about 3 MiB resident) into every process of this multi-call binary; curl_global_init also
 * initialises OpenSSL through libssh2. The table of the few functions used (curl_lib.h) is
 * shared with transfer*.c.
 */
struct dst_curl_lib dst_curl;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static atomic_int init_rc = 1; /* 1: not tried yet */

/* Resolves one symbol into *slot; false (and logs dlerror) if missing. */
static bool sym(void *handle, const char *name, void *slot)
{
    void *p = dlsym(handle, name);
    if (!p) {
        dst_error("libcurl: %s", dlerror());
        return false;
    }
    memcpy(slot, &p, sizeof(p));
    return true;
}

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        dst_error("cannot load libcurl: %s", dlerror());
        atomic_store(&init_rc, DST_EDEP);
        return;
    }
    bool ok = sym(h, "curl_easy_init", &dst_curl.easy_init) &&
              sym(h, "curl_easy_cleanup", &dst_curl.easy_cleanup) &&
              sym(h, "curl_easy_reset", &dst_curl.easy_reset) &&
              sym(h, "curl_easy_setopt", &dst_curl.easy_setopt) &&
              sym(h, "curl_easy_getinfo", &dst_curl.easy_getinfo) &&
              sym(h, "curl_easy_perform", &dst_curl.easy_perform) &&
              sym(h, "curl_easy_strerror", &dst_curl.easy_strerror) &&
              sym(h, "curl_slist_append", &dst_curl.slist_append) &&
              sym(h, "curl_slist_free_all", &dst_curl.slist_free_all) &&
              sym(h, "curl_global_init", &dst_curl.global_init) &&
              sym(h, "curl_global_cleanup", &dst_curl.global_cleanup) &&
              sym(h, "curl_multi_init", &dst_curl.multi_init) &&
              sym(h, "curl_multi_cleanup", &dst_curl.multi_cleanup) &&
              sym(h, "curl_multi_add_handle", &dst_curl.multi_add_handle) &&
              sym(h, "curl_multi_remove_handle", &dst_curl.multi_remove_handle) &&
              sym(h, "curl_multi_perform", &dst_curl.multi_perform) &&
              sym(h, "curl_multi_poll", &dst_curl.multi_poll) &&
              sym(h, "curl_multi_info_read", &dst_curl.multi_info_read) &&
              sym(h, "curl_multi_strerror", &dst_curl.multi_strerror) &&
              sym(h, "curl_multi_wakeup", &dst_curl.multi_wakeup) &&
              sym(h, "curl_multi_setopt", &dst_curl.multi_setopt) &&
              sym(h, "curl_easy_pause", &dst_curl.easy_pause);
    if (ok && dst_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dst_error("libcurl: curl_global_init failed");
        ok = false;
    }
    atomic_store(&init_rc, ok ? 0 : DST_EDEP); /* the handle stays open for the process */
}

int dst_curl_load(void)
{
    pthread_once(&init_once, load);
    return atomic_load(&init_rc);
}

void dst_http_client_global_cleanup(void)
{
    if (atomic_load(&init_rc) == 0)
        dst_curl.global_cleanup();
}

int dst_http_client_new(struct dst_http_client **out)
{
    if (dst_curl_load() != 0)
        return DST_EDEP;
    struct dst_http_client *c = dst_xnew(struct dst_http_client);

    c->h = dst_curl.easy_init();
    if (!c->h) {
        free(c);
        return DST_EDEP;
    }
    *out = c;
    return 0;
}

void dst_http_client_free(struct dst_http_client *c)
{
    if (!c)
        return;
    dst_curl.easy_cleanup(c->h);
    free(c);
}

void dst_http_resp_release(struct dst_http_resp *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;

    if (dst_buf_append(&s->buf, p, size * n) != 0) {
        s->over = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Appends "NAME: value" (any length: a token is never cut short) to list. */
static struct curl_slist *header_add(struct curl_slist *list, const char *name, const char *value)
{
    char *line = dst_xasprintf("%s%s", name, value);

    list = dst_curl.slist_append(list, line);
    free(line);
    return list;
}

/* Request headers of call; NULL when none. */
static struct curl_slist *headers(const struct dst_http_call *call)
{
    struct curl_slist *list = NULL;

    if (call->bearer)
        list = header_add(list, "Authorization: Bearer ", call->bearer);
    if (call->content_type)
        list = header_add(list, "Content-Type: ", call->content_type);
    if (call->idempotency_key)
        list = header_add(list, "Idempotency-Key: ", call->idempotency_key);
    if (call->body)
        list = dst_curl.slist_append(list, "Expect:"); /* no 100-continue round trip */
    return list;
}

/* Sets method, body and limits of one call on a freshly reset handle. */
static void setup(struct dst_http_client *c, const struct dst_http_call *call, struct sink *s,
                  struct curl_slist *hdrs)
{
    CURL *h = c->h;
    long timeout = call->timeout_ms > 0 ? call->timeout_ms : DEFAULT_TIMEOUT_MS;
    long connect = call->connect_timeout_ms > 0 ? call->connect_timeout_ms : DEFAULT_CONNECT_MS;
    const char *method = call->method ? call->method : "GET";

    if (connect > timeout)
        connect = timeout;
    dst_curl.easy_setopt(h, CURLOPT_URL, call->url);
    dst_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    dst_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    dst_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    dst_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect);
    dst_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    dst_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    dst_curl.easy_setopt(h, CURLOPT_WRITEDATA, s);
    dst_curl.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->buf.max);
    dst_curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (call->body) {
        size_t len = call->body_len ? call->body_len : strlen(call->body);
        dst_curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        dst_curl.easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
    }
    if (strcmp(method, "HEAD") == 0)
        dst_curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || call->body)
        dst_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

/* Maps a curl failure to a code and copies its message. */
static int fail(struct dst_http_client *c, CURLcode cc, const struct sink *s,
                struct dst_http_resp *resp)
{
    if (s->over || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(resp->err, sizeof(resp->err), "response body over %zu bytes", s->buf.max);
        return DST_ETOOBIG;
    }
    snprintf(resp->err, sizeof(resp->err), "%s",
             c->errbuf[0] ? c->errbuf : dst_curl.easy_strerror(cc));
    return cc == CURLE_OPERATION_TIMEDOUT ? DST_ETIMEDOUT : DST_EDEP;
}

int dst_http_client_do(struct dst_http_client *c, const struct dst_http_call *call,
                       struct dst_http_resp *resp)
{
    struct sink s = {.over = false};
    struct curl_slist *hdrs = NULL;
    char *ctype = NULL;
    int rc = 0;

    memset(resp, 0, sizeof(*resp));
    dst_buf_init(&s.buf, call->max_body ? call->max_body : DEFAULT_MAX_BODY);
    if (!call->url) {
        snprintf(resp->err, sizeof(resp->err), "no URL");
        return DST_EINVAL;
    }
    hdrs = headers(call);
    dst_curl.easy_reset(c->h); /* keeps the connection cache */
    c->errbuf[0] = '\0';
    setup(c, call, &s, hdrs);
    CURLcode cc = dst_curl.easy_perform(c->h);
    dst_curl.easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cc != CURLE_OK) {
        rc = fail(c, cc, &s, resp);
        goto out;
    }
    if (dst_curl.easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
        snprintf(resp->ctype, sizeof(resp->ctype), "%s", ctype);
    resp->body = dst_buf_detach(&s.buf, &resp->len);
out:
    dst_buf_release(&s.buf);
    dst_curl.slist_free_all(hdrs);
    return rc;
}

/* A streamed body: handed on as it comes (dst_http_client_stream). */
struct stream_sink {
    CURL *h;
    dst_http_data_fn fn;
    void *ud;
    bool stopped; /* fn said stop, or the status is not 200 */
};

static size_t on_stream_data(char *p, size_t size, size_t n, void *arg)
{
    struct stream_sink *s = arg;
    long status = 0;

    dst_curl.easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !s->fn(s->ud, p, size * n)) {
        s->stopped = true;
        return 0;
    }
    return size * n;
}

static int on_stream_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct stream_sink *s = arg;

    (void)dt, (void)dn, (void)ut, (void)un;
    if (!s->stopped && !s->fn(s->ud, NULL, 0))
        s->stopped = true;
    return s->stopped; /* nonzero: curl ends the call (CURLE_ABORTED_BY_CALLBACK) */
}

int dst_http_client_stream(struct dst_http_client *c, const struct dst_http_call *call,
                           dst_http_data_fn fn, void *ud, struct dst_http_resp *resp)
{
    struct sink unused = {.over = false};
    struct stream_sink ss = {.h = c->h, .fn = fn, .ud = ud};
    struct dst_http_call whole = *call;
    struct curl_slist *hdrs = NULL;
    int rc = 0;

    memset(resp, 0, sizeof(*resp));
    dst_buf_init(&unused.buf, 1);
    if (!call->url) {
        snprintf(resp->err, sizeof(resp->err), "no URL");
        return DST_EINVAL;
    }
    hdrs = headers(call);
    dst_curl.easy_reset(c->h);
    c->errbuf[0] = '\0';
    whole.timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : DEFAULT_CONNECT_MS;
    setup(c, &whole, &unused, hdrs);
    dst_curl.easy_setopt(c->h, CURLOPT_TIMEOUT_MS, call->timeout_ms > 0 ? call->timeout_ms : 0L);
    dst_curl.easy_setopt(c->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
    dst_curl.easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_stream_data);
    dst_curl.easy_setopt(c->h, CURLOPT_WRITEDATA, &ss);
    dst_curl.easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    dst_curl.easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
    dst_curl.easy_setopt(c->h, CURLOPT_XFERINFODATA, &ss);
    if (call->idle_ms > 0) {
        dst_curl.easy_setopt(c->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        dst_curl.easy_setopt(c->h, CURLOPT_LOW_SPEED_TIME, (call->idle_ms + 999) / 1000);
    }
    CURLcode cc = dst_curl.easy_perform(c->h);
    dst_curl.easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cc != CURLE_OK && !ss.stopped)
        rc = fail(c, cc, &unused, resp);
    dst_buf_release(&unused.buf);
    dst_curl.slist_free_all(hdrs);
    return rc;
}

int dst_http_do(const struct dst_http_call *call, struct dst_http_resp *resp)
{
    struct dst_http_client *c = NULL;
    int rc = dst_http_client_new(&c);

    if (rc) {
        memset(resp, 0, sizeof(*resp));
        snprintf(resp->err, sizeof(resp->err), "cannot create a curl handle");
        return rc;
    }
    rc = dst_http_client_do(c, call, resp);
    dst_http_client_free(c);
    return rc;
}
