/* json.h - jansson helpers: bounded parsing, compact dumping, typed and case-insensitive access */
#ifndef DST_JSON_H
#define DST_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses exactly one JSON value from buf[0..len). Rejects duplicate object keys and trailing
 * garbage. On failure returns NULL and writes a human message into err, e.g.
 * "invalid JSON at line 1, column 7: '}' expected". Integers beyond int64 are errors.
 */
json_t *dst_json_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Compact dump (no spaces), reals with up to 15 significant digits; caller frees. */
char *dst_json_dumps(const json_t *j, size_t *len_out);

/* Object member lookup ignoring ASCII case (first match in insertion order); NULL if none. */
json_t *dst_json_iget(const json_t *obj, const char *key);

/* A JSON number (integer or real) as double; false if j is not a number. */
bool dst_json_number(const json_t *j, double *out);

/*
 * Makes s valid UTF-8 in place, as jansson wants its strings: each byte that does not belong to
 * a well-formed sequence becomes '?'. For texts that quote outside bytes or were cut to fit a
 * buffer (possibly in the middle of a character): jansson would refuse them whole.
 */
void dst_json_text_fix(char *s);

/* Setters that treat NAN / NULL as JSON null. */
void dst_json_set_num(json_t *obj, const char *key, double v);
void dst_json_set_str(json_t *obj, const char *key, const char *s);
void dst_json_set_int(json_t *obj, const char *key, int64_t v);

#endif
