/* deadline.h — many timeouts of the same length on one timer.
 *
 * Every entry of a list waits the same time, so appending keeps the list sorted by
 * deadline and a single loop timer, due at the head, serves them all: starting,
 * restarting and stopping are O(1), whatever the number of connections. Used for
 * the linger after our goodbye, idle connections, and peers that stopped reading. */
#ifndef KODAMA_DEADLINE_H
#define KODAMA_DEADLINE_H

#include <stdint.h>

#include "lib/list.h"
#include "lib/loop.h"

struct deadline_list;

/* An entry is on at most one list at a time: starting it on another moves it. */
struct deadline {
    struct dlink link;
    struct deadline_list *on;       /* NULL: not running */
    int64_t at;                     /* ms, monotonic */
};

/* Called for an expired entry, already removed from its list. */
typedef void deadline_fn(struct deadline_list *dl, struct deadline *d);

struct deadline_list {
    struct dlink head;
    struct loop *loop;
    long timeout_ms;                /* 0: the list is off; starting does nothing */
    long slack_ms;                  /* a restart sooner than this after the last is skipped */
    int armed;
    deadline_fn *expire;
    void *data;
};

void deadline_list_init(struct deadline_list *dl, struct loop *loop, long timeout_ms,
                        deadline_fn *expire, void *data);

/* Not running (a zeroed deadline is too). */
static inline void deadline_init(struct deadline *d)
{
    d->link.prev = d->link.next = NULL;
    d->on = NULL;
}

/* (Re)start d's timeout from now. A restart that would move the deadline by less
 * than the slack is skipped: busy connections cost a compare, not list work (the
 * time is the loop's, read once per batch), and a timeout may fire up to slack_ms
 * early. */
void deadline_start(struct deadline_list *dl, struct deadline *d);
/* Start d on dl unless it is running there already (a stall that goes on). */
void deadline_start_once(struct deadline_list *dl, struct deadline *d);
void deadline_stop(struct deadline *d);

#endif
