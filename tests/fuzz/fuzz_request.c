/* fuzz_request.c - a test request from the queue, as a probe runs it (speedtest/logger/) */
#include <string.h>

#include "core/json.h"
#include "core/result.h"
#include "fuzz.h"
#include "speedtest/engines/engine.h"
#include "speedtest/engines/target.h"
#include "speedtest/logger/logger.h"
#include "speedtest/probe/probe.h"

#define AGENT "attic"

/* Whether target (NULL: the probe's own) runs here without the network: dummy: with no wait. */
static bool offline(const char *target)
{
    struct engine_target t;
    char err[256];

    return !target || (engine_target_parse(target, &t, err, sizeof(err)) == 0 &&
                       strcmp(t.scheme, "dummy") == 0 && !engine_target_param(&t, "seconds"));
}

/*
 * A message body as the daemon reads it. A request for this probe becomes a result, measured
 * (the dummy engine only: nothing here may use the network) or failed ("unknown target"),
 * and every such result is one the API takes: a request can never make a result that is lost.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct probe_opts o = {.target = "dummy:", .agent = AGENT, .user = "fuzz", .device = 1};
    struct logger_request rq;
    struct dst_result r;
    char err[256];

    fuzz_init();
    json_t *body = dst_json_parse((const char *)data, size, err, sizeof(err));
    if (!json_is_object(body)) { /* the queue hands on only objects */
        json_decref(body);
        return 0;
    }
    dst_result_init(&r);
    if (logger_request_read(body, "1700000000000-0", AGENT, &rq)) {
        FUZZ_CHECK(rq.id != NULL);
        if (!offline(rq.target) || probe_measure(&o, rq.target, rq.id, NULL, &r) != 0) {
            dst_result_release(&r);
            probe_fail(&o, rq.target, rq.id, "unknown target: no engine for this URL scheme", NULL,
                       &r);
        }
        FUZZ_CHECK(dst_result_validate(&r, err, sizeof(err)) == 0);
    }
    dst_result_release(&r);
    json_decref(body);
    return 0;
}
