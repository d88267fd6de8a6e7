/* sig.c - process-wide stop requests from SIGTERM/SIGINT, observable from any thread */
#include "core/sig.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_bool stopping;
static atomic_int last_signal;
static atomic_bool watching; /* dst_sig_init ran: the stop signals are blocked */
static sigset_t stop_set;

static void on_signal(int sig)
{
    atomic_store(&last_signal, sig);
    if (atomic_load(&stopping))
        dst_warn("second signal %d: still stopping", sig);
    dst_sig_request_stop();
}

static void *watch(void *arg)
{
    (void)arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&stop_set, &sig) == 0)
            on_signal(sig);
    }
    return NULL;
}

/*
 * raise() and pthread_kill() aim a signal at one thread, where it stays pending (blocked) out
 * of the watcher's sight: the calling thread takes its own here.
 */
static void take_own_signal(void)
{
    static const struct timespec zero = {0, 0};

    if (!atomic_load(&watching))
        return;
    int sig = sigtimedwait(&stop_set, NULL, &zero);
    if (sig > 0)
        on_signal(sig);
}

int dst_sig_init(void)
{
    pthread_t t;
    struct sigaction sa = {.sa_handler = SIG_IGN};

    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &stop_set, NULL) != 0)
        return DST_EDEP;
    if (pthread_create(&t, NULL, watch, NULL) != 0)
        return DST_EDEP;
    pthread_detach(t);
    atomic_store(&watching, true);
    return 0;
}

bool dst_sig_stopping(void)
{
    if (!atomic_load(&stopping))
        take_own_signal();
    return atomic_load(&stopping);
}

void dst_sig_request_stop(void)
{
    pthread_mutex_lock(&lock);
    atomic_store(&stopping, true);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

int dst_sig_last(void)
{
    return atomic_load(&last_signal);
}

bool dst_sig_wait(int timeout_ms)
{
    struct timespec ts;

    take_own_signal();
    pthread_mutex_lock(&lock);
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts); /* clock jumps do not stretch waits */
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    while (!atomic_load(&stopping)) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&cond, &lock)
                                : pthread_cond_clockwait(&cond, &lock, CLOCK_MONOTONIC, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    bool s = atomic_load(&stopping);
    pthread_mutex_unlock(&lock);
    return s;
}
