/* tls.h: the certificate and key of HTTPS (tls.c). */
#ifndef ATTACHD_HTTP_TLS_H
#define ATTACHD_HTTP_TLS_H

#include <stdbool.h>

/* TLS 1.2 and 1.3 only, GnuTLS's normal cipher suites. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_tls;

/* Read a PEM certificate chain (the server's certificate first) and its
 * private key; NULL with a reason in err (unreadable, not PEM, or a key
 * that is not the certificate's). */
struct http_tls *http_tls_load(const char *cert, const char *key, char *err, int errlen);
/* Read the same files again; on failure the loaded set stays in use. */
bool http_tls_reload(struct http_tls *t, char *err, int errlen);
void http_tls_free(struct http_tls *t);

/* The handshake callback for MHD_OPTION_HTTPS_CERT_CALLBACK, serving t's
 * current set (one TLS server per process). */
void *http_tls_callback(struct http_tls *t);

#endif
