/* up.c - `dstmc toystore up`: the whole toy store on one machine, each tier a child process */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sig.h"
#include "toystore/services.h"
#include "toystore/toystore.h"

/*
 * The children are this program again (/proc/self/exe toystore <tier> ...), each with its
 * stdout and stderr on a pipe that up reads: every line is passed on to up's stderr with the
 * child's name in front, and a child's "listening on" line tells up it is serving. The back
 * ends listen on 127.0.0.1 at ports up reserves before the start (the kernel's free ports,
 * all known before any child starts, so that each replica can be given its peers); a child
 * that is restarted gets its old port again, so that the others' URLs stay right.
 */
#define MAX_REPLICAS   5
#define MAX_CHILDREN   (MAX_REPLICAS + 2)
#define MAX_ARGS       48
#define START_TRIES    3     /* whole starts, each with fresh ports, when a back end cannot bind */
#define START_WAIT_MS  60000 /* how long a start waits for every child's "listening on" */
#define STOP_WAIT_MS   20000 /* how long a stop waits after SIGTERM before SIGKILL */
#define BACKOFF_MIN    200   /* ms before the first restart of a child that exited */
#define BACKOFF_MAX    10000 /* ms: the back-off doubles up to this */
#define STABLE_MS      30000 /* a child that ran this long restarts after BACKOFF_MIN again */
#define OUT_LINE       4096  /* a child's output line longer than this is passed on in parts */
#define DEFAULT_LISTEN "0.0.0.0:8100"

enum tier { CATALOG, ORDER, FRONTEND };

struct child {
    enum tier tier;
    int id;        /* an order replica's --id */
    char name[16]; /* "catalog", "order-2", "frontend": its prefix and its name in the log */
    pid_t pid;     /* 0: not running */
    int fd;        /* the read end of its stdout and stderr; -1 */
    char line[OUT_LINE];
    size_t len;
    int port;       /* its port: reserved, or learned from its first "listening on" */
    char host[64];  /* the host of its "listening on" line */
    bool listening; /* this run of it printed its line */
    int64_t started, restart_at;
    int backoff;
};

struct up {
    const char *listen, *data_dir, *cache;
    long replicas, restock;
    bool lab2;
    char fe_host[64]; /* --listen's host and port */
    int fe_port;
    struct child ch[MAX_CHILDREN];
    int n;
    char **env; /* environ without DSTMC_*: a child takes only what its arguments say */
};

/* ---- a child's arguments ---- */

struct argv_buf {
    char *v[MAX_ARGS + 1];
    char text[4096];
    size_t used;
    int n;
};

static void arg(struct argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg(struct argv_buf *a, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof(a->text) - a->used;

    if (a->n >= MAX_ARGS || room < 2)
        return; /* cannot happen with MAX_REPLICAS peers; the child then refuses its arguments */
    va_start(ap, fmt);
    int w = vsnprintf(a->text + a->used, room, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= room)
        return;
    a->v[a->n++] = a->text + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)w + 1;
}

static int port_of(const struct up *u, enum tier t, int id)
{
    for (int i = 0; i < u->n; i++)
        if (u->ch[i].tier == t && (t != ORDER || u->ch[i].id == id))
            return u->ch[i].port;
    return 0;
}

static void build_args(const struct up *u, const struct child *c, struct argv_buf *a)
{
    int cat = port_of(u, CATALOG, 0);

    memset(a, 0, sizeof(*a));
    arg(a, "dstmc");
    arg(a, "toystore");
    switch (c->tier) {
    case CATALOG:
        arg(a, "catalog");
        arg(a, "--listen=127.0.0.1:%d", c->port);
        arg(a, "--db=%s/catalog.txt", u->data_dir);
        arg(a, "--restock-interval=%ld", u->restock);
        arg(a, "--lab2=%s", u->lab2 ? "true" : "false");
        break;
    case ORDER:
        arg(a, "order");
        arg(a, "--listen=127.0.0.1:%d", c->port);
        arg(a, "--id=%d", c->id);
        arg(a, "--db=%s/orders-%d.txt", u->data_dir, c->id);
        arg(a, "--catalog=http://127.0.0.1:%d", cat);
        for (int id = 1; id <= u->replicas; id++)
            if (id != c->id)
                arg(a, "--peer=%d=http://127.0.0.1:%d", id, port_of(u, ORDER, id));
        break;
    case FRONTEND:
        arg(a, "frontend");
        arg(a, "--listen=%s%s%s:%d", strchr(u->fe_host, ':') ? "[" : "", u->fe_host,
            strchr(u->fe_host, ':') ? "]" : "", c->port);
        arg(a, "--catalog=http://127.0.0.1:%d", cat);
        for (int id = 1; id <= u->replicas; id++)
            arg(a, "--order=%d=http://127.0.0.1:%d", id, port_of(u, ORDER, id));
        arg(a, "--cache=%s", u->cache);
        break;
    }
}

/* ---- starting, reading and reaping one child ---- */

/*
 * fork + exec of /proc/self/exe. Between the two only async-signal-safe calls: the child asks
 * for SIGTERM when up dies (so that a kill -9 of up leaves no tier behind), takes the pipe as
 * its stdout and stderr, and a process group of its own. The blocked stop signals stay blocked:
 * the child's own signal thread takes them (a SIGTERM before it starts waits, pending, and then
 * stops it cleanly).
 */
static int spawn(struct up *u, struct child *c)
{
    struct argv_buf a;
    int fds[2] = {-1, -1};
    pid_t parent = getpid();

    build_args(u, c, &a);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(fds, O_CLOEXEC) != 0) {
        dst_error("%s: cannot start: %s", c->name, strerror(errno));
        if (devnull >= 0)
            close(devnull);
        return DST_EIO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* a terminal's Ctrl-C reaches up alone, which stops the tiers in order */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        if (dup2(devnull, STDIN_FILENO) < 0 || dup2(fds[1], STDOUT_FILENO) < 0 ||
            dup2(fds[1], STDERR_FILENO) < 0)
            _exit(127);
        execve("/proc/self/exe", a.v, u->env);
        _exit(127);
    }
    int err = errno;
    close(devnull);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        dst_error("%s: cannot fork: %s", c->name, strerror(err));
        return DST_EIO;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    c->pid = pid;
    c->fd = fds[0];
    c->len = 0;
    c->listening = false;
    c->started = dst_monotonic_ms();
    if (c->port)
        dst_info("started %s (pid %d) on 127.0.0.1:%d", c->name, (int)pid, c->port);
    else
        dst_info("started %s (pid %d)", c->name, (int)pid);
    return 0;
}

/* One whole line of c's output: passed on with its name; a "listening on" line noted. */
static void on_line(struct child *c, const char *line, size_t len)
{
    char host[64];
    int port = 0;

    dprintf(STDERR_FILENO, "[%s] %.*s\n", c->name, (int)len, line);
    if (len < sizeof(c->line) && strncmp(line, "listening on http://", 20) == 0) {
        const char *h = line + 20, *colon = memrchr(h, ':', len - 20);
        size_t hl = colon ? (size_t)(colon - h) : 0;
        if (hl > 1 && h[0] == '[' && h[hl - 1] == ']')
            h++, hl -= 2;
        if (colon && hl > 0 && hl < sizeof(host) && sscanf(colon + 1, "%d", &port) == 1 &&
            port > 0 && port <= 65535) {
            memcpy(host, h, hl);
            host[hl] = '\0';
            snprintf(c->host, sizeof(c->host), "%s", host);
            c->port = port;
            c->listening = true;
        }
    }
}

/* Reads what c wrote so far; at the end of its output, passes on a last partial line. */
static void pump(struct child *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->line + c->len, sizeof(c->line) - c->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                if (c->len)
                    on_line(c, c->line, c->len);
                c->len = 0;
                close(c->fd);
                c->fd = -1;
            }
            return;
        }
        c->len += (size_t)r;
        char *start = c->line, *nl;
        while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->line))) != NULL) {
            on_line(c, start, (size_t)(nl - start));
            start = nl + 1;
        }
        c->len -= (size_t)(start - c->line);
        memmove(c->line, start, c->len);
        if (c->len == sizeof(c->line)) { /* a line longer than the buffer: passed on in parts */
            on_line(c, c->line, c->len);
            c->len = 0;
        }
    }
}

/* Reads every child's output for up to wait_ms. */
static void pump_all(struct up *u, int wait_ms)
{
    struct pollfd p[MAX_CHILDREN];
    int k = 0;

    for (int i = 0; i < u->n; i++)
        if (u->ch[i].fd >= 0)
            p[k++] = (struct pollfd){.fd = u->ch[i].fd, .events = POLLIN};
    if (k == 0) {
        dst_sig_wait(wait_ms);
        return;
    }
    if (poll(p, (nfds_t)k, wait_ms) <= 0)
        return;
    for (int i = 0; i < u->n; i++)
        for (int j = 0; j < k; j++)
            if (u->ch[i].fd == p[j].fd && p[j].revents)
                pump(&u->ch[i]);
}

static void describe(int status, char *out, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(out, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
}

/* Whether c has exited (then reaped, its output drained, pid 0); status in *status. */
static bool reap(struct child *c, int *status)
{
    if (c->pid <= 0 || waitpid(c->pid, status, WNOHANG) != c->pid)
        return false;
    c->pid = 0;
    while (c->fd >= 0) { /* what it wrote before it died (a grandchild could hold the pipe) */
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            break;
        pump(c);
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    return true;
}

/* SIGTERM to every child of tier t by its pid; waits (reading all output), then SIGKILL. */
static int stop_tier(struct up *u, enum tier t)
{
    int64_t end = dst_monotonic_ms() + STOP_WAIT_MS;
    int status = 0, rc = 0, left = 0;
    char why[64];

    for (int i = 0; i < u->n; i++)
        if (u->ch[i].tier == t && u->ch[i].pid > 0)
            kill(u->ch[i].pid, SIGTERM);
    do {
        left = 0;
        for (int i = 0; i < u->n; i++) {
            struct child *c = &u->ch[i];
            pid_t pid = c->pid;
            if (c->tier == t && reap(c, &status)) {
                describe(status, why, sizeof(why));
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    dst_warn("%s (pid %d) %s", c->name, (int)pid, why);
                    rc = DST_EIO;
                }
            }
            left += c->tier == t && c->pid > 0;
        }
        if (left)
            pump_all(u, 50);
    } while (left && dst_monotonic_ms() < end);
    for (int i = 0; i < u->n; i++) {
        struct child *c = &u->ch[i];
        if (c->tier == t && c->pid > 0) {
            dst_error("%s (pid %d) did not stop within %d s: killed", c->name, (int)c->pid,
                      STOP_WAIT_MS / 1000);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            c->pid = 0;
            rc = DST_EIO;
        }
        if (c->tier == t && c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    return rc;
}

/*
 * Stops the tiers in the order they depend on each other: the front end first (no new
 * requests, and no event stream to the catalog any more), then the order replicas (no buys in
 * flight), then the catalog.
 */
static int stop_all(struct up *u)
{
    int rc = stop_tier(u, FRONTEND);
    int r2 = stop_tier(u, ORDER);
    int r3 = stop_tier(u, CATALOG);

    return rc ? rc : r2 ? r2 : r3;
}

/* ---- the store ---- */

/* Free ports on 127.0.0.1 for the back ends: all bound at once (so distinct), then released. */
static int reserve_ports(struct up *u)
{
    int fds[MAX_CHILDREN], k = 0, rc = 0;

    for (int i = 0; i < u->n && rc == 0; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        if (u->ch[i].tier == FRONTEND) {
            u->ch[i].port = u->fe_port;
            continue;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
            dst_error("cannot find a free port on 127.0.0.1: %s", strerror(errno));
            rc = DST_EIO;
        } else {
            u->ch[i].port = ntohs(sa.sin_port);
        }
        if (fd >= 0)
            fds[k++] = fd;
    }
    while (k > 0)
        close(fds[--k]);
    return rc;
}

/*
 * Starts every child and waits until each listens. A back end that exits first most likely
 * lost its port to another process between the reservation and its bind: the caller tries
 * again with other ports. DST_ECONFLICT then; DST_EIO when the front end failed.
 */
static int start_all(struct up *u)
{
    int64_t end = dst_monotonic_ms() + START_WAIT_MS;
    int rc = reserve_ports(u), status = 0;
    char why[64];

    for (int i = 0; i < u->n && rc == 0; i++)
        rc = spawn(u, &u->ch[i]);
    while (rc == 0) {
        bool all = true;
        for (int i = 0; i < u->n && rc == 0; i++) {
            struct child *c = &u->ch[i];
            pid_t pid = c->pid;
            if (!c->listening && reap(c, &status)) {
                describe(status, why, sizeof(why));
                dst_error("%s (pid %d) %s before it listened", c->name, (int)pid, why);
                rc = c->tier == FRONTEND ? DST_EIO : DST_ECONFLICT;
            }
            all = all && c->listening;
        }
        if (rc || all)
            break;
        if (dst_sig_stopping())
            rc = DST_EIO;
        else if (dst_monotonic_ms() > end) {
            dst_error("the tiers did not all listen within %d s", START_WAIT_MS / 1000);
            rc = DST_ETIMEDOUT;
        } else
            pump_all(u, 100);
    }
    return rc;
}

/* Restarts children that exited, each after its back-off. Until a stop is requested. */
static void supervise(struct up *u)
{
    int status = 0;
    char why[64];

    while (!dst_sig_stopping()) {
        pump_all(u, 100);
        int64_t now = dst_monotonic_ms();
        for (int i = 0; i < u->n; i++) {
            struct child *c = &u->ch[i];
            pid_t pid = c->pid;
            if (reap(c, &status)) {
                int64_t ran = now - c->started;
                c->backoff = ran >= STABLE_MS || c->backoff == 0 ? BACKOFF_MIN
                             : c->backoff * 2 > BACKOFF_MAX      ? BACKOFF_MAX
                                                                 : c->backoff * 2;
                c->restart_at = now + c->backoff;
                describe(status, why, sizeof(why));
                dst_warn("%s (pid %d) %s after %.1f s; restarting it in %.1f s", c->name, (int)pid,
                         why, (double)ran / 1000.0, c->backoff / 1000.0);
            }
            if (c->pid == 0 && now >= c->restart_at && !dst_sig_stopping() && spawn(u, c) != 0) {
                c->backoff = c->backoff < BACKOFF_MIN       ? BACKOFF_MIN
                             : c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX
                                                            : c->backoff * 2;
                c->restart_at = now + c->backoff; /* logged by spawn; tried again later */
            }
        }
    }
}

/* What --check-config and the start check: the files in the data directory, when there. */
static int check_files(const struct dst_cfg *cfg, const struct up *u)
{
    char path[PATH_MAX + 32], err[512];

    snprintf(path, sizeof(path), "%s/catalog.txt", u->data_dir);
    if (catalog_db_check(path, err, sizeof(err)) != 0)
        return dst_cfg_fail(cfg, stderr, "data-dir", "%s", err);
    for (long id = 1; id <= u->replicas; id++) {
        snprintf(path, sizeof(path), "%s/orders-%ld.txt", u->data_dir, id);
        if (order_log_check(path, err, sizeof(err)) != 0)
            return dst_cfg_fail(cfg, stderr, "data-dir", "%s", err);
    }
    return 0;
}

static void add_child(struct up *u, enum tier t, int id)
{
    struct child *c = &u->ch[u->n++];

    c->tier = t;
    c->id = id;
    c->fd = -1;
    if (t == ORDER)
        snprintf(c->name, sizeof(c->name), "order-%d", id % 100);
    else
        snprintf(c->name, sizeof(c->name), "%s", t == CATALOG ? "catalog" : "frontend");
}

extern char **environ;

static char **env_without_ours(void)
{
    size_t n = 0, k = 0;

    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "DSTMC_", 6) != 0)
            env[k++] = environ[i];
    return env;
}

static int run(struct up *u)
{
    int rc = DST_ECONFLICT;

    if (mkdir(u->data_dir, 0755) != 0 && errno != EEXIST) {
        dst_error("cannot create %s: %s", u->data_dir, strerror(errno));
        return DST_EIO;
    }
    u->env = env_without_ours();
    if (!u->env)
        return DST_ENOMEM;
    add_child(u, CATALOG, 0);
    for (int id = 1; id <= u->replicas; id++)
        add_child(u, ORDER, id);
    add_child(u, FRONTEND, 0);
    for (int t = 0; t < START_TRIES && rc == DST_ECONFLICT; t++) {
        if (t > 0)
            dst_warn("starting again, on other ports");
        rc = start_all(u);
        if (rc)
            stop_all(u);
    }
    if (rc == 0) {
        const struct child *fe = &u->ch[u->n - 1];
        bool any4 = strcmp(fe->host, "0.0.0.0") == 0, any6 = strcmp(fe->host, "::") == 0;
        const char *host = any4 ? "127.0.0.1" : any6 ? "::1" : fe->host;
        bool v6 = strchr(host, ':') != NULL;
        dst_log_listening("http", fe->host, fe->port);
        printf("toy store: http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "", fe->port);
        fflush(stdout);
        supervise(u);
        dst_info("stopping (signal %d)", dst_sig_last());
        rc = stop_all(u);
    } else {
        dst_error("cannot start the toy store");
    }
    free(u->env);
    return rc;
}

static int check_on_off(const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)
        return 0;
    return dst_errf(DST_EINVAL, err, errlen, "'%s' is neither on nor off", value);
}

int toystore_up_main(int argc, char **argv)
{
    struct up u = {0};
    char err[256];
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &u.listen, DEFAULT_LISTEN,
         "the front end's address (the back ends listen on free ports of 127.0.0.1)", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"data-dir", DST_CFG_STR, &u.data_dir, "./toystore-data",
         "the files: catalog.txt (and its .journal) and orders-1.txt .. orders-N.txt (created when "
         "missing)",
         "DIR", .check = dst_cfg_check_dir},
        {"replicas", DST_CFG_INT, &u.replicas, "3",
         "order replicas, ids 1..N (the front end leads with the highest that answers)", "N", 1,
         MAX_REPLICAS},
        {"lab2", DST_CFG_BOOL, &u.lab2, "false",
         "a new catalog gets Lab 2's four toys, not Lab 3's ten"},
        {"restock-interval", DST_CFG_INT, &u.restock, "10",
         "seconds between restocks of the toys sold out (to 100); 0: never", "S", 0, 86400},
        {"cache", DST_CFG_STR, &u.cache, "on", "the front end's query cache: on or off", "on|off",
         .check = check_on_off},
    };
    struct dst_cfg cfg = {"toystore up",
                          "the whole toy store on one machine: catalog, order replicas and "
                          "front end, each a child process restarted when it exits",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls = {"listen", NULL, false};

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc)
        return rc == DST_CFG_EXIT ? 0 : 2;
    ls.value = u.listen;
    if (strlen(u.data_dir) > PATH_MAX - 32)
        return dst_cfg_fail(&cfg, stderr, "data-dir", "longer than %d bytes", PATH_MAX - 32), 2;
    if (dst_cfg_split_hostport(u.listen, u.fe_host, sizeof(u.fe_host), &u.fe_port, err,
                               sizeof(err)) != 0)
        return dst_cfg_fail(&cfg, stderr, "listen", "%s", err), 2;
    if (dst_cfg_check_listeners(&cfg, stderr, &ls, 1) != 0 || check_files(&cfg, &u) != 0)
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    return run(&u) ? 1 : 0;
}
