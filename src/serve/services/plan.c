/* plan.c — the calls a service shapes a stream connection with (service.h). The
 * engines carry the plan out; a service only fills it. */
#include "serve/services/service.h"

#include <string.h>

void plan_init(struct conn_plan *p)
{
    p->tx = NULL;
    p->tx_len = 0;
    p->echo = 0;
    p->close_after_send = 0;
    p->repeat = 0;
    p->copy_len = 0;
}

void plan_send_static(struct conn_plan *p, const char *data, size_t len)
{
    p->tx = data;
    p->tx_len = len;
}

void plan_send_repeating(struct conn_plan *p, const char *data, size_t len)
{
    plan_send_static(p, data, len);
    p->repeat = len > 0;
}

int plan_send_copy(struct conn_plan *p, const void *data, size_t len)
{
    if (len > PLAN_COPY_MAX)
        return -1;
    memcpy(p->copy, data, len);
    p->copy_len = len;
    return 0;
}

void plan_echo_input(struct conn_plan *p)
{
    p->echo = 1;
}

void plan_close_after_send(struct conn_plan *p)
{
    p->close_after_send = 1;
}
