/* zlt-tls.h: how the agent decides to trust a server, and server certificates */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

/**
 * ZltTlsOptions:
 * @ca_file: (nullable): PEM file of trusted CAs instead of the system's
 * @pinned_sha256: (nullable): 64 hex digits, SHA-256 of the server certificate (DER);
 *   when set, the certificate must match it whatever the CAs say
 * @insecure: accept any certificate (explicit opt-in, logged loudly)
 */
typedef struct
{
  char *ca_file;
  char *pinned_sha256;
  gboolean insecure;
} ZltTlsOptions;

ZLT_AVAILABLE_IN_ALL
ZltTlsOptions *zlt_tls_options_copy (const ZltTlsOptions *options);
ZLT_AVAILABLE_IN_ALL
void zlt_tls_options_free (ZltTlsOptions *options);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltTlsOptions, zlt_tls_options_free)

/* Whether connections set up with @options (NULL: the system CAs) accept only
 * certificates that were verified: against CAs or a pin, not waved through by
 * @insecure (a pin is checked even then). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_options_verify_peer (const ZltTlsOptions *options);

/* Lowercase hex SHA-256 of the certificate's DER bytes. */
ZLT_AVAILABLE_IN_ALL
char *zlt_tls_certificate_fingerprint (GTlsCertificate *certificate);

/* Applies @options to a client connection: database, certificate checks. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_setup_client (GTlsClientConnection *connection, const ZltTlsOptions *options,
                               GError **error);

/* The decision for a certificate the TLS library could not validate by itself
 * (GTlsConnection::accept-certificate). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_accept_certificate (const ZltTlsOptions *options, GTlsCertificate *certificate,
                                     GTlsCertificateFlags errors);

/* The error that says why zlt_tls_accept_certificate() refused @certificate with
 * @errors: a pin mismatch (with the fingerprint it presented), or which checks it failed,
 * and how to trust it (ZLT_ERROR_TLS). */
ZLT_AVAILABLE_IN_ALL
GError *zlt_tls_rejection_error (const ZltTlsOptions *options, GTlsCertificate *certificate,
                                 GTlsCertificateFlags errors);

/* A pin as users write it: 64 hex digits, in either case, optionally in openssl's
 * "AB:CD:…" form or after its "sha256 Fingerprint=" label. Returns the 64 lowercase hex
 * digits, or NULL with %ZLT_ERROR_INVALID_CONFIG. */
ZLT_AVAILABLE_IN_ALL
char *zlt_tls_parse_pin (const char *text, GError **error);

/* After a failed handshake of a connection set up with zlt_tls_setup_client(): when the
 * certificate was refused, replaces *@error with one that says why. */
ZLT_AVAILABLE_IN_ALL
void zlt_tls_explain_rejection (GTlsConnection *connection, GError **error);

/* A client connection for @options. When the system CAs play no part (a pin, a CA
 * file, or verification off), the connection gets no default database: glib-networking
 * would otherwise parse the whole system CA bundle for every connection. */
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_tls_client_connection_new (GIOStream *base, GSocketConnectable *identity,
                                          const ZltTlsOptions *options, GError **error);
/* A server connection; servers do not check client certificates, so no CA database. */
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_tls_server_connection_new (GIOStream *base, GTlsCertificate *certificate,
                                          GError **error);

/* A client TLS connection for a data connection (a #GTlsConnection to handshake with
 * g_tls_connection_handshake_async()): GnuTLS on @base's socket with credentials
 * shared per process, the server's certificate checked during the handshake as
 * @options say and not kept. Without GnuTLS at build time, or over a proxy, the same as
 * zlt_tls_client_connection_new(). Finish its handshake with
 * zlt_tls_client_handshake_finish(). */
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_tls_data_client_new (GSocketConnection *base, const char *host,
                                    const ZltTlsOptions *options, GError **error);
/* The server's side of a data connection (zlt_tls_data_client_new()); @certificate's
 * GnuTLS credentials are made once and kept with it. */
ZLT_AVAILABLE_IN_ALL
GIOStream *zlt_tls_data_server_new (GSocketConnection *base, GTlsCertificate *certificate,
                                    GError **error);
/* The ALPN protocol data connections offer (zlt_tls_data_client_new()): a server tells
 * them by it before the handshake (zlt_tls_is_data_client_hello()). */
#define ZLT_TLS_DATA_ALPN "zlt-data/1"

/* Whether @record, the whole first TLS record a client sent (peeked before the
 * handshake), is the ClientHello of a data connection made with
 * zlt_tls_data_client_new(): such a connection may be served with
 * zlt_tls_data_server_new(). FALSE for anything else, malformed input included. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_is_data_client_hello (const guint8 *record, gsize len);

/* Finishes the handshake of a client connection made by zlt_tls_client_connection_new()
 * or zlt_tls_data_client_new() with @options: a refused certificate gives the error that
 * says why, and the pin is enforced (zlt_tls_check_peer()). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_client_handshake_finish (GTlsConnection *connection, GAsyncResult *result,
                                          const ZltTlsOptions *options, GError **error);

/* After the handshake: enforces the pin even for CA-valid certificates. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tls_check_peer (const ZltTlsOptions *options, GTlsCertificate *peer, GError **error);

/* Loads a server certificate and key (PEM files). */
ZLT_AVAILABLE_IN_ALL
GTlsCertificate *zlt_tls_load_server_certificate (const char *cert_file, const char *key_file,
                                                  GError **error);

ZLT_AVAILABLE_IN_ALL
const char *zlt_tls_default_priority (void);
ZLT_AVAILABLE_IN_ALL
void zlt_tls_init_priority (void);

G_END_DECLS
