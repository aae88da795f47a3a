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
#include <stdint.h>
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

/* "h2,http/1.1" in ALPN's wire form (each name with its length before it) into out;
 * returns its length, or -1 if a name is empty or longer than 255 bytes, or the
 * whole does not fit in cap. */
int tls_alpn_wire(const char *list, unsigned char *out, size_t cap);

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
    const char *fingerprint;    /* a pin: any chain, but this SHA-256 (tls_parse_fingerprint's
                                 * forms); NULL: none */
    int insecure;               /* no verification at all */
    const char *sni;            /* server name sent and checked; NULL: the host */
    const char *alpn;           /* "h2,http/1.1"; NULL: none */
    const char *cert_file, *key_file;   /* a client certificate and its key; NULL: none */
};

#define TLS_SHA256_LEN 32

/* A SHA-256 fingerprint as a user writes it: 64 hex digits, or 32 pairs with a colon
 * between each ("AB:CD:..."), any case. Returns 0 with the bytes, or -1. */
int tls_parse_fingerprint(const char *text, unsigned char out[TLS_SHA256_LEN]);

/* Returns NULL with a line in err (a file that cannot be read, a bad pin or ALPN
 * list). Sessions are never cached: each handshake is a full one unless a session
 * is offered (tls_offer_session). */
SSL_CTX *tls_client_ctx(const struct tls_client_config *cfg, char *err, size_t errlen);
void tls_client_ctx_free(SSL_CTX *ctx);

/* A client connection on fd for host (its name or address as given: sent as SNI if
 * a name, and checked against the certificate unless pinned or insecure; NULL, as
 * for a unix socket: only the chain is checked, unless cfg->sni names it). NULL if
 * out of memory. */
SSL *tls_client_conn(SSL_CTX *ctx, const struct tls_client_config *cfg, int fd,
                     const char *host);

/* The same on a pair of memory BIOs (the fuzz harness plays the server). */
SSL *tls_client_conn_mem(SSL_CTX *ctx, const struct tls_client_config *cfg, const char *host,
                         BIO **in, BIO **out);

/* After the handshake of a pinned connection: 0 if the peer's certificate is the
 * pinned one, else -1 with the reason in err. */
int tls_check_pin(SSL *ssl, const char *pin, char *err, size_t errlen);

/* bench --resume: offer sess (NULL: none) in the next handshake; 0, or -1. */
typedef struct ssl_session_st SSL_SESSION;
int tls_offer_session(SSL *ssl, SSL_SESSION *sess);
/* At the clean end of a connection: its session with a reference of the caller's,
 * if a later handshake could resume it (TLS 1.3: once a ticket has come); else
 * NULL. Nothing more may be written on the connection. */
SSL_SESSION *tls_resumable_session(SSL *ssl);
void tls_session_free(SSL_SESSION *sess);
/* Did the handshake resume the session offered? */
int tls_session_reused(SSL *ssl);

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

/* After TLS_CLOSED: did the peer say close_notify (1), or only close (0)? */
int tls_got_close_notify(SSL *ssl);

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

/* ------------------------------------------------------------------ --trace */

/* What a connection's socket BIO had moved when last told (tls_trace_op). */
struct tls_wire {
    uint64_t in, out;
};

/* From now on, a line per handshake message and alert sent or received
 * ("tls(5) sent ClientHello (512 B)"). Call right after making the SSL, only
 * when the trace is on. */
void tls_trace_attach(SSL *ssl) __attribute__((cold));

enum tls_trace_op { TLS_TRACE_HANDSHAKE, TLS_TRACE_READ, TLS_TRACE_WRITE, TLS_TRACE_SHUTDOWN };

/* The line of a call that returned rc (a count, or a tls_status; why: the reason
 * of TLS_FAILED or TLS_RESET), with the bytes it moved on the wire since *last
 * (updated), e.g.
 *   tls handshake(5) = want read  (on the wire: 517 B out)
 *   tls handshake(5) = done TLSv1.3 TLS_AES_256_GCM_SHA384  (on the wire: 1138 B in, 80 B out)
 *   tls read(5, 65536) = 5  (on the wire: 27 B in)
 * len is what a read or write asked for. */
void tls_trace_op(SSL *ssl, struct tls_wire *last, enum tls_trace_op op, size_t len, long rc,
                  const char *why) __attribute__((cold));

#endif
