/* sys_test.h - for unit tests: ports that refuse, who listens on a port, stopped processes */
#ifndef DST_SYS_TEST_H
#define DST_SYS_TEST_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/datetime.h"

/*
 * Any wait for something that must happen: reached only when something is wrong, and tests run
 * on 2 busy vCPUs, under ASan (2-5x slower) too.
 */
#define ST_WAIT_MS 30000

/*
 * Holds 127.0.0.1:port (0: a free one) with a bound socket that does not listen: a connection
 * to it is refused, and no other test running beside this one can take the port until the
 * socket (the result, or -1) is closed; a port bound and let go can be taken by anyone at once.
 * *bound, when not NULL, gets the port.
 */
static inline int st_hold_port(int port, int *bound)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
                    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
                    getsockname(fd, (struct sockaddr *)&a, &len) != 0)) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && bound)
        *bound = ntohs(a.sin_port);
    return fd;
}

/* A port that refuses connections, held by *fd (see st_hold_port); -1 on failure. */
static inline int st_refusing_port(int *fd)
{
    int port = -1;
    *fd = st_hold_port(0, &port);
    return port;
}

/* Whether process pid holds the listening TCP socket on 127.0.0.1:port (not another one's). */
static inline bool st_pid_listens(pid_t pid, int port)
{
    char line[512], want[32], path[64], link[64], inode[48] = "";
    FILE *f = fopen("/proc/net/tcp", "r");
    bool found = false;

    if (!f)
        return false;
    snprintf(want, sizeof(want), "0100007F:%04X", (unsigned)port);
    while (!inode[0] && fgets(line, sizeof(line), f)) {
        char local[32], state[8], ino[24];
        if (sscanf(line, "%*s %31s %*s %7s %*s %*s %*s %*s %*s %23s", local, state, ino) == 3 &&
            strcmp(local, want) == 0 && strcmp(state, "0A") == 0)
            snprintf(inode, sizeof(inode), "socket:[%s]", ino);
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = inode[0] ? opendir(path) : NULL;
    for (struct dirent *e = d ? readdir(d) : NULL; e && !found; e = readdir(d)) {
        char fd_path[384];
        snprintf(fd_path, sizeof(fd_path), "%s/%s", path, e->d_name);
        ssize_t n = readlink(fd_path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, inode) == 0;
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Whether every thread of pid is stopped (state T or t; threads gone do not count). */
static inline bool st_pid_stopped(pid_t pid)
{
    char path[64];
    bool stopped = true;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    for (struct dirent *e = readdir(d); e && stopped; e = readdir(d)) {
        char stat_path[384], buf[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat_path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *s = strrchr(buf, ')');
        if (s && s[1] == ' ' && s[2])
            stopped = strchr("TtZX", s[2]) != NULL;
    }
    closedir(d);
    return stopped;
}

/* Waits (ST_WAIT_MS at most) until every thread of pid has stopped: SIGSTOP takes effect a
 * moment after kill() returns, and what the process does meanwhile would race the test. */
static inline bool st_wait_stopped(pid_t pid)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
    struct timespec ts = {0, 2 * 1000 * 1000};

    while (!st_pid_stopped(pid)) {
        if (dst_monotonic_ms() >= end)
            return false;
        nanosleep(&ts, NULL);
    }
    return true;
}

#endif
