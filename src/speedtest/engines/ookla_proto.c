/* ookla_proto.c - the ookla engine's reading of a server's answers: replies, OKs, data */
#include "speedtest/engines/ookla_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void ookla_inflight_push(struct ookla_inflight *f, uint64_t n)
{
    f->q[(f->qh + f->qn++) % OOKLA_AHEAD] = n;
}

void ookla_inflight_pop(struct ookla_inflight *f)
{
    f->qh = (f->qh + 1) % OOKLA_AHEAD;
    f->qn--;
    f->pos = 0;
}

uint64_t ookla_inflight_head(const struct ookla_inflight *f)
{
    return f->qn ? f->q[f->qh] : 0;
}

/* The text a server sent, cut short and made printable, for a message. */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outlen && i < 40; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

int ookla_reply_check(const char *line, const char *what, char *err, size_t errlen)
{
    size_t len = strlen(what);
    char shown[64];

    if (strncmp(line, what, len) == 0 && line[len] == ' ')
        return 0;
    printable(line, shown, sizeof(shown));
    snprintf(err, errlen, "protocol: expected %s, got '%s'", what, shown);
    return DST_EDEP;
}

int ookla_ok_take(struct ookla_inflight *f, const char *line, char *err, size_t errlen)
{
    char shown[64], *end = NULL;
    uint64_t n = strncmp(line, "OK ", 3) == 0 ? strtoull(line + 3, &end, 10) : 0;

    if (!end || (*end != ' ' && *end) || f->qn == 0 || n != f->q[f->qh]) {
        printable(line, shown, sizeof(shown));
        snprintf(err, errlen, "protocol: expected OK %" PRIu64 ", got '%s'", ookla_inflight_head(f),
                 shown);
        return DST_EDEP;
    }
    ookla_inflight_pop(f);
    return 0;
}

int ookla_down_take(struct ookla_inflight *f, const char *p, size_t got, const char *peer,
                    char *err, size_t errlen)
{
    while (got > 0) {
        if (f->qn == 0)
            return snprintf(err, errlen, "protocol: %s sent %zu bytes nobody asked for", peer, got),
                   DST_EDEP;
        if (f->pos == 0 && got >= 5 && memcmp(p, "ERROR", 5) == 0)
            return snprintf(err, errlen, "protocol: %s answered 'DOWNLOAD %" PRIu64 "' with ERROR",
                            peer, f->q[f->qh]),
                   DST_EDEP;
        uint64_t left = f->q[f->qh] - f->pos;
        size_t k = left < got ? (size_t)left : got;
        f->pos += k;
        p += k;
        got -= k;
        if (f->pos == f->q[f->qh])
            ookla_inflight_pop(f);
    }
    return 0;
}
