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
zlt_ws_transport_connect_control_async (ZltControlTransport *transport, GUri *url,
                                        const ZltTlsOptions *tls, guint timeout_ms,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data)
{
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
  zlt_ws_open_data_async (url, tls, tunnel_id, connection_id, mac, timeout_ms, cancellable,
                          callback, user_data);
}

static GIOStream *
zlt_ws_transport_open_data_finish (ZltControlTransport *transport, GAsyncResult *result,
                                   GBytes **prefix, GError **error)
{
  return zlt_ws_open_data_finish (result, prefix, error);
}

static void
zlt_ws_transport_class_init (ZltWsTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);
  ZltControlTransportClass *control_class = ZLT_CONTROL_TRANSPORT_CLASS (klass);

  transport_class->name = "websocket";
  transport_class->protocol = ZLT_PROTOCOL_TCP;
  transport_class->listen = zlt_ws_transport_listen;
  control_class->listen_control = zlt_ws_transport_listen_control;
  control_class->connect_control_async = zlt_ws_transport_connect_control_async;
  control_class->connect_control_finish = zlt_ws_transport_connect_control_finish;
  control_class->open_data_async = zlt_ws_transport_open_data_async;
  control_class->open_data_finish = zlt_ws_transport_open_data_finish;
}

static void
zlt_ws_transport_init (ZltWsTransport *self)
{
}

static gboolean
ws_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_WS_TRANSPORT, error);
}

ZLT_PLUGIN_DEFINE (ws_plugin_register)
