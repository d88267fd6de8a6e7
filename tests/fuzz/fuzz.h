/* fuzz.h - what the fuzz targets share: the entry point, input helpers, checks */
#ifndef DST_FUZZ_H
#define DST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/http_server.h"

struct dst_store;

/*
 * Each tests/fuzz/fuzz_<target>.c defines the libFuzzer entry point. It is linked either with
 * libFuzzer (-DDSTMC_FUZZ=ON, clang) or with driver.c, which replays a corpus through it.
 * It returns 0; a finding is a sanitizer report or a failed FUZZ_CHECK (an abort).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep; on failure says which and aborts (libFuzzer: a crash). */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Once per process: every log level on (logs are code too), time zone TZ or UTC. */
void fuzz_init(void);

/*
 * A store (sqlite::memory:, opened on first use and kept) holding a few results: two probes,
 * two engines, an ok and a failed one, times from 2026-01-01 on; for the query targets.
 */
struct dst_store *fuzz_store(void);

/* A NUL-terminated heap copy of data (a NUL byte in it ends the string early); free it. */
char *fuzz_cstr(const uint8_t *data, size_t size);

/*
 * Cuts s (modified) at the first sep: returns the part after it (s itself then ends there),
 * or NULL when there is no sep.
 */
char *fuzz_cut(char *s, char sep);

/*
 * Takes a query string as libmicrohttpd hands its arguments on, already decoded: "k=v&k2=v2"
 * in buf (modified; no %-decoding: the fuzzer writes any byte but '&' and NUL directly). A key
 * without '=' has the value "". At most max arguments; returns their count.
 */
int fuzz_query(char *buf, struct dst_http_qarg *args, int max);

#endif
