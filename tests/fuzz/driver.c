/* driver.c - runs a fuzz target without libFuzzer: every file of its corpus once */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/*
 * usage: fuzz_TARGET PATH...  (files, or directories of files; a directory's entries in name
 * order). Each input is read into a buffer of exactly its size, so that a read past its end is
 * caught under ASan as it would be under libFuzzer. Exits 1 on an unreadable path or when no
 * input was found (a replay of nothing shows nothing).
 */

static int replay(const char *path, int *count)
{
    FILE *f = fopen(path, "rb");
    long size = -1;
    unsigned char *buf = NULL;
    int rc = 1;

    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(size ? (size_t)size : 1);
        if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            LLVMFuzzerTestOneInput(buf, (size_t)size);
            (*count)++;
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, int *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name), rc = n < 0;

    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc |= replay(path, count);
        free(names[i]);
    }
    free(names);
    if (n < 0)
        fprintf(stderr, "%s: cannot read the directory\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            rc |= replay_dir(argv[i], &count);
        else
            rc |= replay(argv[i], &count);
    }
    fprintf(stderr, "%s: %d inputs replayed\n", argc > 0 ? argv[0] : "fuzz", count);
    return rc || count == 0;
}
