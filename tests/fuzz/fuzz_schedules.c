/* fuzz_schedules.c - PUT /api/v1/schedules bodies, and the scheduler following the document */
#include <string.h>

#include "core/json.h"
#include "fuzz.h"
#include "speedtest/api/api_priv.h"
#include "speedtest/scheduler/schedule.h"

/*
 * A body as the API takes it: refused with a message naming the field, or a document that the
 * API shows (GET, with next runs) and that a scheduler following the API takes up whole: every
 * schedule of a document the API accepted is one the scheduler can run.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sched_opts so = {0};
    json_t *doc = NULL, *cur = json_pack("{s:b, s:[]}", "paused", 0, "schedules");
    char err[512] = "";

    fuzz_init();
    json_t *body = dst_json_parse((const char *)data, size, err, sizeof(err));
    if (body && api_schedules_check(body, cur, &doc, err, sizeof(err)) == 0) {
        json_t *view = api_schedules_view(doc);
        char *text = dst_json_dumps(view, NULL);
        FUZZ_CHECK(text != NULL);
        struct sched *s = sched_new(&so);
        sched_follow_doc(s, doc);
        size_t enabled = 0, i;
        json_t *item;
        json_array_foreach(json_object_get(doc, "schedules"), i, item)
        {
            enabled += !json_is_false(json_object_get(item, "enabled"));
        }
        FUZZ_CHECK((size_t)sched_count(s) == enabled);
        sched_free(s);
        free(text);
        json_decref(view);
        json_decref(doc);
    } else if (body) {
        FUZZ_CHECK(err[0] != '\0');
    }
    json_decref(body);
    json_decref(cur);
    return 0;
}
