/* ping.h — the payload of `kodama ping`'s probes, built and read back. Pure: no
 * sockets, so it is unit-tested and fuzzed on its own.
 *
 * A probe of SIZE bytes (at least PING_HEADER):
 *
 *   0..3    "KDMP", the magic
 *   4..7    the run's id, big-endian: a reply of another run is not ours
 *   8..11   the sequence number, big-endian, from 0
 *   12..15  a check, big-endian: FNV-1a (32 bits) of bytes 0..11 and 16..SIZE-1
 *   16..    filler: byte i is (i + 7 * seq) mod 256
 *
 * Every step of FNV-1a is a bijection of its state for a given byte, so any one
 * changed byte of a probe changes the check: a reply with a flipped byte is never
 * taken for a good one. The filler is compared too, so a reply is good only if it
 * is the very probe. */
#ifndef KODAMA_PING_H
#define KODAMA_PING_H

#include <stddef.h>
#include <stdint.h>

#define PING_HEADER 16
#define PING_SIZE_DEFAULT 56
#define PING_SIZE_MAX 65507         /* what a udp datagram can carry */

enum ping_kind {
    PING_OK,            /* a good reply: *seq is its number */
    PING_WRONG_SIZE,    /* not SIZE bytes */
    PING_NOT_OURS,      /* no magic, or another run's id */
    PING_CORRUPT,       /* ours, but the check does not match */
};

/* Fill buf (size bytes, size >= PING_HEADER) with probe seq of run id. */
void ping_build(void *buf, size_t size, uint32_t id, uint32_t seq);

/* Read back the len bytes of a reply to a probe of size bytes. */
enum ping_kind ping_parse(const void *buf, size_t len, size_t size, uint32_t id,
                          uint32_t *seq);

/* "ok", "wrong size", "not ours", "bad check". */
const char *ping_kind_name(enum ping_kind k);

#endif
