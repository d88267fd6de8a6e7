/* queue_contract.h - the queue semantics every backend keeps: cmocka cases shared by the
 * tests of queue_mem.c and queue_redis.c. The includer runs QUEUE_CONTRACT_TESTS with a setup
 * that opens an empty queue into *state, and defines contract_restart(). */
#ifndef QUEUE_CONTRACT_H
#define QUEUE_CONTRACT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/queue.h"
#include "sys_test.h"

#define TOPIC "speedtest.requests"

/*
 * Defined by the includer: the queue as a process restarted with the queue's contents kept
 * would open it (redis: a new handle on the same server; mem: dst_queue_mem_restart). May free
 * q and return another handle.
 */
static struct dst_queue *contract_restart(struct dst_queue *q);

static void publish_i(struct dst_queue *q, const char *topic, int i, char id[DST_QUEUE_ID_LEN])
{
    json_t *body = json_pack("{si}", "i", i);
    assert_int_equal(dst_queue_publish(q, topic, body, id), 0);
    json_decref(body);
}

static int body_i(const struct dst_queue_msg *m)
{
    assert_non_null(m->body);
    return (int)json_integer_value(json_object_get(m->body, "i"));
}

/* Splits "<ms>-<n>"; fails the test on any other form. */
static void split_id(const char *id, uint64_t *ms, uint64_t *n)
{
    char tail = 0;
    assert_int_equal(sscanf(id, "%" SCNu64 "-%" SCNu64 "%c", ms, n, &tail), 2);
}

/* Lets time pass (the condition is the clock itself). */
static void spin_until(int64_t mono_ms)
{
    while (dst_monotonic_ms() < mono_ms)
        sched_yield();
}

static void ping(void **state)
{
    assert_int_equal(dst_queue_ping(*state), 0);
}

static void bad_arguments(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    json_t *body = json_object();
    int n = -1;

    assert_int_equal(dst_queue_publish(q, "", body, NULL), DST_EINVAL);
    assert_int_equal(dst_queue_publish(q, NULL, body, NULL), DST_EINVAL);
    assert_int_equal(dst_queue_publish(q, TOPIC, NULL, NULL), DST_EINVAL);
    /* A message is a JSON object. */
    json_t *arr = json_array();
    assert_int_equal(dst_queue_publish(q, TOPIC, arr, NULL), DST_EINVAL);
    json_decref(arr);
    assert_int_equal(dst_queue_consume(q, TOPIC, "", "c", 0, 0, &m), DST_EINVAL);
    assert_null(m.body);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", NULL, 0, 0, &m), DST_EINVAL);
    assert_int_equal(dst_queue_consume(q, "", "g", "c", 0, 0, &m), DST_EINVAL);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", ""), DST_EINVAL);
    assert_int_equal(dst_queue_consumers(q, "", 1000, &n), DST_EINVAL);
    json_decref(body);
    dst_queue_msg_release(&m);
    dst_queue_msg_release(NULL);
}

static void ids_increase(void **state)
{
    struct dst_queue *q = *state;
    char id[DST_QUEUE_ID_LEN];
    uint64_t pms = 0, pn = 0, ms, n;
    int64_t before = dst_datetime_now_ms();

    for (int i = 0; i < 500; i++) {
        publish_i(q, TOPIC, i, id);
        split_id(id, &ms, &n);
        if (i == 0)
            assert_in_range(ms, (uint64_t)before, (uint64_t)dst_datetime_now_ms());
        else
            assert_true(ms > pms || (ms == pms && n == pn + 1));
        pms = ms;
        pn = n;
    }
    publish_i(q, TOPIC, 0, NULL); /* id_out may be NULL */
}

static void group_starts_at_end(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    char id[DST_QUEUE_ID_LEN];

    publish_i(q, TOPIC, 1, NULL); /* before the group exists: never seen by it */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    assert_null(m.body);
    publish_i(q, TOPIC, 2, id);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), 0);
    assert_string_equal(m.id, id);
    assert_int_equal(body_i(&m), 2);
    assert_int_equal(m.deliveries, 1);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), 0);
    dst_queue_msg_release(&m);
    assert_null(m.body);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
}

static void groups_fan_out_consumers_share(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    int seen_a[4] = {0}, seen_b = 0;

    /* Create the groups first. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "a", "a1", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "b", "b1", 0, 0, &m), DST_ETIMEDOUT);
    for (int i = 0; i < 4; i++)
        publish_i(q, TOPIC, i, NULL);
    /* Group a: two consumers split the four messages. */
    for (int k = 0; k < 4; k++) {
        assert_int_equal(dst_queue_consume(q, TOPIC, "a", k % 2 ? "a2" : "a1", 0, 0, &m), 0);
        seen_a[body_i(&m)]++;
        assert_int_equal(dst_queue_ack(q, TOPIC, "a", m.id), 0);
        dst_queue_msg_release(&m);
    }
    assert_int_equal(dst_queue_consume(q, TOPIC, "a", "a2", 0, 0, &m), DST_ETIMEDOUT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen_a[i], 1);
    /* Group b still reads all four, in order. */
    for (int k = 0; k < 4; k++) {
        assert_int_equal(dst_queue_consume(q, TOPIC, "b", "b1", 0, 0, &m), 0);
        assert_int_equal(body_i(&m), seen_b++);
        dst_queue_msg_release(&m);
    }
    /* Another topic is another log. */
    assert_int_equal(dst_queue_consume(q, "other", "b", "b1", 0, 0, &m), DST_ETIMEDOUT);
}

static void bodies_are_copies(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m1, m2;
    json_t *body = json_pack("{ss}", "target", "dummy:");

    assert_int_equal(dst_queue_consume(q, TOPIC, "g1", "c", 0, 0, &m1), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g2", "c", 0, 0, &m2), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_publish(q, TOPIC, body, NULL), 0);
    json_object_set_new(body, "target", json_string("changed"));
    assert_int_equal(dst_queue_consume(q, TOPIC, "g1", "c", 0, 0, &m1), 0);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g2", "c", 0, 0, &m2), 0);
    assert_ptr_not_equal(m1.body, body);
    assert_ptr_not_equal(m1.body, m2.body);
    assert_string_equal(json_string_value(json_object_get(m1.body, "target")), "dummy:");
    /* A consumer may change its copy without touching the other's. */
    json_object_set_new(m1.body, "target", json_string("mine"));
    assert_string_equal(json_string_value(json_object_get(m2.body, "target")), "dummy:");
    assert_int_equal(json_object_get(m1.body, "target")->refcount, 1);
    dst_queue_msg_release(&m1);
    dst_queue_msg_release(&m2);
    json_decref(body);
}

static void pending_redelivered_after_claim(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m, again, next;
    char id2[DST_QUEUE_ID_LEN];

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c1", 0, 200, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 1, NULL);
    int64_t before = dst_monotonic_ms(); /* the delivery is after this */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c1", 0, 200, &m), 0);
    publish_i(q, TOPIC, 2, id2);
    /* Not idle long enough (a claim time of a minute: however busy the machine): c2 gets the
       new message, not the pending one. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c2", 0, 60000, &next), 0);
    assert_string_equal(next.id, id2);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", next.id), 0);
    dst_queue_msg_release(&next);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c2", 0, 60000, &again), DST_ETIMEDOUT);
    /* Blocking: woken when the pending message's idle time passes the claim time (200 ms),
       long before the block's own end. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c2", 2 * ST_WAIT_MS, 200, &again), 0);
    assert_true(dst_monotonic_ms() - before >= 200);
    assert_true(dst_monotonic_ms() - before < ST_WAIT_MS);
    assert_string_equal(again.id, m.id);
    assert_int_equal(again.deliveries, 2);
    assert_int_equal(body_i(&again), 1);
    /* Acked once, by anyone: gone. A second ack finds nothing. */
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), 0);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), DST_ENOTFOUND);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c2", 300, 1, &next), DST_ETIMEDOUT);
    dst_queue_msg_release(&m);
    dst_queue_msg_release(&again);
}

static void redelivery_comes_first(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m, r;

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 1, NULL);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 20, &m), 0);
    publish_i(q, TOPIC, 2, NULL);
    int64_t due = dst_monotonic_ms() + 25;
    spin_until(due); /* message 1 becomes claimable */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 20, &r), 0);
    assert_int_equal(body_i(&r), 1);
    assert_int_equal(r.deliveries, 2);
    dst_queue_msg_release(&r);
    /* then the new one (a long claim time: 1 is not claimable again however slow this is) */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 60000, &r), 0);
    assert_int_equal(body_i(&r), 2);
    assert_int_equal(r.deliveries, 1);
    dst_queue_msg_release(&r);
    dst_queue_msg_release(&m);
}

static void own_pending_first_after_restart(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m, other, r;
    char id1[DST_QUEUE_ID_LEN];

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 1, id1);
    publish_i(q, TOPIC, 2, NULL);
    /* c takes message 1 and "crashes" before the ack; another consumer takes and acks 2. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 60000, &m), 0);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "other", 0, 60000, &other), 0);
    assert_int_equal(body_i(&other), 2);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", other.id), 0);
    dst_queue_msg_release(&other);
    publish_i(q, TOPIC, 3, NULL);
    q = *state = contract_restart(q);
    /* Restarted, c gets its own message back first: no waiting for the claim time. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 60000, &r), 0);
    assert_string_equal(r.id, id1);
    assert_int_equal(body_i(&r), 1);
    assert_true(r.deliveries >= 2);
    /* Not to anyone else, */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "other", 0, 60000, &other), 0);
    assert_int_equal(body_i(&other), 3);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", other.id), 0);
    dst_queue_msg_release(&other);
    /* and once: unacked, it waits for the claim time like any other pending message. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 60000, &other), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", r.id), 0);
    dst_queue_msg_release(&r);
    dst_queue_msg_release(&m);
}

static void default_claim_is_long(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m, r;

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 1, NULL);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), 0);
    /* claim_ms <= 0 is 60 s: not redelivered within 150 ms. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 150, -1, &r), DST_ETIMEDOUT);
    dst_queue_msg_release(&m);
}

static void ack_unknown(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;

    assert_int_equal(dst_queue_ack(q, "nope", "g", "1-0"), DST_ENOTFOUND);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_ack(q, TOPIC, "nope", "1-0"), DST_ENOTFOUND);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", "1-0"), DST_ENOTFOUND);
    /* Pending in one group is not pending in another. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "h", "c", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 1, NULL);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 0, 0, &m), 0);
    assert_int_equal(dst_queue_ack(q, TOPIC, "h", m.id), DST_ENOTFOUND);
    assert_int_equal(dst_queue_ack(q, TOPIC, "g", m.id), 0);
    dst_queue_msg_release(&m);
}

/* A group that joined before its first consume gets what was published in between; one that
   did not starts after it. Joining twice changes nothing. */
static void join_before_first_consume(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;

    assert_int_equal(dst_queue_join(q, TOPIC, "early"), 0);
    assert_int_equal(dst_queue_join(q, TOPIC, "early"), 0);
    assert_int_equal(dst_queue_join(q, TOPIC, ""), DST_EINVAL);
    publish_i(q, TOPIC, 7, NULL);
    assert_int_equal(dst_queue_consume(q, TOPIC, "late", "c", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "early", "c", ST_WAIT_MS, 0, &m), 0);
    assert_int_equal(body_i(&m), 7);
    assert_int_equal(dst_queue_ack(q, TOPIC, "early", m.id), 0);
    dst_queue_msg_release(&m);
}

static void consume_times_out(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    int64_t t0 = dst_monotonic_ms();

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c", 150, 0, &m), DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 150);
    assert_true(took < ST_WAIT_MS);
    assert_null(m.body);
}

struct waiter {
    struct dst_queue *q;
    int rc;
    int i;
    int64_t took_ms;
};

static void *wait_one(void *arg)
{
    struct waiter *w = arg;
    struct dst_queue_msg m;
    int64_t t0 = dst_monotonic_ms();

    w->rc = dst_queue_consume(w->q, TOPIC, "g", "sleeper", 2 * ST_WAIT_MS, 0, &m);
    w->took_ms = dst_monotonic_ms() - t0;
    if (w->rc == 0)
        w->i = (int)json_integer_value(json_object_get(m.body, "i"));
    dst_queue_msg_release(&m);
    return NULL;
}

/* Waits until n consumers of TOPIC are active, with a deadline. */
static void wait_consumers(struct dst_queue *q, int want)
{
    int64_t deadline = dst_monotonic_ms() + ST_WAIT_MS;
    int n = -1;

    while (dst_monotonic_ms() < deadline) {
        assert_int_equal(dst_queue_consumers(q, TOPIC, 0, &n), 0);
        if (n == want)
            return;
        sched_yield();
    }
    fail_msg("%d consumers, wanted %d", n, want);
}

static void publish_wakes_consumer(void **state)
{
    struct waiter w = {.q = *state, .rc = 99};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, wait_one, &w), 0);
    wait_consumers(w.q, 1); /* the waiter is blocked in consume (and its group exists) */
    publish_i(w.q, TOPIC, 7, NULL);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.i, 7);
    assert_true(w.took_ms < ST_WAIT_MS); /* woken by the message, not the block's end */
}

static void consumers_window(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    int n = -1;

    assert_int_equal(dst_queue_consumers(q, TOPIC, 60000, &n), 0);
    assert_int_equal(n, 0); /* unknown topic */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g1", "c1", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g1", "c2", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g2", "c1", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "g2", "c1", 0, 0, &m), DST_ETIMEDOUT);
    int64_t last = dst_monotonic_ms();
    assert_int_equal(dst_queue_consumers(q, TOPIC, 60000, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(dst_queue_consumers(q, "other", 60000, &n), 0);
    assert_int_equal(n, 0);
    spin_until(last + 30); /* the consumers go idle */
    assert_int_equal(dst_queue_consumers(q, TOPIC, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dst_queue_consumers(q, TOPIC, 60000, &n), 0);
    assert_int_equal(n, 3);
}

#define PRODUCERS    3
#define CONSUMERS    3
#define PER_PRODUCER 400

struct worker {
    struct dst_queue *q;
    int index;
    int got;
};

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char seen[PRODUCERS * PER_PRODUCER];
static int seen_total;

static void *produce(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_PRODUCER; i++)
        publish_i(w->q, TOPIC, w->index * PER_PRODUCER + i, NULL);
    return NULL;
}

/* Consumes until every message was seen by someone, or a deadline passes. */
static void *consume_all(void *arg)
{
    struct worker *w = arg;
    struct dst_queue_msg m;
    char name[16];
    int64_t deadline = dst_monotonic_ms() + 20000;
    bool done = false;

    snprintf(name, sizeof(name), "c%d", w->index);
    while (!done && dst_monotonic_ms() < deadline) {
        if (dst_queue_consume(w->q, TOPIC, "g", name, 50, 0, &m) == 0) {
            int i = (int)json_integer_value(json_object_get(m.body, "i"));
            pthread_mutex_lock(&seen_lock);
            seen[i]++;
            seen_total++;
            pthread_mutex_unlock(&seen_lock);
            w->got++;
            dst_queue_ack(w->q, TOPIC, "g", m.id);
            dst_queue_msg_release(&m);
        }
        pthread_mutex_lock(&seen_lock);
        done = seen_total >= PRODUCERS * PER_PRODUCER;
        pthread_mutex_unlock(&seen_lock);
    }
    return NULL;
}

static void concurrent_exactly_once(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m;
    struct worker p[PRODUCERS], c[CONSUMERS];
    pthread_t pt[PRODUCERS], ct[CONSUMERS];

    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c0", 0, 0, &m), DST_ETIMEDOUT);
    for (int i = 0; i < CONSUMERS; i++) {
        c[i] = (struct worker){.q = q, .index = i};
        assert_int_equal(pthread_create(&ct[i], NULL, consume_all, &c[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct worker){.q = q, .index = i};
        assert_int_equal(pthread_create(&pt[i], NULL, produce, &p[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    int total = 0;
    for (int i = 0; i < CONSUMERS; i++)
        total += c[i].got;
    assert_int_equal(total, PRODUCERS * PER_PRODUCER);
    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        assert_int_equal(seen[i], 1);
    /* Nothing is left, nothing is pending. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "g", "c0", 0, 1, &m), DST_ETIMEDOUT);
}

#define QUEUE_CONTRACT_TESTS(setup, teardown)                                              \
    cmocka_unit_test_setup_teardown(ping, setup, teardown),                                \
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(ids_increase, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(group_starts_at_end, setup, teardown),             \
        cmocka_unit_test_setup_teardown(groups_fan_out_consumers_share, setup, teardown),  \
        cmocka_unit_test_setup_teardown(bodies_are_copies, setup, teardown),               \
        cmocka_unit_test_setup_teardown(pending_redelivered_after_claim, setup, teardown), \
        cmocka_unit_test_setup_teardown(redelivery_comes_first, setup, teardown),          \
        cmocka_unit_test_setup_teardown(own_pending_first_after_restart, setup, teardown), \
        cmocka_unit_test_setup_teardown(default_claim_is_long, setup, teardown),           \
        cmocka_unit_test_setup_teardown(ack_unknown, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(join_before_first_consume, setup, teardown),       \
        cmocka_unit_test_setup_teardown(consume_times_out, setup, teardown),               \
        cmocka_unit_test_setup_teardown(publish_wakes_consumer, setup, teardown),          \
        cmocka_unit_test_setup_teardown(consumers_window, setup, teardown),                \
        cmocka_unit_test_setup_teardown(concurrent_exactly_once, setup, teardown)

#endif
