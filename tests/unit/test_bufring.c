/* test_bufring.c — unit tests for the provided-buffer ring's accounting: it starts
 * small, doubles when half its buffers are out, and gives back the pages of every
 * buffer once it has been idle. The kernel's part (picking buffers) is played by
 * the test with bufring_take and by writing into the buffers itself.
 *
 * Needs io_uring: where the kernel refuses it (old kernel, container policy) every
 * test is skipped, as the server itself would fall back to epoll there. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/bufring.h"
#include "lib/loop.h"
#include "lib/loop_uring.h"

#define COUNT 16
#define SIZE 4096
#define FIRST 2
#define GROUP 3

struct fixture {
    struct loop *loop;
    struct bufring b;
};

static int setup(void **state)
{
    static struct fixture f;

    memset(&f, 0, sizeof f);
    if (uring_available() < 0)
        return 0;
    f.loop = loop_new(LOOP_IO_URING);
    if (f.loop && bufring_init(&f.b, f.loop, GROUP, COUNT, SIZE, FIRST) < 0) {
        loop_free(f.loop);
        f.loop = NULL;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f && f->loop) {
        bufring_destroy(&f->b);
        loop_free(f->loop);
    }
    return 0;
}

static struct fixture *fixture_or_skip(void **state)
{
    struct fixture *f = *state;

    if (f == NULL || f->loop == NULL)
        skip();
    return f;
}

static void starts_with_first_buffers(void **state)
{
    struct fixture *f = fixture_or_skip(state);

    assert_int_equal(f->b.live, FIRST);
    assert_int_equal(f->b.out, 0);
    assert_false(bufring_empty(&f->b));
}

static void doubles_when_half_are_out_up_to_count(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    unsigned expect_live[COUNT] = { 0 };

    /* After the n-th take (n = out), live has doubled while out * 2 >= live. */
    for (unsigned out = 1, live = FIRST; out <= COUNT; out++) {
        while (live < COUNT && out * 2 >= live)
            live *= 2;
        expect_live[out - 1] = live;
    }
    for (unsigned i = 0; i < COUNT; i++) {
        bufring_take(&f->b);
        assert_int_equal(f->b.out, i + 1);
        assert_int_equal(f->b.live, expect_live[i]);
    }
    assert_true(bufring_empty(&f->b));
    for (unsigned bid = 0; bid < COUNT; bid++)
        bufring_put(&f->b, bid);
    assert_int_equal(f->b.out, 0);
    assert_int_equal(f->b.live, COUNT);     /* it never shrinks */
    assert_false(bufring_empty(&f->b));
}

static long stop_loop(struct loop *loop, void *data)
{
    (void)data;
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static int resident(const void *addr)
{
    unsigned char vec = 0;

    assert_int_equal(mincore((void *)addr, (size_t)sysconf(_SC_PAGESIZE), &vec), 0);
    return vec & 1;
}

static void gives_pages_back_after_a_second_idle(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    char *buf = bufring_addr(&f->b, 0);

    if (f->b.loop == NULL)
        skip();     /* no DEFER_TASKRUN on this kernel: the ring never trims */
    bufring_take(&f->b);
    memset(buf, 'x', SIZE);     /* what the kernel's copy of a receive does */
    assert_true(resident(buf));
    bufring_put(&f->b, 0);
    assert_true(f->b.trim_armed);

    loop_timer_add(f->loop, 300, stop_loop, NULL);
    assert_int_equal(loop_run(f->loop), 0);
    assert_true(resident(buf));         /* not idle long enough yet */

    loop_timer_add(f->loop, 1200, stop_loop, NULL);
    assert_int_equal(loop_run(f->loop), 0);
    assert_false(f->b.trim_armed);
    assert_false(resident(buf));
    assert_int_equal(buf[0], 0);        /* a fresh page when next used */
}

static void a_buffer_out_keeps_the_pages(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    char *buf = bufring_addr(&f->b, 1);

    if (f->b.loop == NULL)
        skip();
    bufring_take(&f->b);
    bufring_take(&f->b);
    memset(buf, 'y', SIZE);
    bufring_put(&f->b, 0);      /* one still out: no trim may start */
    assert_false(f->b.trim_armed);
    loop_timer_add(f->loop, 1200, stop_loop, NULL);
    assert_int_equal(loop_run(f->loop), 0);
    assert_true(resident(buf));
    assert_int_equal(buf[0], 'y');
    bufring_put(&f->b, 1);
    assert_true(f->b.trim_armed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(starts_with_first_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(doubles_when_half_are_out_up_to_count, setup, teardown),
        cmocka_unit_test_setup_teardown(gives_pages_back_after_a_second_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(a_buffer_out_keeps_the_pages, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
