/* store_fixture.h - the store tests' fixture: each test on "sqlite::memory:" and on a file */
#ifndef DST_TEST_STORE_FIXTURE_H
#define DST_TEST_STORE_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/store.h"

struct fixture {
    char dir[64];
    char path[96];
    char url[112];
    struct dst_store *s;
};

/* Each test runs once on "sqlite::memory:" and once on a file in a fresh temp directory. */
static int setup(void **state, bool file)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (file) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/dst_store_XXXXXX");
        if (!mkdtemp(f->dir))
            return -1;
        snprintf(f->path, sizeof(f->path), "%s/results.db", f->dir);
        snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    } else {
        snprintf(f->url, sizeof(f->url), "sqlite::memory:");
    }
    if (dst_store_open(f->url, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup_mem(void **state)
{
    return setup(state, false);
}

static int setup_file(void **state)
{
    return setup(state, true);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];
    dst_store_free(f->s);
    if (f->dir[0]) {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
            unlink(p);
        }
        rmdir(f->dir);
    }
    free(f);
    return 0;
}

#endif
