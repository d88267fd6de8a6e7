/* fuzz_toystore_order.c - an order log line read at start, a buy's body, a batch's (toystore/) */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "toystore/toystore.h"

/*
 * The input is one line of the order log (what a crash, a disk or an editor left) and, the
 * same bytes, a POST /orders body and a catalog's POST /buys body. A line that parses writes
 * back as the same order; a body that parses holds quantities and names in range.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct order_rec r, back;
    struct ts_buy b;
    char err[512], line[400];

    fuzz_init();
    if (order_log_parse_line((const char *)data, size, &r, err, sizeof(err)) == 0) {
        int n = order_log_format(&r, line, sizeof(line));
        FUZZ_CHECK(n > 0 && line[n - 1] == '\n');
        FUZZ_CHECK(order_log_parse_line(line, (size_t)n - 1, &back, err, sizeof(err)) == 0);
        FUZZ_CHECK(back.number == r.number && back.quantity == r.quantity);
        FUZZ_CHECK(strcmp(back.name, r.name) == 0);
        FUZZ_CHECK(strcmp(back.request_id, r.request_id) == 0);
    }
    for (int want = 0; want < 2; want++) {
        err[0] = '\0';
        if (ts_buy_parse((const char *)data, size, want, want, &b, err, sizeof(err)) != 0) {
            FUZZ_CHECK(err[0] != '\0');
            continue;
        }
        FUZZ_CHECK(b.quantity >= 1 && b.quantity <= TS_QTY_MAX);
        FUZZ_CHECK(strlen(b.name) <= TS_NAME_MAX);
        FUZZ_CHECK(!want || b.name[0] != '\0');
        FUZZ_CHECK(!want || ts_reqid_valid(b.request_id));
        FUZZ_CHECK(b.unknown || !want || ts_name_valid(b.name));
    }
    struct ts_buy *list = NULL;
    int n = -1;
    err[0] = '\0';
    if (ts_buys_parse((const char *)data, size, &list, &n, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0' && list == NULL);
        return 0;
    }
    FUZZ_CHECK(n >= 1 && n <= TS_BATCH_MAX);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(list[i].quantity >= 1 && list[i].quantity <= TS_QTY_MAX);
        FUZZ_CHECK(list[i].name[0] != '\0' && strlen(list[i].name) <= TS_NAME_MAX);
        FUZZ_CHECK(list[i].unknown || ts_name_valid(list[i].name));
        FUZZ_CHECK(!list[i].request_id[0] || ts_reqid_valid(list[i].request_id));
    }
    free(list);
    return 0;
}
