/* tls.h — TLS with OpenSSL 3, for serve's "+tls" listeners and the clients' --tls.
 *
 * Modern defaults: TLS 1.3 and 1.2 only, no renegotiation, the library's cipher
 * choice. A server without --cert and --key makes itself an ECDSA P-256
 * certificate at start (tls_cert.c), valid 30 days, for the host name and the
 * addresses it listens on; clients pin it by its SHA-256 fingerprint, printed as
 * `openssl x509 -noout -fingerprint -sha256` prints it.
 *
 * Connections are non-blocking sockets driven by a readiness loop: every call
 * returns at once, saying what it waits for (TLS_WANT_READ / TLS_WANT_WRITE). */
#ifndef KODAMA_TLS_H
#define KODAMA_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct x509_st X509;
typedef struct bio_st BIO;

/* "AB:CD:...": 32 bytes as colon-separated upper-case hex, and its NUL. */
#define TLS_FINGERPRINT_LEN (32 * 3)

/* What OpenSSL said last, as one line ("certificate verify failed: ..."), into
 * err; the error queue is emptied. */
void tls_error_text(char *err, size_t errlen, const char *what);

/* The SHA-256 fingerprint of cert. */
void tls_fingerprint(X509 *cert, char out[TLS_FINGERPRINT_LEN]);

/* Can the kernel take the record layer (the "tls" TCP upper-layer protocol)? Probed
 * once, on a loopback connection of its own; 0 or 1. why: the reason when not. */
int tls_ktls_available(const char **why);

/* ------------------------------------------------------------------ server */

struct tls_server_config {
    const char *cert_file, *key_file;   /* NULL: a self-signed certificate */
    const char *client_ca_file;         /* NULL: no client certificate asked for */
    int client_cert_required;           /* else optional */
    const char *alpn;                   /* "h2,http/1.1": offered; NULL: none */
    const char *const *names;           /* the self-signed one's SAN: host names */
    size_t nnames;
    const char *const *ips;             /* and IP addresses, as text */
    size_t nips;
};

struct tls_server;

/* Make the server context (and the certificate, if not given). Returns NULL with a
 * line in err. */
struct tls_server *tls_server_new(const struct tls_server_config *cfg, char *err,
                                  size_t errlen);
void tls_server_free(struct tls_server *ts);

/* The fingerprint of the certificate served now. */
const char *tls_server_fingerprint(struct tls_server *ts);

/* SIGHUP: read --cert and --key (and --client-ca) again. On success new handshakes
 * use them; connections already open are not touched. On failure nothing changes.
 * Returns 1 if reloaded, 0 if there is nothing to reload (a self-signed
 * certificate), -1 with the reason in err. Safe while other threads start
 * handshakes. */
int tls_server_reload(struct tls_server *ts, char *err, size_t errlen);

/* A new server-side TLS connection on the connected, non-blocking fd. NULL if out of
 * memory. */
SSL *tls_server_conn(struct tls_server *ts, int fd);

/* The same on a pair of memory BIOs instead of a socket (the fuzz harness feeds
 * records to the first and reads the answers from the second). NULL if out of
 * memory. */
SSL *tls_server_conn_mem(struct tls_server *ts, BIO **in, BIO **out);

/* ------------------------------------------------------------------ client */

struct tls_client_config {
    const char *cafile;         /* trust these; NULL: the system's store */
    const char *fingerprint;    /* a pin: any chain, but this SHA-256 (with or
                                 * without colons, any case); NULL: none */
    int insecure;               /* no verification at all */
    const char *sni;            /* server name sent and checked; NULL: the host */
    const char *alpn;           /* "h2,http/1.1"; NULL: none */
    const char *cert_file, *key_file;   /* a client certificate; NULL: none */
};

/* Returns NULL with a line in err (a file that cannot be read, a bad pin). */
SSL_CTX *tls_client_ctx(const struct tls_client_config *cfg, char *err, size_t errlen);

/* A client connection on fd for host (its name or address as given: checked
 * against the certificate unless pinned or insecure). NULL if out of memory. */
SSL *tls_client_conn(SSL_CTX *ctx, const struct tls_client_config *cfg, int fd,
                     const char *host);

/* After the handshake of a pinned connection: 0 if the peer's certificate is the
 * pinned one, else -1 with the reason in err. */
int tls_check_pin(SSL *ssl, const char *pin, char *err, size_t errlen);

/* ------------------------------------------------------------------ both */

enum tls_status {
    TLS_OK = 0,             /* done (or n bytes moved) */
    TLS_WANT_READ = -2,     /* call again when the socket is readable */
    TLS_WANT_WRITE = -3,    /* ... writable */
    TLS_CLOSED = -4,        /* the peer's close_notify, or its FIN */
    TLS_RESET = -5,         /* ECONNRESET, EPIPE: the peer went away mid-way */
    TLS_FAILED = -6,        /* a protocol or verification failure (tls_error_text) */
};

/* One step of the handshake: TLS_OK when it is complete, else what it waits for,
 * or TLS_RESET / TLS_FAILED with the reason in err. */
int tls_handshake(SSL *ssl, char *err, size_t errlen);

/* Read or write up to len bytes: the count (> 0), or a status as above. A write
 * may move fewer bytes than asked (partial writes are enabled). */
ssize_t tls_read(SSL *ssl, void *buf, size_t len, char *err, size_t errlen);
ssize_t tls_write(SSL *ssl, const void *buf, size_t len, char *err, size_t errlen);

/* Send our close_notify (once; TLS_WANT_* if it could not go out yet). */
int tls_shutdown(SSL *ssl);

/* Bytes decrypted and waiting in OpenSSL: read them before waiting on the socket. */
int tls_pending(SSL *ssl);

/* What the handshake said, for info and the -v log: "TLSv1.3", the cipher, the
 * SNI the client sent ("" none), the ALPN chosen ("" none), and the peer's
 * certificate (NULL none) with its subject, issuer and fingerprint. */
struct tls_info {
    char version[16];
    char cipher[64];
    char sni[256];
    char alpn[64];
    int peer_cert;
    char subject[256], issuer[256];
    char fingerprint[TLS_FINGERPRINT_LEN];
    int ktls_tx, ktls_rx;       /* the kernel does the records now */
};
void tls_describe(SSL *ssl, struct tls_info *info);

/* Let the connection go: SSL_free (the descriptor is the caller's). */
void tls_conn_free(SSL *ssl);

#endif
