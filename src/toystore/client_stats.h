/* client_stats.h - the toy store client's tallies: outcomes and exact latency percentiles */
#ifndef TOYSTORE_CLIENT_STATS_H
#define TOYSTORE_CLIENT_STATS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* How one request ended. Everything but OK is an error of its kind. */
enum toyclient_outcome {
    TOYCLIENT_OK,
    TOYCLIENT_NOT_FOUND,    /* the front end answered 404 (product or order not found) */
    TOYCLIENT_OUT_OF_STOCK, /* an error answer whose message says "out of stock" */
    TOYCLIENT_REJECTED,     /* any other error answer (400, 5xx, ...) */
    TOYCLIENT_MISMATCH,     /* an order lookup that disagrees with what the client recorded */
    TOYCLIENT_BAD_REPLY,    /* an answer that is not the API's JSON */
    TOYCLIENT_TRANSPORT,    /* no answer: refused, reset, closed early, timed out */
    TOYCLIENT_NOUTCOMES,
};

/* "ok", "not_found", "out_of_stock", "rejected", "mismatch", "bad_reply", "transport". */
const char *toyclient_outcome_name(enum toyclient_outcome o);

/* Latency samples in ms, all kept: percentiles are exact over them. Zeroed = empty. */
struct toyclient_lat {
    double *ms;
    size_t n, cap;
};

void toyclient_lat_add(struct toyclient_lat *l, double ms);
/* Appends every sample of src to dst. */
void toyclient_lat_merge(struct toyclient_lat *dst, const struct toyclient_lat *src);
void toyclient_lat_release(struct toyclient_lat *l);
/* The arithmetic mean; NAN when empty. */
double toyclient_lat_mean(const struct toyclient_lat *l);
/*
 * The p-th percentile (0 <= p <= 100) by nearest rank: the smallest sample that at least p % of
 * the samples are at or below, i.e. sorted[ceil(p * n / 100) - 1] (the minimum for p = 0).
 * Always one of the samples. Sorts the samples in place. NAN when empty.
 */
double toyclient_lat_percentile(struct toyclient_lat *l, double p);

/* One kind of request (query, buy, order check): outcomes, the first error of each, latency. */
struct toyclient_tally {
    const char *kind; /* static text */
    uint64_t n[TOYCLIENT_NOUTCOMES];
    char first[TOYCLIENT_NOUTCOMES][256]; /* the first message of each error outcome */
    struct toyclient_lat lat; /* one sample per request that got an answer (any status) */
};

void toyclient_tally_init(struct toyclient_tally *t, const char *kind);
void toyclient_tally_release(struct toyclient_tally *t);
/* Counts one request; ms < 0: no answer came, no sample. msg (may be NULL) is kept if first. */
void toyclient_tally_add(struct toyclient_tally *t, enum toyclient_outcome o, double ms,
                         const char *msg);
/* Adds src's counts and samples to dst; dst keeps its first messages, src fills the gaps. */
void toyclient_tally_merge(struct toyclient_tally *dst, const struct toyclient_tally *src);
uint64_t toyclient_tally_count(const struct toyclient_tally *t);
uint64_t toyclient_tally_errors(const struct toyclient_tally *t);

/*
 * {"count","ok","errors","not_found","out_of_stock","rejected","mismatch","bad_reply",
 * "transport","mean_ms","p50_ms","p99_ms","max_ms"} (latencies null without samples); new
 * reference. Sorts the samples.
 */
json_t *toyclient_tally_json(struct toyclient_tally *t);

/* The table header and one row: kind, count, ok, errors, mean, p50, p99, max (ms). */
void toyclient_tally_print_header(FILE *out);
void toyclient_tally_print(struct toyclient_tally *t, FILE *out);
/* One line per error outcome seen: "  buy: 3 out_of_stock (first: ...)". */
void toyclient_tally_print_errors(const struct toyclient_tally *t, FILE *out);

#endif
