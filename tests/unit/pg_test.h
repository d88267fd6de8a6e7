/* pg_test.h - for unit tests: a private PostgreSQL server, started and stopped by its pid */
#ifndef DST_PG_TEST_H
#define DST_PG_TEST_H

/*
 * initdb (trust, no fsync) into a fresh /tmp directory, then `postgres` on a Unix socket in
 * that directory only (listen_addresses=''), on a port nothing listens on. Root cannot run
 * PostgreSQL: as root the server runs as the "postgres" user (else "nobody"), the directory
 * handed to it. Databases are made and dropped with psql. The binaries: $DSTMC_PG_BIN, else
 * the newest /usr/lib/postgresql/N/bin (Debian's postgresql package); none: pg_bin_find fails
 * and the caller skips, saying so.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys_test.h"

struct pg_server {
    char bin[256]; /* the directory of initdb, postgres and psql */
    char dir[64];  /* the socket directory, holding data/ and the logs */
    char data[96];
    int port;
    pid_t pid; /* the postmaster, -1 when stopped */
    uid_t uid; /* who runs it (not root) */
    gid_t gid;
};

/* Finds the binaries into s->bin; false if there are none. */
static inline bool pg_bin_find(struct pg_server *s)
{
    const char *env = getenv("DSTMC_PG_BIN");
    char path[300];
    glob_t g;

    if (env && *env) {
        snprintf(s->bin, sizeof(s->bin), "%s", env);
    } else {
        s->bin[0] = '\0';
        if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) == 0) {
            int best = -1;
            for (size_t i = 0; i < g.gl_pathc; i++) { /* the highest major version */
                int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
                if (v > best) {
                    best = v;
                    snprintf(s->bin, sizeof(s->bin), "%s", g.gl_pathv[i]);
                }
            }
            globfree(&g);
        }
    }
    snprintf(path, sizeof(path), "%s/postgres", s->bin);
    return s->bin[0] && access(path, X_OK) == 0;
}

/*
 * Runs bin/prog with argv (argv[0] included, NULL-terminated) as the server's user, output to
 * log (appended); with wait, waits and returns the exit status (-1 if not exited normally),
 * else returns the pid.
 */
static inline int pg_run(struct pg_server *s, const char *prog, char *const argv[], const char *log,
                         bool wait)
{
    char path[300];
    int status = 0;

    snprintf(path, sizeof(path), "%s/%s", s->bin, prog);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (getuid() == 0 &&
            (setgroups(0, NULL) != 0 || setgid(s->gid) != 0 || setuid(s->uid) != 0))
            _exit(126);
        execv(path, argv);
        _exit(127);
    }
    if (pid < 0 || !wait)
        return pid;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* The postmaster says "ready" in its pid file (line 8) once it accepts connections. */
static inline bool pg_ready(const struct pg_server *s)
{
    char path[128], line[128];
    int n = 0;

    snprintf(path, sizeof(path), "%s/postmaster.pid", s->data);
    FILE *f = fopen(path, "r");
    bool ready = false;
    while (f && fgets(line, sizeof(line), f))
        if (++n == 8)
            ready = strncmp(line, "ready", 5) == 0;
    if (f)
        fclose(f);
    return ready;
}

/* Starts the postmaster on s->port and waits until it is ready; false if it exited. */
static inline bool pg_start(struct pg_server *s)
{
    char port[16], log[96];
    char *argv[] = {"postgres",
                    "-D",
                    s->data,
                    "-k",
                    s->dir,
                    "-p",
                    port,
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=60",
                    NULL};
    int64_t deadline = dst_monotonic_ms() + ST_WAIT_MS;
    struct timespec nap = {0, 20 * 1000 * 1000};
    int status;

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/postgres.log", s->dir);
    s->pid = pg_run(s, "postgres", argv, log, false);
    if (s->pid <= 0)
        return false;
    while (!pg_ready(s)) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid || dst_monotonic_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = -1;
            return false; /* see its log */
        }
        nanosleep(&nap, NULL);
    }
    return true;
}

/* Stops the postmaster by its pid: a fast shutdown (SIGINT), SIGKILL after ST_WAIT_MS. */
static inline void pg_stop(struct pg_server *s)
{
    int64_t deadline = dst_monotonic_ms() + ST_WAIT_MS;
    struct timespec nap = {0, 10 * 1000 * 1000};
    int status;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGINT);
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (dst_monotonic_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        nanosleep(&nap, NULL);
    }
    s->pid = -1;
}

/* Runs one SQL command with psql on database db; true if it succeeded. */
static inline bool pg_sql(struct pg_server *s, const char *db, const char *sql)
{
    char port[16], log[96];
    char *argv[] = {"psql",
                    "-X",
                    "-q",
                    "-h",
                    s->dir,
                    "-p",
                    port,
                    "-U",
                    "dstmc",
                    "-d",
                    (char *)db,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    (char *)sql,
                    NULL};

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/psql.log", s->dir);
    return pg_run(s, "psql", argv, log, true) == 0;
}

/* The URL of database db on s. */
static inline void pg_url(const struct pg_server *s, const char *db, char *url, size_t cap)
{
    snprintf(url, cap, "postgresql:///%s?host=%s&port=%d&user=dstmc", db, s->dir, s->port);
}

/* Removes dir and everything under it (the server's files). */
static inline void pg_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    struct stat st;

    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%.700s/%.255s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            pg_rm_tree(path);
        else
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/*
 * Makes the cluster (initdb) and starts it: false with the reason on stderr if that fails.
 * s->bin must be set (pg_bin_find).
 */
static inline bool pg_init(struct pg_server *s)
{
    char log[96];
    char *argv[] = {"initdb", "-D", s->data, "-A",         "trust",     "-U",
                    "dstmc",  "-E", "UTF8",  "--locale=C", "--no-sync", NULL};
    struct passwd *pw = getuid() == 0 ? getpwnam("postgres") : NULL;

    if (getuid() == 0 && !pw)
        pw = getpwnam("nobody");
    s->uid = pw ? pw->pw_uid : getuid();
    s->gid = pw ? pw->pw_gid : getgid();
    s->pid = -1;
    snprintf(s->dir, sizeof(s->dir), "/tmp/dstmc-pg-XXXXXX");
    if (!mkdtemp(s->dir) || chown(s->dir, s->uid, s->gid) != 0) {
        fprintf(stderr, "pg_test: temp dir: %s\n", strerror(errno));
        return false;
    }
    snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
    snprintf(log, sizeof(log), "%s/initdb.log", s->dir);
    if (pg_run(s, "initdb", argv, log, true) != 0) {
        fprintf(stderr, "pg_test: initdb failed: see %s\n", log);
        return false;
    }
    for (int i = 0; i < 5; i++) { /* a port taken between the check and the start: another */
        int fd = st_hold_port(0, &s->port);
        close(fd);
        if (pg_start(s))
            return true;
    }
    fprintf(stderr, "pg_test: postgres did not start: see %s/postgres.log\n", s->dir);
    return false;
}

#endif
