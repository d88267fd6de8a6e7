/* buf.c - a growable byte buffer with a hard cap */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

void dst_buf_init(struct dst_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void dst_buf_release(struct dst_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dst_buf_reset(struct dst_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus the NUL. */
static int reserve(struct dst_buf *b, size_t n)
{
    if (b->max && (n > b->max || b->len > b->max - n))
        return DST_ETOOBIG;
    if (n > SIZE_MAX - b->len - 1)
        return DST_ETOOBIG; /* the size would wrap around */
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = dst_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int dst_buf_append(struct dst_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dst_buf_puts(struct dst_buf *b, const char *s)
{
    return dst_buf_append(b, s, strlen(s));
}

int dst_buf_vprintf(struct dst_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    char small[256];

    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return DST_EINVAL;
    if ((size_t)n < sizeof(small))
        return dst_buf_append(b, small, (size_t)n);
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int dst_buf_printf(struct dst_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = dst_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *dst_buf_detach(struct dst_buf *b, size_t *len_out)
{
    char *p = b->data ? b->data : dst_xstrdup("");
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
