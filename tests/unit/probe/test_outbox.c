/* test_outbox.c - unit tests of the probe's on-disk outbox (src/speedtest/probe/outbox.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/uuid.h"
#include "speedtest/probe/outbox.h"

/* A fake API: answers each send with the next scripted code (0 when the script ends). */
struct fake_api {
    int script[12];
    int nscript, calls;
    char last_id[DST_UUID_LEN + 1];
};

static int fake_send(void *ud, struct dst_result *r, char *err, size_t errlen)
{
    struct fake_api *f = ud;
    int rc = f->calls < f->nscript ? f->script[f->calls] : 0;

    f->calls++;
    snprintf(f->last_id, sizeof(f->last_id), "%s", r->id);
    if (rc)
        snprintf(err, errlen, "fake failure %d", rc);
    return rc;
}

struct fixture {
    char dir[64];
    struct probe_outbox *ob;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/dstmc-outbox-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    strcat(fx->dir, "/box"); /* created by open */
    assert_int_equal(probe_outbox_open(fx->dir, &fx->ob), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[160];

    probe_outbox_free(fx->ob);
    fx->dir[strlen(fx->dir) - 4] = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void make_result(struct dst_result *r, const char *name)
{
    dst_result_init(r);
    dst_uuid_from_name(name, r->id);
    r->time_ms = 1700000000000;
    dst_result_set(&r->probe, "p1");
    dst_result_set(&r->engine, "dummy");
    r->download_bps = 80e6;
}

static bool exists(const struct fixture *fx, const char *sub, const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s%s", fx->dir, sub, name);
    return stat(path, &st) == 0;
}

static void write_file(const struct fixture *fx, const char *name, const char *text)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void put_then_flush_removes(void **state)
{
    struct fixture *fx = *state;
    struct fake_api api = {0};
    struct dst_result r;
    char err[512], name[64];

    make_result(&r, "a");
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), 0);
    snprintf(name, sizeof(name), "%s.json", r.id);
    assert_true(exists(fx, "", name));
    assert_false(exists(fx, ".", name)); /* no temporary file left */
    assert_int_equal(probe_outbox_count(fx->ob), 1);
    assert_int_equal(probe_outbox_flush(fx->ob, 0, fake_send, &api), 1);
    assert_int_equal(api.calls, 1);
    assert_string_equal(api.last_id, r.id); /* the id travels unchanged */
    assert_false(exists(fx, "", name));
    assert_int_equal(probe_outbox_count(fx->ob), 0);
    dst_result_release(&r);
}

static void backoff_doubles_to_five_minutes(void **state)
{
    struct fixture *fx = *state;
    struct fake_api api = {.nscript = 10};
    struct dst_result r;
    char err[512];
    int64_t now = 1000000, want = 1000;

    for (int i = 0; i < api.nscript; i++)
        api.script[i] = i % 2 ? DST_ETIMEDOUT : DST_EDEP;
    make_result(&r, "b");
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), 0);
    /* 1, 2, 4 ... 256 s, then 300 s */
    for (int i = 0; i < api.nscript; i++) {
        assert_int_equal(probe_outbox_flush(fx->ob, now, fake_send, &api), 0);
        assert_int_equal(probe_outbox_due_ms(fx->ob), now + want);
        /* not due yet: nothing is sent */
        assert_int_equal(probe_outbox_flush(fx->ob, now + want - 1, fake_send, &api), 0);
        assert_int_equal(api.calls, i + 1);
        now += want;
        want = want * 2 > 300000 ? 300000 : want * 2;
    }
    assert_int_equal(probe_outbox_backoff_ms(fx->ob), 300000);
    assert_int_equal(probe_outbox_count(fx->ob), 1); /* still there after every failure */
    /* The API is back: stored, and the back-off starts over. */
    assert_int_equal(probe_outbox_flush(fx->ob, now, fake_send, &api), 1);
    assert_int_equal(probe_outbox_count(fx->ob), 0);
    assert_int_equal(probe_outbox_backoff_ms(fx->ob), 1000);
    assert_int_equal(probe_outbox_due_ms(fx->ob), 0);
    dst_result_release(&r);
}

static void kick_retries_at_once(void **state)
{
    struct fixture *fx = *state;
    struct fake_api api = {.script = {DST_EDEP}, .nscript = 1};
    struct dst_result r;
    char err[512];

    make_result(&r, "c");
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), 0);
    assert_int_equal(probe_outbox_flush(fx->ob, 5000, fake_send, &api), 0);
    assert_int_equal(probe_outbox_flush(fx->ob, 5001, fake_send, &api), 0);
    assert_int_equal(api.calls, 1);
    probe_outbox_kick(fx->ob);
    assert_int_equal(probe_outbox_flush(fx->ob, 5001, fake_send, &api), 1);
    dst_result_release(&r);
}

static void bad_files_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct fake_api api = {0};
    struct dst_result r;
    char name[64], other[DST_UUID_LEN + 1];

    write_file(fx, "garbage.json", "{not json");
    write_file(fx, "notes.txt", "hello");
    write_file(fx, "array.json", "[1,2]");
    make_result(&r, "d");
    dst_uuid_from_name("e", other);
    snprintf(name, sizeof(name), "%s.json", other); /* valid result, wrong name */
    json_t *j = dst_result_to_json(&r);
    char *text = json_dumps(j, 0);
    write_file(fx, name, text);
    free(text);
    json_decref(j);
    assert_int_equal(probe_outbox_count(fx->ob), 4);
    assert_int_equal(probe_outbox_flush(fx->ob, 0, fake_send, &api), 0);
    assert_int_equal(api.calls, 0); /* nothing invalid was sent */
    assert_int_equal(probe_outbox_count(fx->ob), 0);
    assert_true(exists(fx, "bad/", "garbage.json"));
    assert_true(exists(fx, "bad/", "notes.txt"));
    assert_true(exists(fx, "bad/", "array.json"));
    assert_true(exists(fx, "bad/", name));
    assert_int_equal(probe_outbox_due_ms(fx->ob), 0); /* not a reason to back off */
    dst_result_release(&r);
}

static void rejected_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct fake_api api = {.script = {DST_EINVAL}, .nscript = 1};
    struct dst_result r;
    char err[512], name[64];

    make_result(&r, "f");
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), 0);
    snprintf(name, sizeof(name), "%s.json", r.id);
    assert_int_equal(probe_outbox_flush(fx->ob, 0, fake_send, &api), 0);
    assert_int_equal(api.calls, 1);
    assert_true(exists(fx, "bad/", name));
    assert_int_equal(probe_outbox_count(fx->ob), 0);
    dst_result_release(&r);
}

static void put_failure_names_path_and_errno(void **state)
{
    struct fixture *fx = *state;
    struct dst_result r;
    char err[512] = "", path[256];

    make_result(&r, "g");
    /* A directory where the temporary file goes: open fails with EISDIR (even as root). */
    snprintf(path, sizeof(path), "%s/.%s.json.tmp", fx->dir, r.id);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), DST_EIO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "open: Is a directory"));
    assert_int_equal(probe_outbox_count(fx->ob), 0);
    rmdir(path);
    /* An id that is not a UUID never becomes a path. */
    snprintf(r.id, sizeof(r.id), "../../etc/x");
    assert_int_equal(probe_outbox_put(fx->ob, &r, err, sizeof(err)), DST_EINVAL);
    dst_result_release(&r);
}

/*
 * A full disk: the outbox on a 64 KiB tmpfs filled to the last byte. The put fails with the
 * path and "No space left on device", and leaves nothing behind. Needs mount(2) (root, as the
 * accuracy test); skipped elsewhere.
 */
static void put_on_a_full_disk_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    struct probe_outbox *ob = NULL;
    struct dst_result r;
    char mnt[128], box[160], fill[176], err[512] = "";
    static char chunk[4096];

    snprintf(mnt, sizeof(mnt), "%.*s/full", (int)strlen(fx->dir) - 4, fx->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("dstmc-test", mnt, "tmpfs", 0, "size=64k") != 0) {
        rmdir(mnt);
        skip(); /* not allowed here */
    }
    snprintf(box, sizeof(box), "%s/box", mnt);
    assert_int_equal(probe_outbox_open(box, &ob), 0);
    snprintf(fill, sizeof(fill), "%s/fill", mnt);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    while (write(fd, chunk, sizeof(chunk)) > 0)
        ;
    close(fd);
    make_result(&r, "full");
    assert_int_equal(probe_outbox_put(ob, &r, err, sizeof(err)), DST_EIO);
    assert_non_null(strstr(err, box));
    assert_non_null(strstr(err, "No space left on device"));
    assert_int_equal(probe_outbox_count(ob), 0);
    DIR *d = opendir(box); /* no temporary file left either */
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)) != NULL)
        entries += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, 1); /* bad/ */
    dst_result_release(&r);
    probe_outbox_free(ob);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    rmdir(mnt);
}

static void open_failures(void **state)
{
    struct fixture *fx = *state;
    struct probe_outbox *ob = (struct probe_outbox *)0x1;
    char path[256];

    snprintf(path, sizeof(path), "%s/file", fx->dir);
    write_file(fx, "file", "x");
    assert_int_equal(probe_outbox_open(path, &ob), DST_EIO);
    assert_ptr_equal(ob, (struct probe_outbox *)0x1);
    assert_int_equal(probe_outbox_open("/proc/dstmc-no-such/outbox", &ob), DST_EIO);
    probe_outbox_free(NULL);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_then_flush_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(backoff_doubles_to_five_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(kick_retries_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_files_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(put_failure_names_path_and_errno, setup, teardown),
        cmocka_unit_test_setup_teardown(put_on_a_full_disk_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(open_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
