/* fuzz_tls_client.c — the client side of TLS (lib/tls_client.c and lib/tls.c over
 * OpenSSL), as `send --tls`, `connect --tls`, ping and bench use it, fed arbitrary
 * bytes as if they came from a server: ServerHello, certificates, records, alerts.
 *
 * Input: its first byte picks the client's set-up (no verification, a pinned
 * fingerprint, or verification against an empty trust store, with or without
 * ALPN); then the bytes a server sends, cut into pieces as fuzz_tls_drive.h
 * does (which checks statuses, reasons and that a broken session stays broken).
 * Also: a handshake the client finished passes or fails the pin check with a
 * printable reason. */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tls_drive.h"

#define PIN "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:" \
            "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
#define SETUPS 4

static const struct tls_client_config configs[SETUPS] = {
    { .insecure = 1 },
    { .fingerprint = PIN, .alpn = "h2,http/1.1" },
    { .insecure = 1, .alpn = "kodama", .sni = "localhost" },
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

static void check_pin(SSL *ssl, void *arg)
{
    const struct tls_client_config *cfg = arg;
    char err[256] = "";

    if (cfg->fingerprint && tls_check_pin(ssl, cfg->fingerprint, err, sizeof err) < 0)
        fuzz_tls_check_reason(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned which = size > 0 ? data[0] % SETUPS : 0;
    SSL_CTX *ctx = context(which);
    BIO *in, *out;
    SSL *ssl;
    size_t skip;

    if (ctx == NULL)
        return 0;       /* the set-up itself failed here (and said why) */
    ssl = tls_client_conn_mem(ctx, &configs[which], "127.0.0.1", &in, &out);
    FUZZ_CHECK(ssl != NULL, "no SSL");
    skip = size > 0;    /* the set-up's byte */
    fuzz_tls_drive(ssl, in, out, data + skip, size - skip, check_pin, (void *)&configs[which]);
    tls_conn_free(ssl);
    return 0;
}
