/* tls_cert.c — see tls_cert.h. With OpenSSL 3's high-level calls: EVP_EC_gen for the
 * key, the X509v3 extensions built from config-style strings. */
#include "lib/tls_cert.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>


static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* "DNS:a,DNS:b,IP:127.0.0.1" into buf; -1 if it does not fit. */
static int alt_names(const char *const *names, size_t nnames, const char *const *ips,
                     size_t nips, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < nnames + nips; i++) {
        const char *v = i < nnames ? names[i] : ips[i - nnames];
        int n;

        /* A ',' would start another entry of the config string: such a name is
         * left out (no DNS name holds one). */
        if (strchr(v, ',') || v[0] == '\0')
            continue;
        n = snprintf(buf + off, len - off, "%s%s:%s", off ? "," : "", i < nnames ? "DNS" : "IP", v);
        if (n < 0 || (size_t)n >= len - off)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int set_serial(X509 *cert)
{
    unsigned char bytes[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return -1;
    bytes[0] &= 0x7f;   /* positive */
    bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int fill(X509 *cert, EVP_PKEY *key, const char *cn, const char *san)
{
    X509_NAME *name = X509_get_subject_name(cert);

    if (!X509_set_version(cert, 2) || set_serial(cert) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), (long)TLS_CERT_DAYS * 24 * 3600) ||
        !X509_set_pubkey(cert, key) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"kodama",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                    -1, -1, 0) ||
        !X509_set_issuer_name(cert, name))
        return -1;
    if (add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(cert, NID_subject_key_identifier, "hash") < 0 ||
        (san[0] && add_ext(cert, NID_subject_alt_name, san) < 0))
        return -1;
    return X509_sign(cert, key, EVP_sha256()) > 0 ? 0 : -1;
}

int tls_cert_selfsigned(const char *const *names, size_t nnames, const char *const *ips,
                        size_t nips, EVP_PKEY **key, X509 **cert)
{
    char san[4096];
    const char *cn = nnames > 0 && strlen(names[0]) < 64 ? names[0] : "kodama";

    *key = NULL;
    *cert = NULL;
    if (alt_names(names, nnames, ips, nips, san, sizeof san) < 0)
        return -2;
    *key = EVP_EC_gen("P-256");
    *cert = X509_new();
    if (*key == NULL || *cert == NULL || fill(*cert, *key, cn, san) < 0) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
        return -1;
    }
    return 0;
}
