/* fuzz_compat_query.c - GET /SpeedTest's query: filters, sort, paging (speedtest/api/compat.c) */
#include "core/store.h"
#include "fuzz.h"
#include "speedtest/api/compat.h"

#define MAX_ARGS 64

static int row(const struct dst_result *r, void *ud)
{
    json_t *j = compat_result_to_json(r);
    (*(int *)ud)++;
    json_decref(j);
    return 0;
}

/*
 * The query string as decoded arguments ("k=v&..."): what the original's model binders make
 * of them. Every argument refused gets its message; a query without errors runs on a small
 * store and takes at most the page it asked for.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_http_qarg args[MAX_ARGS];
    struct dst_store_query q;
    json_t *errors = json_object();
    char *buf = fuzz_cstr(data, size);
    int rows = 0;

    fuzz_init();
    int n = fuzz_query(buf, args, MAX_ARGS);
    compat_build_query(args, n, errors, &q);
    if (json_object_size(errors) == 0 && q.limit != -1) {
        FUZZ_CHECK(q.offset >= 0);
        int rc = dst_store_query(fuzz_store(), &q, row, &rows);
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(q.limit <= 0 || rows <= q.limit);
    }
    json_decref(errors);
    free(buf);
    return 0;
}
