/* test_cfg_check.c - unit tests of the checks of listeners, URLs and paths (src/core/cfg_check.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/err.h"

static const char *listen_v, *http_v, *iperf_v;
static struct dst_cfg_opt opts[] = {
    {.name = "listen", .type = DST_CFG_STR, .dest = &listen_v},
    {.name = "server-http", .type = DST_CFG_STR, .dest = &http_v},
    {.name = "server-iperf3", .type = DST_CFG_STR, .dest = &iperf_v},
};
static struct dst_cfg cfg = {.service = "up", .opts = opts, .nopts = 3};

static char *err_text;

/* Runs dst_cfg_check_listeners on up to three values (NULL: not given); stderr into err_text. */
static int check3(const char *a, const char *b, const char *c)
{
    struct dst_cfg_listener l[3];
    const char *vals[] = {a, b, c};
    size_t len = 0;
    int n = 0;

    for (int i = 0; i < 3; i++) {
        if (vals[i])
            l[n++] = (struct dst_cfg_listener){opts[i].name, vals[i], i > 0};
    }
    free(err_text);
    err_text = NULL;
    FILE *f = open_memstream(&err_text, &len);
    int rc = dst_cfg_check_listeners(&cfg, f, l, n);
    fclose(f);
    return rc;
}

/* A socket listening on ip:port (0: any free port); its port in *port. */
static int hold(const char *ip, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1) != 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int teardown(void **state)
{
    (void)state;
    free(err_text);
    err_text = NULL;
    for (int i = 0; i < 3; i++)
        opts[i].from = DST_CFG_FROM_NONE;
    return 0;
}

static void port_zero_never_collides(void **state)
{
    (void)state;
    assert_int_equal(check3("127.0.0.1:0", "127.0.0.1:0", "0.0.0.0:0"), 0);
    assert_string_equal(err_text, "");
    assert_int_equal(check3("127.0.0.1:0", "off", ""), 0); /* off listeners are left out */
    assert_string_equal(err_text, "");
}

static void collisions_name_both(void **state)
{
    (void)state;
    assert_int_equal(check3("0.0.0.0:1", "127.0.0.1:1", NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc up: --server-http: port 1 is also taken by --listen: "
                                  "0.0.0.0:1 and 127.0.0.1:1 overlap; give one of them another "
                                  "port\n");
    assert_int_equal(check3("127.0.0.1:1", NULL, "127.0.0.1:1"), DST_EINVAL);
    assert_non_null(strstr(err_text, "--server-iperf3: port 1 is also taken by --listen"));
    /* :: takes the port for IPv4 too (dual-stack); a v4-mapped address is the IPv4 one */
    assert_int_equal(check3("[::]:7", "127.0.0.1:7", NULL), DST_EINVAL);
    assert_non_null(strstr(err_text, ": [::]:7 and 127.0.0.1:7 overlap;"));
    assert_int_equal(check3("[::ffff:127.0.0.1]:7", "127.0.0.1:7", NULL), DST_EINVAL);
    assert_int_equal(check3(":7", "127.0.0.1:7", NULL), DST_EINVAL); /* ":7" is 0.0.0.0:7 */
    assert_non_null(strstr(err_text, "--server-http: port 7 is also taken by --listen"));
    /* the other option's environment twin is named when its value came from there */
    opts[0].from = DST_CFG_FROM_ENV;
    assert_int_equal(check3("127.0.0.1:1", "127.0.0.1:1", NULL), DST_EINVAL);
    assert_non_null(
        strstr(err_text, "also taken by --listen (from DSTMC_LISTEN): 127.0.0.1:1 and"));
    /* three on one port: each later one reported once */
    opts[0].from = DST_CFG_FROM_NONE;
    assert_int_equal(check3("127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:1"), DST_EINVAL);
    assert_non_null(strstr(err_text, "--server-http:"));
    assert_non_null(strstr(err_text, "--server-iperf3:"));
}

static void distinct_addresses_and_ports_in_use(void **state)
{
    int port = 0;
    char a[128], b[64], c[64];
    int fd = hold("127.0.0.3", &port);

    (void)state;
    assert_true(fd >= 0);
    snprintf(a, sizeof(a), "127.0.0.1:%d", port);
    snprintf(b, sizeof(b), "127.0.0.2:%d", port);
    /* one port on two addresses of one family: no overlap, and both binds succeed */
    assert_int_equal(check3(a, b, NULL), 0);
    assert_string_equal(err_text, "");
    /* the held port: on its address, and on the wildcard that covers it */
    snprintf(c, sizeof(c), "127.0.0.3:%d", port);
    assert_int_equal(check3(c, NULL, NULL), DST_EINVAL);
    snprintf(a, sizeof(a), "dstmc up: --listen: port %d on 127.0.0.3 is in use: use --listen\n",
             port);
    assert_string_equal(err_text, a);
    snprintf(c, sizeof(c), "0.0.0.0:%d", port);
    assert_int_equal(check3("127.0.0.1:0", c, NULL), DST_EINVAL);
    snprintf(a, sizeof(a),
             "dstmc up: --server-http: port %d is in use: use --server-http (or off)\n", port);
    assert_string_equal(err_text, a);
    close(fd);
    /* free again: the check binds and closes, it keeps nothing */
    assert_int_equal(check3(c, NULL, NULL), 0);
    assert_int_equal(check3(c, NULL, NULL), 0);
}

static void in_use_names_the_likely_holder(void **state)
{
    int port = 3001; /* dstmc machine's default */
    int fd = hold("127.0.0.1", &port);

    (void)state;
    /* held here, or already held by something else: in use either way */
    assert_int_equal(check3("127.0.0.1:3001", NULL, NULL), DST_EINVAL);
    assert_string_equal(err_text, "dstmc up: --listen: port 3001 on 127.0.0.1 is in use: another "
                                  "dstmc machine? use --listen\n");
    if (fd >= 0)
        close(fd);
}

static void bind_errors(void **state)
{
    (void)state;
    /* TEST-NET-1 is on no machine */
    assert_int_equal(check3("192.0.2.1:40000", NULL, NULL), DST_EINVAL);
    assert_string_equal(err_text,
                        "dstmc up: --listen: 192.0.2.1 is not an address of this machine: use "
                        "--listen\n");
    /* a name no resolver takes (too long a label): no DNS packet is sent */
    char bad[128];
    snprintf(bad, sizeof(bad), "%070d.invalid:1", 0);
    assert_int_equal(check3(bad, NULL, NULL), DST_EINVAL);
    assert_non_null(strstr(err_text, "dstmc up: --listen: cannot resolve '0000"));
    assert_int_equal(check3("localhost:0", NULL, NULL), 0);
    if (geteuid() != 0) {
        assert_int_equal(check3("127.0.0.1:1", NULL, NULL), DST_EINVAL);
        assert_non_null(strstr(err_text, "port 1 needs privileges"));
    }
}

static void urls(void **state)
{
    static const char *good[] = {
        "http://localhost:8080", "https://api.example.net", "HTTP://h:1/",
        "http://h:65535/x?y#z",  "http://[::1]:8080/base",  "http://user:pw@h:80",
        "http://10.0.0.1?x=1",   "http://a_b.c-d"};
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "a URL is needed (http://HOST[:PORT][/PATH])"},
        {"localhost:8080", "'localhost:8080' is not an http:// or https:// URL"},
        {"ftp://h", "'ftp://h' is not an http:// or https:// URL"},
        {"http://", "'http://' has no host"},
        {"http://:80/", "'http://:80/' has no host"},
        {"http://h:0", "'http://h:0': the port must be a number from 1 to 65535"},
        {"http://h:65536", "'http://h:65536': the port must be a number from 1 to 65535"},
        {"http://h:", "'http://h:': the port must be a number from 1 to 65535"},
        {"http://h:8o/", "'http://h:8o/': the port must be a number from 1 to 65535"},
        {"http://h:1:2", "'http://h:1:2': the port must be a number from 1 to 65535"},
        {"http://h!x/", "'http://h!x/': '!' cannot be in a host name"},
        {"http://[::1/", "'http://[::1/': the host is not [IPV6]"},
        {"http://[zz]:1", "'http://[zz]:1': 'zz' is not an IPv6 address"},
        {"http://[::1]x", "'http://[::1]x': the host is not followed by :PORT or a path"},
        {"http://h /", "a URL cannot hold blanks or control characters"},
        {"http://h/\n", "a URL cannot hold blanks or control characters"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        assert_int_equal(dst_cfg_check_url(good[i], err, sizeof(err)), 0);
        assert_string_equal(err, "");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(dst_cfg_check_url(bad[i].in, err, sizeof(err)), DST_EINVAL);
        assert_string_equal(err, bad[i].why);
    }
    assert_int_equal(dst_cfg_check_url_or_empty("", err, sizeof(err)), 0);
    assert_int_equal(dst_cfg_check_url_or_empty("x", err, sizeof(err)), DST_EINVAL);
}

/* A fresh directory under TMPDIR with a file "f" and a directory "d" in it. */
static char *scratch(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    char path[512];

    assert_true(asprintf(&dir, "%s/test_cfg_check.XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/f", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/d", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    return dir;
}

static void unscratch(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* Runs check on DIR/rel; returns its rc and leaves the reason in err. */
static int on(int (*check)(const char *, char *, size_t), const char *dir, const char *rel,
              char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    err[0] = '\0';
    return check(path, err, errlen);
}

static void paths(void **state)
{
    char *dir = scratch();
    char err[700];

    (void)state;
    /* a directory start creates: there, or its parent there */
    assert_int_equal(dst_cfg_check_dir("", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_dir, dir, "d", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_dir, dir, "new", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_dir, dir, "f", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/f' is not a directory"));
    assert_int_equal(on(dst_cfg_check_dir, dir, "no/new", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/no: No such file or directory"));
    assert_int_equal(on(dst_cfg_check_dir, dir, "f/new", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/f/new': Not a directory"));
    /* a database file: there and a file, or creatable */
    assert_int_equal(on(dst_cfg_check_file_rw, dir, "f", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_file_rw, dir, "new.db", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_file_rw, dir, "d", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/d' is not a file"));
    assert_int_equal(on(dst_cfg_check_file_rw, dir, "no/x.db", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(dst_cfg_check_file_rw("", err, sizeof(err)), DST_EINVAL);
    /* a file start reads */
    assert_int_equal(on(dst_cfg_check_file_readable, dir, "f", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_file_readable, dir, "nofile", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/nofile': No such file or directory"));
    assert_int_equal(on(dst_cfg_check_file_readable, dir, "d", err, sizeof(err)), DST_EINVAL);
    /* a watched file: may be absent, not a directory, in a directory that exists */
    assert_int_equal(dst_cfg_check_watched_file("", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_watched_file, dir, "absent", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_watched_file, dir, "f", err, sizeof(err)), 0);
    assert_int_equal(on(dst_cfg_check_watched_file, dir, "d", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/d' is a directory, not a file"));
    assert_int_equal(on(dst_cfg_check_watched_file, dir, "no/absent", err, sizeof(err)),
                     DST_EINVAL);
    /* a bare name is in the working directory */
    assert_int_equal(dst_cfg_check_watched_file("bare-name-absent", err, sizeof(err)), 0);
    if (geteuid() != 0) { /* root writes anywhere */
        char ro[600];
        snprintf(ro, sizeof(ro), "%s/d", dir);
        assert_int_equal(chmod(ro, 0500), 0);
        assert_int_equal(on(dst_cfg_check_dir, dir, "d", err, sizeof(err)), DST_EINVAL);
        assert_int_equal(on(dst_cfg_check_file_rw, dir, "d/x.db", err, sizeof(err)), DST_EINVAL);
        assert_non_null(strstr(err, "cannot create files in"));
        chmod(ro, 0700);
    }
    unscratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(port_zero_never_collides, teardown),
        cmocka_unit_test_teardown(collisions_name_both, teardown),
        cmocka_unit_test_teardown(distinct_addresses_and_ports_in_use, teardown),
        cmocka_unit_test_teardown(in_use_names_the_likely_holder, teardown),
        cmocka_unit_test_teardown(bind_errors, teardown),
        cmocka_unit_test(urls),
        cmocka_unit_test(paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
