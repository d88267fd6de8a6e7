/* test_hook.c - unit tests of the probe's --before/--after commands (src/speedtest/logger/hook.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "speedtest/logger/hook.h"

static void exit_zero(void **state)
{
    char err[256] = "untouched", path[64];

    (void)state;
    snprintf(path, sizeof(path), "/tmp/dstmc-hook-%ld", (long)getpid());
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "echo started > %s", path) > 0);
    assert_int_equal(logger_hook_run("--before", cmd, 5, err, sizeof(err)), 0);
    assert_string_equal(err, "untouched");
    assert_int_equal(access(path, F_OK), 0); /* it really ran, through the shell */
    unlink(path);
    free(cmd);
}

static void exit_status_reported(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(logger_hook_run("--before", "exit 3", 5, err, sizeof(err)), DST_EDEP);
    assert_string_equal(err, "exit status 3");
    assert_int_equal(logger_hook_run("--after", "kill -9 $$", 5, err, sizeof(err)), DST_EDEP);
    assert_string_equal(err, "killed by signal 9");
    assert_int_equal(logger_hook_run("--after", "/nonexistent/cmd", 5, err, sizeof(err)), DST_EDEP);
    assert_string_equal(err, "exit status 127"); /* the shell's "not found" */
}

static void timeout_kills_the_group(void **state)
{
    char err[256];
    int64_t t0 = dst_monotonic_ms();

    (void)state;
    /* The shell's child would outlive a kill of the shell alone (by a minute). */
    assert_int_equal(logger_hook_run("--before", "sleep 60; sleep 60", 1, err, sizeof(err)),
                     DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 1000 && took < 30000);
    assert_string_equal(err, "timed out after 1 s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_zero),
        cmocka_unit_test(exit_status_reported),
        cmocka_unit_test(timeout_kills_the_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
