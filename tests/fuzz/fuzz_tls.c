/* fuzz_tls.c — a "+tls" listener's handshake and record reading (lib/tls.c over
 * OpenSSL) fed arbitrary bytes as if they came from a client.
 *
 * Input: the bytes a client sends, cut into records of the sizes OpenSSL reads
 * (fuzz_tls_drive.h, which checks the properties: statuses, printable one-line
 * reasons, a session that broke stays broken). The server context (with its
 * self-signed certificate, the expensive part) is made once. */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tls_drive.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    BIO *in, *out;
    SSL *ssl = tls_server_conn_mem(server(), &in, &out);

    FUZZ_CHECK(ssl != NULL, "no SSL");
    fuzz_tls_drive(ssl, in, out, data, size, NULL, NULL);
    tls_conn_free(ssl);
    return 0;
}
