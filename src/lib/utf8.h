/* utf8.h — telling well-formed UTF-8 from bytes that only look like text.
 *
 * Log lines and metric labels quote what the network and the user gave us; JSON and
 * the Prometheus text format both require UTF-8, so whoever escapes such text asks
 * here how long each valid sequence is and replaces the rest. */
#ifndef KODAMA_UTF8_H
#define KODAMA_UTF8_H

#include <stddef.h>

/* U+FFFD, the replacement character, in UTF-8. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* The length (1 to 4) of the well-formed UTF-8 sequence at s (n bytes available),
 * or 0 if it is not one: a stray continuation byte, an overlong form, a surrogate,
 * a code point above U+10FFFF or a sequence cut short (RFC 3629, table 3-7 of
 * Unicode). */
static inline size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    /* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

#endif
