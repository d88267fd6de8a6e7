/* mem.h - allocation wrappers that abort on out-of-memory */
#ifndef DST_MEM_H
#define DST_MEM_H

#include <stddef.h>

/*
 * These never return NULL: on out-of-memory they print one line and abort(), the only place
 * besides assertions where the project aborts. dst_xfree is free().
 */
void *dst_xmalloc(size_t n);
void *dst_xcalloc(size_t count, size_t n);
void *dst_xrealloc(void *p, size_t n);
char *dst_xstrdup(const char *s);            /* NULL in → NULL out */
char *dst_xstrndup(const char *s, size_t n); /* copies at most n bytes, NUL-terminates */
char *dst_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define dst_xnew(type) ((type *)dst_xcalloc(1, sizeof(type)))

#endif
