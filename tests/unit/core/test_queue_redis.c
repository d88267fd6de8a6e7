/* test_queue_redis.c - unit tests of the Redis queue backend (queue_redis.c), on a redis-server */
#include "queue_contract.h"
#include "sys_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_SERVER "/usr/bin/redis-server"

extern char **environ;

/* A redis-server this test started: stopped by its pid. */
struct server {
    pid_t pid;
    int port;
    char dir[64];
};

static struct server shared = {.pid = -1};

static void nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback TCP port nothing listens on right now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Sends one command (RESP array) to 127.0.0.1:port; the first reply line goes to reply. */
static int raw_cmd(int port, int argc, const char **argv, char *reply, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = ST_WAIT_MS / 1000};
    char buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n = snprintf(buf, sizeof(buf), "*%d\r\n", argc);
    ssize_t got = -1;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < argc; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, buf, (size_t)n) == n)
        got = read(fd, reply, cap - 1);
    close(fd);
    if (got <= 0)
        return -1;
    reply[got] = '\0';
    reply[strcspn(reply, "\r")] = '\0';
    return 0;
}

static bool server_pongs(int port)
{
    char reply[64];
    return raw_cmd(port, 1, (const char *[]){"PING"}, reply, sizeof(reply)) == 0 &&
           strcmp(reply, "+PONG") == 0;
}

/*
 * Every redis-server this test started and has not stopped: killed at exit, so a failed
 * assertion (cmocka jumps out of the test, past its server_stop) leaves none behind.
 */
static pid_t started[8];

static void kill_started(void)
{
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++) {
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
    }
}

static void track(pid_t pid, pid_t replace)
{
    static bool registered;
    if (!registered)
        registered = atexit(kill_started) == 0;
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++) {
        if (started[i] == replace) {
            started[i] = pid;
            return;
        }
    }
}

/*
 * Starts redis-server on s->port (its files in s->dir) and waits until it listens there and
 * answers PING; false when it exited at once (a test beside this one had taken the port).
 */
static bool server_start(struct server *s)
{
    char port[16], log[96];
    const char *argv[] = {REDIS_SERVER,   "--port", port,    "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no",     "--dir", s->dir,   "--logfile", log,      NULL};
    posix_spawn_file_actions_t fa;
    int64_t deadline = dst_monotonic_ms() + ST_WAIT_MS;
    int status;

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    assert_int_equal(posix_spawn(&s->pid, REDIS_SERVER, &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    track(s->pid, 0);
    while (!st_pid_listens(s->pid, s->port) || !server_pongs(s->port)) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            track(0, s->pid);
            s->pid = -1;
            return false; /* see its log */
        }
        if (dst_monotonic_ms() > deadline)
            fail_msg("redis-server on port %d did not answer PING in %d s", s->port,
                     ST_WAIT_MS / 1000);
        nap_ms(20);
    }
    return true;
}

/* Stops the server by its pid: SIGTERM, then SIGKILL after 10 s. */
static void server_stop(struct server *s)
{
    int64_t deadline = dst_monotonic_ms() + 10000;
    int status;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGCONT); /* in case a test froze it */
    kill(s->pid, SIGTERM);
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (dst_monotonic_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        nap_ms(10);
    }
    track(0, s->pid);
    s->pid = -1;
}

static void server_init(struct server *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/dstmc-redis-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    s->port = free_port();
    s->pid = -1;
}

/* Removes the server's directory (flat: redis.log and maybe a dump). */
static void server_remove(struct server *s)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    char path[512];

    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(s->dir);
}

static int group_setup(void **state)
{
    (void)state;
    server_init(&shared);
    for (int i = 0; i < 5; i++) {
        if (server_start(&shared))
            return 0;
        shared.port = free_port(); /* taken before redis-server bound it: another */
    }
    fail_msg("redis-server could not listen on a free port in 5 tries (see %s)", shared.dir);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&shared);
    server_remove(&shared);
    return 0;
}

static struct dst_queue *open_port(int port)
{
    char url[64];
    struct dst_queue *q = NULL;

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    assert_int_equal(dst_queue_open(url, &q), 0);
    return q;
}

static struct dst_queue *contract_restart(struct dst_queue *q)
{
    dst_queue_free(q);
    return open_port(shared.port);
}

/* An empty Redis and a queue on it. */
static int setup(void **state)
{
    char reply[64];

    assert_int_equal(raw_cmd(shared.port, 1, (const char *[]){"FLUSHALL"}, reply, sizeof(reply)),
                     0);
    assert_string_equal(reply, "+OK");
    *state = open_port(shared.port);
    return 0;
}

static int teardown(void **state)
{
    dst_queue_free(*state);
    return 0;
}

static void url_ok(const char *url)
{
    char err[160] = "";
    if (dst_queue_url_check(url, err, sizeof(err)) != 0)
        fail_msg("%s: %s", url, err);
}

static void url_bad(const char *url, const char *want)
{
    char err[160] = "";
    assert_int_equal(dst_queue_url_check(url, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, want);
}

static void urls(void **state)
{
    struct dst_queue *q = (struct dst_queue *)0x1;

    (void)state;
    url_ok("redis://127.0.0.1");
    url_ok("redis://redis:6380/2");
    url_ok("redis://[::1]:6379/0");
    url_ok("redis://localhost/");
    url_bad("redis://", "'redis://': no host (use redis://HOST[:PORT][/DB])");
    url_bad("redis://:6379", "'redis://:6379': no host (use redis://HOST[:PORT][/DB])");
    url_bad("redis://[::1]x", "'redis://[::1]x': no host (use redis://HOST[:PORT][/DB])");
    url_bad("redis://[::1", "'redis://[::1': no ']' after the IPv6 address");
    url_bad("redis://h:0", "'redis://h:0': bad port '0' (1-65535)");
    url_bad("redis://h:65536", "'redis://h:65536': bad port '65536' (1-65535)");
    url_bad("redis://h:", "'redis://h:': bad port '' (1-65535)");
    url_bad("redis://h:63x/1", "'redis://h:63x/1': bad port '63x' (1-65535)");
    url_bad("redis://h/x", "'redis://h/x': bad database number 'x' (0-65535)");
    url_bad("redis://h/1/2", "'redis://h/1/2': bad database number '1/2' (0-65535)");
    url_bad("redis://u:pw@h", "'redis://u:pw@h': credentials in the URL are not supported");
    url_bad("redis:/h", "'redis:/h' is not a redis URL (use redis://HOST[:PORT][/DB])");
    assert_int_equal(dst_queue_open("redis://h:0", &q), DST_EINVAL);
    assert_ptr_equal(q, (struct dst_queue *)0x1); /* untouched on failure */
    /* Nothing is listening: open still works (it connects on first use). */
    q = open_port(free_port());
    assert_non_null(q);
    dst_queue_free(q);
}

static void raw_xadd(const char *field, const char *value)
{
    char reply[128];
    const char *argv[] = {"XADD", TOPIC, "*", field, value};
    assert_int_equal(raw_cmd(shared.port, 5, argv, reply, sizeof(reply)), 0);
    assert_int_equal(reply[0], '$'); /* a bulk string: the new id */
}

static void malformed_skipped(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    char id[DST_QUEUE_ID_LEN];

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    raw_xadd("body", "{not json");
    raw_xadd("body", "[1, 2]");
    raw_xadd("other", "{}");
    publish_i(q, TOPIC, 5, id);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", ST_WAIT_MS, 1, &m), 0);
    assert_string_equal(m.id, id);
    assert_int_equal(body_i(&m), 5);
    assert_int_equal(m.deliveries, 1);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), 0);
    dst_queue_msg_release(&m);
    /* The bad ones were acked: with claim_ms 1 none comes back. */
    spin_until(dst_monotonic_ms() + 10);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 100, 1, &m), DST_ETIMEDOUT);
    assert_null(m.body);
    /* An id that cannot exist is simply not pending. */
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", "not-an-id"), DST_ENOTFOUND);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", "1-"), DST_ENOTFOUND);
}

struct blocked {
    struct dst_queue *q;
    const char *topic;
    int timeout_ms;
    int rc;
    int64_t took_ms;
    atomic_bool done;
};

static void *block_consume(void *arg)
{
    struct blocked *b = arg;
    struct dst_queue_msg m;
    int64_t t0 = dst_monotonic_ms();

    b->rc = dst_queue_consume(b->q, b->topic, "g", "blocker", b->timeout_ms, 0, &m);
    b->took_ms = dst_monotonic_ms() - t0;
    dst_queue_msg_release(&m);
    atomic_store(&b->done, true);
    return NULL;
}

/* Waits until someone consumes from topic, with a deadline. */
static void wait_consumer_on(struct dst_queue *q, const char *topic)
{
    int64_t deadline = dst_monotonic_ms() + ST_WAIT_MS;
    int n = 0;

    while (n == 0 && dst_monotonic_ms() < deadline) {
        assert_int_equal(dst_queue_consumers(q, topic, 0, &n), 0);
        nap_ms(5);
    }
    assert_int_equal(n, 1);
}

static void publish_while_blocked(void **state)
{
    struct blocked b = {.q = *state, .topic = "quiet", .timeout_ms = 8000};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, block_consume, &b), 0);
    wait_consumer_on(b.q, "quiet");
    for (int i = 0; i < 20; i++)
        publish_i(b.q, TOPIC, i, NULL);
    assert_int_equal(dst_queue_ping(b.q), 0);
    /* all done while the consumer still waits: none of it waited for its connection */
    assert_false(atomic_load(&b.done));
    pthread_join(t, NULL);
    assert_int_equal(b.rc, DST_ETIMEDOUT);
    assert_true(b.took_ms >= 8000);
    assert_true(b.took_ms < 8000 + ST_WAIT_MS);
}

/* Between capture_begin and capture_end, fd 2 (the log) goes to a file: no asserts there. */
static int capture_fd = -1, saved_fd = -1;

static void capture_begin(void)
{
    char path[] = "/tmp/dstmc-redis-log-XXXXXX";

    capture_fd = mkstemp(path);
    assert_true(capture_fd >= 0);
    unlink(path);
    fflush(stderr);
    saved_fd = dup(2);
    dup2(capture_fd, 2);
}

/* What was logged since capture_begin (the caller frees it). */
static char *capture_end(void)
{
    char *text = calloc(1, 8192);

    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    assert_true(pread(capture_fd, text, 8191, 0) >= 0);
    close(capture_fd);
    return text;
}

/* Every call fails with DST_EDEP, soon, naming the server and the reason. */
static void all_fail(struct dst_queue *q, int port, const char *why)
{
    struct dst_queue_msg m;
    char want[96];
    json_t *body = json_object();
    int n = -7;
    int64_t t0 = dst_monotonic_ms();

    capture_begin();
    int rp = dst_queue_publish(q, TOPIC, body, NULL);
    int rc = dst_queue_consume(q, TOPIC, "g", "c", 200, 0, &m);
    int ra = dst_queue_ack(q, TOPIC, "g", "1-0");
    int rn = dst_queue_consumers(q, TOPIC, 1000, &n);
    int rg = dst_queue_ping(q);
    char *log = capture_end();
    json_decref(body);
    assert_int_equal(rp, DST_EDEP);
    assert_int_equal(rc, DST_EDEP);
    assert_null(m.body);
    assert_int_equal(ra, DST_EDEP);
    assert_int_equal(rn, DST_EDEP);
    assert_int_equal(n, -7);
    assert_int_equal(rg, DST_EDEP);
    assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS);
    /* failed for why (a refusal is at once), not by waiting out a timeout */
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: %s", port, why);
    if (!strstr(log, want))
        fail_msg("wanted \"%s\" in the log:\n%s", want, log);
    free(log);
}

/* A message goes through: the queue works (again). */
static void works(struct dst_queue *q)
{
    struct dst_queue_msg m;

    assert_int_equal(dst_queue_ping(q), 0);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 42, NULL);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", ST_WAIT_MS, 0, &m), 0);
    assert_int_equal(body_i(&m), 42);
    assert_int_equal(m.deliveries, 1);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), 0);
    dst_queue_msg_release(&m);
}

static void redis_down_and_back(void **state)
{
    struct server s;
    struct dst_queue *q;
    pthread_t t;

    (void)state;
    server_init(&s);
    int held = st_hold_port(0, &s.port); /* while Redis is down: refused, and nobody else's */
    assert_true(held >= 0);
    q = open_port(s.port);
    all_fail(q, s.port, "Connection refused"); /* started before Redis */
    close(held);
    if (!server_start(&s))
        fail_msg("redis-server could not listen on %d", s.port);
    works(q);
    /* Killed while a consume blocks (for a minute): it returns DST_EDEP at once. On a topic
       of its own: works()'s consumer counts as waiting in the millisecond it last looked. */
    struct blocked b = {.q = q, .topic = "quiet", .timeout_ms = 60000};
    assert_int_equal(pthread_create(&t, NULL, block_consume, &b), 0);
    wait_consumer_on(q, "quiet");
    capture_begin();
    server_stop(&s);
    held = st_hold_port(s.port, NULL);
    pthread_join(t, NULL);
    free(capture_end());
    assert_true(held >= 0);
    assert_int_equal(b.rc, DST_EDEP);
    assert_true(b.took_ms < ST_WAIT_MS);
    all_fail(q, s.port, "Connection refused");
    /* Back (empty: the group is made again). */
    close(held);
    if (!server_start(&s))
        fail_msg("redis-server could not listen on %d again", s.port);
    works(q);
    dst_queue_free(q);
    server_stop(&s);
    server_remove(&s);
}

static void redis_frozen(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;

    works(q);
    assert_int_equal(kill(shared.pid, SIGSTOP), 0);
    assert_true(st_wait_stopped(shared.pid)); /* before that it might still answer */
    capture_begin();
    int64_t t0 = dst_monotonic_ms();
    int rc = dst_queue_consume(q, TOPIC, "g", "c", 300, 0, &m);
    int64_t took = dst_monotonic_ms() - t0;
    int rg = dst_queue_ping(q);
    int64_t took_ping = dst_monotonic_ms() - t0 - took;
    kill(shared.pid, SIGCONT);
    free(capture_end());
    assert_int_equal(rc, DST_EDEP);
    assert_true(took < 300 + ST_WAIT_MS); /* noticed by its command timeout, never a hang */
    assert_int_equal(rg, DST_EDEP);
    assert_true(took_ping < ST_WAIT_MS);
    works(q);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(urls),
    };
    const struct CMUnitTest tests[] = {
        QUEUE_CONTRACT_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_while_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(redis_frozen, setup, teardown),
        cmocka_unit_test(redis_down_and_back),
    };
    int failed;

    signal(SIGPIPE, SIG_IGN); /* as dst_sig_init does in the binary */
    failed = cmocka_run_group_tests_name("offline", offline, NULL, NULL);
    if (access(REDIS_SERVER, X_OK) != 0) {
        printf("SKIP: %s is not installed (apt-get install redis-server); the redis queue "
               "tests did not run\n",
               REDIS_SERVER);
        return failed ? failed : 77;
    }
    return failed + cmocka_run_group_tests_name("redis", tests, group_setup, group_teardown);
}
