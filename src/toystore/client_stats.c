/* client_stats.c - the toy store client's tallies: outcomes and exact latency percentiles */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "toystore/client_stats.h"

static const char *const outcome_names[TOYCLIENT_NOUTCOMES] = {
    "ok", "not_found", "out_of_stock", "rejected", "mismatch", "bad_reply", "transport",
};

const char *toyclient_outcome_name(enum toyclient_outcome o)
{
    return (int)o >= 0 && (int)o < TOYCLIENT_NOUTCOMES ? outcome_names[o] : "unknown";
}

void toyclient_lat_add(struct toyclient_lat *l, double ms)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->ms = dst_xrealloc(l->ms, l->cap * sizeof(*l->ms));
    }
    l->ms[l->n++] = ms;
}

void toyclient_lat_merge(struct toyclient_lat *dst, const struct toyclient_lat *src)
{
    for (size_t i = 0; i < src->n; i++)
        toyclient_lat_add(dst, src->ms[i]);
}

void toyclient_lat_release(struct toyclient_lat *l)
{
    if (!l)
        return;
    free(l->ms);
    memset(l, 0, sizeof(*l));
}

double toyclient_lat_mean(const struct toyclient_lat *l)
{
    double sum = 0;

    if (l->n == 0)
        return NAN;
    for (size_t i = 0; i < l->n; i++)
        sum += l->ms[i];
    return sum / (double)l->n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double toyclient_lat_percentile(struct toyclient_lat *l, double p)
{
    if (l->n == 0)
        return NAN;
    qsort(l->ms, l->n, sizeof(*l->ms), cmp_double);
    /* p * n first: exact for whole p and any realistic n; the epsilon absorbs 99.9 * n */
    double rank = ceil(p * (double)l->n / 100.0 - 1e-9);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return l->ms[i < l->n ? i : l->n - 1];
}

void toyclient_tally_init(struct toyclient_tally *t, const char *kind)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
}

void toyclient_tally_release(struct toyclient_tally *t)
{
    if (t)
        toyclient_lat_release(&t->lat);
}

void toyclient_tally_add(struct toyclient_tally *t, enum toyclient_outcome o, double ms,
                         const char *msg)
{
    if ((int)o < 0 || (int)o >= TOYCLIENT_NOUTCOMES)
        o = TOYCLIENT_BAD_REPLY;
    t->n[o]++;
    if (ms >= 0)
        toyclient_lat_add(&t->lat, ms);
    if (o != TOYCLIENT_OK && msg && !t->first[o][0])
        snprintf(t->first[o], sizeof(t->first[o]), "%s", msg);
}

void toyclient_tally_merge(struct toyclient_tally *dst, const struct toyclient_tally *src)
{
    for (int o = 0; o < TOYCLIENT_NOUTCOMES; o++) {
        dst->n[o] += src->n[o];
        if (!dst->first[o][0])
            memcpy(dst->first[o], src->first[o], sizeof(dst->first[o]));
    }
    toyclient_lat_merge(&dst->lat, &src->lat);
}

uint64_t toyclient_tally_count(const struct toyclient_tally *t)
{
    uint64_t sum = 0;

    for (int o = 0; o < TOYCLIENT_NOUTCOMES; o++)
        sum += t->n[o];
    return sum;
}

uint64_t toyclient_tally_errors(const struct toyclient_tally *t)
{
    return toyclient_tally_count(t) - t->n[TOYCLIENT_OK];
}

json_t *toyclient_tally_json(struct toyclient_tally *t)
{
    json_t *j = json_object();

    dst_json_set_int(j, "count", (int64_t)toyclient_tally_count(t));
    dst_json_set_int(j, "ok", (int64_t)t->n[TOYCLIENT_OK]);
    dst_json_set_int(j, "errors", (int64_t)toyclient_tally_errors(t));
    for (int o = 1; o < TOYCLIENT_NOUTCOMES; o++)
        dst_json_set_int(j, outcome_names[o], (int64_t)t->n[o]);
    dst_json_set_num(j, "mean_ms", toyclient_lat_mean(&t->lat));
    dst_json_set_num(j, "p50_ms", toyclient_lat_percentile(&t->lat, 50));
    dst_json_set_num(j, "p99_ms", toyclient_lat_percentile(&t->lat, 99));
    dst_json_set_num(j, "max_ms", toyclient_lat_percentile(&t->lat, 100));
    return j;
}

void toyclient_tally_print_header(FILE *out)
{
    fprintf(out, "%-6s %9s %9s %7s %10s %10s %10s %10s\n", "kind", "count", "ok", "errors",
            "mean ms", "p50 ms", "p99 ms", "max ms");
}

/* A latency cell: "-" without samples. */
static void cell(FILE *out, double ms)
{
    if (isnan(ms))
        fprintf(out, " %10s", "-");
    else
        fprintf(out, " %10.3f", ms);
}

void toyclient_tally_print(struct toyclient_tally *t, FILE *out)
{
    fprintf(out, "%-6s %9llu %9llu %7llu", t->kind, (unsigned long long)toyclient_tally_count(t),
            (unsigned long long)t->n[TOYCLIENT_OK], (unsigned long long)toyclient_tally_errors(t));
    cell(out, toyclient_lat_mean(&t->lat));
    cell(out, toyclient_lat_percentile(&t->lat, 50));
    cell(out, toyclient_lat_percentile(&t->lat, 99));
    cell(out, toyclient_lat_percentile(&t->lat, 100));
    fputc('\n', out);
}

void toyclient_tally_print_errors(const struct toyclient_tally *t, FILE *out)
{
    for (int o = 1; o < TOYCLIENT_NOUTCOMES; o++) {
        if (!t->n[o])
            continue;
        fprintf(out, "  %s: %llu %s", t->kind, (unsigned long long)t->n[o], outcome_names[o]);
        if (t->first[o][0])
            fprintf(out, " (first: %s)", t->first[o]);
        fputc('\n', out);
    }
}
