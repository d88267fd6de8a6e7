/* err.h - the project-wide error codes and their texts */
#ifndef DST_ERR_H
#define DST_ERR_H

#include <stddef.h>

/*
 * Every function that can fail returns int: 0 on success or one of these negative codes.
 * dst_strerror() gives a short text; dst_err_http_status() maps a code to an HTTP status.
 */
enum dst_err {
    DST_OK = 0,
    DST_ENOMEM = -1,    /* out of memory (only where allocation failure is survivable) */
    DST_EINVAL = -2,    /* bad input from outside: value, syntax, range */
    DST_ENOTFOUND = -3, /* no such thing */
    DST_ECONFLICT = -4, /* exists already, or clashes with what exists */
    DST_ETIMEDOUT = -5, /* a deadline passed */
    DST_EDEP = -6,      /* a dependency failed: database, queue, peer, library */
    DST_EIO = -7,       /* an I/O error on a file or socket */
    DST_ETOOBIG = -8,   /* over a size cap */
    DST_EBUSY = -9,     /* the peer or resource is busy; retry later */
    DST_EPERM = -10,    /* not authorised */
    DST_ENOSPC = -11,   /* no space left where the data goes (a full disk): retry once freed */
};

/* Short lower-case text for an error code ("invalid input"); never NULL. */
const char *dst_strerror(int err);

/*
 * Writes the printf-style message into err (errlen bytes, NUL-terminated; nothing when err is
 * NULL or errlen 0) and returns code: `return dst_errf(DST_EINVAL, err, errlen, "...", ...);`.
 */
int dst_errf(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The HTTP status that best answers a request that failed with err (0 → 200). */
int dst_err_http_status(int err);

#endif
