/* fuzz_tls_drive.h — what both TLS harnesses (fuzz_tls.c, the server side, and
 * fuzz_tls_client.c) do with their input: feed it to one side of a connection
 * over memory BIOs, piece by piece, and check every result. Header-only, as
 * fuzz.h.
 *
 * The input is cut into pieces, each piece's size from the byte before it
 * (1 + byte % 512), so records split anywhere. After each piece the side takes
 * one step: the handshake until it is done, then a read. Properties: every step
 * returns one of the statuses tls.h names (or a byte count within the buffer),
 * TLS_FAILED and TLS_RESET come with a one-line printable reason, and after
 * TLS_FAILED, TLS_RESET or TLS_CLOSED no step succeeds: a broken session stays
 * broken. What the side would send back is thrown away. */
#ifndef KODAMA_FUZZ_TLS_DRIVE_H
#define KODAMA_FUZZ_TLS_DRIVE_H

#include <openssl/bio.h>
#include <string.h>

#include "fuzz.h"
#include "lib/tls.h"

static inline void fuzz_tls_check_reason(const char *err)
{
    FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL, "reason '%s'", err);
    for (const char *p = err; *p; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "unprintable reason '%s'", err);
}

static inline int fuzz_tls_is_status(long rc)
{
    return rc == TLS_OK || rc == TLS_WANT_READ || rc == TLS_WANT_WRITE || rc == TLS_CLOSED ||
           rc == TLS_RESET || rc == TLS_FAILED;
}

/* Feed data to ssl (whose BIOs are in and out); on_handshake, if not NULL, is
 * called once when the handshake has finished, with arg. */
static inline void fuzz_tls_drive(SSL *ssl, BIO *in, BIO *out, const uint8_t *data, size_t size,
                                  void (*on_handshake)(SSL *ssl, void *arg), void *arg)
{
    char err[256], buf[4096];
    int broken = 0, done = 0;

    for (size_t off = 0; off < size || (!broken && off == size);) {
        size_t n = size - off;
        long rc;

        if (n > 0) {
            size_t piece = 1 + data[off] % 512;

            off++;
            n = size - off < piece ? size - off : piece;
            BIO_write(in, data + off, (int)n);
            off += n;
        } else {
            off++;  /* one more round with nothing new */
        }
        (void)BIO_reset(out);
        err[0] = '\0';
        rc = done ? tls_read(ssl, buf, sizeof buf, err, sizeof err)
                  : tls_handshake(ssl, err, sizeof err);
        FUZZ_CHECK(fuzz_tls_is_status(rc) || (done && rc > 0 && rc <= (long)sizeof buf),
                   "unexpected result %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET)
            fuzz_tls_check_reason(err);
        if (broken)
            FUZZ_CHECK(rc <= 0 && rc != TLS_OK, "a broken session went on: %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET || rc == TLS_CLOSED)
            broken = 1;
        if (rc == TLS_OK && !done) {
            done = 1;
            if (on_handshake)
                on_handshake(ssl, arg);
        }
    }
}

#endif
