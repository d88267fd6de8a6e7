/* fuzz_proxy_upstream.c - an upstream's answer head, as the monitor's proxy reads it from curl */
#include <string.h>

#include "core/http_proxy_priv.h"
#include "fuzz.h"

#define MAX_LINES 64

/* The headers kept for the client: "name\0value\0" pairs, as http_proxy.c walks them. */
static void check_headers(const struct dst_buf *b)
{
    if (b->len == 0)
        return;
    const char *h = b->data, *end = b->data + b->len;
    int pairs = 0;

    while (h && h < end) {
        const char *nul = memchr(h, '\0', (size_t)(end - h));
        FUZZ_CHECK(nul != NULL && nul > h); /* a name, not empty */
        const char *v = nul + 1;
        FUZZ_CHECK(v < end);
        nul = memchr(v, '\0', (size_t)(end - v));
        FUZZ_CHECK(nul != NULL);
        h = nul + 1;
        pairs++;
    }
    FUZZ_CHECK(h == end && pairs > 0);
}

/*
 * The input is what an upstream sends before its body: lines, each handed to the header
 * callback as curl 7.88 does (complete lines ending in "\n", in a buffer that is not
 * terminated), until it refuses one. curl itself fails the transfer at a line with a NUL byte
 * (CURLE_WEIRD_SERVER_REPLY) and waits for the end of an unfinished one, so neither reaches
 * the callback. The status stays a 3-digit code and the headers kept for the client are
 * well-formed pairs.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_http_proxy p = {.opts.idle_timeout_ms = 60000, .next_deadline = INT64_MAX};
    struct xfer x = {.p = &p, .clen = -1};
    size_t off = 0;

    fuzz_init();
    dst_buf_init(&x.rhdr, MAX_RESP_HEADERS);
    for (int i = 0; i < MAX_LINES && off < size; i++) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (data + off)) + 1 : 0;
        if (n == 0 || memchr(data + off, '\0', n))
            break;              /* curl waits for the rest, or fails at a NUL byte */
        char *line = malloc(n); /* exactly the line: curl does not terminate it */
        memcpy(line, data + off, n);
        size_t took = proxy_on_header(line, 1, n, &x);
        free(line);
        off += n;
        if (took == 0)
            break; /* the attempt fails */
        FUZZ_CHECK(took == n);
        FUZZ_CHECK(x.status == 0 || (x.status >= 100 && x.status <= 999));
        check_headers(&x.rhdr);
    }
    FUZZ_CHECK(!x.headers_done || x.status >= 200);
    dst_buf_release(&x.rhdr);
    return 0;
}
