/* tls_impl.h — what the units behind tls.h share (tls.c, tls_client.c,
 * tls_trace.c); not for the layers above, which see tls.h only. */
#ifndef KODAMA_TLS_IMPL_H
#define KODAMA_TLS_IMPL_H

#include <stddef.h>

#include "lib/tls.h"

/* The settings both ends share (tls.c says which and why). */
void tls_common_settings(SSL_CTX *ctx);

/* The peer's certificate, with a reference of the caller's: the verified one, or on
 * a client whose verification failed or was skipped, the first of the chain the
 * server sent (so a failure can still name it). NULL: none. */
X509 *tls_peer_cert(SSL *ssl);

#endif
