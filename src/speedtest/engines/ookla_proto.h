/* ookla_proto.h - the ookla engine's reading of a server's answers (ookla_proto.c) */
#ifndef DST_ENGINE_OOKLA_PROTO_H
#define DST_ENGINE_OOKLA_PROTO_H

/*
 * Private to the ookla engine (ookla.c) and its tests: what the lines and the data an Ookla
 * server sends mean, apart from the sockets and the clock, so that they can be tested and
 * fuzzed as bytes. Errors are DST_EDEP with the failed test's reason in err.
 */

#include <stddef.h>
#include <stdint.h>

#define OOKLA_AHEAD 4 /* commands in flight per stream */

/* The commands a stream has in flight, oldest first, and how much of the oldest came. */
struct ookla_inflight {
    uint64_t q[OOKLA_AHEAD]; /* their sizes, the oldest at q[qh] */
    int qh, qn;
    uint64_t pos; /* download: bytes of q[qh] received */
};

/* Appends a command of n bytes (qn < OOKLA_AHEAD), or takes the oldest off (qn > 0). */
void ookla_inflight_push(struct ookla_inflight *f, uint64_t n);
void ookla_inflight_pop(struct ookla_inflight *f);
/* The size of the oldest command in flight, 0 if none. */
uint64_t ookla_inflight_head(const struct ookla_inflight *f);

/*
 * Checks the line (as dst_net_read_line gives it) that answers a command: it must start with
 * what and a space ("HELLO 2.9 ...", "PONG 1700000000000"). 0, or "protocol: expected WHAT,
 * got '...'" (the line cut short and made printable).
 */
int ookla_reply_check(const char *line, const char *what, char *err, size_t errlen);

/*
 * Checks an upload's answer "OK n [ms]": n must be the size of the oldest upload in flight
 * of f, which is then taken off. 0, or "protocol: expected OK n, got '...'".
 */
int ookla_ok_take(struct ookla_inflight *f, const char *line, char *err, size_t errlen);

/*
 * Accounts got bytes of download data p: the commands of f they complete are taken off.
 * "protocol: PEER sent N bytes nobody asked for", or "protocol: PEER answered 'DOWNLOAD n'
 * with ERROR" when a command's answer begins with ERROR.
 */
int ookla_down_take(struct ookla_inflight *f, const char *p, size_t got, const char *peer,
                    char *err, size_t errlen);

#endif
