/* test-tls.c: a wss:// server with a self-signed certificate, and agents that trust it
 * through a CA file, a pinned fingerprint or not at all */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

typedef struct
{
  ZltTestHarness h;
  char *cert_file;
  char *key_file;
  char *fingerprint;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;

  zlt_test_harness_init (&f->h, "32200-32299");
  if (!zlt_test_make_certificate (f->h.tmpdir, &f->cert_file, &f->key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  cert = g_tls_certificate_new_from_file (f->cert_file, &error);
  g_assert_no_error (error);
  f->fingerprint = zlt_tls_certificate_fingerprint (cert);
  g_assert_cmpuint (strlen (f->fingerprint), ==, 64);
  g_key_file_set_string (f->h.server_keyfile, "server", "tls-certificate", f->cert_file);
  g_key_file_set_string (f->h.server_keyfile, "server", "tls-key", f->key_file);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  g_free (f->cert_file);
  g_free (f->key_file);
  g_free (f->fingerprint);
}

/* Starts the TLS server and checks the harness gave the agent a wss:// URL. */
static void
start_tls_server (Fixture *f)
{
  g_autofree char *url = NULL;

  zlt_test_harness_start_server (&f->h);
  url = g_key_file_get_string (f->h.agent_keyfile, "agent", "server", NULL);
  g_assert_true (g_str_has_prefix (url, "wss://127.0.0.1:"));
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
}

static void
transfer (guint16 port, gsize n_bytes)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;
  gint64 started = g_get_monotonic_time ();

  t.port = port;
  t.n_bytes = n_bytes;
  t.n_connections = 1;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 60000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, n_bytes);
  g_test_message ("%" G_GSIZE_FORMAT " bytes echoed through the TLS tunnel in %.0f ms", n_bytes,
                  (g_get_monotonic_time () - started) / 1000.0);
  g_free (t.error);
}

static void
assert_tunnel_carries_8mib (Fixture *f)
{
  guint16 port = zlt_test_harness_wait_registered (&f->h, "echo");
  ZltService *service;

  g_assert_cmpuint (port, >=, 32200);
  g_assert_cmpuint (port, <=, 32299);
  transfer (port, 8 * 1024 * 1024);
  /* the data connection (TLS as well) carried it, and the relays ended cleanly */
  service = zlt_registry_lookup_service_by_port (zlt_server_get_registry (f->h.server),
                                                 ZLT_PROTOCOL_TCP, port);
  g_assert_nonnull (service);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (f->h.server) == 0
                         && zlt_agent_get_n_relays (f->h.agent) == 0,
                     10000);
  g_assert_cmpuint (zlt_service_get_bytes_in (service), ==, 8 * 1024 * 1024);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 1);
}

static void
test_ca_file (Fixture *f, gconstpointer data)
{
  start_tls_server (f);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-ca-file", f->cert_file);
  zlt_test_harness_start_agent (&f->h);
  assert_tunnel_carries_8mib (f);
  g_assert_null (zlt_agent_get_last_error (f->h.agent));
}

static void
test_pinned (Fixture *f, gconstpointer data)
{
  /* the pin alone is enough (no CA file); its case does not matter */
  g_autofree char *upper = g_ascii_strup (f->fingerprint, -1);

  start_tls_server (f);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-pinned-sha256", upper);
  zlt_test_harness_start_agent (&f->h);
  assert_tunnel_carries_8mib (f);
  g_assert_null (zlt_agent_get_last_error (f->h.agent));
}

/* The pin is the SHA-256 of the DER certificate, exactly what openssl prints: its
 * output line ("sha256 Fingerprint=AB:CD:…") works as the pin, pasted as it is. */
static void
test_pinned_openssl_form (Fixture *f, gconstpointer data)
{
  g_autofree char *command
      = g_strdup_printf ("openssl x509 -noout -fingerprint -sha256 -in %s", f->cert_file);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *parsed = NULL;
  int status;

  g_assert_true (g_spawn_command_line_sync (command, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_test_message ("openssl says: %s", g_strstrip (out));
  g_assert_nonnull (strchr (out, ':'));
  parsed = zlt_tls_parse_pin (out, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (parsed, ==, f->fingerprint);

  start_tls_server (f);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-pinned-sha256", out);
  zlt_test_harness_start_agent (&f->h);
  assert_tunnel_carries_8mib (f);
  g_assert_null (zlt_agent_get_last_error (f->h.agent));
}

/* Waits for the first failure and checks the agent never got a session. */
static const char *
wait_refused (Fixture *f)
{
  const char *error;

  ZLT_TEST_WAIT_FOR (zlt_agent_get_last_error (f->h.agent) != NULL
                         && zlt_agent_get_retry_delay_ms (f->h.agent) > 0,
                     10000);
  error = zlt_agent_get_last_error (f->h.agent);
  g_test_message ("last-error: %s (retrying in %u ms)", error,
                  zlt_agent_get_retry_delay_ms (f->h.agent));
  g_assert_cmpint (zlt_agent_get_state (f->h.agent), !=, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (zlt_agent_get_n_sessions (f->h.agent), ==, 0);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (f->h.server)), ==, 0);
  return error;
}

static void
test_wrong_pin (Fixture *f, gconstpointer data)
{
  g_autofree char *wrong = g_strdup (f->fingerprint);
  const char *error;

  wrong[10] = wrong[10] == '0' ? '1' : '0';
  start_tls_server (f);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-pinned-sha256", wrong);
  /* a long cap makes the fatal-class backoff unmistakable */
  g_key_file_set_double (f->h.agent_keyfile, "agent", "backoff-max", 30.0);
  zlt_test_harness_start_agent (&f->h);
  error = wait_refused (f);
  g_assert_nonnull (strstr (error, "does not match the pinned SHA-256 fingerprint"));
  /* what it presented, to compare with the pin */
  g_assert_nonnull (strstr (error, f->fingerprint));
  /* retrying soon cannot help: straight to the (jittered) cap */
  g_assert_cmpuint (zlt_agent_get_retry_delay_ms (f->h.agent), >=, 15000);
}

static void
test_untrusted (Fixture *f, gconstpointer data)
{
  const char *error;

  /* no CA file, no pin, not insecure: the system CAs do not know our certificate */
  start_tls_server (f);
  g_key_file_set_double (f->h.agent_keyfile, "agent", "backoff-max", 30.0);
  zlt_test_harness_start_agent (&f->h);
  error = wait_refused (f);
  g_assert_nonnull (strstr (error, "server certificate is not trusted"));
  g_assert_nonnull (strstr (error, "issuer unknown"));
  /* how to trust it, in the words of the command line and of the config file */
  g_assert_nonnull (strstr (error, "--ca-file"));
  g_assert_nonnull (strstr (error, "--pin-sha256"));
  g_assert_nonnull (strstr (error, "tls-ca-file"));
  g_assert_cmpuint (zlt_agent_get_retry_delay_ms (f->h.agent), >=, 15000);
}

static void
test_insecure (Fixture *f, gconstpointer data)
{
  start_tls_server (f);
  g_key_file_set_boolean (f->h.agent_keyfile, "agent", "tls-insecure", TRUE);
  /* said once, at message level (a warning would be fatal here) */
  g_test_expect_message ("zlt", G_LOG_LEVEL_MESSAGE, "TLS certificate verification is OFF*");
  zlt_test_harness_start_agent (&f->h);
  g_test_assert_expected_messages ();
  transfer (zlt_test_harness_wait_registered (&f->h, "echo"), 1024 * 1024);
}

static void
test_plain_agent (Fixture *f, gconstpointer data)
{
  g_autofree char *url = NULL;
  const char *error;

  /* ws:// to a TLS port: the server's handshake fails, the agent reports and retries */
  start_tls_server (f);
  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (f->h.server));
  zlt_test_harness_set_agent_url (&f->h, url);
  zlt_test_harness_start_agent (&f->h);
  error = wait_refused (f);
  g_assert_true (g_str_has_prefix (error, "cannot reach ws://127.0.0.1:"));
  /* nothing is left half-open on the server */
  ZLT_TEST_WAIT_FOR (zlt_agent_get_retry_delay_ms (f->h.agent) > 0, 5000);
  g_assert_cmpuint (zlt_server_get_n_pending (f->h.server), ==, 0);
}

/* what G_TLS_GNUTLS_PRIORITY was before zlt_init() (NULL unless the caller set it), and
 * what zlt_tls_default_priority() said then */
static char *priority_before;
static char *priority_chosen;

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **error = user_data;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, error)
      && *error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "handshake failed");
  if (*error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "done");
}

/* zlt_init() chose the cipher preference: where the CPU has AES instructions (and no
 * system policy decides), a client made by zlt_tls_client_connection_new() and our
 * server negotiate TLS 1.3's AES-128-GCM; a G_TLS_GNUTLS_PRIORITY set before is left
 * as it was, and is then what zlt_tls_default_priority() defers to. */
static void
test_cipher_preference (Fixture *f, gconstpointer data)
{
  g_autofree char *url = NULL;
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) done = NULL;
  g_autofree char *suite = NULL;
  ZltTlsOptions options = { .pinned_sha256 = f->fingerprint };

  if (priority_before != NULL)
    {
      g_assert_cmpstr (g_getenv ("G_TLS_GNUTLS_PRIORITY"), ==, priority_before);
      g_assert_null (zlt_tls_default_priority ());
      g_test_skip ("G_TLS_GNUTLS_PRIORITY was set by the caller");
      return;
    }
  if (priority_chosen == NULL)
    {
      g_test_skip ("no AES instructions, or a system-wide GnuTLS policy");
      return;
    }
  g_assert_cmpstr (g_getenv ("G_TLS_GNUTLS_PRIORITY"), ==, priority_chosen);
  /* set now: nothing more to choose */
  g_assert_null (zlt_tls_default_priority ());

  start_tls_server (f);
  url = g_key_file_get_string (f->h.agent_keyfile, "agent", "server", NULL);
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", g_uri_get_port (uri), NULL, &error);
  g_assert_no_error (error);
  tls = zlt_tls_client_connection_new (G_IO_STREAM (conn), NULL, &options, &error);
  g_assert_no_error (error);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT, NULL, on_handshake,
                                    &done);
  ZLT_TEST_WAIT_FOR (done != NULL, 10000);
  g_assert_error (done, G_IO_ERROR, G_IO_ERROR_EXISTS);
  suite = g_tls_connection_get_ciphersuite_name (G_TLS_CONNECTION (tls));
  g_assert_cmpint (g_tls_connection_get_protocol_version (G_TLS_CONNECTION (tls)), ==,
                   G_TLS_PROTOCOL_VERSION_TLS_1_3);
  g_assert_cmpstr (suite, ==, "TLS_AES_128_GCM_SHA256");
  g_io_stream_close (tls, NULL, NULL);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  priority_before = g_strdup (g_getenv ("G_TLS_GNUTLS_PRIORITY"));
  priority_chosen = g_strdup (zlt_tls_default_priority ());
  zlt_init ();
  g_test_add ("/tls/ca-file", Fixture, NULL, fixture_setup, test_ca_file, fixture_teardown);
  g_test_add ("/tls/pinned", Fixture, NULL, fixture_setup, test_pinned, fixture_teardown);
  g_test_add ("/tls/pinned-openssl-form", Fixture, NULL, fixture_setup, test_pinned_openssl_form,
              fixture_teardown);
  g_test_add ("/tls/wrong-pin", Fixture, NULL, fixture_setup, test_wrong_pin, fixture_teardown);
  g_test_add ("/tls/untrusted", Fixture, NULL, fixture_setup, test_untrusted, fixture_teardown);
  g_test_add ("/tls/insecure", Fixture, NULL, fixture_setup, test_insecure, fixture_teardown);
  g_test_add ("/tls/plain-agent", Fixture, NULL, fixture_setup, test_plain_agent, fixture_teardown);
  g_test_add ("/tls/cipher-preference", Fixture, NULL, fixture_setup, test_cipher_preference,
              fixture_teardown);
  ret = g_test_run ();
  g_free (priority_before);
  g_free (priority_chosen);
  return ret;
}
