/* iperf3.c - the iperf3 protocol of the test server: libiperf, one test at a time */
#include <stdio.h>
#include <stdlib.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/iperf.h"
#include "core/log.h"
#include "core/mem.h"
#include "speedtest/server/server_priv.h"

/*
 * What `iperf3 -s` does, from the core wrapper: a client that comes while a test runs is told
 * "busy" by libiperf itself (3.12 gives no hook there, so those refusals are not counted).
 * Counted in /metrics: bytes the server received ("in", normal tests: uploads) and sent ("out",
 * reverse tests: downloads), and per client run one request of kind "test" (finished) or
 * "error" (bad input, client gone, stalled, stopped).
 */
struct server_iperf3 {
    struct server *s;
    struct dst_iperf_server *srv;
};

static void on_begin(void *ud)
{
    struct server_iperf3 *i = ud;
    server_busy(i->s);
}

static void on_end(void *ud, const struct dst_iperf_report *r, const char *error)
{
    struct server_iperf3 *i = ud;

    if (r) {
        server_count_bytes(i->s, "iperf3", true, r->received.bytes);
        server_count_bytes(i->s, "iperf3", false, r->sent.bytes);
        server_count_request(i->s, "iperf3", "test");
        dst_debug("iperf3: %s test, %d stream(s): %.2f Mbps", r->reverse ? "reverse" : "normal",
                  r->streams, (r->reverse ? r->sent.bps : r->received.bps) / 1e6);
    } else {
        server_count_request(i->s, "iperf3", "error");
        dst_info("iperf3: a client's run ended without a result: %s", error);
    }
    server_idle(i->s);
}

int server_iperf3_start(struct server *s, struct server_iperf3 **out)
{
    struct server_iperf3 *i = dst_xnew(struct server_iperf3);
    char host[256], err[256];
    int port = 0;
    int rc = dst_cfg_split_hostport(s->cfg.iperf3, host, sizeof(host), &port, err, sizeof(err));

    i->s = s;
    if (rc == 0) {
        struct dst_iperf_server_opts o = {
            .host = host, .port = port, .on_begin = on_begin, .on_end = on_end, .ud = i};
        rc = dst_iperf_server_new(&o, &i->srv);
    } else {
        dst_error("iperf3: %s", err);
    }
    if (rc) {
        server_iperf3_stop(i);
        return rc;
    }
    dst_log_listening("tcp", host, dst_iperf_server_port(i->srv));
    *out = i;
    return 0;
}

void server_iperf3_stop(struct server_iperf3 *i)
{
    if (!i)
        return;
    dst_iperf_server_free(i->srv);
    free(i);
}
