/* svc_chargen.c — the character generator of RFC 864.
 *
 * tcp: the 95 rotating lines, over and over, until the peer closes; its input is
 * read and thrown away. The output is static memory shared by every connection
 * (several cycles, so that each send moves a good share of a socket buffer): a
 * connection holds no buffer of its own, and a peer that reads nothing only fills
 * its socket until --send-timeout resets it. udp: each datagram is answered with
 * the first CHARGEN_UDP_LINES lines, which the UDP guard cuts to the request's
 * length (chargen is a stream of characters: any prefix is still chargen). */
#include <pthread.h>

#include "serve/services/svc_formats.h"

#define CHARGEN_FIRST ' '
#define CHARGEN_CHARS 95            /* 0x20 .. 0x7E */
#define CYCLES_PER_SEND 8           /* 8 × 7030 bytes: about 55 KiB */

void chargen_line(unsigned long i, char out[CHARGEN_LINE_LEN])
{
    unsigned start = (unsigned)(i % CHARGEN_CHARS);

    for (unsigned k = 0; k < CHARGEN_WIDTH; k++)
        out[k] = (char)(CHARGEN_FIRST + (start + k) % CHARGEN_CHARS);
    out[CHARGEN_WIDTH] = '\r';
    out[CHARGEN_WIDTH + 1] = '\n';
}

void chargen_fill(char *buf, size_t len, unsigned long first)
{
    char line[CHARGEN_LINE_LEN];

    for (unsigned long i = first; len > 0; i++) {
        size_t n = len < sizeof line ? len : sizeof line;

        chargen_line(i, line);
        for (size_t k = 0; k < n; k++)
            buf[k] = line[k];
        buf += n;
        len -= n;
    }
}

static char cycles[CYCLES_PER_SEND * CHARGEN_LINES * CHARGEN_LINE_LEN];
static pthread_once_t cycles_once = PTHREAD_ONCE_INIT;

static void cycles_make(void)
{
    chargen_fill(cycles, sizeof cycles, 0);
}

static void chargen_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    (void)ctx;
    pthread_once(&cycles_once, cycles_make);
    plan_send_repeating(p, cycles, sizeof cycles);
}

static long chargen_udp(const struct svc_ctx *ctx, const char **reply)
{
    (void)ctx;
    pthread_once(&cycles_once, cycles_make);
    *reply = cycles;
    return CHARGEN_UDP_LINES * CHARGEN_LINE_LEN;
}

const struct service service_chargen = {
    .name = "chargen",
    .summary = "send the 72-character rotating lines until the peer closes (RFC 864)",
    .tcp_open = chargen_open,
    .udp_reply = chargen_udp,
};
