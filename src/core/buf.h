/* buf.h - a growable byte buffer with a hard cap */
#ifndef DST_BUF_H
#define DST_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * An embedded growable buffer. data is always NUL-terminated (when non-NULL) so text can be
 * used directly. max is the cap in bytes (0 = no cap); growing past it fails with DST_ETOOBIG
 * and leaves the buffer as it was.
 */
struct dst_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void dst_buf_init(struct dst_buf *b, size_t max);
void dst_buf_release(struct dst_buf *b); /* frees data; the buffer may be reused after init */
void dst_buf_reset(struct dst_buf *b);   /* len = 0, keeps the memory */
int dst_buf_append(struct dst_buf *b, const void *p, size_t n);
int dst_buf_puts(struct dst_buf *b, const char *s);
int dst_buf_printf(struct dst_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dst_buf_vprintf(struct dst_buf *b, const char *fmt, va_list ap);
/* Hands the data out (caller frees; never NULL: an empty buffer gives ""); *len_out may be NULL. */
char *dst_buf_detach(struct dst_buf *b, size_t *len_out);

#endif
