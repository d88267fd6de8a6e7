/* fuzz_speedtest_xml.c - speedtest.net's config and server list, as speedtest://auto reads them */
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "core/result.h"
#include "core/uuid.h"
#include "fuzz.h"
#include "speedtest/engines/speedtest_priv.h"

/* The config used when the input is only a server list: a client in Oslo. */
static const char default_config[] =
    "<settings><client ip=\"10.0.0.1\" lat=\"59.91\" lon=\"10.75\" isp=\"UUNET\" "
    "country=\"NO\"/><server-config threadcount=\"4\" ignoreids=\"\"/>"
    "<upload ratio=\"5\" maxchunkcount=\"50\"/></settings>";

/* A result placed at server s as a test would report it: valid, and the same once posted. */
static void check_result(const struct server *s, const struct config *c)
{
    struct dst_result r, back;
    char err[256];

    dst_result_init(&r);
    dst_result_init(&back);
    dst_uuid_from_name("fuzz", r.id);
    dst_result_set(&r.probe, "probe");
    speedtest_result_place(&r, s, c);
    FUZZ_CHECK(dst_result_validate(&r, err, sizeof(err)) == 0);
    json_t *j = dst_result_to_json(&r);
    char *text = dst_json_dumps(j, NULL);
    FUZZ_CHECK(dst_result_from_json(j, &back, err, sizeof(err)) == 0);
    json_t *k = dst_result_to_json(&back);
    char *again = dst_json_dumps(k, NULL);
    FUZZ_CHECK(text && again && strcmp(text, again) == 0);
    FUZZ_CHECK((r.server_host == NULL) == (back.server_host == NULL));
    FUZZ_CHECK((r.server_name == NULL) == (back.server_name == NULL));
    FUZZ_CHECK((r.server_sponsor == NULL) == (back.server_sponsor == NULL));
    FUZZ_CHECK((r.client_isp == NULL) == (back.client_isp == NULL));
    free(again);
    free(text);
    json_decref(k);
    json_decref(j);
    dst_result_release(&back);
    dst_result_release(&r);
}

/*
 * The input is a config document, a NUL byte, and a server list (without the NUL: the list
 * alone, with a default config). The nearest servers kept are sorted, have an http URL, and
 * each makes a valid result with the config's client.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct list l = {.cfg = &c};
    char err[256];
    const uint8_t *nul = memchr(data, '\0', size);
    const char *cfg = nul ? (const char *)data : default_config;
    size_t cfg_len = nul ? (size_t)(nul - data) : strlen(default_config);
    const char *list = nul ? (const char *)nul + 1 : (const char *)data;
    size_t list_len = nul ? size - cfg_len - 1 : size;

    fuzz_init();
    speedtest_config_init(&c);
    if (speedtest_config_parse(cfg, cfg_len, &c, err, sizeof(err)) != 0 ||
        !isfinite(c.client.lat) || !isfinite(c.client.lon)) {
        speedtest_config_release(&c);
        return 0; /* the engine stops here: a config refused, or no client location */
    }
    FUZZ_CHECK(c.threadcount >= 1 && c.threadcount <= 16 && c.ratio >= 1 && c.ratio <= 7);
    FUZZ_CHECK(c.maxchunkcount >= 1 && c.maxchunkcount <= 1000);
    speedtest_servers_parse(list, list_len, &l, err, sizeof(err));
    FUZZ_CHECK(l.n >= 0 && l.n <= NEAREST);
    for (int i = 0; i < l.n; i++) {
        const struct server *s = &l.near[i];
        FUZZ_CHECK(strncmp(s->url, "http", 4) == 0 && isfinite(s->dist_km));
        FUZZ_CHECK(i == 0 || l.near[i - 1].dist_km <= s->dist_km);
        check_result(s, &c);
    }
    speedtest_config_release(&c);
    return 0;
}
