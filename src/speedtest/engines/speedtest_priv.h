/* speedtest_priv.h - what the speedtest engine reads from speedtest.net's XML documents */
#ifndef DST_ENGINE_SPEEDTEST_PRIV_H
#define DST_ENGINE_SPEEDTEST_PRIV_H

/*
 * Private to the speedtest engine (speedtest.c) and its tests: the config document
 * (speedtest-config.php) and the server list (speedtest-servers*.php) taken apart, without
 * fetching them, so that they can be tested and fuzzed as bytes.
 */

#include <stdbool.h>
#include <stddef.h>

#include "core/result.h"
#include "core/transfer.h"

#define NEAREST 5

struct client {
    char ip[64], isp[128], country[64];
    double lat, lon;
};

struct config {
    struct client client;
    long threadcount, ratio, maxchunkcount;
    char ignoreids[1024];
};

struct server {
    long id;
    char url[DST_TRANSFER_MAX_URL - 64]; /* upload.php; the other files are beside it */
    char host[300], name[300], sponsor[128], country[64], cc[8];
    double lat, lon, dist_km, latency_ms, jitter_ms;
};

/* What the XML callbacks fill: the config, or the nearest servers of a list. */
struct list {
    const struct config *cfg;
    struct server near[NEAREST];
    int n;
};

/* What a config holds before its document is read: no client location, the legacy defaults. */
void speedtest_config_init(struct config *c);

/*
 * Reads the config document xml[0..len) into c (the client's address, ISP, country and
 * location; threadcount, ignoreids, the upload ratio and chunk count when in range). 0, or
 * dst_xml_parse's error with its reason in err.
 */
int speedtest_config_parse(const char *xml, size_t len, struct config *c, char *err, size_t errlen);

/*
 * Reads a server list document xml[0..len) into l (l->cfg set, l->n 0 to begin with): the
 * NEAREST servers nearest to the config's client, nearest first, leaving out those the config
 * ignores and those without a usable URL. 0, or dst_xml_parse's error with its reason in err.
 */
int speedtest_servers_parse(const char *xml, size_t len, struct list *l, char *err, size_t errlen);

/*
 * Writes where a test ran into r: the server s (id, host, name, sponsor, country, location,
 * distance) and, with a config (may be NULL), the client as speedtest.net sees it.
 */
void speedtest_result_place(struct dst_result *r, const struct server *s, const struct config *cfg);

#endif
