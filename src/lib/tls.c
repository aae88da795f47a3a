/* tls.c — see tls.h. OpenSSL does the protocol; this file chooses its settings,
 * turns its errors into one line and its states into what the loop must wait for. */
#include "lib/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/tls_cert.h"
#include "lib/tls_impl.h"
#include "lib/util.h"

#ifndef SSL_OP_ENABLE_KTLS
#define SSL_OP_ENABLE_KTLS 0
#endif

/* ------------------------------------------------------------------ errors */

void tls_error_text(char *err, size_t errlen, const char *what)
{
    unsigned long e, last = 0, sys = 0;
    char reason[256] = "";

    while ((e = ERR_get_error()) != 0) {
        last = e;   /* the last is the most specific */
        if (ERR_SYSTEM_ERROR(e) && sys == 0)
            sys = e;
    }
    /* A file that cannot be opened: its errno says more than "system lib". */
    if (sys) {
        snprintf(reason, sizeof reason, "%s", strerror(ERR_GET_REASON(sys)));
        last = 0;
    }
    if (last) {
        const char *r = ERR_reason_error_string(last);

        if (r)
            snprintf(reason, sizeof reason, "%s", r);
        else
            ERR_error_string_n(last, reason, sizeof reason);
    }
    if (what && reason[0])
        snprintf(err, errlen, "%s: %s", what, reason);
    else
        snprintf(err, errlen, "%s", what ? what : reason[0] ? reason : "TLS failure");
    printable(err);
}

void tls_fingerprint(X509 *cert, char out[TLS_FINGERPRINT_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    out[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1)
        return;
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

/* ------------------------------------------------------------------ kTLS */

static int ktls_probe(const char **why)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1, ok = 0;

    *why = "cannot make a loopback connection to probe it";
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) < 0)
        goto end;
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) < 0)
        goto end;
    a = accept(l, NULL, NULL);
    if (a < 0)
        goto end;
    if (setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == 0) {
        ok = 1;
        *why = NULL;
    } else {
        *why = errno == ENOENT ? "the kernel has no tls module (TCP_ULP \"tls\": ENOENT)"
                               : "TCP_ULP \"tls\" refused";
    }
end:
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return ok;
}

static pthread_once_t ktls_once = PTHREAD_ONCE_INIT;
static int ktls_ok;
static const char *ktls_why;

static void ktls_probe_once(void)
{
    ktls_ok = ktls_probe(&ktls_why);
}

int tls_ktls_available(const char **why)
{
    if (SSL_OP_ENABLE_KTLS == 0) {
        *why = "this OpenSSL was built without kTLS";
        return 0;
    }
    pthread_once(&ktls_once, ktls_probe_once);
    *why = ktls_why;
    return ktls_ok;
}

/* ------------------------------------------------------------------ settings */

int tls_alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t off = 0;

    while (*list) {
        size_t n = strcspn(list, ",");

        if (n == 0 || n > 255 || off + 1 + n > cap)
            return -1;
        out[off++] = (unsigned char)n;
        memcpy(out + off, list, n);
        off += n;
        list += n;
        if (*list == ',')
            list++;
    }
    return (int)off;
}

/* What both ends share: TLS 1.2 or 1.3, no renegotiation, writes that may be
 * partial (a ring buffer's pieces), buffers given back while idle (an idle TLS
 * connection should cost little more than a plain one), a FIN without
 * close_notify read as the end of the stream (many clients do that), and the
 * kernel's record layer where it has one. */
void tls_common_settings(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                             SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
}

/* ------------------------------------------------------------------ server */

struct tls_server {
    struct tls_server_config cfg;
    pthread_mutex_t lock;           /* guards ctx and fingerprint against a reload */
    SSL_CTX *ctx;
    unsigned char alpn[256];
    int alpn_len;
    char fingerprint[TLS_FINGERPRINT_LEN];
};

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    struct tls_server *ts = arg;
    unsigned char *chosen;

    (void)ssl;
    if (SSL_select_next_proto(&chosen, outlen, ts->alpn, (unsigned)ts->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;   /* no protocol in common: go on without ALPN */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static int load_key_pair(SSL_CTX *ctx, const struct tls_server_config *cfg, char *fp,
                         char *err, size_t errlen)
{
    char what[600];

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        snprintf(what, sizeof what, "cannot read the certificate %s", cfg->cert_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof what, "cannot read the key %s", cfg->key_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof what, "the key %s does not match the certificate %s",
                 cfg->key_file, cfg->cert_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    tls_fingerprint(SSL_CTX_get0_certificate(ctx), fp);
    return 0;
}

static int self_signed(SSL_CTX *ctx, const struct tls_server_config *cfg, char *fp, char *err,
                       size_t errlen)
{
    EVP_PKEY *key;
    X509 *cert;
    int rc = 0;

    rc = tls_cert_selfsigned(cfg->names, cfg->nnames, cfg->ips, cfg->nips, &key, &cert);
    if (rc == -2)
        snprintf(err, errlen, "too many names for the self-signed certificate");
    else if (rc < 0)
        tls_error_text(err, errlen, "cannot make a self-signed certificate");
    if (rc < 0)
        return -1;
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        tls_error_text(err, errlen, "cannot use the self-signed certificate");
        rc = -1;
    } else {
        tls_fingerprint(cert, fp);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static int client_certs(SSL_CTX *ctx, const struct tls_server_config *cfg, char *err,
                        size_t errlen)
{
    STACK_OF(X509_NAME) *names;
    char what[600];

    if (cfg->client_ca_file == NULL)
        return 0;
    names = SSL_load_client_CA_file(cfg->client_ca_file);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->client_ca_file, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        snprintf(what, sizeof what, "cannot read the client CA file %s", cfg->client_ca_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (cfg->client_cert_required ?
                                               SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    return 0;
}

/* A complete server context from cfg, or NULL with the reason in err. */
static SSL_CTX *server_ctx(struct tls_server *ts, char *fp, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc;

    if (ctx == NULL) {
        tls_error_text(err, errlen, "cannot make a TLS context");
        return NULL;
    }
    tls_common_settings(ctx);
    rc = ts->cfg.cert_file ? load_key_pair(ctx, &ts->cfg, fp, err, errlen)
                           : self_signed(ctx, &ts->cfg, fp, err, errlen);
    if (rc == 0)
        rc = client_certs(ctx, &ts->cfg, err, errlen);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ts->alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, ts);
    return ctx;
}

struct tls_server *tls_server_new(const struct tls_server_config *cfg, char *err,
                                  size_t errlen)
{
    struct tls_server *ts = xcalloc(1, sizeof *ts);

    ts->cfg = *cfg;
    if (cfg->alpn && (ts->alpn_len = tls_alpn_wire(cfg->alpn, ts->alpn, sizeof ts->alpn)) < 0) {
        snprintf(err, errlen, "--alpn '%s': not a comma-separated list of names of 1 to 255 "
                 "bytes", cfg->alpn);
        free(ts);
        return NULL;
    }
    ts->ctx = server_ctx(ts, ts->fingerprint, err, errlen);
    /* The names were for the self-signed certificate, made now: the caller's. */
    ts->cfg.names = ts->cfg.ips = NULL;
    ts->cfg.nnames = ts->cfg.nips = 0;
    if (ts->ctx == NULL) {
        free(ts);
        return NULL;
    }
    pthread_mutex_init(&ts->lock, NULL);
    return ts;
}

void tls_server_free(struct tls_server *ts)
{
    if (ts == NULL)
        return;
    SSL_CTX_free(ts->ctx);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
}

const char *tls_server_fingerprint(struct tls_server *ts)
{
    return ts->fingerprint;
}

int tls_server_reload(struct tls_server *ts, char *err, size_t errlen)
{
    char fp[TLS_FINGERPRINT_LEN];
    SSL_CTX *fresh, *old;

    if (ts->cfg.cert_file == NULL)
        return 0;
    fresh = server_ctx(ts, fp, err, errlen);
    if (fresh == NULL)
        return -1;
    pthread_mutex_lock(&ts->lock);
    old = ts->ctx;
    ts->ctx = fresh;
    memcpy(ts->fingerprint, fp, sizeof fp);
    pthread_mutex_unlock(&ts->lock);
    SSL_CTX_free(old);      /* connections made from it hold references of their own */
    return 1;
}

SSL *tls_server_conn(struct tls_server *ts, int fd)
{
    SSL *ssl;

    pthread_mutex_lock(&ts->lock);
    ssl = SSL_new(ts->ctx);
    pthread_mutex_unlock(&ts->lock);
    if (ssl && SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (ssl)
        SSL_set_accept_state(ssl);
    return ssl;
}

SSL *tls_server_conn_mem(struct tls_server *ts, BIO **in, BIO **out)
{
    SSL *ssl;

    pthread_mutex_lock(&ts->lock);
    ssl = SSL_new(ts->ctx);
    pthread_mutex_unlock(&ts->lock);
    *in = BIO_new(BIO_s_mem());
    *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || *in == NULL || *out == NULL) {
        SSL_free(ssl);
        BIO_free(*in);
        BIO_free(*out);
        return NULL;
    }
    SSL_set_bio(ssl, *in, *out);    /* the SSL owns them now */
    SSL_set_accept_state(ssl);
    return ssl;
}

/* ------------------------------------------------------------------ I/O */

/* An SSL_ERROR_SSL that is really the peer going away mid-way: OpenSSL 3 reports an
 * EOF in the middle of a record or of the handshake so. */
static int is_eof_error(void)
{
    unsigned long e = ERR_peek_last_error();

    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* The status for a call that returned rc <= 0. */
static int status_of(SSL *ssl, int rc, int handshake, char *err, size_t errlen)
{
    int e = SSL_get_error(ssl, rc);
    long vr;

    switch (e) {
    case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        /* A close_notify: in the handshake, a peer that went away (with a reason). */
        if (handshake)
            snprintf(err, errlen, "the peer closed the connection (close_notify)");
        ERR_clear_error();
        return handshake ? TLS_RESET : TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
            snprintf(err, errlen, "%s", errno ? strerror(errno) : "the peer closed the connection");
            ERR_clear_error();
            return handshake || errno ? TLS_RESET : TLS_CLOSED;
        }
        snprintf(err, errlen, "%s", strerror(errno));
        ERR_clear_error();
        return TLS_FAILED;
    default:
        if (is_eof_error()) {
            snprintf(err, errlen, "the peer closed the connection");
            ERR_clear_error();
            return handshake ? TLS_RESET : TLS_CLOSED;
        }
        vr = SSL_get_verify_result(ssl);
        if (handshake && vr != X509_V_OK) {
            snprintf(err, errlen, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
            ERR_clear_error();
        } else {
            tls_error_text(err, errlen, NULL);
        }
        return TLS_FAILED;
    }
}

int tls_handshake(SSL *ssl, char *err, size_t errlen)
{
    int rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(ssl);
    return rc == 1 ? TLS_OK : status_of(ssl, rc, 1, err, errlen);
}

ssize_t tls_read(SSL *ssl, void *buf, size_t len, char *err, size_t errlen)
{
    size_t n = 0;

    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    return status_of(ssl, 0, 0, err, errlen);
}

ssize_t tls_write(SSL *ssl, const void *buf, size_t len, char *err, size_t errlen)
{
    size_t n = 0;

    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    return status_of(ssl, 0, 0, err, errlen);
}

int tls_shutdown(SSL *ssl)
{
    int rc;

    ERR_clear_error();
    rc = SSL_shutdown(ssl);
    if (rc >= 0)
        return TLS_OK;      /* sent (1: the peer's came too) */
    rc = SSL_get_error(ssl, rc);
    ERR_clear_error();
    return rc == SSL_ERROR_WANT_WRITE ? TLS_WANT_WRITE : rc == SSL_ERROR_WANT_READ
           ? TLS_WANT_READ : TLS_OK;   /* a peer that is gone: nothing to say goodbye to */
}

int tls_pending(SSL *ssl)
{
    return SSL_pending(ssl);
}

int tls_got_close_notify(SSL *ssl)
{
    return (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

static void name_text(X509_NAME *name, char *out, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n;

    out[0] = '\0';
    if (bio == NULL)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_read(bio, out, (int)len - 1)) > 0)
        out[n] = '\0';
    BIO_free(bio);
}

X509 *tls_peer_cert(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    STACK_OF(X509) *chain;

    if (cert || SSL_is_server(ssl))
        return cert;
    chain = SSL_get_peer_cert_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) == 0)
        return NULL;
    cert = sk_X509_value(chain, 0);
    X509_up_ref(cert);
    return cert;
}

void tls_describe(SSL *ssl, struct tls_info *info)
{
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    X509 *peer = tls_peer_cert(ssl);

    memset(info, 0, sizeof *info);
    snprintf(info->version, sizeof info->version, "%s", SSL_get_version(ssl));
    snprintf(info->cipher, sizeof info->cipher, "%s", SSL_get_cipher_name(ssl));
    snprintf(info->sni, sizeof info->sni, "%s", sni ? sni : "");
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    snprintf(info->alpn, sizeof info->alpn, "%.*s", (int)alen, alpn ? (const char *)alpn : "");
    if (peer) {
        info->peer_cert = 1;
        name_text(X509_get_subject_name(peer), info->subject, sizeof info->subject);
        name_text(X509_get_issuer_name(peer), info->issuer, sizeof info->issuer);
        tls_fingerprint(peer, info->fingerprint);
        X509_free(peer);
    }
    info->ktls_tx = BIO_get_ktls_send(SSL_get_wbio(ssl)) > 0;
    info->ktls_rx = BIO_get_ktls_recv(SSL_get_rbio(ssl)) > 0;
}

void tls_conn_free(SSL *ssl)
{
    SSL_free(ssl);
}
