/* fuzz_tls_client.c — the client side of TLS (lib/tls_client.c and lib/tls.c over
 * OpenSSL), as `send --tls`, `connect --tls`, ping and bench use it, fed arbitrary
 * bytes as if they came from a server: ServerHello, certificates, records, alerts.
 *
 * Input: its first byte picks the client's set-up (no verification, a pinned
 * fingerprint, or verification against an empty trust store, with or without
 * ALPN); then the bytes a server sends, cut into pieces as in fuzz_tls.c (each
 * piece's size from the byte before it). Properties: every call returns one of
 * the statuses tls.h names (or a byte count within the buffer), an error comes
 * with a one-line printable reason, after TLS_FAILED, TLS_RESET or TLS_CLOSED
 * the next call does not succeed, and a handshake the client finished passes
 * or fails the pin check with a printable reason. */
#include <openssl/bio.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "lib/tls.h"

#define PIN "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:" \
            "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
#define SETUPS 4

static const struct tls_client_config configs[SETUPS] = {
    { .insecure = 1 },
    { .fingerprint = PIN, .alpn = "h2,http/1.1" },
    { .insecure = 1, .alpn = "kodama", .sni = "fuzz.example" },
    { .cafile = "/dev/null" },     /* trusts nothing: every chain fails */
};

/* The contexts, made once each; NULL where the set-up cannot be had here. */
static SSL_CTX *context(unsigned which)
{
    static SSL_CTX *ctx[SETUPS];
    static int tried[SETUPS];

    if (!tried[which]) {
        char err[512] = "";

        tried[which] = 1;
        ctx[which] = tls_client_ctx(&configs[which], err, sizeof err);
        FUZZ_CHECK(ctx[which] != NULL || err[0] != '\0', "no context and no reason");
    }
    return ctx[which];
}

static int is_status(long rc)
{
    return rc == TLS_OK || rc == TLS_WANT_READ || rc == TLS_WANT_WRITE || rc == TLS_CLOSED ||
           rc == TLS_RESET || rc == TLS_FAILED;
}

static void check_reason(const char *err)
{
    FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL, "reason '%s'", err);
    for (const char *p = err; *p; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "unprintable reason '%s'", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned which = size > 0 ? data[0] % SETUPS : 0;
    SSL_CTX *ctx = context(which);
    BIO *in, *out;
    SSL *ssl;
    char err[256], buf[4096];
    int broken = 0, done = 0;

    if (ctx == NULL)
        return 0;       /* the set-up itself failed here (and said why) */
    ssl = tls_client_conn_mem(ctx, &configs[which], "127.0.0.1", &in, &out);
    FUZZ_CHECK(ssl != NULL, "no SSL");
    for (size_t off = size > 0 ? 1 : 0; off < size || (!broken && off == size);) {
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
        (void)BIO_reset(out);   /* what the client would have sent: thrown away */
        err[0] = '\0';
        rc = done ? tls_read(ssl, buf, sizeof buf, err, sizeof err)
                  : tls_handshake(ssl, err, sizeof err);
        FUZZ_CHECK(is_status(rc) || (done && rc > 0 && rc <= (long)sizeof buf),
                   "unexpected result %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET)
            check_reason(err);
        if (broken)
            FUZZ_CHECK(rc <= 0 && rc != TLS_OK, "a broken session went on: %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET || rc == TLS_CLOSED)
            broken = 1;
        if (rc == TLS_OK && !done) {
            done = 1;
            if (configs[which].fingerprint) {
                err[0] = '\0';
                if (tls_check_pin(ssl, configs[which].fingerprint, err, sizeof err) < 0)
                    check_reason(err);
            }
        }
    }
    tls_conn_free(ssl);
    return 0;
}
