/* test_iperf.c - unit tests of the libiperf wrapper (src/core/iperf.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/iperf.h"
#include "sys_test.h"

/*
 * Each side against the real iperf3 binary (Debian's 3.12, as the library): the wrapper's
 * server against `iperf3 -c`, its client against `iperf3 -s`; and the two against each other
 * in this process (the server's libiperf runs in a child process, so they do not share
 * libiperf's state). Tests are 1-3 s long and stay on 127.0.0.1.
 */

extern char **environ;

/* A label over 63 characters: no resolver takes it, so it fails without a DNS packet. */
#define BAD_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.invalid"

/*
 * libiperf 3.12 itself leaks a few bytes per client test with more than one stream:
 * iperf_create_streams strdups the congestion algorithm's name for every stream into one
 * pointer (tests/integration/lsan-libiperf.supp says the same for the dstmc binary).
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:iperf_create_streams\n";
}

/* ---- the iperf3 binary ---- */

/* Starts argv with stdout to out_fd (-1: /dev/null) and stderr to /dev/null. */
static pid_t spawn(char *const argv[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;

    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* libiperf's sockets are inheritable */
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Runs `iperf3 -c 127.0.0.1 -p port -J ARGS...` and returns its JSON (caller decrefs). */
static json_t *iperf3_client(int port, const char *a1, const char *a2, const char *a3)
{
    char p[16], *out = calloc(1, 1 << 20);
    int fds[2];
    size_t n = 0;
    ssize_t k;

    snprintf(p, sizeof(p), "%d", port);
    char *argv[] = {"iperf3", "-c",       "127.0.0.1", "-p",       p,
                    "-J",     (char *)a1, (char *)a2,  (char *)a3, NULL};
    assert_int_equal(pipe(fds), 0);
    pid_t pid = spawn(argv, fds[1]);
    close(fds[1]);
    assert_true(pid > 0);
    while ((k = read(fds[0], out + n, (1 << 20) - 1 - n)) > 0)
        n += (size_t)k;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(j);
    return j;
}

static int64_t end_bytes(const json_t *j, const char *sum)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(j, "end"), sum), "bytes"));
}

static const char *json_error(const json_t *j)
{
    return json_string_value(json_object_get(j, "error"));
}

/* TCP sockets on 127.0.0.1:port in a state ("0A" listen, "01" established), from /proc. */
static int sockets_on(int port, const char *state)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512], local[64], st[8];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned lport = 0;
        if (sscanf(line, " %*d: %63s %*s %7s", local, st) == 2 &&
            sscanf(strchr(local, ':') + 1, "%x", &lport) == 1 && (int)lport == port &&
            strcmp(st, state) == 0)
            n++;
    }
    fclose(f);
    return n;
}

static void wait_sockets(int port, const char *state, int want)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
    while (sockets_on(port, state) < want) {
        assert_true(dst_monotonic_ms() < end);
        usleep(10000);
    }
}

/* A port nobody listens on (bound for a moment, then let go). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A listener on 127.0.0.1:0 that never accepts (backlog) or accepts and never speaks. */
static int listener(int backlog, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A connection to 127.0.0.1:port; without wait, the connect may still be under way. */
static int connect_to(int port, bool wait)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | (wait ? 0 : SOCK_NONBLOCK), 0);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (wait)
        assert_int_equal(rc, 0);
    return fd;
}

/* ---- the wrapper's server, against `iperf3 -c` ---- */

struct record {
    pthread_mutex_t mu;
    int begins, ends, fails;
    struct dst_iperf_report last;
    char error[256];
};

static void on_begin(void *ud)
{
    struct record *r = ud;
    pthread_mutex_lock(&r->mu);
    r->begins++;
    pthread_mutex_unlock(&r->mu);
}

static void on_end(void *ud, const struct dst_iperf_report *rep, const char *error)
{
    struct record *r = ud;
    pthread_mutex_lock(&r->mu);
    r->ends++;
    if (rep)
        r->last = *rep;
    else
        r->fails++, snprintf(r->error, sizeof(r->error), "%s", error);
    pthread_mutex_unlock(&r->mu);
}

/* Waits until the record counts want (begins or ends); returns the count. */
static int wait_count(struct record *r, const int *field, int want)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int n = *field;
        pthread_mutex_unlock(&r->mu);
        if (n >= want || dst_monotonic_ms() > end)
            return n;
        usleep(10000);
    }
}

/* A server on 127.0.0.1:0 (stall_s 1) for one test, and what it reported. */
struct fixture {
    struct record r;
    struct dst_iperf_server *s;
    int port;
};

static int server_up(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct dst_iperf_server_opts o = {
        .host = "127.0.0.1", .stall_s = 1, .on_begin = on_begin, .on_end = on_end, .ud = &f->r};

    pthread_mutex_init(&f->r.mu, NULL);
    *state = f;
    assert_int_equal(dst_iperf_server_new(&o, &f->s), 0);
    f->port = dst_iperf_server_port(f->s);
    assert_true(f->port > 0);
    assert_int_equal(sockets_on(f->port, "0A"), 1); /* listening on return */
    return 0;
}

static int server_down(void **state)
{
    struct fixture *f = *state;
    dst_iperf_server_free(f->s);
    pthread_mutex_destroy(&f->r.mu);
    free(f);
    return 0;
}

static void server_serves_both_directions(void **state)
{
    struct fixture *f = *state;
    struct record *r = &f->r;

    json_t *j = iperf3_client(f->port, "-t", "1", NULL);
    assert_null(json_error(j));
    assert_int_equal(wait_count(r, &r->ends, 1), 1);
    assert_int_equal(r->begins, 1);
    assert_false(r->last.reverse);
    assert_int_equal(r->last.streams, 1);
    assert_true(r->last.received.bytes > 0); /* what the client counts as received is ours */
    assert_int_equal(r->last.received.bytes, end_bytes(j, "sum_received"));
    assert_int_equal(r->last.sent.bytes, 0);
    json_decref(j);

    wait_sockets(f->port, "0A", 1); /* the next run's listener (see send_garbage) */
    j = iperf3_client(f->port, "-t", "1", "-R");
    assert_null(json_error(j));
    assert_int_equal(wait_count(r, &r->ends, 2), 2);
    assert_true(r->last.reverse);
    assert_int_equal(r->last.sent.bytes, end_bytes(j, "sum_sent"));
    assert_true(r->last.sent.bps > 0);
    assert_int_equal(r->fails, 0);
    json_decref(j);
}

static void server_says_busy_and_stops_mid_test(void **state)
{
    struct fixture *f = *state;
    struct record *r = &f->r;
    char p[16];

    snprintf(p, sizeof(p), "%d", f->port);
    char *argv[] = {"iperf3", "-c", "127.0.0.1", "-p", p, "-t", "60", NULL};
    pid_t first = spawn(argv, -1);
    assert_true(first > 0);
    assert_int_equal(wait_count(r, &r->begins, 1), 1); /* its test runs (for a minute) */
    json_t *j = iperf3_client(f->port, "-t", "1", NULL);
    assert_non_null(strstr(json_error(j), "busy"));
    json_decref(j);

    int64_t t0 = dst_monotonic_ms();
    dst_iperf_server_free(f->s); /* cuts the running test short */
    f->s = NULL;
    assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS); /* not the minute the test had left */
    assert_int_equal(r->ends, 1);
    assert_string_equal(r->error, "stopped");
    waitpid(first, NULL, 0);
}

/*
 * Sends bytes and closes; waits for the server to end that run. libiperf listens anew for each
 * run, and a run has ended (on_end) once its listener is closed: the next connection waits for
 * the next listener, or it could be refused, or queued on the closing one and reset.
 */
static void send_garbage(int port, const char *bytes, size_t n, struct record *r, int ends)
{
    wait_sockets(port, "0A", 1);
    int fd = connect_to(port, true);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    close(fd);
    assert_int_equal(wait_count(r, &r->ends, ends), ends);
}

static void server_survives_bad_input_and_stalls(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char params[] = "0123456789012345678901234567890123456\0\0\0\5{bad}";
    struct fixture *f = *state;
    struct record *r = &f->r;
    char buf[16];

    send_garbage(f->port, http, sizeof(http) - 1, r, 1);
    send_garbage(f->port, params, sizeof(params) - 1, r, 2); /* a cookie, then bad JSON */
    assert_int_equal(r->fails, 2);

    wait_sockets(f->port, "0A", 1);  /* the next run's listener (see send_garbage) */
    int64_t t0 = dst_monotonic_ms(); /* a silent client is cut after stall_s */
    int fd = connect_to(f->port, true);
    assert_true(read(fd, buf, sizeof(buf)) <= 0); /* blocks until the server cuts it */
    assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS);
    close(fd);
    assert_int_equal(wait_count(r, &r->ends, 3), 3);
    assert_string_equal(r->error, "stalled: no data from the client for 1 s");

    wait_sockets(f->port, "0A", 1); /* between two runs libiperf reopens its listener */
    json_t *j = iperf3_client(f->port, "-t", "1", NULL);
    assert_null(json_error(j));
    assert_int_equal(wait_count(r, &r->ends, 4), 4);
    assert_int_equal(r->fails, 3);
    json_decref(j);
}

static void server_start_failures(void **state)
{
    struct dst_iperf_server_opts o = {.host = "127.0.0.1"};
    struct dst_iperf_server *s = NULL;
    int port = 0, fd = listener(4, &port);
    (void)state;

    o.port = port;
    assert_int_equal(dst_iperf_server_new(&o, &s), DST_ECONFLICT);
    o.port = 70000;
    assert_int_equal(dst_iperf_server_new(&o, &s), DST_EINVAL);
    o.port = 0;
    o.host = BAD_NAME;
    assert_int_equal(dst_iperf_server_new(&o, &s), DST_EINVAL);
    o.host = NULL;
    assert_int_equal(dst_iperf_server_new(&o, &s), DST_EINVAL);
    assert_null(s);
    dst_iperf_server_free(NULL);
    close(fd);
}

/*
 * A run against a server that may be between two tests: iperf3 (the binary and libiperf alike)
 * closes its listener after a test and opens a new one, so a client that comes in between is
 * refused, one queued on the closing listener is reset ("reset by peer", from whichever step of
 * the handshake meets it first: DST_EIO), and one that comes just before is told the server is
 * busy (busy_too: try that again as well). The engine tries a refusal and an early reset again;
 * so does this.
 */
static int run_next(const struct dst_iperf_opts *o, struct dst_iperf_report *r, char *err,
                    bool busy_too)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
    int rc = DST_EDEP;
    for (int i = 0; i < 1000 && dst_monotonic_ms() < end; i++) {
        if (i)
            usleep(100 * 1000);
        rc = dst_iperf_run(o, r, err, 256);
        bool reset = rc == DST_EIO && strstr(err, "reset by peer");
        if (rc != DST_EDEP && !reset && !(busy_too && rc == DST_EBUSY))
            break;
    }
    return rc;
}

static void client_and_server_in_one_process(void **state)
{
    struct fixture *f = *state;
    struct record *r = &f->r;
    struct dst_iperf_opts o = {.host = "127.0.0.1", .port = f->port, .duration_s = 1};
    struct dst_iperf_report rep;
    char err[256] = "";

    assert_int_equal(dst_iperf_run(&o, &rep, err, sizeof(err)), 0);
    assert_int_equal(wait_count(r, &r->ends, 1), 1);
    assert_false(r->last.reverse);
    assert_int_equal(rep.received.bytes, r->last.received.bytes);

    o.reverse = true;
    o.streams = 3;
    assert_int_equal(run_next(&o, &rep, err, true), 0);
    assert_int_equal(wait_count(r, &r->ends, 2), 2);
    assert_true(r->last.reverse && rep.reverse);
    assert_int_equal(r->last.streams, 3);
    assert_true(rep.received.bytes > 0 && rep.received.bytes <= r->last.sent.bytes);
    assert_int_equal(r->fails, 0);
}

/* ---- the wrapper's client, against `iperf3 -s` ---- */

static int binary_port;
static pid_t binary_pid = -1;

/* `iperf3 -s` on a free port; on another one when a test beside this one took it first. */
static int start_binary(void **state)
{
    char p[16];
    (void)state;

    for (int i = 0; i < 5; i++) {
        binary_port = free_port();
        snprintf(p, sizeof(p), "%d", binary_port);
        char *argv[] = {"iperf3", "-s", "-B", "127.0.0.1", "-p", p, NULL};
        binary_pid = spawn(argv, -1);
        if (binary_pid < 0)
            return -1;
        int64_t end = dst_monotonic_ms() + ST_WAIT_MS;
        while (!st_pid_listens(binary_pid, binary_port) && dst_monotonic_ms() < end &&
               waitpid(binary_pid, NULL, WNOHANG) == 0)
            usleep(10000);
        if (st_pid_listens(binary_pid, binary_port))
            return 0;
        kill(binary_pid, SIGTERM);
        waitpid(binary_pid, NULL, 0);
        binary_pid = -1;
    }
    return -1;
}

static int stop_binary(void **state)
{
    (void)state;
    if (binary_pid > 0) {
        kill(binary_pid, SIGTERM);
        waitpid(binary_pid, NULL, 0);
    }
    return 0;
}

/* Runs the wrapper's client with stdout caught: libiperf must print nothing there. */
static int run_quietly(const struct dst_iperf_opts *o, struct dst_iperf_report *r, char *err,
                       bool busy_too)
{
    int fds[2], saved = dup(STDOUT_FILENO);
    char buf[256];

    fflush(stdout);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDOUT_FILENO);
    int rc = run_next(o, r, err, busy_too);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[1]);
    assert_int_equal(read(fds[0], buf, sizeof(buf)), 0);
    close(fds[0]);
    if (rc)
        print_error("dst_iperf_run: %s\n", err); /* why, when the caller's assert fails */
    return rc;
}

static void client_measures_both_directions(void **state)
{
    struct dst_iperf_opts o = {.host = "127.0.0.1", .port = binary_port, .duration_s = 1};
    struct dst_iperf_report r;
    char err[256] = "";
    (void)state;

    assert_int_equal(run_quietly(&o, &r, err, true), 0);
    assert_false(r.reverse);
    assert_int_equal(r.streams, 1);
    assert_true(r.received.bytes > 0 && r.received.bytes <= r.sent.bytes);
    assert_true(r.received.bps > 0 && r.received.seconds > 0.9);
    assert_true(r.retransmits >= 0);
    assert_true(r.mean_rtt_ms > 0); /* the client sent: its kernel measured the RTT */
    assert_true(r.cpu_local_pct > 0 && r.cpu_remote_pct > 0);

    o.reverse = true;
    o.streams = 2;
    o.omit_s = 1;
    assert_int_equal(run_quietly(&o, &r, err, true), 0);
    assert_true(r.reverse);
    assert_int_equal(r.streams, 2);
    assert_true(r.received.bytes > 0 && r.received.bps > 0);
    assert_true(isnan(r.mean_rtt_ms)); /* the server sent; iperf3 does not pass its RTT on */
}

/*
 * Starts argv, a minute-long iperf3 client of the server on port, and waits until its test runs
 * (the server's ends of control and stream established). Between two tests the server refuses
 * a client or tells it busy, and that client exits: then it is started again.
 */
static pid_t long_client(char *const argv[], int port)
{
    int64_t end = dst_monotonic_ms() + ST_WAIT_MS;

    for (;;) {
        pid_t pid = spawn(argv, -1);
        assert_true(pid > 0);
        while (sockets_on(port, "01") < 2 && waitpid(pid, NULL, WNOHANG) == 0) {
            assert_true(dst_monotonic_ms() < end);
            usleep(10000);
        }
        if (sockets_on(port, "01") >= 2)
            return pid;
        assert_true(dst_monotonic_ms() < end); /* it exited: refused, or told busy */
        usleep(100 * 1000);
    }
}

static void client_busy(void **state)
{
    struct dst_iperf_opts o = {.host = "127.0.0.1", .port = binary_port, .duration_s = 1};
    struct dst_iperf_report r;
    char err[256] = "", p[16];
    (void)state;

    snprintf(p, sizeof(p), "%d", binary_port);
    char *argv[] = {"iperf3", "-c", "127.0.0.1", "-p", p, "-t", "60", NULL};
    pid_t other = long_client(argv, binary_port); /* still running when ours comes */
    assert_int_equal(run_quietly(&o, &r, err, false), DST_EBUSY);
    assert_string_equal(err, "busy: the server is busy running a test. try again later");
    kill(other, SIGINT); /* iperf3 -c ends its test and tells the server */
    waitpid(other, NULL, 0);
}

static void client_failures(void **state)
{
    int held = -1;
    struct dst_iperf_opts o = {
        .host = "127.0.0.1", .port = st_refusing_port(&held), .duration_s = 1};
    struct dst_iperf_report r;
    char err[256] = "";
    (void)state;

    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_EDEP);
    assert_string_equal(err, "refused: unable to connect to server: Connection refused");
    close(held);

    o.host = BAD_NAME;
    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_ENOTFOUND);
    assert_true(strncmp(err, "DNS: " BAD_NAME ": ", strlen(BAD_NAME) + 7) == 0);
    assert_true(strlen(err) > strlen(BAD_NAME) + 7);

    o.host = NULL;
    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_EINVAL);
    o.host = "127.0.0.1";
    o.streams = -1;
    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_EINVAL);
}

static void client_timeouts(void **state)
{
    struct dst_iperf_opts o = {.host = "127.0.0.1", .duration_s = 1, .connect_timeout_ms = 300};
    struct dst_iperf_report r;
    char err[256] = "";
    int fds[2];
    (void)state;

    /* a full backlog drops the SYN: the connection times out */
    int full = listener(0, &o.port);
    fds[0] = connect_to(o.port, true); /* a backlog of 0 holds one */
    fds[1] = connect_to(o.port, false);
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_ETIMEDOUT);
    assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS); /* the kernel would retry for minutes */
    assert_string_equal(err, "timeout: unable to connect to server: Connection timed out");
    close(fds[0]);
    close(fds[1]);
    close(full);

    /* a peer that accepts and never speaks: cut at the deadline */
    int mute = listener(4, &o.port);
    o.timeout_ms = 500;
    t0 = dst_monotonic_ms();
    assert_int_equal(dst_iperf_run(&o, &r, err, sizeof(err)), DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 500 && took < ST_WAIT_MS); /* only the deadline ends it */
    assert_string_equal(err, "timeout: no result within the test's deadline");
    close(mute);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], DST_IPERF_CHILD_ARG) == 0)
        return dst_iperf_server_child(argc, argv); /* the servers these tests start */
    signal(SIGPIPE, SIG_IGN);                      /* as dst_sig_init does in dstmc */
    const struct CMUnitTest server[] = {
        cmocka_unit_test_setup_teardown(server_serves_both_directions, server_up, server_down),
        cmocka_unit_test_setup_teardown(server_says_busy_and_stops_mid_test, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(server_survives_bad_input_and_stalls, server_up,
                                        server_down),
        cmocka_unit_test(server_start_failures),
        cmocka_unit_test_setup_teardown(client_and_server_in_one_process, server_up, server_down),
    };
    const struct CMUnitTest client[] = {
        cmocka_unit_test(client_measures_both_directions),
        cmocka_unit_test(client_busy),
        cmocka_unit_test(client_failures),
        cmocka_unit_test(client_timeouts),
    };
    int rc = cmocka_run_group_tests_name("server", server, NULL, NULL);
    return rc | cmocka_run_group_tests_name("client", client, start_binary, stop_binary);
}
