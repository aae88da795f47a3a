/* tls_trace.c — --trace for TLS connections (see tls.h). OpenSSL reads and writes
 * the socket itself, so the socket calls behind a TLS call are not ours to
 * narrate; instead each TLS call gets a line with what the socket BIO moved for it
 * (its own counters: nothing to install), and OpenSSL's message callback names
 * each handshake message and alert as it goes by. */
#include "lib/tls.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "lib/trace.h"

static const char *handshake_name(unsigned type)
{
    switch (type) {
    case SSL3_MT_HELLO_REQUEST: return "HelloRequest";
    case SSL3_MT_CLIENT_HELLO: return "ClientHello";
    case SSL3_MT_SERVER_HELLO: return "ServerHello";
    case SSL3_MT_NEWSESSION_TICKET: return "NewSessionTicket";
    case SSL3_MT_END_OF_EARLY_DATA: return "EndOfEarlyData";
    case SSL3_MT_ENCRYPTED_EXTENSIONS: return "EncryptedExtensions";
    case SSL3_MT_CERTIFICATE: return "Certificate";
    case SSL3_MT_SERVER_KEY_EXCHANGE: return "ServerKeyExchange";
    case SSL3_MT_CERTIFICATE_REQUEST: return "CertificateRequest";
    case SSL3_MT_SERVER_DONE: return "ServerHelloDone";
    case SSL3_MT_CERTIFICATE_VERIFY: return "CertificateVerify";
    case SSL3_MT_CLIENT_KEY_EXCHANGE: return "ClientKeyExchange";
    case SSL3_MT_FINISHED: return "Finished";
    case SSL3_MT_KEY_UPDATE: return "KeyUpdate";
    default: return NULL;
    }
}

/* Only the messages a person debugging a handshake looks for: record headers and
 * the inner content types of TLS 1.3 records would double every line. */
static void on_message(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    const unsigned char *b = buf;
    const char *dir = write_p ? "sent" : "received";
    int fd = SSL_get_fd(ssl);

    (void)version;
    (void)arg;
    if (content_type == SSL3_RT_HANDSHAKE && len > 0) {
        const char *name = handshake_name(b[0]);

        if (name)
            trace_note("tls(%d) %s %s (%zu B)", fd, dir, name, len);
        else
            trace_note("tls(%d) %s handshake message %u (%zu B)", fd, dir, b[0], len);
    } else if (content_type == SSL3_RT_ALERT && len >= 2) {
        trace_note("tls(%d) %s alert: %s %s", fd, dir, b[0] == SSL3_AL_FATAL ? "fatal" : "warning",
                   SSL_alert_desc_string_long(b[1]));
    } else if (content_type == SSL3_RT_CHANGE_CIPHER_SPEC) {
        trace_note("tls(%d) %s ChangeCipherSpec", fd, dir);
    }
}

void tls_trace_attach(SSL *ssl)
{
    SSL_set_msg_callback(ssl, on_message);
}

/* "  (on the wire: 27 B in, 80 B out)", or "" when nothing moved. */
static void wire_note(SSL *ssl, struct tls_wire *last, const char *extra, char *out, size_t len)
{
    BIO *rb = SSL_get_rbio(ssl), *wb = SSL_get_wbio(ssl);
    uint64_t in = rb ? BIO_number_read(rb) : 0, outb = wb ? BIO_number_written(wb) : 0;
    uint64_t din = in - last->in, dout = outb - last->out;
    char moved[80] = "";

    last->in = in;
    last->out = outb;
    if (din && dout)
        snprintf(moved, sizeof moved, "on the wire: %llu B in, %llu B out",
                 (unsigned long long)din, (unsigned long long)dout);
    else if (din || dout)
        snprintf(moved, sizeof moved, "on the wire: %llu B %s",
                 (unsigned long long)(din ? din : dout), din ? "in" : "out");
    if (extra && moved[0])
        snprintf(out, len, "  (%s; %s)", extra, moved);
    else if (extra || moved[0])
        snprintf(out, len, "  (%s)", extra ? extra : moved);
    else
        out[0] = '\0';
}

/* "want read", "5", "done TLSv1.3 TLS_AES_256_GCM_SHA384", "failed: ...". */
static void result_text(SSL *ssl, enum tls_trace_op op, long rc, const char *why, char *out,
                        size_t len)
{
    switch (rc) {
    case TLS_OK:
        if (op == TLS_TRACE_HANDSHAKE)
            snprintf(out, len, "done %s %s%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
                     !SSL_is_server(ssl) && tls_session_reused(ssl) ? " (resumed)" : "");
        else
            snprintf(out, len, op == TLS_TRACE_SHUTDOWN ? "close_notify sent" : "0");
        return;
    case TLS_WANT_READ: snprintf(out, len, "want read"); return;
    case TLS_WANT_WRITE: snprintf(out, len, "want write"); return;
    case TLS_CLOSED: snprintf(out, len, "0"); return;
    case TLS_RESET: snprintf(out, len, "reset: %s", why && why[0] ? why : "?"); return;
    case TLS_FAILED: snprintf(out, len, "failed: %s", why && why[0] ? why : "?"); return;
    default: snprintf(out, len, "%ld", rc); return;
    }
}

void tls_trace_op(SSL *ssl, struct tls_wire *last, enum tls_trace_op op, size_t len, long rc,
                  const char *why)
{
    static const char *const names[] = { "handshake", "read", "write", "shutdown" };
    const char *extra = NULL;
    char result[320], note[160], call[64];
    int fd = SSL_get_fd(ssl);

    if (rc == TLS_CLOSED)
        extra = tls_got_close_notify(ssl) ? "peer closed: close_notify"
                                          : "peer closed: FIN without close_notify";
    result_text(ssl, op, rc, why, result, sizeof result);
    wire_note(ssl, last, extra, note, sizeof note);
    if (op == TLS_TRACE_READ || op == TLS_TRACE_WRITE)
        snprintf(call, sizeof call, "%s(%d, %zu)", names[op], fd, len);
    else
        snprintf(call, sizeof call, "%s(%d)", names[op], fd);
    trace_note("tls %s = %s%s", call, result, note);
}
