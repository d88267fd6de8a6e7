/* test_sig.c - unit tests of stop requests from signals and from code (src/core/sig.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/sig.h"
#include "sys_test.h"

/*
 * A stop request is one-way and process-wide, so every scenario runs in its own child process.
 * A scenario returns 0 when all went as expected, else the number of the first check that
 * failed.
 */
static int in_child(int (*scenario)(void))
{
    int status = 0;
    pid_t pid = fork();

    if (pid == 0)
        _exit(scenario());
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the child died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static int timeout_returns_false(void)
{
    int64_t t0 = dst_monotonic_ms();
    if (dst_sig_wait(100))
        return 1;
    if (dst_monotonic_ms() - t0 < 100)
        return 2;
    if (dst_sig_stopping() || dst_sig_last() != 0)
        return 3;
    if (dst_sig_wait(0)) /* a zero timeout only looks */
        return 4;
    return 0;
}

static atomic_bool waiting;

static void *wait_forever(void *arg)
{
    (void)arg;
    atomic_store(&waiting, true);
    return (void *)(intptr_t)dst_sig_wait(-1);
}

static int request_stop_wakes_wait(void)
{
    pthread_t t;
    void *woke = NULL;
    struct timespec deadline;

    if (dst_sig_init() != 0)
        return 1;
    if (pthread_create(&t, NULL, wait_forever, NULL) != 0)
        return 2;
    while (!atomic_load(&waiting))
        sched_yield();
    dst_sig_request_stop();
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ST_WAIT_MS / 1000;
    if (pthread_timedjoin_np(t, &woke, &deadline) != 0)
        return 3; /* still asleep */
    if (!woke || !dst_sig_stopping())
        return 4;
    if (dst_sig_last() != 0) /* asked from code, not by a signal */
        return 5;
    int64_t t0 = dst_monotonic_ms();
    if (!dst_sig_wait(4 * ST_WAIT_MS) || dst_monotonic_ms() - t0 > ST_WAIT_MS)
        return 6; /* once stopping, waits return at once (not after their timeout) */
    return 0;
}

static int raise_sigterm_stops(void)
{
    if (dst_sig_init() != 0)
        return 1;
    raise(SIGTERM); /* aimed at this thread, where it is blocked */
    if (!dst_sig_wait(ST_WAIT_MS))
        return 2;
    if (dst_sig_last() != SIGTERM)
        return 3;
    return 0;
}

static int raise_then_stopping(void)
{
    if (dst_sig_init() != 0 || dst_sig_stopping())
        return 1;
    raise(SIGTERM);
    return dst_sig_stopping() && dst_sig_last() == SIGTERM ? 0 : 2;
}

/* A process-directed signal reaches the watcher thread. */
static int kill_signal_stops(int sig)
{
    if (dst_sig_init() != 0)
        return 1;
    if (kill(getpid(), sig) != 0)
        return 2;
    if (!dst_sig_wait(ST_WAIT_MS))
        return 3;
    if (dst_sig_last() != sig)
        return 4;
    return 0;
}

static int kill_sigint(void)
{
    return kill_signal_stops(SIGINT);
}

static int kill_sighup(void)
{
    return kill_signal_stops(SIGHUP);
}

/* Delivered to a thread that only sleeps: the main thread's wait must see it. */
static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int kill_with_threads_stops(void)
{
    pthread_t t[3];

    if (dst_sig_init() != 0)
        return 1;
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, sleeper, NULL);
    kill(getpid(), SIGTERM);
    return dst_sig_wait(ST_WAIT_MS) && dst_sig_last() == SIGTERM ? 0 : 2;
}

static int sigpipe_ignored(void)
{
    if (dst_sig_init() != 0)
        return 1;
    raise(SIGPIPE);
    kill(getpid(), SIGPIPE);
    if (dst_sig_wait(50))
        return 2; /* not a stop either */
    return 0;
}

static void timeout(void **state)
{
    (void)state;
    assert_int_equal(in_child(timeout_returns_false), 0);
}

static void request_stop(void **state)
{
    (void)state;
    assert_int_equal(in_child(request_stop_wakes_wait), 0);
}

static void raised_sigterm(void **state)
{
    (void)state;
    assert_int_equal(in_child(raise_sigterm_stops), 0);
    assert_int_equal(in_child(raise_then_stopping), 0);
}

static void killed(void **state)
{
    (void)state;
    assert_int_equal(in_child(kill_sigint), 0);
    assert_int_equal(in_child(kill_sighup), 0);
    assert_int_equal(in_child(kill_with_threads_stops), 0);
}

static void sigpipe(void **state)
{
    (void)state;
    assert_int_equal(in_child(sigpipe_ignored), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timeout), cmocka_unit_test(request_stop), cmocka_unit_test(raised_sigterm),
        cmocka_unit_test(killed),  cmocka_unit_test(sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
