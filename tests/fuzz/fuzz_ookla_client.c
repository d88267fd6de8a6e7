/* fuzz_ookla_client.c - an Ookla server's answers, as the ookla engine reads them */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/net.h"
#include "fuzz.h"
#include "speedtest/engines/ookla_proto.h"

#define LINE_MAX_BYTES 256 /* the engine's line buffer */
#define MAX_INPUT      65536

/* Uploads in flight, as the engine sizes them (the last one odd, as a short last chunk). */
static const uint64_t uploads[OOKLA_AHEAD] = {32768, 65536, 1048576, 17};

/* Each answer line: HELLO and PONG checks, and the OK of the oldest upload in flight. */
static void lines(const uint8_t *data, size_t size)
{
    struct ookla_inflight f = {0};
    struct dst_net_conn c;
    char line[LINE_MAX_BYTES], err[512];
    int fds[2];

    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    FUZZ_CHECK(size == 0 || write(fds[1], data, size) == (ssize_t)size);
    close(fds[1]);
    dst_net_conn_init(&c, fds[0]);
    while (dst_net_read_line(&c, line, sizeof(line), -1, NULL) == 0) {
        if (ookla_reply_check(line, "HELLO", err, sizeof(err)) == 0)
            FUZZ_CHECK(strncmp(line, "HELLO ", 6) == 0);
        ookla_reply_check(line, "PONG", err, sizeof(err));
        for (int i = 0; f.qn < OOKLA_AHEAD; i++)
            ookla_inflight_push(&f, uploads[i]);
        uint64_t head = ookla_inflight_head(&f);
        int qn = f.qn;
        if (ookla_ok_take(&f, line, err, sizeof(err)) == 0)
            FUZZ_CHECK(f.qn == qn - 1 && strncmp(line, "OK ", 3) == 0 && head > 0);
        else
            FUZZ_CHECK(f.qn == qn && strstr(err, "expected OK") != NULL);
    }
    dst_net_close(&c);
}

/* Download data for commands in flight of the sizes in the first bytes, taken in pieces. */
static void download(const uint8_t *data, size_t size)
{
    struct ookla_inflight f = {0};
    char err[512];

    if (size < OOKLA_AHEAD + 1)
        return;
    for (int i = 0; i < OOKLA_AHEAD; i++)
        ookla_inflight_push(&f, (uint64_t)data[i] + 1);
    size_t piece = (size_t)data[OOKLA_AHEAD] % 64 + 1, off = OOKLA_AHEAD + 1;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        uint64_t before = f.pos;
        int qn = f.qn;
        if (ookla_down_take(&f, (const char *)data + off, n, "127.0.0.1:8080", err, sizeof(err)) !=
            0) {
            FUZZ_CHECK(strncmp(err, "protocol: ", 10) == 0);
            return; /* the test fails */
        }
        FUZZ_CHECK(f.qn < qn || f.pos == before + n);
        off += n;
    }
}

/* The first byte picks what the server's bytes answer: odd, DOWNLOADs; even, lines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > MAX_INPUT)
        return 0;
    fuzz_init();
    if (data[0] & 1)
        download(data + 1, size - 1);
    else
        lines(data + 1, size - 1);
    return 0;
}
