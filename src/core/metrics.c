/* metrics.c - counters and gauges rendered in the Prometheus text format */
#include "core/metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

struct series {
    char *labels;
    double v;
    struct series *next;
};

struct family {
    char *name;
    char *help;
    enum dst_metric_type type;
    struct series *series, *series_tail; /* in order of creation */
    struct family *next;
};

struct dst_metrics {
    pthread_mutex_t lock;
    struct family *families, *families_tail; /* in order of declaration */
};

struct dst_metrics *dst_metrics_new(void)
{
    struct dst_metrics *m = dst_xnew(struct dst_metrics);

    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void dst_metrics_free(struct dst_metrics *m)
{
    if (!m)
        return;
    while (m->families) {
        struct family *f = m->families;
        m->families = f->next;
        while (f->series) {
            struct series *s = f->series;
            f->series = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct family *family_find(struct dst_metrics *m, const char *name)
{
    for (struct family *f = m->families; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

void dst_metrics_declare(struct dst_metrics *m, const char *name, enum dst_metric_type type,
                         const char *help)
{
    pthread_mutex_lock(&m->lock);
    struct family *f = family_find(m, name);
    assert(!f && "metric family declared twice");
    if (f) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    f = dst_xnew(struct family);
    f->name = dst_xstrdup(name);
    f->help = dst_xstrdup(help ? help : "");
    f->type = type;
    if (m->families_tail)
        m->families_tail->next = f;
    else
        m->families = f;
    m->families_tail = f;
    pthread_mutex_unlock(&m->lock);
}

static struct series *series_find(struct family *f, const char *labels)
{
    for (struct series *s = f->series; s; s = s->next) {
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    return NULL;
}

/* The series of name and labels, created at 0; NULL if the family is unknown. */
static struct series *series_get(struct dst_metrics *m, const char *name, const char *labels)
{
    struct family *f = family_find(m, name);
    struct series *s = NULL;

    assert(f && "metric family not declared");
    if (!f)
        return NULL;
    s = series_find(f, labels ? labels : "");
    if (s)
        return s;
    s = dst_xnew(struct series);
    s->labels = dst_xstrdup(labels ? labels : "");
    if (f->series_tail)
        f->series_tail->next = s;
    else
        f->series = s;
    f->series_tail = s;
    return s;
}

void dst_metrics_add(struct dst_metrics *m, const char *name, const char *labels, double v)
{
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, name, labels);
    if (s)
        s->v += v;
    pthread_mutex_unlock(&m->lock);
}

void dst_metrics_set(struct dst_metrics *m, const char *name, const char *labels, double v)
{
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, name, labels);
    if (s)
        s->v = v;
    pthread_mutex_unlock(&m->lock);
}

double dst_metrics_get(struct dst_metrics *m, const char *name, const char *labels)
{
    double v = 0;

    pthread_mutex_lock(&m->lock);
    struct family *f = family_find(m, name);
    struct series *s = f ? series_find(f, labels ? labels : "") : NULL;
    if (s)
        v = s->v;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* A sample value: integers plainly, NaN and infinities as Prometheus spells them. */
static void format_value(double v, char *out, size_t outlen)
{
    if (isnan(v))
        snprintf(out, outlen, "NaN");
    else if (isinf(v))
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        snprintf(out, outlen, "0");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact integers */
        snprintf(out, outlen, "%.0f", v);
    else
        snprintf(out, outlen, "%.17g", v);
}

/* HELP text escapes backslash and newline. */
static int put_help(struct dst_buf *out, const char *help)
{
    int rc = 0;

    for (const char *p = help; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = dst_buf_puts(out, "\\\\");
        else if (*p == '\n')
            rc = dst_buf_puts(out, "\\n");
        else
            rc = dst_buf_append(out, p, 1);
    }
    return rc;
}

static int render_family(const struct family *f, struct dst_buf *out)
{
    char value[64];
    int rc = dst_buf_printf(out, "# HELP %s ", f->name);

    if (rc == 0)
        rc = put_help(out, f->help);
    if (rc == 0)
        rc = dst_buf_printf(out, "\n# TYPE %s %s\n", f->name,
                            f->type == DST_METRIC_COUNTER ? "counter" : "gauge");
    for (const struct series *s = f->series; s && rc == 0; s = s->next) {
        format_value(s->v, value, sizeof(value));
        if (s->labels[0])
            rc = dst_buf_printf(out, "%s{%s} %s\n", f->name, s->labels, value);
        else
            rc = dst_buf_printf(out, "%s %s\n", f->name, value);
    }
    return rc;
}

int dst_metrics_render(struct dst_metrics *m, struct dst_buf *out)
{
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    for (const struct family *f = m->families; f && rc == 0; f = f->next)
        rc = render_family(f, out);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void dst_metrics_escape(const char *v, char *out, size_t outlen)
{
    size_t n = 0;

    if (!outlen)
        return;
    for (const char *p = v ? v : ""; *p; p++) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t need = rep ? 2 : 1;
        if (n + need >= outlen)
            break; /* never split an escape */
        if (rep) {
            memcpy(out + n, rep, 2);
        } else {
            out[n] = *p;
        }
        n += need;
    }
    out[n] = '\0';
}
