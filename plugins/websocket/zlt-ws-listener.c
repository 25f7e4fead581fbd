/* zlt-ws-listener.c: accepts TCP (optionally TLS) itself, hands each connection to a
 * SoupServer for the HTTP part, and takes it back at the upgrade.
 *
 * Accepting ourselves rather than through soup_server_listen() gives three things:
 * a deadline for connections that never upgrade (slowloris, idle probes), TCP_NODELAY
 * on every socket, and the plain GSocketConnection of a data connection so the relay
 * can splice it. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-ws-channel.h"
#include "zlt-ws-listener.h"

struct _ZltWsListener
{
  ZltControlListener parent_instance;

  GSocketService *service;
  SoupServer *soup;
  GTlsCertificate *certificate;
  guint handshake_timeout_ms;
  /* remote address string → ZltWsPending, connections not yet upgraded */
  GHashTable *pending;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (ZltWsListener, zlt_ws_listener, ZLT_TYPE_CONTROL_LISTENER)

typedef struct
{
  ZltWsListener *self; /* unowned; the table entry dies with the listener */
  GIOStream *stream;   /* what we handed to libsoup: socket or TLS connection */
  char *peer;
  GSource *deadline;
} ZltWsPending;

static void
pending_free (ZltWsPending *p)
{
  if (p->deadline != NULL)
    {
      g_source_destroy (p->deadline);
      g_source_unref (p->deadline);
    }
  g_clear_object (&p->stream);
  g_free (p->peer);
  g_free (p);
}

static gboolean
on_deadline (gpointer user_data)
{
  ZltWsPending *p = user_data;

  g_debug ("closing %s: no upgrade within %u ms", p->peer, p->self->handshake_timeout_ms);
  /* libsoup notices the closed stream and drops its side */
  g_io_stream_close (p->stream, NULL, NULL);
  g_hash_table_remove (p->self->pending, p->peer);
  return G_SOURCE_REMOVE;
}

static void
hand_to_soup (ZltWsListener *self, GIOStream *stream, GSocketConnection *connection)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  ZltWsPending *p;

  if (local == NULL || remote == NULL)
    return;
  p = g_new0 (ZltWsPending, 1);
  p->self = self;
  p->stream = g_object_ref (stream);
  p->peer = zlt_net_format_address (remote);
  p->deadline = g_timeout_source_new (self->handshake_timeout_ms);
  g_source_set_callback (p->deadline, on_deadline, p, NULL);
  g_source_attach (p->deadline, g_main_context_get_thread_default ());
  g_hash_table_replace (self->pending, p->peer, p);

  if (!soup_server_accept_iostream (self->soup, stream, local, remote, &error))
    {
      g_debug ("failed to accept %s: %s", p->peer, error->message);
      g_hash_table_remove (self->pending, p->peer);
    }
}

static void
tls_handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (ZltWsListener) self = user_data;
  GTlsConnection *tls = G_TLS_CONNECTION (source);
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOStream) base = NULL;

  if (!g_tls_connection_handshake_finish (tls, result, &error))
    {
      g_debug ("TLS handshake failed: %s", error->message);
      g_io_stream_close (G_IO_STREAM (tls), NULL, NULL);
      return;
    }
  if (g_cancellable_is_cancelled (self->cancellable))
    return;
  g_object_get (tls, "base-io-stream", &base, NULL);
  hand_to_soup (self, G_IO_STREAM (tls), G_SOCKET_CONNECTION (base));
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
             gpointer user_data)
{
  ZltWsListener *self = user_data;

  zlt_net_set_nodelay (connection);
  if (self->certificate != NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GIOStream) tls
          = zlt_tls_server_connection_new (G_IO_STREAM (connection), self->certificate, &error);
      if (tls == NULL)
        {
          g_debug ("cannot start TLS: %s", error->message);
          return TRUE;
        }
      g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                        self->cancellable, tls_handshake_done, g_object_ref (self));
      return TRUE;
    }
  hand_to_soup (self, G_IO_STREAM (connection), connection);
  return TRUE;
}

/* Takes a connection back from libsoup once the 101 is on the wire: returns what
 * libsoup gives back (its own wrapper, which holds any read-ahead bytes) and, in
 * @ours, the stream we handed it. */
static GIOStream *
take_back (ZltWsListener *self, SoupServerMessage *msg, GIOStream **ours, char **peer_out)
{
  g_autoptr (GIOStream) stolen = NULL;
  g_autofree char *peer = zlt_net_format_address (soup_server_message_get_remote_address (msg));
  ZltWsPending *p = peer ? g_hash_table_lookup (self->pending, peer) : NULL;

  stolen = soup_server_message_steal_connection (msg);
  if (p == NULL || stolen == NULL)
    return NULL;
  if (ours != NULL)
    *ours = g_object_ref (p->stream);
  g_hash_table_remove (self->pending, peer);
  if (peer_out != NULL)
    *peer_out = g_steal_pointer (&peer);
  return g_steal_pointer (&stolen);
}

static void
control_upgrade_written (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  g_autofree char *peer = NULL;
  g_autoptr (GIOStream) stream = NULL;
  g_autoptr (SoupWebsocketConnection) ws = NULL;
  g_autoptr (ZltChannel) channel = NULL;
  g_autoptr (GBytes) nonce = NULL;
  GBytes *stored;

  g_signal_handlers_disconnect_by_func (msg, control_upgrade_written, user_data);
  stored = g_object_get_data (G_OBJECT (msg), "zlt-nonce");
  nonce = stored ? g_bytes_ref (stored) : NULL;
  stream = take_back (self, msg, NULL, &peer);
  if (stream == NULL)
    return;
  ws = soup_websocket_connection_new (stream, soup_server_message_get_uri (msg),
                                      SOUP_WEBSOCKET_CONNECTION_SERVER, NULL, NULL, NULL);
  channel = zlt_ws_channel_new (ws, peer, nonce);
  zlt_control_listener_emit_channel (ZLT_CONTROL_LISTENER (self), channel);
}

static void
handle_control (ZltWsListener *self, SoupServerMessage *msg)
{
  g_autoptr (GError) error = NULL;
  guint8 nonce[ZLT_NONCE_SIZE];
  g_autofree char *nonce_hex = NULL;

  if (!soup_websocket_server_check_handshake (msg, NULL, NULL, NULL, &error))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, error->message,
                                        strlen (error->message));
      return;
    }
  if (!soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL))
    return;
  zlt_random_bytes (nonce, sizeof nonce);
  nonce_hex = zlt_hex_encode (nonce, sizeof nonce);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Zlt-Nonce",
                                nonce_hex);
  g_object_set_data_full (G_OBJECT (msg), "zlt-nonce", g_bytes_new (nonce, sizeof nonce),
                          (GDestroyNotify) g_bytes_unref);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (control_upgrade_written), self,
                           0);
}

static void
data_upgrade_written (SoupServerMessage *msg, gpointer user_data)
{
  ZltWsListener *self = ZLT_WS_LISTENER (user_data);
  g_autoptr (GIOStream) stolen = NULL;
  g_autoptr (GIOStream) ours = NULL;
  const char *connection_id = g_object_get_data (G_OBJECT (msg), "zlt-connection");

  g_signal_handlers_disconnect_by_func (msg, data_upgrade_written, user_data);
  stolen = take_back (self, msg, &ours, NULL);
  if (stolen == NULL)
    return;
  /* relay our own stream, not libsoup's wrapper, so a plain socket can be spliced.
   * An agent sends nothing after its request until it has read our 101, so the
   * wrapper holds no read-ahead bytes, and dropping it leaves what it wraps open
   * (libsoup wraps without close-on-dispose; the data-connection tests would see
   * any change there at once). */
  zlt_control_listener_emit_data_stream (ZLT_CONTROL_LISTENER (self), connection_id, ours);
}

static void
reply_text (SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, text, strlen (text));
}

static void
handle_data (ZltWsListener *self, SoupServerMessage *msg)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *tunnel_id = soup_message_headers_get_one (req, "X-Zlt-Tunnel");
  const char *connection_id = soup_message_headers_get_one (req, "X-Zlt-Connection");
  const char *mac = soup_message_headers_get_one (req, "X-Zlt-Mac");
  /* present on access streams only (PROTOCOL-v2.md §6) */
  const char *service = soup_message_headers_get_one (req, "X-Zlt-Service");
  guint status;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET
      || !soup_message_headers_header_contains (req, "Upgrade", ZLT_WS_DATA_UPGRADE)
      || !soup_message_headers_header_contains (req, "Connection", "Upgrade") || tunnel_id == NULL
      || connection_id == NULL || mac == NULL)
    {
      reply_text (msg, SOUP_STATUS_BAD_REQUEST, "not a zlt data upgrade");
      return;
    }
  status = zlt_control_listener_emit_data_request (ZLT_CONTROL_LISTENER (self), tunnel_id,
                                                   connection_id, mac, service);
  if (status != SOUP_STATUS_SWITCHING_PROTOCOLS)
    {
      reply_text (msg, status ? status : SOUP_STATUS_NOT_FOUND, "data connection refused");
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL);
  soup_message_headers_replace (resp, "Upgrade", ZLT_WS_DATA_UPGRADE);
  soup_message_headers_replace (resp, "Connection", "Upgrade");
  g_object_set_data_full (G_OBJECT (msg), "zlt-connection", g_strdup (connection_id), g_free);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (data_upgrade_written), self, 0);
}

static void
server_callback (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  ZltWsListener *self = user_data;

  if (g_strcmp0 (path, ZLT_WS_CONTROL_PATH) == 0)
    handle_control (self, msg);
  else if (g_strcmp0 (path, ZLT_WS_DATA_PATH) == 0)
    handle_data (self, msg);
  else
    reply_text (msg, SOUP_STATUS_NOT_FOUND, "not found");
}

static void
zlt_ws_listener_close (ZltListener *listener)
{
  ZltWsListener *self = ZLT_WS_LISTENER (listener);

  g_cancellable_cancel (self->cancellable);
  if (self->service != NULL)
    {
      g_socket_service_stop (self->service);
      g_socket_listener_close (G_SOCKET_LISTENER (self->service));
      g_signal_handlers_disconnect_by_data (self->service, self);
    }
  if (self->soup != NULL)
    soup_server_disconnect (self->soup);
  g_hash_table_remove_all (self->pending);
}

static void
zlt_ws_listener_dispose (GObject *object)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  zlt_ws_listener_close (ZLT_LISTENER (self));
  g_clear_object (&self->service);
  g_clear_object (&self->soup);
  g_clear_object (&self->certificate);
  G_OBJECT_CLASS (zlt_ws_listener_parent_class)->dispose (object);
}

static void
zlt_ws_listener_finalize (GObject *object)
{
  ZltWsListener *self = ZLT_WS_LISTENER (object);

  g_hash_table_unref (self->pending);
  g_object_unref (self->cancellable);
  G_OBJECT_CLASS (zlt_ws_listener_parent_class)->finalize (object);
}

static void
zlt_ws_listener_class_init (ZltWsListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltListenerClass *listener_class = ZLT_LISTENER_CLASS (klass);

  object_class->dispose = zlt_ws_listener_dispose;
  object_class->finalize = zlt_ws_listener_finalize;
  listener_class->close = zlt_ws_listener_close;
}

static void
zlt_ws_listener_init (ZltWsListener *self)
{
  self->pending
      = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) pending_free);
  self->cancellable = g_cancellable_new ();
}

ZltControlListener *
zlt_ws_listener_new (const char *bind_address, guint16 port, GTlsCertificate *certificate,
                     guint handshake_timeout_ms, GError **error)
{
  g_autoptr (ZltWsListener) self = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketAddress) effective = NULL;

  inet = g_inet_address_new_from_string (bind_address);
  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not an IP address to listen on"), bind_address);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_WS_LISTENER, NULL);
  self->certificate = certificate ? g_object_ref (certificate) : NULL;
  self->handshake_timeout_ms = handshake_timeout_ms;
  self->soup = soup_server_new ("server-header", NULL, NULL);
  soup_server_add_handler (self->soup, NULL, server_callback, self, NULL);

  self->service = g_socket_service_new ();
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (self->service), 1024);
  address = g_inet_socket_address_new (inet, port);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (self->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
                                      error))
    {
      g_prefix_error (error, _ ("failed to listen on %s:%u: "), bind_address, port);
      return NULL;
    }
  zlt_listener_set_port (ZLT_LISTENER (self),
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  g_signal_connect (self->service, "incoming", G_CALLBACK (on_incoming), self);
  g_socket_service_start (self->service);
  return ZLT_CONTROL_LISTENER (g_steal_pointer (&self));
}
