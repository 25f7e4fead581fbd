/* zlt-ws-transport.c: glue between the ZltControlTransport vfuncs and the
 * WebSocket listener and connectors, plus the plugin's entry point. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-ws-connect.h"
#include "zlt-ws-listener.h"
#include "zlt-ws-transport.h"

struct _ZltWsTransport
{
  ZltControlTransport parent_instance;

  /* one client for every data connection; its proxy use is decided once per server
   * URL rather than by a proxy lookup per connection */
  GSocketClient *data_client;
  char *proxy_checked_for;
  /* ControlPeer*: the open control channels and the server address each reached */
  GPtrArray *control_peers;
};

/* Data connections go where their tunnel's control channel went, not wherever the
 * name resolves to now: with DNS round robin or a changed record another server would
 * not know the tunnel (core/FLEET.md). Kept per open channel, so agents sharing this
 * transport and URL but reaching different servers fall back to resolving. */
typedef struct
{
  ZltWsTransport *transport; /* unowned: the transport outlives its entries or clears them */
  ZltChannel *channel;       /* weak */
  char *authority;           /* the URL's "host:port" */
  GSocketAddress *server;
} ControlPeer;

G_DEFINE_FINAL_TYPE (ZltWsTransport, zlt_ws_transport, ZLT_TYPE_CONTROL_TRANSPORT)

static ZltListener *
zlt_ws_transport_listen (ZltTransport *transport, const char *bind_address, guint16 port,
                         GError **error)
{
  /* without a handshake deadline given, a generous default */
  return ZLT_LISTENER (zlt_ws_listener_new (bind_address, port, NULL, 10000, error));
}

static ZltControlListener *
zlt_ws_transport_listen_control (ZltControlTransport *transport, const char *bind_address,
                                 guint16 port, GTlsCertificate *certificate,
                                 guint handshake_timeout_ms, GError **error)
{
  return zlt_ws_listener_new (bind_address, port, certificate, handshake_timeout_ms, error);
}

static void
proxy_looked_up (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (ZltWsTransport) self = user_data;
  g_auto (GStrv) proxies = g_proxy_resolver_lookup_finish (G_PROXY_RESOLVER (source), result, NULL);

  /* anything but a plain "direct://" keeps GSocketClient's own proxy handling */
  if (proxies != NULL && proxies[0] != NULL && proxies[1] == NULL
      && g_str_equal (proxies[0], "direct://"))
    g_socket_client_set_enable_proxy (self->data_client, FALSE);
}

static void
zlt_ws_transport_connect_control_async (ZltControlTransport *transport, GUri *url,
                                        const ZltTlsOptions *tls, guint timeout_ms,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data)
{
  ZltWsTransport *self = ZLT_WS_TRANSPORT (transport);
  g_autofree char *url_string = g_uri_to_string (url);

  if (g_strcmp0 (self->proxy_checked_for, url_string) != 0)
    {
      g_free (self->proxy_checked_for);
      self->proxy_checked_for = g_strdup (url_string);
      g_socket_client_set_enable_proxy (self->data_client, TRUE);
      g_proxy_resolver_lookup_async (g_proxy_resolver_get_default (), url_string, NULL,
                                     proxy_looked_up, g_object_ref (self));
    }
  zlt_ws_connect_control_async (url, tls, timeout_ms, cancellable, callback, user_data);
}

static void
control_peer_free (ControlPeer *peer)
{
  g_free (peer->authority);
  g_object_unref (peer->server);
  g_free (peer);
}

static void
control_peer_gone (gpointer data, GObject *where_the_channel_was)
{
  ControlPeer *peer = data;

  g_ptr_array_remove_fast (peer->transport->control_peers, peer);
}

static ZltChannel *
zlt_ws_transport_connect_control_finish (ZltControlTransport *transport, GAsyncResult *result,
                                         GError **error)
{
  ZltWsTransport *self = ZLT_WS_TRANSPORT (transport);
  g_autoptr (GSocketAddress) server = NULL;
  ZltChannel *channel = zlt_ws_connect_control_finish (result, &server, error);
  ControlPeer *peer;

  if (channel == NULL || server == NULL)
    return channel;
  peer = g_new0 (ControlPeer, 1);
  peer->transport = self;
  peer->channel = channel;
  peer->authority = g_strdup (zlt_channel_get_peer_address (channel));
  peer->server = g_steal_pointer (&server);
  g_object_weak_ref (G_OBJECT (channel), control_peer_gone, peer);
  g_ptr_array_add (self->control_peers, peer);
  return channel;
}

static gboolean
same_address (GSocketAddress *a, GSocketAddress *b)
{
  GInetSocketAddress *ia = G_INET_SOCKET_ADDRESS (a);
  GInetSocketAddress *ib = G_INET_SOCKET_ADDRESS (b);

  return g_inet_socket_address_get_port (ia) == g_inet_socket_address_get_port (ib)
         && g_inet_address_equal (g_inet_socket_address_get_address (ia),
                                  g_inet_socket_address_get_address (ib));
}

/* The address every open control channel to @url reached; NULL when there is none
 * or they disagree. */
static GSocketAddress *
server_for (ZltWsTransport *self, GUri *url)
{
  g_autofree char *authority = zlt_ws_url_authority (url);
  GSocketAddress *found = NULL;

  for (guint i = 0; i < self->control_peers->len; i++)
    {
      ControlPeer *peer = g_ptr_array_index (self->control_peers, i);

      if (!g_str_equal (peer->authority, authority))
        continue;
      if (found != NULL && !same_address (found, peer->server))
        return NULL;
      found = peer->server;
    }
  return found;
}

static void
zlt_ws_transport_open_data_async (ZltControlTransport *transport, GUri *url,
                                  const ZltTlsOptions *tls, const char *tunnel_id,
                                  const char *connection_id, const char *mac, guint timeout_ms,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url,
                          server_for (ZLT_WS_TRANSPORT (transport), url), tls, tunnel_id,
                          connection_id, NULL, mac, NULL, FALSE, timeout_ms, cancellable, callback,
                          user_data);
}

static void
zlt_ws_transport_open_access_async (ZltControlTransport *transport, GUri *url,
                                    const ZltTlsOptions *tls, const char *tunnel_id,
                                    const char *connection_id, const char *mac, const char *service,
                                    guint timeout_ms, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url,
                          server_for (ZLT_WS_TRANSPORT (transport), url), tls, tunnel_id,
                          connection_id, NULL, mac, service, FALSE, timeout_ms, cancellable,
                          callback, user_data);
}

static void
zlt_ws_transport_probe_access_async (ZltControlTransport *transport, GUri *url,
                                     const ZltTlsOptions *tls, const char *tunnel_id,
                                     const char *connection_id, const char *mac,
                                     const char *service, guint timeout_ms,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url,
                          server_for (ZLT_WS_TRANSPORT (transport), url), tls, tunnel_id,
                          connection_id, NULL, mac, service, TRUE, timeout_ms, cancellable,
                          callback, user_data);
}

static void
zlt_ws_transport_open_standby_async (ZltControlTransport *transport, GUri *url,
                                     const ZltTlsOptions *tls, const char *tunnel_id,
                                     const char *standby_id, const char *mac, guint timeout_ms,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url,
                          server_for (ZLT_WS_TRANSPORT (transport), url), tls, tunnel_id, NULL,
                          standby_id, mac, NULL, FALSE, timeout_ms, cancellable, callback,
                          user_data);
}

static gboolean
zlt_ws_transport_probe_access_finish (ZltControlTransport *transport, GAsyncResult *result,
                                      GError **error)
{
  return zlt_ws_probe_finish (result, error);
}

static GIOStream *
zlt_ws_transport_open_data_finish (ZltControlTransport *transport, GAsyncResult *result,
                                   GBytes **prefix, GError **error)
{
  return zlt_ws_open_data_finish (result, prefix, error);
}

static void
zlt_ws_transport_finalize (GObject *object)
{
  ZltWsTransport *self = ZLT_WS_TRANSPORT (object);

  g_clear_object (&self->data_client);
  g_free (self->proxy_checked_for);
  for (guint i = 0; i < self->control_peers->len; i++)
    {
      ControlPeer *peer = g_ptr_array_index (self->control_peers, i);

      g_object_weak_unref (G_OBJECT (peer->channel), control_peer_gone, peer);
    }
  g_ptr_array_unref (self->control_peers);
  G_OBJECT_CLASS (zlt_ws_transport_parent_class)->finalize (object);
}

static void
zlt_ws_transport_class_init (ZltWsTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);
  ZltControlTransportClass *control_class = ZLT_CONTROL_TRANSPORT_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = zlt_ws_transport_finalize;
  transport_class->name = "websocket";
  transport_class->protocol = ZLT_PROTOCOL_TCP;
  transport_class->listen = zlt_ws_transport_listen;
  control_class->listen_control = zlt_ws_transport_listen_control;
  control_class->connect_control_async = zlt_ws_transport_connect_control_async;
  control_class->connect_control_finish = zlt_ws_transport_connect_control_finish;
  control_class->open_data_async = zlt_ws_transport_open_data_async;
  control_class->open_data_finish = zlt_ws_transport_open_data_finish;
  control_class->open_access_async = zlt_ws_transport_open_access_async;
  control_class->probe_access_async = zlt_ws_transport_probe_access_async;
  control_class->probe_access_finish = zlt_ws_transport_probe_access_finish;
  control_class->open_standby_async = zlt_ws_transport_open_standby_async;
}

static void
zlt_ws_transport_init (ZltWsTransport *self)
{
  self->data_client = g_socket_client_new ();
  self->control_peers = g_ptr_array_new_with_free_func ((GDestroyNotify) control_peer_free);
}

static gboolean
ws_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_WS_TRANSPORT, error);
}

ZLT_PLUGIN_DEFINE (ws_plugin_register)
