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
