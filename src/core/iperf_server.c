/* iperf_server.c - iperf3's server through libiperf: one test at a time, in a child process */
#include "core/iperf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdint.h> /* iperf_api.h uses uint64_t without including it */
#include <iperf_api.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/iperf_priv.h"
#include "core/log.h"
#include "core/mem.h"

#define START_WAIT_MS  10000 /* how long a start waits for the child to listen */
#define WATCH_EVERY_MS 500   /* how often the server looks at its connections */
#define EVENTS_FD      3     /* the pipe's write end, in the child */

/* ---- the server: libiperf in a child process, events to the parent over a pipe ---- */

/*
 * Why a child process: iperf_run_server (3.12) closes each stream socket twice, at TEST_END
 * and again in its cleanup. In a process where other threads open files and sockets (the HTTP
 * and Ookla listeners of `dstmc server`), the second close hits whatever took that number in
 * between: seen as an HTTP client's connection reset at the end of an iperf3 test. A child
 * has its own descriptor table, and a stop is a SIGKILL.
 *
 * The child is this program again (/proc/self/exe DST_IPERF_CHILD_ARG ...), not a bare fork: a
 * fork of a process with threads may copy a lock another thread held (seen: ASan's allocator
 * lock, and the child hung in its first malloc), and only a fresh exec starts from none.
 */

/* What the child tells the parent, in one write (< PIPE_BUF, so never interleaved). */
struct event {
    char kind; /* 'L' listening, 'B' a client began, 'E' its run ended, 'W' log, 'X' fatal */
    bool has_report;
    struct dst_iperf_report r;
    char text[256];
};

struct dst_iperf_server {
    struct dst_iperf_server_opts o;
    char addr[INET6_ADDRSTRLEN]; /* the numeric address libiperf binds */
    struct iperf_endpoint local; /* addr and the bound port */
    int placeholder;             /* keeps the port bound while libiperf reopens its listener */
    pid_t child;
    int events; /* the pipe's read end */
    pthread_t reader;
    bool reading;
    pthread_mutex_t mu; /* guards listening, reader_done; cond tells their changes */
    pthread_cond_t cond;
    bool listening, reader_done;
};

/* The child's state. */
struct child {
    char addr[INET6_ADDRSTRLEN];
    int port, stall_s;
    int events; /* the pipe's write end */
    pid_t parent;
    struct iperf_guard watcher;
    atomic_bool serving;    /* libiperf listened at least once */
    atomic_bool stalled;    /* the watcher cut the current client for sending nothing */
    pthread_mutex_t run_mu; /* one event at a time; guards runs and begun */
    unsigned runs;          /* runs ended so far */
    bool begun;             /* 'B' sent for the current run */
};

static void tell(struct child *s, char kind, const struct dst_iperf_report *r, const char *text)
{
    struct event ev = {.kind = kind, .has_report = r != NULL};

    if (r)
        ev.r = *r;
    snprintf(ev.text, sizeof(ev.text), "%s", text ? text : "");
    if (write(s->events, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
        _exit(1); /* the parent is gone */
}

static struct iperf_test *server_test(const struct child *s)
{
    struct iperf_test *t = iperf_test_new('s');

    if (t) {
        iperf_set_test_bind_address(t, s->addr);
        iperf_set_test_server_port(t, s->port);
    }
    return t;
}

/* Serves one client (in the child); -2 when libiperf could not listen. */
static int serve_one(struct child *s)
{
    struct iperf_test *t = server_test(s);
    struct dst_iperf_report r;
    char err[256] = "";

    if (!t)
        return -2;
    i_errno = IENONE;
    errno = 0;
    atomic_store(&s->stalled, false);
    int rc = iperf_run_server(t);
    int ie = i_errno, en = errno;
    if (rc == -2) {
        errno = en;
        snprintf(err, sizeof(err), "iperf3: cannot listen on %s port %d: %s", s->addr, s->port,
                 iperf_strerror(ie));
        tell(s, 'W', NULL, err);
    } else {
        bool ok = iperf_outcome(t, rc, ie, en, true, &r, err, sizeof(err)) == 0;
        if (!ok && atomic_exchange(&s->stalled, false))
            snprintf(err, sizeof(err), "stalled: no data from the client for %d s", s->stall_s);
        iperf_test_free(t); /* its listener too: once a run has ended, only the next one listens */
        t = NULL;
        pthread_mutex_lock(&s->run_mu);
        tell(s, 'E', ok ? &r : NULL, ok ? NULL : err);
        s->runs++;
        s->begun = false;
        pthread_mutex_unlock(&s->run_mu);
    }
    if (t)
        iperf_test_free(t);
    return rc;
}

/* What the watcher saw of the server's sockets; with cut, it shuts the clients' down. */
struct look {
    struct child *s;
    bool cut;
    int listeners, clients, stalled;
};

static void look_at(int fd, void *ud)
{
    struct look *l = ud;
    struct iperf_endpoint e, peer;
    struct tcp_info ti;
    int listening = 0;
    socklen_t len = sizeof(listening);
    unsigned stall_ms = (unsigned)l->s->stall_s * 1000u;

    if (!iperf_socket_end(fd, false, &e) || e.port != l->s->port)
        return;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (listening) {
        l->listeners++;
        return;
    }
    if (!iperf_socket_end(fd, true, &peer))
        return;
    len = sizeof(ti);
    l->clients++;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        ti.tcpi_last_data_recv >= stall_ms && ti.tcpi_last_data_sent >= stall_ms)
        l->stalled++;
    if (l->cut)
        shutdown(fd, SHUT_RDWR);
}

/* The watcher's tick (in the child): listening yet, a client there, a client stalled. */
static int64_t watch(void *ud)
{
    struct child *s = ud;
    struct look l = {.s = s};

    if (getppid() != s->parent)
        _exit(0); /* the parent died without stopping us */
    pthread_mutex_lock(&s->run_mu);
    unsigned runs = s->runs;
    pthread_mutex_unlock(&s->run_mu);
    iperf_each_stream_socket(look_at, &l);
    if (l.clients > 0 && l.stalled == l.clients) {
        atomic_store(&s->stalled, true);
        l.cut = true;
        iperf_each_stream_socket(look_at, &l);
    } else if (l.clients > 0) {
        pthread_mutex_lock(&s->run_mu); /* a client of this run, not of one just ended */
        if (runs == s->runs && !s->begun)
            tell(s, 'B', NULL, NULL);
        s->begun = s->begun || runs == s->runs;
        pthread_mutex_unlock(&s->run_mu);
    }
    if (l.listeners > 0 && !atomic_exchange(&s->serving, true))
        tell(s, 'L', NULL, NULL);
    return dst_monotonic_ms() + (atomic_load(&s->serving) ? WATCH_EVERY_MS : 5);
}

/* The child: serves until killed. Only libiperf, jansson and its own threads run here. */
int dst_iperf_server_child(int argc, char **argv)
{
    struct child c = {.events = EVENTS_FD};

    if (argc != 6 || strcmp(argv[1], DST_IPERF_CHILD_ARG) != 0)
        return fprintf(stderr, "%s: for dstmc's own use\n", DST_IPERF_CHILD_ARG), 2;
    snprintf(c.addr, sizeof(c.addr), "%s", argv[2]);
    c.port = atoi(argv[3]);
    c.stall_s = atoi(argv[4]);
    c.parent = (pid_t)atol(argv[5]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* with the parent gone, nobody would stop us */
    if (getppid() != c.parent)
        _exit(0);             /* it went before that took effect */
    signal(SIGPIPE, SIG_IGN); /* libiperf writes to sockets its peer may have closed */
    pthread_mutex_init(&c.run_mu, NULL);
    if (iperf_guard_start(&c.watcher, 0, watch, &c) != 0)
        _exit(1);
    for (;;) {
        if (serve_one(&c) != -2)
            continue;
        if (!atomic_load(&c.serving))
            tell(&c, 'X', NULL, "");
        sleep(1); /* could not listen again (the port was taken meanwhile): retry */
    }
}

/* Turns the child's events into the callbacks, in the parent; ends when the child does. */
static void *reader_main(void *arg)
{
    struct dst_iperf_server *s = arg;
    struct event ev;
    bool begun = false;

    while (read(s->events, &ev, sizeof(ev)) == (ssize_t)sizeof(ev)) {
        if (ev.kind == 'W')
            dst_error("%s", ev.text);
        if ((ev.kind == 'B' || ev.kind == 'E') && !begun && s->o.on_begin)
            s->o.on_begin(s->o.ud);
        begun = ev.kind == 'B' || (begun && ev.kind != 'E');
        if (ev.kind == 'E' && s->o.on_end)
            s->o.on_end(s->o.ud, ev.has_report ? &ev.r : NULL, ev.text);
        if (ev.kind == 'L' || ev.kind == 'X') {
            pthread_mutex_lock(&s->mu);
            s->listening = ev.kind == 'L';
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (begun && s->o.on_end)
        s->o.on_end(s->o.ud, NULL, "stopped");
    pthread_mutex_lock(&s->mu);
    s->reader_done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The pipe's write end at a number above EVENTS_FD, so that the spawn's dup2 clears CLOEXEC. */
static int pipe_for_child(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    if (fds[1] > EVENTS_FD)
        return 0;
    int high = fcntl(fds[1], F_DUPFD_CLOEXEC, EVENTS_FD + 1);
    close(fds[1]);
    fds[1] = high;
    return high < 0 ? (close(fds[0]), -1) : 0;
}

/* Starts the child: this program again, with the pipe's write end as its EVENTS_FD. */
static int start_child(struct dst_iperf_server *s)
{
    char port[16], stall[16], parent[24];
    char *argv[] = {"dstmc", DST_IPERF_CHILD_ARG, s->addr, port, stall, parent, NULL};
    posix_spawn_file_actions_t fa;
    int fds[2], rc = 0;

    snprintf(port, sizeof(port), "%d", s->local.port);
    snprintf(stall, sizeof(stall), "%d", s->o.stall_s);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    if (pipe_for_child(fds) != 0)
        return dst_error("iperf3: no pipe: %s", strerror(errno)), DST_EIO;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], EVENTS_FD);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&s->child, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    s->events = fds[0];
    if (rc != 0) {
        s->child = -1;
        return dst_error("iperf3: cannot start its process: %s", strerror(rc)), DST_EIO;
    }
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0)
        return DST_ENOMEM;
    s->reading = true;
    return 0;
}

/* Binds the placeholder to host:port (the port is free, and now known). */
static int bind_placeholder(struct dst_iperf_server *s, const char *host, int port)
{
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char err[256];
    int one = 1, zero = 0, rc = iperf_resolve(host, port, AI_PASSIVE, &res, err, sizeof(err));

    if (rc)
        return dst_error("iperf3: cannot listen on %s: %s", host, err), DST_EINVAL;
    s->placeholder = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(s->placeholder, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (res->ai_family == AF_INET6) /* as libiperf's own listener: both families */
        setsockopt(s->placeholder, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (s->placeholder < 0 || bind(s->placeholder, res->ai_addr, res->ai_addrlen) != 0 ||
        getsockname(s->placeholder, (struct sockaddr *)&ss, &len) != 0) {
        rc = errno == EADDRINUSE ? DST_ECONFLICT : DST_EIO;
        dst_error("iperf3: cannot listen on %s port %d: %s", host, port, strerror(errno));
    } else {
        iperf_endpoint_of((struct sockaddr *)&ss, &s->local);
        getnameinfo(res->ai_addr, res->ai_addrlen, s->addr, sizeof(s->addr), NULL, 0,
                    NI_NUMERICHOST);
    }
    freeaddrinfo(res);
    return rc;
}

int dst_iperf_server_new(const struct dst_iperf_server_opts *o, struct dst_iperf_server **out)
{
    struct dst_iperf_server *s = dst_xnew(struct dst_iperf_server);
    int rc = 0;

    s->o = *o;
    s->o.host = NULL;
    s->o.stall_s = o->stall_s > 0 ? o->stall_s : 10;
    s->placeholder = s->events = s->child = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    rc = !o->host || o->port < 0 || o->port > 65535 ? DST_EINVAL
                                                    : bind_placeholder(s, o->host, o->port);
    rc = rc ? rc : start_child(s);
    if (rc == 0) {
        struct timespec ts = iperf_mono_ts(dst_monotonic_ms() + START_WAIT_MS);
        pthread_mutex_lock(&s->mu);
        int w = 0;
        while (!s->listening && !s->reader_done && w == 0)
            w = pthread_cond_clockwait(&s->cond, &s->mu, CLOCK_MONOTONIC, &ts);
        rc = s->listening ? 0 : s->reader_done ? DST_EDEP : DST_ETIMEDOUT; /* the child said why */
        pthread_mutex_unlock(&s->mu);
        if (rc == DST_ETIMEDOUT)
            dst_error("iperf3: its process did not listen within %d s", START_WAIT_MS / 1000);
    }
    if (rc) {
        dst_iperf_server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int dst_iperf_server_port(const struct dst_iperf_server *s)
{
    return s->local.port;
}

void dst_iperf_server_free(struct dst_iperf_server *s)
{
    if (!s)
        return;
    if (s->child > 0) { /* its sockets close with it: a running test ends at once */
        kill(s->child, SIGKILL);
        waitpid(s->child, NULL, 0);
    }
    if (s->reading)
        pthread_join(s->reader, NULL);
    if (s->events >= 0)
        close(s->events);
    if (s->placeholder >= 0)
        close(s->placeholder);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
