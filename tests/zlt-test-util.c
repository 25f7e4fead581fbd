/* zlt-test-util.c */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "zlt-test-util.h"

gboolean
zlt_test_tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* ---- echo service ---- */

struct _ZltTestEcho
{
  GSocketService *service;
  guint16 port;
  guint n_accepted;
};

typedef struct
{
  GSocketConnection *connection;
  guint8 buf[65536];
} EchoConn;

static void echo_read (EchoConn *c);

static void
echo_conn_free (EchoConn *c)
{
  g_io_stream_close (G_IO_STREAM (c->connection), NULL, NULL);
  g_object_unref (c->connection);
  g_free (c);
}

static void
echo_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EchoConn *c = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL))
    {
      echo_conn_free (c);
      return;
    }
  echo_read (c);
}

static void
echo_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  EchoConn *c = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0)
    {
      /* the client half-closed: everything is echoed, so half-close back */
      g_socket_shutdown (g_socket_connection_get_socket (c->connection), FALSE, TRUE, NULL);
      echo_conn_free (c);
      return;
    }
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (c->connection)),
                                   c->buf, (gsize) n, G_PRIORITY_DEFAULT, NULL, echo_written, c);
}

static void
echo_read (EchoConn *c)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (c->connection)), c->buf,
                             sizeof c->buf, G_PRIORITY_DEFAULT, NULL, echo_got, c);
}

static gboolean
echo_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
               gpointer user_data)
{
  ZltTestEcho *echo = user_data;
  EchoConn *c = g_new0 (EchoConn, 1);

  echo->n_accepted++;
  c->connection = g_object_ref (connection);
  echo_read (c);
  return TRUE;
}

ZltTestEcho *
zlt_test_echo_new (void)
{
  ZltTestEcho *echo = g_new0 (ZltTestEcho, 1);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) effective = NULL;
  g_autoptr (GError) error = NULL;

  echo->service = g_socket_service_new ();
  /* bursts of connects (the agent dials once per public connection) must not overflow
   * GSocketListener's default backlog of 10 */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (echo->service), 1024);
  g_socket_listener_add_address (G_SOCKET_LISTENER (echo->service), address, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &effective, &error);
  g_assert_no_error (error);
  echo->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_signal_connect (echo->service, "incoming", G_CALLBACK (echo_incoming), echo);
  g_socket_service_start (echo->service);
  return echo;
}

guint16
zlt_test_echo_get_port (ZltTestEcho *echo)
{
  return echo->port;
}

guint
zlt_test_echo_get_n_accepted (ZltTestEcho *echo)
{
  return echo->n_accepted;
}

void
zlt_test_echo_free (ZltTestEcho *echo)
{
  g_socket_service_stop (echo->service);
  g_socket_listener_close (G_SOCKET_LISTENER (echo->service));
  g_object_unref (echo->service);
  g_free (echo);
}

guint16
zlt_test_closed_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  guint16 port;

  g_assert_true (g_socket_bind (socket, address, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (socket, NULL);
  return port;
}

/* ---- blocking clients in a thread ---- */

/* The loopback address public clients, servers and agents of the harness use. */
static GSocketFamily test_family = G_SOCKET_FAMILY_IPV4;

void
zlt_test_use_ipv6 (gboolean ipv6)
{
  test_family = ipv6 ? G_SOCKET_FAMILY_IPV6 : G_SOCKET_FAMILY_IPV4;
}

const char *
zlt_test_loopback (void)
{
  return test_family == G_SOCKET_FAMILY_IPV6 ? "::1" : "127.0.0.1";
}

static GSocket *
connect_loopback (guint16 port, GError **error)
{
  g_autoptr (GSocket) socket
      = g_socket_new (test_family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (test_family);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, port);

  if (socket == NULL)
    return NULL;
  g_socket_set_timeout (socket, 60);
  if (!g_socket_connect (socket, address, NULL, error))
    return NULL;
  return g_steal_pointer (&socket);
}

static gboolean
send_all (GSocket *socket, const guint8 *data, gsize len, GError **error)
{
  while (len > 0)
    {
      gssize n = g_socket_send (socket, (const char *) data, MIN (len, 65536), NULL, error);
      if (n < 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void
transfer_run (ZltTestTransfer *t)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree guint8 *payload = g_malloc (t->n_bytes ? t->n_bytes : 1);
  g_autofree char *expected = NULL;
  guint n = MAX (t->n_connections, 1);

  for (gsize i = 0; i < t->n_bytes; i++)
    payload[i] = (guint8) g_random_int ();
  expected = g_compute_checksum_for_data (G_CHECKSUM_SHA256, payload, t->n_bytes);

  /* all connections open at once */
  for (guint i = 0; i < n; i++)
    {
      GSocket *socket = connect_loopback (t->port, &error);
      if (socket == NULL)
        goto fail;
      g_ptr_array_add (sockets, socket);
    }
  for (guint i = 0; i < n; i++)
    {
      GSocket *socket = g_ptr_array_index (sockets, i);
      g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
      gsize got = 0;
      char buf[65536];

      /* one connection at a time is written fully only when it is alone (large
       * transfers); many small ones all fit in the socket buffers */
      if (n == 1)
        {
          /* write and read interleaved so a large echo cannot deadlock */
          gsize off = 0;
          g_socket_set_blocking (socket, FALSE);
          while (TRUE)
            {
              GIOCondition want = G_IO_IN | (off < t->n_bytes ? G_IO_OUT : 0);
              if (!g_socket_condition_timed_wait (socket, want, 60 * G_USEC_PER_SEC, NULL, &error))
                goto fail;
              if (off < t->n_bytes && (g_socket_condition_check (socket, G_IO_OUT) & G_IO_OUT))
                {
                  gssize w = g_socket_send (socket, (const char *) payload + off,
                                            MIN (t->n_bytes - off, 65536), NULL, NULL);
                  if (w > 0)
                    off += (gsize) w;
                  if (off == t->n_bytes && !g_socket_shutdown (socket, FALSE, TRUE, &error))
                    goto fail;
                }
              if (g_socket_condition_check (socket, G_IO_IN | G_IO_HUP | G_IO_ERR))
                {
                  gssize r = g_socket_receive (socket, buf, sizeof buf, NULL, &error);
                  if (r < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                    {
                      g_clear_error (&error);
                      continue;
                    }
                  if (r < 0)
                    goto fail;
                  if (r == 0)
                    break;
                  g_checksum_update (sum, (const guchar *) buf, r);
                  got += (gsize) r;
                }
            }
        }
      else
        {
          if (!send_all (socket, payload, t->n_bytes, &error)
              || !g_socket_shutdown (socket, FALSE, TRUE, &error))
            goto fail;
        }
      if (n > 1)
        continue;
      t->received += got;
      if (g_strcmp0 (g_checksum_get_string (sum), expected) != 0)
        {
          t->error = g_strdup_printf ("echo differs: got %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                                      " bytes",
                                      got, t->n_bytes);
          return;
        }
    }
  if (n > 1)
    for (guint i = 0; i < n; i++)
      {
        GSocket *socket = g_ptr_array_index (sockets, i);
        g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
        gsize got = 0;
        char buf[65536];
        gssize r;

        while ((r = g_socket_receive (socket, buf, sizeof buf, NULL, &error)) > 0)
          {
            g_checksum_update (sum, (const guchar *) buf, r);
            got += (gsize) r;
          }
        if (r < 0)
          goto fail;
        t->received += got;
        if (g_strcmp0 (g_checksum_get_string (sum), expected) != 0)
          {
            t->error = g_strdup_printf ("connection %u: echo differs (%" G_GSIZE_FORMAT " bytes)",
                                        i, got);
            return;
          }
      }
  t->ok = TRUE;
  return;

fail:
  t->error = g_strdup (error ? error->message : "failed");
}

static gpointer
transfer_thread (gpointer user_data)
{
  ZltTestTransfer *t = user_data;

  transfer_run (t);
  g_atomic_int_set (&t->done, 1);
  return NULL;
}

GThread *
zlt_test_transfer_start (ZltTestTransfer *transfer)
{
  return g_thread_new ("transfer", transfer_thread, transfer);
}

void
zlt_test_transfer_finish (GThread *thread, ZltTestTransfer *transfer, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&transfer->done), timeout_ms);
  g_thread_join (thread);
}

typedef struct
{
  guint16 port;
  gboolean closed;
  gint done;
} ClosedProbe;

static gpointer
closed_thread (gpointer user_data)
{
  ClosedProbe *p = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = connect_loopback (p->port, &error);
  char buf[16];

  if (socket != NULL)
    {
      gssize n;
      g_socket_send (socket, "x", 1, NULL, NULL);
      n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL);
      p->closed = n <= 0;
    }
  else
    p->closed = TRUE;
  g_atomic_int_set (&p->done, 1);
  return NULL;
}

gboolean
zlt_test_expect_closed (guint16 port, guint timeout_ms)
{
  ClosedProbe p = { port, FALSE, 0 };
  GThread *thread = g_thread_new ("closed-probe", closed_thread, &p);

  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&p.done), timeout_ms);
  g_thread_join (thread);
  return p.closed;
}

gboolean
zlt_test_connect_refused (guint16 port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = connect_loopback (port, &error);

  return socket == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

/* ---- harness ---- */

static void
write_private (const char *path, const char *contents)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
}

void
zlt_test_harness_init (ZltTestHarness *h, const char *port_range)
{
  g_autoptr (GError) error = NULL;

  memset (h, 0, sizeof *h);
  h->tmpdir = g_dir_make_tmp ("zlt-test-XXXXXX", &error);
  g_assert_no_error (error);
  h->token_file = g_build_filename (h->tmpdir, "tokens", NULL);
  h->agent_token_file = g_build_filename (h->tmpdir, "agent-token", NULL);
  write_private (h->token_file, "# test tokens\n");
  /* the harness's own token registers and reaches anything (the daemon's agent role
   * uses it for both); tests of separate rights make tokens of their own */
  h->token = zlt_test_harness_add_token (h, "name=test register=* reach=*");
  write_private (h->agent_token_file, h->token);

  h->server_keyfile = g_key_file_new ();
  g_key_file_set_string (h->server_keyfile, "server", "listen",
                         test_family == G_SOCKET_FAMILY_IPV6 ? "[::1]:0" : "127.0.0.1:0");
  g_key_file_set_string (h->server_keyfile, "server", "public-bind-address", zlt_test_loopback ());
  g_key_file_set_string (h->server_keyfile, "server", "port-range", port_range);
  g_key_file_set_integer (h->server_keyfile, "server", "heartbeat-interval", 1);
  g_key_file_set_integer (h->server_keyfile, "server", "heartbeat-timeout", 2);
  g_key_file_set_integer (h->server_keyfile, "server", "resume-grace", 5);
  g_key_file_set_string (h->server_keyfile, "server", "validator", "token-file");
  g_key_file_set_string (h->server_keyfile, "validator:token-file", "path", h->token_file);

  h->agent_keyfile = g_key_file_new ();
  g_key_file_set_string (h->agent_keyfile, "agent", "token-file", h->agent_token_file);
  g_key_file_set_integer (h->agent_keyfile, "agent", "heartbeat-interval", 1);
  g_key_file_set_integer (h->agent_keyfile, "agent", "heartbeat-timeout", 2);
  g_key_file_set_double (h->agent_keyfile, "agent", "backoff-min", 0.05);
  g_key_file_set_double (h->agent_keyfile, "agent", "backoff-max", 0.5);

  h->loader = zlt_plugin_loader_new (NULL);
  zlt_plugin_loader_load_all (h->loader, &error);
  g_assert_no_error (error);
  h->echo = zlt_test_echo_new ();
}

char *
zlt_test_harness_add_token (ZltTestHarness *h, const char *fields)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  guint8 raw[24];
  g_autofree char *secret = NULL;
  char *token;
  g_autofree char *hash = NULL;
  g_autofree char *updated = NULL;

  zlt_random_bytes (raw, sizeof raw);
  secret = zlt_hex_encode (raw, sizeof raw);
  token = g_strdup_printf ("zlt_%s", secret);
  hash = zlt_token_hash_hex (token);
  g_file_get_contents (h->token_file, &contents, NULL, &error);
  g_assert_no_error (error);
  updated = g_strdup_printf ("%s%s %s\n", contents, hash, fields ? fields : "");
  write_private (h->token_file, updated);
  return token;
}

void
zlt_test_harness_start_server (ZltTestHarness *h)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltServerConfig) config
      = zlt_server_config_new_from_keyfile (h->server_keyfile, &error);
  g_autofree char *url = NULL;

  g_assert_no_error (error);
  h->server = zlt_server_new (config, h->loader, &error);
  g_assert_no_error (error);
  zlt_server_start (h->server, &error);
  g_assert_no_error (error);
  /* the agent follows the server to whatever port it got */
  url = g_strdup_printf (
      "%s://%s:%u/tunnel/v1", zlt_server_config_get_use_tls (config) ? "wss" : "ws",
      test_family == G_SOCKET_FAMILY_IPV6 ? "[::1]" : "127.0.0.1", zlt_server_get_port (h->server));
  g_key_file_set_string (h->agent_keyfile, "agent", "server", url);
}

void
zlt_test_harness_stop_server (ZltTestHarness *h)
{
  if (h->server == NULL)
    return;
  zlt_server_stop (h->server);
  g_clear_object (&h->server);
}

void
zlt_test_harness_add_service (ZltTestHarness *h, const char *name, guint16 local_port,
                              guint16 remote_port)
{
  g_autofree char *group = g_strdup_printf ("service:%s", name);

  g_key_file_set_string (h->agent_keyfile, group, "protocol", "tcp");
  g_key_file_set_integer (h->agent_keyfile, group, "local-port", local_port);
  g_key_file_set_integer (h->agent_keyfile, group, "remote-port", remote_port);
}

void
zlt_test_harness_start_agent (ZltTestHarness *h)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltClientConfig) config
      = zlt_client_config_new_from_keyfile (h->agent_keyfile, &error);

  g_assert_no_error (error);
  h->agent = zlt_agent_new (config, h->loader, &error);
  g_assert_no_error (error);
  zlt_agent_start (h->agent);
}

void
zlt_test_harness_set_agent_token (ZltTestHarness *h, const char *token)
{
  write_private (h->agent_token_file, token);
}

void
zlt_test_harness_set_agent_url (ZltTestHarness *h, const char *url)
{
  g_key_file_set_string (h->agent_keyfile, "agent", "server", url);
}

guint16
zlt_test_harness_wait_registered (ZltTestHarness *h, const char *name)
{
  ZltTunnel *tunnel = zlt_agent_get_tunnel (h->agent);
  ZltService *service = zlt_tunnel_lookup_service (tunnel, name);

  g_assert_nonnull (service);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_state (h->agent) == ZLT_TUNNEL_STATE_CONNECTED
                         && zlt_service_get_assigned_port (service) != 0
                         && !zlt_uuid_is_nil (zlt_service_get_id (service)),
                     10000);
  return zlt_service_get_assigned_port (service);
}

/* The server's tunnel of the token named @name, or NULL when it has none (the registry
 * keeps it). */
ZltTunnel *
zlt_test_harness_server_tunnel_of (ZltTestHarness *h, const char *name)
{
  g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (zlt_server_get_registry (h->server));

  for (guint i = 0; i < tunnels->len; i++)
    if (g_strcmp0 (zlt_tunnel_get_token_name (g_ptr_array_index (tunnels, i)), name) == 0)
      return g_ptr_array_index (tunnels, i);
  return NULL;
}

void
zlt_test_harness_clear (ZltTestHarness *h)
{
  if (h->agent != NULL)
    zlt_agent_stop (h->agent);
  g_clear_object (&h->agent);
  zlt_test_harness_stop_server (h);
  g_clear_pointer (&h->echo, zlt_test_echo_free);
  g_clear_object (&h->loader);
  g_clear_pointer (&h->server_keyfile, g_key_file_unref);
  g_clear_pointer (&h->agent_keyfile, g_key_file_unref);
  if (h->tmpdir != NULL)
    {
      g_autoptr (GDir) dir = g_dir_open (h->tmpdir, 0, NULL);
      const char *name;
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (h->tmpdir, name, NULL);
          g_unlink (path);
        }
      g_rmdir (h->tmpdir);
    }
  g_clear_pointer (&h->tmpdir, g_free);
  g_clear_pointer (&h->token_file, g_free);
  g_clear_pointer (&h->agent_token_file, g_free);
  g_clear_pointer (&h->token, g_free);
  /* let closes and finished relays run their last callbacks */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

gboolean
zlt_test_make_certificate (const char *dir, char **cert_file, char **key_file)
{
  g_autofree char *tmpl = g_build_filename (dir, "cert.cfg", NULL);
  g_autofree char *key = g_build_filename (dir, "key.pem", NULL);
  g_autofree char *cert = g_build_filename (dir, "cert.pem", NULL);
  g_autofree char *cmd1 = NULL;
  g_autofree char *cmd2 = NULL;
  g_autofree char *out1 = NULL, *err1 = NULL, *out2 = NULL, *err2 = NULL;
  gint status = 0;

  write_private (tmpl, "cn = 127.0.0.1\n"
                       "dns_name = localhost\n"
                       "ip_address = 127.0.0.1\n"
                       "expiration_days = 2\n"
                       "tls_www_server\n"
                       "signing_key\n"
                       "encryption_key\n");
  cmd1 = g_strdup_printf ("certtool --generate-privkey --key-type=ecdsa --outfile %s", key);
  cmd2 = g_strdup_printf ("certtool --generate-self-signed --load-privkey %s --template %s "
                          "--outfile %s",
                          key, tmpl, cert);
  /* capture the tool's chatter: our stdout is the TAP stream */
  if (!g_spawn_command_line_sync (cmd1, &out1, &err1, &status, NULL) || status != 0
      || !g_spawn_command_line_sync (cmd2, &out2, &err2, &status, NULL) || status != 0)
    return FALSE;
  *cert_file = g_steal_pointer (&cert);
  *key_file = g_steal_pointer (&key);
  return TRUE;
}

/* ---- raw WebSocket client ---- */

struct _ZltTestWs
{
  SoupSession *session;
  SoupMessage *msg;
  SoupWebsocketConnection *conn;
  GError *connect_error;
  gboolean connect_done;
  GQueue queue; /* GBytes*: binary messages */
  gboolean closed;
  gboolean auto_ack;
  GBytes *nonce;
};

static void
ws_on_message (SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer user_data)
{
  ZltTestWs *ws = user_data;
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);

  /* the server never sends text: fail loudly rather than queue it */
  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_BINARY);
  /* a Heartbeat that crosses our own close is not answered: the connection is going */
  if (ws->auto_ack && len > 0 && data[0] == ZLT_MESSAGE_HEARTBEAT
      && soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    {
      gsize consumed = 0;
      g_autoptr (ZltMessage) hb = zlt_message_decode (data, len, &consumed, NULL);

      if (hb != NULL && consumed == len)
        {
          g_autoptr (ZltMessage) ack = zlt_message_new_heartbeat_ack (hb->timestamp);
          zlt_test_ws_send_message (ws, ack);
          return;
        }
    }
  g_queue_push_tail (&ws->queue, g_bytes_ref (message));
}

static void
ws_on_closed (SoupWebsocketConnection *conn, gpointer user_data)
{
  ZltTestWs *ws = user_data;

  ws->closed = TRUE;
}

static void
ws_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ZltTestWs *ws = user_data;

  ws->conn
      = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &ws->connect_error);
  ws->connect_done = TRUE;
}

ZltTestWs *
zlt_test_ws_try_connect (guint16 port, const char *path, guint *status, GError **error)
{
  ZltTestWs *ws = g_new0 (ZltTestWs, 1);
  g_autofree char *authority = zlt_net_join_host_port (zlt_test_loopback (), port);
  g_autofree char *url = g_strdup_printf ("ws://%s%s", authority, path);
  const char *nonce_hex;

  g_queue_init (&ws->queue);
  ws->auto_ack = TRUE;
  ws->session = soup_session_new ();
  ws->msg = soup_message_new (SOUP_METHOD_GET, url);
  g_assert_nonnull (ws->msg);
  soup_session_websocket_connect_async (ws->session, ws->msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        ws_connected, ws);
  ZLT_TEST_WAIT_FOR (ws->connect_done, 10000);
  if (status != NULL)
    *status = soup_message_get_status (ws->msg);
  if (ws->conn == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&ws->connect_error));
      zlt_test_ws_free (ws);
      return NULL;
    }
  nonce_hex
      = soup_message_headers_get_one (soup_message_get_response_headers (ws->msg), "X-Zlt-Nonce");
  if (nonce_hex != NULL)
    {
      g_autoptr (GBytes) nonce = zlt_test_bytes_from_hex (nonce_hex);
      g_assert_cmpuint (g_bytes_get_size (nonce), ==, ZLT_NONCE_SIZE);
      ws->nonce = g_steal_pointer (&nonce);
    }
  soup_websocket_connection_set_keepalive_interval (ws->conn, 0);
  g_signal_connect (ws->conn, "message", G_CALLBACK (ws_on_message), ws);
  g_signal_connect (ws->conn, "closed", G_CALLBACK (ws_on_closed), ws);
  return ws;
}

ZltTestWs *
zlt_test_ws_connect (guint16 port, const char *path)
{
  g_autoptr (GError) error = NULL;
  ZltTestWs *ws = zlt_test_ws_try_connect (port, path, NULL, &error);

  g_assert_no_error (error);
  return ws;
}

void
zlt_test_ws_set_auto_ack (ZltTestWs *ws, gboolean auto_ack)
{
  ws->auto_ack = auto_ack;
}

GBytes *
zlt_test_ws_get_nonce (ZltTestWs *ws)
{
  return ws->nonce;
}

void
zlt_test_ws_send (ZltTestWs *ws, const void *data, gsize len)
{
  g_assert_cmpint (soup_websocket_connection_get_state (ws->conn), ==, SOUP_WEBSOCKET_STATE_OPEN);
  soup_websocket_connection_send_binary (ws->conn, data, len);
}

void
zlt_test_ws_send_bytes (ZltTestWs *ws, GBytes *bytes)
{
  gsize len;
  gconstpointer data = g_bytes_get_data (bytes, &len);

  zlt_test_ws_send (ws, data, len);
}

void
zlt_test_ws_send_text (ZltTestWs *ws, const char *text)
{
  g_assert_cmpint (soup_websocket_connection_get_state (ws->conn), ==, SOUP_WEBSOCKET_STATE_OPEN);
  soup_websocket_connection_send_text (ws->conn, text);
}

void
zlt_test_ws_send_message (ZltTestWs *ws, const ZltMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = zlt_message_encode_bytes (msg, &error);

  g_assert_no_error (error);
  zlt_test_ws_send_bytes (ws, bytes);
}

GBytes *
zlt_test_ws_next (ZltTestWs *ws, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (!g_queue_is_empty (&ws->queue) || ws->closed, timeout_ms);
  return g_queue_pop_head (&ws->queue);
}

ZltMessage *
zlt_test_ws_expect (ZltTestWs *ws, ZltMessageType type, GBytes **raw, guint timeout_ms)
{
  g_autoptr (GBytes) bytes = zlt_test_ws_next (ws, timeout_ms);
  g_autoptr (GError) error = NULL;
  ZltMessage *msg;
  gsize len, consumed = 0;
  const guint8 *data;

  if (bytes == NULL)
    g_error ("connection closed while waiting for %s", zlt_message_type_to_string (type));
  data = g_bytes_get_data (bytes, &len);
  msg = zlt_message_decode (data, len, &consumed, &error);
  g_assert_no_error (error);
  /* one frame per message, nothing after it */
  g_assert_cmpuint (consumed, ==, len);
  if (msg->type != type)
    g_error ("expected %s, got %s", zlt_message_type_to_string (type),
             zlt_message_type_to_string (msg->type));
  if (raw != NULL)
    *raw = g_steal_pointer (&bytes);
  return msg;
}

ZltMessage *
zlt_test_ws_v2_auth (ZltTestWs *ws, const char *token, guint32 caps, gint64 access_ttl,
                     guint8 *session_key)
{
  GBytes *nonce = zlt_test_ws_get_nonce (ws);
  guint8 hash[ZLT_HASH_SIZE], proof[ZLT_HASH_SIZE];
  g_autofree char *key_id = zlt_token_key_id (token);
  ZltUuid client_id;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (GBytes) reply = NULL;
  ZltMessage *msg;

  g_assert_nonnull (nonce);
  zlt_token_hash_raw (token, hash);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (hash, g_bytes_get_data (nonce, NULL), &client_id, proof);
  auth = zlt_message_new_auth (key_id, &client_id);
  zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
  zlt_message_set_caps (auth, caps);
  zlt_message_set_proof (auth, proof);
  if (access_ttl >= 0)
    zlt_message_set_access_ttl (auth, (guint32) access_ttl);
  zlt_test_ws_send_message (ws, auth);
  reply = zlt_test_ws_next (ws, 10000);
  g_assert_nonnull (reply);
  msg = zlt_message_decode (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL, NULL);
  g_assert_nonnull (msg);
  if (msg->type == ZLT_MESSAGE_AUTH_FAIL)
    return msg;
  g_assert_cmpint (msg->type, ==, ZLT_MESSAGE_AUTH_OK);
  g_assert_true (zlt_message_has_ext_fields (msg, ZLT_EXT_VERSION | ZLT_EXT_SERVER_PROOF));
  /* the server proves it holds the token's hash, bound to this nonce, client and tunnel */
  zlt_server_proof (hash, g_bytes_get_data (nonce, NULL), &client_id, &msg->tunnel_id, proof);
  g_assert_cmpmem (msg->ext.server_proof, ZLT_HASH_SIZE, proof, ZLT_HASH_SIZE);
  if (session_key != NULL)
    zlt_session_key (hash, g_bytes_get_data (nonce, NULL), &msg->tunnel_id, session_key);
  return msg;
}

gushort
zlt_test_ws_wait_closed (ZltTestWs *ws, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (ws->closed, timeout_ms);
  return soup_websocket_connection_get_close_code (ws->conn);
}

gboolean
zlt_test_ws_is_closed (ZltTestWs *ws)
{
  return ws->closed;
}

guint
zlt_test_ws_get_n_queued (ZltTestWs *ws)
{
  return g_queue_get_length (&ws->queue);
}

void
zlt_test_ws_free (ZltTestWs *ws)
{
  if (ws->conn != NULL)
    {
      if (soup_websocket_connection_get_state (ws->conn) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (ws->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      /* the close handshake, so nothing is left half-done behind the test */
      ZLT_TEST_WAIT_FOR (ws->closed, 10000);
      g_signal_handlers_disconnect_by_data (ws->conn, ws);
      g_clear_object (&ws->conn);
    }
  g_queue_clear_full (&ws->queue, (GDestroyNotify) g_bytes_unref);
  g_clear_pointer (&ws->nonce, g_bytes_unref);
  g_clear_error (&ws->connect_error);
  g_clear_object (&ws->msg);
  if (ws->session != NULL)
    soup_session_abort (ws->session);
  g_clear_object (&ws->session);
  g_free (ws);
}

GBytes *
zlt_test_bytes_from_hex (const char *hex)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  int hi = -1;

  for (const char *p = hex; *p != '\0'; p++)
    {
      int v;
      if (g_ascii_isspace (*p))
        continue;
      v = g_ascii_xdigit_value (*p);
      g_assert_cmpint (v, >=, 0);
      if (hi < 0)
        hi = v;
      else
        {
          guint8 b = (guint8) (hi << 4 | v);
          g_byte_array_append (out, &b, 1);
          hi = -1;
        }
    }
  g_assert_cmpint (hi, <, 0);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* ---- raw TCP client in a thread ---- */

static gpointer
raw_thread (gpointer user_data)
{
  ZltTestRaw *r = user_data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (test_family);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, r->port);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;
  gint64 start;

  g_socket_client_set_timeout (client, 60);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  if (conn == NULL)
    {
      /* accepted and reset before this thread saw its connect complete (GSocket checks
       * SO_ERROR after poll): a reset too */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
        {
          r->reset = r->closed = TRUE;
          g_clear_error (&error);
        }
      goto out;
    }
  r->connected = TRUE;
  start = g_get_monotonic_time ();
  if (r->request != NULL
      && !g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), r->request,
                                     strlen (r->request), NULL, NULL, &error))
    {
      /* a reset that came before the request was written is still a reset */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
          || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
        {
          r->reset = r->closed = TRUE;
          g_clear_error (&error);
        }
      goto out;
    }
  while (TRUE)
    {
      char buf[4096];
      gssize n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (conn)), buf,
                                      sizeof buf, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        goto out;
      if (n <= 0)
        {
          /* EOF or reset: both mean the peer closed; which one, the tests may ask */
          r->reset = n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
          g_clear_error (&error);
          r->closed = TRUE;
          break;
        }
      g_string_append_len (r->reply, buf, n);
      if (r->stop_at_line && strstr (r->reply->str, "\r\n") != NULL)
        break;
    }
  r->elapsed_ms = (g_get_monotonic_time () - start) / 1000;

out:
  if (error != NULL)
    r->error = g_strdup (error->message);
  if (conn != NULL)
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

GThread *
zlt_test_raw_start (ZltTestRaw *raw)
{
  raw->reply = g_string_new (NULL);
  return g_thread_new ("raw-client", raw_thread, raw);
}

void
zlt_test_raw_finish (GThread *thread, ZltTestRaw *raw, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&raw->done), timeout_ms);
  g_thread_join (thread);
}

void
zlt_test_raw_clear (ZltTestRaw *raw)
{
  if (raw->reply != NULL)
    g_string_free (raw->reply, TRUE);
  raw->reply = NULL;
  g_clear_pointer (&raw->error, g_free);
}

guint
zlt_test_http_status (guint16 port, const char *request, guint timeout_ms)
{
  ZltTestRaw raw = { 0 };
  GThread *thread;
  guint status = 0;

  raw.port = port;
  raw.request = request;
  raw.stop_at_line = TRUE;
  thread = zlt_test_raw_start (&raw);
  zlt_test_raw_finish (thread, &raw, timeout_ms);
  g_assert_null (raw.error);
  if (g_str_has_prefix (raw.reply->str, "HTTP/1.1 ")
      || g_str_has_prefix (raw.reply->str, "HTTP/1.0 "))
    status = (guint) g_ascii_strtoull (raw.reply->str + 9, NULL, 10);
  zlt_test_raw_clear (&raw);
  return status;
}

/* ---- more agents ---- */

ZltAgent *
zlt_test_harness_new_agent (ZltTestHarness *h, const char *token, const char *const *services)
{
  static guint counter;
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = g_key_file_to_data (h->agent_keyfile, NULL, NULL);
  g_autofree char *name = g_strdup_printf ("agent-token-%u", ++counter);
  g_autofree char *path = g_build_filename (h->tmpdir, name, NULL);
  g_autoptr (ZltClientConfig) config = NULL;
  ZltAgent *agent;

  g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  write_private (path, token);
  g_key_file_set_string (kf, "agent", "token-file", path);
  if (services != NULL)
    {
      g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);
      for (guint i = 0; groups[i] != NULL; i++)
        if (g_str_has_prefix (groups[i], "service:"))
          g_key_file_remove_group (kf, groups[i], NULL);
      for (guint i = 0; services[i] != NULL; i++)
        {
          g_auto (GStrv) parts = g_strsplit (services[i], ":", 2);
          g_autofree char *group = g_strdup_printf ("service:%s", parts[0]);
          g_assert_nonnull (parts[1]);
          g_key_file_set_string (kf, group, "protocol", "tcp");
          g_key_file_set_string (kf, group, "local-port", parts[1]);
        }
    }
  config = zlt_client_config_new_from_keyfile (kf, &error);
  g_assert_no_error (error);
  agent = zlt_agent_new (config, h->loader, &error);
  g_assert_no_error (error);
  return agent;
}

/* ---- a peer that signs in and stops reading ---- */

static gboolean
flooder_accept_any (GTlsConnection *tls, GTlsCertificate *peer, GTlsCertificateFlags errors,
                    gpointer user_data)
{
  return TRUE;
}

/* One masked client frame (RFC 6455 §5.2) carrying @payload as a binary message. */
static GByteArray *
ws_client_frame (const guint8 *payload, gsize len)
{
  GByteArray *frame = g_byte_array_sized_new (len + 14);
  guint8 head[10] = { 0x82 };
  guint8 mask[4];
  gsize head_len;

  if (len < 126)
    {
      head[1] = 0x80 | (guint8) len;
      head_len = 2;
    }
  else if (len <= G_MAXUINT16)
    {
      head[1] = 0x80 | 126;
      head[2] = (guint8) (len >> 8);
      head[3] = (guint8) len;
      head_len = 4;
    }
  else
    {
      head[1] = 0x80 | 127;
      for (guint i = 0; i < 8; i++)
        head[2 + i] = (guint8) ((guint64) len >> (56 - 8 * i));
      head_len = 10;
    }
  zlt_random_bytes (mask, sizeof mask);
  g_byte_array_append (frame, head, head_len);
  g_byte_array_append (frame, mask, sizeof mask);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = payload[i] ^ mask[i % 4];
      g_byte_array_append (frame, &b, 1);
    }
  return frame;
}

/* Reads one server frame (unmasked) and returns its payload, or NULL. */
static GBytes *
ws_read_frame (GInputStream *in, GError **error)
{
  guint8 head[2], ext[8];
  guint64 len;
  gsize got;
  g_autofree guint8 *payload = NULL;

  if (!g_input_stream_read_all (in, head, 2, &got, NULL, error) || got != 2)
    return NULL;
  len = head[1] & 0x7f;
  if (len == 126 || len == 127)
    {
      gsize n = len == 126 ? 2 : 8;
      if (!g_input_stream_read_all (in, ext, n, &got, NULL, error) || got != n)
        return NULL;
      len = 0;
      for (gsize i = 0; i < n; i++)
        len = len << 8 | ext[i];
    }
  if (len > 1024 * 1024)
    return NULL;
  payload = g_malloc (len + 1);
  if (!g_input_stream_read_all (in, payload, len, &got, NULL, error) || got != len)
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&payload), len);
}

static gboolean
ws_write_message (GOutputStream *out, const ZltMessage *msg, GError **error)
{
  g_autoptr (GBytes) encoded = zlt_message_encode_bytes (msg, error);
  g_autoptr (GByteArray) frame = NULL;

  if (encoded == NULL)
    return FALSE;
  frame = ws_client_frame (g_bytes_get_data (encoded, NULL), g_bytes_get_size (encoded));
  return g_output_stream_write_all (out, frame->data, frame->len, NULL, NULL, error);
}

static gpointer
flooder_thread (gpointer user_data)
{
  ZltTestFlooder *fl = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GString) head = g_string_new (NULL);
  g_autoptr (GByteArray) flood = g_byte_array_new ();
  g_autoptr (GByteArray) frame = NULL;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (1);
  g_autoptr (GBytes) reply = NULL;
  g_autofree char *key_id = NULL;
  g_autofree char *url_host = zlt_net_join_host_port (zlt_test_loopback (), fl->port);
  GIOStream *stream;
  GInputStream *in;
  GOutputStream *out;
  const char *nonce_hex, *eol;
  guint8 nonce[ZLT_NONCE_SIZE], hash[ZLT_HASH_SIZE], proof[ZLT_HASH_SIZE];
  ZltUuid client_id;
  int small = 4096;
  static const char upgrade[]
      = "GET /tunnel/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";

  g_socket_client_set_timeout (client, 30);
  connection = g_socket_client_connect_to_host (client, url_host, fl->port, NULL, &error);
  if (connection == NULL)
    goto out;
  /* a small window: what we do not read stays at the server */
  setsockopt (g_socket_get_fd (g_socket_connection_get_socket (connection)), SOL_SOCKET, SO_RCVBUF,
              &small, sizeof small);
  stream = G_IO_STREAM (connection);
  if (fl->tls)
    {
      tls = g_tls_client_connection_new (stream, NULL, &error);
      if (tls == NULL)
        goto out;
      g_signal_connect (tls, "accept-certificate", G_CALLBACK (flooder_accept_any), NULL);
      if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
        goto out;
      stream = tls;
    }
  in = g_io_stream_get_input_stream (stream);
  out = g_io_stream_get_output_stream (stream);
  if (!g_output_stream_write_all (out, upgrade, strlen (upgrade), NULL, NULL, &error))
    goto out;
  /* the response head, byte by byte: nothing of the first frame is read with it */
  while (strstr (head->str, "\r\n\r\n") == NULL && head->len < 8192)
    {
      char c;
      if (g_input_stream_read (in, &c, 1, NULL, &error) != 1)
        goto out;
      g_string_append_c (head, c);
    }
  nonce_hex = strstr (head->str, "X-Zlt-Nonce: ");
  if (!g_str_has_prefix (head->str, "HTTP/1.1 101") || nonce_hex == NULL)
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "no upgrade: %.40s", head->str);
      goto out;
    }
  nonce_hex += strlen ("X-Zlt-Nonce: ");
  eol = strstr (nonce_hex, "\r\n");
  {
    g_autofree char *hex = g_strndup (nonce_hex, eol - nonce_hex);
    if (!zlt_hash_from_hex (hex, nonce))
      goto out;
  }

  zlt_token_hash_raw (fl->token, hash);
  key_id = zlt_token_key_id (fl->token);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (hash, nonce, &client_id, proof);
  auth = zlt_message_new_auth (key_id, &client_id);
  zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
  zlt_message_set_caps (auth, ZLT_CAP_DATA_RAW);
  zlt_message_set_proof (auth, proof);
  if (!ws_write_message (out, auth, &error))
    goto out;
  reply = ws_read_frame (in, &error);
  if (reply == NULL || g_bytes_get_size (reply) == 0
      || ((const guint8 *) g_bytes_get_data (reply, NULL))[0] != ZLT_MESSAGE_AUTH_OK)
    goto out;
  fl->logged_in = TRUE;
  if (fl->register_name != NULL)
    {
      g_autoptr (ZltMessage) reg
          = zlt_message_new_register (fl->register_name, ZLT_PROTOCOL_TCP, 80, 0);
      g_autoptr (GBytes) answer = NULL;

      if (!ws_write_message (out, reg, &error))
        goto out;
      answer = ws_read_frame (in, &error);
      fl->register_refused
          = answer != NULL && g_bytes_get_size (answer) > 0
            && ((const guint8 *) g_bytes_get_data (answer, NULL))[0] == ZLT_MESSAGE_REGISTER_FAIL;
    }

  /* from here on nothing is read */
  for (guint i = 0; i < fl->n_heartbeats; i++)
    g_assert_true (zlt_message_encode (hb, flood, NULL));
  frame = ws_client_frame (flood->data, flood->len);
  while (fl->n_messages < fl->max_messages && !g_atomic_int_get (&fl->stop))
    {
      if (!g_output_stream_write_all (out, frame->data, frame->len, NULL, NULL, NULL))
        {
          fl->dropped = TRUE;
          break;
        }
      fl->n_messages++;
    }

out:
  if (error != NULL)
    fl->error = g_strdup (error->message);
  g_atomic_int_set (&fl->done, 1);
  return NULL;
}

GThread *
zlt_test_flooder_start (ZltTestFlooder *flooder)
{
  return g_thread_new ("flooder", flooder_thread, flooder);
}

void
zlt_test_flooder_finish (GThread *thread, ZltTestFlooder *flooder, guint timeout_ms)
{
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&flooder->done), timeout_ms);
  g_thread_join (thread);
}

guint64
zlt_test_rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "VmRSS:");
  return line != NULL ? g_ascii_strtoull (line + 6, NULL, 10) : 0;
}

/* ---- the command-line tool as a process ---- */

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

GSubprocess *
zlt_test_spawn_cli (const char *mode, GKeyFile *config, const char *dir, gboolean capture_stderr,
                    ...)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("%s/%s.conf", dir, mode);
  g_autofree char *cli
      = g_test_build_filename (G_TEST_BUILT, "..", "daemon", "zlayer-tunnel", NULL);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  GSubprocess *process;
  va_list args;

  g_key_file_save_to_file (config, path, &error);
  g_assert_no_error (error);
  g_ptr_array_add (argv, cli);
  g_ptr_array_add (argv, (char *) mode);
  g_ptr_array_add (argv, (char *) "-c");
  g_ptr_array_add (argv, path);
  va_start (args, capture_stderr);
  for (const char *arg = va_arg (args, const char *); arg != NULL;
       arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  /* its stdout would mix with our TAP stream */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                        | (capture_stderr ? G_SUBPROCESS_FLAGS_STDERR_PIPE : 0));
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return process;
}

static void
process_waited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

gboolean
zlt_test_process_wait (GSubprocess *process, guint timeout_ms)
{
  gboolean done = FALSE;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  GSource *tick = g_timeout_source_new (20);

  g_source_set_callback (tick, zlt_test_tick, NULL, NULL);
  g_source_attach (tick, NULL);
  g_subprocess_wait_async (process, cancellable, process_waited, &done);
  while (!done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  if (!done)
    {
      /* the wait's callback still comes, cancelled: let it, then report */
      g_cancellable_cancel (cancellable);
      while (!done)
        g_main_context_iteration (NULL, TRUE);
      return g_subprocess_get_identifier (process) == NULL;
    }
  return TRUE;
}

void
zlt_test_process_stop (GSubprocess *process, guint timeout_ms)
{
  if (g_subprocess_get_identifier (process) == NULL)
    return; /* already reaped */
  g_subprocess_send_signal (process, SIGTERM);
  g_assert_true (zlt_test_process_wait (process, timeout_ms));
}

char *
zlt_test_process_stderr (GSubprocess *process)
{
  GInputStream *err = g_subprocess_get_stderr_pipe (process);
  g_autoptr (GString) text = g_string_new (NULL);
  char buf[4096];
  gssize n;

  g_assert_nonnull (err);
  while ((n = g_input_stream_read (err, buf, sizeof buf, NULL, NULL)) > 0)
    g_string_append_len (text, buf, n);
  return g_string_free (g_steal_pointer (&text), FALSE);
}
