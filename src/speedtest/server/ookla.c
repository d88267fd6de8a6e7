/* ookla.c - the Ookla TCP protocol of the test server (speedtest.net servers' port 8080) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/net.h"
#include "core/tcp_server.h"
#include "speedtest/server/server_priv.h"

/*
 * The wire contract, as real clients read it (showwin/speedtest-go speedtest/transport/tcp.go
 * and docs/tcp.md, taganaka/SpeedTest SpeedTestClient.cpp). One command per line ending in
 * "\n"; lengths count the command, the data and the final "\n":
 *   HI [id]        -> HELLO 2.9 (2.9.0) 2024-01-01.0000.dstmc
 *   PING [t]       -> PONG <13-digit ms>           (exactly 19 bytes: speedtest-go checks it)
 *   DOWNLOAD n     -> n bytes: "DOWNLOAD " + data + "\n"
 *   UPLOAD n [0]   -> reads n - (command line) more bytes, then OK n <ms>
 *   QUIT           -> close
 *   INITPLOSS      -> (nothing);  PLOSS -> PLOSS 0 0 0 (no UDP counted: clients say "N/A")
 *   anything else  -> ERROR, and the connection stays; a bad size or an over-long line gets
 *                     ERROR and a close.
 */
#define OOKLA_HELLO "HELLO 2.9 (2.9.0) 2024-01-01.0000.dstmc\n"
#define OOKLA_LINE  256          /* longest command line */
#define OOKLA_IDLE  10000        /* ms a connection may stay silent or stalled */
#define PAYLOAD     (1u << 20)   /* the shared download data */
#define SCRATCH     (64u * 1024) /* per connection, for upload data (on its thread's stack) */

struct server_ookla {
    struct server *s;
    struct dst_tcp_server *tcp;
    char *payload; /* PAYLOAD random bytes without "\n" or "\r", read-only once started */
};

/*
 * What a command leaves of the connection: keep serving it, close it, or abort it (a reset,
 * dropping unsent data) when the client stalled and the socket would linger with its data.
 */
enum { KEEP = 0, CLOSE = 1, ABORT = 2 };

/* The state an I/O result leaves. */
static int after(int rc)
{
    return rc == 0 ? KEEP : rc == DST_ETIMEDOUT ? ABORT : CLOSE;
}

static void count(struct server_ookla *o, const char *kind)
{
    server_count_request(o->s, "ookla", kind);
}

static void on_reject(void *ud)
{
    count(ud, "rejected");
}

static int reply(struct dst_net_conn *c, const char *text)
{
    return after(dst_net_write_all(c, text, strlen(text), -1));
}

/* ERROR: the client sent what is no command; the connection stays. */
static int unknown(struct server_ookla *o, struct dst_net_conn *c)
{
    count(o, "error");
    return reply(c, "ERROR\n");
}

/* ERROR, then CLOSE: the client sent what the protocol cannot go on from. */
static int refuse(struct server_ookla *o, struct dst_net_conn *c)
{
    return unknown(o, c) == ABORT ? ABORT : CLOSE;
}

/* A reply that is counted as kind. */
static int answer(struct server_ookla *o, struct dst_net_conn *c, const char *kind,
                  const char *text)
{
    count(o, kind);
    return reply(c, text);
}

/* Parses the size of DOWNLOAD/UPLOAD: decimal digits up to a space or the end, 1..max. */
static int parse_size(const char *p, long max, uint64_t *n)
{
    uint64_t v = 0;
    const char *start = p;

    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)max)
            return DST_ETOOBIG;
    }
    if (p == start || (*p && *p != ' ') || v == 0)
        return DST_EINVAL;
    *n = v;
    return 0;
}

void server_ookla_parse(const char *line, size_t raw, long max, struct server_ookla_cmd *out)
{
    static const struct {
        const char *name;
        enum server_ookla_verb verb;
    } verbs[] = {
        {"HI", OOKLA_HI},         {"PING", OOKLA_PING}, {"DOWNLOAD", OOKLA_DOWNLOAD},
        {"UPLOAD", OOKLA_UPLOAD}, {"QUIT", OOKLA_QUIT}, {"INITPLOSS", OOKLA_INITPLOSS},
        {"PLOSS", OOKLA_PLOSS},
    };
    size_t n = strcspn(line, " ");
    const char *arg = line[n] ? line + n + 1 : "";

    /* a stray "\n" (a client that miscounted by one) or a line starting with a space */
    *out = (struct server_ookla_cmd){.verb = n == 0 ? OOKLA_BLANK : OOKLA_UNKNOWN};
    for (size_t i = 0; n > 0 && i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strlen(verbs[i].name) == n && strncmp(line, verbs[i].name, n) == 0)
            out->verb = verbs[i].verb;
    }
    if (out->verb == OOKLA_DOWNLOAD || out->verb == OOKLA_UPLOAD) {
        /* UPLOAD's size counts its own command line too: the data is the rest */
        if (parse_size(arg, max, &out->size) != 0 || (out->verb == OOKLA_UPLOAD && out->size < raw))
            out->verb = OOKLA_BAD_SIZE;
    }
}

/* Sends n bytes: as much of "DOWNLOAD " as fits before the final "\n", random data between. */
static int send_download(struct server_ookla *o, struct dst_net_conn *c, uint64_t n, uint64_t *sent)
{
    size_t head = n > 10 ? 9 : (size_t)n - 1;
    uint64_t body = n - head - 1;
    int rc = dst_net_write_all(c, "DOWNLOAD ", head, -1);

    *sent = rc ? 0 : head;
    while (rc == 0 && body > 0) {
        size_t k = body < PAYLOAD ? (size_t)body : PAYLOAD;
        size_t put = 0;
        rc = dst_net_write(c, o->payload, k, -1, &put);
        *sent += put;
        body -= put;
    }
    rc = rc ? rc : dst_net_write_all(c, "\n", 1, -1);
    *sent += rc ? 0 : 1;
    return after(rc);
}

static int cmd_download(struct server_ookla *o, struct dst_net_conn *c, uint64_t n)
{
    uint64_t sent = 0;

    count(o, "download");
    server_busy(o->s);
    int rc = send_download(o, c, n, &sent);
    server_count_bytes(o->s, "ookla", false, sent);
    server_idle(o->s);
    return rc;
}

/* Reads and drops n bytes; *got says how many came. */
static int drain(struct dst_net_conn *c, uint64_t n, uint64_t *got)
{
    char scratch[SCRATCH];

    *got = 0;
    while (*got < n) {
        size_t k = 0;
        int rc = dst_net_read(c, scratch, n - *got < SCRATCH ? n - *got : SCRATCH, -1, &k);
        if (rc)
            return after(rc);
        *got += k;
    }
    return KEEP;
}

/* The declared n counts this command line (raw bytes) too: the data is the rest. */
static int cmd_upload(struct server_ookla *o, struct dst_net_conn *c, uint64_t n, size_t raw)
{
    uint64_t got = 0;
    char ok[64];

    count(o, "upload");
    server_busy(o->s);
    int rc = drain(c, n - raw, &got);
    server_count_bytes(o->s, "ookla", true, raw + got);
    server_idle(o->s);
    if (rc != KEEP)
        return rc;
    snprintf(ok, sizeof(ok), "OK %" PRIu64 " %" PRId64 "\n", n, dst_datetime_now_ms());
    return reply(c, ok);
}

static int cmd_ping(struct server_ookla *o, struct dst_net_conn *c)
{
    char pong[32];

    snprintf(pong, sizeof(pong), "PONG %013" PRId64 "\n", dst_datetime_now_ms());
    return answer(o, c, "ping", pong);
}

/* Runs one command line; KEEP, CLOSE or ABORT. */
static int dispatch(struct server_ookla *o, struct dst_net_conn *c, const char *line, size_t raw)
{
    struct server_ookla_cmd cmd;

    server_ookla_parse(line, raw, o->s->cfg.max_bytes, &cmd);
    switch (cmd.verb) {
    case OOKLA_HI:
        return answer(o, c, "hi", OOKLA_HELLO);
    case OOKLA_PING:
        return cmd_ping(o, c);
    case OOKLA_DOWNLOAD:
        return cmd_download(o, c, cmd.size);
    case OOKLA_UPLOAD:
        return cmd_upload(o, c, cmd.size, raw);
    case OOKLA_QUIT:
        count(o, "quit");
        return CLOSE;
    case OOKLA_INITPLOSS:
    case OOKLA_BLANK:
        return KEEP;
    case OOKLA_PLOSS:
        return answer(o, c, "ploss", "PLOSS 0 0 0\n");
    case OOKLA_BAD_SIZE:
        return refuse(o, c);
    case OOKLA_UNKNOWN:
        break;
    }
    return unknown(o, c);
}

static void serve(void *ud, struct dst_net_conn *c, const char *peer)
{
    struct server_ookla *o = ud;
    char line[OOKLA_LINE];
    size_t raw = 0;
    int rc = 0, state = KEEP;

    dst_debug("ookla: %s connected", peer);
    while (state == KEEP) {
        rc = dst_net_read_line(c, line, sizeof(line), -1, &raw);
        if (rc == DST_ETOOBIG)
            state = refuse(o, c);
        else if (rc == DST_EINVAL) /* binary garbage: no command */
            state = unknown(o, c);
        else if (rc)
            break;
        else
            state = dispatch(o, c, line, raw);
    }
    if (rc == DST_ETIMEDOUT || state == ABORT)
        dst_net_abort(c); /* silent or stalled: drop what it would not read */
    dst_debug("ookla: %s done (%s)", peer,
              rc == DST_ETIMEDOUT || state == ABORT ? "idle or stalled"
              : state == CLOSE                      ? "closed by command"
                                                    : "closed by the client");
}

/* Fills the shared payload with random bytes, none of them a line end. */
static void fill_payload(char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t k = getrandom(p + off, n - off, 0);
        if (k > 0)
            off += (size_t)k;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r')
            p[i] = (char)('A' + i % 26);
    }
}

int server_ookla_start(struct server *s, struct server_ookla **out)
{
    struct server_ookla *o = dst_xnew(struct server_ookla);
    struct dst_tcp_server_opts opts = {.listen = s->cfg.ookla,
                                       .name = "ookla",
                                       .max_conns = (unsigned)s->cfg.max_streams,
                                       .idle_ms = OOKLA_IDLE,
                                       .handler = serve,
                                       .on_reject = on_reject,
                                       .ud = o};

    o->s = s;
    o->payload = dst_xmalloc(PAYLOAD);
    fill_payload(o->payload, PAYLOAD);
    int rc = dst_tcp_server_new(&opts, &o->tcp);
    rc = rc ? rc : dst_tcp_server_start(o->tcp);
    if (rc) {
        server_ookla_stop(o);
        return rc;
    }
    *out = o;
    return 0;
}

void server_ookla_stop(struct server_ookla *o)
{
    if (!o)
        return;
    dst_tcp_server_free(o->tcp);
    free(o->payload);
    free(o);
}
