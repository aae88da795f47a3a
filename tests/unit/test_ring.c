/* test_ring.c — unit tests for the bounded byte ring.
 *
 * Build: cc -std=c17 -Wall -Wextra -Werror -Isrc tests/unit/test_ring.c \
 *            src/addr.c src/util.c src/ring.c -lcmocka -o build/test_ring
 *
 * Where the ring puts its head after it empties is the implementation's choice, so
 * the iovec checks derive the expected segments from r->head and r->len, which the
 * header makes public; the model test checks contents only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/ring.h"

/* ------------------------------------------------------------------------- */
/* helpers                                                                   */

/* Check the invariants of both iovec views against the ring's public fields. */
static void check_views(const struct ring *r)
{
    struct iovec iov[2];
    size_t cap = r->cap;

    assert_true(r->len <= cap);
    assert_true(cap == 0 || r->head < cap);

    /* held bytes: from head, len bytes, wrapping at cap */
    size_t first = r->len;
    if (r->head + first > cap)
        first = cap - r->head;
    int want = r->len == 0 ? 0 : (first == r->len ? 1 : 2);
    memset(iov, 0xee, sizeof(iov));
    int n = ring_data_iov(r, iov);
    assert_int_equal(n, want);
    if (n >= 1) {
        assert_ptr_equal(iov[0].iov_base, r->data + r->head);
        assert_int_equal(iov[0].iov_len, first);
    }
    if (n == 2) {
        assert_ptr_equal(iov[1].iov_base, r->data);
        assert_int_equal(iov[1].iov_len, r->len - first);
    }

    /* free space: from tail, cap - len bytes, wrapping at cap */
    size_t space = cap - r->len;
    size_t tail = cap ? (r->head + r->len) % cap : 0;
    first = space;
    if (tail + first > cap)
        first = cap - tail;
    want = space == 0 ? 0 : (first == space ? 1 : 2);
    memset(iov, 0xee, sizeof(iov));
    n = ring_space_iov(r, iov);
    assert_int_equal(n, want);
    if (n >= 1) {
        assert_ptr_equal(iov[0].iov_base, r->data + tail);
        assert_int_equal(iov[0].iov_len, first);
    }
    if (n == 2) {
        assert_ptr_equal(iov[1].iov_base, r->data);
        assert_int_equal(iov[1].iov_len, space - first);
    }

    assert_int_equal(ring_used(r), r->len);
    assert_int_equal(ring_space(r), space);
    assert_int_equal(ring_empty(r), r->len == 0);
    assert_int_equal(ring_full(r), r->len == cap);
}

/* Fill the free space through the iovecs with bytes counting up from *next. */
static void produce_seq(struct ring *r, size_t n, unsigned char *next)
{
    struct iovec iov[2];
    int k = ring_space_iov(r, iov);
    size_t left = n;

    for (int i = 0; i < k && left; i++) {
        size_t m = iov[i].iov_len < left ? iov[i].iov_len : left;
        for (size_t j = 0; j < m; j++)
            ((unsigned char *)iov[i].iov_base)[j] = (*next)++;
        left -= m;
    }
    assert_int_equal(left, 0);
    ring_produce(r, n);
}

/* Read the held bytes through the iovecs, check they count up from *next, consume n. */
static void consume_seq(struct ring *r, size_t n, unsigned char *next)
{
    struct iovec iov[2];
    int k = ring_data_iov(r, iov);
    size_t left = n;

    for (int i = 0; i < k && left; i++) {
        size_t m = iov[i].iov_len < left ? iov[i].iov_len : left;
        for (size_t j = 0; j < m; j++)
            assert_int_equal(((unsigned char *)iov[i].iov_base)[j], (*next)++);
        left -= m;
    }
    assert_int_equal(left, 0);
    ring_consume(r, n);
}

/* ------------------------------------------------------------------------- */
/* attach / detach                                                           */

static void test_attach_detach(void **state)
{
    (void)state;
    char buf[16];
    struct ring r;

    memset(&r, 0x77, sizeof(r));
    ring_attach(&r, buf, sizeof(buf));
    assert_ptr_equal(r.data, buf);
    assert_int_equal(r.cap, sizeof(buf));
    assert_int_equal(r.len, 0);
    assert_true(ring_empty(&r));
    assert_false(ring_full(&r));
    assert_int_equal(ring_used(&r), 0);
    assert_int_equal(ring_space(&r), sizeof(buf));
    check_views(&r);

    /* use it, empty it, then detach: the storage comes back and data is NULL */
    assert_int_equal(ring_put(&r, "abcdef", 6), 6);
    char out[8];
    assert_int_equal(ring_get(&r, out, sizeof(out)), 6);
    assert_memory_equal(out, "abcdef", 6);
    assert_true(ring_empty(&r));
    assert_ptr_equal(ring_detach(&r), buf);
    assert_null(r.data);

    /* re-attach other storage: starts empty */
    char buf2[4];
    ring_attach(&r, buf2, sizeof(buf2));
    assert_ptr_equal(r.data, buf2);
    assert_int_equal(r.cap, 4);
    assert_true(ring_empty(&r));
    check_views(&r);
    assert_int_equal(ring_put(&r, "wxyz", 4), 4);
    assert_true(ring_full(&r));
    assert_int_equal(ring_get(&r, out, 4), 4);
    assert_memory_equal(out, "wxyz", 4);
    assert_ptr_equal(ring_detach(&r), buf2);
    assert_null(r.data);
}

/* A detached ring owns no storage: it holds nothing, offers no space, takes nothing. */
static void test_detached_is_inert(void **state)
{
    (void)state;
    char buf[8], out[4];
    struct ring r;
    struct iovec iov[2];

    ring_attach(&r, buf, sizeof(buf));
    assert_ptr_equal(ring_detach(&r), buf);
    assert_null(r.data);
    assert_true(ring_empty(&r));
    assert_int_equal(ring_used(&r), 0);
    assert_int_equal(ring_space(&r), 0);
    assert_int_equal(ring_space_iov(&r, iov), 0);
    assert_int_equal(ring_data_iov(&r, iov), 0);
    assert_int_equal(ring_put(&r, "abc", 3), 0);
    assert_int_equal(ring_get(&r, out, sizeof(out)), 0);
}

/* A fresh ring over heap storage of 1 byte: the smallest that can work. */
static void test_capacity_one(void **state)
{
    (void)state;
    char *buf = malloc(1);
    struct ring r;
    char c = 0;

    assert_non_null(buf);
    ring_attach(&r, buf, 1);
    for (int i = 0; i < 5; i++) {
        check_views(&r);
        assert_int_equal(ring_put(&r, "xy", 2), 1);
        assert_true(ring_full(&r));
        check_views(&r);
        assert_int_equal(ring_put(&r, "z", 1), 0);
        assert_int_equal(ring_get(&r, &c, 1), 1);
        assert_int_equal(c, 'x');
        assert_int_equal(ring_get(&r, &c, 1), 0);
    }
    free(ring_detach(&r));
}

/* ------------------------------------------------------------------------- */
/* iovecs: exact segments in known positions                                 */

static void test_iov_fresh(void **state)
{
    (void)state;
    char buf[8];
    struct ring r;
    struct iovec iov[2];

    ring_attach(&r, buf, sizeof(buf));
    assert_int_equal(ring_data_iov(&r, iov), 0);
    assert_int_equal(ring_space_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 8);
}

static void test_iov_one_segment_each(void **state)
{
    (void)state;
    char buf[8];
    struct ring r;
    struct iovec iov[2];
    unsigned char w = 0, rd = 0;

    ring_attach(&r, buf, sizeof(buf));
    produce_seq(&r, 5, &w);                  /* head 0, len 5 */
    assert_int_equal(ring_data_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 5);
    assert_int_equal(ring_space_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf + 5);
    assert_int_equal(iov[0].iov_len, 3);

    consume_seq(&r, 2, &rd);                 /* head 2, len 3: space wraps */
    assert_int_equal(ring_data_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf + 2);
    assert_int_equal(iov[0].iov_len, 3);
    assert_int_equal(ring_space_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, buf + 5);
    assert_int_equal(iov[0].iov_len, 3);
    assert_ptr_equal(iov[1].iov_base, buf);
    assert_int_equal(iov[1].iov_len, 2);
    check_views(&r);
}

static void test_iov_data_wraps(void **state)
{
    (void)state;
    char buf[8];
    struct ring r;
    struct iovec iov[2];
    unsigned char w = 0, rd = 0;

    ring_attach(&r, buf, sizeof(buf));
    produce_seq(&r, 6, &w);
    consume_seq(&r, 4, &rd);                 /* head 4, len 2 */
    produce_seq(&r, 5, &w);                  /* head 4, len 7, tail 3 */
    assert_int_equal(r.head, 4);
    assert_int_equal(ring_used(&r), 7);

    assert_int_equal(ring_data_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, buf + 4);
    assert_int_equal(iov[0].iov_len, 4);
    assert_ptr_equal(iov[1].iov_base, buf);
    assert_int_equal(iov[1].iov_len, 3);

    assert_int_equal(ring_space_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf + 3);
    assert_int_equal(iov[0].iov_len, 1);

    produce_seq(&r, 1, &w);                  /* full, wrapped */
    assert_true(ring_full(&r));
    assert_int_equal(ring_space_iov(&r, iov), 0);
    assert_int_equal(ring_data_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, buf + 4);
    assert_int_equal(iov[0].iov_len, 4);
    assert_ptr_equal(iov[1].iov_base, buf);
    assert_int_equal(iov[1].iov_len, 4);

    consume_seq(&r, 4, &rd);                 /* head back at 0, len 4 */
    assert_int_equal(ring_data_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 4);
    assert_int_equal(ring_space_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf + 4);
    assert_int_equal(iov[0].iov_len, 4);

    consume_seq(&r, 4, &rd);
    assert_true(ring_empty(&r));
    assert_int_equal(ring_data_iov(&r, iov), 0);
    check_views(&r);
}

/* Full with head 0: one data segment, no space. Full with data ending at cap: same. */
static void test_iov_full_unwrapped(void **state)
{
    (void)state;
    char buf[8];
    struct ring r;
    struct iovec iov[2];
    unsigned char w = 0, rd = 0;

    ring_attach(&r, buf, sizeof(buf));
    produce_seq(&r, 8, &w);
    assert_true(ring_full(&r));
    assert_int_equal(ring_space_iov(&r, iov), 0);
    assert_int_equal(ring_data_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 8);

    /* data exactly [3, 8): tail at cap wraps to 0, space is [0, 3) in one piece */
    consume_seq(&r, 3, &rd);
    assert_int_equal(ring_data_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf + 3);
    assert_int_equal(iov[0].iov_len, 5);
    assert_int_equal(ring_space_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 3);
    check_views(&r);
}

/* ------------------------------------------------------------------------- */
/* produce / consume with wrap-around, through the iovecs like readv/writev  */

static void test_produce_consume_wrap(void **state)
{
    (void)state;
    char buf[7]; /* odd size so the chunks below land everywhere */
    struct ring r;
    unsigned char w = 0, rd = 0;

    ring_attach(&r, buf, sizeof(buf));
    for (int round = 0; round < 200; round++) {
        size_t in = (size_t)(round % 5) + 1;
        if (in > ring_space(&r))
            in = ring_space(&r);
        produce_seq(&r, in, &w);
        check_views(&r);
        size_t out = (size_t)(round % 3) + 1;
        if (out > ring_used(&r))
            out = ring_used(&r);
        consume_seq(&r, out, &rd);
        check_views(&r);
    }
    consume_seq(&r, ring_used(&r), &rd);
    assert_int_equal(w, rd);
    assert_true(ring_empty(&r));
    assert_ptr_equal(ring_detach(&r), buf);
}

/* produce(0) and consume(0) change nothing. */
static void test_zero_moves(void **state)
{
    (void)state;
    char buf[4];
    struct ring r;

    ring_attach(&r, buf, sizeof(buf));
    ring_produce(&r, 0);
    ring_consume(&r, 0);
    assert_true(ring_empty(&r));
    assert_int_equal(ring_put(&r, "ab", 2), 2);
    size_t head = r.head;
    ring_produce(&r, 0);
    ring_consume(&r, 0);
    assert_int_equal(r.head, head);
    assert_int_equal(ring_used(&r), 2);
    assert_int_equal(ring_put(&r, "", 0), 0);
    char none[1];
    assert_int_equal(ring_get(&r, none, 0), 0);
    assert_int_equal(ring_used(&r), 2);
}

/* ------------------------------------------------------------------------- */
/* put / get                                                                 */

static void test_put_get_wrap(void **state)
{
    (void)state;
    char buf[10];
    struct ring r;
    char out[16];

    ring_attach(&r, buf, sizeof(buf));
    assert_int_equal(ring_put(&r, "0123456", 7), 7);
    assert_int_equal(ring_get(&r, out, 5), 5);
    assert_memory_equal(out, "01234", 5);          /* head 5, len 2 */

    /* put across the end: 3 bytes at [7, 10), 5 at [0, 5) */
    assert_int_equal(ring_put(&r, "ABCDEFGH", 8), 8);
    assert_true(ring_full(&r));
    check_views(&r);
    assert_memory_equal(buf + 7, "ABC", 3);
    assert_memory_equal(buf, "DEFGH", 5);

    /* get across the end */
    memset(out, 0, sizeof(out));
    assert_int_equal(ring_get(&r, out, sizeof(out)), 10);
    assert_memory_equal(out, "56ABCDEFGH", 10);
    assert_true(ring_empty(&r));
    check_views(&r);
}

static void test_put_when_full_and_partial(void **state)
{
    (void)state;
    char buf[6];
    struct ring r;
    char out[8];

    ring_attach(&r, buf, sizeof(buf));
    assert_int_equal(ring_put(&r, "abcdefgh", 8), 6);   /* only what fits */
    assert_true(ring_full(&r));
    assert_int_equal(ring_put(&r, "x", 1), 0);           /* full: nothing */
    assert_int_equal(ring_used(&r), 6);

    assert_int_equal(ring_get(&r, out, 2), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(ring_put(&r, "XYZ", 3), 2);         /* two free, wraps */
    assert_true(ring_full(&r));

    memset(out, 0, sizeof(out));
    assert_int_equal(ring_get(&r, out, sizeof(out)), 6); /* only what is held */
    assert_memory_equal(out, "cdefXY", 6);
    assert_int_equal(ring_get(&r, out, 1), 0);           /* empty: nothing */
    assert_true(ring_empty(&r));
}

/* get leaves bytes it did not ask for; put after get continues in order. */
static void test_put_get_interleaved(void **state)
{
    (void)state;
    char buf[5];
    struct ring r;
    char out[5];
    const char *msg = "the quick brown fox jumps over the lazy dog";
    size_t sent = 0, got = 0, total = strlen(msg);
    char back[64];

    ring_attach(&r, buf, sizeof(buf));
    while (got < total) {
        sent += ring_put(&r, msg + sent, total - sent < 3 ? total - sent : 3);
        check_views(&r);
        size_t g = ring_get(&r, out, 2);
        memcpy(back + got, out, g);
        got += g;
        check_views(&r);
    }
    assert_int_equal(sent, total);
    assert_memory_equal(back, msg, total);
}

/* iovec writes and put/get mix: a readv into the space, then ring_get sees it. */
static void test_mixed_iov_and_copy(void **state)
{
    (void)state;
    char buf[8];
    struct ring r;
    struct iovec iov[2];
    char out[8];

    ring_attach(&r, buf, sizeof(buf));
    assert_int_equal(ring_put(&r, "123456", 6), 6);
    assert_int_equal(ring_get(&r, out, 5), 5);         /* head 5, len 1 */
    int n = ring_space_iov(&r, iov);                   /* [6,8) and [0,5) */
    assert_int_equal(n, 2);
    memcpy(iov[0].iov_base, "ab", 2);
    memcpy(iov[1].iov_base, "cde", 3);
    ring_produce(&r, 5);
    assert_int_equal(ring_get(&r, out, 8), 6);
    assert_memory_equal(out, "6abcde", 6);
}

/* ------------------------------------------------------------------------- */
/* randomized model test                                                     */

/* A tiny deterministic PRNG (xorshift32) so the sequence is the same everywhere. */
static uint32_t rng_state;
static uint32_t rnd(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}
static size_t rnd_upto(size_t n) /* 0..n inclusive */
{
    return (size_t)(rnd() % (uint32_t)(n + 1));
}

/* Reference: a flat array queue, oldest byte first. */
struct model {
    unsigned char q[256];
    size_t len;
};

static void model_push(struct model *m, const unsigned char *p, size_t n)
{
    memcpy(m->q + m->len, p, n);
    m->len += n;
}

static void model_pop(struct model *m, size_t n)
{
    memmove(m->q, m->q + n, m->len - n);
    m->len -= n;
}

/* The ring's held bytes, read through the data iovecs, equal the model. */
static void compare(const struct ring *r, const struct model *m, int op)
{
    struct iovec iov[2];
    int n = ring_data_iov(r, iov);
    size_t off = 0;

    assert_int_equal(ring_used(r), m->len);
    for (int i = 0; i < n; i++) {
        if (memcmp(iov[i].iov_base, m->q + off, iov[i].iov_len) != 0)
            fail_msg("op %d: ring contents differ from the model at segment %d", op, i);
        off += iov[i].iov_len;
    }
    assert_int_equal(off, m->len);
}

static void run_model(uint32_t seed, size_t cap, int ops)
{
    char *buf = malloc(cap);
    struct ring r;
    struct model m = { .len = 0 };
    unsigned char tmp[512], out[512];
    struct iovec iov[2];

    assert_non_null(buf);
    assert_true(cap <= sizeof(m.q));
    rng_state = seed;
    ring_attach(&r, buf, cap);

    for (int op = 0; op < ops; op++) {
        size_t n = rnd_upto(cap + cap / 2); /* sometimes more than fits */
        for (size_t i = 0; i < n; i++)
            tmp[i] = (unsigned char)rnd();

        switch (rnd() % 4) {
        case 0: { /* put */
            size_t want = n < cap - m.len ? n : cap - m.len;
            size_t got = ring_put(&r, tmp, n);
            if (got != want)
                fail_msg("op %d: ring_put(%zu) = %zu, expected %zu", op, n, got, want);
            model_push(&m, tmp, got);
            break;
        }
        case 1: { /* get */
            size_t want = n < m.len ? n : m.len;
            size_t got = ring_get(&r, out, n);
            if (got != want)
                fail_msg("op %d: ring_get(%zu) = %zu, expected %zu", op, n, got, want);
            if (memcmp(out, m.q, got) != 0)
                fail_msg("op %d: ring_get returned the wrong bytes", op);
            model_pop(&m, got);
            break;
        }
        case 2: { /* readv-style: fill some of the space, then produce */
            size_t k = n < cap - m.len ? n : cap - m.len;
            int segs = ring_space_iov(&r, iov);
            size_t left = k, off = 0;
            for (int i = 0; i < segs && left; i++) {
                size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
                memcpy(iov[i].iov_base, tmp + off, c);
                off += c;
                left -= c;
            }
            assert_int_equal(left, 0);
            ring_produce(&r, k);
            model_push(&m, tmp, k);
            break;
        }
        case 3: { /* writev-style: consume some of the data */
            size_t k = n < m.len ? n : m.len;
            ring_consume(&r, k);
            model_pop(&m, k);
            break;
        }
        }
        check_views(&r);
        compare(&r, &m, op);
    }

    /* drain and give the storage back */
    size_t left = m.len;
    assert_int_equal(ring_get(&r, out, sizeof(out)), left);
    assert_memory_equal(out, m.q, left);
    assert_true(ring_empty(&r));
    assert_ptr_equal(ring_detach(&r), buf);
    free(buf);
}

static void test_model_random(void **state)
{
    (void)state;
    run_model(0x6b6f6461u /* "koda" */, 13, 1000);
}

static void test_model_random_sizes(void **state)
{
    (void)state;
    static const size_t caps[] = { 1, 2, 3, 8, 64, 255 };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        run_model(0x12345678u + (uint32_t)i, caps[i], 1000);
}

/* ------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_detach),
        cmocka_unit_test(test_detached_is_inert),
        cmocka_unit_test(test_capacity_one),
        cmocka_unit_test(test_iov_fresh),
        cmocka_unit_test(test_iov_one_segment_each),
        cmocka_unit_test(test_iov_data_wraps),
        cmocka_unit_test(test_iov_full_unwrapped),
        cmocka_unit_test(test_produce_consume_wrap),
        cmocka_unit_test(test_zero_moves),
        cmocka_unit_test(test_put_get_wrap),
        cmocka_unit_test(test_put_when_full_and_partial),
        cmocka_unit_test(test_put_get_interleaved),
        cmocka_unit_test(test_mixed_iov_and_copy),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_model_random_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
