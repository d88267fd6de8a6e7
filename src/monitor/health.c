/* health.c - the monitor's pollers: an echo to each backend's machine, then GET /ping */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_proxy.h"
#include "core/log.h"
#include "core/ping.h"
#include "monitor/monitor.h"

#define REFRESH_MS     1000  /* the page's figures (round trips, counts) at least this often */
#define FIRST_ROUND_MS 3000  /* at most this long for every poller's first round at start */
#define RESOLVE_MS     10000 /* a host name is looked up again after this, or after a failure */

/*
 * Each backend has its own poller thread, so that a hanging backend delays nobody else. Every
 * poll_ms (from the start of one round to the next, like the original's setInterval) it sends
 * an echo to the machine (the pinger sends it once more when it is unanswered after half of
 * timeout_ms, at most a second: one lost packet does not make a machine down, and one that answers
 * neither is down after timeout_ms, as soon as before); when that is answered, GET /ping must
 * answer "pong" within timeout_ms for the service to count as up. A machine that does not answer
 * has its service down too (the original's rule). A change is logged, pushed to the page at once
 * and makes the proxy look again at its transfers.
 */

int monitor_backend_init(struct monitor_backend *b, int index, const char *url, char *err,
                         size_t errlen)
{
    const char *p = url, *host = NULL, *end = NULL;
    size_t hl = 0;

    memset(b, 0, sizeof(*b));
    b->index = index;
    b->port = 80;
    snprintf(b->name, sizeof(b->name), "VM%d", index + 1);
    if (strncmp(p, "http://", 7) != 0) {
        snprintf(err, errlen, "'%s' is not an http:// URL", url);
        return DST_EINVAL;
    }
    p += 7;
    if (*p == '[') {
        host = p + 1;
        end = strchr(host, ']');
        if (!end) {
            snprintf(err, errlen, "'%s': unclosed '[' in the host", url);
            return DST_EINVAL;
        }
        hl = (size_t)(end - host);
        p = end + 1;
    } else {
        host = p;
        hl = strcspn(p, ":/?#");
        p += hl;
    }
    if (hl == 0 || hl >= sizeof(b->host)) {
        snprintf(err, errlen, "'%s' has %s", url, hl ? "a host that is too long" : "no host");
        return DST_EINVAL;
    }
    memcpy(b->host, host, hl);
    b->host[hl] = '\0';
    if (*p == ':') {
        char *q = NULL;
        long port = strtol(p + 1, &q, 10);
        if (q == p + 1 || port < 1 || port > 65535 || (*q && *q != '/')) {
            snprintf(err, errlen, "'%s': the port must be 1-65535", url);
            return DST_EINVAL;
        }
        b->port = (int)port;
        p = q;
    }
    if (*p && *p != '/') {
        snprintf(err, errlen, "'%s': no query or fragment in a backend URL", url);
        return DST_EINVAL;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len >= sizeof(b->url)) {
        snprintf(err, errlen, "'%s' is too long", url);
        return DST_EINVAL;
    }
    memcpy(b->url, url, len);
    b->url[len] = '\0';
    b->rtt_us = b->svc_us = -1;
    return 0;
}

/* The backend's host address: looked up again every RESOLVE_MS, and after a failed echo. */
static bool resolve(struct monitor_backend *b, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int64_t now = dst_monotonic_ms();

    if (b->resolved_ms && now - b->resolved_ms < RESOLVE_MS)
        return true;
    int rc = getaddrinfo(b->host, NULL, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "DNS: cannot resolve '%.64s': %s", b->host, gai_strerror(rc));
        b->resolved_ms = 0;
        return false;
    }
    memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
    b->addrlen = ai->ai_addrlen;
    b->resolved_ms = now;
    freeaddrinfo(ai);
    return true;
}

/* The machine: one echo to the backend's host. */
static bool check_machine(struct monitor_backend *b, int64_t *rtt, char *err, size_t errlen)
{
    struct monitor *m = b->m;

    if (!resolve(b, err, errlen))
        return false;
    int rc = dst_pinger_probe(m->pinger, (struct sockaddr *)&b->addr, b->addrlen, b->port,
                              (int)m->timeout_ms, rtt, err, errlen);
    if (rc != 0)
        b->resolved_ms = 0; /* it may have moved: look it up again next round */
    return rc == 0;
}

/* The service: GET /ping answers "pong" in time. */
static bool check_service(struct monitor_backend *b, struct dst_http_client *hc, int64_t *us,
                          char *err, size_t errlen)
{
    char url[300];
    struct dst_http_resp resp = {0};
    struct dst_http_call call = {.url = url,
                                 .timeout_ms = b->m->timeout_ms,
                                 .connect_timeout_ms = b->m->timeout_ms,
                                 .max_body = 4096};
    int64_t t0 = dst_monotonic_us();
    bool up = false;

    snprintf(url, sizeof(url), "%s/ping", b->url);
    int rc = hc ? dst_http_client_do(hc, &call, &resp) : DST_EDEP;
    *us = dst_monotonic_us() - t0;
    if (rc == DST_ETIMEDOUT)
        snprintf(err, errlen, "GET /ping: no answer in %ld ms", b->m->timeout_ms);
    else if (rc)
        snprintf(err, errlen, "GET /ping: %.120s", resp.err[0] ? resp.err : dst_strerror(rc));
    else if (resp.status != 200)
        snprintf(err, errlen, "GET /ping: HTTP %ld", resp.status);
    else if (resp.len != 4 || memcmp(resp.body, "pong", 4) != 0)
        snprintf(err, errlen, "GET /ping: answered '%.40s', not 'pong'",
                 resp.body ? resp.body : "");
    else
        up = true;
    dst_http_resp_release(&resp);
    return up;
}

/* One round for b; true when its machine or service changed state. */
static bool poll_once(struct monitor_backend *b, struct dst_http_client *hc)
{
    struct monitor *m = b->m;
    char vm_err[160] = "", svc_err[160] = "";
    int64_t rtt = -1, svc_us = -1;
    bool vm = check_machine(b, &rtt, vm_err, sizeof(vm_err));
    bool svc = vm && check_service(b, hc, &svc_us, svc_err, sizeof(svc_err));
    int64_t now = dst_datetime_now_ms();
    bool changed = false, first = false;

    if (!vm)
        snprintf(svc_err, sizeof(svc_err), "machine down");
    pthread_mutex_lock(&m->mu);
    first = !b->polled;
    if (first || vm != b->vm_up) {
        b->vm_changes += first ? 0 : 1;
        b->vm_since = now;
        changed = true;
    }
    if (first || svc != b->svc_up) {
        b->svc_changes += first ? 0 : 1;
        b->svc_since = now;
        changed = true;
    }
    b->vm_up = vm;
    b->svc_up = svc;
    b->rtt_us = vm ? rtt : -1;
    b->svc_us = svc ? svc_us : -1;
    snprintf(b->vm_err, sizeof(b->vm_err), "%s", vm ? "" : vm_err);
    snprintf(b->svc_err, sizeof(b->svc_err), "%s", svc ? "" : svc_err);
    b->polled = true;
    m->updated = now;
    if (changed)
        m->changed = now;
    bool refresh =
        changed || m->version != m->published_version || now - m->published >= REFRESH_MS;
    if (first)
        pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (changed)
        dst_info("%s (%s): machine %s%s%s, service %s%s%s", b->name, b->url, vm ? "up" : "down",
                 vm ? "" : ": ", vm_err, svc ? "up" : "down", svc ? "" : ": ", svc ? "" : svc_err);
    if (refresh)
        monitor_publish(m);
    return changed;
}

static void *poller(void *arg)
{
    struct monitor_backend *b = arg;
    struct monitor *m = b->m;
    struct dst_http_client *hc = NULL;

    if (dst_http_client_new(&hc) != 0)
        dst_error("%s: cannot make an HTTP client: its service will count as down", b->name);
    for (;;) {
        int64_t next = dst_monotonic_ms() + m->poll_ms;
        if (poll_once(b, hc) && m->proxy)
            dst_http_proxy_kick(m->proxy);
        pthread_mutex_lock(&m->mu);
        while (!m->stopping) {
            int64_t left = next - dst_monotonic_ms();
            if (left <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += left / 1000;
            ts.tv_nsec += (left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        }
        bool stop = m->stopping;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            break;
    }
    dst_http_client_free(hc);
    return NULL;
}

int monitor_health_start(struct monitor *m)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < m->n; i++) {
        m->b[i].m = m;
        if (pthread_create(&m->b[i].thread, NULL, poller, &m->b[i]) != 0) {
            dst_error("cannot start the poller of %s", m->b[i].name);
            return DST_EIO;
        }
        m->b[i].started = true;
    }
    /* the first answers decide where the first requests go */
    int64_t deadline = dst_monotonic_ms() + FIRST_ROUND_MS;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        int done = 0;
        for (int i = 0; i < m->n; i++)
            done += m->b[i].polled;
        int64_t left = deadline - dst_monotonic_ms();
        if (done == m->n || left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (left > 50 ? 50 : left) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

void monitor_health_stop(struct monitor *m)
{
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->n; i++) {
        if (m->b[i].started)
            pthread_join(m->b[i].thread, NULL);
        m->b[i].started = false;
    }
    pthread_cond_destroy(&m->cv);
}
