/* iperf.c - iperf3 through libiperf: one client test, and what iperf_server.c shares with it */
#include "core/iperf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <stdint.h> /* iperf_api.h uses uint64_t without including it */
#include <iperf_api.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/iperf_priv.h"
#include "core/json.h"

#define MAX_ADDRS    4     /* addresses of one name tried in turn when refused */
#define SLACK_MS     30000 /* a test's default deadline past its duration */
#define CUT_EVERY_MS 50    /* how often a deadline cuts a client's sockets again */

/* libiperf's process-wide state (i_errno, timers, CPU accounting) allows one user at a time. */
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;

struct timespec iperf_mono_ts(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
}

/* Waits on cond (mu held) until signalled or until the monotonic deadline. */
static void wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = iperf_mono_ts(deadline_ms);
    pthread_cond_clockwait(cond, mu, CLOCK_MONOTONIC, &ts);
}

/* ---- a guard: a thread that calls tick when it asks to be called, until stopped ---- */

static void *guard_main(void *arg)
{
    struct iperf_guard *g = arg;

    pthread_mutex_lock(&g->mu);
    while (!g->done) {
        if (dst_monotonic_ms() < g->next_ms) {
            wait_until(&g->cond, &g->mu, g->next_ms);
            continue;
        }
        g->next_ms = INT64_MAX;
        pthread_mutex_unlock(&g->mu);
        int64_t next = g->tick(g->ud);
        pthread_mutex_lock(&g->mu);
        if (next < g->next_ms) /* else a kick came during the tick */
            g->next_ms = next;
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int iperf_guard_start(struct iperf_guard *g, int64_t first_ms, int64_t (*tick)(void *), void *ud)
{
    *g = (struct iperf_guard){.tick = tick, .ud = ud, .next_ms = first_ms};
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    if (pthread_create(&g->thread, NULL, guard_main, g) == 0)
        return 0;
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    return DST_ENOMEM;
}

void iperf_guard_kick(struct iperf_guard *g, bool stop)
{
    pthread_mutex_lock(&g->mu);
    g->next_ms = 0;
    g->done = stop;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->mu);
    if (!stop)
        return;
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
}

/* ---- sockets of this process, found by their addresses ---- */

bool iperf_endpoint_of(const struct sockaddr *sa, struct iperf_endpoint *e)
{
    memset(e, 0, sizeof(*e));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(e->addr, &in->sin_addr, 4);
        e->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(e->addr, &in6->sin6_addr, 16);
        e->port = ntohs(in6->sin6_port);
    } else {
        return false;
    }
    e->family = sa->sa_family;
    return true;
}

bool iperf_endpoint_eq(const struct iperf_endpoint *a, const struct iperf_endpoint *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

bool iperf_socket_end(int fd, bool peer, struct iperf_endpoint *e)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                  : getsockname(fd, (struct sockaddr *)&ss, &len);
    return rc == 0 && iperf_endpoint_of((struct sockaddr *)&ss, e);
}

void iperf_each_stream_socket(void (*fn)(int fd, void *ud), void *ud)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name), type = 0;
        socklen_t len = sizeof(type);
        if (de->d_name[0] == '.' || fd == dirfd(d))
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
            fn(fd, ud);
    }
    closedir(d);
}

/* ---- iperf3's JSON ---- */

static double num_at(const json_t *obj, const char *key)
{
    double v = NAN;
    if (!dst_json_number(json_object_get(obj, key), &v))
        return NAN;
    return v;
}

static bool sum_from(const json_t *end, const char *key, struct dst_iperf_sum *s)
{
    const json_t *o = json_object_get(end, key);
    const json_t *bytes = json_object_get(o, "bytes");
    if (!json_is_integer(bytes) || json_integer_value(bytes) < 0)
        return false;
    s->bytes = (uint64_t)json_integer_value(bytes);
    s->seconds = num_at(o, "seconds");
    s->bps = num_at(o, "bits_per_second");
    return true;
}

/* The mean of the sending streams' mean_rtt (µs) in ms; NAN when no stream measured one. */
static double mean_rtt_ms(const json_t *end)
{
    const json_t *streams = json_object_get(end, "streams"), *st;
    double sum = 0;
    int n = 0;
    size_t i;

    json_array_foreach(streams, i, st)
    {
        double us = num_at(json_object_get(st, "sender"), "mean_rtt");
        if (us > 0) { /* 0 when the other side sent: its RTT is not exchanged */
            sum += us;
            n++;
        }
    }
    return n ? sum / n / 1000.0 : NAN;
}

/* Fills r from a finished test's JSON; DST_EIO with the reason when it is not one. */
static int report_from(const json_t *j, bool server, struct dst_iperf_report *r, char *err,
                       size_t errlen)
{
    const json_t *end = json_object_get(j, "end");
    const json_t *ts = json_object_get(json_object_get(j, "start"), "test_start");
    const json_t *cpu = json_object_get(end, "cpu_utilization_percent");
    double retr = num_at(json_object_get(end, "sum_sent"), "retransmits");

    memset(r, 0, sizeof(*r));
    if (!sum_from(end, "sum_sent", &r->sent) || !sum_from(end, "sum_received", &r->received))
        return snprintf(err, errlen, "iperf3: no end.sum_sent/sum_received in its result"), DST_EIO;
    r->reverse = num_at(ts, "reverse") == 1;
    r->streams = (int)num_at(ts, "num_streams");
    r->retransmits = isfinite(retr) ? (int64_t)retr : -1;
    r->mean_rtt_ms = mean_rtt_ms(end);
    r->cpu_local_pct = num_at(cpu, "host_total");
    r->cpu_remote_pct = server ? NAN : num_at(cpu, "remote_total");
    return 0;
}

/*
 * Makes sure a run's JSON is finished: libiperf finishes it on most paths, but a server run
 * that ends in an error (bad input, a stop) returns without, iperf_free_test does not free the
 * unfinished tree, and the server has closed the log file that iperf_json_finish writes to.
 */
static void finish_json(struct iperf_test *t)
{
    FILE *f = iperf_get_test_outfile(t);

    if (iperf_get_test_json_output_string(t) || f == stdout)
        return; /* finished, or never run */
    if (!f && iperf_open_logfile(t) < 0)
        return;
    iperf_json_finish(t);
}

/* ---- a test and its outcome ---- */

struct iperf_test *iperf_test_new(char role)
{
    struct iperf_test *t = iperf_new_test();

    if (t) {
        iperf_defaults(t);
        iperf_set_test_role(t, role);
        iperf_set_test_json_output(t, 1);
        iperf_set_test_logfile(t, "/dev/null"); /* else libiperf prints the JSON to stdout */
    }
    return t;
}

void iperf_test_free(struct iperf_test *t)
{
    if (!t)
        return;
    finish_json(t);
    iperf_close_logfile(t);
    iperf_free_test(t);
}

int iperf_fail(int code, const char *kind, const char *msg, char *err, size_t errlen)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == ':'))
        n--;
    snprintf(err, errlen, "%s: %.*s", kind, (int)n, msg);
    return code;
}

int iperf_outcome(struct iperf_test *t, int rc, int ie, int en, bool server,
                  struct dst_iperf_report *r, char *err, size_t errlen)
{
    finish_json(t);
    const char *text = iperf_get_test_json_output_string(t);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *jerr = json_string_value(json_object_get(j, "error"));
    int code = 0;

    errno = en; /* iperf_strerror appends strerror(errno) for system errors */
    const char *msg = ie != IENONE ? iperf_strerror(ie) : jerr ? jerr : "no result";
    if (ie == IEACCESSDENIED)
        code = iperf_fail(DST_EBUSY, "busy", msg, err, errlen);
    else if (ie == IECONNECT && (en == ECONNREFUSED || en == ECONNRESET))
        code = iperf_fail(DST_EDEP, "refused", msg, err, errlen); /* reset: a listener closing */
    else if (ie == IECONNECT && (en == ETIMEDOUT || en == EINPROGRESS))
        code = iperf_fail(DST_ETIMEDOUT, "timeout", msg, err, errlen);
    else if (ie == IECONNECT)
        code = iperf_fail(DST_EDEP, "unreachable", msg, err, errlen);
    else if (ie != IENONE || rc < 0 || jerr || !j)
        code = iperf_fail(DST_EIO, "iperf3", msg, err, errlen);
    else
        code = report_from(j, server, r, err, errlen);
    json_decref(j);
    return code;
}

int iperf_resolve(const char *host, int port, int flags, struct addrinfo **res, char *err,
                  size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, res);

    if (rc == 0)
        return 0;
    snprintf(err, errlen, "DNS: %s: %s", host,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return rc == EAI_SYSTEM || rc == EAI_MEMORY ? DST_EIO : DST_ENOTFOUND;
}

/* ---- the client ---- */

/* At the deadline, cuts the client's sockets: control and streams, all connected to peer. */
struct deadline {
    struct iperf_endpoint peer;
    atomic_bool fired;
};

static void cut_if_peer(int fd, void *ud)
{
    const struct iperf_endpoint *peer = ud;
    struct iperf_endpoint e;
    if (iperf_socket_end(fd, true, &e) && iperf_endpoint_eq(&e, peer))
        shutdown(fd, SHUT_RDWR);
}

static int64_t cut_client(void *ud)
{
    struct deadline *d = ud;
    atomic_store(&d->fired, true);
    iperf_each_stream_socket(cut_if_peer, &d->peer);
    return dst_monotonic_ms() + CUT_EVERY_MS;
}

/* A client test of o against the numeric address addr; NULL when out of memory. */
static struct iperf_test *client_test(const struct dst_iperf_opts *o, const char *addr)
{
    struct iperf_test *t = iperf_test_new('c');

    if (t) {
        iperf_set_test_server_hostname(t, addr);
        iperf_set_test_server_port(t, o->port ? o->port : DST_IPERF_PORT);
        iperf_set_test_duration(t, o->duration_s ? o->duration_s : 10);
        iperf_set_test_num_streams(t, o->streams ? o->streams : 1);
        iperf_set_test_omit(t, o->omit_s);
        iperf_set_test_reverse(t, o->reverse);
        iperf_set_test_connect_timeout(t, o->connect_timeout_ms ? o->connect_timeout_ms : 5000);
    }
    return t;
}

/* One test against one address (libiperf lock held). */
static int client_once(const struct dst_iperf_opts *o, const struct addrinfo *ai,
                       int64_t deadline_ms, struct dst_iperf_report *r, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN] = "";
    struct deadline d = {.fired = false};
    struct iperf_guard g;
    struct iperf_test *t = NULL;
    int rc = 0;

    getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
    iperf_endpoint_of(ai->ai_addr, &d.peer);
    t = client_test(o, addr);
    if (!t || iperf_guard_start(&g, deadline_ms, cut_client, &d) != 0) {
        rc = iperf_fail(DST_ENOMEM, "iperf3", "out of memory", err, errlen);
        goto out;
    }
    i_errno = IENONE;
    errno = 0;
    rc = iperf_run_client(t);
    int ie = i_errno, en = errno;
    iperf_guard_kick(&g, true);
    if (atomic_load(&d.fired))
        rc = iperf_fail(DST_ETIMEDOUT, "timeout", "no result within the test's deadline", err,
                        errlen);
    else
        rc = iperf_outcome(t, rc, ie, en, false, r, err, errlen);
out:
    iperf_test_free(t);
    return rc;
}

int dst_iperf_run(const struct dst_iperf_opts *o, struct dst_iperf_report *out, char *err,
                  size_t errlen)
{
    struct addrinfo *res = NULL;
    struct dst_iperf_report r;
    int rc = 0, n = 0;

    if (!o->host || !*o->host || o->port < 0 || o->port > 65535 || o->duration_s < 0 ||
        o->streams < 0 || o->streams > 128 || o->omit_s < 0 || o->timeout_ms < 0)
        return snprintf(err, errlen, "iperf3: bad options"), DST_EINVAL;
    long test_ms = ((o->duration_s ? o->duration_s : 10) + o->omit_s) * 1000L + SLACK_MS;
    int64_t deadline = dst_monotonic_ms() + (o->timeout_ms ? o->timeout_ms : test_ms);
    rc = iperf_resolve(o->host, o->port ? o->port : DST_IPERF_PORT, 0, &res, err, errlen);
    if (rc)
        return rc;
    struct timespec ts = iperf_mono_ts(deadline);
    if (pthread_mutex_clocklock(&lib_lock, CLOCK_MONOTONIC, &ts) != 0) {
        freeaddrinfo(res);
        return snprintf(err, errlen, "busy: libiperf is in use by another test in this process"),
               DST_EBUSY;
    }
    /* a name with several addresses (localhost: ::1, 127.0.0.1): the next one when refused */
    for (struct addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next, n++) {
        rc = client_once(o, ai, deadline, &r, err, errlen);
        if (rc != DST_EDEP)
            break;
    }
    pthread_mutex_unlock(&lib_lock);
    freeaddrinfo(res);
    if (rc == 0)
        *out = r;
    return rc;
}
