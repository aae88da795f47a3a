/* svc_formats.h — what the classic services and info say, made from plain values
 * (a time, addresses as text) so that the formats can be tested without sockets.
 * kodama.1 describes each format; these functions are its reference. */
#ifndef KODAMA_SVC_FORMATS_H
#define KODAMA_SVC_FORMATS_H

#include <stddef.h>
#include <time.h>

#include "serve/services/service.h"

/* chargen (RFC 864): line i is 72 printable ASCII characters (0x20..0x7E) starting
 * at the (i mod 95)th, wrapping round, then CR LF; after 95 lines it repeats. */
#define CHARGEN_WIDTH 72
#define CHARGEN_LINE_LEN (CHARGEN_WIDTH + 2)
#define CHARGEN_LINES 95
/* udp: the first CHARGEN_UDP_LINES lines, whole: 444 bytes, within RFC 864's 512. */
#define CHARGEN_UDP_LINES 6

void chargen_line(unsigned long i, char out[CHARGEN_LINE_LEN]);
/* len bytes of the pattern from the start of line first: whole lines, then part of
 * the next one if len asks for it. */
void chargen_fill(char *buf, size_t len, unsigned long first);

/* daytime (RFC 867): "Weekday, Month DD, YYYY HH:MM:SS-UTC" CR LF, in English, UTC,
 * e.g. "Monday, February 22, 1982 17:37:43-UTC\r\n". Returns the length, or -1 if
 * t has no such date or cap is too small (DAYTIME_MAX always suffices). */
#define DAYTIME_MAX 64
long daytime_format(time_t t, char *buf, size_t cap);

/* time (RFC 868): t as seconds since 1900-01-01 00:00 UTC, modulo 2^32 (after
 * 2036-02-07 06:28:16 UTC it wraps to 0, as RFC 868 clients expect), big-endian. */
#define TIME_LEN 4
#define TIME_EPOCH_1900 2208988800UL   /* 1970-01-01 in seconds since 1900 */
void time_format(time_t t, unsigned char out[TIME_LEN]);

/* info: who served and what it saw. A NULL or empty client is left out. */
struct info_fields {
    const char *name;           /* the instance (--name) */
    const char *proto;          /* tcp, udp or unix */
    const char *local;          /* address:port as the peer reached us; "" unknown */
    const char *peer;           /* the peer as the socket sees it */
    const char *client;         /* the client a PROXY protocol header named */
    /* "+tls" (tls_version NULL: none): what the handshake said, and the client's
     * certificate if it sent one (client_cert). */
    const char *tls_version, *tls_cipher, *sni, *alpn;
    int client_cert;
    const char *cert_subject, *cert_issuer, *cert_fingerprint;
};

#define INFO_LINE_MAX PLAN_COPY_MAX
/* --name's longest: a host name's (HOST_NAME_MAX). With it the line always fits for
 * IP addresses, even escaped as JSON. */
#define INFO_NAME_MAX 64
/* A client certificate's subject and issuer, and the SNI, are cut to this many
 * bytes, so that the line fits for any printable names (names full of bytes that
 * must be escaped may still not fit: then nothing is sent, a clean close). */
#define INFO_CERT_NAME_MAX 96
#define INFO_SNI_MAX 64
/* One line, ending in LF. key=value (json 0): name=V proto=V local=V peer=V
 * [client=V] [tls=V cipher=V sni=V alpn=V client_cert=yes|no [cert_subject=V
 * cert_issuer=V cert_fingerprint=V]], space-separated (sni and alpn "" when
 * none); a value is bare when every byte is printable ASCII
 * other than space, '"' and '\\', else in double quotes with \" \\ and \xHH (two
 * lowercase hex digits) for bytes outside 0x20..0x7E. json 1: one object with the
 * same keys in the same order, strings escaped as JSON (\" \\ \n \r \t, \u00XX for
 * other control bytes and every byte from 0x7F up: a byte is the code point of its
 * value). Returns the length, or -1 if the line would not fit in cap. */
long info_format(const struct info_fields *f, int json, char *buf, size_t cap);

#endif
