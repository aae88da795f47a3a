/* test_timeheap.c — many timeouts of different lengths on one loop timer
 * (lib/timeheap.h): entries expire in order of their times, moving and removing
 * work, and an expiring entry may set itself again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/list.h"
#include "lib/timeheap.h"
#include "lib/util.h"

struct item {
    struct theap_entry e;
    int id;
    int again;
};

static int order[64], norder;
static struct loop *loop;

static void expired(struct theap *h, struct theap_entry *e)
{
    struct item *it = container_of(e, struct item, e);

    order[norder++] = it->id;
    if (it->again-- > 0)
        assert_int_equal(theap_set(h, e, now_us() + 1000), 0);
    if (norder >= 11)
        loop_stop(loop);
}

static void test_order(void **state)
{
    struct theap h;
    struct item items[10];
    int64_t now = now_us();
    static const int delays[10] = { 30, 5, 20, 1, 40, 25, 15, 10, 35, 2 };

    (void)state;
    loop = loop_new(LOOP_IO_EPOLL);
    assert_non_null(loop);
    theap_init(&h, loop, expired);
    for (int i = 0; i < 10; i++) {
        theap_entry_init(&items[i].e);
        items[i].id = delays[i];
        items[i].again = 0;
        assert_int_equal(theap_set(&h, &items[i].e, now + delays[i] * 1000), 0);
    }
    theap_del(&h, &items[4].e);             /* 40: never */
    assert_false(theap_on(&items[4].e));
    theap_set(&h, &items[0].e, now + 3000); /* 30 moves to 3 */
    items[0].id = 3;
    items[3].again = 2;                     /* 1 comes back twice more */
    norder = 0;
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(norder, 11);
    assert_int_equal(order[0], 1);
    for (int i = 1; i < 11; i++)
        if (order[i] != 1)
            assert_true(order[i] >= order[i - 1] || order[i - 1] == 1);
    theap_destroy(&h);
    loop_free(loop);
}

/* Each entry expires once the clock has reached its time, never before (a clock
 * cut to the ms ran them up to 1 ms early), and not a ms late either. */
static int64_t late_max;
static int early;

static void expired_on_time(struct theap *h, struct theap_entry *e)
{
    int64_t late = now_us() - e->at;

    (void)h;
    if (late < 0)
        early++;
    if (late > late_max)
        late_max = late;
    if (--norder == 0)
        loop_stop(loop);
}

static void run_on_time(enum loop_io io)
{
    struct theap h;
    struct theap_entry e[20];

    loop = loop_new(io);
    if (loop == NULL)
        return;             /* no io_uring here: epoll's run is the test */
    theap_init(&h, loop, expired_on_time);
    early = 0;
    late_max = 0;
    norder = 20;
    for (int i = 0; i < 20; i++) {
        theap_entry_init(&e[i]);
        /* At odd µs, so that a clock cut to the ms would be early for most. */
        assert_int_equal(theap_set(&h, &e[i], now_us() + 1300 + i * 737), 0);
    }
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(early, 0);
    /* Only a bound against a lost wake-up: how late a wake-up is depends on the
     * machine's load (tests/integration/test_faults.py checks latency's). */
    assert_true(late_max < 200000);
    theap_destroy(&h);
    loop_free(loop);
}

static void test_never_early(void **state)
{
    (void)state;
    run_on_time(LOOP_IO_EPOLL);
    run_on_time(LOOP_IO_URING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_never_early),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
