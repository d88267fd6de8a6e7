/* crypto.h - hashes, keyed hashes, random secrets and constant-time comparison (libcrypto) */
#ifndef DST_CRYPTO_H
#define DST_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

/* A SHA-256 digest as lower-case hex, NUL-terminated. */
#define DST_SHA256_HEX (64 + 1)

/* SHA-256 of data[0 .. len) as hex into out. */
void dst_sha256_hex(const void *data, size_t len, char out[DST_SHA256_HEX]);

/* HMAC-SHA-256 of msg under key (both NUL-terminated text) as hex into out. */
void dst_hmac_sha256_hex(const char *key, const char *msg, char out[DST_SHA256_HEX]);

/*
 * nbytes bytes from the kernel's CSPRNG as lower-case hex into out (2 * nbytes + 1 bytes).
 * Returns 0, or DST_EIO if the random source failed (logged); out is then "".
 */
int dst_random_hex(size_t nbytes, char *out);

/*
 * Whether a and b (NUL-terminated) are equal, in time that depends on their lengths only, never
 * on where they differ: for comparing a presented secret or digest with the expected one.
 */
bool dst_secret_equal(const char *a, const char *b);

#endif
