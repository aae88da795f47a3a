/* proxy.c — the PROXY protocol header parser (see proxy.h). */
#include "proto/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6
#define V2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define V2_SIG_LEN 12
#define V2_FIXED 16                 /* signature, ver_cmd, fam, len */
#define V2_INET_LEN 12
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216
#define V2_UNIX_PATH 108
#define TLV_HEAD 3

static enum proxy_status invalid(struct proxy_header *h, const char *why)
{
    h->why = why;
    return PROXY_INVALID;
}

/* Does buf (len bytes, maybe fewer than the prefix) begin like prefix? */
static int starts_like(const uint8_t *buf, size_t len, const char *prefix, size_t plen)
{
    return memcmp(buf, prefix, len < plen ? len : plen) == 0;
}

/* ------------------------------------------------------------------------- v1 */

/* A decimal number of 1 to maxdigits digits, no leading zero, at most max.
 * Returns the digits used, or 0. */
static size_t v1_number(const char *s, size_t n, unsigned max, size_t maxdigits, unsigned *out)
{
    size_t i = 0;
    unsigned long v = 0;

    while (i < n && i < maxdigits + 1 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == 0 || i > maxdigits || (i > 1 && s[0] == '0') || v > max)
        return 0;
    *out = (unsigned)v;
    return i;
}

/* Exactly the token s[0..n): four dotted decimals. */
static int v1_ipv4(const char *s, size_t n, struct in_addr *a)
{
    uint8_t b[4];
    size_t off = 0;

    for (int i = 0; i < 4; i++) {
        unsigned v;
        size_t used;

        if (i > 0) {
            if (off >= n || s[off] != '.')
                return -1;
            off++;
        }
        used = v1_number(s + off, n - off, 255, 3, &v);
        if (used == 0)
            return -1;
        b[i] = (uint8_t)v;
        off += used;
    }
    if (off != n)
        return -1;
    memcpy(&a->s_addr, b, 4);
    return 0;
}

static int v1_ipv6(const char *s, size_t n, struct in6_addr *a)
{
    char text[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    if (strspn(text, "0123456789abcdefABCDEF:.") < n)
        return -1;
    return inet_pton(AF_INET6, text, a) == 1 ? 0 : -1;
}

static int v1_address(int family, const char *s, size_t n, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        *len = sizeof *sin;
        return v1_ipv4(s, n, &sin->sin_addr);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    sin6->sin6_family = AF_INET6;
    *len = sizeof *sin6;
    return v1_ipv6(s, n, &sin6->sin6_addr);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* The next space-separated token of the line, at *off; the line has no CR or LF. */
static size_t v1_token(const char *line, size_t n, size_t *off, const char **tok)
{
    const char *sp = memchr(line + *off, ' ', n - *off);
    size_t end = sp ? (size_t)(sp - line) : n;
    size_t len = end - *off;

    *tok = line + *off;
    *off = sp ? end + 1 : n;
    return len;
}

/* "TCP4 SRC DST SPORT DPORT" or "TCP6 ...", after "PROXY ". */
static enum proxy_status v1_inet(const char *line, size_t n, int family,
                                 struct proxy_header *h)
{
    size_t off = 5, len;
    unsigned sport, dport;
    const char *tok;

    len = v1_token(line, n, &off, &tok);
    if (v1_address(family, tok, len, &h->src, &h->src_len) < 0)
        return invalid(h, "bad source address in v1 header");
    len = v1_token(line, n, &off, &tok);
    if (v1_address(family, tok, len, &h->dst, &h->dst_len) < 0)
        return invalid(h, "bad destination address in v1 header");
    len = v1_token(line, n, &off, &tok);
    if (len == 0 || v1_number(tok, len, 65535, 5, &sport) != len)
        return invalid(h, "bad source port in v1 header");
    len = v1_token(line, n, &off, &tok);
    /* The last token runs to the end of the line: a space after it is one too many. */
    if (len == 0 || v1_number(tok, len, 65535, 5, &dport) != len || tok + len != line + n)
        return invalid(h, "bad destination port in v1 header");
    set_port(&h->src, sport);
    set_port(&h->dst, dport);
    h->family = family;
    return PROXY_COMPLETE;
}

static int printable(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

static enum proxy_status parse_v1(const uint8_t *buf, size_t len, struct proxy_header *h)
{
    size_t scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    const uint8_t *cr = memchr(buf, '\r', scan);
    const char *line = (const char *)buf + V1_PREFIX_LEN;
    size_t n;

    if (!starts_like(buf, len, V1_PREFIX, V1_PREFIX_LEN))
        return invalid(h, "not a PROXY protocol header");
    if (cr == NULL) {
        if (!printable(buf, scan))
            return invalid(h, "control character in v1 header");
        return len >= PROXY_V1_MAX ? invalid(h, "v1 header longer than 107 bytes")
                                   : PROXY_NEED_MORE;
    }
    n = (size_t)(cr - buf);
    if (!printable(buf, n) || n < V1_PREFIX_LEN)
        return invalid(h, "control character in v1 header");
    if (n + 1 == PROXY_V1_MAX)
        return invalid(h, "v1 header longer than 107 bytes");
    if (n + 1 == len)
        return PROXY_NEED_MORE;
    if (cr[1] != '\n')
        return invalid(h, "v1 header not ended by CRLF");
    h->version = 1;
    h->len = n + 2;
    n -= V1_PREFIX_LEN;
    if (n == 7 && memcmp(line, "UNKNOWN", 7) == 0)
        return PROXY_COMPLETE;
    if (n > 7 && memcmp(line, "UNKNOWN ", 8) == 0)
        return PROXY_COMPLETE;  /* the spec: ignore what follows UNKNOWN */
    if (n > 5 && memcmp(line, "TCP4 ", 5) == 0)
        return v1_inet(line, n, AF_INET, h);
    if (n > 5 && memcmp(line, "TCP6 ", 5) == 0)
        return v1_inet(line, n, AF_INET6, h);
    return invalid(h, "unknown protocol in v1 header");
}

/* ------------------------------------------------------------------------- v2 */

static int v2_ver_cmd_ok(uint8_t b)
{
    return b == 0x20 || b == 0x21;
}

/* UNSPEC, TCP4, UDP4, TCP6, UDP6, UNIX stream, UNIX dgram: nothing else. */
static int v2_fam_ok(uint8_t b)
{
    return b == 0x00 || b == 0x11 || b == 0x12 || b == 0x21 || b == 0x22 || b == 0x31 ||
           b == 0x32;
}

static size_t v2_addr_len(uint8_t fam)
{
    switch (fam >> 4) {
    case 1: return V2_INET_LEN;
    case 2: return V2_INET6_LEN;
    case 3: return V2_UNIX_LEN;
    default: return 0;
    }
}

/* A unix address: 108 bytes, NUL-padded; a leading NUL makes it abstract. */
static void v2_unix(const uint8_t *p, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t n = p[0] ? strnlen((const char *)p, V2_UNIX_PATH)
                    : 1 + strnlen((const char *)p + 1, V2_UNIX_PATH - 1);

    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, p, n);
    if (n == 1)
        n = 0;      /* no name at all: unnamed */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static void v2_addresses(const uint8_t *p, uint8_t fam, struct proxy_header *h)
{
    memset(&h->src, 0, sizeof h->src);
    memset(&h->dst, 0, sizeof h->dst);
    if (fam >> 4 == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->src, *d = (struct sockaddr_in *)&h->dst;

        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
        h->src_len = h->dst_len = sizeof *s;
        h->family = AF_INET;
    } else if (fam >> 4 == 2) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;

        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
        h->src_len = h->dst_len = sizeof *s;
        h->family = AF_INET6;
    } else {
        v2_unix(p, &h->src, &h->src_len);
        v2_unix(p + V2_UNIX_PATH, &h->dst, &h->dst_len);
        h->family = AF_UNIX;
    }
}

/* TLVs (type, 16-bit length, value) must fill p[0..n) exactly; they are skipped. */
static int v2_tlvs_ok(const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        size_t vlen;

        if (n - off < TLV_HEAD)
            return 0;
        vlen = (size_t)p[off + 1] << 8 | p[off + 2];
        if (vlen > n - off - TLV_HEAD)
            return 0;
        off += TLV_HEAD + vlen;
    }
    return 1;
}

static enum proxy_status parse_v2(const uint8_t *buf, size_t len, struct proxy_header *h)
{
    size_t total, alen;
    uint8_t fam;

    if (!starts_like(buf, len, V2_SIG, V2_SIG_LEN))
        return invalid(h, "not a PROXY protocol header");
    if (len > 12 && !v2_ver_cmd_ok(buf[12]))
        return invalid(h, "bad version or command in v2 header");
    if (len > 13 && !v2_fam_ok(buf[13]))
        return invalid(h, "bad address family in v2 header");
    if (len < V2_FIXED)
        return PROXY_NEED_MORE;
    total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
    if (total > PROXY_HEADER_MAX)
        return invalid(h, "v2 header longer than 1024 bytes");
    if (len < total)
        return PROXY_NEED_MORE;
    h->version = 2;
    h->len = total;
    fam = buf[13];
    if (buf[12] == 0x20) {
        h->command = PROXY_CMD_LOCAL;   /* the spec: discard the whole block */
        return PROXY_COMPLETE;
    }
    if (fam == 0x00)
        return PROXY_COMPLETE;          /* unknown to the sender: the block means nothing */
    alen = v2_addr_len(fam);
    if (total - V2_FIXED < alen)
        return invalid(h, "v2 address block too short for its family");
    if (!v2_tlvs_ok(buf + V2_FIXED + alen, total - V2_FIXED - alen))
        return invalid(h, "bad TLV framing in v2 header");
    v2_addresses(buf + V2_FIXED, fam, h);
    return PROXY_COMPLETE;
}

enum proxy_status proxy_parse(const void *data, size_t len, struct proxy_header *h)
{
    const uint8_t *buf = data;

    memset(h, 0, sizeof *h);
    h->family = AF_UNSPEC;
    if (len == 0)
        return PROXY_NEED_MORE;
    if (buf[0] == 'P')
        return parse_v1(buf, len, h);
    if (buf[0] == '\r')
        return parse_v2(buf, len, h);
    return invalid(h, "not a PROXY protocol header");
}

/* ------------------------------------------------------------------ writing */

/* An address as the header carries it: family AF_INET or AF_INET6 (16 bytes, 4
 * used for AF_INET), the port in host order. 0 if it is neither. */
static int wire_addr(const struct sockaddr *sa, uint8_t a[16], unsigned *port)
{
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        memcpy(a, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return AF_INET;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        *port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(a, &in6->sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

/* An IPv4 address as IPv4-mapped IPv6, in place. */
static void map_v6(uint8_t a[16])
{
    memmove(a + 12, a, 4);
    memset(a, 0, 10);
    a[10] = a[11] = 0xff;
}

size_t proxy_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   void *out, size_t cap)
{
    uint8_t s[16], d[16], *o = out;
    unsigned sport = 0, dport = 0;
    int sf = wire_addr(src, s, &sport), df = wire_addr(dst, d, &dport), fam;
    size_t alen, n;

    fam = sf && df ? (sf == df ? sf : AF_INET6) : 0;
    if (fam == AF_INET6 && sf == AF_INET)
        map_v6(s);
    if (fam == AF_INET6 && df == AF_INET)
        map_v6(d);
    if (version == 1) {
        char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
        int k;

        if (fam == 0)
            k = snprintf((char *)out, cap, "PROXY UNKNOWN\r\n");
        else
            k = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n",
                         fam == AF_INET ? "TCP4" : "TCP6", inet_ntop(fam, s, sa, sizeof sa),
                         inet_ntop(fam, d, da, sizeof da), sport, dport);
        return k > 0 && (size_t)k < cap ? (size_t)k : 0;
    }
    alen = fam == AF_INET ? V2_INET_LEN : fam == AF_INET6 ? V2_INET6_LEN : 0;
    n = V2_FIXED + alen;
    if (cap < n)
        return 0;
    memcpy(o, V2_SIG, V2_SIG_LEN);
    o[12] = 0x21;                       /* version 2, PROXY */
    o[13] = fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00;  /* STREAM */
    o[14] = (uint8_t)(alen >> 8);
    o[15] = (uint8_t)alen;
    if (alen) {
        size_t w = fam == AF_INET ? 4 : 16;

        memcpy(o + V2_FIXED, s, w);
        memcpy(o + V2_FIXED + w, d, w);
        o[V2_FIXED + 2 * w] = (uint8_t)(sport >> 8);
        o[V2_FIXED + 2 * w + 1] = (uint8_t)sport;
        o[V2_FIXED + 2 * w + 2] = (uint8_t)(dport >> 8);
        o[V2_FIXED + 2 * w + 3] = (uint8_t)dport;
    }
    return n;
}
