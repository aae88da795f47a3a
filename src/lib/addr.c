/* addr.c — SPEC parsing and socket addresses as text (see addr.h). */
#include "lib/addr.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

/* Every parse error ends by quoting the SPEC, so the user sees which one; a long
 * one is shortened so that the message still fits and ends with its quote. */
#define SPEC_QUOTE_MAX 64

static int spec_error(char *err, size_t errlen, const char *text, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    int len = (int)strlen(text);

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (err && errlen) {
        if (len > SPEC_QUOTE_MAX)
            snprintf(err, errlen, "%s in '%.*s...'", what, SPEC_QUOTE_MAX, text);
        else
            snprintf(err, errlen, "%s in '%s'", what, text);
        printable(err);
    }
    return -1;
}

static int parse_service(const char *text, const char *at, struct spec *sp, char *err,
                         size_t errlen)
{
    size_t len = (size_t)(at - text);

    if (len == 0)
        return spec_error(err, errlen, text, "missing service");
    if (len > SPEC_SERVICE_MAX || strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") < len)
        return spec_error(err, errlen, text, "invalid service name '%.*s'",
                          (int)(len > 40 ? 40 : len), text);
    memcpy(sp->service, text, len);
    sp->service[len] = '\0';
    return 0;
}

static int parse_port(const char *text, const char *s, size_t len, struct spec *sp,
                      char *err, size_t errlen)
{
    char buf[16];
    unsigned long port;

    if (len == 0)
        return spec_error(err, errlen, text, "missing port");
    if (len >= sizeof buf)
        return spec_error(err, errlen, text, "invalid port '%.*s'", (int)len, s);
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (parse_uint(buf, 0, 65535, &port, NULL, 0) < 0)
        return spec_error(err, errlen, text, "invalid port '%s'", buf);
    sp->port = (uint16_t)port;
    return 0;
}

static int set_host(const char *text, const char *s, size_t len, struct spec *sp,
                    char *err, size_t errlen)
{
    if (len == 0)
        return spec_error(err, errlen, text, "missing host");
    if (len > SPEC_HOST_MAX)
        return spec_error(err, errlen, text, "host name too long");
    memcpy(sp->host, s, len);
    sp->host[len] = '\0';
    sp->kind = ADDR_HOST;
    return 0;
}

static int parse_unix(const char *text, const char *s, size_t len, struct spec *sp,
                      char *err, size_t errlen)
{
    sp->kind = ADDR_UNIX;
    if (len > 0 && s[0] == '@') {
        sp->abstract = 1;
        s++;
        len--;
    }
    if (len == 0)
        return spec_error(err, errlen, text, sp->abstract ? "missing name" : "missing path");
    if (len > SPEC_PATH_MAX)
        return spec_error(err, errlen, text, "unix socket path longer than %zu bytes",
                          (size_t)SPEC_PATH_MAX);
    memcpy(sp->path, s, len);
    sp->path[len] = '\0';
    return 0;
}

/* [IPV6]:PORT */
static int parse_bracketed(const char *text, const char *s, size_t len, struct spec *sp,
                           char *err, size_t errlen)
{
    const char *close = memchr(s, ']', len);
    const char *rest;

    if (close == NULL)
        return spec_error(err, errlen, text, "missing ']'");
    if (set_host(text, s + 1, (size_t)(close - s - 1), sp, err, errlen) < 0)
        return -1;
    rest = close + 1;
    if (rest == s + len || *rest != ':')
        return spec_error(err, errlen, text, "missing ':PORT' after ']'");
    return parse_port(text, rest + 1, (size_t)(s + len - rest - 1), sp, err, errlen);
}

static int word_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Strips a trailing /tcp or /udp; anything else after the last '/' of a network
 * address is an unknown protocol (unix paths keep their slashes). */
static int parse_proto(const char *text, const char *addr, size_t *len, struct spec *sp,
                       char *err, size_t errlen)
{
    int is_unix = strncmp(addr, "unix:", 5) == 0;
    const char *slash = memrchr(addr, '/', *len);
    const char *proto;
    size_t plen;

    sp->protos = PROTO_TCP | PROTO_UDP;
    if (slash == NULL)
        return 0;
    proto = slash + 1;
    plen = (size_t)(addr + *len - proto);
    if (word_is(proto, plen, "tcp")) {
        sp->protos = PROTO_TCP;
    } else if (word_is(proto, plen, "udp")) {
        if (is_unix)
            return spec_error(err, errlen, text, "unix sockets are stream only (no /udp)");
        sp->protos = PROTO_UDP;
    } else if (is_unix) {
        return 0;
    } else if (plen == 0) {
        return spec_error(err, errlen, text, "missing protocol after '/'");
    } else {
        return spec_error(err, errlen, text, "unknown protocol '%.*s' (tcp or udp)", (int)plen,
                          proto);
    }
    *len = (size_t)(slash - addr);
    return 0;
}

/* A trailing "+proxy": connections start with a PROXY protocol header. It comes
 * last, after /tcp, and only stream listeners take it. */
static int parse_proxy_suffix(const char *addr, size_t *len, struct spec *sp)
{
    if (*len < PROXY_SUFFIX_LEN || memcmp(addr + *len - PROXY_SUFFIX_LEN, PROXY_SUFFIX,
                                          PROXY_SUFFIX_LEN) != 0)
        return 0;
    *len -= PROXY_SUFFIX_LEN;
    sp->proxy = 1;
    return 0;
}

static int check_proxy(const char *text, const struct spec *sp, char *err, size_t errlen)
{
    if (sp->proxy && (sp->protos & PROTO_UDP))
        return spec_error(err, errlen, text,
                          "'+proxy' is for stream listeners: add /tcp before it");
    return 0;
}

/* SERVICE@ADDRESS, the protocol and "+proxy" stripped from the end. */
static int parse_address(const char *text, const char *addr, size_t len, struct spec *sp,
                         char *err, size_t errlen)
{
    const char *colon;

    if (strncmp(addr, "unix:", 5) == 0) {
        sp->protos = PROTO_TCP;
        return parse_unix(text, addr + 5, len - 5, sp, err, errlen);
    }
    if (addr[0] == '[')
        return parse_bracketed(text, addr, len, sp, err, errlen);
    colon = memchr(addr, ':', len);
    if (colon == NULL) {
        sp->kind = ADDR_ANY;
        return parse_port(text, addr, len, sp, err, errlen);
    }
    if (memchr(colon + 1, ':', (size_t)(addr + len - colon - 1)) != NULL)
        return spec_error(err, errlen, text,
                          "an IPv6 address needs brackets, as in [::1]:7007,");
    if (set_host(text, addr, (size_t)(colon - addr), sp, err, errlen) < 0)
        return -1;
    return parse_port(text, colon + 1, (size_t)(addr + len - colon - 1), sp, err, errlen);
}

int spec_parse(const char *text, struct spec *sp, char *err, size_t errlen)
{
    const char *at = strchr(text, '@');
    const char *addr;
    size_t len;

    memset(sp, 0, sizeof *sp);
    if (at == NULL)
        return spec_error(err, errlen, text, "missing '@ADDRESS'");
    if (parse_service(text, at, sp, err, errlen) < 0)
        return -1;
    addr = at + 1;
    len = strlen(addr);
    parse_proxy_suffix(addr, &len, sp);
    if (len == 0)
        return spec_error(err, errlen, text, "missing address");
    if (parse_proto(text, addr, &len, sp, err, errlen) < 0 ||
        parse_address(text, addr, len, sp, err, errlen) < 0)
        return -1;
    return check_proxy(text, sp, err, errlen);
}

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
