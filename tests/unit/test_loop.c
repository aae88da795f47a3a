/* test_loop.c — the event loop (lib/loop.h) on both backends: an object with two
 * watches that both fire in one batch may end itself, and free both, from the
 * first one's handler (a relay does, when either side fails): the second entry of
 * that batch is then dropped, not delivered to freed memory (ASan checks the
 * "not read" part in make unit-asan). */
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
