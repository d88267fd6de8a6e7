/* client_session.h - one client session of the toy store client: its requests and checks */
#ifndef TOYSTORE_CLIENT_SESSION_H
#define TOYSTORE_CLIENT_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "toystore/client_stats.h"

#define TOYCLIENT_MAX_TOYS   64
#define TOYCLIENT_MAX_LISTED 100 /* mismatched orders named in the output, per run */

enum toyclient_mode {
    TOYCLIENT_SESSION, /* random query, then a buy with probability p if in stock (Lab 2/3) */
    TOYCLIENT_QUERY,   /* N queries of one toy */
    TOYCLIENT_BUY,     /* N buys of one toy */
};

/* What every session of a run shares (read only while they run). */
struct toyclient_run {
    char base[1024]; /* the front end's URL, no trailing '/' */
    enum toyclient_mode mode;
    const char *toys[TOYCLIENT_MAX_TOYS]; /* session mode: the toys picked from */
    int ntoys;
    const char *toy;    /* query and buy modes */
    long long qlo, qhi; /* each buy's quantity: uniform in [qlo, qhi] */
    double p;
    long iterations, timeout_ms;
    bool check;
    uint64_t seed;
};

/* An order the session made, as it recorded it. */
struct toyclient_order {
    long long number, quantity;
    const char *name; /* one of the run's toy names */
};

struct toyclient_session {
    const struct toyclient_run *run;
    int index;
    uint64_t rng;
    struct toyclient_tally query, buy, check;
    struct toyclient_order *orders;
    size_t norders, cap;
    long long bad[TOYCLIENT_MAX_LISTED]; /* the first mismatched order numbers */
    size_t nbad;
    uint64_t unchecked;  /* orders left unchecked by a stop */
    bool failed;         /* could not start (no curl handle) */
    int64_t load_end_us; /* dst_monotonic_us() when its iterations were done (checks follow) */
    pthread_t th;
};

/* Sets up session index of run (its random stream: the run's seed and index). */
void toyclient_session_init(struct toyclient_session *s, const struct toyclient_run *run,
                            int index);
void toyclient_session_release(struct toyclient_session *s);

/*
 * The session's whole work, on one dst_http_client (one kept-alive connection): run->iterations
 * iterations of run->mode, then, with run->check, GET /orders/<n> of each order made, compared
 * with the record (a mismatch is logged, naming the order). Stops early, between requests, once
 * a stop is requested (dst_sig_stopping). A pthread start routine: arg is the session.
 */
void *toyclient_session_run(void *arg);

#endif
