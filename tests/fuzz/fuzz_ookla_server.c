/* fuzz_ookla_server.c - a client's lines to the Ookla TCP server (speedtest/server/ookla.c) */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/net.h"
#include "fuzz.h"
#include "speedtest/server/server_priv.h"

#define LINE_MAX_BYTES 256        /* the server's line buffer (OOKLA_LINE) */
#define MAX_BYTES      1073741824 /* the server's default --max-bytes */
#define MAX_INPUT      65536      /* fits in a socket pair's buffer: the write never blocks */

/* Reads and drops what an UPLOAD sends after its line; false when the client is gone. */
static bool drain(struct dst_net_conn *c, uint64_t n)
{
    char scratch[4096];

    while (n > 0) {
        size_t got = 0;
        if (dst_net_read(c, scratch, n < sizeof(scratch) ? n : sizeof(scratch), -1, &got) != 0)
            return false;
        n -= got;
    }
    return true;
}

/* One command line: its verb as the server takes it; false when the server closes. */
static bool command(struct dst_net_conn *c, const char *line, size_t raw)
{
    struct server_ookla_cmd cmd;

    server_ookla_parse(line, raw, MAX_BYTES, &cmd);
    FUZZ_CHECK((cmd.verb == OOKLA_BLANK) == (line[0] == '\0' || line[0] == ' '));
    switch (cmd.verb) {
    case OOKLA_DOWNLOAD:
        FUZZ_CHECK(cmd.size >= 1 && cmd.size <= MAX_BYTES);
        return true;
    case OOKLA_UPLOAD:
        FUZZ_CHECK(cmd.size >= raw && cmd.size <= MAX_BYTES);
        return drain(c, cmd.size - raw);
    case OOKLA_QUIT:
    case OOKLA_BAD_SIZE:
        return false;
    default:
        return true;
    }
}

/*
 * The input is what a client sends on a connection, read as the server reads it: lines of at
 * most 255 bytes through core/net.c's read-ahead, each taken apart, UPLOAD's data skipped.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_net_conn c;
    char line[LINE_MAX_BYTES];
    int fds[2];

    if (size > MAX_INPUT)
        return 0;
    fuzz_init();
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    FUZZ_CHECK(size == 0 || write(fds[1], data, size) == (ssize_t)size);
    close(fds[1]); /* the client is done: reads end in DST_EIO */
    dst_net_conn_init(&c, fds[0]);
    for (;;) {
        size_t raw = 0;
        int rc = dst_net_read_line(&c, line, sizeof(line), -1, &raw);
        if (rc == DST_EINVAL) /* a NUL in the line: ERROR, and the connection stays */
            continue;
        if (rc)
            break; /* DST_ETOOBIG: ERROR and a close; DST_EIO: the client is gone */
        FUZZ_CHECK(raw >= strlen(line) + 1 && raw <= strlen(line) + 2);
        if (!command(&c, line, raw))
            break;
    }
    dst_net_close(&c);
    return 0;
}
