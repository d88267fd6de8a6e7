/* monitor.h - `dstmc monitor`'s parts: the backends, their health, the status they make */
#ifndef DST_MONITOR_H
#define DST_MONITOR_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct dst_http_proxy;
struct dst_pinger;
struct dst_sse_hub;

#define MONITOR_MAX_BACKENDS 16

/* One backend in priority order (index 0 first): "VM1" machine and "B1" service. */
struct monitor_backend {
    struct monitor *m;
    int index;
    char name[16]; /* "VM1" */
    char url[256]; /* base URL without a trailing slash: "http://1.2.3.100:3000" */
    char host[256];
    int port;
    /* under m->mu */
    bool vm_up, svc_up;
    bool polled;                 /* a first round is done */
    int64_t rtt_us, svc_us;      /* last echo round trip, last GET /ping time; -1 unknown */
    int64_t vm_since, svc_since; /* wall clock ms of the last change (or of the start) */
    uint64_t vm_changes, svc_changes;
    char vm_err[160], svc_err[160]; /* why it is down; "" when up */
    uint64_t requests, failures;    /* forwarding attempts, failed ones */
    /* the poller's own */
    pthread_t thread;
    bool started;
    struct sockaddr_storage addr; /* host, resolved at resolved_ms (0: not yet) */
    socklen_t addrlen;
    int64_t resolved_ms;
};

struct monitor {
    struct monitor_backend b[MONITOR_MAX_BACKENDS];
    int n;
    long poll_ms, timeout_ms;
    bool calculate;
    struct dst_pinger *pinger;
    struct dst_http_proxy *proxy; /* kicked when a backend's state changes */
    struct dst_sse_hub *hub;      /* "status" events */
    pthread_mutex_t mu;           /* guards the backends' state and what follows */
    pthread_cond_t cv;            /* the pollers' sleep; the first round's end */
    bool stopping;
    uint64_t requests, retried, no_host;
    uint64_t version, published_version;          /* counts changes to the above, for the page */
    int64_t started, updated, changed, published; /* wall clock ms */
};

/* Reads a --backend URL ("http://HOST:PORT[/prefix]") into b; err says why not. */
int monitor_backend_init(struct monitor_backend *b, int index, const char *url, char *err,
                         size_t errlen);

/* Starts one poller per backend and waits (a few timeouts at most) for their first round. */
int monitor_health_start(struct monitor *m);
/* Stops and joins the pollers. */
void monitor_health_stop(struct monitor *m);

/* The backend that takes traffic now, the first whose machine and service are up; -1: none. */
int monitor_active_locked(const struct monitor *m);
/* Whether backend i's machine and service are up; under m->mu. */
bool monitor_up_locked(const struct monitor *m, int i);

/* The original's {"VM":[…],"B":[…]}, or (rich) the whole status. Takes m->mu. */
json_t *monitor_status_json(struct monitor *m, bool rich);
/* Sends the rich status as a "status" event to the page's streams. */
void monitor_publish(struct monitor *m);

#endif
