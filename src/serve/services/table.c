/* service.c — the service table. */
#include "serve/services/service.h"

#include <stdio.h>
#include <string.h>

const struct service *const services[] = {
    &service_hello,
    &service_echo,
    &service_discard,
    &service_chargen,
    &service_daytime,
    &service_time,
    &service_info,
    NULL,
};

void service_names(char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; services[i] && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", services[i]->name);

        if (n < 0)
            break;
        off += (size_t)n;
    }
}

const struct service *service_find(const char *name)
{
    for (size_t i = 0; services[i]; i++)
        if (strcmp(services[i]->name, name) == 0)
            return services[i];
    return NULL;
}

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
