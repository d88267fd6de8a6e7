/* feed.c - the API's events from the store's change feed: the same on every replica, once each */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/sse.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

/*
 * Every store change reaches the API through the feed alone, also a change made through this
 * API: the one path gives each event once, on every replica alike, in the store's order (a
 * result stored here is not published at ingest and again when the feed reports it).
 */

/* Publishes j (taken) as event. */
static void publish_take(struct api *a, const char *event, json_t *j)
{
    char *text = dst_json_dumps(j, NULL);
    dst_sse_hub_publish(a->hub, event, text);
    free(text);
    json_decref(j);
}

/* "excluded": the result as it is now (gone meanwhile: nothing to show). */
static void excluded(struct api *a, const char *id)
{
    struct dst_result r;

    dst_result_init(&r);
    if (dst_store_get(a->store, id, &r) == 0)
        publish_take(a, "excluded", dst_result_to_json(&r));
    dst_result_release(&r);
}

static void on_change(const struct dst_store_change *c, void *ud)
{
    struct api *a = ud;
    json_t *j = NULL;

    switch (c->kind) {
    case DST_STORE_CH_RESULT:
        publish_take(a, "result", dst_result_to_json(c->result));
        break;
    case DST_STORE_CH_DELETED:
        j = json_pack("{s:I}", "count", (json_int_t)c->count);
        if (c->id)
            json_object_set_new(j, "ids", json_pack("[s]", c->id));
        publish_take(a, "deleted", j);
        break;
    case DST_STORE_CH_EXCLUDED:
        excluded(a, c->id);
        break;
    case DST_STORE_CH_SETTING:
        if (strcmp(c->id, "schedules") == 0)
            api_schedules_changed(a);
        break;
    case DST_STORE_CH_RESYNC: /* events were missed: dashboards reload everything */
        publish_take(a, "resync", json_object());
        api_schedules_changed(a);
        break;
    }
}

int api_feed_start(struct api *a)
{
    int rc = dst_store_feed_start(a->store, on_change, a);
    if (rc)
        dst_error("api: cannot follow the store's changes: %s", dst_strerror(rc));
    return rc;
}

void api_feed_stop(struct api *a)
{
    dst_store_feed_stop(a->store);
}
