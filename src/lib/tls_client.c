/* tls_client.c — the clients' half of tls.h: the context (what is trusted, what is
 * offered), a connection for a host, the fingerprint pin, and the sessions bench
 * --resume offers again. */
#include "lib/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "lib/tls_impl.h"

/* ------------------------------------------------------------------ the pin */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Two forms only, so that a digit lost or doubled is caught, not shifted into the
 * next byte: 64 hex digits, or 32 pairs with a colon between each (as openssl x509
 * -fingerprint prints them). Any case. */
int tls_parse_fingerprint(const char *text, unsigned char out[TLS_SHA256_LEN])
{
    size_t len = strlen(text), step;

    if (len == 2 * TLS_SHA256_LEN)
        step = 2;
    else if (len == 3 * TLS_SHA256_LEN - 1)
        step = 3;
    else
        return -1;
    for (size_t i = 0; i < TLS_SHA256_LEN; i++) {
        const char *p = text + i * step;
        int hi = hex_digit(p[0]), lo = hex_digit(p[1]);

        if (hi < 0 || lo < 0 || (step == 3 && i + 1 < TLS_SHA256_LEN && p[2] != ':'))
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* ------------------------------------------------------------------ context */

static int offer_alpn(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
    unsigned char wire[256];
    int n = tls_alpn_wire(list, wire, sizeof wire);

    if (n <= 0) {
        snprintf(err, errlen, "--alpn '%s': not a comma-separated list of names of 1 to 255 "
                 "bytes", list);
        return -1;
    }
    if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) != 0) {
        tls_error_text(err, errlen, "cannot offer ALPN");
        return -1;
    }
    return 0;
}

static int use_client_cert(SSL_CTX *ctx, const struct tls_client_config *cfg, char *err,
                           size_t errlen)
{
    char what[600];

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        snprintf(what, sizeof what, "cannot read the client certificate %s", cfg->cert_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    /* Loading the key checks it against the certificate already. */
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        snprintf(what, sizeof what, "cannot read the key %s", cfg->key_file);
        tls_error_text(err, errlen, what);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();      /* "no private key assigned": the mismatch, said better */
        snprintf(err, errlen, "the key %s does not match the certificate %s", cfg->key_file,
                 cfg->cert_file);
        return -1;
    }
    return 0;
}

/* Whom to trust: nobody's word (--insecure, or a pin checked after the
 * handshake), the CA file, or the system's store. */
static int trust(SSL_CTX *ctx, const struct tls_client_config *cfg, char *err, size_t errlen)
{
    char what[600];

    if (cfg->insecure || cfg->fingerprint) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    if (cfg->cafile ? SSL_CTX_load_verify_locations(ctx, cfg->cafile, NULL) != 1
                    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(what, sizeof what, "cannot read the CA file %s",
                 cfg->cafile ? cfg->cafile : "(the system's store)");
        tls_error_text(err, errlen, what);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

SSL_CTX *tls_client_ctx(const struct tls_client_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    unsigned char pin[TLS_SHA256_LEN];

    if (ctx == NULL) {
        tls_error_text(err, errlen, "cannot make a TLS context");
        return NULL;
    }
    tls_common_settings(ctx);
    if (cfg->fingerprint && tls_parse_fingerprint(cfg->fingerprint, pin) < 0) {
        snprintf(err, errlen, "--fingerprint '%s': not a SHA-256 fingerprint (64 hex digits, "
                 "or 32 pairs with colons between)", cfg->fingerprint);
        goto fail;
    }
    if (cfg->alpn && offer_alpn(ctx, cfg->alpn, err, errlen) < 0)
        goto fail;
    if (cfg->cert_file && use_client_cert(ctx, cfg, err, errlen) < 0)
        goto fail;
    if (trust(ctx, cfg, err, errlen) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_client_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

/* ------------------------------------------------------------------ connections */

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* SNI, and the name (or address) the certificate must be for. */
static int name_the_server(SSL *ssl, const struct tls_client_config *cfg, const char *host)
{
    const char *name = cfg->sni ? cfg->sni : host;

    if (name == NULL)
        return 0;   /* a unix socket without --sni: the chain alone is checked */
    /* SNI carries a name, never an address (RFC 6066 §3). */
    if (!is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, name) != 1)
        return -1;
    if (cfg->insecure || cfg->fingerprint)
        return 0;
    if (is_ip_literal(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

SSL *tls_client_conn(SSL_CTX *ctx, const struct tls_client_config *cfg, int fd,
                     const char *host)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1 || name_the_server(ssl, cfg, host) < 0) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

SSL *tls_client_conn_mem(SSL_CTX *ctx, const struct tls_client_config *cfg, const char *host,
                         BIO **in, BIO **out)
{
    SSL *ssl = SSL_new(ctx);

    *in = BIO_new(BIO_s_mem());
    *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || *in == NULL || *out == NULL || name_the_server(ssl, cfg, host) < 0) {
        SSL_free(ssl);
        BIO_free(*in);
        BIO_free(*out);
        return NULL;
    }
    SSL_set_bio(ssl, *in, *out);    /* the SSL owns them now */
    SSL_set_connect_state(ssl);
    return ssl;
}

int tls_check_pin(SSL *ssl, const char *pin, char *err, size_t errlen)
{
    X509 *cert = tls_peer_cert(ssl);
    unsigned char want[TLS_SHA256_LEN], md[EVP_MAX_MD_SIZE];
    char got[TLS_FINGERPRINT_LEN];
    unsigned int n = 0;
    int ok;

    if (cert == NULL) {
        snprintf(err, errlen, "the server sent no certificate");
        return -1;
    }
    ok = tls_parse_fingerprint(pin, want) == 0 && X509_digest(cert, EVP_sha256(), md, &n) == 1 &&
         n == TLS_SHA256_LEN && memcmp(md, want, TLS_SHA256_LEN) == 0;
    if (!ok) {
        tls_fingerprint(cert, got);
        snprintf(err, errlen, "certificate fingerprint %s is not the pinned one", got);
    }
    X509_free(cert);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ sessions */

int tls_offer_session(SSL *ssl, SSL_SESSION *sess)
{
    return sess == NULL || SSL_set_session(ssl, sess) == 1 ? 0 : -1;
}

SSL_SESSION *tls_resumable_session(SSL *ssl)
{
    SSL_SESSION *sess;

    /* SSL_free drops (marks not resumable) the session of a connection that did
     * not shut down: say this one did, since it is over and its end was clean. */
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    sess = SSL_get1_session(ssl);

    if (sess && !SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

void tls_session_free(SSL_SESSION *sess)
{
    SSL_SESSION_free(sess);
}

int tls_session_reused(SSL *ssl)
{
    return SSL_session_reused(ssl) == 1;
}
