/* test_queue_mem.c - unit tests of the queue interface on its in-process backend (queue_mem.c) */
#include "queue_contract.h"

#include "core/queue_backend.h"

static struct dst_queue *contract_restart(struct dst_queue *q)
{
    dst_queue_mem_restart(q);
    return q;
}

static int setup(void **state)
{
    struct dst_queue *q = NULL;

    assert_int_equal(dst_queue_open("mem:", &q), 0);
    assert_non_null(q);
    *state = q;
    return 0;
}

static int teardown(void **state)
{
    dst_queue_free(*state);
    return 0;
}

static void open_urls(void **state)
{
    struct dst_queue *q = (struct dst_queue *)0x1;
    char err[128];

    (void)state;
    assert_int_equal(dst_queue_url_check("mem:", err, sizeof(err)), 0);
    assert_int_equal(dst_queue_url_check("mem:", NULL, 0), 0);
    /* redis URLs pass here; their details are tested in test_queue_redis.c. */
    assert_int_equal(dst_queue_url_check("redis://127.0.0.1:6379/0", err, sizeof(err)), 0);
    assert_int_equal(dst_queue_url_check("kubemq://x", err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err,
                        "'kubemq://x' is not a queue URL (use mem: or redis://HOST[:PORT][/DB])");
    assert_int_equal(dst_queue_url_check("memory:", err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "'memory:' is not a queue URL (use mem: or redis://HOST[:PORT][/DB])");
    assert_int_equal(dst_queue_url_check("mem:x", err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "'mem:x': the in-process queue is just mem:");
    assert_int_equal(dst_queue_url_check("", err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "the queue URL is empty (use mem: or redis://HOST[:PORT][/DB])");
    assert_int_equal(dst_queue_url_check(NULL, NULL, 0), DST_EINVAL);
    assert_int_equal(dst_queue_url_check("mem:x", NULL, 0), DST_EINVAL);

    assert_int_equal(dst_queue_open("redis://", &q), DST_EINVAL);
    assert_ptr_equal(q, (struct dst_queue *)0x1); /* untouched on failure */
    assert_int_equal(dst_queue_open("nats://x", &q), DST_EINVAL);
    assert_ptr_equal(q, (struct dst_queue *)0x1);
    dst_queue_free(NULL);
}

static void log_trimmed_pending_kept(void **state)
{
    struct dst_queue *q = *state;
    struct dst_queue_msg m, held;
    const int extra = 5, max = 10000;

    assert_int_equal(dst_queue_consume(q, TOPIC, "slow", "s", 0, 0, &m), DST_ETIMEDOUT);
    assert_int_equal(dst_queue_consume(q, TOPIC, "holder", "h", 0, 0, &m), DST_ETIMEDOUT);
    publish_i(q, TOPIC, 0, NULL);
    /* holder takes message 0 and never acks it. */
    assert_int_equal(dst_queue_consume(q, TOPIC, "holder", "h", 0, 10, &held), 0);
    assert_int_equal(body_i(&held), 0);
    int64_t held_at = dst_monotonic_ms();
    for (int i = 1; i < max + extra; i++)
        publish_i(q, TOPIC, i, NULL);
    /* slow never read: it resumes at the oldest kept message, and sees exactly max. */
    int count = 0, expect = extra;
    while (dst_queue_consume(q, TOPIC, "slow", "s", 0, 0, &m) == 0) {
        assert_int_equal(body_i(&m), expect++);
        assert_int_equal(dst_queue_ack(q, TOPIC, "slow", m.id), 0);
        dst_queue_msg_release(&m);
        count++;
    }
    assert_int_equal(count, max);
    /* The trimmed message 0 is still pending in holder, with its body. */
    spin_until(held_at + 20);
    assert_int_equal(dst_queue_consume(q, TOPIC, "holder", "h2", 5000, 10, &m), 0);
    assert_string_equal(m.id, held.id);
    assert_int_equal(body_i(&m), 0);
    assert_int_equal(m.deliveries, 2);
    assert_int_equal(dst_queue_ack(q, TOPIC, "holder", m.id), 0);
    dst_queue_msg_release(&m);
    dst_queue_msg_release(&held);
    /* holder then goes on with message 5 (1..4 were trimmed before it read them). */
    assert_int_equal(dst_queue_consume(q, TOPIC, "holder", "h", 0, 0, &m), 0);
    assert_int_equal(body_i(&m), extra);
    dst_queue_msg_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_urls),
        QUEUE_CONTRACT_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(log_trimmed_pending_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
