/* progress.c - a running test's live progress beats, posted from a thread of their own */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/http_client.h"
#include "core/mem.h"
#include "speedtest/logger/progress.h"

struct logger_progress {
    const struct probe_opts *o;
    struct dst_http_client *hc; /* the sender's own: clients are not shared between threads */
    pthread_t thread;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool pending, stop;
    /* the beat waiting to be sent, with its texts */
    struct probe_beat beat;
    char state[16], request_id[128], phase[32], last_id[64];
};

static void copy_text(char *dst, size_t len, const char *src, const char **field)
{
    snprintf(dst, len, "%s", src ? src : "");
    *field = src ? dst : NULL;
}

static void *sender(void *arg)
{
    struct logger_progress *p = arg;
    struct probe_beat b;
    char state[16], rid[128], phase[32], last[64];

    pthread_mutex_lock(&p->m);
    for (;;) {
        while (!p->pending && !p->stop)
            pthread_cond_wait(&p->c, &p->m);
        if (p->stop)
            break;
        b = p->beat; /* copied out, so a newer beat may come while this one is sent */
        copy_text(state, sizeof(state), p->beat.state, &b.state);
        copy_text(rid, sizeof(rid), p->beat.request_id, &b.request_id);
        copy_text(phase, sizeof(phase), p->beat.phase, &b.phase);
        copy_text(last, sizeof(last), p->beat.last_id, &b.last_id);
        p->pending = false;
        pthread_mutex_unlock(&p->m);
        probe_heartbeat(p->o, p->hc, &b); /* quiet: a lost beat is only a late number */
        pthread_mutex_lock(&p->m);
    }
    pthread_mutex_unlock(&p->m);
    return NULL;
}

int logger_progress_start(const struct probe_opts *o, struct logger_progress **out)
{
    struct logger_progress *p = dst_xnew(struct logger_progress);
    int rc = o->sink ? 0 : dst_http_client_new(&p->hc); /* a sink needs no HTTP */

    p->o = o;
    pthread_mutex_init(&p->m, NULL);
    pthread_cond_init(&p->c, NULL);
    if (rc == 0 && pthread_create(&p->thread, NULL, sender, p) != 0)
        rc = DST_EDEP;
    if (rc) {
        dst_http_client_free(p->hc);
        pthread_mutex_destroy(&p->m);
        pthread_cond_destroy(&p->c);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void logger_progress_post(struct logger_progress *p, const struct probe_beat *b)
{
    pthread_mutex_lock(&p->m);
    p->beat = *b;
    copy_text(p->state, sizeof(p->state), b->state, &p->beat.state);
    copy_text(p->request_id, sizeof(p->request_id), b->request_id, &p->beat.request_id);
    copy_text(p->phase, sizeof(p->phase), b->phase, &p->beat.phase);
    copy_text(p->last_id, sizeof(p->last_id), b->last_id, &p->beat.last_id);
    p->pending = true;
    pthread_cond_signal(&p->c);
    pthread_mutex_unlock(&p->m);
}

void logger_progress_stop(struct logger_progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->m);
    p->stop = true;
    pthread_cond_signal(&p->c);
    pthread_mutex_unlock(&p->m);
    pthread_join(p->thread, NULL);
    dst_http_client_free(p->hc);
    pthread_mutex_destroy(&p->m);
    pthread_cond_destroy(&p->c);
    free(p);
}
