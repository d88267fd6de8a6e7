/* crypto.c - hashes, keyed hashes, random secrets and constant-time comparison (libcrypto) */
#include "core/crypto.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/random.h>

#include "core/err.h"
#include "core/log.h"

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void dst_sha256_hex(const void *data, size_t len, char out[DST_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int n = 0;

    /* EVP_Digest fails only on allocation failure inside libcrypto: an empty digest then. */
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != sizeof(md)) {
        out[0] = '\0';
        return;
    }
    to_hex(md, sizeof(md), out);
}

void dst_hmac_sha256_hex(const char *key, const char *msg, char out[DST_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), md,
              &n) ||
        n != sizeof(md)) {
        out[0] = '\0';
        return;
    }
    to_hex(md, sizeof(md), out);
}

int dst_random_hex(size_t nbytes, char *out)
{
    unsigned char b[64];
    size_t got = 0;

    out[0] = '\0';
    if (nbytes > sizeof(b))
        return DST_EINVAL;
    while (got < nbytes) {
        ssize_t r = getrandom(b + got, nbytes - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            dst_error("crypto: getrandom: %s", strerror(errno));
            return DST_EIO;
        }
        got += (size_t)r;
    }
    to_hex(b, nbytes, out);
    return 0;
}

bool dst_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Compare b with itself when the lengths differ, so the time does not depend on a. */
    int diff = CRYPTO_memcmp(la == lb ? a : b, b, lb);
    return la == lb && diff == 0;
}
