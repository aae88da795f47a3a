/* list.h — an intrusive circular doubly-linked list: O(1) insert and remove with no
 * allocation, for connections that sit in several lists at once. */
#ifndef KODAMA_LIST_H
#define KODAMA_LIST_H

#include <stddef.h>

struct dlink {
    struct dlink *prev, *next;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void dlist_init(struct dlink *head)
{
    head->prev = head->next = head;
}

static inline int dlist_empty(const struct dlink *head)
{
    return head->next == head;
}

static inline void dlist_push_tail(struct dlink *head, struct dlink *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

/* Safe on a node that is in no list (after dlink_clear or a previous remove). */
static inline void dlist_remove(struct dlink *node)
{
    if (node->next == NULL)
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}

static inline int dlink_linked(const struct dlink *node)
{
    return node->next != NULL;
}

#endif
