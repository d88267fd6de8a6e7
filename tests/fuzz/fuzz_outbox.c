/* fuzz_outbox.c - an outbox file read back before it is sent again (speedtest/probe/outbox.c) */
#include <string.h>

#include "core/json.h"
#include "core/result.h"
#include "core/uuid.h"
#include "fuzz.h"
#include "speedtest/probe/outbox.h"

/*
 * The input is a file name, a newline, and the file's bytes (a probe's outbox holds what it
 * wrote, but a disk, an editor or another program may have changed it). A file read back is a
 * valid result named after its id, and what the outbox would write for it reads back the same.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_result r, back;
    char err[1024];
    const uint8_t *nl = memchr(data, '\n', size);

    if (!nl)
        return 0;
    fuzz_init();
    char *name = fuzz_cstr(data, (size_t)(nl - data));
    const char *text = (const char *)nl + 1;
    size_t len = size - (size_t)(nl - data) - 1;
    dst_result_init(&r);
    dst_result_init(&back);
    if (probe_outbox_read(name, text, len, &r, err, sizeof(err)) == 0) {
        FUZZ_CHECK(dst_result_validate(&r, err, sizeof(err)) == 0);
        FUZZ_CHECK(strncmp(name, r.id, DST_UUID_LEN) == 0);
        json_t *j = dst_result_to_json(&r);
        size_t n = 0;
        char *again = dst_json_dumps(j, &n);
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(probe_outbox_read(name, again, n, &back, err, sizeof(err)) == 0);
        free(again);
        json_decref(j);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    dst_result_release(&back);
    dst_result_release(&r);
    free(name);
    return 0;
}
