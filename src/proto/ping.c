/* ping.c — see ping.h. */
#include "proto/ping.h"

#include <string.h>

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static const unsigned char magic[4] = { 'K', 'D', 'M', 'P' };

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* The check of a probe: everything but the check itself. */
static uint32_t check_of(const unsigned char *p, size_t size)
{
    return fnv(fnv(FNV_OFFSET, p, 12), p + PING_HEADER, size - PING_HEADER);
}

void ping_build(void *buf, size_t size, uint32_t id, uint32_t seq)
{
    unsigned char *p = buf;

    memcpy(p, magic, sizeof magic);
    put32(p + 4, id);
    put32(p + 8, seq);
    for (size_t i = PING_HEADER; i < size; i++)
        p[i] = (unsigned char)(i + 7u * seq);
    put32(p + 12, check_of(p, size));
}

enum ping_kind ping_parse(const void *buf, size_t len, size_t size, uint32_t id,
                          uint32_t *seq)
{
    const unsigned char *p = buf;

    if (len < PING_HEADER || memcmp(p, magic, sizeof magic) != 0 || get32(p + 4) != id)
        return len == size ? PING_NOT_OURS : PING_WRONG_SIZE;
    if (len != size)
        return PING_WRONG_SIZE;
    if (get32(p + 12) != check_of(p, size))
        return PING_CORRUPT;
    /* The filler too, byte for byte: a check can be forged, the pattern cannot. */
    for (size_t i = PING_HEADER; i < size; i++)
        if (p[i] != (unsigned char)(i + 7u * get32(p + 8)))
            return PING_CORRUPT;
    *seq = get32(p + 8);
    return PING_OK;
}

const char *ping_kind_name(enum ping_kind k)
{
    switch (k) {
    case PING_OK: return "ok";
    case PING_WRONG_SIZE: return "wrong size";
    case PING_NOT_OURS: return "not ours";
    case PING_CORRUPT: return "bad check";
    }
    return "?";
}
