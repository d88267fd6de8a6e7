/* cron.h - five-field cron expressions (Vixie semantics) and their next fire time in local time */
#ifndef DST_CRON_H
#define DST_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A parsed expression: one bit per allowed value of each field. Day-of-week 7 is folded into
 * 0 (Sunday). The *_star flags record that a field began with '*' (Vixie's DOM_STAR, DOW_STAR,
 * MIN_STAR, HR_STAR), which changes two rules, see dst_cron_next.
 */
struct dst_cron {
    uint64_t minute; /* bit n: minute n, 0-59 */
    uint32_t hour;   /* bit n: hour n, 0-23 */
    uint32_t dom;    /* bit n: day of month n, 1-31 */
    uint16_t month;  /* bit n: month n, 1-12 */
    uint8_t dow;     /* bit n: weekday n, 0 = Sunday .. 6 = Saturday */
    bool dom_star, dow_star;
    bool wildcard; /* minute or hour began with '*': a wall-clock-paced job */
};

/*
 * Parses "minute hour day-of-month month day-of-week" (fields separated by blanks; each a
 * comma list of '*', N, A-B, '*'/N or A-B/N; months JAN-DEC and weekdays SUN-SAT in any case;
 * weekday 7 = Sunday) or one macro: @yearly @annually @monthly @weekly @daily @midnight
 * @hourly. Fills *out only on success. DST_EINVAL with a reason naming the field and the bad
 * token in err ("minute: '61' is out of 0-59").
 */
int dst_cron_parse(const char *expr, struct dst_cron *out, char *err, size_t errlen);

/*
 * The first fire time strictly after after_s (Unix seconds), in the process's local time zone
 * (TZ; tzset() is called). A day matches when its month matches and, if day-of-month and
 * day-of-week are both restricted (neither begins with '*'), when EITHER matches, else when
 * both do (Vixie cron).
 *
 * Daylight saving time, as cronie does it:
 * - a wall-clock time skipped by a spring-forward gap fires once, at the first instant after
 *   the gap (02:30 on a day 02:00 jumps to 03:00 fires at 03:00), for fixed-time jobs (minute
 *   and hour fields not beginning with '*'); wildcard jobs just follow the wall clock and skip
 *   the missing times (their next slot comes within the hour anyway, so "30 * * * *" keeps
 *   firing one real hour apart);
 * - a wall-clock time repeated by a fall-back fires once (the first time) for fixed-time
 *   jobs, and twice for wildcard jobs, which keep running through both hours.
 * Several scheduled times that land on the same instant fire once. Searches 8 years ahead
 * (so Feb 29 is always found, even across 2100): DST_ENOTFOUND if the expression never fires
 * ("0 0 30 2 *").
 */
int dst_cron_next(const struct dst_cron *c, int64_t after_s, int64_t *next_out);

#endif
