/* iperf_priv.h - what the iperf3 client (iperf.c) and server (iperf_server.c) share */
#ifndef DST_IPERF_PRIV_H
#define DST_IPERF_PRIV_H

/*
 * Private to the module: only iperf.c and iperf_server.c include this, and they are the only
 * files that include <iperf_api.h>. libiperf's own names start with iperf_ too: the ones here
 * were checked against it (3.12), and a test's constructor and destructor are iperf_test_new
 * and iperf_test_free, not libiperf's iperf_new_test and iperf_free_test, which they wrap.
 */

#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "core/iperf.h"

struct iperf_test; /* libiperf's */

/* The monotonic moment ms (dst_monotonic_ms) as a timespec, for the waits on CLOCK_MONOTONIC. */
struct timespec iperf_mono_ts(int64_t ms);

/* ---- a guard: a thread that calls tick when it asks to be called, until stopped ---- */

struct iperf_guard {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t (*tick)(void *ud); /* does its work; returns when to run next (monotonic ms) */
    void *ud;
    int64_t next_ms;
    bool done;
};

/* Starts g's thread, which first calls tick at first_ms (monotonic). 0, or DST_ENOMEM. */
int iperf_guard_start(struct iperf_guard *g, int64_t first_ms, int64_t (*tick)(void *), void *ud);

/* Has the guard tick now; with stop, then ends it and waits for its thread. */
void iperf_guard_kick(struct iperf_guard *g, bool stop);

/* ---- sockets of this process, found by their addresses ---- */

struct iperf_endpoint {
    int family; /* AF_INET or AF_INET6; 0 none */
    unsigned char addr[16];
    int port;
};

/* sa's address and port in *e; false (and e zeroed) when sa is neither IPv4 nor IPv6. */
bool iperf_endpoint_of(const struct sockaddr *sa, struct iperf_endpoint *e);

bool iperf_endpoint_eq(const struct iperf_endpoint *a, const struct iperf_endpoint *b);

/* One end of a TCP socket: local (getsockname) or remote (getpeername). */
bool iperf_socket_end(int fd, bool peer, struct iperf_endpoint *e);

/*
 * Calls fn for every stream socket this process has open. libiperf keeps its sockets to
 * itself, so a deadline or a stop finds them by address and shuts them down: the thread
 * inside libiperf then sees its peer gone and returns.
 */
void iperf_each_stream_socket(void (*fn)(int fd, void *ud), void *ud);

/* ---- tests and their outcome ---- */

/* A test in role 'c' or 's' whose JSON goes to the result, not stdout; NULL without memory. */
struct iperf_test *iperf_test_new(char role);

/* Frees a test and what iperf_free_test leaves behind (the JSON tree, the log file); NULL ok. */
void iperf_test_free(struct iperf_test *t);

/* Writes "kind: msg" without the ": " libiperf leaves when errno has nothing to add. */
int iperf_fail(int code, const char *kind, const char *msg, char *err, size_t errlen);

/*
 * The outcome of a run from libiperf's return code, i_errno, errno and JSON. With JSON output
 * on, iperf_run_client returns 0 even when the server refused or was busy: i_errno and the
 * JSON's "error" tell. 0 with *r filled (from the server's side with server), or a DST_E*
 * code with the reason in err (see dst_iperf_run).
 */
int iperf_outcome(struct iperf_test *t, int rc, int ie, int en, bool server,
                  struct dst_iperf_report *r, char *err, size_t errlen);

/*
 * host:port's addresses; DST_ENOTFOUND with "DNS: ..." in err when it has none (DST_EIO when
 * the lookup itself failed).
 */
int iperf_resolve(const char *host, int port, int flags, struct addrinfo **res, char *err,
                  size_t errlen);

#endif
