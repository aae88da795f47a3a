/* fuzz_addr_format.c — addr_format and addr_host (addr.c), which turn the peer
 * addresses accept and recvmsg return into text, checked by reading that text
 * back with spec_parse.
 *
 * Input: byte 0 picks the family (0 IPv4, 1 IPv6, 2 unix, 3 any other); the
 * bytes after it fill the socket address (short inputs are zero-padded):
 *   IPv4: address (4), port (2, network order);
 *   IPv6: address (16), port (2), scope selector (1: 0 none, 1 index 1, 2 the
 *         next 4 bytes; a scope costs if_indextoname's syscalls, so it is rare);
 *   unix: length byte (taken modulo sizeof(struct sockaddr_un) + 1), sun_path;
 *   other: family (2 bytes).
 * The output buffer is exactly ADDR_TEXT_MAX bytes on the heap. Properties:
 *   - the text is NUL-terminated and never truncated (ADDR_TEXT_MAX is enough);
 *   - IPv4 and IPv6 (IPv4-mapped printed as IPv4): "echo@" + text parses as a
 *     HOST SPEC whose host, scope cut off, is the same address (inet_pton) and
 *     whose port is the same; a scope shows as "%NAME" or "%INDEX";
 *     addr_host is the text before the port and addr_port the port;
 *   - unix: the text starts with "unix:" ("unix:@" for abstract names, bare
 *     "unix:" for an unnamed socket); a name of 1 to SPEC_PATH_MAX bytes reads
 *     back through spec_parse as the same path and abstract flag;
 *   - other families: "(family N)". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/addr.h"
#include "proto/spec.h"
#include "fuzz.h"

static void check_text(const char *text)
{
    FUZZ_CHECK(memchr(text, '\0', ADDR_TEXT_MAX) != NULL, "text not NUL-terminated");
    FUZZ_CHECK(strlen(text) < ADDR_TEXT_MAX - 1, "text '%s' may be truncated", text);
}

/* "echo@" + text as a SPEC; the caller asked for success or not. */
static int reparse(const char *text, const char *suffix, struct spec *sp, char *err,
                   size_t errlen)
{
    char spec[ADDR_TEXT_MAX + 16];

    snprintf(spec, sizeof spec, "echo@%s%s", text, suffix);
    return spec_parse(spec, sp, err, errlen);
}

static void check_inet(const struct sockaddr *sa, socklen_t len, const char *text)
{
    char err[256], host[ADDR_TEXT_MAX], bare[SPEC_HOST_MAX + 1], *pct;
    unsigned char got[16];
    struct spec sp;
    int port = addr_port(sa), v4;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    const void *want;

    (void)len;
    if (sa->sa_family == AF_INET) {
        v4 = 1;
        want = &((const struct sockaddr_in *)sa)->sin_addr;
    } else {
        v4 = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
        want = v4 ? (const void *)&sin6->sin6_addr.s6_addr[12] : (const void *)&sin6->sin6_addr;
    }
    FUZZ_CHECK(port >= 0 && port <= 65535, "port %d", port);
    FUZZ_CHECK(reparse(text, "", &sp, err, sizeof err) == 0, "'%s' does not read back: %s",
               text, err);
    FUZZ_CHECK(sp.kind == ADDR_HOST && sp.port == port, "'%s' reads back as kind %d port %u",
               text, sp.kind, sp.port);
    FUZZ_CHECK(text[0] == '[' ? !v4 : v4, "'%s': brackets wrong for the family", text);

    snprintf(bare, sizeof bare, "%s", sp.host);
    pct = strchr(bare, '%');
    if (!v4 && sin6->sin6_scope_id != 0) {
        FUZZ_CHECK(pct != NULL && pct[1] != '\0', "'%s': scope %u not shown", text,
                   (unsigned)sin6->sin6_scope_id);
        *pct = '\0';
    } else {
        FUZZ_CHECK(pct == NULL, "'%s': a scope that is not there", text);
    }
    FUZZ_CHECK(inet_pton(v4 ? AF_INET : AF_INET6, bare, got) == 1, "'%s': host '%s' unreadable",
               text, bare);
    FUZZ_CHECK(memcmp(got, want, v4 ? 4 : 16) == 0, "'%s': host reads back as another address",
               text);

    addr_host(sa, host, sizeof host);
    FUZZ_CHECK(strcmp(host, sp.host) == 0, "addr_host '%s' vs '%s' in '%s'", host, sp.host, text);
}

static void check_unix(const struct sockaddr_un *sun, socklen_t len, const char *text)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t pathlen = len > off ? len - off : 0;
    int abstract = pathlen > 0 && sun->sun_path[0] == '\0';
    const char *name = text + 5 + abstract;
    size_t nlen = strlen(name);
    char err[256];
    struct spec sp;
    int rc;

    FUZZ_CHECK(strncmp(text, abstract ? "unix:@" : "unix:", abstract ? 6 : 5) == 0,
               "unix text '%s'", text);
    if (pathlen == 0) {
        FUZZ_CHECK(strcmp(text, "unix:") == 0, "unnamed socket as '%s'", text);
        return;
    }
    FUZZ_CHECK(nlen <= pathlen - (size_t)abstract && memcmp(name, sun->sun_path + abstract, nlen) == 0,
               "'%s' is not the socket's name", text);
    if (nlen == 0 || nlen > SPEC_PATH_MAX || (!abstract && name[0] == '@'))
        return;
    /* "/tcp": a name may end in "/udp", which would be read as the protocol. */
    rc = reparse(text, "/tcp", &sp, err, sizeof err);
    FUZZ_CHECK(rc == 0, "'%s' does not read back: %s", text, err);
    FUZZ_CHECK(sp.kind == ADDR_UNIX && sp.abstract == abstract && strcmp(sp.path, name) == 0,
               "'%s' reads back as path '%s' abstract %d", text, sp.path, sp.abstract);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char b[1 + sizeof(struct sockaddr_un) + 8] = { 0 };
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    socklen_t len;
    char *text = malloc(ADDR_TEXT_MAX);
    char want[32];
    uint32_t scope;

    if (text == NULL)
        abort();
    memcpy(b, data, size < sizeof b ? size : sizeof b);
    memset(&ss, 0, sizeof ss);
    switch (b[0] % 4) {
    case 0:
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, b + 1, 4);
        memcpy(&sin->sin_port, b + 5, 2);
        len = sizeof *sin;
        break;
    case 1:
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, b + 1, 16);
        memcpy(&sin6->sin6_port, b + 17, 2);
        memcpy(&scope, b + 20, 4);
        sin6->sin6_scope_id = b[19] == 1 ? 1 : b[19] == 2 ? scope : 0;
        len = sizeof *sin6;
        break;
    case 2:
        sun->sun_family = AF_UNIX;
        len = b[1] % (sizeof *sun + 1);
        memcpy(sun->sun_path, b + 2, sizeof sun->sun_path);
        break;
    default:
        ss.ss_family = (sa_family_t)(b[1] | b[2] << 8);
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6 || ss.ss_family == AF_UNIX)
            ss.ss_family = AF_UNSPEC;
        len = sizeof ss;
        break;
    }

    FUZZ_CHECK(addr_format((struct sockaddr *)&ss, len, text, ADDR_TEXT_MAX) == text,
               "addr_format does not return its buffer");
    check_text(text);
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        check_inet((struct sockaddr *)&ss, len, text);
    } else if (ss.ss_family == AF_UNIX) {
        check_unix(sun, len, text);
    } else {
        snprintf(want, sizeof want, "(family %d)", ss.ss_family);
        FUZZ_CHECK(strcmp(text, want) == 0, "'%s' for family %d", text, ss.ss_family);
        FUZZ_CHECK(addr_port((struct sockaddr *)&ss) == -1, "a port for family %d", ss.ss_family);
    }
    free(text);
    return 0;
}
