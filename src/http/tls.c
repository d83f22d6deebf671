/* tls.c: the certificate and key HTTPS serves with, read from PEM files
 * and read again on SIGHUP (a renewed certificate needs no restart).
 *
 * libmicrohttpd hands GnuTLS a callback (MHD_OPTION_HTTPS_CERT_CALLBACK)
 * that asks for the certificate at each handshake; it answers with the set
 * loaded last. A reload loads a whole new set, checks that the key belongs
 * to the certificate, and only then makes it current, so that a bad file
 * keeps the old set serving. A session may still use the set it began with,
 * so sets that are replaced are kept until the server stops (one per
 * SIGHUP: a few kilobytes).
 */
#include "http/tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define MAX_CHAIN 16
#define MAX_FILE (1024 * 1024)

struct creds {
    gnutls_pcert_st pcert[MAX_CHAIN];
    unsigned n;
    gnutls_privkey_t key;
    struct creds *older;
};

struct http_tls {
    char *cert_path, *key_path;
    _Atomic(struct creds *) current;
    pthread_mutex_t lock;       /* reloads */
};

/* The server's TLS, for the handshake callback (it has no closure). */
static _Atomic(struct http_tls *) active;

static bool read_file(const char *path, gnutls_datum_t *out, char *err, int errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, (size_t)errlen, "cannot read %s: %m", path);
        return false;
    }
    unsigned char *buf = malloc(MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > MAX_FILE) {
        snprintf(err, (size_t)errlen, "%s is %s", path,
                 !buf ? "not readable (out of memory)" : n ? "over 1 MiB" : "empty");
        free(buf);
        return false;
    }
    out->data = buf;
    out->size = (unsigned)n;
    return true;
}

static void creds_free(struct creds *c)
{
    while (c) {
        struct creds *older = c->older;
        for (unsigned i = 0; i < c->n; i++)
            gnutls_pcert_deinit(&c->pcert[i]);
        if (c->key)
            gnutls_privkey_deinit(c->key);
        free(c);
        c = older;
    }
}

/* A note in the log when the certificate is not valid now: it serves all
 * the same (the operator may be about to replace it), but clients will
 * refuse it. */
static void check_dates(const gnutls_datum_t *pem, const char *path)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, pem, GNUTLS_X509_FMT_PEM) >= 0) {
        time_t now = time(NULL);
        time_t from = gnutls_x509_crt_get_activation_time(crt);
        time_t until = gnutls_x509_crt_get_expiration_time(crt);
        if (until != (time_t)-1 && until < now)
            log_warn("tls: the certificate in %s has expired", path);
        else if (from != (time_t)-1 && from > now)
            log_warn("tls: the certificate in %s is not valid yet", path);
    }
    gnutls_x509_crt_deinit(crt);
}

static struct creds *load(const char *cert_path, const char *key_path, char *err, int errlen)
{
    gnutls_datum_t cert = {0}, key = {0};
    struct creds *c = NULL;
    gnutls_certificate_credentials_t check = NULL;
    int rc = GNUTLS_E_MEMORY_ERROR;
    if (!read_file(cert_path, &cert, err, errlen) || !read_file(key_path, &key, err, errlen))
        goto out;
    /* The key must belong to the certificate: GnuTLS checks it here. */
    if (gnutls_certificate_allocate_credentials(&check) < 0 ||
        (rc = gnutls_certificate_set_x509_key_mem2(check, &cert, &key, GNUTLS_X509_FMT_PEM,
                                                   NULL, 0)) < 0) {
        snprintf(err, (size_t)errlen, "TLS certificate %s and key %s: %s", cert_path, key_path,
                 check ? gnutls_strerror(rc) : "out of memory");
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, (size_t)errlen, "out of memory");
        goto out;
    }
    c->n = MAX_CHAIN;
    if ((rc = gnutls_pcert_list_import_x509_raw(c->pcert, &c->n, &cert, GNUTLS_X509_FMT_PEM,
                                                0)) < 0) {
        c->n = 0;
        snprintf(err, (size_t)errlen, "TLS certificate %s: %s", cert_path, gnutls_strerror(rc));
        goto fail;
    }
    if ((rc = gnutls_privkey_init(&c->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, (size_t)errlen, "TLS key %s: %s", key_path, gnutls_strerror(rc));
        goto fail;
    }
    check_dates(&cert, cert_path);
    goto out;
fail:
    creds_free(c);
    c = NULL;
out:
    if (check)
        gnutls_certificate_free_credentials(check);
    if (key.data)
        gnutls_memset(key.data, 0, key.size);
    free(cert.data);
    free(key.data);
    return c;
}

struct http_tls *http_tls_load(const char *cert, const char *key, char *err, int errlen)
{
    struct http_tls *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->lock, NULL);
    if (!t || !(t->cert_path = strdup(cert)) || !(t->key_path = strdup(key))) {
        snprintf(err, (size_t)errlen, "out of memory");
        http_tls_free(t);
        return NULL;
    }
    struct creds *c = load(cert, key, err, errlen);
    if (!c) {
        http_tls_free(t);
        return NULL;
    }
    atomic_store(&t->current, c);
    return t;
}

bool http_tls_reload(struct http_tls *t, char *err, int errlen)
{
    struct creds *c = load(t->cert_path, t->key_path, err, errlen);
    if (!c)
        return false;
    pthread_mutex_lock(&t->lock);
    c->older = atomic_load(&t->current);
    atomic_store(&t->current, c);
    pthread_mutex_unlock(&t->lock);
    return true;
}

void http_tls_free(struct http_tls *t)
{
    if (!t)
        return;
    struct http_tls *expected = t;
    atomic_compare_exchange_strong(&active, &expected, NULL);
    creds_free(atomic_load(&t->current));
    pthread_mutex_destroy(&t->lock);
    free(t->cert_path);
    free(t->key_path);
    free(t);
}

/* GnuTLS asks at each handshake (gnutls_certificate_retrieve_function2). */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length,
                    gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct http_tls *t = atomic_load(&active);
    struct creds *c = t ? atomic_load(&t->current) : NULL;
    if (!c)
        return -1;
    *pcert = c->pcert;
    *pcert_length = c->n;
    *privkey = c->key;
    return 0;
}

void *http_tls_callback(struct http_tls *t)
{
    atomic_store(&active, t);
    return (void *)retrieve;
}
