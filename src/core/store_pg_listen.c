/* store_pg_listen.c - PostgreSQL store: the feed, LISTEN on a connection of its own */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_pg_priv.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/*
 * Every change sends a NOTIFY in its own statement (store_sql.c: "r <first seq> <last seq>", "d <count> <id>",
 * "x <count> <id>", "s <version> <key>"). A thread waits on this connection's socket (and a
 * pipe that stop writes to) with poll, reads with PQconsumeInput and PQnotifies, and, when the
 * connection is lost (a server restart), connects and LISTENs again with back-off, then tells
 * the subscriber to resync: what was notified meanwhile is gone.
 */
struct pg_listen {
    struct pg_store *s;
    struct dst_store_feed *f;
    PGconn *pg;
    int wake[2]; /* stop writes a byte to wake[1] */
    pthread_t th;
};

/* The server's notices go to the debug log, not to stderr. */
static void notice(void *arg, const char *message)
{
    (void)arg;
    dst_debug("store: postgresql feed: %.*s", (int)strcspn(message, "\n"), message);
}

/* Connects and LISTENs; NULL (with the reason in err) if either failed. */
static PGconn *listen_connect(const char *url, char *err, size_t errlen)
{
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "dstmc-feed", url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    PGresult *res = NULL;

    if (pg && PQstatus(pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(pg, notice, NULL);
        res = PQexec(pg, "LISTEN " DST_STORE_SQL_CHANNEL);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            return pg;
        }
    }
    snprintf(err, errlen, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    err[strcspn(err, "\n")] = '\0';
    PQclear(res);
    PQfinish(pg);
    return NULL;
}

/* One notification's payload as a change; false if it is not one of ours. */
static bool parse(char *payload, struct dst_store_change *c)
{
    char kind = payload[0], *p = NULL;
    long long n = 0;

    if (!kind || payload[1] != ' ')
        return false;
    n = strtoll(payload + 2, &p, 10);
    if (p == payload + 2)
        return false;
    const char *id = *p == ' ' && p[1] ? p + 1 : NULL;
    *c = (struct dst_store_change){.id = id};
    switch (kind) {
    case 'r': /* "r <first> <last>": the rows of one statement ("r <seq>": one) */
        c->kind = DST_STORE_CH_RESULT;
        c->seq = n;
        c->seq_last = id ? strtoll(id, NULL, 10) : n;
        c->id = NULL;
        return c->seq_last >= n;
    case 'd':
        c->kind = DST_STORE_CH_DELETED;
        c->count = n;
        return true;
    case 'x':
        c->kind = DST_STORE_CH_EXCLUDED;
        c->count = n;
        return id != NULL;
    case 's':
        c->kind = DST_STORE_CH_SETTING;
        c->version = n;
        return id != NULL;
    default:
        return false;
    }
}

/* Tells every notification that arrived; false when the connection broke. */
static bool drain(struct pg_listen *l)
{
    PGnotify *n;

    if (!PQconsumeInput(l->pg))
        return false;
    while ((n = PQnotifies(l->pg))) {
        struct dst_store_change c;
        if (parse(n->extra, &c))
            dst_store_feed_emit(l->f, &c);
        else
            dst_debug("store: postgresql feed: ignored notification '%s'", n->extra);
        PQfreemem(n);
    }
    return PQstatus(l->pg) == CONNECTION_OK;
}

/* Waits up to ms (-1: for ever) for the socket (when connected) or stop; true on stop. */
static bool wait_for(struct pg_listen *l, int ms)
{
    struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN},
                          {.fd = l->pg ? PQsocket(l->pg) : -1, .events = POLLIN}};

    while (poll(p, 2, ms) < 0 && errno == EINTR)
        ;
    return p[0].revents != 0;
}

/* Connects again after a loss, with back-off; false on stop. */
static bool reconnect(struct pg_listen *l)
{
    char err[512];
    int ms = BACKOFF_MIN_MS;

    char why[512];

    snprintf(why, sizeof(why), "%s", PQerrorMessage(l->pg));
    why[strcspn(why, "\n")] = '\0';
    dst_warn("store: postgresql feed: connection lost: %s (connecting again)", why);
    PQfinish(l->pg);
    l->pg = NULL;
    for (;;) {
        if (wait_for(l, ms))
            return false;
        l->pg = listen_connect(l->s->url, err, sizeof(err));
        if (l->pg)
            break;
        dst_debug("store: postgresql feed: %s", err);
        ms = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
    }
    dst_info("store: postgresql feed: listening again; telling the subscriber to resync");
    dst_store_feed_emit(l->f, &(struct dst_store_change){.kind = DST_STORE_CH_RESYNC});
    return true;
}

static void *listen_run(void *arg)
{
    struct pg_listen *l = arg;

    for (;;) {
        if (wait_for(l, -1))
            break;
        if (!drain(l) && !reconnect(l))
            break;
    }
    return NULL;
}

static void listen_free(struct pg_listen *l)
{
    PQfinish(l->pg);
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    free(l);
}

int pg_feed_start(struct dst_store *base, struct dst_store_feed *f)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_listen *l = dst_xnew(struct pg_listen);
    char err[512];
    int rc = 0;

    l->s = s;
    l->f = f;
    l->wake[0] = l->wake[1] = -1;
    if (pipe2(l->wake, O_CLOEXEC) != 0) {
        rc = DST_EIO;
        goto out;
    }
    l->pg = listen_connect(s->url, err, sizeof(err));
    if (!l->pg) {
        dst_error("store: postgresql feed: cannot LISTEN: %s", err);
        rc = DST_EDEP;
        goto out;
    }
    if (pthread_create(&l->th, NULL, listen_run, l) != 0)
        rc = DST_ENOMEM;
out:
    if (rc)
        listen_free(l);
    else
        s->listen = l;
    return rc;
}

void pg_feed_stop(struct dst_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_listen *l = s->listen;

    if (!l)
        return;
    s->listen = NULL;
    if (write(l->wake[1], "x", 1) != 1)
        dst_error("store: postgresql feed: cannot wake the listener: %s", strerror(errno));
    pthread_join(l->th, NULL);
    listen_free(l);
}
