/* fuzz_redis_entry.c - what the redis queue takes from Redis's replies (core/queue_redis.c) */
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/err.h"
#include "core/queue_redis_priv.h"
#include "fuzz.h"

#define MAX_REPLIES 8

/* A stream entry as a message: an object body, or a reason and the id to ack it by. */
static void take(const redisReply *e)
{
    char id[DST_QUEUE_ID_LEN] = "", why[200] = "";
    json_t *body = NULL;
    int rc = rq_entry_parse(e, id, &body, why, sizeof(why));

    FUZZ_CHECK(rc == 0 || rc == DST_EINVAL || rc == DST_EDEP);
    FUZZ_CHECK(rc != 0 || (json_is_object(body) && strlen(id) < DST_QUEUE_ID_LEN));
    FUZZ_CHECK(rc != DST_EINVAL || (why[0] && !body));
    json_decref(body);
}

/*
 * Whether the input declares an array of a million elements or more. hiredis 0.14 (Debian 12)
 * has no cap on an array's length (1.0's maxelements): it allocates what Redis, a trusted
 * peer, declares. Such inputs only exercise that allocation, so they are left out.
 */
static bool huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        size_t digits = 0;
        while (data[i] == '*' && i + 1 + digits < size && data[i + 1 + digits] >= '0' &&
               data[i + 1 + digits] <= '9')
            digits++;
        if (digits >= 7)
            return true;
    }
    return false;
}

/*
 * The input is what Redis sends (RESP), read by hiredis's reader as the connection does:
 * each reply is taken as an XREADGROUP reply, as an XAUTOCLAIM reply and as an entry.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;

    if (huge_array(data, size)) {
        redisReaderFree(rd);
        return 0;
    }
    fuzz_init();
    FUZZ_CHECK(rd != NULL);
    redisReaderFeed(rd, (const char *)data, size);
    for (int i = 0; i < MAX_REPLIES && redisReaderGetReply(rd, &rep) == REDIS_OK && rep; i++) {
        const redisReply *e = NULL;
        char cursor[DST_QUEUE_ID_LEN] = "";
        if (rq_xread_entry(rep, &e) == 0 && e)
            take(e);
        if (rq_claim_entry(rep, cursor, &e) == 0 && e)
            take(e);
        take(rep);
        freeReplyObject(rep);
        rep = NULL;
    }
    redisReaderFree(rd);
    return 0;
}
