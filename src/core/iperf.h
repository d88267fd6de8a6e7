/* iperf.h - iperf3 through libiperf: one client test, and a server running one test at a time */
#ifndef DST_IPERF_H
#define DST_IPERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DST_IPERF_PORT 5201

/*
 * libiperf (3.12) keeps process-wide state (i_errno, its timer list, CPU accounting), so every
 * use of it in the process is serialised by one mutex: client tests run one after the other.
 * The server runs libiperf in a child process of its own (see dst_iperf_server), so it shares
 * nothing with the clients. iperf3's JSON never reaches stdout (libiperf still prints a
 * "WARNING: ..." line there when a peer sends a malformed JSON length). libiperf writes to
 * sockets the peer may have closed: the process must ignore SIGPIPE (dst_sig_init does).
 */

/* One client test: iperf3 -c HOST -p PORT -t DURATION -P STREAMS -O OMIT [-R], over TCP. */
struct dst_iperf_opts {
    const char *host;       /* name or address; each address it resolves to is tried in turn */
    int port;               /* 0 → 5201 */
    int duration_s;         /* measured seconds; 0 → 10 */
    int streams;            /* parallel TCP streams; 0 → 1 */
    int omit_s;             /* seconds at the start left out of the figures (slow start) */
    bool reverse;           /* the server sends: a download; else the client sends: an upload */
    int connect_timeout_ms; /* 0 → 5000 */
    int timeout_ms;         /* the whole test; 0 → duration + omit + 30 s */
};

/* All streams of one side together: iperf3's end.sum_sent or end.sum_received. */
struct dst_iperf_sum {
    uint64_t bytes;
    double seconds;
    double bps;
};

/* What one test measured, as iperf3's JSON says it (from the client's or the server's side). */
struct dst_iperf_report {
    struct dst_iperf_sum sent;     /* what the sender sent */
    struct dst_iperf_sum received; /* what the receiver received: the figure to report */
    bool reverse;                  /* the server was the sender */
    int streams;
    int64_t retransmits;   /* the sender's TCP retransmits; -1 unknown */
    double mean_rtt_ms;    /* the sending streams' smoothed TCP RTT, averaged over the test:
                               round trip under load; NAN when the sender is the other side */
    double cpu_local_pct;  /* this host's CPU use during the test (host_total); NAN unknown */
    double cpu_remote_pct; /* the peer's (remote_total, known to the client only); NAN unknown */
};

/*
 * Runs one test against o->host and fills *out. Blocks for the test's duration; never longer
 * than o->timeout_ms. Failures, with err saying what happened in libiperf's words
 * (iperf_strerror) after a short kind:
 *   DST_EBUSY      "busy: the server is busy running a test. try again later" (also when
 *                  another test of this process holds libiperf until the deadline)
 *   DST_ENOTFOUND  "DNS: HOST: Name or service not known"
 *   DST_EDEP       "refused: unable to connect to server: Connection refused" (or "...
 *                  reset by peer": a listener closing between two tests), or "unreachable:
 *                  ..." (after trying every address the name has)
 *   DST_ETIMEDOUT  "timeout: ..." (connecting, or no end within timeout_ms)
 *   DST_EIO        "iperf3: ..." anything else the peer or libiperf reported mid-test
 *   DST_EINVAL     bad options
 * *out is written only on success.
 */
int dst_iperf_run(const struct dst_iperf_opts *o, struct dst_iperf_report *out, char *err,
                  size_t errlen);

/*
 * A server like `iperf3 -s`: one test at a time on host:port; a client that comes while a test
 * runs is told "busy" by libiperf. libiperf runs in a child process (this program started
 * again with DST_IPERF_CHILD_ARG, holding only its listener and a pipe back), because
 * iperf_run_server closes each stream socket twice: in a process with other threads the second
 * close would hit a descriptor someone else had just opened. Between two tests libiperf closes
 * its listener and opens a new one: a client connecting in those microseconds is refused, so
 * clients retry a refusal once. A client that sends nothing for stall_s seconds is cut off
 * (3.12 would wait for it forever).
 *
 * Every program that starts a server must hand that child to dst_iperf_server_child first
 * thing in main: if (argc > 1 && strcmp(argv[1], DST_IPERF_CHILD_ARG) == 0) ...
 */
#define DST_IPERF_CHILD_ARG "--iperf3-server-child"

/* The child's main: serves until its parent kills it (or dies). Never returns but on bad args. */
int dst_iperf_server_child(int argc, char **argv);

struct dst_iperf_server;

struct dst_iperf_server_opts {
    const char *host; /* address or name to listen on ("0.0.0.0", "::", "127.0.0.1") */
    int port;         /* 0: any free port (see dst_iperf_server_port) */
    int stall_s;      /* close a client's connections after this long with no data; 0 → 10 */
    /*
     * A client connected (noticed within half a second; a client refused as busy is not a
     * client here). Called from one thread of this process, which also calls on_end; may be
     * NULL.
     */
    void (*on_begin)(void *ud);
    /*
     * That client's run ended, exactly once after each on_begin: r is the finished test from
     * the server's side (received: what it received, sent: what it sent), or NULL with error
     * saying why there is none (bad input, client gone, stopped). May be NULL.
     */
    void (*on_end)(void *ud, const struct dst_iperf_report *r, const char *error);
    void *ud;
};

/*
 * Starts the server and returns once it listens. DST_EINVAL (bad host), DST_ECONFLICT (the
 * port is taken), DST_EIO (no pipe or child process), DST_EDEP (libiperf could not listen;
 * logged with its message), DST_ETIMEDOUT (the child did not listen within 10 s).
 */
int dst_iperf_server_new(const struct dst_iperf_server_opts *o, struct dst_iperf_server **out);

/* The bound port (the real one when port 0 was asked). */
int dst_iperf_server_port(const struct dst_iperf_server *s);

/* Stops the server at once (SIGKILL to its child), cutting a running test short; accepts NULL. */
void dst_iperf_server_free(struct dst_iperf_server *s);

#endif
