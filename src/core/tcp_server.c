/* tcp_server.c - a TCP listener for raw protocols: a thread per connection, capped, idle-timed */
#include "core/tcp_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define CONN_STACK (512 * 1024) /* a handler needs little; keeps many connections cheap */

/* One connection: on the server's list from accept until joined. */
struct tcp_conn {
    struct dst_tcp_server *s;
    struct dst_net_conn net;
    pthread_t thread;
    bool done; /* the handler returned and the socket is closed (under s->mu) */
    char peer[64];
    struct tcp_conn *next;
};

struct dst_tcp_server {
    struct dst_tcp_server_opts o;
    char *name;
    char host[256];
    int port;    /* asked for, then bound */
    int lfd;     /* listening socket, -1 before start */
    int wake[2]; /* stop writes to wake[1] to end the accept loop */
    pthread_t acceptor;
    bool started, stopped;
    pthread_mutex_t mu;
    struct tcp_conn *conns; /* live, or done and not yet joined */
    unsigned active;
    uint64_t rejected;
};

int dst_tcp_server_new(const struct dst_tcp_server_opts *opts, struct dst_tcp_server **out)
{
    char err[256];
    struct dst_tcp_server *s = dst_xnew(struct dst_tcp_server);

    if (!opts->handler || !opts->listen ||
        dst_cfg_split_hostport(opts->listen, s->host, sizeof(s->host), &s->port, err,
                               sizeof(err)) != 0) {
        dst_error("%s: cannot listen on '%s': %s", opts->name ? opts->name : "tcp",
                  opts->listen ? opts->listen : "", opts->handler ? err : "no handler");
        free(s);
        return DST_EINVAL;
    }
    s->o = *opts;
    s->name = dst_xstrdup(opts->name ? opts->name : "tcp");
    s->o.name = s->name;
    s->o.listen = NULL; /* borrowed: not kept */
    s->o.max_conns = opts->max_conns ? opts->max_conns : 64;
    s->o.idle_ms = opts->idle_ms > 0 ? opts->idle_ms : 30000;
    s->lfd = s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

int dst_tcp_server_port(const struct dst_tcp_server *s)
{
    return s->port;
}

unsigned dst_tcp_server_active(struct dst_tcp_server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->active;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t dst_tcp_server_rejected(struct dst_tcp_server *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->rejected;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void *conn_main(void *arg)
{
    struct tcp_conn *c = arg;
    struct dst_tcp_server *s = c->s;

    s->o.handler(s->o.ud, &c->net, c->peer);
    pthread_mutex_lock(&s->mu); /* closed under the lock: stop never shuts down a reused fd */
    dst_net_close(&c->net);
    c->done = true;
    s->active--;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Joins and frees the connections whose handler has returned (all of them when all is set). */
static void reap(struct dst_tcp_server *s, bool all)
{
    struct tcp_conn *gone = NULL;

    pthread_mutex_lock(&s->mu);
    for (struct tcp_conn **pp = &s->conns; *pp;) {
        struct tcp_conn *c = *pp;
        if (all || c->done) {
            *pp = c->next;
            c->next = gone;
            gone = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (gone) {
        struct tcp_conn *next = gone->next;
        pthread_join(gone->thread, NULL);
        free(gone);
        gone = next;
    }
}

/* Starts a thread for fd, or closes it at once when over the cap (or out of threads). */
static void admit(struct dst_tcp_server *s, int fd, pthread_attr_t *attr)
{
    int one = 1;

    pthread_mutex_lock(&s->mu);
    if (s->active >= s->o.max_conns) {
        s->rejected++;
        pthread_mutex_unlock(&s->mu);
        dst_debug("%s: over %u connections: one closed", s->name, s->o.max_conns);
        if (s->o.on_reject) /* counted before the client can see the close */
            s->o.on_reject(s->o.ud);
        close(fd);
        return;
    }
    struct tcp_conn *c = dst_xnew(struct tcp_conn);
    c->s = s;
    dst_net_conn_init(&c->net, fd);
    c->net.idle_ms = s->o.idle_ms;
    dst_net_peer(&c->net, c->peer, sizeof(c->peer));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (pthread_create(&c->thread, attr, conn_main, c) != 0) {
        pthread_mutex_unlock(&s->mu);
        dst_warn("%s: cannot start a thread for %s: closed", s->name, c->peer);
        dst_net_close(&c->net);
        free(c);
        return;
    }
    c->next = s->conns;
    s->conns = c;
    s->active++;
    pthread_mutex_unlock(&s->mu);
}

/* Accepts every pending connection. */
static void accept_ready(struct dst_tcp_server *s, pthread_attr_t *attr)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(s, fd, attr);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            dst_warn("%s: accept: %s", s->name, strerror(errno));
            poll(NULL, 0, 100); /* let connections end instead of spinning */
        }
        return; /* EAGAIN, or an error of one connection (ECONNABORTED ...) */
    }
}

static void *accept_main(void *arg)
{
    struct dst_tcp_server *s = arg;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK);
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        int n = poll(p, 2, 1000);
        reap(s, false);
        if (n < 0 && errno != EINTR) {
            dst_error("%s: poll: %s", s->name, strerror(errno));
            break;
        }
        if (n > 0 && p[1].revents)
            break;
        if (n > 0 && p[0].revents)
            accept_ready(s, &attr);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

int dst_tcp_server_start(struct dst_tcp_server *s)
{
    char err[300];
    int rc = dst_net_listen(s->host, s->port, 128, &s->lfd, &s->port, err, sizeof(err));

    if (rc) {
        dst_error("%s: %s", s->name, err);
        return rc;
    }
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        dst_error("%s: cannot start the accept thread: %s", s->name, strerror(errno));
        return DST_EIO; /* what is open is closed by free */
    }
    s->started = true;
    if (!s->o.quiet)
        dst_log_listening("tcp", s->host[0] ? s->host : "0.0.0.0", s->port);
    return 0;
}

void dst_tcp_server_stop(struct dst_tcp_server *s)
{
    if (s->stopped)
        return;
    s->stopped = true;
    if (s->started) {
        (void)!write(s->wake[1], "x", 1);
        pthread_join(s->acceptor, NULL);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    s->lfd = -1;
    pthread_mutex_lock(&s->mu);
    for (struct tcp_conn *c = s->conns; c; c = c->next) {
        if (!c->done)
            shutdown(c->net.fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->mu);
    reap(s, true);
}

void dst_tcp_server_free(struct dst_tcp_server *s)
{
    if (!s)
        return;
    dst_tcp_server_stop(s);
    for (int i = 0; i < 2; i++) {
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s);
}
