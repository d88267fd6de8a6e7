/* test_order_push.c - unit tests of the leader's pushers (order_push.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "core/err.h"
#include "toystore/order.h"

#define JOBS 3

/*
 * Jobs that each wait until every job has started: they all finish only when they run at the
 * same time (one after the other, the first would wait for the others in vain until the
 * deadline, far beyond what a loaded box needs to start three threads).
 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started;
static pthread_t ran_on[JOBS];

static int together(void *arg)
{
    int i = (int)(intptr_t)arg;
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&mu);
    ran_on[i] = pthread_self();
    started++;
    pthread_cond_broadcast(&cv);
    int rc = 0;
    while (started < JOBS && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &deadline);
    bool all = started >= JOBS;
    pthread_mutex_unlock(&mu);
    return all ? 100 + i : DST_ETIMEDOUT;
}

static void jobs_run_at_the_same_time(void **state)
{
    struct order_push *p = order_push_new();
    struct order_push_job jobs[JOBS];

    (void)state;
    for (int round = 0; round < 2; round++) { /* the threads are kept for the next batch */
        started = 0;
        for (int i = 0; i < JOBS; i++)
            jobs[i] = (struct order_push_job){
                .slot = i, .fn = together, .arg = (void *)(intptr_t)i, .rc = -1};
        order_push_run(p, jobs, JOBS);
        for (int i = 0; i < JOBS; i++)
            assert_int_equal(jobs[i].rc, 100 + i);
        /* the last job runs on the caller's thread, the others on their slots' */
        assert_true(pthread_equal(ran_on[JOBS - 1], pthread_self()));
        assert_false(pthread_equal(ran_on[0], pthread_self()));
        assert_false(pthread_equal(ran_on[0], ran_on[1]));
    }
    order_push_run(p, jobs, 0); /* nothing to do */
    order_push_free(p);
    order_push_free(NULL);
}

static int count(void *arg)
{
    int *n = arg;

    pthread_mutex_lock(&mu);
    (*n)++;
    pthread_mutex_unlock(&mu);
    return 0;
}

/* A slot out of range, or one job alone, runs on the caller's thread. */
static void odd_slots_run_inline(void **state)
{
    struct order_push *p = order_push_new();
    int n = 0;
    struct order_push_job jobs[] = {{.slot = -1, .fn = count, .arg = &n, .rc = -1},
                                    {.slot = ORDER_PEERS_MAX, .fn = count, .arg = &n, .rc = -1},
                                    {.slot = 0, .fn = count, .arg = &n, .rc = -1}};

    (void)state;
    order_push_run(p, jobs, 3);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(jobs[i].rc, 0);
    order_push_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_run_at_the_same_time),
        cmocka_unit_test(odd_slots_run_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
