/* store_rollup_priv.h - what store_rollup.c and store_rollup_series.c share (core-internal) */
#ifndef DST_STORE_ROLLUP_PRIV_H
#define DST_STORE_ROLLUP_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "core/store.h"
#include "core/store_sql.h"

/* The rollups table's columns in one order (reads and writes), and their placeholders. */
#define DST_STORE_ROLLUP_M_COLS(m) m "_n, " m "_min, " m "_max, " m "_sum, " m "_p50, " m "_p90"
/* clang-format off */
#define DST_STORE_ROLLUP_COLS                                                          \
    "step_ms, t_ms, probe, n, failed, " DST_STORE_ROLLUP_M_COLS("d") ", "              \
    DST_STORE_ROLLUP_M_COLS("u") ", " DST_STORE_ROLLUP_M_COLS("p") ", "                \
    DST_STORE_ROLLUP_M_COLS("j") ", " DST_STORE_ROLLUP_M_COLS("l")
/* clang-format on */
#define DST_STORE_ROLLUP_NCOLS (5 + 6 * DST_ROLLUP_NMEASURES)
#define DST_STORE_ROLLUP_Q6    "?, ?, ?, ?, ?, ?"
#define DST_STORE_ROLLUP_VALUES                                                              \
    "(?, ?, ?, ?, ?, " DST_STORE_ROLLUP_Q6 ", " DST_STORE_ROLLUP_Q6 ", " DST_STORE_ROLLUP_Q6 \
    ", " DST_STORE_ROLLUP_Q6 ", " DST_STORE_ROLLUP_Q6 ")"

/* t rounded down to a multiple of step (> 0), before 1970 too. */
int64_t dst_store_rollup_floor(int64_t t, int64_t step);

/* A column's number as a double; NAN for NULL. */
double dst_store_rollup_real(const struct dst_store_sql_val *v);

/* The nearest-rank p-th percentile of the ascending v[0 .. n): v[ceil(p / 100 * n) - 1]. */
double dst_store_rollup_rank(const double *v, size_t n, int p);

/* Sets r (but its probe) from a row of the rollups columns in store_rollup.c's order. */
void dst_store_rollup_from_row(const struct dst_store_sql_val *cols, struct dst_rollup *r);

/* r's columns with probe as its probe, as bind values a[0 .. DST_STORE_ROLLUP_NCOLS). */
void dst_store_rollup_args(const struct dst_rollup *r, const char *probe,
                           struct dst_store_sql_val *a);

/*
 * dst_store_series from the rollups where they serve (see store.h): DST_ENOTFOUND when q's
 * step or start is no whole hour, or its range holds no whole rollup bucket (then the caller
 * asks the raw rows).
 */
int dst_store_rollup_series(struct dst_store *s, const struct dst_series_query *q,
                            struct dst_series_bucket **out, size_t *n);

#endif
