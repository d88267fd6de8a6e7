/* server.h - the test server, for `dstmc server` and for `dstmc up` (which runs it in-process) */
#ifndef DST_SPEEDTEST_SERVER_H
#define DST_SPEEDTEST_SERVER_H

#include <stdbool.h>

/* The options of `dstmc server` (see server.c for their flags). */
struct server_cfg {
    const char *http, *ookla, *iperf3; /* HOST:PORT of each listener, or "off" */
    const char *on_idle;               /* shell command run before an idle exit; "" = none */
    const char *name, *sponsor, *country, *cc, *public_url, *isp, *log_level;
    double lat, lon;               /* where this server says it is */
    double client_lat, client_lon; /* what speedtest-config.php tells clients about themselves */
    long idle_exit;                /* seconds without a test before exiting; 0 = never */
    long id;                       /* this server's id in the server list */
    long max_streams;              /* concurrent connections per raw protocol */
    long max_bytes;                /* cap on one download or upload (request or command) */
    long threads;                  /* HTTP worker threads */
    bool access_log;
};

/* Fills c with the defaults of `dstmc server`'s options. */
void server_cfg_init(struct server_cfg *c);

struct server;

/*
 * Starts every listener of c that is not "off" (HTTP, then Ookla, then iperf3, each printing its
 * `listening on` line) and returns; c's strings are borrowed until server_stop. DST_E* with the
 * reason logged when one cannot start (the others are stopped again).
 */
int server_start(const struct server_cfg *c, struct server **out);

/* Stops the listeners (a running test is cut short); accepts NULL. */
void server_stop(struct server *s);

#endif
