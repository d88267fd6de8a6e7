/* ookla.c - the ookla engine: the Ookla TCP protocol (ookla://HOST[:8080]) */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/net.h"
#include "speedtest/engines/engine.h"
#include "speedtest/engines/ookla_proto.h"

/*
 * ookla://HOST[:8080]?duration=S&streams=N&grace=S
 *
 * Latency: one connection, HI, then PING ten times; ping_ms is the lowest round trip (what the
 * line can do, undisturbed by a scheduler hiccup), jitter_ms the mean absolute difference of
 * consecutive round trips. Each direction then runs for `duration` seconds on `streams` fresh
 * connections (each says HI first). A stream keeps OOKLA_AHEAD commands in flight (DOWNLOAD n, or
 * UPLOAD n 0 with its data), so the line never idles between commands, sized to about CHUNK_S
 * seconds of a fair share of the rate so far. The first `grace` seconds are not counted (slow
 * start, socket buffers filling); rate = bytes counted * 8 / counted seconds. Download counts
 * bytes as they arrive. Upload counts a chunk only when its OK arrives: what the server had at
 * each edge of the window is read off the straight line between the stream's OKs around that
 * edge, so a chunk that straddles an edge counts for its share, not all or nothing. After a
 * phase the commands in flight are finished (up to DRAIN_MS) and QUIT is said, so the bytes
 * moved here are the bytes the server counted.
 */
#define DEFAULT_PORT 8080
#define PINGS        10
#define STEP_MS      5000           /* connect, HELLO, one PONG */
#define DRAIN_MS     3000           /* finishing the commands in flight after a phase */
#define CHUNK_MIN    (32u * 1024)   /* first (and smallest) command size */
#define CHUNK_MAX    (1024u * 1024) /* every server accepts 1 MiB (dstmc's --max-bytes floor) */
#define CHUNK_S      0.1            /* a command is about this long at its stream's rate */
#define BUF          (256u * 1024)  /* the one buffer: download scratch, then upload data */
#define TICK_US      200000         /* progress about five times a second */
#define RAMP_US      250000         /* chunks keep their first size this long */

struct stream {
    struct dst_net_conn c;
    uint64_t chunk;          /* size of the next command */
    struct ookla_inflight f; /* the commands in flight */
    char cmd[48];            /* upload: the command line being written */
    size_t cmd_len, cmd_off;
    uint64_t data_left; /* upload: data bytes of that command still to write */
    bool open;          /* upload: a command is being written */
    uint64_t done;      /* bytes received (download) or confirmed (upload) */
    uint64_t moved;     /* bytes received (download) or written (upload) */
    int64_t ok_us;      /* upload: when the last OK came (the phase's start before any) */
    double at[2];       /* upload: data the server had at the window's start and end */
    bool have[2];       /* upload: at[i] is known (an OK came after that moment) */
};

struct run {
    const struct engine_ctx *ctx;
    const struct engine_target *t;
    char hostport[300];
    long duration, nstreams, grace;
    int timeout_s; /* the whole test */
    int64_t deadline_ms;
    char *buf;
    struct stream *st;
    char err[512];
};

struct phase {
    const char *name; /* "download" or "upload" */
    bool up;
    int64_t start, count_from, end, next_tick; /* µs, monotonic */
    uint64_t counted;                          /* download: bytes in [count_from, end) */
    double bps;
    int64_t moved; /* bytes the streams received (download) or wrote (upload), once over */
};

static int ookla_check(const struct engine_target *t, char *err, size_t errlen)
{
    long d = 0, n = 0, g = 0;

    for (int i = 0; i < t->nparams; i++) {
        const char *k = t->keys[i];
        if (strcmp(k, "duration") != 0 && strcmp(k, "streams") != 0 && strcmp(k, "grace") != 0)
            return snprintf(err, errlen, "unknown parameter '%s' (known: duration, streams, grace)",
                            k),
                   DST_EINVAL;
    }
    int rc = engine_target_int(t, "duration", 10, 1, 300, &d, err, errlen);
    rc = rc ? rc : engine_target_int(t, "streams", 4, 1, 32, &n, err, errlen);
    rc = rc ? rc : engine_target_int(t, "grace", 1, 0, 60, &g, err, errlen);
    if (rc == 0 && g >= d)
        return snprintf(err, errlen, "grace (%ld s) must be shorter than duration (%ld s)", g, d),
               DST_EINVAL;
    return rc;
}

/* min(now + ms, the test's deadline) */
static int64_t step_deadline(const struct run *run, int ms)
{
    int64_t d = dst_monotonic_ms() + ms;
    return d < run->deadline_ms ? d : run->deadline_ms;
}

/* What the peer of c did, for a message: "closed the connection" or the socket error. */
static const char *io_what(const struct dst_net_conn *c)
{
    if (c->sys_errno == 0 || c->sys_errno == EPIPE)
        return "closed the connection";
    return c->sys_errno == ECONNRESET ? "reset the connection" : strerror(c->sys_errno);
}

/* Fails the run with a reason; returns DST_EDEP so callers can stop at once. */
static int fail(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->err, sizeof(run->err), fmt, ap);
    va_end(ap);
    return DST_EDEP;
}

/* Reads the reply line to a command within the step deadline; it must start with "WHAT ". */
static int read_reply(struct run *run, struct dst_net_conn *c, const char *what)
{
    char line[256];
    int rc = dst_net_read_line(c, line, sizeof(line), step_deadline(run, STEP_MS), NULL);

    if (rc == DST_ETIMEDOUT)
        return fail(run, "timeout: no %s from %s within %d s", what, run->hostport, STEP_MS / 1000);
    if (rc == DST_ETOOBIG)
        return fail(run, "protocol: expected %s, got an over-long line", what);
    if (rc && rc != DST_EINVAL)
        return fail(run, "protocol: %s %s before %s%s", run->hostport, io_what(c), what,
                    strcmp(what, "HELLO") == 0 ? " (busy: over its connection limit?)" : "");
    if (rc) /* a NUL in it: no text line */
        return fail(run, "protocol: expected %s, got binary data", what);
    return ookla_reply_check(line, what, run->err, sizeof(run->err));
}

/* Connects and says HI; HELLO must come back. */
static int open_conn(struct run *run, struct dst_net_conn *c)
{
    int left = (int)(run->deadline_ms - dst_monotonic_ms());
    int rc = dst_net_connect(run->t->host, run->t->port ? run->t->port : DEFAULT_PORT,
                             left < STEP_MS ? (left > 0 ? left : 1) : STEP_MS, c, run->err,
                             sizeof(run->err));
    if (rc)
        return rc;
    if (dst_net_write_all(c, "HI\n", 3, step_deadline(run, STEP_MS)) != 0)
        return fail(run, "protocol: %s %s before HI", run->hostport, io_what(c));
    return read_reply(run, c, "HELLO");
}

/* One PING; the round trip in ms. */
static int ping_once(struct run *run, struct dst_net_conn *c, double *rtt_ms)
{
    char cmd[48];
    int64_t t0 = dst_monotonic_us();
    int n = snprintf(cmd, sizeof(cmd), "PING %" PRId64 "\n", dst_datetime_now_ms());

    if (dst_net_write_all(c, cmd, (size_t)n, step_deadline(run, STEP_MS)) != 0)
        return fail(run, "protocol: %s %s before PING", run->hostport, io_what(c));
    int rc = read_reply(run, c, "PONG");
    *rtt_ms = (double)(dst_monotonic_us() - t0) / 1000.0;
    return rc;
}

/* Latency and jitter over PINGS round trips on a connection of their own. */
static int latency(struct run *run, struct dst_result *r)
{
    struct dst_net_conn c;
    double rtt[PINGS], best = INFINITY, jitter = 0;
    int rc = open_conn(run, &c);

    for (int i = 0; rc == 0 && i < PINGS; i++) {
        rc = ping_once(run, &c, &rtt[i]);
        if (rc == 0 && rtt[i] < best)
            best = rtt[i];
        if (rc == 0 && i > 0)
            jitter += fabs(rtt[i] - rtt[i - 1]);
    }
    if (rc == 0) {
        dst_net_write_all(&c, "QUIT\n", 5, step_deadline(run, STEP_MS));
        r->ping_ms = best;
        r->jitter_ms = jitter / (PINGS - 1);
    }
    dst_net_close(&c);
    return rc;
}

/*
 * The next command's size: about CHUNK_S of a fair share of the phase's rate so far (measured
 * once the phase has run a little), at most doubling at a time, never shrinking.
 */
static uint64_t next_chunk(const struct run *run, struct stream *s, const struct phase *ph,
                           int64_t now)
{
    uint64_t done = 0;

    if (now - ph->start < RAMP_US)
        return s->chunk;
    for (int i = 0; i < run->nstreams; i++)
        done += run->st[i].done;
    double want = (double)done / ((double)(now - ph->start) / 1e6) / run->nstreams * CHUNK_S;
    if (want > 2.0 * s->chunk)
        want = 2.0 * s->chunk;
    if (want > (double)s->chunk)
        s->chunk = want > CHUNK_MAX ? CHUNK_MAX : (uint64_t)want;
    return s->chunk;
}

/* Download: asks for more while fewer than OOKLA_AHEAD commands are in flight. */
static int down_ask(struct run *run, struct stream *s, const struct phase *ph, int64_t now)
{
    char cmd[48];

    while (s->f.qn < OOKLA_AHEAD && now < ph->end) {
        uint64_t n = next_chunk(run, s, ph, now);
        int len = snprintf(cmd, sizeof(cmd), "DOWNLOAD %" PRIu64 "\n", n);
        if (dst_net_write_all(&s->c, cmd, (size_t)len, step_deadline(run, STEP_MS)) != 0)
            return fail(run, "short read: %s %s during the download", run->hostport,
                        io_what(&s->c));
        ookla_inflight_push(&s->f, n);
    }
    return 0;
}

/* Download: reads what is there (without waiting; a few buffers, then the next stream). */
static int down_read(struct run *run, struct stream *s, struct phase *ph)
{
    for (int i = 0; i < 16; i++) {
        size_t got = 0;
        int rc = dst_net_read(&s->c, run->buf, BUF, dst_monotonic_ms(), &got);
        if (rc == DST_ETIMEDOUT)
            return 0;
        if (rc)
            return fail(run, "short read: %s %s after %" PRIu64 " of %" PRIu64 " bytes",
                        run->hostport, io_what(&s->c), s->f.pos, ookla_inflight_head(&s->f));
        int64_t now = dst_monotonic_us();
        s->done += got;
        s->moved += got;
        if (now >= ph->count_from && now < ph->end)
            ph->counted += got;
        rc = ookla_down_take(&s->f, run->buf, got, run->hostport, run->err, sizeof(run->err));
        if (rc)
            return rc;
    }
    return 0;
}

/* Upload: opens the next command when fewer than OOKLA_AHEAD are in flight. */
static void up_open(const struct run *run, struct stream *s, const struct phase *ph, int64_t now)
{
    if (s->open || s->f.qn >= OOKLA_AHEAD || now >= ph->end)
        return;
    uint64_t n = next_chunk(run, s, ph, now);
    s->cmd_len = (size_t)snprintf(s->cmd, sizeof(s->cmd), "UPLOAD %" PRIu64 " 0\n", n);
    s->cmd_off = 0;
    s->data_left = n - s->cmd_len; /* the data ends in "\n": the buffer's last byte */
    s->open = true;
    ookla_inflight_push(&s->f, n);
}

/* Upload: writes what the socket takes now of the open command. */
static int up_write(struct run *run, struct stream *s)
{
    while (s->open) {
        const char *p = s->cmd + s->cmd_off;
        size_t n = s->cmd_len - s->cmd_off, put = 0;
        if (n == 0) { /* the data: the tail of the buffer, so the last byte sent is its "\n" */
            n = s->data_left < BUF ? (size_t)s->data_left : BUF;
            p = run->buf + BUF - n;
        }
        int rc = dst_net_write(&s->c, p, n, dst_monotonic_ms(), &put);
        if (rc == DST_ETIMEDOUT)
            return 0;
        if (rc)
            return fail(run, "short read: %s %s during the upload", run->hostport, io_what(&s->c));
        s->moved += put;
        if (s->cmd_off < s->cmd_len)
            s->cmd_off += put;
        else
            s->data_left -= put;
        s->open = s->cmd_off < s->cmd_len || s->data_left > 0;
    }
    return 0;
}

/*
 * Upload: what the server had received at a moment between two OKs, drawn as a straight line
 * between them (the data of a stream arrives steadily; an OK marks its chunk's last byte).
 */
static void up_edges(struct stream *s, const struct phase *ph, int64_t now, uint64_t n)
{
    const int64_t edge[2] = {ph->count_from, ph->end};

    for (int i = 0; i < 2; i++) {
        if (s->have[i] || now < edge[i])
            continue;
        double part = now > s->ok_us ? (double)(edge[i] - s->ok_us) / (double)(now - s->ok_us) : 1;
        s->at[i] = (double)(s->done - n) + (double)n * part;
        s->have[i] = true;
    }
    s->ok_us = now;
}

/* Upload: one OK line confirms the oldest command in flight. */
static int up_ok(struct run *run, struct stream *s, struct phase *ph, const char *line)
{
    uint64_t n = ookla_inflight_head(&s->f);

    if (ookla_ok_take(&s->f, line, run->err, sizeof(run->err)) != 0)
        return DST_EDEP;
    s->done += n;
    up_edges(s, ph, dst_monotonic_us(), n);
    return 0;
}

/* Upload: reads the OK lines that are there (without waiting). */
static int up_read(struct run *run, struct stream *s, struct phase *ph)
{
    char line[256];

    for (;;) {
        int rc = dst_net_read_line(&s->c, line, sizeof(line), dst_monotonic_ms(), NULL);
        if (rc == DST_ETIMEDOUT)
            return 0;
        if (rc == DST_ETOOBIG)
            return fail(run, "protocol: expected OK, got an over-long line");
        if (rc)
            return fail(run, "short read: %s %s with %d upload(s) unconfirmed", run->hostport,
                        io_what(&s->c), s->f.qn);
        rc = up_ok(run, s, ph, line);
        if (rc)
            return rc;
    }
}

/* Waits (up to until_us) for any stream to be ready, then serves the ready ones. */
static int step(struct run *run, struct phase *ph, int64_t until_us)
{
    struct pollfd pfd[32];
    int64_t now = dst_monotonic_us();

    for (int i = 0; i < run->nstreams; i++) {
        struct stream *s = &run->st[i];
        if (ph->up)
            up_open(run, s, ph, now);
        pfd[i] = (struct pollfd){.fd = s->c.fd, .events = POLLIN | (s->open ? POLLOUT : 0)};
    }
    int64_t wait_us = until_us - now;
    if (poll(pfd, (nfds_t)run->nstreams, wait_us > 0 ? (int)((wait_us + 999) / 1000) : 0) < 0)
        return 0; /* EINTR: the caller comes back */
    for (int i = 0; i < run->nstreams; i++) {
        struct stream *s = &run->st[i];
        int rc = 0;
        if (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))
            rc = ph->up ? up_write(run, s) : 0;
        if (rc == 0 && pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
            rc = ph->up ? up_read(run, s, ph) : down_read(run, s, ph);
        if (rc == 0 && !ph->up)
            rc = down_ask(run, s, ph, dst_monotonic_us());
        if (rc)
            return rc;
    }
    return 0;
}

static void tick(struct run *run, struct phase *ph, int64_t now)
{
    uint64_t done = 0;

    if (now < ph->next_tick)
        return;
    ph->next_tick = now + TICK_US;
    for (int i = 0; i < run->nstreams; i++)
        done += run->st[i].done;
    engine_progress(run->ctx, ph->name, (double)done * 8 / ((double)(now - ph->start) / 1e6));
}

/* After the phase: finishes the commands in flight (within DRAIN_MS), then says QUIT. */
static void finish(struct run *run, struct phase *ph)
{
    int64_t until = dst_monotonic_us() + DRAIN_MS * 1000LL, cap = run->deadline_ms * 1000;
    bool busy = true;

    until = until < cap ? until : cap;
    while (busy && dst_monotonic_us() < until) {
        busy = false;
        for (int i = 0; i < run->nstreams; i++)
            busy = busy || run->st[i].f.qn > 0;
        if (busy && step(run, ph, until) != 0)
            break; /* the measurement stands; the rest is only bookkeeping */
    }
    for (int i = 0; i < run->nstreams; i++) {
        if (run->st[i].f.qn == 0)
            dst_net_write_all(&run->st[i].c, "QUIT\n", 5, dst_monotonic_ms() + 100);
    }
}

/*
 * Upload: the data the server received in the counted window, from each stream's line between
 * OKs; a stream without an OK after an edge counts what it had confirmed by then.
 */
static uint64_t up_counted(const struct run *run)
{
    double n = 0;

    for (int i = 0; i < run->nstreams; i++) {
        const struct stream *s = &run->st[i];
        double from = s->have[0] ? s->at[0] : (double)s->done;
        double to = s->have[1] ? s->at[1] : (double)s->done;
        n += to - from;
    }
    return n > 0 ? (uint64_t)llround(n) : 0;
}

/* Opens the streams (fresh connections, each says HI) and starts the phase's clock. */
static int phase_open(struct run *run, struct phase *ph)
{
    int rc = 0;

    for (int i = 0; i < run->nstreams; i++)
        run->st[i] = (struct stream){.c.fd = -1, .chunk = CHUNK_MIN};
    for (int i = 0; rc == 0 && i < run->nstreams; i++)
        rc = open_conn(run, &run->st[i].c);
    ph->start = dst_monotonic_us();
    ph->next_tick = ph->start + TICK_US;
    ph->count_from = ph->start + run->grace * 1000000LL;
    ph->end = ph->start + run->duration * 1000000LL;
    if (ph->end > run->deadline_ms * 1000)
        ph->end = run->deadline_ms * 1000;
    for (int i = 0; i < run->nstreams; i++)
        run->st[i].ok_us = ph->start;
    if (rc == 0 && ph->end <= ph->count_from)
        rc = fail(run, "timeout: the test's %d s ran out before the %s", run->timeout_s, ph->name);
    return rc;
}

/* The phase's rate from what was counted; a failure when nothing was. */
static int phase_rate(struct run *run, struct phase *ph)
{
    if (ph->up)
        ph->counted = up_counted(run);
    if (ph->counted == 0)
        return fail(run, "timeout: no %s data %s %s in %ld s", ph->name,
                    ph->up ? "confirmed by" : "from", run->hostport, run->duration);
    ph->bps = (double)ph->counted * 8 / ((double)(ph->end - ph->count_from) / 1e6);
    engine_progress(run->ctx, ph->name, ph->bps);
    return 0;
}

/* Runs one direction on fresh connections; ph->bps and ph->moved result. */
static int phase_run(struct run *run, struct phase *ph)
{
    int rc = phase_open(run, ph);

    for (int i = 0; rc == 0 && !ph->up && i < run->nstreams; i++)
        rc = down_ask(run, &run->st[i], ph, ph->start);
    for (int64_t now = ph->start; rc == 0 && now < ph->end; now = dst_monotonic_us()) {
        tick(run, ph, now);
        rc = step(run, ph, ph->next_tick < ph->end ? ph->next_tick : ph->end);
    }
    if (rc == 0) {
        finish(run, ph); /* the upload's last OKs still tell where the window ended */
        rc = phase_rate(run, ph);
    }
    for (int i = 0; i < run->nstreams; i++) { /* unfinished: do not let it linger */
        if (run->st[i].f.qn > 0)
            dst_net_abort(&run->st[i].c);
        dst_net_close(&run->st[i].c);
        ph->moved += (int64_t)run->st[i].moved;
    }
    return rc;
}

/* The upload data: random, ending in "\n" (the last byte of every command). */
static void fill_random(char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t k = getrandom(p + off, n - off, 0);
        off += k > 0 ? (size_t)k : 0;
    }
    p[n - 1] = '\n';
}

static int measure(struct run *run, struct dst_result *r)
{
    struct phase down = {.name = "download"}, up = {.name = "upload", .up = true};

    engine_say(run->ctx, "Finding best test servers");
    int rc = latency(run, r);
    if (rc == 0) {
        engine_say(run->ctx, "Testing download speed");
        rc = phase_run(run, &down);
        r->bytes_down = down.moved;
    }
    if (rc == 0) {
        engine_say(run->ctx, "Testing upload speed");
        fill_random(run->buf, BUF);
        rc = phase_run(run, &up);
        r->bytes_up = up.moved;
    }
    r->download_bps = rc == 0 ? down.bps : NAN;
    r->upload_bps = rc == 0 ? up.bps : NAN;
    return rc;
}

static int ookla_run(const struct engine_ctx *ctx, const struct engine_target *t,
                     struct dst_result *r)
{
    struct run run = {.ctx = ctx, .t = t};
    char err[256];
    int64_t t0 = dst_monotonic_ms();

    if (ookla_check(t, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    engine_target_int(t, "duration", 10, 1, 300, &run.duration, err, sizeof(err));
    engine_target_int(t, "streams", 4, 1, 32, &run.nstreams, err, sizeof(err));
    engine_target_int(t, "grace", 1, 0, 60, &run.grace, err, sizeof(err));
    engine_target_hostport(t, DEFAULT_PORT, run.hostport, sizeof(run.hostport));
    run.timeout_s = ctx->timeout_s > 0 ? ctx->timeout_s : 60;
    run.deadline_ms = t0 + run.timeout_s * 1000LL;
    run.buf = dst_xmalloc(BUF);
    run.st = dst_xcalloc((size_t)run.nstreams, sizeof(*run.st));
    dst_result_set(&r->server_host, run.hostport);
    r->streams = run.nstreams;
    int rc = measure(&run, r);
    r->duration_s = (double)(dst_monotonic_ms() - t0) / 1000.0;
    free(run.st);
    free(run.buf);
    return rc ? engine_fail(r, "%s", run.err) : 0;
}

const struct engine_ops engine_ookla = {
    .scheme = "ookla",
    .name = "ookla",
    .check = ookla_check,
    .run = ookla_run,
};
