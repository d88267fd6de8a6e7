/* err.c - the project-wide error codes and their texts */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *dst_strerror(int err)
{
    switch (err) {
    case DST_OK:
        return "ok";
    case DST_ENOMEM:
        return "out of memory";
    case DST_EINVAL:
        return "invalid input";
    case DST_ENOTFOUND:
        return "not found";
    case DST_ECONFLICT:
        return "conflict";
    case DST_ETIMEDOUT:
        return "timed out";
    case DST_EDEP:
        return "dependency failed";
    case DST_EIO:
        return "i/o error";
    case DST_ETOOBIG:
        return "too big";
    case DST_EBUSY:
        return "busy";
    case DST_EPERM:
        return "not authorised";
    case DST_ENOSPC:
        return "disk full";
    default:
        return "unknown error";
    }
}

int dst_err_http_status(int err)
{
    switch (err) {
    case DST_OK:
        return 200;
    case DST_EINVAL:
        return 400;
    case DST_EPERM:
        return 401;
    case DST_ENOTFOUND:
        return 404;
    case DST_ECONFLICT:
        return 409;
    case DST_ETOOBIG:
        return 413;
    case DST_ENOSPC:
        return 507; /* Insufficient Storage (RFC 4918) */
    case DST_EBUSY:
    case DST_EDEP:
        return 503;
    case DST_ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

int dst_errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
