/* target.h - a test target URL taken apart: scheme, host, port, path, query parameters */
#ifndef DST_ENGINE_TARGET_H
#define DST_ENGINE_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#define ENGINE_TARGET_MAX_PARAMS 16

/*
 * "scheme://host[:port][/path][?k=v&...]" or "scheme:" (dummy:). IPv6 hosts in brackets
 * ("iperf3://[::1]:5201"). Parameters tune a test: duration (seconds per direction), streams,
 * and engine-specific ones (speedtest://auto?config=URL&servers=URL).
 */
struct engine_target {
    char scheme[16];
    char host[256]; /* without brackets; "" for "dummy:" */
    int port;       /* 0 when not given */
    char path[512]; /* "" or starting with '/' */
    int nparams;
    char keys[ENGINE_TARGET_MAX_PARAMS][32];
    char vals[ENGINE_TARGET_MAX_PARAMS][512];
};

/* Parses s; DST_EINVAL with a reason in err (e.g. "port 70000 out of range"). */
int engine_target_parse(const char *s, struct engine_target *t, char *err, size_t errlen);

/* A parameter's value, or NULL. */
const char *engine_target_param(const struct engine_target *t, const char *key);

/*
 * An integer parameter within [min, max], or def when absent; DST_EINVAL with a reason in err
 * when present but not such an integer.
 */
int engine_target_int(const struct engine_target *t, const char *key, long def, long min, long max,
                      long *out, char *err, size_t errlen);

/* "host:port" with brackets for IPv6, for messages and URLs. */
void engine_target_hostport(const struct engine_target *t, int default_port, char *out,
                            size_t outlen);

#endif
