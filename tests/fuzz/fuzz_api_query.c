/* fuzz_api_query.c - /api/v1 query strings: results, results.csv, series (speedtest/api/) */
#include <string.h>

#include "core/store.h"
#include "fuzz.h"
#include "speedtest/api/api_priv.h"

#define MAX_ARGS 64
#define NOW_MS   1767258000000LL /* 2026-01-01T09:00Z: "now" for the series' default range */

static int row(const struct dst_result *r, void *ud)
{
    json_t *j = dst_result_to_json(r);
    (*(int64_t *)ud)++;
    json_decref(j);
    return 0;
}

static void results(struct dst_http_qarg *args, int n, bool list)
{
    struct dst_store_query q;
    int64_t limit = 0, rows = 0;
    char err[512];

    if (api_results_query(args, n, list ? &limit : NULL, &q, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(!list || (limit >= 1 && limit <= 1000 && q.limit == limit + 1));
    FUZZ_CHECK(dst_store_query(fuzz_store(), &q, row, &rows) == 0);
    FUZZ_CHECK(q.limit <= 0 || rows <= q.limit);
}

static void series(struct dst_http_qarg *args, int n)
{
    struct dst_series_query q;
    struct dst_series_bucket *b = NULL;
    size_t nb = 0;
    char err[512];

    if (api_series_query(args, n, NOW_MS, &q, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(q.from_ms < q.to_ms && q.step_ms >= 1000);
    FUZZ_CHECK(q.from_ms >= API_TIME_MIN - q.step_ms && q.to_ms <= API_TIME_MAX);
    FUZZ_CHECK(dst_store_series(fuzz_store(), &q, &b, &nb) == 0);
    for (size_t i = 0; i < nb; i++)
        FUZZ_CHECK(b[i].ok + b[i].failed > 0);
    free(b);
}

/*
 * The first byte picks the route ('s': /api/v1/series, 'c': /api/v1/results.csv, anything
 * else: /api/v1/results), the rest is its query string as decoded arguments ("k=v&..."). A
 * query is refused with a message, or it runs on a small store within its limits.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_http_qarg args[MAX_ARGS];

    if (size == 0)
        return 0;
    fuzz_init();
    char *buf = fuzz_cstr(data + 1, size - 1);
    int n = fuzz_query(buf, args, MAX_ARGS);
    if (data[0] == 's')
        series(args, n);
    else
        results(args, n, data[0] != 'c');
    free(buf);
    return 0;
}
