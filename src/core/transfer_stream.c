/* transfer_stream.c - one stream of a transfer phase: its curl handle, body and socket callbacks */
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/transfer_priv.h"

#define PATTERN_LEN (64 * 1024)
#define BUFFER_SIZE (128L * 1024) /* curl's receive buffer, per stream */
/* curl's send buffer: fewer read callbacks and writes per byte than 128 KiB; 1 MiB more RSS for
 * 8 streams (bench/bench.py engines) */
#define UPLOAD_SIZE (256L * 1024)

/*
 * Every upload body comes from this one buffer: pseudo-random characters of speedtest-cli's
 * alphabet, printable (a valid form value) and hard to compress. Never written after start.
 */
static char pattern[PATTERN_LEN];
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;

static void make_pattern(void)
{
    static const char abc[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint32_t x = 2463534242u; /* xorshift32: the same bytes every run */

    for (size_t i = 0; i < PATTERN_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = abc[x % 36];
    }
}

/* ---- one request ---- */

/* Download: the body is counted, not kept. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct transfer_xfer *x = arg;

    (void)p;
    x->moved += size * n;
    x->last_ms = x->run->stamp;
    return size * n;
}

/* Upload: the first bytes of the server's answer, for check_reply. */
static size_t on_reply(char *p, size_t size, size_t n, void *arg)
{
    struct transfer_xfer *x = arg;
    size_t room = TRANSFER_REPLY_MAX - 1 - x->reply_len, take = size * n < room ? size * n : room;

    memcpy(x->reply + x->reply_len, p, take);
    x->reply_len += take;
    x->reply[x->reply_len] = '\0';
    x->last_ms = x->run->stamp;
    return size * n;
}

/* Upload: the next part of the body: the prefix, then the pattern. */
static size_t on_send(char *buf, size_t size, size_t n, void *arg)
{
    struct transfer_xfer *x = arg;
    const char *prefix = x->run->o->prefix ? x->run->o->prefix : "";
    size_t plen = strlen(prefix), len = 0, want = size * n;

    if (want > x->size - x->moved)
        want = (size_t)(x->size - x->moved);
    while (len < want) {
        uint64_t off = x->moved + len;
        const char *src = off < plen ? prefix + off : pattern + (off - plen) % PATTERN_LEN;
        size_t avail = off < plen ? plen - off : PATTERN_LEN - (off - plen) % PATTERN_LEN;
        size_t take = want - len < avail ? want - len : avail;
        memcpy(buf + len, src, take);
        len += take;
    }
    x->moved += len; /* not progress yet: check_stalls waits for the peer's acknowledgement */
    return len;
}

uint64_t transfer_delivered(const struct transfer_xfer *x)
{
    int queued = 0;
    curl_off_t sent = 0;
    bool up = x->run->o->dir == DST_TRANSFER_UPLOAD;

    if (x->fd < 0 || ioctl(x->fd, up ? SIOCOUTQ : SIOCINQ, &queued) != 0 || queued < 0)
        queued = 0;
    if (!up)
        return x->moved + (uint64_t)queued;
    dst_curl.easy_getinfo(x->h, CURLINFO_SIZE_UPLOAD_T, &sent);
    return sent > queued ? (uint64_t)(sent - queued) : 0;
}

/* ---- sockets ---- */

static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer_run *r = arg;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

    (void)purpose;
    if (fd >= 0 && r->nsocks < TRANSFER_MAX_SOCKETS)
        r->socks[r->nsocks++] = fd; /* when full, that socket's queue is not looked at */
    return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int on_close_socket(void *arg, curl_socket_t fd)
{
    struct transfer_run *r = arg;

    for (int i = 0; i < r->nsocks; i++) {
        if (r->socks[i] == fd) {
            r->socks[i] = r->socks[--r->nsocks];
            break;
        }
    }
    return close(fd);
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : -1;
}

/* The connection a request goes out on is known: find its socket by the local port. */
static int on_prereq(void *arg, char *ip, char *local_ip, int port, int lport)
{
    struct transfer_xfer *x = arg;

    (void)ip;
    (void)local_ip;
    (void)port;
    x->fd = -1;
    for (int i = 0; i < x->run->nsocks && x->fd < 0; i++)
        x->fd = local_port(x->run->socks[i]) == lport ? x->run->socks[i] : -1;
    return CURL_PREREQFUNC_OK;
}

/* ---- one stream ---- */

int transfer_xfer_init(struct transfer_run *r, struct transfer_xfer *x)
{
    const struct dst_transfer_opts *o = r->o;
    bool up = o->dir == DST_TRANSFER_UPLOAD;
    CURL *h = dst_curl.easy_init();

    pthread_once(&pattern_once, make_pattern); /* on_send's bytes, made once */
    if (!h)
        return DST_EDEP;
    x->h = h;
    x->run = r;
    dst_curl.easy_setopt(h, CURLOPT_PRIVATE, x);
    dst_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    dst_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    dst_curl.easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    dst_curl.easy_setopt(h, CURLOPT_USERAGENT, TRANSFER_USER_AGENT);
    dst_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                   : TRANSFER_DEFAULT_CONNECT_MS);
    dst_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    dst_curl.easy_setopt(h, CURLOPT_BUFFERSIZE, up ? 16384L : BUFFER_SIZE); /* up: the reply */
    dst_curl.easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
    dst_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, up ? on_reply : on_body);
    dst_curl.easy_setopt(h, CURLOPT_WRITEDATA, x);
    dst_curl.easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    dst_curl.easy_setopt(h, CURLOPT_OPENSOCKETDATA, r);
    dst_curl.easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    dst_curl.easy_setopt(h, CURLOPT_CLOSESOCKETDATA, r);
    dst_curl.easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
    dst_curl.easy_setopt(h, CURLOPT_PREREQDATA, x);
    if (up) {
        dst_curl.easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_SIZE);
        dst_curl.easy_setopt(h, CURLOPT_POST, 1L);
        dst_curl.easy_setopt(h, CURLOPT_READFUNCTION, on_send);
        dst_curl.easy_setopt(h, CURLOPT_READDATA, x);
    }
    return 0;
}
