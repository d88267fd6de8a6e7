/* test_mem.c - allocation wrappers: copies, formatting, and abort on out-of-memory */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/mem.h"

static void strdup_and_strndup(void **state)
{
    (void)state;
    assert_null(dst_xstrdup(NULL));
    char *a = dst_xstrdup("probe");
    assert_string_equal(a, "probe");
    char *b = dst_xstrndup("download", 4);
    assert_string_equal(b, "down");
    char *c = dst_xstrndup("up", 10); /* n beyond the string: the whole string */
    assert_string_equal(c, "up");
    free(a);
    free(b);
    free(c);
}

static void asprintf_formats(void **state)
{
    (void)state;
    char *s = dst_xasprintf("%s=%d/%.1f", "ping", 12, 1.5);
    assert_string_equal(s, "ping=12/1.5");
    free(s);
    char *e = dst_xasprintf("%s", "");
    assert_string_equal(e, "");
    free(e);
}

static void calloc_zeroes_and_realloc_keeps(void **state)
{
    (void)state;
    unsigned char *p = dst_xcalloc(64, 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    memset(p, 7, 64);
    p = dst_xrealloc(p, 4096);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 7);
    free(p);
    void *z = dst_xmalloc(0); /* a zero-size request still gives a pointer to free */
    assert_non_null(z);
    free(z);
}

/* Out of memory is the one place (besides assertions) where the project aborts. */
static void out_of_memory_aborts(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* ASan reports an impossible allocation itself, before malloc could fail */
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        dst_xmalloc(SIZE_MAX / 2);
        _exit(0); /* not reached when the wrapper aborts */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strdup_and_strndup),
        cmocka_unit_test(asprintf_formats),
        cmocka_unit_test(calloc_zeroes_and_realloc_keeps),
        cmocka_unit_test(out_of_memory_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
