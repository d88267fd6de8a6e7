/* compat_dto.c - reading and validating the original's POSTed TestResult (Dto/TestResult.cs) */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/uuid.h"
#include "speedtest/api/compat.h"

/* DateTime.MinValue, what .NET gives a DateTime property that is absent from the JSON. */
#define DOTNET_MIN_DATE_MS (-62135596800000LL)

/* The DTO after deserialization; strings are borrowed from the parsed JSON. */
struct dto {
    const char *session, *user;
    int64_t device, date_ms;
    bool has_data, has_speeds, has_client, has_server;
    double download, upload;
    const char *client_ip, *client_isp, *client_country;
    double client_lat, client_lon;
    const char *server_host, *server_country;
    double server_lat, server_lon, distance;
    int64_t ping, id;
};

/* Deserialization state: the first type error stops it, as in System.Text.Json. */
struct reader {
    json_t *errors;
    bool failed;
};

enum ptype { P_GUID, P_STR, P_INT, P_DOUBLE, P_DATE };

static const char *const dotnet_types[] = {
    [P_GUID] = "System.Guid",     [P_STR] = "System.String",    [P_INT] = "System.Int32",
    [P_DOUBLE] = "System.Double", [P_DATE] = "System.DateTime",
};

void compat_error_add(json_t *errors, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dst_json_text_fix(msg); /* it may quote raw bytes, or end in half a character */
    json_t *list = json_object_get(errors, key);
    if (!list) {
        list = json_array();
        json_object_set_new(errors, key, list);
    }
    json_array_append_new(list, json_string(msg));
}

/* The member of obj named name in any case, and the spelling found (for the JSON path). */
static json_t *iget(const json_t *obj, const char *name, const char **key_out)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, name) == 0) {
            *key_out = k;
            return v;
        }
    }
    return NULL;
}

static void type_error(struct reader *rd, const char *path, const char *type)
{
    compat_error_add(rd->errors, path, "The JSON value could not be converted to %s. Path: %s.",
                     type, path);
    rd->failed = true;
}

/*
 * Reads property name of obj as type t into out (left untouched when the property is absent,
 * i.e. the .NET default stays). A JSON null is fine for strings.
 */
static void read_prop(struct reader *rd, const json_t *obj, const char *parent, const char *name,
                      enum ptype t, void *out)
{
    const char *key = NULL;
    char path[256];

    if (rd->failed)
        return;
    json_t *v = iget(obj, name, &key);
    if (!v)
        return;
    snprintf(path, sizeof(path), "%s.%s", parent, key);
    switch (t) {
    case P_STR:
        if (!json_is_string(v) && !json_is_null(v))
            return type_error(rd, path, dotnet_types[t]);
        *(const char **)out = json_string_value(v);
        return;
    case P_GUID:
        if (!json_is_string(v) || !dst_uuid_valid(json_string_value(v)))
            return type_error(rd, path, dotnet_types[t]);
        *(const char **)out = json_string_value(v);
        return;
    case P_INT:
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX)
            return type_error(rd, path, dotnet_types[t]);
        *(int64_t *)out = json_integer_value(v);
        return;
    case P_DOUBLE:
        if (!dst_json_number(v, (double *)out))
            return type_error(rd, path, dotnet_types[t]);
        return;
    case P_DATE:
        if (!json_is_string(v) || dst_datetime_parse(json_string_value(v), (int64_t *)out) != 0)
            return type_error(rd, path, dotnet_types[t]);
        return;
    }
}

/* Reads a nested object property (NULL when absent or null); type errors name the DTO class. */
static json_t *read_obj(struct reader *rd, const json_t *obj, const char *parent, const char *name,
                        const char *class_name, char *path, size_t pathlen)
{
    const char *key = NULL;

    if (rd->failed)
        return NULL;
    json_t *v = iget(obj, name, &key);
    if (!v)
        return NULL;
    snprintf(path, pathlen, "%s.%s", parent, key);
    if (json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        type_error(rd, path, class_name);
        return NULL;
    }
    return v;
}

static void read_dto(struct reader *rd, const json_t *root, struct dto *d)
{
    char pdata[128], pspeeds[192], pclient[192], pserver[192];

    read_prop(rd, root, "$", "sessionId", P_GUID, &d->session);
    read_prop(rd, root, "$", "user", P_STR, &d->user);
    read_prop(rd, root, "$", "device", P_INT, &d->device);
    read_prop(rd, root, "$", "testDate", P_DATE, &d->date_ms);
    json_t *data =
        read_obj(rd, root, "$", "data", "SpeedTestApi.Dto.TestData", pdata, sizeof(pdata));
    if (!data)
        return;
    d->has_data = true;
    json_t *speeds = read_obj(rd, data, pdata, "speeds", "SpeedTestApi.Dto.TestSpeeds", pspeeds,
                              sizeof(pspeeds));
    if (speeds) {
        d->has_speeds = true;
        read_prop(rd, speeds, pspeeds, "download", P_DOUBLE, &d->download);
        read_prop(rd, speeds, pspeeds, "upload", P_DOUBLE, &d->upload);
    }
    json_t *client = read_obj(rd, data, pdata, "client", "SpeedTestApi.Dto.TestClient", pclient,
                              sizeof(pclient));
    if (client) {
        d->has_client = true;
        read_prop(rd, client, pclient, "ip", P_STR, &d->client_ip);
        read_prop(rd, client, pclient, "latitude", P_DOUBLE, &d->client_lat);
        read_prop(rd, client, pclient, "longitude", P_DOUBLE, &d->client_lon);
        read_prop(rd, client, pclient, "isp", P_STR, &d->client_isp);
        read_prop(rd, client, pclient, "country", P_STR, &d->client_country);
    }
    json_t *server = read_obj(rd, data, pdata, "server", "SpeedTestApi.Dto.TestServer", pserver,
                              sizeof(pserver));
    if (server) {
        d->has_server = true;
        read_prop(rd, server, pserver, "host", P_STR, &d->server_host);
        read_prop(rd, server, pserver, "latitude", P_DOUBLE, &d->server_lat);
        read_prop(rd, server, pserver, "longitude", P_DOUBLE, &d->server_lon);
        read_prop(rd, server, pserver, "country", P_STR, &d->server_country);
        read_prop(rd, server, pserver, "distance", P_DOUBLE, &d->distance);
        read_prop(rd, server, pserver, "ping", P_INT, &d->ping);
        read_prop(rd, server, pserver, "id", P_INT, &d->id);
    }
}

/* ---- DataAnnotations ---- */

/* String length in UTF-16 code units, as .NET counts it. */
static size_t utf16_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            n += *p >= 0xF0 ? 2 : 1;
    }
    return n;
}

/* [Required] on a string: not null, not empty, not only white space. */
static bool required_ok(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++) {
        if (!isspace((unsigned char)*s))
            return true;
    }
    return false;
}

/* [Required] + [StringLength(500, MinimumLength = 2)], Required reported first. */
static void check_string(json_t *errors, const char *key, const char *name, const char *v)
{
    if (!required_ok(v))
        compat_error_add(errors, key, "The %s field is required.", name);
    if (v && (utf16_len(v) < 2 || utf16_len(v) > 500))
        compat_error_add(errors, key,
                         "The field %s must be a string with a minimum length of 2 and a maximum "
                         "length of 500.",
                         name);
}

/*
 * [Range(int, int)]: .NET converts the value to Int32 first (Convert.ToInt32 rounds half to
 * even), so 3000.4 passes Range(0, 3000). Values beyond Int32 fail.
 */
static void check_range(json_t *errors, const char *key, const char *name, double v, long lo,
                        long hi)
{
    double r = rint(v);
    if (!(r >= INT32_MIN && r <= INT32_MAX) || r < lo || r > hi)
        compat_error_add(errors, key, "The field %s must be between %ld and %ld.", name, lo, hi);
}

/* ^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$ */
static bool ipv4_ok(const char *s)
{
    for (int part = 0; part < 4; part++) {
        int n = 0, v = 0;
        while (isdigit((unsigned char)*s) && n < 4) {
            v = v * 10 + (*s++ - '0');
            n++;
        }
        if (n < 1 || n > 3 || v > 255)
            return false;
        if (part < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

static bool country_ok(const char *s)
{
    return isupper((unsigned char)s[0]) && s[0] <= 'Z' && isupper((unsigned char)s[1]) &&
           s[1] <= 'Z' && s[2] == '\0';
}

#define IP_PATTERN \
    "^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$"

/* [RegularExpression] passes null and empty strings; [Required] catches those. */
static void check_regex(json_t *errors, const char *key, const char *name, const char *v,
                        bool (*ok)(const char *), const char *pattern)
{
    if (!required_ok(v))
        compat_error_add(errors, key, "The %s field is required.", name);
    if (v && *v && !ok(v))
        compat_error_add(errors, key, "The field %s must match the regular expression '%s'.", name,
                         pattern);
}

static void validate_dto(const struct dto *d, json_t *e)
{
    check_string(e, "User", "User", d->user);
    check_range(e, "Device", "Device", (double)d->device, 1, INT32_MAX);
    if (!d->has_data) {
        compat_error_add(e, "Data", "The Data field is required.");
        return;
    }
    if (!d->has_speeds) {
        compat_error_add(e, "Data.Speeds", "The Speeds field is required.");
    } else {
        check_range(e, "Data.Speeds.Download", "Download", d->download, 0, 3000);
        check_range(e, "Data.Speeds.Upload", "Upload", d->upload, 0, 3000);
    }
    if (!d->has_client) {
        compat_error_add(e, "Data.Client", "The Client field is required.");
    } else {
        check_regex(e, "Data.Client.Ip", "Ip", d->client_ip, ipv4_ok, IP_PATTERN);
        check_range(e, "Data.Client.Latitude", "Latitude", d->client_lat, -90, 90);
        check_range(e, "Data.Client.Longitude", "Longitude", d->client_lon, -180, 180);
        check_string(e, "Data.Client.Isp", "Isp", d->client_isp);
        check_regex(e, "Data.Client.Country", "Country", d->client_country, country_ok,
                    "^([A-Z]){2}$");
    }
    if (!d->has_server) {
        compat_error_add(e, "Data.Server", "The Server field is required.");
    } else {
        check_string(e, "Data.Server.Host", "Host", d->server_host);
        check_range(e, "Data.Server.Latitude", "Latitude", d->server_lat, -90, 90);
        check_range(e, "Data.Server.Longitude", "Longitude", d->server_lon, -180, 180);
        check_regex(e, "Data.Server.Country", "Country", d->server_country, country_ok,
                    "^([A-Z]){2}$");
        check_range(e, "Data.Server.Distance", "Distance", d->distance, 0, 21000000);
        check_range(e, "Data.Server.Ping", "Ping", (double)d->ping, 0, INT32_MAX);
        check_range(e, "Data.Server.Id", "Id", (double)d->id, 0, INT32_MAX);
    }
}

/* The probe name of an original client: its user, cut to 128 bytes on a UTF-8 boundary. */
static void probe_from_user(struct dst_result *r, const char *user)
{
    size_t n = strlen(user);
    if (n > 128) {
        n = 128;
        while (n > 0 && ((unsigned char)user[n] & 0xC0) == 0x80)
            n--;
    }
    free(r->probe);
    r->probe = dst_xstrndup(user, n);
}

/* The stored result of a valid DTO. A missing or all-zero sessionId gets a fresh id. */
static void dto_to_result(const struct dto *d, struct dst_result *r)
{
    if (!d->session || dst_uuid_normalize(d->session, r->id) != 0 ||
        strcmp(r->id, "00000000-0000-0000-0000-000000000000") == 0)
        dst_uuid_new(r->id);
    r->time_ms = d->date_ms;
    r->status = DST_RESULT_OK;
    dst_result_set(&r->user, d->user);
    probe_from_user(r, d->user);
    r->device = d->device;
    r->download_bps = d->download * 1e6;
    r->upload_bps = d->upload * 1e6;
    dst_result_set(&r->client_ip, d->client_ip);
    r->client_lat = d->client_lat;
    r->client_lon = d->client_lon;
    dst_result_set(&r->client_isp, d->client_isp);
    dst_result_set(&r->client_country, d->client_country);
    dst_result_set(&r->server_host, d->server_host);
    r->server_lat = d->server_lat;
    r->server_lon = d->server_lon;
    dst_result_set(&r->server_country, d->server_country);
    r->server_distance_m = d->distance;
    r->ping_ms = (double)d->ping;
    r->server_id = d->id;
}

int compat_parse_test_result(const char *body, size_t len, json_t *errors, struct dst_result *r)
{
    struct dto d = {.date_ms = DOTNET_MIN_DATE_MS};
    struct reader rd = {.errors = errors};
    char msg[256];

    if (len == 0) {
        compat_error_add(errors, "", "A non-empty request body is required.");
        return DST_EINVAL;
    }
    json_t *root = dst_json_parse(body, len, msg, sizeof(msg));
    if (!root) {
        compat_error_add(errors, "$", "%s. Path: $.", msg);
        return DST_EINVAL;
    }
    if (!json_is_object(root)) {
        type_error(&rd, "$", "SpeedTestApi.Dto.TestResult");
    } else {
        read_dto(&rd, root, &d);
        if (!rd.failed)
            validate_dto(&d, errors);
    }
    int rc = json_object_size(errors) ? DST_EINVAL : 0;
    if (rc == 0) {
        dto_to_result(&d, r);
        if (dst_result_validate(r, msg, sizeof(msg)) != 0) {
            compat_error_add(errors, "", "%s", msg);
            rc = DST_EINVAL;
        }
    }
    json_decref(root);
    return rc;
}
