/* order.h - the order service's state, shared by order.c (buys) and order_repl.c (replication) */
#ifndef DST_TOYSTORE_ORDER_H
#define DST_TOYSTORE_ORDER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/cfg.h"
#include "toystore/toystore.h"

#define ORDER_PEERS_MAX DST_CFG_LIST_MAX

struct dst_http_server;

struct order_peer {
    struct ts_replica r;
    int64_t retry_at; /* monotonic ms: declared dead until then (the leader skips it) */
    bool behind;      /* may lack orders: the leader's nudge thread pushes to it */
    bool live;        /* the front end saw it answer (its last PUT /leader): a takeover needs it */
};

struct order {
    long id;
    char catalog[256];
    long timeout_ms, peer_timeout_ms;
    struct order_log *log;
    pthread_mutex_t mu; /* recent */
    pthread_cond_t cv;
    struct ts_reqids *recent;
    /* replication (order_repl.c) */
    pthread_mutex_t rmu; /* everything below */
    struct order_peer peers[ORDER_PEERS_MAX];
    int npeers;
    int64_t epoch;  /* the highest epoch the front end (or a leader's push) showed: 0 none yet */
    long leader;    /* the leader of epoch; -1 unknown */
    int64_t synced; /* the epoch whose leader's log this one last took (or led): 0 none */
    bool ready;     /* caught up since the start: may follow, and lead */
    pthread_mutex_t sync_mu; /* one catch-up or takeover at a time */
    pthread_cond_t rcv;      /* (rmu) wakes the nudge thread to stop */
    pthread_t nudger;
    bool nudging, stop;
    struct order_push *push; /* the threads that push batches to the followers */
    struct order_buys *buys; /* the buys waiting for a call to the catalog */
};

/* The request-id table's states (order.c). */
enum req_state { REQ_RETRY, REQ_PENDING, REQ_DONE, REQ_FAILED };

/* order_log's fn and dropped hook: an order's request id is known (or forgotten). */
void order_remember(void *ud, const struct order_rec *r);
void order_forget(void *ud, const struct order_rec *r);

/*
 * Sets up the replication state; order_repl_attach hooks the open log's batches and starts the
 * thread that brings followers left behind up to date and the pushers; order_repl_stop stops
 * them (before the log is freed: they use it), order_repl_free stops them too and frees.
 */
void order_repl_init(struct order *o);
void order_repl_attach(struct order *o);
void order_repl_stop(struct order *o);
void order_repl_free(struct order *o);
/*
 * Whether this replica may serve a buy (buy) or an order lookup now. With epoch (the front
 * end's ?epoch=E, NULL when absent): only as the caught-up leader of that very epoch, so that a
 * leader restarted before the front end noticed refuses. Without: a buy when it leads, or when
 * it was never told of a leader and has no peers (one replica alone, as in Lab 2); a lookup
 * always. *leader is the leader it knows (-1: none).
 */
bool order_repl_may_serve(struct order *o, const char *epoch, bool buy, long *leader);
/*
 * order_push.c: runs jobs at once, each on the thread kept for its slot (a follower's index in
 * o->peers), the last on the caller's; returns when all are done (rc set). One caller at a
 * time (the log's writer: batches go one at a time).
 */
struct order_push_job {
    int slot;
    int (*fn)(void *arg);
    void *arg;
    int rc;
};
struct order_push *order_push_new(void);
/* Stops the threads (after their current job) and frees; NULL is fine. */
void order_push_free(struct order_push *p);
void order_push_run(struct order_push *p, struct order_push_job *jobs, int n);
/*
 * order_buys.c: asks the catalog for b together with the buys waiting with it (one POST
 * /buys), then writes the orders of those it took to the log as one batch. 200: the catalog
 * took the stock and the order is numbered *number, *log_rc the log's outcome for it (as
 * order_log_append's: 0, DST_ECONFLICT, DST_EIO); 404, 409; 503 when the catalog or the log
 * cannot be used.
 */
struct order_buys *order_buys_new(void);
void order_buys_free(struct order_buys *q);
int order_buys_take(struct order *o, const struct ts_buy *b, int64_t *number, int *log_rc);
/* PUT /leader, POST /replicate, GET /orders?from=N. */
int order_repl_mount(struct dst_http_server *srv, struct order *o);
/* For /ping: epoch, leader, synced, ready, live followers. */
void order_repl_stats(struct order *o, json_t *into);

#endif
