/* run.c - `dstmc run`: one speed test now, from the command line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/json.h"
#include "core/result.h"
#include "speedtest/engines/engine.h"
#include "speedtest/probe/probe.h"
#include "speedtest/services.h"

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

int run_main(int argc, char **argv)
{
    const char *target = NULL, *api = NULL, *token = NULL, *agent = NULL;
    bool json = false;
    long timeout = 60;
    char host[65] = "probe";
    gethostname(host, sizeof(host) - 1);
    struct dst_cfg_opt opts[] = {
        {"target", DST_CFG_STR, &target, "dummy:", "what to test against", "URL",
         .check = check_target},
        {"api", DST_CFG_STR, &api, "", "also post the result to this API", "URL"},
        {"token", DST_CFG_STR, &token, "", "bearer token for the API", "TOKEN"},
        {"agent", DST_CFG_STR, &agent, host, "probe name stored with the result", "NAME"},
        {"json", DST_CFG_BOOL, &json, "false", "print the result as JSON"},
        {"timeout", DST_CFG_INT, &timeout, "60", "limit for the test", "SECONDS", 1, 3600},
    };
    struct dst_cfg cfg = {"run", "one speed test now", opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_result r;

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    struct probe_opts o = {.target = target,
                           .api = api,
                           .token = token,
                           .agent = agent,
                           .user = agent,
                           .device = 1,
                           .timeout_s = (int)timeout,
                           .upload = *api != '\0'};
    FILE *lines = json ? stderr : stdout; /* with --json, stdout holds only the JSON */
    dst_result_init(&r);
    rc = probe_measure(&o, NULL, NULL, lines, &r);
    if (rc == 0 && o.upload)
        rc = probe_upload(&o, NULL, &r, lines);
    if (json) {
        json_t *j = dst_result_to_json(&r);
        char *text = dst_json_dumps(j, NULL);
        puts(text);
        free(text);
        json_decref(j);
    }
    bool ok = rc == 0 && r.status == DST_RESULT_OK;
    dst_result_release(&r);
    return ok ? 0 : 1;
}
