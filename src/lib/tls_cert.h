/* tls_cert.h — the certificate a TLS server makes itself when given none. */
#ifndef KODAMA_TLS_CERT_H
#define KODAMA_TLS_CERT_H

#include <stddef.h>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

#define TLS_CERT_DAYS 30

/* A new ECDSA P-256 key and a self-signed certificate for it, valid from now for
 * TLS_CERT_DAYS days: subject CN the first name, and a subjectAltName with every
 * name (DNS) and address (IP, as text: "127.0.0.1", "::1"). Returns 0; -1 if
 * OpenSSL failed (its error queue says why); -2 if the names do not fit. */
int tls_cert_selfsigned(const char *const *names, size_t nnames, const char *const *ips,
                        size_t nips, EVP_PKEY **key, X509 **cert);

#endif
