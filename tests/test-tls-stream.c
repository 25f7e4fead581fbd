/* test-tls-stream.c: the data connections' TLS (GnuTLS on the socket, zlt-tls-stream.c)
 * over real loopback sockets: who it trusts, what it refuses and why, half-close, and
 * peers that are not TLS or vanish mid-record. Its relaying is test-relay's data-tls
 * mode. */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <glib/gstdio.h>

#include "zlt-test-util.h"
#include "zlt-tls-stream.h" /* private */
#include "zlayer-tunnel.h"

#define DEADLINE_MS 20000

static char *tmpdir;
static char *cert_file;
static char *key_file;
static char *pin;
static GTlsCertificate *certificate;

/* ---- loopback pairs ---- */

static void
socket_pair (GSocketConnection **client, GSocketConnection **server)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GSocket) c = NULL;
  g_autoptr (GSocket) s = NULL;

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (listener, any, TRUE, &error));
  g_assert_true (g_socket_listen (listener, &error));
  bound = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  c = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connect (c, bound, NULL, &error));
  s = g_socket_accept (listener, NULL, &error);
  g_assert_no_error (error);
  *client = g_socket_connection_factory_create_connection (c);
  *server = g_socket_connection_factory_create_connection (s);
}

/* A connected pair: our data client (to "127.0.0.1", with @options) and our data server
 * (the test certificate), their sockets in @c and @s; no handshake yet. */
static void
data_pair (const ZltTlsOptions *options, GSocketConnection **c, GSocketConnection **s,
           GIOStream **client, GIOStream **server)
{
  g_autoptr (GError) error = NULL;

  socket_pair (c, s);
  *client = zlt_tls_data_client_new (*c, "127.0.0.1", options, &error);
  g_assert_no_error (error);
  *server = zlt_tls_data_server_new (*s, certificate, &error);
  g_assert_no_error (error);
}

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **error = user_data;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, error)
      && *error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "failed without an error");
  if (*error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "done");
}

typedef struct
{
  const ZltTlsOptions *options;
  GError *error;
  gboolean done;
} ClientDone;

static void
on_client_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ClientDone *d = user_data;

  zlt_tls_client_handshake_finish (G_TLS_CONNECTION (source), result, d->options, &d->error);
  d->done = TRUE;
}

/* Handshakes @client (with @options) against @server; returns the client's error. */
static GError *
handshake_pair (GIOStream *client, GIOStream *server, const ZltTlsOptions *options,
                GError **server_error)
{
  ClientDone d = { options, NULL, FALSE };
  GError *server_result = NULL;

  g_tls_connection_handshake_async (G_TLS_CONNECTION (client), G_PRIORITY_DEFAULT, NULL,
                                    on_client_handshake, &d);
  if (server != NULL)
    g_tls_connection_handshake_async (G_TLS_CONNECTION (server), G_PRIORITY_DEFAULT, NULL,
                                      on_handshake, &server_result);
  ZLT_TEST_WAIT_FOR (d.done && (server == NULL || server_result != NULL), DEADLINE_MS);
  if (server != NULL)
    {
      if (g_error_matches (server_result, G_IO_ERROR, G_IO_ERROR_EXISTS))
        g_clear_error (&server_result);
      if (server_error != NULL)
        *server_error = server_result;
      else
        g_clear_error (&server_result);
    }
  return d.error;
}

/* ---- reading and writing through the main loop ---- */

typedef struct
{
  GByteArray *got;
  gboolean eof;
  GError *error;
  guint8 buf[8192];
} Reader;

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Reader *r = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &r->error);

  if (n < 0)
    return;
  if (n == 0)
    {
      r->eof = TRUE;
      return;
    }
  g_byte_array_append (r->got, r->buf, (guint) n);
  g_input_stream_read_async (G_INPUT_STREAM (source), r->buf, sizeof r->buf, G_PRIORITY_DEFAULT,
                             NULL, on_read, r);
}

/* Reads @stream to its end (or an error), through the main loop. */
static void
read_to_end (GIOStream *stream, Reader *r)
{
  r->got = g_byte_array_new ();
  g_input_stream_read_async (g_io_stream_get_input_stream (stream), r->buf, sizeof r->buf,
                             G_PRIORITY_DEFAULT, NULL, on_read, r);
  ZLT_TEST_WAIT_FOR (r->eof || r->error != NULL, DEADLINE_MS);
}

static void
reader_clear (Reader *r)
{
  g_clear_pointer (&r->got, g_byte_array_unref);
  g_clear_error (&r->error);
}

typedef struct
{
  gboolean done;
  GError *error;
} Op;

static void
on_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Op *op = user_data;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &op->error);
  op->done = TRUE;
}

static void
on_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Op *op = user_data;

  g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &op->error);
  op->done = TRUE;
}

/* Writes @data then closes the output (close_notify), through the main loop; @op says
 * when both are done. The caller waits. */
static void
write_and_shut (GIOStream *stream, GBytes *data, Op *write_op, Op *close_op)
{
  GOutputStream *out = g_io_stream_get_output_stream (stream);
  gsize len;
  const guint8 *bytes = g_bytes_get_data (data, &len);

  g_output_stream_write_all_async (out, bytes, len, G_PRIORITY_DEFAULT, NULL, on_written, write_op);
  ZLT_TEST_WAIT_FOR (write_op->done, DEADLINE_MS);
  g_assert_no_error (write_op->error);
  g_output_stream_close_async (out, G_PRIORITY_DEFAULT, NULL, on_closed, close_op);
}

static GBytes *
pattern (gsize len, guint8 seed)
{
  guint8 *data = g_malloc (len);

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 31 + seed + i / 7919);
  return g_bytes_new_take (data, len);
}

/* Both ways, each side half-closing after its bytes: the other still reads them all,
 * then its end; the half-closed side still reads the answer. */
static void
assert_carries_both_ways (GIOStream *client, GIOStream *server)
{
  g_autoptr (GBytes) up = pattern (3 * 1024 * 1024 + 17, 1);
  g_autoptr (GBytes) down = pattern (1024 * 1024 + 5, 2);
  g_autoptr (GBytes) got_up = NULL;
  g_autoptr (GBytes) got_down = NULL;
  Reader server_reader = { 0 };
  Reader client_reader = { 0 };
  Op w1 = { 0 }, c1 = { 0 }, w2 = { 0 }, c2 = { 0 };

  /* the client sends everything and shuts its side; the server reads to the end */
  server_reader.got = g_byte_array_new ();
  g_input_stream_read_async (g_io_stream_get_input_stream (server), server_reader.buf,
                             sizeof server_reader.buf, G_PRIORITY_DEFAULT, NULL, on_read,
                             &server_reader);
  write_and_shut (client, up, &w1, &c1);
  ZLT_TEST_WAIT_FOR (c1.done && (server_reader.eof || server_reader.error != NULL), DEADLINE_MS);
  g_assert_no_error (c1.error);
  g_assert_no_error (server_reader.error);
  got_up = g_byte_array_free_to_bytes (g_steal_pointer (&server_reader.got));
  g_assert_true (g_bytes_equal (got_up, up));

  /* then the server answers over the half that is still open */
  client_reader.got = g_byte_array_new ();
  g_input_stream_read_async (g_io_stream_get_input_stream (client), client_reader.buf,
                             sizeof client_reader.buf, G_PRIORITY_DEFAULT, NULL, on_read,
                             &client_reader);
  write_and_shut (server, down, &w2, &c2);
  ZLT_TEST_WAIT_FOR (c2.done && (client_reader.eof || client_reader.error != NULL), DEADLINE_MS);
  g_assert_no_error (c2.error);
  g_assert_no_error (client_reader.error);
  got_down = g_byte_array_free_to_bytes (g_steal_pointer (&client_reader.got));
  g_assert_true (g_bytes_equal (got_down, down));
  reader_clear (&server_reader);
  reader_clear (&client_reader);
}

/* ---- tests ---- */

static void
test_pinned (void)
{
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GIOStream) server = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) server_error = NULL;
  g_autoptr (GIOStream) base = NULL;
  g_autofree char *suite = NULL;
  GTlsProtocolVersion version;
  ZltTlsOptions options = { NULL, pin, FALSE };

  data_pair (&options, &c, &s, &client, &server);
  /* a TLS connection to whatever looks under one (the relay, resets, PROXY addresses) */
  g_assert_true (G_IS_TLS_CONNECTION (client));
  g_object_get (client, "base-io-stream", &base, NULL);
  g_assert_true (base == G_IO_STREAM (c));
  g_assert_cmpint (zlt_net_stream_socket_fd (client, NULL), ==,
                   g_socket_get_fd (g_socket_connection_get_socket (c)));

  error = handshake_pair (client, server, &options, &server_error);
  g_assert_no_error (error);
  g_assert_no_error (server_error);
  g_object_get (client, "protocol-version", &version, "ciphersuite-name", &suite, NULL);
  g_test_message ("negotiated %s", suite);
  g_assert_cmpint (version, ==, G_TLS_PROTOCOL_VERSION_TLS_1_3);
  /* nothing of the server's certificate is kept */
  g_assert_null (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (client)));
  assert_carries_both_ways (client, server);
  g_assert_true (g_io_stream_close (client, NULL, NULL));
  g_assert_true (g_io_stream_close (server, NULL, NULL));
}

/* Either end talks to glib-networking's. */
static void
test_interop (void)
{
  for (guint ours_is_client = 0; ours_is_client < 2; ours_is_client++)
    {
      g_autoptr (GSocketConnection) c = NULL;
      g_autoptr (GSocketConnection) s = NULL;
      g_autoptr (GIOStream) client = NULL;
      g_autoptr (GIOStream) server = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GError) server_error = NULL;
      ZltTlsOptions options = { NULL, pin, FALSE };

      socket_pair (&c, &s);
      if (ours_is_client)
        {
          client = zlt_tls_data_client_new (c, "127.0.0.1", &options, &error);
          g_assert_no_error (error);
          server = zlt_tls_server_connection_new (G_IO_STREAM (s), certificate, &error);
        }
      else
        {
          client = zlt_tls_client_connection_new (G_IO_STREAM (c), NULL, &options, &error);
          g_assert_no_error (error);
          server = zlt_tls_data_server_new (s, certificate, &error);
        }
      g_assert_no_error (error);
      error = handshake_pair (client, server, &options, &server_error);
      g_assert_no_error (error);
      g_assert_no_error (server_error);
      assert_carries_both_ways (client, server);
      g_io_stream_close (client, NULL, NULL);
      g_io_stream_close (server, NULL, NULL);
    }
}

/* After its handshake a client keeps neither its trust setting nor the server's name
 * (they are only needed during it): what it answers about them stays the same, and
 * bytes still go both ways. The server serves a client that offers the data ALPN but
 * does not answer it (it chose on the ClientHello already and keeps no ALPN state). */
static void
test_after_handshake (void)
{
  ZltTlsOptions pinned = { NULL, pin, FALSE };
  ZltTlsOptions by_ca = { cert_file, NULL, FALSE };
  const ZltTlsOptions *cases[] = { &pinned, &by_ca };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GSocketConnection) c = NULL;
      g_autoptr (GSocketConnection) s = NULL;
      g_autoptr (GIOStream) client = NULL;
      g_autoptr (GIOStream) server = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GError) server_error = NULL;
      gboolean system_before = TRUE, system_after = TRUE;

      data_pair (cases[i], &c, &s, &client, &server);
      g_object_get (client, "use-system-certdb", &system_before, NULL);
      error = handshake_pair (client, server, cases[i], &server_error);
      g_assert_no_error (error);
      g_assert_no_error (server_error);
      g_object_get (client, "use-system-certdb", &system_after, NULL);
      g_assert_false (system_before);
      g_assert_false (system_after);
      assert_carries_both_ways (client, server);
      g_io_stream_close (client, NULL, NULL);
      g_io_stream_close (server, NULL, NULL);
    }

  /* the system's CAs: said so before and after (the handshake itself fails here: the
   * test certificate is self-signed) */
  {
    g_autoptr (GSocketConnection) c = NULL;
    g_autoptr (GSocketConnection) s = NULL;
    g_autoptr (GIOStream) client = NULL;
    g_autoptr (GIOStream) server = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (GError) server_error = NULL;
    gboolean system_before = FALSE, system_after = FALSE;

    data_pair (NULL, &c, &s, &client, &server);
    g_object_get (client, "use-system-certdb", &system_before, NULL);
    error = handshake_pair (client, server, NULL, &server_error);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
    g_object_get (client, "use-system-certdb", &system_after, NULL);
    g_assert_true (system_before);
    g_assert_true (system_after);
    g_io_stream_close (client, NULL, NULL);
    g_io_stream_close (server, NULL, NULL);
  }

  /* glib-networking's client offering the data ALPN: served, with no ALPN answer */
  {
    g_autoptr (GSocketConnection) c = NULL;
    g_autoptr (GSocketConnection) s = NULL;
    g_autoptr (GIOStream) client = NULL;
    g_autoptr (GIOStream) server = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (GError) server_error = NULL;
    const char *const protocols[] = { ZLT_TLS_DATA_ALPN, NULL };

    socket_pair (&c, &s);
    client = zlt_tls_client_connection_new (G_IO_STREAM (c), NULL, &pinned, &error);
    g_assert_no_error (error);
    g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (client), protocols);
    server = zlt_tls_data_server_new (s, certificate, &error);
    g_assert_no_error (error);
    error = handshake_pair (client, server, &pinned, &server_error);
    g_assert_no_error (error);
    g_assert_no_error (server_error);
    g_assert_null (g_tls_connection_get_negotiated_protocol (G_TLS_CONNECTION (client)));
    assert_carries_both_ways (client, server);
    g_io_stream_close (client, NULL, NULL);
    g_io_stream_close (server, NULL, NULL);
  }
}

/* The client's verdict for @options against our server; returns the client's error. */
static GError *
try_client (const ZltTlsOptions *options, const char *host, GTlsCertificate *server_cert)
{
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GIOStream) server = NULL;
  g_autoptr (GError) server_error = NULL;
  GError *error = NULL;

  socket_pair (&c, &s);
  client = zlt_tls_data_client_new (c, host, options, &error);
  if (client == NULL)
    return error;
  server = zlt_tls_data_server_new (s, server_cert, &error);
  g_assert_no_error (error);
  error = handshake_pair (client, server, options, &server_error);
  if (error != NULL)
    {
      /* the server learns of it too, and neither end can move bytes */
      g_assert_nonnull (server_error);
      g_test_message ("server saw: %s", server_error->message);
      g_assert_false (
          g_output_stream_write (g_io_stream_get_output_stream (client), "x", 1, NULL, NULL) == 1);
    }
  g_io_stream_close (client, NULL, NULL);
  g_io_stream_close (server, NULL, NULL);
  return error;
}

static void
test_wrong_pin (void)
{
  g_autofree char *wrong = g_strdup (pin);
  ZltTlsOptions options = { NULL, wrong, FALSE };
  g_autoptr (GError) error = NULL;

  wrong[5] = wrong[5] == '0' ? '1' : '0';
  error = try_client (&options, "127.0.0.1", certificate);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "does not match the pinned SHA-256 fingerprint"));
  /* what it presented, to compare with the pin */
  g_assert_nonnull (strstr (error->message, pin));
}

/* a pin wins over verification being off: it is still checked */
static void
test_wrong_pin_insecure (void)
{
  g_autofree char *wrong = g_strdup (pin);
  ZltTlsOptions options = { NULL, wrong, TRUE };
  g_autoptr (GError) error = NULL;

  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  error = try_client (&options, "127.0.0.1", certificate);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
}

static void
test_untrusted (void)
{
  g_autoptr (GError) error = NULL;

  /* the system CAs do not know the test certificate */
  error = try_client (NULL, "127.0.0.1", certificate);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "server certificate is not trusted"));
  g_assert_nonnull (strstr (error->message, "issuer unknown"));
}

static void
test_insecure (void)
{
  ZltTlsOptions options = { NULL, NULL, TRUE };
  g_autoptr (GError) error = try_client (&options, "127.0.0.1", certificate);

  g_assert_no_error (error);
}

static void
test_ca_file (void)
{
  ZltTlsOptions options = { cert_file, NULL, FALSE };
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) other_host = NULL;

  error = try_client (&options, "127.0.0.1", certificate);
  g_assert_no_error (error);
  /* the same certificate for a name it was not issued for */
  other_host = try_client (&options, "example.com", certificate);
  g_assert_error (other_host, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", other_host->message);
  g_assert_nonnull (strstr (other_host->message, "issued for another host"));
  g_assert_null (strstr (other_host->message, "issuer unknown"));
}

static void
test_bad_ca_file (void)
{
  g_autofree char *missing = g_build_filename (tmpdir, "no-such-ca.pem", NULL);
  ZltTlsOptions options = { missing, NULL, FALSE };
  g_autoptr (GError) error = try_client (&options, "127.0.0.1", certificate);

  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "failed to load CA file"));
}

static void
test_expired (void)
{
  g_autofree char *cfg = g_build_filename (tmpdir, "expired.cfg", NULL);
  g_autofree char *key = g_build_filename (tmpdir, "expired-key.pem", NULL);
  g_autofree char *cert = g_build_filename (tmpdir, "expired.pem", NULL);
  g_autofree char *cmd1 = NULL, *cmd2 = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GTlsCertificate) expired = NULL;
  g_autoptr (GError) error = NULL;
  ZltTlsOptions options = { cert, NULL, FALSE };
  gint status = 0;

  g_assert_true (g_file_set_contents (cfg,
                                      "cn = 127.0.0.1\n"
                                      "ip_address = 127.0.0.1\n"
                                      "activation_date = \"2001-01-01 00:00:00\"\n"
                                      "expiration_date = \"2002-01-01 00:00:00\"\n"
                                      "tls_www_server\nsigning_key\nencryption_key\n",
                                      -1, NULL));
  cmd1 = g_strdup_printf ("certtool --generate-privkey --key-type=ecdsa --outfile %s", key);
  cmd2 = g_strdup_printf ("certtool --generate-self-signed --load-privkey %s --template %s "
                          "--outfile %s",
                          key, cfg, cert);
  g_assert_true (g_spawn_command_line_sync (cmd1, &out, &err, &status, NULL) && status == 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_true (g_spawn_command_line_sync (cmd2, &out, &err, &status, NULL) && status == 0);
  expired = g_tls_certificate_new_from_files (cert, key, &error);
  g_assert_no_error (error);

  /* trusted by its CA file, for the right address, but out of date */
  error = try_client (&options, "127.0.0.1", expired);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "expired"));
  g_assert_null (strstr (error->message, "issuer unknown"));
  g_unlink (cfg);
  g_unlink (key);
  g_unlink (cert);
}

/* A server that answers in plain HTTP: the handshake fails at once, it does not hang. */
static void
test_not_tls (void)
{
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GError) error = NULL;
  ZltTlsOptions options = { NULL, pin, FALSE };
  const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

  socket_pair (&c, &s);
  client = zlt_tls_data_client_new (c, "127.0.0.1", &options, &error);
  g_assert_no_error (error);
  g_assert_cmpint (
      g_socket_send (g_socket_connection_get_socket (s), answer, strlen (answer), NULL, &error), ==,
      (gssize) strlen (answer));
  g_assert_no_error (error);
  g_io_stream_close (G_IO_STREAM (s), NULL, NULL);
  error = handshake_pair (client, NULL, &options, NULL);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_io_stream_close (client, NULL, NULL);
}

/* After the handshake the server's process vanishes: mid-record (a header that promises
 * more than comes), or between records without close_notify. The client's read fails
 * (neither a clean end nor a hang), and nothing is left to leak. */
static void
test_peer_vanishes (void)
{
  for (guint mid_record = 0; mid_record < 2; mid_record++)
    {
      g_autoptr (GSocketConnection) c = NULL;
      g_autoptr (GSocketConnection) s = NULL;
      g_autoptr (GIOStream) client = NULL;
      g_autoptr (GIOStream) server = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GError) server_error = NULL;
      ZltTlsOptions options = { NULL, pin, FALSE };
      GSocket *raw = NULL;
      Reader r = { 0 };
      Op w = { 0 };
      g_autoptr (GBytes) some = pattern (40000, 3);

      data_pair (&options, &c, &s, &client, &server);
      error = handshake_pair (client, server, &options, &server_error);
      g_assert_no_error (error);
      g_assert_no_error (server_error);

      /* whole records first: they arrive */
      g_output_stream_write_all_async (g_io_stream_get_output_stream (server),
                                       g_bytes_get_data (some, NULL), g_bytes_get_size (some),
                                       G_PRIORITY_DEFAULT, NULL, on_written, &w);
      ZLT_TEST_WAIT_FOR (w.done, DEADLINE_MS);
      g_assert_no_error (w.error);
      raw = g_socket_connection_get_socket (s);
      if (mid_record)
        {
          /* application data, 16 KiB promised, 100 bytes sent */
          guint8 partial[5 + 100] = { 0x17, 0x03, 0x03, 0x40, 0x11 };

          memset (partial + 5, 0xa5, sizeof partial - 5);
          g_assert_cmpint (g_socket_send (raw, (const char *) partial, sizeof partial, NULL, NULL),
                           ==, (gssize) sizeof partial);
        }
      /* FIN without close_notify */
      g_assert_true (g_socket_shutdown (raw, FALSE, TRUE, NULL));

      read_to_end (client, &r);
      g_assert_cmpuint (r.got->len, ==, g_bytes_get_size (some));
      g_assert_false (r.eof);
      g_assert_nonnull (r.error);
      g_test_message ("%s: %s", mid_record ? "mid-record" : "between records", r.error->message);
      g_assert_true (r.error->domain == G_TLS_ERROR || r.error->domain == G_IO_ERROR);
      reader_clear (&r);
      g_io_stream_close (client, NULL, NULL);
      g_io_stream_close (server, NULL, NULL);
    }
}

/* The relay's reset closes the socket under a live stream first: closing the stream
 * then sends nothing (the fd number may be someone else's by then) and fails nothing. */
static void
test_close_after_socket (void)
{
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GIOStream) server = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) server_error = NULL;
  ZltTlsOptions options = { NULL, pin, FALSE };
  GSocket *under;
  int fds[2];
  char byte;

  data_pair (&options, &c, &s, &client, &server);
  error = handshake_pair (client, server, &options, &server_error);
  g_assert_no_error (error);
  g_assert_no_error (server_error);

  under = g_socket_connection_get_socket (c);
  g_assert_true (g_socket_close (under, NULL));
  /* the fd number the stream had is taken again at once */
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_assert_true (g_io_stream_close (client, NULL, NULL));
  g_assert_false (g_output_stream_write (g_io_stream_get_output_stream (client), "x", 1, NULL, NULL)
                  == 1);
  /* nothing reached whatever now has that number */
  g_assert_cmpint (recv (fds[1], &byte, 1, MSG_DONTWAIT), <, 0);
  g_assert_cmpint (recv (fds[0], &byte, 1, MSG_DONTWAIT), <, 0);
  close (fds[0]);
  close (fds[1]);
  g_io_stream_close (server, NULL, NULL);
}

/* The first record @client sends when it starts its handshake (the server's end peeks
 * it, as the listener does). */
static GBytes *
first_record_of (GIOStream *client, GSocketConnection *server_end, GError **handshake_error)
{
  GSocket *socket = g_socket_connection_get_socket (server_end);
  guint8 *buf = g_malloc (17000);
  gssize n = 0;

  g_tls_connection_handshake_async (G_TLS_CONNECTION (client), G_PRIORITY_DEFAULT, NULL,
                                    on_handshake, handshake_error);
  ZLT_TEST_WAIT_FOR (g_socket_condition_check (socket, G_IO_IN) != 0, DEADLINE_MS);
  /* the whole record: its header says how long it is */
  ZLT_TEST_WAIT_FOR ((n = recv (g_socket_get_fd (socket), buf, 17000, MSG_PEEK)) >= 5
                         && n >= 5 + (buf[3] << 8 | buf[4]),
                     DEADLINE_MS);
  return g_bytes_new_take (buf, (gsize) (5 + (buf[3] << 8 | buf[4])));
}

/* A server tells a data connection's ClientHello (it offers ZLT_TLS_DATA_ALPN) from any
 * other before the handshake; anything malformed is not one, and does no harm. */
static void
test_data_hello (void)
{
  g_autoptr (GSocketConnection) c1 = NULL;
  g_autoptr (GSocketConnection) s1 = NULL;
  g_autoptr (GSocketConnection) c2 = NULL;
  g_autoptr (GSocketConnection) s2 = NULL;
  g_autoptr (GIOStream) ours = NULL;
  g_autoptr (GIOStream) theirs = NULL;
  g_autoptr (GBytes) hello = NULL;
  g_autoptr (GBytes) other = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) ours_error = NULL;
  g_autoptr (GError) theirs_error = NULL;
  g_autofree guint8 *copy = NULL;
  ZltTlsOptions options = { NULL, pin, FALSE };
  const guint8 *data;
  gsize len;
  guint n_true = 0;

  socket_pair (&c1, &s1);
  ours = zlt_tls_data_client_new (c1, "127.0.0.1", &options, &error);
  g_assert_no_error (error);
  hello = first_record_of (ours, s1, &ours_error);
  data = g_bytes_get_data (hello, &len);
  g_test_message ("a data connection's ClientHello: %" G_GSIZE_FORMAT " bytes", len);
  g_assert_true (zlt_tls_is_data_client_hello (data, len));

  /* glib-networking's (the control channel's, an older agent's) is not */
  socket_pair (&c2, &s2);
  theirs = zlt_tls_client_connection_new (G_IO_STREAM (c2), NULL, &options, &error);
  g_assert_no_error (error);
  other = first_record_of (theirs, s2, &theirs_error);
  g_assert_false (
      zlt_tls_is_data_client_hello (g_bytes_get_data (other, NULL), g_bytes_get_size (other)));

  /* every truncation (whatever the record header claims) */
  g_assert_false (zlt_tls_is_data_client_hello (NULL, 0));
  for (gsize i = 0; i < len; i++)
    g_assert_false (zlt_tls_is_data_client_hello (data, i));
  /* every byte changed in turn: no crash, and the record is not taken for one when its
   * headers no longer hold together */
  copy = g_memdup2 (data, len);
  for (gsize i = 0; i < len; i++)
    {
      copy[i] ^= 0xff;
      n_true += zlt_tls_is_data_client_hello (copy, len);
      if (i < 9 && i != 2)
        g_assert_false (zlt_tls_is_data_client_hello (copy, len));
      copy[i] = data[i];
    }
  g_test_message ("%u of %" G_GSIZE_FORMAT " one-byte changes still offer the protocol", n_true,
                  len);
  g_assert_true (zlt_tls_is_data_client_hello (copy, len));

  /* no server answers: the handshakes fail once the server ends go */
  g_io_stream_close (G_IO_STREAM (s1), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (s2), NULL, NULL);
  ZLT_TEST_WAIT_FOR (ours_error != NULL && theirs_error != NULL, DEADLINE_MS);
  g_assert_false (g_error_matches (ours_error, G_IO_ERROR, G_IO_ERROR_EXISTS));
  g_assert_false (g_error_matches (theirs_error, G_IO_ERROR, G_IO_ERROR_EXISTS));
  g_io_stream_close (ours, NULL, NULL);
  g_io_stream_close (theirs, NULL, NULL);
}

/* ---- session resumption ---- */

/* A listening socket that stays: its connections share a host and port, as an agent's
 * successive data connections to one server do. */
static GSocket *
resume_listener (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (listener, any, TRUE, &error));
  g_assert_true (g_socket_listen (listener, &error));
  return g_steal_pointer (&listener);
}

typedef struct
{
  gboolean offered; /* the client offered a kept ticket */
  gboolean resumed; /* the client's handshake resumed */
  gboolean server_resumed;
  GError *error; /* the client's */
  GError *server_error;
} Resumption;

static void
resumption_clear (Resumption *r)
{
  g_clear_error (&r->error);
  g_clear_error (&r->server_error);
}

/* A small exchange both ways: the client reads past the server's ticket to get here. */
static void
assert_round_trip (GIOStream *client, GIOStream *server)
{
  g_autoptr (GError) error = NULL;
  char buf[16] = { 0 };
  gsize got = 0;

  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (client), "ping", 4, NULL,
                                            NULL, &error));
  g_assert_true (
      g_input_stream_read_all (g_io_stream_get_input_stream (server), buf, 4, &got, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (buf, got, "ping", 4);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (server), "pong!", 5,
                                            NULL, NULL, &error));
  g_assert_true (
      g_input_stream_read_all (g_io_stream_get_input_stream (client), buf, 5, &got, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (buf, got, "pong!", 5);
}

/* One data connection through @listener to a server with @server_cert, the client
 * trusting as @options say; when it handshakes, bytes go both ways (@bulk: megabytes,
 * with half-closes, else a small exchange). */
static Resumption
resume_connect (GSocket *listener, const char *host, const ZltTlsOptions *options,
                GTlsCertificate *server_cert, gboolean bulk)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (listener, &error);
  g_autoptr (GSocket) cs
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr (GSocket) ss = NULL;
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GIOStream) server = NULL;
  Resumption r = { 0 };

  g_assert_no_error (error);
  g_assert_true (g_socket_connect (cs, bound, NULL, &error));
  ss = g_socket_accept (listener, NULL, &error);
  g_assert_no_error (error);
  c = g_socket_connection_factory_create_connection (cs);
  s = g_socket_connection_factory_create_connection (ss);
  client = zlt_tls_data_client_new (c, host, options, &error);
  g_assert_no_error (error);
  server = zlt_tls_data_server_new (s, server_cert, &error);
  g_assert_no_error (error);
  r.offered = zlt_tls_stream_offered_ticket (ZLT_TLS_STREAM (client));
  r.error = handshake_pair (client, server, options, &r.server_error);
  if (r.error == NULL)
    {
      g_assert_no_error (r.server_error);
      r.resumed = zlt_tls_stream_is_resumed (ZLT_TLS_STREAM (client));
      r.server_resumed = zlt_tls_stream_is_resumed (ZLT_TLS_STREAM (server));
      /* both ends agree on what happened */
      g_assert_cmpint (r.resumed, ==, r.server_resumed);
      if (bulk)
        assert_carries_both_ways (client, server);
      else
        assert_round_trip (client, server);
    }
  else
    g_assert_nonnull (r.server_error);
  g_io_stream_close (client, NULL, NULL);
  g_io_stream_close (server, NULL, NULL);
  return r;
}

/* The second data connection to a server resumes the first's session, and carries
 * bytes both ways; so does the third, with the same ticket (the server issues one after
 * a full handshake only). */
static void
test_resume (void)
{
  g_autoptr (GSocket) listener = resume_listener ();
  ZltTlsOptions options = { NULL, pin, FALSE };
  Resumption r;

  if (!zlt_tls_stream_can_resume ())
    {
      g_test_skip ("data connections do not resume with this GnuTLS");
      return;
    }

  zlt_tls_stream_forget_tickets ();
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  g_assert_false (r.resumed);
  for (guint i = 0; i < 2; i++)
    {
      r = resume_connect (listener, "127.0.0.1", &options, certificate, i == 0);
      g_assert_no_error (r.error);
      g_assert_true (r.offered);
      g_assert_true (r.resumed);
    }
  /* forgotten: a full handshake again */
  zlt_tls_stream_forget_tickets ();
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  g_assert_false (r.resumed);
}

/* A ticket is offered for an hour after it came, never later (whatever lifetime the
 * server gave it): an older one is dropped, the connection does a full handshake, and
 * the ticket that one brings is offered again. */
static void
test_resume_expiry (void)
{
  g_autoptr (GSocket) listener = resume_listener ();
  ZltTlsOptions options = { NULL, pin, FALSE };
  const gint64 hour = (gint64) G_USEC_PER_SEC * 3600;
  Resumption r;

  if (!zlt_tls_stream_can_resume ())
    {
      g_test_skip ("data connections do not resume with this GnuTLS");
      return;
    }

  zlt_tls_stream_forget_tickets ();
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  /* a minute short of the hour: still offered, and resumed */
  zlt_tls_stream_age_tickets (hour - 60 * G_USEC_PER_SEC);
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_true (r.offered);
  g_assert_true (r.resumed);
  /* the hour is up: not offered, a full handshake (fully verified) */
  zlt_tls_stream_age_tickets (60 * G_USEC_PER_SEC);
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  g_assert_false (r.resumed);
  /* that handshake's ticket is fresh */
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_true (r.offered);
  g_assert_true (r.resumed);
}

/* Another server at the same address (another process, or a restart: another ticket key)
 * cannot take the ticket: a full handshake, fully verified. The same identity passes; a
 * certificate the pin does not match is refused, ticket or not. */
static void
test_resume_other_server (void)
{
  g_autoptr (GSocket) listener = resume_listener ();
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (tmpdir, "other", NULL);
  g_autofree char *other_cert = NULL;
  g_autofree char *other_key = NULL;
  g_autofree char *other_cfg = g_build_filename (dir, "cert.cfg", NULL);
  g_autoptr (GTlsCertificate) restarted = NULL;
  g_autoptr (GTlsCertificate) impostor = NULL;
  ZltTlsOptions options = { NULL, pin, FALSE };
  Resumption r;

  if (!zlt_tls_stream_can_resume ())
    {
      g_test_skip ("data connections do not resume with this GnuTLS");
      return;
    }

  /* the same certificate loaded again: a new server with its own ticket key */
  restarted = g_tls_certificate_new_from_files (cert_file, key_file, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_true (zlt_test_make_certificate (dir, &other_cert, &other_key));
  impostor = g_tls_certificate_new_from_files (other_cert, other_key, &error);
  g_assert_no_error (error);

  zlt_tls_stream_forget_tickets ();
  r = resume_connect (listener, "127.0.0.1", &options, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.resumed);
  r = resume_connect (listener, "127.0.0.1", &options, restarted, TRUE);
  g_assert_no_error (r.error);
  g_assert_true (r.offered);
  g_assert_false (r.resumed);
  /* the ticket now kept is the restarted server's; the impostor cannot use it either,
   * and its certificate is checked against the pin */
  r = resume_connect (listener, "127.0.0.1", &options, impostor, FALSE);
  g_assert_true (r.offered);
  g_assert_error (r.error, ZLT_ERROR, ZLT_ERROR_TLS);
  g_test_message ("%s", r.error->message);
  g_assert_nonnull (strstr (r.error->message, "does not match the pinned SHA-256 fingerprint"));
  resumption_clear (&r);
  /* and the refusal did not cost the good ticket */
  r = resume_connect (listener, "127.0.0.1", &options, restarted, FALSE);
  g_assert_no_error (r.error);
  g_assert_true (r.resumed);

  g_unlink (other_cert);
  g_unlink (other_key);
  g_unlink (other_cfg);
  g_rmdir (dir);
}

/* A ticket goes only to the host, port and trust setting it came from. */
static void
test_resume_trust_setting (void)
{
  g_autoptr (GSocket) listener = resume_listener ();
  g_autoptr (GSocket) other_port = resume_listener ();
  g_autofree char *wrong = g_strdup (pin);
  ZltTlsOptions pinned = { NULL, pin, FALSE };
  ZltTlsOptions wrong_pin = { NULL, wrong, FALSE };
  ZltTlsOptions by_ca = { cert_file, NULL, FALSE };
  ZltTlsOptions insecure = { NULL, NULL, TRUE };
  Resumption r;

  if (!zlt_tls_stream_can_resume ())
    {
      g_test_skip ("data connections do not resume with this GnuTLS");
      return;
    }

  wrong[7] = wrong[7] == '0' ? '1' : '0';
  zlt_tls_stream_forget_tickets ();
  r = resume_connect (listener, "127.0.0.1", &pinned, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);

  /* another pin: not offered, and refused on the certificate */
  r = resume_connect (listener, "127.0.0.1", &wrong_pin, certificate, FALSE);
  g_assert_false (r.offered);
  g_assert_error (r.error, ZLT_ERROR, ZLT_ERROR_TLS);
  resumption_clear (&r);
  /* CAs instead of the pin, verification off, another name for the host, another port:
   * each a full handshake of its own */
  r = resume_connect (listener, "127.0.0.1", &by_ca, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  g_assert_false (r.resumed);
  r = resume_connect (listener, "127.0.0.1", &insecure, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  r = resume_connect (listener, "localhost", &pinned, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  r = resume_connect (other_port, "127.0.0.1", &pinned, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_false (r.offered);
  /* and each setting resumes with its own */
  r = resume_connect (listener, "127.0.0.1", &by_ca, certificate, FALSE);
  g_assert_no_error (r.error);
  g_assert_true (r.offered);
  g_assert_true (r.resumed);
}

/* ---- reading ahead ---- */

static gsize
queued_on (GSocketConnection *conn)
{
  int queued = 0;

  g_assert_cmpint (
      ioctl (g_socket_get_fd (g_socket_connection_get_socket (conn)), FIONREAD, &queued), ==, 0);
  return (gsize) queued;
}

/* Waits (the main context turning) until @conn's socket has @len bytes queued. */
static void
wait_queued (GSocketConnection *conn, gsize len)
{
  int fd = g_socket_get_fd (g_socket_connection_get_socket (conn));
  int queued = 0;

  ZLT_TEST_WAIT_FOR ((ioctl (fd, FIONREAD, &queued) == 0 && (gsize) queued >= len), DEADLINE_MS);
  g_assert_cmpuint ((gsize) queued, >=, len);
}

static gboolean
on_ready_count (GObject *stream, gpointer user_data)
{
  guint *n = user_data;

  (*n)++;
  return G_SOURCE_REMOVE;
}

/* Reads @want from @stream without blocking and without the socket: the record must be
 * in the stream already. */
static void
read_buffered_record (GIOStream *stream, GSocketConnection *base, const char *want)
{
  GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  g_autoptr (GError) error = NULL;
  g_autoptr (GSource) source = NULL;
  char buf[64] = { 0 };
  guint dispatched = 0;
  gssize n;

  /* nothing left on the socket: what follows is in the read-ahead */
  g_assert_cmpint (g_socket_condition_check (g_socket_connection_get_socket (base), G_IO_IN), ==,
                   0);
  g_assert_true (zlt_tls_stream_has_buffered (ZLT_TLS_STREAM (stream)));
  g_assert_true (g_pollable_input_stream_is_readable (in));
  /* a source made now is ready at once: one iteration dispatches it, no fd event needed */
  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (on_ready_count), &dispatched, NULL);
  g_source_attach (source, NULL);
  for (guint i = 0; i < 3 && dispatched == 0; i++)
    g_main_context_iteration (NULL, FALSE);
  g_source_destroy (source);
  g_assert_cmpuint (dispatched, ==, 1);
  n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, want, strlen (want));
}

/* Records that come off the socket together (one recv() of the read-ahead) are read one
 * by one, and each after the first is there without a further fd event: the stream says
 * readable and its source is ready at once. From the server to the client the first
 * record behind the handshake is the session ticket, which GnuTLS takes without data. */
static void
test_read_ahead (void)
{
  g_autoptr (GSocketConnection) c = NULL;
  g_autoptr (GSocketConnection) s = NULL;
  g_autoptr (GIOStream) client = NULL;
  g_autoptr (GIOStream) server = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) server_error = NULL;
  static const char *const words[] = { "one", "two", "three" };
  ZltTlsOptions options = { NULL, pin, FALSE };
  gsize records;

  socket_pair (&c, &s);
  /* each record its own segment at once (no Nagle waiting for an ACK), as the data
   * connections send */
  for (guint i = 0; i < 2; i++)
    {
      g_socket_set_option (g_socket_connection_get_socket (i == 0 ? c : s), IPPROTO_TCP,
                           TCP_NODELAY, 1, &error);
      g_assert_no_error (error);
    }
  client = zlt_tls_data_client_new (c, "127.0.0.1", &options, &error);
  g_assert_no_error (error);
  server = zlt_tls_data_server_new (s, certificate, &error);
  g_assert_no_error (error);
  error = handshake_pair (client, server, &options, &server_error);
  g_assert_no_error (error);
  g_assert_no_error (server_error);
  g_assert_false (zlt_tls_stream_has_buffered (ZLT_TLS_STREAM (server)));

  for (guint dir = 0; dir < 2; dir++)
    {
      GIOStream *from = dir == 0 ? client : server;
      GIOStream *to = dir == 0 ? server : client;
      GSocketConnection *to_base = dir == 0 ? s : c;
      GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (to));
      char buf[64];
      gssize n;

      records = queued_on (to_base); /* the client: the server's ticket */
      for (guint i = 0; i < G_N_ELEMENTS (words); i++)
        {
          gsize len = strlen (words[i]);

          g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (from), words[i],
                                                    len, NULL, NULL, &error));
          g_assert_no_error (error);
          records += 5 + len + 1 + 16; /* header, text, content type, AES-GCM tag */
        }
      wait_queued (to_base, records);
      /* the first read takes them all off the socket (and the client its ticket) */
      n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, words[0], strlen (words[0]));
      read_buffered_record (to, to_base, words[1]);
      read_buffered_record (to, to_base, words[2]);
      /* now nothing waits anywhere, and the read-ahead is gone */
      g_assert_false (zlt_tls_stream_has_buffered (ZLT_TLS_STREAM (to)));
      g_assert_false (g_pollable_input_stream_is_readable (in));
      n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
      g_assert_cmpint (n, ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_clear_error (&error);
    }

  /* a record split by the read-ahead's end: its head buffered, its tail on the socket
   * later; the stream is not readable until the tail comes, then it is */
  {
    GPollableInputStream *in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (server));
    g_autofree char *big = g_malloc (16384);
    g_autofree char *got = g_malloc (16384);
    gsize total = 0;

    memset (big, 'x', 16384);
    /* three full records (about 48 KiB) are more than one read-ahead takes */
    for (guint i = 0; i < 3; i++)
      g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (client), big, 16384,
                                                NULL, NULL, &error));
    g_assert_no_error (error);
    wait_queued (s, 3 * (16384 + 5 + 1 + 16));
    while (total < 3 * 16384)
      {
        gssize n;

        ZLT_TEST_WAIT_FOR (g_pollable_input_stream_is_readable (in), DEADLINE_MS);
        n = g_pollable_input_stream_read_nonblocking (in, got, 16384, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpint (n, >, 0);
        g_assert_cmpmem (got, n, big, n);
        total += (gsize) n;
      }
    g_assert_cmpuint (total, ==, 3 * 16384);
    g_assert_false (zlt_tls_stream_has_buffered (ZLT_TLS_STREAM (server)));
  }
  g_assert_true (g_io_stream_close (client, NULL, NULL));
  g_assert_true (g_io_stream_close (server, NULL, NULL));
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *cfg = NULL;
  int ret;

  zlt_init ();
  g_test_init (&argc, &argv, NULL);

  tmpdir = g_dir_make_tmp ("test-tls-stream-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert_true (zlt_test_make_certificate (tmpdir, &cert_file, &key_file));
  certificate = g_tls_certificate_new_from_files (cert_file, key_file, &error);
  g_assert_no_error (error);
  pin = zlt_tls_certificate_fingerprint (certificate);

  g_test_add_func ("/tls-stream/pinned", test_pinned);
  g_test_add_func ("/tls-stream/interop", test_interop);
  g_test_add_func ("/tls-stream/after-handshake", test_after_handshake);
  g_test_add_func ("/tls-stream/wrong-pin", test_wrong_pin);
  g_test_add_func ("/tls-stream/wrong-pin-insecure", test_wrong_pin_insecure);
  g_test_add_func ("/tls-stream/untrusted", test_untrusted);
  g_test_add_func ("/tls-stream/insecure", test_insecure);
  g_test_add_func ("/tls-stream/ca-file", test_ca_file);
  g_test_add_func ("/tls-stream/bad-ca-file", test_bad_ca_file);
  g_test_add_func ("/tls-stream/expired", test_expired);
  g_test_add_func ("/tls-stream/not-tls", test_not_tls);
  g_test_add_func ("/tls-stream/peer-vanishes", test_peer_vanishes);
  g_test_add_func ("/tls-stream/close-after-socket", test_close_after_socket);
  g_test_add_func ("/tls-stream/data-hello", test_data_hello);
  g_test_add_func ("/tls-stream/read-ahead", test_read_ahead);
  g_test_add_func ("/tls-stream/resume", test_resume);
  g_test_add_func ("/tls-stream/resume-expiry", test_resume_expiry);
  g_test_add_func ("/tls-stream/resume-other-server", test_resume_other_server);
  g_test_add_func ("/tls-stream/resume-trust-setting", test_resume_trust_setting);
  ret = g_test_run ();

  g_clear_object (&certificate);
  g_unlink (cert_file);
  g_unlink (key_file);
  cfg = g_build_filename (tmpdir, "cert.cfg", NULL);
  g_unlink (cfg);
  g_rmdir (tmpdir);
  g_free (cert_file);
  g_free (key_file);
  g_free (pin);
  g_free (tmpdir);
  return ret;
}
