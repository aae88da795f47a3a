/* deadline.c — see deadline.h. */
#include "lib/deadline.h"

#include "lib/util.h"

#define SLACK_MAX_MS 1000

static long deadline_due(struct loop *loop, void *data)
{
    struct deadline_list *dl = data;
    int64_t now = now_ms();

    (void)loop;
    while (!dlist_empty(&dl->head)) {
        struct deadline *d = container_of(dl->head.next, struct deadline, link);

        if (d->at > now)
            return (long)(d->at - now);
        dlist_remove(&d->link);
        d->on = NULL;
        dl->expire(dl, d);
    }
    dl->armed = 0;
    return LOOP_TIMER_DONE;
}

void deadline_list_init(struct deadline_list *dl, struct loop *loop, long timeout_ms,
                        deadline_fn *expire, void *data)
{
    long slack = timeout_ms / 8;

    dlist_init(&dl->head);
    dl->loop = loop;
    dl->timeout_ms = timeout_ms;
    dl->slack_ms = slack < SLACK_MAX_MS ? slack : SLACK_MAX_MS;
    dl->armed = 0;
    dl->expire = expire;
    dl->data = data;
}

static void deadline_append(struct deadline_list *dl, struct deadline *d, int64_t now)
{
    dlist_remove(&d->link);
    d->on = dl;
    d->at = now + dl->timeout_ms;
    dlist_push_tail(&dl->head, &d->link);
    if (!dl->armed) {
        loop_timer_add(dl->loop, dl->timeout_ms, deadline_due, dl);
        dl->armed = 1;
    }
}

void deadline_start(struct deadline_list *dl, struct deadline *d)
{
    int64_t now;

    if (dl->timeout_ms <= 0) {
        deadline_stop(d);
        return;
    }
    now = loop_now(dl->loop);
    if (d->on == dl && now + dl->timeout_ms - d->at < dl->slack_ms)
        return;
    deadline_append(dl, d, now);
}

void deadline_start_once(struct deadline_list *dl, struct deadline *d)
{
    if (dl->timeout_ms <= 0)
        deadline_stop(d);
    else if (d->on != dl)
        deadline_append(dl, d, loop_now(dl->loop));
}

void deadline_stop(struct deadline *d)
{
    dlist_remove(&d->link);
    d->on = NULL;
}
