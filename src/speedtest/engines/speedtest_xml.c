/* speedtest_xml.c - speedtest.net's config and server list, as the speedtest engine reads them */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/xml.h"
#include "speedtest/engines/speedtest_priv.h"

#define MAX_SERVER_ID DST_RESULT_INT_MAX /* 2^53: what a result's server.id holds */

/* Copies attribute name ("" when absent); false if it does not fit out. */
static bool copy_attr(char *out, size_t outlen, const char **attrs, const char *name)
{
    const char *v = dst_xml_attr(attrs, name);
    size_t n = v ? strlen(v) : 0;

    if (n >= outlen)
        return false;
    memcpy(out, v ? v : "", n + 1);
    return true;
}

/* Copies a country attribute: at most 64 characters, as a result holds it. */
static bool copy_country(char *out, size_t outlen, const char **attrs, const char *name)
{
    size_t chars = 0;

    if (!copy_attr(out, outlen, attrs, name))
        return false;
    for (const char *p = out; *p; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80; /* UTF-8 (expat's): lead bytes */
    return chars <= 64;
}

/* A number attribute within min..max: NAN when absent, false when present but not one. */
static bool num_attr(const char **attrs, const char *name, double min, double max, double *out)
{
    const char *v = dst_xml_attr(attrs, name);
    char *end = NULL;

    *out = NAN;
    if (!v)
        return true;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= min && d <= max)) /* NaN fails too */
        return false;
    *out = d;
    return true;
}

/* A whole-number attribute within min..max (which the caller keeps within long); as num_attr. */
static bool int_attr(const char **attrs, const char *name, long min, long max, long *out)
{
    double d = NAN;

    if (!num_attr(attrs, name, (double)min, (double)max, &d) || (!isnan(d) && d != floor(d)))
        return false;
    if (!isnan(d))
        *out = (long)d;
    return true;
}

/* Refuses the config: the attribute of element el is not what it should be. */
static int config_bad(struct config *c, const char *el, const char *attr, const char **attrs,
                      const char *want)
{
    snprintf(c->err, sizeof(c->err), "<%s %s=\"%.40s\">: %s", el, attr, dst_xml_attr(attrs, attr),
             want);
    return DST_EINVAL;
}

static int on_client(struct config *c, const char **attrs)
{
    struct client *cl = &c->client;

    if (!copy_attr(cl->ip, sizeof(cl->ip), attrs, "ip"))
        return config_bad(c, "client", "ip", attrs, "too long");
    if (!copy_attr(cl->isp, sizeof(cl->isp), attrs, "isp"))
        return config_bad(c, "client", "isp", attrs, "too long");
    if (!copy_country(cl->country, sizeof(cl->country), attrs, "country"))
        return config_bad(c, "client", "country", attrs, "too long");
    if (!num_attr(attrs, "lat", -90, 90, &cl->lat))
        return config_bad(c, "client", "lat", attrs, "not a latitude (-90 to 90)");
    if (!num_attr(attrs, "lon", -180, 180, &cl->lon))
        return config_bad(c, "client", "lon", attrs, "not a longitude (-180 to 180)");
    return 0;
}

static int on_config(void *ud, const char *name, const char **attrs, int depth)
{
    struct config *c = ud;

    (void)depth;
    if (strcmp(name, "client") == 0)
        return on_client(c, attrs);
    if (strcmp(name, "server-config") == 0) {
        if (!int_attr(attrs, "threadcount", 1, 16, &c->threadcount))
            return config_bad(c, name, "threadcount", attrs, "not a whole number from 1 to 16");
        free(c->ignoreids);
        c->ignoreids = dst_xstrdup(dst_xml_attr(attrs, "ignoreids")); /* NULL when absent */
    } else if (strcmp(name, "upload") == 0) {
        if (!int_attr(attrs, "ratio", 1, 7, &c->ratio))
            return config_bad(c, name, "ratio", attrs, "not a whole number from 1 to 7");
        if (!int_attr(attrs, "maxchunkcount", 1, 1000, &c->maxchunkcount))
            return config_bad(c, name, "maxchunkcount", attrs, "not a whole number from 1 to 1000");
    }
    return 0;
}

static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 6371 * 2 * atan2(sqrt(a), sqrt(1 - a));
}

/* A server id: digits only, at most MAX_SERVER_ID; -1 otherwise. */
static int64_t server_id(const char *v, size_t len)
{
    int64_t id = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || id > (MAX_SERVER_ID - (v[i] - '0')) / 10)
            return -1;
        id = id * 10 + (v[i] - '0');
    }
    return id;
}

/* Whether id is in the comma-separated list ids (NULL: none). */
static bool ignored(const char *ids, int64_t id)
{
    for (const char *p = ids; p && *p;) {
        size_t n = strcspn(p, ", ");
        if (n > 0 && server_id(p, n) == id)
            return true;
        p += n;
        p += strspn(p, ", ");
    }
    return false;
}

/* Keeps s if it is among the NEAREST nearest so far (near[] sorted by distance). */
static void keep_nearest(struct list *l, const struct server *s)
{
    int i = l->n;

    if (l->n == NEAREST) {
        if (s->dist_km >= l->near[NEAREST - 1].dist_km)
            return;
        i = NEAREST - 1; /* the farthest makes room */
    } else {
        l->n++;
    }
    for (; i > 0 && l->near[i - 1].dist_km > s->dist_km; i--)
        l->near[i] = l->near[i - 1];
    l->near[i] = *s;
}

/* A server of the list, or false when it is skipped: every attribute must be what it says. */
static bool read_server(const char **attrs, struct server *s)
{
    const char *url = dst_xml_attr(attrs, "url");
    const char *id = dst_xml_attr(attrs, "id");

    if (!url || !(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) ||
        strlen(url) >= sizeof(s->url) || !id)
        return false;
    s->id = server_id(id, strlen(id));
    memcpy(s->url, url, strlen(url) + 1);
    return s->id >= 0 && copy_attr(s->host, sizeof(s->host), attrs, "host") &&
           copy_attr(s->name, sizeof(s->name), attrs, "name") &&
           copy_attr(s->sponsor, sizeof(s->sponsor), attrs, "sponsor") &&
           copy_country(s->country, sizeof(s->country), attrs, "country") &&
           copy_country(s->cc, sizeof(s->cc), attrs, "cc") &&
           num_attr(attrs, "lat", -90, 90, &s->lat) && !isnan(s->lat) &&
           num_attr(attrs, "lon", -180, 180, &s->lon) && !isnan(s->lon);
}

static int on_server(void *ud, const char *name, const char **attrs, int depth)
{
    struct list *l = ud;
    struct server s = {.latency_ms = NAN, .jitter_ms = NAN};

    (void)depth;
    if (strcmp(name, "server") != 0 || !read_server(attrs, &s) || ignored(l->cfg->ignoreids, s.id))
        return 0;
    s.dist_km = haversine_km(l->cfg->client.lat, l->cfg->client.lon, s.lat, s.lon);
    if (isfinite(s.dist_km))
        keep_nearest(l, &s);
    return 0;
}

void speedtest_config_init(struct config *c)
{
    *c = (struct config){.client = {.lat = NAN, .lon = NAN}, .threadcount = 4, .ratio = 5};
    c->maxchunkcount = 50;
}

void speedtest_config_release(struct config *c)
{
    free(c->ignoreids);
    c->ignoreids = NULL;
}

/* dst_xml_parse of xml with fn; err says "not XML: why", or what fn refused (fn_err). */
static int parse(const char *xml, size_t len, dst_xml_element_fn fn, void *ud, const char *fn_err,
                 char *err, size_t errlen)
{
    char why[256] = "";
    int rc = dst_xml_parse(xml, len, fn, ud, why, sizeof(why));

    if (rc)
        snprintf(err, errlen, "%s%s", why[0] ? "not XML: " : "",
                 why[0]              ? why
                 : fn_err && *fn_err ? fn_err
                                     : "refused");
    return rc;
}

int speedtest_config_parse(const char *xml, size_t len, struct config *c, char *err, size_t errlen)
{
    c->err[0] = '\0';
    return parse(xml, len, on_config, c, c->err, err, errlen);
}

int speedtest_servers_parse(const char *xml, size_t len, struct list *l, char *err, size_t errlen)
{
    return parse(xml, len, on_server, l, NULL, err, errlen);
}
