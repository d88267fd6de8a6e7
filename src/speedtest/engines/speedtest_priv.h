/* speedtest_priv.h - what the speedtest engine reads from speedtest.net's XML documents */
#ifndef DST_ENGINE_SPEEDTEST_PRIV_H
#define DST_ENGINE_SPEEDTEST_PRIV_H

/*
 * Private to the speedtest engine (speedtest.c, speedtest_xml.c) and its tests: the config
 * document (speedtest-config.php) and the server list (speedtest-servers*.php) taken apart,
 * without fetching them, so that they can be tested and fuzzed as bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/result.h"
#include "core/transfer.h"

#define NEAREST 5

/*
 * Texts from the config and the server list, as long as a result holds them (500 bytes; a
 * country 64 characters of up to 4 bytes): a longer one refuses the config or skips the server.
 */
#define TEXT_LEN    501
#define COUNTRY_LEN 257

struct client {
    char ip[64], isp[TEXT_LEN], country[COUNTRY_LEN];
    double lat, lon;
};

struct config {
    struct client client;
    long threadcount, ratio, maxchunkcount;
    char *ignoreids; /* owned; NULL for none */
    char err[200];   /* why the config was refused */
};

struct server {
    int64_t id;
    char url[DST_TRANSFER_MAX_URL - 64]; /* upload.php; the other files are beside it */
    char host[TEXT_LEN], name[TEXT_LEN], sponsor[TEXT_LEN], country[COUNTRY_LEN], cc[8];
    double lat, lon, dist_km, latency_ms, jitter_ms;
};

/* What the server list's parse fills: the nearest servers, nearest first. */
struct list {
    const struct config *cfg;
    struct server near[NEAREST];
    int n;
};

/* What a config holds before its document is read: no client location, the legacy defaults. */
void speedtest_config_init(struct config *c);
/* Frees what c owns; c can be read into again after speedtest_config_init. */
void speedtest_config_release(struct config *c);

/*
 * Reads the config document xml[0..len) into c: the client's address, ISP, country and
 * location; threadcount, ignoreids, the upload ratio and chunk count. An attribute that is not
 * what it should be (a latitude past 90, a threadcount of 17, an ISP too long for a result)
 * refuses the config. 0, or an error with a text for a person in err ("not XML: ..." or the
 * attribute refused).
 */
int speedtest_config_parse(const char *xml, size_t len, struct config *c, char *err, size_t errlen);

/*
 * Reads a server list document xml[0..len) into l (l->cfg set, l->n 0 to begin with): the
 * NEAREST servers nearest to the config's client, nearest first, leaving out those the config
 * ignores and those with an attribute that is not what it says (an http(s) URL, a whole id up
 * to 2^53, a location in range, texts a result holds). 0, or an error with its reason in err.
 */
int speedtest_servers_parse(const char *xml, size_t len, struct list *l, char *err, size_t errlen);

/*
 * Writes where a test ran into r: the server s (id, host, name, sponsor, country, location,
 * distance) and, with a config (may be NULL), the client as speedtest.net sees it.
 */
void speedtest_result_place(struct dst_result *r, const struct server *s, const struct config *cfg);

#endif
