/* status.c - what the monitor knows, as JSON: the original's bulbs and a richer picture */
#include <stdio.h>
#include <stdlib.h>

#include "core/datetime.h"
#include "core/json.h"
#include "core/log.h"
#include "core/ping.h"
#include "core/sse.h"
#include "monitor/monitor.h"

bool monitor_up_locked(const struct monitor *m, int i)
{
    return i >= 0 && i < m->n && m->b[i].vm_up && m->b[i].svc_up;
}

int monitor_active_locked(const struct monitor *m)
{
    for (int i = 0; i < m->n; i++) {
        if (monitor_up_locked(m, i))
            return i;
    }
    return -1;
}

static json_t *time_json(int64_t ms)
{
    char t[DST_DATETIME_LEN];

    if (ms <= 0)
        return json_null();
    dst_datetime_format_utc(ms, t);
    return json_string(t);
}

static json_t *ms_json(int64_t us)
{
    return us < 0 ? json_null() : json_real((double)us / 1000.0);
}

static json_t *err_json(const char *e)
{
    return *e ? json_string(e) : json_null();
}

static json_t *backend_json(const struct monitor_backend *b, bool active)
{
    return json_pack(
        "{s:i, s:s, s:s, s:s, s:i,"
        " s:{s:b, s:o, s:o, s:I, s:o}, s:{s:b, s:o, s:o, s:I, s:o}, s:I, s:I, s:b}",
        "index", b->index, "name", b->name, "url", b->url, "host", b->host, "port", b->port,
        "machine", "up", b->vm_up, "rtt_ms", ms_json(b->rtt_us), "since", time_json(b->vm_since),
        "changes", (json_int_t)b->vm_changes, "error", err_json(b->vm_err), "service", "up",
        b->svc_up, "latency_ms", ms_json(b->svc_us), "since", time_json(b->svc_since), "changes",
        (json_int_t)b->svc_changes, "error", err_json(b->svc_err), "requests",
        (json_int_t)b->requests, "failures", (json_int_t)b->failures, "active", active);
}

json_t *monitor_status_json(struct monitor *m, bool rich)
{
    json_t *vm = json_array(), *bs = json_array(), *list = NULL, *j = NULL;

    pthread_mutex_lock(&m->mu);
    int active = monitor_active_locked(m);
    for (int i = 0; i < m->n; i++) {
        json_array_append_new(vm, json_integer(m->b[i].vm_up));
        json_array_append_new(bs, json_integer(m->b[i].svc_up));
    }
    if (!rich) {
        pthread_mutex_unlock(&m->mu);
        return json_pack("{s:o, s:o}", "VM", vm, "B", bs);
    }
    list = json_array();
    for (int i = 0; i < m->n; i++)
        json_array_append_new(list, backend_json(&m->b[i], i == active));
    j = json_pack("{s:o, s:o, s:I, s:I, s:s, s:b, s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "VM",
                  vm, "B", bs, "poll_ms", (json_int_t)m->poll_ms, "timeout_ms",
                  (json_int_t)m->timeout_ms, "ping_method",
                  dst_ping_method_name(dst_pinger_method(m->pinger)), "calculate", m->calculate,
                  "active", active >= 0 ? json_integer(active) : json_null(), "requests",
                  (json_int_t)m->requests, "retried", (json_int_t)m->retried, "no_host",
                  (json_int_t)m->no_host, "started", time_json(m->started), "updated",
                  time_json(m->updated), "changed", time_json(m->changed), "backends", list);
    pthread_mutex_unlock(&m->mu);
    return j;
}

void monitor_publish(struct monitor *m)
{
    json_t *j = NULL;
    char *text = NULL;

    if (!m->hub)
        return;
    pthread_mutex_lock(&m->mu);
    m->published = dst_datetime_now_ms();
    m->published_version = m->version;
    pthread_mutex_unlock(&m->mu);
    j = monitor_status_json(m, true);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        dst_sse_hub_publish(m->hub, "status", text);
    else
        dst_error("monitor: cannot encode the status");
    free(text);
    json_decref(j);
}
