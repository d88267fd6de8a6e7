/* metrics.h - counters and gauges rendered in the Prometheus text format */
#ifndef DST_METRICS_H
#define DST_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct dst_buf;
struct dst_metrics;

/*
 * A registry of metric families. A family has a name, help text, a type (counter or gauge)
 * and series told apart by one label string (already formatted, e.g. "route=\"/x\",code=\"200\""
 * or "" for none). Updates are thread-safe and cheap (a mutex per registry, a short list).
 */
enum dst_metric_type { DST_METRIC_COUNTER, DST_METRIC_GAUGE };

struct dst_metrics *dst_metrics_new(void);
void dst_metrics_free(struct dst_metrics *m);

/* Declares a family; adding the same name twice is a programmer error (assert). */
void dst_metrics_declare(struct dst_metrics *m, const char *name, enum dst_metric_type type,
                         const char *help);
/* Adds v to the series (created at 0). Unknown family: programmer error. */
void dst_metrics_add(struct dst_metrics *m, const char *name, const char *labels, double v);
/* Sets a gauge series. */
void dst_metrics_set(struct dst_metrics *m, const char *name, const char *labels, double v);
/* Reads a series (0 if absent), for tests. */
double dst_metrics_get(struct dst_metrics *m, const char *name, const char *labels);

/* Appends the text exposition format ("# HELP", "# TYPE", series lines) to out. */
int dst_metrics_render(struct dst_metrics *m, struct dst_buf *out);

/* Escapes a label value (\\, \", \n) into out (cap outlen, always NUL-terminated). */
void dst_metrics_escape(const char *v, char *out, size_t outlen);

#endif
