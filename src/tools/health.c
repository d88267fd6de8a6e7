/* health.c - `dstmc health`: one GET against a service's /ping or /healthz, for HEALTHCHECK */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/http_client.h"
#include "tools/services.h"

/* http://127.0.0.1:PORT/ping, PORT from DSTMC_LISTEN (the service's own) or 8080. */
static void default_url(char *out, size_t len)
{
    const char *listen = getenv("DSTMC_LISTEN");
    char host[256] = "127.0.0.1", err[128];
    int port = 8080;

    if (listen && dst_cfg_split_hostport(listen, host, sizeof(host), &port, err, sizeof(err)) != 0)
        port = 8080;
    if (!listen || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || !host[0])
        snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(out, len, strchr(host, ':') ? "http://[%s]:%d/ping" : "http://%s:%d/ping", host, port);
}

/* One GET: 0 when it answered 2xx, else 1 with the reason on stderr. */
static int check(const char *url, long timeout_ms)
{
    struct dst_http_call call = {.url = url, .timeout_ms = timeout_ms, .max_body = 1 << 20};
    struct dst_http_resp resp = {0};
    int rc = dst_http_do(&call, &resp);

    if (rc != 0)
        fprintf(stderr, "dstmc health: %s: %s\n", url, resp.err[0] ? resp.err : dst_strerror(rc));
    else if (resp.status < 200 || resp.status > 299)
        fprintf(stderr, "dstmc health: %s: HTTP %ld\n", url, resp.status);
    else
        printf("%s: HTTP %ld\n", url, resp.status);
    rc = rc == 0 && resp.status >= 200 && resp.status <= 299 ? 0 : 1;
    dst_http_resp_release(&resp);
    return rc;
}

int health_main(int argc, char **argv)
{
    const char *url = NULL;
    long timeout_ms = 0;
    char def[320];
    struct dst_cfg_opt opts[] = {
        {"health-url", DST_CFG_STR, &url, NULL,
         "what to GET (also the first argument; default: /ping on 127.0.0.1 at the port of "
         "DSTMC_LISTEN, else 8080)",
         "URL"},
        {"health-deadline-ms", DST_CFG_INT, &timeout_ms, "3000", "how long the answer may take",
         "MS", 1, 600000},
    };
    struct dst_cfg cfg = {"health", "GET a service's health URL: exit 0 on a 2xx answer", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    const char *positional = NULL;

    if (argc > 1 && strncmp(argv[1], "-", 1) != 0) {
        positional = argv[1]; /* `dstmc health URL [options]` */
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (positional)
        url = positional;
    if (!url || !url[0]) {
        default_url(def, sizeof(def));
        url = def;
    }
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    return check(url, timeout_ms);
}
