/* zlt-tls.c: certificate trust decisions shared by every TLS client in the project */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-crypto.h"
#include "zlt-error.h"
#include "zlt-tls.h"

ZltTlsOptions *
zlt_tls_options_copy (const ZltTlsOptions *options)
{
  ZltTlsOptions *copy = g_new0 (ZltTlsOptions, 1);

  if (options == NULL)
    return copy;
  copy->ca_file = g_strdup (options->ca_file);
  copy->pinned_sha256 = g_ascii_strdown (options->pinned_sha256 ? options->pinned_sha256 : "", -1);
  if (copy->pinned_sha256[0] == '\0')
    g_clear_pointer (&copy->pinned_sha256, g_free);
  copy->insecure = options->insecure;
  return copy;
}

void
zlt_tls_options_free (ZltTlsOptions *options)
{
  if (options == NULL)
    return;
  g_free (options->ca_file);
  g_free (options->pinned_sha256);
  g_free (options);
}

char *
zlt_tls_certificate_fingerprint (GTlsCertificate *certificate)
{
  g_autoptr (GByteArray) der = NULL;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);
  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
}

static gboolean
pin_matches (const ZltTlsOptions *options, GTlsCertificate *certificate)
{
  g_autofree char *fingerprint = NULL;

  if (certificate == NULL)
    return FALSE;
  fingerprint = zlt_tls_certificate_fingerprint (certificate);
  return fingerprint != NULL && zlt_secure_str_equal (fingerprint, options->pinned_sha256);
}

gboolean
zlt_tls_accept_certificate (const ZltTlsOptions *options, GTlsCertificate *certificate,
                            GTlsCertificateFlags errors)
{
  if (options == NULL)
    return FALSE;
  /* a pinned certificate is trusted by its fingerprint alone (self-signed servers) */
  if (options->pinned_sha256 != NULL)
    return pin_matches (options, certificate);
  return options->insecure;
}

static gboolean
on_accept_certificate (GTlsConnection *connection, GTlsCertificate *certificate,
                       GTlsCertificateFlags errors, gpointer user_data)
{
  return zlt_tls_accept_certificate (user_data, certificate, errors);
}

gboolean
zlt_tls_setup_client (GTlsClientConnection *connection, const ZltTlsOptions *options,
                      GError **error)
{
  g_return_val_if_fail (G_IS_TLS_CLIENT_CONNECTION (connection), FALSE);

  if (options != NULL && options->ca_file != NULL)
    {
      g_autoptr (GTlsDatabase) database = g_tls_file_database_new (options->ca_file, error);
      if (database == NULL)
        {
          g_prefix_error (error, _("failed to load CA file %s: "), options->ca_file);
          return FALSE;
        }
      g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);
    }
  if (options != NULL && (options->pinned_sha256 != NULL || options->insecure))
    {
      ZltTlsOptions *copy = zlt_tls_options_copy (options);
      g_signal_connect_data (connection, "accept-certificate", G_CALLBACK (on_accept_certificate),
                             copy, (GClosureNotify) (void (*) (void)) zlt_tls_options_free, 0);
    }
  return TRUE;
}

gboolean
zlt_tls_check_peer (const ZltTlsOptions *options, GTlsCertificate *peer, GError **error)
{
  if (options == NULL || options->pinned_sha256 == NULL)
    return TRUE;
  if (!pin_matches (options, peer))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_TLS,
                   _("server certificate does not match the pinned SHA-256 fingerprint"));
      return FALSE;
    }
  return TRUE;
}

GTlsCertificate *
zlt_tls_load_server_certificate (const char *cert_file, const char *key_file, GError **error)
{
  GTlsCertificate *certificate;

  g_return_val_if_fail (cert_file != NULL, NULL);
  certificate = g_tls_certificate_new_from_files (cert_file, key_file, error);
  if (certificate == NULL)
    g_prefix_error (error, _("failed to load TLS certificate %s: "), cert_file);
  return certificate;
}
