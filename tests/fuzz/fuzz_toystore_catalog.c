/* fuzz_toystore_catalog.c - a catalog file and a journal line read at start (toystore/catalog_*.c) */
#include <string.h>

#include "fuzz.h"
#include "toystore/toystore.h"

/*
 * The input is the file (the original's database.txt, or whatever a disk or an editor left).
 * A file that parses writes back as text that parses to the same toys; one that does not gets
 * an error naming the file. The same bytes are a line of the journal: one that parses writes
 * back as a line that parses to the same change.
 */
static void journal_line(const uint8_t *data, size_t size)
{
    struct catalog_change c, back;
    char err[512], line[400];

    err[0] = '\0';
    if (catalog_journal_parse_line((const char *)data, size, &c, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(c.kind == 'b' || c.kind == 'r' || c.kind == 'i');
    FUZZ_CHECK(c.kind == 'i' ||
               (ts_name_valid(c.name) && c.quantity >= 0 && c.quantity <= TS_QTY_MAX));
    int n = catalog_journal_format(&c, line, sizeof(line));
    FUZZ_CHECK(n > 0 && line[n - 1] == '\n');
    FUZZ_CHECK(catalog_journal_parse_line(line, (size_t)n - 1, &back, err, sizeof(err)) == 0);
    FUZZ_CHECK(back.kind == c.kind && back.quantity == c.quantity);
    FUZZ_CHECK(strcmp(back.name, c.name) == 0 && strcmp(back.request_id, c.request_id) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct catalog_toy *toys = NULL, *back = NULL;
    int n = 0, m = 0;
    char err[512];

    fuzz_init();
    journal_line(data, size);
    err[0] = '\0';
    if (catalog_file_parse((const char *)data, size, "fuzz.txt", &toys, &n, err, sizeof(err)) !=
        0) {
        FUZZ_CHECK(strncmp(err, "fuzz.txt", 8) == 0);
        FUZZ_CHECK(toys == NULL);
        return 0;
    }
    FUZZ_CHECK(n > 0);
    size_t len = 0;
    char *text = catalog_file_format(toys, n, &len);
    FUZZ_CHECK(strlen(text) == len);
    FUZZ_CHECK(catalog_file_parse(text, len, "fuzz.txt", &back, &m, err, sizeof(err)) == 0);
    FUZZ_CHECK(m == n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(ts_name_valid(toys[i].name));
        FUZZ_CHECK(strcmp(toys[i].name, back[i].name) == 0);
        FUZZ_CHECK(strcmp(toys[i].price_text, back[i].price_text) == 0);
        FUZZ_CHECK(toys[i].quantity == back[i].quantity);
        FUZZ_CHECK(toys[i].quantity >= 0 && toys[i].quantity <= TS_QTY_MAX);
        FUZZ_CHECK(toys[i].price >= 0);
    }
    free(text);
    free(toys);
    free(back);
    return 0;
}
