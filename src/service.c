/* service.c — the service table. */
#include "service.h"

#include <string.h>

const struct service *const services[] = {
    &service_hello,
    &service_echo,
    NULL,
};

const struct service *service_find(const char *name)
{
    for (size_t i = 0; services[i]; i++)
        if (strcmp(services[i]->name, name) == 0)
            return services[i];
    return NULL;
}

void plan_send_static(struct conn_plan *p, const char *data, size_t len)
{
    p->tx = data;
    p->tx_len = len;
}

void plan_echo_input(struct conn_plan *p)
{
    p->echo = 1;
}

void plan_close_after_send(struct conn_plan *p)
{
    p->close_after_send = 1;
}
