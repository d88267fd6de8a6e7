/* fuzz_result_json.c - the native result JSON: POST /api/v1/results, outbox files (core/result.c) */
#include <string.h>

#include "core/json.h"
#include "core/result.h"
#include "fuzz.h"

/* The result's native JSON, compact. */
static char *dump(const struct dst_result *r)
{
    json_t *j = dst_result_to_json(r);
    char *s = dst_json_dumps(j, NULL);
    json_decref(j);
    FUZZ_CHECK(s != NULL);
    return s;
}

/*
 * A body as the API reads it: parsed (duplicates and trailing garbage refused), read into a
 * result and validated. What is accepted must be shown, copied and read back the same: the
 * form the API answers with (and the probe's outbox keeps) is again a valid result.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_result r, back, copy;
    char err[256];

    fuzz_init();
    json_t *j = dst_json_parse((const char *)data, size, err, sizeof(err));
    dst_result_init(&r);
    dst_result_init(&back);
    if (j && dst_result_from_json(j, &r, err, sizeof(err)) == 0) {
        FUZZ_CHECK(dst_result_validate(&r, err, sizeof(err)) == 0);
        char *text = dump(&r);
        json_t *again = dst_json_parse(text, strlen(text), err, sizeof(err));
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(dst_result_from_json(again, &back, err, sizeof(err)) == 0);
        char *text2 = dump(&back);
        FUZZ_CHECK(strcmp(text, text2) == 0);
        dst_result_copy(&copy, &back);
        dst_result_release(&copy);
        json_decref(again);
        free(text2);
        free(text);
    }
    dst_result_release(&back);
    dst_result_release(&r);
    json_decref(j);
    return 0;
}
