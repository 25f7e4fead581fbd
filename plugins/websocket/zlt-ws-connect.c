/* zlt-ws-connect.c: outgoing connections of the websocket transport */
#define _GNU_SOURCE /* memmem */
#include "config.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "zlt-ws-channel.h"
#include "zlt-ws-connect.h"
#include "zlt-ws-listener.h"

/* A response head bigger than this is not from a zlt server. */
#define MAX_RESPONSE_HEAD 8192

static gboolean
is_tls_url (GUri *url)
{
  const char *scheme = g_uri_get_scheme (url);
  return g_ascii_strcasecmp (scheme, "wss") == 0 || g_ascii_strcasecmp (scheme, "https") == 0;
}

static guint16
url_port (GUri *url)
{
  int port = g_uri_get_port (url);
  if (port > 0)
    return (guint16) port;
  return is_tls_url (url) ? 443 : 80;
}

char *
zlt_ws_url_authority (GUri *url)
{
  return zlt_net_join_host_port (g_uri_get_host (url), url_port (url));
}

/* ---- control channel ---- */

typedef struct
{
  SoupSession *session;
  SoupMessage *msg;
  ZltTlsOptions *tls;
  char *peer;
  GError *rejected; /* why our accept-certificate verdict refused the server */
  gboolean proxied; /* reached through a proxy: its address is not the server's */
} ControlData;

static void
control_data_free (ControlData *d)
{
  g_clear_object (&d->msg);
  g_clear_object (&d->session);
  zlt_tls_options_free (d->tls);
  g_free (d->peer);
  g_clear_error (&d->rejected);
  g_free (d);
}

static gboolean
on_accept_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                       gpointer user_data)
{
  ControlData *d = user_data;

  if (zlt_tls_accept_certificate (d->tls, certificate, errors))
    return TRUE;
  /* libsoup only reports an unacceptable certificate: keep the reason */
  g_clear_error (&d->rejected);
  d->rejected = zlt_tls_rejection_error (d->tls, certificate, errors);
  return FALSE;
}

static void
on_network_event (SoupMessage *msg, GSocketClientEvent event, GIOStream *connection,
                  gpointer user_data)
{
  ControlData *d = user_data;

  if (event == G_SOCKET_CLIENT_PROXY_NEGOTIATING)
    d->proxied = TRUE;
  /* small control frames (Heartbeat, ConnectAck) must leave at once */
  if (event == G_SOCKET_CLIENT_CONNECTED && G_IS_SOCKET_CONNECTION (connection))
    zlt_net_set_nodelay (G_SOCKET_CONNECTION (connection));
}

static void
control_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  ControlData *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupWebsocketConnection) ws = NULL;
  g_autoptr (GBytes) nonce = NULL;
  const char *nonce_hex;
  g_autofree char *auth = NULL;
  ZltChannel *channel;

  ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  if (ws == NULL)
    {
      guint status = soup_message_get_status (d->msg);
      if (status == SOUP_STATUS_NOT_FOUND)
        g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                                 _ ("the server has no tunnel endpoint at this path (404)"));
      else if (d->rejected != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&d->rejected));
      else
        g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (is_tls_url (soup_message_get_uri (d->msg))
      && !zlt_tls_check_peer (d->tls, soup_message_get_tls_peer_certificate (d->msg), &error))
    {
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, NULL);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  nonce_hex
      = soup_message_headers_get_one (soup_message_get_response_headers (d->msg), "X-Zlt-Nonce");
  if (nonce_hex != NULL)
    {
      guint8 raw[ZLT_NONCE_SIZE];
      if (!zlt_hash_from_hex (nonce_hex, raw))
        {
          soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR, NULL);
          g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                                   _ ("server sent a malformed challenge nonce"));
          return;
        }
      nonce = g_bytes_new (raw, sizeof raw);
    }
  channel = zlt_ws_channel_new (ws, d->peer, nonce);
  /* verified: TLS, and its certificate checked against CAs or a pin (the handshake
   * and zlt_tls_check_peer() above refused anything else), not waved through */
  zlt_channel_set_peer_verified (channel, is_tls_url (soup_message_get_uri (d->msg))
                                              && zlt_tls_options_verify_peer (d->tls));
  auth = g_strdup (
      soup_message_headers_get_one (soup_message_get_response_headers (d->msg), "X-Zlt-Auth"));
  zlt_channel_set_bearer_wanted (
      channel, auth != NULL && g_ascii_strcasecmp (g_strstrip (auth), "bearer") == 0);
  g_task_return_pointer (task, channel, g_object_unref);
}

void
zlt_ws_connect_control_async (GUri *url, const ZltTlsOptions *tls, guint timeout_ms,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  ControlData *d = g_new0 (ControlData, 1);
  g_autofree char *http_url = NULL;
  g_autoptr (GUri) http = NULL;

  g_task_set_source_tag (task, zlt_ws_connect_control_async);
  g_task_set_task_data (task, d, (GDestroyNotify) control_data_free);
  d->tls = zlt_tls_options_copy (tls);
  d->peer = zlt_ws_url_authority (url);
  d->session = soup_session_new_with_options ("timeout", (timeout_ms + 999) / 1000, "user-agent",
                                              "zlayer-tunnel/" PACKAGE_VERSION, NULL);
  if (tls != NULL && tls->ca_file != NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GTlsDatabase) db = g_tls_file_database_new (tls->ca_file, &error);
      if (db == NULL)
        {
          g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_TLS,
                                   _ ("failed to load CA file %s: %s"), tls->ca_file,
                                   error->message);
          return;
        }
      soup_session_set_tls_database (d->session, db);
    }
  /* libsoup wants http(s) URIs for the upgrade request */
  http = g_uri_build (G_URI_FLAGS_ENCODED, is_tls_url (url) ? "https" : "http", NULL,
                      g_uri_get_host (url), url_port (url),
                      *g_uri_get_path (url) ? g_uri_get_path (url) : "/tunnel/v1", NULL, NULL);
  http_url = g_uri_to_string (http);
  d->msg = soup_message_new_from_uri (SOUP_METHOD_GET, http);
  g_signal_connect (d->msg, "accept-certificate", G_CALLBACK (on_accept_certificate), d);
  g_signal_connect (d->msg, "network-event", G_CALLBACK (on_network_event), d);
  soup_session_websocket_connect_async (d->session, d->msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        cancellable, control_connected, g_steal_pointer (&task));
}

ZltChannel *
zlt_ws_connect_control_finish (GAsyncResult *result, GSocketAddress **server, GError **error)
{
  ControlData *d = g_task_get_task_data (G_TASK (result));
  ZltChannel *channel = g_task_propagate_pointer (G_TASK (result), error);

  if (server != NULL)
    {
      GSocketAddress *remote = NULL;

      if (channel != NULL && !d->proxied)
        remote = soup_message_get_remote_address (d->msg);
      *server = G_IS_INET_SOCKET_ADDRESS (remote) ? g_object_ref (remote) : NULL;
    }
  return channel;
}

/* ---- data connections ---- */

typedef struct
{
  ZltTlsOptions *tls;
  GIOStream *stream;
  char *host;
  guint16 port;
  char *request;
  GByteArray *head;
  GBytes *prefix;
  GSource *timeout;
  GSource *watch;       /* waits for the answer (holds a reference to the task) */
  gboolean probe;       /* X-Zlt-Probe: the answer is 204 or a refusal, no upgrade */
  GCancellable *parent; /* the caller's, linked to the task's own until it ends */
  gulong parent_handler;
} DataOpen;

static void
data_open_free (DataOpen *d)
{
  /* the caller's cancellable lives on (it is the agent's, for every connection of a
   * session): leave no handler on it behind */
  if (d->parent != NULL)
    g_cancellable_disconnect (d->parent, d->parent_handler);
  g_clear_object (&d->parent);
  zlt_tls_options_free (d->tls);
  g_clear_object (&d->stream);
  g_free (d->host);
  g_free (d->request);
  g_byte_array_unref (d->head);
  g_clear_pointer (&d->prefix, g_bytes_unref);
  /* a source still attached holds the task, so none is left by now */
  g_clear_pointer (&d->watch, g_source_unref);
  if (d->timeout != NULL)
    {
      g_source_destroy (d->timeout);
      g_source_unref (d->timeout);
    }
  g_free (d);
}

/* Acts on the answer's head once it is complete: the task's result. Returns FALSE while
 * it is not. */
static gboolean
head_complete (GTask *task)
{
  DataOpen *d = g_task_get_task_data (task);
  g_autoptr (SoupMessageHeaders) headers = NULL;
  const guint8 *end;
  gsize head_len;
  guint status = 0;
  g_autofree char *reason = NULL;

  end = memmem (d->head->data, d->head->len, "\r\n\r\n", 4);
  if (end == NULL)
    {
      if (d->head->len <= MAX_RESPONSE_HEAD)
        return FALSE;
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                               _ ("data upgrade response too large"));
      return TRUE;
    }
  head_len = (gsize) (end - d->head->data) + 4;
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (!soup_headers_parse_response ((const char *) d->head->data, (int) head_len, headers, NULL,
                                    &status, &reason))
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                               _ ("malformed data upgrade response"));
      return TRUE;
    }
  if (d->probe && status == SOUP_STATUS_NO_CONTENT)
    {
      g_task_return_boolean (task, TRUE);
      return TRUE;
    }
  if (status != SOUP_STATUS_SWITCHING_PROTOCOLS)
    {
      g_task_return_new_error (task, ZLT_ERROR,
                               status == 403                    ? ZLT_ERROR_NOT_ALLOWED
                               : status == 404 || status == 410 ? ZLT_ERROR_NOT_FOUND
                               : status == 409                  ? ZLT_ERROR_DUPLICATE_NAME
                                                                : ZLT_ERROR_PROTOCOL,
                               _ ("server refused the data connection: %u %s"), status,
                               reason ? reason : "");
      return TRUE;
    }
  /* bytes of the public connection may already follow the 101 */
  d->prefix = g_bytes_new (d->head->data + head_len, d->head->len - head_len);
  g_task_return_pointer (task, g_object_ref (d->stream), g_object_unref);
  return TRUE;
}

/* Reads what came of the answer. A source of our own rather than read_bytes_async():
 * one source for all the reads, no task per read, and one that can recurse (GLib blocks
 * and unblocks any other while it dispatches, each time two writes to the context's
 * wakeup fd). */
static gboolean
on_head_readable (GObject *stream, gpointer user_data)
{
  GTask *task = user_data;
  DataOpen *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  guint8 buffer[4096];
  gssize n;

  if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &error))
    n = -1;
  else
    {
      n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), buffer,
                                                    sizeof buffer, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
    }
  if (n < 0)
    g_task_return_error (task, g_steal_pointer (&error));
  else if (n == 0)
    g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_CLOSED,
                             _ ("server closed the data connection during the upgrade"));
  else
    {
      g_byte_array_append (d->head, buffer, (guint) n);
      if (!head_complete (task))
        return G_SOURCE_CONTINUE;
    }
  /* the source's reference to the task goes with it */
  g_clear_pointer (&d->watch, g_source_unref);
  return G_SOURCE_REMOVE;
}

static void head_read (GObject *source, GAsyncResult *result, gpointer user_data);

static void
read_head (GTask *task)
{
  DataOpen *d = g_task_get_task_data (task);
  GInputStream *input = g_io_stream_get_input_stream (d->stream);

  if (!G_IS_POLLABLE_INPUT_STREAM (input)
      || !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (input)))
    {
      g_input_stream_read_bytes_async (input, 4096, G_PRIORITY_DEFAULT,
                                       g_task_get_cancellable (task), head_read, task);
      return;
    }
  /* can recurse, and on a socket has no child source that cannot */
  d->watch = zlt_net_input_source_new (d->stream, g_task_get_cancellable (task));
  g_source_set_callback (d->watch, G_SOURCE_FUNC (on_head_readable), task, g_object_unref);
  g_source_attach (d->watch, g_main_context_get_thread_default ());
}

/* The same, for a stream that cannot poll. */
static void
head_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  DataOpen *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) chunk = NULL;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_CLOSED,
                               _ ("server closed the data connection during the upgrade"));
      return;
    }
  g_byte_array_append (d->head, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  if (!head_complete (task))
    read_head (g_steal_pointer (&task));
}

static void
request_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  read_head (g_steal_pointer (&task));
}

/* Sends the request: on a new connection the socket takes it at once, so a plain
 * write (what it does not take goes asynchronously), then the answer. */
static void
send_request (GTask *task)
{
  DataOpen *d = g_task_get_task_data (task);
  GOutputStream *output = g_io_stream_get_output_stream (d->stream);
  gsize len = strlen (d->request);
  gssize n = 0;

  if (G_IS_POLLABLE_OUTPUT_STREAM (output)
      && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (output)))
    {
      g_autoptr (GError) error = NULL;

      n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (output), d->request,
                                                      len, NULL, &error);
      if (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      if (n == (gssize) len)
        {
          read_head (task);
          return;
        }
      n = MAX (n, 0);
    }
  g_output_stream_write_all_async (output, d->request + n, len - (gsize) n, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), request_written, task);
}

static void
tls_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  DataOpen *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  if (!zlt_tls_client_handshake_finish (G_TLS_CONNECTION (source), result, d->tls, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  send_request (g_steal_pointer (&task));
}

/* The TCP connection is up: TLS first if wss://, then the request. */
static void
connected (GTask *task, GSocketConnection *connection, GError *error)
{
  DataOpen *d = g_task_get_task_data (task);

  if (connection == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (d->tls != NULL)
    {
      /* GnuTLS on the socket: a fraction of glib-networking's memory per connection */
      g_autoptr (GIOStream) tls = zlt_tls_data_client_new (connection, d->host, d->tls, &error);

      g_object_unref (connection);
      if (tls == NULL)
        {
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
      d->stream = g_object_ref (tls);
      g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                        g_task_get_cancellable (task), tls_done, task);
      return;
    }
  d->stream = G_IO_STREAM (connection);
  send_request (task);
}

static void
client_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError *error = NULL;
  GSocketConnection *connection
      = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);

  /* zlt_net_dial_async() sets it on its own connections */
  if (connection != NULL)
    zlt_net_set_nodelay (connection);
  connected (user_data, connection, error);
}

static void
address_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError *error = NULL;
  GSocketConnection *connection = zlt_net_dial_finish (result, &error);

  connected (user_data, connection, error);
}

static gboolean
data_timeout (gpointer user_data)
{
  GTask *task = user_data;

  /* cancelling makes the pending step return; the task reports the timeout */
  g_cancellable_cancel (g_task_get_cancellable (task));
  return G_SOURCE_REMOVE;
}

void
zlt_ws_open_data_async (GSocketClient *client, GUri *url, GSocketAddress *server,
                        const ZltTlsOptions *tls, const char *tunnel_id, const char *connection_id,
                        const char *standby_id, const char *mac, const char *service,
                        gboolean probe, guint timeout_ms, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GCancellable) own = g_cancellable_new ();
  g_autoptr (GTask) task = NULL;
  g_autofree char *authority = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  DataOpen *d = g_new0 (DataOpen, 1);

  if (cancellable != NULL)
    {
      d->parent = g_object_ref (cancellable);
      d->parent_handler = g_cancellable_connect (cancellable, G_CALLBACK (g_cancellable_cancel),
                                                 g_object_ref (own), g_object_unref);
    }
  task = g_task_new (NULL, own, callback, user_data);
  g_task_set_source_tag (task, zlt_ws_open_data_async);
  g_task_set_task_data (task, d, (GDestroyNotify) data_open_free);
  d->host = g_strdup (g_uri_get_host (url));
  d->probe = probe;
  d->port = url_port (url);
  d->head = g_byte_array_new ();
  if (is_tls_url (url))
    d->tls = zlt_tls_options_copy (tls);
  /* "[::1]:3679": an IPv6 address in a Host header keeps its brackets */
  authority = zlt_net_join_host_port (d->host, d->port);
  d->request = g_strdup_printf (
      "GET " ZLT_WS_DATA_PATH " HTTP/1.1\r\n"
      "Host: %s\r\n"
      "Connection: Upgrade\r\n"
      "Upgrade: " ZLT_WS_DATA_UPGRADE "\r\n"
      "X-Zlt-Tunnel: %s\r\n"
      "%s: %s\r\n"
      "X-Zlt-Mac: %s\r\n"
      "%s%s%s%s\r\n",
      authority, tunnel_id, standby_id != NULL ? "X-Zlt-Standby" : "X-Zlt-Connection",
      standby_id != NULL ? standby_id : connection_id, mac, service ? "X-Zlt-Service: " : "",
      service ? service : "", service ? "\r\n" : "", probe ? "X-Zlt-Probe: 1\r\n" : "");
  if (timeout_ms > 0)
    {
      d->timeout = g_timeout_source_new (timeout_ms);
      g_source_set_callback (d->timeout, data_timeout, task, NULL);
      g_source_attach (d->timeout, g_main_context_get_thread_default ());
    }
  /* an address and no proxy to ask: one connect(), not GSocketClient's several steps;
   * the host name stays for the Host header and TLS (SNI, verification) */
  if (server != NULL)
    zlt_net_dial_async (server, 0, own, address_connected, g_steal_pointer (&task));
  else if ((inet = g_socket_client_get_enable_proxy (client)
                       ? NULL
                       : g_inet_address_new_from_string (d->host))
           != NULL)
    {
      g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, d->port);

      zlt_net_dial_async (address, 0, own, address_connected, g_steal_pointer (&task));
    }
  else
    g_socket_client_connect_to_host_async (client, d->host, d->port, own, client_connected,
                                           g_steal_pointer (&task));
}

gboolean
zlt_ws_probe_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

GIOStream *
zlt_ws_open_data_finish (GAsyncResult *result, GBytes **prefix, GError **error)
{
  GTask *task = G_TASK (result);
  DataOpen *d = g_task_get_task_data (task);
  GIOStream *stream = g_task_propagate_pointer (task, error);

  if (stream != NULL && prefix != NULL)
    *prefix = g_bytes_ref (d->prefix);
  return stream;
}
