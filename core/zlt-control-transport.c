/* zlt-control-transport.c: thin checked wrappers over the class vfuncs */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-control-transport.h"

/**
 * ZltControlTransport:
 * A [class@Zlt.Transport] that also carries the control channel and the data
 * connections (the websocket plugin): on the server, a [class@Zlt.ControlListener] on
 * one port for both; on the agent, the control channel ([class@Zlt.Channel]) and every
 * data connection, access stream and standby connection, each an HTTP upgrade proven
 * with a MAC (PROTOCOL-v2.md §3, §6, §8).
 */

G_DEFINE_ABSTRACT_TYPE (ZltControlTransport, zlt_control_transport, ZLT_TYPE_TRANSPORT)

/**
 * zlt_control_transport_listen_control:
 * @self: a control transport
 * @bind_address: an IP address literal
 * @port: the port, 0 for any
 * @certificate: (nullable): the server's certificate, which makes it TLS
 * @handshake_timeout_ms: connections that have not upgraded within this are closed
 * @error: return location for a #GError
 *
 * The server's port: control channels and data connections.
 *
 * Returns: (transfer full): a listener that is already accepting, or %NULL with @error
 *   set
 */
ZltControlListener *
zlt_control_transport_listen_control (ZltControlTransport *self, const char *bind_address,
                                      guint16 port, GTlsCertificate *certificate,
                                      guint handshake_timeout_ms, GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  g_return_val_if_fail (bind_address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->listen_control (
      self, bind_address, port, certificate, handshake_timeout_ms, error);
}

/**
 * zlt_control_transport_connect_control_async:
 * @self: a control transport
 * @url: the server's URL (ws:// or wss://)
 * @tls: (nullable): how to check the server's certificate
 * @timeout_ms: how long the connect and upgrade may take
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the channel
 * @user_data: data for @callback
 *
 * The agent's control channel to @url; finish with
 * zlt_control_transport_connect_control_finish().
 */
void
zlt_control_transport_connect_control_async (ZltControlTransport *self, GUri *url,
                                             const ZltTlsOptions *tls, guint timeout_ms,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL);
  ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->connect_control_async (self, url, tls, timeout_ms,
                                                                 cancellable, callback, user_data);
}

/**
 * zlt_control_transport_connect_control_finish:
 * @self: a control transport
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the control channel, or %NULL with @error set
 */
ZltChannel *
zlt_control_transport_connect_control_finish (ZltControlTransport *self, GAsyncResult *result,
                                              GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->connect_control_finish (self, result, error);
}

/**
 * zlt_control_transport_open_data_async:
 * @self: a control transport
 * @url: the server's URL
 * @tls: (nullable): how to check the server's certificate
 * @tunnel_id: X-Zlt-Tunnel
 * @connection_id: X-Zlt-Connection
 * @mac: X-Zlt-Mac (zlt_data_mac(), in hex)
 * @timeout_ms: how long the connect and upgrade may take
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the stream
 * @user_data: data for @callback
 *
 * One data connection for @connection_id (PROTOCOL-v2.md §3); finish with
 * zlt_control_transport_open_data_finish().
 */
void
zlt_control_transport_open_data_async (ZltControlTransport *self, GUri *url,
                                       const ZltTlsOptions *tls, const char *tunnel_id,
                                       const char *connection_id, const char *mac, guint timeout_ms,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_data_async (
      self, url, tls, tunnel_id, connection_id, mac, timeout_ms, cancellable, callback, user_data);
}

/**
 * zlt_control_transport_open_data_finish:
 * @self: a control transport
 * @result: the result given to the callback
 * @prefix: (out) (optional) (nullable) (transfer full): bytes that arrived right after
 *   the upgrade, to be read before the stream
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the data connection, or %NULL with @error set
 */
GIOStream *
zlt_control_transport_open_data_finish (ZltControlTransport *self, GAsyncResult *result,
                                        GBytes **prefix, GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  /* the refusals of a transport that lacks a kind of data connection are our own */
  if (g_async_result_is_tagged (result, zlt_control_transport_open_access_async)
      || g_async_result_is_tagged (result, zlt_control_transport_open_standby_async))
    return g_task_propagate_pointer (G_TASK (result), error);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_data_finish (self, result, prefix, error);
}

/**
 * zlt_control_transport_open_access_async:
 * @self: a control transport
 * @url: the server's URL
 * @tls: (nullable): how to check the server's certificate
 * @tunnel_id: X-Zlt-Tunnel
 * @connection_id: X-Zlt-Connection, a fresh one
 * @mac: X-Zlt-Mac
 * @service: the service to reach (X-Zlt-Service)
 * @timeout_ms: how long the connect and upgrade may take
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the stream
 * @user_data: data for @callback
 *
 * An access stream to @service (PROTOCOL-v2.md §6); finish with
 * zlt_control_transport_open_data_finish().
 */
void
zlt_control_transport_open_access_async (ZltControlTransport *self, GUri *url,
                                         const ZltTlsOptions *tls, const char *tunnel_id,
                                         const char *connection_id, const char *mac,
                                         const char *service, guint timeout_ms,
                                         GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  g_return_if_fail (service != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->open_access_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_open_access_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot open access streams"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->open_access_async (self, url, tls, tunnel_id, connection_id, mac, service, timeout_ms,
                            cancellable, callback, user_data);
}

/**
 * zlt_control_transport_probe_access_async:
 * @self: a control transport
 * @url: the server's URL
 * @tls: (nullable): how to check the server's certificate
 * @tunnel_id: X-Zlt-Tunnel
 * @connection_id: X-Zlt-Connection, a fresh one
 * @mac: X-Zlt-Mac
 * @service: the service to ask about
 * @timeout_ms: how long the request may take
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: data for @callback
 *
 * Asks whether an access stream to @service would be accepted, without opening one
 * (PROTOCOL-v2.md §6).
 */
void
zlt_control_transport_probe_access_async (ZltControlTransport *self, GUri *url,
                                          const ZltTlsOptions *tls, const char *tunnel_id,
                                          const char *connection_id, const char *mac,
                                          const char *service, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  g_return_if_fail (service != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->probe_access_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_probe_access_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot probe access streams"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->probe_access_async (self, url, tls, tunnel_id, connection_id, mac, service, timeout_ms,
                             cancellable, callback, user_data);
}

/**
 * zlt_control_transport_probe_access_finish:
 * @self: a control transport
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when it would be; else %FALSE with the refusal
 */
gboolean
zlt_control_transport_probe_access_finish (ZltControlTransport *self, GAsyncResult *result,
                                           GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), FALSE);

  if (g_async_result_is_tagged (result, zlt_control_transport_probe_access_async))
    return g_task_propagate_boolean (G_TASK (result), error);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->probe_access_finish (self, result, error);
}

/**
 * zlt_control_transport_can_open_standby:
 * @self: a control transport
 *
 * Returns: whether the transport opens standby data connections
 */
gboolean
zlt_control_transport_can_open_standby (ZltControlTransport *self)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), FALSE);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_standby_async != NULL;
}

/**
 * zlt_control_transport_open_standby_async:
 * @self: a control transport
 * @url: the server's URL
 * @tls: (nullable): how to check the server's certificate
 * @tunnel_id: X-Zlt-Tunnel
 * @standby_id: X-Zlt-Standby, the agent's sequence number
 * @mac: X-Zlt-Mac (zlt_standby_mac(), in hex)
 * @timeout_ms: how long the connect and upgrade may take
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the stream
 * @user_data: data for @callback
 *
 * One standby data connection, parked at the server until it binds it to a public
 * connection (PROTOCOL-v2.md §8); finish with zlt_control_transport_open_data_finish(),
 * whose prefix then holds the first bytes of the binding, if any. A transport without
 * them fails with %G_IO_ERROR_NOT_SUPPORTED.
 */
void
zlt_control_transport_open_standby_async (ZltControlTransport *self, GUri *url,
                                          const ZltTlsOptions *tls, const char *tunnel_id,
                                          const char *standby_id, const char *mac, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && standby_id != NULL && mac != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->open_standby_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_open_standby_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot open standby connections"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->open_standby_async (self, url, tls, tunnel_id, standby_id, mac, timeout_ms, cancellable,
                             callback, user_data);
}

static void
zlt_control_transport_class_init (ZltControlTransportClass *klass)
{
}

static void
zlt_control_transport_init (ZltControlTransport *self)
{
}
