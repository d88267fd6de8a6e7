/* seed.c - the original's Development-mode demo data (DummyDataSeeder.cs) */
#include <stdbool.h>
#include <stdlib.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/uuid.h"
#include "speedtest/api/api.h"

#define SEED_MINUTES (14 * 24 * 60) /* 14 days back from now */
#define SEED_STEP    15             /* one row every 15 minutes, both ends included */

/* Random.Next(lo, hi): an integer in [lo, hi). */
static int next(unsigned short xs[3], int lo, int hi)
{
    return lo + (int)(erand48(xs) * (hi - lo));
}

/* One seed row as DummyDataSeeder.cs builds it, dt minutes before now. */
static void seed_row(struct dst_result *r, int64_t now, int dt, unsigned short xs[3])
{
    dst_result_init(r);
    dst_uuid_new(r->id);
    r->time_ms = now - (int64_t)dt * 60 * 1000;
    dst_result_set(&r->user, "teodoran");
    dst_result_set(&r->probe, "teodoran");
    r->device = 3;
    r->download_bps = next(xs, 60, 100) * 1e6;
    r->upload_bps = next(xs, 5, 25) * 1e6;
    r->ping_ms = next(xs, 6, 20);
    dst_result_set(&r->client_ip, "127.0.0.1");
    r->client_lat = 59.913396;
    r->client_lon = 10.741330;
    dst_result_set(&r->client_isp, "UUNET");
    dst_result_set(&r->client_country, "Norway");
    dst_result_set(&r->server_host, "Norsk Data");
    r->server_lat = 59.902138;
    r->server_lon = 10.771267;
    dst_result_set(&r->server_country, "Norway");
    r->server_distance_m = 2430;
    r->server_id = 42;
    r->demo = true; /* marked, so "remove demo data" takes these and nothing else */
}

int api_seed_demo(struct dst_store *store)
{
    struct dst_store_query q;
    int64_t count = 0;
    size_t n = SEED_MINUTES / SEED_STEP + 1; /* 1345 */

    dst_store_query_init(&q);
    int rc = dst_store_count(store, &q, &count);
    if (rc || count > 0) {
        if (!rc)
            dst_info("seed-demo: the store holds %lld results already; not seeding",
                     (long long)count);
        return rc;
    }
    int64_t now = dst_datetime_now_ms();
    unsigned short xs[3] = {(unsigned short)now, (unsigned short)(now >> 16),
                            (unsigned short)(now >> 32)};
    struct dst_result *rs = dst_xcalloc(n, sizeof(*rs));
    for (size_t i = 0; i < n; i++)
        seed_row(&rs[i], now, (int)i * SEED_STEP, xs);
    rc = dst_store_insert(store, rs, n, NULL);
    for (size_t i = 0; i < n; i++)
        dst_result_release(&rs[i]);
    free(rs);
    if (rc == 0)
        dst_info("seed-demo: stored %zu demo results (every 15 minutes over 14 days)", n);
    return rc;
}
