/* datetime.h - wall clock, monotonic clock, ISO 8601 formatting and parsing */
#ifndef DST_DATETIME_H
#define DST_DATETIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DST_DATETIME_LEN 40

int64_t dst_datetime_now_ms(void); /* wall clock, ms since the Unix epoch (UTC) */
int64_t dst_monotonic_ms(void);    /* CLOCK_MONOTONIC in ms */
int64_t dst_monotonic_us(void);    /* CLOCK_MONOTONIC in µs */

/* "2026-11-21T10:15:00.123Z" (UTC, always milliseconds). */
void dst_datetime_format_utc(int64_t ms, char out[DST_DATETIME_LEN]);

/* Local time with its offset, "2026-11-21T11:15:00.123+01:00" (the .NET DateTime.Now form). */
void dst_datetime_format_local(int64_t ms, char out[DST_DATETIME_LEN]);

/*
 * Parses an ISO 8601 date or date-time: "YYYY-MM-DD", optionally followed by 'T' or ' ' and
 * "hh:mm[:ss[.fraction]]", optionally followed by "Z" or "±hh:mm" / "±hhmm". Without a zone the
 * value is local time (TZ). Fractions beyond milliseconds are truncated. Checks the calendar
 * (month 1-12, day within month, hour < 24, ...). DST_EINVAL on anything else.
 */
int dst_datetime_parse(const char *s, int64_t *ms_out);

/* Start (00:00:00.000) of the local calendar day containing ms. */
int64_t dst_datetime_local_day_start(int64_t ms);

#endif
