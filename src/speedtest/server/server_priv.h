/* server_priv.h - what the test server's protocol files share (not for other services) */
#ifndef DST_SERVER_PRIV_H
#define DST_SERVER_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/metrics.h"
#include "speedtest/server/server.h"

struct dst_http_server;

struct server_ookla;
struct server_iperf3;

struct server {
    struct server_cfg cfg;
    struct dst_metrics *metrics;
    struct dst_http_server *http;
    struct server_ookla *ookla;
    struct server_iperf3 *iperf3;
    int http_port;                /* the bound HTTP port (0 when off) */
    atomic_int_least64_t last_ms; /* monotonic ms of the last activity */
    atomic_int active;            /* transfers or tests in progress */
};

/*
 * Activity, for --idle-exit: a protocol calls server_busy when a transfer or test starts and
 * server_idle when it ends (any order across threads). The server is idle while nothing is
 * active, counted from the last server_idle.
 */
void server_busy(struct server *s);
void server_idle(struct server *s);

/*
 * Counters in /metrics: dstmc_server_bytes_total{protocol,direction="in"|"out"} and
 * dstmc_server_requests_total{protocol,kind}. protocol: "speedtest", "librespeed", "ookla",
 * "iperf3".
 */
void server_count_bytes(struct server *s, const char *protocol, bool in, uint64_t bytes);
void server_count_request(struct server *s, const char *protocol, const char *kind);

/* The legacy speedtest.net / Speedtest Mini HTTP protocol, incl. offline config and list. */
int server_speedtest_mount(struct server *s, struct dst_http_server *http);
/* The LibreSpeed HTTP protocol (garbage, empty, getIP, with and without .php, under backend/). */
int server_librespeed_mount(struct server *s, struct dst_http_server *http);

/* The Ookla TCP protocol on cfg.ookla. Prints "listening on tcp://HOST:PORT" once bound. */
struct server_ookla;
int server_ookla_start(struct server *s, struct server_ookla **out);
void server_ookla_stop(struct server_ookla *o);

/* What one Ookla command line asks (ookla.c). */
enum server_ookla_verb {
    OOKLA_HI,
    OOKLA_PING,
    OOKLA_DOWNLOAD,
    OOKLA_UPLOAD,
    OOKLA_QUIT,
    OOKLA_INITPLOSS,
    OOKLA_PLOSS,
    OOKLA_BLANK,    /* an empty line, or one starting with a space: ignored */
    OOKLA_UNKNOWN,  /* no command: ERROR, and the connection stays */
    OOKLA_BAD_SIZE, /* DOWNLOAD or UPLOAD without a size in range: ERROR and a close */
};

struct server_ookla_cmd {
    enum server_ookla_verb verb;
    uint64_t size; /* DOWNLOAD, UPLOAD: 1..max bytes (UPLOAD's counts its own line, >= raw) */
};

/*
 * Takes apart a client's command line as dst_net_read_line gives it (without its "\n"; raw
 * is its length on the wire) for a server whose transfers are capped at max bytes.
 */
void server_ookla_parse(const char *line, size_t raw, long max, struct server_ookla_cmd *out);

/* iperf3 (libiperf) on cfg.iperf3, one test at a time. Prints "listening on tcp://HOST:PORT". */
struct server_iperf3;
int server_iperf3_start(struct server *s, struct server_iperf3 **out);
void server_iperf3_stop(struct server_iperf3 *i);

#endif
