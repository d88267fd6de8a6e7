/* hook.c - the probe's --before and --after commands: a shell command with a time limit */
#include "speedtest/logger/hook.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"

#define POLL_MS 20

extern char **environ;

/* Starts /bin/sh -c cmd in its own process group, stdout to our stderr. */
static int spawn(const char *cmd, pid_t *pid)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0);
    /* not our blocked stop signals nor our ignored SIGPIPE: the shell starts afresh */
    sigset_t none, pipe;
    sigemptyset(&none);
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &pipe);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Waits for pid until deadline (monotonic ms); true and *status when it ended. */
static bool wait_until(pid_t pid, int64_t deadline, int *status)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return r == pid;
        if (dst_monotonic_ms() >= deadline)
            return false;
        nanosleep(&ts, NULL);
    }
}

int logger_hook_run(const char *what, const char *cmd, int timeout_s, char *err, size_t errlen)
{
    pid_t pid = -1;
    int status = 0, rc = 0;
    int64_t t0 = dst_monotonic_ms();

    int e = spawn(cmd, &pid);
    if (e) {
        snprintf(err, errlen, "cannot start /bin/sh: %s", strerror(e));
        dst_error("%s: %s", what, err);
        return DST_EIO;
    }
    if (!wait_until(pid, t0 + (int64_t)timeout_s * 1000, &status)) {
        kill(-pid, SIGKILL); /* the shell and whatever it started */
        waitpid(pid, &status, 0);
        snprintf(err, errlen, "timed out after %d s", timeout_s);
        rc = DST_ETIMEDOUT;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        dst_info("%s: `%s` exited 0 after %lld ms", what, cmd,
                 (long long)(dst_monotonic_ms() - t0));
        return 0;
    } else if (WIFEXITED(status)) {
        snprintf(err, errlen, "exit status %d", WEXITSTATUS(status));
        rc = DST_EDEP;
    } else {
        snprintf(err, errlen, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        rc = DST_EDEP;
    }
    dst_warn("%s: `%s`: %s", what, cmd, err);
    return rc;
}
