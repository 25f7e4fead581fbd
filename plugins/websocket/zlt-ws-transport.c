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
};

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

static ZltChannel *
zlt_ws_transport_connect_control_finish (ZltControlTransport *transport, GAsyncResult *result,
                                         GError **error)
{
  return zlt_ws_connect_control_finish (result, error);
}

static void
zlt_ws_transport_open_data_async (ZltControlTransport *transport, GUri *url,
                                  const ZltTlsOptions *tls, const char *tunnel_id,
                                  const char *connection_id, const char *mac, guint timeout_ms,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url, tls, tunnel_id,
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
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url, tls, tunnel_id,
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
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url, tls, tunnel_id,
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
  zlt_ws_open_data_async (ZLT_WS_TRANSPORT (transport)->data_client, url, tls, tunnel_id, NULL,
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
}

static gboolean
ws_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_WS_TRANSPORT, error);
}

ZLT_PLUGIN_DEFINE (ws_plugin_register)
