/* table.c — the service table: every service kodama can serve, by name. */
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
    &service_relay,
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
