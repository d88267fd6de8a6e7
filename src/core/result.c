/* result.c - the result model: one speed test, ok or failed, and its native JSON form */
#include "core/result.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"

#define MAX_SAFE_INT 9007199254740992.0  /* 2^53: the largest integer a double holds exactly */
#define TIME_MIN_MS  (-62135596800000LL) /* 0001-01-01T00:00:00Z, .NET's DateTime.MinValue */
#define TIME_MAX_MS  253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/* How a field is read, checked and shown. */
enum kind { K_ID, K_SEQ, K_TIME, K_STATUS, K_STR, K_REAL, K_INT, K_BOOL, K_OBJ };

struct field {
    const char *key;  /* JSON member name */
    const char *path; /* name in error messages */
    enum kind kind;
    size_t off;       /* offset in struct dst_result (K_STR, K_REAL, K_INT) */
    double min, max;  /* K_REAL, K_INT: range; K_STR: min 0: max bytes, else min..max characters */
    const char *want; /* what a valid value is, for error messages */
    const struct field *sub; /* K_OBJ: its members, ended by a NULL key */
};

#define OFF(m) offsetof(struct dst_result, m)
/* clang-format off */
#define STR(k, p, m) {k, p, K_STR, OFF(m), 0, 500, "a string of at most 500 bytes", NULL}
#define NUM(k, p, m, lo, hi, w) {k, p, K_REAL, OFF(m), lo, hi, "a number from " w, NULL}
#define INT(k, p, m, lo, hi, w) {k, p, K_INT, OFF(m), lo, hi, "an integer from " w, NULL}
#define COUNTRY(p, m) {"country", p, K_STR, OFF(m), 1, 64, "a string of 1 to 64 characters", NULL}
/* clang-format on */

static const struct field server_fields[] = {
    INT("id", "server.id", server_id, 0, MAX_SAFE_INT, "0 to 2^53"),
    STR("host", "server.host", server_host),
    STR("name", "server.name", server_name),
    STR("sponsor", "server.sponsor", server_sponsor),
    COUNTRY("server.country", server_country),
    NUM("lat", "server.lat", server_lat, -90, 90, "-90 to 90"),
    NUM("lon", "server.lon", server_lon, -180, 180, "-180 to 180"),
    NUM("distance_m", "server.distance_m", server_distance_m, 0, 21e6, "0 to 2.1e7"),
    {NULL},
};

static const struct field client_fields[] = {
    STR("ip", "client.ip", client_ip),
    STR("isp", "client.isp", client_isp),
    COUNTRY("client.country", client_country),
    NUM("lat", "client.lat", client_lat, -90, 90, "-90 to 90"),
    NUM("lon", "client.lon", client_lon, -180, 180, "-180 to 180"),
    {NULL},
};

/* The native JSON form, in the order docs/api.md shows it. */
static const struct field fields[] = {
    {"id", "id", K_ID, 0, 0, 0, "a UUID", NULL},
    {"seq", "seq", K_SEQ, 0, 0, 0, "an integer", NULL},
    {"time", "time", K_TIME, 0, 0, 0, "an ISO 8601 date-time or integer milliseconds", NULL},
    {"status", "status", K_STATUS, 0, 0, 0, "\"ok\" or \"failed\"", NULL},
    {"error", "error", K_STR, OFF(error), 0, 2000, "a string of at most 2000 bytes", NULL},
    {"probe", "probe", K_STR, OFF(probe), 1, 128, "a string of 1 to 128 characters", NULL},
    STR("location", "location", location),
    STR("user", "user", user),
    INT("device", "device", device, 0, 2147483647, "0 to 2^31-1"),
    STR("engine", "engine", engine),
    STR("target", "target", target),
    STR("request_id", "request_id", request_id),
    NUM("download_bps", "download_bps", download_bps, 0, 1e13, "0 to 1e13"),
    NUM("upload_bps", "upload_bps", upload_bps, 0, 1e13, "0 to 1e13"),
    NUM("ping_ms", "ping_ms", ping_ms, 0, 3.6e6, "0 to 3.6e6"),
    NUM("jitter_ms", "jitter_ms", jitter_ms, 0, 3.6e6, "0 to 3.6e6"),
    NUM("packet_loss_pct", "packet_loss_pct", loss_pct, 0, 100, "0 to 100"),
    INT("bytes_down", "bytes_down", bytes_down, 0, MAX_SAFE_INT, "0 to 2^53"),
    INT("bytes_up", "bytes_up", bytes_up, 0, MAX_SAFE_INT, "0 to 2^53"),
    NUM("duration_s", "duration_s", duration_s, 0, 86400, "0 to 86400"),
    INT("streams", "streams", streams, 0, 1024, "0 to 1024"),
    {"server", "server", K_OBJ, 0, 0, 0, "an object", server_fields},
    {"client", "client", K_OBJ, 0, 0, 0, "an object", client_fields},
    /* shown only when true, so a probe's result reads the same to an API that predates them */
    {"demo", "demo", K_BOOL, OFF(demo), 0, 0, "true or false", NULL},
    {"excluded", "excluded", K_BOOL, OFF(excluded), 0, 0, "true or false", NULL},
    {NULL},
};

static char **str_at(struct dst_result *r, const struct field *f)
{
    return (char **)((char *)r + f->off);
}

static char *const *cstr_at(const struct dst_result *r, const struct field *f)
{
    return (char *const *)((const char *)r + f->off);
}

static double *real_at(struct dst_result *r, const struct field *f)
{
    return (double *)((char *)r + f->off);
}

static double creal_at(const struct dst_result *r, const struct field *f)
{
    return *(const double *)((const char *)r + f->off);
}

static int64_t *int_at(struct dst_result *r, const struct field *f)
{
    return (int64_t *)((char *)r + f->off);
}

static int64_t cint_at(const struct dst_result *r, const struct field *f)
{
    return *(const int64_t *)((const char *)r + f->off);
}

/* Calls fn(&string, the same string of src or NULL) for every K_STR field, nested ones too. */
static void each_string(struct dst_result *r, void (*fn)(char **p, const char *src),
                        const struct dst_result *src)
{
    for (const struct field *f = fields; f->key; f++) {
        if (f->kind == K_STR)
            fn(str_at(r, f), src ? *cstr_at(src, f) : NULL);
        for (const struct field *g = f->kind == K_OBJ ? f->sub : NULL; g && g->key; g++) {
            if (g->kind == K_STR)
                fn(str_at(r, g), src ? *cstr_at(src, g) : NULL);
        }
    }
}

void dst_result_init(struct dst_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = DST_RESULT_OK;
    r->device = r->bytes_down = r->bytes_up = r->streams = r->server_id = -1;
    r->download_bps = r->upload_bps = NAN;
    r->ping_ms = r->jitter_ms = r->loss_pct = r->duration_s = NAN;
    r->server_lat = r->server_lon = r->server_distance_m = NAN;
    r->client_lat = r->client_lon = NAN;
}

static void free_str(char **p, const char *unused)
{
    (void)unused;
    free(*p);
    *p = NULL;
}

static void dup_str(char **p, const char *src)
{
    *p = dst_xstrdup(src);
}

void dst_result_release(struct dst_result *r)
{
    if (!r)
        return;
    each_string(r, free_str, NULL);
    dst_result_init(r);
}

void dst_result_copy(struct dst_result *dst, const struct dst_result *src)
{
    memcpy(dst, src, sizeof(*dst));
    each_string(dst, dup_str, src);
}

void dst_result_set(char **field, const char *s)
{
    char *copy = dst_xstrdup(s);
    free(*field);
    *field = copy;
}

void dst_result_set_cut(char **field, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n <= max) {
        dst_result_set(field, s);
        return;
    }
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* s[n], the first byte left out, continues a character: leave all of it out */
    free(*field);
    *field = dst_xstrndup(s, n);
}

const char *dst_result_status_name(enum dst_result_status s)
{
    switch (s) {
    case DST_RESULT_OK:
        return "ok";
    case DST_RESULT_FAILED:
        return "failed";
    }
    return "invalid";
}

int dst_result_status_parse(const char *s, enum dst_result_status *out)
{
    if (s && strcmp(s, "ok") == 0)
        *out = DST_RESULT_OK;
    else if (s && strcmp(s, "failed") == 0)
        *out = DST_RESULT_FAILED;
    else
        return DST_EINVAL;
    return 0;
}

/* ---- to JSON ---- */

/* A double as JSON: null when unknown, an integer when it is one (85000000, not 85000000.0). */
static json_t *num_json(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < MAX_SAFE_INT)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *field_json(const struct dst_result *r, const struct field *f);

static bool *bool_at(struct dst_result *r, const struct field *f)
{
    return (bool *)((char *)r + f->off);
}

static bool cbool_at(const struct dst_result *r, const struct field *f)
{
    return *(const bool *)((const char *)r + f->off);
}

static json_t *object_json(const struct dst_result *r, const struct field *list)
{
    json_t *o = json_object();
    for (const struct field *f = list; f->key; f++) {
        if (f->kind != K_BOOL || cbool_at(r, f))
            json_object_set_new(o, f->key, field_json(r, f));
    }
    return o;
}

static json_t *field_json(const struct dst_result *r, const struct field *f)
{
    char when[DST_DATETIME_LEN];
    const char *s;
    int64_t i;

    switch (f->kind) {
    case K_ID:
        return json_string(r->id);
    case K_SEQ:
        return r->seq > 0 ? json_integer(r->seq) : json_null();
    case K_TIME:
        dst_datetime_format_utc(r->time_ms, when);
        return json_string(when);
    case K_STATUS:
        return json_string(dst_result_status_name(r->status));
    case K_STR:
        s = *cstr_at(r, f);
        return s ? json_string(s) : json_null();
    case K_REAL:
        return num_json(creal_at(r, f));
    case K_INT:
        i = cint_at(r, f);
        return i >= 0 ? json_integer(i) : json_null();
    case K_BOOL:
        return json_boolean(cbool_at(r, f));
    case K_OBJ:
        return object_json(r, f->sub);
    }
    return json_null();
}

json_t *dst_result_to_json(const struct dst_result *r)
{
    return object_json(r, fields);
}

/* ---- checks ---- */

static int fail(char *err, size_t errlen, const char *path, const char *reason)
{
    return dst_errf(DST_EINVAL, err, errlen, "%s: %s", path, reason);
}

static int fail_want(char *err, size_t errlen, const struct field *f)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "must be %s", f->want);
    return fail(err, errlen, f->path, reason);
}

/* Characters of UTF-8 text (bytes that do not continue a sequence). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Checks one value of a K_STR, K_REAL or K_INT field; unknown values pass. */
static int check_value(const struct dst_result *r, const struct field *f, char *err, size_t el)
{
    const char *s;
    size_t n;
    double d;
    int64_t i;

    switch (f->kind) {
    case K_STR:
        s = *cstr_at(r, f);
        if (!s)
            return 0;
        if (f->min == 0) /* a length in bytes */
            return strlen(s) <= (size_t)f->max ? 0 : fail_want(err, el, f);
        n = strlen(s) <= 500 ? utf8_chars(s) : 0; /* a length in characters */
        return n >= (size_t)f->min && n <= (size_t)f->max ? 0 : fail_want(err, el, f);
    case K_REAL:
        d = creal_at(r, f);
        return isnan(d) || (isfinite(d) && d >= f->min && d <= f->max) ? 0 : fail_want(err, el, f);
    case K_INT:
        i = cint_at(r, f); /* K_INT bounds are exact in a double */
        return i == -1 || (i >= (int64_t)f->min && i <= (int64_t)f->max) ? 0
                                                                         : fail_want(err, el, f);
    default:
        return 0;
    }
}

static int check_list(const struct dst_result *r, const struct field *list, char *err, size_t el)
{
    int rc = 0;
    for (const struct field *f = list; f->key && rc == 0; f++)
        rc = f->kind == K_OBJ ? check_list(r, f->sub, err, el) : check_value(r, f, err, el);
    return rc;
}

int dst_result_validate(const struct dst_result *r, char *err, size_t errlen)
{
    char id[DST_UUID_LEN + 1];

    if (dst_uuid_normalize(r->id, id) != 0 || strcmp(id, r->id) != 0)
        return fail(err, errlen, "id", "must be a lower-case UUID");
    if (r->time_ms < TIME_MIN_MS || r->time_ms > TIME_MAX_MS)
        return fail(err, errlen, "time", "must be between 0001-01-01 and 9999-12-31");
    if (r->status != DST_RESULT_OK && r->status != DST_RESULT_FAILED)
        return fail(err, errlen, "status", "must be \"ok\" or \"failed\"");
    if (r->status == DST_RESULT_FAILED && (!r->error || !*r->error))
        return fail(err, errlen, "error", "required when status is \"failed\"");
    if (!r->probe)
        return fail(err, errlen, "probe", "must be a string of 1 to 128 characters");
    return check_list(r, fields, err, errlen);
}

/* ---- from JSON ---- */

static int read_fields(const json_t *obj, const struct field *list, const char *prefix,
                       struct dst_result *r, char *err, size_t el);

static int read_time(const json_t *v, const struct field *f, struct dst_result *r, char *err,
                     size_t el)
{
    if (json_is_integer(v)) {
        r->time_ms = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return fail_want(err, el, f);
    if (dst_datetime_parse(json_string_value(v), &r->time_ms) != 0)
        return fail(err, el, f->path, "not an ISO 8601 date-time");
    return 0;
}

/* A JSON number as an integer field: integral, in range (so -1, "unknown", is refused). */
static int read_int(const json_t *v, const struct field *f, struct dst_result *r, char *err,
                    size_t el)
{
    double d;
    if (!dst_json_number(v, &d) || d != floor(d) || d < f->min || d > f->max)
        return fail_want(err, el, f);
    *int_at(r, f) = json_is_integer(v) ? json_integer_value(v) : (int64_t)d;
    return check_value(r, f, err, el); /* exactly: 2^53 + 1 rounds to 2^53 as a double */
}

/* Reads one known, non-null member. */
static int read_field(const json_t *v, const struct field *f, struct dst_result *r, char *err,
                      size_t el)
{
    switch (f->kind) {
    case K_ID:
        if (!json_is_string(v) || dst_uuid_normalize(json_string_value(v), r->id) != 0)
            return fail_want(err, el, f);
        return 0;
    case K_SEQ: /* the store numbers rows; a posted seq is ignored */
        return json_is_integer(v) ? 0 : fail_want(err, el, f);
    case K_TIME:
        return read_time(v, f, r, err, el);
    case K_STATUS:
        return json_is_string(v) && dst_result_status_parse(json_string_value(v), &r->status) == 0
                   ? 0
                   : fail_want(err, el, f);
    case K_STR:
        if (!json_is_string(v))
            return fail(err, el, f->path, "must be a string");
        dst_result_set(str_at(r, f), json_string_value(v));
        return check_value(r, f, err, el);
    case K_REAL:
        if (!dst_json_number(v, real_at(r, f)))
            return fail_want(err, el, f);
        return check_value(r, f, err, el);
    case K_INT:
        return read_int(v, f, r, err, el);
    case K_BOOL:
        if (!json_is_boolean(v))
            return fail_want(err, el, f);
        *bool_at(r, f) = json_is_true(v);
        return 0;
    case K_OBJ:
        if (!json_is_object(v))
            return fail(err, el, f->path, "must be an object or null");
        return read_fields(v, f->sub, f->path, r, err, el);
    }
    return 0;
}

static int read_fields(const json_t *obj, const struct field *list, const char *prefix,
                       struct dst_result *r, char *err, size_t el)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        const struct field *f = list;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            if (err && el)
                snprintf(err, el, "%s%s%.200s: unknown field", prefix ? prefix : "",
                         prefix ? "." : "", key);
            return DST_EINVAL;
        }
        int rc = json_is_null(v) ? 0 : read_field(v, f, r, err, el);
        if (rc)
            return rc;
    }
    return 0;
}

int dst_result_from_json(const json_t *j, struct dst_result *r, char *err, size_t errlen)
{
    if (!json_is_object(j))
        return fail(err, errlen, "result", "must be a JSON object");
    r->id[0] = '\0';
    int rc = read_fields(j, fields, NULL, r, err, errlen);
    if (rc)
        return rc;
    if (!r->id[0])
        dst_uuid_new(r->id);
    const json_t *t = json_object_get(j, "time");
    if (!t || json_is_null(t))
        r->time_ms = dst_datetime_now_ms();
    if (!r->probe)
        dst_result_set(&r->probe, r->user ? r->user : "default");
    return dst_result_validate(r, err, errlen);
}
