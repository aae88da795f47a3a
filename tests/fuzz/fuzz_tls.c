/* fuzz_tls.c — a "+tls" listener's handshake and record reading (lib/tls.c over
 * OpenSSL) fed arbitrary bytes as if they came from a client.
 *
 * Input: the bytes a client sends, cut into records of the sizes OpenSSL reads.
 * Properties: every call returns one of the statuses tls.h names (or a byte count
 * within the buffer), an error always comes with a one-line printable reason, and
 * after TLS_FAILED, TLS_RESET or TLS_CLOSED the next call does not succeed: a
 * session that broke stays broken. The server context (with its self-signed
 * certificate, the expensive part) is made once. */
#include <openssl/bio.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "lib/tls.h"

static struct tls_server *server(void)
{
    static struct tls_server *ts;
    static const char *names[] = { "fuzz.example" };
    static const char *ips[] = { "127.0.0.1" };

    if (ts == NULL) {
        struct tls_server_config cfg = { .names = names, .nnames = 1, .ips = ips, .nips = 1,
                                         .alpn = "h2,http/1.1" };
        char err[512];

        ts = tls_server_new(&cfg, err, sizeof err);
        FUZZ_CHECK(ts != NULL, "tls_server_new: %s", err);
    }
    return ts;
}

static int is_status(long rc)
{
    return rc == TLS_OK || rc == TLS_WANT_READ || rc == TLS_WANT_WRITE || rc == TLS_CLOSED ||
           rc == TLS_RESET || rc == TLS_FAILED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    BIO *in, *out;
    SSL *ssl = tls_server_conn_mem(server(), &in, &out);
    char err[256], buf[4096];
    int broken = 0, done = 0;

    FUZZ_CHECK(ssl != NULL, "no SSL");
    for (size_t off = 0; off < size || (!broken && off == size);) {
        size_t n = size - off;
        long rc;

        if (n > 0) {
            /* The first byte picks the next piece's size: records split anywhere. */
            size_t piece = 1 + data[off] % 512;

            off++;
            n = size - off < piece ? size - off : piece;
            BIO_write(in, data + off, (int)n);
            off += n;
        } else {
            off++;  /* one more round with nothing new */
        }
        (void)BIO_reset(out);   /* what we would have sent: thrown away */
        err[0] = '\0';
        rc = done ? tls_read(ssl, buf, sizeof buf, err, sizeof err)
                  : tls_handshake(ssl, err, sizeof err);
        FUZZ_CHECK(is_status(rc) || (done && rc > 0 && rc <= (long)sizeof buf),
                   "unexpected result %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET) {
            FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL, "reason '%s'", err);
            for (const char *p = err; *p; p++)
                FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "unprintable reason '%s'", err);
        }
        if (broken)
            FUZZ_CHECK(rc <= 0 && rc != TLS_OK, "a broken session went on: %ld", rc);
        if (rc == TLS_FAILED || rc == TLS_RESET || rc == TLS_CLOSED)
            broken = 1;
        if (rc == TLS_OK && !done)
            done = 1;
    }
    tls_conn_free(ssl);
    return 0;
}
