/* pattern.h — the deterministic bytes bench sends, so that every echoed byte can be
 * checked without keeping a copy of what was sent.
 *
 * Byte i of stream k is byte i % 8 of mix64(seed_k + i / 8 * golden): a wrong,
 * missing, reordered or extra byte lands where another value is expected (a
 * 1-in-256 chance per byte of a lucky match, none for a run of them). Generating
 * and checking cost one multiply-xorshift per 8 bytes, with no per-connection
 * buffer: any window of the stream can be made again from (seed, offset). */
#ifndef KODAMA_PATTERN_H
#define KODAMA_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* The splitmix64 finaliser: a bijective 64-bit mixer. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The seed of stream (or datagram) number id. */
static inline uint64_t pattern_seed(uint64_t id)
{
    return mix64(id * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
}

/* Write bytes [off, off + len) of the stream with this seed into buf. */
void pattern_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t len);

/* Compare buf with bytes [off, off + len) of the stream. Returns len when they all
 * match, or the index in buf of the first byte that differs. */
size_t pattern_check(uint64_t seed, uint64_t off, const unsigned char *buf, size_t len);

#endif
