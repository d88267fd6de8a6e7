/* speedtest.c - the legacy speedtest.net / Speedtest Mini HTTP protocol of the test server */

/*
 * What a legacy speedtest.net server and the Speedtest Mini kit serve, as speedtest-cli 2.1.3
 * (plain and --mini) and the original apps use it; every path also answers under /mini:
 *
 *   /, /index.html, /mini, /mini/, /mini/index.html   the Mini page; speedtest-cli --mini finds
 *                                       the upload extension in it (uploadExtension: "php")
 *   GET  /speedtest/latency.txt          "test=test\n"
 *   GET  /speedtest/random{N}x{N}.jpg    incompressible bytes, the legacy sizes below: slices of
 *                                        the shared payload, no copy
 *   POST /speedtest/upload.{php,asp,aspx,jsp}, /upload.php   body read and dropped (up to
 *                                        --max-bytes, else 413), answer "size=N", N bytes read
 *   GET  of the same                     "size=0" (the --mini probe)
 *   /speedtest-config.php, /speedtest-servers[-static].php (also under /speedtest/)   the
 *        offline answers speedtest-cli needs before any test: the client (its address, and the
 *        configured client location and ISP), the legacy test parameters, and this server.
 *
 * speedtest-cli fetches the config through http_proxy as an absolute-form request and probes
 * "/mini//speedtest/upload.php"; the router strips the scheme and host and collapses slashes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/mem.h"
#include "speedtest/server/http_shared.h"
#include "speedtest/server/server_priv.h"

#define PROTO "speedtest"

/*
 * The legacy Mini kit's random{N}x{N}.jpg sizes. Public stand-ins of it list the same table: a
 * Go test server's size map and the README of a speedtest.net content-server image (found by
 * searching public code for "random4000x4000.jpg"/"31625365"); 4 times their sum is the
 * 409,373,932 bytes speedtest-cli reported against the Mini kit (research/perf-notes.md §5).
 */
static const struct {
    int n;
    size_t size;
} files[] = {
    {350, 245388},   {500, 505544},    {750, 1118012},   {1000, 1986284},  {1500, 4468241},
    {2000, 7907740}, {2500, 12407926}, {3000, 17816816}, {3500, 24262167}, {4000, 31625365},
};

static const char page_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head><meta charset=\"utf-8\"><title>dstmc speed test server</title></head>\n"
    "<body>\n"
    "<h1>dstmc speed test server</h1>\n"
    "<p>A Speedtest Mini compatible server: point <code>speedtest-cli --mini</code> at this "
    "page. LibreSpeed clients use <code>garbage</code>, <code>empty</code> and "
    "<code>getIP</code> here.</p>\n"
    "<script>\n"
    "var miniSettings = {\n"
    "    uploadExtension: \"php\",\n"
    "    latencyUrl: \"speedtest/latency.txt\",\n"
    "    downloadUrl: \"speedtest/random4000x4000.jpg\"\n"
    "};\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

/* The protocol's state, the proto of its routes; freed with the HTTP server. */
struct speedtest {
    const struct server_cfg *cfg;
    struct server_route page, latency, download, upload, probe, config, servers;
};

static const struct speedtest *state(void *ud)
{
    return ((const struct server_route *)ud)->proto;
}

static void get_page(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/html; charset=utf-8", page_html, sizeof(page_html) - 1);
}

static void get_latency(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain", "test=test\n", 10);
}

/* The size of a legacy file name ("random350x350.jpg"), or 0 if it is none. */
static size_t file_size(const char *name)
{
    char want[32];

    for (size_t i = 0; name && i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(want, sizeof(want), "random%dx%d.jpg", files[i].n, files[i].n);
        if (strcasecmp(name, want) == 0)
            return files[i].size;
    }
    return 0;
}

static void get_random(struct dst_http_req *req, void *ud)
{
    (void)ud;
    size_t size = file_size(dst_http_req_param(req, "file"));

    if (!size) {
        dst_http_reply_error(req, 404, "no such resource: %s", dst_http_req_path(req));
        return;
    }
    server_payload_reply(req, "image/jpeg", size);
}

/* The body was read and dropped (DST_HTTP_BODY_DISCARD); tell how much there was. */
static void post_upload(struct dst_http_req *req, void *ud)
{
    char out[32];
    int n = snprintf(out, sizeof(out), "size=%" PRIu64, dst_http_req_body_bytes(req));

    (void)ud;
    dst_http_reply(req, 200, "text/plain", out, (size_t)n);
}

static void get_upload(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain", "size=0", 6);
}

/* Appends ` name="value"` with value escaped for an XML attribute. */
static void put_attr(struct dst_buf *b, const char *name, const char *value)
{
    dst_buf_printf(b, " %s=\"", name);
    for (const char *p = value; *p; p++) {
        switch (*p) {
        case '&':
            dst_buf_puts(b, "&amp;");
            break;
        case '<':
            dst_buf_puts(b, "&lt;");
            break;
        case '>':
            dst_buf_puts(b, "&gt;");
            break;
        case '"':
            dst_buf_puts(b, "&quot;");
            break;
        default:
            dst_buf_append(b, p, 1);
        }
    }
    dst_buf_puts(b, "\"");
}

static void put_num(struct dst_buf *b, const char *name, double v)
{
    char s[32];

    snprintf(s, sizeof(s), "%.4f", v);
    put_attr(b, name, s);
}

static void reply_xml(struct dst_http_req *req, struct dst_buf *b)
{
    size_t len = 0;
    char *body = dst_buf_detach(b, &len);

    dst_http_add_header(req, "Cache-Control", "no-cache");
    dst_http_reply_take(req, 200, "text/xml; charset=utf-8", body, len);
}

/* speedtest-config.php: the client as we see it, and the legacy speedtest.net test settings. */
static void get_config(struct dst_http_req *req, void *ud)
{
    const struct server_cfg *c = state(ud)->cfg;
    struct dst_buf b;
    char ip[64];

    server_client_ip(req, ip, sizeof(ip));
    dst_buf_init(&b, 0);
    dst_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<settings>\n<client");
    put_attr(&b, "ip", ip);
    put_num(&b, "lat", c->client_lat);
    put_num(&b, "lon", c->client_lon);
    put_attr(&b, "isp", c->isp);
    dst_buf_puts(&b,
                 " isprating=\"3.7\" rating=\"0\" ispdlavg=\"0\" ispulavg=\"0\" loggedin=\"0\"");
    put_attr(&b, "country", c->cc);
    dst_buf_puts(&b,
                 "/>\n"
                 "<server-config threadcount=\"4\" ignoreids=\"\" notonmap=\"\" forcepingid=\"\" "
                 "preferredserverid=\"\"/>\n"
                 "<download testlength=\"10\" initialtest=\"250K\" mintestsize=\"250K\" "
                 "threadsperurl=\"4\"/>\n"
                 "<upload testlength=\"10\" ratio=\"5\" initialtest=\"0\" mintestsize=\"32K\" "
                 "threads=\"2\" maxchunksize=\"512K\" maxchunkcount=\"50\" threadsperurl=\"4\"/>\n"
                 "<latency testlength=\"10\" waittime=\"50\" timeout=\"20\"/>\n"
                 "</settings>\n");
    reply_xml(req, &b);
}

/*
 * Where clients reach us: --public-url (its scheme://host:port, any path kept), else the local
 * address this client connected to. *host gets the "host:port" part. Both are the caller's to
 * free: an URL of any length is given whole.
 */
static char *base_url(struct dst_http_req *req, const char *public_url, char **host)
{
    char local[80];

    if (*public_url) {
        const char *h = strstr(public_url, "://");
        size_t n = strlen(public_url);
        h = h ? h + 3 : public_url;
        while (n > 0 && public_url[n - 1] == '/')
            n--;
        *host = dst_xstrndup(h, strcspn(h, "/?#"));
        return dst_xstrndup(public_url, n);
    }
    if (dst_http_req_local_addr(req, local, sizeof(local)) != 0)
        snprintf(local, sizeof(local), "127.0.0.1:80");
    *host = dst_xstrdup(local);
    return dst_xasprintf("http://%s", local);
}

/* speedtest-servers.php: a list of one, this server. */
static void get_servers(struct dst_http_req *req, void *ud)
{
    const struct server_cfg *c = state(ud)->cfg;
    struct dst_buf b;
    char id[24], *host = NULL;
    char *base = base_url(req, c->public_url, &host);
    char *url = dst_xasprintf("%s/speedtest/upload.php", base);

    snprintf(id, sizeof(id), "%ld", c->id);
    dst_buf_init(&b, 0);
    dst_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<settings>\n<servers>\n<server");
    put_attr(&b, "url", url);
    put_num(&b, "lat", c->lat);
    put_num(&b, "lon", c->lon);
    put_attr(&b, "name", c->name);
    put_attr(&b, "country", c->country);
    put_attr(&b, "cc", c->cc);
    put_attr(&b, "sponsor", c->sponsor);
    put_attr(&b, "id", id);
    put_attr(&b, "host", host);
    dst_buf_puts(&b, "/>\n</servers>\n</settings>\n");
    reply_xml(req, &b);
    free(url);
    free(base);
    free(host);
}

static void speedtest_free(void *p)
{
    server_payload_release(NULL);
    free(p);
}

/* The routes of one place the kit lives at: "" (the server's root) or "/mini". */
static int mount_at(struct speedtest *st, struct dst_http_server *h, const char *at, size_t cap)
{
    static const char *const uploads[] = {"/speedtest/upload.php", "/speedtest/upload.asp",
                                          "/speedtest/upload.aspx", "/speedtest/upload.jsp",
                                          "/upload.php"};
    char p[64];
    int rc = 0;

    snprintf(p, sizeof(p), "%s/speedtest/latency.txt", at);
    rc = server_route_add(h, &st->latency, "GET", p, get_latency, 0, 0);
    for (size_t i = 0; i < sizeof(uploads) / sizeof(uploads[0]) && rc == 0; i++) {
        snprintf(p, sizeof(p), "%s%s", at, uploads[i]);
        rc = server_route_add(h, &st->upload, "POST", p, post_upload, DST_HTTP_BODY_DISCARD, cap);
        rc = rc ? rc : server_route_add(h, &st->probe, "GET", p, get_upload, 0, 0);
    }
    snprintf(p, sizeof(p), "%s/speedtest/{file}", at);
    rc = rc ? rc : server_route_add(h, &st->download, "GET", p, get_random, 0, 0);
    return rc;
}

/* The offline config and server list, at the root and under /speedtest/. */
static int mount_offline(struct speedtest *st, struct dst_http_server *h)
{
    static const char *const servers[] = {"/speedtest-servers.php", "/speedtest-servers-static.php",
                                          "/speedtest/speedtest-servers.php",
                                          "/speedtest/speedtest-servers-static.php"};
    int rc = server_route_add(h, &st->config, "GET", "/speedtest-config.php", get_config, 0, 0);

    rc = rc ? rc
            : server_route_add(h, &st->config, "GET", "/speedtest/speedtest-config.php", get_config,
                               0, 0);
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]) && rc == 0; i++)
        rc = server_route_add(h, &st->servers, "GET", servers[i], get_servers, 0, 0);
    return rc;
}

static void route_init(struct server_route *r, struct server *s, const struct speedtest *st,
                       const char *kind, enum server_bytes payload)
{
    *r = (struct server_route){s, PROTO, kind, payload, st};
}

int server_speedtest_mount(struct server *s, struct dst_http_server *http)
{
    static const char *const pages[] = {"/", "/index.html", "/mini", "/mini/", "/mini/index.html"};
    struct speedtest *st = dst_xcalloc(1, sizeof(*st));
    size_t cap = (size_t)s->cfg.max_bytes;
    int rc = 0;

    server_payload_acquire();
    st->cfg = &s->cfg;
    dst_http_server_on_free(http, speedtest_free, st);
    route_init(&st->page, s, st, "page", SERVER_BYTES_NONE);
    route_init(&st->latency, s, st, "latency", SERVER_BYTES_NONE);
    route_init(&st->download, s, st, "download", SERVER_BYTES_OUT);
    route_init(&st->upload, s, st, "upload", SERVER_BYTES_IN);
    route_init(&st->probe, s, st, "probe", SERVER_BYTES_NONE);
    route_init(&st->config, s, st, "config", SERVER_BYTES_NONE);
    route_init(&st->servers, s, st, "servers", SERVER_BYTES_NONE);
    rc = mount_offline(st, http);
    rc = rc ? rc : mount_at(st, http, "", cap);
    rc = rc ? rc : mount_at(st, http, "/mini", cap);
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]) && rc == 0; i++)
        rc = server_route_add(http, &st->page, "GET", pages[i], get_page, 0, 0);
    return rc;
}
