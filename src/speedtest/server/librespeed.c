/* librespeed.c - the LibreSpeed HTTP protocol of the test server */

/*
 * The back end LibreSpeed clients (the browser worker, librespeed-cli) talk to, as
 * librespeed/speedtest's PHP back end and librespeed/speedtest-go serve it; at / and under
 * /backend/, each name with and without ".php":
 *
 *   GET garbage?ckSize=N    N MiB of incompressible bytes (application/octet-stream, as a
 *                           download of random.dat, never cached): N slices of the shared
 *                           payload, no copy. Absent or empty ckSize: 4. Above 1024: 1024, as
 *                           LibreSpeed clamps (its clients ask for 100). Never more than
 *                           --max-bytes. 0, a sign or anything but digits: 400 (LibreSpeed
 *                           silently sends 4 MiB, or nothing; a clear error is easier to debug).
 *   GET|POST empty          the body read and dropped (up to --max-bytes, else 413); 200 with
 *                           an empty body on a kept-alive connection, never cached (ping,
 *                           upload)
 *   GET getIP               the client's address as plain text; with isp (isp=true):
 *                           {"processedString":"IP - ISP, CC","rawIspInfo":{...}} from the
 *                           configured ISP, country code and client location (no lookup; with
 *                           distance=km|mi the distance to this server as the PHP back end
 *                           rounds it), or "IP - private IPv4 access" etc. with rawIspInfo ""
 *                           for the addresses LibreSpeed labels. X-Forwarded-For counts only
 *                           from a loopback peer. (The PHP and Go back ends answer JSON even
 *                           without isp; LibreSpeed's clients read either.)
 *   cors (cors=true)        Access-Control-Allow-Origin: *, -Methods: GET, POST,
 *                           -Headers: Content-Encoding, Content-Type on any of them
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/http_server.h"
#include "core/mem.h"
#include "speedtest/server/http_shared.h"
#include "speedtest/server/server_priv.h"

#define PROTO      "librespeed"
#define MIB        ((size_t)1 << 20)
#define CK_DEFAULT 4
#define CK_MAX     1024

/* The protocol's state, the proto of its routes; freed with the HTTP server. */
struct librespeed {
    const struct server_cfg *cfg;
    long max_chunks; /* --max-bytes in MiB */
    struct server_route download, upload, ping, ip;
};

static const struct librespeed *state(void *ud)
{
    return ((const struct server_route *)ud)->proto;
}

/* The headers every LibreSpeed reply has: never cached, and CORS when the client asks. */
static void common_headers(struct dst_http_req *req)
{
    dst_http_add_header(req, "Cache-Control",
                        "no-store, no-cache, must-revalidate, max-age=0, s-maxage=0");
    dst_http_add_header(req, "Cache-Control", "post-check=0, pre-check=0");
    dst_http_add_header(req, "Pragma", "no-cache");
    if (dst_http_req_query(req, "cors")) {
        dst_http_add_header(req, "Access-Control-Allow-Origin", "*");
        dst_http_add_header(req, "Access-Control-Allow-Methods", "GET, POST");
        dst_http_add_header(req, "Access-Control-Allow-Headers", "Content-Encoding, Content-Type");
    }
}

/* The chunk count ckSize asks for (see the top of the file); -1 if it is not a count. */
static long chunks_wanted(const char *v)
{
    long n = 0;

    if (!v || !*v)
        return CK_DEFAULT;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (n <= CK_MAX) /* beyond, the value is clamped anyway: no overflow */
            n = n * 10 + (*p - '0');
    }
    if (n == 0)
        return -1;
    return n > CK_MAX ? CK_MAX : n;
}

static void get_garbage(struct dst_http_req *req, void *ud)
{
    const struct librespeed *ls = state(ud);
    long n = chunks_wanted(dst_http_req_query(req, "ckSize"));

    common_headers(req);
    if (n < 0) {
        dst_http_reply_error(req, 400, "ckSize must be a number of MiB from 1 to %d", CK_MAX);
        return;
    }
    if (n > ls->max_chunks)
        n = ls->max_chunks;
    dst_http_add_header(req, "Content-Description", "File Transfer");
    dst_http_add_header(req, "Content-Disposition", "attachment; filename=random.dat");
    dst_http_add_header(req, "Content-Transfer-Encoding", "binary");
    server_payload_reply(req, "application/octet-stream", (size_t)n * MIB);
}

/* The body, if any, was read and dropped (DST_HTTP_BODY_DISCARD). */
static void any_empty(struct dst_http_req *req, void *ud)
{
    (void)ud;
    common_headers(req);
    /*
     * No "Connection: keep-alive" header: libmicrohttpd refuses to be given one. It keeps the
     * connection open (HTTP/1.1 is persistent by default) and sends "Connection: Keep-Alive" to
     * HTTP/1.0 clients that ask for it.
     */
    dst_http_reply_static(req, 200, NULL, "", 0);
}

/* LibreSpeed's label for an address that no ISP lookup would know; NULL for others. */
static const char *special_label(const char *ip)
{
    unsigned char a[16];

    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        if (memcmp(a, one, 16) == 0)
            return "localhost IPv6 access";
        if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
            return "link-local IPv6 access";
        return (a[0] & 0xfe) == 0xfc ? "ULA IPv6 access" : NULL;
    }
    if (inet_pton(AF_INET, ip, a) != 1)
        return NULL;
    if (a[0] == 127)
        return "localhost IPv4 access";
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
        return "private IPv4 access";
    if (a[0] == 169 && a[1] == 254)
        return "link-local IPv4 access";
    return a[0] == 100 && (a[1] & 0xc0) == 64 ? "CGNAT IPv4 access" : NULL;
}

/* " (1230 km)" or " (<20 km)" as the PHP back end writes it; "" without a known unit. */
static void distance_text(const struct server_cfg *c, const char *unit, char *out, size_t len)
{
    double rad = M_PI / 180, d = 0;
    bool mi = unit && strcmp(unit, "mi") == 0;

    out[0] = '\0';
    if (!unit || (!mi && strcmp(unit, "km") != 0))
        return;
    d = sin(c->client_lat * rad) * sin(c->lat * rad) +
        cos(c->client_lat * rad) * cos(c->lat * rad) * cos((c->client_lon - c->lon) * rad);
    d = acos(d > 1 ? 1 : d < -1 ? -1 : d) / rad * 60 * 1.853; /* km */
    d = round((mi ? d / 1.609344 : d) / 10) * 10;
    if (d < (mi ? 15 : 20))
        snprintf(out, len, " (<%d %s)", mi ? 15 : 20, mi ? "mi" : "km");
    else
        snprintf(out, len, " (%.0f %s)", d, mi ? "mi" : "km");
}

/* getIP with isp: processedString and rawIspInfo from the configuration (no lookup). */
static json_t *isp_info(const struct server_cfg *c, const char *ip, const char *unit)
{
    const char *label = special_label(ip);
    char text[128], dist[32], loc[64];

    if (label) {
        snprintf(text, sizeof(text), "%s - %s", ip, label); /* both short: fits */
        return json_pack("{s:s,s:s}", "processedString", text, "rawIspInfo", "");
    }
    distance_text(c, unit, dist, sizeof(dist));
    snprintf(loc, sizeof(loc), "%.4f,%.4f", c->client_lat, c->client_lon); /* -90..90 etc. */
    /* --isp and --cc have any length: the text is built whole */
    char *whole = dst_xasprintf("%s - %s, %s%s", ip, c->isp, c->cc, dist);
    json_t *j =
        json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "processedString", whole,
                  "rawIspInfo", "ip", ip, "hostname", "", "city", "", "region", "", "country",
                  c->cc, "loc", loc, "org", c->isp, "postal", "", "timezone", "");
    free(whole);
    return j;
}

static void get_ip(struct dst_http_req *req, void *ud)
{
    char ip[64];
    json_t *j = NULL;

    server_client_ip(req, ip, sizeof(ip));
    common_headers(req);
    if (!dst_http_req_query(req, "isp")) {
        dst_http_reply(req, 200, "text/plain; charset=utf-8", ip, strlen(ip));
        return;
    }
    j = isp_info(state(ud)->cfg, ip, dst_http_req_query(req, "distance"));
    if (!j) { /* the configured ISP text is not UTF-8 */
        dst_http_reply_error(req, 500, "--isp or --cc is not valid UTF-8");
        return;
    }
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

static void librespeed_free(void *p)
{
    server_payload_release(NULL);
    free(p);
}

/* The four routes of one name ("garbage", ...) at one place ("" or "/backend"). */
static int mount_at(struct librespeed *ls, struct dst_http_server *h, const char *at, size_t cap)
{
    static const char *const exts[] = {"", ".php"};
    char p[64];
    int rc = 0;

    for (size_t i = 0; i < 2 && rc == 0; i++) {
        snprintf(p, sizeof(p), "%s/garbage%s", at, exts[i]);
        rc = server_route_add(h, &ls->download, "GET", p, get_garbage, 0, 0);
        snprintf(p, sizeof(p), "%s/empty%s", at, exts[i]);
        rc =
            rc ? rc
               : server_route_add(h, &ls->upload, "POST", p, any_empty, DST_HTTP_BODY_DISCARD, cap);
        rc = rc ? rc
                : server_route_add(h, &ls->ping, "GET", p, any_empty, DST_HTTP_BODY_DISCARD, cap);
        snprintf(p, sizeof(p), "%s/getIP%s", at, exts[i]);
        rc = rc ? rc : server_route_add(h, &ls->ip, "GET", p, get_ip, 0, 0);
    }
    return rc;
}

int server_librespeed_mount(struct server *s, struct dst_http_server *http)
{
    struct librespeed *ls = dst_xcalloc(1, sizeof(*ls));
    size_t cap = (size_t)s->cfg.max_bytes;
    int rc = 0;

    server_payload_acquire();
    ls->cfg = &s->cfg;
    ls->max_chunks = s->cfg.max_bytes / (long)MIB > 0 ? s->cfg.max_bytes / (long)MIB : 1;
    dst_http_server_on_free(http, librespeed_free, ls);
    ls->download = (struct server_route){s, PROTO, "download", SERVER_BYTES_OUT, ls};
    ls->upload = (struct server_route){s, PROTO, "upload", SERVER_BYTES_IN, ls};
    ls->ping = (struct server_route){s, PROTO, "ping", SERVER_BYTES_NONE, ls};
    ls->ip = (struct server_route){s, PROTO, "ip", SERVER_BYTES_NONE, ls};
    rc = mount_at(ls, http, "", cap);
    return rc ? rc : mount_at(ls, http, "/backend", cap);
}
