/* test_transfer.c - unit tests of the speed-test transfers (src/core/transfer.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>

#include "core/err.h"
#include "core/transfer.h"
#include "http_test.h"

/*
 * The project's own HTTP server on 127.0.0.1:0:
 *   GET  /data/{n}  n bytes (Content-Length)        GET /endless   a chunked body without end
 *   GET  /phased    PHASED_1 bytes, PHASED_2 more     GET /stall     headers, then nothing
 *                   PHASED_AT ms later, then nothing
 *   GET  /latency   "test=test\n"                    POST /upload   body discarded, "size=N"
 *   POST /head      the body's first 16 bytes         (bodies over 1 MiB get 413)
 * and a raw socket server that answers every request with the canned reply raw_reply.
 */
#define BLOB_LEN  (4u << 20)
#define MAX_BODY  (1u << 20)
#define PHASED_1  200000 /* /phased: at once */
#define PHASED_2  100000 /* /phased: PHASED_AT ms after the first byte */
#define PHASED_AT 2000
#define WORK_MS   (2 * ST_WAIT_MS) /* a phase that ends with its work, long before this */

static char blob[BLOB_LEN];
static struct dst_http_server *srv;
static atomic_uint_fast64_t uploaded; /* body bytes the server read on /upload */
static atomic_int upload_requests;

static void h_data(struct dst_http_req *req, void *ud)
{
    long n = strtol(dst_http_req_param(req, "n"), NULL, 10);

    (void)ud;
    if (n < 0 || n > (long)BLOB_LEN)
        n = 0;
    dst_http_reply_static(req, 200, "application/octet-stream", blob, (size_t)n);
}

static long endless_read(void *ud, char *buf, size_t max)
{
    (void)ud;
    memset(buf, 'e', max);
    return (long)max;
}

struct phased {
    int64_t t0;
    size_t sent;
};

static long phased_read(void *ud, char *buf, size_t max)
{
    struct phased *p = ud;

    if (!p->t0)
        p->t0 = dst_monotonic_ms();
    if (p->sent == PHASED_1) { /* on the server's thread: the simplest way to pace a reply */
        int64_t left = p->t0 + PHASED_AT - dst_monotonic_ms();
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        if (left > 0)
            nanosleep(&ts, NULL);
    }
    if (p->sent >= PHASED_1 + PHASED_2)
        return 0; /* quiet from now on: sleeps until woken (never) */
    size_t end = p->sent < PHASED_1 ? PHASED_1 : PHASED_1 + PHASED_2;
    size_t n = end - p->sent < max ? end - p->sent : max;
    memset(buf, 'p', n);
    p->sent += n;
    return (long)n;
}

static void h_phased(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_stream(req, 200, "application/octet-stream", phased_read, free,
                          dst_xnew(struct phased), NULL);
}

static long stall_read(void *ud, char *buf, size_t max)
{
    (void)ud;
    (void)buf;
    (void)max;
    return 0; /* sleeps until woken: never */
}

static void no_done(void *ud)
{
    (void)ud;
}

static void h_stream(struct dst_http_req *req, void *ud)
{
    dst_http_reply_stream(req, 200, "application/octet-stream", (dst_http_stream_read_fn)ud,
                          no_done, NULL, NULL);
}

static void h_latency(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain", "test=test\n", 10);
}

static void h_upload(struct dst_http_req *req, void *ud)
{
    char reply[64];
    uint64_t n = dst_http_req_body_bytes(req);

    (void)ud;
    atomic_fetch_add(&uploaded, n);
    atomic_fetch_add(&upload_requests, 1);
    int len = snprintf(reply, sizeof(reply), "size=%llu", (unsigned long long)n);
    dst_http_reply(req, 200, "text/plain", reply, (size_t)len);
}

static void h_head(struct dst_http_req *req, void *ud)
{
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);

    (void)ud;
    dst_http_reply(req, 200, "text/plain", body, len < 16 ? len : 16);
}

static int server_setup(void **state)
{
    struct dst_http_server_opts o = {.threads = 4, .max_body = MAX_BODY};
    (void)state;
    srv = ht_server(&o);
    assert_non_null(srv);
    dst_http_server_route(srv, "GET", "/data/{n}", h_data, NULL, 0, 0);
    dst_http_server_route(srv, "GET", "/endless", h_stream, (void *)endless_read, 0, 0);
    dst_http_server_route(srv, "GET", "/phased", h_phased, NULL, 0, 0);
    dst_http_server_route(srv, "GET", "/stall", h_stream, (void *)stall_read, 0, 0);
    dst_http_server_route(srv, "GET", "/latency", h_latency, NULL, 0, 0);
    dst_http_server_route(srv, "POST", "/upload", h_upload, NULL, DST_HTTP_BODY_DISCARD, MAX_BODY);
    dst_http_server_route(srv, "POST", "/head", h_head, NULL, 0, MAX_BODY);
    assert_int_equal(dst_http_server_start(srv), 0);
    return 0;
}

static int server_teardown(void **state)
{
    (void)state;
    dst_http_server_free(srv);
    return 0;
}

static char *url(const char *path)
{
    static char bufs[8][256];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s%s", dst_http_server_url(srv), path);
    return b;
}

/* ---- a raw server with one canned reply, for what the real server never does ---- */

struct raw {
    int fd, port;
    const char *reply;
    pthread_t thread;
    atomic_bool stop;
};

static void *raw_main(void *arg)
{
    struct raw *r = arg;
    char buf[4096];

    while (!atomic_load(&r->stop)) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        size_t n = 0;
        while (n < sizeof(buf) - 1 && !memmem(buf, n, "\r\n\r\n", 4)) {
            ssize_t got = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
            if (got <= 0)
                break;
            n += (size_t)got;
        }
        ht_send_all(c, r->reply, strlen(r->reply));
        close(c);
    }
    return NULL;
}

static void raw_start(struct raw *r, const char *reply)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(r->fd, 16), 0);
    getsockname(r->fd, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    r->reply = reply;
    atomic_store(&r->stop, false);
    pthread_create(&r->thread, NULL, raw_main, r);
}

static void raw_stop(struct raw *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

/*
 * ---- a server that takes an upload's body slowly (read_body), or not at all ----
 * One connection: the headers, then at most SLOW_CHUNK bytes every SLOW_TICK ms (pacing, not
 * synchronisation), then "size=N". Its socket has a small window and MSS, as a slow link's
 * would, so each read lets a little more of the body in and the client sees it acknowledged.
 */
#define SLOW_BODY  (512u * 1024) /* twice what curl takes from the read callback at a time */
#define SLOW_CHUNK 4096
#define SLOW_TICK  20   /* ms: at most 200 KB/s, so the body takes 2.6 s or more */
#define SLOW_STALL 1000 /* ms: the stall limit; curl's read callback is silent for longer */

struct slow {
    int fd, port;
    bool read_body;
    atomic_bool stop;
    pthread_t thread;
    uint64_t body; /* body bytes read */
};

static int slow_accept(struct slow *s)
{
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    char hdr[4096];
    size_t n = 0;
    int c = poll(&p, 1, WORK_MS) == 1 ? accept(s->fd, NULL, NULL) : -1;

    while (c >= 0 && n < sizeof(hdr) && (n < 4 || memcmp(hdr + n - 4, "\r\n\r\n", 4) != 0)) {
        if (recv(c, hdr + n, 1, 0) != 1) /* byte by byte: the body is not taken with them */
            break;
        n++;
    }
    return c;
}

static void *slow_main(void *arg)
{
    struct slow *s = arg;
    char buf[SLOW_CHUNK], reply[128];
    struct timespec tick = {0, SLOW_TICK * 1000000L};
    int64_t end = dst_monotonic_ms() + WORK_MS;
    int c = slow_accept(s);

    while (c >= 0 && s->body < SLOW_BODY && !atomic_load(&s->stop) && dst_monotonic_ms() < end) {
        nanosleep(&tick, NULL);
        ssize_t got = s->read_body ? recv(c, buf, sizeof(buf), MSG_DONTWAIT) : -1;
        if (got == 0)
            break;
        s->body += got > 0 ? (uint64_t)got : 0;
    }
    int len = snprintf(reply, sizeof(reply), "size=%llu", (unsigned long long)s->body);
    int hl =
        snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len, reply);
    if (c >= 0 && s->body == SLOW_BODY)
        ht_send_all(c, buf, (size_t)hl);
    if (c >= 0)
        close(c);
    return NULL;
}

static void slow_start(struct slow *s, bool read_body)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int mss = 1400, rcvbuf = 64 * 1024;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    s->read_body = read_body;
    s->body = 0;
    atomic_store(&s->stop, false);
    pthread_create(&s->thread, NULL, slow_main, s);
}

static void slow_stop(struct slow *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- downloads ---- */

static void download_counts_exact_bytes(void **state)
{
    const char *urls[] = {url("/data/1000"), url("/data/250000"), url("/data/1048576"),
                          url("/data/4194304"), url("/data/1")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 5,
                                  .buster = "x",
                                  .streams = 2,
                                  .duration_ms = WORK_MS};
    struct dst_transfer_stats st;

    (void)state;
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    assert_int_equal(st.bytes, 1000 + 250000 + 1048576 + 4194304 + 1);
    assert_int_equal(st.bytes_total, st.bytes);
    assert_int_equal(st.requests, 5);
    assert_int_equal(st.completed, 5);
    assert_int_equal(st.failed + st.aborted, 0);
    assert_true(st.seconds > 0 && st.seconds < WORK_MS / 2000.0); /* ended by its work */
    assert_true(st.bps > 0);
    assert_string_equal(st.error, "");
}

struct ticks {
    int n;
    double last;
};

static void on_progress(void *ud, double bps)
{
    struct ticks *t = ud;
    t->n++;
    t->last = bps;
}

static void download_stops_at_the_duration(void **state)
{
    const char *urls[] = {url("/endless")};
    struct ticks t = {0};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .repeat = true,
                                  .streams = 4,
                                  .duration_ms = 1500,
                                  .grace_ms = 300,
                                  .progress = on_progress,
                                  .progress_ud = &t};
    struct dst_transfer_stats st;

    (void)state;
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 1500 && took < 1500 + ST_WAIT_MS); /* only the duration ends it */
    assert_int_equal(st.aborted, 4);                       /* endless bodies: cut off, not failed */
    assert_int_equal(st.failed, 0);
    assert_true(st.bytes > 0 && st.bytes < st.bytes_total);
    /* the counted window: within the run, after the grace (1.2 s when nothing is late) */
    assert_true(st.seconds > 0.6 && st.seconds <= (double)(took - 300) / 1000);
    assert_true(t.n >= 2 && t.last > 0); /* ~5 a second */
}

static void grace_bytes_are_not_counted(void **state)
{
    /* PHASED_1 bytes come at once, in the grace (1 s); PHASED_2 a second after it ends, in the
       counted window (2 s): a second of margin each side for a busy machine */
    const char *urls[] = {url("/phased")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .streams = 1,
                                  .duration_ms = 3000,
                                  .grace_ms = 1000};
    struct dst_transfer_stats st;

    (void)state;
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    int64_t took = dst_monotonic_ms() - t0;
    assert_int_equal(st.bytes, PHASED_2);
    assert_int_equal(st.bytes_total, PHASED_1 + PHASED_2);
    assert_int_equal(st.aborted, 1); /* quiet, never ended: cut at the duration */
    assert_true(st.seconds >= 1.0 && st.seconds <= (double)(took - 1000) / 1000);
    assert_true(fabs(st.bps - (double)st.bytes * 8 / st.seconds) < 1);
}

static void drain_lets_requests_finish(void **state)
{
    const char *urls[] = {url("/data/4194304")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .repeat = true,
                                  .streams = 3,
                                  .duration_ms = 300,
                                  .drain_ms = ST_WAIT_MS};
    struct dst_transfer_stats st;

    (void)state;
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    assert_int_equal(st.aborted, 0);
    assert_int_equal(st.completed, st.requests);
    assert_int_equal(st.bytes_total, (uint64_t)st.requests * 4194304); /* what the server sent */
    assert_true(st.bytes <= st.bytes_total);
}

static void budget_ends_the_phase(void **state)
{
    const char *urls[] = {url("/data/1048576")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .repeat = true,
                                  .streams = 1,
                                  .duration_ms = WORK_MS,
                                  .max_bytes = 3u << 20};
    struct dst_transfer_stats st;

    (void)state;
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    assert_true(dst_monotonic_ms() - t0 < WORK_MS / 2); /* the budget ended it, not the time */
    assert_true(st.bytes_total >= 3u << 20 && st.bytes_total <= 4u << 20);
}

/* ---- uploads ---- */

static int check_size(void *ud, uint64_t sent, const char *reply, char *err, size_t errlen)
{
    char want[64];

    (*(int *)ud)++;
    snprintf(want, sizeof(want), "size=%llu", (unsigned long long)sent);
    if (strcmp(reply, want) == 0)
        return 0;
    snprintf(err, errlen, "short body: server got '%s' of %llu bytes", reply,
             (unsigned long long)sent);
    return -1;
}

static void upload_counts_bodies_answered_2xx(void **state)
{
    const char *urls[] = {url("/upload")};
    const uint64_t sizes[] = {1000, 300000, 1048576, 9};
    int checked = 0;
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 4,
                                  .prefix = "content1=",
                                  .buster = "x",
                                  .streams = 3,
                                  .duration_ms = WORK_MS,
                                  .check_reply = check_size,
                                  .reply_ud = &checked};
    struct dst_transfer_stats st;

    (void)state;
    atomic_store(&uploaded, 0);
    atomic_store(&upload_requests, 0);
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    assert_int_equal(st.bytes, 1000 + 300000 + 1048576 + 9);
    assert_int_equal(st.bytes_total, st.bytes);
    assert_int_equal(atomic_load(&uploaded), st.bytes); /* what the server read */
    assert_int_equal(atomic_load(&upload_requests), 4);
    assert_int_equal(st.completed, 4);
    assert_int_equal(checked, 4);
}

static int check_head(void *ud, uint64_t sent, const char *reply, char *err, size_t errlen)
{
    (void)ud;
    (void)sent;
    (void)err;
    (void)errlen;
    assert_int_equal(strlen(reply), 16);
    assert_memory_equal(reply, "content1=", 9);
    for (int i = 9; i < 16; i++)
        assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", reply[i]));
    return 0;
}

static void upload_body_is_prefix_and_pattern(void **state)
{
    const char *urls[] = {url("/head")};
    const uint64_t sizes[] = {100000};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .prefix = "content1=",
                                  .streams = 1,
                                  .duration_ms = WORK_MS,
                                  .check_reply = check_head};
    struct dst_transfer_stats st;

    (void)state;
    assert_int_equal(dst_transfer_run(&o, &st), 0);
    assert_int_equal(st.completed, 1);
}

static void upload_rejected_413_counts_nothing(void **state)
{
    const char *urls[] = {url("/upload")};
    const uint64_t sizes[] = {2u << 20}; /* over the server's 1 MiB cap */
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .repeat = true,
                                  .streams = 2,
                                  .duration_ms = WORK_MS};
    struct dst_transfer_stats st;
    char want[300];

    (void)state;
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    assert_true(dst_monotonic_ms() - t0 < WORK_MS / 2); /* the first failure ends the phase */
    assert_int_equal(st.status, 413);
    snprintf(want, sizeof(want), "HTTP 413 from %s", urls[0]);
    assert_string_equal(st.error, want);
    assert_int_equal(st.completed, 0);
    assert_true(st.failed >= 1);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.bps, 0);
}

static void upload_reply_check_fails_the_phase(void **state)
{
    const char *urls[] = {url("/head")}; /* answers the body's head, not size=N */
    const uint64_t sizes[] = {5000};
    int checked = 0;
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .streams = 1,
                                  .duration_ms = WORK_MS,
                                  .check_reply = check_size,
                                  .reply_ud = &checked};
    struct dst_transfer_stats st;

    (void)state;
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    assert_non_null(strstr(st.error, "short body: server got"));
    assert_int_equal(st.bytes, 0);
}

/* ---- failures ---- */

static void refused_is_classified(void **state)
{
    char u[64], want[64];
    int held = -1, port = st_refusing_port(&held);
    const char *urls[] = {u};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .repeat = true,
                                  .streams = 4,
                                  .duration_ms = 3000};
    struct dst_transfer_stats st;

    (void)state;
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", port);
    snprintf(want, sizeof(want), "refused: 127.0.0.1:%d", port);
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    close(held);
    assert_string_equal(st.error, want);
    assert_int_equal(st.status, 0);
}

static void dns_failure_is_classified(void **state)
{
    const char *urls[] = {"http://no-such-host.invalid/x"};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .streams = 1,
                                  .duration_ms = 3000,
                                  .connect_timeout_ms = 2000};
    struct dst_transfer_stats st;

    (void)state;
    assert_int_not_equal(dst_transfer_run(&o, &st), 0);
    assert_string_equal(st.error, "DNS: cannot resolve 'no-such-host.invalid'");
}

static void stall_is_a_timeout(void **state)
{
    const char *urls[] = {url("/stall")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .streams = 2,
                                  .repeat = true,
                                  .duration_ms = WORK_MS,
                                  .stall_ms = 300};
    struct dst_transfer_stats st;
    char want[300];

    (void)state;
    int64_t t0 = dst_monotonic_ms();
    assert_int_equal(dst_transfer_run(&o, &st), DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 300 && took < WORK_MS / 2); /* the stall ended it, not the time */
    snprintf(want, sizeof(want), "timeout: no data for 0.3 s from %s", urls[0]);
    assert_string_equal(st.error, want);
}

/*
 * A slow link: curl takes the body 256 KiB at a time and the socket holds more, so its read
 * callback is silent for far longer than the stall limit while the bytes drain. They are
 * acknowledged all the time: that is progress, not a stall.
 */
static void slow_upload_is_not_a_stall(void **state)
{
    struct slow s;
    char u[64];
    const char *urls[] = {u};
    const uint64_t sizes[] = {SLOW_BODY};
    int checked = 0;
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .streams = 1,
                                  .duration_ms = WORK_MS,
                                  .stall_ms = SLOW_STALL,
                                  .check_reply = check_size,
                                  .reply_ud = &checked};
    struct dst_transfer_stats st;

    (void)state;
    slow_start(&s, true);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/upload", s.port);
    int64_t t0 = dst_monotonic_ms();
    int rc = dst_transfer_run(&o, &st);
    int64_t took = dst_monotonic_ms() - t0;
    slow_stop(&s);
    assert_string_equal(st.error, "");
    assert_int_equal(rc, 0);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.bytes, SLOW_BODY);
    assert_int_equal(s.body, SLOW_BODY);
    assert_true(took > SLOW_STALL); /* the pacing makes it so: the test tests something */
}

/* A server that stops taking the body: nothing more is acknowledged, the request stalls. */
static void upload_stall_is_a_timeout(void **state)
{
    struct slow s;
    char u[64], want[300];
    const char *urls[] = {u};
    const uint64_t sizes[] = {SLOW_BODY};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .streams = 1,
                                  .duration_ms = WORK_MS,
                                  .stall_ms = 300};
    struct dst_transfer_stats st;

    (void)state;
    slow_start(&s, false);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/upload", s.port);
    int64_t t0 = dst_monotonic_ms();
    int rc = dst_transfer_run(&o, &st);
    int64_t took = dst_monotonic_ms() - t0;
    slow_stop(&s);
    assert_int_equal(rc, DST_ETIMEDOUT);
    assert_true(took >= 300 && took < WORK_MS / 2); /* the stall ended it, not the time */
    snprintf(want, sizeof(want), "timeout: no data for 0.3 s from %s", u);
    assert_string_equal(st.error, want);
    assert_int_equal(st.completed, 0);
}

static void http_status_is_classified(void **state)
{
    const char *urls[] = {url("/data/10"), url("/nothing-here")};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 2,
                                  .streams = 1,
                                  .duration_ms = WORK_MS};
    struct dst_transfer_stats st;
    char want[300];

    (void)state;
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    snprintf(want, sizeof(want), "HTTP 404 from %s", urls[1]);
    assert_string_equal(st.error, want);
    assert_int_equal(st.status, 404);
    assert_int_equal(st.completed, 1);
}

static void short_body_is_classified(void **state)
{
    struct raw r;
    char u[64], want[128], *body = dst_xmalloc(2000);
    const char *urls[] = {u};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .streams = 1,
                                  .duration_ms = WORK_MS};
    struct dst_transfer_stats st;

    (void)state;
    snprintf(body, 2000, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n%0500d", 7);
    raw_start(&r, body);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/random350x350.jpg", r.port);
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    snprintf(want, sizeof(want), "short body: 500 of 1000 bytes from %s", u);
    assert_string_equal(st.error, want);
    assert_int_equal(st.bytes, 0);
    raw_stop(&r);
    /* nothing at all */
    raw_start(&r, "");
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", r.port);
    assert_int_equal(dst_transfer_run(&o, &st), DST_EDEP);
    snprintf(want, sizeof(want), "empty reply from %s", u);
    assert_string_equal(st.error, want);
    raw_stop(&r);
    free(body);
}

static void bad_options_are_einval(void **state)
{
    const char *urls[] = {"http://127.0.0.1:1/"};
    const uint64_t sizes[] = {3};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD, .urls = urls, .nurls = 1};
    struct dst_transfer_stats st;

    (void)state;
    o.duration_ms = 1000;
    assert_int_equal(dst_transfer_run(&o, &st), DST_EINVAL); /* 0 streams */
    assert_string_equal(st.error, "streams out of range");
    o.streams = 1;
    o.grace_ms = 1000;
    assert_int_equal(dst_transfer_run(&o, &st), DST_EINVAL);
    o.grace_ms = 0;
    o.dir = DST_TRANSFER_UPLOAD;
    assert_int_equal(dst_transfer_run(&o, &st), DST_EINVAL); /* no sizes */
    o.sizes = sizes;
    o.nsizes = 1;
    o.prefix = "content1=";
    assert_int_equal(dst_transfer_run(&o, &st), DST_EINVAL);
    assert_string_equal(st.error, "upload size below its prefix");
}

/* ---- latency ---- */

static void latency_samples(void **state)
{
    double s[6];
    int nvalid = -1;
    char err[256] = "";
    struct dst_latency_opts o = {
        .url = url("/latency"), .count = 6, .buster = "x", .expect_prefix = "test=test"};

    (void)state;
    int64_t t0 = dst_monotonic_us();
    assert_int_equal(dst_transfer_latency(&o, s, &nvalid, err, sizeof(err)), 0);
    double took = (double)(dst_monotonic_us() - t0) / 1000;
    assert_int_equal(nvalid, 6);
    for (int i = 0; i < 6; i++) /* in ms: no sample is longer than the whole run (+1 ms: clocks) */
        assert_true(s[i] >= 0 && s[i] <= took + 1);
    o.expect_prefix = "size=";
    assert_int_equal(dst_transfer_latency(&o, s, &nvalid, err, sizeof(err)), 0);
    assert_int_equal(nvalid, 0);
    assert_true(isnan(s[0]) && isnan(s[5]));
}

static void latency_failures(void **state)
{
    double s[3];
    int nvalid = -1;
    char err[256], u[64], want[300];
    struct dst_latency_opts o = {.url = url("/nope"), .count = 3};

    (void)state;
    assert_int_equal(dst_transfer_latency(&o, s, &nvalid, err, sizeof(err)), DST_EDEP);
    snprintf(want, sizeof(want), "HTTP 404 from %s", o.url);
    assert_string_equal(err, want);
    assert_int_equal(nvalid, 0);
    assert_true(isnan(s[2]));
    int held = -1, port = st_refusing_port(&held);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/latency.txt", port);
    o.url = u;
    assert_int_equal(dst_transfer_latency(&o, s, &nvalid, err, sizeof(err)), DST_EDEP);
    close(held);
    snprintf(want, sizeof(want), "refused: 127.0.0.1:%d", port);
    assert_string_equal(err, want);
    o.url = url("/stall");
    o.timeout_ms = 300;
    assert_int_equal(dst_transfer_latency(&o, s, &nvalid, err, sizeof(err)), DST_ETIMEDOUT);
    assert_memory_equal(err, "timeout: ", 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(download_counts_exact_bytes),
        cmocka_unit_test(download_stops_at_the_duration),
        cmocka_unit_test(grace_bytes_are_not_counted),
        cmocka_unit_test(drain_lets_requests_finish),
        cmocka_unit_test(budget_ends_the_phase),
        cmocka_unit_test(upload_counts_bodies_answered_2xx),
        cmocka_unit_test(upload_body_is_prefix_and_pattern),
        cmocka_unit_test(upload_rejected_413_counts_nothing),
        cmocka_unit_test(upload_reply_check_fails_the_phase),
        cmocka_unit_test(refused_is_classified),
        cmocka_unit_test(dns_failure_is_classified),
        cmocka_unit_test(stall_is_a_timeout),
        cmocka_unit_test(slow_upload_is_not_a_stall),
        cmocka_unit_test(upload_stall_is_a_timeout),
        cmocka_unit_test(http_status_is_classified),
        cmocka_unit_test(short_body_is_classified),
        cmocka_unit_test(bad_options_are_einval),
        cmocka_unit_test(latency_samples),
        cmocka_unit_test(latency_failures),
    };
    return cmocka_run_group_tests(tests, server_setup, server_teardown);
}
