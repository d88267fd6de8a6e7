/* common.c - what the fuzz targets share: input helpers */
#include "fuzz.h"

#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

void fuzz_init(void)
{
    static int done;

    if (done)
        return;
    done = 1;
    setenv("TZ", getenv("TZ") ? getenv("TZ") : "UTC", 1);
    dst_log_set_level(DST_LOG_DEBUG);
}

struct dst_store *fuzz_store(void)
{
    static struct dst_store *store;
    struct dst_result rs[6];

    if (store)
        return store;
    FUZZ_CHECK(dst_store_open("sqlite::memory:", &store) == 0);
    for (int i = 0; i < 6; i++) {
        struct dst_result *r = &rs[i];
        char name[32];
        dst_result_init(r);
        snprintf(name, sizeof(name), "fuzz-%d", i);
        dst_uuid_from_name(name, r->id);
        r->time_ms = 1767225600000LL + i * 3600 * 1000LL; /* 2026-01-01T00:00Z, hourly */
        dst_result_set(&r->probe, i % 2 ? "attic" : "cellar");
        dst_result_set(&r->user, "teodoran");
        dst_result_set(&r->engine, i % 3 ? "dummy" : "iperf3");
        r->device = i;
        r->download_bps = 1e6 * (60 + i);
        r->upload_bps = 1e6 * (5 + i);
        r->ping_ms = 6.5 + i;
        dst_result_set(&r->client_ip, "127.0.0.1");
        dst_result_set(&r->client_country, "NO");
        dst_result_set(&r->server_host, "speedtest.not");
        r->server_id = 42;
        if (i == 4) {
            r->status = DST_RESULT_FAILED;
            dst_result_set(&r->error, "refused: 127.0.0.1:5201");
        }
    }
    FUZZ_CHECK(dst_store_insert(store, rs, 6, NULL) == 0);
    for (int i = 0; i < 6; i++)
        dst_result_release(&rs[i]);
    return store;
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = dst_xmalloc(size + 1);

    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

char *fuzz_cut(char *s, char sep)
{
    char *p = strchr(s, sep);

    if (!p)
        return NULL;
    *p = '\0';
    return p + 1;
}

int fuzz_query(char *buf, struct dst_http_qarg *args, int max)
{
    int n = 0;
    char *p = buf;

    while (p && *p && n < max) {
        char *next = fuzz_cut(p, '&');
        char *v = fuzz_cut(p, '=');
        args[n++] = (struct dst_http_qarg){p, v ? v : ""};
        p = next;
    }
    return n;
}
