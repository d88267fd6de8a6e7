/* main.c - the multi-call dispatcher: `dstmc <service> [options]` → <service>_main() */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"
#include "core/iperf.h"
#include "core/log.h"
#include "core/sig.h"
#include "monitor/services.h"
#include "speedtest/services.h"
#include "tools/services.h"
#include "toystore/services.h"

struct service {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct service services[] = {
    {"up", up_main, "the whole speed test system in one process (api, web, probe)"},
    {"api", api_main, "stores and serves results: REST, SSE, metrics, OpenAPI, web UI"},
    {"web", web_main, "the web UI on its own, pointed at an API"},
    {"logger", logger_main, "the probe: runs tests on request (or --once), posts results"},
    {"scheduler", scheduler_main, "publishes test requests on a cron schedule (or --once)"},
    {"run", run_main, "one speed test now, from the command line"},
    {"token", token_main, "the API's tokens: new, list, revoke (in the API's store)"},
    {"store", store_main, "the store: copy (SQLite <-> PostgreSQL), export, import, backup"},
    {"server", server_main, "the test server: speedtest.net/Mini, LibreSpeed, Ookla TCP, iperf3"},
    {"monitor", monitor_main, "health-checks backends, forwards to the first up, status page"},
    {"machine", machine_main, "the monitor's demo service: GET /ping, GET /?first=&second="},
    {"toystore", toystore_main, "the tiered toy store: catalog, order, frontend"},
    {"health", health_main, "GET a service's /ping or /healthz: exit 0 when it answers 2xx"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: dstmc <service> [options]   (dstmc <service> --help for its options)\n"
                 "\nservices:\n");
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        fprintf(out, "  %-10s %s\n", services[i].name, services[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], DST_IPERF_CHILD_ARG) == 0)
        return dst_iperf_server_child(argc, argv); /* the test server's iperf3 half */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("dstmc %s\n", DSTMC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        if (strcmp(argv[1], services[i].name) != 0)
            continue;
        dst_log_init(services[i].name, DST_LOG_INFO);
        if (dst_sig_init() != 0) {
            fprintf(stderr, "dstmc: cannot set up signal handling\n");
            exit(1);
        }
        int rc = services[i].main(argc - 1, argv + 1);
        dst_http_client_global_cleanup();
        exit(rc);
    }
    fprintf(stderr, "dstmc: unknown service '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
