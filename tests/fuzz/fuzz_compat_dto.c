/* fuzz_compat_dto.c - POST /SpeedTest's TestResult DTO (speedtest/api/compat_dto.c) */
#include "core/json.h"
#include "core/result.h"
#include "fuzz.h"
#include "speedtest/api/compat.h"

/*
 * A body as POST /SpeedTest reads it: every property any case, .NET's type errors and
 * DataAnnotations. Accepted means a valid result (the store takes it) that both faces show;
 * refused means ModelState errors to answer with.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_result r;
    char err[256];
    json_t *errors = json_object();

    fuzz_init();
    dst_result_init(&r);
    int rc = compat_parse_test_result((const char *)data, size, errors, &r);
    if (rc == 0) {
        FUZZ_CHECK(json_object_size(errors) == 0);
        FUZZ_CHECK(dst_result_validate(&r, err, sizeof(err)) == 0);
        json_t *a = compat_result_to_json(&r), *b = dst_result_to_json(&r);
        char *s = dst_json_dumps(a, NULL), *t = dst_json_dumps(b, NULL);
        FUZZ_CHECK(s && t);
        free(s);
        free(t);
        json_decref(a);
        json_decref(b);
    } else {
        FUZZ_CHECK(json_object_size(errors) > 0);
        char *s = dst_json_dumps(errors, NULL);
        FUZZ_CHECK(s != NULL);
        free(s);
    }
    dst_result_release(&r);
    json_decref(errors);
    return 0;
}
