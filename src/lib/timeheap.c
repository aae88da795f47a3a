/* timeheap.c — see timeheap.h. */
#include "lib/timeheap.h"

#include <stdlib.h>

#include "lib/util.h"

void theap_init(struct theap *h, struct loop *loop, theap_fn *expire)
{
    h->v = NULL;
    h->n = h->cap = 0;
    h->loop = loop;
    h->expire = expire;
    h->timer = 0;
    h->timer_at = 0;
    h->firing = 0;
}

void theap_destroy(struct theap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->idx = THEAP_OFF;
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static void place(struct theap *h, size_t i, struct theap_entry *e)
{
    h->v[i] = e;
    e->idx = i;
}

static void sift_up(struct theap *h, size_t i)
{
    struct theap_entry *e = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (h->v[parent]->at <= e->at)
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(struct theap *h, size_t i)
{
    struct theap_entry *e = h->v[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->v[child + 1]->at < h->v[child]->at)
            child++;
        if (h->v[child]->at >= e->at)
            break;
        place(h, i, h->v[child]);
        i = child;
    }
    place(h, i, e);
}

static long heap_due(struct loop *loop, void *data);

/* One loop timer, due at the earliest entry: moved only when that comes sooner. */
static void arm(struct theap *h)
{
    if (h->firing || h->n == 0)
        return;
    if (h->timer && h->timer_at <= h->v[0]->at)
        return;
    if (h->timer)
        loop_timer_del(h->loop, h->timer);
    h->timer_at = h->v[0]->at;
    h->timer = loop_timer_add_at(h->loop, h->timer_at, heap_due, h);
}

/* The loop's timer callback: expires what is due and arms a timer of its own for
 * the next (a timer's return value counts in ms, the heap in µs). */
static long heap_due(struct loop *loop, void *data)
{
    struct theap *h = data;
    int64_t now = now_us();

    (void)loop;
    h->firing = 1;
    while (h->n > 0 && h->v[0]->at <= now) {
        struct theap_entry *e = h->v[0];

        theap_del(h, e);
        h->expire(h, e);
    }
    h->firing = 0;
    h->timer = 0;
    arm(h);
    return LOOP_TIMER_DONE;
}

int theap_set(struct theap *h, struct theap_entry *e, int64_t at)
{
    if (theap_on(e)) {
        int64_t was = e->at;

        e->at = at;
        if (at < was)
            sift_up(h, e->idx);
        else
            sift_down(h, e->idx);
        arm(h);
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct theap_entry **v = realloc(h->v, cap * sizeof *v);

        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    e->at = at;
    place(h, h->n++, e);
    sift_up(h, e->idx);
    arm(h);
    return 0;
}

void theap_del(struct theap *h, struct theap_entry *e)
{
    size_t i = e->idx;
    struct theap_entry *last;

    if (!theap_on(e))
        return;
    e->idx = THEAP_OFF;
    last = h->v[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    if (i > 0 && h->v[(i - 1) / 2]->at > last->at)
        sift_up(h, i);
    else
        sift_down(h, i);
}
