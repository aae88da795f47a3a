/* test_loop.c — the event loop (lib/loop.h) on both backends: an object with two
 * watches that both fire in one batch may end itself, and free both, from the
 * first one's handler (a relay does, when either side fails): the second entry of
 * that batch is then dropped, not delivered to freed memory (ASan checks the
 * "not read" part in make unit-asan). And nothing of a batch is delivered past a
 * stop: what stopped the loop (the server's forced close of every connection)
 * may have freed the owners of the entries still to come. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/util.h"

struct pair {
    struct watch a, b;
    int pa[2], pb[2];
};

static int calls;
static struct pair *live;   /* the pair under test: both watches are its */

static void end_pair(struct loop *loop, struct watch *w, unsigned events)
{
    struct pair *p = live;

    (void)w;
    (void)events;
    calls++;
    loop_unwatch(loop, &p->a);
    loop_unwatch(loop, &p->b);
    close(p->pa[0]);
    close(p->pa[1]);
    close(p->pb[0]);
    close(p->pb[1]);
    free(p);
    live = NULL;
    loop_stop(loop);
}

static long give_up(struct loop *loop, void *data)
{
    (void)data;
    loop_stop(loop);
    return 0;
}

static void both_sides_end_in_one_batch(enum loop_io io)
{
    struct loop *loop = loop_new(io);
    struct pair *p;

    if (loop == NULL && io == LOOP_IO_URING) {
        skip();     /* no io_uring here: the epoll run covers the loop's part */
        return;
    }
    assert_non_null(loop);
    p = live = xcalloc(1, sizeof *p);
    assert_int_equal(pipe(p->pa), 0);
    assert_int_equal(pipe(p->pb), 0);
    assert_int_equal(write(p->pa[1], "x", 1), 1);
    assert_int_equal(write(p->pb[1], "y", 1), 1);
    watch_init(&p->a, p->pa[0], end_pair);
    watch_init(&p->b, p->pb[0], end_pair);
    assert_int_equal(loop_watch(loop, &p->a, LOOP_READ), 0);
    assert_int_equal(loop_watch(loop, &p->b, LOOP_READ), 0);
    loop_timer_add(loop, 2000, give_up, NULL);
    calls = 0;
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(calls, 1);
    loop_free(loop);
}

static void stop_now(struct loop *loop, struct watch *w, unsigned events)
{
    (void)w;
    (void)events;
    calls++;
    loop_stop(loop);
}

static void nothing_after_a_stop(enum loop_io io)
{
    struct loop *loop = loop_new(io);
    struct watch a, b;
    int pa[2], pb[2];

    if (loop == NULL && io == LOOP_IO_URING) {
        skip();
        return;
    }
    assert_non_null(loop);
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(pipe(pb), 0);
    assert_int_equal(write(pa[1], "x", 1), 1);
    assert_int_equal(write(pb[1], "y", 1), 1);
    watch_init(&a, pa[0], stop_now);
    watch_init(&b, pb[0], stop_now);
    assert_int_equal(loop_watch(loop, &a, LOOP_READ), 0);
    assert_int_equal(loop_watch(loop, &b, LOOP_READ), 0);
    loop_timer_add(loop, 2000, give_up, NULL);
    calls = 0;
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(calls, 1);     /* both were ready: the second was not run */
    loop_unwatch(loop, &a);
    loop_unwatch(loop, &b);
    loop_free(loop);
    for (int i = 0; i < 2; i++) {
        close(pa[i]);
        close(pb[i]);
    }
}

static void test_stop_epoll(void **state)
{
    (void)state;
    nothing_after_a_stop(LOOP_IO_EPOLL);
}

static void test_stop_uring(void **state)
{
    (void)state;
    nothing_after_a_stop(LOOP_IO_URING);
}

static void test_epoll(void **state)
{
    (void)state;
    both_sides_end_in_one_batch(LOOP_IO_EPOLL);
}

static void test_uring(void **state)
{
    (void)state;
    both_sides_end_in_one_batch(LOOP_IO_URING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoll),
        cmocka_unit_test(test_uring),
        cmocka_unit_test(test_stop_epoll),
        cmocka_unit_test(test_stop_uring),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
