/* pattern.c — see pattern.h. */
#include "lib/pattern.h"

#include <string.h>

static inline uint64_t word_at(uint64_t seed, uint64_t word)
{
    return mix64(seed + word * 0x9e3779b97f4a7c15ULL);
}

void pattern_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t len)
{
    while (len > 0) {
        uint64_t w = word_at(seed, off >> 3);
        size_t skip = (size_t)(off & 7), n = 8 - skip;
        unsigned char b[8];

        if (n > len)
            n = len;
        /* Host byte order: the bytes only ever come back to this host. */
        memcpy(b, &w, 8);
        memcpy(buf, b + skip, n);
        buf += n;
        off += n;
        len -= n;
    }
}

size_t pattern_check(uint64_t seed, uint64_t off, const unsigned char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        uint64_t w = word_at(seed, off >> 3);
        size_t skip = (size_t)(off & 7), n = 8 - skip;
        unsigned char b[8];

        if (n > len - done)
            n = len - done;
        memcpy(b, &w, 8);
        if (memcmp(buf + done, b + skip, n) != 0) {
            for (size_t i = 0; i < n; i++)
                if (buf[done + i] != b[skip + i])
                    return done + i;
        }
        done += n;
        off += n;
    }
    return len;
}
