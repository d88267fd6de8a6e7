/* fuzz_target.c - test target URLs: scheme://host[:port][/path][?k=v...] (speedtest/engines/) */
#include <string.h>

#include "fuzz.h"
#include "speedtest/engines/engine.h"
#include "speedtest/engines/target.h"

/*
 * A target as --target, a schedule or a run-now request gives it: taken apart, and checked by
 * its engine. A target the check accepts has an engine, a host where the URL has one, and
 * parameters its engine reads as it would for a test.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct engine_target t;
    char err[512] = "", hostport[300];
    char *s = fuzz_cstr(data, size);
    long v;

    fuzz_init();
    if (engine_target_parse(s, &t, err, sizeof(err)) == 0) {
        FUZZ_CHECK(t.scheme[0] && t.nparams >= 0 && t.nparams <= ENGINE_TARGET_MAX_PARAMS);
        FUZZ_CHECK(t.port >= 0 && t.port <= 65535);
        FUZZ_CHECK(t.path[0] == '\0' || t.path[0] == '/');
        engine_target_hostport(&t, 8080, hostport, sizeof(hostport));
        for (int i = 0; i < t.nparams; i++) {
            FUZZ_CHECK(engine_target_param(&t, t.keys[i]) != NULL);
            engine_target_int(&t, t.keys[i], 0, -1000, 1000, &v, err, sizeof(err));
        }
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    err[0] = '\0';
    if (engine_check_target(s, err, sizeof(err)) != 0)
        FUZZ_CHECK(err[0] != '\0');
    free(s);
    return 0;
}
