/* mem.c - allocation wrappers that abort on out-of-memory */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(size_t n)
{
    char line[96];
    int len = snprintf(line, sizeof(line), "dstmc: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0) {
        /* nothing left to do */
    }
    abort();
}

void *dst_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *dst_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *dst_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *dst_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return dst_xstrndup(s, strlen(s));
}

char *dst_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = dst_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *dst_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return p;
}
