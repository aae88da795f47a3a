/* addr.c — socket addresses as text (see addr.h). */
#include "lib/addr.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

static const struct in_addr *mapped_v4(const struct sockaddr_in6 *sin6)
{
    if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
        return NULL;
    return (const struct in_addr *)&sin6->sin6_addr.s6_addr[12];
}

char *addr_host(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char ifname[IF_NAMESIZE];

    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)buflen);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        const struct in_addr *v4 = mapped_v4(sin6);
        size_t n;

        if (v4) {
            inet_ntop(AF_INET, v4, buf, (socklen_t)buflen);
            return buf;
        }
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)buflen);
        n = strlen(buf);
        if (sin6->sin6_scope_id != 0 && n + 1 < buflen) {
            if (if_indextoname(sin6->sin6_scope_id, ifname) != NULL)
                snprintf(buf + n, buflen - n, "%%%s", ifname);
            else
                snprintf(buf + n, buflen - n, "%%%u", (unsigned)sin6->sin6_scope_id);
        }
    } else {
        snprintf(buf, buflen, "?");
    }
    return buf;
}

int addr_is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

int addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

static char *format_unix(const struct sockaddr_un *sun, socklen_t len, char *buf, size_t buflen)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t pathlen = len > off ? len - off : 0;

    if (pathlen == 0)
        snprintf(buf, buflen, "unix:");
    else if (sun->sun_path[0] == '\0')
        snprintf(buf, buflen, "unix:@%.*s", (int)(pathlen - 1), sun->sun_path + 1);
    else
        snprintf(buf, buflen, "unix:%.*s", (int)strnlen(sun->sun_path, pathlen), sun->sun_path);
    return buf;
}

char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
    char host[ADDR_TEXT_MAX];
    int mapped;

    switch (sa->sa_family) {
    case AF_UNIX:
        return format_unix((const struct sockaddr_un *)sa, len, buf, buflen);
    case AF_INET:
        snprintf(buf, buflen, "%s:%d", addr_host(sa, host, sizeof host), addr_port(sa));
        return buf;
    case AF_INET6:
        mapped = mapped_v4((const struct sockaddr_in6 *)sa) != NULL;
        snprintf(buf, buflen, mapped ? "%s:%d" : "[%s]:%d", addr_host(sa, host, sizeof host),
                 addr_port(sa));
        return buf;
    default:
        snprintf(buf, buflen, "(family %d)", sa->sa_family);
        return buf;
    }
}
